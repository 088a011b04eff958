// SPDX-License-Identifier: Apache-2.0
//! Building a block, entry by entry, up to a target size.

use bytes::BufMut;

use crate::key::{KeySlice, KeyVec};
use crate::merge::ValueKind;

use super::{encode_key, Block, BlockTimestamps, SIZEOF_U16};

/// Builds a [`Block`] from entries added in key order.
pub struct BlockBuilder {
    /// Where each entry starts in `data`.
    offsets: Vec<u16>,
    /// The encoded entries.
    data: Vec<u8>,
    /// The target size of the encoded block, in bytes.
    block_size: usize,
    /// The key of entry 0; later keys are encoded against it.
    first_key: KeyVec,
    /// Each entry's timestamp (week 3), and the smallest and largest: they decide how the block
    /// stores them.
    timestamps: Vec<u64>,
    ts_range: (u64, u64),
    /// Each entry's kind (week 4 day 6), and whether one is a merge operand: only then does the
    /// block store them.
    kinds: Vec<ValueKind>,
    has_merge: bool,
}

impl BlockBuilder {
    /// An empty builder aiming at blocks of `block_size` bytes (at most 65535).
    pub fn new(block_size: usize) -> Self {
        Self {
            offsets: Vec::new(),
            data: Vec::new(),
            block_size,
            first_key: KeyVec::new(),
            timestamps: Vec::new(),
            ts_range: (u64::MAX, 0),
            kinds: Vec::new(),
            has_merge: false,
        }
    }

    /// Appends an entry. Keys must come in increasing order.
    ///
    /// Returns `false`, and adds nothing, when the entry would take the encoded block past its
    /// target size; the first entry is always accepted, however large, so that no entry is ever
    /// impossible to store.
    ///
    /// # Panics
    /// If the key or value is longer than 65535 bytes (the engine rejects such writes earlier).
    pub fn add(&mut self, key: KeySlice, value: &[u8]) -> bool {
        self.add_with_kind(key, value, ValueKind::of_value(value))
    }

    /// Appends an entry of kind `kind` (week 4 day 6), as [`Self::add`] does a put or, for an
    /// empty value, a tombstone. An empty put is stored as the tombstone it reads as.
    ///
    /// # Panics
    /// As [`Self::add`].
    pub fn add_with_kind(&mut self, key: KeySlice, value: &[u8], kind: ValueKind) -> bool {
        todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
    }

    /// Whether no entry has been added.
    pub fn is_empty(&self) -> bool {
        todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
    }

    /// Finishes the block.
    pub fn build(self) -> Block {
        todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
    }
}
