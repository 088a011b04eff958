// SPDX-License-Identifier: Apache-2.0
//! The compaction step: the engine's edge around the pure controllers of [`crate::compact`].
//!
//! One step, [`LsmStorageInner::trigger_compaction`], runs in three phases, with the same
//! discipline as a flush:
//!
//! ```text
//!   1. snapshot + ask      compaction_lock          controller.generate_task(shape)
//!   2. build outputs       compaction_lock only     merge the input runs, write new SSTs
//!   3. install             + state_lock, + state    apply the result to the *current* state
//!                            (write lock: the swap)   mark the inputs obsolete
//! ```
//!
//! Phase 2 is the slow one and holds no lock on the state: reads, writes and flushes go on.
//! Flushes may add L0 SSTs (or tiers) meanwhile, so phase 3 applies the result to the state as
//! it is then, not to the snapshot; the controller's `apply_result` keeps what it did not
//! compact. `compaction_lock` makes steps run one at a time, so the inputs cannot have moved.
//!
//! An input SST leaves the state in phase 3 but its file is deleted only when the last `Arc` to
//! it drops (see [`SsTable::mark_obsolete`]): a scan that started before still reads it.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::Receiver;
use parking_lot::MutexGuard;

use super::{LsmStorageInner, LsmStorageState};
use crate::compact::{
    CompactionFilter, CompactionTask, LevelCompactionTask, LsmShape, SstInfo, TreeLayout,
};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::merge_iterator::MergeIterator;
use crate::iterators::StorageIterator;
use crate::key::KeyVec;
use crate::manifest::{ManifestRecord, MANIFEST_NAME};
use crate::merge::{fold_operands, ValueKind};
use crate::table::{SsTable, SsTableBuilder};

/// How often the compaction thread asks the controller for work.
pub(crate) const COMPACTION_INTERVAL: Duration = Duration::from_millis(50);

impl LsmStorageState {
    /// The shape of the tree as a compaction controller sees it.
    pub fn shape(&self) -> LsmShape {
        LsmShape {
            l0_sstables: self.l0_sstables.clone(),
            levels: self.levels.clone(),
            sstables: self
                .sstables
                .iter()
                .map(|(id, table)| {
                    let info = SstInfo {
                        size: table.table_size(),
                        first_key: table.first_key().raw_ref().to_vec().into(),
                        last_key: table.last_key().raw_ref().to_vec().into(),
                    };
                    (*id, info)
                })
                .collect(),
        }
    }
}

// ANCHOR: adopt_layout
/// Lays out the tree that recovery read from the manifest in `dir` (`l0` and `levels`) for
/// `layout`, the strategy the engine opens with: converted from the layout the manifest
/// `recorded`, if that differs (see [`TreeLayout::convert`]; no SST is rewritten). Returns a
/// line for the recovery report if it converted. Recovery then writes the new layout and levels
/// into the new manifest at once, atomically, so a crash leaves the old tree or the new one.
///
/// # Errors
/// If the tree does not fit the layout it is read with: a manifest whose levels contradict its
/// own layout, or one without a layout (from before the course recorded it) whose tree does not
/// fit the strategy it is opened with. The error names the manifest and says what to do.
pub(crate) fn adopt_layout(
    dir: &Path,
    recorded: Option<TreeLayout>,
    layout: TreeLayout,
    l0: &mut Vec<usize>,
    levels: &mut Vec<(usize, Vec<usize>)>,
) -> Result<Option<String>> {
    let manifest = dir.join(MANIFEST_NAME);
    let Some(recorded) = recorded else {
        return layout.check(l0, levels).map(|()| None).with_context(|| {
            format!(
                "{}: the manifest does not record which compaction strategy laid out the tree \
                 (it was written before the course recorded it), and the tree does not fit \
                 {layout}; open it with the strategy that wrote it, once, to record it",
                manifest.display()
            )
        });
    };
    let check = |l0: &[usize], levels: &[(usize, Vec<usize>)], what: &str| {
        layout
            .check(l0, levels)
            .with_context(|| format!("{}: {what} does not fit {layout}", manifest.display()))
    };
    if recorded == layout {
        check(l0, levels, "the tree it records")?;
        return Ok(None);
    }
    let (new_l0, new_levels) = layout.convert(recorded, l0, levels);
    check(
        &new_l0,
        &new_levels,
        &format!("the tree converted from {recorded}"),
    )?;
    let runs = new_l0.len() + new_levels.iter().filter(|(_, ids)| !ids.is_empty()).count();
    *l0 = new_l0;
    *levels = new_levels;
    Ok(Some(format!(
        "{}: the tree was laid out by {recorded}; its {runs} sorted runs are now laid out for \
         {layout} (relabelled, no SST rewritten)",
        manifest.display()
    )))
}
// ANCHOR_END: adopt_layout

