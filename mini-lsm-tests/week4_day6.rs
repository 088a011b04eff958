// SPDX-License-Identifier: Apache-2.0
//! Week 4 day 6: a merge operator. Entries with kinds in every format, operands folded at read
//! time, and at compaction only at or below the watermark.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::block::{Block, BlockBuilder, BlockIterator};
use crate::compact::{CompactionOptions, PrefixFilter, SimpleLeveledCompactionOptions};
use crate::fs::{FileSystem, MemFs};
use crate::iterators::concat_iterator::SstConcatIterator;
use crate::iterators::StorageIterator;
use crate::key::KeySlice;
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm, WriteBatchOp};
use crate::mem_table::MemTable;
use crate::merge::{AddOperator, AppendOperator, MergeOperator, ValueKind};
use crate::mvcc::{Conflict, Isolation};
use crate::table::{SsTableBuilder, SsTableIterator};
use crate::wal::{encode_batch, SyncMode, Wal};

use super::harness::compaction::{flush_all, move_l1_to_l2};
use super::harness::persist::{db, mem_options};
use super::harness::{collect_user, open_engine, show, test_seed, Rng};

/// Options with compaction by hand only, small blocks, and `operator`.
fn options(operator: impl MergeOperator + 'static) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week2_test(CompactionOptions::NoCompaction);
    options.block_size = 128;
    options.merge_operator = Some(Arc::new(operator));
    options
}

/// `Some(value)` as bytes.
fn val(value: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(value.as_bytes()))
}

/// Every entry of the engine's levels, top level first, as `(key, ts, kind, value)`.
fn level_entries(inner: &LsmStorageInner) -> Vec<(String, u64, ValueKind, String)> {
    let snapshot = inner.snapshot();
    let mut out = Vec::new();
    for (_, ids) in &snapshot.levels {
        let tables = ids
            .iter()
            .map(|id| snapshot.table(*id).unwrap().clone())
            .collect();
        let mut iter = SstConcatIterator::create_and_seek_to_first(tables).unwrap();
        while iter.is_valid() {
            out.push((
                String::from_utf8_lossy(iter.key().key_ref()).into_owned(),
                iter.key().ts(),
                iter.value_kind(),
                String::from_utf8_lossy(iter.value()).into_owned(),
            ));
            iter.next().unwrap();
        }
    }
    out
}

