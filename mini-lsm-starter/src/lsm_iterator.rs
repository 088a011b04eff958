// SPDX-License-Identifier: Apache-2.0
//! What a scan hands to the user: live entries only, within the bounds, and safe after an error.
//!
//! Below this layer every stream still carries tombstones (empty values) and runs to the end of
//! its sources. [`LsmIterator`] skips tombstones and stops at the upper bound; [`FusedIterator`]
//! makes an exhausted or failed iterator stay that way, so a caller that ignores an error cannot
//! read garbage from a half-moved merge.

use std::ops::Bound;

use anyhow::{bail, Result};
use bytes::Bytes;

use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::merge_iterator::MergeIterator;
use crate::iterators::two_merge_iterator::TwoMergeIterator;
use crate::iterators::visible_iterator::VisibleIterator;
use crate::iterators::StorageIterator;
use crate::mem_table::MemTableIterator;
use crate::merge::ValueKind;
use crate::metrics::ReadTally;
use crate::table::SsTableIterator;

// TODO(week 1 day 5, task 3: scan the L0 SSTs together with the memtables (book: week1-05-read-path))
/// The merged stream under an [`LsmIterator`]: every memtable, newest first.
pub(crate) type LsmIteratorInner = MergeIterator<MemTableIterator>;

/// A user-facing scan: skips deleted keys and ends at the upper bound.
pub struct LsmIterator {
    inner: LsmIteratorInner,
    end_bound: Bound<Bytes>,
    is_valid: bool,
}

impl LsmIterator {
    /// Wraps `iter`, positioned at or after the lower bound, and stops at `end_bound`.
    ///
    /// # Errors
    /// An error from the sources while skipping leading tombstones.
    pub(crate) fn new(iter: LsmIteratorInner, end_bound: Bound<Bytes>) -> Result<Self> {
        todo!("week 1 day 2, task 3: hide tombstones, stop at the upper bound and fuse the iterator (book: week1-02-merge-iterator)")
    }

    /// Marks the iterator exhausted once the inner key passes the upper bound.
    fn check_end_bound(&mut self) {
        todo!("week 1 day 2, task 3: hide tombstones, stop at the upper bound and fuse the iterator (book: week1-02-merge-iterator)")
    }

    /// Moves past deleted keys (empty values), so the iterator rests on a live entry or the end.
    fn skip_tombstones(&mut self) -> Result<()> {
        todo!("week 1 day 2, task 3: hide tombstones, stop at the upper bound and fuse the iterator (book: week1-02-merge-iterator)")
    }
}

impl StorageIterator for LsmIterator {
    type KeyType<'a> = &'a [u8];

    fn is_valid(&self) -> bool {
        todo!("week 1 day 2, task 3: hide tombstones, stop at the upper bound and fuse the iterator (book: week1-02-merge-iterator)")
    }

    fn key(&self) -> &[u8] {
        self.inner.key().into_inner()
    }

    fn value(&self) -> &[u8] {
        self.inner.value()
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 1 day 2, task 3: hide tombstones, stop at the upper bound and fuse the iterator (book: week1-02-merge-iterator)")
    }

    fn num_active_iterators(&self) -> usize {
        todo!("week 1 day 6, task 3: skip SSTs whose key range cannot match, and count active iterators (book: week1-06-write-path)")
    }
}

/// Guards an iterator so that, once exhausted or failed, it stays so: `next` on an exhausted
/// iterator does nothing, and after an error every `next` fails and `is_valid` is false.
pub struct FusedIterator<I: StorageIterator> {
    iter: I,
    has_errored: bool,
    /// Counts what a user's scan reads into the engine's metrics (week 4 day 7); `None` for
    /// every other iterator.
    tally: Option<ReadTally<I>>,
}

impl<I: StorageIterator> FusedIterator<I> {
    /// Guards `iter`.
    pub fn new(iter: I) -> Self {
        Self {
            iter,
            has_errored: false,
            tally: None,
        }
    }

    /// Has `tally` count every entry this iterator lands on, from the one it rests on now (see
    /// [`crate::metrics::Metrics::count_scan`]).
    pub(crate) fn counted(mut self, mut tally: ReadTally<I>) -> Self {
        tally.land(&self.iter);
        self.tally = Some(tally);
        self
    }
}

impl<I: StorageIterator> StorageIterator for FusedIterator<I> {
    type KeyType<'a>
        = I::KeyType<'a>
    where
        Self: 'a;

    fn is_valid(&self) -> bool {
        todo!("week 1 day 2, task 3: hide tombstones, stop at the upper bound and fuse the iterator (book: week1-02-merge-iterator)")
    }

    /// # Panics
    /// If the iterator is not valid: reading past the end is a bug in the caller.
    fn key(&self) -> Self::KeyType<'_> {
        assert!(self.is_valid(), "key() called on an invalid iterator");
        self.iter.key()
    }

    /// # Panics
    /// If the iterator is not valid.
    fn value(&self) -> &[u8] {
        assert!(self.is_valid(), "value() called on an invalid iterator");
        self.iter.value()
    }

    /// # Panics
    /// If the iterator is not valid.
    fn value_kind(&self) -> ValueKind {
        assert!(
            self.is_valid(),
            "value_kind() called on an invalid iterator"
        );
        self.iter.value_kind()
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 1 day 2, task 3: hide tombstones, stop at the upper bound and fuse the iterator (book: week1-02-merge-iterator)")
    }

    fn num_active_iterators(&self) -> usize {
        todo!("week 1 day 6, task 3: skip SSTs whose key range cannot match, and count active iterators (book: week1-06-write-path)")
    }
}
