// SPDX-License-Identifier: Apache-2.0
//! Week 4 day 7: metrics. Every count is checked against the exact figure the operations
//! imply (user bytes, file sizes on disk, time on a fake clock), so a count taken twice, or
//! not at all, shows.

use std::ops::Bound::Unbounded;
use std::path::Path;
use std::time::Duration;

use clap::Parser;

use crate::cli::{Args, Command, Shell};
use crate::clock::FakeClock;
use crate::fs::{FileSystem, MemFs};
use crate::iterators::StorageIterator;
use crate::lsm_storage::{LsmStorageInner, WriteBatchRecord};
use crate::manifest::MANIFEST_NAME;
use crate::metrics::Stats;
use crate::table::sst_path;
use crate::wal::{wal_path, WalMode};

use super::harness::persist::{db, mem_options};
use super::harness::stall::{
    await_stall, fill_l0, join_within, l0_options, open_shared, spawn_write, SLOWDOWN_DELAY,
    STALL_TIMEOUT,
};
use super::harness::{collect_user, freeze};

/// An engine on `fs` with the log on, each write handed to the file at once.
fn open_logged(fs: &MemFs) -> LsmStorageInner {
    let mut options = mem_options(fs, true);
    options.wal_mode = WalMode::WriteEachBatch;
    LsmStorageInner::open(db(), options).unwrap()
}

/// The size of the file at `path` on `fs`.
fn size(fs: &MemFs, path: &Path) -> u64 {
    fs.read_all(path).unwrap().len() as u64
}

// ---------------------------------------------------------------------------------------------
// Task 1: writes

/// Regression: a write's user bytes are counted once, whatever carries them (a put, a delete, a
/// batch; the log and the memtable), and a refused write counts nothing (one published engine
/// counts logical bytes twice). File bytes are the log's and the manifest's sizes exactly.
/// Catches: a batch's bytes added per batch and per entry, counting before the commit succeeds.
#[test]
fn test_task1_regression_user_bytes_counted_once() {
    let fs = MemFs::default();
    let storage = open_logged(&fs);
    storage.put(b"k1", b"value1").unwrap(); // 2 + 6 bytes
    storage.delete(b"k1").unwrap(); // 2
    storage
        .write_batch(&[
            WriteBatchRecord::Put(&b"a"[..], &b"1"[..]),
            WriteBatchRecord::Put(b"bb", b"22"),
            WriteBatchRecord::Del(b"ccc"),
        ])
        .unwrap(); // 2 + 4 + 3
    storage.put(b"empty", b"").unwrap_err();
    storage.put(&[b'k'; 70_000], b"too long").unwrap_err();
    storage
        .write_batch(&[
            WriteBatchRecord::Put(&b"ok"[..], &b"1"[..]),
            WriteBatchRecord::Put(b"no", b""),
        ])
        .unwrap_err();
    let stats = storage.stats();
    assert_eq!(
        (stats.writes, stats.entries_written, stats.bytes_written),
        (3, 5, 19),
        "3 writes of 5 entries and 19 user bytes: {stats:?}"
    );
    assert_eq!(
        (stats.write_groups, stats.max_write_group),
        (3, 1),
        "until group commit every write is a group of one"
    );
    assert_eq!(stats.mean_write_group(), Some(1.0));

    let log = size(&fs, &wal_path(&db(), storage.snapshot().memtable.id()));
    let manifest = size(&fs, &db().join(MANIFEST_NAME));
    assert_eq!(stats.log_bytes, log, "log bytes are the log's size");
    assert_eq!(
        stats.file_bytes_written,
        log + manifest,
        "file bytes are the log's and the manifest's sizes"
    );
    assert_eq!(
        stats.write_amplification(),
        Some((log + manifest) as f64 / 19.0),
        "file bytes per user byte"
    );
}

