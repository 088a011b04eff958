// SPDX-License-Identifier: Apache-2.0
//! A cursor over the entries of one block.

use std::ops::Range;
use std::sync::Arc;

use crate::key::{KeySlice, KeyVec};
use crate::merge::ValueKind;

use super::Block;

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
        todo!("week 1 day 3, task 2: iterate and seek within a block (book: week1-03-block)")
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) {
        todo!("week 1 day 3, task 2: iterate and seek within a block (book: week1-03-block)")
    }

    /// Moves to the next entry; past the last one the iterator becomes invalid.
    pub fn next(&mut self) {
        todo!("week 1 day 3, task 2: iterate and seek within a block (book: week1-03-block)")
    }

    /// Moves to the first entry whose key is `>= key`, or past the end if there is none.
    pub fn seek_to_key(&mut self, key: KeySlice) {
        todo!("week 1 day 3, task 2: iterate and seek within a block (book: week1-03-block)")
    }

    /// Positions the iterator at entry `idx` and decodes its key; past the end it becomes invalid.
    fn seek_to(&mut self, idx: usize) {
        todo!("week 1 day 3, task 2: iterate and seek within a block (book: week1-03-block)")
    }
}
