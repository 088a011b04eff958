// SPDX-License-Identifier: Apache-2.0
//! Week 3 day 2: the memtable, scans and lookups as of a read timestamp.

use std::ops::Bound;

use bytes::Bytes;

use crate::iterators::visible_iterator::VisibleIterator;
use crate::key::TS_RANGE_BEGIN;
use crate::lsm_storage::LsmStorageInner;
use crate::mem_table::MemTable;

use super::harness::mvcc::{
    all_bounds, collect_versions, install_l0, install_run, show_versions, version, Version,
    VersionModel,
};
use super::harness::{collect_user, freeze, open_engine, show, show_entries, small_block_options};
use super::harness::{test_seed, Rng};

/// Puts one version into `memtable` (an empty value is a tombstone).
fn put(memtable: &MemTable, key: &[u8], ts: u64, value: &[u8]) {
    memtable.put_batch_at(&[(key, value)], ts).unwrap();
}

/// Three versions of each of `a`, `b`, `c` in a memtable, and the model of them.
fn three_by_three() -> (MemTable, VersionModel) {
    let memtable = MemTable::create(0);
    let mut model = VersionModel::default();
    for (i, key) in [&b"a"[..], b"b", b"c"].into_iter().enumerate() {
        for ts in [1, 4, 7] {
            let value = format!("{}@{}", show(key), ts + i as u64);
            put(&memtable, key, ts + i as u64, value.as_bytes());
            model.put(key, ts + i as u64, value.as_bytes());
        }
    }
    (memtable, model)
}

