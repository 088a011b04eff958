// SPDX-License-Identifier: Apache-2.0
//! Week 3 day 4: snapshots, the watermark, and compaction that keeps what snapshots read.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::compact::{CompactionOptions, SimpleLeveledCompactionOptions};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, WriteBatchRecord};
use crate::mvcc::Watermark;

use super::harness::compaction::{flush_all, move_l1_to_l2};
use super::harness::mvcc::{collect_versions, show_versions, version, Version};
use super::harness::{collect_user, freeze, open_engine, show, show_entries};
use super::harness::{test_seed, Rng};

/// Options with compaction by hand only, small blocks and SSTs of `target_sst_size` bytes.
fn options(target_sst_size: usize) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week2_test(CompactionOptions::NoCompaction);
    options.block_size = 128;
    options.target_sst_size = target_sst_size;
    options
}

/// Every version in the SSTs of the engine's levels.
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

/// A scan's entries as `key=value` text, for short assertions.
fn text(entries: &[(Bytes, Bytes)]) -> String {
    let shown: Vec<String> = entries
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    shown.join(" ")
}

// ---------------------------------------------------------------------------------------------
// Task 1: the watermark

/// The watermark is the smallest registered read timestamp, counting readers that share one;
/// none once every reader is gone.
#[test]
fn test_task1_watermark_is_the_oldest_reader() {
    let mut watermark = Watermark::new();
    assert_eq!(watermark.watermark(), None);
    for ts in [5, 3, 9, 3] {
        watermark.add_reader(ts);
    }
    assert_eq!(watermark.watermark(), Some(3));
    assert_eq!(watermark.num_retained_snapshots(), 4);
    watermark.remove_reader(3);
    assert_eq!(
        watermark.watermark(),
        Some(3),
        "another reader is still at 3"
    );
    watermark.remove_reader(3);
    assert_eq!(watermark.watermark(), Some(5));
    watermark.remove_reader(9);
    assert_eq!(watermark.watermark(), Some(5));
    watermark.remove_reader(5);
    assert_eq!(watermark.watermark(), None);
    assert_eq!(watermark.num_retained_snapshots(), 0);
}

/// Random adds and removes agree with a multiset of read timestamps (seeded; replay with
/// `MINI_LSM_SEED`).
#[test]
fn test_task1_watermark_random_against_model() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let mut watermark = Watermark::new();
    let mut model: BTreeMap<u64, usize> = BTreeMap::new();
    for step in 0..5000 {
        let live: Vec<u64> = model.keys().copied().collect();
        if live.is_empty() || rng.chance(55) {
            let ts = rng.below(50) as u64;
            watermark.add_reader(ts);
            *model.entry(ts).or_default() += 1;
        } else {
            let ts = live[rng.below(live.len())];
            watermark.remove_reader(ts);
            let count = model.get_mut(&ts).unwrap();
            *count -= 1;
            if *count == 0 {
                model.remove(&ts);
            }
        }
        assert_eq!(
            watermark.watermark(),
            model.keys().next().copied(),
            "seed {seed}, step {step}"
        );
        assert_eq!(
            watermark.num_retained_snapshots(),
            model.values().sum::<usize>()
        );
    }
}

/// With no snapshot, the engine's watermark is its latest commit.
#[test]
fn test_task1_engine_watermark_without_snapshots_is_the_latest_commit() {
    let (_dir, inner) = open_engine(options(1 << 20));
    assert_eq!(inner.watermark(), 0);
    inner.put(b"a", b"1").unwrap();
    inner.put(b"b", b"2").unwrap();
    assert_eq!(inner.watermark(), 2);
}

// ---------------------------------------------------------------------------------------------
// Task 2: snapshots

/// A snapshot reads as of its creation: later puts, deletes and batches stay invisible to it,
/// through freezes and flushes, while plain reads see them.
#[test]
fn test_task2_snapshot_reads_as_of_its_creation() {
    let (_dir, inner) = open_engine(options(1 << 20));
    inner.put(b"a", b"a1").unwrap();
    inner.put(b"b", b"b1").unwrap();
    let snapshot = inner.new_snapshot();
    assert_eq!(snapshot.read_ts(), 2);
    inner.put(b"a", b"a2").unwrap();
    inner.delete(b"b").unwrap();
    inner
        .write_batch(&[
            WriteBatchRecord::Put(&b"c"[..], &b"c3"[..]),
            WriteBatchRecord::Put(b"a", b"a3"),
        ])
        .unwrap();
    let check = |when: &str| {
        assert_eq!(
            snapshot.get(b"a").unwrap().as_deref(),
            Some(&b"a1"[..]),
            "{when}"
        );
        assert_eq!(
            snapshot.get(b"b").unwrap().as_deref(),
            Some(&b"b1"[..]),
            "{when}"
        );
        assert_eq!(snapshot.get(b"c").unwrap(), None, "{when}");
        let mut iter = snapshot.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
        assert_eq!(
            text(&collect_user(&mut iter).unwrap()),
            "a=a1 b=b1",
            "{when}"
        );
        let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
        assert_eq!(
            text(&collect_user(&mut iter).unwrap()),
            "a=a3 c=c3",
            "{when}"
        );
    };
    check("in the memtable");
    freeze(&inner);
    check("frozen");
    flush_all(&inner);
    check("flushed");
}

