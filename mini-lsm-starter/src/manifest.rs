// SPDX-License-Identifier: Apache-2.0
//! The manifest: the log of every change to the engine's shape, so that `open` can rebuild it.
//!
//! Memtables and SSTs come and go: a freeze starts a memtable, a flush turns one into an SST, a
//! compaction replaces SSTs by others. Each change is appended to the manifest and synced *before*
//! it becomes visible, so that whatever a reader could have seen survives a crash. `open` replays
//! the records in order to rebuild the state, then writes a fresh manifest holding just the result.
//!
//! ```text
//!   MANIFEST: [Levels ...][NewMemtable 7][Flush 5][NewMemtable 8][Levels ...][Flush 6] ...
//!               ▲ written at open                       compaction ▲
//! ```
//!
//! # Format
//!
//! The file is a log of records (see [`crate::record`]); each payload is one of (big-endian):
//!
//! ```text
//! payload := tag:u8 body
//! tag 1  NewMemtable  body := id:u64                 a memtable (and its WAL) was created
//! tag 2  Flush        body := id:u64                 memtable `id` became SST `id`
//! tag 3  Levels       body := n:u32 id:u64{n}        the whole SST structure: L0 (newest first),
//!                             m:u32 (level:u32 k:u32 id:u64{k}){m}     then each level in order
//! tag 4  Layout       body := strategy:u8            the layout of the tree (how the levels of
//!                             max_levels:u32         tag 3 are read): 0 none, 1 simple, 2 tiered,
//!                                                    3 leveled; max_levels 0 for none and tiered
//! tag 5  LogSealed    body := id:u64 len:u64         memtable `id` was frozen: its log's records
//!                                                    end exactly at byte `len` (0: it has no log)
//! tag 6  LogSynced    body := id:u64 len:u64         the first `len` bytes of memtable `id`'s log
//!                                                    are durable (written by `close`)
//! tag 7  Reserved     body := id:u64                 a compaction is about to write SST `id`
//! tag 8  Floor        body := id:u64                 every engine file with an id below `id` that
//!                                                    the manifest does not list is obsolete
//! tag 10 Format       body := version:u32            what the keys and logs hold (week 3 day 3):
//!                                                    1 = commit timestamps; first in the file
//! tag 11 CommitTs     body := ts:u64                 every commit timestamp up to `ts` may have
//!                                                    been given (week 3 day 3)
//! tag 12 FlushAt      body := id:u64 ts:u64          Flush, and CommitTs(ts) (week 3 day 3: a
//!                                                    flush from then on, one record as before)
//! ```
//!
//! `open` writes a Layout record (after the Floor) in every manifest it writes, so that a later `open` with another
//! compaction strategy knows how the levels were laid out and converts them (see
//! [`crate::compact::TreeLayout`]). A manifest without one (written before the course recorded
//! it) is read with the layout of the strategy it is opened with.
//!
//! Tags are never renumbered; a new kind of record gets a new tag. Tags 10 to 14 are week 3's.
//!
//! # What the manifest vouches for
//!
//! Records 5 to 8 do not change the shape; they let `open` tell damage from a crash (see
//! `lsm_storage/recovery.rs`). A log the manifest sealed or saw synced must hold at least that
//! many bytes of whole records; every id is written down before a file with that id is created,
//! so a file whose id the manifest never mentions was made after the manifest's end: the manifest
//! lost records, and `open` refuses rather than delete the file.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use bytes::{Buf, BufMut};
use parking_lot::{Mutex, MutexGuard};

use crate::compact::{StrategyKind, TreeLayout};
use crate::fs::{FileSystem, WritableFile};
use crate::record::{decode_records, encode_record, salvage_records};

/// The manifest's file name in the database directory.
pub const MANIFEST_NAME: &str = "MANIFEST";
/// The file a new manifest is written to before it replaces the old one.
const MANIFEST_TMP_NAME: &str = "MANIFEST.tmp";

