// SPDX-License-Identifier: Apache-2.0
//! Merging n sorted iterators into one, with the newest source winning on equal keys.
//!
//! The sources are ordered by age: index 0 is the newest (the mutable memtable), the last index
//! the oldest. A binary heap keyed by `(key, index)` always has on top the smallest key and, among
//! equal keys, the newest source. The entry on top becomes `current`; when we move on, every other
//! source positioned at the same key holds an *older* version of it, so we skip past it.
//!
//! ```text
//!   iter 0 (newest): a=1        c=3
//!   iter 1:          a=0  b=9
//!   iter 2 (oldest):      b=8   c=7   d=4
//!   merged:          a=1  b=9   c=3   d=4
//! ```
//!
//! Invariants: every iterator in the heap and in `current` is valid; `current` is `None` exactly
//! when the merge is exhausted. An error from any source is returned from `next` and leaves the
//! merge unusable (callers wrap it in `FusedIterator`).

use std::cmp::{self};
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;

use anyhow::Result;

use crate::key::KeySlice;
use crate::merge::ValueKind;

use super::StorageIterator;

/// One source in the heap: its age (index, 0 = newest) and the iterator itself.
struct HeapWrapper<I: StorageIterator>(pub usize, pub Box<I>);

impl<I: StorageIterator> PartialEq for HeapWrapper<I> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == cmp::Ordering::Equal
    }
}

impl<I: StorageIterator> Eq for HeapWrapper<I> {}

impl<I: StorageIterator> PartialOrd for HeapWrapper<I> {
    fn partial_cmp(&self, other: &Self) -> Option<cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<I: StorageIterator> Ord for HeapWrapper<I> {
    /// Reversed, because `BinaryHeap` is a max-heap and we want the smallest key, then the
    /// smallest (newest) index, on top.
    fn cmp(&self, other: &Self) -> cmp::Ordering {
        todo!("week 1 day 2, task 2: merge n iterators so that the newest source wins (book: week1-02-merge-iterator)")
    }
}

/// Merges iterators of the same type; on equal keys the iterator with the smaller index (newer)
/// wins and the others' entries for that key are skipped.
pub struct MergeIterator<I: StorageIterator> {
    iters: BinaryHeap<HeapWrapper<I>>,
    current: Option<HeapWrapper<I>>,
}

impl<I: StorageIterator> MergeIterator<I> {
    /// Merges `iters`, ordered newest first. Invalid (empty) iterators are dropped at once, so
    /// `num_active_iterators` counts only sources that still hold entries.
    pub fn create(iters: Vec<Box<I>>) -> Self {
        todo!("week 1 day 2, task 2: merge n iterators so that the newest source wins (book: week1-02-merge-iterator)")
    }
}

/// Steps every source in `heap` that is at `key` past it: the current source holds a newer
/// version of that key. A source that runs dry or fails leaves the heap; a failure is returned.
fn step_past<I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>>(
    heap: &mut BinaryHeap<HeapWrapper<I>>,
    key: KeySlice,
) -> Result<()> {
    todo!("week 1 day 2, task 2: merge n iterators so that the newest source wins (book: week1-02-merge-iterator)")
}

impl<I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>> StorageIterator
    for MergeIterator<I>
{
    type KeyType<'a> = KeySlice<'a>;

    fn key(&self) -> KeySlice<'_> {
        self.current.as_ref().expect("requires is_valid()").1.key()
    }

    fn value(&self) -> &[u8] {
        self.current
            .as_ref()
            .expect("requires is_valid()")
            .1
            .value()
    }

    fn value_kind(&self) -> ValueKind {
        self.current
            .as_ref()
            .expect("requires is_valid()")
            .1
            .value_kind()
    }

    fn is_valid(&self) -> bool {
        todo!("week 1 day 2, task 2: merge n iterators so that the newest source wins (book: week1-02-merge-iterator)")
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 1 day 2, task 2: merge n iterators so that the newest source wins (book: week1-02-merge-iterator)")
    }

    fn num_active_iterators(&self) -> usize {
        todo!("week 1 day 6, task 3: skip SSTs whose key range cannot match, and count active iterators (book: week1-06-write-path)")
    }
}
