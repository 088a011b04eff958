// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 6: the write-ahead log. A log replays what was synced into it and drops a torn
//! tail, saying so; a synced write survives a crash, and an unsynced one may be lost but only as
//! a suffix of the history; `sync` covers the frozen memtables too; a log outlives its memtable
//! until the flushed SST is recorded; a crash at any file operation recovers, even during the
//! recovery; a failed background flush is sticky; a write refused by the stall never reappears;
//! and a log the manifest sealed (or saw synced at close) that is cut or missing is an error, never
//! a shorter history. Every test runs without record checksums and batches (day 7).

use std::time::{Duration, Instant};

use super::harness::bytes_of;
use super::harness::persist::{
    assert_state_eq, crash_sweep, db, file_names, freeze, full_sweep, key, mem_options,
    open_fails_unchanged, open_mem, read_state, run_steps, shape, show_model, test_seed, Model,
    Rng, Step,
};
use crate::fs::{Fault, FileSystem, MemFs};
use crate::lsm_storage::{LsmStorageInner, MiniLsm, RecoveryMode};
use crate::wal::{wal_path, Wal, WalReplay};

/// The keys `key000..key039`, to probe with `get`.
fn probe_keys() -> Vec<Vec<u8>> {
    (0..40).map(key).collect()
}

/// Opens the engine with the log on `fs`.
fn open_wal(fs: &MemFs) -> LsmStorageInner {
    open_mem(fs, true).expect("open the engine")
}

/// Puts `key(i) = value` into the engine and the model.
fn put(inner: &LsmStorageInner, model: &mut Model, i: usize, value: &str) {
    inner.put(&key(i), value.as_bytes()).unwrap();
    model.insert(key(i), value.as_bytes().to_vec());
}

/// Replays the log at `path` on `fs`: its entries (tombstones as empty values, later ones
/// winning) and what the replay reported.
fn replay_log(fs: &MemFs, path: &std::path::Path) -> (Model, WalReplay) {
    let mut map = Model::new();
    let replay = Wal::replay(fs, path, |k, v| {
        map.insert(k.to_vec(), v.to_vec());
    })
    .unwrap();
    (map, replay)
}

/// A log replays every synced batch, in order, with deletions; unsynced ones vanish in a crash.
#[test]
fn test_task1_wal_replays_synced_batches() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let path = wal_path(&db(), 3);
    let wal = Wal::create(&fs, &path).unwrap();
    fs.sync_dir(&db()).unwrap();
    let batches: [&[(&[u8], &[u8])]; 4] = [
        &[(b"a", b"1")],
        &[(b"b", b"2"), (b"c", b"3")],
        &[(b"a", b""), (b"b", b"22")],
        &[(b"d", b"4")],
    ];
    for batch in &batches[..3] {
        wal.put_batch(batch).unwrap();
    }
    wal.sync().unwrap();
    wal.put_batch(batches[3]).unwrap();
    let expected = Model::from([
        (b"a".to_vec(), b"".to_vec()),
        (b"b".to_vec(), b"22".to_vec()),
        (b"c".to_vec(), b"3".to_vec()),
    ]);
    // The fourth batch was never synced: a crash loses it, torn or not.
    for tear in [false, true] {
        let image = if tear {
            fs.crash_image().unwrap()
        } else {
            fs.crash_now(false)
        };
        let (entries, replay) = replay_log(&image, &path);
        assert_state_eq(&entries, &expected, "");
        assert_eq!(replay.batches, 3, "batches replayed");
        assert_eq!(replay.torn_tail_at, None, "nothing torn");
    }
    // Synced, the fourth batch is there too.
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let wal = Wal::create(&fs, &path).unwrap();
    fs.sync_dir(&db()).unwrap();
    for batch in batches {
        wal.put_batch(batch).unwrap();
        wal.sync().unwrap();
    }
    let (entries, replay) = replay_log(&fs.crash_now(false), &path);
    assert_eq!(replay.batches, 4);
    assert_eq!(entries.len(), 4);
}

