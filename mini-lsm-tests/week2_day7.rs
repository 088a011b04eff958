// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 7: batch writes and checksums. A batch is one log record, applied in order and
//! recovered whole or not at all, even when a crash hits any operation inside it; every byte of
//! an SST, a log and the manifest is covered, so that a flipped or cut byte gives a clean error
//! naming the file, or a reported drop of a torn tail, and never a panic or a wrong answer; and
//! the SSTs the flush thread writes carry their checksums and read back.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::harness::bytes_of;
use super::harness::persist::{
    assert_state_eq, crash_sweep, db, file_names, freeze, full_sweep, key, mem_options, open_mem,
    panic_message, read_state, shape, show_model, Model, Step,
};
use crate::fs::{Fault, FileSystem, MemFs, RealFs};
use crate::iterators::StorageIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm, WriteBatchRecord};
use crate::manifest::MANIFEST_NAME;
use crate::mem_table::MemTable;
use crate::table::{sst_path, strip_checksum, FileObject, SsTable, SsTableIterator};
use crate::wal::wal_path;

/// The keys `key000..key039`, to probe with `get`.
fn probe_keys() -> Vec<Vec<u8>> {
    (0..40).map(key).collect()
}

/// A batch record: `Del` for an empty value.
fn record(key: &[u8], value: &[u8]) -> WriteBatchRecord<Vec<u8>> {
    if value.is_empty() {
        WriteBatchRecord::Del(key.to_vec())
    } else {
        WriteBatchRecord::Put(key.to_vec(), value.to_vec())
    }
}

/// A batch is one log record: a log cut anywhere inside it recovers none of it.
#[test]
fn test_task1_batch_is_one_log_record() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let path = wal_path(&db(), 5);
    let memtable = MemTable::create_with_wal(5, &fs, &path).unwrap();
    fs.sync_dir(&db()).unwrap();
    memtable.put(b"before", b"x").unwrap();
    memtable.sync_wal().unwrap();
    let start = fs.read_all(&path).unwrap().len();
    let batch: [(&[u8], &[u8]); 4] = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"before", b"")];
    memtable.put_batch(&batch).unwrap();
    let applied = |m: &MemTable| {
        [&b"a"[..], b"b", b"before"]
            .map(|k| m.get(k).map(|v| String::from_utf8_lossy(&v).to_string()))
    };
    let all = [
        Some("3".to_string()),
        Some("2".to_string()),
        Some(String::new()),
    ];
    assert_eq!(applied(&memtable), all, "later entries of a batch win");
    memtable.sync_wal().unwrap();
    let whole = fs.read_all(&path).unwrap();
    let image = fs.crash_now(false);
    for cut in start..=whole.len() {
        image.overwrite(&path, whole[..cut].to_vec());
        let (recovered, replay) = MemTable::recover_from_wal(5, &image, &path).unwrap();
        if cut == whole.len() {
            assert_eq!(applied(&recovered), all);
            assert_eq!(
                replay.batches, 2,
                "one record for the put, one for the batch"
            );
        } else {
            assert_eq!(
                applied(&recovered),
                [None, None, Some("x".to_string())],
                "cut at {cut} of {}: part of the batch was recovered",
                whole.len()
            );
            assert_eq!(
                replay.torn_tail_at,
                (cut > start).then_some(start),
                "cut at {cut}"
            );
        }
    }
}

