// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 3: tiered compaction: flushing tiers, the three rules, and replacing merged tiers.

use std::ops::Bound::Unbounded;

use bytes::Bytes;

use crate::compact::simulator::Simulator;
use crate::compact::{
    CompactionOptions, CompactionTask, LsmShape, SstInfo, TieredCompactionController,
    TieredCompactionOptions, TieredCompactionTask,
};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::StorageIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};

// ---------------------------------------------------------------------------------------------
// Helpers of this chapter

fn tiered(num_tiers: usize, max_size_amplification_percent: usize) -> TieredCompactionOptions {
    TieredCompactionOptions {
        num_tiers,
        max_size_amplification_percent,
        size_ratio: 1,
        min_merge_width: 2,
        max_merge_width: None,
    }
}

/// A shape of tiers holding `sizes[0]` (newest), `sizes[1]`, .. SSTs; tier `t` holds SSTs
/// `100 * (t + 1)..`, and is named by its first.
fn tiers_of(sizes: &[usize]) -> LsmShape {
    let mut shape = LsmShape::default();
    for (t, size) in sizes.iter().enumerate() {
        let ids: Vec<usize> = (0..*size).map(|i| 100 * (t + 1) + i).collect();
        for (i, id) in ids.iter().enumerate() {
            let info = SstInfo {
                size: 1,
                first_key: Bytes::from(format!("{i:03}a")),
                last_key: Bytes::from(format!("{i:03}z")),
            };
            shape.sstables.insert(*id, info);
        }
        shape.levels.push((ids[0], ids));
    }
    shape
}

