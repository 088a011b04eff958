// SPDX-License-Identifier: Apache-2.0
//! The operations verify runs, and the chapters that make each one available.
//!
//! A *case* is an engine configuration and a sequence of operations. [`crate::text`] gives them
//! the text form that `verify` prints and the regression files keep, one operation a line.
//!
//! From week 3 every write or batch commits at a timestamp of its own, one more than the last,
//! and reads can look back in time: through a *snapshot*, held in one of [`SLOTS`] slots (`s0`,
//! `s1`, `s2`) from `snapshot` to `drop_snapshot`, or at an older timestamp given as a number of
//! commits back from the latest. A read may not look below the *watermark* (the oldest live
//! snapshot's timestamp, or the latest commit when none lives), since compaction drops what only
//! such a read could see: `get_at -3 k01` reads as of three commits back, or at the watermark if
//! that is later. A reopen drops every snapshot (a snapshot borrows the engine it reads).
//!
//! Transactions (week 3 days 5 and 6) live in [`TXN_SLOTS`] slots of their own (`t0`, `t1`,
//! `t2`), from `begin` to `commit` or `abort`, so that several are open at once and interleave
//! with plain writes, flushes and compactions; a reopen aborts them. How a commit is validated is
//! the case's [`Isolation`], an option the engine is opened with. Time travel (week 3 day 7)
//! reads through `new_snapshot_at` at a timestamp given relative to the latest commit, which may
//! be refused: `travel_get -3 k01` three commits back, `travel_get +1 k01` one above the latest.
//!
//! Week 4 adds the production write path. Writes may name how durable they must be when they
//! return ([`SyncMode`], day 2: `put_opt fsync k01 v3`), and two crashes test what that promises:
//! a *power cut* keeps only what was synced, a *process crash* keeps what reached the OS too.
//! A case cuts the power only where every commit so far must survive it (the last write asked for
//! fsync, or nothing was written since a sync), and crashes the process only where every commit
//! reached the OS, so the model knows exactly what is left: everything. A *group* lines writers
//! up behind a leader held in the middle of its log write, so that they commit as one group, and
//! reads the latest commit timestamp while they wait: none of them may be visible yet (day 1).
//! A *group cut* lines writers up likewise, then cuts the power while the group behind the leader
//! waits for its sync: only the leader may have returned `Ok`, and only its write survives.
//! Merge operands (day 6: `merge k01 v5`, and `merge:` records in batches) are folded by the
//! append operator, whose result shows the order of the fold.

use std::fmt;
use std::ops::Bound;

use anyhow::{Context, Result};

/// How many snapshots a case can hold at once.
pub const SLOTS: usize = 3;

/// How many transactions a case can hold open at once.
pub const TXN_SLOTS: usize = 3;

/// A chapter of the course, `(week, day)`; chapters compare in course order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Chapter(pub u32, pub u32);

impl Chapter {
    /// Put, delete, get, and freezing the memtable.
    pub const MEMTABLE: Self = Self(1, 1);
    /// Scans with bounds of every kind.
    pub const SCAN: Self = Self(1, 2);
    /// The engine's own flush, and prefix scans.
    pub const FLUSH: Self = Self(1, 6);
    /// `force_full_compaction`.
    pub const FULL_COMPACTION: Self = Self(2, 1);
    /// Simple leveled compaction.
    pub const SIMPLE: Self = Self(2, 2);
    /// Tiered compaction.
    pub const TIERED: Self = Self(2, 3);
    /// Leveled compaction.
    pub const LEVELED: Self = Self(2, 4);
    /// The manifest: close and reopen.
    pub const REOPEN: Self = Self(2, 5);
    /// The write-ahead log: crash and reopen.
    pub const WAL: Self = Self(2, 6);
    /// Batch writes.
    pub const BATCH: Self = Self(2, 7);
    /// Commit timestamps: each write at the next one, recovered at open.
    pub const COMMIT_TS: Self = Self(3, 3);
    /// Snapshots, the watermark, and reads at older timestamps.
    pub const SNAPSHOT: Self = Self(3, 4);
    /// Transactions: begin, read, write, commit, abort (unvalidated).
    pub const TXN: Self = Self(3, 5);
    /// Commits validated at snapshot isolation or serializable.
    pub const VALIDATION: Self = Self(3, 6);
    /// Time travel: reads through `new_snapshot_at`, refused outside the watermark..latest.
    pub const TIME_TRAVEL: Self = Self(3, 7);
    /// Ordered publishing: a timestamp is visible only once it and every earlier one applied.
    pub const PUBLISH: Self = Self(4, 1);
    /// Group commit and sync modes: `put_opt` and friends, power cuts and process crashes, and
    /// writers lined up into one group.
    pub const GROUP_COMMIT: Self = Self(4, 2);
    /// Merge operands: `merge`, and batches with operands (`write_batch_ops`).
    pub const MERGE: Self = Self(4, 6);

