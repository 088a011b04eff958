//! `cargo x verify` and `cargo x compare --week W --day D`: build `mini-lsm-verify` with the
//! engines it needs and run it, with the operations of the chapters the learner is on.
//!
//! The chapters come from `--upto weekW_dayD`, or, for the starter, from the learner's work: the
//! latest chapter whose tests are copied, with every chapter before it, even when some of their
//! tests fail (a learner whose chapter is broken is the one who needs verify most). The copied
//! tests are run once, as `cargo x status` runs them, and a chapter whose tests fail, or that
//! verify leaves out, is named in a notice before and after the run. The reference has done
//! every chapter.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::learner::progress;
use crate::manifest::Manifest;
use crate::util::{cargo_build, step, target_dir};

/// The exit status of `mini-lsm-verify` when it found a failure.
const FOUND: i32 = 1;
/// Its exit status when the engine reached a task stub.
const STUB: i32 = 2;

/// What to search for and for how long.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    pub cases: Option<u64>,
    pub seed: Option<u64>,
    pub time: Option<String>,
}

impl Budget {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.cases {
            args.extend(["--cases".to_string(), n.to_string()]);
        }
        if let Some(s) = self.seed {
            args.extend(["--seed".to_string(), s.to_string()]);
        }
        if let Some(t) = &self.time {
            args.extend(["--time".to_string(), t.clone()]);
        }
        args
    }
}

/// Builds `mini-lsm-verify` of the workspace at `root` with the engines `features` (cargo
/// features `ref`, `starter`), showing cargo's progress, and returns the binary (wherever the
/// target directory really is).
///
/// # Errors
/// If it does not build; for the starter, the message says so.
pub fn build(root: &Path, features: &[&str]) -> Result<PathBuf> {
    step(&format!(
        "building mini-lsm-verify with the engine(s): {}",
        features.join(", ")
    ));
    let features = features.join(",");
    let build = cargo_build(
        root,
        &[
            "-p",
            "mini-lsm-verify",
            "--no-default-features",
            "--features",
            &features,
        ],
        &[],
    )?;
    if !build.ok {
        if build
            .failed_packages
            .iter()
            .any(|p| p.contains("mini-lsm-starter"))
        {
            bail!(
                "your starter does not build (the compiler's errors are above), so verify cannot \
                 run it; `cargo x scheck` shows them too"
            );
        }
        bail!("mini-lsm-verify does not build (cargo's errors are above)");
    }
    build
        .executables
        .into_iter()
        .find(|(name, _)| name.starts_with("mini-lsm-verify"))
        .map(|(_, path)| path)
        .context("cargo built mini-lsm-verify but reported no executable for it")
}

/// Runs `binary` in `dir` with `args`, dropping the engine's recovery notes from its stderr (a
/// case reopens an engine thousands of times, and each reopen after a crash reports what it
/// cleaned up); its stdout goes to `stdout_to` if given. Returns its exit status.
///
/// # Errors
/// If it cannot be started.
pub fn run_quietly(
    binary: &Path,
    dir: &Path,
    args: &[String],
    envs: &[(&str, &str)],
    stdout_to: Option<&Path>,
) -> Result<i32> {
    let stdout = match stdout_to {
        Some(path) => Stdio::from(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Stdio::inherit(),
    };
    let mut child = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let filter = std::thread::spawn(move || {
        let mut out = std::io::stderr();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !line.starts_with("mini-lsm: recovery of ") {
                let _ = writeln!(out, "{line}");
            }
        }
    });
    let status = child.wait()?;
    let _ = filter.join();
    Ok(status.code().unwrap_or(-1))
}

/// Options of `cargo x verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyArgs {
    pub engine: String,
    pub upto: Option<String>,
    pub budget: Budget,
    pub threads: Option<usize>,
    pub runs: Option<usize>,
    /// Where the binary writes `key=value` lines about the outcome (for xtask's own checks).
    pub summary: Option<PathBuf>,
}

