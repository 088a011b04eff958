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
//! ```
//!
//! `open` writes a Layout record first in every manifest, so that a later `open` with another
//! compaction strategy knows how the levels were laid out and converts them (see
//! [`crate::compact::TreeLayout`]). A manifest without one (written before the course recorded
//! it) is read with the layout of the strategy it is opened with.
//!
//! Tags are never renumbered; a new kind of record gets a new tag.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use bytes::{Buf, BufMut};
use parking_lot::{Mutex, MutexGuard};

use crate::compact::{StrategyKind, TreeLayout};
use crate::fs::{FileSystem, WritableFile};
use crate::record::{decode_records, encode_record};

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
}

const TAG_NEW_MEMTABLE: u8 = 1;
const TAG_FLUSH: u8 = 2;
const TAG_LEVELS: u8 = 3;
const TAG_LAYOUT: u8 = 4;

impl ManifestRecord {
    /// Appends the record's payload (see the module docs) to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        todo!("week 2 day 5, task 1: encode, append and read back manifest records (book: week2-05-manifest)")
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
    /// Guarded by its mutex, and in practice only touched under the engine's `state_lock`.
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
}
