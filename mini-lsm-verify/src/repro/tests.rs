// SPDX-License-Identifier: Apache-2.0
//! The tests of [`crate::repro`].

use super::*;
use crate::ops::{Config, Strategy};

/// The test has one assertion per read, with the model's answer, and reopens where the case
/// does.
#[test]
fn the_test_asserts_the_model() {
    let case = Case {
        config: Config::new(Strategy::Simple, true),
        ops: vec![
            Op::Put(b"k01".to_vec(), b"v1".to_vec()),
            Op::Delete(b"k02".to_vec()),
            Op::CrashReopen,
            Op::Get(b"k01".to_vec()),
            Op::Scan(Bound::Excluded(b"k00".to_vec()), Bound::Unbounded),
        ],
    };
    let test = rust_test(&case, "verify_case_7", "Found by verify.");
    assert!(test.starts_with("/// Found by verify.\n#[test]\nfn verify_case_7() {\n"));
    assert!(test.contains("CompactionOptions::Simple(SimpleLeveledCompactionOptions {"));
    assert!(test.contains("options.enable_wal = true;"));
    assert!(test.contains("    fs = fs.crash_now(false);"));
    assert!(test.contains(
        "assert_eq!(engine.get(b\"k01\").unwrap().map(|v| text(&v)), Some(\"v1\".to_string()),"
    ));
    assert!(test.contains(
        "collect(engine.scan(Bound::Excluded(&b\"k00\"[..]), Bound::Unbounded).unwrap()), pairs(&[(\"k01\", \"v1\")])"
    ));
    assert!(test.contains("let mut engine = open(&fs);"));
}

/// Snapshots are locals that borrow the engine, dropped before a reopen and before the
/// engine; reads through them, and at older timestamps, assert the model's answer, at the
/// timestamp resolved from the engine's latest commit and the snapshots held, as verify did.
#[test]
fn snapshots_are_locals_dropped_in_time() {
    let case = Case::parse(
        "config strategy=none wal=off\nput k01 v1\nsnapshot s1\nput k01 v2\nsnapshot s0\n\
         put k01 v3\nsnap_get s1 k01\nget_at -5 k01\nscan_at -1 * *\nlatest_ts\n\
         close_reopen\nsnapshot s2\nsnap_scan s2 >=k01 *\n",
    )
    .unwrap();
    let test = rust_test(&case, "verify_case_8", "Found by verify.");
    let expect = [
        "    let s1 = engine.new_snapshot();\n",
        "    // #5: snap_get s1 k01 (as of ts 1)\n",
        "assert_eq!(s1.get(b\"k01\").unwrap().map(|v| text(&v)), Some(\"v1\".to_string()),",
        "assert_eq!(engine.get_with_ts(b\"k01\", back_ts(&engine, 5, &[s0.read_ts(), s1.read_ts()])).unwrap()",
        "assert_eq!(collect(engine.scan_with_ts(Bound::Unbounded, Bound::Unbounded, back_ts(&engine, 1, &[s0.read_ts(), s1.read_ts()])).unwrap()), pairs(&[(\"k01\", \"v2\")])",
        "assert_eq!(engine.latest_commit_ts(), 3,",
        "    drop(s0);\n    drop(s1);\n    // close: without a log",
        "collect(s2.scan(Bound::Included(&b\"k01\"[..]), Bound::Unbounded).unwrap()), pairs(&[(\"k01\", \"v3\")])",
        "    drop(s2);\n    drop(engine);\n}\n",
    ];
    for wanted in expect {
        assert!(test.contains(wanted), "no `{wanted}` in:\n{test}");
    }
}

