// SPDX-License-Identifier: Apache-2.0
//! The compaction simulator: the engine's own controllers, run over a modelled tree with no disk.
//!
//! `compaction-simulator-ref` (reference) and `compaction-simulator` (starter) run [`main`]. A
//! run flushes SSTs one by one; after each flush it asks the controller for compactions until it
//! has none, and prints the shape of the tree after every step. At the end it prints the three
//! amplifications that every strategy trades against each other.
//!
//! The model (what is left out, on purpose):
//!
//! - An SST is an id, a size and a key range; keys are `u64`s, stored big-endian so that byte
//!   order is number order. Every flush writes one SST of `--sst-size-mb` covering the whole key
//!   space, as a memtable of uniformly random writes does.
//! - A compaction's output is as large as its inputs (no key is overwritten or deleted, so
//!   nothing is dropped), cut into SSTs of the same target size, which split the inputs' key
//!   range evenly.
//!
//! So the simulator shows how much each strategy rewrites and how many runs it leaves, not how
//! much space overwrites waste.

use std::io::Write;

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};

use super::{
    CompactionController, CompactionOptions, CompactionTask, LeveledCompactionOptions, LsmShape,
    SimpleLeveledCompactionOptions, SstInfo, TieredCompactionOptions,
};

/// Bytes in a mebibyte.
const MIB: u64 = 1 << 20;

/// A controller that proposes more compactions than this after one flush is stuck.
const MAX_COMPACTIONS_PER_FLUSH: usize = 10_000;

/// The key of number `n` in the model.
fn model_key(n: u64) -> Bytes {
    Bytes::copy_from_slice(&n.to_be_bytes())
}

/// The number of a model key.
fn key_number(key: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    let len = key.len().min(8);
    bytes[8 - len..].copy_from_slice(&key[key.len() - len..]);
    u64::from_be_bytes(bytes)
}

/// A modelled tree driven by a compaction controller.
pub struct Simulator {
    controller: CompactionController,
    tiered: bool,
    shape: LsmShape,
    next_id: usize,
    /// The size of a flushed SST and the target size of compaction outputs.
    sst_size: u64,
    flushes: usize,
    compactions: usize,
    flushed_bytes: u64,
    /// Flushes and compaction outputs.
    written_bytes: u64,
    max_read_amplification: usize,
    /// The SSTs of the level below each compaction met: compactions out of L0 (and tiered
    /// ones), and moves from one level to the next.
    met_from_l0: Overlap,
    met_between_levels: Overlap,
    /// Where the last tiered merge started (0: the newest tier), and how many tiers there were.
    last_merge_at: (usize, usize),
    /// Compactions that moved their SSTs without a rewrite.
    trivial_moves: usize,
}

/// How many SSTs below their input compactions met: the SSTs of the lower level of a level
/// compaction, or of the merged tiers but the newest one of a tiered compaction (the data that
/// is rewritten only because newer data lands on it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// Compactions counted.
    pub compactions: usize,
    /// SSTs met in all.
    pub total: usize,
    /// The most SSTs one compaction met.
    pub max: usize,
}

impl Overlap {
    fn add(&mut self, met: usize) {
        self.compactions += 1;
        self.total += met;
        self.max = self.max.max(met);
    }

    /// SSTs met per compaction, on average (0 without compactions).
    pub fn average(&self) -> f64 {
        self.total as f64 / self.compactions.max(1) as f64
    }

    fn merged(self, other: Overlap) -> Overlap {
        Overlap {
            compactions: self.compactions + other.compactions,
            total: self.total + other.total,
            max: self.max.max(other.max),
        }
    }

    fn describe(&self) -> String {
        if self.compactions == 0 {
            return "none".to_string();
        }
        format!(
            "{:.1} on average, {} at most, over {} compactions",
            self.average(),
            self.max,
            self.compactions
        )
    }
}

