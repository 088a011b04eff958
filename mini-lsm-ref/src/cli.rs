// SPDX-License-Identifier: Apache-2.0
//! The interactive shell over the engine: `mini-lsm-cli-ref` (reference) and `mini-lsm-cli`
//! (starter) both run [`main`].
//!
//! Commands are parsed by [`Command::parse`] and run by [`Shell::execute`], both free of terminal
//! I/O so that a script can drive them; [`main`] adds line editing and history around them.
//!
//! The shell outlives its engine's panics: every command runs under [`guarded`], so a task stub
//! that is not written yet (`not yet implemented: week 1 day 1, task 2: ...`) or a bug prints one
//! `error:` line naming it, and the prompt comes back. Only `quit`/`close` (or the end of the
//! input) end the shell.

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use rustyline::error::ReadlineError;

use crate::compact::CompactionOptions;
use crate::iterators::StorageIterator;
use crate::lsm_iterator::{FusedIterator, LsmIterator};
use crate::lsm_storage::{LsmStorageOptions, MiniLsm};
use crate::merge::AddOperator;

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
#[command(
    about = "An interactive shell over the mini-lsm engine",
    after_help = PERSISTENCE
)]
pub struct Args {
    /// The database directory (created if missing; git ignores the default, `mini-lsm.db`).
    #[arg(long, default_value = "mini-lsm.db")]
    pub path: PathBuf,
    /// The compaction strategy (week 2). Any strategy, or --wal, selects the week 2 settings:
    /// 1 MiB memtables and SSTs, and a flush as soon as there are more than two memtables.
    #[arg(long, value_enum, default_value_t = CompactionChoice::None)]
    pub compaction: CompactionChoice,
    /// Write every change to a write-ahead log first (week 2 day 6), so that writes not yet
    /// flushed survive a crash and a restart.
    #[arg(long)]
    pub wal: bool,
}

/// When data survives a restart, for `help` and `--help`.
const PERSISTENCE: &str = "\
Does data survive a restart? Before week 2 day 5 your engine starts empty every time (use a new
--path then, or remove the old directory). From week 2 day 5 (the manifest), `close` flushes the
memtables and the next start finds every SST. From week 2 day 6, with --wal, writes not yet flushed
survive a crash too.";

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
    /// `merge K N`: add the decimal integer N to K's value (week 4 day 6).
    Merge(String, String),
    /// `scan [A B]`: all entries, or those with A <= key <= B.
    Scan(Option<(String, String)>),
    /// `prefix P`.
    Prefix(String),
    /// `flush`: freeze the memtable and flush every memtable.
    Flush,
    /// `compact`: compact all of L0 and L1 into L1 (week 2 day 1).
    Compact,
    /// `dump`: print the engine's state.
    Dump,
    /// `stats`: print what the engine did since it opened (week 4 day 7).
    Stats,
    /// `close` or `quit`.
    Quit,
    /// `help`.
    Help,
}

/// The commands on one line, for an error message.
const USAGE: &str = "commands: fill A B | put K V | get K | del K | merge K N | scan [A B] | prefix P | flush | compact | dump | stats | close | quit | help";

/// The most keys one `fill` puts: a bound, so that a typo such as `fill 0 99999999999` does
/// not run for hours with no way back but killing the shell (and losing what the engine held).
pub const MAX_FILL: u64 = 1_000_000;

