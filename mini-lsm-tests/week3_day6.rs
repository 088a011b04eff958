// SPDX-License-Identifier: Apache-2.0
//! Week 3 day 6: serializable validation: commits checked against the transactions that
//! committed since a transaction's snapshot, at snapshot isolation or serializable.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use anyhow::{Context, Result};
use bytes::Bytes;

use crate::lsm_storage::{LsmStorageInner, WriteBatchRecord};
use crate::mvcc::{CommitCheck, Conflict, Isolation, ReadSet, RecentCommits, Transaction};

use super::harness::mvcc::{run_script, txn_options, OwnedRange, Range, VersionModel};
use super::harness::{collect_user, in_bounds, open_engine, show, test_seed, Rng};

/// The [`Conflict`] inside a commit's error; panics if the error is another one.
#[track_caller]
fn conflict_of(result: anyhow::Result<Option<u64>>) -> Conflict {
    let error = result.expect_err("the commit should conflict");
    match error.downcast_ref::<Conflict>() {
        Some(conflict) => conflict.clone(),
        None => panic!("not a conflict: {error:#}"),
    }
}

/// A write set of keys, for [`RecentCommits`].
fn writes<'a>(keys: &[&'a [u8]]) -> Vec<(&'a [u8], &'a [u8])> {
    keys.iter().map(|k| (*k, &b"v"[..])).collect()
}

// ---------------------------------------------------------------------------------------------
// Task 1: the keys of recent commits, and the check

/// A check looks only at commits after the read timestamp: at snapshot isolation for the keys
/// the transaction writes, at serializable for the keys it read and the ranges it scanned.
#[test]
fn test_task1_check_against_commits_after_the_read_ts() {
    let mut recent = RecentCommits::new();
    recent.begin(5);
    recent.record(6, &writes(&[b"x"]));
    recent.record(7, &writes(&[b"z", b"y"]));
    let check = |isolation, read_ts, reads: &ReadSet, wrote: &[&[u8]]| {
        let check = CommitCheck {
            read_ts,
            isolation,
            reads,
        };
        recent.validate(&check, &writes(wrote))
    };
    let none = ReadSet::default();
    let ss = Isolation::Snapshot;
    assert_eq!(
        check(ss, 5, &none, &[b"a", b"x"]),
        Err(Conflict::WriteWrite {
            key: Bytes::from_static(b"x"),
            read_ts: 5,
            committed_at: 6
        })
    );
    assert_eq!(check(ss, 5, &none, &[b"a", b"w"]), Ok(()));
    assert_eq!(check(ss, 6, &none, &[b"x"]), Ok(()), "6 is not after 6");
    assert_eq!(
        check(ss, 6, &none, &[b"y"]).map_err(|c| c.committed_at()),
        Err(7)
    );
    let mut reads = ReadSet::default();
    reads.add_key(b"y");
    reads.add_key(b"a");
    let sr = Isolation::Serializable;
    assert_eq!(
        check(sr, 5, &reads, &[b"q"]),
        Err(Conflict::StaleRead {
            key: Bytes::from_static(b"y"),
            read_ts: 5,
            committed_at: 7
        })
    );
    assert_eq!(check(sr, 5, &none, &[b"x", b"y"]), Ok(()), "blind writes");
    assert_eq!(check(Isolation::Unvalidated, 5, &reads, &[b"x"]), Ok(()));
    let scanned = |lower: Bound<&[u8]>, upper: Bound<&[u8]>| {
        let mut reads = ReadSet::default();
        reads.add_range(lower, upper);
        check(sr, 5, &reads, &[b"q"]).map_err(|c| String::from_utf8_lossy(c.key()).into_owned())
    };
    use Bound::{Excluded, Included, Unbounded};
    assert_eq!(scanned(Included(b"w"), Excluded(b"y")), Err("x".into()));
    assert_eq!(scanned(Excluded(b"x"), Included(b"y")), Err("y".into()));
    assert_eq!(
        scanned(Excluded(b"x"), Excluded(b"y")),
        Ok(()),
        "nothing between"
    );
    assert_eq!(scanned(Excluded(b"z"), Unbounded), Ok(()));
    assert_eq!(scanned(Included(b"z"), Unbounded), Err("z".into()));
    assert_eq!(scanned(Unbounded, Excluded(b"x")), Ok(()));
    assert_eq!(
        scanned(Unbounded, Unbounded),
        Err("x".into()),
        "the first commit first"
    );
}

