// SPDX-License-Identifier: Apache-2.0
//! Merging exactly two iterators of possibly different types; `A` is newer and wins on equal keys.
//!
//! The read path merges the memtables (one `MergeIterator` type) with the SSTs (another); a
//! `MergeIterator` needs a single type, so two different ones meet here.
//!
//! Invariant: after every call, if both are valid and their keys are equal, `b` has been moved past
//! that key, so `a`'s version is the one seen.

use anyhow::Result;

use super::StorageIterator;

/// Merges `a` (newer) and `b` (older).
pub struct TwoMergeIterator<A: StorageIterator, B: StorageIterator> {
    a: A,
    b: B,
    /// Whether the current entry comes from `a`.
    choose_a: bool,
}

impl<
        A: 'static + StorageIterator,
        B: 'static + for<'a> StorageIterator<KeyType<'a> = A::KeyType<'a>>,
    > TwoMergeIterator<A, B>
{
    /// Merges `a` (newer) with `b` (older).
    ///
    /// # Errors
    /// An error from `b` while skipping an entry that `a` shadows.
    pub fn create(a: A, b: B) -> Result<Self> {
        todo!("week 1 day 5, task 1: merge two iterators of different types (book: week1-05-read-path)")
    }

    /// Whether the current entry comes from `a`: `a` is valid and not past `b`.
    fn pick_a(&self) -> bool {
        todo!("week 1 day 5, task 1: merge two iterators of different types (book: week1-05-read-path)")
    }

    /// Moves `b` past the key `a` is at, if they are equal: `a`'s version shadows it.
    fn skip_shadowed_b(&mut self) -> Result<()> {
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
        if self.choose_a {
            self.a.key()
        } else {
            self.b.key()
        }
    }

    fn value(&self) -> &[u8] {
        if self.choose_a {
            self.a.value()
        } else {
            self.b.value()
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