/// A log cut anywhere replays the whole records before the cut, and reports a cut record.
#[test]
fn test_task1_torn_wal_tail_dropped_and_reported() {
    let fs = MemFs::new();
    let inner = open_wal(&fs);
    let path = wal_path(&db(), shape(&inner).memtable);
    let mut models = vec![Model::new()];
    let mut boundaries = vec![0];
    for i in 0..6 {
        let mut model = models.last().unwrap().clone();
        if i == 4 {
            inner.delete(&key(1)).unwrap();
            model.remove(&key(1));
        } else {
            put(&inner, &mut model, i, &format!("value {i}"));
        }
        inner.sync().unwrap();
        models.push(model);
        boundaries.push(fs.read_all(&path).unwrap().len());
    }
    drop(inner);
    let whole = fs.read_all(&path).unwrap();
    fs.crash_now(false);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    for cut in 0..=whole.len() {
        let image = fs.crash_image().unwrap();
        image.overwrite(&path, whole[..cut].to_vec());
        let inner = open_wal(&image);
        let whole_records = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
        assert_state_eq(
            &read_state(&inner, &probe_keys()).unwrap(),
            &models[whole_records],
            format_args!(
                "cut at {cut} of {} (record ends {boundaries:?})",
                whole.len()
            ),
        );
        let reported = inner.recovery_report().iter().any(|l| l.contains(&name));
        assert_eq!(
            reported,
            !boundaries.contains(&cut),
            "cut at {cut} (record ends {boundaries:?}): a torn record is reported, a whole one \
             is not: {:?}",
            inner.recovery_report()
        );
    }
}

/// Writes six synced records into the memtable's log; returns the engine, the log's path and
/// the offset where each record ends.
fn six_records(fs: &MemFs) -> (LsmStorageInner, std::path::PathBuf, Vec<usize>) {
    let inner = open_wal(fs);
    let path = wal_path(&db(), shape(&inner).memtable);
    let mut ends = Vec::new();
    for i in 0..6 {
        inner.put(&key(i), format!("value {i}").as_bytes()).unwrap();
        inner.sync().unwrap();
        ends.push(fs.read_all(&path).unwrap().len());
    }
    (inner, path, ends)
}

/// The log of a frozen memtable is sealed in the manifest: cut at any offset (a record
/// boundary included), or deleted, it makes `open` fail naming it, and change nothing.
#[test]
fn test_task3_sealed_log_cut_or_deleted_is_an_error() {
    let fs = MemFs::new();
    let (inner, path, ends) = six_records(&fs);
    freeze(&inner).unwrap();
    inner.put(&key(9), b"in the next log").unwrap();
    inner.sync().unwrap();
    drop(inner);
    let whole = fs.read_all(&path).unwrap();
    assert_eq!(whole.len(), ends[5], "the freeze wrote nothing more");
    let name = path.file_name().unwrap().to_str().unwrap();
    let mut cases: Vec<(String, Option<Vec<u8>>)> = vec![("deleted".to_string(), None)];
    for cut in 0..whole.len() {
        cases.push((format!("cut to {cut} bytes"), Some(whole[..cut].to_vec())));
    }
    for (case, bytes) in cases {
        let image = fs.crash_now(false);
        match bytes {
            Some(bytes) => image.overwrite(&path, bytes),
            None => image.remove(&path).unwrap(),
        }
        let error = open_fails_unchanged(&image, true, &case);
        assert!(
            error.contains(name),
            "{case}: the error must name {name}: {error}"
        );
    }
    // Intact, it replays in full.
    let inner = open_wal(&fs.crash_now(false));
    assert_eq!(read_state(&inner, &probe_keys()).unwrap().len(), 7);
}

/// `close` vouches for the last log's length: after a clean close, that log cut at a record
/// boundary is an error naming it, not a shorter history.
#[test]
fn test_task4_close_vouches_for_the_last_log() {
    let fs = MemFs::new();
    let lsm = MiniLsm::open(db(), mem_options(&fs, true)).unwrap();
    let path = wal_path(&db(), shape(&lsm.inner).memtable);
    let mut ends = vec![0];
    for i in 0..5 {
        lsm.put(&key(i), b"value").unwrap();
        lsm.sync().unwrap();
        ends.push(fs.read_all(&path).unwrap().len());
    }
    lsm.close().unwrap();
    drop(lsm);
    let name = path.file_name().unwrap().to_str().unwrap();
    for &cut in &ends[..ends.len() - 1] {
        let image = fs.crash_now(false);
        let whole = image.read_all(&path).unwrap();
        image.overwrite(&path, whole[..cut].to_vec());
        let error = open_fails_unchanged(&image, true, &format!("cut to {cut}"));
        assert!(error.contains(name), "cut to {cut}: {error}");
    }
    let inner = open_wal(&fs.crash_now(false));
    assert_eq!(read_state(&inner, &probe_keys()).unwrap().len(), 5);
}

