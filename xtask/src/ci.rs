//! `cargo x check` and `cargo x ci`: the course's integrity checks.
//!
//! `ci` proves that the reference, the starter, the tests and the book agree:
//!
//! 1. the reference passes every chapter's tests;
//! 2. the pristine starter compiles with every chapter's tests copied in at once (in a scratch
//!    copy, never the learner's tree);
//! 3. stub honesty: on the pristine starter every test fails, but those the manifest exempts;
//!    and its shell survives a stub: `put a 1` prints the stub's message, then `help` and
//!    `quit` work and it exits with status 0;
//! 4. the chapter ladder: the checkpoint of chapter N passes every test of chapters <= N;
//! 5. the committed starter is exactly what `sync` writes;
//! 6. fmt, clippy and rustdoc with warnings denied, and the book builds with every include and
//!    link intact;
//! 7. `verify` runs clean on the reference for a bounded time (20 s; 5 minutes with `--full`),
//!    and finds and shrinks each bug planted in a copy of the reference (`verify --planted`).
//!
//! `--full` also runs the reference's tests with `MINI_LSM_FULL=1`: the crash and corruption
//! sweeps in full rather than sampled.
//!
//! Each check's verdict is computed by a pure function of the test results (`eval_*`), so that
//! xtask's own tests can show that breaking a check names the chapter and the test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;
use crate::markers::Upto;
use crate::scratch::build_and_test;
use crate::sync::{check_sync, Drift};
use crate::testrun::{
    chapters_in_build_log, first_error, per_chapter, run_nextest, run_nextest_with, RunOutcome,
};
use crate::util::step;

/// Runs a command in the workspace, streaming its output; fails with `what` if it fails.
fn run(root: &Path, program: &str, args: &[&str], envs: &[(&str, &str)], what: &str) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {program} {}", args.join(" ")))?;
    if !status.success() {
        bail!("{what} failed: `{program} {}`", args.join(" "));
    }
    Ok(())
}

/// The lint gates: fmt, clippy and rustdoc, warnings denied.
fn lints(root: &Path) -> Result<()> {
    step("cargo fmt --check");
    run(
        root,
        "cargo",
        &["fmt", "--all", "--check"],
        &[],
        "formatting",
    )?;
    step("cargo clippy --workspace --all-targets -- -D warnings");
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
        &[],
        "clippy",
    )?;
    step("cargo doc (warnings denied)");
    run(
        root,
        "cargo",
        &["doc", "--workspace", "--no-deps", "--quiet"],
        &[("RUSTDOCFLAGS", "-D warnings")],
        "rustdoc",
    )
}

/// `cargo x check`: fmt, clippy, and the tests of the reference and of xtask.
///
/// # Errors
/// On the first failure.
pub fn check(root: &Path) -> Result<()> {
    lints(root)?;
    step("tests of the reference and of xtask");
    run(
        root,
        "cargo",
        &[
            "nextest",
            "run",
            "-p",
            "mini-lsm-ref",
            "-p",
            "xtask",
            "--no-fail-fast",
        ],
        &[],
        "tests",
    )
}

/// Check 1: the reference passes every test. Returns one problem per failure.
pub fn eval_reference(manifest: &Manifest, outcome: &RunOutcome) -> Vec<String> {
    if !outcome.built {
        return vec![format!(
            "check 1: the reference does not build: {}",
            first_error(&outcome.build_log)
        )];
    }
    let mut problems = Vec::new();
    for result in outcome.results.iter().filter(|r| !r.passed) {
        let chapter = manifest
            .chapter_of_test(&result.name)
            .map_or("(not a chapter test)".to_string(), |i| {
                manifest.chapters[i].id.clone()
            });
        problems.push(format!(
            "check 1: the reference fails {chapter} test {}: {}",
            result.short_name(),
            result.failure_text("      ")
        ));
    }
    problems.extend(missing_tests(manifest, outcome, "check 1: the reference"));
    problems
}

/// Chapters that ran no test at all.
fn missing_tests(manifest: &Manifest, outcome: &RunOutcome, who: &str) -> Vec<String> {
    per_chapter(manifest, &outcome.results)
        .iter()
        .enumerate()
        .filter(|(_, run)| run.total == 0)
        .map(|(i, _)| format!("{who} ran no test of {}", manifest.chapters[i].id))
        .collect()
}

