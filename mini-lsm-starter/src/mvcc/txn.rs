// SPDX-License-Identifier: Apache-2.0
//! Transactions (week 3 day 5): a snapshot to read from, a private write set, and one atomic
//! commit.
//!
//! A transaction reads as of the snapshot it took when it began, and keeps its writes to itself
//! until it commits: nobody else sees them, and it sees them first (read-your-writes). A read
//! looks in the write set, then in the snapshot; a scan merges the two, the write set newer:
//!
//! ```text
//!   write set:        b=B'          d=∅ (deleted)   e=E
//!   snapshot scan:    a=A   b=B     d=D
//!   transaction scan: a=A   b=B'                    e=E
//! ```
//!
//! Commit hands the whole write set to the engine's one commit path as a single batch: one log
//! record, one commit timestamp, published once wholly applied. So a reader sees all of a
//! transaction or none of it, and a crash keeps all of it or none. Dropping a transaction
//! without committing aborts it: its writes never left it.
//!
//! Merges (week 4 day 6) join the write set too. An operand over a key the transaction put or
//! deleted folds into that write at once (the transaction knows the base); an operand over a key
//! it did not write stays an operand, the transaction's operands for a key folded into one (the
//! operator's partial-merge law, see [`crate::merge`]), and commits as an operand, so that what
//! other writers merged into the key meanwhile still counts. The transaction reads such a key as
//! its snapshot's value with the operand folded over it. For validation a merge is a write: two
//! transactions that merge one key conflict exactly when two that put it would, at each
//! isolation level (a transaction may have read the key and chosen its operand from what it
//! saw).
//!
//! Invariants: the write set holds each key once, with its latest value (empty for a delete); a
//! transaction that committed or failed to takes no more reads or writes (each returns an error
//! saying so); while it is active, its read timestamp holds the watermark, so compaction keeps
//! what it reads, and once it is over it holds nothing.
//!
//! What day 5 leaves out is checking: two transactions may both read a counter, both write it
//! back incremented, and both commit, one increment lost. Day 6 validates commits (see
//! `conflict.rs`). Left out for good: the write set lives in memory, whole (a huge transaction
//! is a huge batch), and a scan copies the part of the write set in its range when it is made
//! (later writes of the transaction do not show in an iterator already made).

use std::collections::BTreeMap;
use std::ops::Bound;

use anyhow::{bail, ensure, Result};
use bytes::Bytes;

use super::{CommitCheck, Isolation, ReadSet, Snapshot};
use crate::iterators::two_merge_iterator::TwoMergeIterator;
use crate::iterators::StorageIterator;
use crate::lsm_iterator::{FusedIterator, LsmIterator};
use crate::lsm_storage::{check_entry_size, LsmStorageInner};
use crate::merge::ValueKind;

/// Where a transaction is in its life.
enum TxnState<'a> {
    /// Takes reads and writes, from this snapshot, which holds its read timestamp in the
    /// watermark.
    Active(Snapshot<'a>),
    /// Committed: its writes are in the engine.
    Committed,
    /// Its commit failed (or it was dropped), with this message: nothing of it was written.
    Failed(String),
}

/// A transaction: reads from a snapshot, writes into a private write set, commits atomically.
/// Made by [`LsmStorageInner::new_txn`]; dropping it without committing aborts it.
pub struct Transaction<'a> {
    inner: &'a LsmStorageInner,
    /// The timestamp it reads at (its snapshot's).
    read_ts: u64,
    /// What its commit is validated for (week 3 day 6); [`Isolation::Unvalidated`] before.
    isolation: Isolation,
    /// Its writes, not yet committed: key -> value, empty for a delete.
    writes: BTreeMap<Bytes, Bytes>,
    /// Its merge operands over keys it did not put or delete, one (folded) per key (week 4 day
    /// 6). No key is in both maps.
    merges: BTreeMap<Bytes, Bytes>,
    /// What it read from its snapshot (serializable only, week 3 day 6).
    reads: ReadSet,
    /// Active (with its snapshot), committed or failed.
    state: TxnState<'a>,
}

/// Whether transactions of this isolation level are validated, so registered among the live
/// transactions (see [`crate::mvcc::Mvcc::register_txn`]).
fn validated(isolation: Isolation) -> bool {
    isolation != Isolation::Unvalidated
}

