// SPDX-License-Identifier: Apache-2.0
//! A cursor over the entries of one block.

use std::ops::Range;
use std::sync::Arc;

use crate::key::{KeySlice, KeyVec};
use crate::merge::ValueKind;

use super::Block;

// ANCHOR: block_iterator_struct
/// Iterates over a block's entries in key order and seeks by key.
pub struct BlockIterator {
    /// The block being read.
    block: Arc<Block>,
    /// The current key; empty when the iterator is invalid.
    key: KeyVec,
    /// Where the current value lies in the block's data.
    value_range: (usize, usize),
    /// The index of the current entry; `block.len()` when exhausted.
    idx: usize,
    /// Where the block's first key, which later keys are encoded against, lies in its data (a
    /// range rather than a copy: an iterator is made for every lookup).
    first_key: Range<usize>,
}
// ANCHOR_END: block_iterator_struct

impl BlockIterator {
    fn new(block: Arc<Block>) -> Self {
        let first_key = block.parse_entry(0).map(|e| e.rest).unwrap_or_default();
        Self {
            block,
            key: KeyVec::new(),
            value_range: (0, 0),
            idx: 0,
            first_key,
        }
    }

    /// Creates an iterator positioned at the block's first entry.
    pub fn create_and_seek_to_first(block: Arc<Block>) -> Self {
        let mut iter = Self::new(block);
        iter.seek_to_first();
        iter
    }

    /// Creates an iterator positioned at the first entry whose key is `>= key`.
    pub fn create_and_seek_to_key(block: Arc<Block>, key: KeySlice) -> Self {
        let mut iter = Self::new(block);
        iter.seek_to_key(key);
        iter
    }

    /// The current key. Requires `is_valid()`.
    pub fn key(&self) -> KeySlice<'_> {
        self.key.as_key_slice()
    }

    /// The current value. Requires `is_valid()`.
    pub fn value(&self) -> &[u8] {
        &self.block.data[self.value_range.0..self.value_range.1]
    }

    /// The current entry's kind (week 4 day 6). Requires `is_valid()`.
    pub fn value_kind(&self) -> ValueKind {
        self.block.kind(self.idx, self.value())
    }

    /// Whether the iterator points at an entry.
    pub fn is_valid(&self) -> bool {
        // @task week1_day3 2
        self.idx < self.block.len()
        // @end
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) {
        // @task week1_day3 2
        self.seek_to(0);
        // @end
    }

    /// Moves to the next entry; past the last one the iterator becomes invalid.
    pub fn next(&mut self) {
        // @task week1_day3 2
        self.seek_to(self.idx + 1);
        // @end
    }

    // ANCHOR: block_seek
    /// Moves to the first entry whose key is `>= key`, or past the end if there is none.
    pub fn seek_to_key(&mut self, key: KeySlice) {
        // @task week1_day3 2
        // Binary search over the offsets: the entries are sorted, and each decodes on its own.
        let (mut low, mut high) = (0, self.block.len());
        while low < high {
            let mid = low + (high - low) / 2;
            self.seek_to(mid);
            if self.key() < key {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        self.seek_to(low);
        // @end
    }
    // ANCHOR_END: block_seek

    // ANCHOR: block_seek_to
    /// Positions the iterator at entry `idx` and decodes its key; past the end it becomes invalid.
    fn seek_to(&mut self, idx: usize) {
        // @task week1_day3 2
        self.idx = idx;
        self.key.clear();
        if idx >= self.block.len() {
            self.value_range = (0, 0);
            return;
        }
        // `Block` was checked when it was decoded or built, so this entry is well-formed.
        let entry = self
            .block
            .parse_entry(idx)
            .expect("blocks are checked when decoded");
        let shared = self.first_key.start..self.first_key.start + entry.overlap;
        self.key.append(&self.block.data[shared]);
        self.key.append(&self.block.data[entry.rest]);
        // @task week3_day1 1 stub=comment
        self.key.set_ts(self.block.timestamps.get(idx));
        // @end
        self.value_range = (entry.value.start, entry.value.end);
        // @end
    }
    // ANCHOR_END: block_seek_to
}
