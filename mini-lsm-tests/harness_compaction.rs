// SPDX-License-Identifier: Apache-2.0
//! Helpers of the compaction chapters (week 2, days 1-4): numbered keys, flushing everything,
//! reading SSTs and levels, level compaction tasks, and the randomized test against a model that
//! day 1 runs with full compactions and day 4 with every strategy.
//!
//! The randomized test draws puts, deletes, gets, scans, flushes and compactions over 150
//! numbered keys from the test's seed, runs them on a fresh engine and on a `BTreeMap` model
//! (the main harness's [`Model`]), and on the first disagreement shrinks the operations and
//! prints them as a repro to paste. Keys and values are numbers, so that a repro stays short.
#![allow(
    dead_code,
    reason = "a chapter checkpoint compiles only the tests up to it; later ones use some helpers"
)]
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{freeze, model_scan, scan_all, show_entries, test_seed, Model, Rng};
use crate::compact::LevelCompactionTask;
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use crate::table::SsTable;

// ---------------------------------------------------------------------------------------------
// Engines, levels and compaction tasks

/// Key number `i`: `key00042`.
pub(crate) fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// Freezes the memtable (if it holds anything) and flushes every immutable memtable.
#[track_caller]
pub(crate) fn flush_all(storage: &LsmStorageInner) {
    if !storage.snapshot().memtable.is_empty() {
        freeze(storage);
    }
    while !storage.snapshot().imm_memtables.is_empty() {
        storage.force_flush_next_imm_memtable().unwrap();
    }
}

/// The tables of the SSTs `ids`, from the engine's state.
pub(crate) fn tables(storage: &LsmStorageInner, ids: &[usize]) -> Vec<Arc<SsTable>> {
    let snapshot = storage.snapshot();
    ids.iter()
        .map(|id| snapshot.table(*id).unwrap().clone())
        .collect()
}

/// Every SST of the engine: L0 first, then each level.
pub(crate) fn every_table(storage: &LsmStorageInner) -> Vec<Arc<SsTable>> {
    let snapshot = storage.snapshot();
    let mut ids = snapshot.l0_sstables.clone();
    ids.extend(snapshot.levels.iter().flat_map(|(_, ids)| ids.clone()));
    tables(storage, &ids)
}

/// Whether `lower..upper` meets the key range of `table`, so that a scan of it may read `table`.
pub(crate) fn meets(lower: Bound<&[u8]>, upper: Bound<&[u8]>, table: &SsTable) -> bool {
    let (first, last) = (table.first_key().raw_ref(), table.last_key().raw_ref());
    let after_upper = match upper {
        Included(u) => first > u,
        Excluded(u) => first >= u,
        Unbounded => false,
    };
    let before_lower = match lower {
        Included(l) => last < l,
        Excluded(l) => last <= l,
        Unbounded => false,
    };
    !after_upper && !before_lower
}

/// Every entry, tombstones included, of the sorted run `ids`, after checking that its SSTs are
/// sorted and do not overlap.
#[track_caller]
pub(crate) fn run_entries(storage: &LsmStorageInner, ids: &[usize]) -> Vec<(Bytes, Bytes)> {
    let tables = tables(storage, ids);
    for pair in tables.windows(2) {
        assert!(
            pair[0].last_key() < pair[1].first_key(),
            "SSTs {} and {} of a level overlap or are out of order",
            pair[0].sst_id(),
            pair[1].sst_id()
        );
    }
    let mut iter = SstConcatIterator::create_and_seek_to_first(tables).unwrap();
    super::collect_internal(&mut iter).unwrap()
}

/// Moves L1 down to L2 by hand (L2 must be empty), so that the next full compaction is not to
/// the bottom. Safe for reads: L1's data is older than anything that arrives later.
#[track_caller]
pub(crate) fn move_l1_to_l2(storage: &LsmStorageInner) {
    let _state_lock = storage.state_lock.lock();
    let mut next = storage.snapshot().as_ref().clone();
    assert!(next
        .levels
        .iter()
        .all(|(level, ids)| *level == 1 || ids.is_empty()));
    let l1 = std::mem::take(&mut next.levels[0].1);
    next.levels = vec![(1, Vec::new()), (2, l1)];
    *storage.state.write() = Arc::new(next);
}