/// A torn tail of the live log is an error in `RecoveryMode::Strict`; the default drops it and
/// reports the exact bytes dropped and the records kept.
#[test]
fn test_task3_torn_log_tail_in_each_recovery_mode() {
    let fs = MemFs::new();
    let (inner, path, ends) = six_records(&fs);
    drop(inner);
    let whole = fs.read_all(&path).unwrap();
    let cut = ends[3] + 5;
    let image = fs.crash_now(false);
    image.overwrite(&path, whole[..cut].to_vec());
    let mut options = mem_options(&image, true);
    options.recovery_mode = RecoveryMode::Strict;
    let error = match LsmStorageInner::open(db(), options) {
        Ok(_) => panic!("a torn log opened in strict mode"),
        Err(error) => format!("{error:#}"),
    };
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(error.contains(name), "{error}");
    let inner = open_wal(&image);
    let report = inner.recovery_report().join("\n");
    let expected = format!(
        "at offset {}: its 5 bytes; kept the 4 whole records",
        ends[3]
    );
    assert!(
        report.contains(name) && report.contains(&expected),
        "the report must say what was dropped ({expected}): {report}"
    );
    assert_eq!(read_state(&inner, &probe_keys()).unwrap().len(), 4);
}

/// The log of a live memtable that is missing (not only cut) makes `open` fail, naming it.
#[test]
fn test_task3_missing_live_log_is_an_error() {
    let fs = MemFs::new();
    let (inner, path, _) = six_records(&fs);
    drop(inner);
    let image = fs.crash_now(false);
    image.remove(&path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let error = open_fails_unchanged(&image, true, "deleted");
    assert!(error.contains(name), "{error}");
}

/// A manifest cut before its last `NewMemtable` never makes `open` reuse that id and truncate
/// the log it names: the log, unknown to the cut manifest, is an error, and every byte stays.
#[test]
fn test_task3_cut_manifest_never_truncates_a_log() {
    let fs = MemFs::new();
    let inner = open_wal(&fs);
    inner.put(&key(1), b"old").unwrap();
    let manifest = db().join(crate::manifest::MANIFEST_NAME);
    let before_freeze = fs.read_all(&manifest).unwrap().len();
    freeze(&inner).unwrap();
    let path = wal_path(&db(), shape(&inner).memtable);
    inner.put(&key(2), b"synced into the new log").unwrap();
    inner.sync().unwrap();
    drop(inner);
    let image = fs.crash_now(false);
    let whole = image.read_all(&manifest).unwrap();
    image.overwrite(&manifest, whole[..before_freeze].to_vec());
    let error = open_fails_unchanged(&image, true, "manifest cut before NewMemtable");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(error.contains(name), "{error}");
}

/// Turning the log on after a crash of a session without it opens cleanly (those memtables had
/// no log to find); turning it off over logs that hold data is an error, not their deletion.
#[test]
fn test_task3_switching_the_log_on_and_off() {
    let fs = MemFs::new();
    let inner = open_mem(&fs, false).unwrap();
    inner.put(&key(1), b"flushed").unwrap();
    freeze(&inner).unwrap();
    inner.force_flush_next_imm_memtable().unwrap();
    inner.put(&key(2), b"lost with the memtable").unwrap();
    freeze(&inner).unwrap();
    let image = fs.crash_now(false);
    drop(inner);
    let inner = open_wal(&image);
    let mut model = Model::new();
    model.insert(key(1), b"flushed".to_vec());
    assert_eq!(read_state(&inner, &probe_keys()).unwrap(), model);
    inner.put(&key(3), b"logged").unwrap();
    inner.sync().unwrap();
    let image = image.crash_now(false);
    drop(inner);
    let error = open_fails_unchanged(&image, false, "the log turned off");
    assert!(error.contains("enable_wal"), "{error}");
}

/// A crash keeps every synced write and a prefix of the rest (random workloads, torn or not).
#[test]
fn test_task2_crash_keeps_a_prefix_with_every_synced_write() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    for round in 0..if full_sweep() { 400 } else { 40 } {
        let mut steps = Vec::new();
        for _ in 0..rng.below(60) {
            let i = rng.below(25);
            steps.push(match rng.below(100) {
                0..=59 => Step::put(&key(i), format!("v{}", rng.below(1000)).as_bytes()),
                60..=74 => Step::delete(&key(i)),
                75..=86 => Step::Sync,
                87..=94 => Step::Freeze,
                _ => Step::Flush,
            });
        }
        let fs = MemFs::new();
        let run = run_steps(&open_wal(&fs), &steps, true);
        assert_eq!(run.error, None, "round {round}");
        let tear = rng.chance(50);
        let image = fs.crash_now(tear);
        let inner = open_wal(&image);
        let state = read_state(&inner, &probe_keys()).unwrap();
        let k = (0..run.models.len())
            .rev()
            .find(|&k| run.models[k] == state);
        let listing: Vec<String> = steps.iter().map(|s| format!("{s:?}")).collect();
        assert!(
            k.is_some_and(|k| k >= run.durable),
            "seed {seed}, round {round} (tear: {tear}): recovered {} which is {} (the first {} \
             writes were synced)\nsteps:\n{}",
            show_model(&state),
            match k {
                Some(k) => format!("the state after {k} writes"),
                None => "no prefix of the history".to_string(),
            },
            run.durable,
            listing.join("\n")
        );
    }
}

