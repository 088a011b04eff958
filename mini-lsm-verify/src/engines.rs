// SPDX-License-Identifier: Apache-2.0
//! The engines verify drives: the reference and the starter, through one adapter each, generated
//! by one macro because the two crates differ only in name.
//!
//! A sequential engine is an `LsmStorageInner` on an in-memory file system (`MemFs`): fast, with
//! no background thread (every flush and compaction is an operation of the case, so a case always
//! runs the same way), and crashable. A concurrent engine is a `MiniLsm`, with its flush and
//! compaction threads, on the real file system.

use anyhow::Result;

use crate::ops::{BatchOp, Config, Op};

/// What an operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A write or a structural change succeeded.
    Done,
    /// A `get`: the value, or `None` when the key is absent.
    Value(Option<Vec<u8>>),
    /// A scan: the entries in key order.
    Entries(Vec<(Vec<u8>, Vec<u8>)>),
}

/// Something that runs operations: an engine, or the model.
pub trait Engine {
    /// Runs `op`.
    ///
    /// # Errors
    /// The engine's own error.
    fn apply(&mut self, op: &Op) -> Result<Reply>;

    /// A picture of the state, for a failure report.
    fn dump(&self) -> String;
}

/// Opens a fresh engine for a case.
pub type Opener<'a> = &'a dyn Fn(Config) -> Result<Box<dyn Engine>>;

/// The settings every sequential engine runs with; the printed `#[test]` uses the same.
pub mod settings {
    /// The database directory on the `MemFs`.
    pub const DIR: &str = "/db";
    /// Small blocks, so that even a small SST has several.
    pub const BLOCK_SIZE: usize = 64;
    /// Small memtables and SSTs: compaction splits its output into several SSTs, so that scans
    /// cross SST edges, and a memtable freezes after a few puts (four in the reference, which
    /// counts about 120 bytes of node per entry; a few dozen in an engine that counts only key
    /// and value bytes). Freezes much more often than that leave a failing case full of filler
    /// puts that shrinking cannot take out one at a time.
    pub const TARGET_SST_SIZE: usize = 512;
    /// No write stall: a case flushes only when it says so.
    pub const WRITE_STALL_MARGIN: usize = 1_000_000;
    /// Simple leveled: `(size_ratio_percent, level0_file_num_compaction_trigger, max_levels)`.
    pub const SIMPLE: (usize, usize, usize) = (200, 2, 3);
    /// Tiered: `(num_tiers, max_size_amplification_percent, size_ratio, min_merge_width)`.
    pub const TIERED: (usize, usize, usize, usize) = (3, 200, 1, 2);
    /// Leveled: `(level_size_multiplier, level0_file_num_compaction_trigger, max_levels,
    /// base_level_size_mb)`.
    pub const LEVELED: (usize, usize, usize, usize) = (2, 2, 3, 1);
    /// A scan that yields more entries than this never ends (cases hold a few dozen keys).
    pub const SCAN_LIMIT: usize = 10_000;
}

/// A `MiniLsm` shared by the threads of the concurrency mode.
pub trait ConcurrentEngine: Send + Sync {
    /// Stores a value.
    ///
    /// # Errors
    /// The engine's own error.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Writes a batch.
    ///
    /// # Errors
    /// The engine's own error.
    fn write_batch(&self, batch: &[BatchOp]) -> Result<()>;
    /// Reads a key.
    ///
    /// # Errors
    /// The engine's own error.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Every entry whose key starts with `prefix`.
    ///
    /// # Errors
    /// The engine's own error.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Stops the background threads.
    ///
    /// # Errors
    /// The engine's own error (a background error, say).
    fn close(&self) -> Result<()>;
    /// A picture of the state.
    fn dump(&self) -> String;
}

