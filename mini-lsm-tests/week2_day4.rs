// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 4: leveled compaction: target sizes, priorities, and every strategy against a
//! model.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::harness::compaction::{flush_all, key, level_task, randomized_against_model, OpMix};
use crate::compact::simulator::Simulator;
use crate::compact::{
    CompactionOptions, CompactionTask, LevelTargets, LeveledCompactionController,
    LeveledCompactionOptions, LsmShape, SimpleLeveledCompactionOptions, SstInfo,
    TieredCompactionOptions,
};
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};

// ---------------------------------------------------------------------------------------------
// Helpers of this chapter

const MIB: u64 = 1 << 20;

fn leveled(multiplier: usize, trigger: usize, max_levels: usize) -> LeveledCompactionOptions {
    LeveledCompactionOptions {
        level_size_multiplier: multiplier,
        level0_file_num_compaction_trigger: trigger,
        max_levels,
        base_level_size_mb: 1,
    }
}

/// An SST for a shape: id, size, and key range.
type Sst = (usize, u64, &'static str, &'static str);

/// A shape with `l0` (newest first) and levels `1..` holding `levels[0]`, `levels[1]`, ...
fn shape(l0: &[Sst], levels: &[&[Sst]]) -> LsmShape {
    let mut shape = LsmShape::default();
    let mut add = |ssts: &[Sst]| -> Vec<usize> {
        for (id, size, first, last) in ssts {
            let info = SstInfo {
                size: *size,
                first_key: Bytes::from(*first),
                last_key: Bytes::from(*last),
            };
            shape.sstables.insert(*id, info);
        }
        ssts.iter().map(|sst| sst.0).collect()
    };
    let l0 = add(l0);
    let levels: Vec<(usize, Vec<usize>)> = levels
        .iter()
        .enumerate()
        .map(|(i, ssts)| (i + 1, add(ssts)))
        .collect();
    shape.l0_sstables = l0;
    shape.levels = levels;
    shape
}

// ---------------------------------------------------------------------------------------------
// Task 1: target sizes

/// The bottom level's target is its size, at least the base size; each level above gets the
/// target below divided by the multiplier while the target below is over the base size; the
/// highest level with a target is the base level, unless a level above it holds data.
#[test]
fn test_task1_target_sizes_from_the_bottom_level() {
    let controller = LeveledCompactionController::new(leveled(4, 2, 4));
    let targets = |bottom: u64, base_level: usize, targets: [u64; 5]| {
        let l2: &[Sst] = &[(1, 7 * MIB, "a", "z")];
        let bottom_ssts: &[Sst] = &[(2, bottom, "a", "z")];
        let l2 = if base_level <= 2 { l2 } else { &[] }; // Its size does not matter.
        let tree = shape(&[], &[&[], l2, &[], bottom_ssts]);
        assert_eq!(
            controller.target_sizes(&tree),
            LevelTargets {
                base_level,
                targets: targets.to_vec()
            },
            "bottom level of {bottom} bytes"
        );
    };
    targets(0, 4, [0, 0, 0, 0, MIB]);
    targets(MIB, 4, [0, 0, 0, 0, MIB]);
    targets(MIB + 4, 3, [0, 0, 0, (MIB + 4) / 4, MIB + 4]);
    targets(4 * MIB, 3, [0, 0, 0, MIB, 4 * MIB]);
    targets(
        20 * MIB,
        1,
        [0, 5 * MIB / 16, 5 * MIB / 4, 5 * MIB, 20 * MIB],
    );
    targets(
        100 * MIB,
        1,
        [0, 100 * MIB / 64, 100 * MIB / 16, 25 * MIB, 100 * MIB],
    );

    // Data above the base level (L3 here) makes its level the base: L0 must not pass it.
    let tree = shape(
        &[],
        &[&[], &[(1, 1, "a", "b")], &[], &[(2, 4 * MIB, "a", "z")]],
    );
    let expected = LevelTargets {
        base_level: 2,
        targets: vec![0, 0, 0, MIB, 4 * MIB],
    };
    assert_eq!(controller.target_sizes(&tree), expected);
}

// ---------------------------------------------------------------------------------------------
// Task 2: picking compactions

