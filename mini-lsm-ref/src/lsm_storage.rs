// SPDX-License-Identifier: Apache-2.0
//! The engine: its state, and the read, write and flush paths over it.
//!
//! # The state
//!
//! ```text
//!   state: StateCell = RwLock<Arc<LsmStorageState>> + a lock-free published copy
//!            │
//!            ▼
//!   ┌──────────────┬──────────────────────────┬───────────────────────┐
//!   │ memtable     │ imm_memtables            │ l0_sstables           │
//!   │ (mutable)    │ newest ──────▶ oldest    │ newest ──────▶ oldest │
//!   └──────────────┴──────────────────────────┴───────────────────────┘
//!        puts go here     flushed from the end ──▶ new SST at the front
//! ```
//!
//! The state is an immutable snapshot behind an `Arc`. A reader loads the current `Arc` without
//! a lock (see `state_cell.rs`), then reads from its snapshot; a structural change (freeze, flush)
//! copies the snapshot, edits the copy and swaps it in under the write lock, which publishes it
//! to readers. Writers putting into the memtable hold the read side, so that a freeze cannot swap
//! the memtable out from under them. So the lock is only ever held for a pointer swap or a
//! memtable insert, never for I/O, and readers never take it.
//!
//! # The two locks
//!
//! - `state` (read/write lock) guards *which* snapshot is current. Held for O(1) work.
//! - `state_lock` (mutex) serialises structural changes. A change reads the current snapshot,
//!   does its slow work, and installs a new snapshot derived from the one it read; holding
//!   `state_lock` throughout guarantees no other change installed a snapshot in between, so
//!   nothing it did is lost. Writers of entries do not take it: a put only needs the read lock, to
//!   be sure the memtable it writes into is the current one and not being frozen.
//!
//! Lock order: `compaction_lock` (week 2), then `state_lock`, then `state`. Never hold `state`
//! while waiting for `state_lock`. In week 3 a commit takes the commit lock (in [`Mvcc`]) and
//! then the read side of `state`; from week 4 day 1 the commit pipeline (`commit.rs`) takes the
//! read side of `state` first and holds it until its batch is applied, and takes the commit lock
//! inside it, for the prepare step only (nothing takes `state` under the commit lock any more).
//! A commit never takes `state_lock`: it freezes, if it must, after it published. The snapshots'
//! lock in [`Mvcc`] is taken last, around O(1) work, by anyone.
//!
//! # Invariants
//!
//! - Every key ever written is in exactly the newest of: the memtable, an immutable memtable, an
//!   L0 SST (in that order of age); reads search in that order and stop at the first hit.
//! - An immutable memtable is never written again.
//! - `imm_memtables` and `l0_sstables` are ordered newest first; a flush takes the *last*
//!   immutable memtable (the oldest) and puts its SST *first* in L0, so age order is kept.
//!
//! From week 2, compaction (`compact.rs`, and the controllers in [`crate::compact`]) merges SSTs
//! into `levels`: sorted runs below L0, searched after it, top level first. It is a third kind
//! of structural change, under the same two locks, plus `compaction_lock`, which makes
//! compactions run one at a time.
//!
//! Left out in week 1, and what it costs: no write-ahead log (a crash loses the memtables), no
//! manifest (reopening starts empty), no compaction (L0 grows without bound, and so does the
//! number of SSTs a read may touch). Week 2 adds all three.

mod commit;
mod compact;
mod flush;
mod mini_lsm;
mod options;
mod read;
mod recovery;
pub mod repair;
mod stall;
mod state_cell;
mod write;
mod write_buffer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use anyhow::{anyhow, bail, Context, Result};
use parking_lot::{Mutex, MutexGuard, RwLock};

use commit::CommitQueue;
pub use commit::WriteOptions;
pub use mini_lsm::MiniLsm;
pub use options::{LsmStorageOptions, RecoveryMode};
pub use repair::RepairReport;
pub use stall::{Pressure, StallCause};
pub(crate) use write::check_entry_size;
use write::FlushSignal;
pub use write::{WriteBatchOp, WriteBatchRecord};
pub use write_buffer::{MemoryUse, WriteBufferManager};

use crate::block_cache::BlockCache;
use crate::clock::Wake;
pub use crate::compact::CompactionOptions;
use crate::compact::{CompactionController, CompactionFilter};
use crate::id_hash::IdMap;
use crate::manifest::{Manifest, ManifestRecord};
use crate::mem_table::MemTable;
use crate::metrics::{Metrics, Stats};
use crate::mvcc::{Isolation, Mvcc, Snapshot, Transaction};
use crate::table::{sst_path, SsTable};
use crate::wal::wal_path;
pub use crate::wal::{SyncMode, WalMode};
use state_cell::StateCell;

