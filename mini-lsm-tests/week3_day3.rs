// SPDX-License-Identifier: Apache-2.0
//! Week 3 day 3: commit timestamps: logged, assigned and published, recovered at open, and the
//! compaction that their distinct versions need.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::bail;
use bytes::Bytes;

use crate::compact::CompactionOptions;
use crate::fs::{FileSystem, MemFs};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm, WriteBatchRecord};
use crate::manifest::{Manifest, ManifestRecord};
use crate::mem_table::MemTable;
use crate::mvcc::Mvcc;
use crate::record::decode_records;
use crate::wal::{wal_path, Wal};

use super::harness::compaction::flush_all;
use super::harness::mvcc::{collect_versions, show_versions, version, Version};
use super::harness::persist::{
    crash_sweep_timestamps, db, freeze, key, mem_options, open_mem, Step,
};
use super::harness::{collect_user, open_engine, show, small_block_options};

/// Reads every version in the SSTs of the engine's levels, run by run.
fn level_versions(inner: &LsmStorageInner) -> Vec<Vec<Version>> {
    let snapshot = inner.snapshot();
    snapshot
        .levels
        .iter()
        .map(|(_, ids)| {
            let tables = ids
                .iter()
                .map(|id| snapshot.table(*id).unwrap().clone())
                .collect();
            let mut iter = SstConcatIterator::create_and_seek_to_first(tables).unwrap();
            collect_versions(&mut iter).unwrap()
        })
        .collect()
}

/// The engine's live entries, read at its latest commit.
fn scan_all(inner: &LsmStorageInner) -> Vec<(Bytes, Bytes)> {
    let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    collect_user(&mut iter).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Task 1: the log records each batch with its commit timestamp

/// A log replays every batch with the timestamp it was logged at, and reports the largest.
#[test]
fn test_task1_log_records_each_batch_at_its_timestamp() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let path = wal_path(&db(), 3);
    let wal = Wal::create(&fs, &path).unwrap();
    wal.put_batch_at(&[(b"a", b"1"), (b"b", b"2")], 5).unwrap();
    wal.put_batch_at(&[(b"a", b"")], 9).unwrap();
    wal.put_batch_at(&[(b"c", b"3")], 7).unwrap();
    wal.sync().unwrap();
    let mut entries = Vec::new();
    let replay = Wal::replay_at(&fs, &path, |key, value| {
        entries.push(version(key.key_ref(), key.ts(), value));
    })
    .unwrap();
    let expected = vec![
        version(b"a", 5, b"1"),
        version(b"b", 5, b"2"),
        version(b"a", 9, b""),
        version(b"c", 7, b"3"),
    ];
    assert!(
        entries == expected,
        "replayed {}\nexpected {}",
        show_versions(&entries),
        show_versions(&expected)
    );
    assert_eq!(replay.batches, 3);
    assert_eq!(replay.max_ts, 9, "the largest timestamp, not the last");
}

/// Each log record's payload starts with its batch's commit timestamp, a big-endian `u64`.
#[test]
fn test_task1_log_payload_starts_with_the_timestamp() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let path = wal_path(&db(), 1);
    let wal = Wal::create(&fs, &path).unwrap();
    wal.put_batch_at(&[(b"k", b"v")], 0x0102_0304_0506_0708)
        .unwrap();
    wal.sync().unwrap();
    let data = fs.read_all(&path).unwrap();
    let records = decode_records(&path, &data).unwrap();
    assert_eq!(records.payloads.len(), 1);
    let payload = records.payloads[0];
    assert_eq!(
        &payload[..8],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        "the timestamp first"
    );
    assert_eq!(&payload[8..12], &[0, 0, 0, 1], "then the entry count");
    assert_eq!(payload.len(), 8 + 4 + 2 + 1 + 2 + 1);
}

