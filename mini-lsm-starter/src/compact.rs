// SPDX-License-Identifier: Apache-2.0
//! Compaction: merging sorted runs of SSTs to bound read and space amplification (week 2).
//!
//! # The idea
//!
//! Without compaction every flush adds an L0 SST, and a lookup may have to probe each of them.
//! Compaction merges SSTs into *sorted runs*: SSTs sorted by key whose ranges do not overlap, so a
//! lookup probes at most one SST per run. Merging keeps only the newest version of each key, and
//! drops tombstones once nothing older can lie below them. The price is rewriting data again and
//! again: every strategy trades write amplification (bytes written per byte flushed) against read
//! amplification (runs a lookup may probe) and space amplification (bytes stored per live byte).
//!
//! ```text
//!   leveled (simple, leveled):               tiered:
//!   L0  [9] [8] [7]   overlapping, newest first   (no L0: each flush is a new tier)
//!   L1  [a..f][g..m][n..z]  one sorted run        tier 9  [a..z]                newest
//!   L2  [a..c][d..g] ... [w..z]  ~10x larger      tier 8  [a..k][l..z]
//!                                                 tier 3  [a..d] ... [u..z]     oldest
//! ```
//!
//! # Deterministic core, thread at the edge
//!
//! A strategy is a *controller*: plain functions over an [`LsmShape`] (which SSTs sit where, with
//! their sizes and key ranges) and nothing else: no I/O, no locks, no clock.
//!
//! - `generate_task(shape)` says what to merge next, or nothing;
//! - `apply_result(shape, task, outputs)` says what the tree looks like once the outputs replace
//!   the inputs.
//!
//! The engine's step ([`crate::lsm_storage::LsmStorageInner::trigger_compaction`]) snapshots the
//! state, asks the controller, builds the outputs without holding any lock, and installs them by
//! applying the result to the state *as it is then* (flushes may have added SSTs meanwhile). The
//! background thread only calls that step every 50 ms, and the compaction simulator
//! ([`simulator`]) runs the very same controllers over a modelled tree, with no disk at all.
//!
//! # Invariants
//!
//! - Each level below L0, and each tier, is a sorted run.
//! - Age order: every version of a key in L0 is newer than any in L1, L1's newer than L2's, and so
//!   on; L0 and the tiers are ordered newest first. A compaction merges runs that are adjacent in
//!   age, so its output can take their place without reordering any key's versions.
//! - A tombstone may be dropped only when the output is the bottom: no older run lies below it.
//! - From week 3, when keys have versions: a compaction keeps every version above the watermark
//!   and the newest at or below it (a tombstone there goes at the bottom, with everything older),
//!   and cuts its output only between user keys, so that a level's SSTs hold disjoint user-key
//!   ranges: a lookup still probes one SST per level, and a later compaction that takes an SST
//!   takes every version of its keys.
//!
//! # Left out, and what it costs
//!
//! One compaction at a time (RocksDB runs several, on disjoint key ranges): a big merge delays
//! every other. Trivial moves (SSTs that meet nothing below change level without a rewrite,
//! [`CompactionTask::trivial_move`]) only for leveled compaction: simple and tiered compaction
//! rewrite them. Simple leveled and tiered compaction count sizes in SSTs rather than bytes,
//! which is close enough while SSTs are all about `target_sst_size`. Compaction outputs are cut
//! by size only, not where they would meet fewer SSTs of the level below (RocksDB cuts at its
//! "grandparent" boundaries), so a later move of an output may meet more than it must.

mod filter;
mod layout;
mod leveled;
mod shape;
mod simple_leveled;
pub mod simulator;
mod tiered;

use anyhow::{bail, ensure, Context, Result};

pub use filter::{CompactionFilter, PrefixFilter};
pub use layout::{StrategyKind, TreeLayout};
pub use leveled::{LevelTargets, LeveledCompactionController, LeveledCompactionOptions};
pub use shape::{apply_level_compaction, LsmShape, SstInfo};
pub use simple_leveled::{SimpleLeveledCompactionController, SimpleLeveledCompactionOptions};
pub use tiered::{TieredCompactionController, TieredCompactionOptions, TieredCompactionTask};

