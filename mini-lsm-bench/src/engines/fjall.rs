//! fjall, a production LSM engine in pure Rust, behind the same `Engine` trait as the course's.
//!
//! It is there so that a learner sees their engine, the reference and a production engine side by
//! side on one workload. It runs with the course engines' settings as far as fjall exposes them:
//! the journal (its write-ahead log) on, written to the OS after each put but never synced
//! (fjall's default), 64 MiB memtables, 4 KiB data blocks, 10 bloom bits per key on every level, a
//! 32 MiB block cache, no compression, one keyspace. fjall chooses the rest itself: leveled
//! compaction, worker threads (one per core, up to four), and writes stall at four sealed
//! memtables where the course engines stall at three.
//!
//! `flush` and `settle` use fjall's counters that it marks as hidden (`sealed_memtable_count`,
//! `outstanding_flushes`, `active_compactions`, `compactions_completed`, `rotate_memtable`);
//! they exist throughout 3.x, but a minor release may move them, hence the feature is off by default.

use std::path::Path;

use ::fjall::config::{
    BlockSizePolicy, BloomConstructionPolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry,
};
use ::fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use anyhow::Result;

use super::{wait_until, Engine, Visit};

/// The one keyspace (fjall's column family) the benchmark writes to.
const KEYSPACE: &str = "bench";
/// The number of consecutive idle polls that `settle` takes for idle: the first and the last are
/// ten polls (`engines::POLL`), 50 ms, apart.
const QUIET_POLLS: u32 = 11;

/// A fjall database with the benchmark's one keyspace.
pub struct Fjall {
    db: Database,
    keyspace: Keyspace,
}

impl Fjall {
    /// Opens (or reopens) the database in `path`.
    ///
    /// # Errors
    /// fjall's own error.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::builder(path)
            .cache_size(32 << 20)
            .journal_compression(CompressionType::None)
            .open()?;
        // fjall stores a keyspace's options when it creates it, and a reopen reads them back: the
        // closure runs only for a new database.
        let keyspace = db.keyspace(KEYSPACE, || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(64 << 20)
                .data_block_size_policy(BlockSizePolicy::all(4096))
                .filter_policy(FilterPolicy::all(FilterPolicyEntry::Bloom(
                    BloomConstructionPolicy::BitsPerKey(10.0),
                )))
                .data_block_compression_policy(CompressionPolicy::disabled())
                .index_block_compression_policy(CompressionPolicy::disabled())
        })?;
        Ok(Self { db, keyspace })
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.keyspace.insert(key, value)?)
    }

    fn get_is(&self, key: &[u8], expected: Option<&[u8]>) -> Result<bool> {
        Ok(self.keyspace.get(key)?.as_deref() == expected)
    }

    fn scan_all(&self, visit: Visit<'_>) -> Result<()> {
        for entry in self.keyspace.iter() {
            let (key, value) = entry.into_inner()?;
            visit(&key, &value)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        // Seal the active memtable (nothing happens if it is empty) and wait until no sealed
        // memtable is left: each becomes a table on disk, written by a worker thread.
        self.keyspace.rotate_memtable()?;
        wait_until("fjall", "memtable flushes", || {
            self.keyspace.sealed_memtable_count() == 0 && self.db.outstanding_flushes() == 0
        })
    }

    fn settle(&self) -> Result<()> {
        // fjall does not tell how many compaction requests are queued: a finished flush sends one
        // per worker thread, and each runs one compaction step. So idle is: no flush queued, no
        // sealed memtable, no compaction running, and no compaction finished, over `QUIET_POLLS`
        // polls in a row. `settle_secs` therefore includes that 50 ms window.
        let mut completed = self.db.compactions_completed();
        let mut quiet = 0;
        wait_until("fjall", "background flushes and compactions", || {
            let now = self.db.compactions_completed();
            let busy = self.db.outstanding_flushes() > 0
                || self.keyspace.sealed_memtable_count() > 0
                || self.db.active_compactions() > 0
                || now != completed;
            completed = now;
            quiet = if busy { 0 } else { quiet + 1 };
            quiet >= QUIET_POLLS
        })
    }

    fn close(&self) -> Result<()> {
        // Sync the journal; the database stops its worker threads when it is dropped, right after.
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }
}
