// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 5: the manifest. Its records round-trip; `open` rebuilds the exact state from it
//! after a close or a crash; files it proves obsolete are removed and reported, and files it
//! cannot explain (or a missing, empty or cut manifest beside data) are an error that changes
//! nothing; a torn tail is dropped and reported (an error in strict mode), a corrupt middle record
//! is an error; ids never restart; and a crash at any file operation of a workload of flushes or
//! compactions leaves a state that `open` recovers.
//!
//! Every test here runs without the write-ahead log (day 6) and without record checksums (day 7).
//! The helpers of the persistence chapters are in the harness (`harness_persist.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use super::harness::bytes_of;
use super::harness::persist::{
    assert_state_eq, crash_sweep, crash_sweep_with, db, dir_image, file_names, freeze, key,
    mem_options, open_fails_unchanged, open_mem, read_state, run_steps, shape, show_model, Model,
    Step,
};
use crate::compact::{
    CompactionOptions, LeveledCompactionOptions, SimpleLeveledCompactionOptions, StrategyKind,
    TieredCompactionOptions, TreeLayout,
};
use crate::fs::{Fault, FileSystem, MemFs, RealFs};
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm, RecoveryMode};
use crate::manifest::{Manifest, ManifestRecord, MANIFEST_NAME};
use crate::table::sst_path;
use crate::wal::wal_path;

/// Builds a few L0 SSTs on `fs` (without the log), with overwrites and a deletion across them
/// and an empty memtable frozen and flushed in between. Returns the engine and the model.
fn three_ssts(fs: &MemFs) -> (LsmStorageInner, Model) {
    let inner = open_mem(fs, false).unwrap();
    let mut model = Model::new();
    let rounds: [&[(usize, &str)]; 4] = [
        &[(1, "a"), (2, "a"), (3, "a")],
        &[(2, "b"), (4, "b")],
        &[],
        &[(3, ""), (4, "d"), (5, "d")],
    ];
    for writes in rounds {
        for &(i, value) in writes {
            if value.is_empty() {
                inner.delete(&key(i)).unwrap();
                model.remove(&key(i));
            } else {
                inner.put(&key(i), value.as_bytes()).unwrap();
                model.insert(key(i), value.as_bytes().to_vec());
            }
        }
        freeze(&inner).unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
    }
    assert_eq!(inner.snapshot().l0_sstables.len(), 3, "{}", inner.dump());
    (inner, model)
}

/// The offset of every record's tag byte in a manifest, whichever framing this chapter's code
/// writes: `len payload` before week 2 day 7, `len len_crc payload crc` from then on.
fn record_tags(log: &[u8]) -> Vec<usize> {
    let parse = |header: usize, trailer: usize| -> Option<Vec<usize>> {
        let mut tags = Vec::new();
        let mut pos = 0;
        while pos < log.len() {
            let len = u32::from_be_bytes(log.get(pos..pos + 4)?.try_into().ok()?) as usize;
            if !matches!(log.get(pos + header)?, 1..=8 | 10..=12) {
                return None;
            }
            tags.push(pos + header);
            pos += header + len + trailer;
        }
        (pos == log.len()).then_some(tags)
    };
    match (parse(4, 0), parse(8, 4)) {
        (Some(tags), None) | (None, Some(tags)) => tags,
        other => panic!("cannot tell the manifest's framing: {other:?}"),
    }
}

/// The ids `0..20`, as keys to probe with `get`.
fn probe_keys() -> Vec<Vec<u8>> {
    (0..20).map(key).collect()
}

/// Every record kind decodes to itself; a cut, padded or unknown payload is an error.
#[test]
fn test_task1_record_codec_round_trip() {
    let records = [
        ManifestRecord::NewMemtable(0),
        ManifestRecord::NewMemtable(u32::MAX as usize + 7),
        ManifestRecord::Flush(12),
        ManifestRecord::Levels {
            l0: vec![],
            levels: vec![],
        },
        ManifestRecord::Levels {
            l0: vec![9, 3, 1],
            levels: vec![(1, vec![2, 4, 8]), (2, vec![]), (3, vec![5])],
        },
        ManifestRecord::Layout(TreeLayout {
            strategy: StrategyKind::NoCompaction,
            max_levels: 0,
        }),
        ManifestRecord::Layout(TreeLayout {
            strategy: StrategyKind::Leveled,
            max_levels: 4,
        }),
        ManifestRecord::LogSealed { id: 7, len: 0 },
        ManifestRecord::LogSealed {
            id: 8,
            len: u64::MAX,
        },
        ManifestRecord::LogSynced { id: 9, len: 4096 },
        ManifestRecord::Reserved(u32::MAX as usize + 1),
        ManifestRecord::Floor(13),
    ];
    for record in &records {
        let mut payload = Vec::new();
        record.encode(&mut payload);
        assert_eq!(
            &ManifestRecord::decode(&payload).unwrap(),
            record,
            "decode(encode(r)) != r"
        );
        for cut in 0..payload.len() {
            assert!(
                ManifestRecord::decode(&payload[..cut]).is_err(),
                "{record:?} cut to {cut} of {} bytes decoded",
                payload.len()
            );
        }
        let mut padded = payload.clone();
        padded.push(0);
        assert!(
            ManifestRecord::decode(&padded).is_err(),
            "{record:?} with a stray byte after it decoded"
        );
    }
    let mut payload = Vec::new();
    ManifestRecord::Flush(1).encode(&mut payload);
    for tag in [0, 0x7f, 0xff] {
        payload[0] = tag;
        assert!(
            ManifestRecord::decode(&payload).is_err(),
            "a record with the unknown tag {tag} decoded"
        );
    }
}

