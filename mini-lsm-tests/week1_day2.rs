// SPDX-License-Identifier: Apache-2.0
//! Week 1 day 2: memtable ranges, the merge iterator, the user-facing iterators and engine scans.

use std::ops::Bound::{self, Excluded, Included, Unbounded};

use bytes::Bytes;

use crate::iterators::merge_iterator::MergeIterator;
use crate::iterators::StorageIterator;
use crate::lsm_iterator::FusedIterator;
use crate::lsm_storage::LsmStorageOptions;
use crate::mem_table::MemTable;

use super::harness::{
    bytes_of, check_internal_iter, check_iter_result, collect_internal, freeze, open_engine,
    randomized_model_test, scan_all, show_bound, show_entries, test_seed, MockIterator, OpMix, Rng,
};

/// A scan's lower and upper bound, and the keys of `k1..=k5` it must return.
type BoundCase = (
    Bound<&'static [u8]>,
    Bound<&'static [u8]>,
    &'static [&'static [u8]],
);

/// The bounds a memtable scan takes and the keys of `k1..=k5` each must return.
const BOUND_CASES: &[BoundCase] = &[
    (Unbounded, Unbounded, &[b"k1", b"k2", b"k3", b"k4", b"k5"]),
    (Included(b"k2"), Included(b"k4"), &[b"k2", b"k3", b"k4"]),
    (Excluded(b"k2"), Excluded(b"k4"), &[b"k3"]),
    (Excluded(b"k2"), Included(b"k4"), &[b"k3", b"k4"]),
    (Included(b"k2"), Excluded(b"k4"), &[b"k2", b"k3"]),
    (Included(b"k25"), Included(b"k45"), &[b"k3", b"k4"]),
    (Excluded(b"k25"), Excluded(b"k45"), &[b"k3", b"k4"]),
    (Unbounded, Excluded(b"k3"), &[b"k1", b"k2"]),
    (Excluded(b"k3"), Unbounded, &[b"k4", b"k5"]),
    (Included(b"k3"), Included(b"k3"), &[b"k3"]),
    (Excluded(b"k3"), Included(b"k3"), &[]),
    (Included(b"k4"), Included(b"k2"), &[]),
    (Included(b"k6"), Unbounded, &[]),
    (Unbounded, Excluded(b"k1"), &[]),
];

/// Memtable scans honour every bound. Catches: an ignored upper bound, an excluded lower bound.
#[test]
fn test_task1_memtable_scan_bounds() {
    let memtable = MemTable::create(0);
    for key in [b"k3", b"k1", b"k5", b"k2", b"k4"] {
        memtable.put(key, &[key[1], b'!']).unwrap();
    }
    memtable.put(b"k2", b"").unwrap();
    for (lower, upper, keys) in BOUND_CASES {
        let expected: Vec<(&[u8], &[u8])> = keys
            .iter()
            .map(|k| -> (&[u8], &[u8]) {
                match &k[..] {
                    b"k2" => (k, b""),
                    b"k1" => (k, b"1!"),
                    b"k3" => (k, b"3!"),
                    b"k4" => (k, b"4!"),
                    _ => (k, b"5!"),
                }
            })
            .collect();
        let actual = collect_internal(&mut memtable.scan(*lower, *upper)).unwrap();
        assert_eq!(
            actual.len(),
            expected.len(),
            "scan({}, {}) returned {} entries",
            show_bound(*lower),
            show_bound(*upper),
            actual.len()
        );
        check_internal_iter(&mut memtable.scan(*lower, *upper), &expected);
    }
}

/// `MergeIterator` yields each key once, newest first. Catches: a merge keeping the oldest value.
#[test]
fn test_task2_merge_newest_wins() {
    let newest = MockIterator::new(&[(b"a", b"a0"), (b"c", b"c0"), (b"e", b"")]);
    let middle = MockIterator::new(&[(b"a", b"a1"), (b"b", b"b1"), (b"e", b"e1")]);
    let oldest = MockIterator::new(&[(b"b", b"b2"), (b"c", b"c2"), (b"d", b"d2"), (b"e", b"e2")]);
    let mut merged =
        MergeIterator::create(vec![Box::new(newest), Box::new(middle), Box::new(oldest)]);
    check_internal_iter(
        &mut merged,
        &[
            (b"a", b"a0"),
            (b"b", b"b1"),
            (b"c", b"c0"),
            (b"d", b"d2"),
            (b"e", b""), // The merge keeps tombstones; the LSM iterator hides them.
        ],
    );

    // The same sources the other way round: now the other versions win.
    let newest = MockIterator::new(&[(b"b", b"b2"), (b"c", b"c2"), (b"d", b"d2"), (b"e", b"e2")]);
    let oldest = MockIterator::new(&[(b"a", b"a0"), (b"c", b"c0"), (b"e", b"")]);
    let mut merged = MergeIterator::create(vec![Box::new(newest), Box::new(oldest)]);
    check_internal_iter(
        &mut merged,
        &[
            (b"a", b"a0"),
            (b"b", b"b2"),
            (b"c", b"c2"),
            (b"d", b"d2"),
            (b"e", b"e2"),
        ],
    );
}

