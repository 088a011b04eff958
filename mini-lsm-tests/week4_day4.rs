// SPDX-License-Identifier: Apache-2.0
//! Week 4 day 4: stalls, bounded. L0 slows writers down at one trigger and stops them at
//! another; every wait runs on the engine's clock and ends, past its bound, in an error that
//! names its cause, with the write not applied.
//!
//! The engines here run on a `FakeClock`: a test moves it by a minute in no time, so nothing
//! sleeps, and a stalled writer runs on a thread of its own (see `harness_stall.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;

use crate::clock::FakeClock;
use crate::compact::{CompactionOptions, LeveledCompactionOptions, TieredCompactionOptions};
use crate::lsm_storage::{LsmStorageOptions, MiniLsm, Pressure, StallCause};

use super::harness::stall::{
    advance_short_of_deadline, await_stall, fill_l0, join_within, l0_options, open_shared,
    spawn_write, within, SLOWDOWN_DELAY, STALL_TIMEOUT,
};
use super::harness::{bytes_of, flush_thread_test_guard, freeze, poll_until, test_seed, Rng};

// ---------------------------------------------------------------------------------------------
// Task 1: the decision

/// Below the slowdown trigger writes go; at it they slow; at the stop trigger they stop, each
/// naming L0's count and the trigger. Catches: `>` for `>=`, the triggers swapped or ignored.
#[test]
fn test_task1_l0_triggers_slow_then_stop() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(l0_options(&clock));
    let pressure =
        |storage: &crate::lsm_storage::LsmStorageInner| storage.write_pressure(&storage.snapshot());
    let mut seen = Vec::new();
    for count in 0..=6 {
        fill_l0(&storage, count);
        seen.push((count, pressure(&storage)));
    }
    let l0 = |count, trigger| StallCause::L0 { count, trigger };
    assert_eq!(
        seen,
        vec![
            (0, Pressure::Go),
            (1, Pressure::Go),
            (2, Pressure::Go),
            (3, Pressure::Slow(l0(3, 3))),
            (4, Pressure::Slow(l0(4, 3))),
            (5, Pressure::Stop(l0(5, 5))),
            (6, Pressure::Stop(l0(6, 5))),
        ],
        "L0 SST count against the slowdown trigger 3 and the stop trigger 5"
    );
}

/// Too many memtables stop writes before L0 is even looked at, and triggers set to `None`
/// never hold a write back. Catches: the memtable count of week 1 dropped, `None` read as 0.
#[test]
fn test_task1_memtables_first_and_no_trigger_means_go() {
    let clock = FakeClock::new();
    let mut options = l0_options(&clock);
    options.num_memtable_limit = 2;
    options.write_stall_margin = 1;
    let (_dir, storage) = open_shared(options);
    fill_l0(&storage, 4);
    for i in 0..3 {
        storage.put(format!("m{i}").as_bytes(), b"v").unwrap();
        freeze(&storage);
    }
    assert_eq!(
        storage.write_pressure(&storage.snapshot()),
        Pressure::Stop(StallCause::Memtables { count: 4, limit: 3 }),
        "4 memtables over the limit of 2 + 1 stop writes, before L0's slowdown is looked at"
    );

    let mut options = l0_options(&clock);
    options.l0_slowdown_writes_trigger = None;
    options.l0_stop_writes_trigger = None;
    let (_dir, storage) = open_shared(options);
    fill_l0(&storage, 8);
    assert_eq!(
        storage.write_pressure(&storage.snapshot()),
        Pressure::Go,
        "without triggers L0 never holds a write back"
    );
}

/// With tiered compaction, which flushes to a new tier instead of L0, the triggers count tiers.
#[test]
fn test_task1_tiered_counts_tiers() {
    let clock = FakeClock::new();
    let mut options = l0_options(&clock);
    options.compaction_options = CompactionOptions::Tiered(TieredCompactionOptions {
        num_tiers: 2,
        ..Default::default()
    });
    let (_dir, storage) = open_shared(options);
    for i in 0..5 {
        storage.put(format!("t{i}").as_bytes(), b"v").unwrap();
        freeze(&storage);
        storage.force_flush_next_imm_memtable().unwrap();
    }
    let snapshot = storage.snapshot();
    assert!(
        snapshot.l0_sstables.is_empty(),
        "tiered compaction has no L0"
    );
    assert_eq!(
        storage.write_pressure(&snapshot),
        Pressure::Stop(StallCause::L0 {
            count: 5,
            trigger: 5
        }),
        "5 tiers reach the stop trigger of 5"
    );
}

