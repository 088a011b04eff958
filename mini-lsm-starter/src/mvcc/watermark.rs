// SPDX-License-Identifier: Apache-2.0
//! The watermark: the oldest read timestamp a live snapshot holds (week 3 day 4).
//!
//! Every snapshot registers its read timestamp while it lives; several may share one. The
//! watermark is the smallest registered timestamp: no reader reads below it, so of each key's
//! versions at or below it only the newest can still be seen, and compaction may drop the rest.
//!
//! ```text
//!   snapshots at:   3   3   7   12            readers: {3: 2, 7: 1, 12: 1}
//!   watermark:      3                         drop both at 3 ──▶ watermark 7
//! ```
//!
//! A map from timestamp to count keeps the smallest at hand in O(log n) for every change, which
//! matters little: snapshots come and go far less often than reads.

use std::collections::BTreeMap;

/// The read timestamps of live snapshots, each with how many snapshots hold it.
#[derive(Debug, Default)]
pub struct Watermark {
    readers: BTreeMap<u64, usize>,
}

impl Watermark {
    /// An empty watermark: no reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers one more reader at `ts`.
    pub fn add_reader(&mut self, ts: u64) {
        todo!("week 3 day 4, task 1: track the read timestamps of live snapshots, and the watermark: the oldest, or the latest commit (book: week3-04-watermark)")
    }

    /// Unregisters one reader at `ts`, which must have been added and not yet removed.
    pub fn remove_reader(&mut self, ts: u64) {
        todo!("week 3 day 4, task 1: track the read timestamps of live snapshots, and the watermark: the oldest, or the latest commit (book: week3-04-watermark)")
    }

    /// The oldest registered read timestamp, if any reader is registered.
    pub fn watermark(&self) -> Option<u64> {
        todo!("week 3 day 4, task 1: track the read timestamps of live snapshots, and the watermark: the oldest, or the latest commit (book: week3-04-watermark)")
    }

    /// How many readers are registered, counting each as often as it was added.
    pub fn num_retained_snapshots(&self) -> usize {
        todo!("week 3 day 4, task 1: track the read timestamps of live snapshots, and the watermark: the oldest, or the latest commit (book: week3-04-watermark)")
    }
}
