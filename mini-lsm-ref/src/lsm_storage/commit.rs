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

// ANCHOR: write_options
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
// ANCHOR_END: write_options

/// One queued writer's place in the queue.
struct Member {
    ts: u64,
    /// Where its batch ends in `Queue::records`.
    end: usize,
    sync: SyncMode,
    tally: GroupTally,
}

// ANCHOR: commit_queue
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
// ANCHOR_END: commit_queue

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

    // ANCHOR: linger
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
    // ANCHOR_END: linger

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

    // ANCHOR: lead_group
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
        // @task week4_day2 1
        if queue.leading || queue.members.front().is_none_or(|first| first.ts != ts) {
            return None;
        }
        let mut count = 0;
        let mut end = 0;
        let mut sync = SyncMode::Buffered;
        let mut tally = GroupTally::default();
        for member in &queue.members {
            if count > 0 && (count >= max_writes || member.end > max_bytes) {
                break;
            }
            count += 1;
            end = member.end;
            sync = sync.max(member.sync);
            tally.add(&member.tally);
        }
        let last = queue.members[count - 1].ts;
        queue.members.drain(..count);
        for member in &mut queue.members {
            member.end -= end;
        }
        // The records of the writers left behind move to a spare buffer (usually none: the
        // group takes the whole queue), so that no write allocates a buffer of its own.
        let mut rest = queue.spare.take().unwrap_or_default();
        rest.extend_from_slice(&queue.records[end..]);
        queue.records.truncate(end);
        let records = std::mem::replace(&mut queue.records, rest);
        queue.leading = true;
        Some(Group {
            first: ts,
            last,
            count,
            records,
            sync,
            tally,
        })
        // @end
    }
    // ANCHOR_END: lead_group
}

impl LsmStorageInner {
    /// How many writers wait in the commit queue for a leader to take their records (group
    /// commit, week 4 day 2): for tests that line writers up behind a leader.
    pub fn queued_writers(&self) -> usize {
        self.commit_queue.queued()
    }

