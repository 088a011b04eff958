// SPDX-License-Identifier: Apache-2.0
//! A real multi-file database on a `MemFs`, and what each of its files holds: shared by the
//! corruption campaign (`corruption.rs`) and the repair tests (`repair.rs`).

#![allow(dead_code, reason = "each test binary uses a part of it")]

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use mini_lsm::fs::{FileSystem, MemFs};
use mini_lsm::iterators::StorageIterator;
use mini_lsm::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm};
use mini_lsm::manifest::MANIFEST_NAME;
use mini_lsm::table::{FileObject, SsTable, SsTableIterator};
use mini_lsm::wal::{wal_path, Wal};

/// Keys to values; an empty value is a tombstone in a file's contents, never in a state.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The database directory.
pub fn db() -> PathBuf {
    PathBuf::from("/db")
}

/// The options of the database: the log on, small blocks and SSTs (so that every SST has
/// several blocks and a compaction writes several), no compaction thread.
pub fn options(fs: &MemFs) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.block_size = 128;
    options.target_sst_size = 3072;
    options.enable_wal = true;
    options.fs = Arc::new(fs.clone());
    options
}

/// `key` number `i`.
pub fn key(i: usize) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// Everything the engine holds, read by a full scan and checked key by key with `get`.
///
/// # Errors
/// A read error, or a `get` that disagrees with the scan.
pub fn read_state(inner: &LsmStorageInner) -> Result<Model> {
    let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded)?;
    let mut state = Model::new();
    while iter.is_valid() {
        state.insert(iter.key().to_vec(), iter.value().to_vec());
        iter.next()?;
    }
    for k in (0..60).map(key).chain(state.keys().cloned()) {
        let got = inner.get(&k)?.map(|v| v.to_vec());
        anyhow::ensure!(
            got.as_ref() == state.get(&k),
            "get({}) disagrees with the scan",
            k.escape_ascii()
        );
    }
    Ok(state)
}

/// The names of the files directly in `dir`, with their bytes.
pub fn dir_image(fs: &MemFs, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs.list(dir)
        .unwrap()
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs.read_all(&p).unwrap())
        })
        .collect()
}

/// The message of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".to_string())
}

/// What opening a database and reading all of it gave.
pub enum Outcome {
    /// `open` failed.
    OpenFailed(String),
    /// `open` succeeded with this report; then the read gave the state, or failed.
    Opened(Vec<String>, std::result::Result<Model, String>),
    /// Something panicked.
    Panicked(String),
}

/// Opens `fs` and reads everything, catching a panic.
pub fn open_and_read(fs: &MemFs) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let inner = match LsmStorageInner::open(db(), options(fs)) {
            Ok(inner) => inner,
            Err(error) => return Outcome::OpenFailed(format!("{error:#}")),
        };
        let report = inner.recovery_report().to_vec();
        Outcome::Opened(report, read_state(&inner).map_err(|e| format!("{e:#}")))
    }));
    result.unwrap_or_else(|panic| Outcome::Panicked(panic_message(&panic)))
}

/// Where each record of a log or the manifest ends (`len:u32 len_crc:u32 payload crc:u32`).
pub fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len + 4;
        if pos > bytes.len() {
            break;
        }
        ends.push(pos);
    }
    ends
}

/// A source of data, newest first: a memtable's log or an SST.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    /// The entries of each batch (one batch for an SST), in order.
    pub batches: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    /// For a log, where each batch's record ends.
    pub ends: Vec<usize>,
}

impl Source {
    fn entries(&self, batches: usize) -> Model {
        let mut map = Model::new();
        for batch in &self.batches[..batches.min(self.batches.len())] {
            map.extend(batch.iter().cloned());
        }
        map
    }
}

/// The database after a workload, and what it holds.
pub struct Db {
    /// The files as a reboot finds them, frozen: take copies with [`Db::copy`].
    pub image: MemFs,
    /// Whether it was closed (every log vouched for), rather than crashed after a sync.
    pub closed: bool,
    /// Every file that holds data, newest source first (logs, then L0, then the levels).
    pub sources: Vec<Source>,
    /// The log of the memtable that was taking writes.
    pub active_log: PathBuf,
    /// Every engine file of the image, with the manifest.
    pub files: Vec<PathBuf>,
}

