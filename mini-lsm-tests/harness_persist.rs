// SPDX-License-Identifier: Apache-2.0
//! Helpers of the persistence chapters (week 2, days 5-7): engines on a crashable in-memory file
//! system, a `BTreeMap` model of the data, and the crash-point sweep.
#![allow(
    dead_code,
    reason = "a chapter checkpoint compiles only the tests up to it; later ones use some helpers"
)]
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::fs::{Fault, FileSystem, MemFs};
use crate::iterators::StorageIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, WriteBatchRecord};

// The PRNG and the seed come from the main harness, so that tests of these chapters can name
// them from here too.
pub(crate) use super::{test_seed, Rng};

/// Whether to run the crash and corruption sweeps in full (`MINI_LSM_FULL=1`, as
/// `cargo x ci --full` sets) rather than in their reduced form.
pub(crate) fn full_sweep() -> bool {
    std::env::var("MINI_LSM_FULL").is_ok_and(|v| v.trim() == "1")
}

// -----------------------------------------------------------------------------------------
// Engines on a MemFs

/// The database directory on a `MemFs`.
pub(crate) fn db() -> PathBuf {
    PathBuf::from("/db")
}

/// Options for an engine on `fs`: small blocks (so that small SSTs have several), the log
/// on or off, and memtables that never freeze by size.
pub(crate) fn mem_options(fs: &MemFs, wal: bool) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.block_size = 128;
    options.enable_wal = wal;
    options.fs = Arc::new(fs.clone());
    options
}

/// Opens the engine (without its flush thread) in [`db`] on `fs`.
pub(crate) fn open_mem(fs: &MemFs, wal: bool) -> Result<LsmStorageInner> {
    LsmStorageInner::open(db(), mem_options(fs, wal))
}

/// Freezes the memtable, taking the state lock as the API requires.
pub(crate) fn freeze(inner: &LsmStorageInner) -> Result<()> {
    inner.force_freeze_memtable(&inner.state_lock.lock())
}

/// Key number `i`.
pub(crate) fn key(i: usize) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// The names of the files in `dir` on `fs`.
pub(crate) fn file_names(fs: &dyn FileSystem, dir: &Path) -> Vec<String> {
    fs.list(dir)
        .expect("list the directory")
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect()
}

/// Every file directly in `dir` on `fs`, by name, with its bytes: to check that an `open`
/// that failed changed nothing.
pub(crate) fn dir_image(fs: &MemFs, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs.list(dir)
        .expect("list the directory")
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = fs.read_all(&path).expect("read a file");
            (name, bytes)
        })
        .collect()
}

/// Opens the engine on `fs` expecting an error; returns the error's text, and checks that the
/// failed `open` left every file of [`db`] exactly as it was.
pub(crate) fn open_fails_unchanged(fs: &MemFs, wal: bool, case: &str) -> String {
    let before = dir_image(fs, &db());
    let error = match open_mem(fs, wal) {
        Ok(_) => panic!("{case}: open succeeded"),
        Err(error) => format!("{error:#}"),
    };
    let after = dir_image(fs, &db());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{case}: the failed open changed the directory ({error})"
    );
    assert!(before == after, "{case}: the failed open changed a file");
    error
}

// -----------------------------------------------------------------------------------------
// The model

/// What the engine should hold: live keys only.
pub(crate) type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Shows a model (or any key-value list) readably.
pub(crate) fn show_model(model: &Model) -> String {
    let shown: Vec<String> = model
        .iter()
        .map(|(k, v)| {
            let v = if v.len() > 12 {
                format!("{}..({} bytes)", v[..8].escape_ascii(), v.len())
            } else {
                v.escape_ascii().to_string()
            };
            format!("{}={v}", k.escape_ascii())
        })
        .collect();
    format!("{{{}}}", shown.join(", "))
}

/// A value for a message: escaped, and cut after 24 bytes.
fn show_value(v: &[u8]) -> String {
    if v.len() > 24 {
        format!("{}..({} bytes)", super::show(&v[..16]), v.len())
    } else {
        super::show(v)
    }
}

