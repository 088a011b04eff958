// SPDX-License-Identifier: Apache-2.0
//! The model: sorted maps that do what the engine promises, and nothing else.
//!
//! [`Versions`] keeps every committed version of every key (key -> commit timestamp -> value,
//! `None` for a tombstone) and answers a read at any timestamp: the newest version at or below
//! it. A write or a batch is one commit, at the timestamp after the latest, as the engine's
//! commits are from week 3 day 3 (before that the engine has no timestamps, and reads at the
//! latest commit, which is all the model is asked then). [`Model`] adds the snapshots: the read
//! timestamp held in each slot, and the watermark they make.
//!
//! ```text
//!   k01: 1=v7  4=<tombstone>  6=v2        a read at 5 sees nothing, at 3 sees v7
//!   k02: 2=v1                              snapshots: s0@3, s2@5; watermark 3; latest 6
//! ```
//!
//! Freezes, flushes and compactions change where the engine keeps its data, never what a read
//! returns, so they do nothing here. A close or a crash after `sync` loses nothing either: the
//! engine syncs before it cuts the power, so every write so far is durable, and the latest
//! commit timestamp survives it. A reopen drops the snapshots and aborts the transactions.
//!
//! Transactions (week 3 days 5 and 6) sit on top of [`Versions`]: a transaction reads at the
//! read timestamp it began with (registered like a snapshot's, so it holds the watermark),
//! through its own writes first. Committing one replays its write set as one
//! [`Versions::commit`], so the model replays committed transactions in commit order, each at its
//! commit timestamp; every read a transaction made was checked against [`Versions::get_at`] at its
//! read timestamp. Whether a commit may happen is decided from the versions alone, as the
//! isolation level says: under snapshot isolation it fails iff a key it writes has a version
//! above its read timestamp; under serializable iff a key it read from its snapshot, or any key
//! in a range it scanned, has one (a phantom is a key that did not exist when it scanned). A
//! transaction that wrote nothing always commits, without a timestamp; a failed commit writes
//! nothing and uses no timestamp; an abort commits nothing.
//!
//! ```text
//!   t0: begin@3  txn_scan k00..k10  txn_put k20           commit -> conflict (serializable):
//!   put k05 (ts 4) ───────────────────────────────────▶   k05@4 lies in the scanned range
//! ```
//!
//! Time travel (week 3 day 7) reads at any timestamp from the watermark to the latest commit,
//! and is refused outside it.
//!
//! Week 4: a version may be a merge operand (day 6). A read at `ts` folds, as `merge.rs`
//! documents: from the newest version at or below `ts` down, it collects operands until a put
//! (the base) or a tombstone or the oldest version (no base), and appends them, oldest first, to
//! the base with `,` between (the append operator); an empty result reads as no value. Whatever
//! compaction folds (only at or below the watermark), a read must see this. Sync modes, power
//! cuts and process crashes change nothing here: a case crashes only where every commit must
//! survive (see [`crate::ops::Durable`]). A group commits its puts in order, one commit each, and
//! while they wait the latest commit is the one before the group. A group cut by a power cut keeps
//! its first put, the only one whose sync happened, and only that one may return `Ok`.
//!
//! ```text
//!   k01: 7=+v5  5=+v2  3=v9  1=+v1          a read at 7 sees v9,v2,v5; at 4 sees v9; at 2 sees v1
//! ```
//!
//! Left out: which key a conflict names (the engine may report any that forbids the commit), and
//! compaction filters (day 7), whose whole point is to change what reads return.

mod txn;

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use anyhow::Result;

use crate::engines::{Engine, Reply};
use crate::ops::{BatchOp, Chapter, Config, Isolation, Op, Slot, SLOTS, TXN_SLOTS};

/// A batch's records as versions.
fn batch_versions(records: &[BatchOp]) -> impl Iterator<Item = (Vec<u8>, Version)> + '_ {
    records.iter().map(|record| match record {
        BatchOp::Put(k, v) => (k.clone(), Version::Put(v.clone())),
        BatchOp::Del(k) => (k.clone(), Version::Del),
        BatchOp::Merge(k, v) => (k.clone(), Version::Merge(v.clone())),
    })
}
use crate::text::show;
pub use txn::txn_slot_error;
use txn::Txn;