/// Generates `$seq` (a sequential engine) and `$conc` (a concurrent one) for crate `$krate`.
macro_rules! engine_adapters {
    ($seq:ident, $conc:ident, $krate:ident) => {
        /// An engine of the course on a `MemFs`, driven one operation at a time.
        pub struct $seq {
            config: Config,
            fs: $krate::fs::MemFs,
            inner: Option<$krate::lsm_storage::LsmStorageInner>,
        }

        impl $seq {
            /// Opens a fresh engine on an empty `MemFs`.
            ///
            /// # Errors
            /// The engine's `open` error.
            pub fn open(config: Config) -> Result<Self> {
                let mut engine = Self {
                    config,
                    fs: $krate::fs::MemFs::new(),
                    inner: None,
                };
                engine.reopen()?;
                Ok(engine)
            }

            fn options(&self) -> $krate::lsm_storage::LsmStorageOptions {
                let mut options = $krate::lsm_storage::LsmStorageOptions::default_for_week1_test();
                options.block_size = settings::BLOCK_SIZE;
                options.target_sst_size = settings::TARGET_SST_SIZE;
                options.write_stall_margin = settings::WRITE_STALL_MARGIN;
                options.compaction_options = compaction(self.config);
                options.enable_wal = self.config.wal;
                options.fs = std::sync::Arc::new(self.fs.clone());
                options
            }

            /// Drops the engine (if open) and opens it again on the same files.
            fn reopen(&mut self) -> Result<()> {
                use $krate::fs::FileSystem;
                self.inner = None;
                // Before the write-path chapter `open` does not create its directory.
                self.fs
                    .create_dir_all(std::path::Path::new(settings::DIR))?;
                self.inner = Some($krate::lsm_storage::LsmStorageInner::open(
                    settings::DIR,
                    self.options(),
                )?);
                Ok(())
            }

            fn inner(&self) -> Result<&$krate::lsm_storage::LsmStorageInner> {
                self.inner
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the engine did not reopen"))
            }

            /// What `MiniLsm::close` does: sync the logs, or flush every memtable without them.
            fn close(&self) -> Result<()> {
                let inner = self.inner()?;
                if self.config.wal {
                    return inner.sync();
                }
                if !inner.snapshot().memtable.is_empty() {
                    inner.freeze_memtable()?;
                }
                let waiting = inner.snapshot().imm_memtables.len();
                for _ in 0..waiting {
                    inner.force_flush_next_imm_memtable()?;
                }
                let left = inner.snapshot().imm_memtables.len();
                anyhow::ensure!(
                    left == 0,
                    "{waiting} flushes left {left} immutable memtables unflushed"
                );
                Ok(())
            }

            fn scan(
                &self,
                lower: std::ops::Bound<&[u8]>,
                upper: std::ops::Bound<&[u8]>,
                prefix: Option<&[u8]>,
            ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
                use $krate::iterators::StorageIterator;
                let inner = self.inner()?;
                let mut iter = match prefix {
                    Some(prefix) => inner.scan_prefix(prefix)?,
                    None => inner.scan(lower, upper)?,
                };
                let mut out = Vec::new();
                while iter.is_valid() {
                    anyhow::ensure!(
                        out.len() < settings::SCAN_LIMIT,
                        "the scan did not end after {} entries",
                        settings::SCAN_LIMIT
                    );
                    out.push((iter.key().to_vec(), iter.value().to_vec()));
                    iter.next()?;
                }
                Ok(out)
            }
        }

        impl Engine for $seq {
            fn apply(&mut self, op: &Op) -> Result<Reply> {
                use std::ops::Bound;
                fn bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
                    b.as_ref().map(Vec::as_slice)
                }
                match op {
                    Op::Put(k, v) => self.inner()?.put(k, v)?,
                    Op::Delete(k) => self.inner()?.delete(k)?,
                    Op::Get(k) => {
                        return Ok(Reply::Value(self.inner()?.get(k)?.map(|v| v.to_vec())));
                    }
                    Op::Scan(l, u) => {
                        return Ok(Reply::Entries(self.scan(bound(l), bound(u), None)?));
                    }
                    Op::ScanPrefix(p) => {
                        let all = Bound::Unbounded;
                        return Ok(Reply::Entries(self.scan(all, all, Some(p))?));
                    }
                    Op::Freeze => self.inner()?.freeze_memtable()?,
                    Op::Flush => self.inner()?.force_flush_next_imm_memtable()?,
                    Op::FullCompaction => self.inner()?.force_full_compaction()?,
                    Op::TriggerCompaction => self.inner()?.trigger_compaction()?,
                    Op::CloseReopen => {
                        self.close()?;
                        self.reopen()?;
                    }
                    // Without a log a crash loses the memtables, which the model cannot know:
                    // the operation is a no-op then (shrinking may turn the log off).
                    Op::CrashReopen if !self.config.wal => {}
                    Op::CrashReopen => {
                        self.inner()?.sync()?;
                        let image = self.fs.crash_now(false);
                        self.inner = None;
                        self.fs = image;
                        self.reopen()?;
                    }
                    Op::Batch(records) => {
                        use $krate::lsm_storage::WriteBatchRecord;
                        let batch: Vec<WriteBatchRecord<&[u8]>> = records
                            .iter()
                            .map(|r| match r {
                                BatchOp::Put(k, v) => WriteBatchRecord::Put(&k[..], &v[..]),
                                BatchOp::Del(k) => WriteBatchRecord::Del(&k[..]),
                            })
                            .collect();
                        self.inner()?.write_batch(&batch)?;
                    }
                }
                Ok(Reply::Done)
            }

            fn dump(&self) -> String {
                match &self.inner {
                    Some(inner) => inner.dump(),
                    None => "(the engine is not open)".to_string(),
                }
            }
        }

        /// An engine of the course with its background threads, in a directory.
        pub struct $conc(std::sync::Arc<$krate::lsm_storage::MiniLsm>);

        impl $conc {
            /// Opens the engine in `dir`, with small memtables so that the flush thread and the
            /// compaction thread have work.
            ///
            /// # Errors
            /// The engine's `open` error.
            pub fn open(dir: &std::path::Path, config: Config) -> Result<Self> {
                let mut options = $krate::lsm_storage::LsmStorageOptions::default_for_week1_test();
                options.block_size = 256;
                options.target_sst_size = 4096;
                options.num_memtable_limit = 3;
                options.write_stall_margin = 4;
                options.write_stall_timeout = std::time::Duration::from_secs(60);
                options.compaction_options = compaction(config);
                options.enable_wal = config.wal;
                Ok(Self($krate::lsm_storage::MiniLsm::open(dir, options)?))
            }
        }

        impl ConcurrentEngine for $conc {
            fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
                self.0.put(key, value)
            }

            fn write_batch(&self, batch: &[BatchOp]) -> Result<()> {
                use $krate::lsm_storage::WriteBatchRecord;
                let batch: Vec<WriteBatchRecord<&[u8]>> = batch
                    .iter()
                    .map(|r| match r {
                        BatchOp::Put(k, v) => WriteBatchRecord::Put(&k[..], &v[..]),
                        BatchOp::Del(k) => WriteBatchRecord::Del(&k[..]),
                    })
                    .collect();
                self.0.write_batch(&batch)
            }

            fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
                Ok(self.0.get(key)?.map(|v| v.to_vec()))
            }

            fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
                use $krate::iterators::StorageIterator;
                let mut iter = self.0.scan_prefix(prefix)?;
                let mut out = Vec::new();
                while iter.is_valid() {
                    anyhow::ensure!(
                        out.len() < settings::SCAN_LIMIT,
                        "the scan did not end after {} entries",
                        settings::SCAN_LIMIT
                    );
                    out.push((iter.key().to_vec(), iter.value().to_vec()));
                    iter.next()?;
                }
                Ok(out)
            }

            fn close(&self) -> Result<()> {
                self.0.close()
            }

            fn dump(&self) -> String {
                self.0.dump()
            }
        }
    };
}

