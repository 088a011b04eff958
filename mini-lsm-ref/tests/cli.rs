// SPDX-License-Identifier: Apache-2.0
//! The reference shell, driven through its binary with a script on standard input.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `mini-lsm-cli-ref --path <tmp>/db` with `script` on stdin until end of input; returns
/// the output lines (without any prompt) and whether the process exited successfully.
fn run_shell(script: &str) -> (Vec<String>, bool) {
    let dir = tempfile::tempdir().unwrap();
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
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("run the shell");
    let stdout = String::from_utf8(output.stdout).expect("the shell prints text");
    let lines = stdout
        .lines()
        .map(|line| line.trim_start_matches("mini-lsm> ").to_string())
        .filter(|line| !line.is_empty())
        .collect();
    if !output.status.success() {
        eprintln!("stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    (lines, output.status.success())
}

/// Fills, flushes and refills through the shell: `get` sees the newest epoch before and after
/// each flush, `scan` prints exactly the keys in range with their newest values and the count,
/// and end of input closes the engine cleanly.
#[test]
fn test_cli_fill_flush_get_scan() {
    let script = "fill 1000 3000\nget 2333\nflush\nfill 1000 3000\nget 2333\nflush\nget 2333\n\
                  scan 2000 2333\n";
    let (lines, success) = run_shell(script);
    assert!(success, "the shell failed; output:\n{}", lines.join("\n"));
    let gets: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("value2333@"))
        .collect();
    assert_eq!(
        gets,
        ["value2333@0", "value2333@1", "value2333@1"],
        "output:\n{}",
        lines.join("\n")
    );
    let scanned: Vec<&String> = lines.iter().filter(|l| l.contains('=')).collect();
    let expected: Vec<String> = (2000..=2333).map(|i| format!("{i}=value{i}@1")).collect();
    assert_eq!(
        scanned,
        expected.iter().collect::<Vec<_>>(),
        "the scan printed the wrong entries"
    );
    assert!(
        lines.contains(&"(334 entries)".to_string()),
        "output:\n{}",
        lines.join("\n")
    );
    assert_eq!(lines.last().map(String::as_str), Some("closed"));
    assert!(
        !lines.iter().any(|l| l.starts_with("error:")),
        "output:\n{}",
        lines.join("\n")
    );
}

/// A malformed command prints a line starting with `error:` and the shell goes on: a later
/// `get` still works and the shell closes cleanly.
#[test]
fn test_cli_malformed_commands() {
    let (lines, success) = run_shell("get\nfill x y\nbogus\nfill 5 1\nput k v\nget k\n");
    assert!(success, "the shell failed; output:\n{}", lines.join("\n"));
    let errors = lines.iter().filter(|l| l.starts_with("error:")).count();
    assert_eq!(
        errors,
        4,
        "each malformed command reports an error; output:\n{}",
        lines.join("\n")
    );
    let k = lines
        .iter()
        .position(|l| l == "v")
        .expect("`get k` prints v after the errors");
    assert!(
        lines[..k]
            .iter()
            .filter(|l| l.starts_with("error:"))
            .count()
            == 4
    );
    assert_eq!(lines.last().map(String::as_str), Some("closed"));
}
