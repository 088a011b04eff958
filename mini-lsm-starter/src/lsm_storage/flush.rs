// SPDX-License-Identifier: Apache-2.0
//! The flush path: turning the oldest immutable memtable into the newest L0 SST.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use crossbeam_channel::Receiver;

use super::write_buffer::MemoryUse;
use super::LsmStorageInner;
use crate::manifest::ManifestRecord;
use crate::table::SsTableBuilder;

/// How often the flush thread checks whether there are too many memtables.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Puts a flushed SST where the compaction strategy wants it: at the front of L0, or, with tiered
/// compaction (which has no L0), as a new tier at the front, named by the SST's id. Recovery
/// replays flushes through this same function.
pub(crate) fn place_flushed(
    l0: &mut Vec<usize>,
    levels: &mut Vec<(usize, Vec<usize>)>,
    id: usize,
    flush_to_l0: bool,
) {
    // TODO(week 2 day 3, task 1: flush each SST as a new tier (book: week2-03-tiered))
    let _ = (levels, flush_to_l0);
    l0.insert(0, id);
}

impl LsmStorageInner {
    /// Flushes the earliest immutable memtable to a new L0 SST, which becomes the newest in L0
    /// (with tiered compaction, the newest tier). Does nothing when there is no immutable
    /// memtable.
    ///
    /// # Errors
    /// If the SST cannot be written; the state is then unchanged and the memtable stays queued.
    pub fn force_flush_next_imm_memtable(&self) -> Result<()> {
        todo!("week 1 day 6, task 1: flush the earliest immutable memtable to a new L0 SST (book: week1-06-write-path)")
    }

    /// Flushes the earliest memtables while there are more than `num_memtable_limit` memtables
    /// (the mutable one included), or, from week 4 day 5, while the memtables hold more than
    /// half the memory budget. The flush thread calls this every 50 ms; tests call it directly.
    ///
    /// # Errors
    /// The first failed flush.
    pub fn trigger_flush(&self) -> Result<()> {
        todo!("week 1 day 6, task 2: flush in the background and stop the thread on close (book: week1-06-write-path)")
    }

    /// Starts the flush thread: every `FLUSH_INTERVAL` it calls `trigger_flush`, until a message
    /// (or a hang-up) arrives on `stop`. A failed flush is recorded as the sticky background error
    /// and ends the thread: retrying a failing disk forever helps nobody.
    ///
    /// # Errors
    /// If the thread cannot be spawned.
    pub(crate) fn spawn_flush_thread(
        self: &Arc<Self>,
        stop: Receiver<()>,
    ) -> Result<JoinHandle<()>> {
        todo!("week 1 day 6, task 2: flush in the background and stop the thread on close (book: week1-06-write-path)")
    }
}
