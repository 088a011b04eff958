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

// ANCHOR: range_filter
/// Whether `key` lies within a table's key range, so that the table may hold it.
fn key_within(table: &SsTable, key: &[u8]) -> bool {
    // @task week1_day6 3
    table.first_key().raw_ref() <= key && key <= table.last_key().raw_ref()
    // @end
}

/// Whether the user range `lower..upper` meets the table range `first..=last`.
fn range_overlap(
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    first: &KeyBytes,
    last: &KeyBytes,
) -> bool {
    // @task week1_day6 3
    let (first, last) = (first.raw_ref(), last.raw_ref());
    let starts_after_range = match upper {
        Bound::Included(upper) => first > upper,
        Bound::Excluded(upper) => first >= upper,
        Bound::Unbounded => false,
    };
    let ends_before_range = match lower {
        Bound::Included(lower) => last < lower,
        Bound::Excluded(lower) => last <= lower,
        Bound::Unbounded => false,
    };
    !starts_after_range && !ends_before_range
    // @end
}
// ANCHOR_END: range_filter

// ANCHOR: seek_table
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
    // @task week1_day5 3
    let (key, exclusive) = match lower {
        Bound::Unbounded => return to_first(source),
        Bound::Included(key) => (key, false),
        Bound::Excluded(key) => (key, true),
    };
    // @task week3_day1 3
    // A key's versions lie from (key, TS_RANGE_BEGIN), the newest, to (key, TS_RANGE_END). An
    // included bound starts at the newest; an excluded one rules out every version, not just one.
    let ts = if exclusive {
        TS_RANGE_END
    } else {
        TS_RANGE_BEGIN
    };
    let mut iter = to_key(source, KeySlice::from_slice_ts(key, ts))?;
    while exclusive && iter.is_valid() && iter.key().key_ref() == key {
        iter.next()?;
    }
    // @or week1_day5 3
    // // The seek lands on the first key `>= key`; an excluded bound also rules out `key` itself.
    // let mut iter = to_key(source, KeySlice::from_slice(key))?;
    // if exclusive && iter.is_valid() && iter.key().raw_ref() == key {
    //     iter.next()?;
    // }
    // @end
    Ok(iter)
    // @end
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
// ANCHOR_END: seek_table

// ANCHOR: read_levels
/// A concat iterator over a sorted run of `tables`, positioned at the first key within `lower`.
fn seek_run(tables: Vec<Arc<SsTable>>, lower: Bound<&[u8]>) -> Result<SstConcatIterator> {
    // @task week2_day1 5
    // The seek of day 5, given the concat iterator's constructors.
    seek_lower(
        tables,
        lower,
        SstConcatIterator::create_and_seek_to_first,
        SstConcatIterator::create_and_seek_to_key,
    )
    // @end
}

/// The merge of every level of `snapshot` over `lower..upper`, top level (newest) first; each
/// level reads only its SSTs whose key range meets the range.
fn levels_iter(
    snapshot: &LsmStorageState,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Result<MergeIterator<SstConcatIterator>> {
    // @task week2_day1 5
    let mut runs = Vec::with_capacity(snapshot.levels.len());
    for (_, ids) in &snapshot.levels {
        let mut tables = Vec::new();
        for id in ids {
            let table = snapshot.table(*id)?;
            if range_overlap(lower, upper, table.first_key(), table.last_key()) {
                tables.push(Arc::clone(table));
            }
        }
        runs.push(Box::new(seek_run(tables, lower)?));
    }
    Ok(MergeIterator::create(runs))
    // @end
}

/// The SST of the sorted run `ids` that may hold `key`: the first whose last key is `>= key`,
/// if its first key is `<= key` too.
fn table_in_run<'a>(
    snapshot: &'a LsmStorageState,
    ids: &[usize],
    key: &[u8],
) -> Result<Option<&'a Arc<SsTable>>> {
    // @task week2_day1 5
    let (mut lo, mut hi) = (0, ids.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if snapshot.table(ids[mid])?.last_key().raw_ref() < key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    match ids.get(lo) {
        Some(id) => {
            let table = snapshot.table(*id)?;
            Ok(key_within(table, key).then_some(table))
        }
        None => Ok(None),
    }
    // @end
}
// ANCHOR_END: read_levels

