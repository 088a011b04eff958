// SPDX-License-Identifier: Apache-2.0
//! Week 3 day 7: compaction filters, and reads as of an older timestamp (time travel).

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::compact::{CompactionFilter, CompactionOptions, PrefixFilter};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use crate::mvcc::TimeTravelError;

use super::harness::compaction::{flush_all, move_l1_to_l2};
use super::harness::mvcc::{collect_versions, show_versions, version, Version, VersionModel};
use super::harness::{collect_user, open_engine, show, show_entries, test_seed, Rng};

/// Options with compaction by hand only and small blocks.
fn options() -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week2_test(CompactionOptions::NoCompaction);
    options.block_size = 128;
    options
}

/// Every version in the SSTs of the engine's levels, top level first.
fn level_versions(inner: &LsmStorageInner) -> Vec<Version> {
    let snapshot = inner.snapshot();
    let mut out = Vec::new();
    for (_, ids) in &snapshot.levels {
        let tables = ids
            .iter()
            .map(|id| snapshot.table(*id).unwrap().clone())
            .collect();
        let mut iter = SstConcatIterator::create_and_seek_to_first(tables).unwrap();
        out.extend(collect_versions(&mut iter).unwrap());
    }
    out
}

/// The versions of user key `key` among `versions`, as `(ts, value)`.
fn versions_of(versions: &[Version], key: &[u8]) -> Vec<(u64, Bytes)> {
    versions
        .iter()
        .filter(|(k, _, _)| k == key)
        .map(|(_, ts, v)| (*ts, v.clone()))
        .collect()
}

/// `Some(value)` as bytes.
fn val(value: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(value.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Task 1: compaction filters

/// A prefix filter drops every key with its prefix at the next compaction, and nothing else;
/// until then the keys stay readable.
#[test]
fn test_task1_prefix_filter_drops_its_keys_at_compaction() {
    let (_dir, inner) = open_engine(options());
    for i in 0..5 {
        inner
            .put(format!("tmp/{i}").as_bytes(), b"scratch")
            .unwrap();
        inner.put(format!("user/{i}").as_bytes(), b"kept").unwrap();
    }
    inner.put(b"tmp", b"not under the prefix").unwrap();
    flush_all(&inner);
    inner.add_compaction_filter(Arc::new(PrefixFilter::new(&b"tmp/"[..])));
    assert_eq!(
        inner.get(b"tmp/3").unwrap(),
        val("scratch"),
        "not compacted yet"
    );
    inner.force_full_compaction().unwrap();
    let kept = level_versions(&inner);
    let keys: Vec<String> = kept
        .iter()
        .map(|(k, _, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        keys,
        ["tmp", "user/0", "user/1", "user/2", "user/3", "user/4"],
        "{}",
        show_versions(&kept)
    );
    assert_eq!(inner.get(b"tmp/3").unwrap(), None);
    let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    assert_eq!(collect_user(&mut iter).unwrap().len(), 6);
}

/// A filter never touches a version above the watermark: a snapshot keeps the versions newer
/// than it, and the reads above it; the version it reads itself is filtered to "no value",
/// never to an older one. Once the snapshot is gone, the next compaction drops the rest.
#[test]
fn test_task1_filter_spares_versions_above_the_watermark() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"tmp/a", b"v1").unwrap();
    inner.put(b"tmp/a", b"v2").unwrap();
    inner.put(b"user", b"u3").unwrap();
    let snapshot = inner.new_snapshot();
    inner.put(b"tmp/a", b"v4").unwrap();
    inner.put(b"tmp/a", b"v5").unwrap();
    flush_all(&inner);
    inner.add_compaction_filter(Arc::new(PrefixFilter::new(&b"tmp/"[..])));
    inner.force_full_compaction().unwrap();
    let kept = level_versions(&inner);
    assert_eq!(
        versions_of(&kept, b"tmp/a"),
        vec![(5, Bytes::from("v5")), (4, Bytes::from("v4"))],
        "above the watermark (3) everything stays; at the bottom the filtered v2 goes: {}",
        show_versions(&kept)
    );
    assert_eq!(inner.get(b"tmp/a").unwrap(), val("v5"));
    assert_eq!(
        snapshot.get(b"tmp/a").unwrap(),
        None,
        "filtered: no value, never v1"
    );
    assert_eq!(snapshot.get(b"user").unwrap(), val("u3"));
    drop(snapshot);
    inner.force_full_compaction().unwrap();
    assert_eq!(
        level_versions(&inner),
        vec![version(b"user", 3, b"u3")],
        "with the watermark past them, every version goes"
    );
}

/// Above the bottom a filtered version becomes a tombstone: an older version of the key in a
/// level below does not show through.
#[test]
fn test_task1_filtered_key_never_resurfaces_from_below() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"tmp/a", b"old").unwrap();
    inner.put(b"user", b"u").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    move_l1_to_l2(&inner);
    inner.put(b"tmp/a", b"new").unwrap();
    flush_all(&inner);
    inner.add_compaction_filter(Arc::new(PrefixFilter::new(&b"tmp/"[..])));
    inner.force_full_compaction().unwrap();
    let kept = level_versions(&inner);
    assert_eq!(
        versions_of(&kept, b"tmp/a"),
        vec![(3, Bytes::new()), (1, Bytes::from("old"))],
        "a tombstone in L1 over the old version in L2: {}",
        show_versions(&kept)
    );
    assert_eq!(
        inner.get(b"tmp/a").unwrap(),
        None,
        "the old value came back"
    );
    let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    let entries = collect_user(&mut iter).unwrap();
    assert_eq!(entries.len(), 1, "{}", show_entries(&entries));
}

