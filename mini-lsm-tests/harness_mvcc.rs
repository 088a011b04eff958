// SPDX-License-Identifier: Apache-2.0
//! Helpers of the MVCC chapters (week 3): versioned keys, SSTs and sorted runs of versions built
//! and installed by hand, and a model that keeps every version of every key.
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
use crate::lsm_storage::LsmStorageInner;
use crate::table::{sst_path, SsTable, SsTableBuilder};

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
