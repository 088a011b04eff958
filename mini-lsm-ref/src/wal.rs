// SPDX-License-Identifier: Apache-2.0
//! The write-ahead log: every write reaches a log file before the memtable, so that a crash does
//! not lose what the memtable held.
//!
//! Each memtable has its own log, `<id>.wal`. A write appends one record (a whole batch, so that a
//! batch is recovered all or nothing) and then goes into the memtable. The log is deleted only
//! after the memtable's SST is durable and the manifest says so; until then `open` replays it.
//!
//! ```text
//!   put ──▶ [ wal 8 ] ──▶ [ memtable 8 ]      freeze ──▶ new wal 9 + memtable 9
//!           flush of memtable 8 recorded in the manifest ──▶ delete wal 8
//! ```
//!
//! Only a sync makes a write durable: a power loss may lose writes that were acknowledged but not
//! synced. That is the bargain of not syncing every write, and `MiniLsm::sync` is how a caller
//! closes it. Before the sync, [`WalMode`] says how far an acknowledged write has gone:
//!
//! ```text
//!   put ──▶ buffer in the process ──write(2)──▶ OS page cache ──fsync──▶ disk
//!           Buffered: until 64 KiB   WriteEachBatch: before put returns   sync: both modes
//!           lost by a process crash  kept by a process crash, lost by a power loss
//! ```
//!
//! `Buffered` makes the fewest system calls; `WriteEachBatch` is what RocksDB and fjall do by
//! default (a write(2) per write, no sync), so that killing the process loses nothing it
//! acknowledged.
//!
//! # Format
//!
//! The file is a log of records (see [`crate::record`]); each payload is a group of batches
//! (big-endian):
//!
//! ```text
//! payload := batch+                                                             (week 4 day 2)
//! batch   := ts:u64  count:u32  (key_len:u16 key value_len:u16 value){n}  [kind:u8{n}]
//!            n = count & 0x7FFF_FFFF; the kind column is there iff count & 0x8000_0000
//!                                                         (the kind column: week 4 day 6)
//! payload := ts:u64  count:u32  (key_len:u16 key value_len:u16 value){count}    (week 3 day 3)
//! payload := count:u32  (key_len:u16 key value_len:u16 value){count}           (before it)
//! ```
//!
//! An empty value deletes. `ts` is the batch's commit timestamp: every entry of a batch is a
//! version at that one timestamp, which is how a batch stays one commit after a crash. From week
//! 4 day 2 a record holds the batches of one commit group, in timestamp order, so that a group is
//! recovered all or nothing, as one record is; a week 3 record is a group of one batch, and reads
//! the same.
//!
//! `kind` (week 4 day 6) is entry i's [`ValueKind`] tag (0 put, 1 delete, 2 merge operand), in
//! a column after the entries, present only in a batch with a merge operand, and flagged by the
//! top bit of `count` ([`KIND_COLUMN`]) so that each batch of a group says where it ends. Every
//! batch without an operand keeps the bytes it had; a reader of week 3 refuses a batch with one
//! (its count is absurd, the batch is "cut short") rather than replay an operand as a value.
//!
//! # Sync modes (week 4 day 2)
//!
//! Each write says how durable it must be before it returns, with a [`SyncMode`]: buffered in
//! the process, written to the OS, or synced to the disk. A group is written as far as its most
//! demanding member asked: a write that asked for a sync never returns from a group that did not
//! sync.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use bytes::{Buf, BufMut};
use parking_lot::Mutex;

use crate::fs::{FileSystem, WritableFile};
use crate::key::{KeySlice, TS_DEFAULT};
use crate::merge::ValueKind;
use crate::record::{decode_records, encode_record, salvage_records};

/// With [`WalMode::Buffered`], appends reach the file once this many bytes are buffered.
const BUFFER_LIMIT: usize = 64 << 10;

