// SPDX-License-Identifier: Apache-2.0
//! The text form of a case: what `verify` prints and what the regression files keep.
//!
//! ```text
//! config strategy=simple wal=on isolation=serializable   (no isolation=: unvalidated)
//! put k03 v17
//! delete k03
//! get k03
//! scan >=k01 <k05          lower bound: >=key, >key or *; upper bound: <=key, <key or *
//! scan_prefix k0           "" is the empty prefix
//! freeze                   force_freeze_memtable
//! flush                    force_flush_next_imm_memtable
//! full_compaction          force_full_compaction
//! trigger_compaction       one step of the configured strategy
//! close_reopen             close (flush, or sync the logs), drop, open again on the same files
//! crash_reopen             sync, cut the power (MemFs::crash_now), open what survived
//! batch put:k01=v3 del:k02 write_batch
//! latest_ts                latest_commit_ts (week 3 day 3)
//! snapshot s1              new_snapshot, kept in slot s1 (week 3 day 4; slots s0 to s2)
//! snap_get s1 k03          get through the snapshot in s1
//! snap_scan s1 >=k01 *     scan through it
//! drop_snapshot s1         drop it
//! get_at -2 k03            get_with_ts two commits before the latest (not below the watermark)
//! scan_at -2 >k01 <=k09    scan_with_ts likewise
//! begin t1                 new_txn, kept in slot t1 (week 3 day 5; slots t0 to t2)
//! txn_get t1 k03           get in the transaction in t1
//! txn_put t1 k03 v5        put in it
//! txn_delete t1 k03        delete in it
//! txn_scan t1 >=k01 *      scan in it
//! commit t1                commit it (the slot is free after, whether it commits or not)
//! abort t1                 drop it without committing
//! travel_get -2 k03        get_at two commits before the latest (week 3 day 7; may be refused)
//! travel_scan +1 * *       scan_at one above the latest (refused)
//! put_opt fsync k03 v5     put_opt, synced before it returns (week 4 day 2; buffered, os, fsync)
//! delete_opt os k03        delete_opt, written to the OS before it returns
//! batch_opt buffered put:k01=v3 del:k02    write_batch_opt
//! power_cut                cut the power without a sync (MemFs::crash_now), open what survived
//! process_crash            drop the engine unclosed, as a killed process, and open the same files
//! group os:k01=v3 fsync:k02=v4   puts committed as one group: the first held at its log write
//!                          until the others queue behind it; reads the latest commit meanwhile
//! group_cut k01=v3 k02=v4 k03=v5   puts with fsync: the first held at its log write until the
//!                          others queue, then the others' group held at its sync: power cut
//! merge k03 v7             merge an operand (week 4 day 6; the append operator, joined by `,`)
//! batch put:k01=v3 merge:k01=v4   a batch with operands: write_batch_ops
//! ```
//!
//! Bytes other than ASCII letters, digits and `_-.,` are written `\xNN`.

use std::fmt;
use std::ops::Bound;

use anyhow::{bail, Context, Result};

use crate::ops::{
    BatchOp, Case, Config, Isolation, Op, Slot, Strategy, SyncMode, SLOTS, TXN_SLOTS,
};

impl Case {
    /// The case as text: the config line, then one operation a line.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.config);
        for op in &self.ops {
            out.push_str(&format!("{op}\n"));
        }
        out
    }

    /// Parses [`Case::to_text`]'s form; blank lines and `#` comments are skipped.
    ///
    /// # Errors
    /// On a malformed line, with its line number.
    pub fn parse(text: &str) -> Result<Self> {
        let mut config = None;
        let mut ops = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = if line.starts_with("config ") {
                parse_config(line).map(|c| config = Some(c))
            } else {
                parse_op(line).map(|op| ops.push(op))
            };
            parsed.with_context(|| format!("line {}: `{line}`", i + 1))?;
        }
        let config = config.context("no `config ...` line")?;
        Ok(Self { config, ops })
    }
}