/// The chapters verify uses: every chapter up to `upto` (an index), and what to tell the
/// learner about them, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub upto: usize,
    /// The line that cannot be missed: chapters verify includes although their tests fail, or
    /// chapters it leaves out; why, and how to change it.
    pub notice: Option<String>,
}

/// A chapter's test counts: `(passed, total)`, `None` when its tests are not copied.
pub type Counts = Option<(usize, usize)>;

/// The scope for the starter from the learner's work: `counts` per chapter (manifest order),
/// and `--upto` if given. `None`: no tests are copied and no `--upto`, so nothing to check.
pub fn learner_scope(manifest: &Manifest, counts: &[Counts], upto: Option<usize>) -> Option<Scope> {
    let latest = counts.iter().rposition(Option::is_some);
    let upto = upto.or(latest)?;
    let id = |i: usize| manifest.chapters[i].id.as_str();
    let mut failing = Vec::new();
    let mut first_failing = None;
    let mut not_copied = Vec::new();
    for (i, count) in counts.iter().enumerate().take(upto + 1) {
        match count {
            Some((passed, total)) if passed < total || *total == 0 => {
                failing.push(format!("{} ({passed}/{total} tests pass)", id(i)));
                first_failing.get_or_insert(i);
            }
            Some(_) => {}
            None => not_copied.push(id(i)),
        }
    }
    let mut parts = Vec::new();
    if !failing.is_empty() {
        parts.push(format!(
            "verify includes {} although {} tests fail, so what it finds may be a bug they \
             already show",
            failing.join(", "),
            if failing.len() == 1 { "its" } else { "their" }
        ));
    }
    if !not_copied.is_empty() {
        parts.push(format!(
            "verify includes {}, whose tests you have not copied",
            not_copied.join(", ")
        ));
    }
    let left_out: Vec<&str> = latest
        .filter(|&latest| latest > upto)
        .map(|latest| (upto + 1..=latest).map(id).collect())
        .unwrap_or_default();
    if !left_out.is_empty() {
        parts.push(format!(
            "verify leaves out {} because of --upto {}; leave out --upto to include {}",
            left_out.join(", "),
            id(upto),
            if left_out.len() == 1 { "it" } else { "them" }
        ));
    } else if let Some(first) = first_failing.filter(|&f| f > 0) {
        parts.push(format!(
            "to check only the chapters before: `cargo x verify --upto {}`",
            id(first - 1)
        ));
    }
    let notice = (!parts.is_empty()).then(|| format!("{}.", parts.join("; ")));
    Some(Scope { upto, notice })
}

/// The scope: `--upto`, everything for the reference, or the learner's work. `None`: nothing to
/// check, and the message has been printed.
fn scope(
    root: &Path,
    manifest: &Manifest,
    engine: &str,
    upto: Option<&str>,
) -> Result<Option<Scope>> {
    let upto = match upto {
        Some(id) => Some(manifest.index_of(id).with_context(|| {
            format!(
                "--upto {id}: no such chapter; valid chapters: {}",
                manifest.valid_ids()
            )
        })?),
        None => None,
    };
    if engine == "ref" {
        let upto = upto.unwrap_or(manifest.chapters.len() - 1);
        return Ok(Some(Scope { upto, notice: None }));
    }
    let progress = progress(root, manifest, None)?;
    let counts: Vec<Counts> = (0..manifest.chapters.len())
        .map(|i| {
            let run = &progress.table[i];
            progress
                .copied
                .contains(&i)
                .then_some((run.passed, run.total))
        })
        .collect();
    let Some(mut scope) = learner_scope(manifest, &counts, upto) else {
        let first = &manifest.chapters[0];
        println!(
            "verify has nothing to check yet: you have not copied any chapter's tests, and every \
             operation needs {}.\nStart there: read book/src/{}.md, then `cargo x copy-test \
             --week {} --day {}`. To run verify on chapters of your choice anyway: `cargo x \
             verify --upto {}`.",
            first.label(),
            first.book,
            first.week,
            first.day,
            first.id
        );
        return Ok(None);
    };
    if !progress.outcome.built {
        scope.notice = Some(format!(
            "your copied tests do not build, so verify cannot tell which pass; it uses the \
             chapters up to {} (`cargo x scheck` shows the errors)",
            manifest.chapters[scope.upto].id
        ));
    }
    Ok(Some(scope))
}

