//! Running a crate's tests with nextest and reading the results per chapter.

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
    /// The first line of the panic message, for a failure.
    pub panic: Option<String>,
}

impl TestResult {
    /// The test's own name, without its module path.
    pub fn short_name(&self) -> &str {
        self.name.rsplit("::").next().unwrap_or(&self.name)
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

/// The first line of the panic message in a failed test's output.
pub fn panic_line(output: &str) -> Option<String> {
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if line.contains("panicked at") {
            // Since Rust 1.73 the message is on the line after `panicked at <location>:`.
            let inline = line.split_once("panicked at").map(|(_, rest)| rest.trim());
            return match lines.next() {
                Some(next) if !next.trim().is_empty() => Some(next.trim().to_string()),
                _ => inline.map(str::to_string),
            };
        }
    }
    output
        .lines()
        .find(|l| l.starts_with("Error:"))
        .map(|l| l.to_string())
}

/// Parses nextest's libtest-json lines.
pub fn parse_events(json: &str) -> Vec<TestResult> {
    json.lines()
        .filter_map(|line| serde_json::from_str::<Event>(line).ok())
        .filter(|e| e.kind == "test" && (e.event == "ok" || e.event == "failed"))
        .map(|e| TestResult {
            passed: e.event == "ok",
            panic: if e.event == "failed" {
                panic_line(e.stdout.as_deref().unwrap_or(""))
            } else {
                None
            },
            name: e.name,
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

/// [`run_nextest`], with environment variables `envs` set for the tests (`MINI_LSM_FULL=1`).
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
    let output = Command::new("cargo")
        .args([
            "nextest",
            "run",
            "--no-fail-fast",
            "--message-format",
            "libtest-json",
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
        .output()
        .context(
            "running `cargo nextest` (install it with `cargo install cargo-nextest --locked`)",
        )?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let results = parse_events(&stdout);
    // A build failure leaves no test events and a compiler error on stderr.
    let built = !(results.is_empty() && stderr.contains("error"));
    Ok(RunOutcome {
        built,
        build_log: if built { String::new() } else { stderr },
        results,
    })
}

/// Per-chapter counts of a run: `(passed, total, first failure)`, indexed like the manifest.
pub fn per_chapter(
    manifest: &Manifest,
    results: &[TestResult],
) -> Vec<(usize, usize, Option<TestResult>)> {
    let mut table = vec![(0, 0, None); manifest.chapters.len()];
    let mut sorted: Vec<&TestResult> = results.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for result in sorted {
        if let Some(ci) = manifest.chapter_of_test(&result.name) {
            let row = &mut table[ci];
            row.1 += 1;
            if result.passed {
                row.0 += 1;
            } else if row.2.is_none() {
                row.2 = Some(result.clone());
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
{"type":"test","event":"failed","name":"s::s$tests::week1_day1::test_b","stdout":"\nthread 'x' panicked at src/a.rs:3:5:\nnot yet implemented: week 1 day 1, task 1: x\nnote: ..."}
"#;
        let results = parse_events(json);
        assert_eq!(results.len(), 2);
        assert!(results[0].passed);
        assert_eq!(
            results[1].panic.as_deref(),
            Some("not yet implemented: week 1 day 1, task 1: x")
        );
        assert_eq!(results[1].short_name(), "test_b");
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
