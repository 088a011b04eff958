// SPDX-License-Identifier: Apache-2.0
//! A cheap hash for the engine's own numbers: SST ids, and `(SST id, block index)` pairs.
//!
//! The standard library's `HashMap` hashes with SipHash, which resists *hash flooding*: an
//! adversary choosing keys so that they all land in one bucket. Our keys are numbers the engine
//! made itself, and these maps are probed on every lookup (the SST map once per table a `get`
//! checks, the block cache twice per block), where SipHash showed in profiles. So they use a
//! multiply per word instead, as rustc's own FxHash does.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

// ANCHOR: id_hasher
/// A multiply-and-rotate hasher for small integer keys.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(byte as u64);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    /// A multiplicative hash mixes upwards, so its low bits are the weak ones; hashbrown takes
    /// the bucket from the low bits, so the high half is folded into them.
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

/// Builds [`IdHasher`]s.
pub type BuildIdHasher = BuildHasherDefault<IdHasher>;

/// A map keyed by engine-made ids.
pub type IdMap<K, V> = HashMap<K, V, BuildIdHasher>;
// ANCHOR_END: id_hasher

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    /// Consecutive ids and block keys spread over the low bits, where buckets come from.
    #[test]
    fn consecutive_keys_spread_over_buckets() {
        let build = BuildIdHasher::default();
        let mut buckets = [0usize; 64];
        for id in 0..6400usize {
            buckets[(build.hash_one(id) % 64) as usize] += 1;
            buckets[(build.hash_one((id / 100, id % 100)) % 64) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (100..=300).contains(&n)),
            "{buckets:?}"
        );
    }
}
