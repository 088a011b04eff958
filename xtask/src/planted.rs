//! `cargo x verify --planted`: proves that verify finds the bugs it is for, and shrinks them.
//!
//! It generates a copy of the reference (the checkpoint of the last chapter, in a scratch
//! workspace under `target/xtask/scratch/planted/`), plants its bugs in it behind one runtime
//! switch, `MINI_LSM_PLANTED=<bug>` (so that one build serves them all), builds
//! `mini-lsm-verify` against that copy, and runs it once per bug with a fixed seed and a time
//! bound:
//!
//! | bug         | what is planted                                                     |
//! |-------------|---------------------------------------------------------------------|
//! | `merge`     | newest-wins reversed: a key's versions sort oldest first, so the    |
//! |             | merge hands out the oldest (week 3 puts newest-wins in key order)   |
//! | `filter`    | the scan's SST filter off by one: an SST starting at an inclusive   |
//! |             | upper bound is skipped                                              |
//! | `tombstone` | a flush drops the memtable's tombstones                             |
//! | `wal`       | `open` does not replay the logs                                     |
//! | `excluded`  | an excluded lower bound seeks to the key's newest version and steps |
//! |             | past it alone, so an SST scan leaks the next older version          |
//! | `watermark` | the watermark is the newest snapshot's timestamp, not the oldest:   |
//! |             | compaction drops versions that an older live snapshot reads         |
//! | `commit_ts` | `open` recovers the latest commit timestamp from the manifest and   |
//! |             | the SSTs but not from the replayed logs, so it goes back in time    |
//! | `phantom`   | serializable validation checks the keys a transaction read but not  |
//! |             | the ranges it scanned, so a phantom commits                         |
//! | `txn_scan`  | a transaction's scan does not skip the keys its write set deletes   |
//! | `travel`    | time travel below the watermark is not refused                      |
//! | `publish`   | a commit publishes its timestamp as soon as it has one, before its  |
//! |             | log write and its apply: a reader sees the timestamp, not the write |
//! | `fsync`     | a writer alone that asked for fsync leads a group of one that skips |
//! |             | the sync: acknowledged before its write is durable                  |
//! | `ack_group` | a leader marks its group done before it writes and syncs it: the    |
//! |             | members return as if durable before the sync                        |
//!
//! Each must be found and shrunk to at most [`MAX_SHRUNK`] operations. Then the `#[test]` that
//! verify printed for each is compiled into the copy and run: it must fail with its bug planted
//! and pass without, which proves that the printed test compiles in the starter and reproduces.
//!
//! A patch is a textual replacement that must match exactly once; when the reference changes so
//! that one no longer applies, this fails loudly, naming it.
//!
//! Last, `learner_crate` plants the `filter` bug without a switch in a learner's crate at week 1
//! day 6 and checks that a plain `cargo x verify` there finds it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::learner::starter_tests_rs;
use crate::manifest::Manifest;
use crate::markers::Upto;
use crate::sync::generate_into;
use crate::util::{cargo_build, copy_dir, step, target_dir};
use crate::verify::run_quietly;

/// The longest shrunk case that counts as short.
pub const MAX_SHRUNK: usize = 10;

/// A planted bug: its switch name, what it is, and the patch that plants it.
pub struct Bug {
    pub name: &'static str,
    pub what: &'static str,
    /// The file, under `src/`.
    pub file: &'static str,
    /// The reference code, which must occur exactly once in the file.
    pub find: &'static str,
    /// What replaces it: the bug behind `crate::planted(name)`, the reference code otherwise.
    pub replace: &'static str,
}

