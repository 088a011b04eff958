// SPDX-License-Identifier: Apache-2.0
//! Leveled compaction, in the manner of RocksDB's leveled compaction with dynamic level sizes.
//!
//! Each level L1..=Lmax is a sorted run with a target size in bytes, computed from the bottom up
//! so that the bottom level holds most of the data whatever its size: the bottom's target is its
//! actual size (at least `base_level_size_mb`), and each level above gets the target of the one
//! below divided by `level_size_multiplier`, as long as the one below is over
//! `base_level_size_mb`. The highest level with a target is the *base level*, where L0 goes;
//! the levels above it stay empty until the data grows. (Should one of them hold data, because
//! the bottom level shrank or a full compaction put it there, L0 goes to it instead: L0 must
//! never pass older data. With no target, that level is first to move its data down.)
//!
//! ```text
//!   base 256 MiB, x10, the bottom level L4 holds 3 GiB:
//!   L1 target 0 (empty)   L2 30 MiB (base)   L3 300 MiB   L4 3 GiB
//! ```
//!
//! Compactions, in order of priority:
//! 1. L0 holds `level0_file_num_compaction_trigger` SSTs: merge all of L0 with the SSTs of the
//!    base level that overlap it, into the base level.
//! 2. Otherwise the level above the bottom whose size is most over its target (size / target
//!    greatest, and above 1) moves one SST down, merged with the SSTs of the next level that
//!    overlap it. The SST is the one whose overlapping bytes below are the smallest relative to
//!    its own size, the smallest id on a tie: RocksDB's default pick, `kMinOverlappingRatio`.
//!
//! ```text
//!   L2   7:[a..f] 4 MiB      5:[g..m] 2 MiB      6:[n..z] 4 MiB
//!   L3   [a..c] [d..h] [i..p] [q..z]                   9 MiB each
//!   met below / own size:   18/4 = 4.5    18/2 = 9    18/4 = 4.5    ──▶ 6 moves (tie: smaller id)
//! ```
//!
//! Why this pick: every byte moved down costs the bytes it meets below, so the cheapest move
//! first keeps write amplification down; and it does not starve a key range. An SST is skipped
//! while the range below it is dense; the moves that go elsewhere make their ranges denser,
//! until the skipped SST is the cheapest. Picking the oldest SST (the smallest id) looks fair
//! but is not: the outputs of a compaction get ids in key order, so the smallest id is always
//! the lowest key range, which sinks again and again while the rest of the level waits. The
//! cost of the pick: the overlap of every SST of the level, a binary search each, at each pick.
//!
//! Each move rewrites about `level_size_multiplier` SSTs of the next level per SST moved down,
//! so write amplification is about the multiplier times the number of levels; in return reads
//! probe one SST per level and at most ~1/multiplier of the data is stale.

use super::{apply_level_compaction, LevelCompactionTask, LsmShape};

/// Bytes in a mebibyte.
const MIB: u64 = 1 << 20;

/// Settings of leveled compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeveledCompactionOptions {
    /// Each level's target is this many times the target of the level above it.
    pub level_size_multiplier: usize,
    /// L0 is merged into the base level once it holds at least this many SSTs.
    pub level0_file_num_compaction_trigger: usize,
    /// The number of levels below L0: L1..=`max_levels`.
    pub max_levels: usize,
    /// The largest target of the base level, in MiB; also the bottom level's smallest target.
    pub base_level_size_mb: usize,
}

impl Default for LeveledCompactionOptions {
    /// RocksDB's defaults: x10 per level, L0 compacts at 4 SSTs, a 256 MiB base, and 4 levels.
    fn default() -> Self {
        Self {
            level_size_multiplier: 10,
            level0_file_num_compaction_trigger: 4,
            max_levels: 4,
            base_level_size_mb: 256,
        }
    }
}

/// The target sizes of the levels, from [`LeveledCompactionController::target_sizes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelTargets {
    /// Where L0 is compacted to: the highest level with a target or, if a level above that one
    /// holds data, the highest such level (L0 must not pass older data).
    pub base_level: usize,
    /// `targets[level]` in bytes for `level` in `1..=max_levels`; 0 for the levels above the
    /// base level (and `targets[0]`, as L0 has no byte target).
    pub targets: Vec<u64>,
}

/// Decides leveled compactions; pure (see [`crate::compact`]).
#[derive(Debug, Clone)]
pub struct LeveledCompactionController {
    options: LeveledCompactionOptions,
}

impl LeveledCompactionController {
    /// A controller with `options`.
    pub fn new(options: LeveledCompactionOptions) -> Self {
        Self { options }
    }

    /// The controller's settings.
    pub fn options(&self) -> &LeveledCompactionOptions {
        &self.options
    }

    /// The target size of every level, computed from the bottom level's actual size, and the
    /// base level (see the module docs and [`LevelTargets`]).
    pub fn target_sizes(&self, shape: &LsmShape) -> LevelTargets {
        todo!("week 2 day 4, task 1: compute the level target sizes and the base level from the bottom level (book: week2-04-leveled)")
    }

    /// The compaction of highest priority (see the module docs), or `None`. Among levels equally
    /// far over their target, the higher one goes first; a level with data but no target (above
    /// the base level) is infinitely far over it.
    pub fn generate_task(&self, shape: &LsmShape) -> Option<LevelCompactionTask> {
        todo!("week 2 day 4, task 2: pick a leveled compaction: L0 into the base level, or the level most over its target (book: week2-04-leveled)")
    }

    /// The SST of `level` to move down: the one whose overlapping bytes in the next level are
    /// the smallest relative to its own size, the smallest id on a tie (RocksDB's default
    /// `kMinOverlappingRatio`). `None` for an empty level.
    pub fn least_overlapping(&self, shape: &LsmShape, level: usize) -> Option<usize> {
        todo!("week 2 day 4, task 2: pick a leveled compaction: L0 into the base level, or the level most over its target (book: week2-04-leveled)")
    }

    /// The shape once `output` replaces the task's inputs: see [`apply_level_compaction`].
    pub fn apply_result(
        &self,
        shape: &LsmShape,
        task: &LevelCompactionTask,
        output: &[usize],
    ) -> LsmShape {
        apply_level_compaction(shape, task, output)
    }
}
