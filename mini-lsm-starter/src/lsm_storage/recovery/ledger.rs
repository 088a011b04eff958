// SPDX-License-Identifier: Apache-2.0
//! What the manifest vouches for: the checks that let `open` tell a crash from damage, and the
//! cleanup that removes only the files the manifest proves obsolete.
//!
//! A crash can only cut the *last* thing being written: a record half-appended to a log or to
//! the manifest, a file whose record never made it. Damage (a disk, an operator, a backup script)
//! can cut anything anywhere, and the engine must not mistake it for a crash, because its answer
//! to a crash is to drop what was cut and delete what nobody recorded. So the manifest writes
//! down enough to recognise every file a crash can leave, and `open` refuses the rest:
//!
//! ```text
//!   file on disk             the manifest says               open
//!   ─────────────────────    ────────────────────────────    ───────────────────────────────
//!   00007.sst                listed in L0 or a level         keep (missing: error)
//!   00005.wal                memtable 5 live                 replay; shorter than its
//!                                                            LogSealed / LogSynced: error;
//!                                                            missing: error (unless sealed at 0)
//!   00004.sst                memtable 4 live (no Flush)      a flush that did not commit: remove
//!   00009.sst                Reserved(9), never listed       a compaction that did not commit:
//!                                                            remove
//!   00003.sst / .wal         placed once, since replaced;    obsolete: remove
//!                            memtable 3 flushed; id < Floor
//!   00011.wal, 0 bytes       (anything)                      holds nothing: remove
//!   00012.sst, 00012.wal     nothing: 12 is unknown          the manifest lost records: error,
//!                                                            every file left in place
//! ```
//!
//! Every id is in the manifest before a file with that id exists (a memtable's `NewMemtable`,
//! a compaction output's `Reserved`; only a freeze's new log is created first, and it stays
//! empty until its record is written). So a file with an unknown id and some bytes in it was made
//! after the point where the manifest now ends: the manifest was cut or replaced, and the file
//! may hold the only copy of some data.
//!
//! Left out: a log cut at a record boundary *while its memtable still takes writes* (and the
//! engine then crashed rather than closed) reads as a shorter history, exactly what a crash
//! before those writes were synced leaves. Telling the two apart would need a manifest record at
//! every `sync`, which would double the cost of a sync.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::fs::FileSystem;
use crate::lsm_storage::RecoveryMode;
use crate::manifest::{Manifest, ManifestRecord, MANIFEST_NAME};
use crate::wal::WalReplay;

pub(crate) use super::files::{EngineFile, EngineFiles, FileKind};

/// What to say after an error that damage caused: nothing was changed, and how to repair.
pub(crate) fn repair_hint(dir: &Path) -> String {
    format!(
        "open changed no file. `cargo x repair --path {}` (or `MiniLsm::repair`) rebuilds a \
         manifest from the files that verify and moves the others aside",
        dir.display()
    )
}

/// Reads the manifest of `dir` and applies the recovery mode to a torn last record. A directory
/// without a manifest is new only if it holds no data: otherwise the manifest was lost, and
/// starting empty would hide (and then delete) every file.
///
/// # Errors
/// A missing manifest beside data files; a manifest without one whole record; a torn tail in
/// [`RecoveryMode::Strict`]; anything `Manifest::recover` rejects.
pub(crate) fn read_manifest(
    fs: &dyn FileSystem,
    dir: &Path,
    files: &EngineFiles,
    mode: RecoveryMode,
    report: &mut Vec<String>,
) -> Result<Vec<ManifestRecord>> {
    let path = dir.join(MANIFEST_NAME);
    let data_files = files.holding_data();
    let Some(log) = Manifest::recover(fs, dir)? else {
        if !data_files.is_empty() {
            bail!(
                "{} is missing, but the directory holds {}: the engine will not start empty over \
                 them; {}",
                path.display(),
                EngineFiles::describe(&data_files),
                repair_hint(dir)
            );
        }
        return Ok(Vec::new());
    };
    let file_len = fs.open(&path)?.len();
    if log.records.is_empty() {
        bail!(
            "{} holds no whole record ({file_len} bytes); every manifest begins with the records \
             `open` writes, so it was cut or overwritten. The directory holds {}; {}",
            path.display(),
            EngineFiles::describe(&data_files),
            repair_hint(dir)
        );
    }
    if let Some(at) = log.torn_tail_at {
        torn_tail(&path, at as u64, file_len, log.records.len(), mode, report)?;
    }
    Ok(log.records)
}

