// SPDX-License-Identifier: Apache-2.0
//! Bloom filters: a compact "definitely not here" test for keys.
//!
//! A bloom filter is a bit array. Adding a key sets `k` bits chosen by hashing the key; a lookup
//! checks those `k` bits. If any is clear the key was never added: the SST is skipped without
//! reading a block. If all are set the key *may* be present (a false positive is possible, a false
//! negative is not).
//!
//! With `b` bits per key the best `k` is `b * ln 2`, and the false-positive rate is then about
//! `0.6185^b`: under 1% at 10 bits per key.
//!
//! The `k` positions come from one 32-bit hash by double hashing: `h, h + d, h + 2d, ...` with
//! `d` the hash rotated, which is as good as `k` independent hashes for this purpose.
//!
//! # Format
//!
//! ```text
//! bloom := bits[nbytes]  k:u8          nbytes >= 1, 1 <= k <= 30
//! ```
//!
//! Bit `i` is bit `i % 8` of byte `i / 8`.

use anyhow::{ensure, Result};
use bytes::BufMut;

/// A bloom filter over key hashes.
pub struct Bloom {
    /// The bit array.
    pub(crate) filter: Vec<u8>,
    /// The number of bits probed per key.
    pub(crate) k: u8,
}

// ANCHOR: key_hash
/// The hash of a key the bloom filter is built from: FNV-1a, finished with a strong mixer so that
/// keys differing only in their last byte still spread over the whole array.
pub fn key_hash(key: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as u32
}
// ANCHOR_END: key_hash

impl Bloom {
    /// Parses a filter.
    ///
    /// # Errors
    /// If the section is empty or `k` is out of range.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        ensure!(
            buf.len() >= 2,
            "bloom filter is {} bytes, too short",
            buf.len()
        );
        let k = buf[buf.len() - 1];
        ensure!(
            (1..=30).contains(&k),
            "bloom filter probes k = {k}, not 1..=30"
        );
        Ok(Self {
            filter: buf[..buf.len() - 1].to_vec(),
            k,
        })
    }

    /// Appends the filter to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.filter);
        buf.put_u8(self.k);
    }

    // ANCHOR: bloom_build
    /// Builds a filter over `key_hashes` with about `bits_per_key` bits per key.
    pub fn build_from_key_hashes(key_hashes: &[u32], bits_per_key: usize) -> Self {
        // @task week1_day7 1
        let k = ((bits_per_key as f64 * std::f64::consts::LN_2) as u8).clamp(1, 30);
        // A tiny filter has a high false-positive rate whatever its k; keep at least 64 bits.
        let nbits = (key_hashes.len() * bits_per_key).max(64);
        let nbytes = nbits.div_ceil(8);
        let nbits = nbytes * 8;
        let mut filter = vec![0u8; nbytes];
        for &h in key_hashes {
            let mut h = h;
            let delta = h.rotate_left(15);
            for _ in 0..k {
                let bit = h as usize % nbits;
                filter[bit / 8] |= 1 << (bit % 8);
                h = h.wrapping_add(delta);
            }
        }
        Self { filter, k }
        // @end
    }

    /// Whether a key with hash `h` may have been added; `false` means it certainly was not.
    pub fn may_contain(&self, h: u32) -> bool {
        // @task week1_day7 1
        let nbits = self.filter.len() * 8;
        let mut h = h;
        let delta = h.rotate_left(15);
        for _ in 0..self.k {
            let bit = h as usize % nbits;
            if self.filter[bit / 8] & (1 << (bit % 8)) == 0 {
                return false;
            }
            h = h.wrapping_add(delta);
        }
        true
        // @end
    }
    // ANCHOR_END: bloom_build
}
