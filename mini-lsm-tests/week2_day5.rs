// SPDX-License-Identifier: Apache-2.0
//! Week 2 day 5: the manifest. Its records round-trip; `open` rebuilds the exact state from it
//! after a close or a crash; files it does not list are removed and reported; a torn tail is
//! dropped and reported, a corrupt middle record is an error; ids never restart; and a crash at
//! any file operation of a workload of flushes leaves a state that `open` recovers.
//!
//! Every test here runs without the write-ahead log (day 6) and without record checksums (day 7).
//! The `util` module holds the helpers of the persistence chapters; days 6 and 7 use it too.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use self::util::{
    crash_sweep, db, file_names, freeze, key, mem_options, open_mem, read_state, shape, Model, Step,
};
use crate::fs::{Fault, FileSystem, MemFs, RealFs};
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm};
use crate::manifest::{Manifest, ManifestRecord, MANIFEST_NAME};
use crate::table::sst_path;
use crate::wal::wal_path;

/// Helpers of the persistence chapters: a seeded PRNG, engines on a crashable in-memory file
/// system, a `BTreeMap` model, and the crash-point sweep.
#[allow(
    dead_code,
    reason = "a chapter checkpoint compiles only the tests up to it; later ones use some helpers"
)]
pub(crate) mod util {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    use std::ops::Bound;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use anyhow::{bail, Result};