/// The engine's scan of everything, as `(key, value)` strings.
fn scan_strings(inner: &LsmStorageInner) -> Vec<(String, String)> {
    let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    collect_user(&mut iter)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Task 1: kinds in the memtable, the block, the log and the batch

/// Merging without a merge operator is an error that names the option, and writes nothing.
#[test]
fn test_task1_merge_without_operator_is_a_clear_error() {
    let mut options = options(AddOperator);
    options.merge_operator = None;
    let (_dir, inner) = open_engine(options);
    let error = inner.merge(b"k", b"1").unwrap_err().to_string();
    assert!(error.contains("merge_operator"), "the error: {error}");
    let batch = [WriteBatchOp::Merge(&b"k"[..], &b"1"[..])];
    let error = inner.write_batch_ops(&batch).unwrap_err().to_string();
    assert!(
        error.contains("merge_operator"),
        "the batch's error: {error}"
    );
    assert_eq!(inner.get(b"k").unwrap(), None, "nothing was written");
}

/// A block with operands stores every entry's kind and reads it back; one without keeps the
/// bytes it had before kinds existed.
#[test]
fn test_task1_block_kind_column() {
    let entries: [(&[u8], &[u8], ValueKind); 4] = [
        (b"a", b"1", ValueKind::Put),
        (b"b", b"", ValueKind::Delete),
        (b"c", b"+2", ValueKind::Merge),
        (b"d", b"", ValueKind::Merge),
    ];
    let mut builder = BlockBuilder::new(4096);
    for (key, value, kind) in entries {
        assert!(builder.add_with_kind(KeySlice::from_slice(key), value, kind));
    }
    let encoded = builder.build().encode();
    let block = Arc::new(Block::decode(&encoded).unwrap());
    let mut iter = BlockIterator::create_and_seek_to_first(block);
    for (key, value, kind) in entries {
        assert!(iter.is_valid());
        assert_eq!(iter.key().key_ref(), key);
        assert_eq!(iter.value(), value);
        assert_eq!(iter.value_kind(), kind, "the kind of {}", show(key));
        iter.next();
    }
    assert!(!iter.is_valid());

    // Without an operand: the same bytes as a block of plain adds, and the kinds read back
    // from the values.
    let (mut plain, mut kinded) = (BlockBuilder::new(4096), BlockBuilder::new(4096));
    for (key, value, kind) in &entries[..2] {
        plain.add(KeySlice::from_slice(key), value);
        kinded.add_with_kind(KeySlice::from_slice(key), value, *kind);
    }
    let (plain, kinded) = (plain.build().encode(), kinded.build().encode());
    assert_eq!(plain, kinded, "a block without operands has no kind column");
    assert!(
        encoded.len() >= plain.len() + 4,
        "the operand block pays one byte per entry"
    );
}

/// A block whose kind column holds an unknown tag, or a delete with a value, is refused with an
/// error that says so, never read.
#[test]
fn test_task1_corrupt_kind_column_is_an_error() {
    let mut builder = BlockBuilder::new(4096);
    builder.add_with_kind(KeySlice::from_slice(b"a"), b"1", ValueKind::Put);
    builder.add_with_kind(KeySlice::from_slice(b"b"), b"2", ValueKind::Merge);
    let encoded = builder.build().encode().to_vec();
    let n = 2;
    // entries, kinds (n bytes), ts column (8 bytes, one timestamp), ts kind, offsets, count.
    let kinds_at = encoded.len() - 2 - 2 * n - 1 - 8 - n;
    assert_eq!(&encoded[kinds_at..kinds_at + n], &[0, 2], "the kind column");
    let mut bad = encoded.clone();
    bad[kinds_at + 1] = 7;
    let error = Block::decode(&bad)
        .err()
        .expect("an unknown kind")
        .to_string();
    assert!(error.contains("kind"), "the error: {error}");
    let mut bad = encoded.clone();
    bad[kinds_at] = ValueKind::Delete.tag();
    let error = Block::decode(&bad)
        .err()
        .expect("a delete with a value")
        .to_string();
    assert!(error.contains("Delete"), "the error: {error}");
}

/// A log record carries its entries' kinds when one is an operand, and replays them; a batch
/// without operands is written byte for byte as before kinds.
#[test]
fn test_task1_wal_records_kinds() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let (with, plain, kinded) = (db().join("1.wal"), db().join("2.wal"), db().join("3.wal"));
    let wal = Wal::create(&fs, &with).unwrap();
    let batch: [(&[u8], &[u8]); 3] = [(b"a", b"1"), (b"b", b""), (b"c", b"+1")];
    let kinds = [ValueKind::Put, ValueKind::Delete, ValueKind::Merge];
    wal.put_batch_kinds_at(&batch, &kinds, 7).unwrap();
    wal.sync().unwrap();
    let mut replayed = Vec::new();
    let replay = Wal::replay_kinds_at(&fs, &with, |key, value, kind| {
        replayed.push((key.key_ref().to_vec(), key.ts(), value.to_vec(), kind));
    })
    .unwrap();
    assert_eq!(replay.batches, 1);
    let expected: Vec<_> = batch
        .iter()
        .zip(kinds)
        .map(|((k, v), kind)| (k.to_vec(), 7, v.to_vec(), kind))
        .collect();
    assert_eq!(replayed, expected);

    let (a, b) = (
        Wal::create(&fs, &plain).unwrap(),
        Wal::create(&fs, &kinded).unwrap(),
    );
    a.put_batch_at(&batch[..2], 3).unwrap();
    b.put_batch_kinds_at(&batch[..2], &kinds[..2], 3).unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    assert_eq!(fs.read_all(&plain).unwrap(), fs.read_all(&kinded).unwrap());
}

