// SPDX-License-Identifier: Apache-2.0
//! Week 1 day 6: the write path. Flushing memtables to L0, the flush thread, skipping SSTs by key
//! range, the write stall and prefix scans.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::iterators::StorageIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm};
use crate::table::{sst_path, FileObject, SsTable, SsTableIterator};

use super::harness::{
    assert_entries, bytes_of, check_iter_result, collect_internal, collect_user,
    flush_thread_test_guard, flush_threads, freeze, open_engine, poll_until, randomized_model_test,
    show, show_bound, test_seed, OpMix, Rng,
};

fn imm_ids(storage: &LsmStorageInner) -> Vec<usize> {
    storage
        .snapshot()
        .imm_memtables
        .iter()
        .map(|m| m.id())
        .collect()
}

fn memtable_id(storage: &LsmStorageInner) -> usize {
    storage.snapshot().memtable.id()
}

/// The entries of the SST file `id` in the engine's directory, read from disk.
fn sst_file_entries(storage: &LsmStorageInner, id: usize) -> Vec<(Bytes, Bytes)> {
    let file = FileObject::open(&sst_path(storage.path(), id)).unwrap();
    let table = SsTable::open(id, None, file).unwrap();
    collect_internal(&mut SsTableIterator::create_and_seek_to_first(table.into()).unwrap()).unwrap()
}

/// A flush writes the earliest memtable to the front of L0. Catches: newest flushed, L0 wrong end.
#[test]
fn test_task1_flush_earliest_imm_to_l0_front() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_day6_test());
    let mut frozen = Vec::new();
    for round in 1..=3u8 {
        storage.put(b"key", &[b'0' + round]).unwrap();
        storage.put(&[b'k', round], b"only here").unwrap();
        frozen.push(memtable_id(&storage));
        freeze(&storage);
    }
    let (f1, f2, f3) = (frozen[0], frozen[1], frozen[2]);
    assert_eq!(imm_ids(&storage), vec![f3, f2, f1]);

    storage.force_flush_next_imm_memtable().unwrap();
    let snapshot = storage.snapshot();
    assert_eq!(
        imm_ids(&storage),
        vec![f3, f2],
        "the earliest memtable is flushed first"
    );
    assert_eq!(
        snapshot.l0_sstables,
        vec![f1],
        "the SST takes the memtable's id"
    );
    assert!(snapshot.sstables.contains_key(&f1));
    assert_eq!(
        sst_file_entries(&storage, f1),
        vec![
            (
                Bytes::from_static(b"k\x01"),
                Bytes::from_static(b"only here")
            ),
            (Bytes::from_static(b"key"), Bytes::from_static(b"1")),
        ],
        "the SST file holds the memtable's entries"
    );

    storage.force_flush_next_imm_memtable().unwrap();
    assert_eq!(
        storage.snapshot().l0_sstables,
        vec![f2, f1],
        "newest SST first"
    );
    assert_eq!(storage.get(b"key").unwrap(), Some(bytes_of(b"3")));
    storage.force_flush_next_imm_memtable().unwrap();
    assert_eq!(
        storage.snapshot().l0_sstables,
        vec![f3, f2, f1],
        "newest SST first"
    );
    assert!(imm_ids(&storage).is_empty());
    assert_eq!(
        storage.get(b"key").unwrap(),
        Some(bytes_of(b"3")),
        "newest wins"
    );
    check_iter_result(
        &mut storage.scan(Unbounded, Unbounded).unwrap(),
        &[
            (b"k\x01", b"only here"),
            (b"k\x02", b"only here"),
            (b"k\x03", b"only here"),
            (b"key", b"3"),
        ],
    );
}

