// SPDX-License-Identifier: Apache-2.0
//! Week 1 day 1: the memtable, and writing and reading through the engine's memtables.

use crate::lsm_storage::LsmStorageOptions;
use crate::mem_table::MemTable;

use super::harness::{bytes_of, freeze, open_engine};

/// A memtable returns the latest value, the empty value for a tombstone, `None` for unseen keys.
#[test]
fn test_task1_memtable_get_put() {
    let memtable = MemTable::create(0);
    memtable.put(b"key1", b"value1").unwrap();
    memtable.put(b"key2", b"value2").unwrap();
    memtable.put(b"key3", b"value3").unwrap();
    assert_eq!(memtable.get(b"key1"), Some(bytes_of(b"value1")));
    assert_eq!(memtable.get(b"key2"), Some(bytes_of(b"value2")));
    assert_eq!(memtable.get(b"key3"), Some(bytes_of(b"value3")));
    assert_eq!(memtable.get(b"key4"), None);
    assert_eq!(
        memtable.get(b"key"),
        None,
        "a prefix of a key is another key"
    );

    memtable.put(b"key1", b"value1-new").unwrap();
    memtable.put(b"key2", b"").unwrap();
    assert_eq!(memtable.get(b"key1"), Some(bytes_of(b"value1-new")));
    assert_eq!(
        memtable.get(b"key2"),
        Some(bytes_of(b"")),
        "a tombstone is stored as the empty value, not removed"
    );
    memtable.put(b"", b"empty key").unwrap();
    assert_eq!(memtable.get(b""), Some(bytes_of(b"empty key")));
}

/// `approximate_size` starts at 0, grows with every put and covers all key and value bytes put.
#[test]
fn test_task1_memtable_approximate_size() {
    let memtable = MemTable::create(0);
    assert_eq!(memtable.approximate_size(), 0);
    let mut put_bytes = 0;
    let mut last = 0;
    for i in 0..100 {
        let (key, value) = (format!("key{i}"), format!("value{}", i * 7));
        memtable.put(key.as_bytes(), value.as_bytes()).unwrap();
        put_bytes += key.len() + value.len();
        let size = memtable.approximate_size();
        assert!(size > last, "the size did not grow after put #{i}");
        assert!(
            size >= put_bytes,
            "size {size} is below the {put_bytes} bytes put"
        );
        last = size;
    }
    memtable.put(b"key0", b"x").unwrap();
    assert!(
        memtable.approximate_size() >= last,
        "an overwrite shrank the size"
    );
}

/// Engine puts and deletes read back; a deleted key reads `None` and can be written again.
#[test]
fn test_task2_storage_put_get_delete() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    assert_eq!(storage.get(b"0").unwrap(), None);
    storage.put(b"1", b"apple").unwrap();
    storage.put(b"2", b"banana").unwrap();
    storage.put(b"3", b"cherry").unwrap();
    assert_eq!(storage.get(b"1").unwrap(), Some(bytes_of(b"apple")));
    assert_eq!(storage.get(b"2").unwrap(), Some(bytes_of(b"banana")));
    assert_eq!(storage.get(b"3").unwrap(), Some(bytes_of(b"cherry")));
    storage.delete(b"2").unwrap();
    assert_eq!(storage.get(b"2").unwrap(), None);
    storage.delete(b"0").unwrap(); // Deleting an absent key is fine.
    assert_eq!(storage.get(b"0").unwrap(), None);
    storage.put(b"2", b"again").unwrap();
    assert_eq!(storage.get(b"2").unwrap(), Some(bytes_of(b"again")));
    assert!(
        storage.put(b"4", b"").is_err(),
        "an empty value is a tombstone: put must refuse it"
    );
    assert_eq!(storage.get(b"4").unwrap(), None);
    let memtable = storage.snapshot().memtable.clone();
    assert_eq!(
        memtable.get(b"2"),
        Some(bytes_of(b"again")),
        "writes land in the mutable memtable"
    );
}

