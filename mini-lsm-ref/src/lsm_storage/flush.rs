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

// ANCHOR: place_flushed
/// Puts a flushed SST where the compaction strategy wants it: at the front of L0, or, with tiered
/// compaction (which has no L0), as a new tier at the front, named by the SST's id. Recovery
/// replays flushes through this same function.
pub(crate) fn place_flushed(
    l0: &mut Vec<usize>,
    levels: &mut Vec<(usize, Vec<usize>)>,
    id: usize,
    flush_to_l0: bool,
) {
    // @task week2_day3 1
    if flush_to_l0 {
        l0.insert(0, id);
    } else {
        levels.insert(0, (id, vec![id]));
    }
    // @stub
    // let _ = (levels, flush_to_l0);
    // l0.insert(0, id);
    // @end
}
// ANCHOR_END: place_flushed

impl LsmStorageInner {
    // ANCHOR: force_flush
    /// Flushes the earliest immutable memtable to a new L0 SST, which becomes the newest in L0
    /// (with tiered compaction, the newest tier). Does nothing when there is no immutable
    /// memtable.
    ///
    /// # Errors
    /// If the SST cannot be written; the state is then unchanged and the memtable stays queued.
    pub fn force_flush_next_imm_memtable(&self) -> Result<()> {
        // @task week1_day6 1
        // Held to the end: no other structural change may install a state between our read of
        // the state (step 1) and our install (step 3), or one of the two would be lost.
        let _state_lock = self.state_lock.lock();

        // 1. Pick the *earliest* immutable memtable, the last in the list. Flushing oldest first
        //    keeps every structure in age order: the new SST is newer than every SST in L0 and
        //    older than every memtable still in memory, so reads that search newest first stay
        //    right. Flush a newer memtable first and its older sibling would later land in front
        //    of it in L0, resurrecting overwritten values.
        let Some(memtable) = self.state.read().imm_memtables.last().cloned() else {
            return Ok(());
        };

        // 2. Build the SST holding `state_lock` but no lock on `state`: this is the slow part
        //    (encoding, writing, fsync), and readers and writers carry on meanwhile. The memtable
        //    is immutable, so there is nothing to race with.
        let table = if memtable.is_empty() {
            None // A memtable frozen empty needs no SST.
        } else {
            let id = memtable.id();
            let (fs, path) = (&*self.options.fs, self.path_of_sst(id));
            // Streaming to the file: the builder holds a megabyte of blocks, not the whole SST.
            let mut builder = SsTableBuilder::create_in(fs, &path, self.options.block_size)
                .with_context(|| format!("flushing memtable {id}"))?;
            builder.set_bloom_bits_per_key(self.options.bloom_bits_per_key);
            memtable.flush(&mut builder)?;
            let table = builder
                .build_in(fs, id, Some(self.block_cache.clone()), path)
                .with_context(|| format!("flushing memtable {id}"))?;
            Some(Arc::new(table))
        };
        // @task week2_day5 3 stub=comment
        // The SST's name must be durable before the manifest can mention it.
        if table.is_some() {
            self.options.fs.sync_dir(self.path())?;
        }
        // @end

        // 3. Install, under the write lock: a clone of the state, an edit and a store, no I/O.
        //    Reads that started before still see the memtable in their snapshot; reads after see
        //    the SST. Either way every key is found exactly once.
        {
            // @task week2_day5 3 stub=comment
            // Recorded before the SST becomes visible. An empty memtable has no SST, and stays
            // "live" in the manifest; recovery finds its log empty (or gone) and skips it.
            if let Some(table) = &table {
                // @task week3_day3 3
                // With the latest commit timestamp the SST holds: the memtable's log, which holds
                // it too, goes next, and a compaction may later drop it from every SST.
                let record = ManifestRecord::FlushAt {
                    id: table.sst_id(),
                    commit_ts: table.max_ts(),
                };
                // @or week2_day5 3
                // let record = ManifestRecord::Flush(table.sst_id());
                // @end
                self.log_change(&_state_lock, &record)?;
            }
            // @end
            let mut guard = self.state.write();
            let mut snapshot = guard.as_ref().clone();
            let flushed = snapshot.imm_memtables.pop();
            ensure!(
                flushed.is_some_and(|m| m.id() == memtable.id()),
                "state changed under the state lock during a flush"
            );
            if let Some(table) = table {
                let id = table.sst_id();
                // @task week4_day7 3 stub=comment
                self.metrics.record_flush(table.table_size());
                // @end
                place_flushed(
                    &mut snapshot.l0_sstables,
                    &mut snapshot.levels,
                    id,
                    self.compaction_controller.flush_to_l0(),
                );
                snapshot.sstables.insert(id, table);
            }
            *guard = Arc::new(snapshot);
        }
        // @task week1_day6 4 stub=comment
        // Wake the writers stalled for room: this flush made some. Only now that the write guard
        // is dropped: a stalled writer holds the signal's mutex and wants the read lock.
        self.notify_flush_done();
        // @end
        // @task week2_day6 3 stub=comment
        // 4. The memtable's log is no longer needed: its data is in a durable SST that the
        //    manifest lists. Deleting it any earlier could lose acknowledged writes.
        self.remove_wal(memtable.id())?;
        // @end
        Ok(())
        // @end
    }
    // ANCHOR_END: force_flush

    // ANCHOR: trigger_flush
    /// Flushes the earliest memtables while there are more than `num_memtable_limit` memtables
    /// (the mutable one included), or, from week 4 day 5, while the memtables hold more than
    /// half the memory budget. The flush thread calls this every 50 ms; tests call it directly.
    ///
    /// # Errors
    /// The first failed flush.
    pub fn trigger_flush(&self) -> Result<()> {
        // @task week4_day5 2
        loop {
            let (imm_count, early) = {
                let state = self.state.read();
                let early = self.write_buffer.budget().is_some()
                    && self.write_buffer.should_flush(MemoryUse::of(&state));
                (state.imm_memtables.len(), early)
            };
            // 1 + imm_count memtables, the mutable one included, are within the limit.
            let over_count = imm_count > 0 && imm_count >= self.options.num_memtable_limit;
            if !over_count && !early {
                return Ok(());
            }
            self.force_flush_next_imm_memtable()?;
        }
        // @or week1_day6 2
        // loop {
        //     let imm_count = self.state.read().imm_memtables.len();
        //     // 1 + imm_count memtables, the mutable one included, are within the limit.
        //     if imm_count == 0 || imm_count < self.options.num_memtable_limit {
        //         return Ok(());
        //     }
        //     self.force_flush_next_imm_memtable()?;
        // }
        // @end
    }
    // ANCHOR_END: trigger_flush

    // ANCHOR: flush_thread
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
        // @task week1_day6 2
        let this = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name("mini-lsm-flush".to_string())
            .spawn(move || {
                let ticker = crossbeam_channel::tick(FLUSH_INTERVAL);
                loop {
                    crossbeam_channel::select! {
                        recv(ticker) -> _ => {
                            if let Err(error) = this.trigger_flush() {
                                this.record_bg_error(error);
                                return;
                            }
                        }
                        recv(stop) -> _ => return,
                    }
                }
            })
            .context("cannot spawn the flush thread")?;
        Ok(handle)
        // @end
    }
    // ANCHOR_END: flush_thread
}