/// `create` and `add_record` write records that read back in order, each durable on return.
#[test]
fn test_task1_manifest_file_round_trip() {
    let dir = db();
    let initial = vec![
        ManifestRecord::Levels {
            l0: vec![3, 1],
            levels: vec![],
        },
        ManifestRecord::NewMemtable(4),
    ];
    let added = [
        ManifestRecord::NewMemtable(5),
        ManifestRecord::Flush(4),
        ManifestRecord::Levels {
            l0: vec![],
            levels: vec![(1, vec![1, 3, 4])],
        },
    ];
    {
        let fs = MemFs::new();
        fs.create_dir_all(&dir).unwrap();
        assert!(
            Manifest::recover(&fs, &dir).unwrap().is_none(),
            "an empty directory has no manifest"
        );
    }
    for durable in 0..=added.len() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir).unwrap();
        let manifest = Manifest::create(&fs, &dir, &initial).unwrap();
        let state_lock = Mutex::new(());
        for record in &added[..durable] {
            manifest.add_record(&state_lock.lock(), record).unwrap();
        }
        // A crash right after the last call returned: every record must be there.
        let image = fs.crash_now(false);
        let recovered = Manifest::recover(&image, &dir)
            .unwrap()
            .expect("the manifest survives the crash");
        let expected: Vec<ManifestRecord> =
            initial.iter().chain(&added[..durable]).cloned().collect();
        assert_eq!(recovered.records, expected, "after {durable} added records");
        assert_eq!(recovered.torn_tail_at, None);
    }
}

/// `create` replaces a manifest atomically: a crash at any point leaves the old or the new one.
#[test]
fn test_task1_manifest_replace_is_atomic() {
    let dir = db();
    let old = vec![ManifestRecord::NewMemtable(1), ManifestRecord::Flush(1)];
    let new = vec![
        ManifestRecord::Levels {
            l0: vec![1],
            levels: vec![],
        },
        ManifestRecord::NewMemtable(2),
    ];
    let setup = |fs: &MemFs| {
        fs.create_dir_all(&dir).unwrap();
        drop(Manifest::create(fs, &dir, &old).unwrap());
    };
    let fs = MemFs::new();
    setup(&fs);
    let start = fs.ops();
    drop(Manifest::create(&fs, &dir, &new).unwrap());
    let end = fs.ops();
    assert_eq!(
        Manifest::recover(&fs, &dir).unwrap().unwrap().records,
        new,
        "the new manifest replaces the old"
    );
    assert_eq!(
        file_names(&fs, &dir),
        vec![MANIFEST_NAME.to_string()],
        "only the manifest is left"
    );
    for op in start..end {
        for tear_last_write in [false, true] {
            let fs = MemFs::new();
            setup(&fs);
            fs.set_fault(Some(Fault::CrashAt {
                op,
                tear_last_write,
            }));
            assert!(
                Manifest::create(&fs, &dir, &new).is_err(),
                "the crash fails the call"
            );
            let image = fs.crash_image().unwrap();
            let found = Manifest::recover(&image, &dir)
                .unwrap_or_else(|e| panic!("crash at {op}: {e:#}"))
                .expect("a manifest is always there");
            assert!(
                found.records == old || found.records == new,
                "crash at operation {op} (tear {tear_last_write}): neither the old nor the new \
                 manifest: {:?}",
                found.records
            );
            assert_eq!(found.torn_tail_at, None, "crash at operation {op}");
            // The crash may leave `MANIFEST.tmp`: the next `create` replaces it, as files are
            // created exclusively.
            let records = &[ManifestRecord::NewMemtable(9)];
            drop(
                Manifest::create(&image, &dir, records)
                    .unwrap_or_else(|e| panic!("create after a crash at operation {op}: {e:#}")),
            );
            assert_eq!(
                Manifest::recover(&image, &dir).unwrap().unwrap().records,
                records
            );
        }
    }
}