/// Drops values that say they expired: a filter sees the value too.
#[derive(Debug)]
struct Expired;

impl CompactionFilter for Expired {
    fn drops(&self, _key: &[u8], value: &[u8]) -> bool {
        value.starts_with(b"expired")
    }
}

/// A filter decides on the key and the value, and several filters drop what any of them names;
/// without any, compaction drops nothing.
#[test]
fn test_task1_filters_see_keys_and_values() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"a", b"expired").unwrap();
    inner.put(b"b", b"fresh").unwrap();
    inner
        .put(b"c", b"expired, but in a table that is kept")
        .unwrap();
    inner.put(b"tmp/d", b"fresh").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    assert_eq!(
        level_versions(&inner).len(),
        4,
        "no filter: nothing dropped"
    );
    inner.add_compaction_filter(Arc::new(Expired));
    inner.add_compaction_filter(Arc::new(PrefixFilter::new(&b"tmp/"[..])));
    inner.put(b"c", b"renewed").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let kept = level_versions(&inner);
    let keys: Vec<&[u8]> = kept.iter().map(|(k, _, _)| &k[..]).collect();
    assert_eq!(keys, vec![&b"b"[..], b"c"], "{}", show_versions(&kept));
    assert_eq!(inner.get(b"c").unwrap(), val("renewed"));
}

// ---------------------------------------------------------------------------------------------
// Task 2: time travel

/// While a snapshot holds the watermark, `get_at` and `scan_at` read every later timestamp
/// exactly as the history was then, from memtables, L0 and levels alike (seeded; replay with
/// `MINI_LSM_SEED`).
#[test]
fn test_task2_reads_as_of_every_timestamp_the_watermark_allows() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let (_dir, inner) = open_engine(options());
    let mut model = VersionModel::default();
    inner.put(b"k00", b"first").unwrap();
    model.put(b"k00", 1, b"first");
    let holder = inner.new_snapshot();
    for step in 0..150 {
        let key = format!("k{:02}", rng.below(8)).into_bytes();
        if rng.chance(25) {
            inner.delete(&key).unwrap();
            model.put(&key, inner.latest_commit_ts(), b"");
        } else {
            let value = format!("v{step}").into_bytes();
            inner.put(&key, &value).unwrap();
            model.put(&key, inner.latest_commit_ts(), &value);
        }
        match step % 50 {
            20 => flush_all(&inner),
            40 => {
                flush_all(&inner);
                inner.force_full_compaction().unwrap();
            }
            _ => {}
        }
    }
    for ts in holder.read_ts()..=inner.latest_commit_ts() {
        for key in model.user_keys() {
            assert_eq!(
                inner.get_at(&key, ts).unwrap(),
                model.get(&key, ts),
                "seed {seed}: {} as of {ts}",
                show(&key)
            );
        }
        let mut iter = inner
            .scan_at(Bound::Included(b"k02"), Bound::Excluded(b"k06"), ts)
            .unwrap();
        let expected = model.scan(Bound::Included(b"k02"), Bound::Excluded(b"k06"), ts);
        assert!(
            collect_user(&mut iter).unwrap() == expected,
            "seed {seed}: scan as of {ts}"
        );
    }
}

