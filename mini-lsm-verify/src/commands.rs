// SPDX-License-Identifier: Apache-2.0
//! The three modes: `verify` (replay the saved cases, then search), `compare` and `threads`,
//! each printing its report and returning the process's exit status.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::concurrent::{self, RunResult, RunSpec};
use crate::engines::{self, Engine, Opener};
use crate::gen::Mix;
use crate::ops::{self, Case, Chapter};
use crate::report::{self, Sides};
use crate::run::{run_case, CaseOutcome};
use crate::search::{Budget, Found, Search};
use crate::{clock_seed, model, regress, repro, settings, Common, EXIT_FAILED, EXIT_STUB};

/// How to ask verify for fewer chapters, in a stub's explanation.
const UPTO: &str = "pass --upto with a chapter";

/// Opens the model for the chapters of `mix`.
fn model_opener(mix: Mix) -> impl Fn(ops::Config) -> Result<Box<dyn Engine>> {
    move |config| Ok(Box::new(model::Model::for_case(mix.upto, config)) as Box<dyn Engine>)
}

/// Replays the saved cases in `dir`; returns whether one of them still fails.
fn replay(dir: &Path, engine: &str, mix: Mix, test_name: Option<&str>) -> bool {
    let saved = regress::load(dir);
    if saved.is_empty() {
        return false;
    }
    let subject = |config| engines::open(engine, config);
    let model = model_opener(mix);
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
                print!(
                    "{}",
                    report::listing(&shrunk, d.at, mix.has(Chapter::COMMIT_TS))
                );
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

pub fn verify(
    engine: &str,
    common: &Common,
    regressions: Option<std::path::PathBuf>,
    summary: Option<std::path::PathBuf>,
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
    let model = model_opener(mix);
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
            print!(
                "{}",
                report::failure(&f, sides, mix.has(Chapter::COMMIT_TS))
            );
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
                    ("upto", mix.upto.id()),
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

fn write_summary(path: Option<&Path>, lines: &[(&str, String)]) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn compare(common: &Common) -> Result<i32> {
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
            print!(
                "{}",
                report::failure(&f, sides, mix.has(Chapter::COMMIT_TS))
            );
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

pub fn run_threads(
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