/// Reopening rebuilds the exact L0 (ids and order) and data; every new id is above the old ones.
#[test]
fn test_task2_reopen_rebuilds_exact_state() {
    let fs = MemFs::new();
    let (inner, model) = three_ssts(&fs);
    let before = shape(&inner);
    drop(inner);
    let inner = open_mem(&fs, false).unwrap();
    let after = shape(&inner);
    assert_eq!(after.l0, before.l0, "L0 ids and order after reopen");
    assert_eq!(after.ssts, before.ssts, "the open SSTs after reopen");
    assert!(after.imm.is_empty(), "no log, no memtable to recover");
    assert!(
        before.ids().iter().all(|&id| after.memtable > id),
        "the new memtable's id {} must be above every old id {:?}",
        after.memtable,
        before.ids()
    );
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
    assert!(
        inner.recovery_report().is_empty(),
        "a clean reopen has nothing to report: {:?}",
        inner.recovery_report()
    );
}

/// After a crash, `open` rebuilds the flushed SSTs exactly; unflushed writes are gone (no log).
#[test]
fn test_task2_crash_rebuilds_flushed_state() {
    let fs = MemFs::new();
    let (inner, model) = three_ssts(&fs);
    let before = shape(&inner);
    inner.put(&key(1), b"unflushed").unwrap();
    freeze(&inner).unwrap();
    inner.put(&key(9), b"unflushed").unwrap();
    let ids = shape(&inner).ids();
    let image = fs.crash_now(true);
    let inner = open_mem(&image, false).unwrap();
    let after = shape(&inner);
    assert_eq!(after.l0, before.l0, "L0 after the crash");
    assert_eq!(after.ssts, before.ssts, "SSTs after the crash");
    assert!(
        ids.iter().all(|&id| after.memtable > id),
        "the new memtable's id {} reuses one of {ids:?}",
        after.memtable
    );
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
}

/// Files the manifest proves obsolete are removed and reported: an SST below the floor of the
/// last open, the SST of a flush that did not commit, an empty log; other files are kept.
#[test]
fn test_task2_obsolete_files_removed_and_reported() {
    let fs = MemFs::new();
    let (inner, model) = three_ssts(&fs);
    let before = shape(&inner);
    drop(inner);
    // A reopen writes a new manifest whose floor is above every id so far; then a freeze.
    let inner = open_mem(&fs, false).unwrap();
    let live = shape(&inner).memtable;
    freeze(&inner).unwrap();
    drop(inner);
    let dir = db();
    let copy = fs.read_all(&sst_path(&dir, before.l0[0])).unwrap();
    // Memtable 2 was frozen empty and flushed to nothing: id 2 is below the floor, unlisted.
    let below_floor = sst_path(&dir, 2);
    assert!(!before.ssts.contains(&2), "{before:?}");
    fs.overwrite(&below_floor, copy.clone());
    // The memtable of the reopen is live: its SST is a flush that crashed before its record.
    let uncommitted = sst_path(&dir, live);
    fs.overwrite(&uncommitted, copy);
    // An empty log, as a freeze that crashed before its record leaves it.
    let empty_log = wal_path(&dir, 90);
    fs.overwrite(&empty_log, Vec::new());
    let foreign = [
        "NOTES.txt",
        "backup.sst.old",
        "x.sst",
        "wal",
        "00007.sstable",
    ];
    for name in foreign {
        fs.overwrite(&dir.join(name), b"not the engine's".to_vec());
    }
    let inner = open_mem(&fs, false).unwrap();
    for stray in [&below_floor, &uncommitted, &empty_log] {
        assert!(!fs.exists(stray), "{} was not removed", stray.display());
        let name = stray.file_name().unwrap().to_str().unwrap();
        assert!(
            inner
                .recovery_report()
                .iter()
                .any(|line| line.contains(name)),
            "the removal of {name} is not reported: {:?}",
            inner.recovery_report()
        );
    }
    for name in foreign {
        assert!(
            fs.exists(&dir.join(name)),
            "the foreign file {name} was removed"
        );
        let path = dir.join(name).display().to_string();
        assert!(
            !inner
                .recovery_report()
                .iter()
                .any(|line| line.contains(&path)),
            "{name} is reported: {:?}",
            inner.recovery_report()
        );
    }
    for id in &before.ssts {
        assert!(fs.exists(&sst_path(&dir, *id)), "listed SST {id} removed");
    }
    assert_eq!(shape(&inner).l0, before.l0);
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
}

/// An engine file whose id no record names (written after the manifest's end, so the manifest
/// lost records) makes `open` fail, naming the manifest and the file, and change nothing.
#[test]
fn test_task2_unexplained_files_are_an_error() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    let before = shape(&inner);
    drop(inner);
    let dir = db();
    let copy = fs.read_all(&sst_path(&dir, before.l0[0])).unwrap();
    let unknown_sst = sst_path(&dir, 90);
    let unknown_wal = wal_path(&dir, 91);
    for (path, bytes) in [
        (&unknown_sst, copy),
        (&unknown_wal, b"a log the manifest never mentioned".to_vec()),
    ] {
        let image = fs.crash_now(false);
        image.overwrite(path, bytes);
        let name = path.file_name().unwrap().to_str().unwrap();
        let error = open_fails_unchanged(&image, false, name);
        assert!(
            error.contains(MANIFEST_NAME) && error.contains(name),
            "the error must name the manifest and {name}: {error}"
        );
    }
}

