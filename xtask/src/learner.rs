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
use crate::testrun::{per_chapter, run_nextest, RunOutcome};
use crate::util::{rel, step};

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
        &root.join("target"),
        true,
        &filter,
    )
}

/// Prints the per-chapter table for `chapters` and returns whether every test passed. The first
/// failure of a chapter goes on its own line, whole, so its message is never cut.
fn print_table(manifest: &Manifest, chapters: &[usize], outcome: &RunOutcome) -> bool {
    let table = per_chapter(manifest, &outcome.results);
    println!(
        "{:<12} {:>7}  book page (book/src/<page>.md)",
        "chapter", "passed"
    );
    let mut all_passed = true;
    for &i in chapters {
        let (passed, total, first) = &table[i];
        all_passed &= first.is_none() && *total > 0;
        println!(
            "{:<12} {:>7}  {}",
            manifest.chapters[i].id,
            format!("{passed}/{total}"),
            manifest.chapters[i].book
        );
        match first {
            Some(t) => println!(
                "{:<12} first failure: {}: {}",
                "",
                t.short_name(),
                t.panic.as_deref().unwrap_or("failed (no panic message)")
            ),
            None if *total == 0 => println!("{:<12} no tests ran", ""),
            None => {}
        }
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
    step("build and run the copied tests (cargo nextest)");
    let outcome = run_starter_tests(root, only, manifest)?;
    if !outcome.built {
        print_head(&outcome.build_log, 40);
        bail!(
            "the starter does not build; fix the first error above and run `cargo x scheck` again"
        );
    }
    step("cargo clippy -- -D warnings");
    let (ok, out) = cargo(
        root,
        &[
            "clippy",
            "-p",
            "mini-lsm-starter",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    if !ok {
        print_head(&out, 20);
        problems.push("clippy: fix the warnings above".to_string());
    }
    println!();
    if !print_table(manifest, &chapters, &outcome) {
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

/// The learner's progress: which chapters' tests are copied, and how they ran.
pub struct Progress {
    /// The chapters whose tests are copied (manifest indices).
    pub copied: Vec<usize>,
    /// The run of those tests.
    pub outcome: RunOutcome,
}

impl Progress {
    /// Per chapter: its tests are copied, they build, and every one of them passes.
    pub fn done(&self, manifest: &Manifest) -> Vec<bool> {
        per_chapter(manifest, &self.outcome.results)
            .iter()
            .enumerate()
            .map(|(i, (passed, total, _))| {
                self.copied.contains(&i) && self.outcome.built && passed == total && *total > 0
            })
            .collect()
    }
}

/// The last chapter of the unbroken run of done chapters from the first one (`None`: the first
/// chapter is not done). A chapter done after an unfinished one does not count: later chapters
/// build on earlier ones.
pub fn done_prefix(done: &[bool]) -> Option<usize> {
    done.iter().take_while(|d| **d).count().checked_sub(1)
}

/// Runs the copied tests (of chapter `only`, or all of them) and returns the progress.
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
        step("running your copied tests");
        run_starter_tests(root, only, manifest)?
    };
    Ok(Progress { copied, outcome })
}

/// `cargo x status`: every chapter, copied or not, passing or not, and what to do next.
///
/// # Errors
/// If the tests cannot be run.
pub fn status(root: &Path, manifest: &Manifest) -> Result<()> {
    let Progress { copied, outcome } = progress(root, manifest, None)?;
    let table = per_chapter(manifest, &outcome.results);
    let mut next: Option<String> = None;
    println!("{:<12} {:<22} {:<28} book", "chapter", "title", "status");
    for (i, chapter) in manifest.chapters.iter().enumerate() {
        let (passed, total, _) = &table[i];
        let status = if !copied.contains(&i) {
            "tests not copied".to_string()
        } else if !outcome.built {
            "does not build".to_string()
        } else if passed == total && *total > 0 {
            "done".to_string()
        } else {
            format!("{passed}/{total} tests pass")
        };
        if status != "done" && next.is_none() {
            next = Some(if copied.contains(&i) {
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
            chapter.id, chapter.title, status, chapter.book
        );
    }
    println!();
    match next {
        Some(next) => println!("next: {next}"),
        None => println!("every chapter is done"),
    }
    if !outcome.built {
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
    let scratch = root.join("target/xtask/checkpoint");
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

    /// Progress is the unbroken run of done chapters from the first; a gap ends it.
    #[test]
    fn progress_is_the_done_prefix() {
        assert_eq!(done_prefix(&[]), None);
        assert_eq!(done_prefix(&[false, true]), None);
        assert_eq!(done_prefix(&[true, true, false, true]), Some(1));
        assert_eq!(done_prefix(&[true, true, true]), Some(2));
    }
}
