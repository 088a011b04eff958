// SPDX-License-Identifier: Apache-2.0
//! The read path: point lookups and scans over the memtables, the L0 SSTs and, from week 2, the
//! levels below L0, newest first.
//!
//! A level is a sorted run, so at most one of its SSTs can hold a key: `get` finds it by binary
//! search on the last keys, and a scan reads a level through one [`SstConcatIterator`] over the
//! SSTs whose key range meets the scan's.

use std::ops::Bound;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;

use super::{LsmStorageInner, LsmStorageState};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::merge_iterator::MergeIterator;
use crate::iterators::two_merge_iterator::TwoMergeIterator;
use crate::iterators::visible_iterator::VisibleIterator;
use crate::iterators::StorageIterator;
use crate::key::{KeyBytes, KeySlice, TS_RANGE_BEGIN, TS_RANGE_END};
use crate::lsm_iterator::{FusedIterator, LsmIterator};
use crate::mem_table::{map_bound, MemTableIterator};
use crate::merge::ValueKind;
use crate::table::bloom::key_hash;
use crate::table::{SsTable, SsTableIterator};

/// A stored value as the user sees it: a tombstone (the empty value) means "no value".
fn live(value: Bytes) -> Option<Bytes> {
    (!value.is_empty()).then_some(value)
}

/// Whether `key` lies within a table's key range, so that the table may hold it.
fn key_within(table: &SsTable, key: &[u8]) -> bool {
    todo!("week 1 day 6, task 3: skip SSTs whose key range cannot match, and count active iterators (book: week1-06-write-path)")
}

/// Whether the user range `lower..upper` meets the table range `first..=last`.
fn range_overlap(
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    first: &KeyBytes,
    last: &KeyBytes,
) -> bool {
    todo!("week 1 day 6, task 3: skip SSTs whose key range cannot match, and count active iterators (book: week1-06-write-path)")
}

/// An iterator over `source` positioned at the first key within the lower bound `lower`.
///
/// One helper for every iterator over SSTs: `to_first` and `to_key` are the iterator's two
/// constructors (`create_and_seek_to_first`, `create_and_seek_to_key`), for one SST
/// ([`seek_table`]) or, from week 2, a sorted run of them ([`seek_run`]).
fn seek_lower<S, I>(
    source: S,
    lower: Bound<&[u8]>,
    to_first: impl FnOnce(S) -> Result<I>,
    to_key: impl FnOnce(S, KeySlice) -> Result<I>,
) -> Result<I>
where
    I: for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>,
{
    todo!("week 1 day 5, task 3: scan the L0 SSTs together with the memtables (book: week1-05-read-path)")
}

/// An iterator over `table` positioned at the first key within `lower`.
fn seek_table(table: Arc<SsTable>, lower: Bound<&[u8]>) -> Result<SsTableIterator> {
    seek_lower(
        table,
        lower,
        SsTableIterator::create_and_seek_to_first,
        SsTableIterator::create_and_seek_to_key,
    )
}

/// A concat iterator over a sorted run of `tables`, positioned at the first key within `lower`.
fn seek_run(tables: Vec<Arc<SsTable>>, lower: Bound<&[u8]>) -> Result<SstConcatIterator> {
    todo!("week 2 day 1, task 5: read through the levels in get and scan, skipping SSTs out of range (book: week2-01-compaction)")
}

/// The merge of every level of `snapshot` over `lower..upper`, top level (newest) first; each
/// level reads only its SSTs whose key range meets the range.
fn levels_iter(
    snapshot: &LsmStorageState,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Result<MergeIterator<SstConcatIterator>> {
    todo!("week 2 day 1, task 5: read through the levels in get and scan, skipping SSTs out of range (book: week2-01-compaction)")
}

/// The SST of the sorted run `ids` that may hold `key`: the first whose last key is `>= key`,
/// if its first key is `<= key` too.
fn table_in_run<'a>(
    snapshot: &'a LsmStorageState,
    ids: &[usize],
    key: &[u8],
) -> Result<Option<&'a Arc<SsTable>>> {
    todo!("week 2 day 1, task 5: read through the levels in get and scan, skipping SSTs out of range (book: week2-01-compaction)")
}

/// The merge of every memtable in `snapshot` over `lower..upper`, newest first.
fn memtables_iter(
    snapshot: &LsmStorageState,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> MergeIterator<MemTableIterator> {
    todo!("week 1 day 2, task 4: scan the engine across every memtable (book: week1-02-merge-iterator)")
}

/// The smallest key greater than every key that starts with `prefix`, if there is one: the prefix
/// with its last byte below 0xff incremented, and what follows that byte dropped.
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    todo!("week 1 day 6, task 5: scan by key prefix (book: week1-06-write-path)")
}

impl LsmStorageInner {
    /// The timestamp a read of the state `snapshot`, just loaded, reads at: the latest commit.
    ///
    /// Loaded *after* the state, never before. A compaction in that state collapsed each key's
    /// versions up to a watermark it read before it was installed, so at most this timestamp:
    /// every version it dropped is shadowed by one this reader sees. Read the timestamp first,
    /// and a compaction that starts after it (with a later watermark) could drop the version this
    /// reader needs before the reader loads the state. A commit published after the state was
    /// loaded may be in a memtable the state does not have; the read then sees the commits up to
    /// an earlier timestamp, which is still a consistent cut: commits enter memtables in
    /// timestamp order, and a batch is wholly in one.
    pub(crate) fn read_ts_after(&self, _snapshot: &LsmStorageState) -> u64 {
        self.mvcc.latest_commit_ts()
    }