/// A missing, empty or cut manifest beside data files makes `open` fail, naming the manifest
/// and the data files it found, and delete nothing (it once started empty and deleted them all).
#[test]
fn test_task2_lost_manifest_is_an_error() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    drop(inner);
    let manifest = db().join(MANIFEST_NAME);
    let whole = fs.read_all(&manifest).unwrap();
    // Record 0 starts at 0 and its tag follows the header; record 1 starts a header before its tag.
    let tags = record_tags(&whole);
    let first_record_end = tags[1] - tags[0];
    let mut cases: Vec<(String, Option<Vec<u8>>)> = vec![("removed".to_string(), None)];
    // Cut anywhere inside the first record: no whole record is left.
    for cut in 0..first_record_end {
        cases.push((format!("cut to {cut} bytes"), Some(whole[..cut].to_vec())));
    }
    for (case, bytes) in cases {
        let image = fs.crash_now(false);
        match bytes {
            Some(bytes) => image.overwrite(&manifest, bytes),
            None => image.remove(&manifest).unwrap(),
        }
        let error = open_fails_unchanged(&image, false, &case);
        assert!(
            error.contains(MANIFEST_NAME) && error.contains("3 data files"),
            "{case}: the error must name the manifest and count the 3 SSTs: {error}"
        );
    }
}

/// A directory whose very first `open` crashed (an empty log, a `MANIFEST.tmp`, no manifest)
/// holds no data: `open` starts afresh and clears the leftovers.
#[test]
fn test_task2_crashed_first_open_starts_afresh() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    fs.overwrite(&wal_path(&db(), 0), Vec::new());
    fs.overwrite(&db().join("MANIFEST.tmp"), b"half a manifest".to_vec());
    let inner = open_mem(&fs, false).unwrap();
    assert!(read_state(&inner, &probe_keys()).unwrap().is_empty());
    assert_eq!(file_names(&fs, &db()), vec![MANIFEST_NAME.to_string()]);
}

/// An SST the manifest lists and the directory lacks makes `open` fail, naming it.
#[test]
fn test_task2_missing_listed_sst_is_an_error() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    let before = shape(&inner);
    drop(inner);
    for id in &before.l0 {
        let image = fs.crash_now(false);
        let path = sst_path(&db(), *id);
        image.remove(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let error = open_fails_unchanged(&image, false, name);
        assert!(error.contains(name), "the error must name {name}: {error}");
    }
}

/// A manifest whose last record is cut short loses that record only, and `open` reports it.
#[test]
fn test_task2_torn_manifest_tail_dropped_and_reported() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    let manifest = db().join(MANIFEST_NAME);
    let mut model = read_state(&inner, &probe_keys()).unwrap();
    let before = shape(&inner);
    let start = fs.read_all(&manifest).unwrap().len();
    inner.put(&key(7), b"last").unwrap();
    freeze(&inner).unwrap();
    let middle = fs.read_all(&manifest).unwrap().len();
    inner.force_flush_next_imm_memtable().unwrap();
    let flushed = shape(&inner).l0[0];
    drop(inner);
    let whole = fs.read_all(&manifest).unwrap();
    assert!(
        start < middle && middle < whole.len(),
        "a freeze and a flush add records"
    );
    // Cut inside the last record (the flush): the flush is lost, and so is its SST.
    for cut in middle + 1..whole.len() {
        let image = fs.crash_now(false);
        image.overwrite(&manifest, whole[..cut].to_vec());
        let inner = open_mem(&image, false).unwrap_or_else(|e| panic!("cut at {cut}: {e:#}"));
        let report = inner.recovery_report().join("\n");
        assert!(
            report.contains(MANIFEST_NAME),
            "cut at {cut} of {}: the dropped record is not reported: {report}",
            whole.len()
        );
        assert_eq!(shape(&inner).l0, before.l0, "cut at {cut}");
        assert!(
            !image.exists(&sst_path(&db(), flushed)),
            "the unlisted SST is left"
        );
        assert_state_eq(
            &read_state(&inner, &probe_keys()).unwrap(),
            &model,
            format_args!("cut at {cut}"),
        );
    }
    // Cut at the end of a record: a shorter, valid manifest, with nothing to report about it.
    let image = fs.crash_now(false);
    image.overwrite(&manifest, whole[..middle].to_vec());
    let inner = open_mem(&image, false).unwrap();
    assert!(
        !inner
            .recovery_report()
            .iter()
            .any(|line| line.contains(MANIFEST_NAME)),
        "a manifest cut at a record boundary is not torn: {:?}",
        inner.recovery_report()
    );
    assert_eq!(shape(&inner).l0, before.l0);
    // The whole manifest: the flush is there.
    let inner = open_mem(&fs.crash_now(false), false).unwrap();
    model.insert(key(7), b"last".to_vec());
    assert_eq!(shape(&inner).l0[0], flushed);
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
}

