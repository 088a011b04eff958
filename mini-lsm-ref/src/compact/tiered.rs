// SPDX-License-Identifier: Apache-2.0
//! Tiered compaction: RocksDB's universal compaction, with sizes counted in SSTs.
//!
//! There is no L0: each flush adds a *tier* (a sorted run) at the front of `levels`, named by its
//! SST's id. Compaction merges tiers that are next to each other in age into one new tier that
//! takes their place (named by its first SST's id). Nothing happens while there are fewer than
//! `num_tiers` tiers; then the first of these rules that fires picks the tiers:
//!
//! 1. *Space amplification*: if all tiers but the last hold at least
//!    `max_size_amplification_percent`% of the last, merge every tier. With no overwrites the
//!    upper tiers are all extra space in the worst case.
//! 2. *Size ratio*: from the newest tier, take tiers while the next one is at most
//!    `100 + size_ratio` percent of everything taken so far; merge them if that is at least
//!    `min_merge_width` tiers. If not, try again from the next tier, and so on: the first group
//!    of tiers of similar size, wherever it starts, is merged.
//! 3. *Tier count*: only if there are *more* than `num_tiers` tiers, merge the newest
//!    `n - num_tiers + 1`, which leaves `num_tiers`.
//!
//! Rules 2 and 3 merge at least `min_merge_width` and at most `max_merge_width` tiers.
//!
//! ```text
//!   tiers: [19] [18] [16 17] [12 .. 15] [2 .. 11]      sizes 1 1 2 4 10, num_tiers 4
//!   rule 1: 1 + 1 + 2 + 4 = 8 < 200% of 10
//!   rule 2 (size_ratio 1): 1, then 1 <= 1.01*1, 2 <= 1.01*2, 4 <= 1.01*4, 10 > 1.01*8
//!          ──▶ merge the first 4 into one tier: [20 .. 27] [2 .. 11]       sizes 8 10
//! ```
//!
//! A byte is rewritten when its tier merges with others of about its size, each time into a
//! tier about twice as large, so write amplification grows with the logarithm of the data. The
//! price is more runs to read (up to `num_tiers`, one more just before a compaction) and, before
//! a full merge, up to `max_size_amplification_percent`% of extra space.
//!
//! Left out from RocksDB, and what it costs: sizes are counted in SSTs, not bytes (close enough
//! while SSTs are about `target_sst_size`; a small flush counts as a whole SST); no trivial
//! moves, no incremental size-amplification compaction, no parallel compactions of disjoint
//! tiers.

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
    /// The size-ratio and tier-count rules merge at most this many tiers (no limit if `None`).
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

/// A merge of tiers that are next to each other in age into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieredCompactionTask {
    /// The tiers to merge, `(tier id, SST ids)`, newest first: consecutive tiers.
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

    // ANCHOR: tiered_generate_task
    /// The merge the first rule that fires asks for (see the module docs); `None` while there
    /// are fewer than `num_tiers` tiers, or when no rule fires.
    pub fn generate_task(&self, shape: &LsmShape) -> Option<TieredCompactionTask> {
        // @task week2_day3 2
        let o = &self.options;
        let tiers = &shape.levels;
        let n = tiers.len();
        if n < o.num_tiers || n < 2 {
            return None;
        }
        let size = |i: usize| tiers[i].1.len();
        let merge = |start: usize, count: usize| {
            Some(TieredCompactionTask {
                tiers: tiers[start..start + count].to_vec(),
                bottom_tier_included: start + count == n,
            })
        };
        // 1. Space amplification: everything above the last tier, against the last tier.
        let upper: usize = (0..n - 1).map(size).sum();
        if upper * 100 >= o.max_size_amplification_percent * size(n - 1) {
            return merge(0, n);
        }
        // 2. Size ratio: from each tier in turn, newest first, grow a merge while the next tier
        //    is not much larger than the tiers taken; the first that reaches `min_merge_width`.
        let max_width = o.max_merge_width.unwrap_or(n).min(n);
        for start in 0..n - 1 {
            let (mut taken, mut count) = (size(start), 1);
            while count < max_width
                && start + count < n
                && size(start + count) * 100 <= taken * (100 + o.size_ratio)
            {
                taken += size(start + count);
                count += 1;
            }
            if count >= o.min_merge_width {
                return merge(start, count);
            }
        }
        // 3. Tier count: past the trigger, merge the newest `n - num_tiers + 1` tiers, which
        //    leaves `num_tiers` (fewer if `max_merge_width` caps it: the next step goes on).
        let count = (n.saturating_sub(o.num_tiers) + 1).min(max_width);
        (n > o.num_tiers && count >= o.min_merge_width).then(|| merge(0, count))?
        // @end
    }
    // ANCHOR_END: tiered_generate_task

    // ANCHOR: tiered_apply_result
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
        // @task week2_day3 3
        let mut next = shape.clone();
        let first = task
            .tiers
            .first()
            .expect("a tiered compaction merges tiers")
            .0;
        let at = next
            .levels
            .iter()
            .position(|(tier, _)| *tier == first)
            .unwrap_or_else(|| panic!("tier {first} of the compaction is gone"));
        let end = at + task.tiers.len();
        assert!(
            next.levels.get(at..end) == Some(task.tiers.as_slice()),
            "the merged tiers changed during the compaction"
        );
        let new_tier = output.first().map(|id| (*id, output.to_vec()));
        next.levels.splice(at..end, new_tier);
        next
        // @end
    }
    // ANCHOR_END: tiered_apply_result
}
