// SPDX-License-Identifier: Apache-2.0
//! What a compaction controller sees of the tree: where each SST sits, its size and key range.
//!
//! The engine builds an [`LsmShape`] from its state; the simulator keeps one as its whole state.
//! Controllers read it and return a new one, so they run the same over both.

use std::collections::HashMap;

use bytes::Bytes;

use super::LevelCompactionTask;

// ANCHOR: lsm_shape
/// One SST as a controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstInfo {
    /// The file size in bytes.
    pub size: u64,
    /// The smallest key.
    pub first_key: Bytes,
    /// The largest key.
    pub last_key: Bytes,
}

/// The shape of the tree: L0, the levels (or tiers) and every SST's size and key range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsmShape {
    /// L0 SST ids, newest first.
    pub l0_sstables: Vec<usize>,
    /// `(level, SST ids in key order)`, top level first; with tiered compaction `(tier id, SST
    /// ids)`, newest tier first.
    pub levels: Vec<(usize, Vec<usize>)>,
    /// Every SST listed above, by id.
    pub sstables: HashMap<usize, SstInfo>,
}
// ANCHOR_END: lsm_shape

impl LsmShape {
    /// The SST with id `id`.
    ///
    /// # Panics
    /// If the shape has no such SST: the shape lists an id it does not describe.
    pub fn info(&self, id: usize) -> &SstInfo {
        self.sstables
            .get(&id)
            .unwrap_or_else(|| panic!("SST {id} is listed in the shape but not described"))
    }

    /// The SSTs of level (or tier) `level`; none when there is no such level.
    pub fn level(&self, level: usize) -> &[usize] {
        self.levels
            .iter()
            .find(|(l, _)| *l == level)
            .map_or(&[], |(_, ids)| ids.as_slice())
    }

    /// The SSTs of level `level`, created (empty, in level order) if missing.
    pub fn level_mut(&mut self, level: usize) -> &mut Vec<usize> {
        let at = match self.levels.iter().position(|(l, _)| *l == level) {
            Some(at) => at,
            None => {
                let at = self.levels.partition_point(|(l, _)| *l < level);
                self.levels.insert(at, (level, Vec::new()));
                at
            }
        };
        &mut self.levels[at].1
    }

    /// The total size in bytes of the SSTs `ids`.
    pub fn total_size(&self, ids: &[usize]) -> u64 {
        ids.iter().map(|id| self.info(*id).size).sum()
    }

    /// The smallest first key and the largest last key of the SSTs `ids`; `None` for no SST.
    pub fn key_range(&self, ids: &[usize]) -> Option<(Bytes, Bytes)> {
        let first = ids.iter().map(|id| &self.info(*id).first_key).min()?;
        let last = ids.iter().map(|id| &self.info(*id).last_key).max()?;
        Some((first.clone(), last.clone()))
    }

    /// The SSTs of the sorted run `run` (in key order, disjoint) whose key range meets
    /// `first..=last`, in key order. A binary search finds the first; O(log n + found).
    pub fn overlapping(&self, run: &[usize], first: &[u8], last: &[u8]) -> Vec<usize> {
        let start = run.partition_point(|id| self.info(*id).last_key.as_ref() < first);
        run[start..]
            .iter()
            .copied()
            .take_while(|id| self.info(*id).first_key.as_ref() <= last)
            .collect()
    }
}

// ANCHOR: apply_level_compaction
/// The shape once `output` replaces the inputs of a level-to-level compaction: the upper SSTs
/// leave L0 (or their level), the lower SSTs leave the lower level, and the output joins the
/// lower level, which stays in key order. The lower level is created if missing. `shape` must
/// describe the output SSTs, and may have gained L0 SSTs since the task was made: they stay.
/// SSTs that are not in the task never move.
pub fn apply_level_compaction(
    shape: &LsmShape,
    task: &LevelCompactionTask,
    output: &[usize],
) -> LsmShape {
    // @task week2_day1 3
    let mut next = shape.clone();
    let upper = match task.upper_level {
        None => &mut next.l0_sstables,
        Some(level) => next.level_mut(level),
    };
    upper.retain(|id| !task.upper_level_sst_ids.contains(id));
    let lower = next.level_mut(task.lower_level);
    lower.retain(|id| !task.lower_level_sst_ids.contains(id));
    lower.extend_from_slice(output);
    // The output covers only the key range of the inputs, which no SST left in the lower level
    // overlaps; sorting by first key puts it in its place.
    lower.sort_by(|a, b| shape.info(*a).first_key.cmp(&shape.info(*b).first_key));
    next
    // @end
}
// ANCHOR_END: apply_level_compaction
