// SPDX-License-Identifier: Apache-2.0
//! A failing case as a `#[test]` to paste into the starter: self-contained, with `crate::` paths,
//! the engine's settings of [`crate::engines::settings`], and one assertion per read, whose
//! expected value is the model's.

use std::fmt::Write;
use std::ops::Bound;

use crate::engines::{settings, Reply};
use crate::ops::{BatchOp, Case, Op, Strategy};
use crate::run::model_replies;

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

/// The `#[test]` function `name` that runs `case` and asserts the model's answer to each read;
/// `doc` is its one-line doc.
pub fn rust_test(case: &Case, name: &str, doc: &str) -> String {
    let replies = model_replies(&case.ops);
    let has = |f: fn(&Op) -> bool| case.ops.iter().any(f);
    let scans = has(|op| matches!(op, Op::Scan(..) | Op::ScanPrefix(_)));
    let crashes = case.config.wal && has(|op| matches!(op, Op::CrashReopen));
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
    line("    use crate::fs::{FileSystem, MemFs};");
    if scans {
        line("    use crate::iterators::StorageIterator;");
    }
    if has(|op| matches!(op, Op::Batch(_))) {
        line("    use crate::lsm_storage::WriteBatchRecord;");
    }
    line("    use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions};");
    if has(|op| matches!(op, Op::Scan(..))) {
        line("    use std::ops::Bound;");
    }
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
    line("        options.fs = std::sync::Arc::new(fs.clone());");
    line(&format!(
        "        fs.create_dir_all(std::path::Path::new({:?})).unwrap();",
        settings::DIR
    ));
    line(&format!(
        "        LsmStorageInner::open({:?}, options).unwrap()",
        settings::DIR
    ));
    line("    };");
    if case.ops.iter().any(Op::is_read) {
        line("    // Reads are compared as text, so that a failure reads well.");
        line("    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();");
    }
    if scans {
        line("    let collect = |mut iter: crate::lsm_iterator::FusedIterator<crate::lsm_iterator::LsmIterator>| {");
        line("        let mut out = Vec::new();");
        line("        while iter.is_valid() {");
        line("            out.push((text(iter.key()), text(iter.value())));");
        line("            iter.next().unwrap();");
        line("        }");
        line("        out");
        line("    };");
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
    for (i, (op, reply)) in case.ops.iter().zip(&replies).enumerate() {
        // The assertion's message: a string literal whose `{}` shows the engine's dump.
        let what = format!("{:?}", format!("op #{i} `{op}`\n{{}}"));
        line(&format!("    // #{i}: {op}"));
        match (op, reply) {
            (Op::Put(k, v), _) => line(&format!(
                "    engine.put({}, {}).unwrap();",
                lit(k),
                lit(v)
            )),
            (Op::Delete(k), _) => line(&format!("    engine.delete({}).unwrap();", lit(k))),
            (Op::Get(k), Reply::Value(want)) => {
                let want = match want {
                    Some(v) => format!("Some({}.to_string())", text(v)),
                    None => "None".to_string(),
                };
                line(&format!(
                    "    assert_eq!(engine.get({}).unwrap().map(|v| text(&v)), {want}, {what}, engine.dump());",
                    lit(k)
                ));
            }
            (Op::Scan(l, u), Reply::Entries(want)) => line(&format!(
                "    assert_eq!(collect(engine.scan({}, {}).unwrap()), pairs(&{}), {what}, engine.dump());",
                bound(l),
                bound(u),
                entries(want)
            )),
            (Op::ScanPrefix(p), Reply::Entries(want)) => line(&format!(
                "    assert_eq!(collect(engine.scan_prefix({}).unwrap()), pairs(&{}), {what}, engine.dump());",
                lit(p),
                entries(want)
            )),
            (Op::Freeze, _) => line("    engine.freeze_memtable().unwrap();"),
            (Op::Flush, _) => line("    engine.force_flush_next_imm_memtable().unwrap();"),
            (Op::FullCompaction, _) => line("    engine.force_full_compaction().unwrap();"),
            (Op::TriggerCompaction, _) => line("    engine.trigger_compaction().unwrap();"),
            (Op::CloseReopen, _) => {
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
            (Op::CrashReopen, _) if !case.config.wal => {
                line("    // (no log: verify skips the crash)");
            }
            (Op::CrashReopen, _) => {
                line("    engine.sync().unwrap();");
                line("    fs = fs.crash_now(false); // what survives the power cut");
                line("    drop(engine);");
                line("    engine = open(&fs);");
            }
            (Op::Batch(records), _) => {
                let shown: Vec<String> = records
                    .iter()
                    .map(|r| match r {
                        BatchOp::Put(k, v) => {
                            format!("WriteBatchRecord::Put({}, {})", slice(k), slice(v))
                        }
                        BatchOp::Del(k) => format!("WriteBatchRecord::Del({})", slice(k)),
                    })
                    .collect();
                line(&format!(
                    "    engine.write_batch(&[{}]).unwrap();",
                    shown.join(", ")
                ));
            }
            (op, reply) => unreachable!("the model replied {reply:?} to {op}"),
        }
    }
    let reopens = case
        .ops
        .iter()
        .any(|op| matches!(op, Op::CloseReopen) || (crashes && matches!(op, Op::CrashReopen)));
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
mod tests {
    use super::*;
    use crate::ops::{Config, Strategy};

    /// The test has one assertion per read, with the model's answer, and reopens where the case
    /// does.
    #[test]
    fn the_test_asserts_the_model() {
        let case = Case {
            config: Config {
                strategy: Strategy::Simple,
                wal: true,
            },
            ops: vec![
                Op::Put(b"k01".to_vec(), b"v1".to_vec()),
                Op::Delete(b"k02".to_vec()),
                Op::CrashReopen,
                Op::Get(b"k01".to_vec()),
                Op::Scan(Bound::Excluded(b"k00".to_vec()), Bound::Unbounded),
            ],
        };
        let test = rust_test(&case, "verify_case_7", "Found by verify.");
        assert!(test.starts_with("/// Found by verify.\n#[test]\nfn verify_case_7() {\n"));
        assert!(test.contains("CompactionOptions::Simple(SimpleLeveledCompactionOptions {"));
        assert!(test.contains("options.enable_wal = true;"));
        assert!(test.contains("    fs = fs.crash_now(false);"));
        assert!(test.contains(
            "assert_eq!(engine.get(b\"k01\").unwrap().map(|v| text(&v)), Some(\"v1\".to_string()),"
        ));
        assert!(test.contains(
            "collect(engine.scan(Bound::Excluded(&b\"k00\"[..]), Bound::Unbounded).unwrap()), pairs(&[(\"k01\", \"v1\")])"
        ));
        assert!(test.contains("let mut engine = open(&fs);"));
    }

    /// The strategy's code is exactly how the engine's own `Debug` prints the options verify
    /// opens it with, so the test runs the engine the way verify did.
    #[cfg(feature = "ref")]
    #[test]
    fn strategy_code_matches_the_engine_options() {
        for strategy in Strategy::ALL {
            let options = crate::engines::mini_lsm::compaction(Config {
                strategy,
                wal: false,
            });
            assert_eq!(format!("{options:?}"), compaction_code(strategy));
        }
    }
}
