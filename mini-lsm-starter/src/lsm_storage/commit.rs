// SPDX-License-Identifier: Apache-2.0
//! The commit pipeline of the write path (week 4 days 1-3): prepare, log by group commit, apply,
//! publish.
//!
//! ```text
//!   writer ─▶ prepare (commit lock: validate, ts, queue the log record)
//!          ─▶ log: the first writer in the queue leads; it takes the queued records (up to a cap),
//!             writes them as one log record, syncs once if any member asked, and hands each
//!             member its result; the others wait for theirs (bounded)
//!          ─▶ apply: the writer's own batch into the memtable (concurrently with others)
//!          ─▶ publish: ts done; wait (bounded) until it is visible
//! ```
//!
//! Group commit (week 4 day 2) is LevelDB's writer queue in spirit, with Pebble's split of the
//! commit into steps: one log write and one sync serve every writer that queued while the last
//! group was being written, so that sixteen writers asking for fsync pay for about two syncs per
//! round, not sixteen. The queue holds the records in timestamp order (they are queued under the
//! commit lock), and groups are taken from its front one at a time, so the log is in timestamp
//! order and a crash keeps a prefix of the commits.
//!
//! A writer alone (nobody queued, no leader writing) that asks for no sync skips the queue: under
//! the commit lock it puts its record straight into the log's buffer, as week 3 did, and leads a
//! group of one only if the record must still be written out (see `log_alone_or_queue`). A lone
//! writer so pays for neither the queue nor a second copy of its record.
//!
//! Invariants:
//! - Every queued writer holds the read side of the engine's state from before its prepare to
//!   after its apply, so a freeze waits for the queue to drain: every record in the queue belongs
//!   to the log of the memtable taking writes, and the frozen log is complete.
//! - At most one leader writes at a time (`leading`); a group is the front of the queue, or a
//!   lone writer's record already in the log's buffer.
//! - A group is one log record: it is recovered whole or not at all.
//! - A writer returns only after its group was written as far as the group's most demanding
//!   member asked, which is at least as far as it asked.
//!
//! Errors (week 4 day 3): a failed log write or sync fails every writer of its group and is
//! sticky: the log's tail is unknown after it (the group may be in the file in part), so no later
//! record may follow it. Every later writer, `sync` and `close` return the error; nothing
//! acknowledged is lost, because nothing is acknowledged before its group is written.
//!
//! Left out: the leader does the I/O itself; Pebble hands syncs to a separate thread so that the
//! next group can be written while the last one syncs. With one sync in flight at a time, the
//! throughput of synced writes is about (group size) / (sync time).

use std::cell::OnceCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use parking_lot::{Condvar, Mutex};

use super::LsmStorageInner;
use crate::clock::{Clock, Wake};
use crate::merge::ValueKind;
use crate::metrics::GroupTally;
use crate::mvcc::CommitCheck;
use crate::wal::{encode_batch, SyncMode, Wal};

/// How a write is committed (week 4 day 2): pass it to `put_opt`, `delete_opt`,
/// `write_batch_opt`. `put`, `delete` and `write_batch` use [`WriteOptions::default_for`] the
/// engine's `wal_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// How durable the write is when it returns (with the log on; without it, nothing is).
    pub sync: SyncMode,
}

impl WriteOptions {
    /// A write that returns once it is durable as `sync` says.
    pub fn new(sync: SyncMode) -> Self {
        Self { sync }
    }

    /// A write that is synced to the disk before it returns.
    pub fn fsync() -> Self {
        Self::new(SyncMode::Fsync)
    }

    /// The options a write without options gets from the engine's `wal_mode`.
    pub fn default_for(mode: crate::wal::WalMode) -> Self {
        Self::new(mode.into())
    }
}

/// One queued writer's place in the queue.
struct Member {
    ts: u64,
    /// Where its batch ends in `Queue::records`.
    end: usize,
    sync: SyncMode,
    tally: GroupTally,
}

