// SPDX-License-Identifier: Apache-2.0
//! A cursor over an SST: a block iterator that moves on to the next block when one runs out.

use std::sync::Arc;

use anyhow::Result;

use super::SsTable;
use crate::block::BlockIterator;
use crate::iterators::StorageIterator;
use crate::key::KeySlice;
use crate::merge::ValueKind;

/// Iterates over an SST's entries in key order, reading one block at a time.
pub struct SsTableIterator {
    table: Arc<SsTable>,
    /// The iterator over block `blk_idx`; `None` once past the last block.
    blk_iter: Option<BlockIterator>,
    blk_idx: usize,
}

impl SsTableIterator {
    /// Creates an iterator at the table's first entry.
    ///
    /// # Errors
    /// If the first block cannot be read.
    pub fn create_and_seek_to_first(table: Arc<SsTable>) -> Result<Self> {
        let mut iter = Self {
            table,
            blk_iter: None,
            blk_idx: 0,
        };
        iter.seek_to_first()?;
        Ok(iter)
    }

    /// Moves to the table's first entry.
    ///
    /// # Errors
    /// If the first block cannot be read.
    pub fn seek_to_first(&mut self) -> Result<()> {
        todo!("week 1 day 4, task 3: iterate and seek across the blocks of an SST (book: week1-04-sst)")
    }

    /// Creates an iterator at the first entry whose key is `>= key`.
    ///
    /// # Errors
    /// If a block cannot be read.
    pub fn create_and_seek_to_key(table: Arc<SsTable>, key: KeySlice) -> Result<Self> {
        let mut iter = Self {
            table,
            blk_iter: None,
            blk_idx: 0,
        };
        iter.seek_to_key(key)?;
        Ok(iter)
    }

    /// Moves to the first entry whose key is `>= key`; invalid if every key is smaller.
    ///
    /// # Errors
    /// If a block cannot be read.
    pub fn seek_to_key(&mut self, key: KeySlice) -> Result<()> {
        todo!("week 1 day 4, task 3: iterate and seek across the blocks of an SST (book: week1-04-sst)")
    }
}

impl StorageIterator for SsTableIterator {
    type KeyType<'a> = KeySlice<'a>;

    fn value(&self) -> &[u8] {
        self.blk_iter.as_ref().expect("requires is_valid()").value()
    }

    fn key(&self) -> KeySlice<'_> {
        self.blk_iter.as_ref().expect("requires is_valid()").key()
    }

    fn value_kind(&self) -> ValueKind {
        self.blk_iter
            .as_ref()
            .expect("requires is_valid()")
            .value_kind()
    }

    fn is_valid(&self) -> bool {
        todo!("week 1 day 4, task 3: iterate and seek across the blocks of an SST (book: week1-04-sst)")
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 1 day 4, task 3: iterate and seek across the blocks of an SST (book: week1-04-sst)")
    }
}