/// A log record holding a commit group replays each batch with its own kinds: a batch with an
/// operand says where it ends, so the plain batch after it is read as a batch, not as kinds.
#[test]
fn test_task1_group_record_mixes_batches_with_and_without_kinds() {
    let fs = MemFs::new();
    fs.create_dir_all(&db()).unwrap();
    let path = db().join("1.wal");
    let wal = Wal::create(&fs, &path).unwrap();
    let plain: [(&[u8], &[u8]); 2] = [(b"a", b"1"), (b"b", b"")];
    let merged: [(&[u8], &[u8]); 2] = [(b"c", b"+1"), (b"d", b"2")];
    let kinds = [ValueKind::Merge, ValueKind::Put];
    let mut group = Vec::new();
    encode_batch(&mut group, &plain, &[], 4);
    encode_batch(&mut group, &merged, &kinds, 5);
    encode_batch(&mut group, &plain[..1], &[], 6);
    wal.append_group(&group, SyncMode::Fsync).unwrap();
    let mut replayed = Vec::new();
    let replay = Wal::replay_kinds_at(&fs, &path, |key, value, kind| {
        replayed.push((key.key_ref().to_vec(), key.ts(), value.to_vec(), kind));
    })
    .unwrap();
    assert_eq!(replay.batches, 3);
    let entry = |key: &[u8], ts, value: &[u8], kind| (key.to_vec(), ts, value.to_vec(), kind);
    let expected = vec![
        entry(b"a", 4, b"1", ValueKind::Put),
        entry(b"b", 4, b"", ValueKind::Delete),
        entry(b"c", 5, b"+1", ValueKind::Merge),
        entry(b"d", 5, b"2", ValueKind::Put),
        entry(b"a", 6, b"1", ValueKind::Put),
    ];
    assert_eq!(replayed, expected);
}

/// The memtable keeps each entry's kind, and a flush writes it into the SST.
#[test]
fn test_task1_memtable_and_flush_keep_kinds() {
    let memtable = MemTable::create(0);
    memtable
        .put_batch_kinds_at(&[(b"k", b"5")], &[ValueKind::Put], 1)
        .unwrap();
    memtable
        .put_batch_kinds_at(&[(b"k", b"+1"), (b"m", b"")], &[ValueKind::Merge; 2], 2)
        .unwrap();
    let expected = [
        (b"k", 2, ValueKind::Merge),
        (b"k", 1, ValueKind::Put),
        (b"m", 2, ValueKind::Merge),
    ];
    let mut iter = memtable.scan(Bound::Unbounded, Bound::Unbounded);
    for (key, ts, kind) in expected {
        assert!(iter.is_valid());
        assert_eq!((iter.key().key_ref(), iter.key().ts()), (&key[..1], ts));
        assert_eq!(iter.value_kind(), kind);
        iter.next().unwrap();
    }
    assert_eq!(
        memtable.get_kind_at(b"k", 5).map(|(_, kind)| kind),
        Some(ValueKind::Merge)
    );
    let dir = tempfile::tempdir().unwrap();
    let mut builder = SsTableBuilder::new(128);
    memtable.flush(&mut builder).unwrap();
    let table = builder.build(1, None, dir.path().join("1.sst")).unwrap();
    let mut iter = SsTableIterator::create_and_seek_to_first(Arc::new(table)).unwrap();
    for (key, ts, kind) in expected {
        assert!(iter.is_valid());
        assert_eq!((iter.key().key_ref(), iter.key().ts()), (&key[..1], ts));
        assert_eq!(iter.value_kind(), kind, "in the SST");
        iter.next().unwrap();
    }
}

