// SPDX-License-Identifier: Apache-2.0
//! A failing case as a `#[test]` to paste into the starter: self-contained, with `crate::` paths,
//! the engine's settings of [`crate::engines::settings`], and one assertion per read, whose
//! expected value is the model's. Snapshots (`s0`) and transactions (`t0`) are locals that borrow
//! the engine: each is dropped where the case drops, commits or aborts it, and before a reopen.

use std::fmt::Write;
use std::ops::Bound;

use crate::engines::{settings, Refusal, Reply};
use crate::ops::{BatchOp, Case, Isolation, Op, Slot, Strategy, SyncMode, SLOTS, TXN_SLOTS};
use crate::run::model_trace;

/// A byte-string literal: `b"k01"`.
fn lit(bytes: &[u8]) -> String {
    format!("b\"{}\"", bytes.escape_ascii())
}

/// A `&[u8]` expression: `&b"k01"[..]`.
fn slice(bytes: &[u8]) -> String {
    format!("&{}[..]", lit(bytes))
}

fn bound(b: &Bound<Vec<u8>>) -> String {
    match b {
        Bound::Included(k) => format!("Bound::Included({})", slice(k)),
        Bound::Excluded(k) => format!("Bound::Excluded({})", slice(k)),
        Bound::Unbounded => "Bound::Unbounded".to_string(),
    }
}

/// A string literal of `bytes` as text (the test compares text, so a failure reads well).
fn text(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn entries(entries: &[(Vec<u8>, Vec<u8>)]) -> String {
    let shown: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("({}, {})", text(k), text(v)))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// The compaction options of `strategy` as Rust code (as `Debug` prints them, too).
pub fn compaction_code(strategy: Strategy) -> String {
    match strategy {
        Strategy::None => "NoCompaction".to_string(),
        Strategy::Simple => {
            let (ratio, trigger, levels) = settings::SIMPLE;
            format!(
                "Simple(SimpleLeveledCompactionOptions {{ size_ratio_percent: {ratio}, \
                 level0_file_num_compaction_trigger: {trigger}, max_levels: {levels} }})"
            )
        }
        Strategy::Tiered => {
            let (tiers, amp, ratio, width) = settings::TIERED;
            format!(
                "Tiered(TieredCompactionOptions {{ num_tiers: {tiers}, \
                 max_size_amplification_percent: {amp}, size_ratio: {ratio}, \
                 min_merge_width: {width}, max_merge_width: None }})"
            )
        }
        Strategy::Leveled => {
            let (multiplier, trigger, levels, base) = settings::LEVELED;
            format!(
                "Leveled(LeveledCompactionOptions {{ level_size_multiplier: {multiplier}, \
                 level0_file_num_compaction_trigger: {trigger}, max_levels: {levels}, \
                 base_level_size_mb: {base} }})"
            )
        }
    }
}

/// `&WriteOptions::new(SyncMode::Fsync)`.
fn write_options(sync: SyncMode) -> String {
    let mode = match sync {
        SyncMode::Buffered => "Buffered",
        SyncMode::Os => "Os",
        SyncMode::Fsync => "Fsync",
    };
    format!("&WriteOptions::new(SyncMode::{mode})")
}

/// Whether a batch holds a merge operand (it is written with `write_batch_ops`).
fn merges(records: &[BatchOp]) -> bool {
    records.iter().any(|r| matches!(r, BatchOp::Merge(..)))
}

/// A batch's records as `WriteBatchRecord`s, or `WriteBatchOp`s if it merges.
fn records(records: &[BatchOp]) -> String {
    let kind = if merges(records) {
        "WriteBatchOp"
    } else {
        "WriteBatchRecord"
    };
    let shown: Vec<String> = records
        .iter()
        .map(|r| match r {
            BatchOp::Put(k, v) => format!("{kind}::Put({}, {})", slice(k), slice(v)),
            BatchOp::Del(k) => format!("{kind}::Del({})", slice(k)),
            BatchOp::Merge(k, v) => format!("{kind}::Merge({}, {})", slice(k), slice(v)),
        })
        .collect();
    format!("&[{}]", shown.join(", "))
}

/// The `HoldFs` of `hold_fs.rs` without its file comments, indented into a test's body.
fn hold_fs_code() -> String {
    include_str!("hold_fs.rs")
        .lines()
        .skip_while(|l| l.starts_with("//"))
        .skip_while(|l| l.is_empty())
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}

/// The refusal as the engine's `TimeTravelError`, in Rust.
fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::BelowWatermark { ts, watermark } => {
            format!("TimeTravelError::BelowWatermark {{ ts: {ts}, watermark: {watermark} }}")
        }
        Refusal::AboveLatestCommit { ts, latest } => {
            format!("TimeTravelError::AboveLatestCommit {{ ts: {ts}, latest: {latest} }}")
        }
    }
}