/// A snapshot holds the watermark at its read timestamp until it is dropped; the oldest live
/// snapshot sets it.
#[test]
fn test_task2_snapshots_hold_the_watermark_until_dropped() {
    let (_dir, inner) = open_engine(options(1 << 20));
    inner.put(b"a", b"1").unwrap();
    let first = inner.new_snapshot();
    let also_first = inner.new_snapshot();
    inner.put(b"a", b"2").unwrap();
    inner.put(b"a", b"3").unwrap();
    let second = inner.new_snapshot();
    inner.put(b"a", b"4").unwrap();
    assert_eq!((first.read_ts(), second.read_ts()), (1, 3));
    assert_eq!(inner.watermark(), 1);
    assert_eq!(inner.mvcc.num_retained_snapshots(), 3);
    drop(first);
    assert_eq!(inner.watermark(), 1, "another snapshot reads at 1");
    drop(also_first);
    assert_eq!(inner.watermark(), 3);
    drop(second);
    assert_eq!(inner.watermark(), 4, "no snapshot: the latest commit");
    assert_eq!(inner.mvcc.num_retained_snapshots(), 0);
}

/// A scan made through a snapshot keeps reading the snapshot's view after the snapshot is
/// dropped and a compaction collapsed the versions it reads.
#[test]
fn test_task2_scan_outlives_its_snapshot() {
    let (_dir, inner) = open_engine(options(1 << 20));
    for i in 0..20 {
        inner.put(format!("k{i:02}").as_bytes(), b"old").unwrap();
    }
    flush_all(&inner);
    let snapshot = inner.new_snapshot();
    let mut iter = snapshot.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    drop(snapshot);
    for i in 0..20 {
        inner.put(format!("k{i:02}").as_bytes(), b"new").unwrap();
    }
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let entries = collect_user(&mut iter).unwrap();
    assert_eq!(entries.len(), 20);
    assert!(
        entries.iter().all(|(_, v)| &v[..] == b"old"),
        "{}",
        show_entries(&entries)
    );
}

// ---------------------------------------------------------------------------------------------
// Task 3: compaction keeps what snapshots read

/// Compaction keeps every version above the oldest snapshot and the newest at or below it:
/// each snapshot still reads its view; once they are gone, a compaction leaves one version.
#[test]
fn test_task3_compaction_keeps_what_snapshots_read() {
    let (_dir, inner) = open_engine(options(1 << 20));
    let mut snapshots = Vec::new();
    let mut views = Vec::new();
    for round in 1..=5 {
        for i in 0..4 {
            inner
                .put(format!("k{i}").as_bytes(), format!("r{round}").as_bytes())
                .unwrap();
        }
        if round % 2 == 0 {
            inner.delete(b"k1").unwrap();
        }
        if round != 3 {
            let snapshot = inner.new_snapshot();
            let mut iter = snapshot.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
            views.push(collect_user(&mut iter).unwrap());
            snapshots.push(snapshot);
        }
        flush_all(&inner);
    }
    inner.force_full_compaction().unwrap();
    let kept = level_versions(&inner);
    // Snapshots at 4, 9, 18 and 22. Above the oldest (at 4) everything stays, even k0@10, which
    // no snapshot reads; k0@1 is what the snapshot at 4 reads.
    let k0: Vec<u64> = kept
        .iter()
        .filter(|(k, _, _)| &k[..] == b"k0")
        .map(|(_, ts, _)| *ts)
        .collect();
    assert_eq!(k0, vec![19, 14, 10, 5, 1], "{}", show_versions(&kept));
    for (snapshot, view) in snapshots.iter().zip(&views) {
        let mut iter = snapshot.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
        assert_eq!(
            text(&collect_user(&mut iter).unwrap()),
            text(view),
            "the snapshot at {} reads something else after the compaction",
            snapshot.read_ts()
        );
        for (key, value) in view {
            assert_eq!(snapshot.get(key).unwrap().as_ref(), Some(value));
        }
    }
    drop(snapshots);
    inner.force_full_compaction().unwrap();
    let kept = level_versions(&inner);
    let keys: Vec<&[u8]> = kept.iter().map(|(k, _, _)| &k[..]).collect();
    assert_eq!(
        keys,
        vec![&b"k0"[..], b"k1", b"k2", b"k3"],
        "{}",
        show_versions(&kept)
    );
}

