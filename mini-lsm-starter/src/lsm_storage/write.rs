// SPDX-License-Identifier: Apache-2.0
//! The write path: put and delete into the memtable, freezing, and the write stall. From week 4
//! day 1 a write commits through the pipeline of `commit.rs` (prepare, log by group commit,
//! apply, publish); `put_opt`, `delete_opt` and `write_batch_opt` (day 2) say how durable each
//! write must be when it returns.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, ensure, Result};
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::commit::WriteOptions;
use super::new_memtable;
use super::stall::{Pressure, StallCause};
use super::write_buffer::MemoryUse;
use super::LsmStorageInner;
use crate::clock::{Clock, RealClock, Wake};
use crate::manifest::ManifestRecord;
use crate::merge::{MergeOperator, ValueKind};
use crate::metrics::StallOutcome;
use crate::mvcc::CommitCheck;

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteBatchRecord<T: AsRef<[u8]>> {
    /// Put a value.
    Put(T, T),
    /// Delete a key.
    Del(T),
}

/// One write of a batch that may hold merge operands (week 4 day 6): a [`WriteBatchRecord`]
/// or a merge. (A type of its own so that code matching on `WriteBatchRecord` keeps compiling.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteBatchOp<T: AsRef<[u8]>> {
    /// Put a value.
    Put(T, T),
    /// Delete a key.
    Del(T),
    /// Add a merge operand to a key: see [`LsmStorageInner::merge`].
    Merge(T, T),
}

/// Where writers stalled in [`LsmStorageInner::wait_for_room`] sleep until a flush makes room.
///
/// The mutex guards no data. A writer holds it from its check of the memtable count until the
/// wait releases it, and [`Self::notify_all`] takes it too, so a flush cannot finish in the gap
/// between the check and the wait unseen (the lost wakeup).
#[derive(Default)]
pub(crate) struct FlushSignal {
    gap: Mutex<()>,
    flushed: Condvar,
    /// How many writers are inside [`Self::wait_until`]: [`LsmStorageInner::stalled_writers`].
    waiting: AtomicUsize,
}

impl FlushSignal {
    /// Locks the mutex that closes the gap between a writer's check and its wait.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.gap.lock()
    }

    /// Sleeps until a notification (or a spurious wakeup) or until `deadline`, with `guard`
    /// released while asleep and held again on return. Returns whether the deadline passed.
    #[allow(
        dead_code,
        reason = "week 1's stall waits on the real clock; week 4 day 4 replaces it with `wait_on`"
    )]
    pub(crate) fn wait_until(&self, guard: &mut MutexGuard<'_, ()>, deadline: Instant) -> bool {
        self.wait_on(&RealClock, guard, deadline)
    }

    /// [`Self::wait_until`] with `deadline` on `clock` (week 4 day 4).
    pub(crate) fn wait_on(
        &self,
        clock: &dyn Clock,
        guard: &mut MutexGuard<'_, ()>,
        deadline: Instant,
    ) -> bool {
        // Counted while `guard` is held: whoever sees the count and then notifies (which needs
        // the mutex) reaches a writer that is already asleep.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let timed_out = clock.wait_until(&self.flushed, guard, deadline);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        timed_out
    }

    /// Wakes every waiting writer.
    pub(crate) fn notify_all(&self) {
        let _gap = self.gap.lock();
        self.flushed.notify_all();
    }
}

impl Wake for FlushSignal {
    /// A fake clock moved: the waiting writers look at its time again.
    fn wake(&self) {
        self.notify_all();
    }
}

/// How a stopped write's wait ended (week 4 day 4).
enum StopEnd {
    /// A flush or compaction made room: the pressure now.
    Room(Pressure),
    /// The deadline passed; this still stopped writes.
    TimedOut(StallCause),
}

/// Checks the 16-bit length limits of the on-disk formats.
pub(crate) fn check_entry_size(key: &[u8], value: &[u8]) -> Result<()> {
    ensure!(
        key.len() <= u16::MAX as usize && value.len() <= u16::MAX as usize,
        "keys and values are limited to 65535 bytes (got a {}-byte key and a {}-byte value)",
        key.len(),
        value.len()
    );
    Ok(())
}