/// In `RecoveryMode::Strict` a torn last record of the manifest is an error naming it, and
/// `open` changes nothing.
#[test]
fn test_task2_strict_mode_refuses_a_torn_manifest() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    drop(inner);
    let manifest = db().join(MANIFEST_NAME);
    let whole = fs.read_all(&manifest).unwrap();
    let last = *record_tags(&whole).last().unwrap();
    for cut in [last, whole.len() - 1] {
        let image = fs.crash_now(false);
        image.overwrite(&manifest, whole[..cut].to_vec());
        let mut options = mem_options(&image, false);
        options.recovery_mode = RecoveryMode::Strict;
        let before = file_names(&image, &db());
        let error = match LsmStorageInner::open(db(), options) {
            Ok(_) => panic!("cut at {cut}: a torn manifest opened in strict mode"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(MANIFEST_NAME), "{error}");
        assert_eq!(file_names(&image, &db()), before, "cut at {cut}");
        // The default mode drops it and says so.
        let inner = open_mem(&image, false).unwrap();
        assert!(inner
            .recovery_report()
            .iter()
            .any(|l| l.contains(MANIFEST_NAME)));
    }
}

/// A manifest cut at any record boundary (a shorter manifest that decodes cleanly) never reads
/// as a silently different history: `open` fails naming a file and changes nothing, or returns
/// every key, or drops exactly one flush that a crash could have interrupted, and reports the
/// removal of its SST.
#[test]
fn test_task2_manifest_cut_at_any_record_is_never_silent() {
    let fs = MemFs::new();
    let inner = open_mem(&fs, false).unwrap();
    let mut models = vec![Model::new()];
    for round in 0..6 {
        let mut model = models.last().unwrap().clone();
        for i in [round, round + 3, 9] {
            let value = format!("r{round}");
            inner.put(&key(i), value.as_bytes()).unwrap();
            model.insert(key(i), value.into_bytes());
        }
        freeze(&inner).unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
        models.push(model);
        if round % 3 == 1 {
            inner.force_full_compaction().unwrap();
        }
    }
    let expected = models.last().unwrap().clone();
    drop(inner);
    let manifest = db().join(MANIFEST_NAME);
    let whole = fs.read_all(&manifest).unwrap();
    let tags = record_tags(&whole);
    let header = tags[0];
    let mut outcomes = [0; 3];
    for (i, &tag) in tags.iter().enumerate().skip(1) {
        let cut = tag - header;
        let image = fs.crash_now(false);
        image.overwrite(&manifest, whole[..cut].to_vec());
        let before = dir_image(&image, &db());
        let case = format!("cut after record {i} of {} (byte {cut})", tags.len());
        match open_mem(&image, false) {
            Err(_) => {
                assert!(
                    before == dir_image(&image, &db()),
                    "{case}: a failed open changed files"
                );
                outcomes[0] += 1;
            }
            Ok(inner) => {
                let state = read_state(&inner, &probe_keys()).unwrap();
                if state == expected {
                    outcomes[1] += 1;
                    continue;
                }
                let report = inner.recovery_report().join("\n");
                assert!(
                    state == models[models.len() - 2] && report.contains("did not commit"),
                    "{case}: recovered {} keys silently: {}\nreport: {report}",
                    state.len(),
                    show_model(&state)
                );
                outcomes[2] += 1;
            }
        }
    }
    println!(
        "manifest cut at {} record boundaries: {} errors, {} intact, {} last flush dropped and \
         reported",
        tags.len() - 1,
        outcomes[0],
        outcomes[1],
        outcomes[2]
    );
    assert!(outcomes[0] > 0, "some cuts lose records that files prove");
}

/// A damaged record before the last one is an error naming the manifest, not a silent repair.
#[test]
fn test_task2_corrupt_middle_record_is_an_error() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    drop(inner);
    let manifest = db().join(MANIFEST_NAME);
    let whole = fs.read_all(&manifest).unwrap();
    let tags = record_tags(&whole);
    assert!(tags.len() >= 4, "records: {tags:?}");
    // The tag byte of the first record, and of one in the middle: an unknown tag.
    for record in [0, tags.len() / 2] {
        let mut damaged = whole.clone();
        damaged[tags[record]] = 0x7f;
        let image = fs.crash_now(false);
        image.overwrite(&manifest, damaged);
        let error = match open_mem(&image, false) {
            Ok(_) => panic!(
                "record {record} of {} is damaged, yet open succeeded",
                tags.len()
            ),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            error.contains(MANIFEST_NAME),
            "the error must name the manifest: {error}"
        );
    }
}

