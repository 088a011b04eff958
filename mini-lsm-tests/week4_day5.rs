// SPDX-License-Identifier: Apache-2.0
//! Week 4 day 5: a memory budget for all the memtables. Past half of it the engine freezes and
//! flushes early; at the budget writers wait for a flush, bounded, and only then.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::FakeClock;
use crate::lsm_storage::{
    LsmStorageInner, LsmStorageOptions, MemoryUse, Pressure, StallCause, WriteBufferManager,
};

use super::harness::stall::{
    advance_short_of_deadline, await_stall, join_within, open_shared, spawn_write, within,
    STALL_TIMEOUT,
};
use super::harness::{bytes_of, freeze};

/// The budget of these tests: 64 KiB, with memtables that never freeze by size (1 MiB) or
/// flush by count (50), so that only the budget acts; on `clock`.
const BUDGET: usize = 64 << 10;

fn budget_options(clock: &Arc<FakeClock>) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.target_sst_size = 1 << 20;
    options.num_memtable_limit = 50;
    options.memory_budget = Some(BUDGET);
    options.write_stall_timeout = STALL_TIMEOUT;
    options.clock = clock.clone();
    options
}

/// A value of about 1 KiB, different for each `i`.
fn value(i: usize) -> Vec<u8> {
    format!("{i:01024}").into_bytes()
}

fn usage(storage: &LsmStorageInner) -> MemoryUse {
    MemoryUse::of(&storage.snapshot())
}

// ---------------------------------------------------------------------------------------------
// Task 1: measuring and deciding

/// The usage is every memtable's `approximate_size`, the mutable one apart from the frozen ones.
/// Catches: the frozen memtables left out, the mutable one counted twice.
#[test]
fn test_task1_usage_counts_every_memtable() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(budget_options(&clock));
    assert_eq!(
        usage(&storage),
        MemoryUse {
            mutable: 0,
            immutable: 0
        }
    );
    storage.put(b"a", &value(1)).unwrap();
    let first = storage.snapshot().memtable.approximate_size();
    freeze(&storage);
    storage.put(b"b", &value(2)).unwrap();
    storage.put(b"c", &value(3)).unwrap();
    freeze(&storage);
    storage.put(b"d", &value(4)).unwrap();
    let snapshot = storage.snapshot();
    let second = snapshot.imm_memtables[0].approximate_size();
    let mutable = snapshot.memtable.approximate_size();
    assert!(first > 1024 && second > 2048 && mutable > 1024);
    let usage = MemoryUse::of(&snapshot);
    assert_eq!(
        usage,
        MemoryUse {
            mutable,
            immutable: first + second
        }
    );
    assert_eq!(usage.total(), mutable + first + second);
}