/// What `help` prints.
fn help() -> String {
    format!(
        "\
commands:
  fill A B      put every key from A to B (decimal; at most {MAX_FILL} keys at a time), with the
                value value<key>@<n> for the shell's n-th fill
  put K V       put one key
  get K         read one key
  del K         delete one key
  merge K N     add the integer N to K's value, as a merge operand (K's value, if any, must
                be an integer too; week 4 day 6)
  scan [A B]    every entry, or those with A <= key <= B
  prefix P      the entries whose key starts with P
  flush         freeze the memtable and flush every memtable to an L0 SST
  compact       compact all of L0 and L1 into L1 (week 2 day 1)
  dump          print the memtables, L0 and the levels
  stats         what the engine did since it opened: writes, reads, stalls, flushes,
                compactions and their bytes (week 4 day 7)
  close, quit   close the engine and exit (the end of the input does the same)
  help          this text
{PERSISTENCE}"
    )
}

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
                if b - a >= MAX_FILL {
                    bail!(
                        "fill {a} {b} would put {} keys; fill puts at most {MAX_FILL} at a time \
                         (split it into several fills)",
                        u128::from(b - a) + 1
                    );
                }
                Command::Fill(a, b)
            }
            ("put", [k, v]) => Command::Put(k.to_string(), v.to_string()),
            ("get", [k]) => Command::Get(k.to_string()),
            ("del", [k]) => Command::Del(k.to_string()),
            ("merge", [k, n]) => {
                n.parse::<i64>()
                    .with_context(|| format!("merge {k} {n}: `{n}` is not an integer"))?;
                Command::Merge(k.to_string(), n.to_string())
            }
            ("scan", []) => Command::Scan(None),
            ("scan", [a, b]) => Command::Scan(Some((a.to_string(), b.to_string()))),
            ("prefix", [p]) => Command::Prefix(p.to_string()),
            ("flush", []) => Command::Flush,
            ("compact", []) => Command::Compact,
            ("dump", []) => Command::Dump,
            ("stats", []) => Command::Stats,
            ("close" | "quit" | "exit", []) => Command::Quit,
            ("help", []) => Command::Help,
            (
                "fill" | "put" | "get" | "del" | "merge" | "scan" | "prefix" | "flush" | "compact"
                | "dump" | "stats" | "close" | "quit" | "exit" | "help",
                _,
            ) => {
                bail!("wrong arguments for `{name}`; {USAGE}")
            }
            _ => bail!("unknown command `{name}`; {USAGE}"),
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
        let lsm = MiniLsm::open(&args.path, options(args))
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
            Command::Merge(k, n) => {
                self.lsm.merge(k.as_bytes(), n.as_bytes())?;
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
            Command::Compact => {
                self.lsm.inner.force_full_compaction()?;
                writeln!(out, "compacted")?;
            }
            // One newline after the dump, whether or not the dump's text ends in one.
            Command::Dump => writeln!(out, "{}", self.lsm.dump().trim_end())?,
            Command::Stats => writeln!(out, "{}", self.lsm.stats())?,
            Command::Help => writeln!(out, "{}", help())?,
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

/// The engine's options for `args`: week 1's, or week 2's with a compaction strategy or the log;
/// either with the [`AddOperator`] for `merge`.
pub fn options(args: &Args) -> LsmStorageOptions {
    let mut options = engine_options(args);
    options.merge_operator = Some(std::sync::Arc::new(AddOperator));
    options
}

/// [`options`] before the merge operator.
fn engine_options(args: &Args) -> LsmStorageOptions {
    let compaction = match args.compaction {
        CompactionChoice::None => CompactionOptions::NoCompaction,
        CompactionChoice::Simple => CompactionOptions::Simple(Default::default()),
        CompactionChoice::Tiered => CompactionOptions::Tiered(Default::default()),
        CompactionChoice::Leveled => CompactionOptions::Leveled(Default::default()),
    };
    if matches!(args.compaction, CompactionChoice::None) && !args.wal {
        return LsmStorageOptions::default_for_week1_test();
    }
    let mut options = LsmStorageOptions::default_for_week2_test(compaction);
    options.enable_wal = args.wal;
    options
}

thread_local! {
    /// Set while [`guarded`] runs a command on this thread: its panic is reported by the shell,
    /// not printed by the panic hook.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic happened.
    static LOCATION: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The text of a panic's payload.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(a panic without a message)".to_string(),
    }
}

/// Whether the user asked for backtraces.
fn backtraces_wanted() -> bool {
    std::env::var("RUST_BACKTRACE").is_ok_and(|v| v != "0")
}

/// Installs the shell's panic hook: a guarded command's panic is left to [`guarded`] to report;
/// a background thread's panic is one line naming the thread (with the default hook's backtrace
/// only if `RUST_BACKTRACE` asks for it and the panic is not a stub).
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        if GUARDED.with(Cell::get) {
            LOCATION.with(|l| *l.borrow_mut() = location);
            return;
        }
        let message = payload_text(info.payload());
        let thread = std::thread::current();
        eprintln!(
            "error: the engine's thread `{}` panicked at {location}: {message}",
            thread.name().unwrap_or("unnamed")
        );
        if backtraces_wanted() && !message.starts_with("not yet implemented") {
            default(info);
        }
    }));
}

