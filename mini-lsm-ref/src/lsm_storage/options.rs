// SPDX-License-Identifier: Apache-2.0
//! The engine's settings, and the ranges `open` accepts for each of them.
//!
//! Every field is checked when the engine opens, before any file is touched, so that a setting
//! out of range is an error naming it rather than an overflow, an abort or a hang much later
//! (`bloom_bits_per_key = usize::MAX` once multiplied the key count into a huge allocation at the
//! first flush).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Result};

use crate::clock::{Clock, RealClock};
use crate::compact::CompactionOptions;
use crate::fs::{FileSystem, RealFs};
use crate::merge::MergeOperator;
use crate::mvcc::Isolation;
use crate::wal::WalMode;

// ANCHOR: recovery_mode
/// What `open` does with a *torn tail*: an incomplete last record in a log or in the manifest, as
/// a crash in the middle of an append leaves it (week 2 day 5). Any other damage is an error in
/// both modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Any damage is an error, a torn tail included: for a database that was closed cleanly (or
    /// copied after a sync), where an incomplete record can only mean damage.
    Strict,
    /// A torn tail is dropped, and the recovery report says where it was and how many bytes it
    /// held: after a crash, what a crash can leave. The default.
    #[default]
    TolerateTornTail,
}
// ANCHOR_END: recovery_mode

/// The engine's settings. Build one with a `default_for_*` constructor and change fields, so that
/// fields added by later chapters never break your code.
#[derive(Debug, Clone)]
pub struct LsmStorageOptions {
    /// Target size of a data block, in bytes (at most 65535).
    pub block_size: usize,
    /// A memtable is frozen once it holds about this many bytes; also the target SST size.
    pub target_sst_size: usize,
    /// The flush thread flushes while there are more memtables than this (mutable included).
    pub num_memtable_limit: usize,
    /// Writers stall while there are more than `num_memtable_limit + write_stall_margin` memtables.
    pub write_stall_margin: usize,
    /// How long a stalled writer waits before it gives up with an error: a wait for a flush,
    /// for compaction to shrink L0 (week 4 day 4) or for the memory budget (week 4 day 5).
    pub write_stall_timeout: Duration,
    /// Writers slow down, one `l0_slowdown_delay` each, while L0 holds at least this many SSTs
    /// (with tiered compaction, which has no L0: tiers); `None` never slows them (week 4 day 4).
    pub l0_slowdown_writes_trigger: Option<usize>,
    /// Writers stop, for at most `write_stall_timeout`, while L0 holds at least this many SSTs
    /// (tiers with tiered compaction), until compaction brings it below; `None` never stops them
    /// (week 4 day 4).
    pub l0_stop_writes_trigger: Option<usize>,
    /// How long each write waits at the slowdown trigger (week 4 day 4).
    pub l0_slowdown_delay: Duration,
    /// All memtables together, the mutable one and those waiting to be flushed, may hold about
    /// this many bytes: past half of it the engine freezes and flushes early, and at the budget
    /// writers wait for a flush; `None` sets no budget (week 4 day 5).
    pub memory_budget: Option<usize>,
    /// The clock the write path's waits and delays run on: the real one, or a
    /// [`crate::clock::FakeClock`] that a test moves (week 4 day 4).
    pub clock: Arc<dyn Clock>,
    /// Bits per key of each SST's bloom filter.
    pub bloom_bits_per_key: usize,
    /// Capacity of the block cache, in bytes; 0 caches nothing.
    pub block_cache_bytes: usize,
    /// The compaction strategy (week 2).
    pub compaction_options: CompactionOptions,
    /// Whether writes go to a write-ahead log first (week 2).
    pub enable_wal: bool,
    /// With the log on, how far each write goes before it returns: buffered in the process, or
    /// written to the OS (see [`WalMode`]). Neither syncs; `sync` does.
    pub wal_mode: WalMode,
    /// What `open` does with a torn tail (week 2 day 5).
    pub recovery_mode: RecoveryMode,
    /// What a transaction's commit is validated for (week 3 day 6): serializable unless set.
    pub isolation: Isolation,
    /// How long a write waits in the commit pipeline (week 4 days 1-2) for the log to write its
    /// group, and for the commits before it to be published, on `clock`. A log that does not
    /// answer in time is an error that stops writes (the record may still reach the file).
    pub commit_timeout: Duration,
    /// The most writes one log write carries (group commit, week 4 day 2).
    pub max_group_writes: usize,
    /// About the most bytes of records one log write carries: a group takes writes while it is
    /// below this, and always at least one (group commit, week 4 day 2).
    pub max_group_bytes: usize,
    /// The file system every file goes through: the real one, or a `MemFs` in crash tests.
    pub fs: Arc<dyn FileSystem>,
    /// Folds merge operands into values (week 4 day 6); `None` refuses `merge`. Not recorded in
    /// the database: open it with the operator it was written with.
    pub merge_operator: Option<Arc<dyn MergeOperator>>,
}