    // ANCHOR: commit_pipeline
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
        // @task week4_day1 3
        let clock = &*self.options.clock;
        // The bound of this commit's waits, set at the first: a write that never waits never
        // reads the clock.
        let first_wait = OnceCell::new();
        let deadline = || *first_wait.get_or_init(|| clock.now() + self.options.commit_timeout);
        // Held until the batch is applied: a freeze cannot seal the memtable, or its log, under
        // a queued record (see the module docs).
        let state = self.state.read();
        let memtable = &state.memtable;
        let (ts, logged) = self
            .mvcc
            .prepare(entries, check, |ts| match memtable.wal() {
                // @task week4_day2 1
                Some(wal) => self.log_alone_or_queue(wal, entries, kinds, ts, options.sync),
                // @or week4_day1 3
                // Some(wal) => wal.put_batch_at(entries, ts).map(|()| Logged::Written),
                // @end
                None => Ok(Logged::Written),
            })?;
        // @task week4_day2 1 stub=comment
        let logged = logged.and_then(|logged| match (logged, memtable.wal()) {
            (Logged::Queued, Some(wal)) => self.log_group_commit(wal, ts, clock, deadline()),
            (Logged::Leading, Some(wal)) => self.lead_alone(wal, entries, ts, options.sync),
            _ => Ok(()),
        });
        // @end
        if logged.is_ok() {
            memtable.apply_batch_at(entries, kinds, ts);
        }
        let size = memtable.approximate_size();
        drop(state);
        // Published even if it failed: a failed commit's timestamp is done with nothing applied.
        self.mvcc.publish(ts);
        logged?;
        if self.mvcc.latest_commit_ts() < ts {
            self.mvcc.wait_visible(ts, clock, deadline())?;
        }
        Ok((ts, size))
        // @end
    }
    // ANCHOR_END: commit_pipeline

    // ANCHOR: log_alone_or_queue
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
        // @task week4_day2 1
        let signal = &*self.commit_queue;
        let mut queue = signal.queue.lock();
        let alone = queue.members.is_empty() && !queue.leading && queue.sticky.is_none();
        if !alone || sync == SyncMode::Fsync {
            drop(queue);
            signal.push(entries, kinds, ts, sync);
            return Ok(Logged::Queued);
        }
        // A writer of the last group back in line: a leader lingering for it need not.
        queue.returning = queue.returning.saturating_sub(1);
        if wal.buffer_batch(entries, kinds, ts, sync) {
            queue.leading = true;
            return Ok(Logged::Leading);
        }
        // @task week4_day7 1 stub=comment
        self.metrics.record_group(&[entries]);
        // @end
        Ok(Logged::Written)
        // @end
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
        // @task week4_day2 1
        let group = Group {
            first: ts,
            last: ts,
            count: 1,
            records: Vec::new(),
            sync,
            tally: GroupTally::of(entries),
        };
        let started = Instant::now();
        let written = wal.write_buffered(sync);
        let result = written.as_ref().map(|_| ()).map_err(|e| format!("{e:#}"));
        self.finish_group(group, result, started.elapsed());
        written
        // @end
    }
    // ANCHOR_END: log_alone_or_queue

    // ANCHOR: log_group_commit
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
        // @task week4_day2 1
        let signal = &*self.commit_queue;
        let (max_writes, max_bytes) = (self.options.max_group_writes, self.options.max_group_bytes);
        // The fast path, a writer alone: it leads at once, with no wait and no gap lock.
        let mut queue = signal.queue.lock();
        if queue.returning == 0 || queue.members.len() > 1 {
            if let Some(group) = signal.take_group(&mut queue, ts, max_writes, max_bytes) {
                // @task week4_day3 1 stub=comment
                let sticky = queue.sticky.clone();
                // @end
                drop(queue);
                // @task week4_day3 1
                return self.lead_group(wal, group, sticky);
                // @or week4_day2 1
                // return self.lead_group(wal, group, None);
                // @end
            }
        }
        drop(queue);
        // Counted as waiting, under the gap lock, before the first look at the queue: a leader
        // that finishes after that look sees the count and notifies (see the module docs).
        let mut gap = signal.gap.lock();
        signal.waiting.fetch_add(1, Ordering::SeqCst);
        let mut linger_until = None;
        let outcome = loop {
            let mut queue = signal.queue.lock();
            if queue.done_upto >= ts {
                break Turn::Done(queue.failed.remove(&ts));
            }
            if let Some(until) = signal.linger(&mut queue, ts, &mut linger_until) {
                drop(queue);
                signal.changed.wait_until(&mut gap, until);
                continue;
            }
            if let Some(group) = signal.take_group(&mut queue, ts, max_writes, max_bytes) {
                // @task week4_day3 1 stub=comment
                let sticky = queue.sticky.clone();
                // @end
                // @task week4_day3 1
                break Turn::Lead(group, sticky);
                // @or week4_day2 1
                // break Turn::Lead(group, None);
                // @end
            }
            drop(queue);
            if clock.now() >= deadline {
                break Turn::TimedOut;
            }
            clock.wait_until(&signal.changed, &mut gap, deadline);
        };
        signal.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(gap);
        match outcome {
            Turn::Done(None) => Ok(()),
            Turn::Done(Some(error)) => Err(anyhow!("{error}")),
            Turn::TimedOut => Err(self.log_timed_out(ts)),
            Turn::Lead(group, sticky) => self.lead_group(wal, group, sticky),
        }
        // @end
    }

    /// Writes `group` to `wal` (unless the log has failed before: `sticky`), and hands its
    /// result to its members.
    fn lead_group(&self, wal: &Wal, group: Group, sticky: Option<String>) -> Result<()> {
        // @task week4_day2 1
        let started = Instant::now();
        let written = match sticky {
            // The log's tail is unknown after a failure: nothing may follow it.
            Some(error) => Err(anyhow!("{error}")),
            None => wal.append_group(&group.records, group.sync),
        };
        let result = written.as_ref().map(|_| ()).map_err(|e| format!("{e:#}"));
        self.finish_group(group, result, started.elapsed());
        written
        // @end
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
            // @task week4_day3 1 stub=comment
            if queue.sticky.is_none() {
                queue.sticky = Some(error.clone());
            }
            // @end
        }
        drop(queue);
        // @task week4_day3 1 stub=comment
        if let Err(error) = &written {
            self.record_log_error(error);
        }
        // @end
        // @task week4_day7 1 stub=comment
        if written.is_ok() {
            // Counted here, once per group: one log write, however many writers it carries.
            self.metrics.record_tally(&group.tally);
        }
        // @end
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
    // ANCHOR_END: log_group_commit
}