/// The writers waiting for their log records to be written (week 4 day 2).
#[derive(Default)]
pub(crate) struct CommitQueue {
    queue: Mutex<Queue>,
    /// Guards no data: a waiter holds it from its look at the queue to its wait, and a leader
    /// takes it to notify, so no finished group falls between the two unseen.
    gap: Mutex<()>,
    changed: Condvar,
    /// How many writers wait in the gap: a leader notifies only if some do.
    waiting: AtomicUsize,
}

/// Guarded by `CommitQueue::queue`.
#[derive(Default)]
struct Queue {
    /// The queued writers, in timestamp order.
    members: VecDeque<Member>,
    /// Their batches, encoded one after another, in the same order.
    records: Vec<u8>,
    /// A leader is writing a group: the next one waits for it to finish.
    leading: bool,
    /// Every timestamp at or below this was taken by a leader and has its result.
    done_upto: u64,
    /// The timestamps of the failed groups' members, and why (until each member takes it).
    failed: HashMap<u64, String>,
    /// The first failed log write or sync (week 4 day 3): the log takes nothing after it.
    sticky: Option<String>,
    /// How many writers of the last group have not queued again (see `CommitQueue::linger`).
    returning: usize,
    /// How long the last group's write and sync took.
    last_sync: Duration,
    /// A leader waits for the returning writers: the last of them to queue wakes it.
    lingering: bool,
    /// An empty buffer for the next group's records, kept from the last group.
    spare: Option<Vec<u8>>,
}

/// The largest buffer kept for the next group's records: a huge batch's is let go.
const SPARE_LIMIT: usize = 1 << 20;
/// The longest a leader waits for the writers of the last group before a sync.
const MAX_LINGER: Duration = Duration::from_millis(1);

/// A group taken from the front of the queue by its leader.
struct Group {
    /// Its first (the leader's) and last member's timestamps: its members are the queued
    /// writers between them.
    first: u64,
    last: u64,
    /// How many writers it carries.
    count: usize,
    records: Vec<u8>,
    sync: SyncMode,
    #[allow(dead_code, reason = "counted from week 4 day 7 (metrics)")]
    tally: GroupTally,
}

/// How a writer's turn in the queue ended.
enum Turn {
    /// Its group was written by another leader: its error, if the group failed.
    Done(Option<String>),
    /// It leads this group; the sticky error, if the log has already failed (week 4 day 3).
    Lead(Group, Option<String>),
    /// The deadline passed first.
    TimedOut,
}

/// Where a commit's log record went in the prepare step.
pub(crate) enum Logged {
    /// Into the log (or there is no log): nothing to wait for.
    Written,
    /// Into the commit queue (week 4 day 2): a leader writes it with its group.
    Queued,
    /// Into the log's buffer, alone, and it must still be written out as its sync mode asks:
    /// the writer leads a group of one (week 4 day 2).
    Leading,
}

impl Wake for CommitQueue {
    /// A fake clock moved: the waiters look at their deadlines again.
    fn wake(&self) {
        self.notify();
    }
}

impl CommitQueue {
    /// Queues the batch `entries` (with `kinds`, empty or one per entry: week 4 day 6),
    /// committed at `ts`, to be written as `sync` says. Called under the commit lock, so that
    /// the queue is in timestamp order.
    pub(crate) fn push(
        &self,
        entries: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        ts: u64,
        sync: SyncMode,
    ) {
        let tally = GroupTally::of(entries);
        let mut queue = self.queue.lock();
        encode_batch(&mut queue.records, entries, kinds, ts);
        let end = queue.records.len();
        queue.members.push_back(Member {
            ts,
            end,
            sync,
            tally,
        });
        queue.returning = queue.returning.saturating_sub(1);
        let wake = queue.lingering && queue.returning == 0;
        drop(queue);
        if wake {
            self.notify();
        }
    }

