// SPDX-License-Identifier: Apache-2.0
//! The tests of [`crate::gen`].

use super::*;

/// Week 1 day 1's mix has only memtable operations; week 2 day 7's has every kind up to it,
/// and week 3 day 4's the snapshots and reads at older timestamps too.
#[test]
fn the_mix_follows_the_chapters() {
    let early = sample_ops(
        Mix {
            upto: Chapter::MEMTABLE,
        },
        2000,
    );
    assert!(early.iter().all(|op| op.needs() == Chapter::MEMTABLE));
    let late = sample_ops(
        Mix {
            upto: Chapter::BATCH,
        },
        3000,
    );
    assert!(late.iter().all(|op| op.needs() <= Chapter::BATCH));
    for wanted in [
        Chapter::SCAN,
        Chapter::FLUSH,
        Chapter::FULL_COMPACTION,
        Chapter::SIMPLE,
        Chapter::REOPEN,
        Chapter::WAL,
        Chapter::BATCH,
    ] {
        assert!(
            late.iter().any(|op| op.needs() == wanted),
            "no operation of {wanted} in 3000"
        );
    }
    let bounds: Vec<_> = late
        .iter()
        .filter_map(|op| match op {
            Op::Scan(l, u) => Some((l.clone(), u.clone())),
            _ => None,
        })
        .collect();
    assert!(bounds.iter().any(|(l, _)| matches!(l, Bound::Excluded(_))));
    assert!(bounds.iter().any(|(_, u)| matches!(u, Bound::Included(_))));
    assert!(bounds.iter().any(|(l, _)| matches!(l, Bound::Unbounded)));
    let mvcc = sample_ops(
        Mix {
            upto: Chapter::SNAPSHOT,
        },
        3000,
    );
    let count = |f: fn(&Op) -> bool| mvcc.iter().filter(|op| f(op)).count();
    assert!(count(|op| matches!(op, Op::LatestTs)) > 10);
    assert!(
        count(|op| matches!(op, Op::Snapshot(2))) > 10,
        "every slot is used"
    );
    assert!(count(|op| matches!(op, Op::SnapGet(..))) > 50);
    assert!(count(|op| matches!(op, Op::SnapScan(..))) > 20);
    assert!(count(|op| matches!(op, Op::DropSnapshot(..))) > 10);
    assert!(count(|op| matches!(op, Op::GetAt(..) | Op::ScanAt(..))) > 50);
    assert!(mvcc.iter().all(|op| op.needs() <= Chapter::SNAPSHOT));
}

/// Week 3 day 7's mix has transactions in every slot, with every operation, and time travel;
/// day 5's has no time travel; and the isolation levels follow the chapters too. Run through
/// the model at each level, the transactions commit, conflict and commit read-only, and time
/// travel reads and is refused both ways, often enough for the search to test each outcome.
#[test]
fn transactions_and_time_travel_have_every_outcome() {
    use crate::engines::{Engine, Refusal, Reply};
    let day5 = sample_ops(Mix { upto: Chapter::TXN }, 2000);
    assert!(day5.iter().all(|op| op.needs() <= Chapter::TXN));
    assert!(day5.iter().any(|op| op.needs() == Chapter::TXN));
    let mix = Mix {
        upto: Chapter::TIME_TRAVEL,
    };
    let ops = sample_ops(mix, 5000);
    let count = |f: &dyn Fn(&Op) -> bool| ops.iter().filter(|op| f(op)).count();
    assert!(
        count(&|op| matches!(op, Op::Begin(2))) > 20,
        "every slot is used"
    );
    for kind in [
        |op: &Op| matches!(op, Op::TxnGet(..)),
        |op: &Op| matches!(op, Op::TxnPut(..)),
        |op: &Op| matches!(op, Op::TxnDelete(..)),
        |op: &Op| matches!(op, Op::TxnScan(..)),
        |op: &Op| matches!(op, Op::Commit(_)),
        |op: &Op| matches!(op, Op::Abort(_)),
        |op: &Op| matches!(op, Op::TravelGet(..)),
        |op: &Op| matches!(op, Op::TravelScan(..)),
    ] {
        let n = count(&kind);
        assert!(n > 10, "{n} in 5000: {:?}", ops.iter().find(|op| kind(op)));
    }
    let levels = |upto| {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let configs = config(Mix { upto });
        let mut seen: Vec<Isolation> = (0..200)
            .map(|_| configs.new_tree(&mut runner).unwrap().current().isolation)
            .collect();
        seen.sort_by_key(|i| *i as u8);
        seen.dedup();
        seen
    };
    assert_eq!(levels(Chapter::TXN), [Isolation::Unvalidated]);
    assert_eq!(levels(Chapter::VALIDATION), Isolation::ALL);
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        let config = Config {
            isolation,
            ..Config::new(Compaction::None, false)
        };
        let mut model = crate::model::Model::for_case(mix.upto, config);
        let replies: Vec<Reply> = ops.iter().map(|op| model.apply(op).unwrap()).collect();
        let count = |f: &dyn Fn(&Reply) -> bool| replies.iter().filter(|r| f(r)).count();
        let conflicts = count(&|r| *r == Reply::Conflict);
        let committed = count(&|r| matches!(r, Reply::Committed(Some(_))));
        assert!(conflicts > 10, "{isolation:?}: {conflicts} conflicts");
        assert!(committed > 40, "{isolation:?}: {committed} commits");
        assert!(count(&|r| *r == Reply::Committed(None)) > 5);
        let below = |r: &Reply| matches!(r, Reply::Refused(Refusal::BelowWatermark { .. }));
        let above = |r: &Reply| matches!(r, Reply::Refused(Refusal::AboveLatestCommit { .. }));
        let (below, above) = (count(&below), count(&above));
        assert!(below > 20 && above > 10, "{below} below, {above} above");
        let travelled = ops.iter().zip(&replies).filter(|(op, r)| {
            matches!(op, Op::TravelGet(..) | Op::TravelScan(..)) && !matches!(r, Reply::Refused(_))
        });
        assert!(travelled.count() > 50);
    }
}