impl LsmStorageInner {
    // ANCHOR: compact
    /// Merges the input runs of `task`, read from `snapshot`, into new SSTs in key order.
    /// Tombstones are dropped when the output is the bottom of the tree. An output SST is
    /// finished once its builder's `estimated_size()` reaches `target_sst_size`, at the next
    /// change of user key, so that one key's versions never span two outputs.
    ///
    /// Before week 3 a key has one version, the newest. From week 3 a key has versions: every
    /// version above the watermark is kept (a reader may still see it), and of the versions at or
    /// below it only the newest (see `write_outputs`), unless a compaction filter drops it (week
    /// 3 day 7). From week 4 day 6, merge operands at or below the watermark are folded into one
    /// entry.
    ///
    /// # Errors
    /// If an input block cannot be read or an output cannot be written; the outputs written so
    /// far are then marked obsolete, so that their files go. (An output cut short is a file no
    /// manifest names: the next `open` removes it as a stray.)
    pub(crate) fn compact(
        &self,
        snapshot: &LsmStorageState,
        task: &CompactionTask,
    ) -> Result<Vec<Arc<SsTable>>> {
        // @task week2_day1 2
        // @task week3_day3 4
        // @task week3_day4 3
        // Read before the inputs: no reader of the outputs reads below it, neither a snapshot nor
        // a plain read (see `read_ts_after`).
        let watermark = self.mvcc.watermark();
        // @or week3_day3 4
        // // Read before the inputs: no reader of the outputs reads below it (see `read_ts_after`).
        // let watermark = self.mvcc.latest_commit_ts();
        // @end
        // @stub
        // let watermark = 0; // Not used before week 3.
        // @end
        // @task week3_day7 1
        let filters = self.compaction_filters();
        // @stub
        // let filters = Vec::new(); // Not used before week 3 day 7.
        // @end
        let mut runs = Vec::new();
        for run in task.input_runs() {
            let tables = run
                .iter()
                .map(|id| snapshot.table(*id).cloned())
                .collect::<Result<Vec<_>>>()?;
            runs.push(Box::new(SstConcatIterator::create_and_seek_to_first(
                tables,
            )?));
        }
        // Runs are newest first, so on equal keys the merge hands out the newest version.
        let mut iter = MergeIterator::create(runs);
        let mut outputs = Vec::new();
        let bottom = task.compact_to_bottom_level();
        let written = self.write_outputs(&mut iter, bottom, watermark, &filters, &mut outputs);
        if let Err(error) = written {
            for table in &outputs {
                table.mark_obsolete(Arc::clone(&self.options.fs));
            }
            return Err(error.context("compaction failed"));
        }
        Ok(outputs)
        // @end
    }

