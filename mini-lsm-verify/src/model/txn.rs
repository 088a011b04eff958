// SPDX-License-Identifier: Apache-2.0
//! The model's transactions (week 3 days 5 and 6) and time travel (day 7); see the parent
//! module's docs for what they promise.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::{within, Model};
use crate::engines::{Refusal, Reply};
use crate::ops::{Isolation, Op, Slot};
use crate::text::Bounds;

/// The error of an operation on an empty transaction slot (or a `begin` into a full one).
pub fn txn_slot_error(slot: Slot, held: bool) -> anyhow::Error {
    if held {
        anyhow::anyhow!("slot t{slot} holds a transaction already: commit or abort it first")
    } else {
        anyhow::anyhow!("slot t{slot} holds no transaction")
    }
}

/// An open transaction: when it reads, what it wrote, and what it read from its snapshot.
#[derive(Debug, Default, Clone)]
pub(super) struct Txn {
    pub(super) read_ts: u64,
    /// Its write set: key -> value, `None` for a delete.
    pub(super) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The keys its `get`s read from the snapshot (a read its own write answered is not here).
    keys_read: BTreeSet<Vec<u8>>,
    /// The ranges it scanned, whatever they held.
    ranges: Vec<Bounds>,
}

impl Model {
    /// The timestamp at `offset` from the latest commit (not below 0), and whether a snapshot
    /// there is refused: above the latest commit, or below the watermark.
    pub fn travel_ts(&self, offset: i8) -> (u64, Option<Refusal>) {
        let latest = self.versions.latest();
        let ts = latest.saturating_add_signed(i64::from(offset));
        let watermark = self.watermark();
        let refusal = if ts > latest {
            Some(Refusal::AboveLatestCommit { ts, latest })
        } else if ts < watermark {
            Some(Refusal::BelowWatermark { ts, watermark })
        } else {
            None
        };
        (ts, refusal)
    }

    pub(super) fn txn(&self, slot: Slot) -> Result<&Txn> {
        let held = self.txns.get(usize::from(slot)).and_then(Option::as_ref);
        held.ok_or_else(|| txn_slot_error(slot, false))
    }

    fn txn_mut(&mut self, slot: Slot) -> Result<&mut Txn> {
        let held = self
            .txns
            .get_mut(usize::from(slot))
            .and_then(Option::as_mut);
        held.ok_or_else(|| txn_slot_error(slot, false))
    }

    /// Whether `txn`'s commit fails validation: a commit after its read timestamp wrote what its
    /// isolation level forbids. (A transaction that wrote nothing is not validated.)
    fn conflicts(&self, txn: &Txn) -> bool {
        let after = |key: &[u8]| self.versions.written_after(key, txn.read_ts);
        match self.isolation {
            Isolation::Unvalidated => false,
            Isolation::Snapshot => txn.writes.keys().any(|k| after(k)),
            Isolation::Serializable => {
                txn.keys_read.iter().any(|k| after(k))
                    || txn
                        .ranges
                        .iter()
                        .any(|(l, u)| self.versions.written_in_after(l, u, txn.read_ts))
            }
        }
    }

    /// What committing the transaction in `slot` gives: `Some(ts)` committed at `ts`, `None`
    /// committed without writing; or [`Reply::Conflict`].
    pub(super) fn commit_outcome(&self, slot: Slot) -> Result<Reply> {
        let txn = self.txn(slot)?;
        Ok(if txn.writes.is_empty() {
            Reply::Committed(None)
        } else if self.conflicts(txn) {
            Reply::Conflict
        } else {
            Reply::Committed(Some(self.versions.latest() + 1))
        })
    }

