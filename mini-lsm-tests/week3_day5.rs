// SPDX-License-Identifier: Apache-2.0
//! Week 3 day 5: transactions: a snapshot to read from, a private write set, one atomic commit.
//!
//! No commit is validated yet: the anomaly scripts at the end show what that allows (at the
//! `unvalidated` level, which stays so in every later chapter) and what snapshots alone prevent
//! (at every level).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::fs::{Fault, MemFs};
use crate::lsm_storage::{LsmStorageInner, WriteBatchRecord};
use crate::mvcc::Isolation;
use crate::wal::WalMode;

use super::harness::compaction::flush_all;
use super::harness::mvcc::{all_bounds, run_script, txn_options, Range, ALL_LEVELS};
use super::harness::persist::{crash_sweep_timestamps, db, key, mem_options, Step};
use super::harness::{collect_user, freeze, in_bounds, open_engine, show_bound, show_entries};
use super::harness::{test_seed, Rng};

/// Options for most tests: transactions are not validated (day 5 validates none anyway).
fn options() -> crate::lsm_storage::LsmStorageOptions {
    txn_options(Isolation::Unvalidated)
}

/// `Some(value)` as bytes, for comparing with what a read returns.
fn val(value: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(value.as_bytes()))
}

/// The engine's live entries, read by a plain scan.
fn scan_all(inner: &LsmStorageInner) -> Vec<(Bytes, Bytes)> {
    let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    collect_user(&mut iter).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Task 1: a snapshot and a private write set

/// A transaction reads its own puts and deletes before its snapshot, a later write to a key
/// replacing an earlier one, and no one else sees them.
#[test]
fn test_task1_reads_its_own_writes_first() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"a", b"a0").unwrap();
    inner.put(b"b", b"b0").unwrap();
    let mut txn = inner.new_txn();
    assert_eq!(txn.get(b"a").unwrap(), val("a0"));
    txn.put(b"a", b"a1").unwrap();
    txn.delete(b"b").unwrap();
    txn.put(b"c", b"c1").unwrap();
    assert_eq!(txn.get(b"a").unwrap(), val("a1"), "its own put");
    assert_eq!(txn.get(b"b").unwrap(), None, "its own delete");
    assert_eq!(txn.get(b"c").unwrap(), val("c1"), "a key only it wrote");
    txn.put(b"a", b"a2").unwrap();
    txn.delete(b"c").unwrap();
    txn.put(b"b", b"b2").unwrap();
    assert_eq!(txn.get(b"a").unwrap(), val("a2"), "a later put replaces");
    assert_eq!(txn.get(b"b").unwrap(), val("b2"), "a put after a delete");
    assert_eq!(txn.get(b"c").unwrap(), None, "a delete after a put");
    assert_eq!(inner.get(b"a").unwrap(), val("a0"), "no one else sees them");
    assert_eq!(inner.get(b"b").unwrap(), val("b0"));
    assert_eq!(inner.get(b"c").unwrap(), None);
    let mut other = inner.new_txn();
    assert_eq!(
        other.get(b"a").unwrap(),
        val("a0"),
        "not even a transaction"
    );
}

/// A transaction reads as of its beginning: puts, deletes and batches committed after it stay
/// invisible to it, through a freeze, a flush and a compaction.
#[test]
fn test_task1_reads_as_of_its_snapshot() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"a", b"a0").unwrap();
    inner.put(b"b", b"b0").unwrap();
    let mut txn = inner.new_txn();
    assert_eq!(txn.read_ts(), 2);
    inner.put(b"a", b"a1").unwrap();
    inner.delete(b"b").unwrap();
    inner
        .write_batch(&[WriteBatchRecord::Put(&b"c"[..], &b"c1"[..])])
        .unwrap();
    let mut check = |when: &str| {
        assert_eq!(txn.get(b"a").unwrap(), val("a0"), "a {when}");
        assert_eq!(txn.get(b"b").unwrap(), val("b0"), "b {when}");
        assert_eq!(txn.get(b"c").unwrap(), None, "c {when}");
    };
    check("in the memtable");
    freeze(&inner);
    check("frozen");
    flush_all(&inner);
    check("flushed");
    inner.force_full_compaction().unwrap();
    check("compacted");
}

