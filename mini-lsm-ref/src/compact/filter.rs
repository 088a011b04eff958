// SPDX-License-Identifier: Apache-2.0
//! Compaction filters (week 3 day 7): data the user no longer wants, dropped as compaction
//! rewrites it, with no delete written for each key.
//!
//! Dropping a whole table of a database built on a key-value store means deleting every key
//! under its prefix: a tombstone per key, written, flushed and compacted. A filter does it
//! lazily instead: each compaction asks the filters about every key it rewrites, and drops the
//! data of the keys a filter names. What is not yet compacted stays readable until it is.
//!
//! A filter only ever decides about a key's newest version at or below the watermark, the one
//! version there that a reader can still see (every older one goes anyway):
//!
//! ```text
//!   versions of k:  k@12=c  k@8=b  k@3=a          watermark 10, a filter names k
//!   out:            k@12=c  k@8=∅                 k@12: a reader above 10 may still read it
//!   out (bottom):   k@12=c                        nothing older is left below for ∅ to hide
//! ```
//!
//! Above the watermark nothing is filtered: a snapshot there must keep reading what it read.
//! And the filtered version becomes a tombstone, not nothing, unless the output is the bottom:
//! simply leaving it out would let an older version of the key in a level below (k@1 in L2,
//! say) show through: a dropped key would come back with an older value. So a reader at or
//! above the watermark sees, for each key, either what it saw before or no value; never a value
//! that was overwritten.
//!
//! Left out: filters are not persisted (add them again after `open`); a filter sees neither the
//! timestamp nor the level, so a time-to-live filter needs the expiry inside the value; and it
//! can only drop, not rewrite a value (RocksDB's filters can also change one).

use std::fmt::Debug;

use bytes::Bytes;

// ANCHOR: compaction_filter
/// Decides which keys compaction may drop. Filters are added to a running engine with
/// `LsmStorageInner::add_compaction_filter`, and each compaction asks every filter added
/// before it started.
pub trait CompactionFilter: Send + Sync + Debug {
    /// Whether to drop `key`, whose value (never a tombstone) is `value`.
    fn drops(&self, key: &[u8], value: &[u8]) -> bool;
}

/// Drops every key that starts with a prefix: a dropped table, say.
#[derive(Debug, Clone)]
pub struct PrefixFilter {
    prefix: Bytes,
}

impl PrefixFilter {
    /// A filter that drops every key starting with `prefix`.
    pub fn new(prefix: impl Into<Bytes>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

impl CompactionFilter for PrefixFilter {
    fn drops(&self, key: &[u8], _value: &[u8]) -> bool {
        key.starts_with(&self.prefix)
    }
}
// ANCHOR_END: compaction_filter
