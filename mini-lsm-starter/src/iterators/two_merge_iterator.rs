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
        todo!("week 1 day 5, task 1: merge two iterators of different types (book: week1-05-read-path)")
    }

    /// Restores the invariant after a move: if both sides are at the same key, steps the older
    /// side past it (the newer version shadows it); then points `current` at the smaller key.
    ///
    /// # Errors
    /// An error from the older side while it steps past a shadowed key.
    fn settle(&mut self) -> Result<()> {
        todo!("week 1 day 5, task 1: merge two iterators of different types (book: week1-05-read-path)")
    }
}

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
        todo!("week 1 day 5, task 1: merge two iterators of different types (book: week1-05-read-path)")
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 1 day 5, task 1: merge two iterators of different types (book: week1-05-read-path)")
    }

    fn num_active_iterators(&self) -> usize {
        todo!("week 1 day 6, task 3: skip SSTs whose key range cannot match, and count active iterators (book: week1-06-write-path)")
    }
}