    /// Returns the value of `key`, or `None` if it was never written or was deleted.
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        // TODO(week 3 day 3, task 3: read at the latest commit timestamp, and recover it at open (book: week3-03-commit-timestamps))
        let value = self.get_in(&self.snapshot(), key, TS_RANGE_BEGIN)?;
        // TODO(week 4 day 7, task 2: count gets and scans, and the user bytes they hand back (book: week4-07-metrics))
        Ok(value)
    }

    /// Returns the value of `key` as of `read_ts`: its newest version with a timestamp at most
    /// `read_ts`, or `None` if there is none or that version is a tombstone (week 3).
    ///
    /// A compaction may have dropped versions that only a reader below the watermark would see
    /// (see [`crate::mvcc`]): `read_ts` must be at or above it, as every timestamp the engine
    /// publishes and every live snapshot's is.
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn get_with_ts(&self, key: &[u8], read_ts: u64) -> Result<Option<Bytes>> {
        let value = self.get_in(&self.snapshot(), key, read_ts)?;
        // TODO(week 4 day 7, task 2: count gets and scans, and the user bytes they hand back (book: week4-07-metrics))
        Ok(value)
    }

    /// Returns the value of `key` in the state `snapshot`, as of `read_ts` (timestamps come in
    /// week 3: until week 3 day 2 the argument is ignored, and `TS_RANGE_BEGIN` sees every
    /// version).
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub(crate) fn get_in(
        &self,
        snapshot: &LsmStorageState,
        key: &[u8],
        read_ts: u64,
    ) -> Result<Option<Bytes>> {
        todo!("week 1 day 1, task 4: read through every memtable, newest first (book: week1-01-memtable)")
    }

    /// Returns the value of `key` as of `read_ts` in the state `snapshot` when its newest visible
    /// version is a merge operand (week 4 day 6): the fold of its operands, read through a scan
    /// of the one key, whose visible iterator folds (see [`crate::merge`]). Slower than `get`'s
    /// lookups (no bloom filter, every source that may hold the key), and only for such keys.
    ///
    /// # Errors
    /// As [`Self::get`], and if the fold fails.
    fn get_folded(
        &self,
        snapshot: &LsmStorageState,
        key: &[u8],
        read_ts: u64,
    ) -> Result<Option<Bytes>> {
        todo!("week 4 day 6, task 2: fold a key's operands down to a put or a tombstone when a read lands on one: get, scans, snapshots (book: week4-06-merge-operator)")
    }

    /// Returns an iterator over the live entries with keys in `lower..upper`, in key order.
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<FusedIterator<LsmIterator>> {
        // TODO(week 3 day 3, task 3: read at the latest commit timestamp, and recover it at open (book: week3-03-commit-timestamps))
        let iter = self.scan_in(&self.snapshot(), lower, upper, TS_RANGE_BEGIN)?;
        // TODO(week 4 day 7, task 2: count gets and scans, and the user bytes they hand back (book: week4-07-metrics))
        Ok(iter)
    }

    /// Returns an iterator over the entries with keys in `lower..upper` as of `read_ts`: of each
    /// key its newest version at or before `read_ts`, unless that is a tombstone (week 3).
    /// `read_ts` must be at or above the watermark, as for [`Self::get_with_ts`].
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn scan_with_ts(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        read_ts: u64,
    ) -> Result<FusedIterator<LsmIterator>> {
        let iter = self.scan_in(&self.snapshot(), lower, upper, read_ts)?;
        // TODO(week 4 day 7, task 2: count gets and scans, and the user bytes they hand back (book: week4-07-metrics))
        Ok(iter)
    }

    /// Returns an iterator over the entries with keys in `lower..upper` in the state `snapshot`,
    /// as of `read_ts` (timestamps come in week 3: until week 3 day 2 the argument is ignored, and
    /// `TS_RANGE_BEGIN` sees every version).
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub(crate) fn scan_in(
        &self,
        snapshot: &LsmStorageState,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        read_ts: u64,
    ) -> Result<FusedIterator<LsmIterator>> {
        todo!("week 1 day 2, task 4: scan the engine across every memtable (book: week1-02-merge-iterator)")
    }

    /// Returns the value of `key` as of `ts`, an older commit timestamp (time travel, week 3 day
    /// 7): what `get` returned right after the commit at `ts`.
    ///
    /// # Errors
    /// As [`Self::new_snapshot_at`] if `ts` cannot be read (below the watermark, above the latest
    /// commit); as [`Self::get`].
    pub fn get_at(&self, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        self.new_snapshot_at(ts)?.get(key)
    }

    /// Returns an iterator over the live entries with keys in `lower..upper` as of `ts`, an older
    /// commit timestamp (time travel, week 3 day 7). The iterator holds what it reads: it may
    /// live on after the watermark passes `ts`.
    ///
    /// # Errors
    /// As [`Self::get_at`].
    pub fn scan_at(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        ts: u64,
    ) -> Result<FusedIterator<LsmIterator>> {
        self.new_snapshot_at(ts)?.scan(lower, upper)
    }

    /// Returns an iterator over the live entries whose keys start with `prefix`. SSTs whose key
    /// range cannot hold such a key are not read.
    ///
    /// # Errors
    /// As [`Self::scan`].
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<FusedIterator<LsmIterator>> {
        todo!("week 1 day 6, task 5: scan by key prefix (book: week1-06-write-path)")
    }
}