/// Merging no sources or empty ones is exhausted; empty sources among full ones change nothing.
#[test]
fn test_task2_merge_empty_sources() {
    let merged = MergeIterator::<MockIterator>::create(Vec::new());
    assert!(!merged.is_valid());
    let merged = MergeIterator::create(vec![
        Box::new(MockIterator::new(&[])),
        Box::new(MockIterator::new(&[])),
    ]);
    assert!(!merged.is_valid());
    let mut merged = MergeIterator::create(vec![
        Box::new(MockIterator::new(&[])),
        Box::new(MockIterator::new(&[(b"x", b"1")])),
        Box::new(MockIterator::new(&[])),
        Box::new(MockIterator::new(&[(b"w", b"2"), (b"x", b"3")])),
    ]);
    check_internal_iter(&mut merged, &[(b"w", b"2"), (b"x", b"1")]);
}

/// `MergeIterator` agrees with a model (per key, the lowest-index source wins) on random sources.
#[test]
fn test_task2_merge_randomized() {
    let mut rng = Rng::new(test_seed());
    for round in 0..200 {
        let sources: Vec<Vec<(Bytes, Bytes)>> = (0..rng.below(6))
            .map(|src| {
                let mut keys: Vec<u8> = (0..rng.below(12)).map(|_| rng.below(20) as u8).collect();
                keys.sort_unstable();
                keys.dedup();
                keys.into_iter()
                    .map(|k| {
                        (
                            Bytes::from(vec![b'k', k]),
                            Bytes::from(format!("{src}/{k}")),
                        )
                    })
                    .collect()
            })
            .collect();
        let mut expected = std::collections::BTreeMap::new();
        for source in sources.iter().rev() {
            for (k, v) in source {
                expected.insert(k.clone(), v.clone());
            }
        }
        let iters = sources
            .iter()
            .map(|s| {
                let entries: Vec<(&[u8], &[u8])> =
                    s.iter().map(|(k, v)| (&k[..], &v[..])).collect();
                Box::new(MockIterator::new(&entries))
            })
            .collect();
        let actual = collect_internal(&mut MergeIterator::create(iters)).unwrap();
        let expected: Vec<(Bytes, Bytes)> = expected.into_iter().collect();
        assert!(
            actual == expected,
            "round {round}: sources {sources:?}\n  got      {actual:?}\n  expected {expected:?}"
        );
    }
}

/// Merge and fused iterators return a source's error. Catches: an iterator that swallows an error.
#[test]
fn test_task2_merge_returns_source_errors() {
    // The current source fails: a, b, c come out, then the move past c fails.
    let failing = MockIterator::new(&[(b"a", b"1"), (b"c", b"1"), (b"e", b"1")]).failing_on_next(2);
    let other = MockIterator::new(&[(b"b", b"2"), (b"d", b"2"), (b"f", b"2")]);
    let mut merged = MergeIterator::create(vec![Box::new(failing), Box::new(other)]);
    let mut seen = Vec::new();
    let error = loop {
        assert!(
            merged.is_valid(),
            "the merge ended without reporting the error; saw {seen:?}"
        );
        seen.push(bytes_of(merged.key().raw_ref()));
        if let Err(e) = merged.next() {
            break e;
        }
    };
    assert_eq!(seen, vec![bytes_of(b"a"), bytes_of(b"b"), bytes_of(b"c")]);
    assert!(
        error.to_string().contains("injected"),
        "unexpected error: {error}"
    );

    // An older source fails while the merge skips its version of the current key.
    let newer = MockIterator::new(&[(b"x", b"new"), (b"z", b"new")]);
    let older = MockIterator::new(&[(b"x", b"old"), (b"y", b"old")]).failing_on_next(1);
    let mut fused = FusedIterator::new(MergeIterator::create(vec![
        Box::new(newer),
        Box::new(older),
    ]));
    assert!(fused.is_valid());
    assert_eq!(fused.key().raw_ref(), b"x");
    assert_eq!(bytes_of(fused.value()), bytes_of(b"new"));
    assert!(
        fused.next().is_err(),
        "the skipped source's error was swallowed"
    );
    assert!(!fused.is_valid(), "a failed FusedIterator must be invalid");
    assert!(
        fused.next().is_err(),
        "a failed FusedIterator must keep failing"
    );
    assert!(!fused.is_valid());
}

