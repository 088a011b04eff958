//! Running a crate's tests with nextest and reading the results per chapter.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::manifest::Manifest;

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// nextest's full name, `crate::binary$module::path::test`.
    pub name: String,
    pub passed: bool,
    /// For a failure: the whole panic message (every line of it, so an assertion's `left` and
    /// `right` are there), or the `Error:` line of a test that returned an error.
    pub panic: Option<String>,
    /// For a failure: where it panicked (`file:line:column`); with the harness's helpers
    /// `#[track_caller]`, the test's own line.
    pub location: Option<String>,
}

impl TestResult {
    /// The test's own name, without its module path.
    pub fn short_name(&self) -> &str {
        self.name.rsplit("::").next().unwrap_or(&self.name)
    }

    /// The test's path within its crate (`tests::week1_day1::test_a`), which is also the name
    /// of the thread it runs on.
    pub fn path(&self) -> &str {
        self.name
            .rsplit_once('$')
            .map_or(&self.name, |(_, path)| path)
    }

    /// The failure message on one line, or indented under its first line when it has several
    /// (for lists of problems).
    pub fn failure_text(&self, indent: &str) -> String {
        let message = self.panic.as_deref().unwrap_or("failed (no panic message)");
        message.replace('\n', &format!("\n{indent}"))
    }
}

/// What one nextest run produced.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Whether the build succeeded (tests may still fail).
    pub built: bool,
    /// The compiler's and nextest's messages, for a failed build.
    pub build_log: String,
    pub results: Vec<TestResult>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    event: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    stdout: Option<String>,
}

/// The panic that failed the test `path` in its captured output, and where it happened: the last
/// panic on the test's own thread (a panic of another thread, or one the test caught, comes
/// before it), else the last panic of any thread. The whole message: every line up to the
/// backtrace note.
pub fn panic_of(output: &str, path: &str) -> Option<(Option<String>, String)> {
    let lines: Vec<&str> = output.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("thread '") && lines[i].contains("panicked at"))
        .collect();
    let own = format!("thread '{path}'");
    let Some(&at) = starts
        .iter()
        .rev()
        .find(|&&i| lines[i].starts_with(&own))
        .or(starts.last())
    else {
        return output
            .lines()
            .find(|l| l.starts_with("Error:"))
            .map(|l| (None, l.to_string()));
    };
    let location = lines[at]
        .split_once("panicked at ")
        .map(|(_, rest)| rest.trim_end().trim_end_matches(':').to_string())
        .filter(|l| !l.starts_with('\''));
    let body: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| {
            !(l.starts_with("note: run with `RUST_BACKTRACE")
                || l.starts_with("stack backtrace:")
                || (l.starts_with("thread '") && l.contains("panicked at")))
        })
        .copied()
        .collect();
    let message = body.join("\n").trim_end().to_string();
    if message.is_empty() {
        // Before Rust 1.73 the message was on the `panicked at` line itself.
        let inline = lines[at]
            .split_once("panicked at")
            .map(|(_, rest)| rest.trim());
        return inline.map(|m| (None, m.to_string()));
    }
    Some((location, message))
}

/// Parses nextest's libtest-json lines.
pub fn parse_events(json: &str) -> Vec<TestResult> {
    json.lines()
        .filter_map(|line| serde_json::from_str::<Event>(line).ok())
        .filter(|e| e.kind == "test" && (e.event == "ok" || e.event == "failed"))
        .map(|e| {
            let mut result = TestResult {
                passed: e.event == "ok",
                panic: None,
                location: None,
                name: e.name,
            };
            if !result.passed {
                let output = e.stdout.as_deref().unwrap_or("");
                if let Some((location, message)) = panic_of(output, result.path()) {
                    (result.location, result.panic) = (location, Some(message));
                }
            }
            result
        })
        .collect()
}

/// Runs `cargo nextest run` for `package` of the workspace or crate at `manifest_path`, without
/// stopping at the first failure. `target_dir` is shared among scratch builds.
///
/// # Errors
/// If nextest cannot be started at all.
pub fn run_nextest(
    manifest_path: &Path,
    package: &str,
    target_dir: &Path,
    lib_only: bool,
    filter: &[String],
) -> Result<RunOutcome> {
    run_nextest_with(manifest_path, package, target_dir, lib_only, filter, &[])
}

