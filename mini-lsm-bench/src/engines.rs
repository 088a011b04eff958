//! The engines a benchmark can run: the reference and the starter, through one small trait, and
//! the production engines fjall (`engines/fjall.rs`) and RocksDB (`engines/rocksdb.rs`) for
//! comparison. Each is a cargo feature.

use std::path::Path;

use anyhow::{bail, Result};

#[cfg(feature = "fjall")]
mod fjall;
#[cfg(feature = "rocksdb")]
mod rocksdb;

/// Every engine this crate knows, built in or not.
const ENGINES: [&str; 4] = ["ref", "starter", "fjall", "rocksdb"];

/// How long `flush` and `settle` wait for an engine's background work before they fail.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);
/// How often they look.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Polls until `done`, or fails once [`DEADLINE`] has passed, naming `engine` and `what`.
///
/// # Errors
/// Past the deadline.
pub fn wait_until(engine: &str, what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !done() {
        if std::time::Instant::now() > deadline {
            bail!(
                "{engine}: {what} did not finish within {} minutes",
                DEADLINE.as_secs() / 60
            );
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// Polls `done` until it says so, or fails once [`DEADLINE`] has passed or `done` fails (an
/// engine's background error ends the wait at once).
///
/// # Errors
/// Past the deadline, or `done`'s error.
pub fn wait_until_ok(
    engine: &str,
    what: &str,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let mut failed = None;
    wait_until(engine, what, || match done() {
        Ok(finished) => finished,
        Err(error) => {
            failed = Some(error);
            true
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// How the course engines run: the production engines choose for themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CourseConfig {
    /// The compaction strategy; `None` runs without compaction, as a week 1 engine must.
    pub compaction: Option<Strategy>,
    /// Whether the log writes every batch to the OS before `put` returns
    /// (`WalMode::WriteEachBatch`), as RocksDB and fjall do, rather than buffering 64 KiB.
    pub write_each_batch: bool,
}

/// A compaction strategy of the course, with its default settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Simple,
    Tiered,
    Leveled,
}

impl Strategy {
    /// The strategy named `name`.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "simple" => Self::Simple,
            "tiered" => Self::Tiered,
            "leveled" => Self::Leveled,
            other => bail!("unknown compaction strategy `{other}`; use simple, tiered or leveled"),
        })
    }
}

impl CourseConfig {
    /// A line that says how a course engine runs, for the top of its figures.
    pub fn describe(&self) -> String {
        let compaction = match self.compaction {
            None => "no compaction".to_string(),
            Some(strategy) => format!("{strategy:?} compaction (default settings)").to_lowercase(),
        };
        let log = if self.write_each_batch {
            "log written to the OS at every write (WalMode::WriteEachBatch), never synced"
        } else {
            "log buffered up to 64 KiB in the process (WalMode::Buffered), never synced"
        };
        format!("{compaction}, {log}")
    }
}

/// A callback that sees each entry of a scan.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

/// What a benchmark needs of an engine. Shared by the threads of `fillsync`.
pub trait Engine: Send + Sync {
    /// Stores a value.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Stores a value, and returns only once it is synced to the disk (`fillsync`).
    ///
    /// # Errors
    /// The engine's error; by default, that the engine does not take synced writes here.
    fn put_synced(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let _ = (key, value);
        bail!("this engine does not run fillsync in this benchmark")
    }
    /// How many times the engine has synced its log so far, if it tells.
    fn log_syncs(&self) -> Option<u64> {
        None
    }
    /// Whether `key` holds exactly `expected` (`None`: is absent).
    fn get_is(&self, key: &[u8], expected: Option<&[u8]>) -> Result<bool>;
    /// Visits every live entry in key order.
    fn scan_all(&self, visit: Visit<'_>) -> Result<()>;
    /// Flushes every memtable to disk.
    fn flush(&self) -> Result<()>;
    /// Waits until the engine has no background work left.
    fn settle(&self) -> Result<()>;
    /// Closes the engine.
    fn close(&self) -> Result<()>;
}

/// The settings every engine runs with: logs on (no sync per write), 64 MiB memtables, 4 KiB
/// blocks, 10 bloom bits per key, a 32 MiB block cache; and the compaction strategy and log mode
/// of the [`CourseConfig`].
#[cfg(any(feature = "ref", feature = "starter"))]
macro_rules! mini_lsm_engine {
    ($name:ident, $krate:ident) => {
        /// An engine of the course, at its chapters so far, and whether it compacts.
        pub struct $name(std::sync::Arc<$krate::lsm_storage::MiniLsm>, bool);

        impl $name {
            /// Opens (or reopens) the engine in `path`.
            pub fn open(path: &Path, config: &CourseConfig) -> Result<Self> {
                use $krate::compact::CompactionOptions;
                let mut options = $krate::lsm_storage::LsmStorageOptions::default_for_week1_test();
                options.compaction_options = match config.compaction {
                    None => CompactionOptions::NoCompaction,
                    Some(Strategy::Simple) => CompactionOptions::Simple(Default::default()),
                    Some(Strategy::Tiered) => CompactionOptions::Tiered(Default::default()),
                    Some(Strategy::Leveled) => CompactionOptions::Leveled(Default::default()),
                };
                if config.write_each_batch {
                    options.wal_mode = $krate::lsm_storage::WalMode::WriteEachBatch;
                }
                options.enable_wal = true;
                options.target_sst_size = 64 << 20;
                options.block_size = 4096;
                options.bloom_bits_per_key = 10;
                options.block_cache_bytes = 32 << 20;
                // Flush as soon as a memtable is frozen, and stall writers while two frozen
                // ones wait: at most three memtables in memory (one mutable, two frozen). This
                // is one more than RocksDB keeps: its default `max_write_buffer_number` of 2
                // counts the active memtable (one active, one being flushed, then writes stall).
                options.num_memtable_limit = 1;
                options.write_stall_margin = 1;
                options.write_stall_timeout = std::time::Duration::from_secs(120);
                let lsm = $krate::lsm_storage::MiniLsm::open(path, options)?;
                Ok(Self(lsm, config.compaction.is_some()))
            }
        }

        impl Engine for $name {
            fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
                self.0.put(key, value)
            }

            fn put_synced(&self, key: &[u8], value: &[u8]) -> Result<()> {
                let fsync = $krate::lsm_storage::WriteOptions::fsync();
                self.0.put_opt(key, value, &fsync)
            }

            fn log_syncs(&self) -> Option<u64> {
                Some(self.0.inner.stats().log_syncs)
            }

            fn get_is(&self, key: &[u8], expected: Option<&[u8]>) -> Result<bool> {
                Ok(self.0.get(key)?.as_deref() == expected)
            }

            fn scan_all(&self, visit: Visit<'_>) -> Result<()> {
                use $krate::iterators::StorageIterator;
                let mut iter = self
                    .0
                    .scan(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)?;
                while iter.is_valid() {
                    visit(iter.key(), iter.value())?;
                    iter.next()?;
                }
                Ok(())
            }

            fn flush(&self) -> Result<()> {
                self.0.force_flush()
            }

            fn settle(&self) -> Result<()> {
                // The flush above leaves no immutable memtable; wait for the flush thread anyway,
                // in case a freeze raced with it, and for the compaction thread to find nothing
                // left to do (only when it runs: a week 1 engine has none), with a bound; a
                // background error ends the wait.
                let (inner, compacts) = (&self.0.inner, self.1);
                wait_until_ok(
                    stringify!($name),
                    "background flushes and compactions",
                    || {
                        inner.check_bg_error()?;
                        let flushed = inner.snapshot().imm_memtables.is_empty();
                        Ok(flushed && !(compacts && inner.compaction_pending()))
                    },
                )
            }

            fn close(&self) -> Result<()> {
                self.0.close()
            }
        }
    };
}

#[cfg(feature = "ref")]
mini_lsm_engine!(Reference, mini_lsm);
#[cfg(feature = "starter")]
mini_lsm_engine!(Starter, mini_lsm_starter);

/// Opens engine `name` in `path`; `config` says how a course engine runs.
///
/// # Errors
/// An unknown name, an engine that is not built in, or the engine's own error.
pub fn open(name: &str, path: &Path, config: &CourseConfig) -> Result<Box<dyn Engine>> {
    open_counting(name, path, config, false)
}

/// [`open`], with RocksDB's statistics on when `count_syncs` (for `fillsync`'s syncs per write;
/// they cost RocksDB some speed, so the other phases run without them).
///
/// # Errors
/// As [`open`].
pub fn open_counting(
    name: &str,
    path: &Path,
    config: &CourseConfig,
    count_syncs: bool,
) -> Result<Box<dyn Engine>> {
    let _ = (config, count_syncs); // Only some engines read them, and they may not be built in.
    Ok(match name {
        #[cfg(feature = "ref")]
        "ref" => Box::new(Reference::open(path, config)?),
        #[cfg(feature = "starter")]
        "starter" => Box::new(Starter::open(path, config)?),
        #[cfg(feature = "fjall")]
        "fjall" => Box::new(fjall::Fjall::open(path)?),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Box::new(rocksdb::RocksDb::open(path, count_syncs)?),
        other if ENGINES.contains(&other) => bail!(
            "engine `{other}` is not built in; `cargo x bench --engine {other}` builds it with \
             the {other} feature{}",
            if other == "rocksdb" {
                " (it compiles RocksDB's C++ sources, many minutes, and needs libclang: \
                 `apt-get install libclang-dev` on Debian or Ubuntu)"
            } else {
                ""
            }
        ),
        other => bail!(
            "unknown engine `{other}`; the engines are {}",
            ENGINES.join(", ")
        ),
    })
}