/// A commit's keys are kept only while a transaction that began before it lives: none without
/// one, and each pruned once every transaction older than it has ended.
#[test]
fn test_task1_keeps_commits_only_for_older_live_transactions() {
    let mut recent = RecentCommits::new();
    recent.record(3, &writes(&[b"a"]));
    assert_eq!(recent.len(), 0, "no live transaction");
    recent.begin(3);
    recent.record(3, &writes(&[b"a"]));
    assert_eq!(recent.len(), 0, "the transaction at 3 saw the commit at 3");
    recent.record(4, &writes(&[b"a"]));
    recent.begin(4);
    recent.record(5, &writes(&[b"b"]));
    recent.begin(4);
    recent.record(6, &writes(&[b"c"]));
    assert_eq!(recent.len(), 3);
    recent.end(4);
    assert_eq!(recent.len(), 3, "the transaction at 3 still needs them all");
    recent.end(3);
    assert_eq!(recent.len(), 2, "the other one at 4 needs only 5 and 6");
    recent.end(4);
    assert_eq!((recent.len(), recent.live_txns()), (0, 0));
}

/// Random transactions beginning, committing and ending, against a brute-force check over the
/// whole history: the check fails exactly when a commit after the read timestamp wrote a key
/// the transaction writes (snapshot isolation) or read (serializable), whatever was pruned
/// (seeded; replay with `MINI_LSM_SEED`).
#[test]
fn test_task1_random_checks_against_the_whole_history() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let mut recent = RecentCommits::new();
    let mut history: Vec<(u64, BTreeSet<Vec<u8>>)> = Vec::new();
    let mut live: Vec<u64> = Vec::new();
    let mut ts = 0;
    let keys = |rng: &mut Rng| -> BTreeSet<Vec<u8>> {
        (0..1 + rng.below(3))
            .map(|_| vec![b'a' + rng.below(8) as u8])
            .collect()
    };
    for step in 0..3000 {
        match rng.below(10) {
            0..=2 => {
                live.push(ts);
                recent.begin(ts);
            }
            3..=4 if !live.is_empty() => {
                let read_ts = live.swap_remove(rng.below(live.len()));
                recent.end(read_ts);
            }
            _ => {
                // A commit: a live transaction's, checked, or a plain write.
                let written = keys(&mut rng);
                let owned: Vec<&[u8]> = written.iter().map(Vec::as_slice).collect();
                if !live.is_empty() && rng.chance(60) {
                    let read_ts = live[rng.below(live.len())];
                    let isolation = if rng.chance(50) {
                        Isolation::Snapshot
                    } else {
                        Isolation::Serializable
                    };
                    let read = keys(&mut rng);
                    let mut reads = ReadSet::default();
                    read.iter().for_each(|k| reads.add_key(k));
                    let check = CommitCheck {
                        read_ts,
                        isolation,
                        reads: &reads,
                    };
                    let relevant = match isolation {
                        Isolation::Snapshot => &written,
                        _ => &read,
                    };
                    let expected = history
                        .iter()
                        .find(|(at, w)| *at > read_ts && !w.is_disjoint(relevant))
                        .map(|(at, _)| *at);
                    let got = recent.validate(&check, &writes(&owned));
                    assert_eq!(
                        got.as_ref().err().map(Conflict::committed_at),
                        expected,
                        "seed {seed}, step {step}: {isolation:?} at {read_ts}: {got:?}"
                    );
                    if got.is_err() {
                        continue;
                    }
                }
                ts += 1;
                recent.record(ts, &writes(&owned));
                history.push((ts, written));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Task 2: validation in the commit

/// Snapshot isolation: of two transactions that write one key, the first to commit wins and
/// the other gets a conflict naming the key, which it must retry from the start.
#[test]
fn test_task2_first_committer_wins() {
    let (_dir, inner) = open_engine(txn_options(Isolation::Snapshot));
    inner.put(b"x", b"0").unwrap();
    let mut t1 = inner.new_txn();
    let mut t2 = inner.new_txn();
    t1.put(b"x", b"1").unwrap();
    t2.put(b"x", b"2").unwrap();
    t2.put(b"other", b"2").unwrap();
    assert_eq!(t1.commit().unwrap(), Some(2));
    let error = t2.commit().unwrap_err();
    let message = format!("{error:#}");
    assert_eq!(
        error.downcast_ref::<Conflict>(),
        Some(&Conflict::WriteWrite {
            key: Bytes::from_static(b"x"),
            read_ts: 1,
            committed_at: 2
        }),
        "{message}"
    );
    assert!(
        message.contains(r#"b"x""#) && message.contains("retry"),
        "{message}"
    );
    assert!(t2.get(b"x").is_err(), "the failed transaction refuses use");
    let mut retry = inner.new_txn();
    retry.put(b"x", b"2").unwrap();
    retry.commit().unwrap();
    assert_eq!(inner.get(b"x").unwrap().as_deref(), Some(&b"2"[..]));
}

/// A transaction that conflicts writes nothing, uses up no timestamp and is not recorded: a
/// transaction that writes what it wrote does not conflict with it.
#[test]
fn test_task2_conflict_writes_nothing() {
    let (_dir, inner) = open_engine(txn_options(Isolation::Snapshot));
    let mut t1 = inner.new_txn();
    let mut t2 = inner.new_txn();
    let mut t3 = inner.new_txn();
    t1.put(b"x", b"1").unwrap();
    t2.put(b"x", b"2").unwrap();
    t2.put(b"y", b"2").unwrap();
    t3.put(b"y", b"3").unwrap();
    t1.commit().unwrap();
    conflict_of(t2.commit());
    assert_eq!(
        inner.latest_commit_ts(),
        1,
        "the conflict used no timestamp"
    );
    assert_eq!(inner.get(b"y").unwrap(), None, "nothing of t2 was written");
    assert_eq!(
        t3.commit().unwrap(),
        Some(2),
        "t2 wrote y only in its failed commit"
    );
}

/// A commit at or before a transaction's read timestamp never conflicts with it: the
/// transaction saw it.
#[test]
fn test_task2_commits_it_saw_do_not_conflict() {
    let (_dir, inner) = open_engine(txn_options(Isolation::Snapshot));
    let older = inner.new_txn();
    inner.put(b"x", b"1").unwrap();
    let mut txn = inner.new_txn();
    assert_eq!(txn.read_ts(), 1);
    assert_eq!(
        inner.mvcc.num_recent_commits(),
        1,
        "kept for the older transaction"
    );
    txn.put(b"x", b"2").unwrap();
    txn.commit().unwrap();
    drop(older);
}

/// Plain puts, deletes and batches count as transactions of one commit: a transaction conflicts
/// with one committed after its snapshot as with any other.
#[test]
fn test_task2_plain_writes_count_as_transactions() {
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        let (_dir, inner) = open_engine(txn_options(level));
        let plain: [&dyn Fn(&LsmStorageInner); 3] = [
            &|inner| inner.put(b"x", b"p").unwrap(),
            &|inner| inner.delete(b"x").unwrap(),
            &|inner| {
                let batch = [
                    WriteBatchRecord::Put(&b"w"[..], &b"p"[..]),
                    WriteBatchRecord::Del(&b"x"[..]),
                ];
                inner.write_batch(&batch).unwrap();
            },
        ];
        for (i, write) in plain.iter().enumerate() {
            let mut txn = inner.new_txn();
            txn.get(b"x").unwrap();
            write(&inner);
            txn.put(b"x", b"t").unwrap();
            let conflict = conflict_of(txn.commit());
            assert_eq!(conflict.key(), b"x", "{level:?}, plain write {i}");
        }
    }
}

/// Read-only transactions commit without validation, whatever was written since their snapshot.
#[test]
fn test_task2_read_only_transactions_always_commit() {
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        let (_dir, inner) = open_engine(txn_options(level));
        inner.put(b"x", b"0").unwrap();
        let mut reader = inner.new_txn();
        assert_eq!(reader.get(b"x").unwrap().as_deref(), Some(&b"0"[..]));
        let mut iter = reader.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
        assert_eq!(collect_user(&mut iter).unwrap().len(), 1);
        inner.put(b"x", b"1").unwrap();
        inner.put(b"y", b"1").unwrap();
        assert_eq!(reader.commit().unwrap(), None, "{level:?}");
    }
}

/// Commits are kept only while an older transaction lives: pruned as the oldest ends, none kept
/// with no transaction, or with only unvalidated ones.
#[test]
fn test_task2_recent_commits_are_pruned() {
    let (_dir, inner) = open_engine(txn_options(Isolation::Serializable));
    let recent = || inner.mvcc.num_recent_commits();
    inner.put(b"a", b"1").unwrap();
    assert_eq!(recent(), 0, "no transaction");
    let old = inner.new_txn();
    for i in 0..5 {
        inner.put(format!("k{i}").as_bytes(), b"1").unwrap();
    }
    let young = inner.new_txn();
    inner.put(b"a", b"2").unwrap();
    inner.put(b"a", b"3").unwrap();
    assert_eq!(recent(), 7);
    drop(old);
    assert_eq!(recent(), 2, "only the young transaction's");
    let mut young = young;
    young.put(b"b", b"1").unwrap();
    young.commit().unwrap();
    assert_eq!(recent(), 0, "no live transaction after the commit");
    inner.put(b"a", b"4").unwrap();
    assert_eq!(recent(), 0);

    let (_dir, inner) = open_engine(txn_options(Isolation::Unvalidated));
    let _txn = inner.new_txn();
    inner.put(b"a", b"1").unwrap();
    assert_eq!(
        inner.mvcc.num_recent_commits(),
        0,
        "unvalidated: nothing kept"
    );
}

// ---------------------------------------------------------------------------------------------
// Task 3: what a serializable transaction read

/// Serializable: a transaction that read a key someone then wrote (a stale read) cannot commit
/// a write; reads answered by its own write set, and blind writes, never conflict.
#[test]
fn test_task3_stale_read_aborts_and_own_reads_do_not() {
    let (_dir, inner) = open_engine(txn_options(Isolation::Serializable));
    inner.put(b"x", b"0").unwrap();
    let mut stale = inner.new_txn();
    let mut own = inner.new_txn();
    let mut blind = inner.new_txn();
    assert_eq!(stale.get(b"x").unwrap().as_deref(), Some(&b"0"[..]));
    own.put(b"x", b"own").unwrap();
    assert_eq!(own.get(b"x").unwrap().as_deref(), Some(&b"own"[..]));
    blind.put(b"x", b"blind").unwrap();
    inner.put(b"x", b"1").unwrap();
    stale.put(b"y", b"1").unwrap();
    let conflict = conflict_of(stale.commit());
    assert!(
        matches!(&conflict, Conflict::StaleRead { key, .. } if key == "x"),
        "{conflict:?}"
    );
    own.commit().unwrap();
    blind.commit().unwrap();
    assert_eq!(inner.get(b"x").unwrap().as_deref(), Some(&b"blind"[..]));
}

/// Serializable: a write into a range a transaction scanned aborts it, whether it inserts,
/// updates or deletes, and the conflict names the range and the key; writes outside the range
/// do not, at every kind of bound.
#[test]
fn test_task3_writes_into_a_scanned_range_abort() {
    use Bound::{Excluded, Included, Unbounded};
    let cases: [(Range, &[u8], bool); 10] = [
        ((Included(b"b"), Excluded(b"d")), b"c", true), // an insert
        ((Included(b"b"), Excluded(b"d")), b"b", true), // an update at the bound
        ((Included(b"b"), Excluded(b"d")), b"d", false), // past the excluded upper bound
        ((Included(b"b"), Included(b"d")), b"d", true),
        ((Excluded(b"b"), Included(b"d")), b"b", false), // below the excluded lower bound
        ((Excluded(b"b"), Included(b"d")), b"bb", true),
        ((Included(b"b"), Excluded(b"d")), b"a", false),
        ((Unbounded, Excluded(b"b")), b"a", true), // a delete
        ((Included(b"e"), Unbounded), b"zz", true),
        ((Included(b"e"), Unbounded), b"d", false),
    ];
    for ((lower, upper), written, conflicts) in cases {
        let (_dir, inner) = open_engine(txn_options(Isolation::Serializable));
        inner.put(b"a", b"0").unwrap();
        inner.put(b"b", b"0").unwrap();
        let mut txn = inner.new_txn();
        let mut iter = txn.scan(lower, upper).unwrap();
        collect_user(&mut iter).unwrap();
        if written == b"a" && lower == Unbounded {
            inner.delete(written).unwrap();
        } else {
            inner.put(written, b"1").unwrap();
        }
        txn.put(b"out-of-the-way", b"1").unwrap();
        let case = format!("{lower:?}..{upper:?}, {} written", show(written));
        match txn.commit() {
            Ok(_) => assert!(!conflicts, "{case}: committed"),
            Err(error) => {
                let conflict = error.downcast_ref::<Conflict>();
                let Some(Conflict::Phantom { range, key, .. }) = conflict else {
                    panic!("{case}: {error:#}");
                };
                assert!(conflicts, "{case}: {error:#}");
                assert_eq!(key, written, "{case}");
                let own = |b: Bound<&[u8]>| b.map(Bytes::copy_from_slice);
                assert_eq!(**range, (own(lower), own(upper)), "{case}");
                let message = format!("{error:#}");
                assert!(message.contains("phantom"), "{case}: {message}");
            }
        }
    }
}

/// Lost update, prevented at snapshot isolation and serializable: of two transactions that read
/// a counter and write it back incremented, the second to commit aborts.
#[test]
fn test_task3_lost_update_is_prevented() {
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        run_script(
            level,
            "
            put counter 10
            t1 begin
            t2 begin
            t1 get counter = 10
            t2 get counter = 10
            t1 put counter 11
            t2 put counter 11
            t1 commit = ok
            t2 commit = conflict counter
            get counter = 11
            t3 begin                  # t2 retries
            t3 get counter = 11
            t3 put counter 12
            t3 commit = ok
            get counter = 12
            ",
        );
    }
}

/// Write skew, allowed at snapshot isolation and prevented at serializable: two transactions
/// each read both keys of a constraint and each clear a different one.
#[test]
fn test_task3_write_skew() {
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        run_script(
            level,
            "
            put x 1
            put y 1                   # constraint: x + y >= 1
            t1 begin
            t2 begin
            t1 get y = 1              # y is on call: t1 may clear x
            t2 get x = 1              # x is on call: t2 may clear y
            t1 put x 0
            t2 put y 0
            t1 commit = ok
            t2 commit = ok            [snapshot]
            scan .. = x=0 y=0         [snapshot]
            t2 commit = conflict x    [serializable]
            scan .. = x=0 y=1         [serializable]
            ",
        );
    }
}