/// How far a write has gone when `put` returns (before any sync; see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalMode {
    /// Batches collect in a 64 KiB buffer in the process, written to the file when it fills or
    /// on `sync`: the fewest system calls, but a process crash loses what the buffer holds.
    #[default]
    Buffered,
    /// Each batch is written to the file (one write(2), to the OS's page cache) before the write
    /// returns: a process crash loses no acknowledged write; a power loss still may.
    WriteEachBatch,
}

impl WalMode {
    /// The bytes a log buffers before it writes them out: 0 writes out every batch.
    fn buffer_limit(self) -> usize {
        match self {
            Self::Buffered => BUFFER_LIMIT,
            Self::WriteEachBatch => 0,
        }
    }
}

// ANCHOR: sync_mode
/// How durable a write is when it returns (week 4 day 2); ordered from the least to the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncMode {
    /// In the log's buffer in the process, written out once 64 KiB collect or at `sync`: a
    /// process crash may lose it.
    Buffered,
    /// Written to the OS (its page cache) before the write returns: a process crash keeps it, a
    /// power loss may not.
    Os,
    /// Written and synced to the disk (fsync) before the write returns: a power loss keeps it.
    Fsync,
}
// ANCHOR_END: sync_mode

impl From<WalMode> for SyncMode {
    /// The sync mode of the engine-wide [`WalMode`]: what a write without options gets.
    fn from(mode: WalMode) -> Self {
        match mode {
            WalMode::Buffered => Self::Buffered,
            WalMode::WriteEachBatch => Self::Os,
        }
    }
}

/// The file name of memtable `id`'s log in the database directory.
pub fn wal_path(dir: &Path, id: usize) -> PathBuf {
    dir.join(format!("{id:05}.wal"))
}

/// An open write-ahead log.
pub struct Wal {
    /// The file and the bytes not yet written to it; guarded together so that records reach the
    /// file whole and in order.
    inner: Mutex<WalInner>,
    path: PathBuf,
}

struct WalInner {
    file: Box<dyn WritableFile>,
    buffer: Vec<u8>,
    /// Scratch space for the payload of the record being appended.
    payload: Vec<u8>,
    /// The buffer is written out once it holds at least this many bytes (see [`WalMode`]).
    buffer_limit: usize,
    /// The log of the memtable frozen just before this one, until it is known to be synced:
    /// nothing of this log may reach the disk before all of that one is durable, or a crash could
    /// keep newer writes and lose older ones.
    predecessor: Option<Arc<Wal>>,
    /// Bytes handed to the file so far (by `write_out`): after a sync, the log's durable length,
    /// which the manifest records when the memtable is frozen (see [`Wal::seal`]).
    written: u64,
}

/// What replaying a log found besides its entries.
#[derive(Debug, Default)]
pub struct WalReplay {
    /// Batches replayed.
    pub batches: usize,
    /// The offset of a dropped, incomplete last record.
    pub torn_tail_at: Option<usize>,
    /// The largest commit timestamp of a replayed batch (week 3 day 3; 0 before, or if none).
    pub max_ts: u64,
}

impl Wal {
    /// Creates an empty log at `path`, in [`WalMode::Buffered`]. Its name is durable once the
    /// caller syncs the directory.
    ///
    /// # Errors
    /// If the file cannot be created.
    pub fn create(fs: &dyn FileSystem, path: &Path) -> Result<Self> {
        Ok(Self {
            inner: Mutex::new(WalInner {
                file: fs.create(path)?,
                buffer: Vec::new(),
                payload: Vec::new(),
                buffer_limit: WalMode::Buffered.buffer_limit(),
                predecessor: None,
                written: 0,
            }),
            path: path.to_path_buf(),
        })
    }

    /// Sets how far each batch goes before `put_batch` returns (see [`WalMode`]).
    pub fn set_mode(&self, mode: WalMode) {
        self.inner.lock().buffer_limit = mode.buffer_limit();
    }