/// Asserts that the engine's state `actual` is `expected`, and otherwise names the keys that
/// differ (two whole maps in a message hide the one key that matters). `context` (a
/// `format_args!`, or `""`) starts the message.
#[track_caller]
pub(crate) fn assert_state_eq(actual: &Model, expected: &Model, context: impl std::fmt::Display) {
    if actual == expected {
        return;
    }
    let mut diffs = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => diffs.push(format!(
                "{} is missing (expected {})",
                super::show(k),
                show_value(v)
            )),
            Some(a) if a != v => diffs.push(format!(
                "{} is {}, expected {}",
                super::show(k),
                show_value(a),
                show_value(v)
            )),
            Some(_) => {}
        }
    }
    for (k, v) in actual {
        if !expected.contains_key(k) {
            diffs.push(format!(
                "{} = {} should not be there",
                super::show(k),
                show_value(v)
            ));
        }
    }
    let shown = diffs.len().min(10);
    let context = context.to_string();
    panic!(
        "{}the state differs at {} keys: {}{}\n  got      {}\n  expected {}",
        if context.is_empty() {
            String::new()
        } else {
            format!("{context}: ")
        },
        diffs.len(),
        diffs[..shown].join("; "),
        if diffs.len() > shown { "; ..." } else { "" },
        show_model(actual),
        show_model(expected)
    );
}

/// Everything the engine holds, read by a full scan; `get` of every key in `probe` must agree
/// with the scan.
///
/// # Errors
/// A read error, or a `get` that disagrees with the scan.
pub(crate) fn read_state(inner: &LsmStorageInner, probe: &[Vec<u8>]) -> Result<Model> {
    let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded)?;
    let mut state = Model::new();
    while iter.is_valid() {
        if iter.value().is_empty() {
            bail!(
                "the scan returned a tombstone for {}",
                super::show(iter.key())
            );
        }
        state.insert(iter.key().to_vec(), iter.value().to_vec());
        iter.next()?;
    }
    for key in probe.iter().chain(state.keys()) {
        let got = inner.get(key)?;
        let scanned = state.get(key);
        if got.as_deref() != scanned.map(|v| &v[..]) {
            bail!(
                "get({}) returned {:?} but the scan says {:?}",
                key.escape_ascii(),
                got.map(|v| v.escape_ascii().to_string()),
                scanned.map(|v| v.escape_ascii().to_string())
            );
        }
    }
    Ok(state)
}

/// The engine's structure: what the manifest must rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub memtable: usize,
    pub imm: Vec<usize>,
    pub l0: Vec<usize>,
    pub ssts: BTreeSet<usize>,
}

impl Shape {
    /// Every id the shape uses.
    pub(crate) fn ids(&self) -> BTreeSet<usize> {
        let mut ids: BTreeSet<usize> = self.imm.iter().chain(&self.l0).copied().collect();
        ids.extend(&self.ssts);
        ids.insert(self.memtable);
        ids
    }
}

/// The engine's current structure.
pub(crate) fn shape(inner: &LsmStorageInner) -> Shape {
    let snapshot = inner.snapshot();
    Shape {
        memtable: snapshot.memtable.id(),
        imm: snapshot.imm_memtables.iter().map(|m| m.id()).collect(),
        l0: snapshot.l0_sstables.clone(),
        ssts: snapshot.sstables.keys().copied().collect(),
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".to_string()
    }
}

// -----------------------------------------------------------------------------------------
// Workloads and the crash sweep

/// One step of a workload.
#[derive(Clone)]
pub(crate) enum Step {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// `write_batch` (day 7); an empty value deletes.
    Batch(Vec<(Vec<u8>, Vec<u8>)>),
    /// A transaction (week 3 day 5) that reads and then writes each key (an empty value
    /// deletes), and commits: one write of the history, like a batch.
    Txn(Vec<(Vec<u8>, Vec<u8>)>),
    /// `sync` (a no-op without the log).
    Sync,
    /// `force_freeze_memtable`.
    Freeze,
    /// `force_flush_next_imm_memtable`.
    Flush,
    /// `trigger_compaction`: one round of the engine's compaction strategy (week 2 days 2-4).
    Compact,
    /// `force_full_compaction` (week 2 day 1).
    FullCompaction,
}

