// SPDX-License-Identifier: Apache-2.0
//! Week 3 day 1: timestamped keys in blocks and SSTs, and seeks that respect versions.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::block::{Block, BlockBuilder, BlockIterator};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::StorageIterator;
use crate::key::{KeySlice, TS_RANGE_BEGIN, TS_RANGE_END};
use crate::table::{FileObject, SsTable, SsTableIterator};

use super::harness::mvcc::{
    collect_versions, install_l0, install_run, show_versions, version, versioned_sst, Version,
};
use super::harness::{collect_user, open_engine, show, small_block_options};

/// Versions of keys `a`..`d`, newest first within a key, with values naming them (`a@3`).
fn versions() -> Vec<Version> {
    let mut out = Vec::new();
    for (key, stamps) in [
        (&b"a"[..], &[5u64, 3, 1][..]),
        (b"b", &[9, 2]),
        (b"c", &[4]),
        (b"d", &[8, 7, 6, 1]),
    ] {
        for ts in stamps {
            let value = format!("{}@{ts}", show(key));
            out.push(version(key, *ts, value.as_bytes()));
        }
    }
    out
}

/// A block of `entries`, all of which must fit.
fn block_of(entries: &[Version], block_size: usize) -> Block {
    let mut builder = BlockBuilder::new(block_size);
    for (key, ts, value) in entries {
        assert!(
            builder.add(KeySlice::from_slice_ts(key, *ts), value),
            "entry {}@{ts} did not fit",
            show(key)
        );
    }
    builder.build()
}

/// Every entry of a block with its timestamp.
fn read_block(block: Arc<Block>) -> Vec<Version> {
    let mut iter = BlockIterator::create_and_seek_to_first(block);
    let mut out = Vec::new();
    while iter.is_valid() && out.len() < 10_000 {
        out.push(version(iter.key().key_ref(), iter.key().ts(), iter.value()));
        iter.next();
    }
    out
}

/// The encoded size of `entries` in a block without timestamps (with prefix compression): the
/// entries, one offset each and the count.
fn size_without_timestamps(entries: &[Version]) -> usize {
    let first = &entries[0].0;
    let data: usize = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _, v))| {
            // Entry 0 is the first key itself, stored whole.
            let overlap = match i {
                0 => 0,
                _ => first
                    .iter()
                    .zip(k.iter())
                    .take_while(|(a, b)| a == b)
                    .count(),
            };
            2 + 2 + (k.len() - overlap) + 2 + v.len()
        })
        .sum();
    data + 2 * entries.len() + 2
}

// ---------------------------------------------------------------------------------------------
// Task 1: the block's timestamp column

/// A block keeps every entry's timestamp through encode and decode, versions of a key included.
#[test]
fn test_task1_block_keeps_each_timestamp() {
    let entries = versions();
    let block = block_of(&entries, 4096);
    let encoded = block.encode();
    let decoded = Block::decode(&encoded).unwrap();
    assert_eq!(
        decoded.encode(),
        encoded,
        "decode then encode gives the same bytes"
    );
    let read = read_block(Arc::new(decoded));
    assert!(
        read == entries,
        "read back {}\nexpected   {}",
        show_versions(&read),
        show_versions(&entries)
    );
}

/// A block whose entries share one timestamp spends 9 bytes on it (one timestamp and the kind);
/// timestamps within 2^32 of each other a base and 4 bytes each; wider ones 8 bytes each.
#[test]
fn test_task1_timestamp_column_size() {
    let same: Vec<Version> = (0..20)
        .map(|i| version(format!("key_{i:03}").as_bytes(), 42, b"value"))
        .collect();
    let block = block_of(&same, 4096);
    let encoded = block.encode();
    assert_eq!(
        encoded.len(),
        size_without_timestamps(&same) + 9,
        "one shared timestamp costs 9 bytes"
    );
    assert_eq!(read_block(Arc::new(Block::decode(&encoded).unwrap())), same);
    let close: Vec<Version> = (0..20)
        .map(|i| version(format!("key_{i:03}").as_bytes(), 100 - i as u64, b"value"))
        .collect();
    let encoded = block_of(&close, 4096).encode();
    assert_eq!(
        encoded.len(),
        size_without_timestamps(&close) + 8 + 4 * 20 + 1,
        "twenty close timestamps cost a base, 4 bytes each and the kind"
    );
    assert_eq!(
        read_block(Arc::new(Block::decode(&encoded).unwrap())),
        close
    );
    let wide: Vec<Version> = (0..20)
        .map(|i| {
            version(
                format!("key_{i:03}").as_bytes(),
                (20 - i as u64) << 33,
                b"value",
            )
        })
        .collect();
    let encoded = block_of(&wide, 4096).encode();
    assert_eq!(
        encoded.len(),
        size_without_timestamps(&wide) + 8 * 20 + 1,
        "twenty timestamps 2^33 apart cost 8 bytes each and the kind"
    );
    assert_eq!(read_block(Arc::new(Block::decode(&encoded).unwrap())), wide);
}

