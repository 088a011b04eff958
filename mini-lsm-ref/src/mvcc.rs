// SPDX-License-Identifier: Apache-2.0
//! Multi-version concurrency control (week 3): commit timestamps, and what readers hold.
//!
//! # Commit timestamps
//!
//! Every write, and every batch as a whole, commits at one timestamp, one more than the last, and
//! a reader reads as of the latest *published* timestamp, `latest_commit_ts`: every write at or
//! below it is wholly applied; nothing above it is visible, however much of it is in the
//! memtable already. So a reader never sees half a batch, nor a timestamp whose writes are still
//! going in.
//!
//! Week 3 commits one at a time: the commit lock is held from picking the timestamp, through the
//! log and the memtable, to publishing it. That is one lane, and a commit that waits for a sync
//! holds up every other. From week 4 day 1 a commit is a pipeline of three steps
//! (`mvcc/pipeline.rs`), and only the first is serialised:
//!
//! ```text
//!   prepare (commit lock, short)        apply (concurrent)        publish (in order)
//!   validate ─▶ ts = last + 1 ─▶ queue   batch ─▶ memtable at ts   ts done ─▶ visible advances
//!              the log record (day 2)                              over the done prefix ─▶
//!                                                                  the writer returns once
//!                                                                  its own ts is visible
//! ```
//!
//! Timestamps are handed out, and log records queued, in commit order; batches go into the
//! memtable in any order, each by its own writer; the visible timestamp only moves over a prefix
//! of done commits. A writer returns once its own timestamp is visible, so it reads its write
//! back. The log is written by group commit (week 4 day 2, `lsm_storage/commit.rs`): one writer
//! writes the queued records of many commits at once, and syncs once for all of them.
//!
//! A failed commit still uses up its timestamp: it is published as done with nothing applied,
//! so the timestamps after it are not held up, and a timestamp that reached a log is never given
//! to another batch, even when that log's record was never wholly written.
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
//!
//! # Transactions
//!
//! A [`Transaction`] (week 3 day 5) is a snapshot with a private write set, committed as one
//! batch through the same commit as every write. From day 6 the commit first *validates* it
//! against the transactions that committed since its snapshot (see `conflict.rs`), in the same
//! serialised section, before it takes a timestamp:
//!
//! ```text
//!   commit lock ─▶ validate (prepare) ─▶ ts = latest + 1 ─▶ apply at ts ─▶ record its keys
//!                  a conflict: unlock,                                      for live txns
//!                  no timestamp used                                    ─▶ latest = ts ─▶ unlock
//! ```
//!
//! With the pipeline (week 4 day 1) the keys are recorded at prepare, before the commit is
//! applied, and a transaction begins only when no prepared commit is still unpublished: it waits
//! (bounded) under the commit lock for the pipeline to drain, so that every commit is wholly
//! before its read timestamp or recorded for it.
//!
//! Time travel (day 7) registers an older timestamp as a reader's, if it is at or above the
//! watermark: below it, compaction may already have dropped what a reader there would see.

mod conflict;
mod pipeline;
mod snapshot;
mod txn;
mod watermark;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use parking_lot::Mutex;

use crate::clock::RealClock;
pub(crate) use pipeline::Publisher;

pub use conflict::{CommitCheck, Conflict, Isolation, KeyRange, ReadSet, RecentCommits};
pub use snapshot::{Snapshot, TimeTravelError};
pub use txn::{Transaction, TxnIterator};
pub use watermark::Watermark;

/// How long [`Mvcc::commit_checked`] and [`Mvcc::register_txn`] wait for the commits before
/// them to be published (week 4 day 1). The engine's own writes wait as long as its
/// `commit_timeout` says, on its clock.
pub const PIPELINE_TIMEOUT: Duration = Duration::from_secs(60);