/// Once L0 reaches the trigger, all of it goes to the base level with exactly the base level's
/// SSTs that overlap L0's key range; below the trigger, nothing is due while every level is
/// within its target.
#[test]
fn test_task2_l0_goes_to_the_base_level_with_overlapping_ssts() {
    let controller = LeveledCompactionController::new(leveled(4, 2, 3));
    let l0: &[Sst] = &[(11, 100, "e", "h"), (10, 100, "c", "f")];
    let base: &[Sst] = &[
        (1, 100, "a", "b"),
        (2, 100, "c", "d"),
        (3, 100, "e", "e"),
        (4, 100, "g", "k"),
        (5, 100, "m", "p"),
    ];
    let tree = shape(l0, &[&[], &[], base]);
    let expected = level_task(None, &[11, 10], 3, &[2, 3, 4], true);
    assert_eq!(
        controller.generate_task(&tree),
        Some(expected),
        "small tree: L3 is the base"
    );
    assert_eq!(
        controller.generate_task(&shape(&l0[..1], &[&[], &[], base])),
        None
    );

    // With 4 MiB in L3, L2's target is 1 MiB and L2 is the base level.
    let l2: &[Sst] = &[(6, 100, "a", "c"), (7, 100, "h", "i"), (8, 100, "x", "y")];
    let l3: &[Sst] = &[(9, 4 * MIB, "a", "z")];
    let tree = shape(l0, &[&[], l2, l3]);
    let expected = level_task(None, &[11, 10], 2, &[6, 7], false);
    assert_eq!(controller.generate_task(&tree), Some(expected));

    // An SST in L1, above the base level L3, holds older data than L0: L0 goes to L1.
    let tree = shape(l0, &[&[(6, 100, "a", "c")], &[], base]);
    let expected = level_task(None, &[11, 10], 1, &[6], false);
    assert_eq!(
        controller.generate_task(&tree),
        Some(expected),
        "L0 must not pass L1"
    );
}

/// Below the L0 trigger, the level most over its target (above the bottom) moves one SST down
/// with the SSTs it overlaps below; ties go to the higher level; a level at exactly its target
/// stays; a level above the base level that holds data goes first.
#[test]
fn test_task2_the_level_most_over_its_target_moves_one_sst() {
    let controller = LeveledCompactionController::new(leveled(4, 4, 3));
    // L3 holds 16 MiB: L2's target is 4 MiB, L1's 1 MiB (the base level).
    let l3: &[Sst] = &[(20, 8 * MIB, "a", "m"), (21, 8 * MIB, "n", "z")];
    let l1 = |size: u64| -> Vec<Sst> { vec![(12, size / 2, "a", "f"), (11, size / 2, "p", "t")] };
    let l2 = |size: u64| -> Vec<Sst> {
        vec![
            (15, size / 4, "a", "e"),
            (13, size / 4, "f", "o"),
            (14, size / 2, "q", "z"),
        ]
    };
    let pick = |l1_size: u64, l2_size: u64| {
        let tree = shape(&[(30, 1, "a", "z")], &[&l1(l1_size), &l2(l2_size), l3]);
        controller.generate_task(&tree)
    };
    // 14 meets 8 MiB below for its half of L2; 13 and 15, a quarter each, 16 and 8 MiB.
    let l2_moves = level_task(Some(2), &[14], 3, &[21], true);
    // 12 and 11 both meet as many bytes below as they hold: the smaller id goes.
    let l1_moves = level_task(Some(1), &[11], 2, &[14], false);
    assert_eq!(
        pick(3 * MIB / 2, 8 * MIB),
        Some(l2_moves),
        "L2 at 2.0 beats L1 at 1.5"
    );
    assert_eq!(
        pick(3 * MIB, 8 * MIB),
        Some(l1_moves.clone()),
        "L1 at 3.0 beats L2 at 2.0"
    );
    assert_eq!(
        pick(2 * MIB, 8 * MIB),
        Some(l1_moves),
        "a tie goes to the higher level"
    );
    assert_eq!(pick(MIB, 4 * MIB), None, "exactly at the targets");
    assert_eq!(pick(0, 0), None);

    // L3 holds 2 MiB: L2 (target 512 KiB) is the base level, so L1 has no target at all.
    let small_l3: &[Sst] = &[(20, 2 * MIB, "a", "z")];
    let tree = shape(&[], &[&[(12, 1, "g", "h")], &l2(10 * MIB), small_l3]);
    let expected = level_task(Some(1), &[12], 2, &[13], false);
    assert_eq!(controller.generate_task(&tree), Some(expected));
}