/// Checks 2 and 3: the pristine starter compiles with every test, and every test fails on it.
pub fn eval_stubs(manifest: &Manifest, outcome: &RunOutcome) -> Vec<String> {
    if !outcome.built {
        let chapters: Vec<&str> = chapters_in_build_log(manifest, &outcome.build_log)
            .into_iter()
            .map(|i| manifest.chapters[i].id.as_str())
            .collect();
        return vec![format!(
            "check 2: the pristine starter does not compile with every chapter's tests copied in \
             (tests of {}): {}",
            if chapters.is_empty() {
                "no chapter in particular".to_string()
            } else {
                chapters.join(", ")
            },
            first_error(&outcome.build_log)
        )];
    }
    let mut problems = Vec::new();
    for result in outcome.results.iter().filter(|r| r.passed) {
        let Some(i) = manifest.chapter_of_test(&result.name) else {
            continue;
        };
        let chapter = &manifest.chapters[i];
        if chapter
            .stub_exempt
            .iter()
            .any(|e| e.test == result.short_name())
        {
            continue;
        }
        problems.push(format!(
            "check 3: {} test {} passes on the pristine starter's stubs, so it tests nothing a \
             learner writes (make it depend on a task, or exempt it in course.toml with a reason)",
            chapter.id,
            result.short_name()
        ));
    }
    problems.extend(missing_tests(
        manifest,
        outcome,
        "check 3: the pristine starter",
    ));
    problems
}

/// Check 4 for chapter `upto`: its checkpoint passes every test of chapters <= `upto`.
pub fn eval_ladder(manifest: &Manifest, upto: usize, outcome: &RunOutcome) -> Vec<String> {
    let chapter = &manifest.chapters[upto].id;
    if !outcome.built {
        return vec![format!(
            "check 4: the checkpoint of {chapter} does not compile with the tests of chapters up \
             to it: {}",
            first_error(&outcome.build_log)
        )];
    }
    outcome
        .results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            let of = manifest
                .chapter_of_test(&r.name)
                .map_or("?".to_string(), |i| manifest.chapters[i].id.clone());
            format!(
                "check 4: the checkpoint of {chapter} fails {of} test {}: {} (a test of an earlier \
                 chapter must not need later work)",
                r.short_name(),
                r.failure_text("      ")
            )
        })
        .collect()
}

/// Check 5, as problems.
pub fn eval_sync(drifts: &[Drift]) -> Vec<String> {
    drifts
        .iter()
        .map(|d| {
            format!(
                "check 5: {} {}: the committed starter is not what `cargo x sync` writes; run \
                 `cargo x sync` and commit",
                d.file, d.detail
            )
        })
        .collect()
}

/// A row of the summary: the outcome of checks 1, 3 and 4 for one chapter.
struct Row {
    reference: String,
    stubs: String,
    ladder: String,
}

