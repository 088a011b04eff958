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

// ANCHOR: lsm_iterator_inner
// @task week1_day5 3 stub=oldest
// @task week2_day1 5 stub=oldest
// @task week3_day2 2 stub=oldest
/// The merged stream under an [`LsmIterator`]: the memtables over the L0 SSTs over the levels,
/// each newer than the next, and of every key only the version the reader may see.
pub(crate) type LsmIteratorInner = VisibleIterator<
    TwoMergeIterator<
        TwoMergeIterator<MergeIterator<MemTableIterator>, MergeIterator<SsTableIterator>>,
        MergeIterator<SstConcatIterator>,
    >,
>;
// @or week2_day1 5
// /// The merged stream under an [`LsmIterator`]: the memtables over the L0 SSTs over the levels,
// /// each newer than the next.
// pub(crate) type LsmIteratorInner = TwoMergeIterator<
//     TwoMergeIterator<MergeIterator<MemTableIterator>, MergeIterator<SsTableIterator>>,
//     MergeIterator<SstConcatIterator>,
// >;
// @end
// @or week1_day5 3
// /// The merged stream under an [`LsmIterator`]: the memtables (newer) over the L0 SSTs (older).
// pub(crate) type LsmIteratorInner =
//     TwoMergeIterator<MergeIterator<MemTableIterator>, MergeIterator<SsTableIterator>>;
// @end
// @or week1_day2 4
// /// The merged stream under an [`LsmIterator`]: every memtable, newest first.
// pub(crate) type LsmIteratorInner = MergeIterator<MemTableIterator>;
// @end
// ANCHOR_END: lsm_iterator_inner

// ANCHOR: lsm_iterator_struct
/// A user-facing scan: skips deleted keys and ends at the upper bound.
pub struct LsmIterator {
    inner: LsmIteratorInner,
    end_bound: Bound<Bytes>,
    is_valid: bool,
}
// ANCHOR_END: lsm_iterator_struct

impl LsmIterator {
    /// Wraps `iter`, positioned at or after the lower bound, and stops at `end_bound`.
    ///
    /// # Errors
    /// An error from the sources while skipping leading tombstones.
    pub(crate) fn new(iter: LsmIteratorInner, end_bound: Bound<Bytes>) -> Result<Self> {
        // @task week1_day2 3
        let mut iter = Self {
            is_valid: iter.is_valid(),
            inner: iter,
            end_bound,
        };
        iter.check_end_bound();
        iter.skip_tombstones()?;
        Ok(iter)
        // @end
    }

    // ANCHOR: lsm_iterator_helpers
    /// Marks the iterator exhausted once the inner key passes the upper bound.
    fn check_end_bound(&mut self) {
        // @task week1_day2 3
        if !self.inner.is_valid() {
            self.is_valid = false;
            return;
        }
        let key = self.inner.key().into_inner();
        self.is_valid = match &self.end_bound {
            Bound::Unbounded => true,
            Bound::Included(end) => key <= end.as_ref(),
            Bound::Excluded(end) => key < end.as_ref(),
        };
        // @end
    }

    /// Moves past deleted keys (empty values), so the iterator rests on a live entry or the end.
    fn skip_tombstones(&mut self) -> Result<()> {
        // @task week1_day2 3
        while self.is_valid && self.inner.value().is_empty() {
            self.inner.next()?;
            self.check_end_bound();
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: lsm_iterator_helpers
}

impl StorageIterator for LsmIterator {
    type KeyType<'a> = &'a [u8];

    fn is_valid(&self) -> bool {
        // @task week1_day2 3
        self.is_valid
        // @end
    }

    fn key(&self) -> &[u8] {
        self.inner.key().into_inner()
    }

    fn value(&self) -> &[u8] {
        self.inner.value()
    }

    fn next(&mut self) -> Result<()> {
        // @task week1_day2 3
        self.inner.next()?;
        self.check_end_bound();
        self.skip_tombstones()
        // @end
    }

    fn num_active_iterators(&self) -> usize {
        // @task week1_day6 3
        self.inner.num_active_iterators()
        // @end
    }
}

// ANCHOR: fused_iterator_struct
/// Guards an iterator so that, once exhausted or failed, it stays so: `next` on an exhausted
/// iterator does nothing, and after an error every `next` fails and `is_valid` is false.
pub struct FusedIterator<I: StorageIterator> {
    iter: I,
    has_errored: bool,
    /// Counts what a user's scan reads into the engine's metrics (week 4 day 7); `None` for
    /// every other iterator.
    tally: Option<ReadTally<I>>,
}
// ANCHOR_END: fused_iterator_struct

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
        // @task week1_day2 3
        !self.has_errored && self.iter.is_valid()
        // @end
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

    // ANCHOR: fused_next
    fn next(&mut self) -> Result<()> {
        // @task week1_day2 3
        if self.has_errored {
            bail!("the iterator already failed; create a new one");
        }
        if self.iter.is_valid() {
            if let Err(e) = self.iter.next() {
                self.has_errored = true;
                return Err(e);
            }
            // @task week4_day7 2 stub=comment
            if let Some(tally) = &mut self.tally {
                tally.land(&self.iter);
            }
            // @end
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: fused_next

    fn num_active_iterators(&self) -> usize {
        // @task week1_day6 3
        self.iter.num_active_iterators()
        // @end
    }
}
