// SPDX-License-Identifier: Apache-2.0
//! The layout of the tree: what its shape owes to the compaction strategy, which the manifest
//! records, which each controller checks before it trusts a shape, and how a tree laid out by
//! one strategy is converted for another.
//!
//! Two strategies may read the same SST ids in different ways. Leveled strategies keep L0 (SSTs
//! that overlap, newest first) and numbered levels below it; tiered compaction keeps no L0 and
//! names each tier by its first SST, newest first. Opening a tree with a strategy of the other
//! family, without converting it, serves stale data: a tiered engine never compacts L0 and reads
//! it before its tiers, so old L0 SSTs hide every newer write for good; a leveled engine reads
//! a tier named 0 as L0. So the manifest records the layout, and `open` converts.
//!
//! # Converting: a relabelling, no I/O
//!
//! Every layout is a list of sorted runs, newest first: each L0 SST is a run of its own, then
//! each non-empty level or tier in order. A conversion keeps that order and only says again
//! where each run lives:
//!
//! ```text
//!   leveled, 3 levels             tiered                      leveled, 2 levels
//!   L0 [9] [8]                    tier 9 [9]                  L0 [9] [8] [5 6]
//!   L1 [5 6]          ──────▶     tier 8 [8]      ──────▶     L1 [2 3]
//!   L2 [2 3]                      tier 5 [5 6]                L2 [1 4 7]
//!   L3 [1 4 7]                    tier 2 [2 3]
//!                                 tier 1 [1 4 7]
//! ```
//!
//! - To tiers: every run becomes a tier, named by its first SST (ids are unique, so are names).
//! - To levels: L0 stays; the oldest runs fill the bottom levels in age order, one run a level;
//!   runs that find no level go to L0, after the SSTs already there. L0 may hold the SSTs of a
//!   sorted run in any order among themselves: no key is in two of them. A tree whose levels
//!   already fit (leveled to simple, or a level count that still covers every non-empty level)
//!   keeps its levels as they are.
//!
//! No SST is rewritten, so a conversion is as cheap as a manifest record, and it is crash-safe
//! because `open` writes the new manifest (new layout, converted levels) atomically, as it does
//! at every open. The new strategy then compacts the tree into its own shape as it goes.
//!
//! Left out: the conversion does not try to give the new strategy a good shape at once (a
//! leveled tree converted from many tiers has a crowded L0 that the next compactions clear).
//!
//! # Format (in the manifest, tag 4; see [`crate::manifest`])
//!
//! ```text
//! body := strategy:u8 max_levels:u32      big-endian; strategy: 0 none, 1 simple, 2 tiered,
//!                                         3 leveled; max_levels 0 for none and tiered
//! ```

use std::fmt;

use anyhow::{bail, ensure, Result};

use super::{CompactionOptions, LsmShape};

/// A compaction strategy, as far as the layout is concerned. The numbers are the on-disk codes;
/// never renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// No compaction: L0, and L1 once `force_full_compaction` made it.
    NoCompaction = 0,
    /// Simple leveled compaction: L0 and levels L1..=max_levels.
    Simple = 1,
    /// Tiered compaction: no L0, tiers named by their first SST, newest first.
    Tiered = 2,
    /// Leveled compaction: L0 and levels L1..=max_levels.
    Leveled = 3,
}

impl StrategyKind {
    /// The strategy with on-disk code `code`.
    ///
    /// # Errors
    /// An unknown code.
    pub fn from_code(code: u8) -> Result<Self> {
        Ok(match code {
            0 => Self::NoCompaction,
            1 => Self::Simple,
            2 => Self::Tiered,
            3 => Self::Leveled,
            other => bail!("unknown compaction strategy code {other}"),
        })
    }

    /// The strategy's on-disk code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// What the shape of the tree owes to the compaction strategy: the strategy and, for the leveled
/// ones, the number of levels. Other settings (triggers, ratios) never change how a shape is
/// read, so they may change freely between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLayout {
    /// The strategy.
    pub strategy: StrategyKind,
    /// The levels below L0 for simple and leveled compaction; 0 for the others.
    pub max_levels: usize,
}

impl fmt::Display for TreeLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.strategy {
            StrategyKind::NoCompaction => write!(f, "no compaction"),
            StrategyKind::Tiered => write!(f, "tiered compaction"),
            StrategyKind::Simple => write!(
                f,
                "simple leveled compaction with {} levels",
                self.max_levels
            ),
            StrategyKind::Leveled => {
                write!(f, "leveled compaction with {} levels", self.max_levels)
            }
        }
    }
}

impl CompactionOptions {
    /// The layout of a tree this strategy compacts.
    pub fn layout(&self) -> TreeLayout {
        let (strategy, max_levels) = match self {
            Self::NoCompaction => (StrategyKind::NoCompaction, 0),
            Self::Simple(o) => (StrategyKind::Simple, o.max_levels),
            Self::Tiered(_) => (StrategyKind::Tiered, 0),
            Self::Leveled(o) => (StrategyKind::Leveled, o.max_levels),
        };
        TreeLayout {
            strategy,
            max_levels,
        }
    }
}