/// Runs the reference's corruption campaign (`mini-lsm-ref/tests/corruption.rs`) and returns
/// the line with its counts.
///
/// # Errors
/// If the campaign fails (its first failures are in the error) or prints no counts.
fn corruption_campaign(root: &Path, full: bool) -> Result<String> {
    let output = Command::new("cargo")
        .args([
            "nextest",
            "run",
            "-p",
            "mini-lsm-ref",
            "--test",
            "corruption",
        ])
        .args([
            "--success-output",
            "immediate",
            "--failure-output",
            "immediate",
        ])
        .env("MINI_LSM_FULL", if full { "1" } else { "0" })
        .env("RUST_BACKTRACE", "0")
        .current_dir(root)
        .output()
        .context("running the corruption campaign")?;
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    let counts = text
        .lines()
        .find(|l| l.contains("corruption campaign ("))
        .map(|l| l.trim().to_string());
    match (output.status.success(), counts) {
        (true, Some(counts)) => Ok(counts),
        (_, counts) => bail!(
            "{}\n{}",
            counts.unwrap_or_else(|| "no counts printed".into()),
            text.lines()
                .filter(|l| l.contains(" db, ") || l.contains("panicked"))
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// `cargo x ci`: every check; prints a per-chapter summary. `full` runs verify longer and the
/// sweeps in full.
///
/// # Errors
/// If any check fails; every problem is listed, naming its chapter and test.
pub fn ci(root: &Path, manifest: &Manifest, full: bool) -> Result<()> {
    let started = Instant::now();
    let target = crate::util::target_dir(root)?;
    let mut problems = Vec::new();
    let mut rows: Vec<Row> = manifest
        .chapters
        .iter()
        .map(|_| Row {
            reference: "-".into(),
            stubs: "-".into(),
            ladder: "-".into(),
        })
        .collect();

    step("check 5: the committed starter is what `cargo x sync` writes");
    problems.extend(eval_sync(&check_sync(root, manifest)?));

    step("check 6: fmt, clippy, rustdoc");
    if let Err(e) = lints(root) {
        problems.push(format!("check 6: {e:#}"));
    }

    step("check 6: the book builds, every include, link and image resolves, and headless Chromium loads every page");
    if let Err(e) = crate::book::book(root, manifest, None, true) {
        problems.push(format!("check 6: the book: {e:#}"));
    }

    step("check 1: the reference passes every chapter's tests (and its CLI test)");
    let sweeps: &[(&str, &str)] = if full { &[("MINI_LSM_FULL", "1")] } else { &[] };
    let reference = run_nextest_with(
        &root.join("Cargo.toml"),
        "mini-lsm-ref",
        &target,
        false,
        &[],
        sweeps,
    )?;
    problems.extend(eval_reference(manifest, &reference));
    for (i, run) in per_chapter(manifest, &reference.results).iter().enumerate() {
        rows[i].reference = format!("{}/{} pass", run.passed, run.total);
    }

    step("check 1: the corruption campaign prints its counts (--full: every cut and flip)");
    match corruption_campaign(root, full) {
        Ok(counts) => println!("{counts}"),
        Err(e) => problems.push(format!("check 1: the corruption campaign: {e:#}")),
    }

    step("xtask's own tests");
    let xtask = run_nextest(&root.join("Cargo.toml"), "xtask", &target, false, &[])?;
    for r in xtask.results.iter().filter(|r| !r.passed) {
        problems.push(format!(
            "xtask test {} fails: {}",
            r.name,
            r.failure_text("      ")
        ));
    }
    if !xtask.built || xtask.results.is_empty() {
        problems.push(format!(
            "xtask's tests did not run: {}",
            first_error(&xtask.build_log)
        ));
    }

    step("mini-lsm-verify's own tests");
    let verify_tests = run_nextest(
        &root.join("Cargo.toml"),
        "mini-lsm-verify",
        &target,
        false,
        &[],
    )?;
    for r in verify_tests.results.iter().filter(|r| !r.passed) {
        problems.push(format!(
            "mini-lsm-verify test {} fails: {}",
            r.name,
            r.failure_text("      ")
        ));
    }
    if !verify_tests.built || verify_tests.results.is_empty() {
        problems.push(format!(
            "mini-lsm-verify's tests did not run: {}",
            first_error(&verify_tests.build_log)
        ));
    }

    let time = if full { "300s" } else { "20s" };
    step(&format!(
        "check 7: verify runs clean on the reference for {time}, with every chapter's operations"
    ));
    let args = crate::verify::VerifyArgs {
        engine: "ref".into(),
        budget: crate::verify::Budget {
            time: Some(time.into()),
            ..crate::verify::Budget::default()
        },
        ..crate::verify::VerifyArgs::default()
    };
    if let Err(e) = crate::verify::verify(root, manifest, &args) {
        problems.push(format!("check 7: verify on the reference: {e:#}"));
    }
    step("check 7: verify finds and shrinks the bugs planted in a copy of the reference");
    match crate::planted::planted(root, manifest, "30s") {
        Ok(found) => problems.extend(found.into_iter().map(|p| format!("check 7: {p}"))),
        Err(e) => problems.push(format!("check 7: the planted bugs: {e:#}")),
    }

    step(
        "checks 2 and 3: the pristine starter, with every chapter's tests copied in a scratch copy",
    );
    let all: Vec<usize> = (0..manifest.chapters.len()).collect();
    let stubs = build_and_test(root, manifest, "pristine", Upto::Nothing, &all)?;
    problems.extend(eval_stubs(manifest, &stubs));
    step("check 3: the pristine starter's shell survives a stub: `put a 1`, `help`, `quit`");
    match crate::repl_check::check(root, "pristine", &manifest.chapters[0]) {
        Ok(found) => problems.extend(found),
        Err(e) => problems.push(format!("check 3: the shell: {e:#}")),
    }
    for (i, run) in per_chapter(manifest, &stubs.results).iter().enumerate() {
        rows[i].stubs = if stubs.built {
            format!("{}/{} fail", run.total - run.passed, run.total)
        } else {
            "no build".into()
        };
    }

    for (i, chapter) in manifest.chapters.iter().enumerate() {
        step(&format!(
            "check 4: the checkpoint of {} passes the tests of chapters up to it",
            chapter.id
        ));
        let tests: Vec<usize> = (0..=i).collect();
        let outcome = build_and_test(root, manifest, "ladder", Upto::Chapter(i), &tests)?;
        let found = eval_ladder(manifest, i, &outcome);
        rows[i].ladder = if !outcome.built {
            "no build".into()
        } else {
            format!(
                "{}/{} pass",
                outcome.results.iter().filter(|r| r.passed).count(),
                outcome.results.len()
            )
        };
        problems.extend(found);
    }

    println!(
        "\n{:<12} {:<16} {:<22} {:<16}",
        "chapter", "1: reference", "3: stubs (all fail)", "4: ladder"
    );
    for (chapter, row) in manifest.chapters.iter().zip(&rows) {
        println!(
            "{:<12} {:<16} {:<22} {:<16}",
            chapter.id, row.reference, row.stubs, row.ladder
        );
    }
    for chapter in &manifest.chapters {
        for e in &chapter.stub_exempt {
            println!(
                "exempt from check 3: {} {}: {}",
                chapter.id, e.test, e.reason
            );
        }
    }
    println!("\nci took {:.0?}", started.elapsed());
    // The closing line CI runners read: tests of the reference and of xtask, and the problems.
    let tests_passed = reference
        .results
        .iter()
        .chain(&xtask.results)
        .chain(&verify_tests.results)
        .filter(|r| r.passed)
        .count();
    println!("ci: {tests_passed} passed, {} failed", problems.len());
    if problems.is_empty() {
        println!("all checks passed");
        return Ok(());
    }
    bail!(
        "{} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrun::TestResult;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
[[chapter]]
id = "week1_day1"
title = "One"
book = "week1-01-one"
tasks = ["a"]

[[chapter]]
id = "week1_day2"
title = "Two"
book = "week1-02-two"
tasks = ["b"]
stub_exempt = [{ test = "test_task1_exempt", reason = "because" }]
"#,
        )
        .unwrap()
    }

    fn result(chapter: &str, test: &str, passed: bool) -> TestResult {
        TestResult {
            name: format!("mini-lsm-starter::mini_lsm_starter$tests::{chapter}::{test}"),
            passed,
            panic: (!passed).then(|| "assertion failed: x".to_string()),
            location: None,
        }
    }

    fn outcome(results: Vec<TestResult>) -> RunOutcome {
        RunOutcome {
            built: true,
            build_log: String::new(),
            results,
        }
    }

    /// Check 1: a failing reference test is reported with its chapter, name and panic.
    #[test]
    fn reference_failure_names_chapter_and_test() {
        let m = manifest();
        let o = outcome(vec![
            result("week1_day1", "test_task1_a", true),
            result("week1_day2", "test_task1_b", false),
        ]);
        let problems = eval_reference(&m, &o);
        assert_eq!(
            problems,
            vec!["check 1: the reference fails week1_day2 test test_task1_b: assertion failed: x"]
        );
    }

    /// Check 1: a chapter that ran no test is a problem too.
    #[test]
    fn chapter_without_tests_is_reported() {
        let m = manifest();
        let problems = eval_reference(&m, &outcome(vec![result("week1_day1", "t", true)]));
        assert_eq!(
            problems,
            vec!["check 1: the reference ran no test of week1_day2"]
        );
    }

    /// Check 2: a compile error in a copied test file names its chapter and the error.
    #[test]
    fn stub_build_failure_names_chapter() {
        let m = manifest();
        let o = RunOutcome {
            built: false,
            build_log: "error[E0599]: no method named `foo`\n  --> src/tests/week1_day2.rs:3:7\n"
                .into(),
            results: vec![],
        };
        let problems = eval_stubs(&m, &o);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("check 2:"), "{}", problems[0]);
        assert!(
            problems[0].contains("tests of week1_day2"),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].contains("no method named `foo`"),
            "{}",
            problems[0]
        );
    }

    /// Check 3: a test passing on stubs is named; an exempt one is not.
    #[test]
    fn test_passing_on_stubs_is_named_unless_exempt() {
        let m = manifest();
        let o = outcome(vec![
            result("week1_day1", "test_task1_trivial", true),
            result("week1_day2", "test_task1_exempt", true),
            result("week1_day2", "test_task1_honest", false),
        ]);
        let problems = eval_stubs(&m, &o);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("check 3: week1_day1 test test_task1_trivial passes"));
    }

    /// Check 4: a checkpoint failing an earlier chapter's test names both chapters and the test.
    #[test]
    fn ladder_failure_names_chapter_and_test() {
        let m = manifest();
        let o = outcome(vec![result(
            "week1_day1",
            "test_task1_needs_later_work",
            false,
        )]);
        let problems = eval_ladder(&m, 1, &o);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with(
            "check 4: the checkpoint of week1_day2 fails week1_day1 test test_task1_needs_later_work"
        ));
    }

    /// Check 5: a drifted starter file is named with the fix.
    #[test]
    fn sync_drift_is_named() {
        let problems = eval_sync(&[Drift {
            file: "mini-lsm-starter/src/mem_table.rs".into(),
            detail: "differs from line 3".into(),
        }]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("mini-lsm-starter/src/mem_table.rs differs from line 3"));
        assert!(problems[0].contains("run `cargo x sync`"));
    }
}
