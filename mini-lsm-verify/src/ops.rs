// SPDX-License-Identifier: Apache-2.0
//! The operations verify runs, the chapters that make each one available, and their text form.
//!
//! A *case* is an engine configuration and a sequence of operations. Cases are written one
//! operation a line, in the form that `verify` prints and that the regression files keep:
//!
//! ```text
//! config strategy=simple wal=on
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
//! ```
//!
//! Bytes other than ASCII letters, digits and `_-.` are written `\xNN`.

use std::fmt;
use std::ops::Bound;

use anyhow::{bail, Context, Result};

/// A chapter of the course, `(week, day)`; chapters compare in course order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Chapter(pub u32, pub u32);

impl Chapter {
    /// Put, delete, get, and freezing the memtable.
    pub const MEMTABLE: Self = Self(1, 1);
    /// Scans with bounds of every kind.
    pub const SCAN: Self = Self(1, 2);
    /// The engine's own flush, and prefix scans.
    pub const FLUSH: Self = Self(1, 6);
    /// `force_full_compaction`.
    pub const FULL_COMPACTION: Self = Self(2, 1);
    /// Simple leveled compaction.
    pub const SIMPLE: Self = Self(2, 2);
    /// Tiered compaction.
    pub const TIERED: Self = Self(2, 3);
    /// Leveled compaction.
    pub const LEVELED: Self = Self(2, 4);
    /// The manifest: close and reopen.
    pub const REOPEN: Self = Self(2, 5);
    /// The write-ahead log: crash and reopen.
    pub const WAL: Self = Self(2, 6);
    /// Batch writes.
    pub const BATCH: Self = Self(2, 7);

    /// Parses a chapter id, `weekW_dayD`.
    ///
    /// # Errors
    /// If `id` is not of that form.
    pub fn parse(id: &str) -> Result<Self> {
        let parsed = id.strip_prefix("week").and_then(|rest| {
            let (week, day) = rest.split_once("_day")?;
            Some(Self(week.parse().ok()?, day.parse().ok()?))
        });
        parsed.with_context(|| format!("`{id}` is not a chapter id like week1_day6"))
    }

    /// `week1_day6`.
    pub fn id(self) -> String {
        format!("week{}_day{}", self.0, self.1)
    }
}

impl fmt::Display for Chapter {
    /// "week 1 day 6".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "week {} day {}", self.0, self.1)
    }
}

/// The compaction strategy an engine is opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `NoCompaction`: only `force_full_compaction` compacts.
    None,
    /// Simple leveled compaction.
    Simple,
    /// Tiered compaction.
    Tiered,
    /// Leveled compaction.
    Leveled,
}

impl Strategy {
    /// Every strategy, simplest first (shrinking moves towards the first).
    pub const ALL: [Self; 4] = [Self::None, Self::Simple, Self::Tiered, Self::Leveled];

    /// The chapter that implements it.
    pub fn needs(self) -> Chapter {
        match self {
            Self::None => Chapter::MEMTABLE,
            Self::Simple => Chapter::SIMPLE,
            Self::Tiered => Chapter::TIERED,
            Self::Leveled => Chapter::LEVELED,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Simple => "simple",
            Self::Tiered => "tiered",
            Self::Leveled => "leveled",
        }
    }
}

/// How an engine is opened for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The compaction strategy.
    pub strategy: Strategy,
    /// Whether writes go to a write-ahead log (needed by `crash_reopen`).
    pub wal: bool,
}

impl Config {
    /// The latest chapter this configuration needs.
    pub fn needs(self) -> Chapter {
        let wal = if self.wal {
            Chapter::WAL
        } else {
            Chapter::MEMTABLE
        };
        self.strategy.needs().max(wal)
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wal = if self.wal { "on" } else { "off" };
        write!(f, "config strategy={} wal={wal}", self.strategy.name())
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Put a value.
    Put(Vec<u8>, Vec<u8>),
    /// Delete a key.
    Del(Vec<u8>),
}

/// One operation of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Scan(Bound<Vec<u8>>, Bound<Vec<u8>>),
    ScanPrefix(Vec<u8>),
    Freeze,
    Flush,
    FullCompaction,
    TriggerCompaction,
    CloseReopen,
    CrashReopen,
    Batch(Vec<BatchOp>),
}

impl Op {
    /// The chapter that makes this operation available.
    pub fn needs(&self) -> Chapter {
        match self {
            Op::Put(..) | Op::Delete(_) | Op::Get(_) | Op::Freeze => Chapter::MEMTABLE,
            Op::Scan(..) => Chapter::SCAN,
            Op::ScanPrefix(_) | Op::Flush => Chapter::FLUSH,
            Op::FullCompaction => Chapter::FULL_COMPACTION,
            Op::TriggerCompaction => Chapter::SIMPLE,
            Op::CloseReopen => Chapter::REOPEN,
            Op::CrashReopen => Chapter::WAL,
            Op::Batch(_) => Chapter::BATCH,
        }
    }

    /// Whether it reads (its outcome is checked against the oracle's).
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get(_) | Op::Scan(..) | Op::ScanPrefix(_))
    }
}

/// A configuration and its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub config: Config,
    pub ops: Vec<Op>,
}