    /// Writes the entries of `iter` into SSTs of about `target_sst_size` bytes, appending each to
    /// `outputs` as soon as it is written.
    ///
    /// From week 3 day 3, of each key's versions (which `iter` hands out newest first) it keeps
    /// every version above `watermark` and the newest at or below it, which every reader at or
    /// above the watermark that passes over the newer ones sees; the older ones no reader can
    /// see. At the bottom that newest version is dropped too if it is a tombstone: nothing older
    /// is left for it to hide. An output is cut only between two user keys, so that a level's
    /// SSTs keep disjoint user-key ranges.
    ///
    /// ```text
    ///   in:   a@9 a@7 a@4 a@2 | b@3(tombstone) b@1      watermark 5, bottom
    ///   out:  a@9 a@7 a@4                               (b@3 hides b@1: both go)
    /// ```
    ///
    /// From week 3 day 7, if one of `filters` drops that newest version at or below the
    /// watermark, it is written as a tombstone (and so, at the bottom, not at all); see
    /// [`crate::compact::CompactionFilter`].
    fn write_outputs(
        &self,
        iter: &mut MergeIterator<SstConcatIterator>,
        bottom: bool,
        watermark: u64,
        filters: &[Arc<dyn CompactionFilter>],
        outputs: &mut Vec<Arc<SsTable>>,
    ) -> Result<()> {
        // @task week3_day3 4
        // The output being written, and its id; made at the first entry that goes into it.
        let mut builder: Option<(usize, SsTableBuilder)> = None;
        // The user key of the versions being read, and whether its newest version at or below the
        // watermark has been seen (kept, or dropped as a bottom tombstone).
        let mut key: Option<Vec<u8>> = None;
        let mut settled = false;
        while iter.is_valid() {
            let (user_key, ts) = (iter.key().into_inner(), iter.key().ts());
            if key.as_deref() != Some(user_key) {
                // A new user key: the one place an output may end.
                if builder
                    .as_ref()
                    .is_some_and(|(_, b)| b.estimated_size() >= self.options.target_sst_size)
                {
                    let full = builder.take().expect("just checked");
                    outputs.push(self.write_sst(full)?);
                }
                key = Some(user_key.to_vec());
                settled = false;
            }
            // ANCHOR: compact_versions
            // The value written for this version, or `None` to leave it out.
            let value = if ts > watermark {
                Some(iter.value())
            } else if settled {
                None
            } else {
                settled = true;
                // @task week4_day6 3 stub=comment
                if iter.value_kind() == ValueKind::Merge {
                    // Folds this operand with every older version (all at or below the
                    // watermark) and leaves `iter` past them.
                    let at = KeyVec::from_vec_ts(user_key.to_vec(), ts);
                    if let Some((value, kind)) = self.fold_for_output(iter, bottom, filters)? {
                        let current = self.output(&mut builder)?;
                        current.add_with_kind(at.as_key_slice(), &value, kind);
                    }
                    continue;
                }
                // @end
                let value = iter.value();
                // @task week3_day7 1 stub=comment
                // A filtered version becomes a tombstone: left out, it would let an older version
                // in a level below show through.
                let filtered =
                    !value.is_empty() && filters.iter().any(|f| f.drops(user_key, value));
                let value = if filtered { &b""[..] } else { value };
                // @end
                (!(bottom && value.is_empty())).then_some(value)
            };
            if let Some(value) = value {
                let (_, current) = match &mut builder {
                    Some(current) => current,
                    None => builder.insert(self.new_output()?),
                };
                // @task week4_day6 3
                // Operands above the watermark stay operands: a reader there folds them.
                current.add_with_kind(iter.key(), value, iter.value_kind());
                // @or week3_day3 4
                // current.add(iter.key(), value);
                // @end
            }
            // ANCHOR_END: compact_versions
            iter.next()?;
        }
        if let Some(last) = builder {
            outputs.push(self.write_sst(last)?);
        }
        Ok(())
        // @or week2_day1 2
        // let _ = (watermark, filters); // Week 3.
        // // The output being written, and its id; made at the first entry that goes into it.
        // let mut builder: Option<(usize, SsTableBuilder)> = None;
        // while iter.is_valid() {
        //     // Below the bottom level there is nothing left for a tombstone to hide.
        //     if !(bottom && iter.value().is_empty()) {
        //         let (_, current) = match &mut builder {
        //             Some(current) => current,
        //             None => builder.insert(self.new_output()?),
        //         };
        //         current.add(iter.key(), iter.value());
        //         if current.estimated_size() >= self.options.target_sst_size {
        //             let full = builder.take().expect("just filled");
        //             outputs.push(self.write_sst(full)?);
        //         }
        //     }
        //     iter.next()?;
        // }
        // if let Some(last) = builder {
        //     outputs.push(self.write_sst(last)?);
        // }
        // Ok(())
        // @end
    }
    // ANCHOR_END: compact