/// The compaction options of a configuration, for crate `$krate`.
macro_rules! compaction_options {
    ($krate:ident) => {
        /// The compaction options of `config`, from [`settings`].
        pub fn compaction(config: Config) -> $krate::compact::CompactionOptions {
            use $krate::compact::*;
            match config.strategy {
                Strategy::None => CompactionOptions::NoCompaction,
                Strategy::Simple => {
                    let (size_ratio_percent, trigger, max_levels) = settings::SIMPLE;
                    CompactionOptions::Simple(SimpleLeveledCompactionOptions {
                        size_ratio_percent,
                        level0_file_num_compaction_trigger: trigger,
                        max_levels,
                    })
                }
                Strategy::Tiered => {
                    let (num_tiers, amp, size_ratio, min_merge_width) = settings::TIERED;
                    CompactionOptions::Tiered(TieredCompactionOptions {
                        num_tiers,
                        max_size_amplification_percent: amp,
                        size_ratio,
                        min_merge_width,
                        max_merge_width: None,
                    })
                }
                Strategy::Leveled => {
                    let (multiplier, trigger, max_levels, base_mb) = settings::LEVELED;
                    CompactionOptions::Leveled(LeveledCompactionOptions {
                        level_size_multiplier: multiplier,
                        level0_file_num_compaction_trigger: trigger,
                        max_levels,
                        base_level_size_mb: base_mb,
                    })
                }
            }
        }
    };
}

