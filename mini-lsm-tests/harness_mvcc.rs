// SPDX-License-Identifier: Apache-2.0
//! Helpers of the MVCC chapters (week 3): versioned keys, SSTs and sorted runs of versions built
//! and installed by hand, a model that keeps every version of every key, and a runner of
//! transaction scripts (days 5 and 6).
#![allow(
    dead_code,
    reason = "a chapter checkpoint compiles only the tests up to it; later ones use some helpers"
)]
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use bytes::Bytes;

use crate::iterators::StorageIterator;
use crate::key::KeySlice;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use crate::mvcc::{Conflict, Isolation, Transaction};
use crate::table::{sst_path, SsTable, SsTableBuilder};

use super::{collect_user, open_engine};
pub(crate) use super::{in_bounds, show};

/// One version: user key, timestamp, value (empty for a tombstone).
pub(crate) type Version = (Bytes, u64, Bytes);

/// A version from borrowed parts.
pub(crate) fn version(key: &[u8], ts: u64, value: &[u8]) -> Version {
    (
        Bytes::copy_from_slice(key),
        ts,
        Bytes::copy_from_slice(value),
    )
}

/// Shows versions readably: `b"a"@3=b"v", b"b"@1=<tombstone>`.
pub(crate) fn show_versions(versions: &[Version]) -> String {
    let shown: Vec<String> = versions
        .iter()
        .map(|(k, ts, v)| {
            let value = if v.is_empty() {
                "<tombstone>".to_string()
            } else {
                show(v)
            };
            format!("{}@{ts}={value}", show(k))
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Reads an engine-internal iterator to its end, keeping each key's timestamp.
///
/// # Errors
/// The first error from `next`.
pub(crate) fn collect_versions<I>(iter: &mut I) -> Result<Vec<Version>>
where
    I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>,
{
    let mut out = Vec::new();
    while iter.is_valid() {
        out.push(version(iter.key().key_ref(), iter.key().ts(), iter.value()));
        if out.len() > 1_000_000 {
            bail!("the iterator does not end");
        }
        iter.next()?;
    }
    Ok(out)
}

/// Builds an SST of `versions` (in key order: user key ascending, newest first) at `path`.
pub(crate) fn versioned_sst(
    id: usize,
    path: &Path,
    versions: &[Version],
    block_size: usize,
) -> SsTable {
    let mut builder = SsTableBuilder::new(block_size);
    for (key, ts, value) in versions {
        builder.add(KeySlice::from_slice_ts(key, *ts), value);
    }
    builder.build(id, None, path).expect("build the SST")
}

/// Builds an SST of `versions` in the engine's directory with a fresh id and installs it as the
/// newest L0 SST, under the state lock. Returns its id.
pub(crate) fn install_l0(inner: &LsmStorageInner, versions: &[Version]) -> usize {
    let _state_lock = inner.state_lock.lock();
    let id = inner.next_sst_id();
    let table = versioned_sst(id, &sst_path(inner.path(), id), versions, 128);
    let mut state = inner.state.write();
    let mut next = state.as_ref().clone();
    next.l0_sstables.insert(0, id);
    next.sstables.insert(id, Arc::new(table));
    *state = Arc::new(next);
    id
}

/// Builds SSTs of `runs` (each a list of tables' versions, together one sorted run) and appends
/// the run below the engine's levels, under the state lock. Returns the SSTs' ids.
pub(crate) fn install_run(inner: &LsmStorageInner, tables: &[Vec<Version>]) -> Vec<usize> {
    let _state_lock = inner.state_lock.lock();
    let mut ids = Vec::new();
    let mut state = inner.state.write();
    let mut next = state.as_ref().clone();
    for versions in tables {
        let id = inner.next_sst_id();
        let table = versioned_sst(id, &sst_path(inner.path(), id), versions, 128);
        next.sstables.insert(id, Arc::new(table));
        ids.push(id);
    }
    let level = next.levels.iter().map(|(l, _)| *l).max().unwrap_or(0) + 1;
    next.levels.push((level, ids.clone()));
    *state = Arc::new(next);
    ids
}

// -----------------------------------------------------------------------------------------
// A model of versions

/// Every version of every key: user key -> timestamp -> value (empty for a tombstone).
#[derive(Default, Clone)]
pub(crate) struct VersionModel {
    keys: BTreeMap<Bytes, BTreeMap<u64, Bytes>>,
}

impl VersionModel {
    /// Records a version (a later one at the same timestamp replaces it, as in a batch).
    pub(crate) fn put(&mut self, key: &[u8], ts: u64, value: &[u8]) {
        self.keys
            .entry(Bytes::copy_from_slice(key))
            .or_default()
            .insert(ts, Bytes::copy_from_slice(value));
    }

    /// What a reader at `read_ts` sees for `key`: its newest version at or before `read_ts`,
    /// unless that is a tombstone.
    pub(crate) fn get(&self, key: &[u8], read_ts: u64) -> Option<Bytes> {
        let (_, value) = self.keys.get(key)?.range(..=read_ts).next_back()?;
        (!value.is_empty()).then(|| value.clone())
    }

    /// What a scan at `read_ts` over `lower..upper` yields.
    pub(crate) fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        read_ts: u64,
    ) -> Vec<(Bytes, Bytes)> {
        self.keys
            .keys()
            .filter(|k| in_bounds(k, lower, upper))
            .filter_map(|k| Some((k.clone(), self.get(k, read_ts)?)))
            .collect()
    }

    /// Every version in the engine's key order: user key ascending, newest first.
    pub(crate) fn versions(&self) -> Vec<Version> {
        self.keys
            .iter()
            .flat_map(|(k, versions)| {
                versions
                    .iter()
                    .rev()
                    .map(|(ts, v)| (k.clone(), *ts, v.clone()))
            })
            .collect()
    }

    /// The user keys, in order.
    pub(crate) fn user_keys(&self) -> Vec<Bytes> {
        self.keys.keys().cloned().collect()
    }

    /// The largest timestamp of any version.
    pub(crate) fn max_ts(&self) -> u64 {
        self.keys
            .values()
            .filter_map(|v| v.keys().next_back())
            .copied()
            .max()
            .unwrap_or(0)
    }
}

/// A scan's bounds.
pub(crate) type Range = (Bound<&'static [u8]>, Bound<&'static [u8]>);

/// Every pair of bounds over the probe keys `probes`: unbounded, and each probe included and
/// excluded, on both sides.
pub(crate) fn all_bounds(probes: &[&'static [u8]]) -> Vec<Range> {
    let mut sides = vec![Bound::Unbounded];
    for probe in probes {
        sides.push(Bound::Included(*probe));
        sides.push(Bound::Excluded(*probe));
    }
    let mut out = Vec::new();
    for lower in &sides {
        for upper in &sides {
            out.push((*lower, *upper));
        }
    }
    out
}

// -----------------------------------------------------------------------------------------
// Transaction scripts

/// Every isolation level, weakest first.
pub(crate) const ALL_LEVELS: [Isolation; 3] = [
    Isolation::Unvalidated,
    Isolation::Snapshot,
    Isolation::Serializable,
];

/// The name a script uses for an isolation level.
fn level_name(level: Isolation) -> &'static str {
    match level {
        Isolation::Unvalidated => "unvalidated",
        Isolation::Snapshot => "snapshot",
        Isolation::Serializable => "serializable",
    }
}

/// Options for transaction tests: the week 1 defaults with small blocks, validated as `level`.
pub(crate) fn txn_options(level: Isolation) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.block_size = 128;
    options.isolation = level;
    options
}

/// A scan's bounds, owned.
pub(crate) type OwnedRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// A scan range in a script's notation: `..`, `a..`, `a..c`, `a..=c`, `..c`, `..=c` (the lower
/// bound included, as in Rust).
fn parse_range(text: &str) -> Option<OwnedRange> {
    let (lower, upper) = text.split_once("..")?;
    let lower = match lower {
        "" => Bound::Unbounded,
        key => Bound::Included(key.as_bytes().to_vec()),
    };
    let upper = match upper.strip_prefix('=') {
        Some(key) => Bound::Included(key.as_bytes().to_vec()),
        None if upper.is_empty() => Bound::Unbounded,
        None => Bound::Excluded(upper.as_bytes().to_vec()),
    };
    Some((lower, upper))
}

/// Borrows a range's bounds.
pub(crate) fn bounds(range: &OwnedRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

/// A read's answer in a script's notation: `none`, a value, or for a scan `k=v k=v`
/// (`(empty)` for none).
fn show_value(value: &Option<Bytes>) -> String {
    match value {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "none".to_string(),
    }
}

fn show_scan(entries: &[(Bytes, Bytes)]) -> String {
    if entries.is_empty() {
        return "(empty)".to_string();
    }
    let shown: Vec<String> = entries
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    shown.join(" ")
}

/// What a step returned, in a script's notation: its answer, `ok`, `conflict KEY` or `error`.
fn show_result(result: &Result<String>) -> String {
    match result {
        Ok(answer) => answer.clone(),
        Err(error) => match error.downcast_ref::<Conflict>() {
            Some(conflict) => format!("conflict {}", String::from_utf8_lossy(conflict.key())),
            None => "error".to_string(),
        },
    }
}

/// Runs a transaction script on a fresh engine whose transactions are validated as `level`,
/// and checks every answer the script expects. Panics at the first step that answers otherwise,
/// naming the level, the line and both answers; the steps so far are printed as they run.
///
/// One step a line; `#` starts a comment:
///
/// ```text
///   put K V | delete K | get K | scan RANGE | flush     the engine, outside transactions
///   tN begin | tN get K | tN put K V | tN delete K      transaction tN (a name: t1, t2, ...)
///   tN scan RANGE | tN commit | tN drop                 (drop aborts)
///   ... = ANSWER                                        what the step must answer
///   ... [snapshot serializable]                         run the line only at these levels
/// ```
///
/// An answer is a value or `none` for a `get`; `k=v k=v` or `(empty)` for a `scan`; `ok`,
/// `conflict` or `conflict K` (a [`Conflict`] on key `K`) or `error` (any other error) for any
/// step. A step with no `= ANSWER` must succeed. RANGE is `..`, `a..`, `a..c`, `a..=c`, `..c`.
#[track_caller]
pub(crate) fn run_script(level: Isolation, script: &str) {
    let (_dir, inner) = open_engine(txn_options(level));
    let mut txns: BTreeMap<String, Transaction<'_>> = BTreeMap::new();
    let name = level_name(level);
    println!("--- script at level {name}");
    for (n, raw) in script.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let (line, levels) = match line.strip_suffix(']').and_then(|l| l.rsplit_once('[')) {
            Some((line, levels)) => (line.trim(), Some(levels)),
            None => (line, None),
        };
        if line.is_empty() || levels.is_some_and(|l| !l.split_whitespace().any(|l| l == name)) {
            continue;
        }
        let (step, expected) = match line.split_once('=') {
            // `=` also appears in scan answers (`k=v`): the first ` = ` separates.
            Some(_) if line.contains(" = ") => {
                let (step, expected) = line.split_once(" = ").expect("just checked");
                (step.trim(), Some(expected.trim()))
            }
            _ => (line, None),
        };
        let words: Vec<&str> = step.split_whitespace().collect();
        let where_ = format!("level {name}, script line {}: `{}`", n + 1, raw.trim());
        let result = run_step(&inner, &mut txns, &words)
            .unwrap_or_else(|| panic!("{where_}: not a step this runner knows"));
        let got = show_result(&result);
        println!("{step:<32} = {got}");
        let matches = match expected {
            None => result.is_ok(),
            Some("conflict") => result
                .as_ref()
                .is_err_and(|e| e.downcast_ref::<Conflict>().is_some()),
            Some(expected) => got == expected,
        };
        assert!(
            matches,
            "{where_}: expected {}, got {got}{}",
            expected.unwrap_or("success"),
            match &result {
                Err(error) => format!(" ({error:#})"),
                Ok(_) => String::new(),
            }
        );
    }
}

/// A scan's entries in a script's notation.
fn collect<I>(iter: Result<I>) -> Result<String>
where
    I: 'static + for<'a> StorageIterator<KeyType<'a> = &'a [u8]>,
{
    let mut iter = iter?;
    Ok(show_scan(&collect_user(&mut iter)?))
}

/// Runs one step; `None` if it is not a step the runner knows.
fn run_step<'a>(
    inner: &'a LsmStorageInner,
    txns: &mut BTreeMap<String, Transaction<'a>>,
    words: &[&str],
) -> Option<Result<String>> {
    let ok = |r: Result<()>| r.map(|()| "ok".to_string());
    let key = |i: usize| words.get(i).map(|w| w.as_bytes());
    let is_txn = |w: &str| w.starts_with('t') && w[1..].chars().all(|c| c.is_ascii_digit());
    let result = match words {
        ["put", k, v] => ok(inner.put(k.as_bytes(), v.as_bytes())),
        ["delete", k] => ok(inner.delete(k.as_bytes())),
        ["get", k] => inner.get(k.as_bytes()).map(|v| show_value(&v)),
        ["scan", range] => {
            let range = parse_range(range)?;
            let (lower, upper) = bounds(&range);
            collect(inner.scan(lower, upper))
        }
        ["flush"] => {
            super::compaction::flush_all(inner);
            Ok("ok".to_string())
        }
        [t, "begin"] if is_txn(t) => {
            let txn = inner.new_txn();
            let read_ts = txn.read_ts();
            if txns.insert(t.to_string(), txn).is_some() {
                panic!("{t} begins twice");
            }
            Ok(format!("ok (reads at {read_ts})"))
        }
        [t, "drop"] if is_txn(t) => {
            txns.remove(*t)?;
            Ok("ok".to_string())
        }
        [t, op, ..] if is_txn(t) => {
            let txn = txns.get_mut(*t)?;
            match (*op, key(2), words.get(3)) {
                ("get", Some(k), None) => txn.get(k).map(|v| show_value(&v)),
                ("put", Some(k), Some(v)) => ok(txn.put(k, v.as_bytes())),
                ("delete", Some(k), None) => ok(txn.delete(k)),
                ("scan", Some(_), None) => {
                    let range = parse_range(words[2])?;
                    let (lower, upper) = bounds(&range);
                    collect(txn.scan(lower, upper))
                }
                ("commit", None, None) => txn.commit().map(|_| "ok".to_string()),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(result)
}