/// The builder counts the timestamp column against the block size: a block of entries that each
/// carry their own timestamp never encodes past its target.
#[test]
fn test_task1_builder_counts_timestamps_in_block_size() {
    for block_size in [64, 100, 256, 1000] {
        let mut builder = BlockBuilder::new(block_size);
        let mut added = Vec::new();
        loop {
            let i = added.len();
            let entry = version(format!("k{i:04}").as_bytes(), 1000 - i as u64, b"v");
            if !builder.add(KeySlice::from_slice_ts(&entry.0, entry.1), &entry.2) {
                break;
            }
            added.push(entry);
            assert!(
                added.len() < 1000,
                "a {block_size}-byte block took 1000 entries"
            );
        }
        let encoded = builder.build().encode();
        assert!(
            encoded.len() <= block_size,
            "{} entries encode to {} bytes, over the {block_size}-byte target",
            added.len(),
            encoded.len()
        );
        assert_eq!(
            read_block(Arc::new(Block::decode(&encoded).unwrap())),
            added
        );
    }
}

/// A seek within a block lands on the newest version at or before the sought timestamp.
#[test]
fn test_task1_block_seek_by_version() {
    let block = Arc::new(block_of(&versions(), 4096));
    let seek = |key: &[u8], ts: u64| {
        let iter =
            BlockIterator::create_and_seek_to_key(block.clone(), KeySlice::from_slice_ts(key, ts));
        iter.is_valid().then(|| {
            (
                Bytes::copy_from_slice(iter.key().key_ref()),
                iter.key().ts(),
            )
        })
    };
    let at = |key: &[u8], ts| Some((Bytes::copy_from_slice(key), ts));
    assert_eq!(
        seek(b"a", TS_RANGE_BEGIN),
        at(b"a", 5),
        "the newest version"
    );
    assert_eq!(seek(b"a", 4), at(b"a", 3));
    assert_eq!(seek(b"a", 3), at(b"a", 3));
    assert_eq!(seek(b"a", 0), at(b"b", 9), "past every version of a");
    assert_eq!(seek(b"d", 5), at(b"d", 1));
    assert_eq!(seek(b"d", TS_RANGE_END), None, "past the last key");
}

/// `Block::decode` rejects an unknown timestamp kind and a column longer than the block, naming
/// the problem, and never panics on a cut or damaged tail.
#[test]
fn test_task1_block_decode_rejects_bad_timestamp_column() {
    let entries = versions();
    let encoded = block_of(&entries, 4096).encode().to_vec();
    let n = entries.len();
    // The tail is `ts_kind offset{n} n`.
    let kind_at = encoded.len() - 2 - 2 * n - 1;
    assert_eq!(encoded[kind_at], 2, "close timestamps are stored as deltas");
    let mut bad = encoded.clone();
    bad[kind_at] = 7;
    let error = Block::decode(&bad)
        .err()
        .expect("an unknown timestamp kind is an error");
    assert!(
        format!("{error:#}").contains("kind"),
        "the error names the kind: {error:#}"
    );
    // Columns longer than what lies before them.
    for (tail, what) in [
        (
            &[1, 0, 0, 0, 0, 0, 2][..],
            "two timestamps in an empty block",
        ),
        (
            &[9, 9, 9, 9, 2, 0, 0, 0, 0, 0, 2][..],
            "a base and two deltas in four bytes",
        ),
        (
            &[0, 0, 0, 0, 0, 0, 0, 1][..],
            "one timestamp in three bytes",
        ),
    ] {
        assert!(Block::decode(tail).is_err(), "{what}");
    }
    for len in 0..encoded.len() {
        let cut = &encoded[encoded.len() - len..];
        let _ = std::panic::catch_unwind(|| Block::decode(cut))
            .unwrap_or_else(|_| panic!("decoding the last {len} bytes panicked"));
    }
}

