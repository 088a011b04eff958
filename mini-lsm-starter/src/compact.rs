// SPDX-License-Identifier: Apache-2.0
//! Compaction: merging SSTs to bound read and space amplification (week 2).
//!
//! Week 1 never compacts: flushed SSTs pile up in L0. Week 2 adds the strategies as variants of
//! [`CompactionOptions`] and the machinery that runs them.

/// Which compaction strategy the engine runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactionOptions {
    /// No compaction: every flushed SST stays in L0.
    #[default]
    NoCompaction,
}