/// A freeze moves the memtable, intact, to the front of `imm_memtables` and starts an empty one.
#[test]
fn test_task3_force_freeze() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    storage.put(b"a", b"1").unwrap();
    let first = storage.snapshot().memtable.id();
    freeze(&storage);
    storage.put(b"b", b"2").unwrap();
    let second = storage.snapshot().memtable.id();
    freeze(&storage);

    let snapshot = storage.snapshot();
    let imm_ids: Vec<usize> = snapshot.imm_memtables.iter().map(|m| m.id()).collect();
    assert_eq!(
        imm_ids,
        vec![second, first],
        "imm_memtables are newest first"
    );
    assert!(
        ![first, second].contains(&snapshot.memtable.id()),
        "the new memtable needs a fresh id"
    );
    assert!(snapshot.memtable.is_empty());
    assert_eq!(snapshot.imm_memtables[1].get(b"a"), Some(bytes_of(b"1")));
    assert_eq!(snapshot.imm_memtables[0].get(b"b"), Some(bytes_of(b"2")));
    storage.put(b"c", b"3").unwrap();
    assert_eq!(storage.snapshot().memtable.get(b"c"), Some(bytes_of(b"3")));
    assert_eq!(
        snapshot.imm_memtables[0].get(b"c"),
        None,
        "a frozen memtable takes no writes"
    );
}

/// A put past `target_sst_size` freezes the memtable; each frozen one reached the target.
#[test]
fn test_task3_freeze_on_capacity() {
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.target_sst_size = 1024;
    let (_dir, storage) = open_engine(options);
    let value = [b'v'; 90];
    for i in 0..100 {
        storage
            .put(format!("key{i:04}").as_bytes(), &value)
            .unwrap();
    }
    let snapshot = storage.snapshot();
    // 100 entries of ~98 bytes fill about 9 memtables of 1 KiB if the size counts only key and
    // value bytes, about 20 if it also counts each entry's overhead (the reference does).
    assert!(
        (5..=25).contains(&snapshot.imm_memtables.len()),
        "{} memtables were frozen; expected between 9 and 20",
        snapshot.imm_memtables.len()
    );
    for memtable in &snapshot.imm_memtables {
        assert!(
            memtable.approximate_size() >= 1024,
            "memtable {} was frozen at {} bytes, before reaching the target",
            memtable.id(),
            memtable.approximate_size()
        );
    }
    assert!(snapshot.memtable.approximate_size() < 1024);
    for i in 0..100 {
        assert_eq!(
            storage.get(format!("key{i:04}").as_bytes()).unwrap(),
            Some(bytes_of(value)),
            "key{i:04} was lost in a freeze"
        );
    }
}

/// `get` searches memtables newest first. Catches: oldest-first reads, tombstones read as values.
#[test]
fn test_task4_get_newest_first() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    storage.put(b"a", b"a1").unwrap();
    storage.put(b"b", b"b1").unwrap();
    storage.put(b"c", b"c1").unwrap();
    storage.put(b"e", b"e1").unwrap();
    freeze(&storage);
    storage.put(b"a", b"a2").unwrap();
    storage.delete(b"b").unwrap();
    storage.put(b"d", b"d2").unwrap();
    storage.delete(b"e").unwrap();
    freeze(&storage);
    storage.put(b"a", b"a3").unwrap();
    storage.put(b"e", b"e3").unwrap();

    let get = |key: &[u8]| storage.get(key).unwrap();
    assert_eq!(get(b"a"), Some(bytes_of(b"a3")), "the newest value wins");
    assert_eq!(
        get(b"b"),
        None,
        "a tombstone in a newer memtable hides the older value"
    );
    assert_eq!(
        get(b"c"),
        Some(bytes_of(b"c1")),
        "found in the oldest memtable"
    );
    assert_eq!(get(b"d"), Some(bytes_of(b"d2")));
    assert_eq!(get(b"e"), Some(bytes_of(b"e3")), "a put after a tombstone");
    assert_eq!(get(b"f"), None);
    assert_eq!(storage.snapshot().imm_memtables.len(), 2);
}