// ---------------------------------------------------------------------------------------------
// Task 2: timestamps in the SST's metadata

/// An SST written and reopened keeps every key's timestamp, the block metadata's first and last
/// keys with theirs, and the largest timestamp in the table.
#[test]
fn test_task2_sst_keeps_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.sst");
    let entries = versions();
    let built = versioned_sst(1, &path, &entries, 48);
    assert!(
        built.num_of_blocks() >= 4,
        "small blocks, so versions span blocks"
    );
    let opened = SsTable::open(1, None, FileObject::open(&path).unwrap()).unwrap();
    assert_eq!(opened.block_meta, built.block_meta);
    for (i, meta) in opened.block_meta.iter().enumerate() {
        let mut iter = BlockIterator::create_and_seek_to_first(opened.read_block(i).unwrap());
        assert_eq!(
            meta.first_key.as_key_slice(),
            iter.key(),
            "block {i}'s first key"
        );
        let mut last = iter.key().to_key_vec();
        while iter.is_valid() {
            last.set_from_slice(iter.key());
            iter.next();
        }
        assert_eq!(
            meta.last_key.as_key_slice(),
            last.as_key_slice(),
            "block {i}'s last key"
        );
    }
    assert_eq!(opened.first_key().ts(), 5);
    assert_eq!(opened.last_key().ts(), 1);
    assert_eq!(
        opened.max_ts(),
        9,
        "the largest timestamp, not the last or first"
    );
    let mut iter = SsTableIterator::create_and_seek_to_first(Arc::new(opened)).unwrap();
    assert_eq!(collect_versions(&mut iter).unwrap(), entries);
}

/// Seeking an SST by `(key, ts)` finds the block holding that version even when a key's
/// versions span blocks, and lands on the newest version at or before `ts`.
#[test]
fn test_task2_sst_seek_finds_version_across_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = vec![version(b"a", 1, b"a1")];
    for ts in (1..=40).rev() {
        entries.push(version(b"m", ts * 2, format!("m{ts}").as_bytes()));
    }
    entries.push(version(b"z", 1, b"z1"));
    let table = Arc::new(versioned_sst(1, &dir.path().join("1.sst"), &entries, 64));
    assert!(table.num_of_blocks() >= 8, "m's versions span many blocks");
    for ts in 0..=82u64 {
        let mut iter = SsTableIterator::create_and_seek_to_key(
            table.clone(),
            KeySlice::from_slice_ts(b"m", ts),
        )
        .unwrap();
        let found = (iter.key().key_ref().to_vec(), iter.key().ts());
        // The newest even timestamp at or before ts, or past m entirely.
        let expected = match ts - ts % 2 {
            0 => (b"z".to_vec(), 1),
            t => (b"m".to_vec(), t.min(80)),
        };
        assert_eq!(found, expected, "seek to m@{ts}");
        let idx = table.find_block_idx(KeySlice::from_slice_ts(b"m", ts));
        let block = table.read_block(idx).unwrap();
        let first = BlockIterator::create_and_seek_to_first(block)
            .key()
            .to_key_vec();
        assert!(
            first.as_key_slice() <= iter.key(),
            "find_block_idx(m@{ts}) picked block {idx}, which starts after the version"
        );
        iter.next().unwrap();
    }
}

/// The bloom filter holds user keys: a lookup of a key asks about the key, whatever version.
#[test]
fn test_task2_bloom_filter_holds_user_keys() {
    let dir = tempfile::tempdir().unwrap();
    let table = versioned_sst(1, &dir.path().join("1.sst"), &versions(), 4096);
    for key in [&b"a"[..], b"b", b"c", b"d"] {
        assert!(
            !table.bloom_excludes(key),
            "the filter rules out {}",
            show(key)
        );
    }
    let excluded = (0..100)
        .filter(|i| table.bloom_excludes(format!("absent{i}").as_bytes()))
        .count();
    assert!(
        excluded > 80,
        "the filter ruled out only {excluded} of 100 absent keys"
    );
}

