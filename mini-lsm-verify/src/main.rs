// SPDX-License-Identifier: Apache-2.0
//! `mini-lsm-verify`: hunts the bugs that hurt most in an LSM engine (a stale read after a flush,
//! a resurrected tombstone, a scan that misses an edge SST, state lost at reopen) with random
//! operation sequences, shrunk to the shortest one that still fails.
//!
//! `cargo x verify` and `cargo x compare` build and run it (see `book/src/00-verify.md`):
//!
//! - `verify`: the engine against a `BTreeMap` model, case after case; a failure is shrunk,
//!   printed with the engine's dump and a `#[test]` to paste, and saved to be replayed first by
//!   every later run;
//! - `compare`: the starter against the reference, reporting the first operation where they
//!   disagree, with both dumps;
//! - `threads`: writers and readers on one engine with its background threads, checking that
//!   per-key reads never go back and that every writer's last writes are there at the end.

#[macro_use]
mod adapters;
mod commands;
mod concurrent;
mod engines;
mod gen;
mod lineup;
mod model;
mod ops;
mod regress;
mod report;
mod repro;
mod run;
mod search;
mod text;
#[cfg(test)]
mod toy;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::gen::Mix;
use crate::ops::Chapter;
use crate::run::OPS_RUN;
use crate::search::Budget;

/// The exit status when a failure was found.
const EXIT_FAILED: i32 = 1;
/// The exit status when the engine reached a task stub: nothing (more) to check.
const EXIT_STUB: i32 = 2;

#[derive(Parser)]
#[command(about = "Random operation sequences against a model or the reference, shrunk")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every mode shares.
#[derive(Args, Clone)]
pub struct Common {
    /// The last chapter done, `weekW_dayD`: only its operations and earlier ones are used.
    #[arg(long)]
    upto: String,
    /// Stop after this many cases.
    #[arg(long)]
    cases: Option<u64>,
    /// Stop after this long (`30s`, `10m`); the default is 30s unless --cases is given.
    #[arg(long)]
    time: Option<String>,
    /// The seed of the first case (case i uses seed+i); the default comes from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// The most operations in a case.
    #[arg(long, default_value_t = 100)]
    max_ops: usize,
    /// How long shrinking a failure may take.
    #[arg(long, default_value = "60s")]
    shrink_time: String,
}

#[derive(Subcommand)]
enum Command {
    /// The engine against a model.
    Verify {
        /// The engine: ref or starter.
        #[arg(long)]
        engine: String,
        #[command(flatten)]
        common: Common,
        /// Where failing cases are saved and replayed from.
        #[arg(long)]
        regressions: Option<PathBuf>,
        /// Writes `key=value` lines about the outcome here (for `cargo x verify --planted`).
        #[arg(long)]
        summary: Option<PathBuf>,
        /// The name of the printed `#[test]` function.
        #[arg(long)]
        test_name: Option<String>,
    },
    /// The starter against the reference.
    Compare {
        #[command(flatten)]
        common: Common,
    },
    /// Writers and readers with the background threads, repeated.
    Threads {
        /// The engine: ref or starter.
        #[arg(long)]
        engine: String,
        /// The last chapter done, `weekW_dayD`.
        #[arg(long)]
        upto: String,
        /// Threads: half writers, half readers.
        #[arg(long)]
        threads: usize,
        /// Runs.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Writes per writer in each run.
        #[arg(long, default_value_t = 10_000)]
        ops: usize,
        /// The seed of the first run (run i uses seed+i); the default comes from the clock.
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// Parses `30s`, `10m`, `1h`, `500ms` or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration like 30s or 10m"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => bail!("`{text}`: use a duration like 500ms, 30s, 10m or 1h"),
    })
}

/// A seed from the clock, for runs not given one.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_000)
}

/// Watches for an engine stuck in an endless loop or a deadlock: if no operation finishes for
/// `limit`, says so and ends the process.
fn start_watchdog(limit: Duration) {
    std::thread::spawn(move || {
        let mut last = (OPS_RUN.load(Ordering::Relaxed), Instant::now());
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = OPS_RUN.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= limit {
                let op = run::CURRENT_OP
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_default();
                eprintln!(
                    "\nverify: no operation has finished for {limit:?}: the engine seems stuck \
                     (an endless loop, or a lock taken twice?); the last operation started was \
                     `{op}`. Replay the case with the seed printed above and --cases 1."
                );
                std::process::exit(EXIT_FAILED);
            }
        }
    });
}

fn main() {
    run::install_panic_hook();
    start_watchdog(Duration::from_secs(120));
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(3);
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Verify {
            engine,
            common,
            regressions,
            summary,
            test_name,
        } => commands::verify(&engine, &common, regressions, summary, test_name.as_deref()),
        Command::Compare { common } => commands::compare(&common),
        Command::Threads {
            engine,
            upto,
            threads,
            runs,
            ops,
            seed,
        } => commands::run_threads(&engine, &upto, threads, runs, ops, seed),
    }
}

/// The search settings of `common`.
pub fn settings(common: &Common) -> Result<(Mix, Budget, u64, Duration)> {
    let mix = Mix {
        upto: Chapter::parse(&common.upto)?,
    };
    let time = match (&common.time, common.cases) {
        (Some(t), _) => Some(parse_duration(t)?),
        (None, None) => Some(Duration::from_secs(30)),
        (None, Some(_)) => None,
    };
    let seed = common.seed.unwrap_or_else(clock_seed);
    Ok((
        mix,
        Budget {
            cases: common.cases,
            time,
        },
        seed,
        parse_duration(&common.shrink_time)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations read as people write them.
    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("600").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
