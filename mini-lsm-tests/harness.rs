// SPDX-License-Identifier: Apache-2.0
//! Helpers shared by the chapter tests: a seeded PRNG, a `BTreeMap` model of the engine with a
//! shrinking replay of random operations, iterator checks, a mock iterator that fails on demand,
//! SSTs installed by hand (for chapters before the flush exists) and file-corruption sweeps.
//!
//! This file is compiled with every chapter checkpoint, so it may name any engine function; a
//! helper that calls a chapter's task is only called by tests of that chapter or later.
#![allow(
    dead_code,
    reason = "a chapter checkpoint compiles only the tests of its chapters, which use some helpers"
)]

// The harness may span several files: every file of mini-lsm-tests/ that is not a chapter's is
// part of it, and `copy-test` copies them all. They sit beside this one in the starter too.
#[path = "harness_commit.rs"]
pub(crate) mod commit;
#[path = "harness_compaction.rs"]
pub(crate) mod compaction;
#[path = "harness_mvcc.rs"]
pub(crate) mod mvcc;
#[path = "harness_persist.rs"]
pub(crate) mod persist;
#[path = "harness_stall.rs"]
pub(crate) mod stall;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, Range};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;

use crate::iterators::StorageIterator;
use crate::key::KeySlice;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use crate::table::{sst_path, BlockMeta, FileObject, SsTable, SsTableBuilder, SsTableIterator};

// ---------------------------------------------------------------------------------------------
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

/// The seed of a randomized test: `MINI_LSM_SEED` if set (to replay a failure), else the clock.
/// Printed first, so that a failing test's output always says how to replay it.
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

// ---------------------------------------------------------------------------------------------
// Engines and keys

/// Options for engine tests: the write-path chapter's defaults with small blocks, so that even
/// small SSTs span several blocks.
pub(crate) fn small_block_options() -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.block_size = 256;
    options
}

/// Opens an engine in a fresh temporary directory (which already exists: before the write-path
/// chapter `open` does not create it).
#[track_caller]
pub(crate) fn open_engine(options: LsmStorageOptions) -> (tempfile::TempDir, LsmStorageInner) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let inner = LsmStorageInner::open(dir.path(), options).expect("open the engine");
    (dir, inner)
}

/// Freezes the engine's memtable, taking the state lock as the API requires.
#[track_caller]
pub(crate) fn freeze(inner: &LsmStorageInner) {
    inner
        .force_freeze_memtable(&inner.state_lock.lock())
        .expect("freeze the memtable");
}

/// Shows bytes as an escaped byte-string literal, e.g. `b"k001\xff"`.
pub(crate) fn show(bytes: &[u8]) -> String {
    format!("b\"{}\"", bytes.escape_ascii())
}

/// Bytes that print as an escaped byte string (`b"k099"`) in an assertion's `left`/`right`,
/// where a `&[u8]` or `Vec<u8>` would print as decimal numbers: compare `bytes_of(...)` values.
pub(crate) fn bytes_of(bytes: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(bytes.as_ref())
}

/// Shows a scan bound with its key as an escaped byte string: `Included(b"k001")`.
pub(crate) fn show_bound(bound: Bound<impl AsRef<[u8]>>) -> String {
    match bound {
        Bound::Included(k) => format!("Included({})", show(k.as_ref())),
        Bound::Excluded(k) => format!("Excluded({})", show(k.as_ref())),
        Bound::Unbounded => "Unbounded".to_string(),
    }
}

/// Owned key-value pairs from borrowed ones.
pub(crate) fn owned(entries: &[(&[u8], &[u8])]) -> Vec<(Bytes, Bytes)> {
    entries
        .iter()
        .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
        .collect()
}