/// Applies the recovery mode to a log or manifest at `path` whose whole records (`records` of
/// them) end at byte `end`, followed by an incomplete one up to `file_len`.
fn torn_tail(
    path: &Path,
    end: u64,
    file_len: u64,
    records: usize,
    mode: RecoveryMode,
    report: &mut Vec<String>,
) -> Result<()> {
    let torn = file_len - end;
    match mode {
        RecoveryMode::Strict => bail!(
            "{}: the last record, at offset {end}, is incomplete ({torn} of {file_len} bytes): a \
             torn tail, which RecoveryMode::Strict refuses (RecoveryMode::TolerateTornTail drops \
             it and reports it)",
            path.display()
        ),
        RecoveryMode::TolerateTornTail => report.push(format!(
            "{}: dropped an incomplete last record at offset {end}: its {torn} bytes; kept the \
             {records} whole records before it ({end} bytes)",
            path.display()
        )),
    }
    Ok(())
}

/// What the manifest says about one memtable's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Vouch {
    /// Bytes of whole records the log holds at least (exactly, when sealed).
    len: u64,
    /// Whether the memtable was frozen: its log takes no more records.
    sealed: bool,
}

/// Everything the manifest's records say about files, folded in order (the shape itself is
/// `Shape`'s business).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Unlisted files with smaller ids are obsolete (`Floor`; 0 in a manifest without one).
    floor: usize,
    /// The largest id any record names.
    max_id: Option<usize>,
    /// Memtables created (`NewMemtable`).
    created: BTreeSet<usize>,
    /// Memtables flushed (`Flush`).
    flushed: BTreeSet<usize>,
    /// SSTs some record placed (`Flush`, `Levels`), whether or not they are still listed.
    placed: BTreeSet<usize>,
    /// Compaction outputs announced (`Reserved`).
    reserved: BTreeSet<usize>,
    /// What the manifest vouches for each log (`LogSealed`, `LogSynced`).
    logs: BTreeMap<usize, Vouch>,
}

impl Ledger {
    /// Folds `records`, in order.
    pub fn new(records: &[ManifestRecord]) -> Self {
        let mut ledger = Self::default();
        for record in records {
            ledger.apply(record);
        }
        ledger
    }

    fn apply(&mut self, record: &ManifestRecord) {
        let mut ids = Vec::new();
        match record {
            ManifestRecord::NewMemtable(id) => {
                self.created.insert(*id);
                ids.push(*id);
            }
            ManifestRecord::Flush(id) | ManifestRecord::FlushAt { id, .. } => {
                self.flushed.insert(*id);
                self.placed.insert(*id);
                ids.push(*id);
            }
            ManifestRecord::Levels { l0, levels } => {
                ids.extend(l0.iter().chain(levels.iter().flat_map(|(_, ids)| ids)));
                self.placed.extend(&ids);
            }
            // How the levels are laid out: the shape's business, not the files'.
            ManifestRecord::Layout(_) => {}
            ManifestRecord::LogSealed { id, len } => {
                self.logs.insert(
                    *id,
                    Vouch {
                        len: *len,
                        sealed: true,
                    },
                );
                ids.push(*id);
            }
            ManifestRecord::LogSynced { id, len } => {
                let vouch = self.logs.entry(*id).or_insert(Vouch {
                    len: 0,
                    sealed: false,
                });
                if !vouch.sealed {
                    vouch.len = vouch.len.max(*len);
                }
                ids.push(*id);
            }
            ManifestRecord::Reserved(id) => {
                self.reserved.insert(*id);
                ids.push(*id);
            }
            ManifestRecord::Floor(id) => self.floor = self.floor.max(*id),
            // The format and commit timestamps: nothing about files.
            ManifestRecord::Format(_) | ManifestRecord::CommitTs(_) => {}
        }
        self.max_id = ids.into_iter().chain(self.max_id).max();
    }

    /// How many bytes of memtable `id`'s log the manifest vouches for, if any.
    pub(crate) fn vouched_len(&self, id: usize) -> Option<u64> {
        self.logs.get(&id).map(|v| v.len)
    }

    /// Whether memtable `id` was created and not flushed.
    pub(crate) fn is_live(&self, id: usize) -> bool {
        self.created.contains(&id) && !self.flushed.contains(&id)
    }