impl LsmStorageInner {
    /// Stores `value` under `key`.
    ///
    /// # Errors
    /// If `value` is empty (the empty value marks a deletion: use [`Self::delete`]), the key or
    /// value is longer than 65535 bytes, a background flush has failed, or the write stalled past
    /// `write_stall_timeout`. On error nothing was written.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_opt(key, value, &self.default_write_options())
    }

    /// Deletes `key` by writing a tombstone (the empty value).
    ///
    /// # Errors
    /// As [`Self::put`].
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.delete_opt(key, &self.default_write_options())
    }

    /// Adds `operand` to `key`'s merge operands (week 4 day 6): reads fold it, with every operand
    /// since the key's last put or delete, into the key's value through the engine's
    /// `merge_operator` (see [`crate::merge`]). An operand may be empty.
    ///
    /// # Errors
    /// If the engine has no merge operator; as [`Self::put`] otherwise. On error nothing was
    /// written.
    pub fn merge(&self, key: &[u8], operand: &[u8]) -> Result<()> {
        todo!("week 4 day 6, task 1: give every entry a kind (put, delete, merge operand) in the memtable, the block's kind column, the log and the write batch, and merge through the commit path (book: week4-06-merge-operator)")
    }

    /// Checks that merges can be read: the engine has a merge operator, which it returns.
    ///
    /// # Errors
    /// If it has none, saying how to give it one.
    pub(crate) fn check_merge_operator(&self) -> Result<&dyn MergeOperator> {
        self.options.merge_operator.as_deref().ok_or_else(|| {
            anyhow!(
                "cannot merge: the engine has no merge operator; set `merge_operator` in the \
                 options it is opened with (`mini_lsm::merge::AddOperator` adds decimal integers)"
            )
        })
    }

    /// [`Self::put`], durable as `options` says when it returns (week 4 day 2).
    ///
    /// # Errors
    /// As [`Self::put`]; and if the log write or sync fails, or failed before (week 4 day 3).
    pub fn put_opt(&self, key: &[u8], value: &[u8], options: &WriteOptions) -> Result<()> {
        ensure!(
            !value.is_empty(),
            "cannot put an empty value: the empty value marks a deletion; call delete instead"
        );
        self.write_entry(key, value, options)
    }

    /// [`Self::delete`], durable as `options` says when it returns (week 4 day 2).
    ///
    /// # Errors
    /// As [`Self::put_opt`].
    pub fn delete_opt(&self, key: &[u8], options: &WriteOptions) -> Result<()> {
        self.write_entry(key, b"", options)
    }

    /// The options of a write that names none: durable as the engine's `wal_mode` says.
    pub fn default_write_options(&self) -> WriteOptions {
        WriteOptions::default_for(self.options.wal_mode)
    }

    /// Applies every record of `batch`, in order, atomically with respect to crashes: after a
    /// crash and `open`, either all of them are there or none is. (Concurrent readers may still
    /// see part of a batch; week 3's timestamps make batches atomic for readers too.)
    ///
    /// # Errors
    /// As [`Self::put`], for any record; on error nothing was written.
    pub fn write_batch<T: AsRef<[u8]>>(&self, batch: &[WriteBatchRecord<T>]) -> Result<()> {
        self.write_batch_opt(batch, &self.default_write_options())
    }

    /// [`Self::write_batch`], durable as `options` says when it returns (week 4 day 2).
    ///
    /// # Errors
    /// As [`Self::write_batch`]; and if the log write or sync fails, or failed before (week 4
    /// day 3).
    pub fn write_batch_opt<T: AsRef<[u8]>>(
        &self,
        batch: &[WriteBatchRecord<T>],
        options: &WriteOptions,
    ) -> Result<()> {
        todo!("week 2 day 7, task 2: write a batch through the engine atomically (book: week2-07-batch-checksums)")
    }

    /// [`Self::write_batch`] for a batch that may hold merge operands (week 4 day 6): applies
    /// every write of `batch`, in order, as one commit.
    ///
    /// # Errors
    /// As [`Self::write_batch`], and if the batch merges but the engine has no merge operator;
    /// on error nothing was written.
    pub fn write_batch_ops<T: AsRef<[u8]>>(&self, batch: &[WriteBatchOp<T>]) -> Result<()> {
        todo!("week 4 day 6, task 1: give every entry a kind (put, delete, merge operand) in the memtable, the block's kind column, the log and the write batch, and merge through the commit path (book: week4-06-merge-operator)")
    }

    /// Commits `entries` (an empty value is a tombstone) as one batch at the next commit
    /// timestamp: into the log and the memtable, then published (see [`crate::mvcc`]). `kinds`
    /// is empty, or from week 4 day 6 holds each entry's kind (a batch with merge operands).
    /// Returns the commit timestamp and the memtable's size after the write, for the caller's
    /// freeze.
    /// A transaction's commit passes its `check` (week 3 day 6); a plain write passes none. It
    /// returns once the batch is as durable as `options` asks (week 4 day 2).
    ///
    /// The caller has checked the entries and waited for room; this is the commit itself.
    ///
    /// # Errors
    /// A [`crate::mvcc::Conflict`] if `check` fails; if the log write fails. Nothing was then
    /// applied.
    pub(crate) fn commit_batch(
        &self,
        entries: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        check: Option<&CommitCheck<'_>>,
        options: &WriteOptions,
    ) -> Result<(u64, usize)> {
        todo!("week 3 day 3, task 2: commit every write and batch at the next timestamp, and publish it once applied (book: week3-03-commit-timestamps)")
    }

    /// Commits a transaction's write set `entries` (already checked, each key once; `kinds`
    /// empty, or each entry's kind when some are merge operands, week 4 day 6) as one batch,
    /// validated with `check` (week 3 day 6): the steps of [`Self::write_batch`], so that
    /// a transaction's commit stalls, fails on a background error and freezes the memtable
    /// exactly as a batch does. Returns the commit timestamp.
    ///
    /// # Errors
    /// As [`Self::write_batch`], and a [`crate::mvcc::Conflict`] if `check` fails; on error
    /// nothing was written.
    pub(crate) fn commit_txn(
        &self,
        entries: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        check: Option<&CommitCheck<'_>>,
    ) -> Result<u64> {
        todo!("week 3 day 5, task 3: commit the write set as one batch through the commit path; a finished transaction refuses use (book: week3-05-transactions)")
    }

    /// Writes one entry; an empty value is a tombstone.
    fn write_entry(&self, key: &[u8], value: &[u8], options: &WriteOptions) -> Result<()> {
        check_entry_size(key, value)?;
        self.check_bg_error()?;
        // TODO(week 1 day 6, task 4: stall writers while too many memtables wait, and wake them when a flush makes room (book: week1-06-write-path))
        todo!("week 1 day 1, task 2: write puts and deletes through the engine into the memtable (book: week1-01-memtable)")
    }

    /// Freezes the memtable if a write took it past the target size (or, from week 4 day 5,
    /// the memtables past half the memory budget: see `write_buffer.rs`).
    fn try_freeze(&self, estimated_size: usize) -> Result<()> {
        todo!("week 1 day 1, task 3: freeze the memtable, by hand and when it passes the target size (book: week1-01-memtable)")
    }

    /// Makes the current memtable immutable and starts a new, empty one.
    ///
    /// Requires `state_lock` (the guard proves the caller holds it).
    ///
    /// # Errors
    /// None in week 1; from week 2 creating the new memtable's log can fail.
    pub fn force_freeze_memtable(&self, state_lock_observer: &MutexGuard<'_, ()>) -> Result<()> {
        todo!("week 1 day 1, task 3: freeze the memtable, by hand and when it passes the target size (book: week1-01-memtable)")
    }

    /// Freezes the memtable, taking the state lock itself: [`Self::force_freeze_memtable`] for
    /// callers outside the crate, such as `cargo x verify`, which cannot name the lock.
    ///
    /// # Errors
    /// As [`Self::force_freeze_memtable`].
    pub fn freeze_memtable(&self) -> Result<()> {
        self.force_freeze_memtable(&self.state_lock.lock())
    }

    /// Blocks the writer while more than `num_memtable_limit + write_stall_margin` memtables exist,
    /// for at most `write_stall_timeout`. From week 4 day 4, it asks [`Self::write_pressure`]
    /// instead, on the engine's clock: a slowed write waits one `l0_slowdown_delay`; a stopped one
    /// waits for a flush or compaction to make room, for at most `write_stall_timeout`.
    ///
    /// # Errors
    /// The background error if a flush or compaction fails while we wait; a timeout error, naming
    /// the cause, otherwise. The write is then not applied.
    fn wait_for_room(&self) -> Result<()> {
        todo!("week 1 day 6, task 4: stall writers while too many memtables wait, and wake them when a flush makes room (book: week1-06-write-path)")
    }

    /// Waits while the state stops writes, until `deadline` on `clock` (week 4 day 4). Returns the
    /// pressure that ended the stop (a go, or a slowdown), or what still stopped writes at the
    /// deadline.
    ///
    /// # Errors
    /// The background error, if one arrives meanwhile.
    fn wait_while_stopped(&self, clock: &dyn Clock, deadline: Instant) -> Result<StopEnd> {
        todo!("week 4 day 4, task 2: slow a write down once, or wait on the engine's clock until a flush or compaction makes room, bounded: past the bound an error, never the write (book: week4-04-stalls)")
    }

    /// How many writers are stalled right now, waiting for a flush to make room.
    pub fn stalled_writers(&self) -> usize {
        self.flush_done.waiting.load(Ordering::SeqCst)
    }
}
