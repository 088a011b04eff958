// SPDX-License-Identifier: Apache-2.0
//! Snapshots: reads as of one commit timestamp, for as long as the snapshot lives (week 3 day 4).
//!
//! A snapshot takes the latest commit timestamp when it is made and registers it in the
//! watermark; every `get` and `scan` through it reads as of that timestamp, however many commits,
//! flushes and compactions come after, and it unregisters when dropped. While it lives,
//! compaction keeps the version of every key the snapshot sees.
//!
//! Not to be confused with [`LsmStorageInner::snapshot`], which hands out the engine's *state*
//! (its memtables and SSTs) as it is now: a snapshot here loads that state afresh for each read,
//! and what keeps its answers fixed is its timestamp.

use std::fmt;
use std::ops::Bound;

use anyhow::Result;
use bytes::Bytes;

use crate::lsm_iterator::{FusedIterator, LsmIterator};
use crate::lsm_storage::LsmStorageInner;

// ANCHOR: snapshot_struct
/// A consistent read-only view of the engine as of one commit timestamp, registered in the
/// watermark until dropped. Made by [`LsmStorageInner::new_snapshot`].
pub struct Snapshot<'a> {
    inner: &'a LsmStorageInner,
    read_ts: u64,
}
// ANCHOR_END: snapshot_struct

impl<'a> Snapshot<'a> {
    /// Wraps a read timestamp that `inner`'s watermark already holds for this snapshot.
    pub(crate) fn registered(inner: &'a LsmStorageInner, read_ts: u64) -> Self {
        Self { inner, read_ts }
    }

    /// The timestamp the snapshot reads at: every commit at or below it, none above.
    pub fn read_ts(&self) -> u64 {
        self.read_ts
    }

    // ANCHOR: snapshot_reads
    /// Returns the value of `key` as of the snapshot.
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        // @task week3_day4 2
        self.inner.get_with_ts(key, self.read_ts)
        // @end
    }

    /// Returns an iterator over the live entries with keys in `lower..upper` as of the snapshot.
    /// The iterator holds what it reads, so it may outlive the snapshot.
    ///
    /// # Errors
    /// If an SST block cannot be read or is corrupt.
    pub fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<FusedIterator<LsmIterator>> {
        // @task week3_day4 2
        self.inner.scan_with_ts(lower, upper, self.read_ts)
        // @end
    }
    // ANCHOR_END: snapshot_reads
}

// ANCHOR: snapshot_drop
impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        // @task week3_day4 2 stub=comment
        self.inner.mvcc.release_read(self.read_ts);
        // @end
    }
}
// ANCHOR_END: snapshot_drop

// ANCHOR: time_travel_error
/// Why a read as of an older timestamp (time travel, week 3 day 7) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeTravelError {
    /// `ts` is below the watermark: compaction may already have dropped versions a reader at
    /// `ts` would see, so its answer could be wrong.
    BelowWatermark {
        /// The timestamp asked for.
        ts: u64,
        /// The watermark when it was asked for.
        watermark: u64,
    },
    /// `ts` is above the latest commit: a later commit could still land at or below it, so the
    /// same read could give another answer.
    AboveLatestCommit {
        /// The timestamp asked for.
        ts: u64,
        /// The latest commit when it was asked for.
        latest: u64,
    },
}
// ANCHOR_END: time_travel_error

impl fmt::Display for TimeTravelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeTravelError::BelowWatermark { ts, watermark } => write!(
                f,
                "cannot read as of timestamp {ts}: it is below the watermark ({watermark}), so \
                 compaction may already have dropped the versions a reader there sees; only \
                 timestamps from {watermark} on can be read (a live snapshot keeps its timestamp, \
                 and every later one, readable)"
            ),
            TimeTravelError::AboveLatestCommit { ts, latest } => write!(
                f,
                "cannot read as of timestamp {ts}: the latest commit is {latest}, and a read above \
                 it could change as later commits land"
            ),
        }
    }
}

impl std::error::Error for TimeTravelError {}