/// `write_batch` applies its records in order; an invalid record fails the batch, writing none.
#[test]
fn test_task2_write_batch_applies_in_order() {
    let fs = MemFs::new();
    let inner = open_mem(&fs, true).unwrap();
    let mut model = Model::new();
    inner.put(&key(1), b"old").unwrap();
    inner.put(&key(9), b"in an SST").unwrap();
    freeze(&inner).unwrap();
    inner.force_flush_next_imm_memtable().unwrap();
    model.insert(key(9), b"in an SST".to_vec());
    let batch = [
        record(&key(2), b"b"),
        record(&key(1), b""),
        record(&key(3), b"c"),
        record(&key(2), b"bb"),
        record(&key(9), b""),
        record(&key(9), b"again"),
        record(&key(4), b"d"),
        record(&key(4), b""),
    ];
    inner.write_batch(&batch).unwrap();
    model.insert(key(2), b"bb".to_vec());
    model.insert(key(3), b"c".to_vec());
    model.insert(key(9), b"again".to_vec());
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
    inner
        .write_batch::<Vec<u8>>(&[])
        .expect("an empty batch is fine");
    let invalid: [Vec<WriteBatchRecord<Vec<u8>>>; 2] = [
        vec![
            record(&key(5), b"e"),
            WriteBatchRecord::Put(key(6), Vec::new()),
        ],
        vec![record(&key(5), b"e"), record(&vec![b'k'; 70_000], b"v")],
    ];
    for batch in &invalid {
        assert!(inner.write_batch(batch).is_err(), "an invalid batch");
        assert_state_eq(
            &read_state(&inner, &probe_keys()).unwrap(),
            &model,
            format_args!("an invalid batch wrote something"),
        );
    }
    inner.sync().unwrap();
    drop(inner);
    let inner = open_mem(&fs.crash_now(false), true).unwrap();
    assert_state_eq(&read_state(&inner, &probe_keys()).unwrap(), &model, "");
}

/// A crash at any operation inside a large batch recovers all of it or none; all once synced.
#[test]
fn test_task2_write_batch_is_atomic_under_crash() {
    let batch: Vec<WriteBatchRecord<Vec<u8>>> = (0..150)
        .map(|i| {
            record(
                format!("batch{i:03}").as_bytes(),
                &[b'0' + (i % 10) as u8; 500],
            )
        })
        .chain([record(&key(1), b"")])
        .collect();
    let setup = |fs: &MemFs| {
        let mut options = mem_options(fs, true);
        options.target_sst_size = 50_000;
        let inner = LsmStorageInner::open(db(), options).unwrap();
        let mut before = Model::new();
        for i in 0..5 {
            inner.put(&key(i), b"before").unwrap();
            before.insert(key(i), b"before".to_vec());
        }
        inner.sync().unwrap();
        (inner, before)
    };
    let mut after = setup(&MemFs::new()).1;
    for entry in &batch {
        match entry {
            WriteBatchRecord::Put(k, v) => after.insert(k.clone(), v.clone()),
            WriteBatchRecord::Del(k) => after.remove(k),
        };
    }
    let fs = MemFs::new();
    let (inner, _) = setup(&fs);
    let start = fs.ops();
    inner.write_batch(&batch).unwrap();
    let in_batch = fs.ops() - start;
    assert!(
        !shape(&inner).imm.is_empty() && in_batch >= 3,
        "the batch must write the log out and freeze the memtable ({in_batch} operations)"
    );
    inner.sync().unwrap();
    let end = fs.ops();
    let probe: Vec<Vec<u8>> = after.keys().cloned().chain(probe_keys()).collect();
    let mut outcomes = [0; 2];
    for op in start..=end {
        for tear_last_write in [false, true] {
            let fs = MemFs::new();
            let (inner, before) = setup(&fs);
            fs.set_fault(Some(Fault::CrashAt {
                op,
                tear_last_write,
            }));
            let synced = inner.write_batch(&batch).is_ok() && inner.sync().is_ok();
            let image = fs
                .crash_image()
                .unwrap_or_else(|| fs.crash_now(tear_last_write));
            let inner = open_mem(&image, true).unwrap();
            let state = read_state(&inner, &probe).unwrap();
            let case =
                format!("crash at operation {op} ({start}..={end}, tear: {tear_last_write})");
            assert!(
                state == after || (state == before && !synced),
                "{case}: synced: {synced}, recovered {} keys: {}",
                state.len(),
                show_model(&state)
            );
            outcomes[usize::from(state == after)] += 1;
        }
    }
    println!("batch crash points: {outcomes:?} recovered none / all of the batch");
    assert!(outcomes[0] > 0 && outcomes[1] > 0);
}