    /// Runs a transaction's operation.
    pub(super) fn apply_txn(&mut self, op: &Op) -> Result<Reply> {
        match op {
            Op::Begin(t) => {
                let slot = &mut self.txns[usize::from(*t)];
                if slot.is_some() {
                    return Err(txn_slot_error(*t, true));
                }
                *slot = Some(Txn {
                    read_ts: self.versions.latest(),
                    ..Txn::default()
                });
            }
            Op::TxnGet(t, k) => {
                let serializable = self.isolation == Isolation::Serializable;
                let txn = self.txn(*t)?;
                if let Some(own) = txn.writes.get(k) {
                    return Ok(Reply::Value(own.clone()));
                }
                let value = self.versions.get_at(k, txn.read_ts);
                if serializable {
                    self.txn_mut(*t)?.keys_read.insert(k.clone());
                }
                return Ok(Reply::Value(value));
            }
            Op::TxnPut(t, k, v) => {
                self.txn_mut(*t)?.writes.insert(k.clone(), Some(v.clone()));
            }
            Op::TxnDelete(t, k) => {
                self.txn_mut(*t)?.writes.insert(k.clone(), None);
            }
            Op::TxnScan(t, l, u) => {
                let serializable = self.isolation == Isolation::Serializable;
                let txn = self.txn(*t)?;
                let mut seen: BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
                    .versions
                    .scan_at(|k| within(l, u, k), txn.read_ts)
                    .into_iter()
                    .map(|(k, v)| (k, Some(v)))
                    .collect();
                for (k, v) in &txn.writes {
                    if within(l, u, k) {
                        seen.insert(k.clone(), v.clone());
                    }
                }
                if serializable {
                    self.txn_mut(*t)?.ranges.push((l.clone(), u.clone()));
                }
                let live = seen.into_iter().filter_map(|(k, v)| Some((k, v?)));
                return Ok(Reply::Entries(live.collect()));
            }
            Op::Commit(t) => {
                let outcome = self.commit_outcome(*t)?;
                let txn = self.txns[usize::from(*t)]
                    .take()
                    .expect("commit_outcome: held");
                if outcome == Reply::Conflict {
                    return Ok(outcome);
                }
                if !txn.writes.is_empty() {
                    let writes = txn.writes.into_iter();
                    self.versions
                        .commit(writes.map(|(k, v)| (k, super::Version::of(v))));
                }
                return Ok(outcome);
            }
            Op::Abort(t) => {
                self.txn(*t)?;
                self.txns[usize::from(*t)] = None;
            }
            op => unreachable!("not a transaction's operation: {op}"),
        }
        Ok(Reply::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::Engine;
    use crate::ops::{Chapter, Config, Strategy};
    use crate::text::parse_op;

    /// A model of an engine whose transactions are validated at `isolation`.
    fn model(isolation: Isolation) -> Model {
        let config = Config {
            isolation,
            ..Config::new(Strategy::None, false)
        };
        Model::for_case(Chapter::TIME_TRAVEL, config)
    }

    /// Runs `script` (one operation a line) and returns the reply to its last operation.
    fn run(model: &mut Model, script: &str) -> Reply {
        let mut last = Reply::Done;
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            last = model.apply(&parse_op(line).unwrap()).unwrap();
        }
        last
    }

    fn value(v: &str) -> Reply {
        Reply::Value(Some(v.as_bytes().to_vec()))
    }

    /// A transaction reads its own writes first, else its snapshot; holds the watermark while
    /// open; commits its write set as one commit; an abort or a reopen commits nothing.
    #[test]
    fn transactions_read_their_writes_over_their_snapshot() {
        let mut m = model(Isolation::Unvalidated);
        run(&mut m, "put a 1\nput c 1\nbegin t0\nput a 2\nput b 2");
        assert_eq!(m.watermark(), 2, "t0 reads at 2 and holds the watermark");
        assert_eq!(run(&mut m, "txn_get t0 a"), value("1"));
        assert_eq!(run(&mut m, "txn_get t0 b"), Reply::Value(None));
        run(&mut m, "txn_put t0 b x\ntxn_delete t0 a");
        assert_eq!(run(&mut m, "txn_get t0 a"), Reply::Value(None));
        assert_eq!(
            run(&mut m, "txn_scan t0 * *"),
            Reply::Entries(vec![
                (b"b".to_vec(), b"x".to_vec()),
                (b"c".to_vec(), b"1".to_vec())
            ])
        );
        assert_eq!(m.commit_ts(&Op::Commit(0)), Some(5));
        assert_eq!(run(&mut m, "commit t0"), Reply::Committed(Some(5)));
        assert_eq!(run(&mut m, "get a"), Reply::Value(None));
        assert_eq!(run(&mut m, "get b"), value("x"));
        assert_eq!(m.watermark(), 5);
        run(
            &mut m,
            "begin t1\ntxn_put t1 z 1\nabort t1\nbegin t2\ntxn_put t2 z 2\nclose_reopen",
        );
        assert_eq!(run(&mut m, "get z"), Reply::Value(None));
        assert_eq!(run(&mut m, "latest_ts"), Reply::Ts(5));
        assert!(m.apply(&parse_op("txn_get t2 z").unwrap()).is_err());
    }

    /// Each anomaly is allowed or prevented exactly as the isolation level says: a write-write
    /// conflict fails under snapshot isolation only; a stale read and a phantom under
    /// serializable only; a read-only transaction always commits; nothing checks before day 6.
    #[test]
    fn commits_are_validated_as_the_isolation_level_says() {
        use Isolation::*;
        let scripts = [
            // (what, script ending in a commit, what unvalidated, snapshot, serializable say)
            (
                "write-write",
                "begin t0\nput k 1\ntxn_put t0 k 2",
                [true, false, true],
            ),
            (
                "stale read",
                "begin t0\ntxn_get t0 k\nput k 1\ntxn_put t0 j 2",
                [true, true, false],
            ),
            (
                "phantom",
                "begin t0\ntxn_scan t0 >=a <c\nput b 1\ntxn_put t0 z 2",
                [true, true, false],
            ),
            (
                "outside the range",
                "begin t0\ntxn_scan t0 >=a <c\nput c 1\ntxn_put t0 z 2",
                [true, true, true],
            ),
            (
                "own write read",
                "begin t0\ntxn_put t0 k 2\ntxn_get t0 k\nput k 1",
                [true, false, true],
            ),
            (
                "read-only",
                "begin t0\ntxn_get t0 k\ntxn_scan t0 * *\nput k 1",
                [true, true, true],
            ),
            (
                "before the snapshot",
                "put k 1\nbegin t0\ntxn_get t0 k\ntxn_put t0 k 2",
                [true, true, true],
            ),
        ];
        for (what, script, commits) in scripts {
            for (isolation, commits) in [Unvalidated, Snapshot, Serializable]
                .into_iter()
                .zip(commits)
            {
                let mut m = model(isolation);
                run(&mut m, script);
                let latest = m.versions.latest();
                let outcome = run(&mut m, "commit t0");
                let read_only = what == "read-only";
                match outcome {
                    Reply::Committed(ts) => {
                        assert!(commits, "{what} under {isolation:?} committed");
                        assert_eq!(ts, (!read_only).then_some(latest + 1), "{what}");
                    }
                    Reply::Conflict => {
                        assert!(!commits, "{what} under {isolation:?} did not commit");
                        assert_eq!(m.versions.latest(), latest, "a failed commit uses no ts");
                        assert_eq!(run(&mut m, "get z"), Reply::Value(None), "nor writes");
                    }
                    other => panic!("{what}: {other:?}"),
                }
            }
        }
    }

    /// Time travel reads from the watermark to the latest commit, and is refused below the
    /// watermark (which a snapshot or a transaction holds down) or above the latest commit.
    #[test]
    fn time_travel_is_refused_outside_the_watermark_and_the_latest() {
        let mut m = model(Isolation::Serializable);
        run(&mut m, "put a 1\nput a 2\nsnapshot s0\nput a 3\nput a 4");
        assert_eq!(run(&mut m, "travel_get -2 a"), value("2"));
        assert_eq!(run(&mut m, "travel_get +0 a"), value("4"));
        assert_eq!(
            run(&mut m, "travel_get -3 a"),
            Reply::Refused(Refusal::BelowWatermark {
                ts: 1,
                watermark: 2
            })
        );
        assert_eq!(
            run(&mut m, "travel_scan +1 * *"),
            Reply::Refused(Refusal::AboveLatestCommit { ts: 5, latest: 4 })
        );
        run(&mut m, "begin t1\ndrop_snapshot s0");
        assert_eq!(m.watermark(), 4, "t1 holds it at 4");
        assert_eq!(
            run(&mut m, "travel_scan -1 * *"),
            Reply::Refused(Refusal::BelowWatermark {
                ts: 3,
                watermark: 4
            })
        );
        run(&mut m, "abort t1\nput a 5");
        assert_eq!(
            run(&mut m, "travel_get -9 a"),
            Reply::Refused(Refusal::BelowWatermark {
                ts: 0,
                watermark: 5
            }),
            "no lower than 0"
        );
    }
}
