// SPDX-License-Identifier: Apache-2.0
//! Week 1 day 5: the read path over memtables and L0 SSTs. The engine cannot flush yet (that is
//! day 6), so these tests install SSTs by hand: `install_sst_from_oldest_imm` in the harness.

use std::ops::Bound::{Excluded, Included, Unbounded};

use crate::iterators::two_merge_iterator::TwoMergeIterator;
use crate::iterators::StorageIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use crate::table::sst_path;

use super::harness::{
    bytes_of, check_internal_iter, check_iter_result, freeze_and_install, open_engine,
    randomized_model_test, MockIterator, OpMix,
};

/// `TwoMergeIterator` yields `a`'s entry on equal keys. Catches: a merge keeping the oldest value.
#[test]
fn test_task1_two_merge_prefers_a() {
    let a = MockIterator::new(&[(b"a", b"a-new"), (b"c", b"c-new"), (b"d", b"")]);
    let b = MockIterator::new(&[
        (b"b", b"b-old"),
        (b"c", b"c-old"),
        (b"d", b"d-old"),
        (b"e", b"e-old"),
    ]);
    let mut merged = TwoMergeIterator::create(a, b).unwrap();
    check_internal_iter(
        &mut merged,
        &[
            (b"a", b"a-new"),
            (b"b", b"b-old"),
            (b"c", b"c-new"),
            (b"d", b""),
            (b"e", b"e-old"),
        ],
    );

    // Equal first keys: `b`'s version must be skipped from the start.
    let a = MockIterator::new(&[(b"x", b"new")]);
    let b = MockIterator::new(&[(b"x", b"old"), (b"y", b"old")]);
    let mut merged = TwoMergeIterator::create(a, b).unwrap();
    check_internal_iter(&mut merged, &[(b"x", b"new"), (b"y", b"old")]);
}

/// `TwoMergeIterator` with an empty side yields the other side, or nothing.
#[test]
fn test_task1_two_merge_empty_sides() {
    let entries: &[(&[u8], &[u8])] = &[(b"a", b"1"), (b"b", b"2")];
    let mut merged =
        TwoMergeIterator::create(MockIterator::new(&[]), MockIterator::new(entries)).unwrap();
    check_internal_iter(&mut merged, entries);
    let mut merged =
        TwoMergeIterator::create(MockIterator::new(entries), MockIterator::new(&[])).unwrap();
    check_internal_iter(&mut merged, entries);
    let merged = TwoMergeIterator::create(MockIterator::new(&[]), MockIterator::new(&[])).unwrap();
    assert!(!merged.is_valid());
}

/// `TwoMergeIterator` returns either side's error. Catches: an iterator that swallows an error.
#[test]
fn test_task1_two_merge_returns_errors() {
    let a = MockIterator::new(&[(b"x", b"new")]);
    let b = MockIterator::new(&[(b"x", b"old"), (b"y", b"old")]).failing_on_next(1);
    assert!(
        TwoMergeIterator::create(a, b).is_err(),
        "b failed while skipping x in create"
    );

    let a = MockIterator::new(&[(b"a", b"1"), (b"c", b"1")]).failing_on_next(1);
    let b = MockIterator::new(&[(b"b", b"2")]);
    let mut merged = TwoMergeIterator::create(a, b).unwrap();
    assert_eq!(merged.key().raw_ref(), b"a");
    assert!(merged.next().is_err(), "a failed on its first next");

    let a = MockIterator::new(&[(b"a", b"1"), (b"c", b"1")]);
    let b = MockIterator::new(&[(b"b", b"2"), (b"c", b"2"), (b"d", b"2")]).failing_on_next(2);
    let mut merged = TwoMergeIterator::create(a, b).unwrap();
    merged.next().unwrap();
    assert_eq!(merged.key().raw_ref(), b"b");
    assert!(
        merged.next().is_err(),
        "b failed while skipping its c, which a's c shadows"
    );
}

