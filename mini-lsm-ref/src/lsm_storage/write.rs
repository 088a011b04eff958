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

// ANCHOR: flush_signal
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
// ANCHOR_END: flush_signal

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
    // ANCHOR: put_delete
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
    // ANCHOR_END: put_delete

    // ANCHOR: merge
    /// Adds `operand` to `key`'s merge operands (week 4 day 6): reads fold it, with every operand
    /// since the key's last put or delete, into the key's value through the engine's
    /// `merge_operator` (see [`crate::merge`]). An operand may be empty.
    ///
    /// # Errors
    /// If the engine has no merge operator; as [`Self::put`] otherwise. On error nothing was
    /// written.
    pub fn merge(&self, key: &[u8], operand: &[u8]) -> Result<()> {
        // @task week4_day6 1
        check_entry_size(key, operand)?;
        self.check_merge_operator()?;
        self.check_bg_error()?;
        self.wait_for_room()?;
        let (_, size) = self.commit_batch(
            &[(key, operand)],
            &[ValueKind::Merge],
            None,
            &self.default_write_options(),
        )?;
        self.try_freeze(size)
        // @end
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
    // ANCHOR_END: merge

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

    // ANCHOR: write_batch
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
        // @task week2_day7 2
        let entries: Vec<(&[u8], &[u8])> = batch
            .iter()
            .map(|record| match record {
                WriteBatchRecord::Put(key, value) => (key.as_ref(), value.as_ref()),
                WriteBatchRecord::Del(key) => (key.as_ref(), &b""[..]),
            })
            .collect();
        for (record, (key, value)) in batch.iter().zip(&entries) {
            check_entry_size(key, value)?;
            ensure!(
                matches!(record, WriteBatchRecord::Del(_)) || !value.is_empty(),
                "cannot put an empty value: the empty value marks a deletion; use Del instead"
            );
        }
        self.check_bg_error()?;
        self.wait_for_room()?;
        // @task week3_day3 2
        let (_, size) = self.commit_batch(&entries, &[], None, options)?;
        // @or week2_day7 2
        // // One memtable takes the whole batch: the read lock keeps a freeze out until it is in.
        // let size = {
        //     let state = self.state.read();
        //     state.memtable.put_batch(&entries)?;
        //     state.memtable.approximate_size()
        // };
        // @end
        self.try_freeze(size)
        // @end
    }

    // ANCHOR: write_batch_ops
    /// [`Self::write_batch`] for a batch that may hold merge operands (week 4 day 6): applies
    /// every write of `batch`, in order, as one commit.
    ///
    /// # Errors
    /// As [`Self::write_batch`], and if the batch merges but the engine has no merge operator;
    /// on error nothing was written.
    pub fn write_batch_ops<T: AsRef<[u8]>>(&self, batch: &[WriteBatchOp<T>]) -> Result<()> {
        // @task week4_day6 1
        let mut entries = Vec::with_capacity(batch.len());
        let mut kinds = Vec::with_capacity(batch.len());
        for op in batch {
            let (key, value, kind) = match op {
                WriteBatchOp::Put(key, value) => (key.as_ref(), value.as_ref(), ValueKind::Put),
                WriteBatchOp::Del(key) => (key.as_ref(), &b""[..], ValueKind::Delete),
                WriteBatchOp::Merge(key, operand) => {
                    (key.as_ref(), operand.as_ref(), ValueKind::Merge)
                }
            };
            check_entry_size(key, value)?;
            ensure!(
                kind != ValueKind::Put || !value.is_empty(),
                "cannot put an empty value: the empty value marks a deletion; use Del instead"
            );
            entries.push((key, value));
            kinds.push(kind);
        }
        if kinds.contains(&ValueKind::Merge) {
            self.check_merge_operator()?;
        } else {
            // Without an operand the log record is the one a plain batch writes.
            kinds.clear();
        }
        self.check_bg_error()?;
        self.wait_for_room()?;
        let (_, size) = self.commit_batch(&entries, &kinds, None, &self.default_write_options())?;
        self.try_freeze(size)
        // @end
    }
    // ANCHOR_END: write_batch_ops

    // ANCHOR: commit_batch
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
        // @task week3_day3 2
        // @task week4_day1 3
        let committed = self.commit_pipelined(entries, kinds, check, options)?;
        // @or week3_day3 2
        // let committed = self.mvcc.commit_checked(entries, check, |ts| {
        //     // One memtable takes the whole batch: the read lock keeps a freeze out until it is in.
        //     let state = self.state.read();
        //     state.memtable.put_batch_at(entries, ts)?;
        //     Ok(state.memtable.approximate_size())
        // })?;
        // let _ = options; // Each write's own options come with group commit (week 4 day 2).
        // @end
        // @task week4_day7 1 stub=comment
        // Counted here, once per commit and only once it succeeded, when no log groups it:
        // with a log, group commit (week 4 day 2) counts each group where it is written.
        if !self.options.enable_wal {
            self.metrics.record_group(&[entries]);
        }
        // @end
        Ok(committed)
        // @end
    }
    // ANCHOR_END: commit_batch
    // ANCHOR_END: write_batch

    // ANCHOR: commit_txn
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
        // @task week3_day5 3
        self.check_bg_error()?;
        self.wait_for_room()?;
        let (ts, size) = self.commit_batch(entries, kinds, check, &self.default_write_options())?;
        self.try_freeze(size)?;
        Ok(ts)
        // @end
    }
    // ANCHOR_END: commit_txn

    /// Writes one entry; an empty value is a tombstone.
    fn write_entry(&self, key: &[u8], value: &[u8], options: &WriteOptions) -> Result<()> {
        check_entry_size(key, value)?;
        self.check_bg_error()?;
        // @task week1_day6 4 stub=comment
        self.wait_for_room()?;
        // @end
        // @task week1_day1 2
        // ANCHOR: write_entry
        // @task week3_day3 2
        let (_, size) = self.commit_batch(&[(key, value)], &[], None, options)?;
        // @or week1_day1 2
        // // The read lock keeps a freeze from swapping the memtable out while we write into it, so a
        // // frozen memtable never receives a write. Writers share the read lock with each other.
        // let size = {
        //     let state = self.state.read();
        //     state.memtable.put(key, value)?;
        //     state.memtable.approximate_size()
        // };
        // @end
        // ANCHOR_END: write_entry
        // @task week1_day1 3 stub=comment
        self.try_freeze(size)?;
        // @end
        Ok(())
        // @end
    }

    // ANCHOR: try_freeze
    /// Freezes the memtable if a write took it past the target size (or, from week 4 day 5,
    /// the memtables past half the memory budget: see `write_buffer.rs`).
    fn try_freeze(&self, estimated_size: usize) -> Result<()> {
        // @task week4_day5 2
        let target = self.options.target_sst_size;
        // Measured only with a budget: without one this costs the write path one branch.
        let early = |inner: &Self| {
            inner.write_buffer.budget().is_some()
                && inner
                    .write_buffer
                    .should_freeze(MemoryUse::of(&inner.state.read()))
        };
        if estimated_size < target && !early(self) {
            return Ok(());
        }
        let state_lock = self.state_lock.lock();
        // Several writers may cross the threshold at once; only the first to get the lock should
        // freeze, so look again now that structural changes are excluded.
        if self.state.read().memtable.approximate_size() >= target || early(self) {
            self.force_freeze_memtable(&state_lock)?;
        }
        Ok(())
        // @or week1_day1 3
        // if estimated_size < self.options.target_sst_size {
        //     return Ok(());
        // }
        // let state_lock = self.state_lock.lock();
        // // Several writers may cross the threshold at once; only the first to get the lock should
        // // freeze, so look again now that structural changes are excluded.
        // if self.state.read().memtable.approximate_size() >= self.options.target_sst_size {
        //     self.force_freeze_memtable(&state_lock)?;
        // }
        // Ok(())
        // @end
    }
    // ANCHOR_END: try_freeze

    // ANCHOR: force_freeze
    /// Makes the current memtable immutable and starts a new, empty one.
    ///
    /// Requires `state_lock` (the guard proves the caller holds it).
    ///
    /// # Errors
    /// None in week 1; from week 2 creating the new memtable's log can fail.
    pub fn force_freeze_memtable(&self, state_lock_observer: &MutexGuard<'_, ()>) -> Result<()> {
        // @task week1_day1 3
        // Create the new memtable before taking the write lock: keep the critical section to the
        // pointer swap.
        let memtable = Arc::new(new_memtable(
            &self.options,
            self.path(),
            self.next_sst_id(),
        )?);
        // @task week2_day6 3 stub=comment
        // The frozen memtable takes no write after the swap; its log must be durable before any
        // of the new log is, so that a crash keeps a prefix of the writes.
        memtable.follow(&self.state.read().memtable);
        // @end
        // @task week2_day5 3 stub=comment
        // Recorded before it becomes visible: a crash after this point finds the memtable (and its
        // log) in the manifest.
        self.log_change(
            state_lock_observer,
            &ManifestRecord::NewMemtable(memtable.id()),
        )?;
        // @end
        let mut guard = self.state.write();
        let mut snapshot = guard.as_ref().clone();
        let frozen = std::mem::replace(&mut snapshot.memtable, memtable);
        snapshot.imm_memtables.insert(0, frozen);
        *guard = Arc::new(snapshot);
        // @task week2_day6 3 stub=comment
        // Swapped out, the frozen memtable takes no more writes, so its log's length is final:
        // sync it and have the manifest vouch for it (outside the write lock: it is a sync).
        let (frozen, new) = (guard.imm_memtables[0].clone(), guard.memtable.clone());
        drop(guard);
        self.seal_logs(state_lock_observer, &frozen, &new)?;
        // @end
        Ok(())
        // @end
    }
    // ANCHOR_END: force_freeze

    /// Freezes the memtable, taking the state lock itself: [`Self::force_freeze_memtable`] for
    /// callers outside the crate, such as `cargo x verify`, which cannot name the lock.
    ///
    /// # Errors
    /// As [`Self::force_freeze_memtable`].
    pub fn freeze_memtable(&self) -> Result<()> {
        self.force_freeze_memtable(&self.state_lock.lock())
    }

    // ANCHOR: write_stall
    /// Blocks the writer while more than `num_memtable_limit + write_stall_margin` memtables exist,
    /// for at most `write_stall_timeout`. From week 4 day 4, it asks [`Self::write_pressure`]
    /// instead, on the engine's clock: a slowed write waits one `l0_slowdown_delay`; a stopped one
    /// waits for a flush or compaction to make room, for at most `write_stall_timeout`.
    ///
    /// # Errors
    /// The background error if a flush or compaction fails while we wait; a timeout error, naming
    /// the cause, otherwise. The write is then not applied.
    fn wait_for_room(&self) -> Result<()> {
        // @task week4_day4 2
        let first = self.write_pressure(&self.state.read());
        if first == Pressure::Go {
            return Ok(()); // The fast path: no lock but the brief read lock.
        }
        let clock = &*self.options.clock;
        let started = clock.now();
        let deadline = started + self.options.write_stall_timeout;
        let (mut slowed, mut stopped) = (false, false);
        let mut pressure = first;
        let (outcome, ended) = loop {
            match pressure {
                Pressure::Go => break (Ok(()), StallOutcome::Admitted),
                Pressure::Slow(_) if slowed => break (Ok(()), StallOutcome::Admitted),
                Pressure::Slow(_) => {
                    // One delay per write, then it goes ahead unless it must stop.
                    clock.sleep(self.options.l0_slowdown_delay);
                    slowed = true;
                    pressure = self.write_pressure(&self.state.read());
                }
                Pressure::Stop(_) => {
                    stopped = true;
                    match self.wait_while_stopped(clock, deadline) {
                        Ok(StopEnd::Room(after)) => pressure = after,
                        Ok(StopEnd::TimedOut(cause)) => {
                            let error = anyhow!(
                                "write stalled for {:?}: {cause}; the write was not applied. {}",
                                self.options.write_stall_timeout,
                                cause.advice()
                            );
                            break (Err(error), StallOutcome::TimedOut);
                        }
                        Err(error) => break (Err(error), StallOutcome::Failed),
                    }
                }
            }
        };
        // Only the stop's wait can time out or meet a background error.
        debug_assert!(
            stopped || ended == StallOutcome::Admitted,
            "{ended:?} without a stop"
        );
        // @task week4_day7 3 stub=comment
        let waited = clock.now().saturating_duration_since(started);
        self.metrics.record_stall(slowed, stopped, ended, waited);
        // @end
        outcome
        // @or week1_day6 4
        // let limit = self.options.num_memtable_limit + self.options.write_stall_margin;
        // let count = |inner: &Self| 1 + inner.state.read().imm_memtables.len();
        // if count(self) <= limit {
        //     return Ok(()); // The fast path: no lock but the brief read lock.
        // }
        // let deadline = Instant::now() + self.options.write_stall_timeout;
        // // Holding the signal's mutex from the check to the wait means a flush that finishes in
        // // between cannot notify before we wait: it must take the same mutex to notify.
        // let mut guard = self.flush_done.lock();
        // loop {
        //     self.check_bg_error()?;
        //     let memtables = count(self);
        //     if memtables <= limit {
        //         return Ok(());
        //     }
        //     if self.flush_done.wait_until(&mut guard, deadline) {
        //         self.check_bg_error()?;
        //         anyhow::bail!(
        //             "write stalled for {:?} with {memtables} memtables waiting to be flushed \
        //              (limit {} + stall margin {}); the write was not applied. Is the flush \
        //              thread running?",
        //             self.options.write_stall_timeout,
        //             self.options.num_memtable_limit,
        //             self.options.write_stall_margin
        //         );
        //     }
        // }
        // @end
    }

    /// Waits while the state stops writes, until `deadline` on `clock` (week 4 day 4). Returns the
    /// pressure that ended the stop (a go, or a slowdown), or what still stopped writes at the
    /// deadline.
    ///
    /// # Errors
    /// The background error, if one arrives meanwhile.
    fn wait_while_stopped(&self, clock: &dyn Clock, deadline: Instant) -> Result<StopEnd> {
        // @task week4_day4 2
        // Holding the signal's mutex from the check to the wait means a flush or compaction that
        // makes room in between cannot notify before we wait: it must take the same mutex.
        let mut guard = self.flush_done.lock();
        loop {
            self.check_bg_error()?;
            let cause = match self.write_pressure(&self.state.read()) {
                Pressure::Stop(cause) => cause,
                other => return Ok(StopEnd::Room(other)),
            };
            // Checked after the state, so that room made at the last moment still lets it in.
            if clock.now() >= deadline {
                return Ok(StopEnd::TimedOut(cause));
            }
            self.flush_done.wait_on(clock, &mut guard, deadline);
        }
        // @end
    }
    // ANCHOR_END: write_stall

    /// How many writers are stalled right now, waiting for a flush to make room.
    pub fn stalled_writers(&self) -> usize {
        self.flush_done.waiting.load(Ordering::SeqCst)
    }
}