    // ANCHOR: wal_recover
    /// Replays the log at `path`, handing every entry to `apply`, batch by batch, in order.
    ///
    /// # Errors
    /// If the file cannot be read, a record in the middle is corrupt, or a batch does not parse;
    /// the error names the file.
    pub fn replay(
        fs: &dyn FileSystem,
        path: &Path,
        mut apply: impl FnMut(&[u8], &[u8]),
    ) -> Result<WalReplay> {
        // @task week3_day3 1
        Self::replay_at(fs, path, |key, value| apply(key.key_ref(), value))
        // @or week2_day6 1
        // let data = fs.read_all(path)?;
        // let log = decode_records(path, &data)?;
        // for (i, payload) in log.payloads.iter().enumerate() {
        //     let batch = decode_batch(payload)
        //         .with_context(|| format!("{}: batch {i} is corrupt", path.display()))?;
        //     for (key, value, _) in batch {
        //         apply(key, value);
        //     }
        // }
        // Ok(WalReplay {
        //     batches: log.payloads.len(),
        //     torn_tail_at: log.torn_tail_at,
        //     max_ts: 0,
        // })
        // @end
    }

    /// Replays the log at `path`, handing every entry to `apply` with its batch's commit timestamp
    /// (week 3), batch by batch, in order.
    ///
    /// # Errors
    /// As [`Self::replay`].
    pub fn replay_at(
        fs: &dyn FileSystem,
        path: &Path,
        mut apply: impl FnMut(KeySlice, &[u8]),
    ) -> Result<WalReplay> {
        // @task week4_day6 1
        Self::replay_kinds_at(fs, path, |key, value, _| apply(key, value))
        // @or week3_day3 1
        // let data = fs.read_all(path)?;
        // let log = decode_records(path, &data)?;
        // let mut max_ts = 0;
        // let mut batches = 0;
        // for (i, payload) in log.payloads.iter().enumerate() {
        //     let group = parse_group(payload)
        //         .with_context(|| format!("{}: record {i} is corrupt", path.display()))?;
        //     for (ts, batch) in group {
        //         max_ts = max_ts.max(ts);
        //         batches += 1;
        //         for (key, value, _) in batch {
        //             apply(KeySlice::from_slice_ts(key, ts), value);
        //         }
        //     }
        // }
        // Ok(WalReplay {
        //     batches,
        //     torn_tail_at: log.torn_tail_at,
        //     max_ts,
        // })
        // @end
    }

    /// Replays the log at `path`, handing every entry to `apply` with its batch's commit
    /// timestamp and its kind (week 4 day 6), batch by batch, in order.
    ///
    /// # Errors
    /// As [`Self::replay`].
    pub fn replay_kinds_at(
        fs: &dyn FileSystem,
        path: &Path,
        mut apply: impl FnMut(KeySlice, &[u8], ValueKind),
    ) -> Result<WalReplay> {
        // @task week4_day6 1
        let data = fs.read_all(path)?;
        let log = decode_records(path, &data)?;
        let mut max_ts = 0;
        let mut batches = 0;
        for (i, payload) in log.payloads.iter().enumerate() {
            let group = parse_group(payload)
                .with_context(|| format!("{}: record {i} is corrupt", path.display()))?;
            for (ts, batch) in group {
                max_ts = max_ts.max(ts);
                batches += 1;
                for (key, value, kind) in batch {
                    apply(KeySlice::from_slice_ts(key, ts), value, kind);
                }
            }
        }
        Ok(WalReplay {
            batches,
            torn_tail_at: log.torn_tail_at,
            max_ts,
        })
        // @end
    }
    // ANCHOR_END: wal_recover

