// SPDX-License-Identifier: Apache-2.0
//! The write buffer manager (week 4 day 5): one memory budget for all the memtables.
//!
//! Memtables are the engine's write buffers. The mutable one grows until it reaches the target
//! size; frozen ones wait for the flush thread. Counted one by one, nothing bounds their sum: a
//! slow disk lets frozen memtables pile up to the memtable limit, each as large as the target.
//! A budget bounds the sum instead, whatever the sizes:
//!
//! ```text
//!   0                     budget / 2                        budget
//!   ├──── writes go on ────┼──── freeze early, flush early ────┼── writers wait for a flush
//!   usage = mutable + every frozen memtable not yet flushed
//! ```
//!
//! Past half the budget (the *flush point*) the engine gets memory back early: the writer that
//! crosses it freezes the mutable memtable if that holds at least half of the usage (so the
//! freeze is worth a flush), and the flush thread flushes frozen memtables until the usage is
//! back under the flush point. Writers wait only at the budget itself, which they reach only if
//! they filled the other half while the flushes ran: when flushing cannot keep up. The wait is
//! bounded like every stall (see `stall.rs`), and its error says that flushing fell behind.
//!
//! Half is the point of double buffering: one half being flushed, the other half taking writes.
//! (RocksDB's manager, whose name this borrows, starts flushing at seven eighths.)
//!
//! Left out, and what it costs: the usage is read from the state, so a memtable leaves the count
//! when its flush installs the SST, even if a long scan still holds it in memory (RocksDB counts
//! it until it is freed); and the budget is the engine's own, where RocksDB's can be shared by
//! several databases in one process. The block cache and log buffers have budgets of their own.

use super::LsmStorageState;

/// What the memtables of one state hold, in bytes (their `approximate_size`, which counts the
/// skip list's nodes as well as the keys and values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// The mutable memtable.
    pub mutable: usize,
    /// Every frozen memtable not yet flushed.
    pub immutable: usize,
}

impl MemoryUse {
    /// What the memtables of `state` hold.
    pub fn of(state: &LsmStorageState) -> Self {
        todo!("week 4 day 5, task 1: measure what the memtables hold, and decide when to freeze early, flush early and stop (book: week4-05-memory-budget)")
    }

    /// Both together.
    pub fn total(&self) -> usize {
        self.mutable + self.immutable
    }
}

/// The memory budget's decisions: pure functions of the usage, so that tests can check them on
/// numbers alone. `None` (no budget) decides nothing.
#[derive(Debug, Clone, Copy)]
pub struct WriteBufferManager {
    budget: Option<usize>,
}

impl WriteBufferManager {
    /// A manager for `budget` bytes, or none.
    pub fn new(budget: Option<usize>) -> Self {
        Self { budget }
    }

    /// The budget, if there is one: without one, the write path skips measuring.
    pub fn budget(&self) -> Option<usize> {
        self.budget
    }

    /// Whether the mutable memtable should be frozen now, before its target size: past the
    /// flush point, if it holds at least half of the usage.
    pub fn should_freeze(&self, usage: MemoryUse) -> bool {
        todo!("week 4 day 5, task 1: measure what the memtables hold, and decide when to freeze early, flush early and stop (book: week4-05-memory-budget)")
    }

    /// Whether the flush thread should flush a frozen memtable now, whatever the memtable count:
    /// past the flush point, if there is one to flush.
    pub fn should_flush(&self, usage: MemoryUse) -> bool {
        todo!("week 4 day 5, task 1: measure what the memtables hold, and decide when to freeze early, flush early and stop (book: week4-05-memory-budget)")
    }

    /// Whether writers must wait for a flush: at the budget.
    pub fn must_wait(&self, usage: MemoryUse) -> bool {
        todo!("week 4 day 5, task 1: measure what the memtables hold, and decide when to freeze early, flush early and stop (book: week4-05-memory-budget)")
    }
}