// ANCHOR: mvcc_struct
/// The engine's commit timestamps.
pub struct Mvcc {
    /// Serialises commits. Held from validating a commit (week 3 day 6) and picking its
    /// timestamp to publishing it. Guards the keys recent commits wrote, which live transactions
    /// are validated against; a transaction registers under it too.
    commit_lock: Mutex<RecentCommits>,
    /// The latest published commit timestamp: every write at or below it is wholly applied.
    /// Written only under `commit_lock` (week 3), from week 4 day 1 only under the publisher's
    /// lock; read without either.
    latest_commit_ts: AtomicU64,
    /// The last timestamp handed out by [`Self::prepare`] (week 4 day 1). Written only under
    /// `commit_lock`.
    last_prepared: AtomicU64,
    /// The done timestamps waiting for an earlier one, and the writers waiting for theirs to be
    /// visible (week 4 day 1).
    publisher: std::sync::Arc<Publisher>,
    /// A transaction that read below this cannot be validated: it began while commits up to here
    /// were unpublished and not recorded for it (after a timed-out wait in
    /// [`Self::register_txn`]). Written and read only under `commit_lock`.
    blind_upto: AtomicU64,
    /// The read timestamps of live snapshots (week 3 day 4). A snapshot reads `latest_commit_ts`
    /// and registers it under this lock, and the watermark is computed under it, so that no
    /// compaction can read a watermark above a snapshot being made.
    readers: Mutex<Watermark>,
}
// ANCHOR_END: mvcc_struct

impl Mvcc {
    /// The commit state of an engine whose latest commit was at `latest_commit_ts` (0 for a new
    /// one: the first commit is at 1).
    pub fn new(latest_commit_ts: u64) -> Self {
        Self {
            commit_lock: Mutex::new(RecentCommits::new()),
            latest_commit_ts: AtomicU64::new(latest_commit_ts),
            last_prepared: AtomicU64::new(latest_commit_ts),
            publisher: std::sync::Arc::new(Publisher::default()),
            blind_upto: AtomicU64::new(0),
            readers: Mutex::new(Watermark::new()),
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
    /// This commits nothing a transaction is validated against: the engine's writes go through
    /// [`Self::commit_checked`], with their keys.
    ///
    /// # Errors
    /// The error of `apply`, which must then have applied nothing; its timestamp is used up
    /// anyway (see the module docs).
    pub fn commit<T>(&self, apply: impl FnOnce(u64) -> Result<T>) -> Result<(u64, T)> {
        self.commit_checked(&[], None, apply)
    }

    /// Commits the batch `writes`: under the commit lock, validates a transaction's `check`
    /// against the commits since its read timestamp (week 3 day 6), runs `apply` with the next
    /// commit timestamp, records the keys of `writes` for the live transactions to be validated
    /// against, and publishes the timestamp. Returns the timestamp and what `apply` returned.
    ///
    /// Validation is the *prepare* step: it comes before a timestamp is taken, so a transaction
    /// that conflicts uses none up and applies nothing. Plain writes pass no `check`: they are
    /// transactions that read nothing, which nothing can invalidate.
    ///
    /// # Errors
    /// A [`Conflict`] if validation fails. The error of `apply`, which must then have applied
    /// nothing; its timestamp is used up anyway (see the module docs).
    pub fn commit_checked<T>(
        &self,
        writes: &[(&[u8], &[u8])],
        check: Option<&CommitCheck<'_>>,
        apply: impl FnOnce(u64) -> Result<T>,
    ) -> Result<(u64, T)> {
        // @task week4_day1 1
        let (ts, ()) = self.prepare(writes, check, |_| ())?;
        let applied = apply(ts);
        self.publish(ts);
        let deadline = Instant::now() + PIPELINE_TIMEOUT;
        self.wait_visible(ts, &RealClock, deadline)?;
        Ok((ts, applied?))
        // @or week3_day3 2
        // self.commit_serialised(writes, check, apply)
        // @end
    }

    /// [`Self::commit_checked`] as week 3 has it: one commit at a time, under the commit lock
    /// from validation to publishing. The pipeline (week 4 day 1) replaces it.
    #[allow(
        dead_code,
        reason = "week 3's commit; from week 4 day 1 `commit_checked` runs the pipeline instead"
    )]
    fn commit_serialised<T>(
        &self,
        writes: &[(&[u8], &[u8])],
        check: Option<&CommitCheck<'_>>,
        apply: impl FnOnce(u64) -> Result<T>,
    ) -> Result<(u64, T)> {
        // @task week3_day3 2
        let mut recent = self.commit_lock.lock();
        // @task week3_day6 2 stub=comment
        if let Some(check) = check {
            recent.validate(check, writes)?;
        }
        // @end
        let ts = self.latest_commit_ts.load(Ordering::Relaxed) + 1;
        self.last_prepared.store(ts, Ordering::Relaxed);
        let applied = apply(ts);
        // @task week3_day6 2 stub=comment
        if applied.is_ok() {
            recent.record(ts, writes);
        }
        // @end
        // Release: a reader that loads `ts` (with Acquire) sees every entry `apply` wrote.
        self.latest_commit_ts.store(ts, Ordering::Release);
        Ok((ts, applied?))
        // @end
    }
    // ANCHOR_END: mvcc_commit