/// Formats a list of entries for a failure message.
pub(crate) fn show_entries(entries: &[(Bytes, Bytes)]) -> String {
    let shown: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}={}", show(k), show(v)))
        .collect();
    format!("[{}]", shown.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Iterator checks

/// More entries than any test writes: an iterator that yields this many never ends.
const ITER_LIMIT: usize = 1_000_000;

/// Reads a user-facing iterator (keys are `&[u8]`) to its end.
///
/// # Errors
/// The first error from `next`.
pub(crate) fn collect_user<I>(iter: &mut I) -> Result<Vec<(Bytes, Bytes)>>
where
    I: 'static + for<'a> StorageIterator<KeyType<'a> = &'a [u8]>,
{
    let mut out = Vec::new();
    while iter.is_valid() {
        out.push((
            Bytes::copy_from_slice(iter.key()),
            Bytes::copy_from_slice(iter.value()),
        ));
        if out.len() > ITER_LIMIT {
            bail!("the iterator does not end");
        }
        iter.next()?;
    }
    Ok(out)
}

/// Reads an engine-internal iterator (keys are `KeySlice`) to its end.
///
/// # Errors
/// The first error from `next`.
pub(crate) fn collect_internal<I>(iter: &mut I) -> Result<Vec<(Bytes, Bytes)>>
where
    I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>,
{
    let mut out = Vec::new();
    while iter.is_valid() {
        out.push((
            Bytes::copy_from_slice(iter.key().raw_ref()),
            Bytes::copy_from_slice(iter.value()),
        ));
        if out.len() > ITER_LIMIT {
            bail!("the iterator does not end");
        }
        iter.next()?;
    }
    Ok(out)
}

/// Asserts that a user-facing iterator yields exactly `expected`, in order, and then ends.
#[track_caller]
pub(crate) fn check_iter_result<I>(iter: &mut I, expected: &[(&[u8], &[u8])])
where
    I: 'static + for<'a> StorageIterator<KeyType<'a> = &'a [u8]>,
{
    let actual = collect_user(iter).expect("the iterator failed");
    assert_entries(&actual, &owned(expected));
}

/// Asserts that an engine-internal iterator yields exactly `expected`, in order, and then ends.
#[track_caller]
pub(crate) fn check_internal_iter<I>(iter: &mut I, expected: &[(&[u8], &[u8])])
where
    I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>,
{
    let actual = collect_internal(iter).expect("the iterator failed");
    assert_entries(&actual, &owned(expected));
}

/// Asserts two entry lists are equal, showing both readably when they are not.
#[track_caller]
pub(crate) fn assert_entries(actual: &[(Bytes, Bytes)], expected: &[(Bytes, Bytes)]) {
    assert!(
        actual == expected,
        "the entries differ\n  got      {}\n  expected {}",
        show_entries(actual),
        show_entries(expected)
    );
}

/// A scan of the engine, read to its end.
#[track_caller]
pub(crate) fn scan_all(
    inner: &LsmStorageInner,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Vec<(Bytes, Bytes)> {
    let mut iter = inner.scan(lower, upper).expect("create the scan");
    collect_user(&mut iter).expect("read the scan")
}

// ---------------------------------------------------------------------------------------------
// A mock iterator

/// An iterator over fixed entries that can fail on its `k`-th `next`, and that panics when
/// misused (reading an invalid iterator, or moving it after it failed or ended), so that a merge
/// that touches a source it should not is caught.
pub(crate) struct MockIterator {
    entries: Vec<(Bytes, Bytes)>,
    pos: usize,
    /// `next` call number (1-based) that fails.
    error_on_next: Option<usize>,
    nexts: usize,
    failed: bool,
}

impl MockIterator {
    /// An iterator over `entries`, which must be sorted by key.
    #[track_caller]
    pub(crate) fn new(entries: &[(&[u8], &[u8])]) -> Self {
        let entries = owned(entries);
        assert!(
            entries.windows(2).all(|w| w[0].0 < w[1].0),
            "mock entries must be sorted"
        );
        Self {
            entries,
            pos: 0,
            error_on_next: None,
            nexts: 0,
            failed: false,
        }
    }

    /// Makes the `k`-th call to `next` (1-based) fail.
    pub(crate) fn failing_on_next(mut self, k: usize) -> Self {
        self.error_on_next = Some(k);
        self
    }
}

impl StorageIterator for MockIterator {
    type KeyType<'a> = KeySlice<'a>;

    fn value(&self) -> &[u8] {
        assert!(!self.failed, "value() on a mock iterator after it failed");
        &self
            .entries
            .get(self.pos)
            .expect("value() on an invalid iterator")
            .1
    }

    fn key(&self) -> KeySlice<'_> {
        assert!(!self.failed, "key() on a mock iterator after it failed");
        KeySlice::from_slice(
            &self
                .entries
                .get(self.pos)
                .expect("key() on an invalid iterator")
                .0,
        )
    }

    fn is_valid(&self) -> bool {
        // Stays "valid" after a failure: a wrapper must remember the error itself.
        self.pos < self.entries.len()
    }

    fn next(&mut self) -> Result<()> {
        assert!(!self.failed, "next() on a mock iterator after it failed");
        assert!(self.is_valid(), "next() on an exhausted mock iterator");
        self.nexts += 1;
        if self.error_on_next == Some(self.nexts) {
            self.failed = true;
            bail!("mock iterator: injected error on next #{}", self.nexts);
        }
        self.pos += 1;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The model and random operations

/// The model: what the engine should hold, with deletions applied.
pub(crate) type Model = BTreeMap<Bytes, Bytes>;

/// Whether `key` lies within `lower..upper`.
pub(crate) fn in_bounds(key: &[u8], lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let above = match lower {
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => key <= u,
        Bound::Excluded(u) => key < u,
        Bound::Unbounded => true,
    };
    above && below
}

/// The model's entries within `lower..upper` (any bounds, even an empty or inverted range).
pub(crate) fn model_scan(
    model: &Model,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Vec<(Bytes, Bytes)> {
    model
        .iter()
        .filter(|(k, _)| in_bounds(k, lower, upper))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `Included(key)`, for writing repros.
pub(crate) fn inc(key: &[u8]) -> Bound<Vec<u8>> {
    Bound::Included(key.to_vec())
}

/// `Excluded(key)`, for writing repros.
pub(crate) fn exc(key: &[u8]) -> Bound<Vec<u8>> {
    Bound::Excluded(key.to_vec())
}

/// `Unbounded`, for writing repros.
pub(crate) fn unb() -> Bound<Vec<u8>> {
    Bound::Unbounded
}

fn borrow_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// One operation of a randomized test, applied to both the engine and the model.
#[derive(Clone)]
pub(crate) enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Scan(Bound<Vec<u8>>, Bound<Vec<u8>>),
    ScanPrefix(Vec<u8>),
    /// `force_freeze_memtable`.
    Freeze,
    /// Builds an SST from the oldest immutable memtable by hand: [`install_sst_from_oldest_imm`].
    InstallSst,
    /// `force_flush_next_imm_memtable`.
    Flush,
    /// `trigger_flush`.
    TriggerFlush,
}

impl Op {
    pub(crate) fn put(key: &[u8], value: &[u8]) -> Self {
        Op::Put(key.to_vec(), value.to_vec())
    }
    pub(crate) fn delete(key: &[u8]) -> Self {
        Op::Delete(key.to_vec())
    }
    pub(crate) fn get(key: &[u8]) -> Self {
        Op::Get(key.to_vec())
    }
    pub(crate) fn scan(lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> Self {
        Op::Scan(lower, upper)
    }
    pub(crate) fn scan_prefix(prefix: &[u8]) -> Self {
        Op::ScanPrefix(prefix.to_vec())
    }
}

/// Prints an operation as the Rust expression that builds it, so a repro can be pasted.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(k) => format!("inc({})", show(k)),
            Bound::Excluded(k) => format!("exc({})", show(k)),
            Bound::Unbounded => "unb()".to_string(),
        };
        match self {
            Op::Put(k, v) => write!(f, "Op::put({}, {})", show(k), show(v)),
            Op::Delete(k) => write!(f, "Op::delete({})", show(k)),
            Op::Get(k) => write!(f, "Op::get({})", show(k)),
            Op::Scan(l, u) => write!(f, "Op::scan({}, {})", bound(l), bound(u)),
            Op::ScanPrefix(p) => write!(f, "Op::scan_prefix({})", show(p)),
            Op::Freeze => write!(f, "Op::Freeze"),
            Op::InstallSst => write!(f, "Op::InstallSst"),
            Op::Flush => write!(f, "Op::Flush"),
            Op::TriggerFlush => write!(f, "Op::TriggerFlush"),
        }
    }
}

/// Which operations a chapter's randomized test may use.
#[derive(Clone, Copy)]
pub(crate) struct OpMix {
    /// SSTs built by hand from the oldest immutable memtable (day 5).
    pub install_sst: bool,
    /// The engine's own flush, `trigger_flush` and `scan_prefix` (day 6).
    pub flush: bool,
}

/// A key of the randomized tests' key space: `k000`..`k149`.
fn random_key(rng: &mut Rng) -> Vec<u8> {
    format!("k{:03}", rng.below(150)).into_bytes()
}

/// A scan bound: a key of the key space, or one that falls between two of them (`k0425`).
fn random_bound(rng: &mut Rng) -> Bound<Vec<u8>> {
    let mut key = random_key(rng);
    if rng.chance(30) {
        key.push(b'5');
    }
    match rng.below(3) {
        0 => Bound::Included(key),
        1 => Bound::Excluded(key),
        _ => Bound::Unbounded,
    }
}

/// Generates `n` random operations of the chapter's `mix`; never more than 20 memtables wait to
/// be flushed, far from any write stall.
pub(crate) fn random_ops(rng: &mut Rng, n: usize, mix: OpMix) -> Vec<Op> {
    let mut ops = Vec::with_capacity(n);
    let mut imm = 0usize;
    for version in 0..n {
        let roll = rng.below(100);
        let op = match roll {
            0..=39 => Op::Put(random_key(rng), format!("v{version}").into_bytes()),
            40..=54 => Op::Delete(random_key(rng)),
            55..=74 => Op::Get(random_key(rng)),
            75..=86 => Op::Scan(random_bound(rng), random_bound(rng)),
            87..=89 if mix.flush => {
                let len = rng.below(4);
                Op::ScanPrefix(random_key(rng)[..len].to_vec())
            }
            90..=92 if imm < 20 => {
                imm += 1;
                Op::Freeze
            }
            93..=95 if mix.install_sst => {
                imm = imm.saturating_sub(1);
                Op::InstallSst
            }
            93..=95 if mix.flush => {
                imm = imm.saturating_sub(1);
                Op::Flush
            }
            96 if mix.flush => {
                // `num_memtable_limit` is 2: at most one immutable memtable is left.
                imm = imm.min(1);
                Op::TriggerFlush
            }
            _ => Op::Get(random_key(rng)),
        };
        ops.push(op);
    }
    ops
}

/// Applies `op` to the engine and the model, and checks every read against the model.
fn apply(inner: &LsmStorageInner, model: &mut Model, op: &Op) -> Result<()> {
    let check = |what: String, actual: Vec<(Bytes, Bytes)>, expected: Vec<(Bytes, Bytes)>| {
        if actual != expected {
            bail!(
                "{what}\n  got      {}\n  expected {}",
                show_entries(&actual),
                show_entries(&expected)
            );
        }
        Ok(())
    };
    match op {
        Op::Put(k, v) => {
            inner.put(k, v)?;
            model.insert(Bytes::copy_from_slice(k), Bytes::copy_from_slice(v));
        }
        Op::Delete(k) => {
            inner.delete(k)?;
            model.remove(&k[..]);
        }
        Op::Get(k) => {
            let actual = inner.get(k)?;
            let expected = model.get(&k[..]).cloned();
            if actual != expected {
                bail!("get {} returned {actual:?}, expected {expected:?}", show(k));
            }
        }
        Op::Scan(l, u) => {
            let (l, u) = (borrow_bound(l), borrow_bound(u));
            let actual = collect_user(&mut inner.scan(l, u)?)?;
            check("scan".into(), actual, model_scan(model, l, u))?;
        }
        Op::ScanPrefix(p) => {
            let actual = collect_user(&mut inner.scan_prefix(p)?)?;
            let expected = model
                .iter()
                .filter(|(k, _)| k.starts_with(p))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            check("scan_prefix".into(), actual, expected)?;
        }
        Op::Freeze => inner.force_freeze_memtable(&inner.state_lock.lock())?,
        Op::InstallSst => {
            install_sst_from_oldest_imm(inner)?;
        }
        Op::Flush => inner.force_flush_next_imm_memtable()?,
        Op::TriggerFlush => inner.trigger_flush()?,
    }
    Ok(())
}

/// Runs `ops` on a fresh engine (with [`small_block_options`]) and the model.
///
/// # Errors
/// The first operation that failed, errored, panicked or disagreed with the model.
pub(crate) fn run_ops(ops: &[Op]) -> std::result::Result<(), (usize, String)> {
    let (_dir, inner) = open_engine(small_block_options());
    let mut model = Model::new();
    for (idx, op) in ops.iter().enumerate() {
        match catch_unwind(AssertUnwindSafe(|| apply(&inner, &mut model, op))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((idx, format!("{e:#}"))),
            Err(panic) => return Err((idx, format!("panicked: {}", panic_message(&panic)))),
        }
    }
    Ok(())
}

/// Runs `ops`, panicking with the failure; paste a printed repro into a test and call this.
#[track_caller]
pub(crate) fn check_ops(ops: &[Op]) {
    if let Err((idx, message)) = run_ops(ops) {
        panic!("op #{idx} `{}` failed: {message}", ops[idx]);
    }
}

/// The randomized model test of a chapter: `n` random operations from the seed, run against the
/// engine and the model. On failure, prints the seed and a shrunk, paste-able list of operations.
#[track_caller]
pub(crate) fn randomized_model_test(n: usize, mix: OpMix) {
    let seed = test_seed();
    let ops = random_ops(&mut Rng::new(seed), n, mix);
    let Err((idx, message)) = run_ops(&ops) else {
        return;
    };
    let failing = ops[..=idx].to_vec();
    let shrunk = shrink(failing, Duration::from_secs(10));
    let shrunk_message = match run_ops(&shrunk) {
        Err((last, message)) => format!("op #{last} `{}` failed: {message}", shrunk[last]),
        Ok(()) => "(the shrunk list passed on a re-run: the failure is flaky)".to_string(),
    };
    let listing: Vec<String> = shrunk.iter().map(|op| format!("        {op},")).collect();
    panic!(
        "seed {seed}: op #{idx} `{}` failed: {message}\n\n\
         Shrunk from {} to {} operations: {shrunk_message}\n\
         The repro (paste into a test, with `use super::harness::{{check_ops, exc, inc, unb, Op}};`):\n    \
         check_ops(&[\n{}\n    ]);",
        ops[idx],
        idx + 1,
        shrunk.len(),
        listing.join("\n")
    );
}

/// Shrinks a failing list of operations by deleting chunks while it still fails, for at most
/// `budget`. Panic messages are silenced meanwhile.
fn shrink(mut ops: Vec<Op>, budget: Duration) -> Vec<Op> {
    let start = Instant::now();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut chunk = ops.len().div_ceil(2);
    while chunk >= 1 && start.elapsed() < budget {
        let mut idx = 0;
        let mut progress = false;
        while idx < ops.len() && start.elapsed() < budget {
            let end = (idx + chunk).min(ops.len());
            let candidate: Vec<Op> = ops[..idx].iter().chain(&ops[end..]).cloned().collect();
            if let Err((fail_idx, _)) = run_ops(&candidate) {
                ops = candidate[..=fail_idx].to_vec();
                progress = true;
            } else {
                idx += chunk;
            }
        }
        if !progress {
            chunk /= 2;
        }
    }
    std::panic::set_hook(hook);
    ops
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

// ---------------------------------------------------------------------------------------------
// SSTs by hand

/// Builds an SST holding `entries` (sorted) at `path` with blocks of `block_size` bytes.
#[track_caller]
pub(crate) fn build_sst(
    id: usize,
    path: &Path,
    entries: &[(&[u8], &[u8])],
    block_size: usize,
) -> SsTable {
    let mut builder = SsTableBuilder::new(block_size);
    for (k, v) in entries {
        builder.add(KeySlice::from_slice(k), v);
    }
    builder.build(id, None, path).expect("build the SST")
}

/// What the write path (day 6) will do, done by hand from public pieces, for the read-path
/// chapter: under the state lock, writes the oldest immutable memtable to an SST through
/// `SsTableBuilder` and installs it as the newest L0 SST. Returns the SST's id, or `None` when
/// there was no immutable memtable or it was empty (it is dropped then).
///
/// # Errors
/// If the SST cannot be built.
pub(crate) fn install_sst_from_oldest_imm(inner: &LsmStorageInner) -> Result<Option<usize>> {
    let _state_lock = inner.state_lock.lock();
    let Some(memtable) = inner.snapshot().imm_memtables.last().cloned() else {
        return Ok(None);
    };
    let mut builder = SsTableBuilder::new(inner.options.block_size);
    let mut iter = memtable.scan(Bound::Unbounded, Bound::Unbounded);
    let mut empty = true;
    while iter.is_valid() {
        builder.add(iter.key(), iter.value());
        empty = false;
        iter.next()?;
    }
    let id = memtable.id();
    let table = if empty {
        None
    } else {
        let path = sst_path(inner.path(), id);
        Some(builder.build(id, Some(inner.block_cache.clone()), path)?)
    };
    let mut state = inner.state.write();
    let mut next = state.as_ref().clone();
    let popped = next.imm_memtables.pop().expect("the memtable we read");
    assert_eq!(popped.id(), id, "the state changed under the state lock");
    let installed = table.map(|table| {
        next.l0_sstables.insert(0, id);
        next.sstables.insert(id, Arc::new(table));
        id
    });
    *state = Arc::new(next);
    Ok(installed)
}

/// Freezes the memtable and installs it by hand as the newest L0 SST (see
/// [`install_sst_from_oldest_imm`]); requires that no other memtable is waiting.
#[track_caller]
pub(crate) fn freeze_and_install(inner: &LsmStorageInner) -> usize {
    assert!(inner.snapshot().imm_memtables.is_empty());
    freeze(inner);
    install_sst_from_oldest_imm(inner)
        .expect("install the SST")
        .expect("the memtable was not empty")
}

// ---------------------------------------------------------------------------------------------
// Corrupt files

/// How a read of a damaged file ended.
pub(crate) enum Outcome {
    /// Opened and read to the end.
    Read(Vec<(Bytes, Bytes)>),
    /// An error, with its whole context chain.
    Error(String),
    /// A panic, with its message: always a bug.
    Panic(String),
}

/// Opens the SST at `path` with no block cache and reads every entry, catching panics.
pub(crate) fn read_sst_file(path: &Path) -> Outcome {
    let read = || -> Result<Vec<(Bytes, Bytes)>> {
        let table = SsTable::open(0, None, FileObject::open(path)?)?;
        let mut iter = SsTableIterator::create_and_seek_to_first(Arc::new(table))?;
        collect_internal(&mut iter)
    };
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(Ok(entries)) => Outcome::Read(entries),
        Ok(Err(e)) => Outcome::Error(format!("{e:#}")),
        Err(panic) => Outcome::Panic(panic_message(&panic)),
    }
}

/// Where the parts of an SST lie, from its opened table.
pub(crate) struct SstLayout {
    /// The size of the file.
    pub file_len: usize,
    /// The fields of the `meta` section that give counts, offsets or lengths.
    pub meta_fields: Vec<Range<usize>>,
    /// The field after the `meta` section: `meta_offset` (from week 2 day 7 the section's
    /// checksum); from day 7 the bloom filter and `bloom_offset` follow.
    pub meta_offset_field: Range<usize>,
}

impl SstLayout {
    pub(crate) fn of(table: &SsTable) -> Self {
        let meta_start = table.block_meta_offset;
        let mut encoded = Vec::new();
        BlockMeta::encode_block_meta(&table.block_meta, &mut encoded);
        // From week 3 day 1 each key is followed by its timestamp and the section by `max_ts`
        // (8 bytes each); the encoded length tells which layout this chapter writes.
        let keys: usize = table
            .block_meta
            .iter()
            .map(|m| m.first_key.len() + m.last_key.len())
            .sum();
        let untimed = 4 + 8 * table.block_meta.len() + keys;
        let ts_len = if encoded.len() == untimed { 0 } else { 8 };
        let meta_end = meta_start + encoded.len() + ts_len;
        // The block count, then per block its offset and two key lengths.
        let mut meta_fields = Vec::with_capacity(1 + 3 * table.block_meta.len());
        meta_fields.push(meta_start..meta_start + 4);
        let mut pos = meta_start + 4;
        for meta in &table.block_meta {
            meta_fields.push(pos..pos + 4);
            pos += 4;
            meta_fields.push(pos..pos + 2);
            pos += 2 + meta.first_key.len() + ts_len;
            meta_fields.push(pos..pos + 2);
            pos += 2 + meta.last_key.len() + ts_len;
        }
        assert_eq!(
            pos + ts_len,
            meta_end,
            "the meta section is laid out as documented"
        );
        Self {
            file_len: table.table_size() as usize,
            meta_fields,
            meta_offset_field: meta_end..meta_end + 4,
        }
    }
}

/// Reads damaged copies of the SST at `path` and collects what went wrong with each.
struct DamageJudge {
    pristine: Vec<u8>,
    damaged: PathBuf,
    entries: usize,
    failures: Vec<String>,
}

impl DamageJudge {
    #[track_caller]
    fn new(path: &Path) -> Self {
        let Outcome::Read(entries) = read_sst_file(path) else {
            panic!("the undamaged SST does not read");
        };
        Self {
            pristine: std::fs::read(path).expect("read the SST"),
            damaged: path.with_file_name("damaged.sst"),
            entries: entries.len(),
            failures: Vec::new(),
        }
    }

    /// Writes `bytes` as the damaged copy, reads it and judges the outcome.
    fn judge(&mut self, what: String, bytes: &[u8], must_error: bool) {
        std::fs::write(&self.damaged, bytes).expect("write the damaged SST");
        let name = self.damaged.display().to_string();
        let failure = match read_sst_file(&self.damaged) {
            Outcome::Panic(message) => format!("{what}: panicked: {message}"),
            Outcome::Error(message) if !message.contains(&name) => {
                format!("{what}: the error does not name the file: {message}")
            }
            Outcome::Error(_) => return,
            Outcome::Read(_) if must_error => format!("{what}: read without an error"),
            Outcome::Read(read) if read.len() != self.entries => format!(
                "{what}: read {} entries instead of {} without an error",
                read.len(),
                self.entries
            ),
            Outcome::Read(_) => return,
        };
        self.failures.push(failure);
    }

    #[track_caller]
    fn finish(self, cases: usize) {
        assert!(
            self.failures.is_empty(),
            "{} of {cases} damaged copies of a {}-byte SST were mishandled:\n  {}",
            self.failures.len(),
            self.pristine.len(),
            self.failures
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

/// Cuts a copy of the SST at `path` at every length and asserts that reading each copy (open,
/// then iterate every entry) never panics and gives an error that names the damaged file.
#[track_caller]
pub(crate) fn truncation_sweep(path: &Path) {
    let mut judge = DamageJudge::new(path);
    let pristine = judge.pristine.clone();
    for len in 0..pristine.len() {
        judge.judge(format!("cut to {len} bytes"), &pristine[..len], true);
    }
    judge.finish(pristine.len());
}

/// Inverts each byte of a copy of the SST at `path` in turn and asserts that reading each copy
/// never panics; that a byte within `must_fail` gives an error naming the damaged file; and that
/// any other byte gives such an error or reads the right number of entries (week 1 has no
/// checksums, so a damaged key or value byte can go unnoticed).
#[track_caller]
pub(crate) fn flip_sweep(path: &Path, must_fail: &[Range<usize>]) {
    let mut judge = DamageJudge::new(path);
    let pristine = judge.pristine.clone();
    for pos in 0..pristine.len() {
        let mut bytes = pristine.clone();
        bytes[pos] ^= 0xff;
        let must_error = must_fail.iter().any(|r| r.contains(&pos));
        judge.judge(format!("byte {pos} inverted"), &bytes, must_error);
    }
    judge.finish(pristine.len());
}

// ---------------------------------------------------------------------------------------------
// Threads and time

/// Serialises the tests that run a flush thread, so that counting threads by name is reliable
/// even when all tests share one process (`cargo test`; nextest runs each test alone anyway).
pub(crate) fn flush_thread_test_guard() -> parking_lot::MutexGuard<'static, ()> {
    static GUARD: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    GUARD.lock()
}

/// The number of threads of this process named `name` (the kernel keeps the first 15 bytes).
pub(crate) fn threads_named(name: &str) -> usize {
    let name = &name[..name.len().min(15)];
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// The number of threads of this process named `mini-lsm-flush`.
pub(crate) fn flush_threads() -> usize {
    threads_named("mini-lsm-flush")
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub(crate) fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