/// A new engine has counted nothing, and the counts start again at each open.
#[test]
fn test_task1_counts_start_at_open() {
    let fs = MemFs::default();
    let storage = open_logged(&fs);
    let fresh = storage.stats();
    assert_eq!((fresh.writes, fresh.bytes_written, fresh.gets), (0, 0, 0));
    assert_eq!(fresh.write_amplification(), None);
    storage.put(b"k", b"v").unwrap();
    assert_eq!(storage.stats().writes, 1);
    storage.sync().unwrap();
    drop(storage);
    let storage = LsmStorageInner::open(db(), mem_options(&fs, true)).unwrap();
    assert_eq!(storage.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    let stats = storage.stats();
    assert_eq!((stats.writes, stats.gets, stats.get_hits), (0, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// Task 2: reads

/// Gets count once however they are made (through a snapshot too), with the bytes of the values
/// found; scans count the keys and values of the entries they hand back, tombstones skipped,
/// and only the entries reached. Catches: a snapshot's read counted twice, the first entry of
/// a scan missed, a scan counted per entry instead of per landing.
#[test]
fn test_task2_reads_counted_once() {
    let fs = MemFs::default();
    let storage = open_logged(&fs);
    storage.put(b"a", b"1").unwrap();
    storage.put(b"bb", b"22").unwrap();
    storage.put(b"bc", b"333").unwrap();
    storage.delete(b"gone").unwrap();
    freeze(&storage);
    storage.force_flush_next_imm_memtable().unwrap();
    storage.put(b"d", b"4444").unwrap();

    assert_eq!(storage.get(b"bb").unwrap().as_deref(), Some(&b"22"[..]));
    assert_eq!(storage.get(b"gone").unwrap(), None);
    assert_eq!(storage.get(b"never").unwrap(), None);
    let snapshot = storage.new_snapshot();
    assert_eq!(snapshot.get(b"d").unwrap().as_deref(), Some(&b"4444"[..]));
    let stats = storage.stats();
    assert_eq!(
        (stats.gets, stats.get_hits, stats.bytes_read),
        (4, 2, 6),
        "4 gets, 2 found, 2 + 4 value bytes"
    );

    // a=1 bb=22 bc=333 d=4444: 4 entries, 2 + 4 + 5 + 5 bytes.
    let all = collect_user(&mut storage.scan(Unbounded, Unbounded).unwrap()).unwrap();
    assert_eq!(all.len(), 4);
    let stats = storage.stats();
    assert_eq!(
        (stats.scans, stats.entries_scanned, stats.bytes_read),
        (1, 4, 6 + 16)
    );
    // bb=22 bc=333 through a prefix scan of the snapshot's engine, 4 + 5 bytes.
    let prefixed = collect_user(&mut storage.scan_prefix(b"b").unwrap()).unwrap();
    assert_eq!(prefixed.len(), 2);
    // Only the first entry, a=1, is reached: 2 bytes.
    let partial = snapshot.scan(Unbounded, Unbounded).unwrap();
    assert!(partial.is_valid());
    drop(partial);
    // An empty scan reaches nothing.
    drop(
        storage
            .scan(std::ops::Bound::Included(b"x"), Unbounded)
            .unwrap(),
    );
    drop(snapshot);
    let stats = storage.stats();
    assert_eq!(
        (stats.scans, stats.entries_scanned, stats.bytes_read),
        (4, 4 + 2 + 1, 6 + 16 + 9 + 2),
        "{stats:?}"
    );
    assert_eq!(
        (stats.writes, stats.gets),
        (5, 4),
        "reads count no write, scans count no get"
    );
}

// ---------------------------------------------------------------------------------------------
// Task 3: stalls, flushes and compactions

/// Flushes count the bytes of the SSTs they wrote, compactions those they read and wrote, each
/// the size of the file; file bytes are every byte written to the disk, write amplification
/// their ratio to user bytes. Catches: a flush or compaction counted twice or not at all,
/// inputs counted as outputs.
#[test]
fn test_task3_flush_and_compaction_bytes_are_file_sizes() {
    let fs = MemFs::default();
    let mut options = mem_options(&fs, false);
    options.target_sst_size = 1 << 20;
    let storage = LsmStorageInner::open(db(), options).unwrap();
    let mut user_bytes = 0;
    let mut ssts = Vec::new();
    for round in 0..2 {
        for i in 0..100 {
            let (key, value) = (format!("k{i:03}"), format!("round {round} value {i}"));
            storage.put(key.as_bytes(), value.as_bytes()).unwrap();
            user_bytes += (key.len() + value.len()) as u64;
        }
        ssts.push(storage.snapshot().memtable.id());
        freeze(&storage);
        storage.force_flush_next_imm_memtable().unwrap();
    }
    let flushed: Vec<u64> = ssts
        .iter()
        .map(|id| size(&fs, &sst_path(&db(), *id)))
        .collect();
    let stats = storage.stats();
    assert_eq!(
        (stats.flushes, stats.flush_bytes),
        (2, flushed[0] + flushed[1])
    );
    assert_eq!((stats.compactions, stats.compaction_bytes_read), (0, 0));

    storage.force_full_compaction().unwrap();
    let snapshot = storage.snapshot();
    let outputs: u64 = snapshot
        .levels
        .iter()
        .flat_map(|(_, ids)| ids)
        .map(|id| size(&fs, &sst_path(&db(), *id)))
        .sum();
    let manifest = size(&fs, &db().join(MANIFEST_NAME));
    let stats = storage.stats();
    assert_eq!(
        (
            stats.compactions,
            stats.compaction_bytes_read,
            stats.compaction_bytes_written
        ),
        (1, flushed[0] + flushed[1], outputs),
        "one compaction read both flushed SSTs and wrote the level's"
    );
    assert_eq!(stats.bytes_written, user_bytes);
    let files = flushed[0] + flushed[1] + outputs + manifest;
    assert_eq!(
        stats.file_bytes_written, files,
        "no log: SSTs and the manifest"
    );
    assert_eq!(
        stats.write_amplification(),
        Some(files as f64 / user_bytes as f64)
    );
}

/// Slowed writes count one delay each, stopped ones the time they waited, on the engine's
/// clock; a stop that times out counts as a timeout too. Catches: stall time on the system
/// clock, a write counted as slowed and stopped twice, a woken write counted as a timeout.
#[test]
fn test_task3_stalls_counted_on_the_clock() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(l0_options(&clock));
    fill_l0(&storage, 3);
    let stalls = |s: &Stats| {
        (
            s.slowed_writes,
            s.stopped_writes,
            s.stall_timeouts,
            s.stall_time,
        )
    };
    assert_eq!(stalls(&storage.stats()), (0, 0, 0, Duration::ZERO));
    storage.put(b"slow1", b"v").unwrap();
    storage.put(b"slow2", b"v").unwrap();
    assert_eq!(
        stalls(&storage.stats()),
        (2, 0, 0, 2 * SLOWDOWN_DELAY),
        "two writes slowed by one delay each"
    );

    fill_l0(&storage, 5); // Two more slowed writes.
    let mut writer = Some(spawn_write(&storage, |s| s.put(b"late", b"v")));
    await_stall(&storage, &mut writer);
    clock.advance(STALL_TIMEOUT);
    let result = join_within(writer.take().unwrap(), "the clock passed the stall bound");
    result.unwrap_err();
    assert_eq!(
        stalls(&storage.stats()),
        (4, 1, 1, 4 * SLOWDOWN_DELAY + STALL_TIMEOUT),
        "a stop that timed out after its bound"
    );

    let mut writer = Some(spawn_write(&storage, |s| s.put(b"woken", b"v")));
    await_stall(&storage, &mut writer);
    storage.trigger_compaction().unwrap();
    join_within(writer.take().unwrap(), "a compaction emptied L0").unwrap();
    assert_eq!(
        stalls(&storage.stats()),
        (4, 2, 1, 4 * SLOWDOWN_DELAY + STALL_TIMEOUT),
        "a stop that a compaction ended, with no time on the clock"
    );
    assert_eq!(storage.stats().compactions, 1);
}

/// The shell's `stats` prints the counts: here one put of 2 user bytes, one get that found 1.
#[test]
fn test_task3_shell_prints_stats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let args = Args::parse_from(["cli", "--path", path.to_str().unwrap()]);
    let mut shell = Shell::open(&args).unwrap();
    let mut out = Vec::new();
    for line in ["put k v", "get k", "stats"] {
        let command = Command::parse(line).unwrap().unwrap();
        shell.execute(command, &mut out).unwrap();
    }
    let out = String::from_utf8(out).unwrap();
    for needle in [
        "writes       1 (1 entries, 2 bytes) in 1 groups (mean 1.00, max 1)",
        "reads        1 gets (1 found), 0 scans (0 entries); 1 bytes",
        "write amp    ",
    ] {
        assert!(
            out.contains(needle),
            "`stats` printed no {needle:?}:\n{out}"
        );
    }
    shell.close().unwrap();
}