/// A write after a reopen shadows older ones: ids keep growing across reopens (real files).
#[test]
fn test_task2_new_writes_shadow_old_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.fs = Arc::new(RealFs);
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    for round in 1..=4 {
        let inner = LsmStorageInner::open(dir.path(), options.clone()).unwrap();
        let now = shape(&inner);
        if let Some(&max) = seen.last() {
            assert!(
                now.ids()
                    .iter()
                    .filter(|id| !seen.contains(id))
                    .all(|&id| id > max),
                "round {round}: new ids {:?} are not above every old id {seen:?}",
                now.ids()
            );
        }
        if round > 1 {
            let expected = format!("v{}", round - 1);
            assert_eq!(
                inner.get(b"k").unwrap(),
                Some(bytes_of(&expected)),
                "round {round}: the newest write must win\n{}",
                inner.dump()
            );
        }
        inner.put(b"k", format!("v{round}").as_bytes()).unwrap();
        inner.put(format!("only{round}").as_bytes(), b"x").unwrap();
        freeze(&inner).unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
        seen.extend(shape(&inner).ids());
    }
    let inner = LsmStorageInner::open(dir.path(), options).unwrap();
    assert_eq!(inner.get(b"k").unwrap(), Some(bytes_of(b"v4")));
    for round in 1..=4 {
        assert!(inner
            .get(format!("only{round}").as_bytes())
            .unwrap()
            .is_some());
    }
}

