// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 2: simple leveled compaction, one step at a time, and the compaction thread.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use super::harness::{bytes_of, poll_until, threads_named};
use crate::compact::simulator::Simulator;
use crate::compact::{
    CompactionOptions, CompactionTask, LevelCompactionTask, LsmShape,
    SimpleLeveledCompactionController, SimpleLeveledCompactionOptions, SstInfo,
};
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm};

// ---------------------------------------------------------------------------------------------
// Helpers of this chapter

fn simple(
    trigger: usize,
    size_ratio_percent: usize,
    max_levels: usize,
) -> SimpleLeveledCompactionOptions {
    SimpleLeveledCompactionOptions {
        size_ratio_percent,
        level0_file_num_compaction_trigger: trigger,
        max_levels,
    }
}

/// A shape with L0 and levels 1.. holding `counts[0]`, `counts[1]`, .. SSTs (ids from 1, in key
/// order within a level).
fn shape_of(counts: &[usize]) -> LsmShape {
    let mut shape = LsmShape::default();
    let mut next = 1;
    for (level, count) in counts.iter().enumerate() {
        let ids: Vec<usize> = (next..next + count).collect();
        next += count;
        for (i, id) in ids.iter().enumerate() {
            let info = SstInfo {
                size: 1,
                first_key: Bytes::from(format!("{i:03}a")),
                last_key: Bytes::from(format!("{i:03}z")),
            };
            shape.sstables.insert(*id, info);
        }
        match level {
            0 => shape.l0_sstables = ids.into_iter().rev().collect(),
            _ => shape.levels.push((level, ids)),
        }
    }
    shape
}