/// A memtable rebuilt from its log holds every version at the timestamp it was written at.
#[test]
fn test_task1_memtable_recovers_versions_at_their_timestamps() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let path = wal_path(&db(), 4);
    let memtable = MemTable::create_with_wal(4, &fs, &path).unwrap();
    fs.sync_dir(&db()).unwrap();
    memtable
        .put_batch_at(&[(b"a", b"a3"), (b"b", b"b3")], 3)
        .unwrap();
    memtable.put_batch_at(&[(b"a", b"")], 6).unwrap();
    memtable.put_batch_at(&[(b"a", b"a8")], 8).unwrap();
    memtable.sync_wal().unwrap();
    let image = fs.crash_now(false);
    let (recovered, replay) = MemTable::recover_from_wal(4, &image, &path).unwrap();
    assert_eq!(replay.max_ts, 8);
    for (ts, a, b) in [
        (2, None, None),
        (3, Some("a3"), Some("b3")),
        (5, Some("a3"), Some("b3")),
        (6, Some(""), Some("b3")),
        (8, Some("a8"), Some("b3")),
    ] {
        let read = |k: &[u8]| {
            recovered
                .get_at(k, ts)
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
        };
        assert_eq!(read(b"a").as_deref(), a, "a as of {ts}");
        assert_eq!(read(b"b").as_deref(), b, "b as of {ts}");
    }
}

// ---------------------------------------------------------------------------------------------
// Task 2: one timestamp per commit, published once applied

/// Every put, delete and batch commits at the next timestamp, a batch at one timestamp for all
/// its entries; reads as of each timestamp see the history.
#[test]
fn test_task2_each_write_and_batch_commits_at_the_next_timestamp() {
    let (_dir, inner) = open_engine(small_block_options());
    assert_eq!(
        inner.latest_commit_ts(),
        0,
        "a new engine has committed nothing"
    );
    inner.put(b"a", b"a1").unwrap();
    assert_eq!(inner.latest_commit_ts(), 1);
    inner.put(b"a", b"a2").unwrap();
    inner.delete(b"a").unwrap();
    assert_eq!(inner.latest_commit_ts(), 3);
    inner
        .write_batch(&[
            WriteBatchRecord::Put(&b"a"[..], &b"a4"[..]),
            WriteBatchRecord::Put(b"b", b"b4"),
            WriteBatchRecord::Del(b"c"),
        ])
        .unwrap();
    assert_eq!(inner.latest_commit_ts(), 4, "a batch is one commit");
    let get = |k: &[u8], ts| inner.get_with_ts(k, ts).unwrap();
    assert_eq!(get(b"a", 1).as_deref(), Some(&b"a1"[..]));
    assert_eq!(get(b"a", 2).as_deref(), Some(&b"a2"[..]));
    assert_eq!(get(b"a", 3), None, "deleted at 3");
    assert_eq!(get(b"a", 4).as_deref(), Some(&b"a4"[..]));
    assert_eq!(
        get(b"b", 3),
        None,
        "the batch is not visible before its timestamp"
    );
    assert_eq!(get(b"b", 4).as_deref(), Some(&b"b4"[..]));
}

/// A commit that fails still uses up its timestamp, so a timestamp that may have reached a log
/// is never given again; one that succeeds publishes its timestamp only after it applied.
#[test]
fn test_task2_failed_commit_uses_up_its_timestamp() {
    let mvcc = Mvcc::new(5);
    let (ts, ()) = mvcc
        .commit(|ts| {
            assert_eq!(ts, 6);
            assert_eq!(mvcc.latest_commit_ts(), 5, "published while still applying");
            Ok(())
        })
        .unwrap();
    assert_eq!(ts, 6);
    assert_eq!(mvcc.latest_commit_ts(), 6);
    let failed = mvcc.commit(|_| -> anyhow::Result<()> { bail!("the log is full") });
    assert!(failed.is_err(), "the error is returned");
    assert_eq!(mvcc.latest_commit_ts(), 7, "the failed commit used up 7");
    let (ts, ()) = mvcc.commit(|_| Ok(())).unwrap();
    assert_eq!(ts, 8);
}