    /// The id of the memtable `open` starts: above every id the manifest names, above its floor,
    /// and above every engine file in the directory, so that no new file can collide with an old
    /// one, whatever a crash left behind.
    pub fn next_id(&self, files: &EngineFiles) -> usize {
        let named = self.max_id.map_or(0, |id| id + 1);
        let on_disk = files.iter().map(|f| f.id + 1).max().unwrap_or(0);
        named.max(on_disk).max(self.floor)
    }

    /// Checks the replay of live memtable `id`'s log at `path` against what the manifest vouches
    /// for, and applies the recovery mode to a torn tail. Returns the length of the log's whole
    /// records, which the new manifest seals.
    ///
    /// # Errors
    /// The log is missing, or holds fewer bytes of whole records than the manifest vouches for
    /// (it was cut, or a record in the vouched part is damaged), or more than its sealed length;
    /// a torn tail in [`RecoveryMode::Strict`]. Each names the file, what was expected and what
    /// was found.
    pub fn check_log(
        &self,
        fs: &dyn FileSystem,
        path: &Path,
        id: usize,
        replay: &WalReplay,
        mode: RecoveryMode,
        report: &mut Vec<String>,
    ) -> Result<u64> {
        let vouch = self.logs.get(&id).copied();
        let dir = path.parent().unwrap_or(Path::new(""));
        if !fs.exists(path) {
            let manifest = dir.join(MANIFEST_NAME);
            return match vouch {
                Some(v) if v.len == 0 => Ok(0),
                Some(v) => bail!(
                    "{} is missing: {} says memtable {id} was never flushed and vouches for {} \
                     bytes of its log; {}",
                    path.display(),
                    manifest.display(),
                    v.len,
                    repair_hint(dir)
                ),
                None => bail!(
                    "{} is missing: {} says memtable {id} was never flushed, and a crash never \
                     removes the log of a live memtable (the manifest may have lost the record \
                     of its flush); {}",
                    path.display(),
                    manifest.display(),
                    repair_hint(dir)
                ),
            };
        }
        let file_len = fs.open(path)?.len();
        let end = replay.torn_tail_at.map_or(file_len, |at| at as u64);
        let found = format!(
            "its {} whole records end at byte {end} of {file_len}",
            replay.batches
        );
        if let Some(vouch) = vouch {
            let when = if vouch.sealed {
                "when its memtable was frozen"
            } else {
                "synced at close"
            };
            if end < vouch.len {
                bail!(
                    "{}: cut short or damaged: the manifest vouches for {} bytes of whole records \
                     ({when}), but {found}",
                    path.display(),
                    vouch.len
                );
            }
            if vouch.sealed {
                if end > vouch.len {
                    bail!(
                        "{}: holds more than its memtable was frozen with: the manifest sealed it \
                         at byte {}, but {found}",
                        path.display(),
                        vouch.len
                    );
                }
                if file_len > end {
                    report.push(format!(
                        "{}: ignored {} bytes after its sealed end at byte {end}: the incomplete \
                         record an earlier open dropped",
                        path.display(),
                        file_len - end
                    ));
                }
                return Ok(end);
            }
        }
        if file_len > end {
            torn_tail(path, end, file_len, replay.batches, mode, report)?;
        }
        Ok(end)
    }

    /// What the manifest says about `file`, an engine file that the new state neither lists
    /// (an SST) nor keeps (a log of a live memtable).
    pub fn fate(&self, file: &EngineFile) -> Fate {
        let id = file.id;
        match file.kind {
            _ if file.len == 0 => Fate::Empty,
            FileKind::Sst if self.placed.contains(&id) => Fate::Replaced,
            FileKind::Sst if self.is_live(id) => Fate::UncommittedFlush(id),
            FileKind::Sst if self.reserved.contains(&id) => Fate::UncommittedCompaction,
            FileKind::Wal if self.flushed.contains(&id) => Fate::Flushed(id),
            FileKind::Wal if self.is_live(id) => Fate::LiveLog(id),
            _ if id < self.floor => Fate::BelowFloor(self.floor),
            _ => Fate::Unknown,
        }
    }

