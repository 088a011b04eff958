// SPDX-License-Identifier: Apache-2.0
//! Multi-version concurrency control (week 3): commit timestamps, and what readers hold.
//!
//! # Commit timestamps
//!
//! Every write, and every batch as a whole, commits at one timestamp, one more than the last.
//! The commit takes the commit lock, picks the timestamp, applies every entry to the log and the
//! memtable at that timestamp, and only then *publishes* it as `latest_commit_ts`:
//!
//! ```text
//!   commit lock ─▶ ts = latest + 1 ─▶ log + memtable at ts ─▶ latest = ts ─▶ unlock
//!                                                              ▲
//!   a reader reads as of latest: every write at or below it is wholly applied; nothing above it
//!   is visible, however much of it is in the memtable already
//! ```
//!
//! So a reader never sees half a batch, nor a timestamp whose writes are still going in. Commits
//! are serialised: one at a time, which costs throughput when many threads write (the commit is
//! short, a memtable insert and a buffered log append, but it is one lane). Engines with many
//! writers instead let commits apply in parallel and publish timestamps in order (RocksDB's
//! pipelined writes, for instance); that is left out here.
//!
//! A failed commit still uses up its timestamp: the next commit takes the one after, so a
//! timestamp that reached a log is never given to another batch, even when that log's record was
//! never wholly written.
//!
//! The latest commit timestamp is recovered at open (see `lsm_storage/recovery.rs`), from the
//! manifest, the SSTs and the replayed logs, so that no timestamp is ever given twice.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use parking_lot::Mutex;

// ANCHOR: mvcc_struct
/// The engine's commit timestamps.
pub struct Mvcc {
    /// Serialises commits. Held from picking a timestamp to publishing it.
    commit_lock: Mutex<()>,
    /// The latest published commit timestamp: every write at or below it is wholly applied.
    /// Written only under `commit_lock`; read without it.
    latest_commit_ts: AtomicU64,
}
// ANCHOR_END: mvcc_struct

impl Mvcc {
    /// The commit state of an engine whose latest commit was at `latest_commit_ts` (0 for a new
    /// one: the first commit is at 1).
    pub fn new(latest_commit_ts: u64) -> Self {
        Self {
            commit_lock: Mutex::new(()),
            latest_commit_ts: AtomicU64::new(latest_commit_ts),
        }
    }

    /// The latest published commit timestamp.
    pub fn latest_commit_ts(&self) -> u64 {
        self.latest_commit_ts.load(Ordering::Acquire)
    }

    // ANCHOR: mvcc_commit
    /// Runs `apply` with the next commit timestamp, under the commit lock, and then publishes
    /// that timestamp. Returns the timestamp and what `apply` returned.
    ///
    /// # Errors
    /// The error of `apply`, which must then have applied nothing; its timestamp is used up
    /// anyway (see the module docs).
    pub fn commit<T>(&self, apply: impl FnOnce(u64) -> Result<T>) -> Result<(u64, T)> {
        // @task week3_day3 2
        let _commit = self.commit_lock.lock();
        let ts = self.latest_commit_ts.load(Ordering::Relaxed) + 1;
        let applied = apply(ts);
        // Release: a reader that loads `ts` (with Acquire) sees every entry `apply` wrote.
        self.latest_commit_ts.store(ts, Ordering::Release);
        Ok((ts, applied?))
        // @end
    }
    // ANCHOR_END: mvcc_commit
}