/// Operands in the log survive a crash: after reopening, the key reads as their fold.
#[test]
fn test_task1_operands_recovered_from_the_wal() {
    let fs = MemFs::new();
    let mut options = mem_options(&fs, true);
    options.merge_operator = Some(Arc::new(AddOperator));
    let inner = LsmStorageInner::open(db(), options.clone()).unwrap();
    inner.put(b"visits", b"10").unwrap();
    inner.merge(b"visits", b"1").unwrap();
    inner
        .write_batch_ops(&[
            WriteBatchOp::Merge(&b"visits"[..], &b"5"[..]),
            WriteBatchOp::Put(&b"other"[..], &b"x"[..]),
        ])
        .unwrap();
    inner.sync().unwrap();
    let image = fs.crash_now(false);
    drop(inner);
    options.fs = Arc::new(image);
    let inner = LsmStorageInner::open(db(), options).unwrap();
    assert_eq!(inner.get(b"visits").unwrap(), val("16"));
    assert_eq!(inner.get(b"other").unwrap(), val("x"));
}

// ---------------------------------------------------------------------------------------------
// Task 2: folding at read time

/// A counter kept by merges reads right with its operands spread over the memtable, an
/// immutable memtable, L0 and L1, through `get` and scans.
#[test]
fn test_task2_counter_across_memtable_l0_and_levels() {
    let (_dir, inner) = open_engine(options(AddOperator));
    inner.put(b"n", b"10").unwrap();
    inner.put(b"z", b"1").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    inner.merge(b"n", b"1").unwrap();
    flush_all(&inner); // L0
    inner.merge(b"n", b"5").unwrap();
    super::harness::freeze(&inner); // an immutable memtable
    inner.merge(b"n", b"100").unwrap();
    inner.merge(b"m", b"7").unwrap(); // no base at all
    assert_eq!(inner.get(b"n").unwrap(), val("116"));
    assert_eq!(inner.get(b"m").unwrap(), val("7"));
    let expected = [("m", "7"), ("n", "116"), ("z", "1")];
    let expected: Vec<_> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(scan_strings(&inner), expected);
    let mut iter = inner
        .scan(Bound::Excluded(b"m"), Bound::Included(b"n"))
        .unwrap();
    assert_eq!(
        collect_user(&mut iter).unwrap(),
        vec![(Bytes::from("n"), Bytes::from("116"))]
    );
}

/// Operands fold oldest first, over the newest put, wherever they lie.
#[test]
fn test_task2_fold_order_is_oldest_first() {
    let (_dir, inner) = open_engine(options(AppendOperator::new(b",")));
    inner.put(b"k", b"old").unwrap();
    inner.put(b"k", b"a").unwrap();
    inner.merge(b"k", b"b").unwrap();
    flush_all(&inner);
    inner.merge(b"k", b"c").unwrap();
    inner.merge(b"k", b"d").unwrap();
    assert_eq!(inner.get(b"k").unwrap(), val("a,b,c,d"));
    assert_eq!(scan_strings(&inner), vec![("k".into(), "a,b,c,d".into())]);
}

/// A tombstone under operands ends the fold (they start from nothing); a put or a delete over
/// operands replaces them.
#[test]
fn test_task2_tombstones_and_puts_end_the_fold() {
    let (_dir, inner) = open_engine(options(AppendOperator::new(b",")));
    inner.put(b"a", b"1").unwrap();
    inner.delete(b"a").unwrap();
    inner.merge(b"a", b"2").unwrap();
    inner.merge(b"b", b"1").unwrap();
    inner.delete(b"b").unwrap();
    inner.merge(b"c", b"1").unwrap();
    inner.put(b"c", b"9").unwrap();
    for flushed in [false, true] {
        assert_eq!(inner.get(b"a").unwrap(), val("2"), "flushed: {flushed}");
        assert_eq!(inner.get(b"b").unwrap(), None, "flushed: {flushed}");
        assert_eq!(inner.get(b"c").unwrap(), val("9"), "flushed: {flushed}");
        let expected = vec![("a".into(), "2".into()), ("c".into(), "9".into())];
        assert_eq!(scan_strings(&inner), expected, "flushed: {flushed}");
        flush_all(&inner);
    }
}