impl Simulator {
    /// An empty tree compacted by the strategy `options`, with SSTs of `sst_size` bytes.
    pub fn new(options: &CompactionOptions, sst_size: u64) -> Self {
        let controller = CompactionController::new(options);
        let shape = LsmShape {
            levels: controller.initial_levels(),
            ..LsmShape::default()
        };
        Self {
            tiered: !controller.flush_to_l0(),
            controller,
            shape,
            next_id: 1,
            sst_size: sst_size.max(1),
            flushes: 0,
            compactions: 0,
            flushed_bytes: 0,
            written_bytes: 0,
            max_read_amplification: 0,
            met_from_l0: Overlap::default(),
            met_between_levels: Overlap::default(),
            last_merge_at: (0, 0),
            trivial_moves: 0,
        }
    }

    /// The tree as it is now.
    pub fn shape(&self) -> &LsmShape {
        &self.shape
    }

    fn new_sst(&mut self, size: u64, first: u64, last: u64) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        let info = SstInfo {
            size,
            first_key: model_key(first),
            last_key: model_key(last),
        };
        self.shape.sstables.insert(id, info);
        self.written_bytes += size;
        id
    }

    /// Flushes an SST of `size` bytes holding keys `first..=last` where the engine would: in L0,
    /// or as a new tier. Returns its id.
    pub fn flush(&mut self, size: u64, first: u64, last: u64) -> usize {
        let id = self.new_sst(size, first, last);
        if self.tiered {
            self.shape.levels.insert(0, (id, vec![id]));
        } else {
            self.shape.l0_sstables.insert(0, id);
        }
        self.flushes += 1;
        self.flushed_bytes += size;
        self.note_read_amplification();
        id
    }

    /// Runs the compaction the controller asks for, if any, and returns it.
    ///
    /// # Errors
    /// If the controller finds the shape not laid out as it expects, or its result is not (a
    /// bug in the controller).
    pub fn compact_once(&mut self) -> Result<Option<CompactionTask>> {
        self.controller.check_shape(&self.shape)?;
        let Some(task) = self.controller.generate_task(&self.shape) else {
            return Ok(None);
        };
        let inputs = task.input_ids();
        if let CompactionTask::Tiered(t) = &task {
            let first = t.tiers.first().map(|(tier, _)| *tier);
            let start = self
                .shape
                .levels
                .iter()
                .position(|(tier, _)| Some(*tier) == first);
            self.last_merge_at = (start.unwrap_or(0), self.shape.levels.len());
        }
        if let Some(moved) = task.trivial_move(&self.shape) {
            self.shape = self.controller.apply_result(&self.shape, &task, &moved)?;
            self.compactions += 1;
            self.trivial_moves += 1;
            match &task {
                CompactionTask::Leveled(t) if t.upper_level.is_some() => {
                    self.met_between_levels.add(0);
                }
                _ => self.met_from_l0.add(0),
            }
            self.note_read_amplification();
            return Ok(Some(task));
        }
        let size = self.shape.total_size(&inputs);
        let Some((first, last)) = self.shape.key_range(&inputs) else {
            bail!("the controller asked for a compaction of nothing: {task:?}");
        };
        let (first, last) = (key_number(&first), key_number(&last));
        // Cut the inputs' key range evenly into as many SSTs as the bytes fill.
        let span = u128::from(last - first) + 1;
        let count = u128::from(size.div_ceil(self.sst_size).max(1)).min(span) as u64;
        let start = |i: u64| u128::from(first) + span * u128::from(i) / u128::from(count);
        let mut outputs = Vec::new();
        for i in 0..count {
            let part = size / count + u64::from(i + 1 == count) * (size % count);
            let (lo, hi) = (start(i) as u64, (start(i + 1) - 1) as u64);
            outputs.push(self.new_sst(part, lo, hi));
        }
        self.shape = self.controller.apply_result(&self.shape, &task, &outputs)?;
        self.compactions += 1;
        match &task {
            CompactionTask::Tiered(t) => {
                let newest = t.tiers.first().map_or(0, |(_, ids)| ids.len());
                self.met_from_l0.add(inputs.len() - newest);
            }
            CompactionTask::ForceFull(t)
            | CompactionTask::Simple(t)
            | CompactionTask::Leveled(t) => match t.upper_level {
                None => self.met_from_l0.add(t.lower_level_sst_ids.len()),
                Some(_) => self.met_between_levels.add(t.lower_level_sst_ids.len()),
            },
        }
        self.note_read_amplification();
        Ok(Some(task))
    }

    /// Runs compactions until the controller asks for none, calling `on_step` after each;
    /// returns them.
    ///
    /// # Errors
    /// If the controller asks for more than 10 000 in a row (it would never stop), or a
    /// compaction fails (see [`Self::compact_once`]).
    pub fn compact_until_idle(
        &mut self,
        mut on_step: impl FnMut(&Self, &CompactionTask) -> Result<()>,
    ) -> Result<Vec<CompactionTask>> {
        let mut tasks = Vec::new();
        while let Some(task) = self.compact_once()? {
            on_step(self, &task)?;
            tasks.push(task);
            if tasks.len() > MAX_COMPACTIONS_PER_FLUSH {
                bail!(
                    "the controller asked for more than {MAX_COMPACTIONS_PER_FLUSH} compactions \
                     in a row; it would never stop"
                );
            }
        }
        Ok(tasks)
    }

    /// The sorted runs a point lookup may probe: every L0 SST, and each non-empty level or tier.
    pub fn read_amplification(&self) -> usize {
        let levels = self.shape.levels.iter().filter(|(_, ids)| !ids.is_empty());
        self.shape.l0_sstables.len() + levels.count()
    }

    fn note_read_amplification(&mut self) {
        self.max_read_amplification = self.max_read_amplification.max(self.read_amplification());
    }

    /// SSTs of the level below met by compactions out of L0 (and by tiered compactions: the
    /// SSTs of the merged tiers but the newest), and by moves from one level to the next.
    pub fn overlap(&self) -> (Overlap, Overlap) {
        (self.met_from_l0, self.met_between_levels)
    }

    /// Bytes written by flushes and compactions per byte flushed.
    pub fn write_amplification(&self) -> f64 {
        self.written_bytes as f64 / self.flushed_bytes.max(1) as f64
    }

    /// Bytes stored per byte of the bottom run (the last non-empty level or tier): the space
    /// amplification if every byte above it overwrote one of it, the worst case.
    pub fn space_amplification(&self) -> f64 {
        let all: Vec<usize> = self.shape.sstables.keys().copied().collect();
        let bottom = self
            .shape
            .levels
            .iter()
            .rev()
            .find(|(_, ids)| !ids.is_empty());
        let bottom_size = bottom.map_or(0, |(_, ids)| self.shape.total_size(ids));
        self.shape.total_size(&all) as f64 / bottom_size.max(1) as f64
    }

    /// The shape in one line: the number of SSTs in L0 and each level (`L0 2 | L1 3 | L2 9`),
    /// or in each tier, newest first (`tiers 1 1 3 12`).
    pub fn shape_line(&self) -> String {
        if self.tiered {
            let sizes: Vec<String> = self
                .shape
                .levels
                .iter()
                .map(|(_, ids)| ids.len().to_string())
                .collect();
            return format!("tiers {}", sizes.join(" ")).trim_end().to_string();
        }
        let mut parts = vec![format!("L0 {}", self.shape.l0_sstables.len())];
        for (level, ids) in &self.shape.levels {
            parts.push(format!("L{level} {}", ids.len()));
        }
        parts.join(" | ")
    }

    /// The compaction just run, in one line, as the simulator prints it.
    fn describe(&self, task: &CompactionTask) -> String {
        let bottom = if task.compact_to_bottom_level() {
            ", bottom"
        } else {
            ""
        };
        let inputs = task.input_ids().len();
        match task {
            CompactionTask::Tiered(t) => {
                // Tiers numbered from 1, the newest.
                let (start, of) = self.last_merge_at;
                let end = start + t.tiers.len();
                format!(
                    "merge tiers {}-{end} of {of} ({inputs} SSTs){bottom}",
                    start + 1
                )
            }
            CompactionTask::ForceFull(t)
            | CompactionTask::Simple(t)
            | CompactionTask::Leveled(t) => {
                let upper = t.upper_level.map_or("L0".to_string(), |l| format!("L{l}"));
                format!(
                    "{upper} {} SSTs + L{} {} SSTs -> L{}{bottom}",
                    t.upper_level_sst_ids.len(),
                    t.lower_level,
                    t.lower_level_sst_ids.len(),
                    t.lower_level
                )
            }
        }
    }
}