    /// Parses a chapter id, `weekW_dayD`.
    ///
    /// # Errors
    /// If `id` is not of that form.
    pub fn parse(id: &str) -> Result<Self> {
        let parsed = id.strip_prefix("week").and_then(|rest| {
            let (week, day) = rest.split_once("_day")?;
            Some(Self(week.parse().ok()?, day.parse().ok()?))
        });
        parsed.with_context(|| format!("`{id}` is not a chapter id like week1_day6"))
    }

    /// `week1_day6`.
    pub fn id(self) -> String {
        format!("week{}_day{}", self.0, self.1)
    }
}

impl fmt::Display for Chapter {
    /// "week 1 day 6".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "week {} day {}", self.0, self.1)
    }
}

/// The compaction strategy an engine is opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `NoCompaction`: only `force_full_compaction` compacts.
    None,
    /// Simple leveled compaction.
    Simple,
    /// Tiered compaction.
    Tiered,
    /// Leveled compaction.
    Leveled,
}

impl Strategy {
    /// Every strategy, simplest first (shrinking moves towards the first).
    pub const ALL: [Self; 4] = [Self::None, Self::Simple, Self::Tiered, Self::Leveled];

    /// The chapter that implements it.
    pub fn needs(self) -> Chapter {
        match self {
            Self::None => Chapter::MEMTABLE,
            Self::Simple => Chapter::SIMPLE,
            Self::Tiered => Chapter::TIERED,
            Self::Leveled => Chapter::LEVELED,
        }
    }

    /// Its name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Simple => "simple",
            Self::Tiered => "tiered",
            Self::Leveled => "leveled",
        }
    }
}

/// What a transaction's commit is validated for: the engine's `isolation` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// No validation (week 3 day 5 has only this, whatever the option says).
    #[default]
    Unvalidated,
    /// Snapshot isolation: a commit fails iff a key it writes was written by a commit after its
    /// read timestamp.
    Snapshot,
    /// Serializable: a commit fails iff a key it read from its snapshot, or any key in a range
    /// it scanned, was written by a commit after its read timestamp.
    Serializable,
}

impl Isolation {
    /// Every level, simplest first (shrinking moves towards the first).
    pub const ALL: [Self; 3] = [Self::Unvalidated, Self::Snapshot, Self::Serializable];

    /// The chapter that implements it.
    pub fn needs(self) -> Chapter {
        match self {
            Self::Unvalidated => Chapter::MEMTABLE,
            Self::Snapshot | Self::Serializable => Chapter::VALIDATION,
        }
    }

    /// Its name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unvalidated => "unvalidated",
            Self::Snapshot => "snapshot",
            Self::Serializable => "serializable",
        }
    }
}

/// How an engine is opened for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The compaction strategy.
    pub strategy: Strategy,
    /// Whether writes go to a write-ahead log (needed by `crash_reopen`).
    pub wal: bool,
    /// How transactions' commits are validated.
    pub isolation: Isolation,
}

impl Config {
    /// A configuration whose transactions are not validated.
    pub fn new(strategy: Strategy, wal: bool) -> Self {
        Self {
            strategy,
            wal,
            isolation: Isolation::Unvalidated,
        }
    }

    /// The latest chapter this configuration needs.
    pub fn needs(self) -> Chapter {
        let wal = if self.wal {
            Chapter::WAL
        } else {
            Chapter::MEMTABLE
        };
        self.strategy.needs().max(wal).max(self.isolation.needs())
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Put a value.
    Put(Vec<u8>, Vec<u8>),
    /// Delete a key.
    Del(Vec<u8>),
    /// Add a merge operand (week 4 day 6): the batch is written with `write_batch_ops`.
    Merge(Vec<u8>, Vec<u8>),
}

/// How durable a write must be when it returns (the engine's `SyncMode`, week 4 day 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncMode {
    /// In the log's buffer in the process.
    Buffered,
    /// Written to the OS: a process crash keeps it.
    Os,
    /// Synced to the disk: a power cut keeps it.
    Fsync,
}

