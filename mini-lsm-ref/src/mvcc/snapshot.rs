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
