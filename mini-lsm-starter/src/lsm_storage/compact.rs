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

impl LsmStorageInner {
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
        todo!("week 2 day 1, task 2: merge a compaction's input runs into new SSTs split by target size (book: week2-01-compaction)")
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
        todo!("week 2 day 1, task 2: merge a compaction's input runs into new SSTs split by target size (book: week2-01-compaction)")
    }

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
        todo!("week 4 day 6, task 3: fold operands at compaction only at or below the watermark, as an operand unless a base or the bottom is reached (book: week4-06-merge-operator)")
    }

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
        todo!("week 2 day 1, task 4: install a compaction's result, retire its inputs, and compact L0 and L1 in full (book: week2-01-compaction)")
    }

    /// Compacts all of L0 and the first run below it (L1) into that run, whatever the strategy;
    /// tombstones are dropped when no SST lies below it. Creates L1 if there is none (without a
    /// compaction strategy). Does nothing on an empty tree. Holds `compaction_lock` throughout,
    /// like [`Self::trigger_compaction`].
    ///
    /// # Errors
    /// If the compaction fails; the state is then unchanged.
    pub fn force_full_compaction(&self) -> Result<()> {
        todo!("week 2 day 1, task 4: install a compaction's result, retire its inputs, and compact L0 and L1 in full (book: week2-01-compaction)")
    }

    /// Runs one compaction step: asks the controller for a task and, if there is one, runs and
    /// installs it. The compaction thread calls this every 50 ms; tests call it directly.
    ///
    /// Holds `compaction_lock` from before the snapshot to after the install, so that steps run
    /// one at a time (and a test can hold the thread off by taking the lock).
    ///
    /// # Errors
    /// If the compaction fails; the state is then unchanged.
    pub fn trigger_compaction(&self) -> Result<()> {
        todo!("week 2 day 2, task 2: run one compaction step, and the compaction thread (book: week2-02-simple-leveled)")
    }

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
        todo!("week 2 day 2, task 2: run one compaction step, and the compaction thread (book: week2-02-simple-leveled)")
    }
}