// ANCHOR: lsm_storage_state
/// One consistent view of the engine's memtables and SSTs.
#[derive(Clone)]
pub struct LsmStorageState {
    /// The memtable that takes writes.
    pub memtable: Arc<MemTable>,
    /// Frozen memtables waiting to be flushed, newest first.
    pub imm_memtables: Vec<Arc<MemTable>>,
    /// L0 SST ids, newest first. Their key ranges may overlap.
    pub l0_sstables: Vec<usize>,
    /// Levels below L0 as `(level, SST ids)`, top level first, each sorted by key (a sorted run);
    /// with tiered compaction, tiers as `(tier id, SST ids)`, newest first. Empty in week 1.
    pub levels: Vec<(usize, Vec<usize>)>,
    /// Every live SST by id.
    pub sstables: IdMap<usize, Arc<SsTable>>,
}
// ANCHOR_END: lsm_storage_state

impl LsmStorageState {
    fn create(memtable: MemTable, levels: Vec<(usize, Vec<usize>)>) -> Self {
        Self {
            memtable: Arc::new(memtable),
            imm_memtables: Vec::new(),
            l0_sstables: Vec::new(),
            levels,
            sstables: IdMap::default(),
        }
    }

    /// The SST with id `id`.
    ///
    /// # Errors
    /// If the state lists an id it has no table for, which would be a bug in a state change.
    pub fn table(&self, id: usize) -> Result<&Arc<SsTable>> {
        self.sstables
            .get(&id)
            .ok_or_else(|| anyhow!("SST {id} is listed in the state but not open"))
    }
}

// ANCHOR: new_memtable
/// A new, empty memtable `id`: with a write-ahead log in `dir` when the options enable one (its
/// name made durable at once, so that recovery finds it), without otherwise.
///
/// # Errors
/// If the log cannot be created or the directory synced.
pub(crate) fn new_memtable(options: &LsmStorageOptions, dir: &Path, id: usize) -> Result<MemTable> {
    // @task week2_day6 3
    if !options.enable_wal {
        return Ok(MemTable::create(id));
    }
    let memtable = MemTable::create_with_wal(id, &*options.fs, &wal_path(dir, id))?;
    memtable.set_wal_mode(options.wal_mode);
    options.fs.sync_dir(dir)?;
    Ok(memtable)
    // @stub
    // Ok(MemTable::create(id))
    // @end
}
// ANCHOR_END: new_memtable

// ANCHOR: lsm_storage_inner
/// The storage engine proper; [`MiniLsm`] wraps it with the background flush thread.
pub struct LsmStorageInner {
    /// The current snapshot of the state (see the module docs): locked to swap it, published
    /// for readers to load without a lock.
    pub(crate) state: Arc<StateCell>,
    /// Serialises structural changes to `state` (freeze, flush, compaction install); see the
    /// module docs.
    pub(crate) state_lock: Mutex<()>,
    /// Serialises compactions, held for a whole step: a compaction's inputs stay where it found
    /// them until it installs its outputs. Taken before `state_lock`, never while holding it.
    pub(crate) compaction_lock: Mutex<()>,
    /// The strategy's pure decision-maker (see [`crate::compact`]).
    pub(crate) compaction_controller: CompactionController,
    path: PathBuf,
    pub(crate) block_cache: Arc<BlockCache>,
    next_sst_id: AtomicUsize,
    pub(crate) options: Arc<LsmStorageOptions>,
    /// Where stalled writers wait for room; every flush (and, from week 4, every compaction
    /// install and every advance of a fake clock) notifies it (see [`FlushSignal`]).
    pub(crate) flush_done: Arc<FlushSignal>,
    /// The memory budget's decisions (week 4 day 5).
    pub(crate) write_buffer: WriteBufferManager,
    /// What the engine did since it opened (week 4 day 7); every file goes through its counter.
    pub(crate) metrics: Arc<Metrics>,
    /// Set once a background flush or compaction has failed; the fast check on the write path.
    has_bg_error: AtomicBool,
    /// The first background error, kept forever: every later write and `close` return it.
    bg_error: Mutex<Option<String>>,
    /// The log of state changes (week 2 day 5); `None` before that chapter.
    manifest: Option<Manifest>,
    /// What `open` had to repair or drop (torn log tails, stray files), one line each.
    recovery_report: Vec<String>,
    /// Commit timestamps (week 3), and from week 4 day 1 the prepare and publish steps of the
    /// commit pipeline.
    pub(crate) mvcc: Mvcc,
    /// The writers waiting for their log records, and the sticky log error (week 4 days 2-3;
    /// see `commit.rs`).
    pub(crate) commit_queue: Arc<CommitQueue>,
    /// The compaction filters added so far (week 3 day 7); each compaction reads them when it
    /// starts.
    compaction_filters: RwLock<Vec<Arc<dyn CompactionFilter>>>,
}
// ANCHOR_END: lsm_storage_inner

