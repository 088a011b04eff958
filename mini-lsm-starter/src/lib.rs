// SPDX-License-Identifier: Apache-2.0
//! Mini-LSM: a log-structured merge-tree storage engine, built one chapter at a time.
//!
//! The modules are the layers of the engine, bottom up:
//!
//! ```text
//!   lsm_storage   the engine: state, read path, write path, flush thread,
//!                 recovery at open                                          (week 1, days 1, 5, 6;
//!                                                                            week 2, days 5-7)
//!                 stalls and the memory budget                              (week 4, days 4-5)
//!   metrics       what the engine did, counted once                         (week 4, day 7)
//!   clock         the write path's time: real, or moved by a test           (week 4, day 4)
//!   merge         merge operands and the operator that folds them           (week 4, day 6)
//!   mvcc          commit timestamps and what readers hold                   (week 3)
//!   manifest      the log of state changes that `open` replays              (week 2, day 5)
//!   wal           the write-ahead log of each memtable                      (week 2, day 6)
//!   record        checksummed record framing of both logs                   (week 2, days 5-7)
//!   lsm_iterator  what a scan hands back: no tombstones, honours bounds      (week 1, day 2)
//!   iterators     merging sorted streams: n-way and two-way                 (week 1, days 2, 5)
//!   mem_table     the in-memory sorted buffer that takes every write         (week 1, day 1)
//!   table         sorted string tables: the immutable files on disk          (week 1, days 4, 7)
//!   block         the unit an SST is read in, and its encoding               (week 1, days 3, 7)
//!   key           the key type that every layer below the engine uses
//!   fs            the file layer: the real file system, or one that crashes on demand
//! ```
#![allow(
    unused_variables,
    unused_imports,
    unused_mut,
    dead_code,
    unreachable_code
)]
#![allow(clippy::ptr_arg)]
// ^ The starter's stubs leave parameters and helpers unused; delete this line when you finish the course.

pub mod block;
pub mod block_cache;
pub mod cli;
pub mod clock;
pub mod compact;
pub mod debug;
pub mod fs;
pub mod id_hash;
pub mod iterators;
pub mod key;
pub mod lsm_iterator;
pub mod lsm_storage;
pub mod manifest;
pub mod mem_table;
pub mod merge;
pub mod metrics;
pub mod mvcc;
pub mod record;
pub mod table;
pub mod wal;

#[cfg(test)]
mod tests;
