// SPDX-License-Identifier: Apache-2.0
//! Week 1 day 7: bloom filters in SSTs, and prefix compression of keys within a block.

use std::sync::Arc;

use crate::block::{Block, BlockBuilder, BlockIterator};
use crate::key::KeySlice;
use crate::lsm_storage::LsmStorageOptions;
use crate::table::bloom::{key_hash, Bloom};
use crate::table::{FileObject, SsTable, SsTableBuilder};

use super::harness::{
    bytes_of, flip_sweep, freeze, open_engine, show, truncation_sweep, SstLayout,
};

/// The share of `absent` keys that `bloom` may contain.
fn false_positive_rate(bloom: &Bloom, absent: impl Iterator<Item = Vec<u8>>) -> f64 {
    let (mut probes, mut positives) = (0, 0);
    for key in absent {
        probes += 1;
        positives += usize::from(bloom.may_contain(key_hash(&key)));
    }
    positives as f64 / probes as f64
}

/// Bloom at 10 bits/key: no false negatives, FP <= 2% (measured 1.0%). Catches: always "maybe".
#[test]
fn test_task1_bloom_no_false_negatives_low_fp() {
    let keys: Vec<Vec<u8>> = (0..10_000)
        .map(|i| format!("key_{i:05}").into_bytes())
        .collect();
    let hashes: Vec<u32> = keys.iter().map(|k| key_hash(k)).collect();
    let bloom = Bloom::build_from_key_hashes(&hashes, 10);
    for key in &keys {
        assert!(
            bloom.may_contain(key_hash(key)),
            "false negative for {}",
            show(key)
        );
    }
    let rate = false_positive_rate(
        &bloom,
        (0..10_000).map(|i| format!("absent_{i:05}").into_bytes()),
    );
    println!(
        "bloom false-positive rate at 10 bits per key: {:.2}%",
        rate * 100.0
    );
    assert!(
        rate <= 0.02,
        "false-positive rate {:.2}% is over 2%",
        rate * 100.0
    );
    let mut encoded = Vec::new();
    bloom.encode(&mut encoded);
    assert!(
        encoded.len() <= 2 * 10_000 * 10 / 8,
        "the filter takes {} bytes, over twice 10 bits per key",
        encoded.len()
    );

    let single = Bloom::build_from_key_hashes(&[key_hash(b"only")], 10);
    assert!(single.may_contain(key_hash(b"only")));
    let rate = false_positive_rate(&single, (0..1000).map(|i| format!("other{i}").into_bytes()));
    assert!(
        rate <= 0.1,
        "a one-key filter says maybe to {:.0}% of other keys",
        rate * 100.0
    );
}

/// The SST builder stores a bloom filter and `SsTable::open` reads back the same one.
#[test]
fn test_task2_sst_stores_bloom() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.sst");
    let mut builder = SsTableBuilder::new(256);
    for i in 0..1000 {
        builder.add(
            KeySlice::from_slice(format!("key_{i:05}").as_bytes()),
            b"value",
        );
    }
    let built = builder.build(1, None, &path).unwrap();
    let opened = SsTable::open(1, None, FileObject::open(&path).unwrap()).unwrap();
    let (built_bloom, opened_bloom) = (
        built.bloom.as_ref().expect("the builder keeps its filter"),
        opened.bloom.as_ref().expect("open reads the filter back"),
    );
    assert_eq!(opened_bloom.k, built_bloom.k);
    assert_eq!(opened_bloom.filter, built_bloom.filter);
    for i in 0..1000 {
        let key = format!("key_{i:05}").into_bytes();
        assert!(opened_bloom.may_contain(key_hash(&key)), "key_{i:05} lost");
        assert!(!opened.bloom_excludes(&key));
    }
    let rate = false_positive_rate(
        opened_bloom,
        (0..1000).map(|i| format!("key_{i:05}x").into_bytes()),
    );
    assert!(
        rate <= 0.02,
        "false-positive rate {:.1}% in the SST's filter",
        rate * 100.0
    );
}