/// The reference's adapters.
#[cfg(feature = "ref")]
pub mod mini_lsm {
    use super::{settings, ConcurrentEngine, Engine, Reply};
    use crate::ops::{BatchOp, Config, Op, Strategy};
    use anyhow::Result;

    compaction_options!(mini_lsm);
    engine_adapters!(Reference, ConcurrentReference, mini_lsm);
}

/// The starter's adapters.
#[cfg(feature = "starter")]
pub mod mini_lsm_starter {
    use super::{settings, ConcurrentEngine, Engine, Reply};
    use crate::ops::{BatchOp, Config, Op, Strategy};
    use anyhow::Result;

    compaction_options!(mini_lsm_starter);
    engine_adapters!(Starter, ConcurrentStarter, mini_lsm_starter);
}

/// The engines built into this binary, by name.
pub fn built_in() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "ref") {
        names.push("ref");
    }
    if cfg!(feature = "starter") {
        names.push("starter");
    }
    names
}

/// Opens a fresh sequential engine `name` for a case.
///
/// # Errors
/// An unknown name, or the engine's `open` error.
pub fn open(name: &str, config: Config) -> Result<Box<dyn Engine>> {
    Ok(match name {
        #[cfg(feature = "ref")]
        "ref" => Box::new(mini_lsm::Reference::open(config)?),
        #[cfg(feature = "starter")]
        "starter" => Box::new(mini_lsm_starter::Starter::open(config)?),
        other => anyhow::bail!(
            "engine `{other}` is not built in (built in: {}); the engines are cargo features",
            built_in().join(", ")
        ),
    })
}

/// Opens a concurrent engine `name` in `dir`.
///
/// # Errors
/// An unknown name, or the engine's `open` error.
pub fn open_concurrent(
    name: &str,
    dir: &std::path::Path,
    config: Config,
) -> Result<Box<dyn ConcurrentEngine>> {
    let _ = (dir, config);
    Ok(match name {
        #[cfg(feature = "ref")]
        "ref" => Box::new(mini_lsm::ConcurrentReference::open(dir, config)?),
        #[cfg(feature = "starter")]
        "starter" => Box::new(mini_lsm_starter::ConcurrentStarter::open(dir, config)?),
        other => anyhow::bail!(
            "engine `{other}` is not built in (built in: {})",
            built_in().join(", ")
        ),
    })
}

#[cfg(all(test, feature = "ref"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gen::Mix;
    use crate::ops::{Chapter, Strategy};
    use crate::search::{Budget, Found, Search};

    /// A write synced before a crash is there after it: the adapter crashes through `MemFs`
    /// and reopens what survived.
    #[test]
    fn a_synced_write_survives_the_crash() {
        let config = Config {
            strategy: Strategy::Leveled,
            wal: true,
        };
        let mut engine = open("ref", config).unwrap();
        engine
            .apply(&Op::Put(b"k1".to_vec(), b"v1".to_vec()))
            .unwrap();
        engine.apply(&Op::CrashReopen).unwrap();
        assert_eq!(
            engine.apply(&Op::Get(b"k1".to_vec())).unwrap(),
            Reply::Value(Some(b"v1".to_vec()))
        );
        assert!(engine.dump().contains("memtable"));
    }

    /// The reference agrees with the model on cases of the whole course's mix (compaction,
    /// reopening and crashing included), and those cases read real data.
    #[test]
    fn the_reference_agrees_with_the_model() {
        let reference = |config| open("ref", config);
        let model = |_| Ok(Box::new(crate::model::Model::new()) as Box<dyn Engine>);
        let found = Search {
            mix: Mix {
                upto: Chapter::BATCH,
            },
            max_ops: 100,
            seed: 7,
            budget: Budget {
                cases: Some(300),
                time: None,
            },
            shrink_time: Duration::from_secs(10),
            subject: &reference,
            oracle: &model,
        }
        .run(&mut |_| {});
        match found {
            Found::Clean { cases, reads } => {
                assert_eq!(cases, 300);
                assert!(reads > 1000, "only {reads} non-empty reads");
            }
            other => panic!("the reference disagrees with the model: {other:?}"),
        }
    }
}
