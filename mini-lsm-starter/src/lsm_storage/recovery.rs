// SPDX-License-Identifier: Apache-2.0
//! Recovery: rebuilding the engine's state at `open` from the manifest, the SSTs and the logs.
//!
//! 1. Read the manifest (a missing one beside data files is an error) and replay it: which SSTs
//!    make up L0 and the levels, and which memtables were created and not yet flushed ("live").
//! 2. Open every SST it lists (each is checked; a missing or corrupt one is an error naming it).
//! 3. Replay each live memtable's log into an immutable memtable (with logs enabled), checking it
//!    against what the manifest vouches for (see `recovery/ledger.rs`).
//! 4. Judge every other file: obsolete (to be removed), or unexplained (an error: the manifest
//!    lost records, and the file may hold the only copy of some data). Then start a new
//!    memtable, with a fresh id above every id named or on disk, so that no new file can collide
//!    with an old one and every new write is newer than every recovered one.
//! 5. Write a new manifest holding just this state, then remove the obsolete files.
//!
//! Nothing is changed before the new memtable of step 4, so an error leaves every file as it was. A crash during
//! recovery is safe: nothing is deleted before the new manifest is durable, and the new manifest
//! describes the same state as the old one.
//!
//! [`RecoveryMode`](super::RecoveryMode) decides what happens to a torn tail, the incomplete last
//! record a crash in the middle of an append leaves in a log or the manifest: dropped and
//! reported (the default), or an error.

mod files;
mod ledger;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::compact::adopt_layout;
use super::flush::place_flushed;
use super::{new_memtable, LsmStorageOptions, LsmStorageState};
use crate::block_cache::BlockCache;
use crate::compact::{CompactionController, TreeLayout};
use crate::id_hash::IdMap;
use crate::key::TS_DEFAULT;
use crate::manifest::{Manifest, ManifestRecord, FORMAT_VERSION, MANIFEST_NAME};
use crate::mem_table::MemTable;
use crate::table::{sst_path, FileObject, SsTable};
use crate::wal::wal_path;
pub(crate) use ledger::{read_manifest, EngineFile, EngineFiles, Fate, FileKind, Ledger};

/// What recovery hands to `open`.
pub(crate) struct Recovered {
    pub state: LsmStorageState,
    pub manifest: Option<Manifest>,
    pub next_sst_id: usize,
    pub report: Vec<String>,
    /// The latest commit timestamp of anything recovered (week 3 day 3; 0 before).
    pub latest_commit_ts: u64,
}

impl Recovered {
    /// A fresh, empty engine with no manifest (before week 2 day 5).
    #[allow(dead_code, reason = "used by the starter until week 2 day 5")]
    pub fn fresh(levels: Vec<(usize, Vec<usize>)>) -> Self {
        Self {
            state: LsmStorageState::create(MemTable::create(0), levels),
            manifest: None,
            next_sst_id: 1,
            report: Vec::new(),
            latest_commit_ts: 0,
        }
    }
}

/// The shape the manifest describes, before any file is opened.
pub(super) struct Shape {
    pub l0: Vec<usize>,
    pub levels: Vec<(usize, Vec<usize>)>,
    /// Memtables created and not flushed, by id (which is also their age).
    pub live_memtables: BTreeSet<usize>,
    /// Where the compaction strategy puts flushed SSTs (see `place_flushed`).
    pub flush_to_l0: bool,
    /// The layout the manifest records, if it records one (compaction strategy and levels).
    pub layout: Option<TreeLayout>,
    /// The largest commit timestamp the manifest records (week 3).
    pub commit_ts: u64,
}

impl Shape {
    pub(super) fn apply(&mut self, record: ManifestRecord) {
        todo!("week 2 day 5, task 2: rebuild the state at open from the manifest (book: week2-05-manifest)")
    }

    /// Every SST the shape lists: L0, then each level.
    pub(super) fn listed(&self) -> impl Iterator<Item = usize> + '_ {
        self.l0
            .iter()
            .chain(self.levels.iter().flat_map(|(_, ids)| ids))
            .copied()
    }
}

/// Rebuilds the engine's state in `dir` (see the module docs).
///
/// # Errors
/// A missing, corrupt or cut manifest, SST or log, a file the manifest cannot explain, or an I/O
/// error; the error names the file, and no file has been changed.
pub(crate) fn recover(
    dir: &Path,
    options: &LsmStorageOptions,
    block_cache: &Arc<BlockCache>,
    controller: &CompactionController,
) -> Result<Recovered> {
    todo!("week 2 day 5, task 2: rebuild the state at open from the manifest (book: week2-05-manifest)")
}

/// Adds what every manifest that `open` (or a repair) writes says about commit timestamps, from
/// week 3 day 3: the format, first, so that an engine before week 3 stops at once; and the latest
/// commit timestamp, which the logs and SSTs may no longer hold once they are gone.
pub(super) fn stamp_manifest(records: &mut Vec<ManifestRecord>, latest_commit_ts: u64) {
    // TODO(week 3 day 3, task 3: read at the latest commit timestamp, and recover it at open (book: week3-03-commit-timestamps))
}

/// Refuses a manifest (at `path`, holding `records`) written by an engine before week 3 day 3,
/// whose keys carry no commit timestamps, or by a newer engine: reading either would give wrong
/// answers without a word.
///
/// # Errors
/// If the manifest has records and the first is not [`ManifestRecord::Format`] with
/// [`FORMAT_VERSION`].
pub(super) fn check_format(path: &Path, records: &[ManifestRecord]) -> Result<()> {
    todo!("week 3 day 3, task 3: read at the latest commit timestamp, and recover it at open (book: week3-03-commit-timestamps)")
}

/// The latest commit timestamp of everything recovered: the manifest's high-water mark
/// (`manifest_ts`), the largest timestamp of each SST, and of each replayed log (`replayed_ts`).
/// No commit may reuse any of them. A key at [`TS_DEFAULT`] (written without a timestamp, as
/// `MemTable::put` does) was not committed, and does not count.
fn latest_commit_ts(
    manifest_ts: u64,
    sstables: &IdMap<usize, Arc<SsTable>>,
    replayed_ts: u64,
) -> u64 {
    todo!("week 3 day 3, task 3: read at the latest commit timestamp, and recover it at open (book: week3-03-commit-timestamps)")
}
