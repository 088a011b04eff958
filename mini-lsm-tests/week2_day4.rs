// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 4: leveled compaction: target sizes, priorities, and every strategy against a
//! model.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use bytes::Bytes;

use crate::compact::simulator::Simulator;
use crate::compact::{
    CompactionOptions, CompactionTask, LevelCompactionTask, LevelTargets,
    LeveledCompactionController, LeveledCompactionOptions, LsmShape,
    SimpleLeveledCompactionOptions, SstInfo, TieredCompactionOptions,
};
use crate::iterators::StorageIterator;
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

fn task(
    upper: Option<usize>,
    upper_ids: &[usize],
    lower: usize,
    lower_ids: &[usize],
    bottom: bool,
) -> LevelCompactionTask {
    LevelCompactionTask {
        upper_level: upper,
        upper_level_sst_ids: upper_ids.to_vec(),
        lower_level: lower,
        lower_level_sst_ids: lower_ids.to_vec(),
        is_lower_level_bottom_level: bottom,
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
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
    let expected = task(None, &[11, 10], 3, &[2, 3, 4], true);
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
    let expected = task(None, &[11, 10], 2, &[6, 7], false);
    assert_eq!(controller.generate_task(&tree), Some(expected));

    // An SST in L1, above the base level L3, holds older data than L0: L0 goes to L1.
    let tree = shape(l0, &[&[(6, 100, "a", "c")], &[], base]);
    let expected = task(None, &[11, 10], 1, &[6], false);
    assert_eq!(
        controller.generate_task(&tree),
        Some(expected),
        "L0 must not pass L1"
    );
}

/// Below the L0 trigger, the level most over its target (above the bottom) moves its oldest SST
/// down with the SSTs it overlaps below; ties go to the higher level; a level at exactly its
/// target stays; a level above the base level that holds data goes first.
#[test]
fn test_task2_the_level_most_over_its_target_moves_its_oldest_sst() {
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
    let l2_moves = task(Some(2), &[13], 3, &[20, 21], true);
    let l1_moves = task(Some(1), &[11], 2, &[14], false);
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
    let expected = task(Some(1), &[12], 2, &[13], false);
    assert_eq!(controller.generate_task(&tree), Some(expected));
}

/// Flushes one SST at a time and compacts until the controller is done: the compactions and the
/// shape after every flush are exactly those of leveled compaction with a base of 1 MiB, a
/// multiplier of 2, an L0 trigger of 2 and 3 levels, as the base level climbs from L3 to L1.
#[test]
fn test_task2_leveled_exact_shapes_after_flushes() {
    let mut sim = Simulator::new(&CompactionOptions::Leveled(leveled(2, 2, 3)), MIB / 2);
    let expected: [(&[&str], &str); 10] = [
        (&[], "L0 1 | L1 0 | L2 0 | L3 0"),
        (&["L0->L3"], "L0 0 | L1 0 | L2 0 | L3 2"),
        (&[], "L0 1 | L1 0 | L2 0 | L3 2"),
        (&["L0->L3"], "L0 0 | L1 0 | L2 0 | L3 4"),
        (&[], "L0 1 | L1 0 | L2 0 | L3 4"),
        (&["L0->L2"], "L0 0 | L1 0 | L2 2 | L3 4"),
        (&[], "L0 1 | L1 0 | L2 2 | L3 4"),
        (&["L0->L2", "L2->L3", "L2->L3"], "L0 0 | L1 0 | L2 2 | L3 6"),
        (&[], "L0 1 | L1 0 | L2 2 | L3 6"),
        (&["L0->L1", "L1->L2"], "L0 0 | L1 1 | L2 3 | L3 6"),
    ];
    for (flush, (tasks, line)) in expected.iter().enumerate() {
        sim.flush(MIB / 2, 0, u64::MAX);
        let ran: Vec<String> = sim
            .compact_until_idle(|_, _| Ok(()))
            .unwrap()
            .iter()
            .map(|task| match task {
                CompactionTask::Leveled(t) => {
                    format!("L{}->L{}", t.upper_level.unwrap_or(0), t.lower_level)
                }
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
        storage
            .force_freeze_memtable(&storage.state_lock.lock())
            .unwrap();
        while !storage.snapshot().imm_memtables.is_empty() {
            storage.force_flush_next_imm_memtable().unwrap();
        }
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

// ---------------------------------------------------------------------------------------------
// Every strategy against a model

/// One step of the randomized test; keys and values are numbers, so that a repro can be pasted.
#[derive(Debug, Clone)]
enum Op {
    Put(usize, usize),
    Delete(usize),
    Get(usize),
    Scan(Bound<usize>, Bound<usize>),
    Flush,
    /// `trigger_compaction`, until it changes nothing (at most 10 times).
    Compact,
    FullCompaction,
}

/// SplitMix64, so that the test needs no `rand`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn random_ops(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    let bound = |rng: &mut Rng| match rng.below(3) {
        0 => Included(rng.below(150)),
        1 => Excluded(rng.below(150)),
        _ => Unbounded,
    };
    (0..n)
        .map(|version| match rng.below(100) {
            0..=44 => Op::Put(rng.below(150), version),
            45..=59 => Op::Delete(rng.below(150)),
            60..=77 => Op::Get(rng.below(150)),
            78..=87 => Op::Scan(bound(&mut rng), bound(&mut rng)),
            88..=94 => Op::Flush,
            95..=98 => Op::Compact,
            _ => Op::FullCompaction,
        })
        .collect()
}

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

/// Whether `key` lies within `lower..upper`.
fn within(key: &[u8], lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    (match lower {
        Included(l) => key >= l,
        Excluded(l) => key > l,
        Unbounded => true,
    }) && (match upper {
        Included(u) => key <= u,
        Excluded(u) => key < u,
        Unbounded => true,
    })
}

/// Runs `ops` on a fresh engine with `strategy` and on the model; the first disagreement.
fn run_ops(strategy: &CompactionOptions, ops: &[Op]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week2_test(strategy.clone());
    (options.target_sst_size, options.block_size) = (256, 64);
    let storage = LsmStorageInner::open(dir.path(), options).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (at, op) in ops.iter().enumerate() {
        let fail = |what: String| Err(format!("op #{at} {op:?}: {what}\n{}", storage.dump()));
        match op {
            Op::Put(k, v) => {
                let value = format!("value{v}").into_bytes();
                storage.put(&key(*k), &value).unwrap();
                model.insert(key(*k), value);
            }
            Op::Delete(k) => {
                storage.delete(&key(*k)).unwrap();
                model.remove(&key(*k));
            }
            Op::Get(k) => {
                let got = storage.get(&key(*k)).unwrap();
                if got.as_deref() != model.get(&key(*k)).map(|v| &v[..]) {
                    return fail(format!("got {got:?}"));
                }
            }
            Op::Scan(lower, upper) => {
                let (lower, upper) = (lower.map(key), upper.map(key));
                let (lower, upper) = (
                    lower.as_ref().map(|k| &k[..]),
                    upper.as_ref().map(|k| &k[..]),
                );
                let mut iter = storage.scan(lower, upper).unwrap();
                let mut got = Vec::new();
                while iter.is_valid() {
                    got.push((iter.key().to_vec(), iter.value().to_vec()));
                    iter.next().unwrap();
                }
                let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                    .iter()
                    .filter(|(k, _)| within(k, lower, upper))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if got != expected {
                    let show = |entries: &[(Vec<u8>, Vec<u8>)]| -> Vec<String> {
                        let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
                        entries
                            .iter()
                            .map(|(k, v)| format!("{}={}", text(k), text(v)))
                            .collect()
                    };
                    return fail(format!(
                        "got {:?}\nexpected {:?}",
                        show(&got),
                        show(&expected)
                    ));
                }
            }
            Op::Flush => {
                storage
                    .force_freeze_memtable(&storage.state_lock.lock())
                    .unwrap();
                while !storage.snapshot().imm_memtables.is_empty() {
                    storage.force_flush_next_imm_memtable().unwrap();
                }
            }
            Op::Compact => {
                for _ in 0..10 {
                    let before = storage.snapshot().shape();
                    storage.trigger_compaction().unwrap();
                    if storage.snapshot().shape() == before {
                        break;
                    }
                }
            }
            Op::FullCompaction => storage.force_full_compaction().unwrap(),
        }
    }
    Ok(())
}

/// The seed: `MINI_LSM_SEED` to replay a failure, else the clock; printed first.
fn test_seed() -> u64 {
    let seed = std::env::var("MINI_LSM_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        },
        |s| {
            s.trim()
                .parse()
                .expect("MINI_LSM_SEED must be an unsigned integer")
        },
    );
    println!("seed = {seed} (replay with MINI_LSM_SEED={seed})");
    seed
}

/// With each strategy, random puts, deletes, gets, scans, flushes, compaction steps and full
/// compactions agree with a `BTreeMap`; a failure prints the seed and a shrunk list of
/// operations to paste.
#[test]
fn test_task2_randomized_every_strategy_against_model() {
    let seed = test_seed();
    let ops = random_ops(seed, 1200);
    for strategy in strategies() {
        if run_ops(&strategy, &ops).is_ok() {
            continue;
        }
        // Shrink: drop chunks of operations while the run still fails, for at most 20 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut ops = ops.clone();
        let mut chunk = ops.len() / 2;
        while chunk > 0 && std::time::Instant::now() < deadline {
            let mut at = 0;
            while at < ops.len() && std::time::Instant::now() < deadline {
                let rest = &ops[(at + chunk).min(ops.len())..];
                let candidate: Vec<Op> = ops[..at].iter().chain(rest).cloned().collect();
                if run_ops(&strategy, &candidate).is_err() {
                    ops = candidate;
                } else {
                    at += chunk;
                }
            }
            chunk /= 2;
        }
        let message = run_ops(&strategy, &ops).expect_err("the shrunk operations fail");
        panic!(
            "seed {seed}, {strategy:?}: {message}\nshrunk to {} operations; paste into a test:\n    \
             use Op::*; use std::ops::Bound::*;\n    run_ops(&strategies()[i], &{ops:?}).unwrap();",
            ops.len()
        );
    }
}
