// SPDX-License-Identifier: Apache-2.0
//! Building a block, entry by entry, up to a target size.

use bytes::BufMut;

use crate::key::{KeySlice, KeyVec};
use crate::merge::ValueKind;

use super::{encode_key, Block, BlockTimestamps, SIZEOF_U16};

// ANCHOR: block_builder_struct
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
// ANCHOR_END: block_builder_struct

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

    // ANCHOR: block_builder_add
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
        // @task week1_day3 1
        assert!(
            key.len() <= u16::MAX as usize && value.len() <= u16::MAX as usize,
            "keys and values are limited to 65535 bytes"
        );
        let start = self.data.len();
        encode_key(&mut self.data, self.first_key.raw_ref(), key.raw_ref());
        self.data.put_u16(value.len() as u16);
        self.data.extend_from_slice(value);
        // The encoded block is the entries, one offset per entry and the count.
        let encoded_size = self.data.len() + (self.offsets.len() + 2) * SIZEOF_U16;
        // @task week3_day1 1 stub=comment
        // ... and the timestamp column, as small as it can be, and its kind.
        let (min, max) = (self.ts_range.0.min(key.ts()), self.ts_range.1.max(key.ts()));
        let column = BlockTimestamps::column_len(self.timestamps.len() + 1, min, max);
        let encoded_size = encoded_size + column + 1;
        // @end
        // @task week4_day6 1 stub=comment
        // ... and the kind column, if the block holds an operand.
        let has_merge = self.has_merge || kind == ValueKind::Merge;
        let encoded_size = encoded_size + if has_merge { self.kinds.len() + 1 } else { 0 };
        // @end
        if !self.is_empty() && encoded_size > self.block_size {
            self.data.truncate(start);
            return false;
        }
        if self.is_empty() {
            self.first_key = key.to_key_vec();
        }
        self.offsets.push(start as u16);
        // @task week3_day1 1 stub=comment
        self.timestamps.push(key.ts());
        self.ts_range = (min, max);
        // @end
        // @task week4_day6 1 stub=comment
        self.kinds.push(match kind {
            ValueKind::Merge => ValueKind::Merge,
            _ => ValueKind::of_value(value),
        });
        self.has_merge = has_merge;
        // @end
        true
        // @end
    }
    // ANCHOR_END: block_builder_add

    /// Whether no entry has been added.
    pub fn is_empty(&self) -> bool {
        // @task week1_day3 1
        self.offsets.is_empty()
        // @end
    }

    /// Finishes the block.
    pub fn build(self) -> Block {
        // @task week1_day3 1
        Block {
            data: self.data,
            offsets: self.offsets,
            // @task week3_day1 1
            timestamps: BlockTimestamps::of(self.timestamps),
            // @stub
            // timestamps: BlockTimestamps::default(),
            // @end
            // @task week4_day6 1
            kinds: if self.has_merge {
                self.kinds
            } else {
                Vec::new()
            },
            // @stub
            // kinds: Vec::new(),
            // @end
        }
        // @end
    }
}