/// A newer flush beats an older one. Catches: a new SST at the wrong end of L0, lost tombstones.
#[test]
fn test_task1_newer_flush_wins() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_day6_test());
    storage.put(b"a", b"old").unwrap();
    storage.put(b"b", b"old").unwrap();
    freeze(&storage);
    storage.force_flush_next_imm_memtable().unwrap();
    storage.put(b"a", b"new").unwrap();
    storage.delete(b"b").unwrap();
    freeze(&storage);
    storage.force_flush_next_imm_memtable().unwrap();
    assert_eq!(storage.snapshot().l0_sstables.len(), 2);
    assert!(storage.snapshot().memtable.is_empty());
    assert_eq!(storage.get(b"a").unwrap(), Some(bytes_of(b"new")));
    assert_eq!(
        storage.get(b"b").unwrap(),
        None,
        "the flushed tombstone hides the old value"
    );
    check_iter_result(
        &mut storage.scan(Unbounded, Unbounded).unwrap(),
        &[(b"a", b"new")],
    );
}

/// A flush with no immutable memtable changes nothing.
#[test]
fn test_task1_flush_without_imm_is_noop() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_day6_test());
    storage.put(b"a", b"1").unwrap();
    let before = memtable_id(&storage);
    storage.force_flush_next_imm_memtable().unwrap();
    let snapshot = storage.snapshot();
    assert_eq!(snapshot.memtable.id(), before);
    assert!(snapshot.imm_memtables.is_empty());
    assert!(snapshot.l0_sstables.is_empty() && snapshot.sstables.is_empty());
    assert_eq!(storage.get(b"a").unwrap(), Some(bytes_of(b"1")));
}

/// `open` creates a missing nested directory, and SSTs land in it at `sst_path(dir, id)`.
#[test]
fn test_task1_open_creates_nested_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("db");
    let storage =
        LsmStorageInner::open(&path, LsmStorageOptions::default_for_week1_day6_test()).unwrap();
    assert!(path.is_dir(), "open must create the directory");
    storage.put(b"k", b"v").unwrap();
    let id = memtable_id(&storage);
    freeze(&storage);
    storage.force_flush_next_imm_memtable().unwrap();
    assert!(
        sst_path(&path, id).is_file(),
        "the SST is at sst_path(dir, id)"
    );
    assert_eq!(
        sst_file_entries(&storage, id),
        vec![(Bytes::from_static(b"k"), Bytes::from_static(b"v"))]
    );
}

/// `trigger_flush` flushes exactly while `1 + imm count > num_memtable_limit`.
#[test]
fn test_task2_trigger_flush_counts() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_day6_test());
    let mut frozen = Vec::new();
    let mut freeze_one = |storage: &LsmStorageInner| {
        storage
            .put(format!("key{}", frozen.len()).as_bytes(), b"v")
            .unwrap();
        frozen.push(memtable_id(storage));
        freeze(storage);
    };
    storage.trigger_flush().unwrap();
    freeze_one(&storage);
    storage.trigger_flush().unwrap();
    assert_eq!(
        imm_ids(&storage).len(),
        1,
        "2 memtables is within a limit of 2"
    );
    assert!(storage.snapshot().l0_sstables.is_empty());
    for _ in 0..3 {
        freeze_one(&storage);
    }
    assert_eq!(imm_ids(&storage).len(), 4);
    storage.trigger_flush().unwrap();
    assert_eq!(
        imm_ids(&storage),
        vec![frozen[3]],
        "flushed down to the limit of 2 memtables"
    );
    assert_eq!(
        storage.snapshot().l0_sstables,
        vec![frozen[2], frozen[1], frozen[0]]
    );
    storage.trigger_flush().unwrap();
    assert_eq!(
        storage.snapshot().l0_sstables.len(),
        3,
        "nothing more to flush"
    );

    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.num_memtable_limit = 3;
    let (_dir, storage) = open_engine(options);
    for i in 0..3 {
        storage.put(format!("key{i}").as_bytes(), b"v").unwrap();
        freeze(&storage);
    }
    storage.trigger_flush().unwrap();
    assert_eq!(
        imm_ids(&storage).len(),
        2,
        "4 memtables over a limit of 3: one flush"
    );
    assert_eq!(storage.snapshot().l0_sstables.len(), 1);
}