/// A level-to-level compaction as `L<upper>->L<lower>`.
fn arrow(task: &CompactionTask) -> String {
    match task {
        CompactionTask::Simple(t) => format!("L{}->L{}", t.upper_level.unwrap_or(0), t.lower_level),
        other => panic!("not a simple leveled compaction: {other:?}"),
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// The number of SSTs in L0 and in each level.
fn counts(storage: &LsmStorageInner) -> Vec<usize> {
    let snapshot = storage.snapshot();
    let mut counts = vec![snapshot.l0_sstables.len()];
    counts.extend(snapshot.levels.iter().map(|(_, ids)| ids.len()));
    counts
}

/// Writes keys `range` with values naming `round`, then freezes and flushes every memtable.
fn write_and_flush(storage: &LsmStorageInner, range: std::ops::Range<usize>, round: usize) {
    for i in range {
        storage
            .put(&key(i), format!("round{round}").as_bytes())
            .unwrap();
    }
    storage
        .force_freeze_memtable(&storage.state_lock.lock())
        .unwrap();
    while !storage.snapshot().imm_memtables.is_empty() {
        storage.force_flush_next_imm_memtable().unwrap();
    }
}

/// The number of threads of this process named `mini-lsm-compact`.
fn compaction_threads() -> usize {
    threads_named("mini-lsm-compact")
}

/// Polls `condition` every 10 ms until it holds or 10 s pass; returns whether it held.
fn poll(condition: impl FnMut() -> bool) -> bool {
    poll_until(Duration::from_secs(10), condition)
}

// ---------------------------------------------------------------------------------------------
// Task 1: the controller

/// L0 compacts into L1 exactly when it reaches the trigger, whatever the levels below; a level
/// compacts into the next when the next is under the size ratio (not at it); whole levels are
/// taken; the bottom level never compacts and is flagged as the bottom.
#[test]
fn test_task1_simple_generate_task_boundaries() {
    let controller = SimpleLeveledCompactionController::new(simple(2, 200, 3));
    assert_eq!(controller.generate_task(&shape_of(&[1, 0, 0, 0])), None);
    assert_eq!(
        controller.generate_task(&shape_of(&[0, 0, 0, 5])),
        None,
        "the bottom stays"
    );
    assert_eq!(
        controller.generate_task(&shape_of(&[2, 3, 0, 0])),
        Some(LevelCompactionTask {
            upper_level: None,
            upper_level_sst_ids: vec![2, 1],
            lower_level: 1,
            lower_level_sst_ids: vec![3, 4, 5],
            is_lower_level_bottom_level: false,
        }),
        "L0 at the trigger goes first, with all of L1, even if L1 is large"
    );
    assert_eq!(
        controller.generate_task(&shape_of(&[1, 2, 4, 9])),
        None,
        "L2 holds exactly 200% of L1, L3 more than 200% of L2: nothing is due"
    );
    assert_eq!(
        controller.generate_task(&shape_of(&[1, 2, 3, 9])),
        Some(LevelCompactionTask {
            upper_level: Some(1),
            upper_level_sst_ids: vec![2, 3],
            lower_level: 2,
            lower_level_sst_ids: vec![4, 5, 6],
            is_lower_level_bottom_level: false,
        })
    );
    assert_eq!(
        controller.generate_task(&shape_of(&[0, 0, 3, 5])),
        Some(LevelCompactionTask {
            upper_level: Some(2),
            upper_level_sst_ids: vec![1, 2, 3],
            lower_level: 3,
            lower_level_sst_ids: vec![4, 5, 6, 7, 8],
            is_lower_level_bottom_level: true,
        }),
        "an empty L1 is skipped; L3 is the bottom"
    );
    let one_level = SimpleLeveledCompactionController::new(simple(3, 200, 1));
    let task = one_level.generate_task(&shape_of(&[3, 1])).unwrap();
    assert!(
        task.is_lower_level_bottom_level,
        "with one level, L1 is the bottom"
    );
    assert_eq!(one_level.generate_task(&shape_of(&[2, 0])), None);
}

/// Flushes one SST at a time and compacts until the controller is done: the compactions and the
/// shape after every flush are exactly those of simple leveled compaction with a trigger of 2, a
/// size ratio of 200% and 3 levels (each flush and each output SST the same size).
#[test]
fn test_task1_simple_exact_shapes_after_flushes() {
    let options = CompactionOptions::Simple(simple(2, 200, 3));
    let mut sim = Simulator::new(&options, 1 << 20);
    let expected: [(&[&str], &str); 16] = [
        (&[], "L0 1 | L1 0 | L2 0 | L3 0"),
        (&["L0->L1", "L1->L2", "L2->L3"], "L0 0 | L1 0 | L2 0 | L3 2"),
        (&[], "L0 1 | L1 0 | L2 0 | L3 2"),
        (&["L0->L1", "L1->L2", "L2->L3"], "L0 0 | L1 0 | L2 0 | L3 4"),
        (&[], "L0 1 | L1 0 | L2 0 | L3 4"),
        (&["L0->L1", "L1->L2"], "L0 0 | L1 0 | L2 2 | L3 4"),
        (&[], "L0 1 | L1 0 | L2 2 | L3 4"),
        (&["L0->L1", "L1->L2", "L2->L3"], "L0 0 | L1 0 | L2 0 | L3 8"),
        (&[], "L0 1 | L1 0 | L2 0 | L3 8"),
        (&["L0->L1", "L1->L2"], "L0 0 | L1 0 | L2 2 | L3 8"),
        (&[], "L0 1 | L1 0 | L2 2 | L3 8"),
        (&["L0->L1", "L1->L2"], "L0 0 | L1 0 | L2 4 | L3 8"),
        (&[], "L0 1 | L1 0 | L2 4 | L3 8"),
        (&["L0->L1"], "L0 0 | L1 2 | L2 4 | L3 8"),
        (&[], "L0 1 | L1 2 | L2 4 | L3 8"),
        (
            &["L0->L1", "L1->L2", "L2->L3"],
            "L0 0 | L1 0 | L2 0 | L3 16",
        ),
    ];
    for (flush, (tasks, shape)) in expected.iter().enumerate() {
        sim.flush(1 << 20, 0, u64::MAX);
        let ran = sim.compact_until_idle(|_, _| Ok(())).unwrap();
        let ran: Vec<String> = ran.iter().map(arrow).collect();
        assert_eq!(
            (ran, sim.shape_line()),
            (
                tasks.iter().map(|t| t.to_string()).collect(),
                shape.to_string()
            ),
            "after flush {}",
            flush + 1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Task 2: the engine's step and the thread

/// `trigger_compaction` runs one compaction per call, through the engine: L0 reaches the trigger
/// and moves to L1 in one call, L1 moves to L2 in the next, and a third call does nothing. New
/// SSTs replace the compacted ones, and every key keeps its newest value.
#[test]
fn test_task2_trigger_compaction_runs_one_step_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        LsmStorageOptions::default_for_week2_test(CompactionOptions::Simple(simple(2, 200, 2)));
    let storage = LsmStorageInner::open(dir.path(), options).unwrap();
    let mut expected = HashMap::new();
    let mut step = |expect: &[usize], round: usize, range: std::ops::Range<usize>| {
        if !range.is_empty() {
            write_and_flush(&storage, range.clone(), round);
            range.for_each(|i| {
                expected.insert(key(i), format!("round{round}"));
            });
        }
        let before = storage.snapshot();
        storage.trigger_compaction().unwrap();
        let after = storage.snapshot();
        assert_eq!(
            counts(&storage),
            expect,
            "after round {round}:\n{}",
            storage.dump()
        );
        for (_, ids) in &after.levels {
            for id in ids {
                let was_l0 = before.l0_sstables.contains(id);
                assert!(!was_l0, "SST {id} moved from L0 without being rewritten");
            }
        }
        for (k, v) in &expected {
            assert_eq!(storage.get(k).unwrap(), Some(bytes_of(v)));
        }
    };
    step(&[1, 0, 0], 0, 0..100);
    step(&[0, 1, 0], 1, 50..150);
    step(&[0, 0, 1], 1, 0..0);
    step(&[0, 0, 1], 1, 0..0);
    step(&[1, 0, 1], 2, 100..200);
    step(&[0, 1, 1], 3, 0..20);
    step(&[0, 0, 1], 3, 0..0); // L2 holds 100% of L1, under 200%.
    step(&[0, 0, 1], 3, 0..0);
}

/// The compaction thread compacts without being asked, and `close` stops and joins it. A
/// compaction that fails in the thread (its directory is gone) becomes the sticky background
/// error: later writes and `close` return it.
#[test]
fn test_task2_compaction_thread_compacts_and_reports_errors() {
    let before = compaction_threads();
    let dir = tempfile::tempdir().unwrap();
    let mut options =
        LsmStorageOptions::default_for_week2_test(CompactionOptions::Simple(simple(2, 200, 2)));
    options.num_memtable_limit = 50; // The flush thread stays idle: the test flushes.
    let lsm = MiniLsm::open(dir.path().join("ok"), options.clone()).unwrap();
    // A new thread names itself as it starts, so its name may show a moment after `open`.
    assert!(
        poll(|| compaction_threads() == before + 1),
        "open starts one compaction thread"
    );
    for round in 0..2 {
        for i in 0..100 {
            lsm.put(&key(i), format!("round{round}").as_bytes())
                .unwrap();
        }
        lsm.force_flush().unwrap();
    }
    let compacted = poll(|| {
        let snapshot = lsm.inner.snapshot();
        snapshot.l0_sstables.is_empty() && snapshot.levels.iter().any(|(_, ids)| !ids.is_empty())
    });
    assert!(compacted, "the thread never compacted L0:\n{}", lsm.dump());
    assert_eq!(lsm.get(&key(7)).unwrap(), Some(bytes_of(b"round1")));
    lsm.close().unwrap();
    assert_eq!(
        compaction_threads(),
        before,
        "close joins the compaction thread"
    );

    let path = dir.path().join("failing");
    let lsm = MiniLsm::open(&path, options).unwrap();
    {
        // Hold the thread off while L0 fills and the directory disappears.
        let _pause = lsm.inner.compaction_lock.lock();
        for round in 0..2 {
            lsm.put(&key(round), b"v").unwrap();
            lsm.force_flush().unwrap();
        }
        std::fs::remove_dir_all(&path).unwrap();
    }
    assert!(
        poll(|| lsm.inner.check_bg_error().is_err()),
        "the failed compaction was not recorded"
    );
    let error = lsm
        .put(b"late", b"v")
        .expect_err("writes fail after a background error");
    assert!(format!("{error:#}").contains("compaction"), "{error:#}");
    let error = lsm.close().expect_err("close returns the background error");
    assert!(format!("{error:#}").contains("compaction"), "{error:#}");
    assert_eq!(compaction_threads(), before);
}