/// One change to the engine's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRecord {
    /// A memtable with this id was created (with its write-ahead log, if enabled).
    NewMemtable(usize),
    /// The memtable with this id was flushed to the SST with the same id.
    Flush(usize),
    /// The whole SST structure, as a compaction (or `open`) left it.
    Levels {
        /// L0 SST ids, newest first.
        l0: Vec<usize>,
        /// The levels below L0 as `(level, SST ids)`.
        levels: Vec<(usize, Vec<usize>)>,
    },
    /// How the levels of the `Levels` records that follow are laid out: by which compaction
    /// strategy, with how many levels.
    Layout(TreeLayout),
    /// Memtable `id` was frozen (or recovered, and so will not be written again): its log's
    /// records end exactly at byte `len`. A memtable without a log is sealed at 0 when created.
    LogSealed {
        /// The memtable.
        id: usize,
        /// The length of its log, in bytes of whole records.
        len: u64,
    },
    /// At least the first `len` bytes of memtable `id`'s log are durable: `close` writes one for
    /// the memtable still taking writes, so that a log cut short after a clean close is an error.
    LogSynced {
        /// The memtable.
        id: usize,
        /// How many bytes of its log were synced.
        len: u64,
    },
    /// A compaction is about to write SST `id`. Written before the file is created, so that a
    /// file a crash leaves behind always has an id the manifest knows.
    Reserved(usize),
    /// Every engine file with an id below this that the manifest does not list is obsolete. The
    /// first record of each manifest `open` writes (from week 3 day 3, the second, after Format).
    Floor(usize),
    /// The format of the database's keys and logs (week 3 day 3; see [`FORMAT_VERSION`]). The
    /// first record of every manifest from then on: a manifest without it was written by an
    /// engine before week 3 day 3, whose data has no commit timestamps.
    Format(u32),
    /// Every commit timestamp up to this one may have been given (week 3 day 3): recovery starts
    /// the next commit above it, even when no key or log holds that timestamp any more.
    CommitTs(u64),
    /// [`ManifestRecord::Flush`] and [`ManifestRecord::CommitTs`] in one (week 3 day 3): memtable
    /// `id` became SST `id`, whose latest commit timestamp is `commit_ts`.
    FlushAt {
        /// The memtable's and the SST's id.
        id: usize,
        /// The largest commit timestamp in the SST.
        commit_ts: u64,
    },
}

/// The format [`ManifestRecord::Format`] names: keys carry commit timestamps, and every log
/// record its batch's.
pub const FORMAT_VERSION: u32 = 1;

const TAG_NEW_MEMTABLE: u8 = 1;
const TAG_FLUSH: u8 = 2;
const TAG_LEVELS: u8 = 3;
const TAG_LAYOUT: u8 = 4;
const TAG_LOG_SEALED: u8 = 5;
const TAG_LOG_SYNCED: u8 = 6;
const TAG_RESERVED: u8 = 7;
const TAG_FLOOR: u8 = 8;
const TAG_FORMAT: u8 = 10;
const TAG_COMMIT_TS: u8 = 11;
const TAG_FLUSH_AT: u8 = 12;

impl ManifestRecord {
    /// Appends the record's payload (see the module docs) to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        todo!("week 2 day 5, task 1: encode, append and read back manifest records (book: week2-05-manifest)")
    }

    /// Appends the payload of one of week 3's records.
    fn encode_week3(&self, buf: &mut Vec<u8>) {
        todo!("week 3 day 3, task 3: read at the latest commit timestamp, and recover it at open (book: week3-03-commit-timestamps)")
    }

    /// Parses a payload.
    ///
    /// # Errors
    /// An unknown tag, a payload cut short, or bytes left over.
    pub fn decode(mut payload: &[u8]) -> Result<Self> {
        todo!("week 2 day 5, task 1: encode, append and read back manifest records (book: week2-05-manifest)")
    }
}

fn put_ids(buf: &mut Vec<u8>, ids: &[usize]) {
    buf.put_u32(ids.len() as u32);
    for id in ids {
        buf.put_u64(*id as u64);
    }
}

fn take_u8(buf: &mut &[u8]) -> Result<u8> {
    ensure!(!buf.is_empty(), "record cut short");
    Ok(buf.get_u8())
}

fn take_u32(buf: &mut &[u8]) -> Result<u32> {
    ensure!(buf.len() >= 4, "record cut short");
    Ok(buf.get_u32())
}

fn take_u64(buf: &mut &[u8]) -> Result<u64> {
    ensure!(buf.len() >= 8, "record cut short");
    Ok(buf.get_u64())
}