/// `MiniLsm::open` starts a flushing `mini-lsm-flush` thread; `close` stops and joins it.
#[test]
fn test_task2_flush_thread_lifecycle() {
    let _serial = flush_thread_test_guard();
    let dir = tempfile::tempdir().unwrap();
    let lsm = MiniLsm::open(
        dir.path().join("db"),
        LsmStorageOptions::default_for_week1_day6_test(),
    )
    .unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || flush_threads() == 1),
        "no thread named mini-lsm-flush appeared after open"
    );
    for i in 0..2 {
        lsm.put(format!("key{i}").as_bytes(), b"v").unwrap();
        freeze(&lsm.inner);
    }
    // 3 memtables over a limit of 2: the thread must flush the earliest one on its own.
    assert!(
        poll_until(Duration::from_secs(10), || !lsm
            .inner
            .snapshot()
            .l0_sstables
            .is_empty()),
        "the flush thread did not flush within 10 s:\n{}",
        lsm.dump()
    );
    assert_eq!(lsm.inner.snapshot().imm_memtables.len(), 1);
    assert_eq!(lsm.get(b"key0").unwrap(), Some(bytes_of(b"v")));
    lsm.close().unwrap();
    assert!(
        poll_until(Duration::from_secs(2), || flush_threads() == 0),
        "the flush thread still runs after close"
    );
}

/// The per-writer key `w<w>-k<i>`.
fn stress_key(writer: usize, i: usize) -> Vec<u8> {
    format!("w{writer}-k{i:03}").into_bytes()
}

/// Checks that `value` belongs to `key` and that its counter did not go backwards since the
/// last value `last` this reader saw for the key.
fn check_progress(last: &mut HashMap<Vec<u8>, u64>, key: &[u8], value: &[u8]) {
    let text = std::str::from_utf8(value).expect("values are text");
    let (value_key, counter) = text.rsplit_once(':').expect("value is key:counter");
    assert_eq!(
        bytes_of(value_key),
        bytes_of(key),
        "a value of another key was returned"
    );
    let counter: u64 = counter.parse().unwrap();
    let seen = last.entry(key.to_vec()).or_insert(0);
    assert!(
        counter >= *seen,
        "{}: saw counter {counter} after {seen}: a read went back in time",
        String::from_utf8_lossy(key)
    );
    *seen = counter;
}

/// 4 writers and 2 readers with the flush thread: reads never go back in time, writes all land.
#[test]
fn test_task2_stress_concurrent_readers_writers() {
    let _serial = flush_thread_test_guard();
    let seed = test_seed();
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.target_sst_size = 4096;
    options.num_memtable_limit = 3;
    options.write_stall_timeout = Duration::from_secs(60);
    let lsm = MiniLsm::open(dir.path().join("db"), options).unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);
    const KEYS: usize = 100;
    let models: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let lsm = &lsm;
                scope.spawn(move || {
                    let mut rng = Rng::new(seed ^ (w as u64 + 1));
                    let mut model = BTreeMap::new();
                    let mut counter = 0u64;
                    while Instant::now() < deadline {
                        counter += 1;
                        let key = stress_key(w, rng.below(KEYS));
                        if rng.chance(25) {
                            lsm.delete(&key).unwrap();
                            model.remove(&key);
                        } else {
                            let mut value = key.clone();
                            value.extend_from_slice(format!(":{counter:08}").as_bytes());
                            lsm.put(&key, &value).unwrap();
                            model.insert(key, value);
                        }
                    }
                    model
                })
            })
            .collect();
        for r in 0..2 {
            let lsm = &lsm;
            scope.spawn(move || {
                let mut rng = Rng::new(seed ^ (100 + r));
                let mut last = HashMap::new();
                while Instant::now() < deadline {
                    let w = rng.below(4);
                    if rng.chance(3) {
                        let (lower, upper) = (format!("w{w}-"), format!("w{w}."));
                        let mut iter = lsm
                            .scan(Included(lower.as_bytes()), Excluded(upper.as_bytes()))
                            .unwrap();
                        let entries = collect_user(&mut iter).unwrap();
                        assert!(
                            entries.windows(2).all(|p| p[0].0 < p[1].0),
                            "scan out of order"
                        );
                        for (key, value) in &entries {
                            check_progress(&mut last, key, value);
                        }
                    } else {
                        let key = stress_key(w, rng.below(KEYS));
                        if let Some(value) = lsm.get(&key).unwrap() {
                            check_progress(&mut last, &key, &value);
                        }
                    }
                }
            });
        }
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(
        !lsm.inner.snapshot().l0_sstables.is_empty(),
        "the flush thread never flushed"
    );
    for (w, model) in models.iter().enumerate() {
        for i in 0..KEYS {
            let key = stress_key(w, i);
            assert_eq!(
                lsm.get(&key).unwrap(),
                model.get(&key).map(bytes_of),
                "{}",
                String::from_utf8_lossy(&key)
            );
        }
        let (lower, upper) = (format!("w{w}-"), format!("w{w}."));
        let mut iter = lsm
            .scan(Included(lower.as_bytes()), Excluded(upper.as_bytes()))
            .unwrap();
        let expected: Vec<(Bytes, Bytes)> = model
            .iter()
            .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
            .collect();
        assert_entries(&collect_user(&mut iter).unwrap(), &expected);
    }
    lsm.close().unwrap();
}