/// The largest `target_sst_size`: SST offsets are 32-bit, and an SST can overshoot its target by
/// a whole batch.
const MAX_TARGET_SST_SIZE: usize = 1 << 30;
/// The longest `write_stall_timeout`: a writer stalled for longer than a day is hung.
const MAX_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest `l0_slowdown_delay`: a delay per write of more than a second is a stop.
const MAX_SLOWDOWN_DELAY: Duration = Duration::from_secs(1);
/// The smallest `memory_budget`: below it every write would freeze a memtable.
const MIN_MEMORY_BUDGET: usize = 4 << 10;
/// The largest `memory_budget` (1 TiB), far from an overflow of the sums over memtables.
const MAX_MEMORY_BUDGET: usize = 1 << 40;
/// The most bloom bits per key: at most 30 bits are probed, so beyond about 43 bits per key the
/// false-positive rate no longer falls.
const MAX_BLOOM_BITS_PER_KEY: usize = 64;
/// The most memtables `num_memtable_limit + write_stall_margin` may allow: far beyond any memory,
/// and far from an overflow.
const MAX_STALL_LIMIT: usize = 1 << 32;
/// The largest `max_group_bytes`: a group is one log record, whose length is 32-bit.
const MAX_GROUP_BYTES: usize = 1 << 30;
/// The most levels below L0.
const MAX_LEVELS: usize = 32;
/// The largest count of SSTs or tiers a compaction setting may name (triggers, widths).
const MAX_COUNT: usize = 1 << 16;
/// The largest percentage or ratio a compaction setting may name (1000x).
const MAX_PERCENT: usize = 100_000;

impl LsmStorageOptions {
    /// Settings for week 1 tests: 4 KiB blocks, 2 MiB memtables, and a memtable limit so high
    /// that the flush thread never flushes on its own.
    pub fn default_for_week1_test() -> Self {
        Self {
            block_size: 4096,
            target_sst_size: 2 << 20,
            num_memtable_limit: 50,
            write_stall_margin: 50,
            write_stall_timeout: Duration::from_secs(30),
            l0_slowdown_writes_trigger: None,
            l0_stop_writes_trigger: None,
            l0_slowdown_delay: Duration::from_millis(1),
            memory_budget: None,
            clock: Arc::new(RealClock),
            bloom_bits_per_key: 10,
            block_cache_bytes: 16 << 20,
            compaction_options: CompactionOptions::NoCompaction,
            enable_wal: false,
            wal_mode: WalMode::Buffered,
            recovery_mode: RecoveryMode::TolerateTornTail,
            isolation: Isolation::Serializable,
            commit_timeout: Duration::from_secs(60),
            max_group_writes: 256,
            max_group_bytes: 1 << 20,
            fs: Arc::new(RealFs),
            merge_operator: None,
        }
    }

    /// Settings for week 2 tests: 4 KiB blocks, 1 MiB memtables and SSTs, at most two memtables
    /// before the flush thread acts, and the compaction strategy `compaction_options`.
    pub fn default_for_week2_test(compaction_options: CompactionOptions) -> Self {
        Self {
            target_sst_size: 1 << 20,
            num_memtable_limit: 2,
            compaction_options,
            ..Self::default_for_week1_test()
        }
    }

