// SPDX-License-Identifier: Apache-2.0
//! The blocks' last keys, laid out for the binary search of a point lookup.
//!
//! `find_block_idx` runs on every lookup that gets past the bloom filter. Searching
//! `Vec<BlockMeta>` directly costs two cache misses per step: the 72-byte `BlockMeta`, then its
//! key's separate heap allocation. An SST of 64 MiB has about 16,000 blocks, so its metadata and
//! keys take about 2 MB, and the fourteen steps of a search mostly miss the cache. Here the same
//! keys sit end to end in one buffer, with a table of where each ends:
//!
//! ```text
//!   ends:  [ 16 | 32 | 48 | ... ]            u32 per block
//!   ts:    [ 9  | 7  | 12 | ... ]            u64 per block: each last key's timestamp (week 3)
//!   keys:  [ last key 0 | last key 1 | ... ] one allocation
//! ```
//!
//! which is a third of the size, so that far more of it stays in the cache between lookups. It
//! duplicates what `block_meta` holds (about 30 bytes per block), which is the price. Keys compare
//! as [`crate::key::Key`]s do: by user key, then newest timestamp first, so that a seek finds the
//! block holding the version it asks for even when a key's versions span blocks.

use std::cmp::Ordering;

use super::BlockMeta;
use crate::key::KeySlice;

// ANCHOR: last_keys
/// The last key of every block, contiguous.
pub(crate) struct LastKeys {
    keys: Vec<u8>,
    /// `ends[i]` is where block `i`'s last key ends in `keys`; it starts where `ends[i - 1]` does.
    ends: Vec<u32>,
    /// Block `i`'s last key's timestamp.
    ts: Vec<u64>,
}

impl LastKeys {
    /// The index of `block_meta`'s last keys.
    pub(crate) fn new(block_meta: &[BlockMeta]) -> Self {
        let mut keys = Vec::with_capacity(block_meta.iter().map(|m| m.last_key.len()).sum());
        let mut ends = Vec::with_capacity(block_meta.len());
        let mut ts = Vec::with_capacity(block_meta.len());
        for meta in block_meta {
            keys.extend_from_slice(meta.last_key.raw_ref());
            ends.push(keys.len() as u32);
            ts.push(meta.last_key.ts());
        }
        Self { keys, ends, ts }
    }

    /// How block `i`'s last key compares with `key`.
    fn cmp(&self, i: usize, key: KeySlice) -> Ordering {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let last = KeySlice::from_slice_ts(
            &self.keys[start as usize..self.ends[i] as usize],
            self.ts[i],
        );
        last.cmp(&key)
    }

    /// The index of the first block whose last key is `>= key`; the number of blocks if none is.
    pub(crate) fn first_at_or_after(&self, key: KeySlice) -> usize {
        let (mut low, mut high) = (0, self.ends.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.cmp(mid, key) == Ordering::Less {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}
// ANCHOR_END: last_keys
