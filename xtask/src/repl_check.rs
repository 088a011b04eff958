//! Check 3, for the shell: on the pristine starter, `put a 1` reaches a task stub, and the shell
//! prints the stub's message (its chapter, task and book page), then answers `help`, and exits
//! with status 0 at `quit`; no panic message or backtrace buries the stub's.
//!
//! It runs the pristine scratch crate's own `mini-lsm-cli` (built by checks 2 and 3), exactly as
//! a learner runs `cargo run -p mini-lsm-starter --bin mini-lsm-cli` on a fresh clone, with
//! `RUST_BACKTRACE=1` as many learners have it set.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::manifest::Chapter;
use crate::scratch::{bin_name, crate_dir};
use crate::util::{cargo_build, target_dir};

/// What the learner types.
pub const SCRIPT: &str = "put a 1\nhelp\nquit\n";

/// Builds the shell of the scratch crate `scratch` (the pristine starter) and runs [`SCRIPT`].
/// Returns the problems found, naming what was expected.
///
/// # Errors
/// If the shell cannot be built or started.
pub fn check(root: &Path, scratch: &str, first: &Chapter) -> Result<Vec<String>> {
    let dir = crate_dir(root, scratch)?;
    let target = target_dir(root)?.display().to_string();
    let bin = bin_name("mini-lsm-cli", scratch);
    let build = cargo_build(&dir, &["--bin", &bin], &[("CARGO_TARGET_DIR", &target)])?;
    if !build.ok {
        bail!("the pristine starter's shell does not build (cargo's errors are above)");
    }
    let db = dir.join("repl-check.db");
    if db.exists() {
        std::fs::remove_dir_all(&db)?;
    }
    let mut child = Command::new(build.executable(&bin)?)
        .arg("--path")
        .arg(&db)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the pristine starter's shell")?;
    child
        .stdin
        .take()
        .context("the shell's stdin")?
        .write_all(SCRIPT.as_bytes())?;
    let output = child.wait_with_output()?;
    let _ = std::fs::remove_dir_all(&db);
    Ok(eval(
        &String::from_utf8_lossy(&output.stdout),
        &String::from_utf8_lossy(&output.stderr),
        output.status.code(),
        first,
    ))
}

/// The problems with one run of [`SCRIPT`]: `first` is the first chapter, whose stub `put`
/// reaches.
pub fn eval(stdout: &str, stderr: &str, code: Option<i32>, first: &Chapter) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    let find = |p: &dyn Fn(&str) -> bool| lines.iter().position(|l| p(l));
    let stub_prefix = format!("error: not yet implemented: {}, task ", first.label());
    let page = format!("(book: {})", first.book);
    let stub = find(&|l| l.starts_with(&stub_prefix) && l.ends_with(&page));
    let help = find(&|l| l.starts_with("commands:"));
    let closed = find(&|l| l == "closed");
    let mut problems = Vec::new();
    let expect = |ok: bool, what: &str, problems: &mut Vec<String>| {
        if !ok {
            problems.push(format!(
                "check 3: the pristine starter's shell, given `put a 1`, `help`, `quit`: {what}; \
                 its output:\n{stdout}{stderr}"
            ));
        }
    };
    expect(
        stub.is_some(),
        &format!("no line `{stub_prefix}... {page}` (the stub's message)"),
        &mut problems,
    );
    expect(
        help.is_some() && stub < help,
        "the help does not follow the stub's message",
        &mut problems,
    );
    expect(
        closed.is_some() && help < closed,
        "it did not close the engine at `quit`",
        &mut problems,
    );
    expect(
        code == Some(0),
        &format!("it exited with {code:?}, not 0"),
        &mut problems,
    );
    expect(
        !stderr.contains("panicked at") && !stderr.contains("stack backtrace"),
        "a panic message or a backtrace was printed",
        &mut problems,
    );
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn first() -> Chapter {
        Manifest::parse(
            "[[chapter]]\nid = \"week1_day1\"\ntitle = \"t\"\nbook = \"week1-01-memtable\"\n\
             tasks = [\"a\", \"b\"]\n",
        )
        .unwrap()
        .chapters
        .remove(0)
    }

    const STUB: &str = "error: not yet implemented: week 1 day 1, task 2: write puts (book: \
                        week1-01-memtable)";

    /// The stub's message, then the help, then `closed`, with status 0 and a quiet stderr.
    #[test]
    fn a_shell_that_survives_passes() {
        let stdout =
            format!("mini-lsm> put a 1\n{STUB}\nmini-lsm> help\ncommands:\n  ...\nclosed\n");
        assert!(eval(&stdout, "", Some(0), &first()).is_empty());
    }

    /// A shell that dies at the stub (today's default panic), or buries it under a backtrace,
    /// or exits non-zero, fails the check with what was expected.
    #[test]
    fn a_shell_that_dies_fails() {
        let died = eval(
            "mini-lsm> put a 1\n",
            "thread 'main' panicked at src/lsm_storage/write.rs:72:9:\nnot yet implemented\n\
             stack backtrace:\n",
            Some(101),
            &first(),
        );
        assert!(
            died.iter().any(|p| p.contains("the stub's message")),
            "{died:?}"
        );
        assert!(
            died.iter().any(|p| p.contains("exited with Some(101)")),
            "{died:?}"
        );
        assert!(
            died.iter().any(|p| p.contains("a backtrace was printed")),
            "{died:?}"
        );
        let noisy = format!("{STUB}\ncommands:\nclosed\n");
        let problems = eval(&noisy, "stack backtrace:\n", Some(0), &first());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