impl<'a> Transaction<'a> {
    /// A transaction reading from `snapshot`, validated as `isolation` says; registered, if it
    /// is validated, with [`crate::mvcc::Mvcc::register_txn`] at the snapshot's timestamp.
    pub(crate) fn new(
        inner: &'a LsmStorageInner,
        snapshot: Snapshot<'a>,
        isolation: Isolation,
    ) -> Self {
        Self {
            inner,
            read_ts: snapshot.read_ts(),
            isolation,
            writes: BTreeMap::new(),
            merges: BTreeMap::new(),
            reads: ReadSet::default(),
            state: TxnState::Active(snapshot),
        }
    }

    /// The timestamp it reads at: it sees every commit at or below it, none above.
    pub fn read_ts(&self) -> u64 {
        self.read_ts
    }

    /// What its commit is validated for.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Its snapshot, if the transaction still takes reads and writes.
    ///
    /// # Errors
    /// If it has committed or failed: the error says which, and what to do.
    fn active(&self) -> Result<&Snapshot<'a>> {
        match &self.state {
            TxnState::Active(snapshot) => Ok(snapshot),
            TxnState::Committed => bail!(
                "this transaction has already committed; begin a new one with new_txn to go on"
            ),
            TxnState::Failed(why) => bail!(
                "this transaction failed to commit ({why}); nothing of it was written: begin a \
                 new one with new_txn to retry"
            ),
        }
    }

    /// Returns the value of `key` as the transaction sees it: its own write if it wrote the key,
    /// the snapshot's value otherwise.
    ///
    /// # Errors
    /// If the transaction has committed or failed, or an SST block cannot be read.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        todo!("week 3 day 5, task 1: begin a transaction on a snapshot, write into its private write set, read its own writes first (book: week3-05-transactions)")
    }

    /// Returns an iterator over the live entries with keys in `lower..upper` as the transaction
    /// sees them: its own writes (the part in range, as they are now) merged over its snapshot.
    ///
    /// # Errors
    /// If the transaction has committed or failed, or an SST block cannot be read.
    pub fn scan(
        &mut self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<FusedIterator<TxnIterator>> {
        todo!("week 3 day 5, task 2: scan a transaction: its write set merged over its snapshot, its deletes hiding keys (book: week3-05-transactions)")
    }

    /// Stores `value` under `key` in the write set, for the commit.
    ///
    /// # Errors
    /// If the transaction has committed or failed; if `value` is empty (the empty value marks a
    /// deletion: use [`Self::delete`]), or the key or value is longer than 65535 bytes.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        todo!("week 3 day 5, task 1: begin a transaction on a snapshot, write into its private write set, read its own writes first (book: week3-05-transactions)")
    }

    /// Deletes `key` in the write set, for the commit.
    ///
    /// # Errors
    /// If the transaction has committed or failed, or the key is longer than 65535 bytes.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        todo!("week 3 day 5, task 1: begin a transaction on a snapshot, write into its private write set, read its own writes first (book: week3-05-transactions)")
    }

    /// Writes `value` (empty: a delete) under `key` in the write set, replacing an earlier write.
    fn write(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        todo!("week 3 day 5, task 1: begin a transaction on a snapshot, write into its private write set, read its own writes first (book: week3-05-transactions)")
    }

    /// Adds `operand` to `key` (week 4 day 6): folded at once into the transaction's own put or
    /// delete of `key`; otherwise kept, folded with its earlier operands for `key`, and
    /// committed as an operand. See the module docs.
    ///
    /// # Errors
    /// If the transaction has committed or failed; if the engine has no merge operator, or it
    /// fails to fold; if the key or operand is longer than 65535 bytes.
    pub fn merge(&mut self, key: &[u8], operand: &[u8]) -> Result<()> {
        todo!("week 4 day 6, task 4: merge inside a transaction: fold into its own put or delete, else keep one operand per key, read it over the snapshot, commit it as an operand (book: week4-06-merge-operator)")
    }

    /// The value `key` reads as in this transaction when its only write is `operand`: its
    /// snapshot's value with the operand folded over it; empty for none. (A serializable
    /// transaction's caller has recorded the read.)
    fn fold_over_snapshot(&self, key: &[u8], operand: &[u8]) -> Result<Bytes> {
        let operator = self.inner.check_merge_operator()?;
        let base = self.active()?.get(key)?;
        Ok(operator.merge(key, base.as_deref(), &[operand])?.into())
    }

    /// Commits the write set as one batch at one commit timestamp, through the engine's commit
    /// path. Returns that timestamp, or `None` for a read-only transaction, which commits
    /// without a timestamp or a check: it saw one consistent snapshot, so it serialises at its
    /// read timestamp. Either way the transaction is over.
    ///
    /// # Errors
    /// If the transaction has committed or failed already. A [`crate::mvcc::Conflict`] (find
    /// it with `downcast_ref`) if its isolation level forbids the commit (week 3 day 6); any
    /// error of a write (a stall past its timeout, a background error, the log). After an
    /// error nothing of the transaction was written, and it takes nothing more.
    pub fn commit(&mut self) -> Result<Option<u64>> {
        todo!("week 3 day 5, task 3: commit the write set as one batch through the commit path; a finished transaction refuses use (book: week3-05-transactions)")
    }

    /// Ends the active transaction in `state`: unregisters it from the live transactions if it
    /// was registered (week 3 day 6), and drops its snapshot, which releases the watermark.
    fn finish(&mut self, state: TxnState<'a>) {
        // TODO(week 3 day 6, task 2: validate a transaction in the commit's serialised section before its timestamp, and record every commit's keys (book: week3-06-serializable))
        self.state = state;
    }
}

