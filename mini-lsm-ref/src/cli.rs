// SPDX-License-Identifier: Apache-2.0
//! The interactive shell over the engine: `mini-lsm-cli-ref` (reference) and `mini-lsm-cli`
//! (starter) both run [`main`].
//!
//! Commands are parsed by [`Command::parse`] and run by [`Shell::execute`], both free of terminal
//! I/O so that a script can drive them; [`main`] adds line editing and history around them.

use std::io::{IsTerminal, Write};
use std::ops::Bound;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use rustyline::error::ReadlineError;

use crate::compact::CompactionOptions;
use crate::iterators::StorageIterator;
use crate::lsm_iterator::{FusedIterator, LsmIterator};
use crate::lsm_storage::{LsmStorageOptions, MiniLsm};

/// The compaction strategies the shell can ask for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompactionChoice {
    /// No compaction (week 1).
    None,
    /// Simple leveled compaction, default settings (week 2 day 2).
    Simple,
    /// Tiered compaction, default settings (week 2 day 3).
    Tiered,
    /// Leveled compaction, default settings (week 2 day 4).
    Leveled,
}

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "An interactive shell over the mini-lsm engine")]
pub struct Args {
    /// The database directory (created if missing).
    #[arg(long, default_value = "mini-lsm.db")]
    pub path: PathBuf,
    /// The compaction strategy.
    #[arg(long, value_enum, default_value_t = CompactionChoice::None)]
    pub compaction: CompactionChoice,
}

/// One shell command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `fill A B`: put keys A..=B (decimal) with values `value{i}@{epoch}`.
    Fill(u64, u64),
    /// `put K V`.
    Put(String, String),
    /// `get K`.
    Get(String),
    /// `del K`.
    Del(String),
    /// `scan [A B]`: all entries, or those with A <= key <= B.
    Scan(Option<(String, String)>),
    /// `prefix P`.
    Prefix(String),
    /// `flush`: freeze the memtable and flush every memtable.
    Flush,
    /// `dump`: print the engine's state.
    Dump,
    /// `close` or `quit`.
    Quit,
    /// `help`.
    Help,
}

const HELP: &str = "commands: fill A B | put K V | get K | del K | scan [A B] | prefix P | flush | dump | close | quit | help";

impl Command {
    /// Parses one line; `Ok(None)` for an empty line.
    ///
    /// # Errors
    /// A message saying what is wrong and what was expected.
    pub fn parse(line: &str) -> Result<Option<Self>> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&name, args)) = words.split_first() else {
            return Ok(None);
        };
        let number = |s: &str| -> Result<u64> {
            s.parse()
                .with_context(|| format!("`{s}` is not a non-negative integer"))
        };
        let command = match (name, args) {
            ("fill", [a, b]) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    bail!("fill {a} {b}: the first key must not be greater than the second");
                }
                Command::Fill(a, b)
            }
            ("put", [k, v]) => Command::Put(k.to_string(), v.to_string()),
            ("get", [k]) => Command::Get(k.to_string()),
            ("del", [k]) => Command::Del(k.to_string()),
            ("scan", []) => Command::Scan(None),
            ("scan", [a, b]) => Command::Scan(Some((a.to_string(), b.to_string()))),
            ("prefix", [p]) => Command::Prefix(p.to_string()),
            ("flush", []) => Command::Flush,
            ("dump", []) => Command::Dump,
            ("close" | "quit" | "exit", []) => Command::Quit,
            ("help", []) => Command::Help,
            (
                "fill" | "put" | "get" | "del" | "scan" | "prefix" | "flush" | "dump" | "close"
                | "quit" | "exit" | "help",
                _,
            ) => {
                bail!("wrong arguments for `{name}`; {HELP}")
            }
            _ => bail!("unknown command `{name}`; {HELP}"),
        };
        Ok(Some(command))
    }
}

/// Whether the shell goes on after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Close the engine and exit.
    Quit,
}

/// The shell's state: the engine and how many `fill`s have run (the value epoch).
pub struct Shell {
    lsm: std::sync::Arc<MiniLsm>,
    epoch: u64,
}