    /// Judges every engine file that the new state does not keep: obsolete (removed once the new
    /// manifest is durable), or unexplained (an error, before anything is changed).
    ///
    /// `listed` are the SSTs of the shape, `replayed` the live memtables whose logs were
    /// checked, and `kept` those that hold data and stay.
    ///
    /// # Errors
    /// Every file the manifest cannot explain, in one message.
    pub fn plan_cleanup(
        &self,
        dir: &Path,
        files: &EngineFiles,
        listed: &BTreeSet<usize>,
        replayed: &BTreeSet<usize>,
        kept: &BTreeSet<usize>,
        wal: bool,
    ) -> Result<Cleanup> {
        let mut cleanup = Cleanup::default();
        let mut unexplained = Vec::new();
        for file in files.iter() {
            let id = file.id;
            match file.kind {
                FileKind::Sst if listed.contains(&id) => continue,
                FileKind::Wal if kept.contains(&id) => continue,
                _ => {}
            }
            match self.fate(file) {
                Fate::Unknown => unexplained.push(file),
                Fate::LiveLog(id) => {
                    if !wal && file.len > 0 {
                        bail!(
                            "{} holds {} bytes of memtable {id}, which was never flushed, but the \
                             log is off (enable_wal = false): open with enable_wal = true to \
                             replay it",
                            file.path.display(),
                            file.len
                        );
                    }
                    if wal && !replayed.contains(&id) {
                        bail!(
                            "{}: the log of live memtable {id} was not replayed",
                            file.path.display()
                        );
                    }
                    // Only a torn record (already reported): no longer needed.
                    cleanup.remove.push((file.path.clone(), None));
                }
                // The empty log of a live memtable needs no word either.
                Fate::Empty if file.kind == FileKind::Wal && self.is_live(id) => {
                    cleanup.remove.push((file.path.clone(), None));
                }
                fate => cleanup
                    .remove
                    .push((file.path.clone(), Some(fate.to_string()))),
            }
        }
        if !unexplained.is_empty() {
            let mut message = format!(
                "{} cannot explain {}: ",
                dir.join(MANIFEST_NAME).display(),
                EngineFiles::describe(&unexplained)
            );
            for file in &unexplained {
                let _ = write!(message, "{} ({} bytes), ", file.name(), file.len);
            }
            let _ = write!(
                message,
                "each with an id that no record names ({}, floor {}), so it was written after the \
                 point where the manifest now ends: the manifest was cut or replaced, and these \
                 files may hold the only copy of some data; {}",
                self.max_id.map_or_else(
                    || "the manifest names no id".to_string(),
                    |id| format!("the largest it names is {id}")
                ),
                self.floor,
                repair_hint(dir)
            );
            bail!(message);
        }
        Ok(cleanup)
    }
}

/// What the manifest says about a file outside the state (see [`Ledger::fate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It holds no byte.
    Empty,
    /// Its id is below the floor of the open that wrote the manifest.
    BelowFloor(usize),
    /// An SST once placed, since compacted away.
    Replaced,
    /// The SST of live memtable `id`: a flush that did not reach its record.
    UncommittedFlush(usize),
    /// A compaction output announced, never installed.
    UncommittedCompaction,
    /// The log of memtable `id`, which was flushed.
    Flushed(usize),
    /// The log of live memtable `id`.
    LiveLog(usize),
    /// No record names its id.
    Unknown,
}

impl std::fmt::Display for Fate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fate::Empty => write!(f, "empty"),
            Fate::BelowFloor(floor) => write!(
                f,
                "left over from before the last open (below its floor {floor})"
            ),
            Fate::Replaced => write!(f, "compacted away; its deletion had not happened"),
            Fate::UncommittedFlush(id) => write!(f, "the flush of memtable {id} did not commit"),
            Fate::UncommittedCompaction => {
                write!(f, "the output of a compaction that did not commit")
            }
            Fate::Flushed(id) => write!(f, "memtable {id} was flushed"),
            Fate::LiveLog(id) => write!(f, "the log of live memtable {id}"),
            Fate::Unknown => write!(f, "no record of the manifest names its id"),
        }
    }
}

/// The files recovery removes once the new manifest is durable, each with the reason to report
/// (`None`: an empty log of a live memtable, which needs no word).
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    remove: Vec<(PathBuf, Option<String>)>,
}

impl Cleanup {
    /// Removes the files, reporting each with its reason, and syncs the directory.
    ///
    /// # Errors
    /// If a file cannot be removed or the directory synced.
    pub fn run(self, fs: &dyn FileSystem, dir: &Path, report: &mut Vec<String>) -> Result<()> {
        if self.remove.is_empty() {
            return Ok(());
        }
        for (path, why) in self.remove {
            fs.remove(&path)
                .with_context(|| format!("removing {}", path.display()))?;
            if let Some(why) = why {
                report.push(format!("{}: removed, {why}", path.display()));
            }
        }
        fs.sync_dir(dir)
    }
}
