// SPDX-License-Identifier: Apache-2.0
//! Where the engine keeps its state: a read/write lock for the writers, and a lock-free copy for
//! the readers.
//!
//! Writers need the lock: a put holds the read side while it writes into the memtable, so that a
//! freeze (which takes the write side) cannot swap the memtable out from under it and leave a
//! write in a memtable that is already being flushed. Readers need no such guarantee; they only
//! want the newest snapshot. So every change made under the write side is also *published* into
//! an `ArcSwap` before the lock is released, and [`StateCell::load`] reads that without locking:
//! a `get` or `scan` never waits for a writer, and writers never wait for readers.
//!
//! ```text
//!   write() ──▶ change the Arc ──▶ guard dropped: publish, then unlock
//!   read()  ──▶ shared lock (writers: hold it while writing into the memtable)
//!   load()  ──▶ the last published Arc, no lock (readers)
//! ```
//!
//! Published under the write lock, the copy is never older than a change that a put could have
//! depended on: when a put returns, its memtable is in the published state (as the mutable
//! memtable, or as a frozen one after a freeze).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::LsmStorageState;

/// The engine's state, locked for writers and published for readers.
pub struct StateCell {
    lock: RwLock<Arc<LsmStorageState>>,
    /// The same `Arc` as `lock` holds, stored again at the end of every write.
    published: ArcSwap<LsmStorageState>,
}

impl StateCell {
    /// A cell holding `state`.
    pub fn new(state: LsmStorageState) -> Self {
        let state = Arc::new(state);
        Self {
            published: ArcSwap::new(Arc::clone(&state)),
            lock: RwLock::new(state),
        }
    }

    /// The current state, without a lock: for readers.
    pub fn load(&self) -> Arc<LsmStorageState> {
        self.published.load_full()
    }

    /// The shared side of the lock: for writers putting into the memtable, and for anyone who
    /// must keep a freeze out while they look.
    pub fn read(&self) -> RwLockReadGuard<'_, Arc<LsmStorageState>> {
        self.lock.read()
    }

    /// The exclusive side: replace the `Arc` through the guard; dropping it publishes the new
    /// state to readers, then unlocks.
    pub fn write(&self) -> StateWriteGuard<'_> {
        StateWriteGuard {
            guard: self.lock.write(),
            published: &self.published,
        }
    }
}

/// The write side of a [`StateCell`]; publishes what it holds when dropped.
pub struct StateWriteGuard<'a> {
    guard: RwLockWriteGuard<'a, Arc<LsmStorageState>>,
    published: &'a ArcSwap<LsmStorageState>,
}

impl Deref for StateWriteGuard<'_> {
    type Target = Arc<LsmStorageState>;

    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl DerefMut for StateWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for StateWriteGuard<'_> {
    fn drop(&mut self) {
        // Before `guard` (a field) is dropped and the lock released.
        self.published.store(Arc::clone(&self.guard));
    }
}