/// A fold whose result is empty reads as no value, in `get` and in scans.
#[test]
fn test_task2_empty_fold_reads_as_absent() {
    let (_dir, inner) = open_engine(options(AppendOperator::new(b",")));
    inner.merge(b"e", b"").unwrap();
    inner.put(b"f", b"1").unwrap();
    assert_eq!(inner.get(b"e").unwrap(), None);
    assert_eq!(scan_strings(&inner), vec![("f".into(), "1".into())]);
    inner.merge(b"e", b"x").unwrap();
    assert_eq!(inner.get(b"e").unwrap(), val("x"));
}

/// Snapshots and reads at older timestamps fold only the operands at or before their
/// timestamp.
#[test]
fn test_task2_snapshots_read_between_operands() {
    let (_dir, inner) = open_engine(options(AddOperator));
    inner.put(b"n", b"0").unwrap();
    let mut snapshots = Vec::new();
    for i in 1..=6 {
        inner.merge(b"n", i.to_string().as_bytes()).unwrap();
        snapshots.push((inner.new_snapshot(), (1..=i).sum::<i64>()));
        if i % 2 == 0 {
            flush_all(&inner);
        }
    }
    for (snapshot, sum) in &snapshots {
        let expected = val(&sum.to_string());
        assert_eq!(
            snapshot.get(b"n").unwrap(),
            expected,
            "at {}",
            snapshot.read_ts()
        );
        let mut iter = snapshot.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
        let entries = collect_user(&mut iter).unwrap();
        assert_eq!(entries, vec![(Bytes::from("n"), expected.clone().unwrap())]);
        let ts = snapshot.read_ts();
        assert_eq!(inner.get_at(b"n", ts).unwrap(), expected, "get_at {ts}");
    }
}

/// A transaction reads a key's fold as of its snapshot, through `get` and `scan`, and its own
/// put over it; operands merged after it began stay out of its reads.
#[test]
fn test_task2_transactions_read_folds() {
    let (_dir, inner) = open_engine(options(AddOperator));
    inner.put(b"n", b"1").unwrap();
    inner.merge(b"n", b"2").unwrap();
    flush_all(&inner);
    inner.merge(b"n", b"3").unwrap();
    let mut txn = inner.new_txn();
    inner.merge(b"n", b"100").unwrap();
    assert_eq!(txn.get(b"n").unwrap(), val("6"));
    let mut iter = txn.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    assert_eq!(
        collect_user(&mut iter).unwrap(),
        vec![(Bytes::from("n"), Bytes::from("6"))]
    );
    drop(iter);
    txn.put(b"n", b"7").unwrap();
    assert_eq!(txn.get(b"n").unwrap(), val("7"));
    drop(txn);
    assert_eq!(inner.get(b"n").unwrap(), val("106"));
}

/// An operator's error reaches the reader, naming the key; nothing is guessed.
#[test]
fn test_task2_operator_error_names_the_key() {
    let (_dir, inner) = open_engine(options(AddOperator));
    inner.put(b"word", b"seven").unwrap();
    inner.merge(b"word", b"1").unwrap();
    let error = format!("{:#}", inner.get(b"word").unwrap_err());
    assert!(
        error.contains("word") && error.contains("seven"),
        "the error: {error}"
    );
    let error = inner
        .scan(Bound::Unbounded, Bound::Unbounded)
        .err()
        .expect("the scan lands on the key");
    assert!(format!("{error:#}").contains("word"));
}

// ---------------------------------------------------------------------------------------------
// Task 3: folding at compaction