    // ANCHOR: mvcc_watermark
    /// The watermark: the oldest live snapshot's read timestamp, or the latest commit when no
    /// snapshot lives. No reader reads below it.
    pub fn watermark(&self) -> u64 {
        // @task week3_day4 1
        let readers = self.readers.lock();
        readers
            .watermark()
            .unwrap_or_else(|| self.latest_commit_ts())
        // @end
    }
    // ANCHOR_END: mvcc_watermark

    // ANCHOR: mvcc_register
    /// Takes the latest commit timestamp as a snapshot's read timestamp and registers it in the
    /// watermark, in one step under the readers' lock. Returns the timestamp; release it with
    /// [`Self::release_read`].
    pub fn register_read(&self) -> u64 {
        // @task week3_day4 2
        let mut readers = self.readers.lock();
        let ts = self.latest_commit_ts();
        readers.add_reader(ts);
        ts
        // @end
    }

    /// Unregisters a read timestamp that [`Self::register_read`] handed out.
    pub fn release_read(&self, ts: u64) {
        // @task week3_day4 2
        self.readers.lock().remove_reader(ts);
        // @end
    }
    // ANCHOR_END: mvcc_register

    // ANCHOR: mvcc_register_at
    /// Registers `ts`, an older timestamp, as a reader's (time travel, week 3 day 7), if it is at
    /// or above the watermark and at most the latest commit: checked and registered in one step
    /// under the readers' lock, so that no compaction can read a watermark above it in between.
    /// Release it with [`Self::release_read`].
    ///
    /// The watermark never goes down (a reader registers at or above it; one leaving can only
    /// raise it), so every compaction, past or running, read one at or below `ts`, and kept what
    /// a reader at `ts` sees.
    ///
    /// # Errors
    /// [`TimeTravelError`] if `ts` is below the watermark or above the latest commit.
    pub fn register_read_at(&self, ts: u64) -> Result<(), TimeTravelError> {
        // @task week3_day7 2
        let mut readers = self.readers.lock();
        let latest = self.latest_commit_ts();
        if ts > latest {
            return Err(TimeTravelError::AboveLatestCommit { ts, latest });
        }
        let watermark = readers.watermark().unwrap_or(latest);
        if ts < watermark {
            return Err(TimeTravelError::BelowWatermark { ts, watermark });
        }
        readers.add_reader(ts);
        Ok(())
        // @end
    }
    // ANCHOR_END: mvcc_register_at

    // ANCHOR: mvcc_txn
    /// Takes a transaction's read timestamp and registers it: in the watermark, as a
    /// snapshot's, and among the live transactions that commits record their keys for (week 3
    /// day 6). Under the commit lock, so that every commit is wholly before the transaction
    /// (at or below its read timestamp) or wholly after (it finds the transaction registered and
    /// records its keys). Release it with [`Self::end_txn`] and [`Self::release_read`].
    pub fn register_txn(&self) -> u64 {
        // @task week3_day6 2
        let mut recent = self.commit_lock.lock();
        // @task week4_day1 1 stub=comment
        // No commit can be prepared while we hold the lock: once the prepared ones are visible,
        // every commit is wholly at or below the read timestamp, or comes later and is recorded.
        let prepared = self.last_prepared.load(Ordering::Relaxed);
        let deadline = Instant::now() + PIPELINE_TIMEOUT;
        if self.wait_visible(prepared, &RealClock, deadline).is_err() {
            // The transaction cannot wait forever, nor return an error: its commit refuses.
            self.blind_upto.store(prepared, Ordering::Relaxed);
        }
        // @end
        let ts = self.register_read();
        recent.begin(ts);
        ts
        // @stub
        // self.register_read()
        // @end
    }

    /// Unregisters a transaction that [`Self::register_txn`] registered: it will not be
    /// validated any more, and the commits only it could conflict with are pruned.
    pub fn end_txn(&self, read_ts: u64) {
        // @task week3_day6 2 stub=comment
        self.commit_lock.lock().end(read_ts);
        // @end
    }
    // ANCHOR_END: mvcc_txn

    /// How many recent commits are kept for live transactions to be validated against.
    pub fn num_recent_commits(&self) -> usize {
        self.commit_lock.lock().len()
    }

    /// How many snapshots are live.
    pub fn num_retained_snapshots(&self) -> usize {
        self.readers.lock().num_retained_snapshots()
    }
}
