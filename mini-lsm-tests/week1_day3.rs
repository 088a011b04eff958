// SPDX-License-Identifier: Apache-2.0
//! Week 1 day 3: building, encoding, decoding, iterating and seeking a block.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::block::{Block, BlockBuilder, BlockIterator};
use crate::key::KeySlice;

use bytes::Bytes;

use super::harness::{bytes_of, panic_message};

fn key_of(i: usize) -> Vec<u8> {
    format!("key_{:03}", i * 5).into_bytes()
}

fn value_of(i: usize) -> Vec<u8> {
    format!("value_{i:010}").into_bytes()
}

/// A block of entries `0..n` (keys `key_000`, `key_005`, ...), which must fit in `block_size`.
fn build_block(n: usize, block_size: usize) -> Block {
    let mut builder = BlockBuilder::new(block_size);
    for i in 0..n {
        assert!(
            builder.add(KeySlice::from_slice(&key_of(i)), &value_of(i)),
            "entry {i} did not fit in a {block_size}-byte block"
        );
    }
    builder.build()
}

/// Every entry of a block, in iteration order (at most 100,000, so a bad iterator ends).
fn read_block(block: Arc<Block>) -> Vec<(Bytes, Bytes)> {
    let mut iter = BlockIterator::create_and_seek_to_first(block);
    let mut out = Vec::new();
    while iter.is_valid() && out.len() < 100_000 {
        out.push((bytes_of(iter.key().raw_ref()), bytes_of(iter.value())));
        iter.next();
    }
    out
}

fn expected_entries(n: usize) -> Vec<(Bytes, Bytes)> {
    (0..n)
        .map(|i| (bytes_of(key_of(i)), bytes_of(value_of(i))))
        .collect()
}

/// A block survives encode and decode unchanged and reads back every entry in order.
#[test]
fn test_task1_block_build_encode_decode() {
    let block = build_block(100, 10_000);
    assert_eq!(block.len(), 100);
    let encoded = block.encode();
    let decoded = Block::decode(&encoded).unwrap();
    assert_eq!(decoded.offsets, block.offsets);
    assert_eq!(bytes_of(&decoded.data), bytes_of(&block.data));
    assert_eq!(
        decoded.encode(),
        encoded,
        "decode then encode gives the same bytes"
    );
    assert_eq!(read_block(Arc::new(decoded)), expected_entries(100));
    assert_eq!(read_block(Arc::new(block)), expected_entries(100));
}

/// The builder refuses an entry that would take the block past its size, and drops it.
#[test]
fn test_task1_block_builder_respects_size() {
    let mut builder = BlockBuilder::new(256);
    assert!(builder.is_empty());
    let mut added = 0;
    while builder.add(KeySlice::from_slice(&key_of(added)), &value_of(added)) {
        added += 1;
        assert!(added < 100, "a 256-byte block took 100 entries");
    }
    assert!(!builder.is_empty());
    assert!(
        added >= 5,
        "only {added} entries of ~25 bytes fit in 256 bytes"
    );
    let block = builder.build();
    let encoded = block.encode();
    assert!(
        encoded.len() <= 256,
        "the encoded block is {} bytes, over its 256-byte target",
        encoded.len()
    );
    let block = Block::decode(&encoded).unwrap();
    assert_eq!(read_block(Arc::new(block)), expected_entries(added));
}

/// The first entry is always accepted, even one larger than the block size; then no more.
#[test]
fn test_task1_block_first_entry_always_fits() {
    let mut builder = BlockBuilder::new(16);
    let big = vec![b'x'; 1000];
    assert!(builder.add(KeySlice::from_slice(b"big"), &big));
    assert!(!builder.add(KeySlice::from_slice(b"more"), b"1"));
    let block = Block::decode(&builder.build().encode()).unwrap();
    assert_eq!(
        read_block(Arc::new(block)),
        vec![(bytes_of(b"big"), bytes_of(big))]
    );
}

/// `Block::decode` rejects a missing, zero or too large count and offsets or keys past the end.
#[test]
fn test_task1_block_decode_rejects_bad_headers() {
    assert!(Block::decode(&[]).is_err(), "empty input");
    assert!(Block::decode(&[0]).is_err(), "one byte");
    assert!(Block::decode(&[0, 0]).is_err(), "a count of zero");
    let encoded = build_block(10, 4096).encode().to_vec();
    let n = encoded.len();
    let mut bad = encoded.clone();
    bad[n - 2..].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(
        Block::decode(&bad).is_err(),
        "a count larger than the block"
    );
    let mut bad = encoded.clone();
    bad[n - 2..].copy_from_slice(&0u16.to_be_bytes());
    assert!(Block::decode(&bad).is_err(), "a count of zero");
    let mut bad = encoded.clone();
    let offset_1 = n - 2 - 10 * 2 + 2;
    bad[offset_1..offset_1 + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(Block::decode(&bad).is_err(), "an offset past the entries");
    let mut bad = encoded.clone();
    bad[0..2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(
        Block::decode(&bad).is_err(),
        "a first key running past the end"
    );
}

/// Decodes `bytes` and, if that succeeds, iterates the block and seeks in it; returns a
/// description of the panic if anything panicked.
fn decode_and_use(bytes: &[u8]) -> Result<bool, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let Ok(block) = Block::decode(bytes) else {
            return false;
        };
        let block = Arc::new(block);
        read_block(block.clone());
        for probe in [&b""[..], b"key_000", b"key_047", b"key_050", b"zzz"] {
            let iter =
                BlockIterator::create_and_seek_to_key(block.clone(), KeySlice::from_slice(probe));
            if iter.is_valid() {
                let _ = (iter.key().raw_ref().len(), iter.value().len());
            }
        }
        true
    }))
    .map_err(|panic| panic_message(&panic))
}