impl Shell {
    /// Opens the engine for `args`.
    ///
    /// # Errors
    /// If the engine cannot be opened.
    pub fn open(args: &Args) -> Result<Self> {
        let mut options = LsmStorageOptions::default_for_week1_test();
        options.compaction_options = match args.compaction {
            CompactionChoice::None => CompactionOptions::NoCompaction,
            CompactionChoice::Simple => CompactionOptions::Simple(Default::default()),
            CompactionChoice::Tiered => CompactionOptions::Tiered(Default::default()),
            CompactionChoice::Leveled => CompactionOptions::Leveled(Default::default()),
        };
        let lsm = MiniLsm::open(&args.path, options)
            .with_context(|| format!("cannot open the engine at {}", args.path.display()))?;
        Ok(Self { lsm, epoch: 0 })
    }

    /// Runs one command, writing its output to `out`.
    ///
    /// # Errors
    /// An engine error; the shell reports it and goes on.
    pub fn execute(&mut self, command: Command, out: &mut impl Write) -> Result<Flow> {
        match command {
            Command::Fill(a, b) => {
                for i in a..=b {
                    let value = format!("value{i}@{}", self.epoch);
                    self.lsm.put(i.to_string().as_bytes(), value.as_bytes())?;
                }
                writeln!(
                    out,
                    "filled {} keys from {a} to {b} (epoch {})",
                    b - a + 1,
                    self.epoch
                )?;
                self.epoch += 1;
            }
            Command::Put(k, v) => {
                self.lsm.put(k.as_bytes(), v.as_bytes())?;
                writeln!(out, "ok")?;
            }
            Command::Get(k) => match self.lsm.get(k.as_bytes())? {
                Some(value) => writeln!(out, "{}", String::from_utf8_lossy(&value))?,
                None => writeln!(out, "(not found)")?,
            },
            Command::Del(k) => {
                self.lsm.delete(k.as_bytes())?;
                writeln!(out, "ok")?;
            }
            Command::Scan(range) => {
                let iter = match &range {
                    None => self.lsm.scan(Bound::Unbounded, Bound::Unbounded)?,
                    Some((a, b)) => self
                        .lsm
                        .scan(Bound::Included(a.as_bytes()), Bound::Included(b.as_bytes()))?,
                };
                print_entries(iter, out)?;
            }
            Command::Prefix(p) => print_entries(self.lsm.scan_prefix(p.as_bytes())?, out)?,
            Command::Flush => {
                self.lsm.force_flush()?;
                writeln!(out, "flushed")?;
            }
            Command::Dump => write!(out, "{}", self.lsm.dump())?,
            Command::Help => writeln!(out, "{HELP}")?,
            Command::Quit => return Ok(Flow::Quit),
        }
        Ok(Flow::Continue)
    }

    /// Closes the engine.
    ///
    /// # Errors
    /// As [`MiniLsm::close`].
    pub fn close(self) -> Result<()> {
        self.lsm.close()
    }
}

/// Prints every entry of a scan as `key=value`, then the count.
fn print_entries(mut iter: FusedIterator<LsmIterator>, out: &mut impl Write) -> Result<()> {
    let mut count = 0;
    while iter.is_valid() {
        writeln!(
            out,
            "{}={}",
            String::from_utf8_lossy(iter.key()),
            String::from_utf8_lossy(iter.value())
        )?;
        count += 1;
        iter.next()?;
    }
    writeln!(out, "({count} entries)")?;
    Ok(())
}

/// Runs the shell on standard input, with line editing and history when it is a terminal. End of
/// input closes the engine cleanly, like `close`.
///
/// # Errors
/// If the engine cannot be opened or closed.
pub fn main() -> Result<()> {
    let args = Args::parse();
    let mut shell = Shell::open(&args)?;
    let mut editor = rustyline::DefaultEditor::new()?;
    let mut stdout = std::io::stdout();
    let interactive = std::io::stdin().is_terminal();
    loop {
        let line = match editor.readline("mini-lsm> ") {
            Ok(line) => line,
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => break,
            Err(e) => return Err(e.into()),
        };
        let _ = editor.add_history_entry(line.as_str());
        if !interactive {
            // Echo scripted commands, so that the output reads as a transcript.
            let _ = writeln!(stdout, "mini-lsm> {line}");
        }
        let flow = Command::parse(&line)
            .and_then(|command| match command {
                Some(command) => shell.execute(command, &mut stdout),
                None => Ok(Flow::Continue),
            })
            .unwrap_or_else(|error| {
                let _ = writeln!(stdout, "error: {error:#}");
                Flow::Continue
            });
        if flow == Flow::Quit {
            break;
        }
    }
    shell.close()?;
    writeln!(stdout, "closed")?;
    Ok(())
}
