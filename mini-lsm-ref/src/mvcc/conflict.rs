// SPDX-License-Identifier: Apache-2.0
//! Optimistic validation of transactions (week 3 day 6): what each commit wrote, kept while a
//! live transaction could conflict with it, and the check a transaction passes to commit.
//!
//! A transaction reads from a snapshot at its read timestamp and writes into a private write
//! set. It commits only if no transaction that committed *after* its read timestamp did
//! something that would make this one's outcome impossible in a serial order. Which things count
//! is the isolation level:
//!
//! ```text
//!   t1: begin@5 ── read x ── read a..c ── write y ──────────── commit? ──▶ check commits 6..now
//!   t2:           begin@5 ── write x ── commit@6                              │
//!   t3:                        begin@6 ── write b ── commit@7                 │
//!                                                                             ▼
//!   snapshot:      t1 and t2/t3 wrote different keys (y vs x, b)      ──▶ t1 commits
//!   serializable:  t1 read x, which t2 wrote at 6 (a stale read)      ──▶ t1 aborts
//!                  (and b, written at 7, lies in the range t1 scanned: a phantom)
//! ```
//!
//! - [`Isolation::Snapshot`]: first committer wins on each key written: a transaction aborts if
//!   another one committed a write to a key it writes. Lost updates are prevented; write skew and
//!   phantoms are not (two transactions that read overlapping data and write disjoint keys both
//!   commit).
//! - [`Isolation::Serializable`]: a transaction aborts if another one committed a write to a key
//!   it read from its snapshot, or *into a key range it scanned*, whether or not that key existed
//!   when it scanned (an insert into the range is a phantom). Its reads are then still true at
//!   its commit, so it behaves as if it ran, all at once, at its commit timestamp. Blind writes
//!   (written, never read) do not conflict: serialised in commit order, the later one wins, as it
//!   does here.
//! - [`Isolation::Unvalidated`]: no check at all (week 3 day 5). Reads still come from one
//!   snapshot and a commit is still atomic, but every anomaly that needs a write-write or a
//!   read-write check is possible.
//!
//! A read-only transaction commits without validation in every level: what it read was one
//! consistent snapshot, so it serialises at its read timestamp.
//!
//! # The window of recent commits
//!
//! [`RecentCommits`] keeps the keys each commit wrote, by commit timestamp, but only while a
//! transaction that began before that commit is still live: a transaction at read timestamp
//! `r` checks only commits above `r`, so a commit at or below the oldest live transaction's read
//! timestamp can never conflict again, and is pruned. With no live transaction, nothing is kept
//! and a commit records nothing. Plain writes and batches outside transactions are recorded too,
//! as transactions of their own: a transaction that read `x` must abort if a plain `put(x)`
//! committed after its read timestamp.
//!
//! Everything here runs under the commit lock (see [`super::Mvcc`]): a commit validates, takes
//! its timestamp, applies and records, all before the next commit validates; and a transaction
//! begins under the same lock, so that every commit after its read timestamp sees it live and
//! records its writes.
//!
//! Left out, and what it costs: a scan records the whole range it was asked for, not the part
//! the caller read before dropping the iterator, so a scan cut short can abort a transaction for
//! a write past the point where it stopped. Validation is per key, without predicates: a range
//! scanned is a range, whatever filter the caller applied to it. And there is no deadlock, as
//! there are no locks: the price is that a conflict is found only at commit, after the work.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use bytes::Bytes;

use super::Watermark;

// ANCHOR: isolation
/// How much a transaction's commit checks against the transactions that committed while it ran
/// (week 3 day 6); see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// No validation: snapshot reads and atomic commits, but lost updates, write skew and
    /// phantoms are all possible (day 5 has only this).
    Unvalidated,
    /// Snapshot isolation: a write-write conflict aborts the later committer. Write skew and
    /// phantoms are possible.
    Snapshot,
    /// Serializable: a write into anything the transaction read (a key, or a scanned range)
    /// aborts it. The default.
    #[default]
    Serializable,
}
// ANCHOR_END: isolation

/// A key range as a scan takes it.
pub type KeyRange = (Bound<Bytes>, Bound<Bytes>);

/// Whether `key` lies in `range`.
fn range_contains((lower, upper): &KeyRange, key: &[u8]) -> bool {
    let above = match lower {
        Bound::Included(lower) => key >= &lower[..],
        Bound::Excluded(lower) => key > &lower[..],
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(upper) => key <= &upper[..],
        Bound::Excluded(upper) => key < &upper[..],
        Bound::Unbounded => true,
    };
    above && below
}