    // ANCHOR: fold_for_output
    /// Folds the merge operand `iter` is at, the newest version of its key at or below the
    /// watermark, with the key's older versions in the compaction (week 4 day 6), and returns
    /// what to write for them all, or `None` to write nothing. Leaves `iter` past them.
    ///
    /// A fold that met a put or a tombstone, or that reads the bottom (nothing older lies
    /// below), is the key's whole value: a put (or, if empty, a tombstone, dropped at the
    /// bottom). Otherwise older versions may lie in levels this compaction does not read: the
    /// fold of the operands read is itself an operand, which the read or compaction that meets
    /// those levels folds further. A compaction filter that drops the key makes it a tombstone,
    /// as for a put.
    ///
    /// # Errors
    /// If the fold fails (no operator, the operator's error) or `iter` does.
    fn fold_for_output(
        &self,
        iter: &mut MergeIterator<SstConcatIterator>,
        bottom: bool,
        filters: &[Arc<dyn CompactionFilter>],
    ) -> Result<Option<(Vec<u8>, ValueKind)>> {
        // @task week4_day6 3
        let key = iter.key().key_ref().to_vec();
        let folded = fold_operands(self.options.merge_operator.as_deref(), iter)?;
        let mut kind = if folded.based || bottom {
            ValueKind::of_value(&folded.value)
        } else {
            ValueKind::Merge
        };
        let mut value = folded.value;
        if kind != ValueKind::Delete && filters.iter().any(|f| f.drops(&key, &value)) {
            (value, kind) = (Vec::new(), ValueKind::Delete);
        }
        Ok((!(bottom && kind == ValueKind::Delete)).then_some((value, kind)))
        // @end
    }
    // ANCHOR_END: fold_for_output

