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

// ANCHOR: shape
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
// ANCHOR_END: shape

impl Shape {
    // ANCHOR: replay
    pub(super) fn apply(&mut self, record: ManifestRecord) {
        // @task week2_day5 2
        // @task week3_day3 3 stub=comment
        if let ManifestRecord::CommitTs(ts) | ManifestRecord::FlushAt { commit_ts: ts, .. } = record
        {
            self.commit_ts = self.commit_ts.max(ts);
        }
        // @end
        match record {
            ManifestRecord::NewMemtable(id) => {
                self.live_memtables.insert(id);
            }
            ManifestRecord::Flush(id) | ManifestRecord::FlushAt { id, .. } => {
                self.live_memtables.remove(&id);
                place_flushed(&mut self.l0, &mut self.levels, id, self.flush_to_l0);
            }
            ManifestRecord::Levels { l0, levels } => {
                self.l0 = l0;
                self.levels = levels;
            }
            // What the manifest vouches for about files: the `Ledger`'s business.
            ManifestRecord::LogSealed { .. }
            | ManifestRecord::LogSynced { .. }
            | ManifestRecord::Reserved(_)
            | ManifestRecord::Floor(_) => {}
            ManifestRecord::Layout(layout) => {
                self.flush_to_l0 = layout.flush_to_l0();
                self.layout = Some(layout);
            }
            // Week 3's format is checked before the replay (see `check_format`), and its commit
            // timestamps tracked above.
            ManifestRecord::Format(_) | ManifestRecord::CommitTs(_) => {}
        }
        // @end
    }
    // ANCHOR_END: replay

    /// Every SST the shape lists: L0, then each level.
    pub(super) fn listed(&self) -> impl Iterator<Item = usize> + '_ {
        self.l0
            .iter()
            .chain(self.levels.iter().flat_map(|(_, ids)| ids))
            .copied()
    }
}

// ANCHOR: recover
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
    // @task week2_day5 2
    let fs = &*options.fs;
    let mut report = Vec::new();
    let files = EngineFiles::list(fs, dir)?;
    let records = read_manifest(fs, dir, &files, options.recovery_mode, &mut report)?;
    // @task week3_day3 3 stub=comment
    check_format(&dir.join(MANIFEST_NAME), &records)?;
    // @end
    let mut shape = Shape {
        l0: Vec::new(),
        levels: controller.initial_levels(),
        live_memtables: BTreeSet::new(),
        flush_to_l0: controller.flush_to_l0(),
        layout: None,
        commit_ts: 0,
    };
    for record in &records {
        shape.apply(record.clone());
    }
    let ledger = Ledger::new(&records);
    // Laid out by another strategy: its levels, relabelled for this one (no SST is rewritten).
    let layout = controller.layout();
    report.extend(adopt_layout(
        dir,
        shape.layout,
        layout,
        &mut shape.l0,
        &mut shape.levels,
    )?);
    let mut sstables = IdMap::default();
    for id in shape.listed() {
        let path = sst_path(dir, id);
        let file = FileObject::open_in(fs, &path).with_context(|| {
            format!(
                "SST {id} is listed in {}",
                dir.join(MANIFEST_NAME).display()
            )
        })?;
        sstables.insert(
            id,
            Arc::new(SsTable::open(id, Some(block_cache.clone()), file)?),
        );
    }
    let mut imm_memtables: Vec<Arc<MemTable>> = Vec::new();
    let mut sealed = Vec::new();
    let mut replayed = BTreeSet::new();
    // The largest commit timestamp of a replayed log (week 3).
    let mut replayed_ts = 0;
    // @task week2_day6 3 stub=comment
    if options.enable_wal {
        for &id in &shape.live_memtables {
            let path = wal_path(dir, id);
            let (memtable, replay) = MemTable::recover_from_wal(id, fs, &path)?;
            let len =
                ledger.check_log(fs, &path, id, &replay, options.recovery_mode, &mut report)?;
            replayed.insert(id);
            replayed_ts = replayed_ts.max(replay.max_ts);
            if !memtable.is_empty() {
                // The new manifest vouches for these bytes: make them durable first. After a
                // process crash they may be in the OS's cache only, and a power cut then would
                // leave a manifest vouching for bytes the log no longer has.
                fs.open_append(&path)?.sync().with_context(|| {
                    format!("syncing {} before vouching for it", path.display())
                })?;
                sealed.push(ManifestRecord::LogSealed { id, len });
                imm_memtables.insert(0, Arc::new(memtable));
            }
        }
    }
    // @end
    // @task week3_day3 3
    let latest_commit_ts = latest_commit_ts(shape.commit_ts, &sstables, replayed_ts);
    // @stub
    // let latest_commit_ts = 0;
    // @end
    let kept: BTreeSet<usize> = imm_memtables.iter().map(|m| m.id()).collect();
    let listed: BTreeSet<usize> = sstables.keys().copied().collect();
    let cleanup =
        ledger.plan_cleanup(dir, &files, &listed, &replayed, &kept, options.enable_wal)?;
    // Nothing has changed on disk so far: every check above leaves the files as they were.
    let next_id = ledger.next_id(&files);
    let memtable = new_memtable(options, dir, next_id)?;
    // The new manifest: the floor, the layout, the SST structure, the recovered memtables
    // (sealed: they take no more writes), and the new one.
    let mut records = vec![
        ManifestRecord::Floor(next_id),
        ManifestRecord::Layout(layout),
        ManifestRecord::Levels {
            l0: shape.l0.clone(),
            levels: shape.levels.clone(),
        },
    ];
    for (memtable, seal) in imm_memtables.iter().rev().zip(sealed) {
        records.push(ManifestRecord::NewMemtable(memtable.id()));
        records.push(seal);
    }
    records.push(ManifestRecord::NewMemtable(next_id));
    // @task week2_day6 3 stub=comment
    if !memtable.has_log() {
        records.push(ManifestRecord::LogSealed {
            id: next_id,
            len: 0,
        });
    }
    // @end
    stamp_manifest(&mut records, latest_commit_ts);
    let manifest = Manifest::create(fs, dir, &records)?;
    cleanup.run(fs, dir, &mut report)?;
    Ok(Recovered {
        state: LsmStorageState {
            memtable: Arc::new(memtable),
            imm_memtables,
            l0_sstables: shape.l0,
            levels: shape.levels,
            sstables,
        },
        manifest: Some(manifest),
        next_sst_id: next_id + 1,
        report,
        latest_commit_ts,
    })
    // @end
}
// ANCHOR_END: recover