/// Transactions are locals (`mut` when used), each dropped when it commits or aborts and
/// before a reopen; a commit asserts its timestamp or a `Conflict`; time travel asserts what
/// it reads at the engine's latest commit plus its offset, or the engine's `TimeTravelError`.
#[test]
fn transactions_are_locals_and_commits_are_asserted() {
    let case = Case::parse(
        "config strategy=none wal=off isolation=serializable\nput k01 v1\nbegin t0\n\
         begin t1\ntxn_scan t0 * *\nput k02 v2\ntxn_put t0 k03 v3\ncommit t0\n\
         txn_put t1 k01 v4\ntxn_get t1 k01\ncommit t1\nbegin t2\ntravel_get -1 k01\n\
         travel_scan +1 * *\nbegin t0\ntxn_delete t0 k01\ntxn_scan t0 * *\nclose_reopen\n",
    )
    .unwrap();
    let test = rust_test(&case, "verify_case_9", "Found by verify.");
    let expect = [
        "    use crate::mvcc::{Conflict, Isolation, TimeTravelError};\n",
        "        options.isolation = Isolation::Serializable;\n",
        "    let mut t0 = engine.new_txn();\n",
        "assert_eq!(collect_txn(t0.scan(Bound::Unbounded, Bound::Unbounded).unwrap()), pairs(&[(\"k01\", \"v1\")])",
        "    let committed = t0.commit();\n    assert!(committed.as_ref().is_err_and(|e| e.downcast_ref::<Conflict>().is_some()), \"op #6 `commit t0`: a Conflict expected, not {committed:?}\\n{}\", engine.dump());\n    drop(t0);\n",
        "assert_eq!(t1.get(b\"k01\").unwrap().map(|v| text(&v)), Some(\"v4\".to_string()),",
        "    assert_eq!(t1.commit().map_err(|e| format!(\"{e:#}\")), Ok(Some(3)), \"op #9 `commit t1`\\n{}\", engine.dump());\n    drop(t1);\n",
        "    let t2 = engine.new_txn();\n",
        "assert_eq!(engine.get_at(b\"k01\", engine.latest_commit_ts().saturating_add_signed(-1)).err().and_then(|e| e.downcast_ref::<TimeTravelError>().copied()), Some(TimeTravelError::BelowWatermark { ts: 2, watermark: 3 }),",
        "assert_eq!(engine.scan_at(Bound::Unbounded, Bound::Unbounded, engine.latest_commit_ts().saturating_add_signed(1)).err().and_then(|e| e.downcast_ref::<TimeTravelError>().copied()), Some(TimeTravelError::AboveLatestCommit { ts: 4, latest: 3 }),",
        "    drop(t0); // aborts it\n    drop(t2); // aborts it\n    // close: without a log",
    ];
    for wanted in expect {
        assert!(test.contains(wanted), "no `{wanted}` in:\n{test}");
    }
}

/// Week 4's operations print as the engine's calls: writes with their `WriteOptions`, a
/// power cut without a sync, a merge with the append operator in the options, a batch with
/// an operand through `write_batch_ops`, and a group on scoped threads behind the held
/// leader (with verify's `HoldFs` printed into the test), asserting the latest commit seen
/// while it waits.
#[test]
fn week4_operations_print_as_engine_calls() {
    let case = Case::parse(
        "config strategy=none wal=on\nput_opt fsync k01 v1\npower_cut\nmerge k01 v2\n\
         batch put:k02=v3 merge:k02=v4\nbatch_opt os del:k02\ngroup os:k03=v5 fsync:k04=v6\n\
         get k01\ngroup_cut k05=v7 k06=v8 k07=v9\n",
    )
    .unwrap();
    let test = rust_test(&case, "verify_case_10", "Found by verify.");
    let expect = [
        "    use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, SyncMode, WriteBatchOp, WriteBatchRecord, WriteOptions};\n",
        "options.merge_operator = Some(std::sync::Arc::new(crate::merge::AppendOperator::new(b\",\")));",
        "options.fs = std::sync::Arc::new(HoldFs { mem: fs.clone(), gate });",
        "    struct HoldFs {\n",
        "    engine.put_opt(b\"k01\", b\"v1\", &WriteOptions::new(SyncMode::Fsync)).unwrap();\n",
        "    fs = fs.crash_now(false); // a power cut: only what was synced survives\n    drop(engine);\n    engine = open(&fs);\n",
        "    engine.merge(b\"k01\", b\"v2\").unwrap();\n",
        "    engine.write_batch_ops(&[WriteBatchOp::Put(&b\"k02\"[..], &b\"v3\"[..]), WriteBatchOp::Merge(&b\"k02\"[..], &b\"v4\"[..])]).unwrap();\n",
        "    engine.write_batch_opt(&[WriteBatchRecord::Del(&b\"k02\"[..])], &WriteOptions::new(SyncMode::Os)).unwrap();\n",
        "        writers.push(scope.spawn(|| engine.put_opt(b\"k03\", b\"v5\", &WriteOptions::new(SyncMode::Os))));\n        assert!(gate.wait_held()",
        "        wait_queued(&engine, 1);\n",
        "        assert_eq!(seen, 4, ",
        "assert_eq!(engine.get(b\"k01\").unwrap().map(|v| text(&v)), Some(\"v1,v2\".to_string()),",
        "        gate.arm_sync(2);\n",
        "        let image = fs.crash_now(false); // a power cut while that sync waits\n",
        "    assert_eq!(acked, [true, false, false], ",
        "    fs = image;\n    drop(engine);\n    engine = open(&fs);\n",
    ];
    for wanted in expect {
        assert!(test.contains(wanted), "no `{wanted}` in:\n{test}");
    }
}

/// The strategy's code is exactly how the engine's own `Debug` prints the options verify
/// opens it with, so the test runs the engine the way verify did.
#[cfg(feature = "ref")]
#[test]
fn strategy_code_matches_the_engine_options() {
    for strategy in Strategy::ALL {
        let options = crate::engines::mini_lsm::compaction(Config::new(strategy, false));
        assert_eq!(format!("{options:?}"), compaction_code(strategy));
    }
}
