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

// ANCHOR: heap_wrapper
/// One source in the heap: its age (index, 0 = newest) and the iterator itself.
struct HeapWrapper<I: StorageIterator>(pub usize, pub Box<I>);
// ANCHOR_END: heap_wrapper

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
        // @task week1_day2 2
        self.1
            .key()
            .cmp(&other.1.key())
            .then(self.0.cmp(&other.0))
            .reverse()
        // @end
    }
}

// ANCHOR: merge_iterator_struct
/// Merges iterators of the same type; on equal keys the iterator with the smaller index (newer)
/// wins and the others' entries for that key are skipped.
pub struct MergeIterator<I: StorageIterator> {
    iters: BinaryHeap<HeapWrapper<I>>,
    current: Option<HeapWrapper<I>>,
}
// ANCHOR_END: merge_iterator_struct

impl<I: StorageIterator> MergeIterator<I> {
    // ANCHOR: merge_create
    /// Merges `iters`, ordered newest first. Invalid (empty) iterators are dropped at once, so
    /// `num_active_iterators` counts only sources that still hold entries.
    pub fn create(iters: Vec<Box<I>>) -> Self {
        // @task week1_day2 2
        let mut heap: BinaryHeap<_> = iters
            .into_iter()
            .enumerate()
            .filter(|(_, iter)| iter.is_valid())
            .map(|(idx, iter)| HeapWrapper(idx, iter))
            .collect();
        let current = heap.pop();
        Self {
            iters: heap,
            current,
        }
        // @end
    }
    // ANCHOR_END: merge_create
}

/// Steps every source in `heap` that is at `key` past it: the current source holds a newer
/// version of that key. A source that runs dry or fails leaves the heap; a failure is returned.
fn step_past<I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>>(
    heap: &mut BinaryHeap<HeapWrapper<I>>,
    key: KeySlice,
) -> Result<()> {
    // @task week1_day2 2
    while let Some(mut top) = heap.peek_mut() {
        if top.1.key() != key {
            break;
        }
        match top.1.next() {
            // Dropping `top` re-sifts it to its new place in the heap.
            Ok(()) if top.1.is_valid() => {}
            // Popped before the error leaves: the heap never compares an exhausted or failed
            // source.
            stepped => {
                PeekMut::pop(top);
                stepped?;
            }
        }
    }
    Ok(())
    // @end
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
        // @task week1_day2 2
        self.current.is_some()
        // @end
    }

    // ANCHOR: merge_next
    fn next(&mut self) -> Result<()> {
        // @task week1_day2 2
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        step_past(&mut self.iters, current.1.key())?;
        current.1.next()?;
        if !current.1.is_valid() {
            self.current = self.iters.pop();
        } else if let Some(mut top) = self.iters.peek_mut() {
            // `current` keeps its place unless a source in the heap now goes first: a smaller
            // key, or the same key from a newer source. (The order is reversed: first is greatest.)
            if *top > *current {
                std::mem::swap(&mut *top, current);
            }
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: merge_next

    // ANCHOR: merge_num_active
    fn num_active_iterators(&self) -> usize {
        // @task week1_day6 3
        self.current
            .iter()
            .chain(self.iters.iter())
            .map(|source| source.1.num_active_iterators())
            .sum()
        // @end
    }
    // ANCHOR_END: merge_num_active
}
