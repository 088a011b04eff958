// SPDX-License-Identifier: Apache-2.0
//! The key type of every layer below the engine.
//!
//! Blocks, SSTs and the iterators over them never see a bare `&[u8]`: they see a [`Key`]. In
//! weeks 1 and 2 a key is only its user bytes. Week 3 (MVCC) adds a timestamp inside this type,
//! so that no signature that an earlier chapter wrote has to change. Only the three aliases are
//! used elsewhere:
//!
//! - [`KeySlice`]: a borrowed key, what iterators hand out.
//! - [`KeyVec`]: an owned, growable key, what builders and iterators keep.
//! - [`KeyBytes`]: an owned, cheaply clonable key, what SST metadata keeps.

use std::fmt::Debug;

use bytes::Bytes;

/// A key: the user's key bytes (and, from week 3, a timestamp).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key<T: AsRef<[u8]>>(T);

/// A borrowed key.
pub type KeySlice<'a> = Key<&'a [u8]>;
/// An owned, growable key.
pub type KeyVec = Key<Vec<u8>>;
/// An owned key that is cheap to clone.
pub type KeyBytes = Key<Bytes>;

impl<T: AsRef<[u8]>> Key<T> {
    /// The key's user bytes.
    pub fn raw_ref(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The length of the encoded key in bytes.
    pub fn len(&self) -> usize {
        self.0.as_ref().len()
    }

    /// Whether the key is empty. The empty key is a valid key.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_empty()
    }

    /// Unwraps the user bytes.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsRef<[u8]>> Debug for Key<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.0.as_ref()))
    }
}

impl Key<Vec<u8>> {
    /// An empty key.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Wraps an owned byte vector.
    pub fn from_vec(key: Vec<u8>) -> Self {
        Self(key)
    }

    /// Empties the key, keeping its allocation.
    pub fn clear(&mut self) {
        self.0.clear()
    }

    /// Appends bytes to the key.
    pub fn append(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data)
    }

    /// Replaces the key with a copy of `key`, reusing the allocation.
    pub fn set_from_slice(&mut self, key: KeySlice) {
        self.0.clear();
        self.0.extend_from_slice(key.0);
    }

    /// Borrows the key.
    pub fn as_key_slice(&self) -> KeySlice<'_> {
        Key(self.0.as_slice())
    }

    /// Converts into a clonable key without copying.
    pub fn into_key_bytes(self) -> KeyBytes {
        Key(self.0.into())
    }
}

impl Key<Bytes> {
    /// An empty key.
    pub fn new() -> Self {
        Self(Bytes::new())
    }

    /// Wraps bytes.
    pub fn from_bytes(bytes: Bytes) -> KeyBytes {
        Key(bytes)
    }

    /// Borrows the key.
    pub fn as_key_slice(&self) -> KeySlice<'_> {
        Key(&self.0)
    }
}

impl<'a> Key<&'a [u8]> {
    /// Wraps borrowed user bytes.
    pub fn from_slice(slice: &'a [u8]) -> Self {
        Self(slice)
    }

    /// Copies into an owned key.
    pub fn to_key_vec(self) -> KeyVec {
        Key(self.0.to_vec())
    }

    /// Copies into a clonable key.
    pub fn to_key_bytes(self) -> KeyBytes {
        Key(Bytes::copy_from_slice(self.0))
    }
}