/// A crash at any file operation amid batches keeps every synced write, and never half a batch.
#[test]
fn test_task2_crash_at_every_operation_with_batches() {
    let mut steps = Vec::new();
    let batch = |n: usize, keys: &[usize]| {
        Step::Batch(
            keys.iter()
                .enumerate()
                .map(|(j, &i)| {
                    let value = if (n + j) % 4 == 3 {
                        Vec::new()
                    } else {
                        format!("b{n}.{j}").into_bytes()
                    };
                    (key(i), value)
                })
                .collect(),
        )
    };
    steps.push(Step::put(&key(1), b"p1"));
    steps.push(batch(1, &[1, 2, 3, 4]));
    steps.push(Step::Sync);
    steps.push(batch(2, &[3, 5, 6, 3]));
    steps.push(Step::Freeze);
    steps.push(batch(3, &[2, 7, 8, 9, 10, 11]));
    steps.push(Step::delete(&key(5)));
    steps.push(Step::Sync);
    steps.push(batch(4, &[1, 12]));
    steps.push(Step::Flush);
    steps.push(batch(5, &[4, 6, 13, 14]));
    steps.push(Step::Freeze);
    steps.push(Step::put(&key(15), b"p15"));
    steps.push(Step::Sync);
    steps.push(batch(6, &[15, 16, 2]));
    steps.push(Step::Flush);
    steps.push(batch(7, &[17, 1]));
    crash_sweep("batch crash sweep", true, &steps);
}

/// The files of a small database, and the history written to it: every key written once.
struct Corpus {
    /// The database after a clean shutdown: `MANIFEST`, one SST and one log.
    fs: MemFs,
    /// `models[k]`: the data after the first `k` writes (a batch is one).
    models: Vec<Model>,
    sst: PathBuf,
    wal: PathBuf,
    manifest: PathBuf,
}

/// Builds the corpus: 12 keys flushed to an SST of several blocks, then 7 writes (one a batch)
/// in the log.
fn corpus() -> Corpus {
    let fs = MemFs::new();
    let mut options = mem_options(&fs, true);
    options.block_size = 64;
    let inner = LsmStorageInner::open(db(), options).unwrap();
    let mut models = vec![Model::new()];
    let mut write = |entries: &[(Vec<u8>, Vec<u8>)]| {
        let mut model = models.last().unwrap().clone();
        model.extend(entries.iter().cloned());
        models.push(model);
    };
    for i in 0..12 {
        let (k, v) = (key(i), format!("value-{i}").into_bytes());
        inner.put(&k, &v).unwrap();
        write(&[(k, v)]);
    }
    let flushed = shape(&inner).memtable;
    freeze(&inner).unwrap();
    inner.force_flush_next_imm_memtable().unwrap();
    let logged = shape(&inner).memtable;
    for i in 12..18 {
        let (k, v) = (key(i), format!("logged-{i}").into_bytes());
        inner.put(&k, &v).unwrap();
        write(&[(k, v)]);
        if i % 2 == 1 {
            inner.sync().unwrap();
        }
    }
    let batch: Vec<(Vec<u8>, Vec<u8>)> = (18..21)
        .map(|i| (key(i), format!("batched-{i}").into_bytes()))
        .collect();
    let records: Vec<_> = batch.iter().map(|(k, v)| record(k, v)).collect();
    inner.write_batch(&records).unwrap();
    write(&batch);
    inner.sync().unwrap();
    drop(inner);
    fs.crash_now(false);
    let dir = db();
    Corpus {
        fs,
        models,
        sst: sst_path(&dir, flushed),
        wal: wal_path(&dir, logged),
        manifest: dir.join(MANIFEST_NAME),
    }
}

/// How a damaged database fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    /// `open` or a read failed with an error naming the damaged file.
    CleanError,
    /// Some keys are missing, and recovery reported a dropped record or removed file.
    ReportedLoss,
    /// A log cut at a record boundary: a shorter, valid history.
    ShorterLog,
    /// Every key was read back.
    Intact,
}

