// SPDX-License-Identifier: Apache-2.0
//! Metrics (week 4 day 7): what the engine did since it opened, each thing counted once, read
//! in one call ([`crate::lsm_storage::LsmStorageInner::stats`]).
//!
//! A metric is worth as much as its definition. "Bytes written" could mean the keys and values a
//! user handed over, or those plus the log record around them, or everything that reached the
//! disk; an engine that adds a batch's bytes once for the batch and again for each entry (as one
//! published engine does) reports twice what it was given, and its write amplification is then
//! off by half. So each count here has one definition and is taken in exactly one place: where
//! the event it counts happens once.
//!
//! ```text
//!   counted at ...                                  counts
//!   the log write of a group (commit.rs), or the    writes, entries, user bytes, groups
//!   commit without a log (commit_batch)
//!   get / get_with_ts, scan / scan_with_ts          gets, hits, scans; user bytes handed back
//!   the stall (wait_for_room)                       slowed and stopped writes, time, timeouts
//!   the flush and compaction installs               SSTs and their bytes, read and written
//!   the file layer (every append, any file)         bytes written to logs, SSTs, the manifest
//! ```
//!
//! Write amplification is then bytes written to files over user bytes written: the same ratio
//! the benchmark measures from outside (`wchar` in `/proc/self/io`), from inside.
//!
//! User bytes are the keys and values as the user sees them: a put's key and value, a delete's
//! key, each key and value a scan hands back, the value a get finds (the key was the caller's).
//! What the engine adds around them (timestamps, lengths, checksums) counts only in file bytes.
//!
//! Counters are plain atomics, or a short lock where several must agree (a write's entries and
//! bytes): reading them all in `stats` is not one atomic snapshot, so figures taken while the
//! engine works may be a few writes apart from each other. Left out: histograms of latencies and
//! per-level figures (RocksDB's `rocksdb.stats`); they need a clock read per operation.

mod files;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use files::CountingFs;
use files::FileBytes;

use crate::iterators::StorageIterator;
use crate::lsm_iterator::{FusedIterator, LsmIterator};

/// What the engine did since it opened: [`crate::lsm_storage::LsmStorageInner::stats`].
///
/// Sizes are in bytes; times on the engine's clock.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Writes committed: each put, delete and batch is one.
    pub writes: u64,
    /// Entries those writes carried: each key put or deleted.
    pub entries_written: u64,
    /// User bytes written: every key and value, once (a delete's key too).
    pub bytes_written: u64,
    /// Groups the writes were committed in: with the log on, one per log write, which carries
    /// the writes of every writer queued behind its leader (group commit, week 4 day 2);
    /// without it, one per write.
    pub write_groups: u64,
    /// Writes in the largest group.
    pub max_write_group: u64,
    /// Point lookups.
    pub gets: u64,
    /// Point lookups that found a value.
    pub get_hits: u64,
    /// Scans opened.
    pub scans: u64,
    /// Entries the scans handed back.
    pub entries_scanned: u64,
    /// User bytes read: values the gets found, keys and values the scans handed back.
    pub bytes_read: u64,
    /// Writes delayed at the L0 slowdown trigger.
    pub slowed_writes: u64,
    /// Writes that had to wait for room (memtables, L0 or the memory budget).
    pub stopped_writes: u64,
    /// Writes that waited out `write_stall_timeout` and failed.
    pub stall_timeouts: u64,
    /// Time writers spent delayed or waiting, all together.
    pub stall_time: Duration,
    /// Memtables flushed to an SST.
    pub flushes: u64,
    /// Bytes of the SSTs flushes wrote.
    pub flush_bytes: u64,
    /// Compactions installed (trivial moves included).
    pub compactions: u64,
    /// Bytes of the SSTs compactions read (a trivial move reads none).
    pub compaction_bytes_read: u64,
    /// Bytes of the SSTs compactions wrote.
    pub compaction_bytes_written: u64,
    /// Bytes appended to write-ahead logs.
    pub log_bytes: u64,
    /// Bytes appended to every file: logs, SSTs, the manifest.
    pub file_bytes_written: u64,
    /// Syncs of write-ahead logs: with group commit (week 4 day 2), one per group that asked
    /// for fsync, and one per freeze, `sync` and `close`.
    pub log_syncs: u64,
}

impl Stats {
    /// Bytes written to files per user byte written; `None` before the first byte.
    pub fn write_amplification(&self) -> Option<f64> {
        (self.bytes_written > 0).then(|| self.file_bytes_written as f64 / self.bytes_written as f64)
    }