/// A write refused after the stall timeout is not applied, not even after a reopen.
#[test]
fn test_task2_refused_write_never_reappears() {
    let fs = MemFs::new();
    let mut options = mem_options(&fs, true);
    options.num_memtable_limit = 2;
    options.write_stall_margin = 0;
    options.write_stall_timeout = Duration::from_millis(100);
    let inner = LsmStorageInner::open(db(), options).unwrap();
    let mut model = Model::new();
    for i in 0..2 {
        put(&inner, &mut model, i, "kept");
        freeze(&inner).unwrap();
    }
    // Three memtables, over the limit of 2 + 0, and no flush thread: the put times out.
    let start = Instant::now();
    inner
        .put(&key(7), b"refused")
        .expect_err("the put must stall and time out");
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "the put failed after {:?}, before the stall timeout",
        start.elapsed()
    );
    assert_eq!(
        inner.get(&key(7)).unwrap(),
        None,
        "a refused put is visible"
    );
    inner.sync().unwrap();
    let image = fs.crash_now(false);
    drop(inner);
    let inner = open_wal(&image);
    assert_state_eq(
        &read_state(&inner, &probe_keys()).unwrap(),
        &model,
        format_args!("after a reopen"),
    );
}

/// A log lives until its memtable's SST is recorded: writes made meanwhile survive flush and crash.
#[test]
fn test_task3_wal_outlives_the_flush() {
    for sync_before_flush in [false, true] {
        let fs = MemFs::new();
        let inner = open_wal(&fs);
        let mut model = Model::new();
        put(&inner, &mut model, 1, "A");
        let old = shape(&inner).memtable;
        freeze(&inner).unwrap();
        let new = shape(&inner).memtable;
        put(&inner, &mut model, 2, "B");
        if sync_before_flush {
            inner.sync().unwrap();
        }
        inner.force_flush_next_imm_memtable().unwrap();
        if !sync_before_flush {
            inner.sync().unwrap();
        }
        assert!(
            !fs.exists(&wal_path(&db(), old)),
            "the flushed memtable's log is left behind"
        );
        assert!(
            fs.exists(&wal_path(&db(), new)),
            "the new memtable's log is gone"
        );
        drop(inner);
        let inner = open_wal(&fs.crash_now(true));
        assert_state_eq(
            &read_state(&inner, &probe_keys()).unwrap(),
            &model,
            format_args!("sync before the flush: {sync_before_flush}"),
        );
    }
}

