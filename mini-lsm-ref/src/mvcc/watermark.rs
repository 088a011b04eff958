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

// ANCHOR: watermark
/// The read timestamps of live snapshots, each with how many snapshots hold it.
#[derive(Debug, Default)]
pub struct Watermark {
    readers: BTreeMap<u64, usize>,
}
// ANCHOR_END: watermark

impl Watermark {
    /// An empty watermark: no reader.
    pub fn new() -> Self {
        Self::default()
    }

    // ANCHOR: watermark_impl
    /// Registers one more reader at `ts`.
    pub fn add_reader(&mut self, ts: u64) {
        // @task week3_day4 1
        *self.readers.entry(ts).or_default() += 1;
        // @end
    }

    /// Unregisters one reader at `ts`, which must have been added and not yet removed.
    pub fn remove_reader(&mut self, ts: u64) {
        // @task week3_day4 1
        let Some(count) = self.readers.get_mut(&ts) else {
            debug_assert!(false, "no reader at {ts} to remove");
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.readers.remove(&ts);
        }
        // @end
    }

    /// The oldest registered read timestamp, if any reader is registered.
    pub fn watermark(&self) -> Option<u64> {
        // @task week3_day4 1
        self.readers.keys().next().copied()
        // @end
    }

    /// How many readers are registered, counting each as often as it was added.
    pub fn num_retained_snapshots(&self) -> usize {
        // @task week3_day4 1
        self.readers.values().sum()
        // @end
    }
    // ANCHOR_END: watermark_impl
}