impl Case {
    /// The latest chapter this case needs.
    pub fn needs(&self) -> Chapter {
        self.ops
            .iter()
            .map(Op::needs)
            .fold(self.config.needs(), Chapter::max)
    }

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

/// Bytes as a token: letters, digits and `_-.` as they are, anything else `\xNN`; `""` if empty.
pub fn show(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "\"\"".to_string();
    }
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
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
        } else if bytes[i].is_ascii_alphanumeric() || b"_-.".contains(&bytes[i]) {
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
                for record in records {
                    match record {
                        BatchOp::Put(k, v) => write!(f, " put:{}={}", show(k), show(v))?,
                        BatchOp::Del(k) => write!(f, " del:{}", show(k))?,
                    }
                }
                Ok(())
            }
        }
    }
}

fn parse_config(line: &str) -> Result<Config> {
    let mut config = Config {
        strategy: Strategy::None,
        wal: false,
    };
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
            _ => bail!("expected strategy=... or wal=on|off, not `{word}`"),
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
    let arg = |i: usize| -> Result<Vec<u8>> {
        unshow(
            words
                .get(i)
                .with_context(|| format!("`{}` needs more arguments", words[0]))?,
        )
    };
    let done = |n: usize, op: Op| -> Result<Op> {
        if words.len() != n {
            bail!("`{}` takes {} argument(s)", words[0], n - 1);
        }
        Ok(op)
    };
    match words.first().copied() {
        Some("put") => done(3, Op::Put(arg(1)?, arg(2)?)),
        Some("delete") => done(2, Op::Delete(arg(1)?)),
        Some("get") => done(2, Op::Get(arg(1)?)),
        Some("scan") if words.len() == 3 => Ok(Op::Scan(
            parse_bound(words[1], ">=", ">")?,
            parse_bound(words[2], "<=", "<")?,
        )),
        Some("scan") => bail!("`scan` takes a lower and an upper bound"),
        Some("scan_prefix") => done(2, Op::ScanPrefix(arg(1)?)),
        Some("freeze") => done(1, Op::Freeze),
        Some("flush") => done(1, Op::Flush),
        Some("full_compaction") => done(1, Op::FullCompaction),
        Some("trigger_compaction") => done(1, Op::TriggerCompaction),
        Some("close_reopen") => done(1, Op::CloseReopen),
        Some("crash_reopen") => done(1, Op::CrashReopen),
        Some("batch") => {
            let mut records = Vec::new();
            for word in &words[1..] {
                if let Some(rest) = word.strip_prefix("put:") {
                    let (k, v) = rest
                        .split_once('=')
                        .context("a batch put is put:key=value")?;
                    records.push(BatchOp::Put(unshow(k)?, unshow(v)?));
                } else if let Some(k) = word.strip_prefix("del:") {
                    records.push(BatchOp::Del(unshow(k)?));
                } else {
                    bail!("a batch record is put:key=value or del:key, not `{word}`");
                }
            }
            Ok(Op::Batch(records))
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
            ],
        };
        let text = case.to_text();
        assert!(text.contains("put k01 v\\x201\\xff\n"), "{text}");
        assert!(text.contains("scan >=k0 <k9\n"), "{text}");
        assert!(text.contains("batch put:k\\x3d1=x del:k2\n"), "{text}");
        assert_eq!(Case::parse(&text).unwrap(), case);
    }

    /// A malformed line is an error naming its line number.
    #[test]
    fn bad_lines_name_their_line() {
        let err = |text: &str| format!("{:#}", Case::parse(text).unwrap_err());
        assert!(err("config wal=on\nput k1\n").contains("line 2"));
        assert!(err("config wal=on\nscan k1 <k2\n").contains("line 2"));
        assert!(err("config strategy=fast\n").contains("unknown strategy"));
        assert!(err("put k1 v1\n").contains("no `config"));
    }

    /// Every chapter an operation names is a chapter of the course manifest, with the title
    /// that says what the operation needs: renumbering the course must update verify too.
    #[test]
    fn chapters_are_the_manifests() {
        let manifest = include_str!("../../course.toml");
        let title = |c: Chapter| {
            let at = manifest
                .find(&format!("id = \"{}\"", c.id()))
                .unwrap_or_else(|| panic!("{c} is not in course.toml"));
            let rest = &manifest[at..];
            let line = rest.lines().find(|l| l.starts_with("title = ")).unwrap();
            line.trim_start_matches("title = ")
                .trim_matches('"')
                .to_string()
        };
        assert_eq!(title(Chapter::MEMTABLE), "Memtable");
        assert_eq!(title(Chapter::SCAN), "Merge iterator");
        assert_eq!(title(Chapter::FLUSH), "Write path");
        assert_eq!(title(Chapter::FULL_COMPACTION), "Compaction implementation");
        assert_eq!(title(Chapter::SIMPLE), "Simple leveled compaction");
        assert_eq!(title(Chapter::TIERED), "Tiered compaction");
        assert_eq!(title(Chapter::LEVELED), "Leveled compaction");
        assert_eq!(title(Chapter::REOPEN), "Manifest");
        assert_eq!(title(Chapter::WAL), "Write-ahead log");
        assert_eq!(title(Chapter::BATCH), "Batch writes and checksums");
    }

    /// A case needs the latest chapter of its operations and configuration.
    #[test]
    fn case_needs_its_latest_chapter() {
        let mut case = Case {
            config: Config {
                strategy: Strategy::None,
                wal: false,
            },
            ops: vec![Op::Get(b"k".to_vec()), Op::Flush],
        };
        assert_eq!(case.needs(), Chapter::FLUSH);
        case.config.wal = true;
        assert_eq!(case.needs(), Chapter::WAL);
        assert_eq!(Chapter::parse("week2_day6").unwrap(), Chapter::WAL);
        assert!(Chapter::parse("week2").is_err());
    }
}