/// Bytes as a token: letters, digits and `_-.,` as they are, anything else `\xNN`; `""` if
/// empty.
pub fn show(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "\"\"".to_string();
    }
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"_-.,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The inverse of [`show`].
fn unshow(token: &str) -> Result<Vec<u8>> {
    if token == "\"\"" {
        return Ok(Vec::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = token
                .get(i + 2..i + 4)
                .filter(|_| bytes.get(i + 1) == Some(&b'x'))
                .with_context(|| format!("bad escape in `{token}`: use \\xNN"))?;
            out.push(u8::from_str_radix(hex, 16).with_context(|| format!("bad escape `{hex}`"))?);
            i += 4;
        } else if bytes[i].is_ascii_alphanumeric() || b"_-.,".contains(&bytes[i]) {
            out.push(bytes[i]);
            i += 1;
        } else {
            bail!(
                "`{token}`: write `{}` as \\x{:02x}",
                bytes[i] as char,
                bytes[i]
            );
        }
    }
    Ok(out)
}

fn show_lower(bound: &Bound<Vec<u8>>) -> String {
    match bound {
        Bound::Included(k) => format!(">={}", show(k)),
        Bound::Excluded(k) => format!(">{}", show(k)),
        Bound::Unbounded => "*".to_string(),
    }
}

fn show_upper(bound: &Bound<Vec<u8>>) -> String {
    match bound {
        Bound::Included(k) => format!("<={}", show(k)),
        Bound::Excluded(k) => format!("<{}", show(k)),
        Bound::Unbounded => "*".to_string(),
    }
}

fn parse_bound(token: &str, inclusive: &str, exclusive: &str) -> Result<Bound<Vec<u8>>> {
    if token == "*" {
        Ok(Bound::Unbounded)
    } else if let Some(key) = token.strip_prefix(inclusive) {
        Ok(Bound::Included(unshow(key)?))
    } else if let Some(key) = token.strip_prefix(exclusive) {
        Ok(Bound::Excluded(unshow(key)?))
    } else {
        bail!("a bound is `{inclusive}key`, `{exclusive}key` or `*`, not `{token}`")
    }
}

/// A scan's lower and upper bounds.
pub type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// `s1`.
fn parse_slot(token: &str) -> Result<Slot> {
    token
        .strip_prefix('s')
        .and_then(|n| n.parse::<Slot>().ok())
        .filter(|&n| usize::from(n) < SLOTS)
        .with_context(|| {
            format!(
                "`{token}` is not a snapshot slot: s0 to s{}",
                SLOTS.saturating_sub(1)
            )
        })
}

/// `t1`.
fn parse_txn_slot(token: &str) -> Result<Slot> {
    token
        .strip_prefix('t')
        .and_then(|n| n.parse::<Slot>().ok())
        .filter(|&n| usize::from(n) < TXN_SLOTS)
        .with_context(|| {
            format!(
                "`{token}` is not a transaction slot: t0 to t{}",
                TXN_SLOTS.saturating_sub(1)
            )
        })
}

/// `-2` or `+1`: commits from the latest.
fn parse_offset(token: &str) -> Result<i8> {
    let number = match token.as_bytes().first() {
        Some(b'+') => &token[1..],
        Some(b'-') => token,
        _ => "",
    };
    number.parse().ok().with_context(|| {
        format!("`{token}` is not an offset from the latest commit, like -2 or +1")
    })
}