/// Whether a line of nextest's stderr is worth showing while it runs: cargo's build progress
/// and errors before the tests start, then the start line and tests that are slow.
fn shown_while_running(line: &str, testing: bool) -> bool {
    if testing {
        let word = line.split_whitespace().next().unwrap_or("");
        matches!(word, "Starting" | "SLOW" | "TERMINATING" | "TIMEOUT")
    } else {
        !line.starts_with("────────────") && !line.trim_start().starts_with("Nextest run ID")
    }
}

/// [`run_nextest`], with environment variables `envs` set for the tests (`MINI_LSM_FULL=1`).
/// Cargo's build progress is shown as it happens (a first build takes minutes); the tests'
/// results are read from nextest's libtest-json events.
///
/// # Errors
/// As [`run_nextest`].
pub fn run_nextest_with(
    manifest_path: &Path,
    package: &str,
    target_dir: &Path,
    lib_only: bool,
    filter: &[String],
    envs: &[(&str, &str)],
) -> Result<RunOutcome> {
    let mut child = Command::new("cargo")
        .args([
            "nextest",
            "run",
            "--no-fail-fast",
            "--message-format",
            "libtest-json",
            "--failure-output",
            "never",
            "--success-output",
            "never",
        ])
        .arg("--manifest-path")
        .arg(manifest_path)
        .args(["--package", package])
        .args(if lib_only { &["--lib"][..] } else { &[] })
        .args(["--no-tests", "pass"])
        .args(filter)
        .env("NEXTEST_EXPERIMENTAL_LIBTEST_JSON", "1")
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUST_BACKTRACE", "0")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "running `cargo nextest` (install it with `cargo install cargo-nextest --locked`)",
        )?;
    let stderr = child.stderr.take().expect("piped");
    let echo = std::thread::spawn(move || {
        let mut log = String::new();
        let mut testing = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            testing |= line.trim_start().starts_with("Starting ");
            if shown_while_running(&line, testing) {
                eprintln!("{line}");
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .context("reading nextest's output")?;
    child.wait().context("running cargo nextest")?;
    let stderr = echo.join().unwrap_or_default();
    let results = parse_events(&stdout);
    // A build failure leaves no test events and a compiler error on stderr.
    let built = !(results.is_empty() && stderr.contains("error"));
    Ok(RunOutcome {
        built,
        build_log: if built { String::new() } else { stderr },
        results,
    })
}

/// One chapter's share of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChapterRun {
    pub passed: usize,
    pub total: usize,
    /// Every failing test of the chapter, by name.
    pub failures: Vec<TestResult>,
}

impl ChapterRun {
    /// Tests ran and every one passed.
    pub fn all_pass(&self) -> bool {
        self.total > 0 && self.passed == self.total
    }
}

/// Each chapter's share of a run, indexed like the manifest; tests in name order.
pub fn per_chapter(manifest: &Manifest, results: &[TestResult]) -> Vec<ChapterRun> {
    let mut table = vec![ChapterRun::default(); manifest.chapters.len()];
    let mut sorted: Vec<&TestResult> = results.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for result in sorted {
        if let Some(ci) = manifest.chapter_of_test(&result.name) {
            let row = &mut table[ci];
            row.total += 1;
            if result.passed {
                row.passed += 1;
            } else {
                row.failures.push(result.clone());
            }
        }
    }
    table
}

/// The chapters whose test files a compiler error log points at (`src/tests/weekW_dayD.rs`).
pub fn chapters_in_build_log(manifest: &Manifest, log: &str) -> Vec<usize> {
    manifest
        .chapters
        .iter()
        .enumerate()
        .filter(|(_, c)| log.contains(&format!("tests/{}", c.test_file())))
        .map(|(i, _)| i)
        .collect()
}

/// The first compiler error in a build log, with its location line.
pub fn first_error(log: &str) -> String {
    let mut lines = log.lines().skip_while(|l| !l.starts_with("error"));
    let head = lines
        .next()
        .unwrap_or("the build failed (no compiler error found in the log)");
    match lines.next() {
        Some(at) if at.trim_start().starts_with("-->") => format!("{head} {}", at.trim()),
        _ => head.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nextest's libtest-json events become results, with the panic's first line for failures.
    #[test]
    fn parses_nextest_events() {
        let json = r#"{"type":"suite","event":"started","test_count":2}
{"type":"test","event":"started","name":"s::s$tests::week1_day1::test_a"}
{"type":"test","event":"ok","name":"s::s$tests::week1_day1::test_a","exec_time":0.1}
{"type":"test","event":"failed","name":"s::s$tests::week1_day1::test_b","stdout":"\nthread 'tests::week1_day1::test_b' (7) panicked at src/a.rs:3:5:\nnot yet implemented: week 1 day 1, task 1: x\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"}
"#;
        let results = parse_events(json);
        assert_eq!(results.len(), 2);
        assert!(results[0].passed);
        assert_eq!(
            results[1].panic.as_deref(),
            Some("not yet implemented: week 1 day 1, task 1: x")
        );
        assert_eq!(results[1].short_name(), "test_b");
        assert_eq!(results[1].path(), "tests::week1_day1::test_b");
        assert_eq!(results[1].location.as_deref(), Some("src/a.rs:3:5"));
    }

    fn panic_message(output: &str, path: &str) -> Option<String> {
        panic_of(output, path).map(|(_, message)| message)
    }

    /// The whole assertion message is kept, `left` and `right` included, up to the backtrace
    /// note; of several panics, the test's own thread's last one is the failure.
    #[test]
    fn keeps_the_whole_message_of_the_tests_own_panic() {
        let output = "seed 7\n\
            thread 'flush' panicked at src/flush.rs:1:1:\nthe flush thread's own panic\n\
            thread 'tests::w::t' (9) panicked at src/tests/w.rs:10:5:\n\
            assertion `left == right` failed: get b\"k1\"\n  left: Some(b\"v1\")\n right: None\n\
            note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(output, "tests::w::t").as_deref(),
            Some(
                "assertion `left == right` failed: get b\"k1\"\n  left: Some(b\"v1\")\n right: None"
            )
        );
        // Another thread's panic when the test's own thread did not panic.
        assert_eq!(
            panic_message(output, "tests::w::other").as_deref(),
            Some("assertion `left == right` failed: get b\"k1\"\n  left: Some(b\"v1\")\n right: None")
        );
        assert_eq!(
            panic_message("Error: the file is short\n", "t").as_deref(),
            Some("Error: the file is short")
        );
        assert_eq!(panic_message("all good\n", "t"), None);
    }

    /// Every failure of a chapter is listed, not just the first.
    #[test]
    fn every_failure_of_a_chapter_is_listed() {
        let m = Manifest::parse(
            "[[chapter]]\nid = \"week1_day1\"\ntitle = \"t\"\nbook = \"b\"\ntasks = [\"x\"]\n",
        )
        .unwrap();
        let result = |test: &str, passed| TestResult {
            name: format!("s::s$tests::week1_day1::{test}"),
            passed,
            panic: (!passed).then(|| format!("{test} failed")),
            location: None,
        };
        let table = per_chapter(
            &m,
            &[result("c", false), result("a", false), result("b", true)],
        );
        assert_eq!((table[0].passed, table[0].total), (1, 3));
        let names: Vec<&str> = table[0].failures.iter().map(|t| t.short_name()).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(!table[0].all_pass());
    }

    /// While nextest runs, cargo's progress is shown, then only slow tests.
    #[test]
    fn progress_lines_are_chosen() {
        assert!(shown_while_running(
            "   Compiling mini-lsm-starter v0.1.0",
            false
        ));
        assert!(!shown_while_running(
            " Nextest run ID 1234 with nextest profile: default",
            false
        ));
        assert!(shown_while_running(
            "    Starting 3 tests across 1 binary",
            true
        ));
        assert!(shown_while_running("        SLOW [> 60.000s] t", true));
        assert!(!shown_while_running(
            "        PASS [   0.005s] (1/1) t",
            true
        ));
    }

    /// A compile error in a copied test file names its chapter.
    #[test]
    fn build_errors_name_the_chapter() {
        let m = Manifest::parse(
            "[[chapter]]\nid = \"week1_day3\"\ntitle = \"t\"\nbook = \"b\"\ntasks = [\"x\"]\n",
        )
        .unwrap();
        let log = "error[E0425]: cannot find function `foo`\n  --> src/tests/week1_day3.rs:10:5\n";
        assert_eq!(chapters_in_build_log(&m, log), vec![0]);
        assert_eq!(
            first_error(log),
            "error[E0425]: cannot find function `foo` --> src/tests/week1_day3.rs:10:5"
        );
    }
}