// ---------------------------------------------------------------------------------------------
// Task 3: seeks that respect versions

/// The distinct user keys a scan yields, and the value of its first entry.
fn scan_keys(
    inner: &crate::lsm_storage::LsmStorageInner,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> (Vec<Bytes>, Option<Bytes>) {
    // At TS_RANGE_BEGIN every version is visible; before the next chapter a scan hands out every
    // version of a key, after it only the newest, so only the set of keys is compared.
    let mut iter = inner.scan_with_ts(lower, upper, TS_RANGE_BEGIN).unwrap();
    let entries = collect_user(&mut iter).unwrap();
    let first = entries.first().map(|(_, v)| v.clone());
    let keys: BTreeSet<Bytes> = entries.into_iter().map(|(k, _)| k).collect();
    (keys.into_iter().collect(), first)
}

/// An excluded lower bound skips every version of its key, in L0 and in a sorted run; an included
/// one starts at the key's newest version.
#[test]
fn test_task3_excluded_lower_bound_skips_every_version() {
    let (_dir, inner) = open_engine(small_block_options());
    let all = versions();
    // L0: every version of a..d. A run below it: the versions of b and d, over two SSTs.
    install_run(&inner, &[all[3..5].to_vec(), all[6..].to_vec()]);
    install_l0(&inner, &all);
    let keys = |ks: &[&[u8]]| {
        ks.iter()
            .map(|k| Bytes::copy_from_slice(k))
            .collect::<Vec<_>>()
    };
    let value = |v: &str| Some(Bytes::copy_from_slice(v.as_bytes()));
    type Case<'a> = (Bound<&'a [u8]>, Vec<Bytes>, Option<Bytes>);
    let cases: [Case; 6] = [
        (
            Bound::Excluded(b"a"),
            keys(&[b"b", b"c", b"d"]),
            value("b\"b\"@9"),
        ),
        (
            Bound::Excluded(b"b"),
            keys(&[b"c", b"d"]),
            value("b\"c\"@4"),
        ),
        (Bound::Excluded(b"c"), keys(&[b"d"]), value("b\"d\"@8")),
        (Bound::Excluded(b"d"), keys(&[]), None),
        (
            Bound::Included(b"b"),
            keys(&[b"b", b"c", b"d"]),
            value("b\"b\"@9"),
        ),
        (Bound::Included(b"d"), keys(&[b"d"]), value("b\"d\"@8")),
    ];
    for (lower, expected_keys, expected_first) in cases {
        let (keys, first) = scan_keys(&inner, lower, Bound::Unbounded);
        assert_eq!(keys, expected_keys, "the keys of a scan from {lower:?}");
        assert_eq!(
            first, expected_first,
            "the first entry of a scan from {lower:?}"
        );
    }
}

/// A sorted run seeks by version too: an excluded bound on a key whose versions end one SST of
/// the run starts at the next SST's first key.
#[test]
fn test_task3_excluded_bound_at_the_end_of_a_run_table() {
    let (_dir, inner) = open_engine(small_block_options());
    let all = versions();
    install_run(&inner, &[all[..5].to_vec(), all[5..].to_vec()]);
    let (keys, first) = scan_keys(&inner, Bound::Excluded(b"b"), Bound::Included(b"c"));
    assert_eq!(keys, vec![Bytes::from_static(b"c")]);
    assert_eq!(first.as_deref(), Some(&b"b\"c\"@4"[..]));
    // The concat iterator itself lands on a version after the run's first table.
    let snapshot = inner.snapshot();
    let tables: Vec<_> = snapshot.levels[0]
        .1
        .iter()
        .map(|id| snapshot.table(*id).unwrap().clone())
        .collect();
    let iter = SstConcatIterator::create_and_seek_to_key(
        tables,
        KeySlice::from_slice_ts(b"b", TS_RANGE_END),
    )
    .unwrap();
    assert_eq!(
        (iter.key().key_ref(), iter.key().ts()),
        (&b"c"[..], 4),
        "a seek past every version of b"
    );
}