impl TreeLayout {
    /// Whether flushes go to L0; with tiered compaction each flush is a new tier instead.
    pub fn flush_to_l0(&self) -> bool {
        self.strategy != StrategyKind::Tiered
    }

    /// The levels of an empty tree: `L1..=max_levels` (none for tiered compaction, or without
    /// compaction, where L1 appears with the first full compaction).
    pub fn initial_levels(&self) -> Vec<(usize, Vec<usize>)> {
        (1..=self.max_levels).map(|l| (l, Vec::new())).collect()
    }

    /// Checks that `l0` and `levels` are laid out as this layout reads them: for tiered
    /// compaction, no L0 and tiers with distinct names; for the others, levels numbered from 1
    /// in increasing order, up to `max_levels` for simple and leveled compaction. And no SST is
    /// listed twice.
    ///
    /// # Errors
    /// What is wrong, and what it would cost to go on.
    pub fn check(&self, l0: &[usize], levels: &[(usize, Vec<usize>)]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let listed = l0.iter().chain(levels.iter().flat_map(|(_, ids)| ids));
        for id in listed {
            ensure!(seen.insert(*id), "SST {id} is listed twice in the tree");
        }
        if self.strategy == StrategyKind::Tiered {
            ensure!(
                l0.is_empty(),
                "tiered compaction found {} SSTs in L0 ({l0:?}): it never compacts L0 and reads \
                 it before every tier, so they would hide newer writes",
                l0.len()
            );
            let mut names = std::collections::HashSet::new();
            for (tier, _) in levels {
                ensure!(names.insert(*tier), "two tiers are named {tier}");
            }
            return Ok(());
        }
        let top = self.top_level();
        let mut previous = 0;
        for (level, _) in levels {
            ensure!(
                previous < *level && *level <= top,
                "{self} cannot read a level numbered {level} after level {previous}: its levels \
                 are numbered from 1{}, in order",
                match top {
                    usize::MAX => String::new(),
                    top => format!(" to {top}"),
                }
            );
            previous = *level;
        }
        Ok(())
    }

    /// The tree `l0` and `levels`, laid out by `from`, laid out for `self` instead (see the
    /// module docs): the same sorted runs in the same age order, relabelled. Unchanged when
    /// it already fits.
    pub fn convert(
        &self,
        from: TreeLayout,
        l0: &[usize],
        levels: &[(usize, Vec<usize>)],
    ) -> (Vec<usize>, Vec<(usize, Vec<usize>)>) {
        // The runs below L0, newest first: levels top first, tiers newest first.
        let runs: Vec<&Vec<usize>> = levels
            .iter()
            .map(|(_, ids)| ids)
            .filter(|ids| !ids.is_empty())
            .collect();
        if self.strategy == StrategyKind::Tiered {
            let tiers = l0
                .iter()
                .map(|id| (*id, vec![*id]))
                .chain(runs.iter().map(|ids| (ids[0], ids.to_vec())))
                .collect();
            return (Vec::new(), tiers);
        }
        let top = self.top_level();
        let fits = from.strategy != StrategyKind::Tiered
            && levels
                .iter()
                .all(|(level, ids)| ids.is_empty() || *level <= top);
        let mut new_l0 = l0.to_vec();
        let mut new_levels: Vec<(usize, Vec<usize>)> = if fits {
            let kept = levels.iter().filter(|(level, _)| *level <= top);
            kept.cloned().collect()
        } else {
            // The oldest runs fill the bottom levels, one run a level; the rest join L0.
            // Without compaction the only level is L1, which `force_full_compaction` makes.
            let bottom = top.min(self.max_levels.max(1));
            let kept = runs.len().min(bottom);
            let (newer, older) = runs.split_at(runs.len() - kept);
            new_l0.extend(newer.iter().flat_map(|ids| ids.iter().copied()));
            older
                .iter()
                .enumerate()
                .map(|(i, ids)| (bottom - kept + 1 + i, ids.to_vec()))
                .collect()
        };
        for (level, ids) in self.initial_levels() {
            if let Err(at) = new_levels.binary_search_by_key(&level, |(l, _)| *l) {
                new_levels.insert(at, (level, ids));
            }
        }
        (new_l0, new_levels)
    }

    /// The highest level this layout reads: `max_levels`, or any without compaction.
    fn top_level(&self) -> usize {
        match self.strategy {
            StrategyKind::NoCompaction => usize::MAX,
            _ => self.max_levels,
        }
    }

    /// [`Self::check`] on a shape, and that the shape describes every SST it lists.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check_shape(&self, shape: &LsmShape) -> Result<()> {
        self.check(&shape.l0_sstables, &shape.levels)?;
        let listed = shape
            .l0_sstables
            .iter()
            .chain(shape.levels.iter().flat_map(|(_, ids)| ids));
        for id in listed {
            ensure!(
                shape.sstables.contains_key(id),
                "SST {id} is listed in the tree but not described"
            );
        }
        Ok(())
    }
}