/// The strategies of the conversion tests, with small triggers so that a few flushes fill
/// several levels or tiers; simple compaction has one level more than leveled compaction, so
/// that a simple tree does not simply fit a leveled one.
fn conversion_strategies() -> [(&'static str, CompactionOptions); 4] {
    [
        ("none", CompactionOptions::NoCompaction),
        (
            "simple",
            CompactionOptions::Simple(SimpleLeveledCompactionOptions {
                size_ratio_percent: 200,
                level0_file_num_compaction_trigger: 2,
                max_levels: 3,
            }),
        ),
        (
            "tiered",
            CompactionOptions::Tiered(TieredCompactionOptions {
                num_tiers: 3,
                max_size_amplification_percent: 400,
                size_ratio: 1,
                min_merge_width: 2,
                max_merge_width: None,
            }),
        ),
        (
            "leveled",
            CompactionOptions::Leveled(LeveledCompactionOptions {
                level_size_multiplier: 2,
                level0_file_num_compaction_trigger: 2,
                max_levels: 2,
                base_level_size_mb: 1,
            }),
        ),
    ]
}

/// Opens the engine on `fs` (without the log) with the compaction strategy `compaction`.
fn open_with(fs: &MemFs, compaction: &CompactionOptions) -> anyhow::Result<LsmStorageInner> {
    let mut options = mem_options(fs, false);
    options.compaction_options = compaction.clone();
    LsmStorageInner::open(db(), options)
}

/// Runs compaction steps until one changes nothing (at most 30).
fn compact_until_idle(inner: &LsmStorageInner) {
    for _ in 0..30 {
        let before = inner.snapshot().shape();
        inner.trigger_compaction().unwrap();
        if inner.snapshot().shape() == before {
            return;
        }
    }
    panic!("still compacting after 30 steps:\n{}", inner.dump());
}

/// Seven rounds of puts and a delete, each flushed, with `compaction`'s steps after each but the
/// last (a full compaction after round 3 without a strategy). Returns the model, after checking
/// that the tree holds several sorted runs.
fn write_rounds(inner: &LsmStorageInner, compaction: &CompactionOptions, tag: &str) -> Model {
    let mut model = Model::new();
    for round in 0..7 {
        for i in round..round + 4 {
            let value = format!("{tag}{round}").into_bytes();
            inner.put(&key(i), &value).unwrap();
            model.insert(key(i), value);
        }
        inner.delete(&key(round * 2)).unwrap();
        model.remove(&key(round * 2));
        freeze(inner).unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
        match compaction {
            _ if round == 6 => {}
            CompactionOptions::NoCompaction if round == 3 => inner.force_full_compaction().unwrap(),
            CompactionOptions::NoCompaction => {}
            _ => compact_until_idle(inner),
        }
    }
    let snapshot = inner.snapshot();
    let levels = snapshot.levels.iter().filter(|(_, ids)| !ids.is_empty());
    let runs = snapshot.l0_sstables.len() + levels.count();
    assert!(runs >= 2, "{tag}: a single sorted run:\n{}", inner.dump());
    model
}

/// Reopening with another compaction strategy converts the tree, for every ordered pair of
/// strategies (none, simple, tiered, leveled): `open` reports the conversion exactly when the
/// strategies differ, every key keeps its newest value, writes after it shadow older ones, the
/// new strategy compacts the tree on, and reopening with the first strategy converts it back.
#[test]
fn test_task2_reopen_with_another_strategy_converts_the_tree() {
    for (a, from) in conversion_strategies() {
        for (b, to) in conversion_strategies() {
            let fs = MemFs::new();
            let inner = open_with(&fs, &from).unwrap();
            let mut model = write_rounds(&inner, &from, a);
            drop(inner);
            let inner = open_with(&fs, &to).unwrap();
            let converted = inner
                .recovery_report()
                .iter()
                .any(|line| line.contains("laid out by"));
            assert_eq!(
                converted,
                a != b,
                "{a} to {b}: {:?}",
                inner.recovery_report()
            );
            let state = read_state(&inner, &probe_keys()).unwrap();
            assert_eq!(state, model, "{a} to {b}, just reopened:\n{}", inner.dump());
            for i in [1, 5, 9] {
                let value = format!("{b}-new").into_bytes();
                inner.put(&key(i), &value).unwrap();
                model.insert(key(i), value);
                freeze(&inner).unwrap();
                inner.force_flush_next_imm_memtable().unwrap();
            }
            if !matches!(to, CompactionOptions::NoCompaction) {
                compact_until_idle(&inner);
            }
            let state = read_state(&inner, &probe_keys()).unwrap();
            assert_eq!(state, model, "{a} to {b}, compacted:\n{}", inner.dump());
            drop(inner);
            let inner = open_with(&fs, &from).unwrap();
            let state = read_state(&inner, &probe_keys()).unwrap();
            assert_eq!(state, model, "{a} to {b} and back:\n{}", inner.dump());
        }
    }
}

/// A manifest without a layout record (from before the course wrote one) is read with the
/// strategy it is opened with if its tree fits it; if not (L0 SSTs under tiered compaction),
/// `open` refuses with an error that names the manifest and says what to do.
#[test]
fn test_task2_manifest_without_layout_must_fit_the_strategy() {
    let (_, leveled) = conversion_strategies()[3].clone();
    let (_, tiered) = conversion_strategies()[2].clone();
    let fs = MemFs::new();
    let inner = open_with(&fs, &leveled).unwrap();
    inner.put(b"k", b"v").unwrap();
    freeze(&inner).unwrap();
    inner.force_flush_next_imm_memtable().unwrap();
    drop(inner);
    // Reopened, the manifest holds the tree in a Levels record: one SST in L0.
    drop(open_with(&fs, &leveled).unwrap());
    let dir = db();
    let records = Manifest::recover(&fs, &dir).unwrap().unwrap().records;
    assert!(
        records
            .iter()
            .any(|r| matches!(r, ManifestRecord::Layout(_))),
        "open writes the layout: {records:?}"
    );
    let old: Vec<ManifestRecord> = records
        .into_iter()
        .filter(|r| !matches!(r, ManifestRecord::Layout(_)))
        .collect();
    drop(Manifest::create(&fs, &dir, &old).unwrap());
    let error = match open_with(&fs, &tiered) {
        Ok(inner) => panic!("opened an L0 with tiered compaction:\n{}", inner.dump()),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(MANIFEST_NAME) && error.contains("strategy that wrote it"),
        "{error}"
    );
    let inner = open_with(&fs, &leveled).unwrap();
    assert_eq!(inner.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// A crash at any file operation of flushes, or of the recovery, keeps a prefix with every flush.
#[test]
fn test_task3_crash_at_every_operation_of_flushes() {
    let mut steps = Vec::new();
    let rounds: [(&[usize], &[usize]); 5] = [
        (&[1, 2, 3], &[]),
        (&[2, 4], &[1]),
        (&[], &[]),
        (&[5, 1, 6], &[4]),
        (&[3, 7], &[2, 5]),
    ];
    for (round, (puts, deletes)) in rounds.iter().enumerate() {
        for &i in *puts {
            steps.push(Step::put(&key(i), format!("r{round}").as_bytes()));
        }
        for &i in *deletes {
            steps.push(Step::delete(&key(i)));
        }
        steps.push(Step::Freeze);
        // Round 1 waits and is flushed together with round 3: two memtables queued.
        if round != 1 {
            steps.push(Step::Flush);
        }
        if round == 3 {
            steps.push(Step::Flush);
        }
    }
    steps.push(Step::put(&key(8), b"never flushed"));
    crash_sweep("manifest crash sweep (no log)", false, &steps);
}

/// A crash at any file operation of a compaction (of every strategy, and a forced full one), or
/// of the recovery, keeps a prefix with every flushed write: the manifest records each compaction
/// before it is visible, and no input SST is deleted before that record is durable.
#[test]
fn test_task3_crash_at_every_operation_of_compactions() {
    let strategies = [
        ("full compaction", CompactionOptions::NoCompaction),
        (
            "simple leveled",
            CompactionOptions::Simple(SimpleLeveledCompactionOptions {
                size_ratio_percent: 200,
                level0_file_num_compaction_trigger: 2,
                max_levels: 2,
            }),
        ),
        (
            "tiered",
            CompactionOptions::Tiered(TieredCompactionOptions {
                num_tiers: 2,
                max_size_amplification_percent: 200,
                size_ratio: 1,
                min_merge_width: 2,
                max_merge_width: None,
            }),
        ),
        (
            "leveled",
            CompactionOptions::Leveled(LeveledCompactionOptions {
                level_size_multiplier: 2,
                level0_file_num_compaction_trigger: 2,
                max_levels: 2,
                base_level_size_mb: 1,
            }),
        ),
    ];
    for (name, compaction) in strategies {
        let full = compaction == CompactionOptions::NoCompaction;
        let mut steps = Vec::new();
        for round in 0..4 {
            for i in [round, round + 2, 7] {
                steps.push(Step::put(&key(i), format!("r{round}").as_bytes()));
            }
            if round == 2 {
                steps.push(Step::delete(&key(3)));
            }
            steps.push(Step::Freeze);
            steps.push(Step::Flush);
            if round % 2 == 1 {
                steps.push(if full {
                    Step::FullCompaction
                } else {
                    Step::Compact
                });
            }
        }
        steps.push(Step::put(&key(9), b"never flushed"));
        let open = |fs: &MemFs| {
            let mut options = mem_options(fs, false);
            options.compaction_options = compaction.clone();
            LsmStorageInner::open(db(), options)
        };
        // The workload must really compact, or the sweep proves nothing about compaction.
        let fs = MemFs::new();
        let inner = open(&fs).unwrap();
        let clean = run_steps(&inner, &steps, false);
        assert!(clean.error.is_none(), "{name}: {:?}", clean.error);
        let compacted = inner
            .snapshot()
            .levels
            .iter()
            .any(|(_, ids)| !ids.is_empty());
        assert!(
            compacted,
            "{name}: nothing was compacted:\n{}",
            inner.dump()
        );
        let stats = crash_sweep_with(&format!("{name} crash sweep"), false, &open, &steps);
        assert!(stats.crash_points > 0);
    }
}

/// A crash at any file operation of an `open` that converts the tree to another strategy (every
/// ordered pair), torn or not, leaves the old tree or the converted one: reopening with either
/// strategy finds every write.
#[test]
fn test_task3_crash_at_every_operation_of_a_conversion() {
    let mut points = 0;
    for (a, from) in conversion_strategies() {
        let fs = MemFs::new();
        let inner = open_with(&fs, &from).unwrap();
        let model = write_rounds(&inner, &from, a);
        drop(inner);
        // From now on `crash_image` hands out fresh copies of the tree `from` wrote.
        drop(fs.crash_now(false));
        let tree = || fs.crash_image().expect("crashed");
        for (b, to) in conversion_strategies() {
            if a == b {
                continue;
            }
            let clean = tree();
            drop(open_with(&clean, &to).unwrap());
            let ops = clean.ops();
            for op in 0..ops {
                for tear_last_write in [false, true] {
                    let attempt = tree();
                    attempt.set_fault(Some(Fault::CrashAt {
                        op,
                        tear_last_write,
                    }));
                    assert!(
                        open_with(&attempt, &to).is_err(),
                        "{a} to {b}: crash at {op}"
                    );
                    // Either strategy may open the crash image next.
                    for (c, next) in [(b, &to), (a, &from)] {
                        let image = attempt.crash_image().expect("crashed");
                        let inner = open_with(&image, next).unwrap_or_else(|e| {
                            panic!("{a} to {b}, crash at {op} of {ops}, then {c}: {e:#}")
                        });
                        let state = read_state(&inner, &probe_keys()).unwrap();
                        assert_eq!(
                            state,
                            model,
                            "{a} to {b}, crash at {op} of {ops} (tear {tear_last_write}), then \
                             {c}:\n{}",
                            inner.dump()
                        );
                        points += 1;
                    }
                }
            }
        }
    }
    println!("{points} reopens after a crash during a conversion");
    assert!(points > 0);
}

/// Without a log, `close` flushes every memtable, so that a crash after it loses nothing.
#[test]
fn test_task4_close_flushes_memtables_without_wal() {
    let fs = MemFs::new();
    let lsm = MiniLsm::open(db(), mem_options(&fs, false)).unwrap();
    let mut model = Model::new();
    for i in 0..30 {
        let value = format!("v{i}").into_bytes();
        lsm.put(&key(i % 12), &value).unwrap();
        model.insert(key(i % 12), value);
        if i % 10 == 9 {
            freeze(&lsm.inner).unwrap();
        }
    }
    lsm.delete(&key(3)).unwrap();
    model.remove(&key(3));
    lsm.close().unwrap();
    drop(lsm);
    let image = fs.crash_now(false);
    let inner = open_mem(&image, false).unwrap();
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
    assert!(!inner.snapshot().l0_sstables.is_empty());
}