/// Keys and values as escaped byte strings, not decimal numbers.
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::show;
        match self {
            Step::Put(k, v) => write!(f, "Put({}, {})", show(k), show(v)),
            Step::Delete(k) => write!(f, "Delete({})", show(k)),
            Step::Batch(entries) | Step::Txn(entries) => {
                let shown: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("({}, {})", show(k), show(v)))
                    .collect();
                let name = if matches!(self, Step::Txn(_)) {
                    "Txn"
                } else {
                    "Batch"
                };
                write!(f, "{name}([{}])", shown.join(", "))
            }
            Step::Sync => write!(f, "Sync"),
            Step::Freeze => write!(f, "Freeze"),
            Step::Flush => write!(f, "Flush"),
            Step::Compact => write!(f, "Compact"),
            Step::FullCompaction => write!(f, "FullCompaction"),
        }
    }
}

impl Step {
    pub(crate) fn put(key: &[u8], value: &[u8]) -> Self {
        Step::Put(key.to_vec(), value.to_vec())
    }

    pub(crate) fn delete(key: &[u8]) -> Self {
        Step::Delete(key.to_vec())
    }

    /// Whether the step writes (puts, deletes, a batch or a transaction): one entry of the
    /// history.
    fn writes(&self) -> bool {
        matches!(
            self,
            Step::Put(..) | Step::Delete(_) | Step::Batch(_) | Step::Txn(_)
        )
    }

    /// Applies the write to `model`.
    fn apply(&self, model: &mut Model) {
        let mut set = |k: &Vec<u8>, v: &Vec<u8>| {
            if v.is_empty() {
                model.remove(k);
            } else {
                model.insert(k.clone(), v.clone());
            }
        };
        match self {
            Step::Put(k, v) => set(k, v),
            Step::Delete(k) => set(k, &Vec::new()),
            Step::Batch(entries) | Step::Txn(entries) => {
                entries.iter().for_each(|(k, v)| set(k, v));
            }
            Step::Sync | Step::Freeze | Step::Flush | Step::Compact | Step::FullCompaction => {}
        }
    }

    /// The keys the step writes.
    fn keys(&self) -> Vec<Vec<u8>> {
        match self {
            Step::Put(k, _) | Step::Delete(k) => vec![k.clone()],
            Step::Batch(entries) | Step::Txn(entries) => {
                entries.iter().map(|(k, _)| k.clone()).collect()
            }
            Step::Sync | Step::Freeze | Step::Flush | Step::Compact | Step::FullCompaction => {
                Vec::new()
            }
        }
    }
}

/// What running a workload established.
pub(crate) struct Run {
    /// `models[k]`: the model after the first `k` writes of the history (a batch is one).
    /// The last one may belong to a write that failed: it may or may not have happened.
    pub models: Vec<Model>,
    /// How many writes every crash from now on must keep: those acknowledged before a
    /// `sync` that returned (with the log on), or in a memtable whose flush returned.
    pub durable: usize,
    /// The error that stopped the workload, if one did.
    pub error: Option<String>,
    /// `commit_ts[k]`: the engine's latest commit timestamp after the first `k` writes (week 3;
    /// always 0 before week 3 day 3).
    pub commit_ts: Vec<u64>,
}

impl Run {
    fn empty() -> Self {
        Run {
            models: vec![Model::new()],
            durable: 0,
            error: None,
            commit_ts: vec![0],
        }
    }
}