/// Ten L0 SSTs with disjoint key ranges: SST `s` holds `k{s}00..=k{s}99` in several blocks. The
/// block cache is off, so that every block read shows in `block_reads`.
fn ten_ssts() -> (tempfile::TempDir, LsmStorageInner, Vec<usize>) {
    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.block_size = 256;
    options.block_cache_bytes = 0;
    let (dir, storage) = open_engine(options);
    let mut ids = Vec::new();
    for s in 0..10 {
        for i in s * 100..s * 100 + 100 {
            storage
                .put(format!("k{i:03}").as_bytes(), format!("v{i}").as_bytes())
                .unwrap();
        }
        ids.push(memtable_id(&storage));
        freeze(&storage);
        storage.force_flush_next_imm_memtable().unwrap();
    }
    (dir, storage, ids)
}

/// Block reads so far of each SST, by position in `ids` (SST `s` holds `k{s}00..`).
fn block_reads(storage: &LsmStorageInner, ids: &[usize]) -> Vec<u64> {
    let snapshot = storage.snapshot();
    ids.iter()
        .map(|id| snapshot.table(*id).unwrap().block_reads())
        .collect()
}

/// Which SSTs of [`ten_ssts`] have a key range that meets `lower..upper`.
fn overlapping(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Vec<bool> {
    (0..10)
        .map(|s| {
            let (first, last) = (format!("k{:03}", s * 100), format!("k{:03}", s * 100 + 99));
            let (first, last) = (first.as_bytes(), last.as_bytes());
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
        })
        .collect()
}

/// `get` reads no block of SSTs out of range. Catches: a filter dropping SSTs at their edges.
#[test]
fn test_task3_get_skips_ssts_out_of_range() {
    let (_dir, storage, ids) = ten_ssts();
    for (probe, holder) in [
        (&b"k150"[..], Some(1)),
        (b"k100", Some(1)),
        (b"k199", Some(1)),
        (b"k000", Some(0)),
        (b"k999", Some(9)),
        (b"k1995", None),
        (b"k", None),
        (b"l", None),
    ] {
        let before = block_reads(&storage, &ids);
        let value = storage.get(probe).unwrap();
        let after = block_reads(&storage, &ids);
        let name = String::from_utf8_lossy(probe);
        match holder {
            Some(_) => {
                let expected = format!("v{}", name[1..].parse::<usize>().unwrap());
                assert_eq!(value, Some(bytes_of(&expected)), "get {name}");
            }
            None => assert_eq!(value, None, "get {name}"),
        }
        for s in 0..10 {
            if Some(s) != holder {
                assert_eq!(
                    after[s], before[s],
                    "get {name} read a block of SST k{s}00..=k{s}99, which cannot hold it"
                );
            }
        }
    }
}

/// Scans open only SSTs in range. Catches: filters dropping touching edges, keeping excluded ones.
#[test]
fn test_task3_scan_skips_ssts_out_of_range() {
    let (_dir, storage, ids) = ten_ssts();
    let key = |i: usize| format!("k{i:03}").into_bytes();
    // (lower, upper, active SST iterators, the keys k<i> returned)
    type Case = (
        Bound<&'static [u8]>,
        Bound<&'static [u8]>,
        usize,
        Vec<usize>,
    );
    let cases: &[Case] = &[
        (
            Included(b"k100"),
            Included(b"k199"),
            1,
            (100..=199).collect(),
        ),
        (Included(b"k199"), Excluded(b"k200"), 1, vec![199]),
        (Excluded(b"k099"), Included(b"k100"), 1, vec![100]),
        (Included(b"k100"), Included(b"k100"), 1, vec![100]),
        (Excluded(b"k199"), Excluded(b"k200"), 0, vec![]),
        (Included(b"k1995"), Excluded(b"k200"), 0, vec![]),
        (Unbounded, Included(b"k100"), 2, (0..=100).collect()),
        (Unbounded, Excluded(b"k100"), 1, (0..100).collect()),
        (Included(b"k950"), Unbounded, 1, (950..1000).collect()),
        (Excluded(b"k199"), Unbounded, 8, (200..1000).collect()),
        (
            Excluded(b"k150"),
            Excluded(b"k250"),
            2,
            (151..250).collect(),
        ),
        (Unbounded, Unbounded, 10, (0..1000).collect()),
    ];
    for (lower, upper, active, keys) in cases {
        let before = block_reads(&storage, &ids);
        let mut iter = storage.scan(*lower, *upper).unwrap();
        assert_eq!(
            iter.num_active_iterators(),
            *active,
            "scan({}, {}) opened the wrong number of SST iterators:\n{}",
            show_bound(*lower),
            show_bound(*upper),
            storage.dump()
        );
        let entries = collect_user(&mut iter).unwrap();
        let expected: Vec<(Bytes, Bytes)> = keys
            .iter()
            .map(|i| (Bytes::from(key(*i)), Bytes::from(format!("v{i}"))))
            .collect();
        assert_entries(&entries, &expected);
        let after = block_reads(&storage, &ids);
        for (s, overlaps) in overlapping(*lower, *upper).into_iter().enumerate() {
            if !overlaps {
                assert_eq!(
                    after[s],
                    before[s],
                    "scan({}, {}) read a block of SST k{s}00..=k{s}99",
                    show_bound(*lower),
                    show_bound(*upper)
                );
            }
        }
    }

    // Memtables count too, but only those holding a key at or after the lower bound.
    storage.put(b"k1505", b"x").unwrap();
    freeze(&storage);
    storage.put(b"k000", b"y").unwrap();
    let iter = storage.scan(Included(b"k100"), Included(b"k199")).unwrap();
    assert_eq!(
        iter.num_active_iterators(),
        2,
        "SST k1xx and the memtable holding k1505"
    );
}

/// Past the memtable limit a put stalls, times out with an error, writes nothing; a flush frees it.
#[test]
fn test_task4_write_stall_times_out() {
    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.num_memtable_limit = 2;
    options.write_stall_margin = 1;
    options.write_stall_timeout = Duration::from_millis(300);
    let (_dir, storage) = open_engine(options);
    for i in 0..3 {
        // Up to 3 memtables no put stalls; nothing flushes here, so a stall would fail the put.
        storage.put(format!("key{i}").as_bytes(), b"v").unwrap();
        freeze(&storage);
    }
    assert_eq!(
        imm_ids(&storage).len(),
        3,
        "4 memtables, over the limit of 2 + 1"
    );
    let start = Instant::now();
    let error = storage
        .put(b"stalled", b"v")
        .expect_err("the put must stall and time out");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "the stalled put returned after {waited:?}, not after the 300 ms timeout"
    );
    assert!(
        format!("{error:#}").contains("stalled"),
        "unexpected error: {error:#}"
    );
    assert_eq!(
        storage.get(b"stalled").unwrap(),
        None,
        "a timed-out put wrote its key"
    );
    assert!(storage.delete(b"key0").is_err(), "deletes stall too");
    assert_eq!(storage.get(b"key0").unwrap(), Some(bytes_of(b"v")));

    storage.trigger_flush().unwrap();
    storage.put(b"stalled", b"v").unwrap();
    assert_eq!(storage.get(b"stalled").unwrap(), Some(bytes_of(b"v")));
}