/// Command-line options of the simulator.
#[derive(Parser, Debug)]
#[command(about = "Runs a compaction strategy of mini-lsm over a modelled tree, with no disk")]
pub struct Args {
    /// The strategy and its settings.
    #[command(subcommand)]
    pub strategy: Strategy,
    /// How many SSTs to flush.
    #[arg(long, global = true, default_value_t = 50)]
    pub flushes: usize,
    /// The size of a flushed SST, and the target size of compaction outputs, in MiB.
    #[arg(long, global = true, default_value_t = 1)]
    pub sst_size_mb: u64,
    /// Print only the summary, not the shape after every step.
    #[arg(long, global = true)]
    pub quiet: bool,
}

/// A strategy and its settings; the defaults are those of the options' `Default`.
#[derive(Subcommand, Debug)]
pub enum Strategy {
    /// Simple leveled compaction.
    Simple {
        /// Merge Li into L(i+1) when |L(i+1)| * 100 < this * |Li| (in SSTs).
        #[arg(long, default_value_t = SimpleLeveledCompactionOptions::default().size_ratio_percent)]
        size_ratio_percent: usize,
        /// Merge L0 into L1 once it holds this many SSTs.
        #[arg(long, default_value_t = SimpleLeveledCompactionOptions::default().level0_file_num_compaction_trigger)]
        level0_file_num_compaction_trigger: usize,
        /// The number of levels below L0.
        #[arg(long, default_value_t = SimpleLeveledCompactionOptions::default().max_levels)]
        max_levels: usize,
    },
    /// Tiered compaction (RocksDB's universal compaction).
    Tiered {
        /// No compaction while there are fewer tiers than this.
        #[arg(long, default_value_t = TieredCompactionOptions::default().num_tiers)]
        num_tiers: usize,
        /// Merge every tier when the others hold this percentage of the last.
        #[arg(long, default_value_t = TieredCompactionOptions::default().max_size_amplification_percent)]
        max_size_amplification_percent: usize,
        /// The next tier joins a merge if at most 100 + this percent of the tiers taken.
        #[arg(long, default_value_t = TieredCompactionOptions::default().size_ratio)]
        size_ratio: usize,
        /// The size-ratio rule merges at least this many tiers.
        #[arg(long, default_value_t = TieredCompactionOptions::default().min_merge_width)]
        min_merge_width: usize,
        /// Merges take at most this many tiers (no limit if absent).
        #[arg(long)]
        max_merge_width: Option<usize>,
    },
    /// Leveled compaction (RocksDB's, with dynamic level sizes).
    Leveled {
        /// Each level's target is this many times the one above.
        #[arg(long, default_value_t = LeveledCompactionOptions::default().level_size_multiplier)]
        level_size_multiplier: usize,
        /// Merge L0 into the base level once it holds this many SSTs.
        #[arg(long, default_value_t = LeveledCompactionOptions::default().level0_file_num_compaction_trigger)]
        level0_file_num_compaction_trigger: usize,
        /// The number of levels below L0.
        #[arg(long, default_value_t = LeveledCompactionOptions::default().max_levels)]
        max_levels: usize,
        /// The largest target of the base level, in MiB.
        #[arg(long, default_value_t = LeveledCompactionOptions::default().base_level_size_mb)]
        base_level_size_mb: usize,
    },
}