// ---------------------------------------------------------------------------------------------
// Task 2: slowing down and stopping, on the clock

/// At the slowdown trigger each write waits exactly one delay on the engine's clock, and is
/// applied; below it, none. Catches: no delay, a delay per loop turn, a real sleep.
#[test]
fn test_task2_slowdown_delays_each_write_once() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(l0_options(&clock));
    fill_l0(&storage, 2);
    let before = clock.elapsed();
    storage.put(b"fast", b"v").unwrap();
    assert_eq!(
        clock.elapsed(),
        before,
        "below the slowdown trigger no write waits"
    );

    fill_l0(&storage, 3);
    let before = clock.elapsed();
    let writer = Arc::clone(&storage);
    within("4 slowed writes", move || {
        for i in 0..4 {
            writer.put(format!("slow{i}").as_bytes(), b"v").unwrap();
        }
    });
    assert_eq!(
        clock.elapsed() - before,
        4 * SLOWDOWN_DELAY,
        "4 writes at the slowdown trigger wait one l0_slowdown_delay each, on the engine's clock"
    );
    for i in 0..4 {
        assert_eq!(
            storage.get(format!("slow{i}").as_bytes()).unwrap(),
            Some(bytes_of(b"v")),
            "a slowed write is applied"
        );
    }
}

/// Regression: a stopped write waits its whole bound and then fails, naming L0's count, the
/// trigger and what to do; the write is not applied (one published engine's stall gives up
/// after 60 s and lets the write through). Catches: giving up early, proceeding at the bound,
/// waiting on the system clock, restarting the bound at each wakeup.
#[test]
fn test_task2_stop_fails_at_its_bound_and_never_writes() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(l0_options(&clock));
    fill_l0(&storage, 5);
    let ts = storage.latest_commit_ts();
    let mut writer = Some(spawn_write(&storage, |s| s.put(b"late", b"v")));
    await_stall(&storage, &mut writer);
    advance_short_of_deadline(
        &clock,
        STALL_TIMEOUT - Duration::from_millis(1),
        &mut writer,
    );
    clock.advance(Duration::from_millis(1));
    let result = join_within(
        writer.take().expect("a writer"),
        "the clock passed the stall bound",
    );
    let error = format!(
        "{:#}",
        result.expect_err("a write stopped past its bound must fail")
    );
    for needle in [
        "L0 holds 5 SSTs",
        "trigger of 5",
        "not applied",
        "l0_stop_writes_trigger",
    ] {
        assert!(
            error.contains(needle),
            "the error lacks {needle:?}: {error}"
        );
    }
    assert_eq!(
        storage.get(b"late").unwrap(),
        None,
        "a write that failed its stall was applied"
    );
    assert_eq!(
        storage.latest_commit_ts(),
        ts,
        "a write that failed its stall took a commit timestamp"
    );

    // Once compaction brings L0 below the triggers, writes go again, with no wait.
    storage.force_full_compaction().unwrap();
    let before = clock.elapsed();
    storage.put(b"late", b"v").unwrap();
    assert_eq!(clock.elapsed(), before);
    assert_eq!(storage.get(b"late").unwrap(), Some(bytes_of(b"v")));
}

/// The memtable stall of week 1 runs on the engine's clock too, and its error names the count.
/// Catches: week 1's wait on the system clock kept.
#[test]
fn test_task2_memtable_stall_runs_on_the_clock() {
    let clock = FakeClock::new();
    let mut options = l0_options(&clock);
    options.num_memtable_limit = 2;
    options.write_stall_margin = 1;
    let (_dir, storage) = open_shared(options);
    for i in 0..3 {
        storage.put(format!("m{i}").as_bytes(), b"v").unwrap();
        freeze(&storage);
    }
    let mut writer = Some(spawn_write(&storage, |s| s.delete(b"m0")));
    await_stall(&storage, &mut writer);
    advance_short_of_deadline(&clock, STALL_TIMEOUT / 2, &mut writer);
    clock.advance(STALL_TIMEOUT / 2);
    let result = join_within(writer.take().unwrap(), "the clock passed the stall bound");
    let error = format!("{:#}", result.expect_err("the stall must time out"));
    assert!(
        error.contains("4 memtables") && error.contains("not applied"),
        "unexpected error: {error}"
    );
    assert_eq!(
        storage.get(b"m0").unwrap(),
        Some(bytes_of(b"v")),
        "the delete was applied"
    );
}