    // ANCHOR: wal_put
    /// Appends one batch as one record, written out at once or once `buffer_limit` bytes are
    /// buffered, as the log's [`WalMode`] says. Durable after [`Wal::sync`]. (From week 3 day 3,
    /// at [`TS_DEFAULT`]: see [`Self::put_batch_at`].)
    ///
    /// # Errors
    /// If the buffer had to be written out and the write failed.
    pub fn put_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()> {
        // @task week3_day3 1
        self.put_batch_at(batch, TS_DEFAULT)
        // @or week2_day6 1
        // let mut inner = self.inner.lock();
        // // The payload is built in a buffer the log keeps, not a fresh `Vec` per put: one
        // // allocation and free less on every write.
        // let WalInner {
        //     buffer, payload, ..
        // } = &mut *inner;
        // payload.clear();
        // payload.put_u32(batch.len() as u32);
        // for (key, value) in batch {
        //     payload.put_u16(key.len() as u16);
        //     payload.put_slice(key);
        //     payload.put_u16(value.len() as u16);
        //     payload.put_slice(value);
        // }
        // encode_record(buffer, payload);
        // if payload.capacity() > BUFFER_LIMIT {
        //     *payload = Vec::new(); // Do not keep a huge batch's worth of memory.
        // }
        // if inner.buffer.len() >= inner.buffer_limit {
        //     inner.write_out()?;
        // }
        // Ok(())
        // @end
    }

    /// Appends one batch as one record, with its commit timestamp `ts` (week 3), written out as
    /// the log's [`WalMode`] says. Durable after [`Wal::sync`].
    ///
    /// # Errors
    /// If the buffer had to be written out and the write failed.
    pub fn put_batch_at(&self, batch: &[(&[u8], &[u8])], ts: u64) -> Result<()> {
        // @task week4_day6 1
        self.put_batch_kinds_at(batch, &[], ts)
        // @or week3_day3 1
        // let mut inner = self.inner.lock();
        // // The payload is built in a buffer the log keeps, not a fresh `Vec` per put: one
        // // allocation and free less on every write.
        // let WalInner {
        //     buffer, payload, ..
        // } = &mut *inner;
        // payload.clear();
        // payload.put_u64(ts);
        // payload.put_u32(batch.len() as u32);
        // for (key, value) in batch {
        //     payload.put_u16(key.len() as u16);
        //     payload.put_slice(key);
        //     payload.put_u16(value.len() as u16);
        //     payload.put_slice(value);
        // }
        // encode_record(buffer, payload);
        // if payload.capacity() > BUFFER_LIMIT {
        //     *payload = Vec::new(); // Do not keep a huge batch's worth of memory.
        // }
        // if inner.buffer.len() >= inner.buffer_limit {
        //     inner.write_out()?;
        // }
        // Ok(())
        // @end
    }