/// A read below the watermark, or above the latest commit, is refused with an error the caller
/// can match on, saying which and why; the edges themselves are readable.
#[test]
fn test_task2_refuses_below_the_watermark_and_above_the_latest() {
    let (_dir, inner) = open_engine(options());
    for i in 1..=5 {
        inner.put(b"k", format!("v{i}").as_bytes()).unwrap();
    }
    let refusal = |ts: u64| -> TimeTravelError {
        let error = inner.get_at(b"k", ts).unwrap_err();
        *error
            .downcast_ref::<TimeTravelError>()
            .unwrap_or_else(|| panic!("not a time-travel error: {error:#}"))
    };
    assert_eq!(
        inner.get_at(b"k", 5).unwrap(),
        val("v5"),
        "no reader: the latest"
    );
    assert_eq!(
        refusal(4),
        TimeTravelError::BelowWatermark {
            ts: 4,
            watermark: 5
        }
    );
    assert_eq!(
        refusal(6),
        TimeTravelError::AboveLatestCommit { ts: 6, latest: 5 }
    );
    let message = inner.get_at(b"k", 4).unwrap_err().to_string();
    assert!(
        message.contains("watermark") && message.contains('4'),
        "{message}"
    );
    let message = inner.get_at(b"k", 6).unwrap_err().to_string();
    assert!(message.contains("latest commit is 5"), "{message}");
    let snapshot = inner.new_snapshot();
    inner.put(b"k", b"v6").unwrap();
    inner.put(b"k", b"v7").unwrap();
    assert_eq!(inner.get_at(b"k", 5).unwrap(), val("v5"), "the snapshot's");
    assert_eq!(inner.get_at(b"k", 6).unwrap(), val("v6"));
    assert!(inner
        .scan_at(Bound::Unbounded, Bound::Unbounded, 4)
        .is_err());
    assert!(inner.new_snapshot_at(8).is_err());
    drop(snapshot);
    assert_eq!(
        refusal(6),
        TimeTravelError::BelowWatermark {
            ts: 6,
            watermark: 7
        }
    );
    assert_eq!(
        inner.mvcc.num_retained_snapshots(),
        0,
        "refusals hold nothing"
    );
}

/// A snapshot made at an older timestamp holds the watermark there: once the snapshot that
/// allowed it is gone, compaction still keeps what it reads, until it is dropped too.
#[test]
fn test_task2_snapshot_at_holds_the_watermark() {
    let (_dir, inner) = open_engine(options());
    inner.put(b"k", b"v1").unwrap();
    let first = inner.new_snapshot();
    inner.put(b"k", b"v2").unwrap();
    inner.put(b"k", b"v3").unwrap();
    let older = inner.new_snapshot_at(2).unwrap();
    assert_eq!(older.read_ts(), 2);
    drop(first);
    assert_eq!(inner.watermark(), 2);
    inner.put(b"k", b"v4").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    assert_eq!(older.get(b"k").unwrap(), val("v2"));
    assert_eq!(inner.get_at(b"k", 3).unwrap(), val("v3"));
    drop(older);
    assert_eq!(inner.watermark(), 4);
    inner.force_full_compaction().unwrap();
    assert_eq!(level_versions(&inner), vec![version(b"k", 4, b"v4")]);
}

/// Readers travelling to timestamps near the watermark while a writer commits, flushes and
/// compacts either read exactly the history or are refused; a reader holding a snapshot is
/// never refused at or after it.
#[test]
fn test_task2_time_travel_beside_compaction_reads_right_or_is_refused() {
    let (_dir, inner) = open_engine(options());
    let inner = Arc::new(inner);
    inner.put(b"k", b"1").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // A single writer: the put that commits at `ts` writes the value `ts`.
    let readers: Vec<_> = (0..2)
        .map(|id| {
            let (inner, done) = (inner.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(id);
                let (mut read, mut refused) = (0, 0);
                let value = |ts: u64| Some(Bytes::from(ts.to_string()));
                while !done.load(Ordering::Acquire) || read == 0 {
                    let held = inner.new_snapshot();
                    let ts = held.read_ts() + rng.below(3) as u64;
                    if ts <= inner.latest_commit_ts() {
                        assert_eq!(inner.get_at(b"k", ts).unwrap(), value(ts), "held at {ts}");
                        read += 1;
                    }
                    drop(held);
                    let ts = inner.watermark().saturating_sub(rng.below(2) as u64).max(1);
                    match inner.get_at(b"k", ts) {
                        Ok(got) => {
                            assert_eq!(got, value(ts), "as of {ts}");
                            read += 1;
                        }
                        Err(error) => {
                            assert!(
                                error.downcast_ref::<TimeTravelError>().is_some(),
                                "{error:#}"
                            );
                            refused += 1;
                        }
                    }
                }
                (read, refused)
            })
        })
        .collect();
    for i in 2..=1500u64 {
        inner.put(b"k", i.to_string().as_bytes()).unwrap();
        assert_eq!(inner.latest_commit_ts(), i);
        if i % 100 == 0 {
            flush_all(&inner);
            inner.force_full_compaction().unwrap();
        }
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let (read, refused) = reader.join().expect("a reader read a wrong version");
        println!("reader: {read} reads, {refused} refused");
    }
}