/// A crash at any file operation of a flush loses no synced write.
#[test]
fn test_task3_crash_during_flush_loses_nothing() {
    let setup = |fs: &MemFs| {
        let inner = open_wal(fs);
        let mut model = Model::new();
        for i in 0..10 {
            put(&inner, &mut model, i, "old");
        }
        freeze(&inner).unwrap();
        for i in 5..15 {
            put(&inner, &mut model, i, "new");
        }
        inner.sync().unwrap();
        (inner, model)
    };
    let fs = MemFs::new();
    let (inner, _) = setup(&fs);
    let start = fs.ops();
    inner.force_flush_next_imm_memtable().unwrap();
    let end = fs.ops();
    assert!(end > start, "a flush writes files");
    for op in start..end {
        for tear_last_write in [false, true] {
            let fs = MemFs::new();
            let (inner, model) = setup(&fs);
            fs.set_fault(Some(Fault::CrashAt {
                op,
                tear_last_write,
            }));
            assert!(inner.force_flush_next_imm_memtable().is_err());
            let inner = open_wal(&fs.crash_image().unwrap());
            assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, format_args!("crash at operation {op} of the flush ({start}..{end}, tear: {tear_last_write})"));
        }
    }
}

/// A flush failing at any file operation keeps reads and the log, even past a later directory sync.
#[test]
fn test_task3_failed_flush_keeps_the_log() {
    let setup = |fs: &MemFs| {
        let inner = open_wal(fs);
        let mut model = Model::new();
        for i in 0..8 {
            put(&inner, &mut model, i, "frozen");
        }
        freeze(&inner).unwrap();
        put(&inner, &mut model, 8, "mutable");
        inner.sync().unwrap();
        (inner, model)
    };
    let fs = MemFs::new();
    let (inner, _) = setup(&fs);
    let start = fs.ops();
    inner.force_flush_next_imm_memtable().unwrap();
    let end = fs.ops();
    for op in start..end {
        let fs = MemFs::new();
        let (inner, model) = setup(&fs);
        fs.set_fault(Some(Fault::FailOp(op)));
        let flushed = inner.force_flush_next_imm_memtable();
        let case = format!("operation {op} of the flush ({start}..{end}) failed: {flushed:?}");
        assert!(flushed.is_err(), "{case}: the flush must report it");
        assert_state_eq(
            &read_state(&inner, &probe_keys()).unwrap(),
            &model,
            format_args!("{case}"),
        );
        freeze(&inner).unwrap();
        let inner = open_wal(&fs.crash_now(false));
        assert_state_eq(
            &read_state(&inner, &probe_keys()).unwrap(),
            &model,
            format_args!("{case}, then a freeze and a crash"),
        );
    }
}

/// A crash at any file operation, or again during recovery, keeps every synced write, as a prefix.
#[test]
fn test_task3_crash_at_every_operation_with_wal() {
    let mut steps = Vec::new();
    let mut n = 0;
    let mut write = |steps: &mut Vec<Step>, count: usize| {
        for _ in 0..count {
            n += 1;
            let i = (n * 7) % 13;
            steps.push(if n % 6 == 5 {
                Step::delete(&key(i))
            } else {
                Step::put(&key(i), format!("w{n}").as_bytes())
            });
        }
    };
    write(&mut steps, 4);
    steps.push(Step::Sync);
    write(&mut steps, 3);
    steps.push(Step::Freeze);
    write(&mut steps, 3);
    steps.push(Step::Sync);
    write(&mut steps, 2);
    // Two frozen memtables, one with unsynced writes, then flushed one at a time.
    steps.push(Step::Freeze);
    write(&mut steps, 3);
    steps.push(Step::Flush);
    steps.push(Step::Sync);
    write(&mut steps, 2);
    steps.push(Step::Flush);
    write(&mut steps, 3);
    steps.push(Step::Sync);
    steps.push(Step::Freeze);
    steps.push(Step::Freeze);
    steps.push(Step::Flush);
    write(&mut steps, 3);
    crash_sweep("WAL crash sweep", true, &steps);
}