    /// Settings for the write-path chapter: at most two memtables before the flush thread acts.
    pub fn default_for_week1_day6_test() -> Self {
        Self {
            num_memtable_limit: 2,
            ..Self::default_for_week1_test()
        }
    }

    // ANCHOR: validate
    /// Checks every setting, and that they make sense together.
    ///
    /// # Errors
    /// Names the first field that is out of range, its value, the range and why.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            (1..=u16::MAX as usize).contains(&self.block_size),
            "block_size is {}; it must be 1..=65535 because block offsets are 16-bit",
            self.block_size
        );
        ensure!(
            (1..=MAX_TARGET_SST_SIZE).contains(&self.target_sst_size),
            "target_sst_size is {}; it must be 1..={MAX_TARGET_SST_SIZE} (1 GiB) because SST \
             offsets are 32-bit",
            self.target_sst_size
        );
        ensure!(
            self.num_memtable_limit >= 1,
            "num_memtable_limit is 0; it must be at least 1 (the mutable memtable)"
        );
        ensure!(
            self.write_stall_margin
                <= MAX_STALL_LIMIT - self.num_memtable_limit.min(MAX_STALL_LIMIT),
            "write_stall_margin is {} and num_memtable_limit {}; their sum, the memtable count at \
             which writers stall, must be at most {MAX_STALL_LIMIT} (a larger margin never stalls \
             either)",
            self.write_stall_margin,
            self.num_memtable_limit
        );
        ensure!(
            (Duration::from_millis(1)..=MAX_WRITE_STALL_TIMEOUT)
                .contains(&self.write_stall_timeout),
            "write_stall_timeout is {:?}; it must be from 1 ms to 24 h: 0 fails every write that \
             has to wait for a flush, and a stall longer than a day is a hang",
            self.write_stall_timeout
        );
        ensure!(
            (1..=MAX_BLOOM_BITS_PER_KEY).contains(&self.bloom_bits_per_key),
            "bloom_bits_per_key is {}; it must be 1..={MAX_BLOOM_BITS_PER_KEY} (10 gives about 1% \
             false positives; beyond about 43 nothing improves)",
            self.bloom_bits_per_key
        );
        check_compaction(&self.compaction_options)?;
        self.compaction_options.validate()?;
        self.check_stalls()?;
        self.check_commit()
    }
    // ANCHOR_END: validate

    // ANCHOR: check_stalls
    /// Checks the L0 triggers, the slowdown delay and the memory budget (week 4 days 4-5).
    ///
    /// # Errors
    /// Names the setting, its value, and what to change.
    fn check_stalls(&self) -> Result<()> {
        ensure!(
            (Duration::from_micros(1)..=MAX_SLOWDOWN_DELAY).contains(&self.l0_slowdown_delay),
            "l0_slowdown_delay is {:?}; it must be from 1 us to 1 s (a longer delay per write is a \
             stop: use l0_stop_writes_trigger)",
            self.l0_slowdown_delay
        );
        if let Some(budget) = self.memory_budget {
            ensure!(
                (MIN_MEMORY_BUDGET..=MAX_MEMORY_BUDGET).contains(&budget),
                "memory_budget is {budget} bytes; it must be from {MIN_MEMORY_BUDGET} (4 KiB) to \
                 {MAX_MEMORY_BUDGET} (1 TiB), or None for no budget"
            );
        }
        let triggers = [
            (
                "l0_slowdown_writes_trigger",
                self.l0_slowdown_writes_trigger,
            ),
            ("l0_stop_writes_trigger", self.l0_stop_writes_trigger),
        ];
        for (name, trigger) in triggers {
            let Some(trigger) = trigger else { continue };
            ensure!(
                (1..=MAX_COUNT).contains(&trigger),
                "{name} is {trigger}; it must be 1..={MAX_COUNT}, or None"
            );
            // What compaction leaves in L0 (or how many tiers it leaves): a trigger at or below
            // it would hold writers back before compaction is even asked to run.
            let (compaction_trigger, setting) = match &self.compaction_options {
                CompactionOptions::Simple(o) => (
                    o.level0_file_num_compaction_trigger,
                    "level0_file_num_compaction_trigger",
                ),
                CompactionOptions::Leveled(o) => (
                    o.level0_file_num_compaction_trigger,
                    "level0_file_num_compaction_trigger",
                ),
                CompactionOptions::Tiered(o) => (o.num_tiers, "num_tiers"),
                _ => bail!(
                    "{name} is {trigger}, but there is no compaction strategy to bring L0 below \
                     it: writers would slow down or stop for good; choose a compaction strategy \
                     or set {name} to None"
                ),
            };
            ensure!(
                trigger > compaction_trigger,
                "{name} is {trigger}, not above the compaction strategy's {setting} \
                 ({compaction_trigger}): writers would be held back before compaction is asked \
                 to run; make it larger"
            );
        }
        if let (Some(slowdown), Some(stop)) =
            (self.l0_slowdown_writes_trigger, self.l0_stop_writes_trigger)
        {
            ensure!(
                slowdown < stop,
                "l0_slowdown_writes_trigger ({slowdown}) must be below l0_stop_writes_trigger \
                 ({stop}): writers slow down first, and stop only if that was not enough"
            );
        }
        Ok(())
    }
    // ANCHOR_END: check_stalls

    /// Checks the commit pipeline's timeout and group caps (week 4 days 1-2).
    ///
    /// # Errors
    /// Names the setting, its value, and its range.
    fn check_commit(&self) -> Result<()> {
        ensure!(
            (Duration::from_millis(1)..=MAX_WRITE_STALL_TIMEOUT).contains(&self.commit_timeout),
            "commit_timeout is {:?}; it must be from 1 ms to 24 h: a log that takes longer than a \
             day to write is hung",
            self.commit_timeout
        );
        ensure!(
            (1..=MAX_COUNT).contains(&self.max_group_writes),
            "max_group_writes is {}; it must be 1..={MAX_COUNT} (1 writes every write on its own)",
            self.max_group_writes
        );
        ensure!(
            (1..=MAX_GROUP_BYTES).contains(&self.max_group_bytes),
            "max_group_bytes is {}; it must be 1..={MAX_GROUP_BYTES} (1 GiB): a group is one log \
             record, whose length is 32-bit",
            self.max_group_bytes
        );
        Ok(())
    }
}

