// SPDX-License-Identifier: Apache-2.0
//! The memtable's arena: values (and keys too long to sit in the skip-list node, see
//! [`super::key`]) are copied into large shared chunks, not allocated one by one.
//!
//! A put used to cost two heap allocations (the key and the value) on top of the skip-list node,
//! and dropping a flushed memtable freed them one by one: millions of small `malloc`s and `free`s
//! per fill, and a malloc header and rounding on each. Here every value is a [`Bytes`] *slice* of
//! a 1 MiB chunk: copying one in is a bounds check and a `memcpy`, and the chunk is freed when the
//! last slice into it is dropped (when the memtable and every iterator over it are gone).
//!
//! ```text
//!   chunk (1 MiB): [ value 1 | value 2 | long key 3 | value 3 | ...        free        ]
//!                    ▲         ▲                                            ▲
//!          Bytes slices held by the skip list                        next copy goes here
//! ```
//!
//! The cost: a chunk lives while any slice into it lives, so an overwritten value's bytes stay
//! until the memtable is dropped. A memtable is short-lived and counts those bytes in its size,
//! so this is bounded.

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

/// The size of a chunk; an entry larger than this gets a chunk of its own size.
const CHUNK_SIZE: usize = 1 << 20;

/// A bump allocator of `Bytes` slices, shared by the memtable's writers.
#[derive(Default)]
pub struct Arena {
    /// The free tail of the current chunk: what a `BytesMut` holds after `split` hands out the
    /// bytes before it. Locked only for the copy.
    chunk: Mutex<BytesMut>,
}

impl Arena {
    /// Copies `data` into the arena and returns it as a slice of the current chunk.
    pub fn copy(&self, data: &[u8]) -> Bytes {
        self.copy_parts(&[data])
    }

    /// Copies `parts`, one after the other, into the arena and returns them as one slice.
    pub fn copy_parts(&self, parts: &[&[u8]]) -> Bytes {
        let len = parts.iter().map(|part| part.len()).sum();
        let mut chunk = self.chunk.lock();
        // `capacity` counts from the current position: it is the free tail. Never let
        // `extend_from_slice` grow the chunk, which would reallocate it.
        if chunk.capacity() - chunk.len() < len {
            *chunk = BytesMut::with_capacity(CHUNK_SIZE.max(len));
        }
        for part in parts {
            chunk.extend_from_slice(part);
        }
        chunk.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slices hold what was copied, across a chunk boundary and for an entry larger than a chunk.
    #[test]
    fn copies_survive_new_chunks() {
        let arena = Arena::default();
        let big = vec![7u8; CHUNK_SIZE + 10];
        let mut kept = Vec::new();
        for i in 0..3000u32 {
            let value = vec![i as u8; 500];
            kept.push((i, arena.copy(&i.to_be_bytes()), arena.copy(&value)));
        }
        assert_eq!(&arena.copy(&big)[..], &big[..]);
        for (i, k, v) in kept {
            assert_eq!(&k[..], &i.to_be_bytes());
            assert_eq!(&v[..], &vec![i as u8; 500][..]);
        }
    }
}