/// Decoding any truncated block returns an error or a block that iterates and seeks, never panics.
#[test]
fn test_task1_block_decode_truncated_never_panics() {
    let encoded = build_block(20, 4096).encode();
    for len in 0..encoded.len() {
        match decode_and_use(&encoded[..len]) {
            Err(panic) => panic!("decoding the first {len} bytes panicked: {panic}"),
            Ok(true) if len < 2 => panic!("decoding {len} bytes succeeded"),
            Ok(_) => {}
        }
    }
}

/// Decoding a block with any damaged byte returns an error or a usable block, never panics.
#[test]
fn test_task1_block_decode_flipped_bytes_never_panics() {
    let encoded = build_block(20, 4096).encode();
    for pos in 0..encoded.len() {
        for mask in [0xff, 0x01, 0x80] {
            let mut bytes = encoded.to_vec();
            bytes[pos] ^= mask;
            if let Err(panic) = decode_and_use(&bytes) {
                panic!("decoding with byte {pos} xor {mask:#04x} panicked: {panic}");
            }
        }
    }
}

/// A block iterator visits every entry in order, ends, and starts over with `seek_to_first`.
#[test]
fn test_task2_block_iterate() {
    let block = Arc::new(build_block(50, 4096));
    let mut iter = BlockIterator::create_and_seek_to_first(block);
    for round in 0..2 {
        for i in 0..50 {
            assert!(iter.is_valid(), "round {round}: ended before entry {i}");
            assert_eq!(
                bytes_of(iter.key().raw_ref()),
                bytes_of(key_of(i)),
                "round {round}, entry {i}"
            );
            assert_eq!(
                bytes_of(iter.value()),
                bytes_of(value_of(i)),
                "round {round}, entry {i}"
            );
            iter.next();
        }
        assert!(
            !iter.is_valid(),
            "round {round}: did not end after the last entry"
        );
        iter.seek_to_first();
    }
}

/// `seek_to_key` lands on the first key `>=` the target, before, between, on and after entries.
#[test]
fn test_task2_block_seek_to_key() {
    let n = 50;
    let block = Arc::new(build_block(n, 4096));
    let mut iter = BlockIterator::create_and_seek_to_key(block.clone(), KeySlice::from_slice(b""));
    assert_eq!(bytes_of(iter.key().raw_ref()), bytes_of(key_of(0)));
    for i in 0..n {
        iter.seek_to_key(KeySlice::from_slice(&key_of(i)));
        assert!(iter.is_valid());
        assert_eq!(
            bytes_of(iter.key().raw_ref()),
            bytes_of(key_of(i)),
            "seek to an existing key"
        );
        assert_eq!(bytes_of(iter.value()), bytes_of(value_of(i)));
        // Keys are key_000, key_005, ...: key_{5i+1} falls between entry i and i + 1.
        let between = format!("key_{:03}", i * 5 + 1).into_bytes();
        iter.seek_to_key(KeySlice::from_slice(&between));
        if i + 1 < n {
            assert_eq!(
                bytes_of(iter.key().raw_ref()),
                bytes_of(key_of(i + 1)),
                "seek between entries"
            );
            iter.next();
            if i + 2 < n {
                assert_eq!(
                    bytes_of(iter.key().raw_ref()),
                    bytes_of(key_of(i + 2)),
                    "next after a seek"
                );
            } else {
                assert!(!iter.is_valid());
            }
        } else {
            assert!(!iter.is_valid(), "seek past the last key must be invalid");
        }
    }
    iter.seek_to_key(KeySlice::from_slice(b"key_"));
    assert_eq!(
        bytes_of(iter.key().raw_ref()),
        bytes_of(key_of(0)),
        "seek before the first key"
    );
    iter.seek_to_key(KeySlice::from_slice(b"zzz"));
    assert!(!iter.is_valid(), "seek after the last key");
    let iter = BlockIterator::create_and_seek_to_key(block, KeySlice::from_slice(&key_of(n - 1)));
    assert_eq!(bytes_of(iter.key().raw_ref()), bytes_of(key_of(n - 1)));
}