/// Checks that every number of a compaction strategy is in a range the engine's arithmetic
/// handles (`CompactionOptions::validate` checks that the strategy makes sense).
fn check_compaction(options: &CompactionOptions) -> Result<()> {
    let in_range = |name: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
        ensure!(
            range.contains(&value),
            "compaction option {name} is {value}; it must be {}..={}",
            range.start(),
            range.end()
        );
        Ok(())
    };
    match options {
        CompactionOptions::Simple(o) => {
            in_range("max_levels", o.max_levels, 0..=MAX_LEVELS)?;
            in_range(
                "level0_file_num_compaction_trigger",
                o.level0_file_num_compaction_trigger,
                0..=MAX_COUNT,
            )?;
            in_range("size_ratio_percent", o.size_ratio_percent, 0..=MAX_PERCENT)?;
        }
        CompactionOptions::Tiered(o) => {
            in_range("num_tiers", o.num_tiers, 0..=MAX_COUNT)?;
            in_range(
                "max_size_amplification_percent",
                o.max_size_amplification_percent,
                0..=MAX_PERCENT,
            )?;
            in_range("size_ratio", o.size_ratio, 0..=MAX_PERCENT)?;
            in_range("min_merge_width", o.min_merge_width, 0..=MAX_COUNT)?;
            if let Some(width) = o.max_merge_width {
                in_range("max_merge_width", width, 0..=MAX_COUNT)?;
            }
        }
        CompactionOptions::Leveled(o) => {
            in_range("max_levels", o.max_levels, 0..=MAX_LEVELS)?;
            in_range(
                "level0_file_num_compaction_trigger",
                o.level0_file_num_compaction_trigger,
                0..=MAX_COUNT,
            )?;
            in_range("level_size_multiplier", o.level_size_multiplier, 0..=1000)?;
            in_range("base_level_size_mb", o.base_level_size_mb, 0..=1 << 30)?;
        }
        _ => {}
    }
    Ok(())
}
