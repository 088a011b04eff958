//! The learner's commands: `copy-test`, `reset-tests`, `scheck`, `status` and `checkpoint`.
//!
//! They work on `mini-lsm-starter/`, which is the learner's own code: nothing here reformats it,
//! and nothing overwrites it without a backup.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;
use crate::markers::Upto;
use crate::scratch::copy_test_files;
use crate::sync::{compare_trees, generate_into};
use crate::testrun::{per_chapter, run_nextest, ChapterRun, RunOutcome, TestResult};
use crate::util::{rel, step, target_dir};

/// The starter's `src/tests.rs` for the copied chapters `copied` (manifest indices).
pub fn starter_tests_rs(manifest: &Manifest, copied: &[usize]) -> String {
    let mut out = String::from(
        "// Written by `cargo x copy-test`: the chapters whose tests you have copied, in order.\n\
         // Run `cargo x copy-test --week 1 --day 1` to start.\n",
    );
    if !copied.is_empty() {
        // Through `#[path]`, so that the harness's own modules are found beside it.
        out.push_str("#[path = \"tests/harness.rs\"]\nmod harness;\n");
    }
    for &i in copied {
        out.push_str(&format!("mod {};\n", manifest.chapters[i].id));
    }
    out
}

fn starter_src(root: &Path) -> PathBuf {
    root.join("mini-lsm-starter/src")
}

/// The chapters whose tests are in the starter, in course order.
pub fn copied_chapters(root: &Path, manifest: &Manifest) -> Vec<usize> {
    let dir = starter_src(root).join("tests");
    (0..manifest.chapters.len())
        .filter(|&i| dir.join(manifest.chapters[i].test_file()).exists())
        .collect()
}

/// A fresh folder under `.checkpoint-backups/` for files about to be overwritten.
fn backup_dir(root: &Path, what: &str) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    root.join(".checkpoint-backups")
        .join(format!("{secs}-{what}"))
}

/// Copies `file` (under the workspace) into `backup`, keeping its relative path.
fn back_up(root: &Path, backup: &Path, file: &Path) -> Result<()> {
    let dest = backup.join(file.strip_prefix(root).unwrap_or(file));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(file, &dest).with_context(|| format!("backing up {}", file.display()))?;
    Ok(())
}

/// Copies chapters' tests and the harness into the starter.
///
/// # Errors
/// If the chapter does not exist or the files cannot be copied.
pub fn copy_test_files_into_starter(
    root: &Path,
    manifest: &Manifest,
    chapters: &[usize],
) -> Result<()> {
    let dest = starter_src(root).join("tests");
    std::fs::create_dir_all(&dest)?;
    // A test file the learner edited is backed up before it is replaced: nothing is lost.
    let backup = backup_dir(root, "copy-test");
    for &i in chapters {
        let name = manifest.chapters[i].test_file();
        let (ours, theirs) = (root.join("mini-lsm-tests").join(&name), dest.join(&name));
        if theirs.exists() && std::fs::read(&ours).ok() != std::fs::read(&theirs).ok() {
            back_up(root, &backup, &theirs)?;
            println!(
                "your edited {} was backed up to {}",
                rel(root, &theirs),
                rel(root, &backup)
            );
        }
    }
    copy_test_files(root, manifest, chapters, &dest)?;
    let mut copied = copied_chapters(root, manifest);
    copied.sort_unstable();
    std::fs::write(
        starter_src(root).join("tests.rs"),
        starter_tests_rs(manifest, &copied),
    )?;
    for &i in chapters {
        let c = &manifest.chapters[i];
        println!(
            "copied {} ({}) tests into mini-lsm-starter/src/tests/{}",
            c.label(),
            c.title,
            c.test_file()
        );
    }
    Ok(())
}