/// The SST that moves down is the one whose overlapping bytes below are the smallest relative
/// to its own size (not the oldest, not the fewest bytes); an SST that overlaps nothing wins;
/// on a tie, the smaller id.
#[test]
fn test_task2_the_sst_that_moves_overlaps_least_for_its_size() {
    // Two levels: L2 is the bottom, and at 1 MiB L1 has no target, so any data in L1 moves.
    let controller = LeveledCompactionController::new(leveled(4, 4, 2));
    let pick = |l1: &[Sst], l2: &[Sst]| {
        let task = controller.generate_task(&shape(&[], &[l1, l2])).unwrap();
        assert_eq!((task.upper_level, task.lower_level), (Some(1), 2));
        (task.upper_level_sst_ids, task.lower_level_sst_ids)
    };
    let l2: &[Sst] = &[
        (10, 100, "a", "b"),
        (11, 100, "c", "e"),
        (12, 300, "f", "j"),
        (13, 60, "n", "o"),
        (14, 700, "q", "z"),
    ];
    // Bytes met below / own size: 5 meets 200/100, 3 (the oldest) 400/100, 4 60/50, 6 700/800.
    let l1: &[Sst] = &[
        (5, 100, "a", "c"),
        (3, 100, "d", "k"),
        (4, 50, "m", "p"),
        (6, 800, "q", "z"),
    ];
    assert_eq!(
        pick(l1, l2),
        (vec![6], vec![14]),
        "the most bytes below, but 0.875 of its size"
    );
    let l1: &[Sst] = &[
        (5, 100, "a", "c"),
        (3, 100, "d", "k"),
        (4, 50, "m", "p"),
        (6, 400, "q", "z"),
    ];
    assert_eq!(pick(l1, l2), (vec![4], vec![13]), "60/50 beats 700/400");
    let l1: &[Sst] = &[(9, 100, "a", "c"), (7, 100, "m", "p")];
    assert_eq!(
        pick(l1, &[(13, 50, "n", "o")]),
        (vec![9], vec![]),
        "nothing below"
    );
    let below: &[Sst] = &[(10, 50, "a", "b"), (13, 50, "n", "o")];
    assert_eq!(
        pick(l1, below),
        (vec![7], vec![13]),
        "a tie: the smaller id"
    );
}

/// Flushes one SST at a time and compacts until the controller is done: the compactions (with
/// the number of SSTs each met below) and the shape after every flush are exactly those of
/// leveled compaction with a base of 1 MiB, a multiplier of 2, an L0 trigger of 2 and 3 levels,
/// as the base level climbs from L3 to L1 and moves pick the SST that overlaps least.
#[test]
fn test_task2_leveled_exact_shapes_after_flushes() {
    let mut sim = Simulator::new(&CompactionOptions::Leveled(leveled(2, 2, 3)), MIB / 2);
    let expected: [(&[&str], &str); 16] = [
        (&[], "L0 1 | L1 0 | L2 0 | L3 0"),
        (&["L0->L3 +0"], "L0 0 | L1 0 | L2 0 | L3 2"),
        (&[], "L0 1 | L1 0 | L2 0 | L3 2"),
        (&["L0->L3 +2"], "L0 0 | L1 0 | L2 0 | L3 4"),
        (&[], "L0 1 | L1 0 | L2 0 | L3 4"),
        (&["L0->L2 +0"], "L0 0 | L1 0 | L2 2 | L3 4"),
        (&[], "L0 1 | L1 0 | L2 2 | L3 4"),
        (
            &["L0->L2 +2", "L2->L3 +1", "L2->L3 +1"],
            "L0 0 | L1 0 | L2 2 | L3 6",
        ),
        (&[], "L0 1 | L1 0 | L2 2 | L3 6"),
        (&["L0->L1 +0", "L1->L2 +0"], "L0 0 | L1 1 | L2 3 | L3 6"),
        (&[], "L0 1 | L1 1 | L2 3 | L3 6"),
        (
            &[
                "L0->L1 +1",
                "L1->L2 +1",
                "L1->L2 +2",
                "L2->L3 +1",
                "L2->L3 +1",
            ],
            "L0 0 | L1 1 | L2 3 | L3 8",
        ),
        (&[], "L0 1 | L1 1 | L2 3 | L3 8"),
        (&["L0->L1 +1", "L1->L2 +0"], "L0 0 | L1 2 | L2 4 | L3 8"),
        (&[], "L0 1 | L1 2 | L2 4 | L3 8"),
        (
            &[
                "L0->L1 +2",
                "L1->L2 +1",
                "L1->L2 +1",
                "L2->L3 +1",
                "L2->L3 +1",
            ],
            "L0 0 | L1 2 | L2 4 | L3 10",
        ),
    ];
    for (flush, (tasks, line)) in expected.iter().enumerate() {
        sim.flush(MIB / 2, 0, u64::MAX);
        let ran: Vec<String> = sim
            .compact_until_idle(|_, _| Ok(()))
            .unwrap()
            .iter()
            .map(|task| match task {
                CompactionTask::Leveled(t) => format!(
                    "L{}->L{} +{}",
                    t.upper_level.unwrap_or(0),
                    t.lower_level,
                    t.lower_level_sst_ids.len()
                ),
                other => panic!("not a leveled compaction: {other:?}"),
            })
            .collect();
        assert_eq!(
            (ran, sim.shape_line()),
            (
                tasks.iter().map(|t| t.to_string()).collect(),
                line.to_string()
            ),
            "after flush {}",
            flush + 1
        );
    }
}