/// The separator of the append operator verify opens the engine with.
pub const MERGE_SEPARATOR: &[u8] = b",";

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// A value.
    Put(Vec<u8>),
    /// A tombstone.
    Del,
    /// A merge operand (week 4 day 6).
    Merge(Vec<u8>),
}

impl Version {
    /// A put of `value`, or a tombstone for `None`.
    pub fn of(value: Option<Vec<u8>>) -> Self {
        value.map_or(Self::Del, Self::Put)
    }
}

/// Every committed version of every key.
#[derive(Debug, Default, Clone)]
pub struct Versions {
    keys: BTreeMap<Vec<u8>, BTreeMap<u64, Version>>,
    latest: u64,
}

impl Versions {
    /// The latest commit timestamp (0 before the first commit).
    pub fn latest(&self) -> u64 {
        self.latest
    }

    /// Commits `writes` at the next timestamp, in order: a key written twice keeps its last
    /// write (as the engine's memtable does: one entry per key and timestamp). Returns the commit
    /// timestamp.
    pub fn commit(&mut self, writes: impl IntoIterator<Item = (Vec<u8>, Version)>) -> u64 {
        self.latest += 1;
        for (key, version) in writes {
            self.keys
                .entry(key)
                .or_default()
                .insert(self.latest, version);
        }
        self.latest
    }

    /// The value of `key` as of `ts`: its newest version at or below `ts`, unless a tombstone;
    /// operands folded over what lies under them (see the module docs).
    pub fn get_at(&self, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        let versions = self.keys.get(key)?;
        let mut operands = Vec::new();
        let mut base: Option<&[u8]> = None;
        for (_, version) in versions.range(..=ts).rev() {
            match version {
                Version::Merge(operand) => operands.push(operand.as_slice()),
                Version::Put(value) => {
                    base = Some(value);
                    break;
                }
                Version::Del => break,
            }
        }
        if operands.is_empty() {
            return base.map(<[u8]>::to_vec);
        }
        let mut folded = base.unwrap_or_default().to_vec();
        for operand in operands.iter().rev() {
            if !folded.is_empty() && !operand.is_empty() {
                folded.extend_from_slice(MERGE_SEPARATOR);
            }
            folded.extend_from_slice(operand);
        }
        (!folded.is_empty()).then_some(folded)
    }

    /// Whether a commit above `ts` wrote `key`.
    pub fn written_after(&self, key: &[u8], ts: u64) -> bool {
        self.keys
            .get(key)
            .is_some_and(|versions| versions.range(ts + 1..).next().is_some())
    }

    /// Whether a commit above `ts` wrote a key in `lower..upper`.
    fn written_in_after(&self, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>, ts: u64) -> bool {
        self.keys.iter().any(|(k, versions)| {
            within(lower, upper, k) && versions.range(ts + 1..).next().is_some()
        })
    }

    /// The live entries as of `ts` whose keys `keep` accepts, in key order.
    pub fn scan_at(&self, keep: impl Fn(&[u8]) -> bool, ts: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.keys
            .keys()
            .filter(|k| keep(k))
            .filter_map(|k| Some((k.clone(), self.get_at(k, ts)?)))
            .collect()
    }
}

/// Whether `range` holds `key` (an inverted range holds nothing, as an engine's scan returns
/// nothing for one; `BTreeMap::range` would panic).
fn within(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    (lower.clone(), upper.clone()).contains(&key.to_vec())
}

/// The error of an operation on an empty snapshot slot (or a snapshot into a full one); the
/// engine adapters give the same, so that a hand-written case that misuses a slot fails alike.
pub fn slot_error(slot: Slot, held: bool) -> anyhow::Error {
    if held {
        anyhow::anyhow!("slot s{slot} holds a snapshot already: drop it first")
    } else {
        anyhow::anyhow!("slot s{slot} holds no snapshot")
    }
}

/// The engine's data, its snapshots and transactions, and what reads see.
#[derive(Debug, Default, Clone)]
pub struct Model {
    versions: Versions,
    /// The read timestamp of the snapshot in each slot.
    snapshots: [Option<u64>; SLOTS],
    /// The transaction in each slot.
    txns: [Option<Txn>; TXN_SLOTS],
    /// How commits are validated (the case's configuration).
    isolation: Isolation,
    /// Whether the dump shows timestamps (from week 3 day 3; before that the engine has none).
    stamped: bool,
}