/// Whether the transaction that `case.ops[begin]` begins is used mutably (read, written,
/// committed) before it ends, so that its local needs `mut`.
fn txn_is_used(case: &Case, begin: usize, slot: Slot) -> bool {
    for op in &case.ops[begin + 1..] {
        if op.reopens() || *op == Op::Abort(slot) {
            return false;
        }
        if op.txn_slot() == Some(slot) {
            return true;
        }
    }
    false
}

/// The `#[test]` function `name` that runs `case` and asserts the model's answer to each read;
/// `doc` is its one-line doc.
pub fn rust_test(case: &Case, name: &str, doc: &str) -> String {
    let trace = model_trace(case);
    let has = |f: fn(&Op) -> bool| case.ops.iter().any(f);
    // What the assertions need: scans that list entries (a refused one lists none), and reads
    // that compare values or entries as text.
    let listed = |txn: bool| {
        case.ops.iter().zip(&trace).any(|(op, step)| {
            matches!(step.reply, Ok(Reply::Entries(_))) && matches!(op, Op::TxnScan(..)) == txn
        })
    };
    let scans = listed(false) || listed(true);
    let texts = trace
        .iter()
        .any(|step| matches!(step.reply, Ok(Reply::Value(_) | Reply::Entries(_))));
    let txns = has(|op| op.txn_slot().is_some());
    let refusals = trace
        .iter()
        .any(|step| matches!(step.reply, Ok(Reply::Refused(_))));
    let crashes =
        case.config.wal && has(|op| matches!(op, Op::CrashReopen | Op::PowerCut | Op::GroupCut(_)));
    let groups = case.config.wal && has(|op| matches!(op, Op::Group(_) | Op::GroupCut(_)));
    let merged = has(|op| matches!(op, Op::Merge(..)) || matches!(op, Op::Batch(r) if merges(r)));
    let mut out = String::new();
    let mut line = |text: &str| {
        let _ = writeln!(out, "{text}");
    };
    line(&format!("/// {doc}"));
    line("#[test]");
    line(&format!("fn {name}() {{"));
    if case.config.strategy != Strategy::None {
        line("    use crate::compact::*;");
    }
    if groups {
        line("    use crate::fs::{FileSystem, MemFs, ReadableFile, WritableFile};");
    } else {
        line("    use crate::fs::{FileSystem, MemFs};");
    }
    if scans {
        line("    use crate::iterators::StorageIterator;");
    }
    let mut storage = vec!["LsmStorageInner", "LsmStorageOptions"];
    if has(|op| {
        matches!(
            op,
            Op::PutOpt(..) | Op::DeleteOpt(..) | Op::BatchOpt(..) | Op::Group(_) | Op::GroupCut(_)
        )
    }) {
        storage.extend(["SyncMode", "WriteOptions"]);
    }
    if has(|op| matches!(op, Op::BatchOpt(..)) || matches!(op, Op::Batch(r) if !merges(r))) {
        storage.push("WriteBatchRecord");
    }
    if has(|op| matches!(op, Op::Batch(r) if merges(r))) {
        storage.push("WriteBatchOp");
    }
    storage.sort_unstable();
    line(&format!(
        "    use crate::lsm_storage::{{{}}};",
        storage.join(", ")
    ));
    let conflicts = trace
        .iter()
        .any(|step| matches!(step.reply, Ok(Reply::Conflict)));
    let mvcc: Vec<&str> = [
        (conflicts, "Conflict"),
        (txns, "Isolation"),
        (refusals, "TimeTravelError"),
    ]
    .iter()
    .filter_map(|(needed, name)| needed.then_some(*name))
    .collect();
    match mvcc.as_slice() {
        [] => {}
        [one] => line(&format!("    use crate::mvcc::{one};")),
        several => line(&format!("    use crate::mvcc::{{{}}};", several.join(", "))),
    }
    if has(|op| {
        matches!(
            op,
            Op::Scan(..) | Op::SnapScan(..) | Op::ScanAt(..) | Op::TxnScan(..) | Op::TravelScan(..)
        )
    }) {
        line("    use std::ops::Bound;");
    }
    if groups {
        line("    use anyhow::Result;");
        line("");
        line(
            "    // Holds a log append while other writers queue behind it (verify's hold_fs.rs).",
        );
        out.push_str(&hold_fs_code());
        let mut line = |text: &str| {
            let _ = writeln!(out, "{text}");
        };
        line("    let gate = std::sync::Arc::new(Gate::default());");
        line("    // Waits (bounded) until `n` writers are queued behind the held one.");
        line("    let wait_queued = |engine: &LsmStorageInner, n: usize| {");
        line("        let deadline = std::time::Instant::now() + Gate::PATIENCE;");
        line("        while engine.queued_writers() < n {");
        line("            assert!(std::time::Instant::now() < deadline, \"{n} writers did not queue\");");
        line("            std::thread::sleep(std::time::Duration::from_millis(1));");
        line("        }");
        line("    };");
    }
    let mut line = |text: &str| {
        let _ = writeln!(out, "{text}");
    };
    line("");
    line("    // The settings `cargo x verify` runs with, on an in-memory file system.");
    line("    let open = |fs: &MemFs| {");
    line("        let mut options = LsmStorageOptions::default_for_week1_test();");
    line(&format!(
        "        options.block_size = {};",
        settings::BLOCK_SIZE
    ));
    line(&format!(
        "        options.target_sst_size = {};",
        settings::TARGET_SST_SIZE
    ));
    line(&format!(
        "        options.write_stall_margin = {};",
        settings::WRITE_STALL_MARGIN
    ));
    if case.config.strategy != Strategy::None {
        line(&format!(
            "        options.compaction_options = CompactionOptions::{};",
            compaction_code(case.config.strategy)
        ));
    }
    if case.config.wal {
        line("        options.enable_wal = true;");
    }
    if txns {
        let isolation = match case.config.isolation {
            Isolation::Unvalidated => "Unvalidated",
            Isolation::Snapshot => "Snapshot",
            Isolation::Serializable => "Serializable",
        };
        line(&format!(
            "        options.isolation = Isolation::{isolation};"
        ));
    }
    if merged {
        line(&format!(
            "        options.merge_operator = Some(std::sync::Arc::new(crate::merge::AppendOperator::new({})));",
            lit(crate::model::MERGE_SEPARATOR)
        ));
    }
    if groups {
        line("        let gate = std::sync::Arc::clone(&gate);");
        line("        options.fs = std::sync::Arc::new(HoldFs { mem: fs.clone(), gate });");
    } else {
        line("        options.fs = std::sync::Arc::new(fs.clone());");
    }
    line(&format!(
        "        fs.create_dir_all(std::path::Path::new({:?})).unwrap();",
        settings::DIR
    ));
    line(&format!(
        "        LsmStorageInner::open({:?}, options).unwrap()",
        settings::DIR
    ));
    line("    };");
    if texts {
        line("    // Reads are compared as text, so that a failure reads well.");
        line("    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();");
    }
    // A scan's entries: one helper for the engine's and the snapshots' iterators, one for a
    // transaction's (a closure takes one type), each printed only if the case needs it.
    for (needed, name, iterator) in [
        (listed(false), "collect", "crate::lsm_iterator::LsmIterator"),
        (listed(true), "collect_txn", "crate::mvcc::TxnIterator"),
    ] {
        if !needed {
            continue;
        }
        line(&format!(
            "    let {name} = |mut iter: crate::lsm_iterator::FusedIterator<{iterator}>| {{"
        ));
        line("        let mut out = Vec::new();");
        line("        while iter.is_valid() {");
        line("            out.push((text(iter.key()), text(iter.value())));");
        line("            iter.next().unwrap();");
        line("        }");
        line("        out");
        line("    };");
    }
    if has(|op| matches!(op, Op::GetAt(..) | Op::ScanAt(..))) {
        line("    // `back` commits before the engine's latest, not below the oldest snapshot or");
        line("    // transaction held (their read timestamps, `held`), as verify resolves it.");
        line("    let back_ts = |engine: &LsmStorageInner, back: u64, held: &[u64]| {");
        line("        let latest = engine.latest_commit_ts();");
        line("        let watermark = held.iter().copied().min().unwrap_or(latest);");
        line("        latest.saturating_sub(back).max(watermark).min(latest)");
        line("    };");
    }
    if scans {
        line("    let pairs = |entries: &[(&str, &str)]| -> Vec<(String, String)> {");
        line("        entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()");
        line("    };");
    }
    line(if crashes {
        "    let mut fs = MemFs::new();"
    } else {
        "    let fs = MemFs::new();"
    });
    line("    let mut engine = open(&fs);");
    // The slots that hold a snapshot or a transaction: each is a local `s<slot>` or `t<slot>`
    // borrowing `engine`, dropped before the engine is (a transaction's drop aborts it).
    let mut held = [false; SLOTS];
    let mut open_txns = [false; TXN_SLOTS];
    let drop_snapshots = |line: &mut dyn FnMut(&str), held: &mut [bool; SLOTS]| {
        for (slot, h) in held.iter_mut().enumerate() {
            if std::mem::take(h) {
                line(&format!("    drop(s{slot});"));
            }
        }
    };
    let drop_txns = |line: &mut dyn FnMut(&str), open: &mut [bool; TXN_SLOTS]| {
        for (slot, o) in open.iter_mut().enumerate() {
            if std::mem::take(o) {
                line(&format!("    drop(t{slot}); // aborts it"));
            }
        }
    };
    for (i, (op, step)) in case.ops.iter().zip(&trace).enumerate() {
        // The assertion's message: a string literal whose `{}` shows the engine's dump.
        let what = format!("{:?}", format!("op #{i} `{op}`\n{{}}"));
        let as_of = step
            .read_ts
            .map_or(String::new(), |ts| format!(" (as of ts {ts})"));
        line(&format!("    // #{i}: {op}{as_of}"));
        // A read at an older timestamp resolves it from the engine's own latest commit, as
        // verify did: an engine whose latest commit is wrong reads where verify saw it read.
        let held_ts: Vec<String> = (0..SLOTS)
            .filter(|&s| held[s])
            .map(|s| format!("s{s}.read_ts()"))
            .chain(
                (0..TXN_SLOTS)
                    .filter(|&t| open_txns[t])
                    .map(|t| format!("t{t}.read_ts()")),
            )
            .collect();
        let ts = match op {
            Op::GetAt(back, _) | Op::ScanAt(back, ..) => {
                format!("back_ts(&engine, {back}, &[{}])", held_ts.join(", "))
            }
            Op::TravelGet(offset, _) | Op::TravelScan(offset, ..) => {
                format!("engine.latest_commit_ts().saturating_add_signed({offset})")
            }
            _ => String::new(),
        };
        let get = |call: String, want: &Option<Vec<u8>>| {
            let want = match want {
                Some(v) => format!("Some({}.to_string())", text(v)),
                None => "None".to_string(),
            };
            format!(
                "    assert_eq!({call}.unwrap().map(|v| text(&v)), {want}, {what}, engine.dump());"
            )
        };
        let scan = |call: String, want: &[(Vec<u8>, Vec<u8>)]| {
            format!(
                "    assert_eq!(collect({call}.unwrap()), pairs(&{}), {what}, engine.dump());",
                entries(want)
            )
        };
        let reply = match &step.reply {
            Ok(reply) => reply,
            Err(e) => {
                line(&format!("    // (skipped: {e})"));
                continue;
            }
        };
        match (op, reply) {
            (Op::Put(k, v), _) => {
                line(&format!("    engine.put({}, {}).unwrap();", lit(k), lit(v)))
            }
            (Op::Delete(k), _) => line(&format!("    engine.delete({}).unwrap();", lit(k))),
            (Op::Get(k), Reply::Value(want)) => {
                line(&get(format!("engine.get({})", lit(k)), want));
            }
            (Op::Scan(l, u), Reply::Entries(want)) => line(&scan(
                format!("engine.scan({}, {})", bound(l), bound(u)),
                want,
            )),
            (Op::ScanPrefix(p), Reply::Entries(want)) => {
                line(&scan(format!("engine.scan_prefix({})", lit(p)), want))
            }
            (Op::Freeze, _) => line("    engine.freeze_memtable().unwrap();"),
            (Op::Flush, _) => line("    engine.force_flush_next_imm_memtable().unwrap();"),
            (Op::FullCompaction, _) => line("    engine.force_full_compaction().unwrap();"),
            (Op::TriggerCompaction, _) => line("    engine.trigger_compaction().unwrap();"),
            (Op::CloseReopen, _) => {
                drop_txns(&mut line, &mut open_txns);
                drop_snapshots(&mut line, &mut held);
                if case.config.wal {
                    line("    engine.sync().unwrap(); // close: the logs hold every write");
                } else {
                    line("    // close: without a log, flush every memtable");
                    line("    if !engine.snapshot().memtable.is_empty() {");
                    line("        engine.freeze_memtable().unwrap();");
                    line("    }");
                    line("    while !engine.snapshot().imm_memtables.is_empty() {");
                    line("        engine.force_flush_next_imm_memtable().unwrap();");
                    line("    }");
                }
                line("    drop(engine);");
                line("    engine = open(&fs);");
            }
            (Op::PowerCut | Op::ProcessCrash, _) if !case.config.wal => {
                drop_txns(&mut line, &mut open_txns);
                drop_snapshots(&mut line, &mut held);
                line("    // (no log: verify skips the crash)");
            }
            (Op::PowerCut, _) => {
                drop_txns(&mut line, &mut open_txns);
                drop_snapshots(&mut line, &mut held);
                line("    fs = fs.crash_now(false); // a power cut: only what was synced survives");
                line("    drop(engine);");
                line("    engine = open(&fs);");
            }
            (Op::ProcessCrash, _) => {
                drop_txns(&mut line, &mut open_txns);
                drop_snapshots(&mut line, &mut held);
                line("    drop(engine); // a process crash: unclosed, what the logs buffer is lost");
                line("    engine = open(&fs);");
            }
            (Op::PutOpt(sync, k, v), _) => line(&format!(
                "    engine.put_opt({}, {}, {}).unwrap();",
                lit(k),
                lit(v),
                write_options(*sync)
            )),
            (Op::DeleteOpt(sync, k), _) => line(&format!(
                "    engine.delete_opt({}, {}).unwrap();",
                lit(k),
                write_options(*sync)
            )),
            (Op::BatchOpt(sync, batch), _) => line(&format!(
                "    engine.write_batch_opt({}, {}).unwrap();",
                records(batch),
                write_options(*sync)
            )),
            (Op::Merge(k, v), _) => {
                line(&format!("    engine.merge({}, {}).unwrap();", lit(k), lit(v)))
            }
            (Op::Group(writes), Reply::WhileHeld(want)) => {
                line("    std::thread::scope(|scope| {");
                line("        gate.arm(); // the first put waits at its log write");
                line("        let mut writers = Vec::new();");
                for (n, (sync, k, v)) in writes.iter().enumerate() {
                    line(&format!(
                        "        writers.push(scope.spawn(|| engine.put_opt({}, {}, {})));",
                        lit(k),
                        lit(v),
                        write_options(*sync)
                    ));
                    if n == 0 {
                        line("        assert!(gate.wait_held(), \"the first put did not reach its log write\");");
                    } else {
                        line(&format!("        wait_queued(&engine, {n});"));
                    }
                }
                line("        let seen = engine.latest_commit_ts(); // none of the group is visible yet");
                line("        gate.release();");
                line("        for writer in writers {");
                line("            writer.join().unwrap().unwrap();");
                line("        }");
                line(&format!(
                    "        assert_eq!(seen, {want}, {what}, engine.dump());"
                ));
                line("    });");
            }
            (Op::GroupCut(_), _) if !case.config.wal => {
                line("    // (no log: verify skips the group)");
            }
            (Op::GroupCut(writes), Reply::Acked(want)) => {
                line("    // An empty memtable, so that no freeze syncs the log in the middle.");
                line("    if !engine.snapshot().memtable.is_empty() {");
                line("        engine.freeze_memtable().unwrap();");
                line("    }");
                drop_txns(&mut line, &mut open_txns);
                drop_snapshots(&mut line, &mut held);
                line("    let (image, acked) = std::thread::scope(|scope| {");
                line("        gate.arm(); // the first put waits at its log write");
                line("        let mut writers = Vec::new();");
                for (n, (k, v)) in writes.iter().enumerate() {
                    line(&format!(
                        "        writers.push(scope.spawn(|| engine.put_opt({}, {}, {})));",
                        lit(k),
                        lit(v),
                        write_options(SyncMode::Fsync)
                    ));
                    if n == 0 {
                        line("        assert!(gate.wait_held(), \"the first put did not reach its log write\");");
                    } else {
                        line(&format!("        wait_queued(&engine, {n});"));
                    }
                }
                line("        // The first sync is the first put's own; the second, its followers' group's.");
                line("        gate.arm_sync(2);");
                line("        gate.release();");
                line("        assert!(gate.wait_held(), \"the followers' group did not sync\");");
                line("        let image = fs.crash_now(false); // a power cut while that sync waits");
                line("        gate.arm_sync(0);");
                line("        gate.release();");
                line("        let acked: Vec<bool> = writers.into_iter().map(|w| w.join().unwrap().is_ok()).collect();");
                line("        (image, acked)");
                line("    });");
                let want: Vec<String> = want.iter().map(bool::to_string).collect();
                let message = format!(
                    "{:?}",
                    format!(
                        "op #{i} `{op}`: only the first put may return Ok: the others' sync never \
                         happened\n{{}}"
                    )
                );
                line(&format!(
                    "    assert_eq!(acked, [{}], {message}, engine.dump());",
                    want.join(", ")
                ));
                line("    fs = image;");
                line("    drop(engine);");
                line("    engine = open(&fs);");
            }
            (Op::CrashReopen, _) if !case.config.wal => {
                drop_txns(&mut line, &mut open_txns);
                drop_snapshots(&mut line, &mut held);
                line("    // (no log: verify skips the crash)");
            }
            (Op::CrashReopen, _) => {
                drop_txns(&mut line, &mut open_txns);
                drop_snapshots(&mut line, &mut held);
                line("    engine.sync().unwrap();");
                line("    fs = fs.crash_now(false); // what survives the power cut");
                line("    drop(engine);");
                line("    engine = open(&fs);");
            }
            (Op::Batch(batch), _) if merges(batch) => line(&format!(
                "    engine.write_batch_ops({}).unwrap();",
                records(batch)
            )),
            (Op::Batch(batch), _) => line(&format!(
                "    engine.write_batch({}).unwrap();",
                records(batch)
            )),
            (Op::LatestTs, Reply::Ts(want)) => line(&format!(
                "    assert_eq!(engine.latest_commit_ts(), {want}, {what}, engine.dump());"
            )),
            (Op::Snapshot(s), _) => {
                held[usize::from(*s)] = true;
                line(&format!("    let s{s} = engine.new_snapshot();"));
            }
            (Op::DropSnapshot(s), _) => {
                held[usize::from(*s)] = false;
                line(&format!("    drop(s{s});"));
            }
            (Op::SnapGet(s, k), Reply::Value(want)) => {
                line(&get(format!("s{s}.get({})", lit(k)), want));
            }
            (Op::SnapScan(s, l, u), Reply::Entries(want)) => line(&scan(
                format!("s{s}.scan({}, {})", bound(l), bound(u)),
                want,
            )),
            (Op::GetAt(_, k), Reply::Value(want)) => {
                line(&get(format!("engine.get_with_ts({}, {ts})", lit(k)), want));
            }
            (Op::ScanAt(_, l, u), Reply::Entries(want)) => line(&scan(
                format!("engine.scan_with_ts({}, {}, {ts})", bound(l), bound(u)),
                want,
            )),
            (Op::Begin(t), _) => {
                open_txns[usize::from(*t)] = true;
                let mutable = if txn_is_used(case, i, *t) { "mut " } else { "" };
                line(&format!("    let {mutable}t{t} = engine.new_txn();"));
            }
            (Op::TxnGet(t, k), Reply::Value(want)) => {
                line(&get(format!("t{t}.get({})", lit(k)), want));
            }
            (Op::TxnPut(t, k, v), _) => {
                line(&format!("    t{t}.put({}, {}).unwrap();", lit(k), lit(v)));
            }
            (Op::TxnDelete(t, k), _) => line(&format!("    t{t}.delete({}).unwrap();", lit(k))),
            (Op::TxnScan(t, l, u), Reply::Entries(want)) => {
                let call = format!("t{t}.scan({}, {})", bound(l), bound(u));
                line(&scan(call, want).replacen("collect(", "collect_txn(", 1));
            }
            (Op::Commit(t), Reply::Committed(ts)) => {
                open_txns[usize::from(*t)] = false;
                let want = ts.map_or("None".to_string(), |ts| format!("Some({ts})"));
                line(&format!(
                    "    assert_eq!(t{t}.commit().map_err(|e| format!(\"{{e:#}}\")), Ok({want}), {what}, engine.dump());"
                ));
                line(&format!("    drop(t{t});"));
            }
            (Op::Commit(t), Reply::Conflict) => {
                open_txns[usize::from(*t)] = false;
                let message = format!(
                    "{:?}",
                    format!("op #{i} `{op}`: a Conflict expected, not {{committed:?}}\n{{}}")
                );
                line(&format!("    let committed = t{t}.commit();"));
                line(&format!(
                    "    assert!(committed.as_ref().is_err_and(|e| e.downcast_ref::<Conflict>().is_some()), {message}, engine.dump());"
                ));
                line(&format!("    drop(t{t});"));
            }
            (Op::Abort(t), _) => {
                open_txns[usize::from(*t)] = false;
                line(&format!("    drop(t{t}); // aborts it"));
            }
            (Op::TravelGet(_, k), Reply::Value(want)) => {
                line(&get(format!("engine.get_at({}, {ts})", lit(k)), want));
            }
            (Op::TravelScan(_, l, u), Reply::Entries(want)) => line(&scan(
                format!("engine.scan_at({}, {}, {ts})", bound(l), bound(u)),
                want,
            )),
            (Op::TravelGet(_, k), Reply::Refused(r)) => line(&format!(
                "    assert_eq!(engine.get_at({}, {ts}).err().and_then(|e| e.downcast_ref::<TimeTravelError>().copied()), Some({}), {what}, engine.dump());",
                lit(k),
                refusal(r)
            )),
            (Op::TravelScan(_, l, u), Reply::Refused(r)) => line(&format!(
                "    assert_eq!(engine.scan_at({}, {}, {ts}).err().and_then(|e| e.downcast_ref::<TimeTravelError>().copied()), Some({}), {what}, engine.dump());",
                bound(l),
                bound(u),
                refusal(r)
            )),
            (op, reply) => unreachable!("the model replied {reply:?} to {op}"),
        }
    }
    let reopens = case.ops.iter().any(|op| {
        matches!(op, Op::CloseReopen)
            || (case.config.wal
                && matches!(
                    op,
                    Op::CrashReopen | Op::PowerCut | Op::ProcessCrash | Op::GroupCut(_)
                ))
    });
    drop_txns(&mut line, &mut open_txns);
    drop_snapshots(&mut line, &mut held);
    if !reopens {
        // `engine` is reassigned only by a reopen; without one, `mut` would be a warning.
        out = out.replace(
            "    let mut engine = open(&fs);",
            "    let engine = open(&fs);",
        );
    }
    out.push_str("    drop(engine);\n}\n");
    out
}

#[cfg(test)]
mod tests;
