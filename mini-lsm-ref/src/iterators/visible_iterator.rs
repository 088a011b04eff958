// SPDX-License-Identifier: Apache-2.0
//! Reading as of a timestamp: of all the versions a merged stream carries, each user key's newest
//! one that a reader at `read_ts` may see (week 3).
//!
//! Below this layer a key's versions lie together, newest first (the order of [`crate::key`]),
//! and a merge hands out every one of them. A reader at `read_ts` sees, for each user key, the
//! newest version whose timestamp is at most `read_ts`, and nothing else: neither the newer ones
//! (written after it began) nor the older ones (overwritten before it began).
//!
//! ```text
//!   merged:  a@9  a@5  a@2  b@8  c@4  c@1       read_ts = 5
//!   visible:      a@5            c@4
//! ```
//!
//! The version handed out may be a tombstone: hiding it is the next layer's job
//! ([`crate::lsm_iterator::LsmIterator`]), which is why it must never fall through to the older
//! version the tombstone deletes.
//!
//! From week 4 day 6 that version may be a merge operand: the iterator then folds it with the
//! key's older versions down to a put or a tombstone (see [`crate::merge`]) and hands out the
//! result as the key's value, at the operand's timestamp:
//!
//! ```text
//!   merged:  a@9 +2  a@5 +1  a@3 =4  a@2 =1  b@8 del      read_ts = 5
//!   visible:         a@5 =5                  (b@8 is newer than 5: b has no version)
//! ```
//!
//! Invariant: when valid, the iterator is at the newest version of its user key with a timestamp
//! at most `read_ts`, and `current`/`current_ts` hold that key. Each step reads the key of the
//! stream below once, and `key` hands out the copy rather than ask the five layers below again:
//! a scan pays a comparison and a copy of the key per entry for reading at a timestamp (a few
//! percent of `cargo x bench`'s scanall).

use anyhow::Result;

use std::sync::Arc;

use super::StorageIterator;
use crate::key::KeySlice;
use crate::merge::{fold_operands, MergeOperator, ValueKind};

// ANCHOR: visible_iterator
/// Yields each user key's newest version at or before `read_ts` from a stream of versions.
pub struct VisibleIterator<I> {
    inner: I,
    read_ts: u64,
    /// The user key of the current entry, so that `next` can skip its older versions; `None`
    /// before the first (the empty key is a key like any other).
    current: Option<Vec<u8>>,
    /// The current entry's timestamp: with `current`, the key handed out without asking the
    /// streams below again.
    current_ts: u64,
    /// Folds merge operands (week 4 day 6); `None` fails on the first operand met.
    operator: Option<Arc<dyn MergeOperator>>,
    /// The current entry's value when it is a fold of merge operands (week 4 day 6); `inner`
    /// is then already past every version the fold read.
    folded: Option<Vec<u8>>,
}
// ANCHOR_END: visible_iterator

impl<I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>> VisibleIterator<I> {
    /// Wraps `inner`, positioned at the newest version of its first key, and moves to the first
    /// version visible at `read_ts`.
    ///
    /// # Errors
    /// An error from `inner` while skipping invisible versions.
    pub fn new(inner: I, read_ts: u64) -> Result<Self> {
        Self::with_merge_operator(inner, read_ts, None)
    }

    /// [`Self::new`], folding merge operands with `operator` (week 4 day 6).
    ///
    /// # Errors
    /// As [`Self::new`], and if a fold fails.
    pub fn with_merge_operator(
        inner: I,
        read_ts: u64,
        operator: Option<Arc<dyn MergeOperator>>,
    ) -> Result<Self> {
        let mut iter = Self {
            inner,
            read_ts,
            current: None,
            current_ts: 0,
            operator,
            folded: None,
        };
        iter.skip_to_visible()?;
        Ok(iter)
    }

    // ANCHOR: visible_skip
    /// Moves `inner` on to the newest version visible at `read_ts` of a key other than
    /// `current`: past the older versions of the key just handed out (it hides them), and past
    /// versions newer than `read_ts`. Rests at the end if there is none.
    fn skip_to_visible(&mut self) -> Result<()> {
        // @task week3_day2 2
        while self.inner.is_valid() {
            let key = self.inner.key();
            if key.ts() <= self.read_ts && self.current.as_deref() != Some(key.key_ref()) {
                let current = self.current.get_or_insert_with(Vec::new);
                current.clear();
                current.extend_from_slice(key.key_ref());
                self.current_ts = key.ts();
                // @task week4_day6 2 stub=comment
                self.fold_if_operand()?;
                // @end
                return Ok(());
            }
            self.inner.next()?;
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: visible_skip

    // ANCHOR: visible_fold
    /// If `inner` is at a merge operand, folds it with the key's older versions into `folded`
    /// (week 4 day 6), leaving `inner` past them.
    ///
    /// # Errors
    /// If the fold fails: no operator, the operator's error, or `inner`'s.
    fn fold_if_operand(&mut self) -> Result<()> {
        // @task week4_day6 2
        if self.inner.value_kind() == ValueKind::Merge {
            let folded = fold_operands(self.operator.as_deref(), &mut self.inner)?;
            self.folded = Some(folded.value);
        }
        Ok(())
        // @end
    }
    // ANCHOR_END: visible_fold
}

impl<I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>> StorageIterator
    for VisibleIterator<I>
{
    type KeyType<'a> = KeySlice<'a>;

    fn key(&self) -> KeySlice<'_> {
        KeySlice::from_slice_ts(
            self.current.as_deref().expect("requires is_valid()"),
            self.current_ts,
        )
    }

    fn value(&self) -> &[u8] {
        match &self.folded {
            Some(folded) => folded,
            None => self.inner.value(),
        }
    }

    fn value_kind(&self) -> ValueKind {
        match &self.folded {
            Some(folded) => ValueKind::of_value(folded),
            None => self.inner.value_kind(),
        }
    }

    fn is_valid(&self) -> bool {
        self.folded.is_some() || self.inner.is_valid()
    }

    // ANCHOR: visible_next
    fn next(&mut self) -> Result<()> {
        // @task week3_day2 2
        // @task week4_day6 2 stub=comment
        // A fold already moved `inner` past the current entry's versions.
        if self.folded.take().is_some() {
            return self.skip_to_visible();
        }
        // @end
        self.inner.next()?;
        self.skip_to_visible()
        // @end
    }
    // ANCHOR_END: visible_next

    fn num_active_iterators(&self) -> usize {
        self.inner.num_active_iterators()
    }
}
