// SPDX-License-Identifier: Apache-2.0
//! Repair: rebuilding a manifest from the files that verify, when `open` refuses a damaged
//! database.
//!
//! `open` never guesses: damage it cannot explain as a crash is an error, and every file stays
//! as it was. Repair is the operator's explicit choice to get back whatever is still readable.
//! It keeps everything that verifies, moves the rest into `quarantine/` (it never deletes), and
//! writes a new manifest:
//!
//! ```text
//!   MANIFEST          the longest prefix that decodes gives the shape: where each SST sits
//!   listed SSTs       read in full (every block checksum); kept in place, or quarantined
//!   logs              cut at the first bad record; a log with whole batches becomes a memtable
//!   live memtable's   its log gone, its SST verifies: the flush is adopted at the front of L0
//!   SST
//!   other SSTs        obsolete (the manifest says so): quarantined; unknown: placed by id
//!   MANIFEST (old)    copied into quarantine/ first; the new one replaces it atomically
//! ```
//!
//! What it cannot do: order SSTs that the manifest never placed. Without timestamps (week 3 adds
//! them), the only record of which SST is newer is the manifest. Repair puts such SSTs at the
//! front of L0 by id, newest id first. That is the true order for SSTs written by flushes, whose
//! ids grow with time, but a compaction's output gets a new, high id while holding old data: if
//! one ran after the manifest's end, an older value can hide a newer one. From week 3 it orders
//! them by their largest commit timestamp instead, which a compaction's output does not inflate;
//! still a guess where two SSTs hold versions of one key from interleaved times. The report says
//! when it had to guess (`RepairReport::ordered_by_id`).
//!
//! Repair is crash-safe in the only way that matters: it moves files and writes the new manifest
//! last, so an interrupted repair leaves a directory that `open` refuses and repair can run on
//! again. It copies and moves, and never deletes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};

use super::compact::adopt_layout;
use super::flush::place_flushed;
use super::recovery::{
    check_format, stamp_manifest, EngineFile, EngineFiles, Fate, FileKind, Ledger, Shape,
};
use super::LsmStorageOptions;
use crate::compact::CompactionController;
use crate::fs::FileSystem;
use crate::iterators::StorageIterator;
use crate::key::TS_DEFAULT;
use crate::manifest::{Manifest, ManifestRecord, MANIFEST_NAME};
use crate::table::{FileObject, SsTable, SsTableIterator};
use crate::wal::{wal_path, Wal};

/// Where repair moves the files it does not keep.
pub const QUARANTINE_DIR: &str = "quarantine";

/// What a repair did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct RepairReport {
    /// One line per decision, in order: what was kept, moved, adopted, lost and why.
    pub lines: Vec<String>,
    /// The files moved into `quarantine/`, by their old paths.
    pub quarantined: Vec<PathBuf>,
    /// The SSTs the new manifest lists, L0 first.
    pub ssts: Vec<usize>,
    /// The memtables whose logs the new manifest keeps, oldest first.
    pub logs: Vec<usize>,
    /// Whether some SSTs were placed by id because the manifest did not say where they belong.
    pub ordered_by_id: bool,
}

