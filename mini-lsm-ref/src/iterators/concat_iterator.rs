// SPDX-License-Identifier: Apache-2.0
//! Iterating over a sorted run: SSTs sorted by key whose key ranges do not overlap.
//!
//! Below L0 every level (and, with tiered compaction, every tier) is a sorted run, so it needs no
//! merge at all: its entries are those of its first SST, then those of its second, and so on. The
//! concat iterator holds the tables but opens only one at a time, when it gets there, so a scan
//! that stops early never reads a block of the SSTs after it.
//!
//! ```text
//!   run:     [a .. f] [g .. m] [p .. z]       first/last keys in memory, blocks on disk
//!   seek(h):           ^ the first SST whose last key is >= h: binary search on last keys
//!   next() past m:              ^ opened only now
//! ```
//!
//! Invariant: `current` is `None` or a valid iterator over `sstables[next_sst_idx - 1]`; `None`
//! exactly when the run is exhausted.

use std::sync::Arc;

use anyhow::{ensure, Result};

use super::StorageIterator;
use crate::key::KeySlice;
use crate::merge::ValueKind;
use crate::table::{SsTable, SsTableIterator};

/// A cursor over a sorted run of SSTs, opening one SST at a time.
pub struct SstConcatIterator {
    /// The iterator over the SST being read; `None` once the run is exhausted.
    current: Option<SsTableIterator>,
    /// The SST to open when `current` runs out.
    next_sst_idx: usize,
    sstables: Vec<Arc<SsTable>>,
}

/// Checks the precondition of a run: each SST ends before the next one starts.
fn check_sorted_run(sstables: &[Arc<SsTable>]) -> Result<()> {
    for pair in sstables.windows(2) {
        ensure!(
            pair[0].last_key() < pair[1].first_key(),
            "SSTs {} ({:?}..={:?}) and {} ({:?}..={:?}) of a sorted run overlap or are out of order",
            pair[0].sst_id(),
            pair[0].first_key(),
            pair[0].last_key(),
            pair[1].sst_id(),
            pair[1].first_key(),
            pair[1].last_key()
        );
    }
    Ok(())
}

impl SstConcatIterator {
    // ANCHOR: concat_create
    /// Creates an iterator at the first entry of the run. `sstables` must be sorted by key with
    /// no overlap; an empty run gives an iterator that is not valid.
    ///
    /// # Errors
    /// If the SSTs overlap or are out of order, or the first block cannot be read.
    pub fn create_and_seek_to_first(sstables: Vec<Arc<SsTable>>) -> Result<Self> {
        // @task week2_day1 1
        check_sorted_run(&sstables)?;
        let mut iter = Self {
            current: None,
            next_sst_idx: 0,
            sstables,
        };
        iter.open_next_until_valid()?;
        Ok(iter)
        // @end
    }

    /// Creates an iterator at the first entry whose key is `>= key`. Only the one SST that can
    /// hold such a key is opened: the first whose last key is `>= key`.
    ///
    /// # Errors
    /// As [`Self::create_and_seek_to_first`].
    pub fn create_and_seek_to_key(sstables: Vec<Arc<SsTable>>, key: KeySlice) -> Result<Self> {
        // @task week2_day1 1
        check_sorted_run(&sstables)?;
        let idx = sstables.partition_point(|table| table.last_key().as_key_slice() < key);
        let mut iter = Self {
            current: None,
            next_sst_idx: idx,
            sstables,
        };
        if let Some(table) = iter.sstables.get(idx) {
            iter.current = Some(SsTableIterator::create_and_seek_to_key(
                Arc::clone(table),
                key,
            )?);
            iter.next_sst_idx = idx + 1;
        }
        // The SST's last key is >= key, so the seek lands inside it; this only guards the
        // invariant should a table ever be empty.
        iter.open_next_until_valid()?;
        Ok(iter)
        // @end
    }
    // ANCHOR_END: concat_create

    // ANCHOR: concat_open_next
    /// Opens the following SSTs while the current one has no entry left.
    fn open_next_until_valid(&mut self) -> Result<()> {
        // @task week2_day1 1
        while !self.current.as_ref().is_some_and(|iter| iter.is_valid()) {
            let Some(table) = self.sstables.get(self.next_sst_idx) else {
                self.current = None;
                return Ok(());
            };
            self.current = Some(SsTableIterator::create_and_seek_to_first(Arc::clone(
                table,
            ))?);
            self.next_sst_idx += 1;
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: concat_open_next
}

impl StorageIterator for SstConcatIterator {
    type KeyType<'a> = KeySlice<'a>;

    fn key(&self) -> KeySlice<'_> {
        self.current.as_ref().expect("requires is_valid()").key()
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().expect("requires is_valid()").value()
    }

    fn value_kind(&self) -> ValueKind {
        self.current
            .as_ref()
            .expect("requires is_valid()")
            .value_kind()
    }

    fn is_valid(&self) -> bool {
        // @task week2_day1 1
        self.current.is_some()
        // @end
    }

    fn next(&mut self) -> Result<()> {
        // @task week2_day1 1
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        current.next()?;
        self.open_next_until_valid()
        // @end
    }

    /// One while the run has entries left (it reads one SST at a time), zero after.
    fn num_active_iterators(&self) -> usize {
        // @task week2_day1 1
        usize::from(self.current.is_some())
        // @end
    }
}