/// The bugs the issues name.
pub const BUGS: [Bug; 13] = [
    Bug {
        name: "merge",
        what: "newest-wins reversed: a key's versions merge oldest first",
        // From week 3 every version has a timestamp of its own and sorts by it, newest first, so
        // the merge's tie-break on the source's age no longer decides which version wins.
        file: "key.rs",
        find: ".then_with(|| other.ts.cmp(&self.ts))",
        replace: ".then_with(|| if crate::planted(\"merge\") { self.ts.cmp(&other.ts) } else { other.ts.cmp(&self.ts) })",
    },
    Bug {
        name: "filter",
        what: "SST range filter off by one at an inclusive upper bound",
        file: "lsm_storage/read.rs",
        find: "Bound::Included(upper) => first > upper,",
        replace: "Bound::Included(upper) => if crate::planted(\"filter\") { first >= upper } else { first > upper },",
    },
    Bug {
        name: "tombstone",
        what: "tombstones dropped at flush",
        file: "mem_table.rs",
        find: "for entry in self.map.iter() {",
        replace: "for entry in self.map.iter() {\nif crate::planted(\"tombstone\") && entry.value().get().is_empty() { continue; }",
    },
    Bug {
        name: "wal",
        what: "the write-ahead log not replayed at open",
        file: "lsm_storage/recovery.rs",
        find: "if options.enable_wal {",
        replace: "if options.enable_wal && !crate::planted(\"wal\") {",
    },
    Bug {
        name: "excluded",
        what: "an excluded lower bound skips only a key's newest version",
        // Week 1's seek (land on the key, step past it once) with versions in the table: the
        // seek lands on the newest version, and the step leaves the older ones in the scan.
        file: "lsm_storage/read.rs",
        find: "let mut iter = to_key(source, KeySlice::from_slice_ts(key, ts))?;",
        replace: "if crate::planted(\"excluded\") {\n\
                  let mut iter = to_key(source, KeySlice::from_slice_ts(key, TS_RANGE_BEGIN))?;\n\
                  if exclusive && iter.is_valid() && iter.key().key_ref() == key { iter.next()?; }\n\
                  return Ok(iter);\n\
                  }\n\
                  let mut iter = to_key(source, KeySlice::from_slice_ts(key, ts))?;",
    },
    Bug {
        name: "watermark",
        what: "the watermark is the newest snapshot, ignoring older ones",
        file: "mvcc/watermark.rs",
        find: "self.readers.keys().next().copied()",
        replace: "if crate::planted(\"watermark\") { self.readers.keys().next_back().copied() } \
                  else { self.readers.keys().next().copied() }",
    },
    Bug {
        name: "commit_ts",
        what: "the logs' commit timestamps not recovered at open",
        file: "lsm_storage/recovery.rs",
        find: ".chain([manifest_ts, replayed_ts])",
        replace: ".chain(if crate::planted(\"commit_ts\") { vec![manifest_ts] } \
                  else { vec![manifest_ts, replayed_ts] })",
    },
    Bug {
        name: "phantom",
        what: "serializable validation forgets the ranges scanned",
        // The gap the other well-known course documents: a key inserted into a range a
        // transaction scanned is a phantom, and only the ranges catch it.
        file: "mvcc/conflict.rs",
        find: "for range in &check.reads.ranges {",
        replace: "for range in check.reads.ranges.iter().filter(|_| !crate::planted(\"phantom\")) {",
    },
    Bug {
        name: "txn_scan",
        what: "a transaction's scan shows the keys its write set deletes",
        file: "mvcc/txn.rs",
        find: "while self.inner.is_valid() && self.inner.value().is_empty() {",
        replace: "while !crate::planted(\"txn_scan\") && self.inner.is_valid() && self.inner.value().is_empty() {",
    },
    Bug {
        name: "travel",
        what: "time travel below the watermark is not refused",
        file: "mvcc.rs",
        find: "if ts < watermark {",
        replace: "if ts < watermark && !crate::planted(\"travel\") {",
    },
    Bug {
        name: "publish",
        what: "a timestamp published before its write is applied",
        // Published at prepare, before the log write: verify's `group` holds a leader at its log
        // write and reads the latest commit while writers queue behind it. (Between the log
        // write and the apply no verify operation can hold a writer; the published timestamp is
        // published again after the apply, which is harmless.)
        file: "lsm_storage/commit.rs",
        find: "let logged = logged.and_then(|logged| match (logged, memtable.wal()) {",
        replace: "if crate::planted(\"publish\") { self.mvcc.publish(ts); }\n\
                  let logged = logged.and_then(|logged| match (logged, memtable.wal()) {",
    },
    Bug {
        name: "fsync",
        what: "a lone fsync writer acknowledged before any sync",
        // The path of a writer that finds no group to join: its group of one is written to the
        // OS only. A power cut after it returns loses the write it acknowledged.
        file: "lsm_storage/commit.rs",
        find: "return self.lead_group(wal, group, sticky);",
        replace: "let group = if crate::planted(\"fsync\") { Group { sync: group.sync.min(SyncMode::Os), ..group } } else { group };\n\
                  return self.lead_group(wal, group, sticky);",
    },
    Bug {
        name: "ack_group",
        what: "a group's writers acknowledged before its leader syncs",
        // The leader marks its group done before it writes and syncs it: the members return as
        // if durable while the sync is still to come. Verify's `group_cut` cuts the power there.
        file: "lsm_storage/commit.rs",
        find: "None => wal.append_group(&group.records, group.sync),",
        replace: "None => {\n\
                  if crate::planted(\"ack_group\") {\n\
                  self.commit_queue.queue.lock().done_upto = group.last;\n\
                  self.commit_queue.notify();\n\
                  }\n\
                  wal.append_group(&group.records, group.sync)\n\
                  }",
    },
];

