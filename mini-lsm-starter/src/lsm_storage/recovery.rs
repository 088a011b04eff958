// SPDX-License-Identifier: Apache-2.0
//! Recovery: rebuilding the engine's state at `open` from the manifest, the SSTs and the logs.
//!
//! 1. Replay the manifest: which SSTs make up L0 and the levels, and which memtables were created
//!    and not yet flushed ("live").
//! 2. Open every SST it lists (each is checked; a corrupt one is an error naming the file).
//! 3. Replay each live memtable's log into an immutable memtable (with logs enabled).
//! 4. Start a new memtable, with a fresh id above every id seen, so that no new file can collide
//!    with an old one and every new write is newer than every recovered one.
//! 5. Write a new manifest holding just this state, then delete the files it does not list:
//!    leftovers of a flush or compaction that crashed before its manifest record.
//!
//! A crash during recovery is safe: nothing is deleted before the new manifest is durable, and
//! the new manifest describes the same state as the old one.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::compact::adopt_layout;
use super::flush::place_flushed;
use super::{new_memtable, LsmStorageOptions, LsmStorageState};
use crate::block_cache::BlockCache;
use crate::compact::{CompactionController, TreeLayout};
use crate::id_hash::IdMap;
use crate::manifest::{Manifest, ManifestRecord, MANIFEST_NAME};
use crate::mem_table::MemTable;
use crate::table::{sst_path, FileObject, SsTable};
use crate::wal::wal_path;

/// What recovery hands to `open`.
pub(crate) struct Recovered {
    pub state: LsmStorageState,
    pub manifest: Option<Manifest>,
    pub next_sst_id: usize,
    pub report: Vec<String>,
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
        }
    }
}

/// The shape the manifest describes, before any file is opened.
struct Shape {
    l0: Vec<usize>,
    levels: Vec<(usize, Vec<usize>)>,
    /// Memtables created and not flushed, by id (which is also their age).
    live_memtables: BTreeSet<usize>,
    max_id: Option<usize>,
    /// Where the compaction strategy puts flushed SSTs (see `place_flushed`): the recorded
    /// strategy's choice, once a `Layout` record is read.
    flush_to_l0: bool,
    /// The layout the manifest records, if it records one.
    layout: Option<TreeLayout>,
}

impl Shape {
    fn apply(&mut self, record: ManifestRecord) {
        todo!("week 2 day 5, task 2: rebuild the state at open from the manifest (book: week2-05-manifest)")
    }
}

/// Rebuilds the engine's state in `dir` (see the module docs).
///
/// # Errors
/// A corrupt manifest, SST or log, or an I/O error; the error names the file.
pub(crate) fn recover(
    dir: &Path,
    options: &LsmStorageOptions,
    block_cache: &Arc<BlockCache>,
    controller: &CompactionController,
) -> Result<Recovered> {
    todo!("week 2 day 5, task 2: rebuild the state at open from the manifest (book: week2-05-manifest)")
}

/// Deletes the engine's files in `dir` that the new manifest does not need: SSTs it does not list
/// and logs of memtables that are gone. Files whose names are not the engine's are left alone.
/// Only the removal of a file the old manifest did not know is reported: an empty log of a live
/// memtable is simply no longer needed.
fn remove_stray_files(
    fs: &dyn crate::fs::FileSystem,
    dir: &Path,
    sstables: &IdMap<usize, Arc<SsTable>>,
    keep_wal: &BTreeSet<usize>,
    live_memtables: &BTreeSet<usize>,
    report: &mut Vec<String>,
) -> Result<()> {
    let mut removed = false;
    for path in fs.list(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (stray, known) = match name
            .rsplit_once('.')
            .map(|(id, ext)| (id.parse::<usize>(), ext))
        {
            Some((Ok(id), "sst")) => (!sstables.contains_key(&id), false),
            Some((Ok(id), "wal")) => (!keep_wal.contains(&id), live_memtables.contains(&id)),
            _ => (false, false),
        };
        if stray {
            fs.remove(&path)?;
            if !known {
                report.push(format!(
                    "{}: removed, the manifest does not list it",
                    path.display()
                ));
            }
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir)?;
    }
    Ok(())
}
