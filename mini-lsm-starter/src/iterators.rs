// SPDX-License-Identifier: Apache-2.0
//! The iterator protocol every sorted stream in the engine speaks, and the iterators that merge
//! several streams into one.
//!
//! Unlike `std::iter::Iterator`, a [`StorageIterator`] is a *cursor*: it points at an entry that
//! can be read many times (`key`, `value`) and is moved by `next`, which may fail (a block read
//! can hit a corrupt file). `is_valid` says whether the cursor points at an entry at all.

pub mod concat_iterator;
pub mod merge_iterator;
pub mod two_merge_iterator;
pub mod visible_iterator;

use anyhow::Result;

use crate::merge::ValueKind;

/// A cursor over a sorted stream of key-value entries.
pub trait StorageIterator {
    /// The key type this iterator hands out: `KeySlice` inside the engine, `&[u8]` to users.
    type KeyType<'a>: PartialEq + Eq + PartialOrd + Ord
    where
        Self: 'a;

    /// The current value. Requires `is_valid()`.
    fn value(&self) -> &[u8];

    /// The current key. Requires `is_valid()`.
    fn key(&self) -> Self::KeyType<'_>;

    /// Whether the cursor points at an entry.
    fn is_valid(&self) -> bool;

    /// Moves to the next entry.
    ///
    /// # Errors
    /// Any I/O or corruption error met while reading ahead. After an error the iterator must not
    /// be used again; wrap it in a `FusedIterator` to make that safe.
    fn next(&mut self) -> Result<()>;

    /// What the current entry is (week 4 day 6): a put, a tombstone or a merge operand.
    /// Requires `is_valid()`. An iterator that knows no kinds has puts and, where the value is
    /// empty, tombstones; one that passes on entries of another passes on their kinds.
    fn value_kind(&self) -> ValueKind {
        ValueKind::of_value(self.value())
    }

    /// How many underlying iterators this one holds open, counting itself if it is a leaf.
    fn num_active_iterators(&self) -> usize {
        1
    }
}