/// Prints the notice so that it stands out from verify's report.
fn print_notice(notice: &str) {
    println!("\n!! {notice}\n");
}

/// How a verify run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No chapter to check (the message has been printed).
    Nothing,
    /// No failure within the budget.
    Clean,
    /// A failure, found and shrunk (or a saved case that fails again).
    Found,
    /// The engine reached a task stub.
    Stub,
}

/// `cargo x verify` on the workspace at `root`, returning how it ended.
///
/// # Errors
/// If anything could not run.
pub fn run_verify(root: &Path, manifest: &Manifest, args: &VerifyArgs) -> Result<Verdict> {
    if !["ref", "starter"].contains(&args.engine.as_str()) {
        bail!("unknown engine `{}`: use ref or starter", args.engine);
    }
    let Some(scope) = scope(root, manifest, &args.engine, args.upto.as_deref())? else {
        return Ok(Verdict::Nothing);
    };
    let upto = manifest.chapters[scope.upto].id.clone();
    if args.engine == "starter" {
        println!(
            "verify: the operations of every chapter up to {upto}{}",
            if args.upto.is_some() {
                " (--upto)"
            } else {
                ", your latest chapter with copied tests; later chapters join as you copy their \
                 tests"
            }
        );
    }
    if let Some(notice) = &scope.notice {
        print_notice(notice);
    }
    let binary = build(root, &[&args.engine])?;
    let mut argv: Vec<String> = Vec::new();
    if let Some(threads) = args.threads {
        argv.extend(["threads".into(), "--engine".into(), args.engine.clone()]);
        argv.extend([
            "--upto".into(),
            upto,
            "--threads".into(),
            threads.to_string(),
        ]);
        if let Some(runs) = args.runs {
            argv.extend(["--runs".into(), runs.to_string()]);
        }
        if let Some(seed) = args.budget.seed {
            argv.extend(["--seed".into(), seed.to_string()]);
        }
    } else {
        argv.extend(["verify".into(), "--engine".into(), args.engine.clone()]);
        argv.extend(["--upto".into(), upto]);
        argv.extend(args.budget.args());
        let regressions = regressions_dir(root, &target_dir(root)?, &args.engine);
        let shown = crate::util::rel(root, &regressions);
        argv.extend(["--regressions".into(), shown]);
        if let Some(summary) = &args.summary {
            argv.extend(["--summary".into(), summary.display().to_string()]);
        }
    }
    let code = run_quietly(&binary, root, &argv, &[], None)?;
    if let Some(notice) = &scope.notice {
        print_notice(notice);
    }
    match code {
        0 => Ok(Verdict::Clean),
        FOUND => Ok(Verdict::Found),
        STUB => Ok(Verdict::Stub),
        code => bail!("mini-lsm-verify failed (exit status {code})"),
    }
}

/// `cargo x verify`.
///
/// # Errors
/// If verify found a failure, the engine reached a stub, or anything could not run.
pub fn verify(root: &Path, manifest: &Manifest, args: &VerifyArgs) -> Result<()> {
    match run_verify(root, manifest, args)? {
        Verdict::Nothing | Verdict::Clean => Ok(()),
        Verdict::Found => bail!("verify found a failure (above)"),
        Verdict::Stub => bail!("verify stopped at a stub of your engine (above)"),
    }
}

/// Where failing cases of `engine` are saved: the starter's own folder (the learner's to keep or
/// commit), and for the reference a folder under the target directory `target`, so that
/// generated cases never end up in the reference.
pub fn regressions_dir(root: &Path, target: &Path, engine: &str) -> PathBuf {
    if engine == "starter" {
        root.join("mini-lsm-starter/regressions")
    } else {
        target.join("verify-regressions")
    }
}

