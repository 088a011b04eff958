// SPDX-License-Identifier: Apache-2.0
//! The memtable: the sorted, in-memory buffer that takes every write.
//!
//! A write lands in exactly one place first: the *mutable* memtable. When it grows past the target
//! size the engine freezes it (it becomes *immutable*, read-only) and starts a fresh one; a
//! background thread later writes each immutable memtable out as an SST.
//!
//! ```text
//!   put/delete ──▶ [ memtable ]  ──freeze──▶ [ imm 3 ][ imm 2 ][ imm 1 ] ──flush──▶ L0 SST
//!                    mutable                  newest ─────────▶ oldest
//! ```
//!
//! The map is a lock-free skip list, so readers and writers never block each other on the
//! structure; each key's value sits in a small slot ([`Slot`]) so that an overwrite is never seen
//! as a missing key. A delete is a put of the empty value: the *tombstone*. It must be stored, not applied by
//! removing the key, because an older value of the key may still live in an older memtable or SST,
//! and the tombstone is what hides it.
//!
//! Short keys live inside their skip-list node ([`MemKey`]), so that a search step reads one place
//! in memory, not two; values are copied into an `Arena` of large chunks rather than allocated
//! one by one.
//!
//! Invariants:
//! - `approximate_size` only grows, and is at least the sum of key and value lengths put so far;
//!   it also counts each entry's skip-list node ([`ENTRY_OVERHEAD`]), so that a memtable of the
//!   target size takes about that much memory, not twice as much.
//! - A frozen memtable is never written again (the engine guarantees this with its state lock).

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod arena;
mod key;
mod slot;

use std::cell::Cell;

use anyhow::Result;
use bytes::Bytes;
use crossbeam_skiplist::map::Entry;
use crossbeam_skiplist::SkipMap;
use ouroboros::self_referencing;

use crate::fs::FileSystem;
use crate::iterators::StorageIterator;
use crate::key::{KeySlice, TS_DEFAULT, TS_RANGE_BEGIN, TS_RANGE_END};
use crate::merge::ValueKind;
use crate::table::SsTableBuilder;
use crate::wal::{Wal, WalMode, WalReplay};

use arena::Arena;
pub use key::MemKey;
pub use slot::Slot;

/// The memory an entry takes besides its key and value bytes: the skip-list node, which holds the
/// key (or its handle) and the slot, a reference count and height, on average two tower links, and
/// the allocator's header and rounding. Measured, not exact; it keeps the size honest.
pub const ENTRY_OVERHEAD: usize =
    std::mem::size_of::<MemKey>() + std::mem::size_of::<Slot>() + 8 + 16 + 16;

/// A sorted in-memory map from key to value; the empty value marks a deletion.
pub struct MemTable {
    map: Arc<SkipMap<MemKey, Slot>>,
    /// Where the keys and values are copied; the skip list holds slices of it.
    arena: Arena,
    /// The write-ahead log every write goes to first, when the engine keeps one (week 2).
    wal: Option<Arc<Wal>>,
    id: usize,
    approximate_size: Arc<AtomicUsize>,
}