    /// Whether the writer of `ts`, about to lead a group that syncs, should first wait a little
    /// for the writers of the last group to queue again, and until when: `None` to lead now.
    ///
    /// Without it, sixteen writers that each wait for their sync split into two halves that take
    /// turns (one half syncs while the other queues), and a sync carries eight writes, not
    /// sixteen. The wait is short (half the last sync, at most [`MAX_LINGER`]) and only before a
    /// sync, so it costs a lone writer nothing: it is itself the writer it would wait for.
    fn linger(&self, queue: &mut Queue, ts: u64, until: &mut Option<Instant>) -> Option<Instant> {
        let leads_next = !queue.leading && queue.members.front().is_some_and(|m| m.ts == ts);
        let will_sync = || queue.members.iter().any(|m| m.sync == SyncMode::Fsync);
        if !leads_next || queue.returning == 0 || !will_sync() {
            queue.lingering = false;
            return None;
        }
        let until =
            *until.get_or_insert_with(|| Instant::now() + (queue.last_sync / 2).min(MAX_LINGER));
        queue.lingering = Instant::now() < until;
        queue.lingering.then_some(until)
    }

    /// How many writers are queued, their records not yet taken by a leader.
    pub(crate) fn queued(&self) -> usize {
        self.queue.lock().members.len()
    }

    /// The sticky log error, if a log write or sync has failed (week 4 day 3).
    pub(crate) fn sticky_error(&self) -> Option<String> {
        self.queue.lock().sticky.clone()
    }

    fn notify(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _gap = self.gap.lock();
            self.changed.notify_all();
        }
    }

    /// Takes the group at the front of the queue, if `ts` is first in it and no other leader is
    /// writing: the queued writers in order, up to `max_writes` of them and about `max_bytes` of
    /// records (at least one), synced as far as the most demanding member asked.
    fn take_group(
        &self,
        queue: &mut Queue,
        ts: u64,
        max_writes: usize,
        max_bytes: usize,
    ) -> Option<Group> {
        todo!("week 4 day 2, task 1: queue each commit's batch; the first writer in the queue leads a group, up to a cap, and hands each member its result (book: week4-02-group-commit)")
    }
}

impl LsmStorageInner {
    /// How many writers wait in the commit queue for a leader to take their records (group
    /// commit, week 4 day 2): for tests that line writers up behind a leader.
    pub fn queued_writers(&self) -> usize {
        self.commit_queue.queued()
    }

    /// Commits `entries` (an empty value is a tombstone; `kinds` empty or one per entry, week 4
    /// day 6) as one batch through the pipeline (see the module docs): prepared at the next
    /// timestamp, logged (durable as `options` says), applied, published. Returns the timestamp
    /// and the memtable's size after the write, for the caller's freeze. A transaction passes
    /// its `check` (week 3 day 6).
    ///
    /// # Errors
    /// A [`crate::mvcc::Conflict`] if `check` fails; the log error if the log write or sync
    /// failed (nothing was then applied); a timeout if the log or the commits before this one
    /// did not finish within `commit_timeout` on the engine's clock.
    pub(crate) fn commit_pipelined(
        &self,
        entries: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        check: Option<&CommitCheck<'_>>,
        options: &WriteOptions,
    ) -> Result<(u64, usize)> {
        todo!("week 4 day 1, task 3: commit through the pipeline: prepare, apply your own batch concurrently, publish (book: week4-01-ordered-publishing)")
    }

    /// The log step of a commit's prepare, under the commit lock: queues the batch for group
    /// commit, or, when no other writer is queued or leading and no sync is asked, puts its
    /// record straight into `wal`'s buffer, a group of its own. That fast path is the week 3
    /// write path: a lone writer pays for no queue, no hand-off and no second copy of its
    /// record. The log stays in timestamp order: every earlier record is in it, and every later
    /// writer waits for the commit lock, then finds this one leading if its record must still
    /// be written out ([`Logged::Leading`]); that write happens after the commit lock is let go,
    /// so a slow write(2) holds up no other writer's prepare.
    ///
    /// # Errors
    /// The sticky log error (week 4 day 3), or a failed write of a full buffer, which it makes
    /// sticky; the batch is then not durable and not applied.
    fn log_alone_or_queue(
        &self,
        wal: &Wal,
        entries: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        ts: u64,
        sync: SyncMode,
    ) -> Result<Logged> {
        todo!("week 4 day 2, task 1: queue each commit's batch; the first writer in the queue leads a group, up to a cap, and hands each member its result (book: week4-02-group-commit)")
    }