    /// [`Self::put_batch_at`] for a batch whose entries have kinds (week 4 day 6): `kinds` has
    /// one per entry, or is empty for a batch of puts and tombstones (the empty value). The kind
    /// column is written only if one of them is a merge operand (see the module docs).
    ///
    /// # Errors
    /// As [`Self::put_batch_at`].
    pub fn put_batch_kinds_at(
        &self,
        batch: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        ts: u64,
    ) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.buffer_record(batch, kinds, ts);
        if inner.buffer.len() >= inner.buffer_limit {
            inner.write_out()?;
        }
        Ok(())
    }

    /// Writes out the buffer and syncs the file: every batch put so far is durable.
    ///
    /// # Errors
    /// If the write or the sync fails.
    pub fn sync(&self) -> Result<()> {
        // @task week2_day6 1
        let mut inner = self.inner.lock();
        inner.write_out()?;
        inner
            .file
            .sync()
            .with_context(|| format!("syncing {}", self.path.display()))
        // @end
    }
    // ANCHOR_END: wal_put

    // ANCHOR: wal_append_group
    /// Appends the batches of one commit group, `batches` (each encoded by [`encode_batch`], in
    /// timestamp order), as one record, and takes it as far as `sync` says: left in the buffer
    /// (written out once it holds 64 KiB), written to the file, or written and synced
    /// (week 4 day 2).
    ///
    /// # Errors
    /// If the write or the sync fails: the group's records may then be in the file in part, and
    /// the log takes no more writes (see `lsm_storage/commit.rs`).
    pub fn append_group(&self, batches: &[u8], sync: SyncMode) -> Result<()> {
        // @task week4_day2 2
        let mut inner = self.inner.lock();
        encode_record(&mut inner.buffer, batches);
        inner.take_as_far_as(sync, &self.path)
        // @end
    }

    /// Appends one batch as a record of its own (a group of one) to the buffer, encoded straight
    /// into it, without writing anything: the fast path of a writer alone (see
    /// `lsm_storage/commit.rs`). Returns whether the buffer must be written out for `sync`:
    /// then the caller calls [`Self::write_buffered`].
    pub fn buffer_batch(
        &self,
        batch: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        ts: u64,
        sync: SyncMode,
    ) -> bool {
        let mut inner = self.inner.lock();
        inner.buffer_record(batch, kinds, ts);
        inner.must_write_out(sync)
    }

    /// Takes what the buffer holds as far as `sync` says (see [`Self::append_group`]).
    ///
    /// # Errors
    /// As [`Self::append_group`].
    pub fn write_buffered(&self, sync: SyncMode) -> Result<()> {
        self.inner.lock().take_as_far_as(sync, &self.path)
    }
    // ANCHOR_END: wal_append_group

    // ANCHOR: wal_follow
    /// Makes this log wait for `predecessor`: before any of this log's bytes reach its file,
    /// `predecessor` is synced. Called at a freeze with the frozen memtable's log, which takes no
    /// more writes, so the logs reach the disk in the order of the writes.
    pub fn follow(&self, predecessor: Arc<Wal>) {
        self.inner.lock().predecessor = Some(predecessor);
    }
    // ANCHOR_END: wal_follow

    // ANCHOR: wal_seal
    /// Writes out the buffer, syncs the file, and returns its length: every byte up to it is
    /// durable. Called when the memtable is frozen (it takes no more writes, so the length is
    /// final and the manifest can vouch for it) and by `close`.
    ///
    /// # Errors
    /// If the write or the sync fails.
    pub fn seal(&self) -> Result<u64> {
        let mut inner = self.inner.lock();
        inner.write_out()?;
        inner
            .file
            .sync()
            .with_context(|| format!("syncing {}", self.path.display()))?;
        Ok(inner.written)
    }
    // ANCHOR_END: wal_seal

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

// ANCHOR: wal_salvage
/// What a repair can keep of a log: its bytes, and how many of them (and how many batches) lie
/// before the first record that is cut, damaged or does not parse as a batch.
#[derive(Debug)]
pub struct WalSalvage {
    /// The whole file.
    pub data: Vec<u8>,
    /// The length of the prefix worth keeping.
    pub keep: usize,
    /// The batches in that prefix.
    pub batches: usize,
    /// The largest commit timestamp of those batches (week 3 day 3; 0 before).
    pub max_ts: u64,
}

impl Wal {
    /// Reads the log at `path` and finds what of it a repair can keep (see [`WalSalvage`]).
    ///
    /// # Errors
    /// If the file cannot be read.
    pub fn salvage(fs: &dyn FileSystem, path: &Path) -> Result<WalSalvage> {
        let data = fs.read_all(path)?;
        let salvaged = salvage_records(path, &data);
        // Each record that parses: its batches' timestamps.
        let parsed: Vec<Vec<u64>> = salvaged
            .payloads
            .iter()
            .map_while(|p| {
                let group = parse_group(p).ok()?;
                Some(group.into_iter().map(|(ts, _)| ts).collect())
            })
            .collect();
        let records = parsed.len();
        let batches = parsed.iter().map(Vec::len).sum();
        let max_ts = parsed.into_iter().flatten().max().unwrap_or(0);
        let keep = match salvaged.starts.get(records) {
            Some(&start) => start,
            None => salvaged.end,
        };
        Ok(WalSalvage {
            data,
            keep,
            batches,
            max_ts,
        })
    }
}
// ANCHOR_END: wal_salvage

// ANCHOR: write_out
impl WalInner {
    /// Appends one batch, committed at `ts`, to the buffer as a record of its own. The payload
    /// is built in a buffer the log keeps, not a fresh `Vec` per write: one allocation and free
    /// less on every write.
    fn buffer_record(&mut self, batch: &[(&[u8], &[u8])], kinds: &[ValueKind], ts: u64) {
        self.payload.clear();
        encode_batch(&mut self.payload, batch, kinds, ts);
        encode_record(&mut self.buffer, &self.payload);
        if self.payload.capacity() > BUFFER_LIMIT {
            self.payload = Vec::new(); // Do not keep a huge batch's worth of memory.
        }
    }