/// Which compaction strategy the engine runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactionOptions {
    /// No compaction: every flushed SST stays in L0 (until `force_full_compaction`).
    #[default]
    NoCompaction,
    /// Simple leveled compaction (week 2 day 2).
    Simple(SimpleLeveledCompactionOptions),
    /// Tiered compaction, like RocksDB's universal compaction (week 2 day 3).
    Tiered(TieredCompactionOptions),
    /// Leveled compaction, like RocksDB's leveled compaction (week 2 day 4).
    Leveled(LeveledCompactionOptions),
}

impl CompactionOptions {
    /// Checks that the strategy's settings make sense.
    ///
    /// # Errors
    /// Names the first field that is out of range and why.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::NoCompaction => {}
            Self::Simple(o) => {
                ensure!(o.max_levels >= 1, "simple: max_levels must be at least 1");
                ensure!(
                    o.level0_file_num_compaction_trigger >= 1,
                    "simple: level0_file_num_compaction_trigger must be at least 1"
                );
            }
            Self::Tiered(o) => {
                ensure!(o.num_tiers >= 2, "tiered: num_tiers must be at least 2");
                ensure!(
                    o.min_merge_width >= 2,
                    "tiered: min_merge_width must be at least 2: merging one tier changes nothing"
                );
                ensure!(
                    o.max_merge_width.is_none_or(|w| w >= o.min_merge_width),
                    "tiered: max_merge_width must be at least min_merge_width: no merge could \
                     satisfy both"
                );
            }
            Self::Leveled(o) => {
                ensure!(o.max_levels >= 1, "leveled: max_levels must be at least 1");
                ensure!(
                    o.level0_file_num_compaction_trigger >= 1,
                    "leveled: level0_file_num_compaction_trigger must be at least 1"
                );
                ensure!(
                    o.level_size_multiplier >= 2,
                    "leveled: level_size_multiplier must be at least 2"
                );
                ensure!(
                    o.base_level_size_mb >= 1,
                    "leveled: base_level_size_mb must be at least 1"
                );
            }
        }
        Ok(())
    }
}

/// A compaction of SSTs of one level (or L0) with the SSTs they overlap in the level below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelCompactionTask {
    /// The upper level; `None` for L0.
    pub upper_level: Option<usize>,
    /// The SSTs taken from the upper level (for L0, newest first).
    pub upper_level_sst_ids: Vec<usize>,
    /// The level the output goes to.
    pub lower_level: usize,
    /// The SSTs taken from the lower level, in key order.
    pub lower_level_sst_ids: Vec<usize>,
    /// Whether no SST lies below the lower level, so that tombstones can be dropped.
    pub is_lower_level_bottom_level: bool,
}

/// A compaction to run: which SSTs to merge, and where the output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactionTask {
    /// `force_full_compaction`: all of L0 and the first run below it (L1).
    ForceFull(LevelCompactionTask),
    /// From the simple leveled controller.
    Simple(LevelCompactionTask),
    /// From the tiered controller.
    Tiered(TieredCompactionTask),
    /// From the leveled controller.
    Leveled(LevelCompactionTask),
}

impl CompactionTask {
    /// The input sorted runs, newest first: each L0 SST is a run of its own, then the upper level,
    /// then the lower level (or the tiers, newest first).
    pub fn input_runs(&self) -> Vec<Vec<usize>> {
        match self {
            Self::ForceFull(task) | Self::Simple(task) | Self::Leveled(task) => {
                let mut runs: Vec<Vec<usize>> = match task.upper_level {
                    None => task
                        .upper_level_sst_ids
                        .iter()
                        .map(|id| vec![*id])
                        .collect(),
                    Some(_) => vec![task.upper_level_sst_ids.clone()],
                };
                runs.push(task.lower_level_sst_ids.clone());
                runs.retain(|run| !run.is_empty());
                runs
            }
            Self::Tiered(task) => task.tiers.iter().map(|(_, ids)| ids.clone()).collect(),
        }
    }

