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

// ANCHOR: two_merge_struct
/// Merges `a` (newer) and `b` (older).
pub struct TwoMergeIterator<A: StorageIterator, B: StorageIterator> {
    a: A,
    b: B,
    /// Whether the current entry comes from `a`.
    choose_a: bool,
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
    /// An error from `b` while skipping an entry that `a` shadows.
    pub fn create(a: A, b: B) -> Result<Self> {
        // @task week1_day5 1
        let mut iter = Self {
            a,
            b,
            choose_a: false,
        };
        iter.skip_shadowed_b()?;
        iter.choose_a = iter.pick_a();
        Ok(iter)
        // @end
    }

    /// Whether the current entry comes from `a`: `a` is valid and not past `b`.
    fn pick_a(&self) -> bool {
        // @task week1_day5 1
        if !self.a.is_valid() {
            return false;
        }
        if !self.b.is_valid() {
            return true;
        }
        self.a.key() < self.b.key()
        // @end
    }

    /// Moves `b` past the key `a` is at, if they are equal: `a`'s version shadows it.
    fn skip_shadowed_b(&mut self) -> Result<()> {
        // @task week1_day5 1
        if self.a.is_valid() && self.b.is_valid() && self.b.key() == self.a.key() {
            self.b.next()?;
        }
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
        // @task week1_day5 1
        if self.choose_a {
            self.a.is_valid()
        } else {
            self.b.is_valid()
        }
        // @end
    }

    fn next(&mut self) -> Result<()> {
        // @task week1_day5 1
        if self.choose_a {
            self.a.next()?;
        } else {
            self.b.next()?;
        }
        self.skip_shadowed_b()?;
        self.choose_a = self.pick_a();
        Ok(())
        // @end
    }

    fn num_active_iterators(&self) -> usize {
        // @task week1_day6 3
        self.a.num_active_iterators() + self.b.num_active_iterators()
        // @end
    }
}
// ANCHOR_END: two_merge_impl