    /// Whether the buffer must be written out for a record that asked for `sync`: when it did
    /// not ask to stay in the process, or the buffer is full (week 4 day 2).
    fn must_write_out(&self, sync: SyncMode) -> bool {
        match sync {
            SyncMode::Buffered => self.buffer.len() >= BUFFER_LIMIT,
            SyncMode::Os | SyncMode::Fsync => true,
        }
    }

    /// Takes the records appended to the buffer as far as `sync` says (week 4 day 2): left
    /// there until 64 KiB collect, written to the file, or written and synced.
    fn take_as_far_as(&mut self, sync: SyncMode, path: &Path) -> Result<()> {
        // @task week4_day2 2
        if self.must_write_out(sync) {
            self.write_out()?;
        }
        if sync == SyncMode::Fsync {
            self.file
                .sync()
                .with_context(|| format!("syncing {}", path.display()))?;
        }
        Ok(())
        // @end
    }

    fn write_out(&mut self) -> Result<()> {
        if let Some(predecessor) = &self.predecessor {
            predecessor.sync()?;
            self.predecessor = None;
        }
        if !self.buffer.is_empty() {
            self.file.append(&self.buffer)?;
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
        }
        Ok(())
    }
}
// ANCHOR_END: write_out

/// A batch's entries, as `(key, value, kind)` borrowed from a payload.
type Batch<'a> = Vec<(&'a [u8], &'a [u8], ValueKind)>;

// ANCHOR: encode_batch
/// The top bit of a batch's `count`: a kind column follows the entries (week 4 day 6).
pub const KIND_COLUMN: u32 = 1 << 31;

/// Appends one batch, committed at `ts`, to `buf` in the log's format (`batch` in the module
/// docs); a group's batches follow each other in one record. `kinds` is empty, or holds each
/// entry's kind (week 4 day 6).
pub fn encode_batch(buf: &mut Vec<u8>, batch: &[(&[u8], &[u8])], kinds: &[ValueKind], ts: u64) {
    buf.put_u64(ts);
    let count_at = buf.len();
    buf.put_u32(batch.len() as u32);
    for (key, value) in batch {
        buf.put_u16(key.len() as u16);
        buf.put_slice(key);
        buf.put_u16(value.len() as u16);
        buf.put_slice(value);
    }
    // @task week4_day6 1 stub=comment
    // Only a batch with an operand needs its kinds: every other keeps the bytes it had.
    if kinds.contains(&ValueKind::Merge) {
        let flagged = batch.len() as u32 | KIND_COLUMN;
        buf[count_at..count_at + 4].copy_from_slice(&flagged.to_be_bytes());
        buf.extend(kinds.iter().map(|kind| kind.tag()));
    }
    // @end
}
// ANCHOR_END: encode_batch

// ANCHOR: parse_group
/// Parses a record's payload into its batches, each with its commit timestamp: a group of
/// batches from week 4 day 2, one batch before.
fn parse_group(payload: &[u8]) -> Result<Vec<(u64, Batch<'_>)>> {
    // @task week4_day2 2 stub=oldest
    let mut batches = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let len = batch_len(rest)?;
        let (batch, tail) = rest.split_at(len);
        batches.push(parse_payload(batch)?);
        rest = tail;
    }
    ensure!(!batches.is_empty(), "empty group");
    Ok(batches)
    // @or week2_day6 1
    // Ok(vec![parse_payload(payload)?])
    // @end
}

/// A batch's entry count, and whether a kind column follows its entries, from its `count`
/// field (see [`KIND_COLUMN`]).
fn split_count(count: u32) -> (usize, bool) {
    ((count & !KIND_COLUMN) as usize, count & KIND_COLUMN != 0)
}