/// Compaction folds a key's operands at or below the watermark into one version, keeps every
/// operand above it, and both a snapshot and a latest read still read right.
#[test]
fn test_task3_compaction_folds_only_at_or_below_the_watermark() {
    let (_dir, inner) = open_engine(options(AddOperator));
    inner.put(b"n", b"10").unwrap();
    inner.merge(b"n", b"1").unwrap();
    let snapshot = inner.new_snapshot();
    let held = snapshot.read_ts();
    inner.merge(b"n", b"2").unwrap();
    inner.merge(b"n", b"3").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let entries = level_entries(&inner);
    let expected = vec![
        ("n".to_string(), held + 2, ValueKind::Merge, "3".to_string()),
        ("n".to_string(), held + 1, ValueKind::Merge, "2".to_string()),
        ("n".to_string(), held, ValueKind::Put, "11".to_string()),
    ];
    assert_eq!(entries, expected, "watermark {held}");
    assert_eq!(snapshot.get(b"n").unwrap(), val("11"));
    assert_eq!(inner.get(b"n").unwrap(), val("16"));
    drop(snapshot);
    inner.force_full_compaction().unwrap();
    let entries = level_entries(&inner);
    assert_eq!(
        entries,
        vec![("n".to_string(), held + 2, ValueKind::Put, "16".to_string())]
    );
}

/// Above the bottom, operands without a base fold into one operand (older versions may lie
/// below); at the bottom they become a put, and an empty fold goes.
#[test]
fn test_task3_partial_fold_above_the_bottom() {
    let (_dir, inner) = open_engine(options(AddOperator));
    inner.put(b"n", b"100").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    move_l1_to_l2(&inner); // L2 holds the base; the next compaction is not to the bottom.
    inner.merge(b"n", b"1").unwrap();
    inner.merge(b"n", b"2").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let entries = level_entries(&inner);
    let latest = entries[0].1;
    assert_eq!(
        entries,
        vec![
            ("n".to_string(), latest, ValueKind::Merge, "3".to_string()),
            (
                "n".to_string(),
                latest - 2,
                ValueKind::Put,
                "100".to_string()
            ),
        ],
        "L1 holds one operand worth both, L2 the base"
    );
    assert_eq!(inner.get(b"n").unwrap(), val("103"));

    let (_dir, inner) = open_engine(options(AppendOperator::new(b",")));
    inner.merge(b"e", b"").unwrap();
    inner.delete(b"d").unwrap();
    inner.merge(b"d", b"x").unwrap();
    flush_all(&inner);
    inner.force_full_compaction().unwrap();
    let entries = level_entries(&inner);
    let ts = entries.first().map_or(0, |e| e.1);
    assert_eq!(
        entries,
        vec![("d".to_string(), ts, ValueKind::Put, "x".to_string())],
        "at the bottom: d's fold is a put, e's empty fold is gone"
    );
}

/// A compaction filter that names a key drops its folded value like a put's.
#[test]
fn test_task3_filters_see_the_fold() {
    let (_dir, inner) = open_engine(options(AddOperator));
    inner.merge(b"tmp/1", b"1").unwrap();
    inner.merge(b"tmp/1", b"2").unwrap();
    inner.merge(b"keep", b"3").unwrap();
    flush_all(&inner);
    inner.add_compaction_filter(Arc::new(PrefixFilter::new(&b"tmp/"[..])));
    inner.force_full_compaction().unwrap();
    assert_eq!(inner.get(b"tmp/1").unwrap(), None);
    assert_eq!(inner.get(b"keep").unwrap(), val("3"));
    assert_eq!(level_entries(&inner).len(), 1);
}

/// Compaction without the operator the operands need fails and says so; nothing is lost.
#[test]
fn test_task3_compaction_without_operator_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let lsm = MiniLsm::open(dir.path(), options(AddOperator)).unwrap();
    lsm.merge(b"n", b"1").unwrap();
    lsm.close().unwrap();
    drop(lsm);
    let mut without = options(AddOperator);
    without.merge_operator = None;
    let lsm = MiniLsm::open(dir.path(), without).unwrap();
    let error = format!("{:#}", lsm.inner.force_full_compaction().unwrap_err());
    assert!(error.contains("merge operator"), "the error: {error}");
    let error = format!("{:#}", lsm.get(b"n").unwrap_err());
    assert!(error.contains("merge operator"), "a read's error: {error}");
    lsm.close().unwrap();
    drop(lsm);
    let lsm = MiniLsm::open(dir.path(), options(AddOperator)).unwrap();
    assert_eq!(lsm.get(b"n").unwrap(), val("1"));
    lsm.close().unwrap();
}

