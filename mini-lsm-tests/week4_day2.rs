// SPDX-License-Identifier: Apache-2.0
//! Week 4 day 2: group commit: writers queue, a leader writes the group as one log record and
//! syncs once if any member asked; per-write sync modes; caps on a group; crash points at every
//! log write and sync; many writers and readers against a model.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::fs::{Fault, FileSystem, MemFs};
use crate::iterators::StorageIterator;
use crate::lsm_storage::{
    LsmStorageInner, LsmStorageOptions, SyncMode, WriteBatchRecord, WriteOptions,
};
use crate::record::decode_records;
use crate::wal::{wal_path, Wal};

use super::harness::commit::{spawn_writer, wait_queued, GateFs, GateOn, Writer, PATIENCE};
use super::harness::persist::{db, mem_options};
use super::harness::{poll_until, test_seed, Rng};

/// Options for an engine on `fs` with the log on.
fn gate_options(fs: &GateFs) -> LsmStorageOptions {
    let mut options = mem_options(&fs.mem, true);
    options.fs = Arc::new(fs.clone());
    options
}

/// Opens an engine on `fs` with the log on.
fn open_gated(fs: &GateFs) -> Arc<LsmStorageInner> {
    Arc::new(LsmStorageInner::open(db(), gate_options(fs)).unwrap())
}

/// A put of `key` on its own thread, durable as `sync` says.
fn put_on_thread(inner: &Arc<LsmStorageInner>, key: &str, sync: SyncMode) -> Writer<()> {
    let (inner, key) = (Arc::clone(inner), key.to_string());
    spawn_writer(move || {
        inner
            .put_opt(key.as_bytes(), b"v", &WriteOptions::new(sync))
            .unwrap()
    })
}

/// Holds a leader writing `leader_sync` at the log's `gate_on`, queues one follower per entry
/// of `followers` behind it, then lets the leader go and waits for every writer.
fn leader_and_group(
    fs: &GateFs,
    inner: &Arc<LsmStorageInner>,
    gate_on: GateOn,
    leader_sync: SyncMode,
    followers: &[SyncMode],
) {
    fs.gate.arm(gate_on);
    let leader = put_on_thread(inner, "leader", leader_sync);
    fs.gate.wait_held(1);
    let followers: Vec<_> = followers
        .iter()
        .enumerate()
        .map(|(i, &sync)| put_on_thread(inner, &format!("follower{i:02}"), sync))
        .collect();
    wait_queued(inner, followers.len());
    fs.gate.open();
    leader.join();
    for follower in followers {
        follower.join();
    }
}

/// Writers that queue while a leader syncs are written by the next leader in one log write and
/// one sync, however many they are; and every one of them is durable when it returns.
#[test]
fn test_task1_a_queued_group_takes_one_write_and_one_sync() {
    let fs = GateFs::new(MemFs::new());
    let inner = open_gated(&fs);
    leader_and_group(
        &fs,
        &inner,
        GateOn::Sync,
        SyncMode::Fsync,
        &[SyncMode::Fsync; 7],
    );
    assert_eq!(
        fs.gate.counts(),
        (2, 2),
        "(appends, syncs) of the log: one each for the leader, one each for the seven queued"
    );
    let image = fs.mem.crash_now(true);
    let reopened = LsmStorageInner::open(db(), mem_options(&image, true)).unwrap();
    for i in 0..7 {
        let key = format!("follower{i:02}");
        assert!(
            reopened.get(key.as_bytes()).unwrap().is_some(),
            "{key} was acknowledged with fsync and lost"
        );
    }
}