/// The decisions at their edges: freeze past half the budget if the mutable memtable holds half
/// the usage, flush past half if a frozen one waits, wait at the budget; no budget, nothing.
/// Catches: an edge off by one, the flush point at the budget, a freeze of a small memtable.
#[test]
fn test_task1_decisions_at_their_edges() {
    let manager = WriteBufferManager::new(Some(1000));
    let at = |mutable, immutable| MemoryUse { mutable, immutable };
    let decide = |usage| {
        (
            manager.should_freeze(usage),
            manager.should_flush(usage),
            manager.must_wait(usage),
        )
    };
    assert_eq!(
        decide(at(499, 0)),
        (false, false, false),
        "under the flush point"
    );
    assert_eq!(
        decide(at(500, 0)),
        (true, false, false),
        "at the flush point, all mutable"
    );
    assert_eq!(decide(at(250, 250)), (true, true, false), "half and half");
    assert_eq!(
        decide(at(249, 251)),
        (false, true, false),
        "too little to freeze"
    );
    assert_eq!(decide(at(0, 500)), (false, true, false));
    assert_eq!(
        decide(at(499, 500)),
        (false, true, false),
        "just under the budget"
    );
    assert_eq!(decide(at(500, 500)), (true, true, true), "at the budget");
    assert_eq!(decide(at(0, 1000)), (false, true, true));
    assert_eq!(decide(at(1000, 0)), (true, false, true));
    let none = WriteBufferManager::new(None);
    for usage in [at(0, 0), at(usize::MAX / 2, usize::MAX / 2)] {
        assert!(
            !none.should_freeze(usage) && !none.should_flush(usage) && !none.must_wait(usage),
            "without a budget nothing is decided"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Task 2: freezing and flushing early

/// Past half the budget the write that crosses it freezes the memtable, far below its target
/// size, and `trigger_flush` flushes it, far below the memtable limit. Catches: no early freeze,
/// no early flush, a flush loop that never ends.
#[test]
fn test_task2_freezes_and_flushes_early() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(budget_options(&clock));
    let mut i = 0;
    while usage(&storage).total() + 2048 < BUDGET / 2 {
        storage
            .put(format!("k{i:04}").as_bytes(), &value(i))
            .unwrap();
        i += 1;
        assert!(
            storage.snapshot().imm_memtables.is_empty(),
            "froze too early"
        );
    }
    let frozen_at = loop {
        storage
            .put(format!("k{i:04}").as_bytes(), &value(i))
            .unwrap();
        i += 1;
        if !storage.snapshot().imm_memtables.is_empty() {
            break storage.snapshot().imm_memtables[0].approximate_size();
        }
        assert!(
            usage(&storage).total() < BUDGET / 2,
            "{} bytes in the memtables, past half the budget of {BUDGET}, and no freeze",
            usage(&storage).total()
        );
    };
    assert!(
        (BUDGET / 2..BUDGET / 2 + 2048).contains(&frozen_at),
        "froze at {frozen_at} bytes, not just past half the budget"
    );
    let flusher = Arc::clone(&storage);
    within("trigger_flush", move || flusher.trigger_flush().unwrap());
    let snapshot = storage.snapshot();
    assert!(
        snapshot.imm_memtables.is_empty() && snapshot.l0_sstables.len() == 1,
        "one memtable over half the budget, far below the memtable limit of 50, is flushed"
    );
    let flusher = Arc::clone(&storage);
    within("trigger_flush", move || flusher.trigger_flush().unwrap());
    assert_eq!(
        storage.snapshot().l0_sstables.len(),
        1,
        "under the flush point nothing more is flushed"
    );
    for j in 0..i {
        assert_eq!(
            storage.get(format!("k{j:04}").as_bytes()).unwrap(),
            Some(bytes_of(value(j)))
        );
    }
}

/// Regression: while flushing keeps up, no write waits, however much more than the budget goes
/// through (one published engine's budget blocks every put for 30 s); and the memtables never
/// hold the budget. Catches: stopping at the flush point, stopping with nothing to wait for.
#[test]
fn test_task2_no_write_waits_while_flushing_keeps_up() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(budget_options(&clock));
    let writer = Arc::clone(&storage);
    let most = within(
        "writing 16 budgets' worth with a flush after each write",
        move || {
            let mut most = 0;
            for i in 0..1024 {
                writer
                    .put(format!("k{i:04}").as_bytes(), &value(i))
                    .unwrap();
                most = most.max(usage(&writer).total());
                writer.trigger_flush().unwrap();
            }
            most
        },
    );
    assert_eq!(
        clock.elapsed(),
        Duration::ZERO,
        "a write waited on the clock"
    );
    assert!(
        most < BUDGET,
        "the memtables held {most} bytes, at or past the budget of {BUDGET}"
    );
    assert!(storage.snapshot().l0_sstables.len() >= 16);
    assert_eq!(storage.get(b"k0777").unwrap(), Some(bytes_of(value(777))));
}

// ---------------------------------------------------------------------------------------------
// Task 3: stopping at the budget

/// Fills the memtables of `storage` to the budget with no flush: past half it freezes, and
/// writes go on until the memtables hold the budget. Returns the next key number.
fn fill_to_budget(storage: &LsmStorageInner) -> usize {
    let mut i = 0;
    while !matches!(
        storage.write_pressure(&storage.snapshot()),
        Pressure::Stop(_)
    ) {
        storage
            .put(format!("k{i:04}").as_bytes(), &value(i))
            .unwrap();
        i += 1;
        assert!(
            i < 200,
            "200 KiB written, the budget is 64 KiB, and no stop"
        );
    }
    i
}

/// Regression: at the budget, with no flush, a write waits its whole bound and then fails with
/// an error that says flushing fell behind; it is not applied (one published engine lets it
/// through after 30 s). Catches: no stop, proceeding at the bound, a stop below the budget.
#[test]
fn test_task3_stop_at_the_budget_fails_at_its_bound() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(budget_options(&clock));
    let next = fill_to_budget(&storage);
    let used = usage(&storage).total();
    assert!(
        (BUDGET..BUDGET + 2048).contains(&used),
        "stopped at {used} bytes"
    );
    assert_eq!(
        storage.write_pressure(&storage.snapshot()),
        Pressure::Stop(StallCause::Memory {
            used,
            budget: BUDGET
        })
    );
    let mut writer = Some(spawn_write(&storage, move |s| s.put(b"late", &value(next))));
    await_stall(&storage, &mut writer);
    advance_short_of_deadline(
        &clock,
        STALL_TIMEOUT - Duration::from_millis(1),
        &mut writer,
    );
    clock.advance(Duration::from_millis(1));
    let result = join_within(writer.take().unwrap(), "the clock passed the stall bound");
    let error = format!(
        "{:#}",
        result.expect_err("a write stopped past its bound must fail")
    );
    for needle in ["memory_budget", "flushing did not keep up", "not applied"] {
        assert!(
            error.contains(needle),
            "the error lacks {needle:?}: {error}"
        );
    }
    assert_eq!(
        storage.get(b"late").unwrap(),
        None,
        "the failed write was applied"
    );
}

/// A flush that brings the memtables under the budget wakes a write stopped at it at once,
/// with no time passing on the clock. Catches: no stop at all, waiting out the bound anyway.
#[test]
fn test_task3_a_flush_wakes_a_write_stopped_at_the_budget() {
    let clock = FakeClock::new();
    let (_dir, storage) = open_shared(budget_options(&clock));
    let next = fill_to_budget(&storage);
    let mut writer = Some(spawn_write(&storage, move |s| {
        s.put(b"woken", &value(next))
    }));
    await_stall(&storage, &mut writer);
    storage.trigger_flush().unwrap();
    join_within(writer.take().unwrap(), "a flush made room").expect("the woken write succeeds");
    assert_eq!(
        clock.elapsed(),
        Duration::ZERO,
        "no time passed on the clock"
    );
    assert_eq!(storage.get(b"woken").unwrap(), Some(bytes_of(value(next))));
}
