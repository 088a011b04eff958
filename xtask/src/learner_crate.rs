//! `cargo x verify --planted`, on a learner's crate: a plain `cargo x verify` finds a bug in the
//! chapter the learner is working on, although that chapter's tests fail.
//!
//! The scratch workspace under `<target>/xtask/scratch/learner/` is laid out as a learner's clone
//! is: `mini-lsm-starter/` holds the checkpoint of week 1 day 6 with the tests of days 1 to 6
//! copied in, and the scan's SST filter off by one (`Bound::Included(upper) => first >= upper`
//! in `range_overlap`: an SST that starts at an inclusive upper bound is skipped);
//! `mini-lsm-verify/` is the workspace's. Then [`crate::verify::run_verify`] runs on it exactly
//! as `cargo x verify` with no option does (but for a fixed seed, so that CI is repeatable): it
//! runs the copied tests to see where the learner is, builds verify against the crate and
//! searches. It must use the operations of week 1 day 6, find a failure, shrink it to at most
//! [`MAX_SHRUNK`] operations and end with a failure.
//!
//! Its `.cargo/config.toml` points cargo at the workspace's own target directory, so the
//! dependencies are compiled once for both (and verify finds that directory as it finds a
//! learner's `CARGO_TARGET_DIR`).

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::learner::starter_tests_rs;
use crate::manifest::Manifest;
use crate::markers::Upto;
use crate::planted::{write_if_changed, BUGS, MAX_SHRUNK};
use crate::scratch::{bin_name, copy_test_files, tag_version};
use crate::sync::generate_into;
use crate::util::{copy_dir, step, target_dir, walk_rs};
use crate::verify::{run_verify, Budget, Verdict, VerifyArgs};

/// The chapter the learner is on.
pub const CHAPTER: &str = "week1_day6";

/// The seed of the search (a plain run takes one from the clock).
const SEED: u64 = 1;

/// The planted bug: the reference's filter (as [`BUGS`] names it) and its off-by-one.
fn plant(read_rs: &str) -> Result<String> {
    let filter = BUGS
        .iter()
        .find(|b| b.name == "filter")
        .context("the planted bug `filter` is gone from planted.rs")?;
    let found = read_rs.matches(filter.find).count();
    if found != 1 {
        bail!(
            "the learner's crate: lsm_storage/read.rs of the {CHAPTER} checkpoint has `{}` {found} \
             times, not once: the reference changed; update xtask/src/learner_crate.rs",
            filter.find
        );
    }
    Ok(read_rs.replacen(filter.find, "Bound::Included(upper) => first >= upper,", 1))
}

/// Writes the learner's workspace at `dir`; unchanged files are left alone, so cargo rebuilds
/// only what changed.
fn write_workspace(root: &Path, manifest: &Manifest, dir: &Path, upto: usize) -> Result<()> {
    let starter = dir.join("mini-lsm-starter");
    let src = starter.join("src");
    let staging = dir.join("generated");
    generate_into(root, manifest, Upto::Chapter(upto), &staging)?;
    let read_rs = staging.join("lsm_storage/read.rs");
    std::fs::write(&read_rs, plant(&std::fs::read_to_string(&read_rs)?)?)?;
    for path in walk_rs(&staging)? {
        let dest = src.join(path.strip_prefix(&staging)?);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_if_changed(&dest, &std::fs::read_to_string(&path)?)?;
    }
    if !src.join("bin").exists() {
        copy_dir(&root.join("mini-lsm-starter/src/bin"), &src.join("bin"))?;
    }
    let chapters: Vec<usize> = (0..=upto).collect();
    let tests = dir.join("tests-staging");
    std::fs::create_dir_all(&tests)?;
    for path in copy_test_files(root, manifest, &chapters, &tests)? {
        let dest = src
            .join("tests")
            .join(path.file_name().context("a file name")?);
        std::fs::create_dir_all(src.join("tests"))?;
        write_if_changed(&dest, &std::fs::read_to_string(&path)?)?;
    }
    write_if_changed(
        &src.join("tests.rs"),
        &starter_tests_rs(manifest, &chapters),
    )?;
    let toml = std::fs::read_to_string(root.join("mini-lsm-starter/Cargo.toml"))?;
    let toml = tag_version(&toml, "learner").context("the starter's Cargo.toml has no version")?;
    let toml = toml.replace(
        "name = \"mini-lsm-cli\"",
        &format!("name = \"{}\"", bin_name("mini-lsm-cli", "learner")),
    );
    write_if_changed(&starter.join("Cargo.toml"), &toml)?;

    let verify = dir.join("mini-lsm-verify");
    std::fs::create_dir_all(verify.join("src"))?;
    let toml = std::fs::read_to_string(root.join("mini-lsm-verify/Cargo.toml"))?;
    let reference = root.join("mini-lsm-ref").display().to_string();
    let toml = tag_version(&toml, "learner")
        .context("mini-lsm-verify's Cargo.toml has no version")?
        .replace("path = \"../mini-lsm-ref\"", &format!("path = {reference:?}"))
        .replacen(
            "\n[dependencies]",
            "\n[[bin]]\nname = \"mini-lsm-verify-learner\"\npath = \"src/main.rs\"\n\n[dependencies]",
            1,
        );
    write_if_changed(&verify.join("Cargo.toml"), &toml)?;
    let verify_from = root.join("mini-lsm-verify/src");
    for path in walk_rs(&verify_from)? {
        let dest = verify.join("src").join(path.strip_prefix(&verify_from)?);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_if_changed(&dest, &std::fs::read_to_string(&path)?)?;
    }

    let root_toml = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let profiles = root_toml.find("[profile").map_or("", |at| &root_toml[at..]);
    write_if_changed(
        &dir.join("Cargo.toml"),
        &format!(
            "# Written by `cargo x verify --planted`: a learner's clone at {CHAPTER}.\n\
             [workspace]\nresolver = \"2\"\nmembers = [\"mini-lsm-starter\", \"mini-lsm-verify\"]\n\n\
             {profiles}"
        ),
    )?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    std::fs::copy(root.join("course.toml"), dir.join("course.toml"))?;
    std::fs::create_dir_all(dir.join(".cargo"))?;
    write_if_changed(
        &dir.join(".cargo/config.toml"),
        &format!(
            "[build]\ntarget-dir = {:?}\n",
            target_dir(root)?.display().to_string()
        ),
    )?;
    Ok(())
}