/// A write that asks for fsync, queued behind writes that do not, makes its whole group sync;
/// a group of writes that asked for no sync does not sync.
#[test]
fn test_task1_a_sync_write_never_rides_in_a_group_that_does_not_sync() {
    let fs = GateFs::new(MemFs::new());
    let inner = open_gated(&fs);
    let modes = [SyncMode::Buffered, SyncMode::Fsync, SyncMode::Os];
    leader_and_group(&fs, &inner, GateOn::Append, SyncMode::Os, &modes);
    assert_eq!(
        fs.gate.counts(),
        (2, 1),
        "(appends, syncs): the group with an fsync member must sync once"
    );
    let image = fs.mem.crash_now(true);
    let reopened = LsmStorageInner::open(db(), mem_options(&image, true)).unwrap();
    assert!(
        reopened.get(b"follower01").unwrap().is_some(),
        "the fsync write was acknowledged before its group synced"
    );
    // A group of writes that asked to reach the OS only.
    let fs = GateFs::new(MemFs::new());
    let inner = open_gated(&fs);
    leader_and_group(
        &fs,
        &inner,
        GateOn::Append,
        SyncMode::Os,
        &[SyncMode::Os; 3],
    );
    assert_eq!(fs.gate.counts(), (2, 0), "nobody asked for a sync");
}

/// A group takes at most `max_group_writes` writers and about `max_group_bytes` of records:
/// past either cap, the rest wait for the next group.
#[test]
fn test_task1_groups_respect_their_caps() {
    for (writes_cap, bytes_cap, expected_appends) in [(3, 1 << 20, 1 + 3), (256, 1, 1 + 8)] {
        let fs = GateFs::new(MemFs::new());
        let mut options = gate_options(&fs);
        options.max_group_writes = writes_cap;
        options.max_group_bytes = bytes_cap;
        let inner = Arc::new(LsmStorageInner::open(db(), options).unwrap());
        leader_and_group(
            &fs,
            &inner,
            GateOn::Append,
            SyncMode::Os,
            &[SyncMode::Os; 8],
        );
        assert_eq!(
            fs.gate.counts().0,
            expected_appends,
            "eight queued writers with max_group_writes {writes_cap}, max_group_bytes {bytes_cap}"
        );
    }
}

/// `put_opt`, `delete_opt` and `write_batch_opt` with fsync are durable when they return: a
/// power cut right after keeps them, where plain writes in the default mode are not synced.
#[test]
fn test_task1_writes_with_fsync_survive_a_power_cut() {
    let fs = MemFs::new();
    let inner = LsmStorageInner::open(db(), mem_options(&fs, true)).unwrap();
    let fsync = WriteOptions::fsync();
    inner.put_opt(b"a", b"1", &fsync).unwrap();
    inner.put(b"gone", b"1").unwrap();
    inner.delete_opt(b"gone", &fsync).unwrap();
    let batch = [
        WriteBatchRecord::Put(&b"b"[..], &b"2"[..]),
        WriteBatchRecord::Put(&b"c"[..], &b"3"[..]),
    ];
    inner.write_batch_opt(&batch, &fsync).unwrap();
    inner.put(b"unsynced", b"1").unwrap();
    let reopened = LsmStorageInner::open(db(), mem_options(&fs.crash_now(true), true)).unwrap();
    for (key, value) in [(&b"a"[..], &b"1"[..]), (b"b", b"2"), (b"c", b"3")] {
        assert_eq!(reopened.get(key).unwrap().as_deref(), Some(value));
    }
    assert_eq!(
        reopened.get(b"gone").unwrap(),
        None,
        "the synced delete was lost"
    );
    assert_eq!(
        reopened.get(b"unsynced").unwrap(),
        None,
        "a buffered write reached the disk without a sync: the test's premise is wrong"
    );
}

/// Regression: 1,000 puts acknowledged with fsync all survive a power cut (a published engine
/// kept 0 of 1,000 in its direct-log mode).
#[test]
fn test_task1_a_thousand_fsync_puts_survive_a_crash() {
    let fs = MemFs::new();
    let inner = LsmStorageInner::open(db(), mem_options(&fs, true)).unwrap();
    for i in 0..1000 {
        inner
            .put_opt(
                format!("key{i:04}").as_bytes(),
                b"v",
                &WriteOptions::fsync(),
            )
            .unwrap();
    }
    let reopened = LsmStorageInner::open(db(), mem_options(&fs.crash_now(true), true)).unwrap();
    let kept = (0..1000)
        .filter(|i| {
            reopened
                .get(format!("key{i:04}").as_bytes())
                .unwrap()
                .is_some()
        })
        .count();
    assert_eq!(kept, 1000, "acknowledged with fsync, then lost");
}