/// Phantom, allowed at snapshot isolation and prevented at serializable: two transactions each
/// count the rows of a range and insert one; the insert lands in the range the other scanned,
/// at a key no one read.
#[test]
fn test_task3_phantom() {
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        run_script(
            level,
            "
            put row1 x                # constraint: at most two rows
            t1 begin
            t2 begin
            t1 scan row..rox = row1=x # one row: t1 may insert
            t2 scan row..rox = row1=x # one row: t2 may insert
            t1 put row2 x
            t2 put row3 x
            t1 commit = ok
            t2 commit = ok            [snapshot]
            scan row..rox = row1=x row2=x row3=x [snapshot]
            t2 commit = conflict row2 [serializable]
            scan row..rox = row1=x row2=x [serializable]
            ",
        );
    }
}

/// Threads increment one counter in transactions: at snapshot isolation and serializable, when
/// every thread has read the counter before any commits, exactly one commit per round succeeds;
/// running freely with retries, the final value is the number of successful commits.
#[test]
fn test_task3_concurrent_counter_loses_no_update() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 20;
    const INCREMENTS: usize = 100;
    /// Reads the counter in `txn` and writes it back one higher.
    fn increment(txn: &mut Transaction<'_>) -> Result<()> {
        let value = txn.get(b"counter")?.context("the counter is missing")?;
        let n: usize = std::str::from_utf8(&value)?.parse()?;
        txn.put(b"counter", (n + 1).to_string().as_bytes())
    }
    /// Whether `result` is a commit (true) or a conflict (false); any other error is returned.
    fn committed(result: Result<Option<u64>>) -> Result<bool> {
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.downcast_ref::<Conflict>().is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        let (_dir, inner) = open_engine(txn_options(level));
        let inner = Arc::new(inner);
        inner.put(b"counter", b"0").unwrap();
        // Rounds in lockstep: every thread reads before any thread commits, so every round is
        // a real race on the one key, and exactly one of its commits may win. A thread that
        // meets an error keeps meeting the barriers (a panic there would leave the others
        // waiting for ever) and reports it after the rounds.
        let barrier = Arc::new(Barrier::new(THREADS));
        let wins: Vec<usize> = (0..THREADS)
            .map(|_| {
                let (inner, barrier) = (inner.clone(), barrier.clone());
                std::thread::spawn(move || -> Result<usize> {
                    let (mut wins, mut failure) = (0, None);
                    for _ in 0..ROUNDS {
                        let mut txn = inner.new_txn();
                        let read = increment(&mut txn);
                        barrier.wait();
                        match read.and_then(|()| committed(txn.commit())) {
                            Ok(won) => wins += usize::from(won),
                            Err(e) => failure = failure.or(Some(e)),
                        }
                        barrier.wait();
                    }
                    failure.map_or(Ok(wins), Err)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().expect("a thread panicked").unwrap())
            .collect();
        let value = inner.get(b"counter").unwrap().expect("the counter");
        assert_eq!(
            (
                wins.iter().sum::<usize>(),
                std::str::from_utf8(&value).unwrap()
            ),
            (ROUNDS, ROUNDS.to_string().as_str()),
            "{level:?}: one commit per round of {THREADS} racing transactions (wins by thread: \
             {wins:?}), and the counter counts them"
        );
        // Free running, each conflict retried.
        inner.put(b"counter", b"0").unwrap();
        let (commits, conflicts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (inner, commits, conflicts) =
                    (inner.clone(), commits.clone(), conflicts.clone());
                std::thread::spawn(move || {
                    for _ in 0..INCREMENTS {
                        loop {
                            let mut txn = inner.new_txn();
                            increment(&mut txn).unwrap();
                            std::thread::yield_now();
                            if committed(txn.commit()).unwrap() {
                                break;
                            }
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a thread failed");
        }
        let value = inner.get(b"counter").unwrap().expect("the counter");
        let commits = commits.load(Ordering::Relaxed);
        println!(
            "{level:?}: {commits} commits, {} conflicts retried",
            conflicts.load(Ordering::Relaxed)
        );
        assert_eq!(commits, THREADS * INCREMENTS);
        assert_eq!(
            std::str::from_utf8(&value).unwrap(),
            commits.to_string(),
            "{level:?}"
        );
        assert_eq!(
            inner.mvcc.num_recent_commits(),
            0,
            "every transaction ended"
        );
    }
}

/// What a transaction of the random history read, and what it wrote.
#[derive(Default)]
struct Run {
    read_ts: u64,
    /// The keys it read.
    gets: BTreeSet<Vec<u8>>,
    /// The ranges it scanned.
    scans: Vec<OwnedRange>,
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Run {
    /// Whether its commit must succeed, given the keys written by the commits after its read
    /// timestamp: at snapshot isolation if none is a key it writes; at serializable if none is
    /// a key it read or lies in a range it scanned. A read-only transaction always commits.
    fn may_commit(&self, level: Isolation, changed: &BTreeSet<Vec<u8>>) -> bool {
        let scanned = |k: &Vec<u8>| {
            self.scans.iter().any(|(lower, upper)| {
                let (lower, upper) = (lower.as_ref(), upper.as_ref());
                in_bounds(k, lower.map(Vec::as_slice), upper.map(Vec::as_slice))
            })
        };
        self.writes.is_empty()
            || match level {
                Isolation::Snapshot => self.writes.keys().all(|k| !changed.contains(k)),
                _ => changed
                    .iter()
                    .all(|k| !self.gets.contains(k) && !scanned(k)),
            }
    }
}

/// Random interleaved transactions that read first and write after, plain writes between, all
/// checked against the history of commits: every read sees its snapshot; a serializable commit
/// succeeds exactly when none of its reads, point or range, changed between its snapshot and
/// its commit (so it serialises at its commit), and a snapshot-isolation commit exactly when no
/// key it writes did (seeded; replay with `MINI_LSM_SEED`).
#[test]
fn test_task3_random_transactions_commit_exactly_when_valid() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        let (_dir, inner) = open_engine(txn_options(level));
        let mut model = VersionModel::default();
        // Every commit: its timestamp and the keys it wrote.
        let mut history: Vec<(u64, BTreeSet<Vec<u8>>)> = Vec::new();
        let mut live: Vec<(Transaction<'_>, Run)> = Vec::new();
        let (mut commits, mut conflicts) = (0, 0);
        let key = |rng: &mut Rng| format!("k{}", rng.below(10)).into_bytes();
        for step in 0..2000 {
            let at = format!("seed {seed}, {level:?}, step {step}");
            match rng.below(20) {
                0..=2 => {
                    let txn = inner.new_txn();
                    let read_ts = txn.read_ts();
                    let run = Run {
                        read_ts,
                        ..Run::default()
                    };
                    live.push((txn, run));
                }
                3 => {
                    let (k, v) = (key(&mut rng), format!("p{step}"));
                    inner.put(&k, v.as_bytes()).unwrap();
                    let ts = inner.latest_commit_ts();
                    model.put(&k, ts, v.as_bytes());
                    history.push((ts, BTreeSet::from([k])));
                }
                _ if live.is_empty() => {}
                4..=9 => {
                    let i = rng.below(live.len());
                    let (txn, run) = &mut live[i];
                    if run.writes.is_empty() {
                        let k = key(&mut rng);
                        let got = txn.get(&k).unwrap();
                        assert_eq!(got, model.get(&k, run.read_ts), "{at}: get {}", show(&k));
                        run.gets.insert(k);
                    }
                }
                10..=11 => {
                    let i = rng.below(live.len());
                    let (txn, run) = &mut live[i];
                    if run.writes.is_empty() {
                        let (a, b) = (key(&mut rng), key(&mut rng));
                        let (lo, hi) = (a.clone().min(b.clone()), a.max(b));
                        let upper = if rng.chance(50) {
                            Bound::Included(hi)
                        } else {
                            Bound::Excluded(hi)
                        };
                        let range = (Bound::Included(lo), upper);
                        let (lower, upper) = (range.0.as_ref(), range.1.as_ref());
                        let (lower, upper) = (lower.map(Vec::as_slice), upper.map(Vec::as_slice));
                        let mut iter = txn.scan(lower, upper).unwrap();
                        let got = collect_user(&mut iter).unwrap();
                        assert!(got == model.scan(lower, upper, run.read_ts), "{at}: scan");
                        run.scans.push(range);
                    }
                }
                12..=15 => {
                    let i = rng.below(live.len());
                    let (txn, run) = &mut live[i];
                    let k = key(&mut rng);
                    let v = format!("t{step}").into_bytes();
                    txn.put(&k, &v).unwrap();
                    run.writes.insert(k, v);
                }
                _ => {
                    let (mut txn, run) = live.swap_remove(rng.below(live.len()));
                    let changed: BTreeSet<Vec<u8>> = history
                        .iter()
                        .filter(|(ts, _)| *ts > run.read_ts)
                        .flat_map(|(_, keys)| keys.iter().cloned())
                        .collect();
                    let valid = run.may_commit(level, &changed);
                    match txn.commit() {
                        Ok(ts) => {
                            assert!(valid, "{at}: committed, but what it read or wrote changed");
                            if let Some(ts) = ts {
                                run.writes.iter().for_each(|(k, v)| model.put(k, ts, v));
                                history.push((ts, run.writes.into_keys().collect()));
                                commits += 1;
                            }
                        }
                        Err(error) => {
                            assert!(
                                error.downcast_ref::<Conflict>().is_some(),
                                "{at}: {error:#}"
                            );
                            assert!(!valid, "{at}: a conflict where there is none: {error:#}");
                            conflicts += 1;
                        }
                    }
                }
            }
        }
        println!("{level:?}: {commits} commits with writes, {conflicts} conflicts");
        assert!(
            commits > 20 && conflicts > 5,
            "the history exercises both outcomes"
        );
    }
}