/// At the bottom, a tombstone that a live snapshot reads past stays, with the version the
/// snapshot sees; when the snapshot goes, the next compaction drops them both.
#[test]
fn test_task3_bottom_tombstone_kept_while_a_snapshot_needs_what_it_hides() {
    let (_dir, inner) = open_engine(options(1 << 20));
    inner.put(b"k", b"v1").unwrap();
    inner.put(b"k", b"v2").unwrap();
    let snapshot = inner.new_snapshot();
    inner.delete(b"k").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    assert_eq!(
        level_versions(&inner),
        vec![version(b"k", 3, b""), version(b"k", 2, b"v2")]
    );
    assert_eq!(snapshot.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(inner.get(b"k").unwrap(), None);
    drop(snapshot);
    inner.force_full_compaction().unwrap();
    assert_eq!(level_versions(&inner), vec![], "nothing is left to hide");
}

/// A compaction into a level above others keeps what snapshots read too, and reads through
/// every level still see each snapshot's view.
#[test]
fn test_task3_snapshots_read_through_levels() {
    let (_dir, inner) = open_engine(options(400));
    for i in 0..30 {
        inner.put(format!("k{i:02}").as_bytes(), b"base").unwrap();
    }
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    move_l1_to_l2(&inner);
    let base = inner.new_snapshot();
    for i in (0..30).step_by(3) {
        inner.put(format!("k{i:02}").as_bytes(), b"newer").unwrap();
    }
    for i in (1..30).step_by(5) {
        inner.delete(format!("k{i:02}").as_bytes()).unwrap();
    }
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    for i in 0..30 {
        let key = format!("k{i:02}");
        assert_eq!(
            base.get(key.as_bytes()).unwrap().as_deref(),
            Some(&b"base"[..]),
            "{} as of the base snapshot",
            show(key.as_bytes())
        );
        let expected = if i % 5 == 1 {
            None
        } else if i % 3 == 0 {
            Some(&b"newer"[..])
        } else {
            Some(&b"base"[..])
        };
        assert_eq!(
            inner.get(key.as_bytes()).unwrap().as_deref(),
            expected,
            "{key} now"
        );
    }
}

/// The history a random workload committed, to read any snapshot's view from.
#[derive(Default)]
struct History {
    /// Every version of every key (empty value: deleted), by key then timestamp.
    versions: BTreeMap<Vec<u8>, BTreeMap<u64, Vec<u8>>>,
}

impl History {
    /// The live entries as of `ts`.
    fn view(&self, ts: u64) -> Vec<(Bytes, Bytes)> {
        self.versions
            .iter()
            .filter_map(|(k, versions)| {
                let (_, v) = versions.range(..=ts).next_back()?;
                (!v.is_empty()).then(|| (Bytes::from(k.clone()), Bytes::from(v.clone())))
            })
            .collect()
    }
}

/// Random writes, snapshots made and dropped, flushes and compactions of every kind: every live
/// snapshot always reads exactly the history as of its timestamp, and plain reads the latest
/// (seeded; replay with `MINI_LSM_SEED`).
#[test]
fn test_task3_random_snapshots_against_history() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let mut opts = options(300);
    opts.compaction_options = CompactionOptions::Simple(SimpleLeveledCompactionOptions {
        size_ratio_percent: 200,
        level0_file_num_compaction_trigger: 2,
        max_levels: 3,
    });
    let (_dir, inner) = open_engine(opts);
    let mut history = History::default();
    let mut snapshots = Vec::new();
    for step in 0..600 {
        let key = format!("k{:02}", rng.below(16)).into_bytes();
        match rng.below(100) {
            0..=44 => {
                let value = format!("v{step}").into_bytes();
                inner.put(&key, &value).unwrap();
                let ts = inner.latest_commit_ts();
                history.versions.entry(key).or_default().insert(ts, value);
            }
            45..=59 => {
                inner.delete(&key).unwrap();
                let ts = inner.latest_commit_ts();
                history
                    .versions
                    .entry(key)
                    .or_default()
                    .insert(ts, Vec::new());
            }
            60..=69 => snapshots.push(inner.new_snapshot()),
            70..=77 if !snapshots.is_empty() => {
                let gone = snapshots.swap_remove(rng.below(snapshots.len()));
                drop(gone);
            }
            78..=89 => flush_all(&inner),
            90..=95 => inner.trigger_compaction().unwrap(),
            _ => inner.force_full_compaction().unwrap(),
        }
        if step % 20 == 19 || rng.chance(5) {
            for snapshot in &snapshots {
                let mut iter = snapshot.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
                let actual = collect_user(&mut iter).unwrap();
                let expected = history.view(snapshot.read_ts());
                assert!(
                    actual == expected,
                    "seed {seed}, step {step}: the snapshot at {} reads\n  got      {}\n  \
                     expected {}\n{}",
                    snapshot.read_ts(),
                    show_entries(&actual),
                    show_entries(&expected),
                    inner.dump()
                );
            }
            let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
            let actual = collect_user(&mut iter).unwrap();
            assert_eq!(
                actual,
                history.view(inner.latest_commit_ts()),
                "seed {seed}, step {step}"
            );
        }
    }
}