/// A group is one log record: the log of a leader and a group of seven holds two records, and
/// replays eight batches at timestamps 1 to 8.
#[test]
fn test_task2_a_group_is_one_log_record() {
    let fs = GateFs::new(MemFs::new());
    let inner = open_gated(&fs);
    leader_and_group(
        &fs,
        &inner,
        GateOn::Sync,
        SyncMode::Fsync,
        &[SyncMode::Fsync; 7],
    );
    let path = wal_path(&db(), inner.snapshot().memtable.id());
    let data = fs.mem.read_all(&path).unwrap();
    let records = decode_records(&path, &data).unwrap();
    assert_eq!(records.payloads.len(), 2, "one record per group");
    let mut timestamps = Vec::new();
    let replay = Wal::replay_at(&fs.mem, &path, |key, _| timestamps.push(key.ts())).unwrap();
    assert_eq!(replay.batches, 8);
    timestamps.sort_unstable();
    assert_eq!(timestamps, (1..=8).collect::<Vec<u64>>());
    assert_eq!(replay.max_ts, 8);
}

/// A power cut in the middle of a group's log write (half of it on disk) recovers none of the
/// group: a group is all or nothing.
#[test]
fn test_task2_a_torn_group_is_recovered_not_at_all() {
    let fs = GateFs::new(MemFs::new());
    let inner = open_gated(&fs);
    inner
        .put_opt(b"before", b"v", &WriteOptions::fsync())
        .unwrap();
    // The group's sync is held: its record is in the file, unsynced.
    fs.gate.arm(GateOn::Append);
    let leader = put_on_thread(&inner, "leader", SyncMode::Os);
    fs.gate.wait_held(1);
    let followers: Vec<_> = (0..4)
        .map(|i| put_on_thread(&inner, &format!("follower{i:02}"), SyncMode::Fsync))
        .collect();
    wait_queued(&inner, 4);
    fs.gate.arm(GateOn::Sync);
    fs.gate.open();
    fs.gate.wait_held(2);
    let image = fs.mem.crash_now(true);
    fs.gate.open();
    leader.join();
    for follower in followers {
        drop(follower); // They fail or not: the power is out.
    }
    let reopened = LsmStorageInner::open(db(), mem_options(&image, true)).unwrap();
    assert!(reopened.get(b"before").unwrap().is_some());
    let kept: Vec<bool> = (0..4)
        .map(|i| {
            reopened
                .get(format!("follower{i:02}").as_bytes())
                .unwrap()
                .is_some()
        })
        .collect();
    assert!(
        kept.iter().all(|&k| !k),
        "part of a torn group was recovered: {kept:?}"
    );
}

/// One write of the crash workload: its key, whether it is a two-entry batch, its sync mode,
/// and the group it was queued in (a round's followers share one).
struct Planned {
    key: String,
    batch: bool,
    sync: SyncMode,
    group: Option<usize>,
}

/// The crash workload: rounds of a leader held at its log write and three followers queued
/// behind it (one a two-entry batch), with a freeze between rounds two and three.
fn crash_rounds() -> Vec<(Planned, Vec<Planned>)> {
    let modes = [SyncMode::Buffered, SyncMode::Os, SyncMode::Fsync];
    (0..4)
        .map(|round| {
            let leader = Planned {
                key: format!("r{round}-leader"),
                batch: false,
                sync: if round % 2 == 0 {
                    SyncMode::Os
                } else {
                    SyncMode::Fsync
                },
                group: None,
            };
            let followers = (0..3)
                .map(|i| Planned {
                    key: format!("r{round}-f{i}"),
                    batch: i == 1,
                    sync: modes[(round + i) % 3],
                    group: Some(round),
                })
                .collect();
            (leader, followers)
        })
        .collect()
}

/// Runs `plan` as one write: a put, or a batch of two keys (`key` and `key+`).
fn run_planned(inner: &LsmStorageInner, plan: &Planned) -> anyhow::Result<()> {
    let options = WriteOptions::new(plan.sync);
    if plan.batch {
        let second = format!("{}+", plan.key);
        let batch = [
            WriteBatchRecord::Put(plan.key.as_bytes(), &b"v"[..]),
            WriteBatchRecord::Put(second.as_bytes(), &b"v"[..]),
        ];
        inner.write_batch_opt(&batch, &options)
    } else {
        inner.put_opt(plan.key.as_bytes(), b"v", &options)
    }
}