/// Turns user-key bounds into memtable key bounds, for the skip list's range query: every
/// version of a key within the range is in, every version of a key outside it is out.
fn key_bounds(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> (Bound<MemKey>, Bound<MemKey>) {
    todo!("week 1 day 2, task 1: iterate over a range of the memtable (book: week1-02-merge-iterator)")
}

/// Turns a borrowed bound into an owned one.
pub(crate) fn map_bound(bound: Bound<&[u8]>) -> Bound<Bytes> {
    match bound {
        Bound::Included(x) => Bound::Included(Bytes::copy_from_slice(x)),
        Bound::Excluded(x) => Bound::Excluded(Bytes::copy_from_slice(x)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl MemTable {
    /// Creates an empty memtable. `id` is also the id of the SST it will be flushed to.
    pub fn create(id: usize) -> Self {
        Self {
            map: Arc::new(SkipMap::new()),
            arena: Arena::default(),
            wal: None,
            id,
            approximate_size: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Creates an empty memtable whose writes first go to a new log at `wal_path`.
    ///
    /// # Errors
    /// If the log cannot be created.
    pub fn create_with_wal(id: usize, fs: &dyn FileSystem, wal_path: &Path) -> Result<Self> {
        todo!("week 2 day 6, task 2: give each memtable its log (book: week2-06-wal)")
    }

    /// Rebuilds memtable `id` from its log at `wal_path`. The memtable is not written again (it
    /// becomes immutable), so it keeps no log handle; a missing log means an empty memtable.
    ///
    /// # Errors
    /// If the log cannot be read or is corrupt before its last record.
    pub fn recover_from_wal(
        id: usize,
        fs: &dyn FileSystem,
        wal_path: &Path,
    ) -> Result<(Self, WalReplay)> {
        todo!("week 2 day 6, task 2: give each memtable its log (book: week2-06-wal)")
    }

    /// Whether the memtable's writes go to a log.
    pub fn has_log(&self) -> bool {
        self.wal.is_some()
    }

    /// The memtable's log, if it has one.
    pub(crate) fn wal(&self) -> Option<&Wal> {
        self.wal.as_deref()
    }

    /// Returns the value stored for `key` (its newest version, from week 3): `Some(empty)` for a
    /// tombstone, `None` when the memtable has never seen the key.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        todo!("week 1 day 1, task 1: implement the memtable's put, get and size accounting (book: week1-01-memtable)")
    }

    /// Stores `value` under `key`, replacing any earlier value. An empty value is a tombstone.
    ///
    /// # Errors
    /// None in memory; the signature leaves room for the write-ahead log of week 2.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        todo!("week 1 day 1, task 1: implement the memtable's put, get and size accounting (book: week1-01-memtable)")
    }

    /// Stores every `(key, value)` of `batch`, in order, after writing them to the log as one
    /// record: after a crash the batch is recovered whole or not at all.
    ///
    /// # Errors
    /// If the log write fails; nothing is then put into the memtable.
    pub fn put_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()> {
        todo!("week 2 day 7, task 1: apply a batch to the memtable and its log as one record (book: week2-07-batch-checksums)")
    }

    /// Stores every `(key, value)` of `batch` at timestamp `ts`, after writing them to the log as
    /// one record (week 3). A key written twice in the batch keeps its later value: both writes
    /// are the same version.
    ///
    /// # Errors
    /// If the log write fails; nothing is then put into the memtable.
    pub fn put_batch_at(&self, batch: &[(&[u8], &[u8])], ts: u64) -> Result<()> {
        todo!("week 3 day 2, task 1: put a batch at a timestamp into the memtable, read a key as of a timestamp, scan all versions (book: week3-02-read-at-timestamp)")
    }

    /// [`Self::put_batch_at`] for a batch whose entries have kinds (week 4 day 6): `kinds` has
    /// one per entry, or is empty for a batch of puts and tombstones (the empty value).
    ///
    /// # Errors
    /// If the log write fails; nothing is then put into the memtable.
    pub fn put_batch_kinds_at(
        &self,
        batch: &[(&[u8], &[u8])],
        kinds: &[ValueKind],
        ts: u64,
    ) -> Result<()> {
        todo!("week 4 day 6, task 1: give every entry a kind (put, delete, merge operand) in the memtable, the block's kind column, the log and the write batch, and merge through the commit path (book: week4-06-merge-operator)")
    }

    /// Returns the newest version of `key` at or before `read_ts` (week 3): `Some(empty)` for a
    /// tombstone, `None` when the memtable holds no such version.
    pub fn get_at(&self, key: &[u8], read_ts: u64) -> Option<Bytes> {
        self.get_kind_at(key, read_ts).map(|(value, _)| value)
    }

    /// [`Self::get_at`] with the version's kind (week 4 day 6): a put, a tombstone or a merge
    /// operand.
    pub fn get_kind_at(&self, key: &[u8], read_ts: u64) -> Option<(Bytes, ValueKind)> {
        todo!("week 3 day 2, task 1: put a batch at a timestamp into the memtable, read a key as of a timestamp, scan all versions (book: week3-02-read-at-timestamp)")
    }

    /// Stores every `(key, value)` of `batch` at timestamp `ts` without writing the log: the
    /// commit pipeline (week 4 day 1) has the log written for it, by group commit from day 2.
    /// `kinds` is empty, or holds each entry's kind (week 4 day 6); an entry without one is a
    /// put, or a tombstone if its value is empty. Many writers apply their batches at once; the
    /// skip list takes concurrent inserts.
    pub fn apply_batch_at(&self, batch: &[(&[u8], &[u8])], kinds: &[ValueKind], ts: u64) {
        todo!("week 4 day 1, task 3: commit through the pipeline: prepare, apply your own batch concurrently, publish (book: week4-01-ordered-publishing)")
    }

    /// Sets how far each write to this memtable's log goes before it returns (see
    /// [`WalMode`]); a no-op without a log.
    pub fn set_wal_mode(&self, mode: WalMode) {
        if let Some(wal) = &self.wal {
            wal.set_mode(mode);
        }
    }

    /// Orders this memtable's log after `older`'s (see [`Wal::follow`]): none of this log reaches
    /// the disk before `older`'s log is durable. A no-op unless both have logs.
    pub fn follow(&self, older: &MemTable) {
        todo!("week 2 day 6, task 2: give each memtable its log (book: week2-06-wal)")
    }

    /// Makes every write to this memtable durable; a no-op without a log.
    ///
    /// # Errors
    /// If the log cannot be written or synced.
    pub fn sync_wal(&self) -> Result<()> {
        todo!("week 2 day 6, task 2: give each memtable its log (book: week2-06-wal)")
    }

    /// Sets `key` to `value` in the skip list, through the key's slot (see [`Slot`]).
    ///
    /// One search of the skip list: the key is made first, and if it turns out to be there
    /// already, only its slot is updated (the new key is dropped; a long key's copy in the arena
    /// is wasted, which the size counts anyway).
    fn insert(&self, key: KeySlice, value: &[u8], kind: ValueKind) {
        let key = MemKey::new(key, |long| self.arena.copy(long));
        let stored = Slot::store(value, kind, |parts| self.arena.copy_parts(parts));
        // A new slot is inserted holding the value, never empty: an empty slot would read as a
        // tombstone. If the key was there (or another writer inserted it first), overwrite it.
        let inserted = Cell::new(false);
        let entry = self.map.get_or_insert_with(key, || {
            inserted.set(true);
            Slot::new(stored.clone())
        });
        if !inserted.get() {
            entry.value().set(stored);
        }
    }

    /// Returns an iterator over the keys within `lower..upper`, in key order.
    pub fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> MemTableIterator {
        todo!("week 1 day 2, task 1: iterate over a range of the memtable (book: week1-02-merge-iterator)")
    }

    /// Writes every entry, tombstones included, into `builder` in key order.
    ///
    /// Tombstones must be kept: they hide older values of the same key in older SSTs.
    pub fn flush(&self, builder: &mut SsTableBuilder) -> Result<()> {
        todo!("week 1 day 6, task 1: flush the earliest immutable memtable to a new L0 SST (book: week1-06-write-path)")
    }

    /// The memtable's id, which is also the id of the SST it is flushed to.
    pub fn id(&self) -> usize {
        self.id
    }

    /// An estimate of the bytes put into this memtable; the engine freezes it past the target size.
    pub fn approximate_size(&self) -> usize {
        todo!("week 1 day 1, task 1: implement the memtable's put, get and size accounting (book: week1-01-memtable)")
    }

    /// Whether the memtable holds no entry at all (not even a tombstone).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

type SkipMapRangeIter<'a> =
    crossbeam_skiplist::map::Range<'a, MemKey, (Bound<MemKey>, Bound<MemKey>), MemKey, Slot>;

/// An iterator over a range of a memtable.
///
/// The skip-list range borrows the map, and the iterator must own the map (an `Arc`) so that it
/// can outlive the engine's state lock. A struct that owns a value and borrows from it at once is
/// self-referential; `ouroboros` builds it safely.
#[self_referencing]
pub struct MemTableIterator {
    /// The map the range borrows from.
    map: Arc<SkipMap<MemKey, Slot>>,
    /// The skip-list range over `map`.
    #[borrows(map)]
    #[not_covariant]
    iter: SkipMapRangeIter<'this>,
    /// The current entry; `None` once the range is exhausted.
    item: Option<(MemKey, Bytes, ValueKind)>,
}

/// The iterator's current item for a skip-list entry (cloning a key copies at most 40 bytes, and
/// cloning `Bytes` only bumps a refcount).
fn entry_to_item(entry: Option<Entry<'_, MemKey, Slot>>) -> Option<(MemKey, Bytes, ValueKind)> {
    entry.map(|e| {
        let (value, kind) = e.value().get_with_kind();
        (e.key().clone(), value, kind)
    })
}

impl StorageIterator for MemTableIterator {
    type KeyType<'a> = KeySlice<'a>;

    fn value(&self) -> &[u8] {
        self.borrow_item().as_ref().map_or(&[], |(_, v, _)| &v[..])
    }

    fn value_kind(&self) -> ValueKind {
        self.borrow_item()
            .as_ref()
            .map_or(ValueKind::Delete, |(_, _, kind)| *kind)
    }

    fn key(&self) -> KeySlice<'_> {
        self.borrow_item()
            .as_ref()
            .map_or(KeySlice::from_slice(&[]), |(k, _, _)| k.as_key_slice())
    }

    fn is_valid(&self) -> bool {
        todo!("week 1 day 2, task 1: iterate over a range of the memtable (book: week1-02-merge-iterator)")
    }

    fn next(&mut self) -> Result<()> {
        todo!("week 1 day 2, task 1: iterate over a range of the memtable (book: week1-02-merge-iterator)")
    }
}
