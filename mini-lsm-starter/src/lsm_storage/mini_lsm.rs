// SPDX-License-Identifier: Apache-2.0
//! [`MiniLsm`]: the engine as its users open and close it, with its background threads.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use bytes::Bytes;
use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::{
    LsmStorageInner, LsmStorageOptions, RepairReport, WriteBatchOp, WriteBatchRecord, WriteOptions,
};
use crate::compact::{CompactionFilter, CompactionOptions};
use crate::lsm_iterator::{FusedIterator, LsmIterator};
use crate::metrics::Stats;
use crate::mvcc::{Snapshot, Transaction};

/// The storage engine, with its flush thread and, from week 2, its compaction thread. Open it with
/// [`MiniLsm::open`] and end it with [`MiniLsm::close`].
pub struct MiniLsm {
    /// The engine proper; tests drive it directly for deterministic flushes.
    pub inner: Arc<LsmStorageInner>,
    /// Stops the flush thread when a message arrives or it is dropped.
    flush_stop: Sender<()>,
    /// The flush thread, until `close` joins it.
    flush_thread: Mutex<Option<JoinHandle<()>>>,
    /// Stops the compaction thread when a message arrives or it is dropped.
    compaction_stop: Sender<()>,
    /// The compaction thread (none without a compaction strategy), until `close` joins it.
    compaction_thread: Mutex<Option<JoinHandle<()>>>,
}

impl MiniLsm {
    /// Opens the engine in directory `path` (created if missing) and starts the flush thread, and
    /// the compaction thread unless the strategy is `NoCompaction`.
    ///
    /// # Errors
    /// If the options are invalid, or the directory or the thread cannot be created.
    pub fn open(path: impl AsRef<Path>, options: LsmStorageOptions) -> Result<Arc<Self>> {
        let inner = Arc::new(LsmStorageInner::open(path, options)?);
        let (flush_stop, stop_rx) = crossbeam_channel::bounded(1);
        // TODO(week 1 day 6, task 2: flush in the background and stop the thread on close (book: week1-06-write-path))
        let flush_thread = None;
        let (compaction_stop, compaction_stop_rx) = crossbeam_channel::bounded(1);
        // TODO(week 2 day 2, task 2: run one compaction step, and the compaction thread (book: week2-02-simple-leveled))
        let compaction_thread = None;
        Ok(Arc::new(Self {
            inner,
            flush_stop,
            flush_thread: Mutex::new(flush_thread),
            compaction_stop,
            compaction_thread: Mutex::new(compaction_thread),
        }))
    }

    /// Stops and joins the compaction thread and the flush thread.
    ///
    /// # Errors
    /// The sticky background error if a flush or compaction ever failed, or if a thread
    /// panicked.
    pub fn close(&self) -> Result<()> {
        // TODO(week 2 day 2, task 2: run one compaction step, and the compaction thread (book: week2-02-simple-leveled))
        // TODO(week 1 day 6, task 2: flush in the background and stop the thread on close (book: week1-06-write-path))
        self.inner.check_bg_error()?;
        // TODO(week 2 day 6, task 4: sync every log on demand and at close (book: week2-06-wal))
        // TODO(week 2 day 5, task 4: flush the memtables at close when there is no log (book: week2-05-manifest))
        Ok(())
    }

    /// Rebuilds the manifest of the database in `path` from the files that verify, moving the
    /// others into `path/quarantine/`; see [`super::repair`]. The database must not be open.
    ///
    /// # Errors
    /// As [`super::repair::repair`].
    pub fn repair(path: impl AsRef<Path>, options: LsmStorageOptions) -> Result<RepairReport> {
        super::repair::repair(path.as_ref(), &options, false)
    }