fn take_ids(buf: &mut &[u8]) -> Result<Vec<usize>> {
    let count = take_u32(buf)? as usize;
    ensure!(
        buf.len() >= count * 8,
        "record cut short in a list of {count} ids"
    );
    Ok((0..count).map(|_| buf.get_u64() as usize).collect())
}

/// The open manifest, appended to under the engine's state lock.
pub struct Manifest {
    /// Guarded by its mutex, which keeps each record whole. State changes are appended under the
    /// engine's `state_lock` as well (so that they are in order); reservations are not.
    file: Mutex<Box<dyn WritableFile>>,
    path: PathBuf,
}

/// What [`Manifest::recover`] read.
#[derive(Debug, Default)]
pub struct RecoveredManifest {
    /// The records, in order.
    pub records: Vec<ManifestRecord>,
    /// The offset of a dropped, incomplete last record.
    pub torn_tail_at: Option<usize>,
}

impl Manifest {
    /// Reads the manifest in `dir`, if there is one.
    ///
    /// # Errors
    /// If it cannot be read, or a record in the middle is corrupt; the error names the file.
    pub fn recover(fs: &dyn FileSystem, dir: &Path) -> Result<Option<RecoveredManifest>> {
        todo!("week 2 day 5, task 1: encode, append and read back manifest records (book: week2-05-manifest)")
    }

    /// Reads what a repair can keep of the manifest in `dir`: its records up to the first that
    /// is cut, damaged or does not decode, and a description of what was dropped (`None` when
    /// nothing was). `Ok(None)` when there is no manifest.
    ///
    /// # Errors
    /// If the file exists and cannot be read.
    pub fn salvage(
        fs: &dyn FileSystem,
        dir: &Path,
    ) -> Result<Option<(Vec<ManifestRecord>, Option<String>)>> {
        let path = dir.join(MANIFEST_NAME);
        if !fs.exists(&path) {
            return Ok(None);
        }
        let data = fs.read_all(&path)?;
        let salvaged = salvage_records(&path, &data);
        let records: Vec<ManifestRecord> = salvaged
            .payloads
            .iter()
            .map_while(|p| ManifestRecord::decode(p).ok())
            .collect();
        let end = salvaged
            .starts
            .get(records.len())
            .copied()
            .unwrap_or(salvaged.end);
        let dropped = (end < data.len()).then(|| {
            format!(
                "kept its first {} records ({end} bytes); dropped the {} bytes from offset {end} \
                 on, which are cut, damaged or do not decode",
                records.len(),
                data.len() - end
            )
        });
        Ok(Some((records, dropped)))
    }

    /// Writes a new manifest in `dir` holding `records`, replacing any old one atomically: the
    /// records go to a temporary file, which is synced and then renamed over the old manifest.
    ///
    /// # Errors
    /// If any write, sync or rename fails; the old manifest is then still in place.
    pub fn create(fs: &dyn FileSystem, dir: &Path, records: &[ManifestRecord]) -> Result<Self> {
        todo!("week 2 day 5, task 1: encode, append and read back manifest records (book: week2-05-manifest)")
    }

    /// Appends `record` and syncs it. Callers hold the state lock (the guard proves it), so
    /// records are in the same order as the changes they describe.
    ///
    /// # Errors
    /// If the write or sync fails; the change must then not be made visible.
    pub fn add_record(
        &self,
        _state_lock: &MutexGuard<'_, ()>,
        record: &ManifestRecord,
    ) -> Result<()> {
        todo!("week 2 day 5, task 1: encode, append and read back manifest records (book: week2-05-manifest)")
    }

    /// Appends and syncs a `Reserved(id)` record: a compaction calls it before it creates SST
    /// `id`. It needs no state lock: it changes no state, so its order among the other records
    /// does not matter, and a compaction does not wait for a flush to finish to write it.
    ///
    /// # Errors
    /// If the write or sync fails; the file must then not be created.
    pub fn reserve(&self, id: usize) -> Result<()> {
        let record = ManifestRecord::Reserved(id);
        let mut payload = Vec::new();
        record.encode(&mut payload);
        let mut buf = Vec::new();
        encode_record(&mut buf, &payload);
        let mut file = self.file.lock();
        file.append(&buf)
            .and_then(|()| file.sync())
            .with_context(|| format!("{}: appending {record:?}", self.path.display()))
    }
}