/// Runs `steps` on `inner`, stopping at the first error (a crash makes every later file
/// operation fail).
pub(crate) fn run_steps(inner: &LsmStorageInner, steps: &[Step], wal: bool) -> Run {
    let mut run = Run::empty();
    run.commit_ts = vec![inner.latest_commit_ts()];
    // The number of writes before each freeze of a memtable not yet flushed, oldest first.
    let mut frozen_at: VecDeque<usize> = VecDeque::new();
    for step in steps {
        if step.writes() {
            let mut model = run.models.last().expect("never empty").clone();
            step.apply(&mut model);
            run.models.push(model);
        }
        let writes = run.models.len() - 1;
        let result = match step {
            Step::Put(k, v) => inner.put(k, v),
            Step::Delete(k) => inner.delete(k),
            Step::Batch(entries) => {
                let batch: Vec<WriteBatchRecord<&[u8]>> = entries
                    .iter()
                    .map(|(k, v)| {
                        if v.is_empty() {
                            WriteBatchRecord::Del(&k[..])
                        } else {
                            WriteBatchRecord::Put(&k[..], &v[..])
                        }
                    })
                    .collect();
                inner.write_batch(&batch)
            }
            Step::Txn(entries) => run_txn(inner, entries),
            Step::Sync => inner.sync().map(|()| {
                if wal {
                    run.durable = writes;
                }
            }),
            Step::Freeze => freeze(inner).map(|()| frozen_at.push_back(writes)),
            Step::Compact => inner.trigger_compaction(),
            Step::FullCompaction => inner.force_full_compaction(),
            Step::Flush => {
                let waiting = !inner.snapshot().imm_memtables.is_empty();
                inner.force_flush_next_imm_memtable().map(|()| {
                    if let Some(at) = waiting.then(|| frozen_at.pop_front()).flatten() {
                        run.durable = run.durable.max(at);
                    }
                })
            }
        };
        if step.writes() {
            run.commit_ts.push(inner.latest_commit_ts());
        }
        if let Err(error) = result {
            run.error = Some(format!("{error:#}"));
            break;
        }
    }
    run
}

/// Runs a transaction that reads each key of `entries` and then writes it (an empty value
/// deletes), and commits it.
fn run_txn(inner: &LsmStorageInner, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    let mut txn = inner.new_txn();
    for (k, v) in entries {
        txn.get(k)?;
        if v.is_empty() {
            txn.delete(k)?;
        } else {
            txn.put(k, v)?;
        }
    }
    txn.commit().map(drop)
}

/// Every key a workload writes.
pub(crate) fn keys_of(steps: &[Step]) -> Vec<Vec<u8>> {
    let keys: BTreeSet<Vec<u8>> = steps.iter().flat_map(Step::keys).collect();
    keys.into_iter().collect()
}

/// Opens the engine on a crash image and checks the recovered state against the run: it must
/// equal the model after some `k` writes with `durable <= k`, and with `timestamps` (week 3),
/// the recovered latest commit timestamp must be at least that of write `k`, so that no later
/// commit reuses one. Returns the state and how many file operations the recovery made.
///
/// # Errors
/// A failure message (recovery failed, a read failed or panicked, the state is not such a
/// prefix, or a timestamp would be reused); `lost` counts the durable writes missing from the
/// best matching prefix.
fn check_recovery(
    image: &MemFs,
    open: Opener<'_>,
    run: &Run,
    probe: &[Vec<u8>],
    lost: &mut usize,
    timestamps: bool,
) -> std::result::Result<(Model, u64), String> {
    let opened = catch_unwind(AssertUnwindSafe(|| -> Result<(Model, u64)> {
        let inner = open(image)?;
        Ok((read_state(&inner, probe)?, inner.latest_commit_ts()))
    }));
    let (state, latest) = match opened {
        Ok(Ok(state)) => state,
        Ok(Err(error)) => return Err(format!("recovery or a read failed: {error:#}")),
        Err(panic) => return Err(format!("recovery panicked: {}", panic_message(&panic))),
    };
    let ops = image.ops();
    let Some(k) = (0..run.models.len())
        .rev()
        .find(|&k| run.models[k] == state)
    else {
        return Err(format!(
            "the recovered state is no prefix of the {} writes: {}",
            run.models.len() - 1,
            show_model(&state)
        ));
    };
    if k < run.durable {
        *lost += run.durable - k;
        return Err(format!(
            "lost acknowledged, durable writes: the state is that after {k} writes, but the \
             first {} were durable: {}",
            run.durable,
            show_model(&state)
        ));
    }
    if timestamps && latest < run.commit_ts[k] {
        return Err(format!(
            "the recovered latest commit timestamp is {latest}, but the state holds write {k}, \
             committed at {}: the next commit would reuse a timestamp",
            run.commit_ts[k]
        ));
    }
    Ok((state, ops))
}