    /// The output being written, made at the first entry that goes into it.
    ///
    /// # Errors
    /// If a new output cannot be created.
    fn output<'a>(
        &self,
        builder: &'a mut Option<(usize, SsTableBuilder)>,
    ) -> Result<&'a mut SsTableBuilder> {
        let (_, current) = match builder {
            Some(current) => current,
            None => builder.insert(self.new_output()?),
        };
        Ok(current)
    }

    /// A builder for a compaction output with a fresh id, streaming to its file.
    fn new_output(&self) -> Result<(usize, SsTableBuilder)> {
        let id = self.reserve_sst_id()?;
        let mut builder = SsTableBuilder::create_in(
            &*self.options.fs,
            &self.path_of_sst(id),
            self.options.block_size,
        )
        .with_context(|| format!("writing compaction output SST {id}"))?;
        builder.set_bloom_bits_per_key(self.options.bloom_bits_per_key);
        Ok((id, builder))
    }

    /// Finishes a compaction output.
    fn write_sst(&self, (id, builder): (usize, SsTableBuilder)) -> Result<Arc<SsTable>> {
        let table = builder
            .build_in(
                &*self.options.fs,
                id,
                Some(Arc::clone(&self.block_cache)),
                self.path_of_sst(id),
            )
            .with_context(|| format!("writing compaction output SST {id}"))?;
        Ok(Arc::new(table))
    }

    // ANCHOR: install_compaction
    /// Installs the outputs of `task`: applies the result to the current state, swaps it in, and
    /// marks the input SSTs obsolete.
    ///
    /// Requires `compaction_lock` (the guard proves the caller holds it), held since the task was
    /// generated: no other compaction can have moved the inputs.
    ///
    /// # Errors
    /// If an input is no longer where the task found it, or the result is not a shape the
    /// controller can read (both bugs); the outputs are then marked obsolete.
    pub(crate) fn install_compaction(
        &self,
        _compaction_lock_observer: &MutexGuard<'_, ()>,
        task: &CompactionTask,
        outputs: Vec<Arc<SsTable>>,
    ) -> Result<()> {
        // @task week2_day1 4
        let output_ids: Vec<usize> = outputs.iter().map(|table| table.sst_id()).collect();
        // Structural changes are serialised by `state_lock`: no freeze or flush can install a
        // state between our read of it and our swap, so nothing they did is lost.
        let state_lock = self.state_lock.lock();
        let mut next = self.snapshot().as_ref().clone();
        for table in &outputs {
            next.sstables.insert(table.sst_id(), Arc::clone(table));
        }
        // The controller checks that the inputs are where the task found them and that the
        // result is a shape it can read; if not, nothing is installed and the outputs go.
        let applied = self
            .compaction_controller
            .apply_result(&next.shape(), task, &output_ids);
        // An input that is also an output (a trivial move) keeps its file.
        let inputs: Vec<usize> = task
            .input_ids()
            .into_iter()
            .filter(|id| !output_ids.contains(id))
            .collect();
        let shape = match applied {
            Ok(shape) => shape,
            Err(error) => {
                for table in outputs
                    .iter()
                    .filter(|t| !task.input_ids().contains(&t.sst_id()))
                {
                    table.mark_obsolete(Arc::clone(&self.options.fs));
                }
                return Err(error.context("installing a compaction"));
            }
        };
        next.l0_sstables = shape.l0_sstables;
        next.levels = shape.levels;
        let retired: Vec<Arc<SsTable>> = inputs
            .iter()
            .filter_map(|id| next.sstables.remove(id))
            .collect();
        // @task week2_day5 3 stub=comment
        // Recorded before it becomes visible, and before the inputs can be deleted: a crash never
        // finds the manifest listing an SST that is gone, or one whose name is not yet durable.
        self.options.fs.sync_dir(self.path())?;
        self.log_change(
            &state_lock,
            &ManifestRecord::Levels {
                l0: next.l0_sstables.clone(),
                levels: next.levels.clone(),
            },
        )?;
        // @end
        *self.state.write() = Arc::new(next);
        drop(state_lock);
        // @task week4_day4 3 stub=comment
        // L0 (or the tiers) may have shrunk: wake the writers stopped at its trigger.
        self.notify_flush_done();
        // @end
        // @task week4_day7 3 stub=comment
        let written = outputs
            .iter()
            .filter(|table| !task.input_ids().contains(&table.sst_id()))
            .map(|table| table.table_size())
            .sum();
        let read = retired.iter().map(|table| table.table_size()).sum();
        self.metrics.record_compaction(read, written);
        // @end
        // Deleted when the last reader drops them: a scan that began before still reads them.
        for table in retired {
            table.mark_obsolete(Arc::clone(&self.options.fs));
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: install_compaction

    // ANCHOR: force_full_compaction
    /// Compacts all of L0 and the first run below it (L1) into that run, whatever the strategy;
    /// tombstones are dropped when no SST lies below it. Creates L1 if there is none (without a
    /// compaction strategy). Does nothing on an empty tree. Holds `compaction_lock` throughout,
    /// like [`Self::trigger_compaction`].
    ///
    /// # Errors
    /// If the compaction fails; the state is then unchanged.
    pub fn force_full_compaction(&self) -> Result<()> {
        // @task week2_day1 4
        let compaction = self.compaction_lock.lock();
        let snapshot = self.snapshot();
        let (lower_level, lower_ids) = snapshot.levels.first().cloned().unwrap_or((1, Vec::new()));
        if snapshot.l0_sstables.is_empty() && lower_ids.is_empty() {
            return Ok(());
        }
        let task = CompactionTask::ForceFull(LevelCompactionTask {
            upper_level: None,
            upper_level_sst_ids: snapshot.l0_sstables.clone(),
            lower_level,
            lower_level_sst_ids: lower_ids,
            is_lower_level_bottom_level: snapshot
                .levels
                .iter()
                .skip(1)
                .all(|(_, ids)| ids.is_empty()),
        });
        let outputs = self.compact(&snapshot, &task)?;
        self.install_compaction(&compaction, &task, outputs)
        // @end
    }
    // ANCHOR_END: force_full_compaction

    // ANCHOR: trigger_compaction
    /// Runs one compaction step: asks the controller for a task and, if there is one, runs and
    /// installs it. The compaction thread calls this every 50 ms; tests call it directly.
    ///
    /// Holds `compaction_lock` from before the snapshot to after the install, so that steps run
    /// one at a time (and a test can hold the thread off by taking the lock).
    ///
    /// # Errors
    /// If the compaction fails; the state is then unchanged.
    pub fn trigger_compaction(&self) -> Result<()> {
        // @task week2_day2 2
        let compaction = self.compaction_lock.lock();
        let snapshot = self.snapshot();
        let shape = snapshot.shape();
        // A shape the controller cannot read (an L0 under tiered compaction, say) is an error
        // here, not a compaction that loses track of data.
        self.compaction_controller.check_shape(&shape)?;
        let Some(task) = self.compaction_controller.generate_task(&shape) else {
            return Ok(());
        };
        // SSTs that meet nothing below move as they are (leveled compaction, day 4).
        let outputs = match task.trivial_move(&shape) {
            Some(ids) => ids
                .iter()
                .map(|id| snapshot.table(*id).cloned())
                .collect::<Result<_>>()?,
            None => self.compact(&snapshot, &task)?,
        };
        self.install_compaction(&compaction, &task, outputs)
        // @end
    }
    // ANCHOR_END: trigger_compaction

    /// Whether compaction has work left: a step is running (it holds `compaction_lock` until
    /// its inputs' files are gone), or the strategy has a task for the tree as it is now. `false`
    /// once the compaction thread has caught up; a benchmark waits for this before it measures
    /// the tree.
    pub fn compaction_pending(&self) -> bool {
        if self.compaction_lock.is_locked() {
            return true;
        }
        let shape = self.snapshot().shape();
        self.compaction_controller.generate_task(&shape).is_some()
    }

    // ANCHOR: compaction_thread
    /// Starts the compaction thread: every `COMPACTION_INTERVAL` it calls `trigger_compaction`,
    /// until a message (or a hang-up) arrives on `stop`. A failed compaction is recorded as the
    /// sticky background error and ends the thread, as a failed flush does.
    ///
    /// # Errors
    /// If the thread cannot be spawned.
    pub(crate) fn spawn_compaction_thread(
        self: &Arc<Self>,
        stop: Receiver<()>,
    ) -> Result<JoinHandle<()>> {
        // @task week2_day2 2
        let this = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name("mini-lsm-compact".to_string())
            .spawn(move || {
                let ticker = crossbeam_channel::tick(COMPACTION_INTERVAL);
                loop {
                    crossbeam_channel::select! {
                        recv(ticker) -> _ => {
                            if let Err(error) = this.trigger_compaction() {
                                this.record_bg_error(error);
                                return;
                            }
                        }
                        recv(stop) -> _ => return,
                    }
                }
            })
            .context("cannot spawn the compaction thread")?;
        Ok(handle)
        // @end
    }
    // ANCHOR_END: compaction_thread
}
