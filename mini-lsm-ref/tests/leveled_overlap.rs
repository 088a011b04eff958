// SPDX-License-Identifier: Apache-2.0
//! Leveled compaction through the real engine: how many SSTs of the next level a move meets.
//!
//! With a size multiplier of `m`, a level holds about `m` times the data of the one above, so an
//! SST moving down should meet about `m` SSTs below it (`m + 1` at the edges). The old pick (the
//! oldest SST) sank the lowest key range again and again and met 66 on average in the
//! simulator; the pick by least overlap must stay near `m + 1` on real data.

use mini_lsm::compact::LeveledCompactionOptions;
use mini_lsm::compact::{CompactionController, CompactionOptions, CompactionTask};
use mini_lsm::lsm_storage::{LsmStorageInner, LsmStorageOptions};

/// SplitMix64, for a fixed permutation of the keys.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 120 000 distinct keys written in a random order (16-byte keys, 100-byte values, 32 KiB SSTs,
/// about 14 MiB), each flush followed by compaction steps until the controller has nothing to
/// do: the moves from one level to the next meet on average at most twice `multiplier + 1` SSTs
/// below, and the tree ends with data in three levels.
#[test]
fn test_leveled_moves_meet_about_multiplier_ssts_below() {
    let multiplier = 10;
    let leveled = LeveledCompactionOptions {
        level_size_multiplier: multiplier,
        level0_file_num_compaction_trigger: 4,
        max_levels: 4,
        base_level_size_mb: 1,
    };
    let compaction = CompactionOptions::Leveled(leveled);
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week2_test(compaction.clone());
    options.target_sst_size = 32 << 10;
    options.num_memtable_limit = 1000; // This test flushes, and there is no flush thread.
    options.write_stall_margin = 1000;
    let storage = LsmStorageInner::open(dir.path(), options).unwrap();
    let controller = CompactionController::new(&compaction);

    let n = 120_000u64;
    let mut order: Vec<u64> = (0..n).collect();
    let mut seed = 12;
    for i in (1..order.len()).rev() {
        let j = (next(&mut seed) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let value = [b'v'; 100];
    let (mut moves, mut met, mut most) = (0usize, 0usize, 0usize);
    for i in order {
        storage.put(format!("{i:016}").as_bytes(), &value).unwrap();
        if storage.snapshot().imm_memtables.is_empty() {
            continue;
        }
        storage.force_flush_next_imm_memtable().unwrap();
        // The step runs the task the controller picks from the same shape, so the task seen here
        // is the one it runs.
        while let Some(task) = controller.generate_task(&storage.snapshot().shape()) {
            if let CompactionTask::Leveled(t) = &task {
                if t.upper_level.is_some() {
                    moves += 1;
                    met += t.lower_level_sst_ids.len();
                    most = most.max(t.lower_level_sst_ids.len());
                }
            }
            storage.trigger_compaction().unwrap();
        }
    }
    let average = met as f64 / moves.max(1) as f64;
    let levels: Vec<(usize, usize)> = storage
        .snapshot()
        .levels
        .iter()
        .map(|(level, ids)| (*level, ids.len()))
        .collect();
    println!(
        "{moves} moves between levels met {average:.1} SSTs below on average, {most} at most; \
         SSTs per level: {levels:?}"
    );
    assert!(
        moves >= 100,
        "too few moves to measure: {moves}; {levels:?}"
    );
    let bound = 2.0 * (multiplier + 1) as f64;
    assert!(
        average <= bound,
        "moves met {average:.1} SSTs below on average, over twice {}",
        multiplier + 1
    );
    let filled = levels.iter().filter(|(_, count)| *count > 0).count();
    assert_eq!(filled, 3, "{levels:?}");
}