impl SyncMode {
    /// Every mode, the least durable first (shrinking moves towards the first).
    pub const ALL: [Self; 3] = [Self::Buffered, Self::Os, Self::Fsync];

    /// Its name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Self::Buffered => "buffered",
            Self::Os => "os",
            Self::Fsync => "fsync",
        }
    }
}

/// What a crash may lose, as far as the case knows: how far every commit so far has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durable {
    /// Some commit may still be in the log's buffer in the process.
    Process,
    /// Every commit reached the OS: a process crash loses none.
    Os,
    /// Every commit is synced: a power cut loses none.
    Disk,
}

impl Durable {
    /// How far every commit has gone after `op` commits with `sync` (a write without options, a
    /// merge or a transaction's commit: the engine's default, buffered). A write taken to the OS
    /// or synced takes every earlier commit with it, as the log is written in commit order.
    pub fn after_commit(sync: Option<SyncMode>) -> Self {
        match sync {
            Some(SyncMode::Fsync) => Self::Disk,
            Some(SyncMode::Os) => Self::Os,
            Some(SyncMode::Buffered) | None => Self::Process,
        }
    }
}

/// A snapshot slot, `0..SLOTS`; or a transaction slot, `0..TXN_SLOTS`.
pub type Slot = u8;

/// One operation of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Scan(Bound<Vec<u8>>, Bound<Vec<u8>>),
    ScanPrefix(Vec<u8>),
    Freeze,
    Flush,
    FullCompaction,
    TriggerCompaction,
    CloseReopen,
    CrashReopen,
    Batch(Vec<BatchOp>),
    /// Reads `latest_commit_ts`: one commit per write or batch so far, across reopens.
    LatestTs,
    /// Takes a snapshot into a free slot.
    Snapshot(Slot),
    /// `get` through the snapshot in a slot.
    SnapGet(Slot, Vec<u8>),
    /// `scan` through the snapshot in a slot.
    SnapScan(Slot, Bound<Vec<u8>>, Bound<Vec<u8>>),
    /// Drops the snapshot in a slot.
    DropSnapshot(Slot),
    /// `get_with_ts` as of `back` commits before the latest, but not below the watermark.
    GetAt(u8, Vec<u8>),
    /// `scan_with_ts` as of `back` commits before the latest, but not below the watermark.
    ScanAt(u8, Bound<Vec<u8>>, Bound<Vec<u8>>),
    /// `new_txn` into a free transaction slot.
    Begin(Slot),
    /// `get` in the transaction in a slot.
    TxnGet(Slot, Vec<u8>),
    /// `put` in the transaction in a slot.
    TxnPut(Slot, Vec<u8>, Vec<u8>),
    /// `delete` in the transaction in a slot.
    TxnDelete(Slot, Vec<u8>),
    /// `scan` in the transaction in a slot.
    TxnScan(Slot, Bound<Vec<u8>>, Bound<Vec<u8>>),
    /// Commits the transaction in a slot, which frees the slot whether it commits or not.
    Commit(Slot),
    /// Drops the transaction in a slot without committing it.
    Abort(Slot),
    /// `get_at` (through `new_snapshot_at`) at the latest commit plus `offset` (not below 0).
    TravelGet(i8, Vec<u8>),
    /// `scan_at` (through `new_snapshot_at`) at the latest commit plus `offset`.
    TravelScan(i8, Bound<Vec<u8>>, Bound<Vec<u8>>),
    /// `put_opt` with a sync mode (week 4 day 2).
    PutOpt(SyncMode, Vec<u8>, Vec<u8>),
    /// `delete_opt` with a sync mode.
    DeleteOpt(SyncMode, Vec<u8>),
    /// `write_batch_opt` with a sync mode (puts and deletes only).
    BatchOpt(SyncMode, Vec<BatchOp>),
    /// Cuts the power without a sync (`MemFs::crash_now`) and opens what survived: allowed only
    /// where every commit is synced ([`Durable::Disk`]).
    PowerCut,
    /// Drops the engine without closing it, as a killed process does, and opens the same files:
    /// allowed only where every commit reached the OS ([`Durable::Os`]).
    ProcessCrash,
    /// Puts committed as one group: the first (which syncs or writes to the OS) is held at its
    /// log write until each of the others is queued behind it, on threads of their own; then the
    /// latest commit timestamp is read (none of them may be visible), and they are let go.
    Group(Vec<(SyncMode, Vec<u8>, Vec<u8>)>),
    /// Puts with fsync, the first held at its log write until the others queue behind it; then
    /// let go, with the others' group held at its sync, where the power is cut: the first is
    /// acknowledged, the others must fail (their sync never happened), and the engine opens on
    /// what survived: the first alone.
    GroupCut(Vec<(Vec<u8>, Vec<u8>)>),
    /// `merge` (week 4 day 6), with the append operator.
    Merge(Vec<u8>, Vec<u8>),
}