/// A flush that makes room wakes a stalled writer at once, not at the end of its stall timeout.
#[test]
fn test_task4_flush_wakes_stalled_writer() {
    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.num_memtable_limit = 2;
    options.write_stall_margin = 1;
    options.write_stall_timeout = Duration::from_secs(60);
    let (_dir, storage) = open_engine(options);
    for i in 0..3 {
        storage.put(format!("key{i}").as_bytes(), b"v").unwrap();
        freeze(&storage);
    }
    let storage = Arc::new(storage);
    // Not a scoped thread: if the wake-up is missing, the test fails at its deadline instead of
    // waiting out the writer's 60 s stall.
    let writer = std::thread::spawn({
        let storage = Arc::clone(&storage);
        move || storage.put(b"woken", b"v")
    });
    let counted = poll_until(Duration::from_secs(10), || {
        writer.is_finished() || storage.stalled_writers() == 1
    });
    if writer.is_finished() {
        let outcome = match writer.join() {
            Ok(Ok(())) => "it succeeded".to_string(),
            Ok(Err(error)) => format!("it failed: {error:#}"),
            Err(_) => "it panicked".to_string(),
        };
        panic!(
            "a put with 4 memtables (limit 2 + margin 1) returned before any flush ({outcome}); \
             it must stall in wait_for_room"
        );
    }
    assert!(
        counted,
        "the stalled put never waited on flush_done (stalled_writers() stayed 0): wait_for_room \
         must sleep in self.flush_done.wait_until"
    );
    // The writer is counted only while it holds the signal's mutex or sleeps, and a flush must
    // take that mutex to notify: the notification cannot come before the wait.
    storage.force_flush_next_imm_memtable().unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || writer.is_finished()),
        "no stalled writer was woken by the flush: does the flush call notify_flush_done()?"
    );
    writer
        .join()
        .expect("the writer panicked")
        .expect("the woken put succeeds: the flush made room");
    assert_eq!(storage.get(b"woken").unwrap().as_deref(), Some(&b"v"[..]));
}