/// Runs the crash workload on `fs` until a write fails; returns each write's key and whether it
/// was acknowledged.
fn run_rounds(fs: &GateFs, inner: &Arc<LsmStorageInner>) -> BTreeMap<String, bool> {
    let mut acked = BTreeMap::new();
    for (round, (leader, followers)) in crash_rounds().into_iter().enumerate() {
        if round == 2 && inner.freeze_memtable().is_err() {
            break;
        }
        fs.gate.arm(GateOn::Append);
        let lead = {
            let inner = Arc::clone(inner);
            spawn_writer(move || (run_planned(&inner, &leader).is_ok(), leader.key))
        };
        // The leader may fail before its append (syncing the frozen log first, say).
        let held = poll_until(PATIENCE, || fs.gate.held() > round || lead.is_done());
        assert!(held, "the leader neither reached the log nor returned");
        if fs.gate.held() <= round {
            let (ok, key) = lead.join();
            acked.insert(key, ok);
            assert!(!ok, "the leader wrote without passing the gate");
            break;
        }
        let queued: Vec<_> = followers
            .into_iter()
            .map(|plan| {
                let inner = Arc::clone(inner);
                spawn_writer(move || (run_planned(&inner, &plan).is_ok(), plan.key))
            })
            .collect();
        wait_queued(inner, 3);
        fs.gate.open();
        let mut failed = false;
        for writer in std::iter::once(lead).chain(queued) {
            let (ok, key) = writer.join();
            failed |= !ok;
            acked.insert(key, ok);
        }
        if failed {
            break;
        }
    }
    acked
}

/// A crash at every write and sync of the log, torn or not, under group commit: every write
/// acknowledged with fsync survives, every group and batch is recovered all or nothing, and
/// what is recovered is a prefix of the commit order (timestamps 1 to n, no gap).
#[test]
fn test_task1_crash_at_every_log_write_and_sync() {
    let fs = GateFs::new(MemFs::new());
    let inner = open_gated(&fs);
    let start = fs.mem.ops();
    let clean = run_rounds(&fs, &inner);
    assert!(
        clean.values().all(|&ok| ok),
        "the workload fails with no crash"
    );
    let end = fs.mem.ops();
    drop(inner);
    let plans: Vec<Planned> = crash_rounds()
        .into_iter()
        .flat_map(|(leader, followers)| std::iter::once(leader).chain(followers))
        .collect();
    for op in start..=end {
        for tear in [false, true] {
            let case = format!("crash at operation {op} (of {start}..{end}), torn: {tear}");
            let fs = GateFs::new(MemFs::new());
            let inner = open_gated(&fs);
            fs.mem.set_fault(Some(Fault::CrashAt {
                op,
                tear_last_write: tear,
            }));
            let acked = run_rounds(&fs, &inner);
            drop(inner);
            let image = fs
                .mem
                .crash_image()
                .unwrap_or_else(|| fs.mem.crash_now(tear));
            let reopened = LsmStorageInner::open(db(), mem_options(&image, true))
                .unwrap_or_else(|e| panic!("{case}: recovery failed: {e:#}"));
            let mut kept = 0;
            let mut groups: BTreeMap<usize, Vec<bool>> = BTreeMap::new();
            for plan in &plans {
                let present = reopened.get(plan.key.as_bytes()).unwrap().is_some();
                if plan.batch {
                    let second = format!("{}+", plan.key);
                    let both = reopened.get(second.as_bytes()).unwrap().is_some();
                    assert_eq!(
                        present, both,
                        "{case}: half of batch {} recovered",
                        plan.key
                    );
                }
                let was_acked = acked.get(&plan.key).copied().unwrap_or(false);
                if was_acked && plan.sync == SyncMode::Fsync {
                    assert!(
                        present,
                        "{case}: {} was acknowledged with fsync and lost",
                        plan.key
                    );
                }
                if let Some(group) = plan.group {
                    groups.entry(group).or_default().push(present);
                }
                kept += usize::from(present);
            }
            for (group, present) in groups {
                assert!(
                    present.iter().all(|&p| p) || present.iter().all(|&p| !p),
                    "{case}: group of round {group} recovered in part: {present:?}"
                );
            }
            assert_eq!(
                reopened.latest_commit_ts(),
                kept as u64,
                "{case}: {kept} writes recovered, but the latest timestamp recovered is not the \
                 {kept}th: what survived is not a prefix of the commit order"
            );
        }
    }
}

