// SPDX-License-Identifier: Apache-2.0
//! Back-pressure: when a write goes ahead, is slowed down, or must wait (week 1 day 6, week 4
//! days 4 and 5).
//!
//! Writers can put data in faster than the background can move it down: flushes turn memtables
//! into L0 SSTs, and compaction merges L0 into the levels. When the background falls behind,
//! something grows without bound: memtables waiting to be flushed (memory), or L0 (every read
//! probes every L0 SST). So the write path looks at the state before each write and pushes back:
//!
//! ```text
//!                          go            slow (one delay)          stop (wait, bounded)
//!   memtables waiting      ──────────────────────────────────────▶ > limit + stall margin
//!   memory of memtables    ──────────────────────────────────────▶ >= memory_budget
//!   L0 SSTs                ──────────▶ >= slowdown trigger ──────▶ >= stop trigger
//! ```
//!
//! A slowdown costs each write a short delay (`l0_slowdown_delay`), which spreads the
//! compaction debt over many writes instead of stopping them all at once later. A stop waits
//! until a flush or a compaction makes room, and every flush and compaction install wakes the
//! waiters. Both run on the engine's [`crate::clock::Clock`], so tests drive them without
//! sleeping.
//!
//! Every stop is bounded by `write_stall_timeout`: past it the write fails with an error that
//! names what held it back, how far, and what to do, and the write is **not** applied. A stall
//! that gives up and lets the write through anyway (as one published engine's does after 60 s)
//! turns an overloaded engine into one whose memory or L0 has no limit at all.
//!
//! Left out, and what it costs: RocksDB slows writes to a byte rate that it adapts to how far
//! compaction is behind; a fixed delay per write (LevelDB's choice) is cruder, slowing small and
//! large writes alike. And pending compaction bytes, RocksDB's third trigger, are not measured.

use std::fmt;

use super::write_buffer::MemoryUse;
use super::{LsmStorageInner, LsmStorageState};

// ANCHOR: pressure
/// What holds a writer back, and how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallCause {
    /// More memtables than the limit plus the stall margin wait to be flushed.
    Memtables {
        /// Memtables, the mutable one included.
        count: usize,
        /// `num_memtable_limit + write_stall_margin`.
        limit: usize,
    },
    /// L0 holds at least a trigger's count of SSTs (tiers, with tiered compaction).
    L0 {
        /// SSTs in L0, or tiers.
        count: usize,
        /// The trigger reached.
        trigger: usize,
    },
    /// The memtables hold at least the memory budget (week 4 day 5).
    Memory {
        /// Bytes the memtables hold.
        used: usize,
        /// `memory_budget`.
        budget: usize,
    },
}

/// How hard the state pushes back on a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// The write goes ahead.
    Go,
    /// The write goes ahead after one `l0_slowdown_delay`.
    Slow(StallCause),
    /// The write waits until the cause clears, for at most `write_stall_timeout`.
    Stop(StallCause),
}
// ANCHOR_END: pressure

// ANCHOR: stall_cause_text
impl fmt::Display for StallCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Memtables { count, limit } => write!(
                f,
                "{count} memtables waiting to be flushed, over the limit of {limit} \
                 (num_memtable_limit + write_stall_margin)"
            ),
            Self::L0 { count, trigger } => write!(
                f,
                "L0 holds {count} SSTs, at or above the trigger of {trigger}"
            ),
            Self::Memory { used, budget } => write!(
                f,
                "the memtables hold {used} bytes, at or above memory_budget ({budget} bytes)"
            ),
        }
    }
}

impl StallCause {
    /// What was waited for and what to do, for the error of a stall that timed out.
    pub(crate) fn advice(&self) -> &'static str {
        match self {
            Self::Memtables { .. } => {
                "Is the flush thread running? (Or raise num_memtable_limit or write_stall_margin.)"
            }
            Self::L0 { .. } => {
                "compaction did not bring L0 below l0_stop_writes_trigger in time: is the \
                 compaction thread running, and can it keep up? (A higher l0_stop_writes_trigger \
                 or write_stall_timeout trades read speed for fewer stops.)"
            }
            Self::Memory { .. } => {
                "flushing did not keep up with the writes: is the flush thread running, and can \
                 the disk keep up? (A larger memory_budget buys time, not speed.)"
            }
        }
    }
}
// ANCHOR_END: stall_cause_text

impl LsmStorageInner {
    /// The sorted runs at the top of the tree that flushes add to: L0's SSTs, or, with tiered
    /// compaction (which flushes to a new tier instead), the tiers.
    pub(crate) fn top_runs(&self, state: &LsmStorageState) -> usize {
        if self.compaction_controller.flush_to_l0() {
            state.l0_sstables.len()
        } else {
            state.levels.len()
        }
    }

    // ANCHOR: write_pressure
    /// How hard `state` pushes back on a write: the memtable count of week 1 first, then the
    /// memory budget, then L0 against its stop and slowdown triggers (see the module docs).
    pub(crate) fn write_pressure(&self, state: &LsmStorageState) -> Pressure {
        // @task week4_day4 1
        let count = 1 + state.imm_memtables.len();
        let limit = self.options.num_memtable_limit + self.options.write_stall_margin;
        if count > limit {
            return Pressure::Stop(StallCause::Memtables { count, limit });
        }
        // @task week4_day5 3 stub=comment
        if let Some(budget) = self.write_buffer.budget() {
            let usage = MemoryUse::of(state);
            if self.write_buffer.must_wait(usage) {
                let used = usage.total();
                return Pressure::Stop(StallCause::Memory { used, budget });
            }
        }
        // @end
        let count = self.top_runs(state);
        if let Some(trigger) = self.options.l0_stop_writes_trigger {
            if count >= trigger {
                return Pressure::Stop(StallCause::L0 { count, trigger });
            }
        }
        if let Some(trigger) = self.options.l0_slowdown_writes_trigger {
            if count >= trigger {
                return Pressure::Slow(StallCause::L0 { count, trigger });
            }
        }
        Pressure::Go
        // @end
    }
    // ANCHOR_END: write_pressure
}