/// Runs `f`, turning a panic into an error: a task stub's own message (which names its chapter,
/// task and book page), or where the engine panicked and why.
///
/// # Errors
/// `f`'s error, or its panic.
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    GUARDED.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    result.unwrap_or_else(|payload| {
        let message = payload_text(&*payload);
        if message.starts_with("not yet implemented") {
            return Err(anyhow!("{message}"));
        }
        let location = LOCATION.with(|l| l.borrow().clone());
        Err(anyhow!(
            "the engine panicked at {location}: {message}{}",
            if backtraces_wanted() {
                ""
            } else {
                " (RUST_BACKTRACE=1 shows where it came from)"
            }
        ))
    })
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
/// input closes the engine cleanly, like `close`; an error or a panic of a command is reported and
/// the shell goes on.
///
/// # Errors
/// If the engine cannot be opened or closed.
pub fn main() -> Result<()> {
    let args = Args::parse();
    install_panic_hook();
    let mut shell = guarded(|| Shell::open(&args))?;
    let mut editor = rustyline::DefaultEditor::new()?;
    let mut stdout = std::io::stdout();
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        writeln!(
            stdout,
            "mini-lsm shell on {} (`help` lists the commands)",
            args.path.display()
        )?;
    }
    loop {
        let line = match editor.readline("mini-lsm> ") {
            Ok(line) => line,
            Err(ReadlineError::Eof) => break,
            Err(ReadlineError::Interrupted) => {
                writeln!(stdout, "(`quit` closes the engine and exits)")?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let _ = editor.add_history_entry(line.as_str());
        if !interactive {
            // Echo scripted commands, so that the output reads as a transcript.
            let _ = writeln!(stdout, "mini-lsm> {line}");
        }
        let flow = Command::parse(&line)
            .and_then(|command| match command {
                Some(command) => guarded(|| shell.execute(command, &mut stdout)),
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
    guarded(|| shell.close())?;
    writeln!(stdout, "closed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fill is bounded: a range of more than [`MAX_FILL`] keys is refused with the reason,
    /// even one as wide as `u64` (whose size does not fit a `u64`).
    #[test]
    fn fill_is_bounded() {
        assert_eq!(
            Command::parse("fill 1 1000000").unwrap(),
            Some(Command::Fill(1, 1_000_000))
        );
        let err = Command::parse("fill 0 1000000").unwrap_err().to_string();
        assert!(err.contains("1000001 keys"), "{err}");
        let err = Command::parse("fill 0 18446744073709551615")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("18446744073709551616 keys") && err.contains("at most 1000000"),
            "{err}"
        );
    }

    /// A panic inside a guarded command becomes an error: a stub's own message, or where the
    /// engine panicked; the caller goes on.
    #[test]
    fn panics_become_errors() {
        // What a starter stub's `todo!` panics with (spelled out, so the reference holds no
        // `todo!`).
        let stub = guarded::<()>(|| {
            panic!(
                "not yet implemented: week 1 day 1, task 2: write puts (book: week1-01-memtable)"
            )
        });
        assert_eq!(
            stub.unwrap_err().to_string(),
            "not yet implemented: week 1 day 1, task 2: write puts (book: week1-01-memtable)"
        );
        let bug = guarded::<()>(|| panic!("index out of bounds"));
        let err = bug.unwrap_err().to_string();
        assert!(
            err.starts_with("the engine panicked at ") && err.contains("index out of bounds"),
            "{err}"
        );
        assert_eq!(guarded(|| Ok(7)).unwrap(), 7);
    }

    /// `compact` is a command; the week 2 settings come with a strategy or the log.
    #[test]
    fn week_two_reaches_the_shell() {
        assert_eq!(Command::parse("compact").unwrap(), Some(Command::Compact));
        let args = |extra: &[&str]| {
            Args::parse_from(["cli"].iter().chain(extra).copied().collect::<Vec<_>>())
        };
        assert!(!options(&args(&[])).enable_wal);
        let wal = options(&args(&["--wal"]));
        assert!(wal.enable_wal);
        assert_eq!(wal.num_memtable_limit, 2);
        assert!(help().contains("week 2 day 5"));
    }
}