    use crate::fs::{Fault, FileSystem, MemFs};
    use crate::iterators::StorageIterator;
    use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, WriteBatchRecord};

    // -----------------------------------------------------------------------------------------
    // Randomness

    /// SplitMix64: a tiny, good-enough PRNG, so that tests need no `rand`.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed)
        }

        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// A number in `0..n`; `n` must be positive.
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        /// True with probability `percent`%.
        pub(crate) fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// The seed of a randomized test: `MINI_LSM_SEED` if set (to replay a failure), else the
    /// clock. Printed first, so that a failing test's output always says how to replay it.
    pub(crate) fn test_seed() -> u64 {
        let seed = match std::env::var("MINI_LSM_SEED") {
            Ok(text) => text
                .trim()
                .parse()
                .expect("MINI_LSM_SEED must be an unsigned integer"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        println!("seed = {seed} (replay with MINI_LSM_SEED={seed})");
        seed
    }

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
                bail!("the scan returned a tombstone for {:?}", iter.key());
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
    #[derive(Debug, Clone)]
    pub(crate) enum Step {
        Put(Vec<u8>, Vec<u8>),
        Delete(Vec<u8>),
        /// `write_batch` (day 7); an empty value deletes.
        Batch(Vec<(Vec<u8>, Vec<u8>)>),
        /// `sync` (a no-op without the log).
        Sync,
        /// `force_freeze_memtable`.
        Freeze,
        /// `force_flush_next_imm_memtable`.
        Flush,
    }

    impl Step {
        pub(crate) fn put(key: &[u8], value: &[u8]) -> Self {
            Step::Put(key.to_vec(), value.to_vec())
        }

        pub(crate) fn delete(key: &[u8]) -> Self {
            Step::Delete(key.to_vec())
        }

        /// Whether the step writes (puts, deletes or a batch): one entry of the history.
        fn writes(&self) -> bool {
            matches!(self, Step::Put(..) | Step::Delete(_) | Step::Batch(_))
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
                Step::Batch(entries) => entries.iter().for_each(|(k, v)| set(k, v)),
                Step::Sync | Step::Freeze | Step::Flush => {}
            }
        }

        /// The keys the step writes.
        fn keys(&self) -> Vec<Vec<u8>> {
            match self {
                Step::Put(k, _) | Step::Delete(k) => vec![k.clone()],
                Step::Batch(entries) => entries.iter().map(|(k, _)| k.clone()).collect(),
                Step::Sync | Step::Freeze | Step::Flush => Vec::new(),
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
    }

    impl Run {
        fn empty() -> Self {
            Run {
                models: vec![Model::new()],
                durable: 0,
                error: None,
            }
        }
    }

    /// Runs `steps` on `inner`, stopping at the first error (a crash makes every later file
    /// operation fail).
    pub(crate) fn run_steps(inner: &LsmStorageInner, steps: &[Step], wal: bool) -> Run {
        let mut run = Run::empty();
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
                Step::Sync => inner.sync().map(|()| {
                    if wal {
                        run.durable = writes;
                    }
                }),
                Step::Freeze => freeze(inner).map(|()| frozen_at.push_back(writes)),
                Step::Flush => {
                    let waiting = !inner.snapshot().imm_memtables.is_empty();
                    inner.force_flush_next_imm_memtable().map(|()| {
                        if let Some(at) = waiting.then(|| frozen_at.pop_front()).flatten() {
                            run.durable = run.durable.max(at);
                        }
                    })
                }
            };
            if let Err(error) = result {
                run.error = Some(format!("{error:#}"));
                break;
            }
        }
        run
    }

    /// Every key a workload writes.
    pub(crate) fn keys_of(steps: &[Step]) -> Vec<Vec<u8>> {
        let keys: BTreeSet<Vec<u8>> = steps.iter().flat_map(Step::keys).collect();
        keys.into_iter().collect()
    }

    /// Opens the engine on a crash image and checks the recovered state against the run: it must
    /// equal the model after some `k` writes with `durable <= k`. Returns the state and how many
    /// file operations the recovery made.
    ///
    /// # Errors
    /// A failure message (recovery failed, a read failed or panicked, or the state is not such a
    /// prefix); `lost` counts the durable writes missing from the best matching prefix.
    fn check_recovery(
        image: &MemFs,
        wal: bool,
        run: &Run,
        probe: &[Vec<u8>],
        lost: &mut usize,
    ) -> std::result::Result<(Model, u64), String> {
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<Model> {
            let inner = open_mem(image, wal)?;
            read_state(&inner, probe)
        }));
        let state = match opened {
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
    pub(crate) fn crash_sweep(name: &str, wal: bool, steps: &[Step]) -> SweepStats {
        let full = full_sweep();
        let probe = keys_of(steps);
        let fs = MemFs::new();
        let inner = open_mem(&fs, wal).expect("open the engine");
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
                let run = match open_mem(&fs, wal) {
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
                    match check_recovery(&image(), wal, &run, &probe, &mut stats.lost) {
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
                    if let Err(panic) =
                        catch_unwind(AssertUnwindSafe(|| open_mem(&second, wal).map(drop)))
                    {
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
                    match check_recovery(&third, wal, &run, &probe, &mut stats.lost) {
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
                if let Err(failure) = continue_after_recovery(&image(), wal, &state, &probe) {
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
        wal: bool,
        state: &Model,
        probe: &[Vec<u8>],
    ) -> std::result::Result<(), String> {
        let marker = (b"~marker".to_vec(), b"written after the recovery".to_vec());
        let write = || -> Result<()> {
            let inner = open_mem(image, wal)?;
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
        let inner = open_mem(&after, wal).map_err(|e| format!("reopen: {e:#}"))?;
        let found = read_state(&inner, probe).map_err(|e| format!("{e:#}"))?;
        let mut expected = state.clone();
        expected.insert(marker.0, marker.1);
        if found != expected {
            return Err(format!(
                "\n  got      {}\n  expected {}",
                show_model(&found),
                show_model(&expected)
            ));
        }
        Ok(())
    }
}

/// Builds a few L0 SSTs on `fs` (without the log), with overwrites and a deletion across them
/// and an empty memtable frozen and flushed in between. Returns the engine and the model.
fn three_ssts(fs: &MemFs) -> (LsmStorageInner, Model) {
    let inner = open_mem(fs, false).unwrap();
    let mut model = Model::new();
    let rounds: [&[(usize, &str)]; 4] = [
        &[(1, "a"), (2, "a"), (3, "a")],
        &[(2, "b"), (4, "b")],
        &[],
        &[(3, ""), (4, "d"), (5, "d")],
    ];
    for writes in rounds {
        for &(i, value) in writes {
            if value.is_empty() {
                inner.delete(&key(i)).unwrap();
                model.remove(&key(i));
            } else {
                inner.put(&key(i), value.as_bytes()).unwrap();
                model.insert(key(i), value.as_bytes().to_vec());
            }
        }
        freeze(&inner).unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
    }
    assert_eq!(inner.snapshot().l0_sstables.len(), 3, "{}", inner.dump());
    (inner, model)
}

/// The offset of every record's tag byte in a manifest, whichever framing this chapter's code
/// writes: `len payload` before week 2 day 7, `len len_crc payload crc` from then on.
fn record_tags(log: &[u8]) -> Vec<usize> {
    let parse = |header: usize, trailer: usize| -> Option<Vec<usize>> {
        let mut tags = Vec::new();
        let mut pos = 0;
        while pos < log.len() {
            let len = u32::from_be_bytes(log.get(pos..pos + 4)?.try_into().ok()?) as usize;
            if !(1..=3).contains(log.get(pos + header)?) {
                return None;
            }
            tags.push(pos + header);
            pos += header + len + trailer;
        }
        (pos == log.len()).then_some(tags)
    };
    match (parse(4, 0), parse(8, 4)) {
        (Some(tags), None) | (None, Some(tags)) => tags,
        other => panic!("cannot tell the manifest's framing: {other:?}"),
    }
}

/// The ids `0..20`, as keys to probe with `get`.
fn probe_keys() -> Vec<Vec<u8>> {
    (0..20).map(key).collect()
}

/// Every record kind decodes to itself; a cut, padded or unknown payload is an error.
#[test]
fn test_task1_record_codec_round_trip() {
    let records = [
        ManifestRecord::NewMemtable(0),
        ManifestRecord::NewMemtable(u32::MAX as usize + 7),
        ManifestRecord::Flush(12),
        ManifestRecord::Levels {
            l0: vec![],
            levels: vec![],
        },
        ManifestRecord::Levels {
            l0: vec![9, 3, 1],
            levels: vec![(1, vec![2, 4, 8]), (2, vec![]), (3, vec![5])],
        },
    ];
    for record in &records {
        let mut payload = Vec::new();
        record.encode(&mut payload);
        assert_eq!(
            &ManifestRecord::decode(&payload).unwrap(),
            record,
            "decode(encode(r)) != r"
        );
        for cut in 0..payload.len() {
            assert!(
                ManifestRecord::decode(&payload[..cut]).is_err(),
                "{record:?} cut to {cut} of {} bytes decoded",
                payload.len()
            );
        }
        let mut padded = payload.clone();
        padded.push(0);
        assert!(
            ManifestRecord::decode(&padded).is_err(),
            "{record:?} with a stray byte after it decoded"
        );
    }
    let mut payload = Vec::new();
    ManifestRecord::Flush(1).encode(&mut payload);
    for tag in [0, 0x7f, 0xff] {
        payload[0] = tag;
        assert!(
            ManifestRecord::decode(&payload).is_err(),
            "a record with the unknown tag {tag} decoded"
        );
    }
}

/// `create` and `add_record` write records that read back in order, each durable on return.
#[test]
fn test_task1_manifest_file_round_trip() {
    let dir = db();
    let initial = vec![
        ManifestRecord::Levels {
            l0: vec![3, 1],
            levels: vec![],
        },
        ManifestRecord::NewMemtable(4),
    ];
    let added = [
        ManifestRecord::NewMemtable(5),
        ManifestRecord::Flush(4),
        ManifestRecord::Levels {
            l0: vec![],
            levels: vec![(1, vec![1, 3, 4])],
        },
    ];
    {
        let fs = MemFs::new();
        fs.create_dir_all(&dir).unwrap();
        assert!(
            Manifest::recover(&fs, &dir).unwrap().is_none(),
            "an empty directory has no manifest"
        );
    }
    for durable in 0..=added.len() {
        let fs = MemFs::new();
        fs.create_dir_all(&dir).unwrap();
        let manifest = Manifest::create(&fs, &dir, &initial).unwrap();
        let state_lock = Mutex::new(());
        for record in &added[..durable] {
            manifest.add_record(&state_lock.lock(), record).unwrap();
        }
        // A crash right after the last call returned: every record must be there.
        let image = fs.crash_now(false);
        let recovered = Manifest::recover(&image, &dir)
            .unwrap()
            .expect("the manifest survives the crash");
        let expected: Vec<ManifestRecord> =
            initial.iter().chain(&added[..durable]).cloned().collect();
        assert_eq!(recovered.records, expected, "after {durable} added records");
        assert_eq!(recovered.torn_tail_at, None);
    }
}

/// `create` replaces a manifest atomically: a crash at any point leaves the old or the new one.
#[test]
fn test_task1_manifest_replace_is_atomic() {
    let dir = db();
    let old = vec![ManifestRecord::NewMemtable(1), ManifestRecord::Flush(1)];
    let new = vec![
        ManifestRecord::Levels {
            l0: vec![1],
            levels: vec![],
        },
        ManifestRecord::NewMemtable(2),
    ];
    let setup = |fs: &MemFs| {
        fs.create_dir_all(&dir).unwrap();
        drop(Manifest::create(fs, &dir, &old).unwrap());
    };
    let fs = MemFs::new();
    setup(&fs);
    let start = fs.ops();
    drop(Manifest::create(&fs, &dir, &new).unwrap());
    let end = fs.ops();
    assert_eq!(
        Manifest::recover(&fs, &dir).unwrap().unwrap().records,
        new,
        "the new manifest replaces the old"
    );
    assert_eq!(
        file_names(&fs, &dir),
        vec![MANIFEST_NAME.to_string()],
        "only the manifest is left"
    );
    for op in start..end {
        for tear_last_write in [false, true] {
            let fs = MemFs::new();
            setup(&fs);
            fs.set_fault(Some(Fault::CrashAt {
                op,
                tear_last_write,
            }));
            assert!(
                Manifest::create(&fs, &dir, &new).is_err(),
                "the crash fails the call"
            );
            let image = fs.crash_image().unwrap();
            let found = Manifest::recover(&image, &dir)
                .unwrap_or_else(|e| panic!("crash at {op}: {e:#}"))
                .expect("a manifest is always there");
            assert!(
                found.records == old || found.records == new,
                "crash at operation {op} (tear {tear_last_write}): neither the old nor the new \
                 manifest: {:?}",
                found.records
            );
            assert_eq!(found.torn_tail_at, None, "crash at operation {op}");
        }
    }
}

/// Reopening rebuilds the exact L0 (ids and order) and data; every new id is above the old ones.
#[test]
fn test_task2_reopen_rebuilds_exact_state() {
    let fs = MemFs::new();
    let (inner, model) = three_ssts(&fs);
    let before = shape(&inner);
    drop(inner);
    let inner = open_mem(&fs, false).unwrap();
    let after = shape(&inner);
    assert_eq!(after.l0, before.l0, "L0 ids and order after reopen");
    assert_eq!(after.ssts, before.ssts, "the open SSTs after reopen");
    assert!(after.imm.is_empty(), "no log, no memtable to recover");
    assert!(
        before.ids().iter().all(|&id| after.memtable > id),
        "the new memtable's id {} must be above every old id {:?}",
        after.memtable,
        before.ids()
    );
    assert_eq!(read_state(&inner, &probe_keys()).unwrap(), model);
    assert!(
        inner.recovery_report().is_empty(),
        "a clean reopen has nothing to report: {:?}",
        inner.recovery_report()
    );
}

/// After a crash, `open` rebuilds the flushed SSTs exactly; unflushed writes are gone (no log).
#[test]
fn test_task2_crash_rebuilds_flushed_state() {
    let fs = MemFs::new();
    let (inner, model) = three_ssts(&fs);
    let before = shape(&inner);
    inner.put(&key(1), b"unflushed").unwrap();
    freeze(&inner).unwrap();
    inner.put(&key(9), b"unflushed").unwrap();
    let ids = shape(&inner).ids();
    let image = fs.crash_now(true);
    let inner = open_mem(&image, false).unwrap();
    let after = shape(&inner);
    assert_eq!(after.l0, before.l0, "L0 after the crash");
    assert_eq!(after.ssts, before.ssts, "SSTs after the crash");
    assert!(
        ids.iter().all(|&id| after.memtable > id),
        "the new memtable's id {} reuses one of {ids:?}",
        after.memtable
    );
    assert_eq!(read_state(&inner, &probe_keys()).unwrap(), model);
}

/// Engine files the manifest does not list are removed and reported; other files are kept.
#[test]
fn test_task2_stray_files_removed_and_reported() {
    let fs = MemFs::new();
    let (inner, model) = three_ssts(&fs);
    let before = shape(&inner);
    drop(inner);
    let dir = db();
    let stray_sst = sst_path(&dir, 90);
    let stray_wal = wal_path(&dir, 91);
    // An SST of a flush that crashed before its manifest record: a valid copy of a listed one.
    let copy = fs.read_all(&sst_path(&dir, before.l0[0])).unwrap();
    fs.overwrite(&stray_sst, copy);
    fs.overwrite(&stray_wal, b"a log the manifest never mentioned".to_vec());
    let foreign = [
        "NOTES.txt",
        "backup.sst.old",
        "x.sst",
        "wal",
        "00007.sstable",
    ];
    for name in foreign {
        fs.overwrite(&dir.join(name), b"not the engine's".to_vec());
    }
    let inner = open_mem(&fs, false).unwrap();
    for stray in [&stray_sst, &stray_wal] {
        assert!(!fs.exists(stray), "{} was not removed", stray.display());
        let name = stray.file_name().unwrap().to_str().unwrap();
        assert!(
            inner
                .recovery_report()
                .iter()
                .any(|line| line.contains(name)),
            "the removal of {name} is not reported: {:?}",
            inner.recovery_report()
        );
    }
    for name in foreign {
        assert!(
            fs.exists(&dir.join(name)),
            "the foreign file {name} was removed"
        );
        let path = dir.join(name).display().to_string();
        assert!(
            !inner
                .recovery_report()
                .iter()
                .any(|line| line.contains(&path)),
            "{name} is reported: {:?}",
            inner.recovery_report()
        );
    }
    for id in &before.ssts {
        assert!(fs.exists(&sst_path(&dir, *id)), "listed SST {id} removed");
    }
    assert_eq!(shape(&inner).l0, before.l0);
    assert_eq!(read_state(&inner, &probe_keys()).unwrap(), model);
}

/// A manifest whose last record is cut short loses that record only, and `open` reports it.
#[test]
fn test_task2_torn_manifest_tail_dropped_and_reported() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    let manifest = db().join(MANIFEST_NAME);
    let mut model = read_state(&inner, &probe_keys()).unwrap();
    let before = shape(&inner);
    let start = fs.read_all(&manifest).unwrap().len();
    inner.put(&key(7), b"last").unwrap();
    freeze(&inner).unwrap();
    let middle = fs.read_all(&manifest).unwrap().len();
    inner.force_flush_next_imm_memtable().unwrap();
    let flushed = shape(&inner).l0[0];
    drop(inner);
    let whole = fs.read_all(&manifest).unwrap();
    assert!(
        start < middle && middle < whole.len(),
        "a freeze and a flush add records"
    );
    // Cut inside the last record (the flush): the flush is lost, and so is its SST.
    for cut in middle + 1..whole.len() {
        let image = fs.crash_now(false);
        image.overwrite(&manifest, whole[..cut].to_vec());
        let inner = open_mem(&image, false).unwrap_or_else(|e| panic!("cut at {cut}: {e:#}"));
        let report = inner.recovery_report().join("\n");
        assert!(
            report.contains(MANIFEST_NAME),
            "cut at {cut} of {}: the dropped record is not reported: {report}",
            whole.len()
        );
        assert_eq!(shape(&inner).l0, before.l0, "cut at {cut}");
        assert!(
            !image.exists(&sst_path(&db(), flushed)),
            "the unlisted SST is left"
        );
        assert_eq!(
            read_state(&inner, &probe_keys()).unwrap(),
            model,
            "cut at {cut}"
        );
    }
    // Cut at the end of a record: a shorter, valid manifest, with nothing to report about it.
    let image = fs.crash_now(false);
    image.overwrite(&manifest, whole[..middle].to_vec());
    let inner = open_mem(&image, false).unwrap();
    assert!(
        !inner
            .recovery_report()
            .iter()
            .any(|line| line.contains(MANIFEST_NAME)),
        "a manifest cut at a record boundary is not torn: {:?}",
        inner.recovery_report()
    );
    assert_eq!(shape(&inner).l0, before.l0);
    // The whole manifest: the flush is there.
    let inner = open_mem(&fs.crash_now(false), false).unwrap();
    model.insert(key(7), b"last".to_vec());
    assert_eq!(shape(&inner).l0[0], flushed);
    assert_eq!(read_state(&inner, &probe_keys()).unwrap(), model);
}

/// A damaged record before the last one is an error naming the manifest, not a silent repair.
#[test]
fn test_task2_corrupt_middle_record_is_an_error() {
    let fs = MemFs::new();
    let (inner, _) = three_ssts(&fs);
    drop(inner);
    let manifest = db().join(MANIFEST_NAME);
    let whole = fs.read_all(&manifest).unwrap();
    let tags = record_tags(&whole);
    assert!(tags.len() >= 4, "records: {tags:?}");
    // The tag byte of the first record, and of one in the middle: an unknown tag.
    for record in [0, tags.len() / 2] {
        let mut damaged = whole.clone();
        damaged[tags[record]] = 0x7f;
        let image = fs.crash_now(false);
        image.overwrite(&manifest, damaged);
        let error = match open_mem(&image, false) {
            Ok(_) => panic!(
                "record {record} of {} is damaged, yet open succeeded",
                tags.len()
            ),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            error.contains(MANIFEST_NAME),
            "the error must name the manifest: {error}"
        );
    }
}

/// A write after a reopen shadows older ones: ids keep growing across reopens (real files).
#[test]
fn test_task2_new_writes_shadow_old_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.fs = Arc::new(RealFs);
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    for round in 1..=4 {
        let inner = LsmStorageInner::open(dir.path(), options.clone()).unwrap();
        let now = shape(&inner);
        if let Some(&max) = seen.last() {
            assert!(
                now.ids()
                    .iter()
                    .filter(|id| !seen.contains(id))
                    .all(|&id| id > max),
                "round {round}: new ids {:?} are not above every old id {seen:?}",
                now.ids()
            );
        }
        if round > 1 {
            let expected = format!("v{}", round - 1);
            assert_eq!(
                inner.get(b"k").unwrap().as_deref(),
                Some(expected.as_bytes()),
                "round {round}: the newest write must win\n{}",
                inner.dump()
            );
        }
        inner.put(b"k", format!("v{round}").as_bytes()).unwrap();
        inner.put(format!("only{round}").as_bytes(), b"x").unwrap();
        freeze(&inner).unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
        seen.extend(shape(&inner).ids());
    }
    let inner = LsmStorageInner::open(dir.path(), options).unwrap();
    assert_eq!(inner.get(b"k").unwrap().as_deref(), Some(&b"v4"[..]));
    for round in 1..=4 {
        assert!(inner
            .get(format!("only{round}").as_bytes())
            .unwrap()
            .is_some());
    }
}

/// A crash at any file operation of flushes, or of the recovery, keeps a prefix with every flush.
#[test]
fn test_task3_crash_at_every_operation_of_flushes() {
    let mut steps = Vec::new();
    let rounds: [(&[usize], &[usize]); 5] = [
        (&[1, 2, 3], &[]),
        (&[2, 4], &[1]),
        (&[], &[]),
        (&[5, 1, 6], &[4]),
        (&[3, 7], &[2, 5]),
    ];
    for (round, (puts, deletes)) in rounds.iter().enumerate() {
        for &i in *puts {
            steps.push(Step::put(&key(i), format!("r{round}").as_bytes()));
        }
        for &i in *deletes {
            steps.push(Step::delete(&key(i)));
        }
        steps.push(Step::Freeze);
        // Round 1 waits and is flushed together with round 3: two memtables queued.
        if round != 1 {
            steps.push(Step::Flush);
        }
        if round == 3 {
            steps.push(Step::Flush);
        }
    }
    steps.push(Step::put(&key(8), b"never flushed"));
    crash_sweep("manifest crash sweep (no log)", false, &steps);
}

/// Without a log, `close` flushes every memtable, so that a crash after it loses nothing.
#[test]
fn test_task4_close_flushes_memtables_without_wal() {
    let fs = MemFs::new();
    let lsm = MiniLsm::open(db(), mem_options(&fs, false)).unwrap();
    let mut model = Model::new();
    for i in 0..30 {
        let value = format!("v{i}").into_bytes();
        lsm.put(&key(i % 12), &value).unwrap();
        model.insert(key(i % 12), value);
        if i % 10 == 9 {
            freeze(&lsm.inner).unwrap();
        }
    }
    lsm.delete(&key(3)).unwrap();
    model.remove(&key(3));
    lsm.close().unwrap();
    drop(lsm);
    let image = fs.crash_now(false);
    let inner = open_mem(&image, false).unwrap();
    assert_eq!(read_state(&inner, &probe_keys()).unwrap(), model);
    assert!(!inner.snapshot().l0_sstables.is_empty());
}