    /// Writes out `wal`'s buffer, which ends with the record of `ts` alone, as `sync` says, as
    /// the leader of a group of one (see [`Self::log_alone_or_queue`]).
    ///
    /// # Errors
    /// As [`Self::lead_group`].
    fn lead_alone(
        &self,
        wal: &Wal,
        entries: &[(&[u8], &[u8])],
        ts: u64,
        sync: SyncMode,
    ) -> Result<()> {
        todo!("week 4 day 2, task 1: queue each commit's batch; the first writer in the queue leads a group, up to a cap, and hands each member its result (book: week4-02-group-commit)")
    }

    /// Waits until the record queued for `ts` is written to `wal` as far as its group asked, and
    /// leads the group that holds it if it is first in the queue when no one else leads.
    ///
    /// # Errors
    /// The group's log error (week 4 day 3: and every later group's, as the error is sticky); a
    /// timeout past `deadline` on `clock`, which is sticky too (the record may still be written).
    fn log_group_commit(
        &self,
        wal: &Wal,
        ts: u64,
        clock: &dyn Clock,
        deadline: Instant,
    ) -> Result<()> {
        todo!("week 4 day 2, task 1: queue each commit's batch; the first writer in the queue leads a group, up to a cap, and hands each member its result (book: week4-02-group-commit)")
    }

    /// Writes `group` to `wal` (unless the log has failed before: `sticky`), and hands its
    /// result to its members.
    fn lead_group(&self, wal: &Wal, group: Group, sticky: Option<String>) -> Result<()> {
        todo!("week 4 day 2, task 1: queue each commit's batch; the first writer in the queue leads a group, up to a cap, and hands each member its result (book: week4-02-group-commit)")
    }

    /// Hands a written (or failed) group's result to its members and lets the next leader go.
    fn finish_group(
        &self,
        mut group: Group,
        written: std::result::Result<(), String>,
        took: Duration,
    ) {
        let signal = &*self.commit_queue;
        let mut queue = signal.queue.lock();
        // (A group of one written alone brings no buffer: the spare stays.)
        if group.records.capacity() > 0 && group.records.capacity() <= SPARE_LIMIT {
            group.records.clear();
            queue.spare = Some(std::mem::take(&mut group.records));
        }
        queue.leading = false;
        queue.done_upto = group.last;
        queue.returning = group.count;
        if group.sync == SyncMode::Fsync {
            queue.last_sync = took;
        }
        if let Err(error) = &written {
            let message = format!("writing the log failed for this write's group: {error}");
            // The leader returns its own error; the others find theirs here. (A timestamp in
            // between that was never queued, such as a bare `Mvcc::commit`'s, never asks.)
            for ts in group.first + 1..=group.last {
                queue.failed.insert(ts, message.clone());
            }
            // TODO(week 4 day 3, task 1: fail every writer of a group whose log write or sync failed, and make the error sticky (book: week4-03-log-errors))
        }
        drop(queue);
        // TODO(week 4 day 3, task 1: fail every writer of a group whose log write or sync failed, and make the error sticky (book: week4-03-log-errors))
        // TODO(week 4 day 7, task 1: count each write once, when it commits: its entries, its user bytes, its group (book: week4-07-metrics))
        signal.notify();
    }

    /// Makes a log wait past its deadline sticky, and says so.
    fn log_timed_out(&self, ts: u64) -> anyhow::Error {
        let error = format!(
            "the log did not write commit {ts} within {:?}; it may still be written, so the \
             engine takes no more writes",
            self.options.commit_timeout
        );
        let mut queue = self.commit_queue.queue.lock();
        if queue.sticky.is_none() {
            queue.sticky = Some(error.clone());
        }
        drop(queue);
        self.record_log_error(&error);
        anyhow!("{error}")
    }
}