impl Model {
    /// An empty model.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty model of an engine opened with `config`, for the chapters up to `upto`: its
    /// dump shows timestamps from week 3.
    pub fn for_case(upto: Chapter, config: Config) -> Self {
        Self {
            stamped: upto >= Chapter::COMMIT_TS,
            isolation: config.isolation,
            ..Self::default()
        }
    }

    /// The watermark: the oldest read timestamp of a live snapshot or transaction, or the latest
    /// commit if none lives.
    pub fn watermark(&self) -> u64 {
        let txns = self.txns.iter().flatten().map(|t| t.read_ts);
        self.snapshots
            .iter()
            .flatten()
            .copied()
            .chain(txns)
            .min()
            .unwrap_or(self.versions.latest())
    }

    /// The timestamp `back` commits before the latest, but not below the watermark.
    pub fn back_ts(&self, back: u8) -> u64 {
        let latest = self.versions.latest();
        latest
            .saturating_sub(u64::from(back))
            .max(self.watermark())
            .min(latest)
    }

    fn snapshot(&self, slot: Slot) -> Result<u64> {
        let held = self.snapshots.get(usize::from(slot)).copied().flatten();
        held.ok_or_else(|| slot_error(slot, false))
    }

    /// The timestamp `op` reads at, if it reads at one other than the latest commit (for a
    /// `snapshot` or a `begin`, the one it will read at; for time travel, the one it asks for).
    pub fn read_ts(&self, op: &Op) -> Option<u64> {
        match op {
            Op::Snapshot(_) | Op::Begin(_) => Some(self.versions.latest()),
            Op::SnapGet(s, _) | Op::SnapScan(s, ..) => self.snapshot(*s).ok(),
            Op::GetAt(back, _) | Op::ScanAt(back, ..) => Some(self.back_ts(*back)),
            Op::TxnGet(t, _) | Op::TxnScan(t, ..) => self.txn(*t).ok().map(|t| t.read_ts),
            Op::TravelGet(offset, _) | Op::TravelScan(offset, ..) => {
                Some(self.travel_ts(*offset).0)
            }
            _ => None,
        }
    }

    /// The timestamp `op` commits at, if it commits.
    pub fn commit_ts(&self, op: &Op) -> Option<u64> {
        match op {
            Op::Commit(t) => match self.commit_outcome(*t) {
                Ok(Reply::Committed(ts)) => ts,
                _ => None,
            },
            Op::Group(writes) => (!writes.is_empty()).then(|| self.versions.latest() + 1),
            Op::GroupCut(writes) => (!writes.is_empty()).then(|| self.versions.latest() + 1),
            op => op.commits().then(|| self.versions.latest() + 1),
        }
    }
}