/// Shows a range as `[b"a", b"c")`, `[b"a", +inf)` and so on.
fn show_range((lower, upper): &KeyRange) -> String {
    let lower = match lower {
        Bound::Included(k) => format!("[{:?}", Show(k)),
        Bound::Excluded(k) => format!("({:?}", Show(k)),
        Bound::Unbounded => "(-inf".to_string(),
    };
    let upper = match upper {
        Bound::Included(k) => format!("{:?}]", Show(k)),
        Bound::Excluded(k) => format!("{:?})", Show(k)),
        Bound::Unbounded => "+inf)".to_string(),
    };
    format!("{lower}, {upper}")
}

/// Shows key bytes as an escaped byte string: `b"user\x01"`.
struct Show<'a>(&'a [u8]);

impl fmt::Debug for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

// ANCHOR: read_set
/// What a transaction read from its snapshot, for serializable validation: the keys it got, and
/// the ranges it scanned. Reads its own write set answered are not here: they depend on no other
/// transaction.
#[derive(Debug, Default, Clone)]
pub struct ReadSet {
    keys: BTreeSet<Bytes>,
    ranges: Vec<KeyRange>,
}

impl ReadSet {
    /// Records a point read of `key`.
    pub fn add_key(&mut self, key: &[u8]) {
        // @task week3_day6 3
        if !self.keys.contains(key) {
            self.keys.insert(Bytes::copy_from_slice(key));
        }
        // @end
    }

    /// Records a scan of `lower..upper`: every key in it, present or not.
    pub fn add_range(&mut self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) {
        // @task week3_day6 3
        let own = |bound: Bound<&[u8]>| bound.map(Bytes::copy_from_slice);
        self.ranges.push((own(lower), own(upper)));
        // @end
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ranges.is_empty()
    }
}
// ANCHOR_END: read_set

// ANCHOR: commit_check
/// What a transaction's commit is validated with: its read timestamp, its isolation level and
/// what it read. (Its writes are the batch being committed.)
#[derive(Debug, Clone, Copy)]
pub struct CommitCheck<'a> {
    /// The transaction's read timestamp: it saw every commit at or below it, none above.
    pub read_ts: u64,
    /// What the commit checks.
    pub isolation: Isolation,
    /// What it read from its snapshot (used by [`Isolation::Serializable`]).
    pub reads: &'a ReadSet,
}
// ANCHOR_END: commit_check

// ANCHOR: conflict
/// Why a transaction could not commit: another transaction committed, after this one's read
/// timestamp, a write that this one's isolation level forbids. Nothing of this transaction was
/// written; retry it from the start with a new transaction.
///
/// The error a commit returns wraps this; `error.downcast_ref::<Conflict>()` finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Snapshot isolation: both wrote `key`, and the other committed first.
    WriteWrite {
        /// The key both wrote.
        key: Bytes,
        /// This transaction's read timestamp.
        read_ts: u64,
        /// When the other transaction committed.
        committed_at: u64,
    },
    /// Serializable: this transaction read `key`, which the other then wrote (a stale read).
    StaleRead {
        /// The key read.
        key: Bytes,
        /// This transaction's read timestamp.
        read_ts: u64,
        /// When the other transaction committed.
        committed_at: u64,
    },
    /// Serializable: the other wrote `key` into `range`, which this transaction scanned (a
    /// phantom, when the key was not there before).
    Phantom {
        /// The range scanned (boxed: a conflict stays small enough to return by value).
        range: Box<KeyRange>,
        /// The key written in it.
        key: Bytes,
        /// This transaction's read timestamp.
        read_ts: u64,
        /// When the other transaction committed.
        committed_at: u64,
    },
}
// ANCHOR_END: conflict

impl Conflict {
    /// The key the other transaction wrote.
    pub fn key(&self) -> &[u8] {
        match self {
            Conflict::WriteWrite { key, .. }
            | Conflict::StaleRead { key, .. }
            | Conflict::Phantom { key, .. } => key,
        }
    }

    /// When the other transaction committed.
    pub fn committed_at(&self) -> u64 {
        match self {
            Conflict::WriteWrite { committed_at, .. }
            | Conflict::StaleRead { committed_at, .. }
            | Conflict::Phantom { committed_at, .. } => *committed_at,
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Conflict::WriteWrite { key, read_ts, .. } => format!(
                "{:?}, which this transaction writes, was written by another transaction that \
                 committed after this one's snapshot at {read_ts} (snapshot isolation: the \
                 first committer wins)",
                Show(key)
            ),
            Conflict::StaleRead { key, read_ts, .. } => format!(
                "{:?}, which this transaction read as of {read_ts}, was written by another \
                 transaction since (serializable: a stale read)",
                Show(key)
            ),
            Conflict::Phantom {
                range,
                key,
                read_ts,
                ..
            } => format!(
                "{:?} was written into the range {} that this transaction scanned as of \
                 {read_ts}, by another transaction since (serializable: a phantom)",
                Show(key),
                show_range(range)
            ),
        };
        write!(
            f,
            "transaction conflict: {what}, which committed at {}; nothing was written: retry the \
             transaction",
            self.committed_at()
        )
    }
}