/// `cargo x compare --week W --day D` (without `--code`).
///
/// # Errors
/// If the engines disagree, the starter reached a stub, or anything could not run.
pub fn compare(root: &Path, manifest: &Manifest, chapter: usize, budget: &Budget) -> Result<()> {
    let binary = build(root, &["ref", "starter"])?;
    let mut argv: Vec<String> = vec!["compare".into(), "--upto".into()];
    argv.push(manifest.chapters[chapter].id.clone());
    argv.extend(budget.args());
    match run_quietly(&binary, root, &argv, &[], None)? {
        0 => Ok(()),
        FOUND => bail!("your engine and the reference disagree (above)"),
        STUB => bail!("compare stopped at a stub of your engine (above)"),
        code => bail!("mini-lsm-verify failed (exit status {code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases the reference fails are kept under `target/` (never in the reference's tree); the
    /// learner's go to their starter.
    #[test]
    fn regressions_of_the_reference_stay_out_of_the_tree() {
        let (root, target) = (Path::new("/w"), Path::new("/elsewhere/target"));
        assert_eq!(
            regressions_dir(root, target, "ref"),
            Path::new("/elsewhere/target/verify-regressions")
        );
        assert_eq!(
            regressions_dir(root, target, "starter"),
            Path::new("/w/mini-lsm-starter/regressions")
        );
    }

    fn manifest(days: u32) -> Manifest {
        let chapters: String = (1..=days)
            .map(|d| {
                format!(
                    "[[chapter]]\nid = \"week1_day{d}\"\ntitle = \"t\"\nbook = \"b\"\ntasks = [\"x\"]\n\n"
                )
            })
            .collect();
        Manifest::parse(&chapters).unwrap()
    }

    /// By default verify exercises the latest chapter with copied tests, even when its tests
    /// fail, and says so in its notice with the counts and how to leave it out.
    #[test]
    fn the_latest_copied_chapter_is_checked_even_when_it_fails() {
        let m = manifest(6);
        let counts = [
            Some((4, 4)),
            Some((5, 5)),
            Some((3, 3)),
            Some((6, 6)),
            Some((4, 5)),
            Some((10, 12)),
        ];
        let scope = learner_scope(&m, &counts, None).unwrap();
        assert_eq!(scope.upto, 5);
        let notice = scope.notice.unwrap();
        assert!(
            notice.contains("week1_day5 (4/5 tests pass), week1_day6 (10/12 tests pass)"),
            "{notice}"
        );
        assert!(
            notice.contains("`cargo x verify --upto week1_day4`"),
            "{notice}"
        );
        // Every copied chapter passes: nothing to say.
        let passing = [Some((4, 4)), Some((5, 5)), None, None, None, None];
        assert_eq!(
            learner_scope(&m, &passing, None),
            Some(Scope {
                upto: 1,
                notice: None
            })
        );
        // Nothing copied: nothing to check, unless --upto says what.
        assert_eq!(learner_scope(&m, &[None; 6], None), None);
        assert_eq!(learner_scope(&m, &[None; 6], Some(0)).unwrap().upto, 0);
    }

    /// Chapters that verify leaves out (`--upto` below the latest copied chapter) or includes
    /// without their tests are named, with how to change it.
    #[test]
    fn chapters_left_out_are_named() {
        let m = manifest(4);
        let counts = [Some((4, 4)), None, Some((3, 3)), Some((6, 6))];
        let scope = learner_scope(&m, &counts, Some(2)).unwrap();
        let notice = scope.notice.unwrap();
        assert!(
            notice.contains("includes week1_day2, whose tests you have not copied"),
            "{notice}"
        );
        assert!(
            notice.contains("leaves out week1_day4 because of --upto week1_day3; leave out --upto"),
            "{notice}"
        );
    }

    /// The budget becomes the binary's flags, and only the ones given.
    #[test]
    fn budget_flags() {
        let budget = Budget {
            cases: Some(5),
            seed: None,
            time: Some("10m".into()),
        };
        assert_eq!(budget.args(), ["--cases", "5", "--time", "10m"]);
        assert!(Budget::default().args().is_empty());
    }
}
