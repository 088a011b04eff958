// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 1: the concat iterator, full compaction, installing its result, obsolete files,
//! and reads through the levels.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::Arc;

use bytes::Bytes;
use tempfile::TempDir;

use crate::compact::{
    apply_level_compaction, CompactionOptions, CompactionTask, LevelCompactionTask, LsmShape,
    SstInfo,
};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::StorageIterator;
use crate::key::KeySlice;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use crate::table::{sst_path, SsTable, SsTableBuilder};

// ---------------------------------------------------------------------------------------------
// Helpers of this chapter

type Entries = Vec<(Bytes, Bytes)>;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// No compaction strategy, 128-byte blocks, SSTs of `target_sst_size` bytes, and no block cache,
/// so that every block read shows in `block_reads`.
fn options(target_sst_size: usize) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week2_test(CompactionOptions::NoCompaction);
    options.block_size = 128;
    options.target_sst_size = target_sst_size;
    options.block_cache_bytes = 0;
    options
}

fn open(options: LsmStorageOptions) -> (TempDir, LsmStorageInner) {
    let dir = tempfile::tempdir().unwrap();
    let storage = LsmStorageInner::open(dir.path(), options).unwrap();
    (dir, storage)
}

/// Freezes the memtable (if it holds anything) and flushes every immutable memtable.
fn flush_all(storage: &LsmStorageInner) {
    if !storage.snapshot().memtable.is_empty() {
        storage
            .force_freeze_memtable(&storage.state_lock.lock())
            .unwrap();
    }
    while !storage.snapshot().imm_memtables.is_empty() {
        storage.force_flush_next_imm_memtable().unwrap();
    }
}

/// Reads an iterator to its end; `key` turns its key type into bytes.
fn drain<I: StorageIterator>(iter: &mut I, key: impl Fn(&I) -> Bytes) -> Entries {
    let mut out = Vec::new();
    while iter.is_valid() {
        out.push((key(iter), Bytes::copy_from_slice(iter.value())));
        assert!(out.len() < 1_000_000, "the iterator does not end");
        iter.next().unwrap();
    }
    out
}