/// The switch every patch calls, appended to the copy's `lib.rs`.
const SWITCH: &str = r#"
/// Whether planted bug `bug` is on: `MINI_LSM_PLANTED=<bug>` (this crate is a copy of the
/// reference made by `cargo x verify --planted`).
pub(crate) fn planted(bug: &str) -> bool {
    static ON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ON.get_or_init(|| std::env::var("MINI_LSM_PLANTED").unwrap_or_default()) == bug
}

#[cfg(test)]
mod verify_repro;
"#;

/// `text` with `bug`'s patch applied.
///
/// # Errors
/// If the reference code the patch replaces is not in `text` exactly once.
pub fn apply(bug: &Bug, text: &str) -> Result<String> {
    let found = text.matches(bug.find).count();
    if found != 1 {
        bail!(
            "planted bug `{}`: src/{} has `{}` {found} times, not once: the reference changed; \
             update the patch in xtask/src/planted.rs",
            bug.name,
            bug.file,
            bug.find
        );
    }
    Ok(text.replacen(bug.find, bug.replace, 1))
}

/// Every file the bugs patch, with all its patches applied; `read` reads a file under `src/`.
/// One file may take several patches: each applies to the text the ones before it left.
///
/// # Errors
/// If a file cannot be read, or a patch does not apply.
pub fn patch_all(read: impl Fn(&str) -> Result<String>) -> Result<Vec<(&'static str, String)>> {
    let mut patched: Vec<(&'static str, String)> = Vec::new();
    for bug in &BUGS {
        let at = match patched.iter().position(|(file, _)| *file == bug.file) {
            Some(at) => at,
            None => {
                let text = read(bug.file).with_context(|| format!("planted bug `{}`", bug.name))?;
                patched.push((bug.file, text));
                patched.len() - 1
            }
        };
        patched[at].1 = apply(bug, &patched[at].1)?;
    }
    Ok(patched)
}

/// Writes `text` to `path` unless it is there already (so that cargo does not rebuild).
pub fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `x.y.z` -> `x.y.z-planted` in a manifest's package version, so that cargo tells the copies
/// from the workspace's own packages in the shared target directory.
fn tag_version(toml: &str) -> Result<String> {
    let at = toml
        .find("\nversion = \"")
        .context("a Cargo.toml without a version line")?
        + "\nversion = \"".len();
    let end = at + toml[at..].find('"').context("an unterminated version")?;
    Ok(format!("{}-planted{}", &toml[..end], &toml[end..]))
}

/// Writes the scratch workspace: the patched copy as `starter/` and `mini-lsm-verify` as
/// `verify/`, whose binary is `mini-lsm-verify-planted` (not to clobber the workspace's).
fn write_workspace(root: &Path, manifest: &Manifest, dir: &Path) -> Result<()> {
    let (starter, verify) = (dir.join("starter"), dir.join("verify"));
    let src = starter.join("src");
    std::fs::create_dir_all(&src)?;
    // Generated into a staging folder, patched and formatted aside, and copied only where a file
    // changed: an unchanged copy is not rebuilt.
    let staging = dir.join("generated");
    generate_into(
        root,
        manifest,
        Upto::Chapter(manifest.chapters.len() - 1),
        &staging,
    )?;
    let patched_dir = dir.join("patched");
    std::fs::create_dir_all(&patched_dir)?;
    let mut patched = patch_all(|file| {
        std::fs::read_to_string(staging.join(file)).with_context(|| format!("reading src/{file}"))
    })?;
    let lib = std::fs::read_to_string(staging.join("lib.rs"))?;
    patched.push(("lib.rs", format!("{lib}{SWITCH}")));
    let aside: Vec<PathBuf> = patched
        .iter()
        .map(|(file, _)| patched_dir.join(file.replace('/', "__")))
        .collect();
    for ((_, text), path) in patched.iter().zip(&aside) {
        std::fs::write(path, text)?;
    }
    crate::util::run_rustfmt(&aside)?;
    for path in crate::util::walk_rs(&staging)? {
        let rel = path.strip_prefix(&staging)?;
        let name = rel.display().to_string();
        let text = match patched.iter().position(|(file, _)| *file == name) {
            Some(i) => std::fs::read_to_string(&aside[i])?,
            None => std::fs::read_to_string(&path)?,
        };
        let dest = src.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_if_changed(&dest, &text)?;
    }
    write_if_changed(&src.join("tests.rs"), &starter_tests_rs(manifest, &[]))?;
    if !src.join("verify_repro.rs").exists() {
        std::fs::write(src.join("verify_repro.rs"), "")?;
    }
    let bin = src.join("bin");
    if !bin.exists() {
        copy_dir(&root.join("mini-lsm-starter/src/bin"), &bin)?;
    }
    let starter_toml = std::fs::read_to_string(root.join("mini-lsm-starter/Cargo.toml"))?;
    write_if_changed(&starter.join("Cargo.toml"), &tag_version(&starter_toml)?)?;

    std::fs::create_dir_all(&verify)?;
    let verify_toml = std::fs::read_to_string(root.join("mini-lsm-verify/Cargo.toml"))?;
    let reference = root.join("mini-lsm-ref").display().to_string();
    let verify_toml = tag_version(&verify_toml)?
        .replace("path = \"../mini-lsm-ref\"", &format!("path = {reference:?}"))
        .replace("path = \"../mini-lsm-starter\"", "path = \"../starter\"")
        .replacen(
            "\n[dependencies]",
            "\n[[bin]]\nname = \"mini-lsm-verify-planted\"\npath = \"src/main.rs\"\n\n[dependencies]",
            1,
        );
    write_if_changed(&verify.join("Cargo.toml"), &verify_toml)?;
    let verify_src = verify.join("src");
    std::fs::create_dir_all(&verify_src)?;
    let verify_from = root.join("mini-lsm-verify/src");
    for path in crate::util::walk_rs(&verify_from)? {
        let dest = verify_src.join(path.strip_prefix(&verify_from)?);
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
            "# Written by `cargo x verify --planted`.\n[workspace]\nresolver = \"2\"\n\
             members = [\"starter\", \"verify\"]\n\n{profiles}"
        ),
    )?;
    // The workspace's lock, so that the copy builds with the very same dependencies (cargo then
    // adds the copies' own tagged versions to it).
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    Ok(())
}

