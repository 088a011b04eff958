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

    // ANCHOR: sst_seek_to_first
    /// Moves to the table's first entry.
    ///
    /// # Errors
    /// If the first block cannot be read.
    pub fn seek_to_first(&mut self) -> Result<()> {
        // @task week1_day4 3
        self.blk_idx = 0;
        let block = self.table.read_block_cached(0)?;
        self.blk_iter = Some(BlockIterator::create_and_seek_to_first(block));
        Ok(())
        // @end
    }
    // ANCHOR_END: sst_seek_to_first

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

    // ANCHOR: sst_seek
    /// Moves to the first entry whose key is `>= key`; invalid if every key is smaller.
    ///
    /// # Errors
    /// If a block cannot be read.
    pub fn seek_to_key(&mut self, key: KeySlice) -> Result<()> {
        // @task week1_day4 3
        self.blk_idx = self.table.find_block_idx(key);
        if self.blk_idx >= self.table.num_of_blocks() {
            self.blk_iter = None;
            return Ok(());
        }
        let block = self.table.read_block_cached(self.blk_idx)?;
        self.blk_iter = Some(BlockIterator::create_and_seek_to_key(block, key));
        // The block's last key is >= key, so the seek always lands inside it.
        Ok(())
        // @end
    }
    // ANCHOR_END: sst_seek
}

// ANCHOR: sst_iter_impl
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
        // @task week1_day4 3
        self.blk_iter.as_ref().is_some_and(|it| it.is_valid())
        // @end
    }

    fn next(&mut self) -> Result<()> {
        // @task week1_day4 3
        let Some(blk_iter) = self.blk_iter.as_mut() else {
            return Ok(());
        };
        blk_iter.next();
        if !blk_iter.is_valid() {
            self.blk_idx += 1;
            self.blk_iter = if self.blk_idx < self.table.num_of_blocks() {
                let block = self.table.read_block_cached(self.blk_idx)?;
                Some(BlockIterator::create_and_seek_to_first(block))
            } else {
                None
            };
        }
        Ok(())
        // @end
    }
}
// ANCHOR_END: sst_iter_impl