/// What a crash sweep covered.
#[derive(Debug, Default)]
pub(crate) struct SweepStats {
    /// Crash points of the workload (operations times tear settings).
    pub crash_points: usize,
    /// Crashes injected into the recovery of a crash image.
    pub recovery_crash_points: usize,
    /// Durable writes that a recovered state lacked.
    pub lost: usize,
    /// Failures, as messages.
    pub failures: Vec<String>,
}

/// Runs `steps` on a fresh engine crashing at every file operation in turn (both with and
/// without tearing the last write), and checks that the crash image recovers to a prefix of
/// the history holding every durable write; then crashes each such recovery at (a sample of,
/// or with `MINI_LSM_FULL=1` every one of) its own operations and checks that the second
/// recovery finds exactly what an uninterrupted one does; and that every recovered engine
/// takes new writes that survive the next crash. Panics with every failure, after printing
/// what it covered.
#[track_caller]
pub(crate) fn crash_sweep(name: &str, wal: bool, steps: &[Step]) -> SweepStats {
    crash_sweep_with(name, wal, &|fs| open_mem(fs, wal), steps)
}

/// How a sweep opens the engine on a file system.
pub(crate) type Opener<'a> = &'a dyn Fn(&MemFs) -> Result<LsmStorageInner>;

/// [`crash_sweep`], opening the engine with `open` (for other options, such as a compaction
/// strategy).
#[track_caller]
pub(crate) fn crash_sweep_with(
    name: &str,
    wal: bool,
    open: Opener<'_>,
    steps: &[Step],
) -> SweepStats {
    sweep(name, wal, open, steps, false)
}

/// [`crash_sweep_with`] for week 3: every recovery must also start the commit timestamp at or
/// above that of the last write it recovered, and each workload must give every write a value
/// of its own (so that the recovered state names exactly one prefix).
pub(crate) fn crash_sweep_timestamps(
    name: &str,
    wal: bool,
    open: Opener<'_>,
    steps: &[Step],
) -> SweepStats {
    sweep(name, wal, open, steps, true)
}