/// `cargo x copy-test`: [`copy_test_files_into_starter`], then what to do next.
///
/// # Errors
/// As [`copy_test_files_into_starter`].
pub fn copy_test(root: &Path, manifest: &Manifest, chapters: &[usize]) -> Result<()> {
    copy_test_files_into_starter(root, manifest, chapters)?;
    println!(
        "next: read book/src/{}.md, then `cargo x scheck` runs the tests",
        manifest.chapters[chapters[0]].book
    );
    Ok(())
}

/// `cargo x reset-tests`: removes the copied tests (backed up) and empties `tests.rs`.
///
/// # Errors
/// On an I/O error.
pub fn reset_tests(root: &Path, manifest: &Manifest) -> Result<()> {
    let dir = starter_src(root).join("tests");
    if dir.exists() {
        let backup = backup_dir(root, "reset-tests");
        for entry in std::fs::read_dir(&dir)? {
            back_up(root, &backup, &entry?.path())?;
        }
        std::fs::remove_dir_all(&dir)?;
        println!(
            "removed the copied tests (a copy is in {})",
            rel(root, &backup)
        );
    }
    std::fs::write(
        starter_src(root).join("tests.rs"),
        starter_tests_rs(manifest, &[]),
    )?;
    Ok(())
}

/// Runs a cargo command in the workspace; returns whether it succeeded and its combined output.
fn cargo(root: &Path, args: &[&str]) -> Result<(bool, String)> {
    let output = Command::new("cargo")
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    let mut text = String::from_utf8_lossy(&output.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
}

/// Prints the first `n` lines of `text`, indented.
fn print_head(text: &str, n: usize) {
    for line in text.lines().take(n) {
        println!("    {line}");
    }
}

/// Runs the starter's copied tests (optionally one chapter's only).
fn run_starter_tests(root: &Path, only: Option<usize>, manifest: &Manifest) -> Result<RunOutcome> {
    let filter: Vec<String> = only
        .map(|i| vec![format!("tests::{}::", manifest.chapters[i].id)])
        .unwrap_or_default();
    run_nextest(
        &root.join("Cargo.toml"),
        "mini-lsm-starter",
        &target_dir(root)?,
        true,
        &filter,
    )
}

/// The learner's progress: which chapters' tests are copied, and how one run of them went.
/// `scheck`, `status` and `verify` all read this one run, so they agree.
pub struct Progress {
    /// The chapters whose tests are copied (manifest indices).
    pub copied: Vec<usize>,
    /// The run of those tests.
    pub outcome: RunOutcome,
    /// The run per chapter, indexed like the manifest.
    pub table: Vec<ChapterRun>,
}

impl Progress {
    /// Per chapter: its tests are copied, they build, and every one of them passes.
    pub fn done(&self) -> Vec<bool> {
        (0..self.table.len())
            .map(|i| self.copied.contains(&i) && self.outcome.built && self.table[i].all_pass())
            .collect()
    }

    /// Chapter `i`'s state in words, as both tables print it.
    pub fn state(&self, i: usize) -> String {
        let run = &self.table[i];
        if !self.copied.contains(&i) {
            "tests not copied".to_string()
        } else if !self.outcome.built {
            "does not build".to_string()
        } else if run.total == 0 {
            "no tests ran".to_string()
        } else if run.all_pass() {
            format!("done ({}/{} pass)", run.passed, run.total)
        } else {
            format!("{}/{} tests pass", run.passed, run.total)
        }
    }
}

/// Runs the copied tests (of chapter `only`, or all of them) once and returns the progress.
///
/// # Errors
/// If the tests cannot be run.
pub fn progress(root: &Path, manifest: &Manifest, only: Option<usize>) -> Result<Progress> {
    let copied = copied_chapters(root, manifest);
    let outcome = if copied.is_empty() || only.is_some_and(|i| !copied.contains(&i)) {
        RunOutcome {
            built: true,
            ..RunOutcome::default()
        }
    } else {
        step("build and run your copied tests (cargo nextest)");
        run_starter_tests(root, only, manifest)?
    };
    let table = per_chapter(manifest, &outcome.results);
    Ok(Progress {
        copied,
        outcome,
        table,
    })
}

/// Failures with the same message (a stub reached by several tests), in order of first
/// appearance: the message, where the first one failed, and the tests' names.
fn group_failures(failures: &[TestResult]) -> Vec<(&str, Option<&str>, Vec<&str>)> {
    let mut groups: Vec<(&str, Option<&str>, Vec<&str>)> = Vec::new();
    for failure in failures {
        let message = failure
            .panic
            .as_deref()
            .unwrap_or("failed (no panic message)");
        match groups.iter_mut().find(|(m, _, _)| *m == message) {
            Some((_, _, names)) => names.push(failure.short_name()),
            None => groups.push((
                message,
                failure.location.as_deref(),
                vec![failure.short_name()],
            )),
        }
    }
    groups
}

/// Prints the per-chapter table for `chapters`, with every failing test of each chapter and its
/// whole message, and returns whether every test passed.
fn print_table(manifest: &Manifest, chapters: &[usize], progress: &Progress) -> bool {
    println!(
        "{:<12} {:<22} book page (book/src/<page>.md)",
        "chapter", "tests"
    );
    let mut all_passed = true;
    let mut first_failure: Option<&str> = None;
    for &i in chapters {
        let chapter = &manifest.chapters[i];
        all_passed &= progress.done()[i];
        println!(
            "{:<12} {:<22} {}",
            chapter.id,
            progress.state(i),
            chapter.book
        );
        for (message, location, names) in group_failures(&progress.table[i].failures) {
            first_failure.get_or_insert(names[0]);
            let at = location.map_or(String::new(), |l| format!(" (at {l})"));
            let names = if names.len() > 3 {
                format!("{} and {} more", names[..3].join(", "), names.len() - 3)
            } else {
                names.join(", ")
            };
            println!("  FAIL {names}{at}:");
            for line in message.lines() {
                println!("       {line}");
            }
        }
    }
    if let Some(name) = first_failure {
        println!(
            "\nOne test with its whole output (what it printed, the panic and where): \
             `cargo x scheck --test {name}`"
        );
    }
    all_passed
}

/// `cargo x scheck`: fmt check, build, tests, clippy on the starter, then the per-chapter table.
///
/// # Errors
/// If anything failed: formatting, the build, a test or clippy.
pub fn scheck(root: &Path, manifest: &Manifest, only: Option<usize>) -> Result<()> {
    let copied = copied_chapters(root, manifest);
    if copied.is_empty() {
        bail!("no tests are copied yet: run `cargo x copy-test --week 1 --day 1` first");
    }
    let chapters: Vec<usize> = match only {
        Some(i) if !copied.contains(&i) => bail!(
            "the tests of {} are not copied: run `cargo x copy-test --week {} --day {}`",
            manifest.chapters[i].label(),
            manifest.chapters[i].week,
            manifest.chapters[i].day
        ),
        Some(i) => vec![i],
        None => copied,
    };
    let mut problems = Vec::new();
    step("cargo fmt --check (your files are not changed)");
    let (ok, out) = cargo(root, &["fmt", "--check", "-p", "mini-lsm-starter"])?;
    if !ok {
        print_head(&out, 20);
        problems.push("formatting: run `cargo fmt -p mini-lsm-starter`".to_string());
    }
    let progress = progress(root, manifest, only)?;
    if !progress.outcome.built {
        bail!(
            "the starter does not build (the compiler's errors are above); fix the first one and \
             run `cargo x scheck` again"
        );
    }
    step("cargo clippy -- -D warnings");
    let clippy = Command::new("cargo")
        .args(["clippy", "-p", "mini-lsm-starter", "--all-targets", "--"])
        .args(["-D", "warnings"])
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .context("running cargo clippy")?;
    if !clippy.success() {
        problems.push("clippy: fix the warnings above".to_string());
    }
    println!();
    if !print_table(manifest, &chapters, &progress) {
        problems.push(
            "some tests fail: see the table above, and read each failing chapter's book page"
                .to_string(),
        );
    }
    if problems.is_empty() {
        println!("\nall checks passed");
        return Ok(());
    }
    bail!("scheck failed:\n  - {}", problems.join("\n  - "))
}

/// `cargo x scheck --test NAME`: runs the copied tests whose name contains `name`, showing their
/// whole output whether they pass or fail.
///
/// # Errors
/// If no copied test has that name, or one of them fails.
pub fn scheck_test(root: &Path, manifest: &Manifest, name: &str) -> Result<()> {
    if copied_chapters(root, manifest).is_empty() {
        bail!("no tests are copied yet: run `cargo x copy-test --week 1 --day 1` first");
    }
    let args = [
        "nextest",
        "run",
        "-p",
        "mini-lsm-starter",
        "--lib",
        "--no-fail-fast",
        "--no-tests",
        "fail",
        "--success-output",
        "immediate",
        "--failure-output",
        "immediate",
        name,
    ];
    step(&format!("cargo {}", args.join(" ")));
    let status = Command::new("cargo")
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .context(
            "running `cargo nextest` (install it with `cargo install cargo-nextest --locked`)",
        )?;
    if !status.success() {
        bail!(
            "the tests matching `{name}` failed, or none matched (above); `cargo x scheck` lists \
             every copied test that fails"
        );
    }
    Ok(())
}

/// `cargo x status`: every chapter, copied or not, passing or not, and what to do next.
///
/// # Errors
/// If the tests cannot be run.
pub fn status(root: &Path, manifest: &Manifest) -> Result<()> {
    let progress = progress(root, manifest, None)?;
    let done = progress.done();
    let mut next: Option<String> = None;
    println!("{:<12} {:<22} {:<28} book", "chapter", "title", "status");
    for (i, chapter) in manifest.chapters.iter().enumerate() {
        if !done[i] && next.is_none() {
            next = Some(if progress.copied.contains(&i) {
                format!(
                    "make {}'s tests pass: read book/src/{}.md, then `cargo x scheck --week {} --day {}`",
                    chapter.label(), chapter.book, chapter.week, chapter.day
                )
            } else {
                format!(
                    "start {}: read book/src/{}.md, then `cargo x copy-test --week {} --day {}`",
                    chapter.label(),
                    chapter.book,
                    chapter.week,
                    chapter.day
                )
            });
        }
        println!(
            "{:<12} {:<22} {:<28} {}",
            chapter.id,
            chapter.title,
            progress.state(i),
            chapter.book
        );
    }
    println!();
    match next {
        Some(next) => println!("next: {next}"),
        None => println!("every chapter is done"),
    }
    if !progress.outcome.built {
        println!("(your starter does not build; `cargo x scheck` shows the errors)");
    }
    Ok(())
}

/// `cargo x checkpoint`: writes the reference solutions of every chapter up to `upto` into the
/// starter, and copies those chapters' tests.
///
/// # Errors
/// If it would overwrite the learner's own work without `force`, or on an I/O error.
pub fn checkpoint(root: &Path, manifest: &Manifest, upto: usize, force: bool) -> Result<()> {
    let scratch = target_dir(root)?.join("xtask/checkpoint");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let target = scratch.join("target");
    generate_into(root, manifest, Upto::Chapter(upto), &target)?;
    let starter = starter_src(root);
    // Files that will change. Of those, the learner's own work is any file that is not exactly
    // what some checkpoint (the pristine starter, or the solutions up to some chapter) wrote.
    let changing = compare_trees(&target, &starter)?;
    let mut learner_work: Vec<&str> = changing.iter().map(|d| d.file.as_str()).collect();
    let versions =
        std::iter::once(Upto::Nothing).chain((0..manifest.chapters.len()).map(Upto::Chapter));
    for (i, version) in versions.enumerate() {
        if learner_work.is_empty() {
            break;
        }
        let dir = scratch.join(format!("version-{i}"));
        generate_into(root, manifest, version, &dir)?;
        let differs = compare_trees(&dir, &starter)?;
        learner_work.retain(|file| differs.iter().any(|d| d.file == *file));
    }
    if !learner_work.is_empty() && !force {
        bail!(
            "checkpoint would overwrite your own code in mini-lsm-starter/src: {}\n\
             Re-run with --force to replace it; a backup is kept under .checkpoint-backups/.",
            learner_work.join(", ")
        );
    }
    let backup = backup_dir(root, &format!("checkpoint-{}", manifest.chapters[upto].id));
    for drift in &changing {
        let file = starter.join(&drift.file);
        if file.exists() {
            back_up(root, &backup, &file)?;
        }
    }
    generate_into(root, manifest, Upto::Chapter(upto), &starter)?;
    let chapter = &manifest.chapters[upto];
    println!(
        "the starter now holds the reference solutions up to {} ({} files changed{})",
        chapter.label(),
        changing.len(),
        if changing.is_empty() {
            String::new()
        } else {
            format!("; previous versions in {}", rel(root, &backup))
        }
    );
    copy_test_files_into_starter(root, manifest, &(0..=upto).collect::<Vec<_>>())?;
    match manifest.chapters.get(upto + 1) {
        Some(next) => println!(
            "next: {}: read book/src/{}.md, then `cargo x copy-test --week {} --day {}`",
            next.label(),
            next.book,
            next.week,
            next.day
        ),
        None => println!("that was the last chapter"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            "[[chapter]]\nid = \"week1_day1\"\ntitle = \"a\"\nbook = \"a\"\ntasks = [\"x\"]\n\n\
             [[chapter]]\nid = \"week1_day2\"\ntitle = \"b\"\nbook = \"b\"\ntasks = [\"x\"]\n\n\
             [[chapter]]\nid = \"week1_day3\"\ntitle = \"c\"\nbook = \"c\"\ntasks = [\"x\"]\n",
        )
        .unwrap()
    }

    fn result(chapter: &str, test: &str, panic: Option<&str>) -> TestResult {
        TestResult {
            name: format!("s::s$tests::{chapter}::{test}"),
            passed: panic.is_none(),
            panic: panic.map(str::to_string),
            location: panic.map(|_| format!("src/tests/{chapter}.rs:1:1")),
        }
    }

    fn progress_of(copied: Vec<usize>, results: Vec<TestResult>) -> Progress {
        let m = manifest();
        let outcome = RunOutcome {
            built: true,
            build_log: String::new(),
            results,
        };
        let table = per_chapter(&m, &outcome.results);
        Progress {
            copied,
            outcome,
            table,
        }
    }

    /// `scheck` and `status` print a chapter's state from the same run and the same words:
    /// done, the count of passing tests, or not copied.
    #[test]
    fn one_run_one_state_per_chapter() {
        let p = progress_of(
            vec![0, 1],
            vec![
                result("week1_day1", "a", None),
                result("week1_day2", "b", None),
                result("week1_day2", "c", Some("stub")),
            ],
        );
        assert_eq!(p.state(0), "done (1/1 pass)");
        assert_eq!(p.state(1), "1/2 tests pass");
        assert_eq!(p.state(2), "tests not copied");
        assert_eq!(p.done(), [true, false, false]);
    }

    /// Failures with one message (a stub several tests reach) are listed once with every
    /// name; different messages stay apart, in order.
    #[test]
    fn failures_with_one_message_are_grouped() {
        let failures = vec![
            result("w", "t1", Some("not yet implemented: task 1")),
            result(
                "w",
                "t2",
                Some("assertion `left == right` failed\n  left: 1\n right: 2"),
            ),
            result("w", "t3", Some("not yet implemented: task 1")),
        ];
        let groups = group_failures(&failures);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "not yet implemented: task 1");
        assert_eq!(groups[0].2, ["t1", "t3"]);
        assert_eq!(groups[1].2, ["t2"]);
        assert!(groups[1].0.contains("right: 2"));
    }
}