    /// See [`LsmStorageInner::get`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::get`].
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(key)
    }

    /// See [`LsmStorageInner::latest_commit_ts`].
    pub fn latest_commit_ts(&self) -> u64 {
        self.inner.latest_commit_ts()
    }

    /// See [`LsmStorageInner::stats`].
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// See [`LsmStorageInner::new_snapshot`].
    pub fn new_snapshot(&self) -> Snapshot<'_> {
        self.inner.new_snapshot()
    }

    /// See [`LsmStorageInner::new_snapshot_at`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::new_snapshot_at`].
    pub fn new_snapshot_at(&self, ts: u64) -> Result<Snapshot<'_>> {
        self.inner.new_snapshot_at(ts)
    }

    /// See [`LsmStorageInner::new_txn`].
    pub fn new_txn(&self) -> Transaction<'_> {
        self.inner.new_txn()
    }

    /// See [`LsmStorageInner::get_at`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::get_at`].
    pub fn get_at(&self, key: &[u8], ts: u64) -> Result<Option<Bytes>> {
        self.inner.get_at(key, ts)
    }

    /// See [`LsmStorageInner::scan_at`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::get_at`].
    pub fn scan_at(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        ts: u64,
    ) -> Result<FusedIterator<LsmIterator>> {
        self.inner.scan_at(lower, upper, ts)
    }

    /// See [`LsmStorageInner::add_compaction_filter`].
    pub fn add_compaction_filter(&self, filter: Arc<dyn CompactionFilter>) {
        self.inner.add_compaction_filter(filter);
    }

    /// See [`LsmStorageInner::put`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::put`].
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.inner.put(key, value)
    }

    /// See [`LsmStorageInner::delete`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::put`].
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.inner.delete(key)
    }

    /// See [`LsmStorageInner::merge`] (week 4 day 6).
    ///
    /// # Errors
    /// As [`LsmStorageInner::merge`].
    pub fn merge(&self, key: &[u8], operand: &[u8]) -> Result<()> {
        self.inner.merge(key, operand)
    }

    /// See [`LsmStorageInner::write_batch`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::write_batch`].
    pub fn write_batch<T: AsRef<[u8]>>(&self, batch: &[WriteBatchRecord<T>]) -> Result<()> {
        self.inner.write_batch(batch)
    }

    /// See [`LsmStorageInner::write_batch_ops`] (week 4 day 6).
    ///
    /// # Errors
    /// As [`LsmStorageInner::write_batch_ops`].
    pub fn write_batch_ops<T: AsRef<[u8]>>(&self, batch: &[WriteBatchOp<T>]) -> Result<()> {
        self.inner.write_batch_ops(batch)
    }

    /// See [`LsmStorageInner::put_opt`] (week 4 day 2).
    ///
    /// # Errors
    /// As [`LsmStorageInner::put_opt`].
    pub fn put_opt(&self, key: &[u8], value: &[u8], options: &WriteOptions) -> Result<()> {
        self.inner.put_opt(key, value, options)
    }

    /// See [`LsmStorageInner::delete_opt`] (week 4 day 2).
    ///
    /// # Errors
    /// As [`LsmStorageInner::put_opt`].
    pub fn delete_opt(&self, key: &[u8], options: &WriteOptions) -> Result<()> {
        self.inner.delete_opt(key, options)
    }

    /// See [`LsmStorageInner::write_batch_opt`] (week 4 day 2).
    ///
    /// # Errors
    /// As [`LsmStorageInner::write_batch_opt`].
    pub fn write_batch_opt<T: AsRef<[u8]>>(
        &self,
        batch: &[WriteBatchRecord<T>],
        options: &WriteOptions,
    ) -> Result<()> {
        self.inner.write_batch_opt(batch, options)
    }

    /// See [`LsmStorageInner::scan`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::scan`].
    pub fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<FusedIterator<LsmIterator>> {
        self.inner.scan(lower, upper)
    }

    /// See [`LsmStorageInner::scan_prefix`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::scan`].
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<FusedIterator<LsmIterator>> {
        self.inner.scan_prefix(prefix)
    }

    /// Freezes the memtable and flushes every immutable memtable, oldest first.
    ///
    /// # Errors
    /// If a flush fails.
    pub fn force_flush(&self) -> Result<()> {
        if !self.inner.snapshot().memtable.is_empty() {
            self.inner
                .force_freeze_memtable(&self.inner.state_lock.lock())?;
        }
        while !self.inner.snapshot().imm_memtables.is_empty() {
            self.inner.force_flush_next_imm_memtable()?;
        }
        Ok(())
    }

    /// See [`LsmStorageInner::sync`].
    ///
    /// # Errors
    /// As [`LsmStorageInner::sync`].
    pub fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// A human-readable picture of the memtables and SSTs.
    pub fn dump(&self) -> String {
        self.inner.dump()
    }
}

impl Drop for MiniLsm {
    /// Stops the background threads if `close` was not called; errors are dropped here, which is
    /// why `close` exists.
    fn drop(&mut self) {
        let _ = self.compaction_stop.try_send(());
        if let Some(handle) = self.compaction_thread.get_mut().take() {
            let _ = handle.join();
        }
        let _ = self.flush_stop.try_send(());
        if let Some(handle) = self.flush_thread.get_mut().take() {
            let _ = handle.join();
        }
    }
}
