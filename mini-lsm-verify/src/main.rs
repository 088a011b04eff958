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

mod concurrent;
mod engines;
mod gen;
mod model;
mod ops;
mod regress;
mod report;
mod repro;
mod run;
mod search;
#[cfg(test)]
mod toy;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::concurrent::{RunResult, RunSpec};
use crate::engines::{Engine, Opener};
use crate::gen::Mix;
use crate::ops::{Case, Chapter};
use crate::report::Sides;
use crate::run::{run_case, CaseOutcome, OPS_RUN};
use crate::search::{Budget, Found, Search};

/// How to ask verify for fewer chapters, in a stub's explanation.
const UPTO: &str = "pass --upto with a chapter";
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
struct Common {
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

fn clock_seed() -> u64 {
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
        } => verify(&engine, &common, regressions, summary, test_name.as_deref()),
        Command::Compare { common } => compare(&common),
        Command::Threads {
            engine,
            upto,
            threads,
            runs,
            ops,
            seed,
        } => run_threads(&engine, &upto, threads, runs, ops, seed),
    }
}

/// The search settings of `common`.
fn settings(common: &Common) -> Result<(Mix, Budget, u64, Duration)> {
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

fn model_opener() -> impl Fn(ops::Config) -> Result<Box<dyn Engine>> {
    |_| Ok(Box::new(model::Model::new()) as Box<dyn Engine>)
}

/// Replays the saved cases in `dir`; returns whether one of them still fails.
fn replay(dir: &std::path::Path, engine: &str, mix: Mix, test_name: Option<&str>) -> bool {
    let saved = regress::load(dir);
    if saved.is_empty() {
        return false;
    }
    let subject = |config| engines::open(engine, config);
    let model = model_opener();
    let sides = Sides {
        subject: "the engine",
        oracle: "the model",
    };
    let (mut passed, mut skipped, mut failed) = (0, 0, false);
    for (path, case) in saved {
        let shown = path.display();
        let case = match case {
            Ok(case) => case,
            Err(e) => {
                println!("skipping {shown}: it does not parse: {e:#}");
                continue;
            }
        };
        if case.needs() > mix.upto {
            skipped += 1;
            continue;
        }
        match run_case(&case, &subject, &model) {
            CaseOutcome::Pass { .. } => passed += 1,
            CaseOutcome::Stub { at, stub } => {
                let place = report::stub_place(&case, at);
                print!("{}", report::stub(&stub, &place, mix.upto, "verify", UPTO));
                failed = true;
            }
            CaseOutcome::Diverged(d) => {
                println!(
                    "The saved case {shown} fails again: {}",
                    report::summary(&case, &d, sides)
                );
                let shrunk = Case {
                    config: case.config,
                    ops: case.ops[..d.at.map_or(0, |i| i + 1)].to_vec(),
                };
                print!("{}", report::listing(&shrunk, d.at));
                println!("\nThe engine's dump:\n{}", report::indent(&d.dump, "    "));
                let stem = path
                    .file_stem()
                    .map_or("case".into(), |s| s.to_string_lossy());
                let name =
                    test_name.map_or(format!("verify_{}", stem.replace('-', "_")), str::to_string);
                println!("A test that reproduces it:\n");
                print!(
                    "{}",
                    repro::rust_test(&shrunk, &name, &format!("Replays {shown}."))
                );
                failed = true;
                break;
            }
        }
    }
    println!(
        "replayed the saved cases in {}: {passed} pass{}{}",
        dir.display(),
        if skipped > 0 {
            format!(", {skipped} skipped (they need later chapters)")
        } else {
            String::new()
        },
        if failed {
            ", and one fails (above)"
        } else {
            ""
        }
    );
    failed
}

fn verify(
    engine: &str,
    common: &Common,
    regressions: Option<PathBuf>,
    summary: Option<PathBuf>,
    test_name: Option<&str>,
) -> Result<i32> {
    let (mix, budget, seed, shrink_time) = settings(common)?;
    require_engines(&[engine])?;
    if let Some(dir) = &regressions {
        if replay(dir, engine, mix, test_name) {
            write_summary(
                summary.as_deref(),
                &[("found", "1".into()), ("replayed", "1".into())],
            )?;
            return Ok(EXIT_FAILED);
        }
    }
    println!(
        "verify: engine {engine}, the operations of the chapters up to {}, seed {seed} (case i \
         uses seed+i){}",
        mix.upto,
        budget_text(&budget)
    );
    let subject = |config| engines::open(engine, config);
    let model = model_opener();
    let search = Search {
        mix,
        max_ops: common.max_ops,
        seed,
        budget,
        shrink_time,
        subject: &subject,
        oracle: &model,
    };
    let started = Instant::now();
    let mut last_note = Instant::now();
    let found = search.run(&mut |cases| {
        if last_note.elapsed() >= Duration::from_secs(60) {
            eprintln!(
                "verify: {cases} cases in {:.0?}, no failure so far",
                started.elapsed()
            );
            last_note = Instant::now();
        }
    });
    let sides = Sides {
        subject: "the engine",
        oracle: "the model",
    };
    match found {
        Found::Clean { cases, reads } => {
            println!(
                "verify: {cases} cases, {reads} reads checked in {:.0?}: no failure",
                started.elapsed()
            );
            write_summary(
                summary.as_deref(),
                &[("found", "0".into()), ("cases", cases.to_string())],
            )?;
            Ok(0)
        }
        Found::Stub { case, at, stub, .. } => {
            let place = report::stub_place(&case, at);
            print!("{}", report::stub(&stub, &place, mix.upto, "verify", UPTO));
            write_summary(summary.as_deref(), &[("found", "stub".into())])?;
            Ok(EXIT_STUB)
        }
        Found::Failure(f) => {
            print!("{}", report::failure(&f, sides));
            let line = report::summary(&f.shrunk, &f.divergence, sides);
            if let Some(dir) = &regressions {
                let header = vec![
                    format!(
                        "Found by `cargo x verify` (engine {engine}, chapters up to {}), seed {}:",
                        mix.upto.id(),
                        f.seed
                    ),
                    format!("{line}."),
                ];
                let path = regress::save(dir, f.seed, &header, &f.shrunk)?;
                println!(
                    "Saved as {} (every later run replays it first).",
                    path.display()
                );
            }
            println!(
                "Replay: cargo x verify --engine {engine} --upto {} --seed {} --cases 1",
                mix.upto.id(),
                f.seed
            );
            let name = test_name.map_or(format!("verify_case_{}", f.seed), str::to_string);
            let test = repro::rust_test(
                &f.shrunk,
                &name,
                &format!("Found by verify (seed {}): {line}.", f.seed),
            );
            println!(
                "\nA test that reproduces it; paste it into a test module of your starter (see \
                 book/src/00-verify.md):\n\n{test}"
            );
            write_summary(
                summary.as_deref(),
                &[
                    ("found", "1".into()),
                    ("seed", f.seed.to_string()),
                    ("original_len", f.original.ops.len().to_string()),
                    ("shrunk_len", f.shrunk.ops.len().to_string()),
                    ("secs", format!("{:.1}", started.elapsed().as_secs_f64())),
                ],
            )?;
            if let Some(path) = &summary {
                std::fs::write(path.with_extension("rs"), &test)?;
            }
            Ok(EXIT_FAILED)
        }
    }
}

/// Fails unless every engine of `names` is built in.
fn require_engines(names: &[&str]) -> Result<()> {
    for name in names {
        if !engines::built_in().contains(name) {
            bail!(
                "engine `{name}` is not built in (built in: {}); it is a cargo feature of \
                 mini-lsm-verify",
                engines::built_in().join(", ")
            );
        }
    }
    Ok(())
}

fn budget_text(budget: &Budget) -> String {
    match (budget.cases, budget.time) {
        (Some(n), Some(t)) => format!(", at most {n} cases or {t:?}"),
        (Some(n), None) => format!(", {n} cases"),
        (None, Some(t)) => format!(", for {t:?}"),
        (None, None) => String::new(),
    }
}

fn write_summary(path: Option<&std::path::Path>, lines: &[(&str, String)]) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn compare(common: &Common) -> Result<i32> {
    let (mix, budget, seed, shrink_time) = settings(common)?;
    require_engines(&["starter", "ref"])?;
    println!(
        "compare: your engine and the reference, the operations of the chapters up to {}, seed \
         {seed}{}",
        mix.upto,
        budget_text(&budget)
    );
    let starter = |config| engines::open("starter", config);
    let reference = |config| engines::open("ref", config);
    let (subject, oracle): (Opener<'_>, Opener<'_>) = (&starter, &reference);
    let search = Search {
        mix,
        max_ops: common.max_ops,
        seed,
        budget,
        shrink_time,
        subject,
        oracle,
    };
    let started = Instant::now();
    match search.run(&mut |_| {}) {
        Found::Clean { cases, .. } => {
            println!(
                "compare: {cases} cases in {:.0?}: your engine and the reference agree on every one",
                started.elapsed()
            );
            Ok(0)
        }
        Found::Stub { case, at, stub, .. } => {
            let place = report::stub_place(&case, at);
            print!(
                "{}",
                report::stub(&stub, &place, mix.upto, "compare", "compare a chapter")
            );
            Ok(EXIT_STUB)
        }
        Found::Failure(f) => {
            let sides = Sides {
                subject: "your engine",
                oracle: "the reference",
            };
            print!("{}", report::failure(&f, sides));
            println!(
                "Replay: cargo x compare --week {} --day {} --seed {} --cases 1",
                mix.upto.0, mix.upto.1, f.seed
            );
            let line = report::summary(&f.shrunk, &f.divergence, sides);
            let test = repro::rust_test(
                &f.shrunk,
                &format!("compare_case_{}", f.seed),
                &format!("Found by compare (seed {}): {line}.", f.seed),
            );
            println!("\nA test that reproduces it (the reference's answers):\n\n{test}");
            Ok(EXIT_FAILED)
        }
    }
}

fn run_threads(
    engine: &str,
    upto: &str,
    threads: usize,
    runs: usize,
    ops: usize,
    seed: Option<u64>,
) -> Result<i32> {
    if threads < 2 {
        bail!("--threads needs at least 2: one writer and one reader");
    }
    require_engines(&[engine])?;
    let mix = Mix {
        upto: Chapter::parse(upto)?,
    };
    let seed = seed.unwrap_or_else(clock_seed);
    let writers = threads.div_ceil(2);
    println!(
        "verify --threads {threads}: {writers} writer(s) of {ops} writes and {} reader(s) on one \
         engine ({engine}) with its background threads; {runs} runs from seed {seed}",
        threads - writers
    );
    println!(
        "{:>4}  {:<12} {:<26} {:>8} {:>8}  result",
        "run", "seed", "config", "writes", "reads"
    );
    let mut failures = Vec::new();
    for i in 0..runs {
        let spec = RunSpec {
            mix,
            writers,
            readers: threads - writers,
            ops,
            seed: seed.wrapping_add(i as u64),
        };
        let config = spec.config().to_string().replacen("config ", "", 1);
        let result = concurrent::run(engine, &spec);
        let (writes, reads, text) = match &result {
            RunResult::Ok { writes, reads } => (writes.to_string(), reads.to_string(), "ok".into()),
            RunResult::Failed(e) => ("-".into(), "-".into(), format!("FAILED: {e}")),
            RunResult::Stub(stub) => {
                let place = "in a writer or a reader thread";
                print!(
                    "{}",
                    report::stub(stub, place, mix.upto, "verify --threads", UPTO)
                );
                return Ok(EXIT_STUB);
            }
        };
        println!(
            "{:>4}  {:<12} {:<26} {:>8} {:>8}  {text}",
            i + 1,
            spec.seed,
            config,
            writes,
            reads
        );
        if matches!(result, RunResult::Failed(_)) {
            failures.push(spec.seed);
        }
    }
    match failures.first() {
        None => {
            println!("no failure in {runs} runs");
            Ok(0)
        }
        Some(first) => {
            println!(
                "failed {} of {runs} runs; the first failing seed is {first} (rerun it: cargo x \
                 verify --engine {engine} --threads {threads} --runs 1 --seed {first})",
                failures.len()
            );
            Ok(EXIT_FAILED)
        }
    }
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
