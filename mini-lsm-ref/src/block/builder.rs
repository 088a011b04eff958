// SPDX-License-Identifier: Apache-2.0
//! Building a block, entry by entry, up to a target size.

use bytes::BufMut;

use crate::key::{KeySlice, KeyVec};

use super::{encode_key, Block, SIZEOF_U16};

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
        if !self.is_empty() && encoded_size > self.block_size {
            self.data.truncate(start);
            return false;
        }
        if self.is_empty() {
            self.first_key = key.to_key_vec();
        }
        self.offsets.push(start as u16);
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
        }
        // @end
    }
}
