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
    /// Creates an iterator at the first entry of the run. `sstables` must be sorted by key with
    /// no overlap; an empty run gives an iterator that is not valid.
    ///
    /// # Errors
    /// If the SSTs overlap or are out of order, or the first block cannot be read.
    pub fn create_and_seek_to_first(sstables: Vec<Arc<SsTable>>) -> Result<Self> {
        todo!("week 2 day 1, task 1: iterate over a sorted run of SSTs, opening one SST at a time (book: week2-01-compaction)")
    }

    /// Creates an iterator at the first entry whose key is `>= key`. Only the one SST that can
    /// hold such a key is opened: the first whose last key is `>= key`.
    ///
    /// # Errors
    /// As [`Self::create_and_seek_to_first`].
    pub fn create_and_seek_to_key(sstables: Vec<Arc<SsTable>>, key: KeySlice) -> Result<Self> {
        todo!("week 2 day 1, task 1: iterate over a sorted run of SSTs, opening one SST at a time (book: week2-01-compaction)")
    }

    /// Opens the following SSTs while the current one has no entry left.
    fn open_next_until_valid(&mut self) -> Result<()> {
        todo!("week 2 day 1, task 1: iterate over a sorted run of SSTs, opening one SST at a time (book: week2-01-compaction)")
    }
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
        todo!("week 2 day 1, task 1: iterate over a sorted run of SSTs, opening one SST at a time (book: week2-01-compaction)")
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 2 day 1, task 1: iterate over a sorted run of SSTs, opening one SST at a time (book: week2-01-compaction)")
    }

    /// One while the run has entries left (it reads one SST at a time), zero after.
    fn num_active_iterators(&self) -> usize {
        todo!("week 2 day 1, task 1: iterate over a sorted run of SSTs, opening one SST at a time (book: week2-01-compaction)")
    }
}