impl Drop for Transaction<'_> {
    /// Aborts the transaction if it is still active: its writes never left it, so there is
    /// nothing to undo; it only stops being a live transaction.
    fn drop(&mut self) {
        if matches!(self.state, TxnState::Active(_)) {
            self.finish(TxnState::Failed("aborted".to_string()));
        }
    }
}

/// Whether no key lies in `lower..upper` (an inverted range, or one empty by its exclusions),
/// which `BTreeMap::range` would panic on.
fn range_is_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
        _ => false,
    }
}

/// The part of a write set in a scan's range, in key order, as a cursor: tombstones included
/// (the empty value), so that they hide the snapshot's versions.
pub struct WriteSetIterator {
    entries: Vec<(Bytes, Bytes)>,
    position: usize,
}

impl WriteSetIterator {
    /// A cursor at the first of `entries`, which are sorted by key, each key once.
    fn new(entries: Vec<(Bytes, Bytes)>) -> Self {
        Self {
            entries,
            position: 0,
        }
    }
}

impl StorageIterator for WriteSetIterator {
    type KeyType<'a> = &'a [u8];

    fn key(&self) -> &[u8] {
        &self.entries[self.position].0
    }

    fn value(&self) -> &[u8] {
        &self.entries[self.position].1
    }

    fn is_valid(&self) -> bool {
        self.position < self.entries.len()
    }

    fn next(&mut self) -> Result<()> {
        if self.is_valid() {
            self.position += 1;
        }
        Ok(())
    }
}

/// A transaction's scan: its write set merged over its snapshot's scan, deleted keys skipped.
pub struct TxnIterator {
    inner: TwoMergeIterator<WriteSetIterator, FusedIterator<LsmIterator>>,
}

impl TxnIterator {
    /// Merges `writes` (newer) over `snapshot` and moves to the first live entry.
    ///
    /// # Errors
    /// An error of the snapshot's scan.
    fn new(writes: WriteSetIterator, snapshot: FusedIterator<LsmIterator>) -> Result<Self> {
        todo!("week 3 day 5, task 2: scan a transaction: its write set merged over its snapshot, its deletes hiding keys (book: week3-05-transactions)")
    }

    /// Moves past the keys the transaction deleted (the snapshot's scan has no tombstones left;
    /// the write set's hide a key the snapshot has).
    fn skip_deleted(&mut self) -> Result<()> {
        todo!("week 3 day 5, task 2: scan a transaction: its write set merged over its snapshot, its deletes hiding keys (book: week3-05-transactions)")
    }
}

impl StorageIterator for TxnIterator {
    type KeyType<'a> = &'a [u8];

    fn key(&self) -> &[u8] {
        self.inner.key()
    }

    fn value(&self) -> &[u8] {
        self.inner.value()
    }

    fn is_valid(&self) -> bool {
        self.inner.is_valid()
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 3 day 5, task 2: scan a transaction: its write set merged over its snapshot, its deletes hiding keys (book: week3-05-transactions)")
    }

    fn num_active_iterators(&self) -> usize {
        self.inner.num_active_iterators()
    }
}