/// Runs the workload: ten rounds of puts and deletes, each write synced, each round ending in a
/// freeze; the first seven flushed, with a full compaction after the third and the sixth (so
/// there are SSTs in L0 and several in L1); two memtables left frozen; the last round in the
/// log still taking writes. Ends with `close`, or (`closed` false) with a crash after a sync.
pub fn build(closed: bool) -> Db {
    let fs = MemFs::new();
    let lsm = MiniLsm::open(db(), options(&fs)).unwrap();
    let inner = &lsm.inner;
    let mut n = 0;
    for round in 0..10 {
        for j in 0..10 {
            n += 1;
            let i = (n * 7) % 60;
            if j % 5 == 4 {
                inner.delete(&key(i)).unwrap();
            } else {
                let value = format!("round {round} write {n} ").repeat(3 + n % 3);
                inner.put(&key(i), value.as_bytes()).unwrap();
            }
            // A sync per write: every record reaches the file, so each has its own end.
            inner.sync().unwrap();
        }
        if round == 9 {
            break;
        }
        inner.freeze_memtable().unwrap();
        if round < 7 {
            inner.force_flush_next_imm_memtable().unwrap();
        }
        if round == 2 || round == 5 {
            inner.force_full_compaction().unwrap();
        }
    }
    let snapshot = inner.snapshot();
    assert!(!snapshot.l0_sstables.is_empty(), "{}", lsm.dump());
    assert!(snapshot.levels[0].1.len() >= 2, "{}", lsm.dump());
    assert_eq!(snapshot.imm_memtables.len(), 2, "{}", lsm.dump());
    let mut memtables = vec![snapshot.memtable.id()];
    memtables.extend(snapshot.imm_memtables.iter().map(|m| m.id()));
    let ssts: Vec<usize> = snapshot
        .l0_sstables
        .iter()
        .chain(snapshot.levels.iter().flat_map(|(_, ids)| ids))
        .copied()
        .collect();
    drop(snapshot);
    if closed {
        lsm.close().unwrap();
    }
    // `image` is frozen as the crashed original: `Db::copy` hands out fresh copies of it.
    let image = fs.crash_now(false);
    drop(lsm);
    image.crash_now(false);
    let copy = image.crash_image().unwrap();
    let mut sources = Vec::new();
    for id in &memtables {
        let path = wal_path(&db(), *id);
        let bytes = copy.read_all(&path).unwrap();
        // Every record holds one `put` or `delete`: each entry is a batch of its own.
        let mut batches = Vec::new();
        Wal::replay(&copy, &path, |k, v| {
            batches.push(vec![(k.to_vec(), v.to_vec())])
        })
        .unwrap();
        let ends = record_ends(&bytes);
        assert_eq!(ends.len(), batches.len(), "one put per record in {path:?}");
        sources.push(Source {
            path,
            batches,
            ends,
        });
    }
    for id in &ssts {
        let path = mini_lsm::table::sst_path(&db(), *id);
        let table = SsTable::open(*id, None, FileObject::open_in(&copy, &path).unwrap()).unwrap();
        let mut iter = SsTableIterator::create_and_seek_to_first(Arc::new(table)).unwrap();
        let mut entries = Vec::new();
        while iter.is_valid() {
            entries.push((iter.key().raw_ref().to_vec(), iter.value().to_vec()));
            iter.next().unwrap();
        }
        sources.push(Source {
            path,
            batches: vec![entries],
            ends: Vec::new(),
        });
    }
    let files = copy
        .list(&db())
        .unwrap()
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name == MANIFEST_NAME || sources.iter().any(|s| &s.path == p)
        })
        .collect();
    Db {
        image,
        closed,
        active_log: wal_path(&db(), memtables[0]),
        sources,
        files,
    }
}

impl Db {
    /// What the engine should hold if each source keeps `keep(source)` of its batches
    /// (`usize::MAX`: all of them), merged newest first; tombstones hide older values.
    pub fn state_with(&self, keep: impl Fn(&Source) -> usize) -> Model {
        let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut state = Model::new();
        for source in &self.sources {
            for (k, v) in source.entries(keep(source)) {
                if seen.insert(k.clone()) && !v.is_empty() {
                    state.insert(k, v);
                }
            }
        }
        state
    }

    /// A fresh copy of the database's files.
    pub fn copy(&self) -> MemFs {
        self.image.crash_image().expect("the image is frozen")
    }

    /// Everything the database holds.
    pub fn expected(&self) -> Model {
        self.state_with(|_| usize::MAX)
    }

    /// The source at `path`.
    pub fn source(&self, path: &Path) -> Option<&Source> {
        self.sources.iter().find(|s| s.path == path)
    }
}

/// A small deterministic PRNG (SplitMix64) for the sampled cases.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

/// The seed: `MINI_LSM_SEED` to replay one, or the clock.
pub fn seed() -> u64 {
    std::env::var("MINI_LSM_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        })
}

/// Whether to run in full (`MINI_LSM_FULL=1`, as `cargo x ci --full` sets).
pub fn full() -> bool {
    std::env::var("MINI_LSM_FULL").is_ok_and(|v| v.trim() == "1")
}