/// A stalled writer gets the failed flush's error at once, not a timeout, and so does `close`.
#[test]
fn test_task4_stalled_writer_gets_background_error() {
    let _serial = flush_thread_test_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.num_memtable_limit = 2;
    options.write_stall_margin = 1;
    options.write_stall_timeout = Duration::from_secs(20);
    let lsm = MiniLsm::open(&path, options).unwrap();
    // The flush thread cannot write an SST once the directory is gone. Whether it fails before
    // or while the put below waits (it ticks every 50 ms, so almost always while), the put must
    // get its error long before the 20 s timeout.
    std::fs::remove_dir_all(&path).unwrap();
    lsm.put(b"a", b"1").unwrap();
    for _ in 0..3 {
        freeze(&lsm.inner);
    }
    let start = Instant::now();
    let error = lsm.put(b"b", b"2").expect_err("the put must fail");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the stalled writer waited {:?} instead of getting the background error",
        start.elapsed()
    );
    assert!(
        format!("{error:#}").contains("background flush"),
        "expected the background flush error, got: {error:#}"
    );
    let error = lsm
        .close()
        .expect_err("close must return the background error");
    assert!(
        format!("{error:#}").contains("background flush"),
        "close returned: {error:#}"
    );
}

/// `scan_prefix` returns exactly the keys with the prefix, for 0xff-ended and empty prefixes.
#[test]
fn test_task5_scan_prefix_exact() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_day6_test());
    let keys: &[&[u8]] = &[
        b"",
        b"a",
        b"ab",
        b"ab\x00",
        b"ab\xfe",
        b"ab\xfe\xff",
        b"ab\xff",
        b"ab\xff\x00",
        b"ab\xff\xff",
        b"ab\xff\xff\x01",
        b"abc",
        b"ac",
        b"b",
        b"\xfe\xff",
        b"\xff",
        b"\xff\x00",
        b"\xff\xff",
        b"\xff\xff\xff",
    ];
    let mut model = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let value = format!("v{i}").into_bytes();
        storage.put(key, &value).unwrap();
        model.insert(key.to_vec(), value);
        if i % 6 == 5 {
            freeze(&storage);
            storage.force_flush_next_imm_memtable().unwrap();
        }
    }
    for key in [&b"ab\xff"[..], b"\xff\xff\xff", b""] {
        storage.delete(key).unwrap();
        model.remove(key);
    }
    storage.put(b"ab\xff\xff", b"newer").unwrap();
    model.insert(b"ab\xff\xff".to_vec(), b"newer".to_vec());
    assert!(storage.snapshot().l0_sstables.len() >= 2);
    for prefix in [
        &b""[..],
        b"a",
        b"ab",
        b"ab\xfe",
        b"ab\xff",
        b"ab\xff\xff",
        b"abc",
        b"b",
        b"c",
        b"\xfe",
        b"\xff",
        b"\xff\xff",
        b"\xff\xff\xff",
        b"\xff\xff\xff\xff",
    ] {
        let expected: Vec<(Bytes, Bytes)> = model
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
            .collect();
        let actual = collect_user(&mut storage.scan_prefix(prefix).unwrap()).unwrap();
        assert!(
            actual == expected,
            "scan_prefix({})\n  got      {actual:?}\n  expected {expected:?}",
            show(prefix)
        );
    }
}

