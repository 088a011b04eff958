// SPDX-License-Identifier: Apache-2.0
//! Tiered compaction, in the manner of RocksDB's universal compaction.
//!
//! There is no L0: each flush adds a *tier* (a sorted run) at the front of `levels`, named by its
//! SST's id. Compaction merges a prefix of the tiers, newest first, into one new tier that takes
//! their place (named by its first SST's id). Nothing happens while there are fewer than
//! `num_tiers` tiers; then the first of these rules that fires picks the prefix (sizes counted
//! in SSTs):
//!
//! 1. *Space amplification*: if all tiers but the last hold at least
//!    `max_size_amplification_percent`% of the last, merge every tier. With no overwrites the
//!    upper tiers are all extra space in the worst case.
//! 2. *Size ratio*: take tiers from the newest while the next one is at most
//!    `100 + size_ratio` percent of everything taken so far; merge them if that is at least
//!    `min_merge_width` tiers.
//! 3. *Tier count*: merge the newest tiers, as many as brings the count below `num_tiers`.
//!
//! Rules 2 and 3 take at most `max_merge_width` tiers.
//!
//! ```text
//!   tiers: [12] [11] [10] [9 8 7 6] [5 4 3 2 1 0]     sizes 1 1 1 4 6
//!   rule 2 (size_ratio 1): 1, then 1 <= 1.01*1, 1 <= 1.01*2, 4 > 1.01*3 ──▶ merge the first 3
//!   result: [13] [9 8 7 6] [5 4 3 2 1 0]
//! ```
//!
//! Each byte is rewritten only when its tier merges with one of similar size, so write
//! amplification is low; the price is more runs to read and, before a full merge, up to
//! `max_size_amplification_percent`% of extra space.

use super::LsmShape;

/// Settings of tiered compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieredCompactionOptions {
    /// No compaction while there are fewer tiers than this.
    pub num_tiers: usize,
    /// Merge every tier when the tiers above the last hold at least this percentage of it.
    pub max_size_amplification_percent: usize,
    /// The next tier joins the merge if it is at most `100 + size_ratio` percent of the tiers
    /// taken so far.
    pub size_ratio: usize,
    /// The size-ratio rule merges at least this many tiers, or none.
    pub min_merge_width: usize,
    /// The size-ratio and tier-count rules merge at most this many tiers.
    pub max_merge_width: Option<usize>,
}

impl Default for TieredCompactionOptions {
    /// RocksDB's defaults for universal compaction, with 4 tiers as the trigger.
    fn default() -> Self {
        Self {
            num_tiers: 4,
            max_size_amplification_percent: 200,
            size_ratio: 1,
            min_merge_width: 2,
            max_merge_width: None,
        }
    }
}

/// A merge of the newest tiers into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieredCompactionTask {
    /// The tiers to merge, `(tier id, SST ids)`, newest first: a prefix of the tiers.
    pub tiers: Vec<(usize, Vec<usize>)>,
    /// Whether the last (oldest) tier is among them, so that tombstones can be dropped.
    pub bottom_tier_included: bool,
}

/// Decides tiered compactions; pure (see [`crate::compact`]).
#[derive(Debug, Clone)]
pub struct TieredCompactionController {
    options: TieredCompactionOptions,
}

impl TieredCompactionController {
    /// A controller with `options`.
    pub fn new(options: TieredCompactionOptions) -> Self {
        Self { options }
    }

    /// The controller's settings.
    pub fn options(&self) -> &TieredCompactionOptions {
        &self.options
    }

    /// The merge the first rule that fires asks for (see the module docs); `None` while there
    /// are fewer than `num_tiers` tiers.
    pub fn generate_task(&self, shape: &LsmShape) -> Option<TieredCompactionTask> {
        todo!("week 2 day 3, task 2: pick a tiered compaction: space amplification, size ratio, tier count (book: week2-03-tiered)")
    }

    /// The shape once `output` (one new tier, named by its first SST; no tier if empty) replaces
    /// the merged tiers. Tiers flushed since the task was made stay in front.
    ///
    /// # Panics
    /// If the merged tiers are no longer in the shape, contiguous and unchanged.
    pub fn apply_result(
        &self,
        shape: &LsmShape,
        task: &TieredCompactionTask,
        output: &[usize],
    ) -> LsmShape {
        todo!("week 2 day 3, task 3: replace the merged tiers by the output tier (book: week2-03-tiered)")
    }
}
