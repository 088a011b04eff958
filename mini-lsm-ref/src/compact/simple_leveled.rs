// SPDX-License-Identifier: Apache-2.0
//! Simple leveled compaction: whole levels merge into the next when they grow too large for it.
//!
//! Levels L1..=Lmax each hold one sorted run. L0 is merged, all of it, into L1 once it holds
//! `level0_file_num_compaction_trigger` SSTs. A level Li (i >= 1) is merged, all of it, into
//! L(i+1) when L(i+1) is not at least `size_ratio_percent`% of its size, counting SSTs:
//!
//! ```text
//!   L0  [7] [6]          2 SSTs >= trigger 2         ──▶ L0 + L1 into L1
//!   L1  [a..m][n..z]     |L2| * 100 < 200 * |L1|?    ──▶ L1 + L2 into L2
//!   L2  [a..h][i..p][q..z]
//! ```
//!
//! Every compaction rewrites a whole level, so it is easy to follow and expensive: write
//! amplification grows with the level sizes. Leveled compaction (day 4) merges one SST at a time.

use super::{apply_level_compaction, LevelCompactionTask, LsmShape};

/// Settings of simple leveled compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleLeveledCompactionOptions {
    /// Level i (i >= 1) is merged into level i+1 when `|L(i+1)| * 100 < size_ratio_percent *
    /// |Li|`, sizes counted in SSTs.
    pub size_ratio_percent: usize,
    /// L0 is merged into L1 once it holds at least this many SSTs.
    pub level0_file_num_compaction_trigger: usize,
    /// The number of levels below L0: L1..=`max_levels`.
    pub max_levels: usize,
}

impl Default for SimpleLeveledCompactionOptions {
    /// Each level at least twice the one above; L0 compacts at 4 SSTs; 3 levels.
    fn default() -> Self {
        Self {
            size_ratio_percent: 200,
            level0_file_num_compaction_trigger: 4,
            max_levels: 3,
        }
    }
}

/// Decides simple leveled compactions; pure (see [`crate::compact`]).
#[derive(Debug, Clone)]
pub struct SimpleLeveledCompactionController {
    options: SimpleLeveledCompactionOptions,
}

impl SimpleLeveledCompactionController {
    /// A controller with `options`.
    pub fn new(options: SimpleLeveledCompactionOptions) -> Self {
        Self { options }
    }

    /// The controller's settings.
    pub fn options(&self) -> &SimpleLeveledCompactionOptions {
        &self.options
    }

    // ANCHOR: simple_generate_task
    /// The first compaction due, from the top: L0 into L1 if L0 has reached the trigger, else
    /// the first level Li (1 <= i < max_levels) that L(i+1) is too small for. The task takes the
    /// whole of both levels; `None` when no compaction is due.
    pub fn generate_task(&self, shape: &LsmShape) -> Option<LevelCompactionTask> {
        // @task week2_day2 1
        let o = &self.options;
        let ssts = |level: usize| match level {
            0 => shape.l0_sstables.as_slice(),
            _ => shape.level(level),
        };
        for upper in 0..o.max_levels {
            let lower = upper + 1;
            let (upper_count, lower_count) = (ssts(upper).len(), ssts(lower).len());
            let due = if upper == 0 {
                upper_count >= o.level0_file_num_compaction_trigger
            } else {
                upper_count > 0 && lower_count * 100 < o.size_ratio_percent * upper_count
            };
            if due {
                return Some(LevelCompactionTask {
                    upper_level: (upper > 0).then_some(upper),
                    upper_level_sst_ids: ssts(upper).to_vec(),
                    lower_level: lower,
                    lower_level_sst_ids: ssts(lower).to_vec(),
                    is_lower_level_bottom_level: lower == o.max_levels,
                });
            }
        }
        None
        // @end
    }
    // ANCHOR_END: simple_generate_task

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