/// The length of the batch at the start of `buf`, which may be followed by more: its header,
/// entries and kind column, walked through without copying.
fn batch_len(buf: &[u8]) -> Result<usize> {
    ensure!(buf.len() >= 12, "batch cut short in its header");
    let (count, has_kinds) = split_count(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
    let mut at = 12;
    for _ in 0..count * 2 {
        ensure!(buf.len() >= at + 2, "batch cut short");
        let len = u16::from_be_bytes([buf[at], buf[at + 1]]) as usize;
        at += 2 + len;
        ensure!(buf.len() >= at, "batch cut short");
    }
    if has_kinds {
        at += count;
        ensure!(buf.len() >= at, "batch cut short in its kind column");
    }
    Ok(at)
}
// ANCHOR_END: parse_group

// ANCHOR: parse_payload
/// Parses a record's payload: its batch's commit timestamp (week 3 day 3; 0 before it) and
/// entries.
fn parse_payload(payload: &[u8]) -> Result<(u64, Batch<'_>)> {
    // @task week3_day3 1 stub=oldest
    ensure!(payload.len() >= 8, "batch cut short in its timestamp");
    let (mut ts, batch) = payload.split_at(8);
    Ok((ts.get_u64(), decode_batch(batch)?))
    // @or week2_day6 1
    // Ok((0, decode_batch(payload)?))
    // @end
}
// ANCHOR_END: parse_payload

// ANCHOR: decode_batch
/// Parses a batch payload into `(key, value, kind)` entries: with its kind column if it has one
/// (week 4 day 6), else each a put or, for an empty value, a tombstone.
fn decode_batch<'a>(payload: &'a [u8]) -> Result<Batch<'a>> {
    ensure!(payload.len() >= 4, "batch cut short");
    let (count, body) = payload.split_at(4);
    let (count, has_kinds) =
        split_count(u32::from_be_bytes([count[0], count[1], count[2], count[3]]));
    let (entries, rest) = decode_entries(count, body)?;
    // @task week4_day6 1 stub=comment
    if has_kinds {
        ensure!(
            rest.len() == entries.len(),
            "{} stray bytes after a batch of {} entries",
            rest.len(),
            entries.len()
        );
        return entries
            .into_iter()
            .zip(rest)
            .enumerate()
            .map(|(i, ((key, value), &tag))| {
                let kind = ValueKind::from_tag(tag)
                    .with_context(|| format!("entry {i} of the batch has an unknown kind {tag}"))?;
                ensure!(
                    (kind == ValueKind::Delete) == value.is_empty() || kind == ValueKind::Merge,
                    "entry {i} of the batch is a {kind:?} with a value of {} bytes",
                    value.len()
                );
                Ok((key, value, kind))
            })
            .collect();
    }
    // @end
    ensure!(rest.is_empty(), "{} stray bytes after a batch", rest.len());
    let of = |(key, value): (&'a [u8], &'a [u8])| (key, value, ValueKind::of_value(value));
    Ok(entries.into_iter().map(of).collect())
}

/// A batch's `(key, value)` pairs borrowed from a payload, and the bytes after them.
type Entries<'a> = (Vec<(&'a [u8], &'a [u8])>, &'a [u8]);

/// Parses the `count` entries at the start of `body` (a batch after its count) into
/// `(key, value)` pairs, and returns what follows them.
fn decode_entries(count: usize, body: &[u8]) -> Result<Entries<'_>> {
    // @task week2_day6 1
    let mut rest = body;
    let buf = &mut rest;
    let mut entries = Vec::with_capacity(count.min(buf.len() / 4));
    fn take<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8]> {
        ensure!(buf.len() >= 2, "batch cut short");
        let len = buf.get_u16() as usize;
        ensure!(buf.len() >= len, "batch cut short");
        let (head, tail) = buf.split_at(len);
        *buf = tail;
        Ok(head)
    }
    for _ in 0..count {
        let key = take(buf)?;
        let value = take(buf)?;
        entries.push((key, value));
    }
    Ok((entries, rest))
    // @end
}
// ANCHOR_END: decode_batch