impl Op {
    /// The chapter that makes this operation available.
    pub fn needs(&self) -> Chapter {
        match self {
            Op::Put(..) | Op::Delete(_) | Op::Get(_) | Op::Freeze => Chapter::MEMTABLE,
            Op::Scan(..) => Chapter::SCAN,
            Op::ScanPrefix(_) | Op::Flush => Chapter::FLUSH,
            Op::FullCompaction => Chapter::FULL_COMPACTION,
            Op::TriggerCompaction => Chapter::SIMPLE,
            Op::CloseReopen => Chapter::REOPEN,
            Op::CrashReopen => Chapter::WAL,
            Op::Batch(records) if records.iter().any(|r| matches!(r, BatchOp::Merge(..))) => {
                Chapter::MERGE
            }
            Op::Batch(_) => Chapter::BATCH,
            Op::LatestTs => Chapter::COMMIT_TS,
            Op::Snapshot(_)
            | Op::SnapGet(..)
            | Op::SnapScan(..)
            | Op::DropSnapshot(_)
            | Op::GetAt(..)
            | Op::ScanAt(..) => Chapter::SNAPSHOT,
            Op::Begin(_)
            | Op::TxnGet(..)
            | Op::TxnPut(..)
            | Op::TxnDelete(..)
            | Op::TxnScan(..)
            | Op::Commit(_)
            | Op::Abort(_) => Chapter::TXN,
            Op::TravelGet(..) | Op::TravelScan(..) => Chapter::TIME_TRAVEL,
            Op::PutOpt(..)
            | Op::DeleteOpt(..)
            | Op::BatchOpt(..)
            | Op::PowerCut
            | Op::ProcessCrash
            | Op::Group(_)
            | Op::GroupCut(_) => Chapter::GROUP_COMMIT,
            Op::Merge(..) => Chapter::MERGE,
        }
    }

    /// Whether it reads (its outcome is checked against the oracle's).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::Get(_)
                | Op::Scan(..)
                | Op::ScanPrefix(_)
                | Op::LatestTs
                | Op::SnapGet(..)
                | Op::SnapScan(..)
                | Op::GetAt(..)
                | Op::ScanAt(..)
                | Op::TxnGet(..)
                | Op::TxnScan(..)
                | Op::Commit(_)
                | Op::TravelGet(..)
                | Op::TravelScan(..)
                | Op::Group(_)
                | Op::GroupCut(_)
        )
    }

    /// The transaction slot it acts on, if it acts on one.
    pub fn txn_slot(&self) -> Option<Slot> {
        match self {
            Op::Begin(t)
            | Op::TxnGet(t, _)
            | Op::TxnPut(t, ..)
            | Op::TxnDelete(t, _)
            | Op::TxnScan(t, ..)
            | Op::Commit(t)
            | Op::Abort(t) => Some(*t),
            _ => None,
        }
    }

    /// Whether it always commits (at the next timestamp); a transaction's `commit` may not.
    pub fn commits(&self) -> bool {
        matches!(
            self,
            Op::Put(..)
                | Op::Delete(_)
                | Op::Batch(_)
                | Op::PutOpt(..)
                | Op::DeleteOpt(..)
                | Op::BatchOpt(..)
                | Op::Merge(..)
        )
    }

    /// Whether it reopens the engine, dropping every snapshot.
    pub fn reopens(&self) -> bool {
        matches!(
            self,
            Op::CloseReopen | Op::CrashReopen | Op::PowerCut | Op::ProcessCrash | Op::GroupCut(_)
        )
    }

    /// How far every commit has gone after this operation, given how far they had gone before:
    /// a write lowers it to what its sync mode promises (or raises it, taking every earlier
    /// commit along); a close, or a crash that syncs first, makes everything durable; a reopen
    /// after a crash keeps only what is durable, so everything left is.
    pub fn durable_after(&self, before: Durable) -> Durable {
        match self {
            Op::PutOpt(sync, ..) | Op::DeleteOpt(sync, _) | Op::BatchOpt(sync, _) => {
                Durable::after_commit(Some(*sync))
            }
            // Its members commit in order, so the last one's mode holds for all of them (an
            // earlier member's fsync may have taken the last along, but a case does not count on
            // how the engine groups them).
            Op::Group(writes) => Durable::after_commit(writes.last().map(|w| w.0)),
            // A transaction's commit may write, at the engine's default mode.
            Op::Put(..) | Op::Delete(_) | Op::Batch(_) | Op::Merge(..) | Op::Commit(_) => {
                Durable::Process
            }
            op if op.reopens() => Durable::Disk,
            _ => before,
        }
    }
}