/// The versions of `model` whose user key lies within the bounds.
fn versions_within(model: &VersionModel, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Vec<Version> {
    model
        .versions()
        .into_iter()
        .filter(|(k, _, _)| super::harness::in_bounds(k, lower, upper))
        .collect()
}

/// What a reader at `read_ts` sees of `model`'s versions, tombstones included: each key's newest
/// version at or before `read_ts`.
fn visible_versions(model: &VersionModel, read_ts: u64) -> Vec<Version> {
    let mut out: Vec<Version> = Vec::new();
    for (key, ts, value) in model.versions() {
        if ts > read_ts || out.last().is_some_and(|(k, _, _)| *k == key) {
            continue;
        }
        out.push((key, ts, value));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Task 1: the memtable keyed by (key, timestamp)

/// `get_at` returns the newest version at or before the read timestamp (a tombstone as the empty
/// value), and `get` the newest version of all.
#[test]
fn test_task1_memtable_get_at_a_timestamp() {
    let memtable = MemTable::create(0);
    put(&memtable, b"a", 1, b"a1");
    put(&memtable, b"a", 3, b"a3");
    put(&memtable, b"a", 5, b"");
    put(&memtable, b"a", 7, b"a7");
    put(&memtable, b"b", 2, b"b2");
    let expected_a = [
        None,
        Some("a1"),
        Some("a1"),
        Some("a3"),
        Some("a3"),
        Some(""),
        Some(""),
    ];
    for (ts, expected) in expected_a.iter().enumerate() {
        assert_eq!(
            memtable.get_at(b"a", ts as u64).as_deref(),
            expected.map(str::as_bytes),
            "a as of {ts}"
        );
    }
    assert_eq!(memtable.get_at(b"a", 7).as_deref(), Some(&b"a7"[..]));
    assert_eq!(
        memtable.get_at(b"a", TS_RANGE_BEGIN).as_deref(),
        Some(&b"a7"[..])
    );
    assert_eq!(
        memtable.get(b"a").as_deref(),
        Some(&b"a7"[..]),
        "get is the newest"
    );
    assert_eq!(memtable.get_at(b"b", 1), None, "b did not exist yet");
    assert_eq!(memtable.get_at(b"b", 9).as_deref(), Some(&b"b2"[..]));
    assert_eq!(memtable.get_at(b"", 9), None, "a key before every key");
    assert_eq!(memtable.get_at(b"c", 9), None, "a key after every key");
    assert_eq!(
        memtable.get_at(b"a\0", 9),
        None,
        "a key between versions of others"
    );
}

/// A batch is one version of each key it writes: a key written twice keeps the later value, once.
#[test]
fn test_task1_batch_is_one_version_per_key() {
    let memtable = MemTable::create(0);
    put(&memtable, b"a", 3, b"old");
    memtable
        .put_batch_at(&[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")], 4)
        .unwrap();
    assert_eq!(memtable.get_at(b"a", 4).as_deref(), Some(&b"3"[..]));
    assert_eq!(memtable.get_at(b"a", 3).as_deref(), Some(&b"old"[..]));
    assert_eq!(memtable.get_at(b"b", 3), None);
    let mut iter = memtable.scan(Bound::Unbounded, Bound::Unbounded);
    let expected = vec![
        version(b"a", 4, b"3"),
        version(b"a", 3, b"old"),
        version(b"b", 4, b"2"),
    ];
    assert_eq!(collect_versions(&mut iter).unwrap(), expected);
}

/// A memtable scan holds every version of every key within its bounds, newest first, for every
/// kind of bound on either side: an excluded bound rules out all of a key's versions, an
/// included one keeps them all.
#[test]
fn test_task1_memtable_scan_bounds_cover_every_version() {
    let (memtable, model) = three_by_three();
    for (lower, upper) in all_bounds(&[b"a", b"b", b"c", b"bb"]) {
        let mut iter = memtable.scan(lower, upper);
        let actual = collect_versions(&mut iter).unwrap();
        let expected = versions_within(&model, lower, upper);
        assert!(
            actual == expected,
            "scan({lower:?}, {upper:?})\n  got      {}\n  expected {}",
            show_versions(&actual),
            show_versions(&expected)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Task 2: scans as of a read timestamp

/// Over a stream of versions, a reader at `read_ts` gets each key's newest version at or before
/// it, tombstones included, and no other version.
#[test]
fn test_task2_visible_iterator_hands_out_the_visible_version() {
    let (memtable, mut model) = three_by_three();
    put(&memtable, b"b", 6, b"");
    model.put(b"b", 6, b"");
    put(&memtable, b"d", 2, b"d2");
    model.put(b"d", 2, b"d2");
    // The empty key is a key like any other, with versions of its own.
    for (ts, value) in [(3, &b"e3"[..]), (5, b""), (8, b"e8")] {
        put(&memtable, b"", ts, value);
        model.put(b"", ts, value);
    }
    for read_ts in 0..=model.max_ts() + 1 {
        let inner = memtable.scan(Bound::Unbounded, Bound::Unbounded);
        let mut iter = VisibleIterator::new(inner, read_ts).unwrap();
        let actual = collect_versions(&mut iter).unwrap();
        let expected = visible_versions(&model, read_ts);
        assert!(
            actual == expected,
            "as of {read_ts}\n  got      {}\n  expected {}",
            show_versions(&actual),
            show_versions(&expected)
        );
    }
}

/// An engine scan as of a timestamp hides a key whose visible version is a tombstone, and never
/// falls through to the older value the tombstone deletes, from a memtable over an SST.
#[test]
fn test_task2_scan_hides_deleted_keys_as_of_a_timestamp() {
    let (_dir, inner) = open_engine(small_block_options());
    install_l0(
        &inner,
        &[
            version(b"a", 1, b"a1"),
            version(b"b", 2, b"b2"),
            version(b"c", 1, b"c1"),
        ],
    );
    let memtable = inner.snapshot().memtable.clone();
    put(&memtable, b"a", 3, b"");
    put(&memtable, b"b", 4, b"b4");
    put(&memtable, b"c", 5, b"");
    let scan = |read_ts| {
        let mut iter = inner
            .scan_with_ts(Bound::Unbounded, Bound::Unbounded, read_ts)
            .unwrap();
        let entries = collect_user(&mut iter).unwrap();
        let keys: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}={}", show(k), show(v)))
            .collect();
        keys.join(" ")
    };
    assert_eq!(scan(0), "");
    assert_eq!(scan(1), r#"b"a"=b"a1" b"c"=b"c1""#);
    assert_eq!(scan(2), r#"b"a"=b"a1" b"b"=b"b2" b"c"=b"c1""#);
    assert_eq!(scan(3), r#"b"b"=b"b2" b"c"=b"c1""#);
    assert_eq!(scan(4), r#"b"b"=b"b4" b"c"=b"c1""#);
    assert_eq!(scan(5), r#"b"b"=b"b4""#);
    assert_eq!(scan(TS_RANGE_BEGIN), r#"b"b"=b"b4""#);
}

// ---------------------------------------------------------------------------------------------
// Task 3: lookups and scans across every layer

/// Writes `versions` (a timestamp order) to the engine's layers: the oldest quarter as a sorted
/// run of two SSTs below L0, the next as two L0 SSTs, the next into a memtable that is then
/// frozen, the newest into the mutable memtable.
fn layered_engine(versions: &[Version]) -> (tempfile::TempDir, LsmStorageInner, VersionModel) {
    let (dir, inner) = open_engine(small_block_options());
    let mut model = VersionModel::default();
    let quarter = versions.len().div_ceil(4);
    let mut parts = versions.chunks(quarter);
    // The run: one SST per half of the user keys, so no key's versions span two of its SSTs.
    if let Some(part) = parts.next() {
        let mut run_model = VersionModel::default();
        for (k, ts, v) in part {
            run_model.put(k, *ts, v);
            model.put(k, *ts, v);
        }
        let sorted = run_model.versions();
        let keys = run_model.user_keys();
        let middle = keys.get(keys.len() / 2).cloned();
        let (low, high): (Vec<Version>, Vec<Version>) = sorted
            .into_iter()
            .partition(|(k, _, _)| middle.as_ref().is_none_or(|m| k < m));
        let tables: Vec<Vec<Version>> = [low, high].into_iter().filter(|t| !t.is_empty()).collect();
        install_run(&inner, &tables);
    }
    // L0: two SSTs, the older installed first.
    if let Some(part) = parts.next() {
        for half in part.chunks(part.len().div_ceil(2)) {
            let mut table_model = VersionModel::default();
            for (k, ts, v) in half {
                table_model.put(k, *ts, v);
                model.put(k, *ts, v);
            }
            install_l0(&inner, &table_model.versions());
        }
    }
    for (i, part) in parts.enumerate() {
        let memtable = inner.snapshot().memtable.clone();
        for (k, ts, v) in part {
            put(&memtable, k, *ts, v);
            model.put(k, *ts, v);
        }
        if i == 0 {
            freeze(&inner);
        }
    }
    (dir, inner, model)
}

/// Checks every lookup and, at every read timestamp, every scan of `probes`' bounds against the
/// model.
fn check_reads(
    inner: &LsmStorageInner,
    model: &VersionModel,
    probes: &[&'static [u8]],
    context: &str,
) {
    for read_ts in 0..=model.max_ts() + 1 {
        for key in model
            .user_keys()
            .iter()
            .map(|k| &k[..])
            .chain(probes.iter().copied())
        {
            assert_eq!(
                inner.get_with_ts(key, read_ts).unwrap(),
                model.get(key, read_ts),
                "{context}: get {} as of {read_ts}",
                show(key)
            );
        }
        for (lower, upper) in all_bounds(probes) {
            let mut iter = inner.scan_with_ts(lower, upper, read_ts).unwrap();
            let actual = collect_user(&mut iter).unwrap();
            let expected = model.scan(lower, upper, read_ts);
            assert!(
                actual == expected,
                "{context}: scan({lower:?}, {upper:?}) as of {read_ts}\n  got      {}\n  expected {}",
                show_entries(&actual),
                show_entries(&expected)
            );
        }
    }
}

/// A lookup as of a timestamp stops at the first layer holding a version at or before it: a
/// newer version in the memtable is passed over, a tombstone in it hides the older value below.
#[test]
fn test_task3_get_stops_at_the_first_visible_version() {
    let versions = [
        version(b"k", 1, b"run"),
        version(b"j", 1, b"j-run"),
        version(b"k", 3, b"l0"),
        version(b"j", 2, b"j-l0"),
        version(b"k", 5, b""),
        version(b"j", 6, b"j-imm"),
        version(b"k", 7, b"mem"),
        version(b"j", 8, b""),
    ];
    let (_dir, inner, model) = layered_engine(&versions);
    let get = |key: &[u8], ts| inner.get_with_ts(key, ts).unwrap();
    assert_eq!(get(b"k", 0), None);
    assert_eq!(
        get(b"k", 2).as_deref(),
        Some(&b"run"[..]),
        "below the newer L0 version"
    );
    assert_eq!(
        get(b"k", 4).as_deref(),
        Some(&b"l0"[..]),
        "below the memtables' versions"
    );
    assert_eq!(get(b"k", 5), None, "the tombstone hides what is below it");
    assert_eq!(get(b"k", 6), None);
    assert_eq!(get(b"k", 9).as_deref(), Some(&b"mem"[..]));
    assert_eq!(get(b"j", 7).as_deref(), Some(&b"j-imm"[..]));
    assert_eq!(get(b"j", 8), None);
    check_reads(&inner, &model, &[b"j", b"k", b"l"], "fixed versions");
}

/// Random versions over every layer: every lookup and every scan, with all four kinds of bound,
/// at every read timestamp, agree with a model of the versions (seeded; replay with
/// `MINI_LSM_SEED`).
#[test]
fn test_task3_random_versions_against_model() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    for round in 0..20 {
        let mut versions = Vec::new();
        let n = 8 + rng.below(40);
        for ts in 1..=n as u64 {
            let key = format!("k{}", rng.below(6)).into_bytes();
            let value = if rng.chance(25) {
                Vec::new()
            } else {
                format!("v{ts}").into_bytes()
            };
            versions.push((Bytes::from(key), ts, Bytes::from(value)));
        }
        let (_dir, inner, model) = layered_engine(&versions);
        let context = format!(
            "seed {seed}, round {round}, versions {}",
            show_versions(&versions)
        );
        check_reads(&inner, &model, &[b"k0", b"k3", b"k5", b"k9"], &context);
    }
}