/// A failed background flush is sticky for writes and `close`; the thread stops; the logs keep all.
#[test]
fn test_task3_failed_flush_is_sticky() {
    let fs = MemFs::new();
    let mut options = mem_options(&fs, true);
    options.num_memtable_limit = 2;
    options.write_stall_margin = 0;
    options.write_stall_timeout = Duration::from_secs(30);
    let lsm = MiniLsm::open(db(), options).unwrap();
    let mut model = Model::new();
    put(&lsm.inner, &mut model, 1, "a");
    // Two memtables: the flush thread waits for a third.
    let before = fs.ops();
    freeze(&lsm.inner).unwrap();
    let freeze_ops = fs.ops() - before;
    put(&lsm.inner, &mut model, 2, "b");
    lsm.sync().unwrap();
    // The third memtable: the thread's flush creates the SST (the first operation after our
    // freeze) and fails to write it (the second).
    fs.set_fault(Some(Fault::FailOp(fs.ops() + freeze_ops + 1)));
    freeze(&lsm.inner).unwrap();
    // Three memtables stall this put until the thread flushes or fails.
    let error = lsm
        .put(&key(3), b"c")
        .expect_err("the flush failed: the put must fail");
    assert!(
        format!("{error:#}").contains("injected"),
        "the put's error is not the flush's: {error:#}"
    );
    let again = lsm.put(&key(4), b"d").expect_err("the error is sticky");
    assert!(format!("{again:#}").contains("injected"), "{again:#}");
    lsm.sync().unwrap();
    let closed = lsm.close().expect_err("close must return the flush error");
    assert!(format!("{closed:#}").contains("injected"), "{closed:#}");
    // The thread is joined now. Had it retried, its next flush would have succeeded.
    let after = shape(&lsm.inner);
    assert!(
        after.l0.is_empty(),
        "the thread flushed again after failing"
    );
    assert_eq!(after.imm.len(), 2);
    drop(lsm);
    let inner = open_wal(&fs.crash_now(false));
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
}

/// `sync` makes every acknowledged write durable, those in frozen memtables included.
#[test]
fn test_task4_sync_covers_frozen_memtables() {
    let fs = MemFs::new();
    let inner = open_wal(&fs);
    let mut model = Model::new();
    for round in 0..3 {
        for i in 0..5 {
            put(&inner, &mut model, round * 5 + i, &format!("r{round}"));
        }
        freeze(&inner).unwrap();
    }
    inner.delete(&key(3)).unwrap();
    model.remove(&key(3));
    put(&inner, &mut model, 20, "in the mutable memtable");
    assert_eq!(shape(&inner).imm.len(), 3);
    inner.sync().unwrap();
    let inner = open_wal(&fs.crash_now(true));
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
}

/// A crash in the middle of `sync` keeps older writes rather than newer ones: a prefix.
#[test]
fn test_task4_crash_during_sync_keeps_a_prefix() {
    let setup = |fs: &MemFs| {
        let inner = open_wal(fs);
        let mut models = vec![Model::new()];
        for i in 0..10 {
            let mut model = models.last().unwrap().clone();
            put(&inner, &mut model, i, "v");
            models.push(model);
            if i % 3 == 2 {
                freeze(&inner).unwrap();
            }
        }
        (inner, models)
    };
    let fs = MemFs::new();
    let (inner, _) = setup(&fs);
    let start = fs.ops();
    inner.sync().unwrap();
    let end = fs.ops();
    // The frozen memtables' logs were synced when they were sealed at their freeze; the mutable
    // one's is written and synced now.
    assert!(
        end >= start + 2,
        "the mutable memtable's log to write and sync"
    );
    for op in start..end {
        for tear_last_write in [false, true] {
            let fs = MemFs::new();
            let (inner, models) = setup(&fs);
            fs.set_fault(Some(Fault::CrashAt {
                op,
                tear_last_write,
            }));
            assert!(inner.sync().is_err(), "the crash fails the sync");
            let inner = open_wal(&fs.crash_image().unwrap());
            let state = read_state(&inner, &probe_keys()).unwrap();
            assert!(
                models.contains(&state),
                "crash at operation {op} of the sync ({start}..{end}, tear: {tear_last_write}): \
                 {} is no prefix of the writes",
                show_model(&state)
            );
        }
    }
}

