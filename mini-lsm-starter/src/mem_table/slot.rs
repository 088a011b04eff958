// SPDX-License-Identifier: Apache-2.0
//! The value of one key in the memtable's skip list, and its kind.
//!
//! An overwrite replaces the value *inside* the key's slot, never the skip-list entry itself:
//! crossbeam's `insert` on an existing key unlinks the old entry before it links the new one, and
//! a reader arriving in between would miss the key and fall through to an older memtable or SST,
//! a read going back in time. A slot, once inserted, is never removed. (Week 3 gives every
//! version its own key, and an overwrite through the slot is rare then: a key written twice by one
//! batch, at one timestamp.) The lock is held only to clone or swap the `Bytes`.
//!
//! The entry's kind (week 4 day 6: a put, a tombstone or a merge operand) is the first byte of
//! the stored bytes, which the arena copies with the value, and the value is the rest:
//!
//! ```text
//!   slot: RwLock<Bytes> ──▶ arena: [ kind | value ... ]
//! ```
//!
//! A field beside the `Bytes` would cost 8 bytes a node (alignment), a tenth of a small entry's
//! overhead; the tag byte costs one, and `get` slices past it as cheaply as it cloned.

use bytes::Bytes;
use parking_lot::RwLock;

use crate::merge::ValueKind;

/// The value of one key in the skip list: see the module docs.
pub struct Slot(RwLock<Bytes>);

// The kind must not make every node bigger.
const _: () = assert!(std::mem::size_of::<Slot>() <= std::mem::size_of::<Bytes>() + 8);

impl Slot {
    /// A slot holding `stored`, bytes made by [`Self::store`].
    pub fn new(stored: Bytes) -> Self {
        Self(RwLock::new(stored))
    }

    /// The bytes a slot stores for `value` of kind `kind`, copied by `copy` (into the arena).
    pub fn store(value: &[u8], kind: ValueKind, copy: impl FnOnce(&[&[u8]]) -> Bytes) -> Bytes {
        copy(&[&[kind.tag()], value])
    }

    /// The value (a handle: cloning `Bytes` only bumps a count).
    pub fn get(&self) -> Bytes {
        self.0.read().slice(1..)
    }

    /// The value and its kind.
    pub fn get_with_kind(&self) -> (Bytes, ValueKind) {
        let stored = self.0.read();
        // Only `store` makes the bytes, so the tag is always there and known.
        let kind = ValueKind::from_tag(stored[0]).expect("a slot's tag comes from `store`");
        (stored.slice(1..), kind)
    }

    /// Calls `read` with the value and its kind, under the lock, without cloning the handle.
    pub fn read<R>(&self, read: impl FnOnce(&[u8], ValueKind) -> R) -> R {
        let stored = self.0.read();
        let kind = ValueKind::from_tag(stored[0]).expect("a slot's tag comes from `store`");
        read(&stored[1..], kind)
    }

    /// Replaces the stored bytes with `stored`, made by [`Self::store`].
    pub fn set(&self, stored: Bytes) {
        *self.0.write() = stored;
    }
}
