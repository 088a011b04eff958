//! `cargo x verify` and `cargo x compare --week W --day D`: build `mini-lsm-verify` with the
//! engines it needs and run it, with the operations of the chapters done.
//!
//! The chapters done come from `--upto weekW_dayD`, or, for the starter, from the learner's
//! progress: the copied tests are run as `cargo x status` runs them, and every chapter of the
//! unbroken run of chapters whose tests all pass counts. The reference has done every chapter.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::learner::{done_prefix, progress};
use crate::manifest::Manifest;
use crate::util::step;

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

/// Builds `mini-lsm-verify` with the engines `features` (cargo features `ref`, `starter`) and
/// returns the binary.
///
/// # Errors
/// If it does not build; for the starter, the message says how to see why.
pub fn build(root: &Path, features: &[&str]) -> Result<PathBuf> {
    step(&format!(
        "building mini-lsm-verify with the engine(s): {}",
        features.join(", ")
    ));
    let output = Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "-p",
            "mini-lsm-verify",
            "--no-default-features",
        ])
        .args(["--features", &features.join(",")])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        let log = String::from_utf8_lossy(&output.stderr);
        let starter = log.contains("mini-lsm-starter") || log.contains("mini_lsm_starter");
        if features.contains(&"starter") && starter {
            bail!(
                "your starter does not build, so verify cannot run it; `cargo x scheck` shows \
                 the errors:\n{}",
                crate::testrun::first_error(&log)
            );
        }
        bail!("mini-lsm-verify does not build:\n{log}");
    }
    Ok(root.join("target/debug/mini-lsm-verify"))
}

/// Runs `binary` with `args`, dropping the engine's recovery notes from its stderr (a case
/// reopens an engine thousands of times, and each reopen after a crash reports what it cleaned
/// up); its stdout goes to `stdout_to` if given. Returns its exit status.
///
/// # Errors
/// If it cannot be started.
pub fn run_quietly(
    binary: &Path,
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
        .current_dir(crate::util::root())
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
}

/// The last chapter done, as an index: `--upto`, everything for the reference, or the learner's
/// progress. `None`: no chapter is done, and the message has been printed.
fn chapters_done(
    root: &Path,
    manifest: &Manifest,
    engine: &str,
    upto: Option<&str>,
) -> Result<Option<usize>> {
    if let Some(id) = upto {
        let i = manifest.index_of(id).with_context(|| {
            format!(
                "--upto {id}: no such chapter; valid chapters: {}",
                manifest.valid_ids()
            )
        })?;
        return Ok(Some(i));
    }
    if engine == "ref" {
        return Ok(Some(manifest.chapters.len() - 1));
    }
    let progress = progress(root, manifest, None)?;
    let done = progress.done(manifest);
    let Some(last) = done_prefix(&done) else {
        let first = &manifest.chapters[0];
        println!(
            "verify has nothing to check yet: no chapter is done (`cargo x status` shows your \
             progress), and every operation needs {}.\nStart there: read book/src/{}.md, then \
             `cargo x copy-test --week {} --day {}`. To run verify on chapters of your choice \
             anyway: `cargo x verify --upto {}`.",
            first.label(),
            first.book,
            first.week,
            first.day,
            first.id
        );
        return Ok(None);
    };
    println!(
        "your progress: every test of the chapters up to {} passes, so verify uses their \
         operations (`--upto` chooses others)",
        manifest.chapters[last].id
    );
    Ok(Some(last))
}

/// `cargo x verify`.
///
/// # Errors
/// If verify found a failure, the engine reached a stub, or anything could not run.
pub fn verify(root: &Path, manifest: &Manifest, args: &VerifyArgs) -> Result<()> {
    if !["ref", "starter"].contains(&args.engine.as_str()) {
        bail!("unknown engine `{}`: use ref or starter", args.engine);
    }
    let Some(upto) = chapters_done(root, manifest, &args.engine, args.upto.as_deref())? else {
        return Ok(());
    };
    let binary = build(root, &[&args.engine])?;
    let upto = manifest.chapters[upto].id.clone();
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
        let regressions = regressions_dir(root, &args.engine);
        let shown = crate::util::rel(root, &regressions);
        argv.extend(["--regressions".into(), shown]);
    }
    match run_quietly(&binary, &argv, &[], None)? {
        0 => Ok(()),
        FOUND => bail!("verify found a failure (above)"),
        STUB => bail!("verify stopped at a stub of your engine (above)"),
        code => bail!("mini-lsm-verify failed (exit status {code})"),
    }
}

/// Where failing cases of `engine` are saved: the starter's own folder (the learner's to keep or
/// commit), and for the reference a folder under `target/`, so that generated cases never end
/// up in the reference.
pub fn regressions_dir(root: &Path, engine: &str) -> PathBuf {
    if engine == "starter" {
        root.join("mini-lsm-starter/regressions")
    } else {
        root.join("target/verify-regressions")
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
    match run_quietly(&binary, &argv, &[], None)? {
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
        let root = Path::new("/w");
        assert_eq!(
            regressions_dir(root, "ref"),
            Path::new("/w/target/verify-regressions")
        );
        assert_eq!(
            regressions_dir(root, "starter"),
            Path::new("/w/mini-lsm-starter/regressions")
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