impl RepairReport {
    fn say(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// What verifying an SST in full found.
struct SstSummary {
    entries: usize,
    range: String,
    /// The largest timestamp in the table (week 3; 0 before).
    max_ts: u64,
}

/// Reads every block of the SST at `file` (each checksum is checked on the way).
fn verify_sst(fs: &dyn FileSystem, file: &EngineFile) -> Result<SstSummary> {
    let table = SsTable::open(file.id, None, FileObject::open_in(fs, &file.path)?)?;
    let max_ts = table.max_ts();
    let range = format!(
        "{}..={}",
        table.first_key().raw_ref().escape_ascii(),
        table.last_key().raw_ref().escape_ascii()
    );
    let mut iter = SsTableIterator::create_and_seek_to_first(Arc::new(table))?;
    let mut entries = 0;
    while iter.is_valid() {
        entries += 1;
        iter.next()?;
    }
    Ok(SstSummary {
        entries,
        range,
        max_ts,
    })
}

/// A log that repair keeps, and how much of it.
struct KeptLog {
    file: EngineFile,
    /// The bytes to keep, when less than the whole file: the file is then replaced by them.
    prefix: Option<Vec<u8>>,
    len: u64,
    /// The largest commit timestamp of its kept batches (week 3; 0 before).
    max_ts: u64,
}

// ANCHOR: repair
/// Rebuilds the manifest of the database in `dir` from the files that verify (see the module
/// docs). With `dry_run`, changes nothing and reports what it would do.
///
/// # Errors
/// If the options are invalid, the directory does not exist, or a file cannot be read, moved or
/// written. Damage is never an error: it is what repair is for.
pub fn repair(dir: &Path, options: &LsmStorageOptions, dry_run: bool) -> Result<RepairReport> {
    options.validate()?;
    let fs = &*options.fs;
    ensure!(fs.exists(dir), "{}: no such directory", dir.display());
    let controller = CompactionController::new(&options.compaction_options);
    let mut report = RepairReport::default();
    let files = EngineFiles::list(fs, dir)?;
    let manifest_path = dir.join(MANIFEST_NAME);

    // 1. What the manifest still says.
    let records = match Manifest::salvage(fs, dir)? {
        None => {
            report.say(format!(
                "{}: missing; every SST is placed by its id",
                manifest_path.display()
            ));
            Vec::new()
        }
        Some((records, dropped)) => {
            let what = match dropped {
                _ if records.is_empty() => {
                    "holds no whole record; every SST is placed by its id".to_string()
                }
                Some(dropped) => dropped,
                None => format!("intact, {} records", records.len()),
            };
            report.say(format!("{}: {what}", manifest_path.display()));
            records
        }
    };
    // A database of another format is not this engine's to repair: it would read none of it.
    // @task week3_day3 3 stub=comment
    check_format(&manifest_path, &records)?;
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
    // A tree laid out by another strategy is relabelled for this one, as `open` would.
    let layout = controller.layout();
    if let Some(line) = adopt_layout(dir, shape.layout, layout, &mut shape.l0, &mut shape.levels)? {
        report.say(line);
    }
    let ledger = Ledger::new(&records);

    // 2. Every SST, read in full.
    let mut good: BTreeMap<usize, SstSummary> = BTreeMap::new();
    let mut moves: Vec<(EngineFile, String)> = Vec::new();
    for file in files.iter().filter(|f| f.kind == FileKind::Sst) {
        match verify_sst(fs, file) {
            Ok(summary) => {
                good.insert(file.id, summary);
            }
            Err(error) => moves.push((file.clone(), format!("does not verify: {error:#}"))),
        }
    }

    // 3. The listed SSTs stay where the manifest put them, if they verify.
    let listed: Vec<usize> = shape.listed().collect();
    let mut lost_listed = false;
    for id in &listed {
        if !good.contains_key(id) {
            lost_listed = true;
            let what = match files.get(FileKind::Sst, *id) {
                Some(_) => "is damaged",
                None => "is missing",
            };
            report.say(format!(
                "SST {id}, listed in the manifest, {what}: its keys are lost unless an older \
                 version of them survives elsewhere"
            ));
        }
    }
    shape.l0.retain(|id| good.contains_key(id));
    for (_, ids) in &mut shape.levels {
        ids.retain(|id| good.contains_key(id));
    }
    let mut placed: BTreeSet<usize> = shape.listed().collect();

    // 4. Logs: a live memtable's log, or one no record names (its `NewMemtable` was lost), is
    //    kept up to its first bad record, unless the memtable's SST verifies (then the flush
    //    finished, and the SST is adopted below); other logs are obsolete.
    let mut kept: BTreeMap<usize, KeptLog> = BTreeMap::new();
    for file in files.iter().filter(|f| f.kind == FileKind::Wal) {
        let fate = ledger.fate(file);
        let wanted = matches!(fate, Fate::LiveLog(_) | Fate::Unknown);
        if !wanted {
            moves.push((file.clone(), fate.to_string()));
            continue;
        }
        if good.contains_key(&file.id) {
            moves.push((
                file.clone(),
                format!(
                    "its memtable's SST {} verifies and holds the same data",
                    file.id
                ),
            ));
            continue;
        }
        let salvage = Wal::salvage(fs, &file.path)?;
        if salvage.batches == 0 {
            moves.push((file.clone(), "holds no whole batch".to_string()));
            continue;
        }
        let whole = salvage.keep == salvage.data.len();
        report.say(format!(
            "{}: kept {} batches ({} of {} bytes){} as memtable {}",
            file.path.display(),
            salvage.batches,
            salvage.keep,
            salvage.data.len(),
            if whole {
                String::new()
            } else {
                "; the rest is cut or damaged, and the whole file goes to quarantine".to_string()
            },
            file.id
        ));
        kept.insert(
            file.id,
            KeptLog {
                file: file.clone(),
                len: salvage.keep as u64,
                prefix: (!whole).then(|| salvage.data[..salvage.keep].to_vec()),
                max_ts: salvage.max_ts,
            },
        );
    }
    for &id in &shape.live_memtables {
        let gone = !kept.contains_key(&id) && files.get(FileKind::Wal, id).is_none();
        if gone && !good.contains_key(&id) && ledger.vouched_len(id) != Some(0) {
            report.say(format!(
                "memtable {id}: its log is missing, and so is its SST: the writes it held are lost"
            ));
        }
    }

    // 5. SSTs the manifest does not place: obsolete ones go, the flushes of live memtables are
    //    adopted, and the rest are placed by id (the order is then a guess). From week 3, by
    //    their largest timestamp first (ties, and every SST before week 3, by id): newest last,
    //    so that each lands in front of the older ones.
    let mut by_age: Vec<(&usize, &SstSummary)> = good.iter().collect();
    by_age.sort_by_key(|(id, summary)| (summary.max_ts, **id));
    for (&id, summary) in by_age {
        if placed.contains(&id) {
            continue;
        }
        let file = files.get(FileKind::Sst, id).expect("listed above").clone();
        let fate = ledger.fate(&file);
        let (adopt, guess) = match fate {
            Fate::UncommittedFlush(_) => (true, false),
            Fate::UncommittedCompaction if lost_listed => (true, true),
            Fate::Unknown => (true, true),
            _ => (false, false),
        };
        if !adopt {
            moves.push((file, fate.to_string()));
            continue;
        }
        place_flushed(&mut shape.l0, &mut shape.levels, id, shape.flush_to_l0);
        placed.insert(id);
        report.ordered_by_id |= guess;
        report.say(format!(
            "{}: {} ({} entries, keys {}): {}",
            file.path.display(),
            fate,
            summary.entries,
            summary.range,
            if guess {
                "placed by its id at the front of L0, a guess: if a compaction ran after the \
                 manifest's end, an older value may hide a newer one"
            } else {
                "adopted at the front of L0, as its flush would have placed it"
            }
        ));
    }

    // 6. The new manifest: every id below the floor that it does not list is obsolete.
    let next_id = ledger.next_id(&files);
    let mut new_records = vec![
        ManifestRecord::Floor(next_id),
        ManifestRecord::Layout(layout),
        ManifestRecord::Levels {
            l0: shape.l0.clone(),
            levels: shape.levels.clone(),
        },
    ];
    for (&id, log) in &kept {
        new_records.push(ManifestRecord::NewMemtable(id));
        new_records.push(ManifestRecord::LogSealed { id, len: log.len });
    }
    // No commit timestamp of what is kept, nor any the manifest recorded, may be given again.
    let latest_commit_ts = shape
        .listed()
        .filter_map(|id| good.get(&id).map(|s| s.max_ts))
        .chain(kept.values().map(|log| log.max_ts))
        .chain([shape.commit_ts])
        .filter(|&ts| ts != TS_DEFAULT)
        .max()
        .unwrap_or(0);
    stamp_manifest(&mut new_records, latest_commit_ts);
    report.ssts = shape.listed().collect();
    report.logs = kept.keys().copied().collect();
    for (file, why) in &moves {
        report.say(format!(
            "{}: moved to {QUARANTINE_DIR}/: {why}",
            file.path.display()
        ));
        report.quarantined.push(file.path.clone());
    }
    if !kept.is_empty() && !options.enable_wal {
        report.say("the kept logs are replayed only by an open with enable_wal = true".to_string());
    }
    report.say(format!(
        "new manifest: {} SSTs, {} memtables from logs, ids from {next_id}",
        report.ssts.len(),
        report.logs.len()
    ));
    if dry_run {
        return Ok(report);
    }

    // 7. Copy the old manifest aside, move the quarantined files, cut the kept logs, and only
    //    then replace the manifest: until that rename, `open` still sees the old one.
    let quarantine = dir.join(QUARANTINE_DIR);
    fs.create_dir_all(&quarantine)?;
    if fs.exists(&manifest_path) {
        let copy = free_name(fs, &quarantine, MANIFEST_NAME);
        let mut out = fs.create(&copy)?;
        out.append(&fs.read_all(&manifest_path)?)?;
        out.sync()?;
    }
    for (file, _) in &moves {
        let to = free_name(fs, &quarantine, &file.name());
        fs.rename(&file.path, &to)?;
    }
    for log in kept.values() {
        let Some(prefix) = &log.prefix else {
            continue;
        };
        let tmp = log.file.path.with_extension("wal.repair");
        if fs.exists(&tmp) {
            fs.remove(&tmp)?;
        }
        let mut out = fs.create(&tmp)?;
        out.append(prefix)?;
        out.sync()?;
        drop(out);
        let to = free_name(fs, &quarantine, &log.file.name());
        fs.rename(&log.file.path, &to)?;
        fs.rename(&tmp, &wal_path(dir, log.file.id))?;
        report.quarantined.push(log.file.path.clone());
    }
    fs.sync_dir(&quarantine)?;
    fs.sync_dir(dir)?;
    drop(Manifest::create(fs, dir, &new_records).context("writing the new manifest")?);
    Ok(report)
}
// ANCHOR_END: repair

/// `dir/name`, or `dir/name.1`, `dir/name.2`, ... if taken: quarantine never overwrites.
fn free_name(fs: &dyn FileSystem, dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.join(name);
    let mut n = 0;
    while fs.exists(&path) {
        n += 1;
        path = dir.join(format!("{name}.{n}"));
    }
    path
}

/// Command-line options of `mini-lsm-repair-ref` (`mini-lsm-repair` for the starter).
#[derive(clap::Parser, Debug)]
#[command(
    about = "Rebuilds the manifest of a mini-lsm database from the files that verify, and moves \
             the others into <path>/quarantine/ (it never deletes a file). Run it when `open` \
             refuses a damaged database; it prints what it kept, moved and lost."
)]
pub struct Args {
    /// The database directory.
    #[arg(long)]
    pub path: PathBuf,
    /// The database's compaction strategy: tiered compaction places SSTs in tiers, not in L0.
    #[arg(long, value_enum, default_value_t = crate::cli::CompactionChoice::None)]
    pub compaction: crate::cli::CompactionChoice,
    /// Report what would be done, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the repair of [`Args`] on the real file system and prints its report.
///
/// # Errors
/// As [`repair`].
pub fn main() -> Result<()> {
    use crate::cli::CompactionChoice;
    use crate::compact::CompactionOptions;
    let args = <Args as clap::Parser>::parse();
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.compaction_options = match args.compaction {
        CompactionChoice::None => CompactionOptions::NoCompaction,
        CompactionChoice::Simple => CompactionOptions::Simple(Default::default()),
        CompactionChoice::Tiered => CompactionOptions::Tiered(Default::default()),
        CompactionChoice::Leveled => CompactionOptions::Leveled(Default::default()),
    };
    let report = repair(&args.path, &options, args.dry_run)?;
    for line in &report.lines {
        println!("{line}");
    }
    println!(
        "{} {} files to {}",
        if args.dry_run { "would move" } else { "moved" },
        report.quarantined.len(),
        args.path.join(QUARANTINE_DIR).display()
    );
    if report.ordered_by_id {
        println!(
            "warning: some SSTs were placed by id (see above); check the values you care about"
        );
    }
    Ok(())
}