/// The crash sweep (see [`crash_sweep`]); `timestamps` adds the check of week 3.
fn sweep(name: &str, wal: bool, open: Opener<'_>, steps: &[Step], timestamps: bool) -> SweepStats {
    let full = full_sweep();
    let probe = keys_of(steps);
    let fs = MemFs::new();
    let inner = open(&fs).expect("open the engine");
    let clean = run_steps(&inner, steps, wal);
    assert!(
        clean.error.is_none(),
        "{name}: the workload fails with no crash: {:?}",
        clean.error
    );
    drop(inner);
    let total_ops = fs.ops();
    let mut stats = SweepStats::default();
    for op in 0..=total_ops {
        for tear_last_write in [false, true] {
            let fs = MemFs::new();
            fs.set_fault(Some(Fault::CrashAt {
                op,
                tear_last_write,
            }));
            let run = match open(&fs) {
                Ok(inner) => run_steps(&inner, steps, wal),
                Err(_) => Run::empty(),
            };
            if !fs.has_crashed() {
                fs.crash_now(tear_last_write);
            }
            stats.crash_points += 1;
            let case = format!(
                "crash at operation {op} of {total_ops} (tear_last_write: {tear_last_write}, \
                 workload stopped by: {})",
                run.error.as_deref().unwrap_or("nothing")
            );
            let image = || fs.crash_image().expect("the file system crashed");
            let (state, recovery_ops) =
                match check_recovery(&image(), open, &run, &probe, &mut stats.lost, timestamps) {
                    Ok(found) => found,
                    Err(failure) => {
                        stats.failures.push(format!("{case}: {failure}"));
                        continue;
                    }
                };
            // Crash the recovery itself, then recover again.
            let points: Vec<(u64, bool)> = if full {
                (0..recovery_ops)
                    .flat_map(|m| [(m, false), (m, true)])
                    .collect()
            } else {
                let pick = |salt: u64| (op * 7 + salt) % recovery_ops.max(1);
                vec![(pick(0), tear_last_write), (pick(3), !tear_last_write)]
            };
            for (m, tear) in points.into_iter().filter(|(m, _)| *m < recovery_ops) {
                stats.recovery_crash_points += 1;
                let second = image();
                second.set_fault(Some(Fault::CrashAt {
                    op: m,
                    tear_last_write: tear,
                }));
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| open(&second).map(drop))) {
                    stats.failures.push(format!(
                        "{case}, then a crash at operation {m} of the recovery (tear: \
                         {tear}): the recovery panicked: {}",
                        panic_message(&panic)
                    ));
                    continue;
                }
                if !second.has_crashed() {
                    second.crash_now(tear);
                }
                let third = second.crash_image().expect("crashed");
                match check_recovery(&third, open, &run, &probe, &mut stats.lost, timestamps) {
                    Ok((again, _)) if again == state => {}
                    Ok((again, _)) => stats.failures.push(format!(
                        "{case}, then a crash at operation {m} of the recovery (tear: \
                         {tear}): the state differs from an uninterrupted recovery's\n  \
                         got      {}\n  expected {}",
                        show_model(&again),
                        show_model(&state)
                    )),
                    Err(failure) => stats.failures.push(format!(
                        "{case}, then a crash at operation {m} of the recovery (tear: \
                         {tear}): {failure}"
                    )),
                }
            }
            if let Err(failure) = continue_after_recovery(&image(), open, &state, &probe) {
                stats
                    .failures
                    .push(format!("{case}, writing after the recovery: {failure}"));
            }
        }
    }
    println!(
        "{name}: {} crash points ({} file operations, torn and not), {} crashes during \
         recovery{}, {} acknowledged durable writes lost, {} failures",
        stats.crash_points,
        total_ops + 1,
        stats.recovery_crash_points,
        if full {
            " (all)"
        } else {
            " (a sample; MINI_LSM_FULL=1 for all)"
        },
        stats.lost,
        stats.failures.len()
    );
    assert!(
        stats.failures.is_empty() && stats.lost == 0,
        "{name}: {} failures, {} durable writes lost; the first ones:\n{}",
        stats.failures.len(),
        stats.lost,
        stats.failures[..stats.failures.len().min(5)].join("\n")
    );
    stats
}

/// Recovers `image`, writes a new key and flushes everything, crashes, and recovers again:
/// the new key must be there beside the recovered `state`, so the recovery left an engine
/// whose new files collide with no old one.
fn continue_after_recovery(
    image: &MemFs,
    open: Opener<'_>,
    state: &Model,
    probe: &[Vec<u8>],
) -> std::result::Result<(), String> {
    let marker = (b"~marker".to_vec(), b"written after the recovery".to_vec());
    let write = || -> Result<()> {
        let inner = open(image)?;
        inner.put(&marker.0, &marker.1)?;
        inner.sync()?;
        freeze(&inner)?;
        while !inner.snapshot().imm_memtables.is_empty() {
            inner.force_flush_next_imm_memtable()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("{e:#}"))?;
    let after = image.crash_now(false);
    let inner = open(&after).map_err(|e| format!("reopen: {e:#}"))?;
    let found = read_state(&inner, probe).map_err(|e| format!("{e:#}"))?;
    let mut expected = state.clone();
    expected.insert(marker.0, marker.1);
    if found != expected {
        return Err(format!(
            "the state differs\n  got      {}\n  expected {}",
            show_model(&found),
            show_model(&expected)
        ));
    }
    Ok(())
}