/// A configuration and its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub config: Config,
    pub ops: Vec<Op>,
}

impl Case {
    /// The latest chapter this case needs.
    pub fn needs(&self) -> Chapter {
        self.ops
            .iter()
            .map(Op::needs)
            .fold(self.config.needs(), Chapter::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chapter an operation names is a chapter of the course manifest, with the title
    /// that says what the operation needs: renumbering the course must update verify too.
    #[test]
    fn chapters_are_the_manifests() {
        let manifest = include_str!("../../course.toml");
        let title = |c: Chapter| {
            let at = manifest
                .find(&format!("id = \"{}\"", c.id()))
                .unwrap_or_else(|| panic!("{c} is not in course.toml"));
            let rest = &manifest[at..];
            let line = rest.lines().find(|l| l.starts_with("title = ")).unwrap();
            line.trim_start_matches("title = ")
                .trim_matches('"')
                .to_string()
        };
        assert_eq!(title(Chapter::MEMTABLE), "Memtable");
        assert_eq!(title(Chapter::SCAN), "Merge iterator");
        assert_eq!(title(Chapter::FLUSH), "Write path");
        assert_eq!(title(Chapter::FULL_COMPACTION), "Compaction implementation");
        assert_eq!(title(Chapter::SIMPLE), "Simple leveled compaction");
        assert_eq!(title(Chapter::TIERED), "Tiered compaction");
        assert_eq!(title(Chapter::LEVELED), "Leveled compaction");
        assert_eq!(title(Chapter::REOPEN), "Manifest");
        assert_eq!(title(Chapter::WAL), "Write-ahead log");
        assert_eq!(title(Chapter::BATCH), "Batch writes and checksums");
        assert_eq!(title(Chapter::COMMIT_TS), "Commit timestamps");
        assert_eq!(title(Chapter::SNAPSHOT), "Snapshots and the watermark");
        assert_eq!(title(Chapter::TXN), "Transactions");
        assert_eq!(title(Chapter::VALIDATION), "Serializable validation");
        assert_eq!(
            title(Chapter::TIME_TRAVEL),
            "Compaction filters and time travel"
        );
    }

    /// A case needs the latest chapter of its operations and configuration.
    #[test]
    fn case_needs_its_latest_chapter() {
        let mut case = Case {
            config: Config::new(Strategy::None, false),
            ops: vec![Op::Get(b"k".to_vec()), Op::Flush],
        };
        assert_eq!(case.needs(), Chapter::FLUSH);
        case.config.wal = true;
        assert_eq!(case.needs(), Chapter::WAL);
        case.ops.push(Op::LatestTs);
        assert_eq!(case.needs(), Chapter::COMMIT_TS);
        case.ops.push(Op::GetAt(2, b"k".to_vec()));
        assert_eq!(case.needs(), Chapter::SNAPSHOT);
        case.ops.push(Op::Begin(0));
        assert_eq!(case.needs(), Chapter::TXN);
        case.config.isolation = Isolation::Serializable;
        assert_eq!(case.needs(), Chapter::VALIDATION);
        case.ops.push(Op::TravelGet(-1, b"k".to_vec()));
        assert_eq!(case.needs(), Chapter::TIME_TRAVEL);
        assert_eq!(Chapter::parse("week2_day6").unwrap(), Chapter::WAL);
        assert!(Chapter::parse("week2").is_err());
    }
}