/// What the run left in its summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub found: bool,
    pub upto: Option<String>,
    pub shrunk_len: Option<usize>,
}

/// Reads the `key=value` summary verify writes.
pub fn read_summary(text: &str) -> Summary {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    Summary {
        found: get("found").as_deref() == Some("1"),
        upto: get("upto"),
        shrunk_len: get("shrunk_len").and_then(|v| v.parse().ok()),
    }
}

/// The problems with a run: it must end in a failure found in [`CHAPTER`]'s operations and
/// shrunk short.
pub fn eval(verdict: Verdict, summary: &Summary) -> Vec<String> {
    let what = format!(
        "a plain `cargo x verify` on a learner's crate at {CHAPTER} with the SST filter off by one"
    );
    let mut problems = Vec::new();
    if verdict != Verdict::Found || !summary.found {
        problems.push(format!(
            "{what} did not report a failure (it ended {verdict:?})"
        ));
        return problems;
    }
    if summary.upto.as_deref() != Some(CHAPTER) {
        problems.push(format!(
            "{what} used the operations up to {}, not {CHAPTER}",
            summary.upto.as_deref().unwrap_or("(none reported)")
        ));
    }
    match summary.shrunk_len {
        Some(len) if len <= MAX_SHRUNK => {}
        Some(len) => problems.push(format!(
            "{what} shrank its failure only to {len} operations (at most {MAX_SHRUNK} wanted)"
        )),
        None => problems.push(format!("{what} reported no shrunk case")),
    }
    problems
}

/// Builds the learner's workspace and runs a plain verify on it. Returns the problems found.
///
/// # Errors
/// If the workspace cannot be written, or verify cannot run at all.
pub fn check(root: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let upto = manifest
        .index_of(CHAPTER)
        .with_context(|| format!("{CHAPTER} is not in course.toml"))?;
    let dir = target_dir(root)?.join("xtask/scratch/learner");
    step(&format!(
        "a learner's crate at {CHAPTER} with the SST filter off by one: a plain `cargo x verify` \
         must find it ({})",
        dir.display()
    ));
    write_workspace(root, manifest, &dir, upto)?;
    // Saved cases would be replayed instead of searched for: start from none.
    let regressions = dir.join("mini-lsm-starter/regressions");
    if regressions.exists() {
        std::fs::remove_dir_all(&regressions)?;
    }
    let summary = dir.join("summary.txt");
    let _ = std::fs::remove_file(&summary);
    let args = VerifyArgs {
        engine: "starter".into(),
        budget: Budget {
            seed: Some(SEED),
            ..Budget::default()
        },
        summary: Some(summary.clone()),
        ..VerifyArgs::default()
    };
    let verdict = run_verify(&dir, manifest, &args)?;
    let summary = read_summary(&std::fs::read_to_string(&summary).unwrap_or_default());
    let problems = eval(verdict, &summary);
    if problems.is_empty() {
        println!(
            "the learner's crate: verify found the off-by-one in {CHAPTER}'s operations and \
             shrank it to {} operations",
            summary.shrunk_len.unwrap_or_default()
        );
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The off-by-one applies to the reference's filter, which is there exactly once.
    #[test]
    fn the_bug_plants_in_the_reference() {
        let root = crate::util::root().unwrap();
        let text =
            std::fs::read_to_string(root.join("mini-lsm-ref/src/lsm_storage/read.rs")).unwrap();
        let planted = plant(&text).unwrap();
        assert!(planted.contains("Bound::Included(upper) => first >= upper,"));
        assert!(plant("fn range_overlap() {}")
            .unwrap_err()
            .to_string()
            .contains("0 times"));
    }

    /// Only a failure, in the learner's chapter, shrunk short, passes; a clean run or a stub is
    /// the problem the issue describes ("no failure" while the chapter is broken).
    #[test]
    fn outcomes_are_judged() {
        let good = read_summary("found=1\nupto=week1_day6\nseed=1\nshrunk_len=4\n");
        assert!(eval(Verdict::Found, &good).is_empty());
        let clean = eval(Verdict::Clean, &read_summary("found=0\n"));
        assert!(
            clean[0].contains("did not report a failure (it ended Clean)"),
            "{clean:?}"
        );
        let early = read_summary("found=1\nupto=week1_day4\nshrunk_len=4\n");
        assert!(eval(Verdict::Found, &early)[0].contains("up to week1_day4"));
        let long = read_summary("found=1\nupto=week1_day6\nshrunk_len=40\n");
        assert!(eval(Verdict::Found, &long)[0].contains("only to 40"));
    }
}