/// Opens `image`, reads everything, and judges the outcome against the corpus's history; an
/// `Err` is a failure (a panic, an error that does not name the file, a wrong answer, or a
/// loss nobody reported).
fn judge(corpus: &Corpus, image: &MemFs, damaged: &Path, cut: bool) -> Result<Verdict, String> {
    let name = damaged.file_name().unwrap().to_str().unwrap();
    let expected = corpus.models.last().unwrap();
    let probe: Vec<Vec<u8>> = expected.keys().cloned().collect();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let inner = open_mem(image, true)?;
        let report = inner.recovery_report().to_vec();
        read_state(&inner, &probe).map(|state| (report, state))
    }));
    let (report, state) = match outcome {
        Err(panic) => return Err(format!("panic: {}", panic_message(&panic))),
        Ok(Err(error)) => {
            let error = format!("{error:#}");
            return match error.contains(name) {
                true => Ok(Verdict::CleanError),
                false => Err(format!("the error does not name {name}: {error}")),
            };
        }
        Ok(Ok(found)) => found,
    };
    for (k, v) in &state {
        if expected.get(k) != Some(v) {
            return Err(format!(
                "wrong answer: {} = {}, but {} was written",
                k.escape_ascii(),
                v.escape_ascii(),
                expected
                    .get(k)
                    .map_or("nothing".to_string(), |v| v.escape_ascii().to_string())
            ));
        }
    }
    if &state == expected {
        Ok(Verdict::Intact)
    } else if report.iter().any(|line| line.contains(name)) || (cut && !report.is_empty()) {
        Ok(Verdict::ReportedLoss)
    } else if cut && corpus.models.contains(&state) {
        Ok(Verdict::ShorterLog)
    } else {
        Err(format!(
            "{} of {} keys silently lost (report: {report:?})",
            expected.len() - state.len(),
            expected.len()
        ))
    }
}

/// Flips every byte of `damaged` in turn (and, with `MINI_LSM_FULL=1`, every bit) and cuts it at
/// every length, judging each case; prints the tally and fails on any failure.
fn corruption_sweep(which: fn(&Corpus) -> &PathBuf) {
    let corpus = corpus();
    let damaged = which(&corpus).clone();
    let whole = corpus.fs.crash_image().unwrap().read_all(&damaged).unwrap();
    let masks: &[u8] = if full_sweep() {
        &[0xff, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80]
    } else {
        &[0xff]
    };
    let mut cases: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for at in 0..whole.len() {
        for mask in masks {
            let mut bytes = whole.clone();
            bytes[at] ^= mask;
            cases.push((format!("byte {at} ^ {mask:#04x}"), bytes, false));
        }
    }
    for len in 0..whole.len() {
        cases.push((format!("cut to {len} bytes"), whole[..len].to_vec(), true));
    }
    let mut tally: BTreeMap<Verdict, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut panics = 0;
    for (what, bytes, cut) in &cases {
        let image = corpus.fs.crash_image().unwrap();
        image.overwrite(&damaged, bytes.clone());
        match judge(&corpus, &image, &damaged, *cut) {
            Ok(verdict) => *tally.entry(verdict).or_default() += 1,
            Err(failure) => {
                panics += usize::from(failure.starts_with("panic"));
                failures.push(format!("{} {what}: {failure}", damaged.display()));
            }
        }
    }
    println!(
        "corruption sweep of {} ({} bytes): {} cases ({} flips, {} cuts): {tally:?}; {panics} \
         panics, {} failures",
        damaged.display(),
        whole.len(),
        cases.len(),
        cases.len() - whole.len(),
        whole.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed; the first ones:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(8)].join("\n")
    );
}

/// Every flipped or cut byte of an SST gives an error naming it; no panic, no wrong answer.
#[test]
fn test_task3_corrupt_sst_every_byte() {
    corruption_sweep(|c| &c.sst);
}

/// Every flipped or cut byte of a log gives an error naming it or a reported drop of its tail.
#[test]
fn test_task3_corrupt_wal_every_byte() {
    corruption_sweep(|c| &c.wal);
}

/// Every flipped or cut byte of the manifest gives an error naming it or a reported drop.
#[test]
fn test_task3_corrupt_manifest_every_byte() {
    corruption_sweep(|c| &c.manifest);
}