/// Snapshots taken between operands keep reading what they read while flushes and compactions
/// (to the bottom and above it) run between their reads; dropped, they let the fold go on.
#[test]
fn test_task3_snapshots_hold_while_compaction_runs() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let mut options = options(AddOperator);
    options.compaction_options = CompactionOptions::Simple(SimpleLeveledCompactionOptions {
        size_ratio_percent: 200,
        level0_file_num_compaction_trigger: 2,
        max_levels: 3,
    });
    let (_dir, inner) = open_engine(options);
    let mut total = 0i64;
    let mut snapshots = Vec::new();
    for round in 0..60 {
        let add = rng.below(10) as i64 + 1;
        inner.merge(b"counter", add.to_string().as_bytes()).unwrap();
        total += add;
        if rng.chance(40) {
            snapshots.push((inner.new_snapshot(), total));
        }
        if rng.chance(30) {
            flush_all(&inner);
            inner.trigger_compaction().unwrap();
        }
        if rng.chance(10) {
            inner.force_full_compaction().unwrap();
        }
        if rng.chance(15) && !snapshots.is_empty() {
            snapshots.swap_remove(rng.below(snapshots.len()));
        }
        for (snapshot, expected) in &snapshots {
            assert_eq!(
                snapshot.get(b"counter").unwrap(),
                val(&expected.to_string()),
                "seed {seed}, round {round}, snapshot at {}",
                snapshot.read_ts()
            );
        }
        assert_eq!(inner.get(b"counter").unwrap(), val(&total.to_string()));
    }
}