/// A live transaction holds the watermark at its read timestamp; one that committed or was
/// dropped holds nothing.
#[test]
fn test_task1_holds_the_watermark_while_it_lives() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"a", b"1").unwrap();
    let mut first = inner.new_txn();
    inner.put(b"a", b"2").unwrap();
    let second = inner.new_txn();
    inner.put(b"a", b"3").unwrap();
    assert_eq!(inner.watermark(), 1);
    first.put(b"b", b"1").unwrap();
    first.commit().unwrap();
    assert_eq!(inner.watermark(), 2, "the committed one holds nothing");
    drop(second);
    assert_eq!(inner.watermark(), 4, "no reader left: the latest commit");
    assert_eq!(inner.mvcc.num_retained_snapshots(), 0);
}

/// A transaction refuses what the engine refuses: an empty value (use delete) and keys or values
/// longer than 65535 bytes; nothing of a refused write reaches its commit.
#[test]
fn test_task1_refuses_what_the_engine_refuses() {
    let (_dir, inner) = open_engine(options());
    let mut txn = inner.new_txn();
    let error = txn.put(b"k", b"").unwrap_err().to_string();
    assert!(error.contains("delete"), "{error}");
    let long = vec![b'x'; 65536];
    assert!(txn.put(&long, b"v").is_err(), "a key too long");
    assert!(txn.put(b"k", &long).is_err(), "a value too long");
    assert!(txn.delete(&long).is_err(), "a key too long to delete");
    assert_eq!(txn.get(b"k").unwrap(), None);
    assert_eq!(txn.commit().unwrap(), None, "nothing was written");
    assert_eq!(inner.latest_commit_ts(), 0);
}

// ---------------------------------------------------------------------------------------------
// Task 2: the transaction's scan

/// A transaction's scan yields its own writes over its snapshot: its puts replace or add
/// entries, its deletes hide them, and later commits stay invisible; with bounds of every kind.
#[test]
fn test_task2_scan_merges_its_writes_over_its_snapshot() {
    let (_dir, inner) = open_engine(options());
    for (k, v) in [("a", "a0"), ("b", "b0"), ("d", "d0")] {
        inner.put(k.as_bytes(), v.as_bytes()).unwrap();
    }
    flush_all(&inner);
    inner.put(b"f", b"f0").unwrap();
    let mut txn = inner.new_txn();
    inner.put(b"c", b"c-later").unwrap();
    inner.delete(b"a").unwrap();
    txn.put(b"b", b"b1").unwrap();
    txn.delete(b"d").unwrap();
    txn.put(b"e", b"e1").unwrap();
    txn.delete(b"g").unwrap();
    let scan = |txn: &mut crate::mvcc::Transaction<'_>, lower, upper| {
        let mut iter = txn.scan(lower, upper).unwrap();
        let entries = collect_user(&mut iter).unwrap();
        let shown: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii()))
            .collect();
        shown.join(" ")
    };
    use Bound::{Excluded, Included, Unbounded};
    assert_eq!(scan(&mut txn, Unbounded, Unbounded), "a=a0 b=b1 e=e1 f=f0");
    assert_eq!(scan(&mut txn, Included(b"b"), Included(b"e")), "b=b1 e=e1");
    assert_eq!(scan(&mut txn, Excluded(b"b"), Excluded(b"e")), "");
    assert_eq!(scan(&mut txn, Excluded(b"a"), Excluded(b"f")), "b=b1 e=e1");
    assert_eq!(scan(&mut txn, Included(b"c"), Unbounded), "e=e1 f=f0");
    assert_eq!(scan(&mut txn, Unbounded, Included(b"d")), "a=a0 b=b1");
}

/// A scan over an empty or inverted range yields nothing (and does not panic), with writes on
/// both sides of it.
#[test]
fn test_task2_scan_of_an_empty_range_is_empty() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"a", b"a0").unwrap();
    inner.put(b"c", b"c0").unwrap();
    let mut txn = inner.new_txn();
    for key in [&b"a"[..], b"b", b"c"] {
        txn.put(key, b"mine").unwrap();
    }
    use Bound::{Excluded, Included};
    let ranges: [Range; 4] = [
        (Included(b"c"), Included(b"a")),
        (Excluded(b"b"), Excluded(b"b")),
        (Included(b"b"), Excluded(b"b")),
        (Excluded(b"b"), Included(b"b")),
    ];
    for (lower, upper) in ranges {
        let mut iter = txn.scan(lower, upper).unwrap();
        let entries = collect_user(&mut iter).unwrap();
        assert!(
            entries.is_empty(),
            "{}..{}: {}",
            show_bound(lower),
            show_bound(upper),
            show_entries(&entries)
        );
    }
}

