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
//!
//! # What readers hold, and what compaction may drop
//!
//! A key has many versions; compaction drops those no reader can see. A reader at `ts` sees the
//! newest version at or below `ts`, so of the versions at or below the oldest reader's timestamp,
//! the *watermark*, only the newest can still be seen. Compaction keeps every version above the
//! watermark and the newest at or below it:
//!
//! ```text
//!   versions of k:  k@12  k@9  k@7  k@4  k@2          live snapshots at 8 and 13: watermark 8
//!   kept:           k@12  k@9  k@7                    (k@7 is what the snapshot at 8 sees)
//! ```
//!
//! Long-lived readers, [`Snapshot`]s, register their timestamp in the [`Watermark`] while they
//! live. A plain `get` or `scan` registers nothing: it loads the engine's state first and reads
//! at the latest commit after (see `LsmStorageInner::read_ts_after`), which no compaction in that
//! state can have collapsed past. With no snapshot, the watermark is the latest commit.
//!
//! Left out: versions above the watermark that no snapshot reads (k@9 above, if no snapshot
//! reads between 9 and 12) are kept too; dropping them needs every snapshot's timestamp, not
//! just the oldest. And a snapshot that is never dropped holds every later version of every key
//! forever (RocksDB has the same hazard); there is no time limit.

mod snapshot;
mod watermark;

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use parking_lot::Mutex;

pub use snapshot::Snapshot;
pub use watermark::Watermark;

/// The engine's commit timestamps.
pub struct Mvcc {
    /// Serialises commits. Held from picking a timestamp to publishing it.
    commit_lock: Mutex<()>,
    /// The latest published commit timestamp: every write at or below it is wholly applied.
    /// Written only under `commit_lock`; read without it.
    latest_commit_ts: AtomicU64,
    /// The read timestamps of live snapshots (week 3 day 4). A snapshot reads `latest_commit_ts`
    /// and registers it under this lock, and the watermark is computed under it, so that no
    /// compaction can read a watermark above a snapshot being made.
    readers: Mutex<Watermark>,
}

impl Mvcc {
    /// The commit state of an engine whose latest commit was at `latest_commit_ts` (0 for a new
    /// one: the first commit is at 1).
    pub fn new(latest_commit_ts: u64) -> Self {
        Self {
            commit_lock: Mutex::new(()),
            latest_commit_ts: AtomicU64::new(latest_commit_ts),
            readers: Mutex::new(Watermark::new()),
        }
    }

    /// The latest published commit timestamp.
    pub fn latest_commit_ts(&self) -> u64 {
        self.latest_commit_ts.load(Ordering::Acquire)
    }

    /// Runs `apply` with the next commit timestamp, under the commit lock, and then publishes
    /// that timestamp. Returns the timestamp and what `apply` returned.
    ///
    /// # Errors
    /// The error of `apply`, which must then have applied nothing; its timestamp is used up
    /// anyway (see the module docs).
    pub fn commit<T>(&self, apply: impl FnOnce(u64) -> Result<T>) -> Result<(u64, T)> {
        todo!("week 3 day 3, task 2: commit every write and batch at the next timestamp, and publish it once applied (book: week3-03-commit-timestamps)")
    }

    /// The watermark: the oldest live snapshot's read timestamp, or the latest commit when no
    /// snapshot lives. No reader reads below it.
    pub fn watermark(&self) -> u64 {
        todo!("week 3 day 4, task 1: track the read timestamps of live snapshots, and the watermark: the oldest, or the latest commit (book: week3-04-watermark)")
    }

    /// Takes the latest commit timestamp as a snapshot's read timestamp and registers it in the
    /// watermark, in one step under the readers' lock. Returns the timestamp; release it with
    /// [`Self::release_read`].
    pub fn register_read(&self) -> u64 {
        todo!("week 3 day 4, task 2: make snapshots that read as of their timestamp and hold it in the watermark until dropped (book: week3-04-watermark)")
    }

    /// Unregisters a read timestamp that [`Self::register_read`] handed out.
    pub fn release_read(&self, ts: u64) {
        todo!("week 3 day 4, task 2: make snapshots that read as of their timestamp and hold it in the watermark until dropped (book: week3-04-watermark)")
    }

    /// How many snapshots are live.
    pub fn num_retained_snapshots(&self) -> usize {
        self.readers.lock().num_retained_snapshots()
    }
}