/// `FusedIterator` stays failed after an error, inert when exhausted. Catches: a swallowed error.
#[test]
fn test_task3_fused_iterator() {
    let mut fused =
        FusedIterator::new(MockIterator::new(&[(b"a", b"1"), (b"b", b"2")]).failing_on_next(2));
    assert!(fused.is_valid());
    fused.next().unwrap();
    assert_eq!(fused.key().raw_ref(), b"b");
    assert!(fused.next().is_err(), "the inner error must be returned");
    assert!(
        !fused.is_valid(),
        "invalid after an error, though the inner iterator claims valid"
    );
    for _ in 0..3 {
        assert!(
            fused.next().is_err(),
            "next after an error must fail, not panic"
        );
    }

    let mut fused = FusedIterator::new(MockIterator::new(&[(b"a", b"1")]));
    fused.next().unwrap();
    assert!(!fused.is_valid());
    for _ in 0..3 {
        fused
            .next()
            .expect("next on an exhausted FusedIterator is a no-op");
        assert!(!fused.is_valid());
    }
}

/// A scan skips tombstones at the start, middle and end of its range, across memtables.
#[test]
fn test_task3_scan_hides_tombstones() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    for key in [b"a", b"b", b"c", b"d", b"e"] {
        storage.put(key, b"old").unwrap();
    }
    freeze(&storage);
    storage.delete(b"a").unwrap();
    storage.delete(b"c").unwrap();
    storage.delete(b"e").unwrap();
    storage.delete(b"f").unwrap();
    freeze(&storage);
    storage.put(b"c", b"new").unwrap();
    storage.delete(b"d").unwrap();

    let mut iter = storage.scan(Unbounded, Unbounded).unwrap();
    check_iter_result(&mut iter, &[(b"b", b"old"), (b"c", b"new")]);
    let mut iter = storage.scan(Included(b"a"), Included(b"b")).unwrap();
    check_iter_result(&mut iter, &[(b"b", b"old")]);
    let mut iter = storage.scan(Included(b"d"), Unbounded).unwrap();
    check_iter_result(&mut iter, &[]);
    assert!(!iter.is_valid());
}

/// Scans over 3 memtables honour bounds. Catches: an ignored upper bound, an excluded lower bound.
#[test]
fn test_task4_scan_bounds_across_memtables() {
    let (_dir, storage) = open_engine(LsmStorageOptions::default_for_week1_test());
    storage.put(b"k1", b"1-old").unwrap();
    storage.put(b"k2", b"2-old").unwrap();
    storage.put(b"k5", b"5-old").unwrap();
    freeze(&storage);
    storage.put(b"k3", b"3").unwrap();
    storage.put(b"k4", b"4-old").unwrap();
    freeze(&storage);
    storage.put(b"k1", b"1").unwrap();
    storage.put(b"k4", b"4").unwrap();
    storage.put(b"k2", b"2").unwrap();
    storage.put(b"k5", b"5").unwrap();
    let value = |k: &[u8]| Bytes::from(vec![k[1]]);
    for (lower, upper, keys) in BOUND_CASES {
        let expected: Vec<(Bytes, Bytes)> = keys
            .iter()
            .map(|k| (Bytes::copy_from_slice(k), value(k)))
            .collect();
        let actual = scan_all(&storage, *lower, *upper);
        assert!(
            actual == expected,
            "scan({}, {}) is wrong: got {}",
            show_bound(*lower),
            show_bound(*upper),
            show_entries(&actual)
        );
    }
}

/// Random puts, deletes, gets, scans with random bounds and freezes agree with a `BTreeMap`.
#[test]
fn test_task4_scan_randomized_against_model() {
    randomized_model_test(
        10_000,
        OpMix {
            install_sst: false,
            flush: false,
        },
    );
}