impl Strategy {
    /// The engine options for this strategy.
    pub fn options(&self) -> CompactionOptions {
        match *self {
            Strategy::Simple {
                size_ratio_percent,
                level0_file_num_compaction_trigger,
                max_levels,
            } => CompactionOptions::Simple(SimpleLeveledCompactionOptions {
                size_ratio_percent,
                level0_file_num_compaction_trigger,
                max_levels,
            }),
            Strategy::Tiered {
                num_tiers,
                max_size_amplification_percent,
                size_ratio,
                min_merge_width,
                max_merge_width,
            } => CompactionOptions::Tiered(TieredCompactionOptions {
                num_tiers,
                max_size_amplification_percent,
                size_ratio,
                min_merge_width,
                max_merge_width,
            }),
            Strategy::Leveled {
                level_size_multiplier,
                level0_file_num_compaction_trigger,
                max_levels,
                base_level_size_mb,
            } => CompactionOptions::Leveled(LeveledCompactionOptions {
                level_size_multiplier,
                level0_file_num_compaction_trigger,
                max_levels,
                base_level_size_mb,
            }),
        }
    }
}

/// Runs the simulation `args` asks for, printing to `out`.
///
/// # Errors
/// If the options are invalid, a controller never stops compacting, or `out` fails.
pub fn run(args: &Args, out: &mut impl Write) -> Result<()> {
    let options = args.strategy.options();
    options.validate()?;
    let sst_size = args.sst_size_mb.max(1) * MIB;
    let mut sim = Simulator::new(&options, sst_size);
    writeln!(
        out,
        "{options:?}, {} flushes of {} MiB",
        args.flushes, args.sst_size_mb
    )?;
    for flush in 1..=args.flushes {
        let id = sim.flush(sst_size, 0, u64::MAX);
        if !args.quiet {
            writeln!(out, "flush {flush} (SST {id}): {}", sim.shape_line())?;
        }
        sim.compact_until_idle(|sim, task| {
            if !args.quiet {
                let what = sim.describe(task);
                writeln!(out, "  compaction {what}: {}", sim.shape_line())?;
            }
            Ok(())
        })?;
    }
    writeln!(
        out,
        "after {} flushes and {} compactions: {}",
        sim.flushes,
        sim.compactions,
        sim.shape_line()
    )?;
    writeln!(
        out,
        "write amplification: {:.2} ({} MiB written for {} MiB flushed)",
        sim.write_amplification(),
        sim.written_bytes / MIB,
        sim.flushed_bytes / MIB
    )?;
    writeln!(
        out,
        "read amplification: {} sorted runs (max {} during the run): every L0 SST, and one SST per level or tier",
        sim.read_amplification(),
        sim.max_read_amplification
    )?;
    writeln!(
        out,
        "space amplification: {:.2} (bytes stored per byte of the bottom run; the worst case, as if every byte above it overwrote one of it)",
        sim.space_amplification()
    )?;
    let (from_l0, between) = sim.overlap();
    if sim.tiered {
        writeln!(
            out,
            "SSTs met below: {} (each merge's older tiers, which it rewrites with the newest)",
            from_l0.describe()
        )?;
    } else {
        writeln!(
            out,
            "SSTs met below: {} (of the level below, rewritten with the inputs)",
            from_l0.merged(between).describe()
        )?;
        writeln!(out, "  out of L0:      {}", from_l0.describe())?;
        writeln!(out, "  between levels: {}", between.describe())?;
        if sim.trivial_moves > 0 {
            writeln!(
                out,
                "trivial moves: {} of the {} compactions moved an SST down without rewriting it",
                sim.trivial_moves, sim.compactions
            )?;
        }
    }
    Ok(())
}

/// Parses the command line and runs the simulation to standard output.
///
/// # Errors
/// As [`run`].
pub fn main() -> Result<()> {
    run(&Args::parse(), &mut std::io::stdout().lock())
}