/// `scan_prefix` opens and reads only the SSTs that can hold a key with the prefix.
#[test]
fn test_task5_scan_prefix_skips_ssts() {
    let (_dir, storage, ids) = ten_ssts();
    for (prefix, active, holders) in [
        (&b"k1"[..], 1, vec![1]),
        (b"k15", 1, vec![1]),
        (b"k199", 1, vec![1]),
        (b"k9", 1, vec![9]),
        (b"k", 10, (0..10).collect()),
        (b"j", 0, vec![]),
        (b"k1995", 0, vec![]),
    ] {
        let before = block_reads(&storage, &ids);
        let mut iter = storage.scan_prefix(prefix).unwrap();
        assert_eq!(
            iter.num_active_iterators(),
            active,
            "scan_prefix({}) opened the wrong number of SST iterators",
            show(prefix)
        );
        let entries = collect_user(&mut iter).unwrap();
        let expected: Vec<(Bytes, Bytes)> = (0..1000)
            .map(|i| format!("k{i:03}"))
            .filter(|k| k.as_bytes().starts_with(prefix))
            .map(|k| {
                let value = format!("v{}", k[1..].parse::<usize>().unwrap());
                (Bytes::from(k), Bytes::from(value))
            })
            .collect();
        assert_entries(&entries, &expected);
        let after = block_reads(&storage, &ids);
        for s in 0..10 {
            if !holders.contains(&s) {
                assert_eq!(
                    after[s],
                    before[s],
                    "scan_prefix({}) read SST k{s}xx",
                    show(prefix)
                );
            }
        }
    }
}

/// Random operations, freezes, flushes and prefix scans agree with a `BTreeMap`.
#[test]
fn test_task1_randomized_with_flush_against_model() {
    randomized_model_test(
        3000,
        OpMix {
            install_sst: false,
            flush: true,
        },
    );
}