/// Random puts, deletes, merges, flushes, compactions and snapshots agree with a model, the
/// operator appending (so that order matters).
#[test]
fn test_task3_random_against_model() {
    let seed = test_seed();
    let mut rng = Rng::new(seed);
    let mut options = options(AppendOperator::new(b","));
    options.compaction_options = CompactionOptions::Simple(SimpleLeveledCompactionOptions {
        size_ratio_percent: 200,
        level0_file_num_compaction_trigger: 2,
        max_levels: 3,
    });
    let (_dir, inner) = open_engine(options);
    let append = AppendOperator::new(b",");
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut snapshots = Vec::new();
    let reads = |model: &BTreeMap<Vec<u8>, Vec<u8>>| -> Vec<(Bytes, Bytes)> {
        model
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
            .collect()
    };
    for step in 0..400 {
        let key = format!("k{}", rng.below(8)).into_bytes();
        let value = format!("v{step}").into_bytes();
        let context = format!("seed {seed}, step {step}");
        match rng.below(100) {
            0..=24 => {
                inner.put(&key, &value).unwrap();
                model.insert(key, value);
            }
            25..=34 => {
                inner.delete(&key).unwrap();
                model.remove(&key);
            }
            35..=74 => {
                let operand = if rng.chance(10) { Vec::new() } else { value };
                inner.merge(&key, &operand).unwrap();
                let old = model.get(&key).filter(|v| !v.is_empty());
                let new = append
                    .merge(&key, old.map(Vec::as_slice), &[&operand])
                    .unwrap();
                model.insert(key, new);
            }
            75..=82 => {
                flush_all(&inner);
                inner.trigger_compaction().unwrap();
            }
            83..=85 => inner.force_full_compaction().unwrap(),
            86..=90 => snapshots.push((inner.new_snapshot(), reads(&model))),
            91..=93 if !snapshots.is_empty() => {
                snapshots.swap_remove(rng.below(snapshots.len()));
            }
            _ => {
                let expected = model
                    .get(&key)
                    .filter(|v| !v.is_empty())
                    .map(|v| Bytes::copy_from_slice(v));
                assert_eq!(
                    inner.get(&key).unwrap(),
                    expected,
                    "{context}: get {}",
                    show(&key)
                );
            }
        }
        let mut iter = inner.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
        assert_eq!(
            collect_user(&mut iter).unwrap(),
            reads(&model),
            "{context}: scan"
        );
        for (snapshot, expected) in &snapshots {
            let mut iter = snapshot.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
            let at = snapshot.read_ts();
            assert_eq!(
                &collect_user(&mut iter).unwrap(),
                expected,
                "{context}: snapshot {at}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Task 4: merge inside a transaction

/// A transaction's merge folds into its own put or delete at once, reads over its snapshot
/// where it wrote nothing else, and commits an operand: a merge committed by someone else
/// meanwhile still counts (an unvalidated transaction, so that both commit).
#[test]
fn test_task4_transaction_merges_read_and_commit_as_operands() {
    let mut options = options(AddOperator);
    options.isolation = Isolation::Unvalidated;
    let (_dir, inner) = open_engine(options);
    inner.put(b"c", b"10").unwrap();
    inner.put(b"e", b"50").unwrap();
    flush_all(&inner);
    let mut txn = inner.new_txn();
    txn.merge(b"c", b"5").unwrap();
    txn.merge(b"c", b"2").unwrap();
    assert_eq!(
        txn.get(b"c").unwrap(),
        val("17"),
        "two operands over the snapshot's 10"
    );
    txn.put(b"d", b"1").unwrap();
    txn.merge(b"d", b"4").unwrap();
    assert_eq!(
        txn.get(b"d").unwrap(),
        val("5"),
        "an operand over its own put"
    );
    txn.delete(b"e").unwrap();
    txn.merge(b"e", b"3").unwrap();
    assert_eq!(
        txn.get(b"e").unwrap(),
        val("3"),
        "an operand over its own delete"
    );
    let mut iter = txn.scan(Bound::Unbounded, Bound::Unbounded).unwrap();
    let seen: Vec<(Bytes, Bytes)> = collect_user(&mut iter).unwrap();
    drop(iter);
    let expected: Vec<(Bytes, Bytes)> = [("c", "17"), ("d", "5"), ("e", "3")]
        .iter()
        .map(|(k, v)| (Bytes::from(*k), Bytes::from(*v)))
        .collect();
    assert_eq!(seen, expected, "the transaction's scan");
    inner.merge(b"c", b"100").unwrap();
    assert_eq!(
        txn.get(b"c").unwrap(),
        val("17"),
        "a later commit stays out of its reads"
    );
    txn.commit().unwrap();
    assert_eq!(
        inner.get(b"c").unwrap(),
        val("117"),
        "committed as an operand, not as 17"
    );
    assert_eq!(inner.get(b"d").unwrap(), val("5"));
    assert_eq!(inner.get(b"e").unwrap(), val("3"));
}

/// A transaction's merge is a write for validation: under snapshot isolation, two transactions
/// that merge one key conflict like two that put it (the first to commit wins); an aborted
/// transaction's operands leave nothing.
#[test]
fn test_task4_transaction_merges_validate_and_abort_like_writes() {
    let mut options = options(AddOperator);
    options.isolation = Isolation::Snapshot;
    let (_dir, inner) = open_engine(options);
    let mut first = inner.new_txn();
    let mut second = inner.new_txn();
    first.merge(b"n", b"1").unwrap();
    second.merge(b"n", b"1").unwrap();
    first.commit().unwrap();
    let error = second
        .commit()
        .expect_err("the second merge of n must conflict");
    assert!(
        error.downcast_ref::<Conflict>().is_some(),
        "the error: {error:#}"
    );
    let mut aborted = inner.new_txn();
    aborted.merge(b"n", b"1000").unwrap();
    drop(aborted);
    assert_eq!(inner.get(b"n").unwrap(), val("1"));
    let (_dir, plain) = open_engine(LsmStorageOptions::default_for_week2_test(
        CompactionOptions::NoCompaction,
    ));
    let mut txn = plain.new_txn();
    let error = txn.merge(b"n", b"1").expect_err("no operator").to_string();
    assert!(error.contains("merge_operator"), "the error: {error}");
}
