// SPDX-License-Identifier: Apache-2.0
//! The reference shell, driven through its binary with a script on standard input.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `mini-lsm-cli-ref --path <tmp>/db` with `script` on stdin until end of input; returns
/// the output lines (without any prompt) and whether the process exited successfully.
fn run_shell(script: &str) -> (Vec<String>, bool) {
    let dir = tempfile::tempdir().unwrap();
    run_shell_in(&dir.path().join("db"), &[], script)
}

/// [`run_shell`] on the database at `db`, with the extra arguments `args`.
fn run_shell_in(db: &std::path::Path, args: &[&str], script: &str) -> (Vec<String>, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mini-lsm-cli-ref"))
        .arg("--path")
        .arg(db)
        .args(args)
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

/// With `--wal`, writes that were never flushed survive a restart: the second shell reads them
/// back from the log (and the first one's close did not flush them: the dump shows no SST).
#[test]
fn test_cli_wal_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let (lines, success) = run_shell_in(&db, &["--wal"], "put a 1\nput b 2\ndel a\nquit\n");
    assert!(success, "output:\n{}", lines.join("\n"));
    let (lines, success) = run_shell_in(&db, &["--wal"], "dump\nget a\nget b\nquit\n");
    assert!(success, "output:\n{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.starts_with("L0 (0 SSTs")),
        "nothing was flushed; output:\n{}",
        lines.join("\n")
    );
    let after_dump: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| ["(not found)", "1", "2"].contains(l))
        .collect();
    assert_eq!(
        after_dump,
        ["(not found)", "2"],
        "output:\n{}",
        lines.join("\n")
    );
}

/// `compact` merges the L0 SSTs into one sorted run below them, and every key reads the same.
#[test]
fn test_cli_compact() {
    let script = "fill 1 300\nflush\nfill 200 500\nflush\ncompact\ndump\nget 250\nget 1\n";
    let (lines, success) = run_shell(script);
    assert!(success, "output:\n{}", lines.join("\n"));
    assert!(
        lines.contains(&"compacted".to_string()),
        "output:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.starts_with("L0 (0 SSTs")),
        "L0 is empty after the compaction; output:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.contains(&"value250@1".to_string()),
        "output:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.contains(&"value1@0".to_string()),
        "output:\n{}",
        lines.join("\n")
    );
}

/// `help` says when data survives a restart; an oversized `fill` is refused and the shell goes
/// on.
#[test]
fn test_cli_help_and_bounded_fill() {
    let (lines, success) = run_shell("help\nfill 0 18446744073709551615\nput k v\nget k\n");
    assert!(success, "output:\n{}", lines.join("\n"));
    let text = lines.join("\n");
    assert!(
        text.contains("week 2 day 5") && text.contains("--wal"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error: fill 0 18446744073709551615 would put")),
        "{text}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("closed"));
    assert!(lines.contains(&"v".to_string()), "{text}");
}

/// `merge K N` adds to a counter through the shell's add operator, across a flush and a
/// compaction; an operand that is not an integer is refused and the shell goes on.
#[test]
fn test_cli_merge_counts() {
    let script = "merge visits 5\nmerge visits 2\nflush\nmerge visits 10\nget visits\ncompact\n\
                  merge visits x\nget visits\nput word hello\nmerge word 1\nget word\nget visits\n";
    let (lines, success) = run_shell(script);
    assert!(success, "output:\n{}", lines.join("\n"));
    let gets: Vec<&String> = lines
        .iter()
        .filter(|l| *l == "17" || l.contains("not an integer") || l.contains("decimal"))
        .collect();
    assert_eq!(gets.len(), 5, "output:\n{}", lines.join("\n"));
    assert_eq!(gets[0], "17");
    assert!(gets[1].contains("`x` is not an integer"), "{}", gets[1]);
    assert_eq!(gets[2], "17");
    assert!(
        gets[3].contains("word") && gets[3].contains("hello"),
        "{}",
        gets[3]
    );
    assert_eq!(gets[4], "17");
}
