//! RocksDB 11.8, the production engine the course's targets come from, behind the same `Engine`
//! trait as the course's.
//!
//! It runs with the workload's settings: the write-ahead log on, written to the OS on each put but
//! never synced (`WriteOptions` with `sync` off and the WAL not disabled), 64 MiB write buffers
//! (memtables), 4 KiB data blocks, a full bloom filter of 10 bits per key, a 32 MiB LRU block
//! cache, no compression on any level, the default column family only. Everything else is
//! RocksDB's default, so RocksDB decides it: leveled compaction (with dynamic level sizes, a
//! 256 MiB L1 and 64 MiB target files), two write buffers (`max_write_buffer_number`: one active
//! memtable and one being flushed before writes stall), compaction of L0 from four files on, two
//! background jobs (one flush, one compaction at a time), and where index and filter blocks live
//! (in the table readers, outside the block cache).
//!
//! `settle` waits with RocksDB's own `WaitForCompact`, which sleeps on the database's condition
//! variable until no flush or compaction is scheduled, queued or running, and then confirms it with
//! the database's properties (`rocksdb.mem-table-flush-pending`, `rocksdb.num-running-flushes`,
//! `rocksdb.compaction-pending`, `rocksdb.num-running-compactions`), within a 10-minute deadline.

use std::path::Path;
use std::time::Instant;

use ::rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, ErrorKind, Options, WaitForCompactOptions,
    WriteOptions, DB,
};
use anyhow::{bail, Result};

use super::{Engine, Visit, DEADLINE, POLL};

/// The properties that show background work: each is 0 when there is none.
const BUSY: [&str; 4] = [
    "rocksdb.mem-table-flush-pending",
    "rocksdb.num-running-flushes",
    "rocksdb.compaction-pending",
    "rocksdb.num-running-compactions",
];

/// A RocksDB database with the workload's settings.
pub struct RocksDb {
    db: DB,
    write: WriteOptions,
    /// Writes synced before they return (`fillsync`).
    synced: WriteOptions,
    /// The options the database was opened with: their statistics count the log's syncs, when
    /// they are on.
    options: Options,
    statistics: bool,
}

impl RocksDb {
    /// Opens (or reopens) the database in `path`.
    ///
    /// # Errors
    /// RocksDB's own error.
    pub fn open(path: &Path, statistics: bool) -> Result<Self> {
        let mut table = BlockBasedOptions::default();
        table.set_block_size(4096);
        // A full filter (one per table), not the old block-based one.
        table.set_bloom_filter(10.0, false);
        table.set_block_cache(&Cache::new_lru_cache(32 << 20));

        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_write_buffer_size(64 << 20);
        options.set_compression_type(DBCompressionType::None);
        options.set_bottommost_compression_type(DBCompressionType::None);
        options.set_block_based_table_factory(&table);
        if statistics {
            options.enable_statistics();
        }

        let mut write = WriteOptions::default();
        write.set_sync(false);
        write.disable_wal(false);
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        Ok(Self {
            db: DB::open(&options, path)?,
            write,
            synced,
            options,
            statistics,
        })
    }

    /// Whether the properties show no flush or compaction pending or running.
    fn idle(&self) -> Result<bool> {
        for name in BUSY {
            match self.db.property_int_value(name)? {
                Some(0) => {}
                Some(_) => return Ok(false),
                None => bail!("rocksdb: the property {name} is missing"),
            }
        }
        Ok(true)
    }
}

impl Engine for RocksDb {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put_opt(key, value, &self.write)?)
    }

    fn put_synced(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put_opt(key, value, &self.synced)?)
    }

    fn log_syncs(&self) -> Option<u64> {
        self.statistics.then(|| {
            self.options
                .get_ticker_count(::rocksdb::statistics::Ticker::WalFileSynced)
        })
    }

    fn get_is(&self, key: &[u8], expected: Option<&[u8]>) -> Result<bool> {
        Ok(self.db.get_pinned(key)?.as_deref() == expected)
    }

    fn scan_all(&self, visit: Visit<'_>) -> Result<()> {
        // The raw iterator lends its key and value, as the course engines' iterators do; the
        // other one copies each into a new allocation.
        let mut iter = self.db.raw_iterator();
        iter.seek_to_first();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            visit(key, value)?;
            iter.next();
        }
        Ok(iter.status()?)
    }

    fn flush(&self) -> Result<()> {
        // Flushes the active memtable and waits until it and any memtable before it are on disk.
        Ok(self.db.flush()?)
    }

    fn settle(&self) -> Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut wait = WaitForCompactOptions::default();
            // A timeout of 0 would mean no timeout.
            wait.set_timeout(left.as_micros().max(1) as u64);
            match self.db.wait_for_compact(&wait) {
                Err(e) if e.kind() == ErrorKind::TimedOut => break,
                result => result?,
            }
            if self.idle()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        bail!(
            "rocksdb: background flushes and compactions did not finish within {} minutes",
            DEADLINE.as_secs() / 60
        )
    }

    fn close(&self) -> Result<()> {
        // Sync the write-ahead log; the database waits for its background jobs and closes when it
        // is dropped, right after.
        Ok(self.db.flush_wal(true)?)
    }
}