// ANCHOR: stamp_manifest
/// Adds what every manifest that `open` (or a repair) writes says about commit timestamps, from
/// week 3 day 3: the format, first, so that an engine before week 3 stops at once; and the latest
/// commit timestamp, which the logs and SSTs may no longer hold once they are gone.
pub(super) fn stamp_manifest(records: &mut Vec<ManifestRecord>, latest_commit_ts: u64) {
    // @task week3_day3 3 stub=comment
    records.insert(0, ManifestRecord::Format(FORMAT_VERSION));
    records.push(ManifestRecord::CommitTs(latest_commit_ts));
    // @end
}
// ANCHOR_END: stamp_manifest

// ANCHOR: check_format
/// Refuses a manifest (at `path`, holding `records`) written by an engine before week 3 day 3,
/// whose keys carry no commit timestamps, or by a newer engine: reading either would give wrong
/// answers without a word.
///
/// # Errors
/// If the manifest has records and the first is not [`ManifestRecord::Format`] with
/// [`FORMAT_VERSION`].
pub(super) fn check_format(path: &Path, records: &[ManifestRecord]) -> Result<()> {
    // @task week3_day3 3
    match records.first() {
        None | Some(ManifestRecord::Format(FORMAT_VERSION)) => Ok(()),
        Some(ManifestRecord::Format(version)) => bail!(
            "{}: the database has format {version}, and this engine reads format \
             {FORMAT_VERSION} only: open it with the engine that wrote it",
            path.display()
        ),
        Some(_) => bail!(
            "{}: the database was written by an engine before week 3 day 3 (its manifest names no \
             format, and its keys have no commit timestamps), which this engine cannot read. Open \
             it with that engine, or start a new database in an empty directory",
            path.display()
        ),
    }
    // @end
}
// ANCHOR_END: check_format

// ANCHOR: latest_commit_ts
/// The latest commit timestamp of everything recovered: the manifest's high-water mark
/// (`manifest_ts`), the largest timestamp of each SST, and of each replayed log (`replayed_ts`).
/// No commit may reuse any of them. A key at [`TS_DEFAULT`] (written without a timestamp, as
/// `MemTable::put` does) was not committed, and does not count.
fn latest_commit_ts(
    manifest_ts: u64,
    sstables: &IdMap<usize, Arc<SsTable>>,
    replayed_ts: u64,
) -> u64 {
    // @task week3_day3 3
    sstables
        .values()
        .map(|table| table.max_ts())
        .chain([manifest_ts, replayed_ts])
        .filter(|&ts| ts != TS_DEFAULT)
        .max()
        .unwrap_or(0)
    // @end
}
// ANCHOR_END: latest_commit_ts
