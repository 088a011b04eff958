// SPDX-License-Identifier: Apache-2.0
//! The book's shell sessions are real: each script `book/transcripts/NAME.cli` is run through the
//! reference shell, and its output must be exactly `NAME.txt`, which the book includes. After an
//! intended change to the shell or the engine, `MINI_LSM_BLESS=1` rewrites the transcripts (review
//! the diff before you commit it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder of the book's scripts and transcripts.
fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/transcripts")
}

/// Runs `mini-lsm-cli-ref` on a fresh database with `script` on standard input; returns what it
/// printed to standard output.
fn run_shell(script: &str) -> String {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mini-lsm-cli-ref"))
        .arg("--path")
        .arg(dir.path().join("db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the shell");
    child
        .stdin
        .take()
        .expect("the shell's stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let output = child.wait_with_output().expect("run the shell");
    assert!(
        output.status.success(),
        "the shell failed ({}); stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the shell prints text")
}

/// Every transcript in the book is what the reference shell prints for its script.
#[test]
fn test_book_transcripts_match_the_shell() {
    let bless = std::env::var_os("MINI_LSM_BLESS").is_some();
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(transcripts_dir())
        .expect("read book/transcripts")
        .map(|entry| entry.expect("list book/transcripts").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cli"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no scripts in book/transcripts");
    let mut stale = Vec::new();
    for script in &scripts {
        let expected_path = script.with_extension("txt");
        let actual = run_shell(&std::fs::read_to_string(script).expect("read the script"));
        if bless {
            std::fs::write(&expected_path, &actual).expect("write the transcript");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            let first_difference = actual
                .lines()
                .zip(expected.lines())
                .position(|(a, e)| a != e)
                .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
            let name = expected_path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            stale.push(format!(
                "book/transcripts/{name}: line {} differs\n  the shell printed: {:?}\n  the book \
                 shows:    {:?}",
                first_difference + 1,
                actual
                    .lines()
                    .nth(first_difference)
                    .unwrap_or("(end of output)"),
                expected
                    .lines()
                    .nth(first_difference)
                    .unwrap_or("(end of transcript)"),
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "the book's transcripts no longer match the reference shell:\n{}\nIf the change is \
         intended, rerun with MINI_LSM_BLESS=1 to rewrite them, and review the diff.",
        stale.join("\n")
    );
}