/// Through the engine: L0 goes to the base level (here the bottom) taking only the SSTs it
/// overlaps; the SSTs it does not overlap keep their ids and places; the level stays sorted and
/// disjoint, and every key keeps its newest value.
#[test]
fn test_task2_leveled_engine_rewrites_only_overlapping_ssts() {
    let dir = tempfile::tempdir().unwrap();
    let mut options =
        LsmStorageOptions::default_for_week2_test(CompactionOptions::Leveled(leveled(4, 2, 2)));
    options.target_sst_size = 512;
    options.block_size = 128;
    let storage = LsmStorageInner::open(dir.path(), options).unwrap();
    let mut model = BTreeMap::new();
    let mut flush = |keys: std::ops::Range<usize>, value: &str| {
        for i in keys {
            storage.put(&key(i), value.as_bytes()).unwrap();
            model.insert(key(i), value.to_string());
        }
        flush_all(&storage);
    };
    let l2 = |storage: &LsmStorageInner| storage.snapshot().levels[1].1.clone();
    let range = |storage: &LsmStorageInner, id: usize| {
        let snapshot = storage.snapshot();
        let table = snapshot.table(id).unwrap();
        (
            table.first_key().raw_ref().to_vec(),
            table.last_key().raw_ref().to_vec(),
        )
    };
    flush(0..100, "a");
    flush(100..200, "a");
    storage.trigger_compaction().unwrap();
    let first = l2(&storage);
    assert!(first.len() >= 3, "{}", storage.dump());
    assert!(storage.snapshot().l0_sstables.is_empty());

    flush(300..340, "b");
    flush(320..360, "b");
    storage.trigger_compaction().unwrap();
    let second = l2(&storage);
    assert_eq!(
        second[..first.len()],
        first[..],
        "no SST overlapped the new keys: kept"
    );
    assert!(second.len() > first.len());

    let touched = |id: &usize| {
        let (first, last) = range(&storage, *id);
        first <= key(154) && key(150) <= last
    };
    let kept: Vec<usize> = second.iter().copied().filter(|id| !touched(id)).collect();
    flush(150..155, "c");
    flush(152..154, "d");
    storage.trigger_compaction().unwrap();
    let third = l2(&storage);
    assert!(kept.len() < second.len() && kept.len() >= second.len() - 2);
    let still: Vec<usize> = third
        .iter()
        .copied()
        .filter(|id| second.contains(id))
        .collect();
    assert_eq!(
        still, kept,
        "exactly the SSTs that do not overlap L0 keep their ids and order"
    );
    for pair in third.windows(2) {
        assert!(
            range(&storage, pair[0]).1 < range(&storage, pair[1]).0,
            "L2 is not sorted"
        );
    }
    for (k, v) in &model {
        assert_eq!(storage.get(k).unwrap().as_deref(), Some(v.as_bytes()));
    }
    let before = storage.snapshot().levels.clone();
    storage.trigger_compaction().unwrap();
    assert_eq!(storage.snapshot().levels, before, "nothing more is due");
}

