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
//!   node: [ slot | MemKey::Inline { len, bytes: "0000000000042...", ts } | refs | tower ]
//!   node: [ slot | MemKey::Shared { bytes, ts } ]──▶ arena chunk: [ ...long key... ]
//! ```
//!
//! The two forms compare by their bytes, and then by the key's timestamp (newest first, as
//! [`crate::key::Key`] does), so the map's order is the order of the engine's keys whatever form
//! each takes. The timestamp (week 3) lives in the node too; to keep the node the size it was, a
//! key is inline up to 23 bytes, not the 38 it was before.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::key::KeySlice;

/// The longest key kept inline: as many bytes as fit beside the length and the timestamp in the
/// size of the `Shared` form, so that inlining costs no memory (the tag that tells the forms
/// apart hides in a bit pattern a `Bytes` never takes).
pub const INLINE: usize = 23;

/// A key of the memtable's skip list: the user key, inline or shared, and its timestamp.
#[derive(Clone)]
pub enum MemKey {
    /// A user key of at most `INLINE` bytes, `bytes[..len]`, at timestamp `ts`.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
        ts: u64,
    },
    /// A longer user key, a slice of the arena (or of its own buffer, for a scan bound).
    Shared { bytes: Bytes, ts: u64 },
}

// The inline form must not make every node bigger than the `Bytes` form does.
const _: () = assert!(std::mem::size_of::<MemKey>() <= std::mem::size_of::<Bytes>() + 8);

impl MemKey {
    /// `key` and its timestamp, the bytes inline when they are short enough, otherwise through
    /// `copy` (which copies them into memory of the caller's choosing: the arena, or a buffer of
    /// its own).
    pub fn new(key: KeySlice, copy: impl FnOnce(&[u8]) -> Bytes) -> Self {
        let (raw, ts) = (key.raw_ref(), key.ts());
        if raw.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..raw.len()].copy_from_slice(raw);
            Self::Inline {
                len: raw.len() as u8,
                bytes,
                ts,
            }
        } else {
            Self::Shared {
                bytes: copy(raw),
                ts,
            }
        }
    }

    /// The user key's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes, .. } => &bytes[..*len as usize],
            Self::Shared { bytes, .. } => bytes,
        }
    }

    /// The key's timestamp.
    pub fn ts(&self) -> u64 {
        match self {
            Self::Inline { ts, .. } | Self::Shared { ts, .. } => *ts,
        }
    }

    /// The key as the engine's key type.
    pub fn as_key_slice(&self) -> KeySlice<'_> {
        KeySlice::from_slice_ts(self.as_slice(), self.ts())
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_key_slice() == other.as_key_slice()
    }
}

impl Eq for MemKey {}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemKey {
    /// As [`crate::key::Key`]: user key ascending, then timestamp descending.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_key_slice().cmp(&other.as_key_slice())
    }
}

impl std::fmt::Debug for MemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_key_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline and shared keys order and compare by their bytes, then newest timestamp first, at
    /// the length boundary too.
    #[test]
    fn forms_compare_by_bytes_then_timestamp() {
        let copy = |k: &[u8]| Bytes::copy_from_slice(k);
        let make = |k: &[u8], ts| MemKey::new(KeySlice::from_slice_ts(k, ts), copy);
        let shared = |k: &[u8], ts| MemKey::Shared {
            bytes: Bytes::copy_from_slice(k),
            ts,
        };
        let long = vec![b'a'; INLINE + 1];
        let edge = vec![b'a'; INLINE];
        for key in [&b""[..], b"k", &edge, &long] {
            let made = make(key, 5);
            assert_eq!(made.as_slice(), key);
            assert_eq!(made.ts(), 5);
            assert_eq!(made, shared(key, 5));
            assert!(made < make(key, 4), "newer versions first");
        }
        assert!(matches!(make(&edge, 1), MemKey::Inline { .. }));
        assert!(matches!(make(&long, 1), MemKey::Shared { .. }));
        assert!(make(&edge, 1) < shared(&long, 9));
        assert!(make(b"b", 9) > shared(&long, 1));
        assert!(make(b"", 1) < make(b"\0", 9));
    }
}