/// Readers running beside a writer of batches never see part of a batch: every scan finds all
/// of a batch's keys with one batch's value, and values never go back.
#[test]
fn test_task2_concurrent_readers_never_see_half_a_batch() {
    let (_dir, inner) = open_engine(small_block_options());
    let inner = Arc::new(inner);
    let keys: Vec<Vec<u8>> = (0..32).map(|i| format!("key{i:02}").into_bytes()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (inner, done, keys) = (inner.clone(), done.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut last = 0u64;
                let mut scans = 0;
                while !done.load(Ordering::Acquire) || scans == 0 {
                    let entries = scan_all(&inner);
                    scans += 1;
                    if entries.is_empty() {
                        assert_eq!(last, 0, "the batches vanished after batch {last}");
                        continue;
                    }
                    let values: Vec<u64> = entries
                        .iter()
                        .map(|(_, v)| std::str::from_utf8(v).unwrap().parse().unwrap())
                        .collect();
                    assert_eq!(entries.len(), keys.len(), "a scan saw part of a batch");
                    assert!(
                        values.iter().all(|v| *v == values[0]),
                        "a scan saw keys of different batches: {values:?}"
                    );
                    assert!(values[0] >= last, "batch {} after batch {last}", values[0]);
                    last = values[0];
                }
                scans
            })
        })
        .collect();
    for i in 1..=3000u64 {
        let value = i.to_string();
        let batch: Vec<WriteBatchRecord<&[u8]>> = keys
            .iter()
            .map(|k| WriteBatchRecord::Put(&k[..], value.as_bytes()))
            .collect();
        inner.write_batch(&batch).unwrap();
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let scans = reader.join().expect("a reader saw part of a batch");
        assert!(scans > 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Task 3: reads at the latest commit; the commit timestamp recovered at open

/// Plain reads read at the latest commit: a version above it (a commit still applying) is
/// invisible to `get` and `scan` until it is published.
#[test]
fn test_task3_reads_see_only_published_commits() {
    let (_dir, inner) = open_engine(small_block_options());
    inner.put(b"a", b"a1").unwrap();
    inner.put(b"b", b"b2").unwrap();
    // What a commit at 3 has applied before it publishes.
    let memtable = inner.snapshot().memtable.clone();
    memtable
        .put_batch_at(&[(b"a", b"a3"), (b"c", b"c3")], 3)
        .unwrap();
    assert_eq!(inner.get(b"a").unwrap().as_deref(), Some(&b"a1"[..]));
    assert_eq!(inner.get(b"c").unwrap(), None);
    assert_eq!(
        scan_all(&inner),
        vec![
            (Bytes::from_static(b"a"), Bytes::from_static(b"a1")),
            (Bytes::from_static(b"b"), Bytes::from_static(b"b2")),
        ]
    );
    // Once 3 is published (here by an empty commit), both show.
    inner.mvcc.commit(|_| Ok(())).unwrap();
    assert_eq!(inner.get(b"a").unwrap().as_deref(), Some(&b"a3"[..]));
    assert_eq!(inner.get(b"c").unwrap().as_deref(), Some(&b"c3"[..]));
}

/// Reopened, the engine goes on above the latest commit its log holds; new writes shadow the
/// recovered ones.
#[test]
fn test_task3_commit_timestamp_recovered_from_the_log() {
    let fs = MemFs::new();
    let inner = open_mem(&fs, true).unwrap();
    for i in 0..5 {
        inner.put(&key(i), format!("v{i}").as_bytes()).unwrap();
    }
    inner.put(&key(0), b"newest").unwrap();
    inner.sync().unwrap();
    drop(inner);
    let inner = open_mem(&fs.crash_now(false), true).unwrap();
    assert_eq!(inner.latest_commit_ts(), 6);
    assert_eq!(inner.get(&key(0)).unwrap().as_deref(), Some(&b"newest"[..]));
    inner.put(&key(0), b"after").unwrap();
    assert_eq!(inner.latest_commit_ts(), 7);
    assert_eq!(inner.get(&key(0)).unwrap().as_deref(), Some(&b"after"[..]));
}

/// When compaction has dropped every version (deleted keys at the bottom) and the log is gone,
/// the manifest still knows the latest commit: no timestamp is given twice, across reopens.
#[test]
fn test_task3_commit_timestamp_survives_compaction_dropping_everything() {
    let fs = MemFs::new();
    let inner = open_mem(&fs, true).unwrap();
    for i in 0..4 {
        inner.put(&key(i), b"v").unwrap();
    }
    for i in 0..4 {
        inner.delete(&key(i)).unwrap();
    }
    freeze(&inner).unwrap();
    inner.force_flush_next_imm_memtable().unwrap();
    inner.force_full_compaction().unwrap();
    let snapshot = inner.snapshot();
    assert!(
        snapshot.sstables.is_empty(),
        "every version was dropped at the bottom: {}",
        inner.dump()
    );
    drop(snapshot);
    drop(inner);
    let mut fs = fs;
    for round in 0..2 {
        let image = fs.crash_now(false);
        let inner = open_mem(&image, true).unwrap();
        assert_eq!(
            inner.latest_commit_ts(),
            8 + round,
            "reopen {round}: the commit timestamp went back"
        );
        inner.put(&key(9), b"x").unwrap();
        inner.sync().unwrap();
        drop(inner);
        fs = image;
    }
}

/// Without a log, the SSTs written at close carry the latest commit: reopened, the engine goes
/// on above it.
#[test]
fn test_task3_commit_timestamp_recovered_without_a_log() {
    let fs = MemFs::new();
    let lsm = MiniLsm::open(db(), mem_options(&fs, false)).unwrap();
    for i in 0..6 {
        lsm.put(&key(i % 3), format!("v{i}").as_bytes()).unwrap();
    }
    lsm.close().unwrap();
    drop(lsm);
    let inner = open_mem(&fs.crash_now(false), false).unwrap();
    assert_eq!(inner.latest_commit_ts(), 6);
    assert_eq!(inner.get(&key(2)).unwrap().as_deref(), Some(&b"v5"[..]));
}

/// A database written by an engine before week 3 day 3 (a manifest that names no format), or in
/// a format this engine does not know, is refused with an error that says so.
#[test]
fn test_task3_older_database_is_refused() {
    let cases: [(Vec<ManifestRecord>, &str); 2] = [
        (
            vec![
                ManifestRecord::Levels {
                    l0: vec![],
                    levels: vec![],
                },
                ManifestRecord::NewMemtable(1),
            ],
            "before week 3 day 3",
        ),
        (
            vec![ManifestRecord::Format(99), ManifestRecord::NewMemtable(1)],
            "format 99",
        ),
    ];
    for (records, says) in cases {
        let fs = MemFs::new();
        fs.create_dir_all(&db()).unwrap();
        Manifest::create(&fs, &db(), &records).unwrap();
        let error = match open_mem(&fs, true) {
            Ok(_) => panic!("{records:?}: the engine opened a database it cannot read"),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            error.contains(says),
            "the error does not say {says:?}: {error}"
        );
        assert!(
            error.contains("MANIFEST"),
            "the error names no file: {error}"
        );
    }
}

/// A crash at any file operation amid batches, flushes and compactions keeps every synced write
/// and never half a batch, and the recovered engine never gives a timestamp that a recovered
/// write holds.
#[test]
fn test_task3_crash_sweep_never_reuses_a_timestamp() {
    let mut n = 0;
    let mut batch = |keys: &[usize], delete_every: usize| {
        n += 1;
        Step::Batch(
            keys.iter()
                .enumerate()
                .map(|(j, &i)| {
                    let value = if delete_every > 0 && j % delete_every == 0 {
                        Vec::new()
                    } else {
                        format!("b{n}.{j}").into_bytes()
                    };
                    (key(i), value)
                })
                .collect(),
        )
    };
    let steps = vec![
        batch(&[1, 2, 3], 0),
        Step::Sync,
        batch(&[2, 4], 0),
        Step::Freeze,
        batch(&[1, 3, 5], 2),
        Step::Flush,
        Step::Sync,
        batch(&[4, 6, 7], 0),
        Step::Freeze,
        Step::Flush,
        Step::FullCompaction,
        batch(&[1, 2, 3, 4, 5, 6, 7], 1),
        Step::Sync,
        Step::Freeze,
        Step::Flush,
        Step::FullCompaction,
        batch(&[8], 0),
    ];
    let open = |fs: &MemFs| LsmStorageInner::open(db(), mem_options(fs, true));
    crash_sweep_timestamps("timestamp crash sweep", true, &open, &steps);
}

// ---------------------------------------------------------------------------------------------
// Task 4: compaction and versions

/// Options with compaction by hand only and small SSTs.
fn compaction_options(target_sst_size: usize) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week2_test(CompactionOptions::NoCompaction);
    options.block_size = 128;
    options.target_sst_size = target_sst_size;
    options
}

/// With no reader below the latest commit, compaction keeps one version per key: the newest.
#[test]
fn test_task4_compaction_keeps_only_the_newest_version() {
    let (_dir, inner) = open_engine(compaction_options(1 << 20));
    for round in 0..3 {
        for i in 0..10 {
            if (i + round) % 3 != 0 {
                inner.put(&key(i), format!("r{round}").as_bytes()).unwrap();
            }
        }
        flush_all(&inner);
    }
    let before = scan_all(&inner);
    inner.force_full_compaction().unwrap();
    let runs = level_versions(&inner);
    let versions: Vec<Version> = runs.into_iter().flatten().collect();
    let keys: Vec<Bytes> = versions.iter().map(|(k, _, _)| k.clone()).collect();
    let mut distinct = keys.clone();
    distinct.dedup();
    assert_eq!(
        keys,
        distinct,
        "several versions of a key: {}",
        show_versions(&versions)
    );
    assert_eq!(scan_all(&inner), before);
}

/// Versions above the latest commit (a commit still applying) are all kept, and with them the
/// newest version at or below it.
#[test]
fn test_task4_compaction_keeps_versions_above_the_latest_commit() {
    let (_dir, inner) = open_engine(compaction_options(1 << 20));
    inner.put(b"k", b"k1").unwrap();
    inner.put(b"k", b"k2").unwrap();
    inner.put(b"k", b"k3").unwrap();
    let memtable = inner.snapshot().memtable.clone();
    memtable.put_batch_at(&[(b"k", b"k7")], 7).unwrap();
    memtable.put_batch_at(&[(b"k", b"")], 9).unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let versions: Vec<Version> = level_versions(&inner).into_iter().flatten().collect();
    let expected = vec![
        version(b"k", 9, b""),
        version(b"k", 7, b"k7"),
        version(b"k", 3, b"k3"),
    ];
    assert!(
        versions == expected,
        "kept {}\nexpected {}",
        show_versions(&versions),
        show_versions(&expected)
    );
}

/// At the bottom a tombstone goes, and every older version with it; above the bottom it stays.
#[test]
fn test_task4_bottom_tombstone_takes_older_versions_with_it() {
    let (_dir, inner) = open_engine(compaction_options(1 << 20));
    inner.put(b"a", b"a1").unwrap();
    inner.put(b"b", b"b1").unwrap();
    flush_all(&inner);
    inner.delete(b"a").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let versions: Vec<Version> = level_versions(&inner).into_iter().flatten().collect();
    assert_eq!(
        versions,
        vec![version(b"b", 2, b"b1")],
        "a is gone, all of it"
    );
    assert_eq!(inner.get(b"a").unwrap(), None);
    // Above the bottom: move L1 down, then delete and compact L0 into the new L1 over it.
    super::harness::compaction::move_l1_to_l2(&inner);
    inner.delete(b"b").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let runs = level_versions(&inner);
    assert_eq!(
        runs[0],
        vec![version(b"b", 4, b"")],
        "the tombstone stays above L2"
    );
    assert_eq!(inner.get(b"b").unwrap(), None, "and still hides b");
}

/// Compaction output is cut only between user keys: however small the target size, a key's
/// versions all land in one SST, and the level's SSTs hold disjoint user-key ranges.
#[test]
fn test_task4_output_never_splits_a_key() {
    let (_dir, inner) = open_engine(compaction_options(200));
    // Versions above the latest commit are all kept: many of them per key.
    let memtable = inner.snapshot().memtable.clone();
    for ts in 1..=12u64 {
        for i in 0..6 {
            let value = format!("value-{i}-{ts:03}");
            memtable
                .put_batch_at(&[(&key(i), value.as_bytes())], 100 + ts)
                .unwrap();
        }
    }
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let snapshot = inner.snapshot();
    let ids = &snapshot.levels[0].1;
    assert!(
        ids.len() >= 3,
        "a target of 200 bytes makes several SSTs: {ids:?}"
    );
    for pair in ids.windows(2) {
        let (a, b) = (
            snapshot.table(pair[0]).unwrap(),
            snapshot.table(pair[1]).unwrap(),
        );
        assert!(
            a.last_key().raw_ref() < b.first_key().raw_ref(),
            "SSTs {} ({:?}..={:?}) and {} ({:?}..={:?}) share a user key",
            pair[0],
            a.first_key(),
            a.last_key(),
            pair[1],
            b.first_key(),
            b.last_key()
        );
    }
    let versions: usize = level_versions(&inner).iter().map(Vec::len).sum();
    assert_eq!(
        versions, 72,
        "every version above the latest commit is kept"
    );
    for i in 0..6 {
        let got = inner.get_with_ts(&key(i), 105).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(format!("value-{i}-005").as_bytes()),
            "{} as of 105",
            show(&key(i))
        );
    }
}