    /// Writes per group; `None` before the first write.
    pub fn mean_write_group(&self) -> Option<f64> {
        (self.write_groups > 0).then(|| self.writes as f64 / self.write_groups as f64)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
        writeln!(
            f,
            "writes       {} ({} entries, {} bytes) in {} groups (mean {}, max {})",
            self.writes,
            self.entries_written,
            self.bytes_written,
            self.write_groups,
            ratio(self.mean_write_group()),
            self.max_write_group
        )?;
        writeln!(
            f,
            "reads        {} gets ({} found), {} scans ({} entries); {} bytes",
            self.gets, self.get_hits, self.scans, self.entries_scanned, self.bytes_read
        )?;
        writeln!(
            f,
            "stalls       {} slowed, {} stopped, {} timed out; {:.3} s in all",
            self.slowed_writes,
            self.stopped_writes,
            self.stall_timeouts,
            self.stall_time.as_secs_f64()
        )?;
        writeln!(
            f,
            "flushes      {} ({} bytes)",
            self.flushes, self.flush_bytes
        )?;
        writeln!(
            f,
            "compactions  {} ({} bytes read, {} written)",
            self.compactions, self.compaction_bytes_read, self.compaction_bytes_written
        )?;
        writeln!(
            f,
            "files        {} bytes written ({} to logs)",
            self.file_bytes_written, self.log_bytes
        )?;
        write!(
            f,
            "write amp    {} (file bytes per user byte)",
            ratio(self.write_amplification())
        )
    }
}

/// Counts that must agree with each other, updated together under one lock.
#[derive(Debug, Default)]
struct WriteCounts {
    writes: u64,
    entries: u64,
    bytes: u64,
    groups: u64,
    max_group: u64,
}

/// The writes of a group, their entries and user bytes (see [`Metrics::record_tally`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupTally {
    /// Writes (each put, delete and batch is one).
    pub writes: u64,
    /// Their entries.
    pub entries: u64,
    /// Their keys' and values' bytes.
    pub bytes: u64,
}

impl GroupTally {
    /// One write of `entries` (an empty value is a delete, whose key still counts).
    pub fn of(entries: &[(&[u8], &[u8])]) -> Self {
        Self {
            writes: 1,
            entries: entries.len() as u64,
            bytes: entries
                .iter()
                .map(|(key, value)| (key.len() + value.len()) as u64)
                .sum(),
        }
    }

    /// Adds `other` to this tally.
    pub fn add(&mut self, other: &Self) {
        self.writes += other.writes;
        self.entries += other.entries;
        self.bytes += other.bytes;
    }
}

#[derive(Debug, Default)]
struct StallCounts {
    slowed: u64,
    stopped: u64,
    timeouts: u64,
    time: Duration,
}

#[derive(Debug, Default)]
struct BackgroundCounts {
    flushes: u64,
    flush_bytes: u64,
    compactions: u64,
    compaction_read: u64,
    compaction_written: u64,
}

/// The engine's live counters; [`Metrics::stats`] reads them.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Taken once per commit, after it.
    writes: Mutex<WriteCounts>,
    gets: AtomicU64,
    get_hits: AtomicU64,
    scans: AtomicU64,
    entries_scanned: AtomicU64,
    bytes_read: AtomicU64,
    stalls: Mutex<StallCounts>,
    background: Mutex<BackgroundCounts>,
    /// Shared with the [`CountingFs`] the engine's files go through.
    files: Arc<FileBytes>,
}

/// How a stalled write ended, for [`Metrics::record_stall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallOutcome {
    /// It went ahead.
    Admitted,
    /// It waited out its bound and failed.
    TimedOut,
    /// A background error ended it.
    Failed,
}

impl Metrics {
    /// Fresh counters, all zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Wraps `fs` so that every byte appended to a file through it is counted here.
    pub fn counting_fs(
        &self,
        fs: Arc<dyn crate::fs::FileSystem>,
    ) -> Arc<dyn crate::fs::FileSystem> {
        Arc::new(CountingFs::new(fs, Arc::clone(&self.files)))
    }

    /// Counts a group of writes committed together, each given as its entries (an empty value is
    /// a delete, whose key still counts).
    pub fn record_group(&self, group: &[&[(&[u8], &[u8])]]) {
        let mut tally = GroupTally::default();
        for write in group {
            tally.add(&GroupTally::of(write));
        }
        self.record_tally(&tally);
    }