/// `-2`: commits back from the latest.
fn parse_back(token: &str) -> Result<u8> {
    token
        .strip_prefix('-')
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("`{token}` is not a number of commits back, like -2"))
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wal = if self.wal { "on" } else { "off" };
        write!(f, "config strategy={} wal={wal}", self.strategy.name())?;
        if self.isolation != Isolation::Unvalidated {
            write!(f, " isolation={}", self.isolation.name())?;
        }
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put(k, v) => write!(f, "put {} {}", show(k), show(v)),
            Op::Delete(k) => write!(f, "delete {}", show(k)),
            Op::Get(k) => write!(f, "get {}", show(k)),
            Op::Scan(l, u) => write!(f, "scan {} {}", show_lower(l), show_upper(u)),
            Op::ScanPrefix(p) => write!(f, "scan_prefix {}", show(p)),
            Op::Freeze => write!(f, "freeze"),
            Op::Flush => write!(f, "flush"),
            Op::FullCompaction => write!(f, "full_compaction"),
            Op::TriggerCompaction => write!(f, "trigger_compaction"),
            Op::CloseReopen => write!(f, "close_reopen"),
            Op::CrashReopen => write!(f, "crash_reopen"),
            Op::Batch(records) => {
                write!(f, "batch")?;
                write_records(f, records)
            }
            Op::BatchOpt(sync, records) => {
                write!(f, "batch_opt {}", sync.name())?;
                write_records(f, records)
            }
            Op::PutOpt(sync, k, v) => write!(f, "put_opt {} {} {}", sync.name(), show(k), show(v)),
            Op::DeleteOpt(sync, k) => write!(f, "delete_opt {} {}", sync.name(), show(k)),
            Op::PowerCut => write!(f, "power_cut"),
            Op::ProcessCrash => write!(f, "process_crash"),
            Op::Group(writes) => {
                write!(f, "group")?;
                for (sync, k, v) in writes {
                    write!(f, " {}:{}={}", sync.name(), show(k), show(v))?;
                }
                Ok(())
            }
            Op::Merge(k, v) => write!(f, "merge {} {}", show(k), show(v)),
            Op::GroupCut(writes) => {
                write!(f, "group_cut")?;
                for (k, v) in writes {
                    write!(f, " {}={}", show(k), show(v))?;
                }
                Ok(())
            }
            Op::LatestTs => write!(f, "latest_ts"),
            Op::Snapshot(s) => write!(f, "snapshot s{s}"),
            Op::SnapGet(s, k) => write!(f, "snap_get s{s} {}", show(k)),
            Op::SnapScan(s, l, u) => {
                write!(f, "snap_scan s{s} {} {}", show_lower(l), show_upper(u))
            }
            Op::DropSnapshot(s) => write!(f, "drop_snapshot s{s}"),
            Op::GetAt(back, k) => write!(f, "get_at -{back} {}", show(k)),
            Op::ScanAt(back, l, u) => {
                write!(f, "scan_at -{back} {} {}", show_lower(l), show_upper(u))
            }
            Op::Begin(t) => write!(f, "begin t{t}"),
            Op::TxnGet(t, k) => write!(f, "txn_get t{t} {}", show(k)),
            Op::TxnPut(t, k, v) => write!(f, "txn_put t{t} {} {}", show(k), show(v)),
            Op::TxnDelete(t, k) => write!(f, "txn_delete t{t} {}", show(k)),
            Op::TxnScan(t, l, u) => {
                write!(f, "txn_scan t{t} {} {}", show_lower(l), show_upper(u))
            }
            Op::Commit(t) => write!(f, "commit t{t}"),
            Op::Abort(t) => write!(f, "abort t{t}"),
            Op::TravelGet(offset, k) => write!(f, "travel_get {offset:+} {}", show(k)),
            Op::TravelScan(offset, l, u) => write!(
                f,
                "travel_scan {offset:+} {} {}",
                show_lower(l),
                show_upper(u)
            ),
        }
    }
}

/// A batch's records, each after a space: `put:k=v`, `del:k`, `merge:k=v`.
fn write_records(f: &mut fmt::Formatter<'_>, records: &[BatchOp]) -> fmt::Result {
    for record in records {
        match record {
            BatchOp::Put(k, v) => write!(f, " put:{}={}", show(k), show(v))?,
            BatchOp::Del(k) => write!(f, " del:{}", show(k))?,
            BatchOp::Merge(k, v) => write!(f, " merge:{}={}", show(k), show(v))?,
        }
    }
    Ok(())
}

/// The records of a batch line, from its words.
fn parse_records(words: &[&str]) -> Result<Vec<BatchOp>> {
    let mut records = Vec::new();
    for word in words {
        let pair = |rest: &str, what: &str| -> Result<(Vec<u8>, Vec<u8>)> {
            let (k, v) = rest
                .split_once('=')
                .with_context(|| format!("a batch {what} is {what}:key=value"))?;
            Ok((unshow(k)?, unshow(v)?))
        };
        if let Some(rest) = word.strip_prefix("put:") {
            let (k, v) = pair(rest, "put")?;
            records.push(BatchOp::Put(k, v));
        } else if let Some(rest) = word.strip_prefix("merge:") {
            let (k, v) = pair(rest, "merge")?;
            records.push(BatchOp::Merge(k, v));
        } else if let Some(k) = word.strip_prefix("del:") {
            records.push(BatchOp::Del(unshow(k)?));
        } else {
            bail!("a batch record is put:key=value, del:key or merge:key=value, not `{word}`");
        }
    }
    Ok(records)
}

/// `buffered`, `os` or `fsync`.
fn parse_sync(token: &str) -> Result<SyncMode> {
    SyncMode::ALL
        .into_iter()
        .find(|s| s.name() == token)
        .with_context(|| format!("`{token}` is not a sync mode: buffered, os or fsync"))
}