impl LsmStorageInner {
    // ANCHOR: inner_open
    // ANCHOR: open
    /// Opens the engine in directory `path`, recovering what the manifest and the logs hold.
    ///
    /// # Errors
    /// If the options are invalid, the directory cannot be created, or recovery fails (a corrupt
    /// manifest, SST or log: the error names the file).
    pub fn open(path: impl AsRef<Path>, mut options: LsmStorageOptions) -> Result<Self> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        // Every byte written to a file from here on is counted (week 4 day 7).
        let metrics = Metrics::new();
        options.fs = metrics.counting_fs(Arc::clone(&options.fs));
        // @task week1_day6 1 stub=comment
        options.fs.create_dir_all(&path)?;
        // @end
        let compaction_controller = CompactionController::new(&options.compaction_options);
        let block_cache = Arc::new(BlockCache::new(options.block_cache_bytes));
        // @task week2_day5 2
        let recovered = recovery::recover(&path, &options, &block_cache, &compaction_controller)
            .with_context(|| format!("cannot recover the database in {}", path.display()))?;
        // @stub
        // let recovered = recovery::Recovered::fresh(compaction_controller.initial_levels());
        // @end
        for line in &recovered.report {
            eprintln!("mini-lsm: recovery of {}: {line}", path.display());
        }
        let write_buffer = WriteBufferManager::new(options.memory_budget);
        let flush_done = Arc::new(FlushSignal::default());
        // A fake clock wakes the stalled writers when a test moves it (week 4 day 4).
        options
            .clock
            .on_advance(Arc::downgrade(&flush_done) as Weak<dyn Wake>);
        // And the writers waiting in the commit pipeline (week 4 days 1-2).
        let mvcc = Mvcc::new(recovered.latest_commit_ts);
        let commit_queue = Arc::new(CommitQueue::default());
        let publisher = mvcc.publisher();
        options
            .clock
            .on_advance(Arc::downgrade(&publisher) as Weak<dyn Wake>);
        options
            .clock
            .on_advance(Arc::downgrade(&commit_queue) as Weak<dyn Wake>);
        Ok(Self {
            state: Arc::new(StateCell::new(recovered.state)),
            state_lock: Mutex::new(()),
            compaction_lock: Mutex::new(()),
            compaction_controller,
            block_cache,
            path,
            next_sst_id: AtomicUsize::new(recovered.next_sst_id),
            options: Arc::new(options),
            flush_done,
            write_buffer,
            metrics,
            has_bg_error: AtomicBool::new(false),
            bg_error: Mutex::new(None),
            manifest: recovered.manifest,
            recovery_report: recovered.report,
            mvcc,
            commit_queue,
            compaction_filters: RwLock::new(Vec::new()),
        })
    }
    // ANCHOR_END: open

    /// What `open` repaired or dropped, one line each: torn log tails, stray files removed.
    pub fn recovery_report(&self) -> &[String] {
        &self.recovery_report
    }

    // ANCHOR: log_change
    /// Appends `record` to the manifest, if the engine keeps one. Requires `state_lock`.
    ///
    /// # Errors
    /// If the manifest cannot be written; the change must then not be made visible.
    pub(crate) fn log_change(
        &self,
        state_lock: &MutexGuard<'_, ()>,
        record: &ManifestRecord,
    ) -> Result<()> {
        match &self.manifest {
            Some(manifest) => manifest.add_record(state_lock, record),
            None => Ok(()),
        }
    }
    // ANCHOR_END: log_change

    // ANCHOR: remove_wal
    /// Deletes memtable `id`'s log, once its data is in an SST the manifest lists.
    ///
    /// # Errors
    /// If the file exists and cannot be removed.
    pub(crate) fn remove_wal(&self, id: usize) -> Result<()> {
        let path = wal_path(&self.path, id);
        if self.options.fs.exists(&path) {
            self.options.fs.remove(&path)?;
        }
        Ok(())
    }
    // ANCHOR_END: remove_wal
    // ANCHOR_END: inner_open

    /// A fresh id for a memtable and the SST it becomes.
    pub(crate) fn next_sst_id(&self) -> usize {
        self.next_sst_id.fetch_add(1, Ordering::SeqCst)
    }

    // ANCHOR: reserve_sst_id
    /// A fresh id for a compaction output, written down in the manifest (if the engine keeps one)
    /// before any file with it exists: a crash then never leaves a file whose id `open` does not
    /// know.
    ///
    /// # Errors
    /// If the manifest cannot be written; no file may then be created with the id.
    pub(crate) fn reserve_sst_id(&self) -> Result<usize> {
        let id = self.next_sst_id();
        if let Some(manifest) = &self.manifest {
            manifest.reserve(id)?;
        }
        Ok(id)
    }
    // ANCHOR_END: reserve_sst_id

    // ANCHOR: vouch_for_log
    /// Syncs the log of the memtable taking writes and records in the manifest how long it is
    /// (`LogSynced`): `close` calls it, so that after a clean close every log is vouched for, and
    /// one cut short is an error at the next `open` rather than a shorter history. A no-op
    /// without a log or a manifest.
    ///
    /// # Errors
    /// If the log cannot be synced or the manifest written.
    pub(crate) fn vouch_for_log(&self) -> Result<()> {
        let state_lock = self.state_lock.lock();
        let memtable = self.snapshot().memtable.clone();
        if let (Some(wal), Some(_)) = (memtable.wal(), &self.manifest) {
            let len = wal.seal()?;
            let record = ManifestRecord::LogSynced {
                id: memtable.id(),
                len,
            };
            self.log_change(&state_lock, &record)?;
        }
        Ok(())
    }
    // ANCHOR_END: vouch_for_log

    // ANCHOR: seal_log
    /// Records what the manifest vouches for a memtable's log: for `frozen`, which takes no more
    /// writes, its log is synced and its final length sealed; for `new`, sealed at 0 if it has no
    /// log, so that a later `open` with the log on does not look for one. Requires `state_lock`.
    ///
    /// # Errors
    /// If the log cannot be synced or the manifest written.
    pub(crate) fn seal_logs(
        &self,
        state_lock: &MutexGuard<'_, ()>,
        frozen: &MemTable,
        new: &MemTable,
    ) -> Result<()> {
        if self.manifest.is_none() {
            return Ok(());
        }
        if let Some(wal) = frozen.wal() {
            let len = wal.seal()?;
            let id = frozen.id();
            self.log_change(state_lock, &ManifestRecord::LogSealed { id, len })?;
        }
        if !new.has_log() {
            let id = new.id();
            self.log_change(state_lock, &ManifestRecord::LogSealed { id, len: 0 })?;
        }
        Ok(())
    }
    // ANCHOR_END: seal_log

    /// Where SST `id` lives.
    pub(crate) fn path_of_sst(&self, id: usize) -> PathBuf {
        sst_path(&self.path, id)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The latest commit timestamp (week 3): every write at or below it is wholly applied, and
    /// reads see exactly those. 0 before the first commit (and before week 3 day 3).
    pub fn latest_commit_ts(&self) -> u64 {
        self.mvcc.latest_commit_ts()
    }

    /// The watermark (week 3 day 4): the oldest live snapshot's read timestamp, or the latest
    /// commit timestamp when no snapshot lives. Compaction keeps every version a reader at or
    /// above it can see.
    pub fn watermark(&self) -> u64 {
        self.mvcc.watermark()
    }

    // ANCHOR: new_snapshot
    /// A snapshot of the engine as of the latest commit (week 3 day 4): its reads see exactly the
    /// commits up to now, for as long as it lives.
    pub fn new_snapshot(&self) -> Snapshot<'_> {
        // @task week3_day4 2
        Snapshot::registered(self, self.mvcc.register_read())
        // @end
    }
    // ANCHOR_END: new_snapshot

    // ANCHOR: new_snapshot_at
    /// A snapshot of the engine as of `ts`, an older commit timestamp (time travel, week 3 day
    /// 7): its reads see exactly the commits up to `ts`, for as long as it lives, and it holds the
    /// watermark at `ts` meanwhile.
    ///
    /// # Errors
    /// A [`crate::mvcc::TimeTravelError`] (find it with `downcast_ref`) if `ts` is below the watermark (the
    /// versions a reader there sees may be gone) or above the latest commit.
    pub fn new_snapshot_at(&self, ts: u64) -> Result<Snapshot<'_>> {
        // @task week3_day7 2
        self.mvcc.register_read_at(ts)?;
        Ok(Snapshot::registered(self, ts))
        // @end
    }
    // ANCHOR_END: new_snapshot_at

    // ANCHOR: new_txn
    /// Begins a transaction (week 3 day 5) reading as of the latest commit, validated at its
    /// commit as the `isolation` option says (from week 3 day 6).
    pub fn new_txn(&self) -> Transaction<'_> {
        // @task week3_day5 1
        // @task week3_day6 2
        let isolation = self.options.isolation;
        let snapshot = match isolation {
            Isolation::Unvalidated => self.new_snapshot(),
            // Registered among the live transactions, so that later commits keep their keys.
            Isolation::Snapshot | Isolation::Serializable => {
                Snapshot::registered(self, self.mvcc.register_txn())
            }
        };
        Transaction::new(self, snapshot, isolation)
        // @or week3_day5 1
        // Transaction::new(self, self.new_snapshot(), Isolation::Unvalidated)
        // @end
        // @end
    }
    // ANCHOR_END: new_txn

    // ANCHOR: add_compaction_filter
    /// Adds a compaction filter (week 3 day 7): every compaction that starts from now on drops
    /// the keys it names, at or below the watermark (see [`crate::compact::CompactionFilter`]).
    /// Filters are not persisted: add them again after `open`.
    pub fn add_compaction_filter(&self, filter: Arc<dyn CompactionFilter>) {
        self.compaction_filters.write().push(filter);
    }

    /// The compaction filters added so far.
    pub(crate) fn compaction_filters(&self) -> Vec<Arc<dyn CompactionFilter>> {
        self.compaction_filters.read().clone()
    }
    // ANCHOR_END: add_compaction_filter

    /// What the engine did since it opened: writes, reads, stalls, flushes, compactions and the
    /// bytes of each, counted once (week 4 day 7; see [`crate::metrics`]).
    pub fn stats(&self) -> Stats {
        self.metrics.stats()
    }

    // ANCHOR: snapshot
    /// The current state snapshot, loaded without a lock (see `state_cell.rs`).
    pub fn snapshot(&self) -> Arc<LsmStorageState> {
        self.state.load()
    }
    // ANCHOR_END: snapshot

    // ANCHOR: sync
    /// Makes every write acknowledged so far durable, by syncing the log of every memtable; a
    /// no-op without logs.
    ///
    /// # Errors
    /// If a log cannot be written or synced.
    pub fn sync(&self) -> Result<()> {
        // @task week2_day6 4
        // @task week4_day3 2 stub=comment
        if let Some(error) = self.commit_queue.sticky_error() {
            bail!(
                "cannot sync: an earlier log write failed, so the log's tail is unknown: {error}"
            );
        }
        // @end
        let snapshot = self.snapshot();
        // Oldest first: a crash in the middle then leaves older writes durable and newer ones
        // not, never the reverse, so that what recovery finds is a prefix of the history.
        let oldest_first = snapshot.imm_memtables.iter().rev();
        for memtable in oldest_first.chain(std::iter::once(&snapshot.memtable)) {
            memtable.sync_wal()?;
        }
        Ok(())
        // @stub
        // Ok(())
        // @end
    }
    // ANCHOR_END: sync

    // ANCHOR: record_bg_error
    /// Keeps the first background error, and wakes stalled writers so they see it.
    pub(crate) fn record_bg_error(&self, error: anyhow::Error) {
        self.record_failure(format!(
            "a background flush or compaction failed: {error:#}"
        ));
    }

    /// Keeps a failed log write or sync as the engine's sticky error (week 4 day 3): every later
    /// write and `close` return it.
    pub(crate) fn record_log_error(&self, error: &str) {
        self.record_failure(format!("a log write or sync failed: {error}"));
    }

    /// Keeps `failure` if it is the first, and wakes stalled writers so they see it.
    fn record_failure(&self, failure: String) {
        let mut slot = self.bg_error.lock();
        if slot.is_none() {
            *slot = Some(failure);
            self.has_bg_error.store(true, Ordering::Release);
        }
        drop(slot);
        self.notify_flush_done();
    }
    // ANCHOR_END: record_bg_error

    // ANCHOR: check_bg_error
    /// Returns the background error, if a background flush or compaction has ever failed (or,
    /// from week 4 day 3, a log write or sync).
    ///
    /// # Errors
    /// The sticky background error.
    pub fn check_bg_error(&self) -> Result<()> {
        if !self.has_bg_error.load(Ordering::Acquire) {
            return Ok(());
        }
        match &*self.bg_error.lock() {
            Some(message) => Err(anyhow!(
                "the engine refuses writes since an earlier failure: {message}"
            )),
            None => Ok(()),
        }
    }
    // ANCHOR_END: check_bg_error

    /// Wakes every writer stalled in `wait_for_room`.
    pub(crate) fn notify_flush_done(&self) {
        self.flush_done.notify_all();
    }
}