/// Sets up: SST 1 (oldest) `a..f`, SST 2 deletes and overwrites some, and the memtable on top.
fn layered_engine() -> (tempfile::TempDir, LsmStorageInner) {
    let (dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    for key in [b"a", b"b", b"c", b"d", b"e", b"f"] {
        storage.put(key, &[key[0], b'1']).unwrap();
    }
    freeze_and_install(&storage);
    storage.put(b"b", b"b2").unwrap();
    storage.delete(b"c").unwrap();
    storage.delete(b"d").unwrap();
    storage.put(b"g", b"g2").unwrap();
    freeze_and_install(&storage);
    storage.put(b"d", b"d3").unwrap();
    storage.delete(b"e").unwrap();
    storage.put(b"h", b"h3").unwrap();
    assert_eq!(storage.snapshot().l0_sstables.len(), 2);
    (dir, storage)
}

/// `get` reads memtables, then L0 newest first, tombstones included. Catches: oldest-first L0.
#[test]
fn test_task2_get_reads_l0_newest_first() {
    let (_dir, storage) = layered_engine();
    let get = |key: &[u8]| storage.get(key).unwrap();
    assert_eq!(get(b"a"), Some(bytes_of(b"a1")), "only in the oldest SST");
    assert_eq!(get(b"b"), Some(bytes_of(b"b2")), "the newer SST wins");
    assert_eq!(
        get(b"c"),
        None,
        "a tombstone in the newer SST hides the older value"
    );
    assert_eq!(
        get(b"d"),
        Some(bytes_of(b"d3")),
        "the memtable wins over a tombstone"
    );
    assert_eq!(
        get(b"e"),
        None,
        "a tombstone in the memtable hides an SST value"
    );
    assert_eq!(get(b"f"), Some(bytes_of(b"f1")));
    assert_eq!(get(b"g"), Some(bytes_of(b"g2")));
    assert_eq!(get(b"h"), Some(bytes_of(b"h3")));
    assert_eq!(get(b"0"), None, "before every key");
    assert_eq!(get(b"cc"), None, "between keys");
    assert_eq!(get(b"z"), None, "after every key");
}

/// Scans over SSTs honour bounds. Catches: an ignored upper bound, an excluded lower bound.
#[test]
fn test_task3_scan_memtables_and_ssts() {
    let (_dir, storage) = layered_engine();
    let scan = |lower, upper| storage.scan(lower, upper).unwrap();
    check_iter_result(
        &mut scan(Unbounded, Unbounded),
        &[
            (b"a", b"a1"),
            (b"b", b"b2"),
            (b"d", b"d3"),
            (b"f", b"f1"),
            (b"g", b"g2"),
            (b"h", b"h3"),
        ],
    );
    // `b` is in both SSTs, `f` only in the oldest.
    check_iter_result(&mut scan(Excluded(b"b"), Excluded(b"f")), &[(b"d", b"d3")]);
    check_iter_result(
        &mut scan(Included(b"b"), Included(b"f")),
        &[(b"b", b"b2"), (b"d", b"d3"), (b"f", b"f1")],
    );
    check_iter_result(&mut scan(Excluded(b"a"), Included(b"b")), &[(b"b", b"b2")]);
    check_iter_result(&mut scan(Unbounded, Excluded(b"b")), &[(b"a", b"a1")]);
    check_iter_result(
        &mut scan(Excluded(b"f"), Unbounded),
        &[(b"g", b"g2"), (b"h", b"h3")],
    );
    check_iter_result(
        &mut scan(Included(b"bb"), Excluded(b"ff")),
        &[(b"d", b"d3"), (b"f", b"f1")],
    );
    check_iter_result(&mut scan(Included(b"c"), Included(b"c")), &[]);
    check_iter_result(&mut scan(Excluded(b"h"), Unbounded), &[]);
}

/// Damages the entry count of block `idx` of SST `id` on disk (it must not be cached yet).
fn damage_block(storage: &LsmStorageInner, id: usize, idx: usize) {
    let snapshot = storage.snapshot();
    let table = snapshot.table(id).unwrap();
    let end = table
        .block_meta
        .get(idx + 1)
        .map_or(table.block_meta_offset, |next| next.offset);
    let path = sst_path(storage.path(), id);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[end - 2..end].copy_from_slice(&[0, 0]);
    std::fs::write(&path, bytes).unwrap();
}

/// `get` of a key in a corrupt SST block is an error naming the file, never `None`.
#[test]
fn test_task2_get_reports_corrupt_block() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    for i in 0..500 {
        storage
            .put(format!("key{i:03}").as_bytes(), b"some value")
            .unwrap();
    }
    let id = freeze_and_install(&storage);
    assert!(storage.snapshot().table(id).unwrap().num_of_blocks() >= 2);
    damage_block(&storage, id, 0);
    let error = storage
        .get(b"key000")
        .expect_err("a corrupt block must give an error");
    let path = sst_path(storage.path(), id).display().to_string();
    assert!(
        format!("{error:#}").contains(&path),
        "the error must name the file: {error:#}"
    );
}

/// A corrupt block mid-scan fails `next` for good. Catches: an iterator that swallows an error.
#[test]
fn test_task3_scan_returns_block_error() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    for i in 0..500 {
        storage
            .put(format!("key{i:03}").as_bytes(), b"some value")
            .unwrap();
    }
    let id = freeze_and_install(&storage);
    storage.put(b"key000", b"in the memtable").unwrap();
    damage_block(&storage, id, 1);
    let mut iter = storage.scan(Unbounded, Unbounded).unwrap();
    let mut seen = 0;
    let error = loop {
        assert!(
            iter.is_valid(),
            "the scan ended after {seen} entries without an error"
        );
        seen += 1;
        if let Err(e) = iter.next() {
            break e;
        }
    };
    let path = sst_path(storage.path(), id).display().to_string();
    assert!(
        format!("{error:#}").contains(&path),
        "the error must name the file: {error:#}"
    );
    assert!(!iter.is_valid(), "a failed scan must be invalid");
    assert!(iter.next().is_err(), "a failed scan must keep failing");

    let snapshot = storage.snapshot();
    let block_1 = snapshot.table(id).unwrap().block_meta[1].first_key.clone();
    let fresh = storage.scan(Included(block_1.raw_ref()), Unbounded);
    assert!(
        fresh.is_err(),
        "a scan starting in a corrupt block must fail to start"
    );
}

/// Random operations, freezes and hand-built SSTs agree with a `BTreeMap`.
#[test]
fn test_task3_randomized_against_model() {
    randomized_model_test(
        3000,
        OpMix {
            install_sst: true,
            flush: false,
        },
    );
}