/// The merge of every memtable in `snapshot` over `lower..upper`, newest first.
fn memtables_iter(
    snapshot: &LsmStorageState,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> MergeIterator<MemTableIterator> {
    // @task week1_day2 4
    let memtables = std::iter::once(&snapshot.memtable).chain(snapshot.imm_memtables.iter());
    MergeIterator::create(
        memtables
            .map(|memtable| Box::new(memtable.scan(lower, upper)))
            .collect(),
    )
    // @end
}

// ANCHOR: prefix_upper_bound
/// The smallest key greater than every key that starts with `prefix`, if there is one: the prefix
/// with its last byte below 0xff incremented, and what follows that byte dropped.
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    // @task week1_day6 5
    let last = prefix.iter().rposition(|&b| b != u8::MAX)?;
    let mut upper = prefix[..=last].to_vec();
    upper[last] += 1;
    Some(upper)
    // @end
}
// ANCHOR_END: prefix_upper_bound

impl LsmStorageInner {
    // ANCHOR: read_ts_after
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
    // ANCHOR_END: read_ts_after

    // ANCHOR: get
    // ANCHOR: get_latest
    /// Returns the value of `key`, or `None` if it was never written or was deleted.
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        // @task week3_day3 3 stub=oldest
        // The state first, then the timestamp (see `read_ts_after`).
        let snapshot = self.snapshot();
        let read_ts = self.read_ts_after(&snapshot);
        let value = self.get_in(&snapshot, key, read_ts)?;
        // @or week1_day1 4
        // let value = self.get_in(&self.snapshot(), key, TS_RANGE_BEGIN)?;
        // @end
        // @task week4_day7 2 stub=comment
        self.metrics.record_get(value.as_deref());
        // @end
        Ok(value)
    }
    // ANCHOR_END: get_latest

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
        // @task week4_day7 2 stub=comment
        self.metrics.record_get(value.as_deref());
        // @end
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
        // @task week1_day1 4
        let memtables = std::iter::once(&snapshot.memtable).chain(snapshot.imm_memtables.iter());
        for memtable in memtables {
            // @task week4_day6 2
            if let Some((value, kind)) = memtable.get_kind_at(key, read_ts) {
                if kind == ValueKind::Merge {
                    return self.get_folded(snapshot, key, read_ts);
                }
                return Ok(live(value));
            }
            // @or week3_day2 3
            // let found = memtable.get_at(key, read_ts);
            // if let Some(value) = found {
            //     return Ok(live(value));
            // }
            // @stub
            // let found = memtable.get(key);
            // if let Some(value) = found {
            //     return Ok(live(value));
            // }
            // @end
        }
        // @task week1_day5 2 stub=comment
        // @task week3_day2 3
        // The seek lands on the newest version at or before `read_ts`, if the table has one.
        let key_slice = KeySlice::from_slice_ts(key, read_ts);
        // @stub
        // let key_slice = KeySlice::from_slice(key);
        // @end
        // @task week1_day7 2 stub=comment
        let hash = key_hash(key);
        // @end
        for id in &snapshot.l0_sstables {
            let table = snapshot.table(*id)?;
            // @task week1_day6 3 stub=comment
            if !key_within(table, key) {
                continue;
            }
            // @end
            // @task week1_day7 2 stub=comment
            if table.bloom_excludes_hash(hash) {
                continue;
            }
            // @end
            let iter = SsTableIterator::create_and_seek_to_key(table.clone(), key_slice)?;
            if iter.is_valid() && iter.key().raw_ref() == key {
                // @task week4_day6 2 stub=comment
                if iter.value_kind() == ValueKind::Merge {
                    return self.get_folded(snapshot, key, read_ts);
                }
                // @end
                return Ok(live(Bytes::copy_from_slice(iter.value())));
            }
        }
        // @task week2_day1 5 stub=comment
        // Then the levels, top (newest) first; in each, at most one SST can hold the key.
        for (_, ids) in &snapshot.levels {
            let Some(table) = table_in_run(snapshot, ids, key)? else {
                continue;
            };
            if table.bloom_excludes_hash(hash) {
                continue;
            }
            let iter = SsTableIterator::create_and_seek_to_key(table.clone(), key_slice)?;
            if iter.is_valid() && iter.key().raw_ref() == key {
                // @task week4_day6 2 stub=comment
                if iter.value_kind() == ValueKind::Merge {
                    return self.get_folded(snapshot, key, read_ts);
                }
                // @end
                return Ok(live(Bytes::copy_from_slice(iter.value())));
            }
        }
        // @end
        // @end
        Ok(None)
        // @end
    }
    // ANCHOR_END: get

    // ANCHOR: get_folded
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
        // @task week4_day6 2
        let bound = Bound::Included(key);
        let iter = self.scan_in(snapshot, bound, bound, read_ts)?;
        Ok((iter.is_valid() && iter.key() == key).then(|| Bytes::copy_from_slice(iter.value())))
        // @end
    }
    // ANCHOR_END: get_folded

    // ANCHOR: scan
    // ANCHOR: scan_latest
    /// Returns an iterator over the live entries with keys in `lower..upper`, in key order.
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<FusedIterator<LsmIterator>> {
        // @task week3_day3 3 stub=oldest
        // The state first, then the timestamp (see `read_ts_after`).
        let snapshot = self.snapshot();
        let read_ts = self.read_ts_after(&snapshot);
        let iter = self.scan_in(&snapshot, lower, upper, read_ts)?;
        // @or week1_day2 4
        // let iter = self.scan_in(&self.snapshot(), lower, upper, TS_RANGE_BEGIN)?;
        // @end
        // @task week4_day7 2 stub=comment
        let iter = self.metrics.count_scan(iter);
        // @end
        Ok(iter)
    }
    // ANCHOR_END: scan_latest

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
        // @task week4_day7 2 stub=comment
        let iter = self.metrics.count_scan(iter);
        // @end
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
        // @task week1_day5 3
        let memtables = memtables_iter(snapshot, lower, upper);
        let mut tables = Vec::with_capacity(snapshot.l0_sstables.len());
        for id in &snapshot.l0_sstables {
            let table = snapshot.table(*id)?;
            // @task week1_day6 3 stub=comment
            if !range_overlap(lower, upper, table.first_key(), table.last_key()) {
                continue;
            }
            // @end
            tables.push(Box::new(seek_table(table.clone(), lower)?));
        }
        let inner = TwoMergeIterator::create(memtables, MergeIterator::create(tables))?;
        // @task week2_day1 5 stub=comment
        let inner = TwoMergeIterator::create(inner, levels_iter(snapshot, lower, upper)?)?;
        // @end
        // @task week3_day2 2 stub=comment
        // @task week4_day6 2
        let operator = self.options.merge_operator.clone();
        let inner = VisibleIterator::with_merge_operator(inner, read_ts, operator)?;
        // @or week3_day2 2
        // let inner = VisibleIterator::new(inner, read_ts)?;
        // @end
        // @end
        Ok(FusedIterator::new(LsmIterator::new(
            inner,
            map_bound(upper),
        )?))
        // @or week1_day2 4
        // let memtables = memtables_iter(snapshot, lower, upper);
        // Ok(FusedIterator::new(LsmIterator::new(memtables, map_bound(upper))?))
        // @end
    }
    // ANCHOR_END: scan

    // ANCHOR: time_travel
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
    // ANCHOR_END: time_travel

    // ANCHOR: scan_prefix
    /// Returns an iterator over the live entries whose keys start with `prefix`. SSTs whose key
    /// range cannot hold such a key are not read.
    ///
    /// # Errors
    /// As [`Self::scan`].
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<FusedIterator<LsmIterator>> {
        // @task week1_day6 5
        let upper = prefix_upper_bound(prefix);
        let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.scan(Bound::Included(prefix), upper)
        // @end
    }
    // ANCHOR_END: scan_prefix
}