/// `get` of a key the bloom rules out reads no block. Catches: a filter always saying "maybe".
#[test]
fn test_task2_get_absent_key_reads_no_block() {
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.block_cache_bytes = 0; // Every block read shows in `block_reads`.
    let (_dir, storage) = open_engine(options);
    for i in (0..2000).step_by(2) {
        storage
            .put(format!("key_{i:05}").as_bytes(), b"value")
            .unwrap();
    }
    let id = storage.snapshot().memtable.id();
    freeze(&storage);
    storage.force_flush_next_imm_memtable().unwrap();
    let snapshot = storage.snapshot();
    let table = snapshot.table(id).unwrap();
    assert!(table.bloom.is_some(), "a flushed SST has a bloom filter");
    let mut passed_filter = 0;
    for i in (1..2000).step_by(2) {
        let key = format!("key_{i:05}").into_bytes();
        let before = table.block_reads();
        assert_eq!(storage.get(&key).unwrap(), None);
        if table.bloom_excludes(&key) {
            assert_eq!(
                table.block_reads(),
                before,
                "get key_{i:05} read a block though the bloom filter rules it out"
            );
        } else {
            passed_filter += 1;
        }
    }
    assert!(
        passed_filter <= 20,
        "{passed_filter} of 1000 absent keys passed the filter"
    );
    assert_eq!(storage.get(b"key_01000").unwrap(), Some(bytes_of(b"value")));
}

/// A small SST with a bloom filter, and its layout.
fn small_sst(dir: &std::path::Path) -> (std::path::PathBuf, SstLayout) {
    let path = dir.join("1.sst");
    let mut builder = SsTableBuilder::new(96);
    for i in 0..24 {
        builder.add(
            KeySlice::from_slice(format!("key_{:05}", i * 5).as_bytes()),
            format!("value_{i:05}").as_bytes(),
        );
    }
    builder.build(1, None, &path).unwrap();
    let opened = SsTable::open(1, None, FileObject::open(&path).unwrap()).unwrap();
    assert!(opened.bloom.is_some());
    (path, SstLayout::of(&opened))
}

/// Every truncation of an SST with a bloom filter gives an error naming the file, never a panic.
#[test]
fn test_task2_sst_with_bloom_truncated_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = small_sst(dir.path());
    truncation_sweep(&path);
}

/// No damaged byte of an SST with a bloom panics; damaged offsets and `k` give errors.
#[test]
fn test_task2_sst_with_bloom_damaged_byte_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (path, layout) = small_sst(dir.path());
    // Without checksums a damaged filter bit, key or value byte may go unnoticed: there only
    // "no panic" is checked. The structural fields and the filter's footer must give an error.
    let end = layout.file_len;
    let mut must_fail = layout.meta_fields.clone();
    must_fail.push(layout.meta_offset_field.clone());
    must_fail.push(end - 5..end); // The filter's probe count `k`, then `bloom_offset`.
    flip_sweep(&path, &must_fail);
}

/// The encoded size of `entries` in the uncompressed day-3 layout: each entry is
/// `key_len:u16 key value_len:u16 value`, then one `u16` offset per entry and the count.
fn uncompressed_size(entries: &[(Vec<u8>, Vec<u8>)]) -> usize {
    let data: usize = entries.iter().map(|(k, v)| 2 + k.len() + 2 + v.len()).sum();
    data + 2 * entries.len() + 2
}

/// Prefix compression shrinks 100 sequential keys >= 25% (measured: 1,100 vs 1,602 bytes, 31%).
#[test]
fn test_task3_prefix_compression_shrinks_block() {
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..100)
        .map(|i| {
            (
                format!("key_{i:05}").into_bytes(),
                vec![b'a' + (i % 26) as u8],
            )
        })
        .collect();
    let mut builder = BlockBuilder::new(4096);
    for (k, v) in &entries {
        assert!(builder.add(KeySlice::from_slice(k), v));
    }
    let encoded = builder.build().encode();
    let plain = uncompressed_size(&entries);
    let shrink = 1.0 - encoded.len() as f64 / plain as f64;
    println!(
        "compressed block: {} bytes, uncompressed: {plain} bytes, {:.1}% smaller",
        encoded.len(),
        shrink * 100.0
    );
    assert!(
        shrink >= 0.25,
        "the block is {} bytes, only {:.1}% smaller than the {plain} bytes uncompressed",
        encoded.len(),
        shrink * 100.0
    );
    let block = Block::decode(&encoded).unwrap();
    let mut iter = BlockIterator::create_and_seek_to_first(Arc::new(block));
    for (k, v) in &entries {
        assert_eq!(
            (bytes_of(iter.key().raw_ref()), bytes_of(iter.value())),
            (bytes_of(k), bytes_of(v))
        );
        iter.next();
    }
    assert!(!iter.is_valid());
}