/// The task that merges `count` tiers of `sizes` from the tier at `start` on.
fn merge(sizes: &[usize], start: usize, count: usize) -> TieredCompactionTask {
    TieredCompactionTask {
        tiers: tiers_of(sizes).levels[start..start + count].to_vec(),
        bottom_tier_included: start + count == sizes.len(),
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn open(options: TieredCompactionOptions) -> (tempfile::TempDir, LsmStorageInner) {
    let dir = tempfile::tempdir().unwrap();
    let options = LsmStorageOptions::default_for_week2_test(CompactionOptions::Tiered(options));
    let storage = LsmStorageInner::open(dir.path(), options).unwrap();
    (dir, storage)
}

/// Puts `value` under keys `range` and deletes keys `deletes`, then flushes; returns the SST id.
fn flush(
    storage: &LsmStorageInner,
    range: std::ops::Range<usize>,
    value: &str,
    deletes: &[usize],
) -> usize {
    for i in range {
        storage.put(&key(i), value.as_bytes()).unwrap();
    }
    for i in deletes {
        storage.delete(&key(*i)).unwrap();
    }
    let id = storage.snapshot().memtable.id();
    storage
        .force_freeze_memtable(&storage.state_lock.lock())
        .unwrap();
    storage.force_flush_next_imm_memtable().unwrap();
    id
}

/// Every entry of a tier, tombstones included.
fn tier_entries(storage: &LsmStorageInner, ids: &[usize]) -> Vec<(Bytes, Bytes)> {
    let snapshot = storage.snapshot();
    let tables = ids
        .iter()
        .map(|id| snapshot.table(*id).unwrap().clone())
        .collect();
    let mut iter = SstConcatIterator::create_and_seek_to_first(tables).unwrap();
    let mut out = Vec::new();
    while iter.is_valid() {
        out.push((
            Bytes::copy_from_slice(iter.key().raw_ref()),
            Bytes::copy_from_slice(iter.value()),
        ));
        iter.next().unwrap();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Task 1: flushing tiers

/// With tiered compaction a flush adds a tier at the front of `levels`, named by its SST, and
/// nothing to L0; reads search the tiers newest first.
#[test]
fn test_task1_flush_adds_a_tier_in_front() {
    let (_dir, storage) = open(tiered(10, 200));
    let a = flush(&storage, 0..100, "a", &[]);
    let b = flush(&storage, 50..150, "b", &[7]);
    let c = flush(&storage, 100..120, "c", &[60]);
    let snapshot = storage.snapshot();
    assert!(
        snapshot.l0_sstables.is_empty(),
        "tiered compaction has no L0"
    );
    assert_eq!(
        snapshot.levels,
        vec![(c, vec![c]), (b, vec![b]), (a, vec![a])]
    );
    for i in 0..150 {
        let expected: Option<&[u8]> = match i {
            7 | 60 => None,
            0..50 => Some(b"a"),
            100..120 => Some(b"c"),
            _ => Some(b"b"),
        };
        assert_eq!(
            storage.get(&key(i)).unwrap().as_deref(),
            expected,
            "key {i}"
        );
    }
    let iter = storage.scan(Unbounded, Unbounded).unwrap();
    assert_eq!(iter.num_active_iterators(), 3, "one iterator per tier");
}

// ---------------------------------------------------------------------------------------------
// Task 2: the rules

/// Each rule, at its boundaries: nothing below `num_tiers`; space amplification at exactly the
/// limit merges all; the size ratio takes tiers while the next is at most 101% of those taken,
/// starting from each tier in turn, if that is at least `min_merge_width`; else, only past
/// `num_tiers`, the tier count rule merges the newest `n - num_tiers + 1`; `max_merge_width`
/// caps the last two, and `min_merge_width` holds for both.
#[test]
fn test_task2_tiered_rules() {
    let check =
        |options: TieredCompactionOptions, sizes: &[usize], task: Option<(usize, usize)>| {
            let got = TieredCompactionController::new(options).generate_task(&tiers_of(sizes));
            let expected = task.map(|(start, count)| merge(sizes, start, count));
            assert_eq!(got, expected, "tiers {sizes:?}");
        };
    check(tiered(3, 200), &[1, 1], None);
    check(tiered(3, 200), &[1, 1, 1], Some((0, 3))); // 2 >= 200% of 1: space amplification.
    check(tiered(3, 200), &[1, 3, 2], Some((0, 3))); // 4 >= 200% of 2, exactly.
    check(tiered(3, 200), &[1, 1, 3], Some((0, 2))); // Size ratio: 1 <= 101% of 1, 3 > 2.02.
    check(tiered(3, 200), &[3, 3, 7], Some((0, 2))); // Size ratio: 3 <= 3.03, 7 > 6.06.
    check(tiered(3, 200), &[1, 2, 2], Some((1, 2))); // 3 < 200% of 2; size ratio from tier 1.
    check(tiered(3, 1000), &[1, 4, 4, 20], Some((1, 2))); // From tier 1, not to the bottom.
    check(tiered(4, 1000), &[1, 2, 4, 8], None); // At the trigger, and no rule fires.
    check(tiered(4, 1000), &[1, 2, 4, 8, 16, 100], Some((0, 3))); // Count: 6 - 4 + 1.
    let width = |min, max| TieredCompactionOptions {
        min_merge_width: min,
        max_merge_width: max,
        ..tiered(3, 1000)
    };
    check(width(2, Some(3)), &[1, 1, 1, 1, 10], Some((0, 3))); // Size ratio, capped at 3.
    check(width(3, None), &[1, 1, 5, 10], None); // Size ratio takes 2 < 3; count 4 - 3 + 1 < 3.
    check(width(3, None), &[1, 2, 4, 8, 100], Some((0, 3))); // Count: 5 - 3 + 1 = 3.
    check(width(2, Some(2)), &[1, 2, 4, 8, 16, 100], Some((0, 2))); // Count 4, capped at 2.
    check(width(2, Some(2)), &[1, 1, 1, 1, 1, 1], Some((0, 2)));
    let strict = TieredCompactionOptions {
        size_ratio: 0,
        ..tiered(3, 1000)
    };
    check(strict.clone(), &[2, 2, 5], Some((0, 2))); // 2 <= 100% of 2.
    check(strict.clone(), &[2, 3, 5], None); // 3 > 2, 5 > 3, and 3 tiers are not past 3.
    check(strict, &[2, 3, 5, 7], Some((0, 2))); // Count: 4 - 3 + 1.
}

/// Flushes one SST at a time and compacts until the controller is done: the tiers after every
/// flush are exactly those of tiered compaction with 3 tiers, 200% space amplification and a
/// size ratio of 1%, where each rule takes its turn.
#[test]
fn test_task2_tiered_exact_shapes_after_flushes() {
    let mut sim = Simulator::new(&CompactionOptions::Tiered(tiered(3, 200)), 1 << 20);
    let mut shapes = Vec::new();
    for _ in 0..27 {
        sim.flush(1 << 20, 0, u64::MAX);
        sim.compact_until_idle(|_, _| Ok(())).unwrap();
        shapes.push(sim.shape_line());
    }
    let expected = [
        "tiers 1",
        "tiers 1 1",
        "tiers 3", // Space amplification: 2 >= 200% of 1.
        "tiers 1 3",
        "tiers 2 3",   // Size ratio: 1 <= 101% of 1.
        "tiers 1 2 3", // Three tiers, and no rule fires.
        "tiers 7",     // Size ratio, and all of it: 1 1 (2) 2 (4) 3.
        "tiers 1 7",
        "tiers 2 7",
        "tiers 1 2 7",
        "tiers 4 7", // Size ratio: 1 1 2.
        "tiers 1 4 7",
        "tiers 2 4 7",
        "tiers 3 4 7", // Tier count: 4 tiers, merge the newest 2.
        "tiers 15",    // Count (1 3 4 7 to 4 4 7), then size ratio: 4 4 (8) 7.
        "tiers 1 15",
        "tiers 2 15",
        "tiers 1 2 15",
        "tiers 4 15",
        "tiers 1 4 15",
        "tiers 2 4 15",
        "tiers 3 4 15",
        "tiers 8 15", // Count (1 3 4 15 to 4 4 15), then size ratio from the newest: 4 4.
        "tiers 1 8 15",
        "tiers 2 8 15",
        "tiers 3 8 15", // Tier count: no two of 1 2 8 15 are of similar size.
        "tiers 4 8 15",
    ];
    assert_eq!(shapes, expected);
}

/// Tiered compaction relies on a tree without L0 (it never compacts L0, and reads L0 before
/// every tier): an engine whose tree has an L0 SST, put there by hand, refuses to compact with
/// an error that names L0, rather than merging tiers that the L0 SST hides.
#[test]
fn test_task2_tiered_engine_refuses_a_tree_with_l0() {
    let (_dir, storage) = open(tiered(3, 200));
    let a = flush(&storage, 0..10, "a", &[]);
    {
        let _state_lock = storage.state_lock.lock();
        let mut next = storage.snapshot().as_ref().clone();
        next.levels.clear();
        next.l0_sstables = vec![a];
        *storage.state.write() = std::sync::Arc::new(next);
    }
    for value in ["b", "c", "d"] {
        flush(&storage, 0..10, value, &[]);
    }
    let before = storage.snapshot().shape();
    let error = storage
        .trigger_compaction()
        .expect_err("a tiered tree with an L0 SST");
    assert!(format!("{error:#}").contains("L0"), "{error:#}");
    assert_eq!(storage.snapshot().shape(), before, "nothing was compacted");
}

// ---------------------------------------------------------------------------------------------
// Task 3: replacing merged tiers

/// The output becomes one tier named by its first SST, in the place of the merged tiers; tiers
/// flushed during the compaction stay in front, older ones behind; an empty output removes them.
#[test]
fn test_task3_tiered_apply_keeps_new_tiers_in_front() {
    let controller = TieredCompactionController::new(tiered(3, 200));
    let mut shape = tiers_of(&[1, 1, 2, 3]);
    let task = merge(&[1, 1, 2, 3], 0, 3);
    shape.levels.insert(0, (900, vec![900])); // Flushed while the compaction ran.
    let next = controller.apply_result(&shape, &task, &[901, 902]);
    assert_eq!(
        next.levels,
        vec![
            (900, vec![900]),
            (901, vec![901, 902]),
            (400, vec![400, 401, 402])
        ]
    );
    let next = controller.apply_result(&shape, &task, &[]);
    assert_eq!(
        next.levels,
        vec![(900, vec![900]), (400, vec![400, 401, 402])]
    );
}

/// Through the engine: the third flush triggers a merge of all tiers into one new tier that
/// holds the newest values and no tombstone (it is the bottom); a merge of the newest tiers
/// only (not the bottom) keeps its tombstones, and a tier flushed while it ran stays in front.
#[test]
fn test_task3_tiered_engine_merges_tiers() {
    let (_dir, storage) = open(tiered(3, 200));
    let a = flush(&storage, 0..100, "a", &[]);
    let b = flush(&storage, 50..150, "b", &[10]);
    storage.trigger_compaction().unwrap();
    assert_eq!(
        storage.snapshot().levels,
        vec![(b, vec![b]), (a, vec![a])],
        "2 tiers < 3"
    );
    flush(&storage, 100..200, "c", &[60]);
    storage.trigger_compaction().unwrap();
    let levels = storage.snapshot().levels.clone();
    assert_eq!(levels.len(), 1, "all tiers merged: {levels:?}");
    let (tier, ids) = &levels[0];
    assert_eq!(*tier, ids[0], "a tier is named by its first SST");
    let merged = tier_entries(&storage, ids);
    assert!(
        merged.iter().all(|(_, v)| !v.is_empty()),
        "tombstones dropped at the bottom"
    );
    assert_eq!(merged.len(), 198);
    storage.trigger_compaction().unwrap();
    assert_eq!(storage.snapshot().levels, levels, "one tier: nothing to do");

    // A merge of the two newest tiers, with a flush during the compaction.
    let d = flush(&storage, 0..10, "d", &[20]);
    let e = flush(&storage, 5..15, "e", &[30]);
    let snapshot = storage.snapshot();
    let task = CompactionTask::Tiered(TieredCompactionTask {
        tiers: snapshot.levels[..2].to_vec(),
        bottom_tier_included: false,
    });
    assert_eq!(snapshot.levels[..2], [(e, vec![e]), (d, vec![d])]);
    let outputs = storage.compact(&snapshot, &task).unwrap();
    let f = flush(&storage, 0..3, "f", &[]);
    storage
        .install_compaction(&storage.compaction_lock.lock(), &task, outputs)
        .unwrap();
    let levels = storage.snapshot().levels.clone();
    assert_eq!(levels.len(), 3, "{levels:?}");
    assert_eq!(levels[0], (f, vec![f]));
    assert_eq!(
        levels[2],
        (*tier, ids.clone()),
        "the bottom tier is untouched"
    );
    let merged = tier_entries(&storage, &levels[1].1);
    let tombstones: Vec<&Bytes> = merged
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(tombstones, [&Bytes::from(key(20)), &Bytes::from(key(30))]);
    for (i, expected) in [
        (0, Some("f")),
        (4, Some("d")),
        (7, Some("e")),
        (20, None),
        (30, None),
        (60, None),
        (61, Some("b")),
        (150, Some("c")),
    ] {
        let got = storage.get(&key(i)).unwrap();
        assert_eq!(got.as_deref(), expected.map(str::as_bytes), "key {i}");
    }
}