impl Engine for Model {
    fn apply(&mut self, op: &Op) -> Result<Reply> {
        let latest = self.versions.latest();
        match op {
            Op::Put(k, v) | Op::PutOpt(_, k, v) => {
                self.versions.commit([(k.clone(), Version::Put(v.clone()))]);
            }
            Op::Delete(k) | Op::DeleteOpt(_, k) => {
                self.versions.commit([(k.clone(), Version::Del)]);
            }
            Op::Merge(k, v) => {
                self.versions
                    .commit([(k.clone(), Version::Merge(v.clone()))]);
            }
            Op::Batch(records) | Op::BatchOpt(_, records) => {
                self.versions.commit(batch_versions(records));
            }
            Op::Group(writes) => {
                // While the group waits behind its leader, none of it is visible.
                for (_, k, v) in writes {
                    self.versions.commit([(k.clone(), Version::Put(v.clone()))]);
                }
                return Ok(Reply::WhileHeld(latest));
            }
            Op::Get(k) => return Ok(Reply::Value(self.versions.get_at(k, latest))),
            Op::Scan(l, u) => {
                return Ok(Reply::Entries(
                    self.versions.scan_at(|k| within(l, u, k), latest),
                ))
            }
            Op::ScanPrefix(p) => {
                return Ok(Reply::Entries(
                    self.versions.scan_at(|k| k.starts_with(p), latest),
                ))
            }
            Op::LatestTs => return Ok(Reply::Ts(latest)),
            Op::Snapshot(s) => {
                let slot = &mut self.snapshots[usize::from(*s)];
                if slot.is_some() {
                    return Err(slot_error(*s, true));
                }
                *slot = Some(latest);
            }
            Op::DropSnapshot(s) => {
                self.snapshot(*s)?;
                self.snapshots[usize::from(*s)] = None;
            }
            Op::SnapGet(s, k) => {
                let ts = self.snapshot(*s)?;
                return Ok(Reply::Value(self.versions.get_at(k, ts)));
            }
            Op::SnapScan(s, l, u) => {
                let ts = self.snapshot(*s)?;
                return Ok(Reply::Entries(
                    self.versions.scan_at(|k| within(l, u, k), ts),
                ));
            }
            Op::GetAt(back, k) => {
                let ts = self.back_ts(*back);
                return Ok(Reply::Value(self.versions.get_at(k, ts)));
            }
            Op::ScanAt(back, l, u) => {
                let ts = self.back_ts(*back);
                return Ok(Reply::Entries(
                    self.versions.scan_at(|k| within(l, u, k), ts),
                ));
            }
            Op::GroupCut(writes) => {
                // Only the first write's sync happened before the power cut.
                let mut writes = writes.iter();
                if let Some((k, v)) = writes.next() {
                    self.versions.commit([(k.clone(), Version::Put(v.clone()))]);
                }
                self.snapshots = [None; SLOTS];
                self.txns = Default::default();
                let acked = std::iter::once(true).chain(writes.map(|_| false));
                return Ok(Reply::Acked(acked.collect()));
            }
            Op::CloseReopen | Op::CrashReopen | Op::PowerCut | Op::ProcessCrash => {
                self.snapshots = [None; SLOTS];
                self.txns = Default::default();
            }
            Op::Freeze | Op::Flush | Op::FullCompaction | Op::TriggerCompaction => {}
            Op::Begin(_)
            | Op::TxnGet(..)
            | Op::TxnPut(..)
            | Op::TxnDelete(..)
            | Op::TxnScan(..)
            | Op::Commit(_)
            | Op::Abort(_) => return self.apply_txn(op),
            Op::TravelGet(offset, k) => {
                return Ok(match self.travel_ts(*offset) {
                    (_, Some(refusal)) => Reply::Refused(refusal),
                    (ts, None) => Reply::Value(self.versions.get_at(k, ts)),
                });
            }
            Op::TravelScan(offset, l, u) => {
                return Ok(match self.travel_ts(*offset) {
                    (_, Some(refusal)) => Reply::Refused(refusal),
                    (ts, None) => Reply::Entries(self.versions.scan_at(|k| within(l, u, k), ts)),
                });
            }
        }
        Ok(Reply::Done)
    }