    /// Counts a group of writes committed together, as tallied by its members: with group
    /// commit (week 4 day 2) each writer tallies its own write when it queues, and the leader
    /// that writes the group to the log adds them up and counts the group, once it is written.
    pub fn record_tally(&self, group: &GroupTally) {
        let mut counts = self.writes.lock();
        counts.writes += group.writes;
        counts.entries += group.entries;
        counts.bytes += group.bytes;
        counts.groups += 1;
        counts.max_group = counts.max_group.max(group.writes);
    }

    /// Counts a point lookup and what it found.
    pub fn record_get(&self, found: Option<&[u8]>) {
        self.gets.fetch_add(1, Ordering::Relaxed);
        if let Some(value) = found {
            self.get_hits.fetch_add(1, Ordering::Relaxed);
            self.bytes_read
                .fetch_add(value.len() as u64, Ordering::Relaxed);
        }
    }

    /// Counts a scan, and has `iter` count every entry it hands back (the one it rests on now
    /// included) into these metrics, once it is dropped.
    pub fn count_scan(
        self: &Arc<Self>,
        iter: FusedIterator<LsmIterator>,
    ) -> FusedIterator<LsmIterator> {
        self.scans.fetch_add(1, Ordering::Relaxed);
        iter.counted(ReadTally::new(Arc::clone(self), |iter: &LsmIterator| {
            iter.key().len() + iter.value().len()
        }))
    }

    /// Counts a write that stalled: whether it was delayed, whether it had to wait, how it ended
    /// and how long all of that took on the engine's clock.
    pub fn record_stall(&self, slowed: bool, stopped: bool, outcome: StallOutcome, time: Duration) {
        let mut stalls = self.stalls.lock();
        stalls.slowed += u64::from(slowed);
        stalls.stopped += u64::from(stopped);
        stalls.timeouts += u64::from(outcome == StallOutcome::TimedOut);
        stalls.time += time;
    }

    /// Counts a flush that wrote an SST of `bytes`.
    pub fn record_flush(&self, bytes: u64) {
        let mut background = self.background.lock();
        background.flushes += 1;
        background.flush_bytes += bytes;
    }

    /// Counts a compaction that read SSTs of `read` bytes and wrote SSTs of `written` bytes.
    pub fn record_compaction(&self, read: u64, written: u64) {
        let mut background = self.background.lock();
        background.compactions += 1;
        background.compaction_read += read;
        background.compaction_written += written;
    }

    /// Reads every counter.
    pub fn stats(&self) -> Stats {
        let writes = self.writes.lock();
        let stalls = self.stalls.lock();
        let background = self.background.lock();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            writes: writes.writes,
            entries_written: writes.entries,
            bytes_written: writes.bytes,
            write_groups: writes.groups,
            max_write_group: writes.max_group,
            gets: load(&self.gets),
            get_hits: load(&self.get_hits),
            scans: load(&self.scans),
            entries_scanned: load(&self.entries_scanned),
            bytes_read: load(&self.bytes_read),
            slowed_writes: stalls.slowed,
            stopped_writes: stalls.stopped,
            stall_timeouts: stalls.timeouts,
            stall_time: stalls.time,
            flushes: background.flushes,
            flush_bytes: background.flush_bytes,
            compactions: background.compactions,
            compaction_bytes_read: background.compaction_read,
            compaction_bytes_written: background.compaction_written,
            log_bytes: self.files.log(),
            file_bytes_written: self.files.total(),
            log_syncs: self.files.log_syncs(),
        }
    }
}

/// What one scan has handed back so far, added to the engine's metrics when the scan is dropped
/// (one update per scan, not one per entry: a scan can hand back millions).
pub struct ReadTally<I> {
    metrics: Arc<Metrics>,
    /// The user bytes of the entry an iterator rests on.
    measure: fn(&I) -> usize,
    entries: u64,
    bytes: u64,
}

impl<I: StorageIterator> ReadTally<I> {
    /// A tally into `metrics`, measuring each entry with `measure`.
    pub fn new(metrics: Arc<Metrics>, measure: fn(&I) -> usize) -> Self {
        Self {
            metrics,
            measure,
            entries: 0,
            bytes: 0,
        }
    }

    /// Counts the entry `iter` rests on, if any: call it each time the iterator lands.
    pub fn land(&mut self, iter: &I) {
        if iter.is_valid() {
            self.entries += 1;
            self.bytes += (self.measure)(iter) as u64;
        }
    }
}

impl<I> Drop for ReadTally<I> {
    fn drop(&mut self) {
        let metrics = &self.metrics;
        metrics
            .entries_scanned
            .fetch_add(self.entries, Ordering::Relaxed);
        metrics.bytes_read.fetch_add(self.bytes, Ordering::Relaxed);
    }
}