    /// Every input SST.
    pub fn input_ids(&self) -> Vec<usize> {
        self.input_runs().into_iter().flatten().collect()
    }

    /// Whether the output is the bottom of the tree, so that tombstones can be dropped.
    pub fn compact_to_bottom_level(&self) -> bool {
        match self {
            Self::ForceFull(task) | Self::Simple(task) | Self::Leveled(task) => {
                task.is_lower_level_bottom_level
            }
            Self::Tiered(task) => task.bottom_tier_included,
        }
    }
}

impl CompactionTask {
    /// The SSTs a *trivial move* puts in the lower level as they are, in key order, if this task
    /// allows one: a leveled compaction that meets no SST below, and whose upper SSTs do not
    /// overlap each other (one SST moving down, or an L0 of disjoint SSTs, as sequential writes
    /// leave it). Merging them would copy every byte unchanged; moving them writes nothing but the
    /// manifest record. `None` otherwise.
    ///
    /// The price: a move to the bottom level keeps its tombstones, which a merge there would
    /// drop; a later compaction of that range drops them.
    pub fn trivial_move(&self, shape: &LsmShape) -> Option<Vec<usize>> {
        let Self::Leveled(task) = self else {
            return None;
        };
        if !task.lower_level_sst_ids.is_empty() {
            return None;
        }
        let mut ids = task.upper_level_sst_ids.clone();
        ids.sort_by(|a, b| shape.info(*a).first_key.cmp(&shape.info(*b).first_key));
        let disjoint = ids
            .windows(2)
            .all(|pair| shape.info(pair[0]).last_key < shape.info(pair[1]).first_key);
        disjoint.then_some(ids)
    }
}

/// The controller of the configured strategy: the one place that dispatches on it.
#[derive(Debug, Clone)]
pub enum CompactionController {
    /// Never proposes a compaction.
    NoCompaction,
    /// Simple leveled compaction.
    Simple(SimpleLeveledCompactionController),
    /// Tiered compaction.
    Tiered(TieredCompactionController),
    /// Leveled compaction.
    Leveled(LeveledCompactionController),
}

impl CompactionController {
    /// The controller for `options`.
    pub fn new(options: &CompactionOptions) -> Self {
        match options {
            CompactionOptions::NoCompaction => Self::NoCompaction,
            CompactionOptions::Simple(o) => {
                Self::Simple(SimpleLeveledCompactionController::new(o.clone()))
            }
            CompactionOptions::Tiered(o) => {
                Self::Tiered(TieredCompactionController::new(o.clone()))
            }
            CompactionOptions::Leveled(o) => {
                Self::Leveled(LeveledCompactionController::new(o.clone()))
            }
        }
    }

    /// The layout of the trees this controller compacts (see [`TreeLayout`]).
    pub fn layout(&self) -> TreeLayout {
        let (strategy, max_levels) = match self {
            Self::NoCompaction => (StrategyKind::NoCompaction, 0),
            Self::Simple(c) => (StrategyKind::Simple, c.options().max_levels),
            Self::Tiered(_) => (StrategyKind::Tiered, 0),
            Self::Leveled(c) => (StrategyKind::Leveled, c.options().max_levels),
        };
        TreeLayout {
            strategy,
            max_levels,
        }
    }

    /// The levels of an empty tree: `L1..=max_levels` for the leveled strategies; none for tiered
    /// compaction (tiers appear with flushes) or without compaction (L1 appears with the first
    /// full compaction).
    pub fn initial_levels(&self) -> Vec<(usize, Vec<usize>)> {
        self.layout().initial_levels()
    }

    /// Whether flushes go to L0; with tiered compaction each flush is a new tier instead.
    pub fn flush_to_l0(&self) -> bool {
        self.layout().flush_to_l0()
    }