/// Through the engine: an L0 of SSTs that do not overlap each other, with nothing in the base
/// level in the way, moves down as it is (a trivial move: the same SSTs and files, nothing new
/// written); an L0 that overlaps an SST below is merged with it, and that SST's file goes.
#[test]
fn test_task2_leveled_engine_moves_ssts_that_meet_nothing_below() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        LsmStorageOptions::default_for_week2_test(CompactionOptions::Leveled(leveled(4, 2, 2)));
    let storage = LsmStorageInner::open(dir.path(), options).unwrap();
    let mut model = BTreeMap::new();
    let mut flush = |keys: std::ops::Range<usize>, value: &str| {
        for i in keys {
            storage.put(&key(i), value.as_bytes()).unwrap();
            model.insert(key(i), value.to_string());
        }
        flush_all(&storage);
    };
    let ids = |storage: &LsmStorageInner| {
        let mut ids: Vec<usize> = storage.snapshot().sstables.keys().copied().collect();
        ids.sort_unstable();
        ids
    };
    flush(0..50, "a");
    flush(100..150, "a");
    let before = ids(&storage);
    let mut l0 = storage.snapshot().l0_sstables.clone();
    l0.reverse(); // Oldest first, which is key order here.
    storage.trigger_compaction().unwrap();
    let snapshot = storage.snapshot();
    assert!(snapshot.l0_sstables.is_empty(), "{}", storage.dump());
    assert_eq!(
        snapshot.levels[1].1, l0,
        "L0 moved to L2 as it was, in key order"
    );
    assert_eq!(ids(&storage), before, "no SST written, none removed");
    drop(snapshot); // It would keep the files of its SSTs.

    flush(200..250, "b");
    flush(300..350, "b");
    storage.trigger_compaction().unwrap();
    assert_eq!(
        storage.snapshot().levels[1].1.len(),
        4,
        "{}",
        storage.dump()
    );
    assert_eq!(ids(&storage).len(), 4, "moved again: {}", storage.dump());

    flush(20..30, "c");
    flush(40..45, "c");
    storage.trigger_compaction().unwrap();
    let merged = l0[0];
    assert!(
        !storage.snapshot().sstables.contains_key(&merged),
        "SST {merged} overlapped L0 and was merged:\n{}",
        storage.dump()
    );
    assert!(
        !crate::table::sst_path(dir.path(), merged).exists(),
        "the merged SST's file is gone"
    );
    for moved in &l0[1..] {
        assert!(crate::table::sst_path(dir.path(), *moved).exists());
    }
    for (k, v) in &model {
        assert_eq!(storage.get(k).unwrap().as_deref(), Some(v.as_bytes()));
    }
}

// ---------------------------------------------------------------------------------------------
// Every strategy against a model

/// The strategies under test: small triggers, so that compactions are frequent.
fn strategies() -> Vec<CompactionOptions> {
    vec![
        CompactionOptions::Simple(SimpleLeveledCompactionOptions {
            size_ratio_percent: 200,
            level0_file_num_compaction_trigger: 2,
            max_levels: 3,
        }),
        CompactionOptions::Tiered(TieredCompactionOptions {
            num_tiers: 3,
            max_size_amplification_percent: 200,
            size_ratio: 1,
            min_merge_width: 2,
            max_merge_width: Some(3),
        }),
        CompactionOptions::Leveled(leveled(2, 2, 3)),
    ]
}

/// The engine of the randomized test: small SSTs and blocks, so that compactions have many.
fn random_test_options(strategy: CompactionOptions) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week2_test(strategy);
    (options.target_sst_size, options.block_size) = (256, 64);
    options
}

/// With each strategy, random puts, deletes, gets, scans, flushes, compaction steps and full
/// compactions agree with a `BTreeMap`; a failure prints the seed and a shrunk list of
/// operations to paste.
#[test]
fn test_task2_randomized_every_strategy_against_model() {
    let mix = OpMix {
        put: 45,
        delete: 15,
        get: 18,
        scan: 10,
        flush: 7,
        compact: 4,
        full_compaction: 1,
        move_down: 0,
    };
    let engines: Vec<_> = strategies()
        .into_iter()
        .enumerate()
        .map(|(i, strategy)| {
            let repro = format!("random_test_options(strategies()[{i}].clone())");
            (repro, random_test_options(strategy))
        })
        .collect();
    randomized_against_model(1200, mix, &engines);
}