/// Compressed blocks round-trip with an empty first key and keys sharing nothing with it.
#[test]
fn test_task3_compressed_block_round_trip() {
    let blocks: [&[(&[u8], &[u8])]; 2] = [
        &[
            (b"", b"empty key"),
            (b"a", b""),
            (b"apple", b"1"),
            (b"apple\x00", b"2"),
            (b"b", b"3"),
        ],
        &[
            (b"key_00050", b"first"),
            (b"key_00050a", b"extends the first key"),
            (b"key_00051", b"shares 8 bytes"),
            (b"key_1", b"shares 4 bytes"),
            (b"kez", b"shares 2"),
            (b"l", b"shares nothing"),
            (b"xylophone", b"shares nothing, longer than it"),
            (b"\xff\xff", b"high bytes"),
        ],
    ];
    for entries in blocks {
        let mut builder = BlockBuilder::new(4096);
        for (k, v) in entries {
            assert!(builder.add(KeySlice::from_slice(k), v));
        }
        let block = Arc::new(Block::decode(&builder.build().encode()).unwrap());
        let mut iter = BlockIterator::create_and_seek_to_first(block.clone());
        for (k, v) in entries {
            assert!(iter.is_valid());
            assert_eq!(
                (bytes_of(iter.key().raw_ref()), bytes_of(iter.value())),
                (bytes_of(k), bytes_of(v))
            );
            iter.next();
        }
        assert!(!iter.is_valid());
        for (idx, (k, v)) in entries.iter().enumerate() {
            iter.seek_to_key(KeySlice::from_slice(k));
            assert_eq!(
                (bytes_of(iter.key().raw_ref()), bytes_of(iter.value())),
                (bytes_of(k), bytes_of(v)),
                "seek to {}",
                show(k)
            );
            let mut after = k.to_vec();
            after.push(0);
            iter.seek_to_key(KeySlice::from_slice(&after));
            match entries.get(idx + 1) {
                // The next key is the first `>= k ++ [0]`, even when it is exactly that.
                Some((next, _)) => assert_eq!(
                    bytes_of(iter.key().raw_ref()),
                    bytes_of(next),
                    "seek after {}",
                    show(k)
                ),
                None => assert!(!iter.is_valid(), "seek after the last key"),
            }
        }
    }
}

/// `Block::decode` rejects an entry sharing more bytes with the first key than it has.
#[test]
fn test_task3_decode_rejects_bad_overlap() {
    let mut good = BlockBuilder::new(4096);
    assert!(good.add(KeySlice::from_slice(b"abc"), b"x"));
    assert!(good.add(KeySlice::from_slice(b"abd"), b"y"));
    let mut bytes = good.build().encode().to_vec();
    assert!(Block::decode(&bytes).is_ok());
    // Entry 1 starts at the second offset; its first field is the overlap (2 for "abd").
    let offsets_at = bytes.len() - 2 - 2 * 2;
    let entry_1 = u16::from_be_bytes([bytes[offsets_at + 2], bytes[offsets_at + 3]]) as usize;
    assert_eq!(
        &bytes[entry_1..entry_1 + 2],
        &[0, 2],
        "overlap:u16 of \"abd\" against \"abc\""
    );
    bytes[entry_1 + 1] = 4;
    assert!(
        Block::decode(&bytes).is_err(),
        "an overlap of 4 with a 3-byte first key"
    );
}
