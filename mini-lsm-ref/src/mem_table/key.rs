// SPDX-License-Identifier: Apache-2.0
//! Memtable keys: a short key lives inside its skip-list node.
//!
//! A skip-list search compares the sought key with one node per step. When the node holds only a
//! handle to the key (a `Bytes`), each step costs two cache misses: the node, then the key's bytes
//! somewhere else. Profiles of random inserts showed the search, most of it waiting on memory,
//! as half the writer's time. A [`MemKey`] of up to [`INLINE`] bytes is stored in the node itself,
//! so a step reads one place; longer keys fall back to a slice of the memtable's arena.
//!
//! ```text
//!   node: [ slot | MemKey::Inline { len, bytes: "0000000000042..." } | refs | tower ]
//!   node: [ slot | MemKey::Shared(Bytes) ]──▶ arena chunk: [ ...long key... ]
//! ```
//!
//! The two forms compare by their bytes, so the map's order is the order of the raw keys whatever
//! form each key takes.

use std::borrow::Borrow;
use std::cmp::Ordering;

use bytes::Bytes;

// ANCHOR: mem_key
/// The longest key kept inline: as many bytes as fit beside the length in the size of the
/// `Shared` form and the tag, so that inlining costs no memory.
pub const INLINE: usize = 38;

/// A key of the memtable's skip list.
#[derive(Clone)]
pub enum MemKey {
    /// A key of at most `INLINE` bytes: `bytes[..len]`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer key, a slice of the arena (or of its own buffer, for a scan bound).
    Shared(Bytes),
}
// ANCHOR_END: mem_key

// The inline form must not make every node bigger than the `Bytes` form does.
const _: () = assert!(std::mem::size_of::<MemKey>() <= std::mem::size_of::<Bytes>() + 8);

impl MemKey {
    /// `key`, inline when it is short enough, otherwise through `copy` (which copies it into
    /// memory of the caller's choosing: the arena, or a buffer of its own).
    pub fn new(key: &[u8], copy: impl FnOnce(&[u8]) -> Bytes) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            Self::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Self::Shared(copy(key))
        }
    }

    /// The key's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..*len as usize],
            Self::Shared(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for MemKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MemKey {}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::fmt::Debug for MemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline and shared keys order and compare by their bytes alone, at the length boundary too.
    #[test]
    fn forms_compare_by_bytes() {
        let shared = |k: &[u8]| MemKey::Shared(Bytes::copy_from_slice(k));
        let copy = |k: &[u8]| Bytes::copy_from_slice(k);
        let long = vec![b'a'; INLINE + 1];
        let edge = vec![b'a'; INLINE];
        for key in [&b""[..], b"k", &edge, &long] {
            let made = MemKey::new(key, copy);
            assert_eq!(made.as_slice(), key);
            assert_eq!(made, shared(key));
        }
        assert!(matches!(MemKey::new(&edge, copy), MemKey::Inline { .. }));
        assert!(matches!(MemKey::new(&long, copy), MemKey::Shared(_)));
        assert!(MemKey::new(&edge, copy) < shared(&long));
        assert!(MemKey::new(b"b", copy) > shared(&long));
        assert!(MemKey::new(b"", copy) < MemKey::new(b"\0", copy));
    }
}