/// The compaction of `upper_ids` of level `upper` (`None`: L0) with `lower_ids` of level `lower`,
/// which is the bottom level if `bottom`.
pub(crate) fn level_task(
    upper: Option<usize>,
    upper_ids: &[usize],
    lower: usize,
    lower_ids: &[usize],
    bottom: bool,
) -> LevelCompactionTask {
    LevelCompactionTask {
        upper_level: upper,
        upper_level_sst_ids: upper_ids.to_vec(),
        lower_level: lower,
        lower_level_sst_ids: lower_ids.to_vec(),
        is_lower_level_bottom_level: bottom,
    }
}

// ---------------------------------------------------------------------------------------------
// Randomized, against a model

/// The size of the key space: keys `key(0)..key(KEYS)`.
const KEYS: usize = 150;

/// One step of the randomized test; keys and values are numbers, so that a repro can be pasted.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Puts `key(k)` = `value{v}`.
    Put(usize, usize),
    Delete(usize),
    Get(usize),
    Scan(Bound<usize>, Bound<usize>),
    /// Freezes the memtable, even an empty one, and flushes every immutable memtable.
    Flush,
    /// `trigger_compaction`, until it changes nothing (at most 10 times).
    Compact,
    FullCompaction,
    /// [`move_l1_to_l2`], when L2 is empty.
    MoveDown,
}

/// How often each operation comes, in percent; the shares add up to 100.
#[derive(Clone, Copy)]
pub(crate) struct OpMix {
    pub put: usize,
    pub delete: usize,
    pub get: usize,
    pub scan: usize,
    pub flush: usize,
    pub compact: usize,
    pub full_compaction: usize,
    pub move_down: usize,
}

/// Generates `n` operations of `mix`; the `i`-th put writes the value `value{i}`.
pub(crate) fn random_ops(rng: &mut Rng, n: usize, mix: OpMix) -> Vec<Op> {
    let shares = [
        mix.put,
        mix.delete,
        mix.get,
        mix.scan,
        mix.flush,
        mix.compact,
        mix.full_compaction,
        mix.move_down,
    ];
    assert_eq!(shares.iter().sum::<usize>(), 100, "the shares of an OpMix");
    let bound = |rng: &mut Rng| match rng.below(3) {
        0 => Included(rng.below(KEYS)),
        1 => Excluded(rng.below(KEYS)),
        _ => Unbounded,
    };
    (0..n)
        .map(|version| {
            // The roll falls in the share of one operation, taken in the order of `OpMix`.
            let roll = rng.below(100);
            let mut upto = 0;
            let mut falls_in = |share: usize| {
                upto += share;
                roll < upto
            };
            if falls_in(mix.put) {
                Op::Put(rng.below(KEYS), version)
            } else if falls_in(mix.delete) {
                Op::Delete(rng.below(KEYS))
            } else if falls_in(mix.get) {
                Op::Get(rng.below(KEYS))
            } else if falls_in(mix.scan) {
                Op::Scan(bound(rng), bound(rng))
            } else if falls_in(mix.flush) {
                Op::Flush
            } else if falls_in(mix.compact) {
                Op::Compact
            } else if falls_in(mix.full_compaction) {
                Op::FullCompaction
            } else {
                Op::MoveDown
            }
        })
        .collect()
}