impl std::error::Error for Conflict {}

// ANCHOR: recent_commits
/// The keys written by recent commits, kept while a live transaction could conflict with them,
/// and the read timestamps of the live transactions that decide how long. Guarded by the commit
/// lock (see [`super::Mvcc`]).
#[derive(Debug, Default)]
pub struct RecentCommits {
    /// The read timestamps of live transactions that will be validated.
    txns: Watermark,
    /// Commit timestamp -> the keys that commit wrote, sorted and without duplicates. Only
    /// commits above the oldest live transaction's read timestamp.
    writes: BTreeMap<u64, Vec<Bytes>>,
}
// ANCHOR_END: recent_commits

impl RecentCommits {
    /// No live transaction, no commit kept.
    pub fn new() -> Self {
        Self::default()
    }

    // ANCHOR: recent_commits_impl
    /// Registers a transaction that reads at `read_ts`: every later commit is kept until it ends.
    pub fn begin(&mut self, read_ts: u64) {
        // @task week3_day6 1
        self.txns.add_reader(read_ts);
        // @end
    }

    /// Unregisters a transaction that [`Self::begin`] registered, and prunes the commits that no
    /// live transaction can conflict with any more: those at or below the oldest one's read
    /// timestamp, or all of them when none is left.
    pub fn end(&mut self, read_ts: u64) {
        // @task week3_day6 1
        self.txns.remove_reader(read_ts);
        match self.txns.watermark() {
            // Keep only the commits above `oldest`: split_off returns them.
            Some(oldest) => self.writes = self.writes.split_off(&(oldest + 1)),
            None => self.writes.clear(),
        }
        // @end
    }

    /// Records that the commit at `ts` wrote the keys of `writes`, if a live transaction began
    /// before it (one that begins later reads at `ts` or above and never checks it).
    pub fn record(&mut self, ts: u64, writes: &[(&[u8], &[u8])]) {
        // @task week3_day6 1
        if self.txns.watermark().is_none_or(|oldest| oldest >= ts) {
            return;
        }
        let mut keys: Vec<Bytes> = writes
            .iter()
            .map(|(key, _)| Bytes::copy_from_slice(key))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        self.writes.insert(ts, keys);
        // @end
    }

    /// Checks a transaction that writes `writes` against every commit after its read timestamp,
    /// as its isolation level says; the first conflict, in commit order, if there is one.
    ///
    /// # Errors
    /// The [`Conflict`] that forbids the commit.
    pub fn validate(
        &self,
        check: &CommitCheck<'_>,
        writes: &[(&[u8], &[u8])],
    ) -> Result<(), Conflict> {
        // @task week3_day6 1
        let read_ts = check.read_ts;
        for (&committed_at, written) in self.writes.range(read_ts + 1..) {
            let has = |key: &[u8]| written.binary_search_by(|k| (**k).cmp(key)).is_ok();
            match check.isolation {
                Isolation::Unvalidated => break,
                Isolation::Snapshot => {
                    if let Some((key, _)) = writes.iter().find(|(key, _)| has(key)) {
                        return Err(Conflict::WriteWrite {
                            key: Bytes::copy_from_slice(key),
                            read_ts,
                            committed_at,
                        });
                    }
                }
                Isolation::Serializable => {
                    if let Some(key) = check.reads.keys.iter().find(|key| has(key)) {
                        return Err(Conflict::StaleRead {
                            key: key.clone(),
                            read_ts,
                            committed_at,
                        });
                    }
                    for range in &check.reads.ranges {
                        if let Some(key) = first_in_range(written, range) {
                            return Err(Conflict::Phantom {
                                range: Box::new(range.clone()),
                                key: key.clone(),
                                read_ts,
                                committed_at,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: recent_commits_impl

    /// How many commits are kept.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether no commit is kept.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// How many transactions are registered.
    pub fn live_txns(&self) -> usize {
        self.txns.num_retained_snapshots()
    }
}

// ANCHOR: first_in_range
/// The first of the sorted `keys` that lies in `range`, found by binary search.
fn first_in_range<'k>(keys: &'k [Bytes], range: &KeyRange) -> Option<&'k Bytes> {
    let start = match &range.0 {
        Bound::Included(lower) => keys.partition_point(|k| k < lower),
        Bound::Excluded(lower) => keys.partition_point(|k| k <= lower),
        Bound::Unbounded => 0,
    };
    keys.get(start).filter(|key| range_contains(range, key))
}
// ANCHOR_END: first_in_range