/// What a transaction sees: the committed entries as of its beginning, under its own writes
/// (`None`: deleted).
fn txn_view(
    committed: &BTreeMap<Vec<u8>, Vec<u8>>,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut view = committed.clone();
    for (k, v) in writes {
        match v {
            Some(v) => view.insert(k.clone(), v.clone()),
            None => view.remove(k),
        };
    }
    view
}

/// Random transactions against a model: puts and deletes inside, plain writes and flushes
/// outside, and every `get` and every scan (all bound kinds) inside agree with its snapshot
/// under its writes (seeded; replay with `MINI_LSM_SEED`).
#[test]
fn test_task2_random_transactions_against_model() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let (_dir, inner) = open_engine(options());
    let probes: Vec<&'static [u8]> = vec![b"k00", b"k03", b"k05", b"k08", b"k11"];
    let ranges: Vec<Range> = all_bounds(&probes);
    let key = |rng: &mut Rng| format!("k{:02}", rng.below(12)).into_bytes();
    let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for round in 0..12 {
        let mut txn = inner.new_txn();
        let base = committed.clone();
        let mut writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for step in 0..60 {
            let at = format!("seed {seed}, round {round}, step {step}");
            let k = key(&mut rng);
            match rng.below(100) {
                0..=24 => {
                    let v = format!("t{round}.{step}").into_bytes();
                    txn.put(&k, &v).unwrap();
                    writes.insert(k, Some(v));
                }
                25..=34 => {
                    txn.delete(&k).unwrap();
                    writes.insert(k, None);
                }
                35..=49 => {
                    let v = format!("p{round}.{step}").into_bytes();
                    inner.put(&k, &v).unwrap();
                    committed.insert(k, v);
                }
                50..=54 => {
                    inner.delete(&k).unwrap();
                    committed.remove(&k);
                }
                55..=59 => flush_all(&inner),
                60..=79 => {
                    let expected = txn_view(&base, &writes).get(&k).cloned();
                    let got = txn.get(&k).unwrap().map(|v| v.to_vec());
                    assert_eq!(got, expected, "{at}: get {}", k.escape_ascii());
                }
                _ => {
                    let (lower, upper) = ranges[rng.below(ranges.len())];
                    let mut iter = txn.scan(lower, upper).unwrap();
                    let got = collect_user(&mut iter).unwrap();
                    let expected: Vec<(Bytes, Bytes)> = txn_view(&base, &writes)
                        .into_iter()
                        .filter(|(k, _)| in_bounds(k, lower, upper))
                        .map(|(k, v)| (Bytes::from(k), Bytes::from(v)))
                        .collect();
                    assert!(
                        got == expected,
                        "{at}: scan {}..{}\n  got      {}\n  expected {}",
                        show_bound(lower),
                        show_bound(upper),
                        show_entries(&got),
                        show_entries(&expected)
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Task 3: the commit

/// A commit writes the whole write set as one batch at one new timestamp: before it nothing of
/// the transaction is visible, from it everything.
#[test]
fn test_task3_commit_is_one_batch_at_one_timestamp() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"a", b"a0").unwrap();
    inner.put(b"c", b"c0").unwrap();
    let mut txn = inner.new_txn();
    txn.put(b"a", b"a1").unwrap();
    txn.put(b"b", b"b1").unwrap();
    txn.delete(b"c").unwrap();
    assert_eq!(inner.latest_commit_ts(), 2, "nothing committed yet");
    let ts = txn.commit().unwrap().expect("a transaction that wrote");
    assert_eq!(ts, 3, "one commit, at the next timestamp");
    assert_eq!(inner.latest_commit_ts(), 3);
    let at = |ts: u64| {
        let mut iter = inner
            .scan_with_ts(Bound::Unbounded, Bound::Unbounded, ts)
            .unwrap();
        show_entries(&collect_user(&mut iter).unwrap())
    };
    assert_eq!(at(2), r#"[b"a"=b"a0", b"c"=b"c0"]"#);
    assert_eq!(at(3), r#"[b"a"=b"a1", b"b"=b"b1"]"#);
}

/// A transaction that wrote nothing commits without a timestamp; one dropped without a commit
/// writes nothing.
#[test]
fn test_task3_read_only_commit_and_drop_write_nothing() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"a", b"a0").unwrap();
    let mut reader = inner.new_txn();
    assert_eq!(reader.get(b"a").unwrap(), val("a0"));
    assert_eq!(reader.commit().unwrap(), None, "read-only: no timestamp");
    assert_eq!(inner.latest_commit_ts(), 1);
    let mut aborted = inner.new_txn();
    aborted.put(b"a", b"a1").unwrap();
    aborted.put(b"b", b"b1").unwrap();
    drop(aborted);
    assert_eq!(
        inner.latest_commit_ts(),
        1,
        "the dropped one committed nothing"
    );
    assert_eq!(
        scan_all(&inner),
        vec![(val("a").unwrap(), val("a0").unwrap())]
    );
    assert_eq!(inner.mvcc.num_retained_snapshots(), 0);
}

/// A transaction that committed, or whose commit failed, refuses every later read, write and
/// commit with an error that says so, and never panics.
#[test]
fn test_task3_finished_transaction_refuses_use() {
    let fs = MemFs::new();
    let mut opts = mem_options(&fs, true);
    opts.wal_mode = WalMode::WriteEachBatch;
    opts.isolation = Isolation::Unvalidated;
    let inner = LsmStorageInner::open(db(), opts).unwrap();
    let mut committed = inner.new_txn();
    committed.put(b"a", b"1").unwrap();
    committed.commit().unwrap();
    let mut failed = inner.new_txn();
    failed.put(b"b", b"1").unwrap();
    fs.set_fault(Some(Fault::FailOp(fs.ops())));
    assert!(failed.commit().is_err(), "the log write fails");
    assert_eq!(
        inner.get(b"b").unwrap(),
        None,
        "the failed commit wrote nothing"
    );
    for (txn, says) in [(&mut committed, "committed"), (&mut failed, "failed")] {
        let errors = [
            txn.get(b"a").map(drop),
            txn.put(b"a", b"2"),
            txn.delete(b"a"),
            txn.scan(Bound::Unbounded, Bound::Unbounded).map(drop),
            txn.commit().map(drop),
        ];
        for (op, result) in ["get", "put", "delete", "scan", "commit"]
            .iter()
            .zip(errors)
        {
            let error = format!("{:#}", result.expect_err(op));
            assert!(
                error.contains(says),
                "{op} after the {says} commit: {error}"
            );
        }
    }
    assert_eq!(inner.get(b"a").unwrap(), val("1"));
}

/// Readers running beside transactions that each rewrite every key never see part of one: every
/// scan, plain or in a transaction, finds all keys with one transaction's value, never going back.
#[test]
fn test_task3_concurrent_readers_never_see_part_of_a_transaction() {
    let (_dir, inner) = open_engine(options());
    let inner = Arc::new(inner);
    let keys: Vec<Vec<u8>> = (0..16).map(|i| format!("key{i:02}").into_bytes()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = [false, true]
        .into_iter()
        .map(|in_txn| {
            let (inner, done, keys) = (inner.clone(), done.clone(), keys.clone());
            std::thread::spawn(move || {
                let (mut last, mut scans) = (0u64, 0);
                while !done.load(Ordering::Acquire) || scans == 0 {
                    let entries = if in_txn {
                        let mut txn = inner.new_txn();
                        let mut iter = txn.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
                        collect_user(&mut iter).unwrap()
                    } else {
                        scan_all(&inner)
                    };
                    scans += 1;
                    if entries.is_empty() {
                        assert_eq!(last, 0, "the transactions vanished after {last}");
                        continue;
                    }
                    let values: Vec<u64> = entries
                        .iter()
                        .map(|(_, v)| std::str::from_utf8(v).unwrap().parse().unwrap())
                        .collect();
                    assert_eq!(
                        entries.len(),
                        keys.len(),
                        "a scan saw part of a transaction"
                    );
                    assert!(
                        values.iter().all(|v| *v == values[0]),
                        "a scan saw keys of different transactions: {values:?}"
                    );
                    assert!(values[0] >= last, "{} after {last}", values[0]);
                    last = values[0];
                }
                scans
            })
        })
        .collect();
    for i in 1..=1000u64 {
        let mut txn = inner.new_txn();
        for k in &keys {
            txn.put(k, i.to_string().as_bytes()).unwrap();
        }
        txn.commit().unwrap();
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().expect("a reader saw part of a transaction") > 0);
    }
}

/// A crash at any file operation amid transactions, batches, flushes and compactions keeps every
/// synced transaction and never part of one, and the recovered engine never gives a timestamp
/// that a recovered transaction holds.
#[test]
fn test_task3_crash_sweep_transactions_are_all_or_nothing() {
    let mut n = 0;
    let mut txn = |keys: &[usize], delete_every: usize| {
        n += 1;
        let entries = keys
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let value = if delete_every > 0 && j % delete_every == 0 {
                    Vec::new()
                } else {
                    format!("t{n}.{j}").into_bytes()
                };
                (key(i), value)
            })
            .collect();
        Step::Txn(entries)
    };
    let steps = vec![
        txn(&[1, 2, 3], 0),
        Step::Sync,
        txn(&[2, 4], 0),
        Step::Batch(vec![
            (key(5), b"batch".to_vec()),
            (key(1), b"batch".to_vec()),
        ]),
        Step::Freeze,
        txn(&[1, 3, 5], 2),
        Step::Flush,
        Step::Sync,
        txn(&[4, 6, 7], 0),
        Step::Freeze,
        Step::Flush,
        Step::FullCompaction,
        txn(&[1, 2, 3, 4, 5, 6, 7], 3),
        Step::Sync,
        txn(&[8], 0),
    ];
    let open = |fs: &MemFs| {
        let mut options = mem_options(fs, true);
        options.isolation = Isolation::Serializable;
        LsmStorageInner::open(db(), options)
    };
    crash_sweep_timestamps("transaction crash sweep", true, &open, &steps);
}

// ---------------------------------------------------------------------------------------------
// Task 3: anomalies, as scripts (see `run_script` in the MVCC harness for the notation)

/// Dirty read, prevented at every level: a transaction's writes are invisible to everyone else
/// until it commits, and forever if it aborts.
#[test]
fn test_task3_dirty_read_is_prevented() {
    for level in ALL_LEVELS {
        run_script(
            level,
            "
            put x 0
            t1 begin
            t1 put x 1
            t1 put y 1
            t2 begin
            t2 get x = 0              # t1 has not committed
            t2 scan .. = x=0
            get x = 0                 # nor do plain reads see it
            t1 drop                   # abort
            get x = 0
            t3 begin
            t3 put x 3
            t3 commit = ok
            get x = 3
            t2 get x = 0              # t2 still reads its snapshot
            ",
        );
    }
}

/// Read skew, prevented at every level: a transaction that reads two keys while another moves
/// value between them reads both as of one snapshot, so their sum still holds. (Read-only, it
/// commits at every level.)
#[test]
fn test_task3_read_skew_is_prevented() {
    for level in ALL_LEVELS {
        run_script(
            level,
            "
            put x 50
            put y 50                  # x + y = 100
            t1 begin
            t1 get x = 50
            t2 begin
            t2 put x 25
            t2 put y 75
            t2 commit = ok
            t1 get y = 50             # not 75: t1 reads its snapshot, and x + y = 100
            t1 scan .. = x=50 y=50
            t1 commit = ok
            scan .. = x=25 y=75
            ",
        );
    }
}

/// Lost update, allowed without validation: two transactions read a counter, each writes it
/// back incremented, and both commit: one increment is lost.
#[test]
fn test_task3_lost_update_is_allowed_without_validation() {
    run_script(
        Isolation::Unvalidated,
        "
        put counter 10
        t1 begin
        t2 begin
        t1 get counter = 10
        t2 get counter = 10
        t1 put counter 11
        t2 put counter 11
        t1 commit = ok
        t2 commit = ok
        get counter = 11              # two increments, one lost
        ",
    );
}

/// Write skew, allowed without validation: two transactions each check that the other key
/// keeps the constraint `x + y >= 1`, each clears a different key, and both commit.
#[test]
fn test_task3_write_skew_is_allowed_without_validation() {
    run_script(
        Isolation::Unvalidated,
        "
        put x 1
        put y 1                       # constraint: x + y >= 1
        t1 begin
        t2 begin
        t1 get y = 1                  # y is on call: t1 may clear x
        t2 get x = 1                  # x is on call: t2 may clear y
        t1 put x 0
        t2 put y 0
        t1 commit = ok
        t2 commit = ok
        scan .. = x=0 y=0             # the constraint is broken
        ",
    );
}

/// Phantom, allowed without validation: two transactions each count the rows of a range (at
/// most two allowed), each inserts one, and both commit: three rows.
#[test]
fn test_task3_phantom_is_allowed_without_validation() {
    run_script(
        Isolation::Unvalidated,
        "
        put row1 x                    # constraint: at most two rows
        t1 begin
        t2 begin
        t1 scan row..rox = row1=x     # one row: t1 may insert
        t2 scan row..rox = row1=x     # one row: t2 may insert
        t1 put row2 x
        t2 put row3 x
        t1 commit = ok
        t2 commit = ok
        scan row..rox = row1=x row2=x row3=x
        ",
    );
}