fn collect_scan(storage: &LsmStorageInner, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Entries {
    let mut iter = storage.scan(lower, upper).unwrap();
    drain(&mut iter, |it| Bytes::copy_from_slice(it.key()))
}

fn collect_run(iter: &mut SstConcatIterator) -> Entries {
    drain(iter, |it| Bytes::copy_from_slice(it.key().raw_ref()))
}

/// The tables of the SSTs `ids`, from the engine's state.
fn tables(storage: &LsmStorageInner, ids: &[usize]) -> Vec<Arc<SsTable>> {
    let snapshot = storage.snapshot();
    ids.iter()
        .map(|id| snapshot.table(*id).unwrap().clone())
        .collect()
}

/// Every entry, tombstones included, of the sorted run `ids`, after checking that its SSTs are
/// sorted and do not overlap.
fn run_entries(storage: &LsmStorageInner, ids: &[usize]) -> Entries {
    let tables = tables(storage, ids);
    for pair in tables.windows(2) {
        assert!(
            pair[0].last_key() < pair[1].first_key(),
            "SSTs {} and {} of a level overlap or are out of order",
            pair[0].sst_id(),
            pair[1].sst_id()
        );
    }
    collect_run(&mut SstConcatIterator::create_and_seek_to_first(tables).unwrap())
}

fn model_entries(model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Entries {
    model
        .iter()
        .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
        .collect()
}

/// Moves L1 down to L2 by hand (L2 must be empty), so that the next full compaction is not to
/// the bottom. Safe for reads: L1's data is older than anything that arrives later.
fn move_l1_to_l2(storage: &LsmStorageInner) {
    let _state_lock = storage.state_lock.lock();
    let mut next = storage.snapshot().as_ref().clone();
    assert!(next
        .levels
        .iter()
        .all(|(level, ids)| *level == 1 || ids.is_empty()));
    let l1 = std::mem::take(&mut next.levels[0].1);
    next.levels = vec![(1, Vec::new()), (2, l1)];
    *storage.state.write() = Arc::new(next);
}

/// Three SSTs of keys `k010..=k019`, `k030..=k039`, `k050..=k059` (values `v10`..), several blocks
/// each, with no block cache.
fn three_ssts(dir: &TempDir) -> Vec<Arc<SsTable>> {
    [10, 30, 50]
        .iter()
        .enumerate()
        .map(|(id, start)| {
            let mut builder = SsTableBuilder::new(32);
            for i in *start..start + 10 {
                let value = format!("v{i}");
                builder.add(
                    KeySlice::from_slice(format!("k{i:03}").as_bytes()),
                    value.as_bytes(),
                );
            }
            Arc::new(
                builder
                    .build(id, None, dir.path().join(format!("{id}.sst")))
                    .unwrap(),
            )
        })
        .collect()
}

fn reads(tables: &[Arc<SsTable>]) -> Vec<u64> {
    tables.iter().map(|t| t.block_reads()).collect()
}

// ---------------------------------------------------------------------------------------------
// Task 1: the concat iterator

/// Seeking a run to every key, to each SST's first and last key, into the gaps between SSTs,
/// before the first and after the last, yields exactly the entries from there on; only the SST
/// holding the target is opened, and the next one only when the iterator gets there.
#[test]
fn test_task1_concat_iterator_seeks_every_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let ssts = three_ssts(&dir);
    let all: Entries = [10, 30, 50]
        .iter()
        .flat_map(|s| *s..s + 10)
        .map(|i| {
            (
                Bytes::from(format!("k{i:03}")),
                Bytes::from(format!("v{i}")),
            )
        })
        .collect();
    let mut first = SstConcatIterator::create_and_seek_to_first(ssts.clone()).unwrap();
    assert_eq!(first.num_active_iterators(), 1);
    assert_eq!(collect_run(&mut first), all);
    assert_eq!(
        first.num_active_iterators(),
        0,
        "an exhausted run holds no SST open"
    );

    let mut probes: Vec<String> = (0..=65).map(|i| format!("k{i:03}")).collect();
    probes.extend(["k0195", "k039\u{0}", "k", "", "l"].map(String::from));
    for probe in &probes {
        let mut iter = SstConcatIterator::create_and_seek_to_key(
            ssts.clone(),
            KeySlice::from_slice(probe.as_bytes()),
        )
        .unwrap();
        let expected: Entries = all
            .iter()
            .filter(|(k, _)| k.as_ref() >= probe.as_bytes())
            .cloned()
            .collect();
        assert_eq!(
            iter.num_active_iterators(),
            usize::from(!expected.is_empty()),
            "seek {probe:?}"
        );
        assert_eq!(collect_run(&mut iter), expected, "seek {probe:?}");
    }

    // Lazy: a seek into the second SST reads none of the others until it gets to the third.
    let before = reads(&ssts);
    let mut iter =
        SstConcatIterator::create_and_seek_to_key(ssts.clone(), KeySlice::from_slice(b"k031"))
            .unwrap();
    for _ in 31..39 {
        iter.next().unwrap();
    }
    assert_eq!(iter.key().raw_ref(), b"k039");
    let delta: Vec<u64> = reads(&ssts)
        .iter()
        .zip(&before)
        .map(|(a, b)| a - b)
        .collect();
    assert!(
        delta[0] == 0 && delta[1] > 0 && delta[2] == 0,
        "block reads per SST: {delta:?}"
    );
    iter.next().unwrap();
    assert_eq!(iter.key().raw_ref(), b"k050");
    assert!(
        reads(&ssts)[2] > before[2],
        "the third SST is opened once reached"
    );
}

/// An empty run, and a seek past the end of a run, give an iterator that is not valid and holds
/// no SST open.
#[test]
fn test_task1_concat_iterator_empty_run() {
    let iter = SstConcatIterator::create_and_seek_to_first(Vec::new()).unwrap();
    assert!(!iter.is_valid());
    assert_eq!(iter.num_active_iterators(), 0);
    let iter =
        SstConcatIterator::create_and_seek_to_key(Vec::new(), KeySlice::from_slice(b"a")).unwrap();
    assert!(!iter.is_valid());
    let dir = tempfile::tempdir().unwrap();
    let ssts = three_ssts(&dir);
    let mut iter =
        SstConcatIterator::create_and_seek_to_key(ssts, KeySlice::from_slice(b"k0595")).unwrap();
    assert!(!iter.is_valid());
    assert_eq!(iter.num_active_iterators(), 0);
    iter.next().unwrap();
    assert!(
        !iter.is_valid(),
        "next on an exhausted run keeps it exhausted"
    );
}

// ---------------------------------------------------------------------------------------------
// Task 2: merging into SSTs split by target size

/// A full compaction merges every L0 SST into one sorted run in L1: the newest version of each
/// key, no tombstone (L1 is the bottom), SSTs sorted, disjoint and cut as soon as their data
/// reaches `target_sst_size`; the old SSTs leave the state, and reads are unchanged.
#[test]
fn test_task2_full_compaction_merges_splits_and_drops_tombstones() {
    const TARGET: usize = 1024;
    let (_dir, storage) = open(options(TARGET));
    let mut model = BTreeMap::new();
    for round in 0..3 {
        for i in (0..300).step_by(round + 1) {
            let value = format!("round{round}-value{i:05}").into_bytes();
            storage.put(&key(i), &value).unwrap();
            model.insert(key(i), value);
        }
        for i in (round..300).step_by(7) {
            storage.delete(&key(i)).unwrap();
            model.remove(&key(i));
        }
        flush_all(&storage);
    }
    let before = storage.snapshot();
    assert!(before.l0_sstables.len() >= 3);
    storage.force_full_compaction().unwrap();

    let snapshot = storage.snapshot();
    assert!(snapshot.l0_sstables.is_empty(), "L0 is compacted away");
    assert_eq!(snapshot.levels.len(), 1, "one level: {:?}", snapshot.levels);
    let (level, ids) = &snapshot.levels[0];
    assert_eq!(*level, 1);
    assert!(
        ids.len() >= 3,
        "the output is split by target size: {ids:?}"
    );
    assert_eq!(run_entries(&storage, ids), model_entries(&model));
    let mut listed: Vec<usize> = snapshot.sstables.keys().copied().collect();
    listed.sort_unstable();
    let mut expected_ids = ids.clone();
    expected_ids.sort_unstable();
    assert_eq!(listed, expected_ids, "the compacted SSTs leave the state");
    for table in &tables(&storage, ids)[..ids.len() - 1] {
        // The builder reached the target when the block before the last one was finished.
        let metas = &table.block_meta;
        let n = metas.len();
        assert!(
            metas[n - 1].offset >= TARGET && (n < 2 || metas[n - 2].offset < TARGET),
            "SST {} was not cut as soon as it reached {TARGET} bytes: block offsets {:?}",
            table.sst_id(),
            metas.iter().map(|m| m.offset).collect::<Vec<_>>()
        );
    }
    for i in 0..300 {
        assert_eq!(
            storage.get(&key(i)).unwrap().as_deref(),
            model.get(&key(i)).map(|v| &v[..])
        );
    }
    assert_eq!(
        collect_scan(&storage, Unbounded, Unbounded),
        model_entries(&model)
    );
}

/// When a level below holds data, a full compaction keeps the tombstones: they still hide the
/// older values below.
#[test]
fn test_task2_tombstones_kept_above_the_bottom() {
    let (_dir, storage) = open(options(1 << 20));
    for i in 0..100 {
        storage.put(&key(i), b"v1").unwrap();
    }
    flush_all(&storage);
    storage.force_full_compaction().unwrap();
    move_l1_to_l2(&storage);
    let l2 = storage.snapshot().levels[1].1.clone();
    for i in (0..100).step_by(3) {
        storage.delete(&key(i)).unwrap();
    }
    for i in (0..100).step_by(5) {
        storage.put(&key(i), b"v2").unwrap();
    }
    flush_all(&storage);
    storage.force_full_compaction().unwrap();

    let snapshot = storage.snapshot();
    assert_eq!(
        snapshot.levels[1],
        (2, l2),
        "L2 is not part of a full compaction"
    );
    let expected: Entries = (0..100)
        .filter(|i| i % 3 == 0 || i % 5 == 0)
        .map(|i| {
            let value: &[u8] = if i % 5 == 0 { b"v2" } else { b"" };
            (Bytes::from(key(i)), Bytes::copy_from_slice(value))
        })
        .collect();
    assert_eq!(run_entries(&storage, &snapshot.levels[0].1), expected);
    for i in 0..100 {
        let expected: Option<&[u8]> = match (i % 5, i % 3) {
            (0, _) => Some(b"v2"),
            (_, 0) => None,
            _ => Some(b"v1"),
        };
        assert_eq!(
            storage.get(&key(i)).unwrap().as_deref(),
            expected,
            "key {i}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Task 3: applying a level compaction to the shape

fn sst(first: &str, last: &str) -> SstInfo {
    SstInfo {
        size: 100,
        first_key: Bytes::copy_from_slice(first.as_bytes()),
        last_key: Bytes::copy_from_slice(last.as_bytes()),
    }
}

/// The output replaces exactly the inputs: compacted L0 SSTs leave while one flushed meanwhile
/// stays; the lower level keeps its other SSTs and stays in key order; a missing lower level is
/// created in level order; an empty output only removes.
#[test]
fn test_task3_apply_level_compaction_replaces_inputs_in_key_order() {
    let mut shape = LsmShape {
        l0_sstables: vec![9, 8, 7],
        levels: vec![(1, vec![1, 2, 3, 4]), (3, vec![5])],
        ..LsmShape::default()
    };
    for (id, first, last) in [
        (1, "a", "c"),
        (2, "d", "f"),
        (3, "g", "i"),
        (4, "j", "l"),
        (5, "a", "z"),
        (7, "d", "h"),
        (8, "e", "i"),
        (9, "a", "z"),
        (10, "d", "e"),
        (11, "f", "i"),
        (12, "j", "l"),
    ] {
        shape.sstables.insert(id, sst(first, last));
    }
    let task = LevelCompactionTask {
        upper_level: None,
        upper_level_sst_ids: vec![8, 7],
        lower_level: 1,
        lower_level_sst_ids: vec![2, 3],
        is_lower_level_bottom_level: false,
    };
    let next = apply_level_compaction(&shape, &task, &[10, 11]);
    assert_eq!(
        next.l0_sstables,
        vec![9],
        "SST 9 arrived during the compaction and stays"
    );
    assert_eq!(next.levels, vec![(1, vec![1, 10, 11, 4]), (3, vec![5])]);

    let task = LevelCompactionTask {
        upper_level: Some(1),
        upper_level_sst_ids: vec![4],
        lower_level: 2,
        lower_level_sst_ids: vec![],
        is_lower_level_bottom_level: false,
    };
    let after = apply_level_compaction(&next, &task, &[12]);
    assert_eq!(after.l0_sstables, vec![9]);
    assert_eq!(
        after.levels,
        vec![(1, vec![1, 10, 11]), (2, vec![12]), (3, vec![5])],
        "the missing L2 is created between L1 and L3"
    );

    let task = LevelCompactionTask {
        upper_level: Some(1),
        upper_level_sst_ids: vec![1, 10, 11],
        lower_level: 2,
        lower_level_sst_ids: vec![12],
        is_lower_level_bottom_level: false,
    };
    let emptied = apply_level_compaction(&after, &task, &[]);
    assert_eq!(emptied.levels, vec![(1, vec![]), (2, vec![]), (3, vec![5])]);
}

// ---------------------------------------------------------------------------------------------
// Task 4: installing, and obsolete files

/// A compaction installs onto the state as it is when it finishes: an L0 SST flushed while the
/// outputs were being built stays in L0, and building the outputs changed nothing by itself.
#[test]
fn test_task4_install_applies_to_the_current_state() {
    let (_dir, storage) = open(options(1 << 20));
    for (range, tag) in [(0..50, "a"), (25..75, "b")] {
        for i in range {
            storage.put(&key(i), tag.as_bytes()).unwrap();
        }
        flush_all(&storage);
    }
    let snapshot = storage.snapshot();
    let compacted = snapshot.l0_sstables.clone();
    assert_eq!(compacted.len(), 2);
    let task = CompactionTask::ForceFull(LevelCompactionTask {
        upper_level: None,
        upper_level_sst_ids: compacted.clone(),
        lower_level: 1,
        lower_level_sst_ids: Vec::new(),
        is_lower_level_bottom_level: true,
    });
    let outputs = storage.compact(&snapshot, &task).unwrap();
    let output_ids: Vec<usize> = outputs.iter().map(|t| t.sst_id()).collect();
    assert!(!outputs.is_empty());
    assert_eq!(
        storage.snapshot().l0_sstables,
        compacted,
        "building outputs installs nothing"
    );
    for i in 60..90 {
        storage.put(&key(i), b"c").unwrap();
    }
    flush_all(&storage);
    let newer = storage.snapshot().l0_sstables[0];
    storage
        .install_compaction(&storage.compaction_lock.lock(), &task, outputs)
        .unwrap();

    let state = storage.snapshot();
    assert_eq!(state.l0_sstables, vec![newer]);
    assert_eq!(state.levels, vec![(1, output_ids)]);
    assert!(compacted.iter().all(|id| !state.sstables.contains_key(id)));
    for i in 0..90 {
        let expected: &[u8] = match i {
            0..25 => b"a",
            25..60 => b"b",
            _ => b"c",
        };
        assert_eq!(
            storage.get(&key(i)).unwrap().as_deref(),
            Some(expected),
            "key {i}"
        );
    }
}

/// A compacted SST's file is deleted only once nothing reads it: a scan open across the
/// compaction keeps its SST's file and still reads every entry; once it is dropped, no file of a
/// compacted SST is left.
#[test]
fn test_task4_obsolete_files_deleted_after_the_last_reader() {
    let (dir, storage) = open(options(1 << 20));
    for range in [0..100, 100..200] {
        for i in range {
            storage.put(&key(i), format!("v{i}").as_bytes()).unwrap();
        }
        flush_all(&storage);
    }
    let old = storage.snapshot().l0_sstables.clone();
    let path = |id: usize| sst_path(dir.path(), id);
    assert!(old.iter().all(|id| path(*id).exists()));
    let mut scan = storage.scan(Included(&key(0)), Included(&key(50))).unwrap();
    assert_eq!(scan.key(), &key(0)[..]);
    storage.force_full_compaction().unwrap();
    let holder = old[1]; // The older SST holds keys 0..100.
    assert!(path(holder).exists(), "deleted while a scan still reads it");
    let mut rest = vec![(Bytes::from(key(0)), Bytes::from("v0"))];
    scan.next().unwrap();
    rest.extend(drain(&mut scan, |it| Bytes::copy_from_slice(it.key())));
    let expected: Entries = (0..=50)
        .map(|i| (Bytes::from(key(i)), Bytes::from(format!("v{i}"))))
        .collect();
    assert_eq!(rest, expected);
    drop(scan);
    for id in &old {
        assert!(
            !path(*id).exists(),
            "the file of compacted SST {id} is left behind"
        );
    }
    for id in &storage.snapshot().levels[0].1 {
        assert!(path(*id).exists(), "output SST {id} has no file");
    }
    assert_eq!(
        storage.get(&key(150)).unwrap().as_deref(),
        Some(&b"v150"[..])
    );
}

// ---------------------------------------------------------------------------------------------
// Task 5: reading through the levels

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Scan bounds.
type Range<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// L2 holds keys 0..400, L1 the even ones (newer values), L0 one SST of keys 100..110 (newest),
/// with SSTs of about 1 KiB and an empty memtable.
fn three_levels() -> (TempDir, LsmStorageInner, Model) {
    let (dir, storage) = open(options(1024));
    let mut model = Model::new();
    let mut write = |range: std::iter::StepBy<std::ops::Range<usize>>, tag: &str| {
        for i in range {
            let value = format!("{tag}-value-{i:05}").into_bytes();
            storage.put(&key(i), &value).unwrap();
            model.insert(key(i), value);
        }
        flush_all(&storage);
    };
    write((0..400).step_by(1), "level2");
    storage.force_full_compaction().unwrap();
    move_l1_to_l2(&storage);
    write((0..400).step_by(2), "level1");
    storage.force_full_compaction().unwrap();
    write((100..110).step_by(1), "level0");
    let snapshot = storage.snapshot();
    assert_eq!(snapshot.l0_sstables.len(), 1);
    assert!(
        snapshot.levels.iter().all(|(_, ids)| ids.len() >= 3),
        "{:?}",
        snapshot.levels
    );
    (dir, storage, model)
}

/// Every SST of the engine: L0 first, then each level.
fn every_table(storage: &LsmStorageInner) -> Vec<Arc<SsTable>> {
    let snapshot = storage.snapshot();
    let mut ids = snapshot.l0_sstables.clone();
    ids.extend(snapshot.levels.iter().flat_map(|(_, ids)| ids.clone()));
    tables(storage, &ids)
}

/// Whether `lower..upper` meets `first..=last`.
fn overlaps(lower: Bound<&[u8]>, upper: Bound<&[u8]>, first: &[u8], last: &[u8]) -> bool {
    let after_upper = match upper {
        Included(u) => first > u,
        Excluded(u) => first >= u,
        Unbounded => false,
    };
    let before_lower = match lower {
        Included(l) => last < l,
        Excluded(l) => last <= l,
        Unbounded => false,
    };
    !after_upper && !before_lower
}

/// `get` finds the newest version across the memtable, L0, L1 and L2: a tombstone in a higher
/// level hides the values below it.
#[test]
fn test_task5_get_finds_the_newest_version_across_levels() {
    let (_dir, storage, mut model) = three_levels();
    for i in (0..400).step_by(7) {
        storage.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
    flush_all(&storage);
    storage.force_full_compaction().unwrap(); // L0 and L1 into L1; L2 keeps older values.
    for i in (0..400).step_by(11) {
        storage.put(&key(i), b"memtable").unwrap();
        model.insert(key(i), b"memtable".to_vec());
    }
    for i in (3..400).step_by(13) {
        storage.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
    for i in 0..=400 {
        let expected = model.get(&key(i)).map(|v| &v[..]);
        assert_eq!(
            storage.get(&key(i)).unwrap().as_deref(),
            expected,
            "key {i}"
        );
    }
    assert_eq!(
        collect_scan(&storage, Unbounded, Unbounded),
        model_entries(&model)
    );
}

/// `get` reads no block of an SST whose key range cannot hold the key, in L0 and in the levels,
/// and still finds keys at the very first and last key of an SST.
#[test]
fn test_task5_get_skips_ssts_out_of_range() {
    let (_dir, storage, model) = three_levels();
    let all = every_table(&storage);
    let mut probes: Vec<Vec<u8>> = vec![b"".to_vec(), b"a".to_vec(), b"z".to_vec(), key(400)];
    for table in &all {
        let last = table.last_key().raw_ref().to_vec();
        probes.push(table.first_key().raw_ref().to_vec());
        probes.push([&last[..], b"\x00"].concat());
        probes.push(last);
    }
    for probe in probes {
        let before = reads(&all);
        let value = storage.get(&probe).unwrap();
        assert_eq!(value.as_deref(), model.get(&probe).map(|v| &v[..]));
        for (table, was) in all.iter().zip(before) {
            let holds = table.first_key().raw_ref() <= &probe[..]
                && &probe[..] <= table.last_key().raw_ref();
            assert!(
                holds || table.block_reads() == was,
                "get {:?} read a block of SST {} ({:?}..={:?}), which cannot hold it",
                Bytes::from(probe.clone()),
                table.sst_id(),
                table.first_key(),
                table.last_key()
            );
        }
    }
}

/// A scan opens one iterator per L0 SST and per level whose SSTs meet its range, and reads no
/// block of an SST that does not: `num_active_iterators` counts exactly those, at the edges too.
#[test]
fn test_task5_scan_skips_ssts_out_of_range() {
    let (_dir, storage, model) = three_levels();
    let snapshot = storage.snapshot();
    let all = every_table(&storage);
    let l1 = tables(&storage, &snapshot.levels[0].1);
    let (t, u) = (&l1[1], &l1[2]);
    let (t_first, t_last) = (t.first_key().raw_ref(), t.last_key().raw_ref());
    let u_first = u.first_key().raw_ref();
    let (k105, k107) = (key(105), key(107));
    let cases: Vec<Range> = vec![
        (Included(t_first), Included(t_last)),
        (Excluded(t_last), Excluded(u_first)),
        (Included(t_last), Included(u_first)),
        (Unbounded, Excluded(l1[0].first_key().raw_ref())),
        (Included(&k105), Included(&k107)),
        (Excluded(&k105), Excluded(&k107)),
        (Included(b"z"), Unbounded),
        (Unbounded, Included(b"a")),
        (Unbounded, Unbounded),
    ];
    for (lower, upper) in cases {
        let before = reads(&all);
        let mut expected_active = snapshot
            .l0_sstables
            .iter()
            .filter(|id| {
                let t = snapshot.table(**id).unwrap();
                overlaps(
                    lower,
                    upper,
                    t.first_key().raw_ref(),
                    t.last_key().raw_ref(),
                )
            })
            .count();
        for (_, ids) in &snapshot.levels {
            expected_active += usize::from(ids.iter().any(|id| {
                let t = snapshot.table(*id).unwrap();
                overlaps(
                    lower,
                    upper,
                    t.first_key().raw_ref(),
                    t.last_key().raw_ref(),
                )
            }));
        }
        let mut iter = storage.scan(lower, upper).unwrap();
        assert_eq!(
            iter.num_active_iterators(),
            expected_active,
            "scan({lower:?}, {upper:?}): iterators over L0 SSTs and levels\n{}",
            storage.dump()
        );
        let entries = drain(&mut iter, |it| Bytes::copy_from_slice(it.key()));
        let expected: Entries = model_entries(&model)
            .into_iter()
            .filter(|(k, _)| overlaps(lower, upper, k, k))
            .collect();
        assert_eq!(entries, expected, "scan({lower:?}, {upper:?})");
        for (table, was) in all.iter().zip(before) {
            let meets = overlaps(
                lower,
                upper,
                table.first_key().raw_ref(),
                table.last_key().raw_ref(),
            );
            assert!(
                meets || table.block_reads() == was,
                "scan({lower:?}, {upper:?}) read a block of SST {}, out of its range",
                table.sst_id()
            );
        }
    }
    let prefixed = collect_run_prefix(&storage, b"key001");
    let expected: Entries = model_entries(&model)
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"key001"))
        .collect();
    assert_eq!(prefixed, expected, "scan_prefix through the levels");
}

fn collect_run_prefix(storage: &LsmStorageInner, prefix: &[u8]) -> Entries {
    let mut iter = storage.scan_prefix(prefix).unwrap();
    drain(&mut iter, |it| Bytes::copy_from_slice(it.key()))
}

// ---------------------------------------------------------------------------------------------
// Randomized, against a model

/// One step of the randomized test; keys and values are numbers, so that a repro can be pasted.
#[derive(Debug, Clone)]
enum Op {
    Put(usize, usize),
    Delete(usize),
    Get(usize),
    Scan(Bound<usize>, Bound<usize>),
    Flush,
    FullCompaction,
    /// [`move_l1_to_l2`], when L2 is empty.
    MoveDown,
}

/// SplitMix64, so that the test needs no `rand`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn random_ops(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    let bound = |rng: &mut Rng| match rng.below(3) {
        0 => Included(rng.below(150)),
        1 => Excluded(rng.below(150)),
        _ => Unbounded,
    };
    (0..n)
        .map(|version| match rng.below(100) {
            0..=44 => Op::Put(rng.below(150), version),
            45..=59 => Op::Delete(rng.below(150)),
            60..=79 => Op::Get(rng.below(150)),
            80..=89 => Op::Scan(bound(&mut rng), bound(&mut rng)),
            90..=94 => Op::Flush,
            95..=97 => Op::FullCompaction,
            _ => Op::MoveDown,
        })
        .collect()
}

/// Runs `ops` on a fresh engine and the model; the first failure, with its index.
fn run_ops(ops: &[Op]) -> Result<(), String> {
    let (_dir, storage) = open(options(256));
    let mut model = Model::new();
    let key_bound = |b: &Bound<usize>| b.map(key);
    for (at, op) in ops.iter().enumerate() {
        let fail = |what: String| Err(format!("op #{at} {op:?}: {what}"));
        match op {
            Op::Put(k, v) => {
                let value = format!("value{v}").into_bytes();
                storage.put(&key(*k), &value).unwrap();
                model.insert(key(*k), value);
            }
            Op::Delete(k) => {
                storage.delete(&key(*k)).unwrap();
                model.remove(&key(*k));
            }
            Op::Get(k) => {
                let got = storage.get(&key(*k)).unwrap();
                if got.as_deref() != model.get(&key(*k)).map(|v| &v[..]) {
                    return fail(format!("got {got:?}"));
                }
            }
            Op::Scan(lower, upper) => {
                let (lower, upper) = (key_bound(lower), key_bound(upper));
                let (lower, upper) = (
                    lower.as_ref().map(|k| &k[..]),
                    upper.as_ref().map(|k| &k[..]),
                );
                let got = collect_scan(&storage, lower, upper);
                let expected: Entries = model_entries(&model)
                    .into_iter()
                    .filter(|(k, _)| overlaps(lower, upper, k, k))
                    .collect();
                if got != expected {
                    return fail(format!("got {got:?}\nexpected {expected:?}"));
                }
            }
            Op::Flush => flush_all(&storage),
            Op::FullCompaction => storage.force_full_compaction().unwrap(),
            Op::MoveDown => {
                let levels = storage.snapshot().levels.clone();
                if levels.len() == 1 && !levels[0].1.is_empty() {
                    move_l1_to_l2(&storage);
                }
            }
        }
    }
    Ok(())
}

/// The seed: `MINI_LSM_SEED` to replay a failure, else the clock; printed first.
fn test_seed() -> u64 {
    let seed = std::env::var("MINI_LSM_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        },
        |s| {
            s.trim()
                .parse()
                .expect("MINI_LSM_SEED must be an unsigned integer")
        },
    );
    println!("seed = {seed} (replay with MINI_LSM_SEED={seed})");
    seed
}

/// Random puts, deletes, gets, scans, flushes, full compactions and moves of L1 to L2 agree with
/// a `BTreeMap`; a failure prints the seed and a shrunk list of operations to paste.
#[test]
fn test_task5_randomized_with_full_compactions_against_model() {
    let seed = test_seed();
    let ops = random_ops(seed, 1500);
    if run_ops(&ops).is_ok() {
        return;
    }
    // Shrink: drop chunks of operations while the run still fails, for at most 20 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut ops = ops;
    let mut chunk = ops.len() / 2;
    while chunk > 0 && std::time::Instant::now() < deadline {
        let mut at = 0;
        while at < ops.len() && std::time::Instant::now() < deadline {
            let candidate: Vec<Op> = ops[..at]
                .iter()
                .chain(ops[(at + chunk).min(ops.len())..].iter())
                .cloned()
                .collect();
            if run_ops(&candidate).is_err() {
                ops = candidate;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    let message = run_ops(&ops).expect_err("the shrunk operations fail");
    panic!(
        "seed {seed}: {message}\nshrunk to {} operations; paste into a test:\n    use Op::*; use std::ops::Bound::*;\n    run_ops(&{ops:?}).unwrap();",
        ops.len()
    );
}