/// Sixteen writers in all three sync modes and two readers, for a bounded time: every snapshot
/// a reader takes at timestamp t shows exactly the writes committed at or below t (none above,
/// none missing below), checked afterwards against every write's timestamp; and every write
/// acknowledged with fsync survives a power cut at the end.
#[test]
fn test_task1_sixteen_writers_two_readers_against_a_model() {
    let seed = test_seed();
    let fs = MemFs::new();
    let inner = Arc::new(LsmStorageInner::open(db(), mem_options(&fs, true)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_millis(1500);
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (inner, stop) = (Arc::clone(&inner), Arc::clone(&stop));
            let mut rng = Rng::new(seed.wrapping_add(w));
            spawn_writer(move || {
                let mut written = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 400 {
                    let sync = [SyncMode::Buffered, SyncMode::Os, SyncMode::Fsync][rng.below(3)];
                    let key = format!("w{w:02}-{i:04}");
                    inner
                        .put_opt(key.as_bytes(), b"v", &WriteOptions::new(sync))
                        .unwrap();
                    written.push((key, sync));
                    i += 1;
                }
                written
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (inner, stop) = (Arc::clone(&inner), Arc::clone(&stop));
            spawn_writer(move || {
                let mut seen: Vec<(u64, Vec<Bytes>)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let snapshot = inner.new_snapshot();
                    let mut iter = snapshot
                        .scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                        .unwrap();
                    let mut keys = Vec::new();
                    while iter.is_valid() {
                        keys.push(Bytes::copy_from_slice(iter.key()));
                        iter.next().unwrap();
                    }
                    seen.push((snapshot.read_ts(), keys));
                }
                seen
            })
        })
        .collect();
    while Instant::now() < deadline && writers.iter().any(|w| !w.is_done()) {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let written: Vec<(String, SyncMode)> = writers.into_iter().flat_map(Writer::join).collect();
    let seen: Vec<(u64, Vec<Bytes>)> = readers.into_iter().flat_map(Writer::join).collect();
    // Every write's timestamp, from the memtable's versions.
    let mut ts_of: BTreeMap<Bytes, u64> = BTreeMap::new();
    let memtable = inner.snapshot().memtable.clone();
    let mut iter = memtable.scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
    while iter.is_valid() {
        let key = iter.key();
        ts_of.insert(Bytes::copy_from_slice(key.key_ref()), key.ts());
        iter.next().unwrap();
    }
    assert_eq!(
        ts_of.len(),
        written.len(),
        "seed {seed}: writes missing from the memtable"
    );
    assert_eq!(
        inner.latest_commit_ts(),
        written.len() as u64,
        "seed {seed}"
    );
    assert!(!seen.is_empty());
    for (read_ts, keys) in &seen {
        let expected: Vec<&Bytes> = ts_of
            .iter()
            .filter(|(_, &ts)| ts <= *read_ts)
            .map(|(key, _)| key)
            .collect();
        let got: Vec<&Bytes> = keys.iter().collect();
        assert!(
            expected == got,
            "seed {seed}: a snapshot at {read_ts} saw {} keys where {} were committed at or \
             below it",
            got.len(),
            expected.len()
        );
    }
    let reopened = LsmStorageInner::open(db(), mem_options(&fs.crash_now(true), true)).unwrap();
    for (key, sync) in &written {
        if *sync == SyncMode::Fsync {
            assert!(
                reopened.get(key.as_bytes()).unwrap().is_some(),
                "seed {seed}: {key} was acknowledged with fsync and lost"
            );
        }
    }
    println!(
        "{} writes, {} snapshots checked (seed {seed})",
        written.len(),
        seen.len()
    );
}