    /// Checks that `shape` is laid out as this controller reads it (tiered: no L0; leveled:
    /// levels `1..=max_levels` in order), before the controller relies on it.
    ///
    /// # Errors
    /// What is wrong with the shape.
    pub fn check_shape(&self, shape: &LsmShape) -> Result<()> {
        let layout = self.layout();
        layout
            .check_shape(shape)
            .with_context(|| format!("the tree does not have the shape {layout} relies on"))
    }

    /// The next compaction to run on a tree of this shape, if any.
    pub fn generate_task(&self, shape: &LsmShape) -> Option<CompactionTask> {
        match self {
            Self::NoCompaction => None,
            Self::Simple(c) => c.generate_task(shape).map(CompactionTask::Simple),
            Self::Tiered(c) => c.generate_task(shape).map(CompactionTask::Tiered),
            Self::Leveled(c) => c.generate_task(shape).map(CompactionTask::Leveled),
        }
    }

    /// The shape of the tree once `output` (SST ids, in key order; their sizes and key ranges
    /// already in `shape.sstables`) replaces the inputs of `task`. The inputs leave
    /// `sstables`; `shape` may have gained L0 SSTs or tiers since the task was generated.
    ///
    /// # Errors
    /// If the task came from another strategy, its inputs are no longer where it took them from,
    /// or the result is not a shape this controller can read: each a bug, caught here rather
    /// than installed (the strategies' own `apply_result` would panic on the first two).
    pub fn apply_result(
        &self,
        shape: &LsmShape,
        task: &CompactionTask,
        output: &[usize],
    ) -> Result<LsmShape> {
        check_inputs_in_place(shape, task)?;
        let mut next = match (self, task) {
            (_, CompactionTask::ForceFull(task)) => apply_level_compaction(shape, task, output),
            (Self::Simple(c), CompactionTask::Simple(task)) => c.apply_result(shape, task, output),
            (Self::Tiered(c), CompactionTask::Tiered(task)) => c.apply_result(shape, task, output),
            (Self::Leveled(c), CompactionTask::Leveled(task)) => {
                c.apply_result(shape, task, output)
            }
            (controller, task) => {
                bail!("the {controller:?} controller cannot apply the task {task:?}")
            }
        };
        // An input that is also an output (a trivial move) stays.
        for id in task.input_ids() {
            if !output.contains(&id) {
                next.sstables.remove(&id);
            }
        }
        self.check_shape(&next)
            .context("the result of a compaction")?;
        Ok(next)
    }
}

/// Checks that the inputs of `task` are still where it took them from: for a level compaction,
/// the upper SSTs in L0 or the upper level and the lower SSTs in the lower level; for a tiered
/// one, the merged tiers, unchanged and next to each other.
///
/// # Errors
/// The first input that moved.
fn check_inputs_in_place(shape: &LsmShape, task: &CompactionTask) -> Result<()> {
    match task {
        CompactionTask::ForceFull(t) | CompactionTask::Simple(t) | CompactionTask::Leveled(t) => {
            let upper = match t.upper_level {
                None => shape.l0_sstables.as_slice(),
                Some(level) => shape.level(level),
            };
            let lower = shape.level(t.lower_level);
            let sides = [
                (&t.upper_level_sst_ids, upper),
                (&t.lower_level_sst_ids, lower),
            ];
            for (ids, level) in sides {
                if let Some(id) = ids.iter().find(|id| !level.contains(id)) {
                    bail!("SST {id} of the compaction {task:?} is no longer where it was");
                }
            }
        }
        CompactionTask::Tiered(t) => {
            let first = t
                .tiers
                .first()
                .context("a tiered compaction merges no tier")?
                .0;
            let at = shape.levels.iter().position(|(tier, _)| *tier == first);
            let now = at.and_then(|at| shape.levels.get(at..at + t.tiers.len()));
            ensure!(
                now == Some(t.tiers.as_slice()),
                "the tiers of the compaction {task:?} changed while it ran"
            );
        }
    }
    Ok(())
}