fn parse_config(line: &str) -> Result<Config> {
    let mut config = Config::new(Strategy::None, false);
    for word in line.split_whitespace().skip(1) {
        match word.split_once('=') {
            Some(("strategy", name)) => {
                config.strategy = *Strategy::ALL
                    .iter()
                    .find(|s| s.name() == name)
                    .with_context(|| {
                        format!("unknown strategy `{name}`: none, simple, tiered or leveled")
                    })?;
            }
            Some(("wal", "on")) => config.wal = true,
            Some(("wal", "off")) => config.wal = false,
            Some(("isolation", name)) => {
                config.isolation = *Isolation::ALL
                    .iter()
                    .find(|i| i.name() == name)
                    .with_context(|| {
                        format!("unknown isolation `{name}`: unvalidated, snapshot or serializable")
                    })?;
            }
            _ => bail!("expected strategy=..., wal=on|off or isolation=..., not `{word}`"),
        }
    }
    Ok(config)
}

/// Parses one operation line.
///
/// # Errors
/// If the line is not an operation.
pub fn parse_op(line: &str) -> Result<Op> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let word = |i: usize| -> Result<&str> {
        words
            .get(i)
            .copied()
            .with_context(|| format!("`{}` needs more arguments", words[0]))
    };
    let arg = |i: usize| -> Result<Vec<u8>> { unshow(word(i)?) };
    let done = |n: usize, op: Op| -> Result<Op> {
        if words.len() != n {
            bail!("`{}` takes {} argument(s)", words[0], n - 1);
        }
        Ok(op)
    };
    // A lower and an upper bound, at `words[i]` and `words[i + 1]`, ending the line.
    let bounds = |i: usize| -> Result<Bounds> {
        if words.len() != i + 2 {
            bail!("`{}` ends with a lower and an upper bound", words[0]);
        }
        Ok((
            parse_bound(words[i], ">=", ">")?,
            parse_bound(words[i + 1], "<=", "<")?,
        ))
    };
    match words.first().copied() {
        Some("put") => done(3, Op::Put(arg(1)?, arg(2)?)),
        Some("delete") => done(2, Op::Delete(arg(1)?)),
        Some("get") => done(2, Op::Get(arg(1)?)),
        Some("scan") => bounds(1).map(|(l, u)| Op::Scan(l, u)),
        Some("scan_prefix") => done(2, Op::ScanPrefix(arg(1)?)),
        Some("freeze") => done(1, Op::Freeze),
        Some("flush") => done(1, Op::Flush),
        Some("full_compaction") => done(1, Op::FullCompaction),
        Some("trigger_compaction") => done(1, Op::TriggerCompaction),
        Some("close_reopen") => done(1, Op::CloseReopen),
        Some("crash_reopen") => done(1, Op::CrashReopen),
        Some("batch") => Ok(Op::Batch(parse_records(&words[1..])?)),
        Some("batch_opt") => {
            let sync = parse_sync(word(1)?)?;
            let records = parse_records(&words[2..])?;
            if records.iter().any(|r| matches!(r, BatchOp::Merge(..))) {
                bail!("write_batch_opt takes puts and deletes, not merges");
            }
            Ok(Op::BatchOpt(sync, records))
        }
        Some("put_opt") => done(4, Op::PutOpt(parse_sync(word(1)?)?, arg(2)?, arg(3)?)),
        Some("delete_opt") => done(3, Op::DeleteOpt(parse_sync(word(1)?)?, arg(2)?)),
        Some("power_cut") => done(1, Op::PowerCut),
        Some("process_crash") => done(1, Op::ProcessCrash),
        Some("group") => {
            let mut writes = Vec::new();
            for word in &words[1..] {
                let (sync, rest) = word
                    .split_once(':')
                    .context("a group's write is sync:key=value, like fsync:k01=v3")?;
                let (k, v) = rest
                    .split_once('=')
                    .context("a group's write is sync:key=value, like fsync:k01=v3")?;
                writes.push((parse_sync(sync)?, unshow(k)?, unshow(v)?));
            }
            if writes.first().is_none_or(|w| w.0 == SyncMode::Buffered) {
                bail!("a group starts with a write that reaches the log (os or fsync), to hold");
            }
            Ok(Op::Group(writes))
        }
        Some("merge") => done(3, Op::Merge(arg(1)?, arg(2)?)),
        Some("group_cut") => {
            let mut writes = Vec::new();
            for word in &words[1..] {
                let (k, v) = word
                    .split_once('=')
                    .context("a group_cut's write is key=value, like k01=v3")?;
                writes.push((unshow(k)?, unshow(v)?));
            }
            if writes.len() < 3 {
                bail!("a group_cut has a leader and at least two writes queued behind it");
            }
            Ok(Op::GroupCut(writes))
        }
        Some("latest_ts") => done(1, Op::LatestTs),
        Some("snapshot") => done(2, Op::Snapshot(parse_slot(word(1)?)?)),
        Some("snap_get") => done(3, Op::SnapGet(parse_slot(word(1)?)?, arg(2)?)),
        Some("snap_scan") => {
            let slot = parse_slot(word(1)?)?;
            bounds(2).map(|(l, u)| Op::SnapScan(slot, l, u))
        }
        Some("drop_snapshot") => done(2, Op::DropSnapshot(parse_slot(word(1)?)?)),
        Some("get_at") => done(3, Op::GetAt(parse_back(word(1)?)?, arg(2)?)),
        Some("scan_at") => {
            let back = parse_back(word(1)?)?;
            bounds(2).map(|(l, u)| Op::ScanAt(back, l, u))
        }
        Some("begin") => done(2, Op::Begin(parse_txn_slot(word(1)?)?)),
        Some("txn_get") => done(3, Op::TxnGet(parse_txn_slot(word(1)?)?, arg(2)?)),
        Some("txn_put") => done(4, Op::TxnPut(parse_txn_slot(word(1)?)?, arg(2)?, arg(3)?)),
        Some("txn_delete") => done(3, Op::TxnDelete(parse_txn_slot(word(1)?)?, arg(2)?)),
        Some("txn_scan") => {
            let slot = parse_txn_slot(word(1)?)?;
            bounds(2).map(|(l, u)| Op::TxnScan(slot, l, u))
        }
        Some("commit") => done(2, Op::Commit(parse_txn_slot(word(1)?)?)),
        Some("abort") => done(2, Op::Abort(parse_txn_slot(word(1)?)?)),
        Some("travel_get") => done(3, Op::TravelGet(parse_offset(word(1)?)?, arg(2)?)),
        Some("travel_scan") => {
            let offset = parse_offset(word(1)?)?;
            bounds(2).map(|(l, u)| Op::TravelScan(offset, l, u))
        }
        _ => bail!("unknown operation"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of operation survives a round trip through its text form, odd bytes included.
    #[test]
    fn text_form_round_trips() {
        let case = Case {
            config: Config {
                strategy: Strategy::Tiered,
                wal: true,
                isolation: Isolation::Serializable,
            },
            ops: vec![
                Op::Put(b"k01".to_vec(), b"v 1\xff".to_vec()),
                Op::Delete(b"k02".to_vec()),
                Op::Get(b"".to_vec()),
                Op::Scan(
                    Bound::Included(b"k0".to_vec()),
                    Bound::Excluded(b"k9".to_vec()),
                ),
                Op::Scan(
                    Bound::Excluded(b"a".to_vec()),
                    Bound::Included(b"b".to_vec()),
                ),
                Op::Scan(Bound::Unbounded, Bound::Unbounded),
                Op::ScanPrefix(b"".to_vec()),
                Op::Freeze,
                Op::Flush,
                Op::FullCompaction,
                Op::TriggerCompaction,
                Op::CloseReopen,
                Op::CrashReopen,
                Op::Batch(vec![
                    BatchOp::Put(b"k=1".to_vec(), b"x".to_vec()),
                    BatchOp::Del(b"k2".to_vec()),
                ]),
                Op::LatestTs,
                Op::Snapshot(2),
                Op::SnapGet(2, b"k01".to_vec()),
                Op::SnapScan(2, Bound::Excluded(b"k01".to_vec()), Bound::Unbounded),
                Op::DropSnapshot(2),
                Op::GetAt(3, b"k01".to_vec()),
                Op::ScanAt(1, Bound::Unbounded, Bound::Included(b"k05".to_vec())),
                Op::Begin(1),
                Op::TxnGet(1, b"k01".to_vec()),
                Op::TxnPut(1, b"k01".to_vec(), b"v9".to_vec()),
                Op::TxnDelete(1, b"k02".to_vec()),
                Op::TxnScan(1, Bound::Included(b"k00".to_vec()), Bound::Unbounded),
                Op::Commit(1),
                Op::Begin(2),
                Op::Abort(2),
                Op::TravelGet(-3, b"k01".to_vec()),
                Op::TravelGet(0, b"k01".to_vec()),
                Op::TravelScan(1, Bound::Unbounded, Bound::Excluded(b"k05".to_vec())),
                Op::PutOpt(SyncMode::Fsync, b"k01".to_vec(), b"v1".to_vec()),
                Op::DeleteOpt(SyncMode::Os, b"k01".to_vec()),
                Op::BatchOpt(
                    SyncMode::Buffered,
                    vec![
                        BatchOp::Put(b"k01".to_vec(), b"v2".to_vec()),
                        BatchOp::Del(b"k02".to_vec()),
                    ],
                ),
                Op::PowerCut,
                Op::ProcessCrash,
                Op::Group(vec![
                    (SyncMode::Os, b"k01".to_vec(), b"v3".to_vec()),
                    (SyncMode::Fsync, b"k02".to_vec(), b"v4".to_vec()),
                ]),
                Op::Merge(b"k03".to_vec(), b"v,5".to_vec()),
                Op::GroupCut(vec![
                    (b"k01".to_vec(), b"v7".to_vec()),
                    (b"k02".to_vec(), b"v8".to_vec()),
                    (b"k03".to_vec(), b"v9".to_vec()),
                ]),
                Op::Batch(vec![
                    BatchOp::Merge(b"k03".to_vec(), b"v6".to_vec()),
                    BatchOp::Del(b"k04".to_vec()),
                ]),
            ],
        };
        let text = case.to_text();
        assert!(text.contains("put k01 v\\x201\\xff\n"), "{text}");
        assert!(text.contains("scan >=k0 <k9\n"), "{text}");
        assert!(text.contains("batch put:k\\x3d1=x del:k2\n"), "{text}");
        assert!(text.contains("snap_scan s2 >k01 *\n"), "{text}");
        assert!(text.contains("get_at -3 k01\n"), "{text}");
        assert!(text.contains("scan_at -1 * <=k05\n"), "{text}");
        assert!(text.starts_with("config strategy=tiered wal=on isolation=serializable\n"));
        assert!(text.contains("txn_scan t1 >=k00 *\n"), "{text}");
        assert!(
            text.contains("travel_get -3 k01\ntravel_get +0 k01\n"),
            "{text}"
        );
        assert!(text.contains("travel_scan +1 * <k05\n"), "{text}");
        assert!(
            text.contains("put_opt fsync k01 v1\ndelete_opt os k01\n"),
            "{text}"
        );
        assert!(
            text.contains("batch_opt buffered put:k01=v2 del:k02\n"),
            "{text}"
        );
        assert!(text.contains("group os:k01=v3 fsync:k02=v4\n"), "{text}");
        assert!(text.contains("group_cut k01=v7 k02=v8 k03=v9\n"), "{text}");
        assert!(
            text.contains("merge k03 v,5\ngroup_cut")
                && text.contains("\nbatch merge:k03=v6 del:k04\n"),
            "{text}"
        );
        assert_eq!(Case::parse(&text).unwrap(), case);
    }

    /// A malformed line is an error naming its line number, and what is wrong with it.
    #[test]
    fn bad_lines_name_their_line() {
        let err = |text: &str| format!("{:#}", Case::parse(text).unwrap_err());
        assert!(err("config wal=on\nput k1\n").contains("line 2"));
        assert!(err("config wal=on\nscan k1 <k2\n").contains("line 2"));
        assert!(err("config strategy=fast\n").contains("unknown strategy"));
        assert!(err("put k1 v1\n").contains("no `config"));
        assert!(err("config wal=on\nsnapshot s3\n").contains("s0 to s2"));
        assert!(err("config wal=on\nget_at 2 k1\n").contains("like -2"));
        assert!(err("config wal=on\nsnap_scan s1 >=k1\n").contains("line 2"));
        assert!(err("config wal=on\nbegin t3\n").contains("t0 to t2"));
        assert!(err("config wal=on\ntravel_get 2 k1\n").contains("like -2 or +1"));
        assert!(err("config isolation=strict\n").contains("unknown isolation"));
        assert!(err("config wal=on\nput_opt always k1 v1\n").contains("buffered, os or fsync"));
        assert!(err("config wal=on\ngroup buffered:k1=v1\n").contains("os or fsync"));
        assert!(err("config wal=on\nbatch_opt os merge:k1=v1\n").contains("not merges"));
    }
}
