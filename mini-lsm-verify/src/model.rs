// SPDX-License-Identifier: Apache-2.0
//! The model: a `BTreeMap` that does what the engine promises, and nothing else.
//!
//! Freezes, flushes and compactions change where the engine keeps its data, never what a read
//! returns, so they do nothing here. A close or a crash after `sync` loses nothing either: the
//! engine syncs before it cuts the power, so every write so far is durable.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use anyhow::Result;

use crate::engines::{Engine, Reply};
use crate::ops::{show, BatchOp, Op};

/// The engine's data as a sorted map, tombstones applied.
#[derive(Debug, Default, Clone)]
pub struct Model {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    fn range(&self, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        // `BTreeMap::range` panics on an inverted range; an engine returns nothing for one.
        let range = (lower.clone(), upper.clone());
        self.map
            .iter()
            .filter(|(k, _)| range.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl Engine for Model {
    fn apply(&mut self, op: &Op) -> Result<Reply> {
        match op {
            Op::Put(k, v) => {
                self.map.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                self.map.remove(k);
            }
            Op::Get(k) => return Ok(Reply::Value(self.map.get(k).cloned())),
            Op::Scan(l, u) => return Ok(Reply::Entries(self.range(l, u))),
            Op::ScanPrefix(p) => {
                let entries = self
                    .map
                    .iter()
                    .filter(|(k, _)| k.starts_with(p))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                return Ok(Reply::Entries(entries));
            }
            Op::Batch(records) => {
                for record in records {
                    match record {
                        BatchOp::Put(k, v) => self.map.insert(k.clone(), v.clone()),
                        BatchOp::Del(k) => self.map.remove(k),
                    };
                }
            }
            Op::Freeze
            | Op::Flush
            | Op::FullCompaction
            | Op::TriggerCompaction
            | Op::CloseReopen
            | Op::CrashReopen => {}
        }
        Ok(Reply::Done)
    }

    fn dump(&self) -> String {
        let entries: Vec<String> = self
            .map
            .iter()
            .map(|(k, v)| format!("{}={}", show(k), show(v)))
            .collect();
        format!("{} keys: {}\n", entries.len(), entries.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&str]) -> Reply {
        Reply::Entries(
            keys.iter()
                .map(|k| (k.as_bytes().to_vec(), b"v".to_vec()))
                .collect(),
        )
    }

    /// Scans honour every kind of bound, and an inverted range is empty rather than a panic.
    #[test]
    fn scans_honour_every_bound() {
        let mut model = Model::new();
        for k in ["a", "b", "c", "d"] {
            model.apply(&Op::Put(k.into(), b"v".to_vec())).unwrap();
        }
        model.apply(&Op::Delete(b"c".to_vec())).unwrap();
        let scan = |model: &mut Model, l, u| model.apply(&Op::Scan(l, u)).unwrap();
        let inc = |k: &str| Bound::Included(k.as_bytes().to_vec());
        let exc = |k: &str| Bound::Excluded(k.as_bytes().to_vec());
        assert_eq!(scan(&mut model, inc("b"), inc("d")), entries(&["b", "d"]));
        assert_eq!(scan(&mut model, exc("a"), exc("d")), entries(&["b"]));
        assert_eq!(
            scan(&mut model, Bound::Unbounded, exc("b")),
            entries(&["a"])
        );
        assert_eq!(scan(&mut model, inc("d"), inc("a")), entries(&[]));
        assert_eq!(
            model.apply(&Op::ScanPrefix(Vec::new())).unwrap(),
            entries(&["a", "b", "d"])
        );
        assert_eq!(
            model.apply(&Op::Get(b"c".to_vec())).unwrap(),
            Reply::Value(None)
        );
    }
}
