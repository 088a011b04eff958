// SPDX-License-Identifier: Apache-2.0
//! Merging exactly two iterators of possibly different types; the first is newer and wins on
//! equal keys.
//!
//! The read path merges the memtables (one `MergeIterator` type) with the SSTs (another); a
//! `MergeIterator` needs a single type, so two different ones meet here.
//!
//! ```text
//!   newer:   b=x        d=∅
//!   older:   a=1  b=2  c=3  d=4
//!   merged:  a=1  b=x  c=3  d=∅      b=2 and d=4 are shadowed: stepped over, never shown
//! ```
//!
//! Invariant, restored by `settle` after every move: the two sides never rest on the same key
//! (the older one has been stepped past it), and `current` names the side with the smaller key,
//! or is `None` once both are exhausted.

use std::cmp::Ordering;

use anyhow::Result;

use super::StorageIterator;
use crate::merge::ValueKind;

// ANCHOR: two_merge_struct
/// Which side of a [`TwoMergeIterator`] the current entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Newer,
    Older,
}

/// Merges a newer iterator with an older one.
pub struct TwoMergeIterator<A: StorageIterator, B: StorageIterator> {
    newer: A,
    older: B,
    /// The side holding the current entry; `None` once both sides are exhausted.
    current: Option<Side>,
}
// ANCHOR_END: two_merge_struct

// ANCHOR: two_merge_create
impl<
        A: 'static + StorageIterator,
        B: 'static + for<'a> StorageIterator<KeyType<'a> = A::KeyType<'a>>,
    > TwoMergeIterator<A, B>
{
    /// Merges `a` (newer) with `b` (older).
    ///
    /// # Errors
    /// An error from `b` while stepping past an entry that `a` shadows.
    pub fn create(a: A, b: B) -> Result<Self> {
        // @task week1_day5 1
        let mut merged = Self {
            newer: a,
            older: b,
            current: None,
        };
        merged.settle()?;
        Ok(merged)
        // @end
    }

    /// Restores the invariant after a move: if both sides are at the same key, steps the older
    /// side past it (the newer version shadows it); then points `current` at the smaller key.
    ///
    /// # Errors
    /// An error from the older side while it steps past a shadowed key.
    fn settle(&mut self) -> Result<()> {
        // @task week1_day5 1
        self.current = match (self.newer.is_valid(), self.older.is_valid()) {
            (false, false) => None,
            (true, false) => Some(Side::Newer),
            (false, true) => Some(Side::Older),
            (true, true) => {
                let order = self.newer.key().cmp(&self.older.key());
                if order == Ordering::Equal {
                    // Each side holds a key once, so one step puts the older side past it.
                    self.older.next()?;
                }
                if order == Ordering::Greater {
                    Some(Side::Older)
                } else {
                    Some(Side::Newer)
                }
            }
        };
        Ok(())
        // @end
    }
}
// ANCHOR_END: two_merge_create

// ANCHOR: two_merge_impl
impl<
        A: 'static + StorageIterator,
        B: 'static + for<'a> StorageIterator<KeyType<'a> = A::KeyType<'a>>,
    > StorageIterator for TwoMergeIterator<A, B>
{
    type KeyType<'a> = A::KeyType<'a>;

    fn key(&self) -> Self::KeyType<'_> {
        match self.current.expect("requires is_valid()") {
            Side::Newer => self.newer.key(),
            Side::Older => self.older.key(),
        }
    }

    fn value(&self) -> &[u8] {
        match self.current.expect("requires is_valid()") {
            Side::Newer => self.newer.value(),
            Side::Older => self.older.value(),
        }
    }

    fn value_kind(&self) -> ValueKind {
        match self.current.expect("requires is_valid()") {
            Side::Newer => self.newer.value_kind(),
            Side::Older => self.older.value_kind(),
        }
    }

    fn is_valid(&self) -> bool {
        // @task week1_day5 1
        self.current.is_some()
        // @end
    }

    fn next(&mut self) -> Result<()> {
        // @task week1_day5 1
        match self.current {
            Some(Side::Newer) => self.newer.next()?,
            Some(Side::Older) => self.older.next()?,
            None => return Ok(()),
        }
        self.settle()
        // @end
    }

    fn num_active_iterators(&self) -> usize {
        // @task week1_day6 3
        self.newer.num_active_iterators() + self.older.num_active_iterators()
        // @end
    }
}
// ANCHOR_END: two_merge_impl