/// `close` syncs every log: a crash after it, and after more synced writes, loses nothing.
#[test]
fn test_task4_close_then_reopen_keeps_everything() {
    let fs = MemFs::new();
    let lsm = MiniLsm::open(db(), mem_options(&fs, true)).unwrap();
    let mut model = Model::new();
    for i in 0..30 {
        put(&lsm.inner, &mut model, i % 17, &format!("v{i}"));
        if i % 10 == 9 {
            freeze(&lsm.inner).unwrap();
        }
        if i == 15 {
            lsm.force_flush().unwrap();
        }
    }
    lsm.delete(&key(2)).unwrap();
    model.remove(&key(2));
    let before = shape(&lsm.inner);
    lsm.close().unwrap();
    drop(lsm);
    let image = fs.crash_now(false);
    let lsm = MiniLsm::open(db(), mem_options(&image, true)).unwrap();
    assert_state_eq(&read_state(&lsm.inner, &probe_keys()).unwrap(), &model, "");
    // The memtables come back from their logs with their ids, newest first, and the new one's
    // id is above them all.
    let after = shape(&lsm.inner);
    let mut expected_imm = vec![before.memtable];
    expected_imm.extend(&before.imm);
    assert_eq!(
        after.imm, expected_imm,
        "the memtables recovered from the logs"
    );
    assert_eq!(after.l0, before.l0);
    assert!(before.ids().iter().all(|&id| after.memtable > id));
    // The reopened engine logs its writes too.
    for i in 30..35 {
        put(&lsm.inner, &mut model, i, "after the reopen");
    }
    lsm.delete(&key(5)).unwrap();
    model.remove(&key(5));
    lsm.sync().unwrap();
    let again = image.crash_now(true);
    drop(lsm);
    let inner = open_wal(&again);
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
    assert!(
        file_names(&again, &db())
            .iter()
            .any(|f| f.ends_with(".wal")),
        "the engine keeps logs"
    );
}

/// A freeze orders the logs: the new log reaches the disk only after the frozen one is durable,
/// so a crash that tears the new log still keeps a prefix of the writes.
#[test]
fn test_task3_new_log_waits_for_the_frozen_one() {
    let fs = MemFs::new();
    let inner = open_mem(&fs, true).unwrap();
    inner.put(b"a", b"older").unwrap();
    freeze(&inner).unwrap();
    for i in 0..3 {
        inner.put(&key(i), b"newer").unwrap();
    }
    // Fills the new log's buffer, so its bytes are written to the file (not synced).
    inner.put(b"big", &vec![b'x'; 65_500]).unwrap();
    let image = fs.crash_now(true);
    let recovered = open_mem(&image, true).unwrap();
    let newer_survived = (0..3).any(|i| recovered.get(&key(i)).unwrap().is_some());
    if newer_survived {
        assert_eq!(
            recovered.get(b"a").unwrap(),
            Some(bytes_of(b"older")),
            "newer writes survived the crash without the older one: not a prefix"
        );
    }
}

/// Regression (found by `cargo x verify`): `open` syncs each log it replays before its new
/// manifest vouches for the log's bytes, so that a power cut after a process crash and a reopen
/// keeps what the reopen recovered, rather than leaving a manifest that vouches for bytes the
/// log lost (which `open` would refuse).
#[test]
fn test_task3_a_power_cut_after_a_process_crash_keeps_what_was_replayed() {
    let fs = MemFs::new();
    let mut options = mem_options(&fs, true);
    options.wal_mode = crate::wal::WalMode::WriteEachBatch;
    let inner = LsmStorageInner::open(db(), options.clone()).unwrap();
    let mut model = Model::new();
    put(&inner, &mut model, 1, "in the OS, not on the disk");
    // A process crash: dropped unclosed; the log's bytes are in the file but not synced.
    drop(inner);
    let inner = LsmStorageInner::open(db(), options).unwrap();
    let keys = probe_keys();
    assert_state_eq(
        &read_state(&inner, &keys).unwrap(),
        &model,
        "after the process crash",
    );
    drop(inner);
    let inner = open_wal(&fs.crash_now(false));
    let after = read_state(&inner, &keys).unwrap();
    assert_state_eq(&after, &model, "after a power cut after the reopen");
}