    fn dump(&self) -> String {
        let latest = self.versions.latest();
        let live = self.versions.scan_at(|_| true, latest);
        let entries: Vec<String> = live
            .iter()
            .map(|(k, v)| format!("{}={}", show(k), show(v)))
            .collect();
        let mut out = format!("{} keys: {}\n", entries.len(), entries.join(" "));
        if !self.stamped {
            return out;
        }
        let versions: Vec<String> = self
            .versions
            .keys
            .iter()
            .flat_map(|(k, versions)| {
                versions.iter().rev().map(move |(ts, v)| {
                    let v = match v {
                        Version::Put(v) => show(v),
                        Version::Del => "<tombstone>".to_string(),
                        Version::Merge(v) => format!("+{}", show(v)),
                    };
                    format!("{}@{ts}={v}", show(k))
                })
            })
            .collect();
        let txns = (0..TXN_SLOTS).filter_map(|t| {
            let txn = self.txns[t].as_ref()?;
            Some(format!(
                "t{t}@{} ({} writes)",
                txn.read_ts,
                txn.writes.len()
            ))
        });
        let snapshots: Vec<String> = (0..SLOTS)
            .filter_map(|s| Some(format!("s{s}@{}", self.snapshots[s]?)))
            .chain(txns)
            .collect();
        out.push_str(&format!(
            "versions: {}\nlatest commit {latest}, snapshots: {}, watermark {}\n",
            if versions.is_empty() {
                "none".to_string()
            } else {
                versions.join(" ")
            },
            if snapshots.is_empty() {
                "none".to_string()
            } else {
                snapshots.join(" ")
            },
            self.watermark()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&str]) -> Reply {
        Reply::Entries(
            keys.iter()
                .map(|k| (k.as_bytes().to_vec(), b"v".to_vec()))
                .collect(),
        )
    }

    fn put(k: &str, v: &str) -> Op {
        Op::Put(k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    fn get(model: &mut Model, op: Op) -> Reply {
        model.apply(&op).unwrap()
    }

    fn value(v: &str) -> Reply {
        Reply::Value(Some(v.as_bytes().to_vec()))
    }

    /// Scans honour every kind of bound, and an inverted range is empty rather than a panic.
    #[test]
    fn scans_honour_every_bound() {
        let mut model = Model::new();
        for k in ["a", "b", "c", "d"] {
            model.apply(&put(k, "v")).unwrap();
        }
        model.apply(&Op::Delete(b"c".to_vec())).unwrap();
        let scan = |model: &mut Model, l, u| model.apply(&Op::Scan(l, u)).unwrap();
        let inc = |k: &str| Bound::Included(k.as_bytes().to_vec());
        let exc = |k: &str| Bound::Excluded(k.as_bytes().to_vec());
        assert_eq!(scan(&mut model, inc("b"), inc("d")), entries(&["b", "d"]));
        assert_eq!(scan(&mut model, exc("a"), exc("d")), entries(&["b"]));
        assert_eq!(
            scan(&mut model, Bound::Unbounded, exc("b")),
            entries(&["a"])
        );
        assert_eq!(scan(&mut model, inc("d"), inc("a")), entries(&[]));
        assert_eq!(
            model.apply(&Op::ScanPrefix(Vec::new())).unwrap(),
            entries(&["a", "b", "d"])
        );
        assert_eq!(
            model.apply(&Op::Get(b"c".to_vec())).unwrap(),
            Reply::Value(None)
        );
    }

    /// Each write and each batch is one commit; a batch that writes a key twice keeps the last.
    #[test]
    fn every_write_and_batch_is_one_commit() {
        let mut model = Model::new();
        model.apply(&put("a", "1")).unwrap();
        model.apply(&Op::Delete(b"b".to_vec())).unwrap();
        model
            .apply(&Op::Batch(vec![
                BatchOp::Put(b"a".to_vec(), b"2".to_vec()),
                BatchOp::Put(b"a".to_vec(), b"3".to_vec()),
                BatchOp::Del(b"c".to_vec()),
            ]))
            .unwrap();
        assert_eq!(model.apply(&Op::LatestTs).unwrap(), Reply::Ts(3));
        assert_eq!(model.commit_ts(&put("a", "4")), Some(4));
        assert_eq!(get(&mut model, Op::Get(b"a".to_vec())), value("3"));
        model.apply(&Op::CrashReopen).unwrap();
        assert_eq!(model.apply(&Op::LatestTs).unwrap(), Reply::Ts(3));
    }

    /// Operands fold oldest first over the newest put under them, or over nothing under a
    /// tombstone or the oldest version; an empty fold reads as no value; a read at an older
    /// timestamp folds only what lies at or below it; a batch's last write of a key wins.
    #[test]
    fn operands_fold_as_merge_rs_documents() {
        let mut m = Model {
            stamped: true,
            ..Model::new()
        };
        let merge = |k: &str, v: &str| Op::Merge(k.as_bytes().to_vec(), v.as_bytes().to_vec());
        let get_at = |m: &Model, k: &str, ts| m.versions.get_at(k.as_bytes(), ts);
        let some = |v: &str| Some(v.as_bytes().to_vec());
        for op in [
            merge("k", "a"),           // 1
            put("k", "b"),             // 2
            merge("k", "c"),           // 3
            merge("k", "d"),           // 4
            Op::Delete(b"k".to_vec()), // 5
            merge("k", "e"),           // 6
            merge("j", ""),            // 7
            Op::Batch(vec![
                BatchOp::Put(b"j".to_vec(), b"x".to_vec()),
                BatchOp::Merge(b"j".to_vec(), b"y".to_vec()),
            ]), // 8: the merge wins
        ] {
            m.apply(&op).unwrap();
        }
        assert_eq!(get_at(&m, "k", 1), some("a"), "no base: the operand alone");
        assert_eq!(
            get_at(&m, "k", 2),
            some("b"),
            "a put replaces what is under it"
        );
        assert_eq!(get_at(&m, "k", 4), some("b,c,d"), "oldest first");
        assert_eq!(get_at(&m, "k", 5), None);
        assert_eq!(get_at(&m, "k", 6), some("e"), "a tombstone ends the fold");
        assert_eq!(get_at(&m, "j", 7), None, "an empty fold is no value");
        assert_eq!(get_at(&m, "j", 8), some("y"));
        assert!(
            m.dump().contains("k@6=+e k@5=<tombstone> k@4=+d"),
            "{}",
            m.dump()
        );
    }

    /// A group commits its puts in order, one timestamp each, and replies with the latest
    /// commit before it: what a reader must see while the group waits.
    #[test]
    fn a_group_commits_in_order_and_is_invisible_while_it_waits() {
        use crate::ops::SyncMode::{Fsync, Os};
        let mut m = Model::new();
        m.apply(&put("a", "1")).unwrap();
        let group = Op::Group(vec![
            (Os, b"a".to_vec(), b"2".to_vec()),
            (Fsync, b"b".to_vec(), b"3".to_vec()),
            (Os, b"a".to_vec(), b"4".to_vec()),
        ]);
        assert_eq!(m.commit_ts(&group), Some(2));
        assert_eq!(m.apply(&group).unwrap(), Reply::WhileHeld(1));
        assert_eq!(m.apply(&Op::LatestTs).unwrap(), Reply::Ts(4));
        assert_eq!(m.versions.get_at(b"a", 3), Some(b"2".to_vec()));
        assert_eq!(get(&mut m, Op::Get(b"a".to_vec())), value("4"));
    }

    /// A snapshot reads as of its timestamp whatever comes after; reads at older timestamps
    /// stop at the watermark; dropping the oldest snapshot raises it; a reopen drops them all.
    #[test]
    fn snapshots_and_the_watermark() {
        let mut model = Model::for_case(
            Chapter::SNAPSHOT,
            Config::new(crate::ops::Strategy::None, false),
        );
        model.apply(&put("a", "1")).unwrap(); // ts 1
        model.apply(&Op::Snapshot(0)).unwrap(); // at 1
        model.apply(&put("a", "2")).unwrap(); // ts 2
        model.apply(&Op::Snapshot(2)).unwrap(); // at 2
        model.apply(&Op::Delete(b"a".to_vec())).unwrap(); // ts 3
        model.apply(&put("b", "1")).unwrap(); // ts 4
        assert_eq!(model.watermark(), 1);
        assert_eq!(get(&mut model, Op::SnapGet(0, b"a".to_vec())), value("1"));
        assert_eq!(get(&mut model, Op::SnapGet(2, b"a".to_vec())), value("2"));
        assert_eq!(get(&mut model, Op::Get(b"a".to_vec())), Reply::Value(None));
        assert_eq!(model.back_ts(1), 3);
        assert_eq!(model.back_ts(9), 1, "clamped to the watermark");
        assert_eq!(get(&mut model, Op::GetAt(2, b"a".to_vec())), value("2"));
        let dump = model.dump();
        assert!(
            dump.contains("a@3=<tombstone> a@2=2 a@1=1"),
            "newest first: {dump}"
        );
        assert!(dump.contains("snapshots: s0@1 s2@2, watermark 1"), "{dump}");
        model.apply(&Op::DropSnapshot(0)).unwrap();
        assert_eq!(model.watermark(), 2);
        assert_eq!(model.back_ts(9), 2);
        assert_eq!(
            format!(
                "{:#}",
                model.apply(&Op::SnapGet(0, b"a".to_vec())).unwrap_err()
            ),
            "slot s0 holds no snapshot"
        );
        assert!(model.apply(&Op::Snapshot(2)).is_err(), "s2 is taken");
        model.apply(&Op::CloseReopen).unwrap();
        assert_eq!(model.watermark(), 4);
        assert_eq!(
            get(
                &mut model,
                Op::ScanAt(3, Bound::Unbounded, Bound::Unbounded)
            ),
            Reply::Entries(vec![(b"b".to_vec(), b"1".to_vec())])
        );
    }
}