/// A background error that arrives while a write is stopped ends the wait at once with that
/// error, not a timeout. Catches: waiting out the bound, reporting a timeout instead.
#[test]
fn test_task2_background_error_ends_the_stop() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(l0_options(&clock));
    fill_l0(&storage, 5);
    let before = clock.elapsed();
    let mut writer = Some(spawn_write(&storage, |s| s.put(b"doomed", b"v")));
    await_stall(&storage, &mut writer);
    storage.record_bg_error(anyhow!("the disk is on fire"));
    let result = join_within(writer.take().unwrap(), "a background error was recorded");
    let error = format!("{:#}", result.expect_err("the stopped write must fail"));
    assert!(
        error.contains("the disk is on fire"),
        "not the background error: {error}"
    );
    assert_eq!(clock.elapsed(), before, "no time passed on the clock");
    assert_eq!(storage.get(b"doomed").unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Task 3: compaction wakes stopped writers

/// A compaction that brings L0 below the stop trigger wakes a stopped write at once, with no
/// time passing on the clock, and the write is applied. Catches: no wakeup at the install.
#[test]
fn test_task3_compaction_wakes_a_stopped_write() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(l0_options(&clock));
    fill_l0(&storage, 6);
    let before = clock.elapsed();
    let mut writer = Some(spawn_write(&storage, |s| s.put(b"woken", b"v")));
    await_stall(&storage, &mut writer);
    storage.trigger_compaction().unwrap();
    assert!(
        storage.snapshot().l0_sstables.len() < 3,
        "the compaction emptied L0"
    );
    join_within(writer.take().unwrap(), "a compaction emptied L0")
        .expect("the woken write succeeds");
    assert_eq!(clock.elapsed(), before, "no time passed on the clock");
    assert_eq!(storage.get(b"woken").unwrap(), Some(bytes_of(b"v")));
}

/// 4 writers with the real flush and compaction threads, paced by the memtable limit, and L0
/// triggers just above compaction's: every write returns (nothing deadlocks, no stop outlasts
/// its bound) and the data matches a model.
#[test]
fn test_task3_no_deadlock_with_real_threads() {
    let _serial = flush_thread_test_guard();
    let seed = test_seed();
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week2_test(CompactionOptions::Leveled(
        LeveledCompactionOptions {
            level0_file_num_compaction_trigger: 2,
            ..Default::default()
        },
    ));
    options.target_sst_size = 4096;
    options.block_size = 256;
    options.num_memtable_limit = 2;
    options.write_stall_margin = 1;
    options.l0_slowdown_writes_trigger = Some(3);
    options.l0_stop_writes_trigger = Some(4);
    options.l0_slowdown_delay = Duration::from_micros(100);
    options.write_stall_timeout = Duration::from_secs(60);
    let lsm = MiniLsm::open(dir.path().join("db"), options).unwrap();
    const PER_WRITER: usize = 600;
    let models: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let lsm = &lsm;
                scope.spawn(move || {
                    let mut rng = Rng::new(seed ^ (w + 1));
                    let mut model = BTreeMap::new();
                    for i in 0..PER_WRITER {
                        let key = format!("w{w}-{:03}", rng.below(100)).into_bytes();
                        let value = format!("{i:050}").into_bytes();
                        lsm.put(&key, &value).unwrap();
                        model.insert(key, value);
                    }
                    model
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (key, value) in models.iter().flatten() {
        assert_eq!(
            lsm.get(key).unwrap(),
            Some(bytes_of(value)),
            "key {}",
            String::from_utf8_lossy(key)
        );
    }
    assert!(
        poll_until(Duration::from_secs(10), || !lsm.inner.compaction_pending()),
        "compaction never caught up"
    );
    lsm.close().unwrap();
}