/// Week 4 day 2's mix writes in every sync mode, lines up groups, and cuts the power only
/// where every commit so far is synced (and crashes the process only where every commit
/// reached the OS); day 6's merges, alone and in batches, and the model folds operands in
/// those cases often enough for reads to check folds of several.
#[test]
fn week4_writes_sync_crash_group_and_merge() {
    let day2 = sample_ops(
        Mix {
            upto: Chapter::GROUP_COMMIT,
        },
        4000,
    );
    assert!(day2.iter().all(|op| op.needs() <= Chapter::GROUP_COMMIT));
    let ops = sample_ops(
        Mix {
            upto: Chapter::MERGE,
        },
        6000,
    );
    let count = |f: &dyn Fn(&Op) -> bool| ops.iter().filter(|op| f(op)).count();
    for (what, n) in [
        (
            "put_opt fsync",
            count(&|op| matches!(op, Op::PutOpt(SyncMode::Fsync, ..))),
        ),
        (
            "put_opt buffered",
            count(&|op| matches!(op, Op::PutOpt(SyncMode::Buffered, ..))),
        ),
        ("delete_opt", count(&|op| matches!(op, Op::DeleteOpt(..)))),
        ("batch_opt", count(&|op| matches!(op, Op::BatchOpt(..)))),
        (
            "group",
            count(&|op| matches!(op, Op::Group(w) if w.len() > 1)),
        ),
        ("power_cut", count(&|op| matches!(op, Op::PowerCut))),
        ("process_crash", count(&|op| matches!(op, Op::ProcessCrash))),
        ("group_cut", count(&|op| matches!(op, Op::GroupCut(_)))),
        ("merge", count(&|op| matches!(op, Op::Merge(..)))),
        (
            "batch with a merge",
            count(
                &|op| matches!(op, Op::Batch(r) if r.iter().any(|r| matches!(r, BatchOp::Merge(..)))),
            ),
        ),
    ] {
        assert!(n > 5, "{n} {what} in 6000");
    }
    // Where a power cut stands, the last commit before it was synced; where a process crash
    // stands, it reached the OS.
    let mut durable = Durable::Disk;
    for op in &ops {
        if *op == Op::PowerCut {
            assert_eq!(durable, Durable::Disk);
        }
        if *op == Op::ProcessCrash {
            assert!(durable >= Durable::Os);
        }
        durable = op.durable_after(durable);
    }
    let config = Config::new(Compaction::Simple, true);
    let mut model = crate::model::Model::for_case(Chapter::MERGE, config);
    let folds = ops
        .iter()
        .map(|op| crate::engines::Engine::apply(&mut model, op).unwrap())
        .filter(|reply| {
            let folded = |v: &[u8]| v.iter().filter(|&&b| b == b',').count() >= 2;
            match reply {
                crate::engines::Reply::Value(Some(v)) => folded(v),
                crate::engines::Reply::Entries(e) => e.iter().any(|(_, v)| folded(v)),
                _ => false,
            }
        })
        .count();
    assert!(folds > 20, "{folds} reads of a fold of three or more");
}

/// A snapshot takes a free slot, a read or a drop needs a held one, and a reopen frees them
/// all: the shrinker cannot delete a `snapshot` that a later read needs.
#[test]
fn slots_are_tracked() {
    let state = State::new(Config::new(Compaction::None, false));
    assert!(!state.allows(&Op::SnapGet(1, b"k".to_vec())));
    assert!(!state.allows(&Op::DropSnapshot(1)));
    let held = state.after(&Op::Snapshot(1));
    assert!(!held.allows(&Op::Snapshot(1)));
    assert!(held.allows(&Op::Snapshot(0)));
    assert!(held.allows(&Op::SnapGet(1, b"k".to_vec())));
    assert!(!held.allows(&Op::SnapGet(0, b"k".to_vec())));
    assert!(!held.allows(&Op::SnapGet(7, b"k".to_vec())), "no such slot");
    assert_eq!(held.after(&Op::DropSnapshot(1)), state);
    assert_eq!(held.after(&Op::CloseReopen), state);
    assert_eq!(held.after(&Op::CrashReopen), state);
    assert!(!state.allows(&Op::CrashReopen), "no log");
    let logged = State::new(Config::new(Compaction::None, true));
    let (k, v) = (b"k".to_vec(), b"v".to_vec());
    let after = |ops: &[Op]| ops.iter().fold(logged, |s, op| s.after(op));
    assert!(logged.allows(&Op::PowerCut), "nothing written yet");
    let buffered = after(&[
        Op::PutOpt(SyncMode::Fsync, k.clone(), v.clone()),
        Op::Put(k.clone(), v.clone()),
    ]);
    assert!(!buffered.allows(&Op::PowerCut) && !buffered.allows(&Op::ProcessCrash));
    let os = buffered.after(&Op::DeleteOpt(SyncMode::Os, k.clone()));
    assert!(!os.allows(&Op::PowerCut) && os.allows(&Op::ProcessCrash));
    assert!(os.after(&Op::CloseReopen).allows(&Op::PowerCut));
    assert!(os
        .after(&Op::BatchOpt(SyncMode::Fsync, vec![]))
        .allows(&Op::PowerCut));
    assert!(!state.allows(&Op::PowerCut), "no log");
}
