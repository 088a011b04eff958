// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 1: the concat iterator, full compaction, installing its result, obsolete files,
//! and reads through the levels.

use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::Arc;

use bytes::Bytes;
use tempfile::TempDir;

use super::harness::compaction::{
    every_table, flush_all, key, level_task, meets, move_l1_to_l2, randomized_against_model,
    run_entries, tables, OpMix,
};
use super::harness::{
    bytes_of, collect_internal, collect_user, model_scan, open_engine, scan_all, show_bound, Model,
};
use crate::compact::{
    apply_level_compaction, CompactionOptions, CompactionTask, LsmShape, SstInfo,
};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::StorageIterator;
use crate::key::KeySlice;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use crate::table::{sst_path, SsTable, SsTableBuilder};

// ---------------------------------------------------------------------------------------------
// Helpers of this chapter (those shared with the other compaction chapters are in the harness,
// `harness_compaction.rs`)

type Entries = Vec<(Bytes, Bytes)>;

/// No compaction strategy, 128-byte blocks, SSTs of `target_sst_size` bytes, and no block cache,
/// so that every block read shows in `block_reads`.
fn options(target_sst_size: usize) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week2_test(CompactionOptions::NoCompaction);
    options.block_size = 128;
    options.target_sst_size = target_sst_size;
    options.block_cache_bytes = 0;
    options
}

/// Every entry of the model.
fn model_entries(model: &Model) -> Entries {
    model_scan(model, Unbounded, Unbounded)
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
    assert_eq!(collect_internal(&mut first).unwrap(), all);
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
        assert_eq!(
            collect_internal(&mut iter).unwrap(),
            expected,
            "seek {probe:?}"
        );
    }

    // Lazy: a seek into the second SST reads none of the others until it gets to the third.
    let before = reads(&ssts);
    let mut iter =
        SstConcatIterator::create_and_seek_to_key(ssts.clone(), KeySlice::from_slice(b"k031"))
            .unwrap();
    for _ in 31..39 {
        iter.next().unwrap();
    }
    assert_eq!(bytes_of(iter.key().raw_ref()), bytes_of(b"k039"));
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
    assert_eq!(bytes_of(iter.key().raw_ref()), bytes_of(b"k050"));
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
    let (_dir, storage) = open_engine(options(TARGET));
    let mut model = Model::new();
    for round in 0..3 {
        for i in (0..300).step_by(round + 1) {
            let value = format!("round{round}-value{i:05}").into_bytes();
            storage.put(&key(i), &value).unwrap();
            model.insert(key(i).into(), value.into());
        }
        for i in (round..300).step_by(7) {
            storage.delete(&key(i)).unwrap();
            model.remove(&key(i)[..]);
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
            storage.get(&key(i)).unwrap(),
            model.get(&key(i)[..]).map(bytes_of)
        );
    }
    assert_eq!(
        scan_all(&storage, Unbounded, Unbounded),
        model_entries(&model)
    );
}

/// When a level below holds data, a full compaction keeps the tombstones: they still hide the
/// older values below.
#[test]
fn test_task2_tombstones_kept_above_the_bottom() {
    let (_dir, storage) = open_engine(options(1 << 20));
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
        let expected = match (i % 5, i % 3) {
            (0, _) => Some(bytes_of(b"v2")),
            (_, 0) => None,
            _ => Some(bytes_of(b"v1")),
        };
        assert_eq!(storage.get(&key(i)).unwrap(), expected, "key {i}");
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
    let task = level_task(None, &[8, 7], 1, &[2, 3], false);
    let next = apply_level_compaction(&shape, &task, &[10, 11]);
    assert_eq!(
        next.l0_sstables,
        vec![9],
        "SST 9 arrived during the compaction and stays"
    );
    assert_eq!(next.levels, vec![(1, vec![1, 10, 11, 4]), (3, vec![5])]);

    let task = level_task(Some(1), &[4], 2, &[], false);
    let after = apply_level_compaction(&next, &task, &[12]);
    assert_eq!(after.l0_sstables, vec![9]);
    assert_eq!(
        after.levels,
        vec![(1, vec![1, 10, 11]), (2, vec![12]), (3, vec![5])],
        "the missing L2 is created between L1 and L3"
    );

    let task = level_task(Some(1), &[1, 10, 11], 2, &[12], false);
    let emptied = apply_level_compaction(&after, &task, &[]);
    assert_eq!(emptied.levels, vec![(1, vec![]), (2, vec![]), (3, vec![5])]);
}

// ---------------------------------------------------------------------------------------------
// Task 4: installing, and obsolete files

/// A compaction installs onto the state as it is when it finishes: an L0 SST flushed while the
/// outputs were being built stays in L0, and building the outputs changed nothing by itself.
#[test]
fn test_task4_install_applies_to_the_current_state() {
    let (_dir, storage) = open_engine(options(1 << 20));
    for (range, tag) in [(0..50, "a"), (25..75, "b")] {
        for i in range {
            storage.put(&key(i), tag.as_bytes()).unwrap();
        }
        flush_all(&storage);
    }
    let snapshot = storage.snapshot();
    let compacted = snapshot.l0_sstables.clone();
    assert_eq!(compacted.len(), 2);
    let task = CompactionTask::ForceFull(level_task(None, &compacted, 1, &[], true));
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
    let (dir, storage) = open_engine(options(1 << 20));
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
    assert_eq!(bytes_of(scan.key()), bytes_of(key(0)));
    storage.force_full_compaction().unwrap();
    let holder = old[1]; // The older SST holds keys 0..100.
    assert!(path(holder).exists(), "deleted while a scan still reads it");
    let mut rest = vec![(Bytes::from(key(0)), Bytes::from("v0"))];
    scan.next().unwrap();
    rest.extend(collect_user(&mut scan).unwrap());
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
    assert_eq!(storage.get(&key(150)).unwrap(), Some(bytes_of(b"v150")));
}