/// Runs cargo on the scratch workspace, with the shared target directory.
fn cargo(root: &Path, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<(bool, String)> {
    let output = Command::new("cargo")
        .args(args)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir(root)?)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    let mut log = String::from_utf8_lossy(&output.stdout).to_string();
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), log))
}

/// What verify did with one planted bug.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub found: bool,
    pub original_len: Option<usize>,
    pub shrunk_len: Option<usize>,
    pub secs: f64,
    /// The printed test: fails with the bug, passes without (checked after the runs).
    pub test: Option<String>,
    pub repro: Option<String>,
}

/// Reads the `key=value` summary verify writes.
fn read_summary(text: &str) -> Outcome {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    Outcome {
        found: get("found").as_deref() == Some("1"),
        original_len: get("original_len").and_then(|v| v.parse().ok()),
        shrunk_len: get("shrunk_len").and_then(|v| v.parse().ok()),
        ..Outcome::default()
    }
}

/// The problems with the outcomes: a bug not found, a case not shrunk short, a test that does
/// not reproduce.
pub fn eval(outcomes: &[(&Bug, Outcome)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (bug, outcome) in outcomes {
        match outcome.shrunk_len {
            _ if !outcome.found => problems.push(format!(
                "planted bug `{}` ({}) was not found within the time bound",
                bug.name, bug.what
            )),
            Some(len) if len > MAX_SHRUNK => problems.push(format!(
                "planted bug `{}`: shrunk only to {len} operations (at most {MAX_SHRUNK} wanted)",
                bug.name
            )),
            None => problems.push(format!(
                "planted bug `{}`: found, but verify reported no shrunk length",
                bug.name
            )),
            Some(_) => {}
        }
        if let Some(problem) = &outcome.repro {
            problems.push(format!("planted bug `{}`: {problem}", bug.name));
        }
    }
    problems
}

/// Runs the whole check; `time` bounds each bug's search. Returns the problems found.
///
/// # Errors
/// If the copy cannot be generated or built, or a patch does not apply.
pub fn planted(root: &Path, manifest: &Manifest, time: &str) -> Result<Vec<String>> {
    let started = Instant::now();
    let target = target_dir(root)?;
    let dir = target.join("xtask/scratch/planted");
    step(&format!(
        "planted bugs: a copy of the reference with {} bugs behind MINI_LSM_PLANTED",
        BUGS.len()
    ));
    write_workspace(root, manifest, &dir)?;
    let target_env = target.display().to_string();
    let build = cargo_build(
        &dir,
        &[
            "-p",
            "mini-lsm-verify",
            "--no-default-features",
            "--features",
            "starter",
        ],
        &[("CARGO_TARGET_DIR", &target_env)],
    )?;
    if !build.ok {
        bail!(
            "the planted copy does not build:\n{}",
            build.errors.join("\n")
        );
    }
    let binary = build.executable("mini-lsm-verify-planted")?;
    let last = manifest.chapters.last().expect("chapters").id.clone();
    let mut outcomes = Vec::new();
    for bug in &BUGS {
        step(&format!(
            "planted bug `{}`: {} (verify's report: {})",
            bug.name,
            bug.what,
            crate::util::rel(root, &dir.join("runs").join(bug.name).join("output.txt"))
        ));
        let work = dir.join("runs").join(bug.name);
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(&work)?;
        let summary = work.join("summary.txt");
        let args: Vec<String> = [
            "verify",
            "--engine",
            "starter",
            "--upto",
            &last,
            "--seed",
            "1",
            "--time",
            time,
            "--regressions",
            &work.join("regressions").display().to_string(),
            "--summary",
            &summary.display().to_string(),
            "--test-name",
            &format!("planted_{}", bug.name),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let run_started = Instant::now();
        let output = work.join("output.txt");
        let code = run_quietly(
            &binary,
            root,
            &args,
            &[("MINI_LSM_PLANTED", bug.name)],
            Some(&output),
        )?;
        let mut outcome = read_summary(&std::fs::read_to_string(&summary).unwrap_or_default());
        outcome.secs = run_started.elapsed().as_secs_f64();
        outcome.test = std::fs::read_to_string(summary.with_extension("rs")).ok();
        if code != 1 && outcome.found {
            bail!("planted bug `{}`: verify exited with {code}", bug.name);
        }
        outcomes.push((bug, outcome));
    }
    check_repros(root, &dir, &mut outcomes)?;
    let learner = crate::learner_crate::check(root, manifest)?;
    println!(
        "\n{:<10} {:<58} {:>5} {:>16} {:>7}  printed #[test]",
        "bug", "what", "found", "shrunk (from)", "time"
    );
    for (bug, o) in &outcomes {
        println!(
            "{:<10} {:<58} {:>5} {:>16} {:>6.2}s  {}",
            bug.name,
            bug.what,
            if o.found { "yes" } else { "NO" },
            match (o.shrunk_len, o.original_len) {
                (Some(s), Some(f)) => format!("{s} ops ({f})"),
                _ => "-".into(),
            },
            o.secs,
            match (&o.test, &o.repro) {
                (None, _) => "-",
                (Some(_), None) => "fails with the bug, passes without",
                (Some(_), Some(_)) => "DOES NOT REPRODUCE",
            }
        );
    }
    println!("planted bugs took {:.0?}", started.elapsed());
    let mut problems = eval(&outcomes);
    problems.extend(learner);
    Ok(problems)
}

/// Compiles the printed tests into the copy and checks that each fails with its bug planted and
/// passes without; records a problem on the outcome otherwise.
fn check_repros(root: &Path, dir: &Path, outcomes: &mut [(&Bug, Outcome)]) -> Result<()> {
    let tests: String = outcomes
        .iter()
        .filter_map(|(_, o)| o.test.clone())
        .collect::<Vec<_>>()
        .join("\n");
    if tests.is_empty() {
        return Ok(());
    }
    step("the printed tests: compiled into the copy, each fails with its bug and passes without");
    let repro: PathBuf = dir.join("starter/src/verify_repro.rs");
    write_if_changed(&repro, &tests)?;
    let test = |filter: &str, envs: &[(&str, &str)]| {
        cargo(
            root,
            dir,
            &["test", "--quiet", "-p", "mini-lsm-starter", "--lib", filter],
            envs,
        )
    };
    let (ok, log) = test("verify_repro::", &[])?;
    if !ok {
        if !log.contains("test result") {
            bail!("the printed tests do not compile in the starter crate:\n{log}");
        }
        for (_, o) in outcomes.iter_mut().filter(|(_, o)| o.test.is_some()) {
            o.repro = Some(format!("a printed test fails without its bug:\n{log}"));
        }
        return Ok(());
    }
    for (bug, o) in outcomes.iter_mut().filter(|(_, o)| o.test.is_some()) {
        let name = format!("verify_repro::planted_{}", bug.name);
        let (passed, _) = test(&name, &[("MINI_LSM_PLANTED", bug.name)])?;
        if passed {
            o.repro = Some("the printed test passes with the bug planted".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every patch applies to today's reference, after the others of its file: its code is
    /// there exactly once.
    #[test]
    fn every_patch_applies_to_the_reference() {
        let root = crate::util::root().unwrap();
        let patched = patch_all(|file| {
            Ok(std::fs::read_to_string(
                root.join("mini-lsm-ref/src").join(file),
            )?)
        })
        .unwrap();
        for bug in &BUGS {
            let (_, text) = patched.iter().find(|(f, _)| *f == bug.file).unwrap();
            assert!(text.contains(&format!("crate::planted(\"{}\")", bug.name)));
        }
    }

    /// A patch whose code is gone, or there twice, fails loudly with the bug and the file.
    #[test]
    fn a_stale_patch_fails_loudly() {
        let bug = &BUGS[0];
        let err = apply(bug, "fn nothing() {}").unwrap_err().to_string();
        assert!(err.contains("planted bug `merge`"), "{err}");
        assert!(err.contains("0 times"), "{err}");
        let twice = format!("{0}\n{0}", bug.find);
        assert!(apply(bug, &twice)
            .unwrap_err()
            .to_string()
            .contains("2 times"));
    }

    /// A bug not found, one shrunk too little, and a test that does not reproduce are problems
    /// naming the bug; a short find is not.
    #[test]
    fn outcomes_are_judged() {
        let found = |len| Outcome {
            found: true,
            shrunk_len: Some(len),
            original_len: Some(40),
            ..Outcome::default()
        };
        let mut bad_repro = found(4);
        bad_repro.repro = Some("the printed test passes with the bug planted".into());
        let outcomes = vec![
            (&BUGS[0], found(4)),
            (&BUGS[1], Outcome::default()),
            (&BUGS[2], found(MAX_SHRUNK + 1)),
            (&BUGS[3], bad_repro),
        ];
        let problems = eval(&outcomes);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("`filter`") && problems[0].contains("not found"));
        assert!(problems[1].contains("`tombstone`: shrunk only to 11"));
        assert!(problems[2].contains("`wal`: the printed test passes"));
    }

    /// The summary verify writes is read back.
    #[test]
    fn summaries_are_read() {
        let o = read_summary("found=1\nseed=1\noriginal_len=37\nshrunk_len=4\n");
        assert!(o.found);
        assert_eq!((o.original_len, o.shrunk_len), (Some(37), Some(4)));
        assert!(!read_summary("found=0\ncases=12\n").found);
    }
}