/// SSTs the flush thread writes carry every checksum and read back, directly and after a reopen.
#[test]
fn test_task3_flush_thread_ssts_are_checksummed_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.fs = Arc::new(RealFs);
    options.enable_wal = true;
    options.block_size = 128;
    options.num_memtable_limit = 2;
    options.write_stall_margin = 0;
    options.write_stall_timeout = Duration::from_secs(30);
    let lsm = MiniLsm::open(dir.path(), options.clone()).unwrap();
    let mut memtables: Vec<(usize, Model)> = Vec::new();
    let mut all = Model::new();
    for round in 0..4 {
        let mut model = Model::new();
        for i in 0..40 {
            let (k, v) = (
                format!("r{round}-{i:02}").into_bytes(),
                format!("value {round} {i}").into_bytes(),
            );
            lsm.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        all.extend(model.clone());
        memtables.push((shape(&lsm.inner).memtable, model));
        // From the third memtable on, the next put stalls until the thread flushed one.
        freeze(&lsm.inner).unwrap();
    }
    lsm.put(b"last", b"after the stall").unwrap();
    all.insert(b"last".to_vec(), b"after the stall".to_vec());
    let flushed = shape(&lsm.inner).l0;
    assert!(!flushed.is_empty(), "the flush thread flushed nothing");
    for (id, model) in memtables.iter().filter(|(id, _)| flushed.contains(id)) {
        let path = sst_path(dir.path(), *id);
        let bytes = std::fs::read(&path).unwrap();
        let table = SsTable::open(*id, None, FileObject::open(&path).unwrap()).unwrap();
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let bloom_offset = u32_at(bytes.len() - 4);
        let meta_offset = u32_at(bloom_offset - 4);
        let mut sections = vec![
            ("the bloom filter", bloom_offset, bytes.len() - 4),
            ("the block index", meta_offset, bloom_offset - 4),
        ];
        for (i, meta) in table.block_meta.iter().enumerate() {
            let end = table
                .block_meta
                .get(i + 1)
                .map_or(meta_offset, |next| next.offset);
            sections.push(("a block", meta.offset, end));
        }
        for (what, start, end) in sections {
            if let Err(e) = strip_checksum(&bytes[start..end]) {
                panic!("SST {id}: {what} at {start}..{end} has no valid checksum: {e:#}");
            }
        }
        let mut iter = SsTableIterator::create_and_seek_to_first(Arc::new(table)).unwrap();
        let mut read = Model::new();
        while iter.is_valid() {
            read.insert(iter.key().raw_ref().to_vec(), iter.value().to_vec());
            iter.next().unwrap();
        }
        assert_state_eq(&read, model, format_args!("SST {id} read back"));
    }
    lsm.close().unwrap();
    drop(lsm);
    let lsm = MiniLsm::open(dir.path(), options).unwrap();
    assert_state_eq(&read_state(&lsm.inner, &[]).unwrap(), &all, "");
    for (k, v) in &all {
        assert_eq!(lsm.get(k).unwrap(), Some(bytes_of(v)));
    }
    lsm.close().unwrap();
}

/// A flipped byte in a manifest record's length is corruption, not a torn tail: `open` fails
/// naming the manifest and deletes no SST. (Taken for a torn tail, it would drop every record
/// after it, and recovery would then delete every SST as stray.)
#[test]
fn test_task3_flipped_manifest_length_loses_nothing() {
    let fs = MemFs::new();
    let inner = open_mem(&fs, false).unwrap();
    for i in 0..3 {
        inner.put(&key(i), b"value").unwrap();
        freeze(&inner).unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
    }
    drop(inner);
    let manifest = db().join(MANIFEST_NAME);
    let whole = fs.read_all(&manifest).unwrap();
    for byte in 0..4 {
        let image = fs.crash_now(false);
        let ssts_before: Vec<String> = file_names(&image, &db())
            .into_iter()
            .filter(|n| n.ends_with(".sst"))
            .collect();
        assert_eq!(ssts_before.len(), 3, "{ssts_before:?}");
        let mut damaged = whole.clone();
        damaged[byte] ^= 0x40;
        image.overwrite(&manifest, damaged);
        let error = match open_mem(&image, false) {
            Ok(_) => panic!("length byte {byte} flipped, yet open succeeded"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(MANIFEST_NAME), "{error}");
        let ssts_after: Vec<String> = file_names(&image, &db())
            .into_iter()
            .filter(|n| n.ends_with(".sst"))
            .collect();
        assert_eq!(ssts_after, ssts_before, "a failed open deleted SSTs");
    }
}