// ---------------------------------------------------------------------------------------------
// Task 5: reading through the levels

/// Scan bounds.
type Range<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// L2 holds keys 0..400, L1 the even ones (newer values), L0 one SST of keys 104..108 (newest),
/// with SSTs of about 1 KiB and an empty memtable. (Four entries fit one 1 KiB memtable even
/// when its size counts a hundred-odd bytes of overhead per entry.)
fn three_levels() -> (TempDir, LsmStorageInner, Model) {
    let (dir, storage) = open_engine(options(1024));
    let mut model = Model::new();
    let mut write = |range: std::iter::StepBy<std::ops::Range<usize>>, tag: &str| {
        for i in range {
            let value = format!("{tag}-value-{i:05}").into_bytes();
            storage.put(&key(i), &value).unwrap();
            model.insert(key(i).into(), value.into());
        }
        flush_all(&storage);
    };
    write((0..400).step_by(1), "level2");
    storage.force_full_compaction().unwrap();
    move_l1_to_l2(&storage);
    write((0..400).step_by(2), "level1");
    storage.force_full_compaction().unwrap();
    write((104..108).step_by(1), "level0");
    let snapshot = storage.snapshot();
    assert_eq!(snapshot.l0_sstables.len(), 1);
    assert!(
        snapshot.levels.iter().all(|(_, ids)| ids.len() >= 3),
        "{:?}",
        snapshot.levels
    );
    (dir, storage, model)
}

/// `get` finds the newest version across the memtable, L0, L1 and L2: a tombstone in a higher
/// level hides the values below it.
#[test]
fn test_task5_get_finds_the_newest_version_across_levels() {
    let (_dir, storage, mut model) = three_levels();
    for i in (0..400).step_by(7) {
        storage.delete(&key(i)).unwrap();
        model.remove(&key(i)[..]);
    }
    flush_all(&storage);
    storage.force_full_compaction().unwrap(); // L0 and L1 into L1; L2 keeps older values.
    for i in (0..400).step_by(11) {
        storage.put(&key(i), b"memtable").unwrap();
        model.insert(key(i).into(), Bytes::from_static(b"memtable"));
    }
    for i in (3..400).step_by(13) {
        storage.delete(&key(i)).unwrap();
        model.remove(&key(i)[..]);
    }
    for i in 0..=400 {
        let expected = model.get(&key(i)[..]).cloned();
        assert_eq!(storage.get(&key(i)).unwrap(), expected, "key {i}");
    }
    assert_eq!(
        scan_all(&storage, Unbounded, Unbounded),
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
        assert_eq!(value, model.get(&probe[..]).map(bytes_of));
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
        let meets_id = |id: &usize| meets(lower, upper, snapshot.table(*id).unwrap());
        let l0 = snapshot.l0_sstables.iter().filter(|id| meets_id(id));
        let levels = snapshot
            .levels
            .iter()
            .filter(|(_, ids)| ids.iter().any(meets_id));
        let expected_active = l0.count() + levels.count();
        let mut iter = storage.scan(lower, upper).unwrap();
        assert_eq!(
            iter.num_active_iterators(),
            expected_active,
            "scan({}, {}): iterators over L0 SSTs and levels\n{}",
            show_bound(lower),
            show_bound(upper),
            storage.dump()
        );
        let entries = collect_user(&mut iter).unwrap();
        let expected = model_scan(&model, lower, upper);
        assert_eq!(
            entries,
            expected,
            "scan({}, {})",
            show_bound(lower),
            show_bound(upper)
        );
        for (table, was) in all.iter().zip(before) {
            assert!(
                meets(lower, upper, table) || table.block_reads() == was,
                "scan({}, {}) read a block of SST {}, out of its range",
                show_bound(lower),
                show_bound(upper),
                table.sst_id()
            );
        }
    }
    let prefixed = collect_user(&mut storage.scan_prefix(b"key001").unwrap()).unwrap();
    let expected: Entries = model_entries(&model)
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"key001"))
        .collect();
    assert_eq!(prefixed, expected, "scan_prefix through the levels");
}

// ---------------------------------------------------------------------------------------------
// Randomized, against a model

/// Random puts, deletes, gets, scans, flushes, full compactions and moves of L1 to L2 agree with
/// a `BTreeMap`; a failure prints the seed and a shrunk list of operations to paste.
#[test]
fn test_task5_randomized_with_full_compactions_against_model() {
    let mix = OpMix {
        put: 45,
        delete: 15,
        get: 20,
        scan: 10,
        flush: 5,
        compact: 0,
        full_compaction: 3,
        move_down: 2,
    };
    randomized_against_model(1500, mix, &[("options(256)".into(), options(256))]);
}