/// Runs `ops` on a fresh engine with `options` and on the model.
///
/// # Errors
/// The first operation whose read disagrees with the model, with the engine's shape.
///
/// # Panics
/// If the engine returns an error.
pub(crate) fn run_ops(options: &LsmStorageOptions, ops: &[Op]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let storage = LsmStorageInner::open(dir.path(), options.clone()).unwrap();
    let mut model = Model::new();
    // This engine has no flush thread, so the harness stands in for it: a long run of writes
    // with no `Flush` would otherwise pass the memtable limit plus the stall margin, and the
    // next write would stall for the whole stall timeout.
    let stall_at = options.num_memtable_limit + options.write_stall_margin;
    for (at, op) in ops.iter().enumerate() {
        let fail = |what: String| Err(format!("op #{at} {op:?}: {what}\n{}", storage.dump()));
        if matches!(op, Op::Put(..) | Op::Delete(_))
            && 1 + storage.snapshot().imm_memtables.len() >= stall_at
        {
            storage.force_flush_next_imm_memtable().unwrap();
        }
        match op {
            Op::Put(k, v) => {
                let value = format!("value{v}").into_bytes();
                storage.put(&key(*k), &value).unwrap();
                model.insert(key(*k).into(), value.into());
            }
            Op::Delete(k) => {
                storage.delete(&key(*k)).unwrap();
                model.remove(&key(*k)[..]);
            }
            Op::Get(k) => {
                let got = storage.get(&key(*k)).unwrap();
                let expected = model.get(&key(*k)[..]);
                if got.as_ref() != expected {
                    return fail(format!("got {got:?}, expected {expected:?}"));
                }
            }
            Op::Scan(lower, upper) => {
                let (lower, upper) = (lower.map(key), upper.map(key));
                let (lower, upper) = (
                    lower.as_ref().map(|k| &k[..]),
                    upper.as_ref().map(|k| &k[..]),
                );
                let got = scan_all(&storage, lower, upper);
                let expected = model_scan(&model, lower, upper);
                if got != expected {
                    return fail(format!(
                        "got {}\nexpected {}",
                        show_entries(&got),
                        show_entries(&expected)
                    ));
                }
            }
            Op::Flush => {
                freeze(&storage);
                flush_all(&storage);
            }
            Op::Compact => {
                for _ in 0..10 {
                    let before = storage.snapshot().shape();
                    storage.trigger_compaction().unwrap();
                    if storage.snapshot().shape() == before {
                        break;
                    }
                }
            }
            Op::FullCompaction => storage.force_full_compaction().unwrap(),
            Op::MoveDown => {
                let levels = storage.snapshot().levels.clone();
                if levels.len() == 1 && !levels[0].1.is_empty() {
                    move_l1_to_l2(&storage);
                }
            }
        }
    }
    Ok(())
}

/// The randomized test of a chapter: `n` operations of `mix` from the test's seed, run on a
/// fresh engine with each of `engines` and on the model. Each engine comes with the Rust
/// expression that builds its options in the chapter's test file, for the repro.
///
/// # Panics
/// At the first engine that disagrees with the model: with the seed and a shrunk list of
/// operations to paste into a test.
#[track_caller]
pub(crate) fn randomized_against_model(
    n: usize,
    mix: OpMix,
    engines: &[(String, LsmStorageOptions)],
) {
    let seed = test_seed();
    let ops = random_ops(&mut Rng::new(seed), n, mix);
    for (repro, options) in engines {
        if run_ops(options, &ops).is_ok() {
            continue;
        }
        let budget = Duration::from_secs(20);
        let ops = shrink(ops.clone(), budget, |ops| run_ops(options, ops).is_err());
        let message = run_ops(options, &ops).expect_err("the shrunk operations fail");
        panic!(
            "seed {seed}, {:?}: {message}\nshrunk to {} operations; paste into a test:\n    \
             use super::harness::compaction::{{run_ops, Op::*}}; use std::ops::Bound::*;\n    \
             run_ops(&{repro}, &{ops:?}).unwrap();",
            options.compaction_options,
            ops.len()
        );
    }
}

/// Shrinks a failing list of operations by dropping chunks of it, halving the chunk each round,
/// while `fails` still holds, for at most `budget`.
fn shrink(mut ops: Vec<Op>, budget: Duration, fails: impl Fn(&[Op]) -> bool) -> Vec<Op> {
    let deadline = Instant::now() + budget;
    let mut chunk = ops.len() / 2;
    while chunk > 0 && Instant::now() < deadline {
        let mut at = 0;
        while at < ops.len() && Instant::now() < deadline {
            let rest = &ops[(at + chunk).min(ops.len())..];
            let candidate: Vec<Op> = ops[..at].iter().chain(rest).cloned().collect();
            if fails(&candidate) {
                ops = candidate;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    ops
}
