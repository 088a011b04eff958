// SPDX-License-Identifier: Apache-2.0
//! The compaction simulator, driven through its binary: one run per strategy.

use std::process::Command;

/// Runs `compaction-simulator-ref` with `args`; returns its standard output and error, and
/// whether it exited successfully.
fn simulate(args: &[&str]) -> (String, String, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_compaction-simulator-ref"))
        .args(args)
        .output()
        .expect("run the simulator");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("the simulator prints text");
    (
        text(output.stdout),
        text(output.stderr),
        output.status.success(),
    )
}

/// The line starting with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with `{prefix}` in:\n{out}"))
}

/// Simple leveled compaction, 16 flushes: the shape after each step, the last shape, and the
/// three amplifications, all as worked out by hand (19 compactions rewrite 72 MiB).
#[test]
fn test_simulator_simple_leveled() {
    let (out, err, ok) = simulate(&[
        "simple",
        "--level0-file-num-compaction-trigger=2",
        "--size-ratio-percent=200",
        "--max-levels=3",
        "--flushes=16",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        line(&out, "flush 1 "),
        "flush 1 (SST 1): L0 1 | L1 0 | L2 0 | L3 0"
    );
    let compactions: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  compaction"))
        .collect();
    assert_eq!(compactions.len(), 19, "{out}");
    assert_eq!(
        compactions[0],
        "  compaction L0 2 SSTs + L1 0 SSTs -> L1: L0 0 | L1 2 | L2 0 | L3 0"
    );
    assert_eq!(
        line(&out, "after"),
        "after 16 flushes and 19 compactions: L0 0 | L1 0 | L2 0 | L3 16"
    );
    assert!(line(&out, "write amplification")
        .starts_with("write amplification: 5.50 (88 MiB written for 16 MiB flushed)"));
    assert!(
        line(&out, "read amplification").starts_with("read amplification: 1 sorted runs (max 5 ")
    );
    assert!(line(&out, "space amplification").starts_with("space amplification: 1.00 "));
}

/// Tiered compaction, 9 flushes with `--quiet`: only the summary, ending in two tiers; 4
/// compactions rewrote 14 MiB, meeting 10 SSTs of older tiers.
#[test]
fn test_simulator_tiered() {
    let (out, err, ok) = simulate(&[
        "tiered",
        "--num-tiers=3",
        "--max-size-amplification-percent=200",
        "--size-ratio=1",
        "--min-merge-width=2",
        "--flushes=9",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().count(),
        6,
        "a header and the summary only:\n{out}"
    );
    assert_eq!(
        line(&out, "after"),
        "after 9 flushes and 4 compactions: tiers 2 7"
    );
    assert!(line(&out, "write amplification").starts_with("write amplification: 2.56 (23 MiB"));
    assert!(line(&out, "space amplification").starts_with("space amplification: 1.29 "));
    assert!(line(&out, "SSTs met below")
        .starts_with("SSTs met below: 2.5 on average, 6 at most, over 4 compactions "));
}

/// Leveled compaction: every step keeps L0 under its trigger once compacted, and the run ends
/// with data only below L0; an invalid option is refused with a message that names it.
#[test]
fn test_simulator_leveled_and_bad_options() {
    let (out, err, ok) = simulate(&[
        "leveled",
        "--level-size-multiplier=2",
        "--level0-file-num-compaction-trigger=2",
        "--max-levels=3",
        "--base-level-size-mb=2",
        "--flushes=20",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("  compaction L0 2 SSTs + L3 0 SSTs -> L3, bottom: "),
        "{out}"
    );
    assert!(
        out.contains("  compaction L2 1 SSTs + L3 "),
        "a level-to-level move:\n{out}"
    );
    assert!(
        line(&out, "after 20 flushes").contains(": L0 0 | L1 "),
        "{out}"
    );
    let (_, err, ok) = simulate(&["tiered", "--num-tiers=1"]);
    assert!(!ok && err.contains("num_tiers"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The simulator output the book shows

/// Where the book keeps simulator output: `*.txt` files of one run each, and `*.md` tables.
fn book_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src/simulator")
}

/// Whether to rewrite the book's files rather than check them (`MINI_LSM_BLESS=1`).
fn bless() -> bool {
    std::env::var("MINI_LSM_BLESS").is_ok_and(|v| v.trim() == "1")
}

/// Checks (or, blessing, writes) the book file `name` against `expected`.
fn check_book_file(name: &str, expected: &str, problems: &mut Vec<String>) {
    let path = book_dir().join(name);
    if bless() {
        std::fs::create_dir_all(book_dir()).unwrap();
        std::fs::write(&path, expected).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(found) if found == expected => {}
        Ok(found) => problems.push(format!(
            "{name} differs from the simulator's output:\n--- book\n{found}\n--- simulator\n{expected}"
        )),
        Err(e) => problems.push(format!("{name}: {e}")),
    }
}

/// The command line a book file shows for `args`.
const COMMAND: &str = "$ cargo run -q -p mini-lsm-ref --bin compaction-simulator-ref --";

/// Every `.txt` file under `book/src/simulator` is one run: the command line (continued with a
/// trailing backslash), then exactly what the simulator prints for it. A file that differs from
/// a fresh run fails the test; `MINI_LSM_BLESS=1` rewrites each from its command line.
#[test]
fn test_book_shows_real_simulator_runs() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(book_dir()).expect("book/src/simulator") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // The command: the first line, and the lines it continues onto.
        let mut lines = text.lines();
        let mut command = String::new();
        for line in lines.by_ref() {
            match line.strip_suffix('\\') {
                Some(head) => command.push_str(head),
                None => {
                    command.push_str(line);
                    break;
                }
            }
        }
        let command_lines = text.lines().count() - lines.count();
        let args: Vec<&str> = command
            .strip_prefix(COMMAND)
            .unwrap_or_else(|| panic!("{}: starts with `{COMMAND}`", path.display()))
            .split_whitespace()
            .collect();
        let (out, err, ok) = simulate(&args);
        assert!(ok, "{}: {err}", path.display());
        let head: Vec<&str> = text.lines().take(command_lines).collect();
        let expected = format!("{}\n{out}", head.join("\n"));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        check_book_file(&name, &expected, &mut problems);
        checked += 1;
    }
    assert!(
        checked >= 4,
        "only {checked} runs in {}",
        book_dir().display()
    );
    assert!(
        problems.is_empty(),
        "{}\n(MINI_LSM_BLESS=1 rewrites them)",
        problems.join("\n")
    );
}

/// The figures of one quiet run, read from the simulator's summary lines.
fn summary_row(args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--quiet");
    let (out, err, ok) = simulate(&all);
    assert!(ok, "{args:?}: {err}");
    let after = |prefix: &str| -> String {
        let rest = line(&out, prefix).strip_prefix(prefix).unwrap().trim();
        rest.to_string()
    };
    let first_word = |prefix: &str| after(prefix).split_whitespace().next().unwrap().to_string();
    let read = after("read amplification:");
    let read_max = read
        .split("(max ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    let met = |prefix: &str| -> String {
        if !out.lines().any(|l| l.trim_start().starts_with(prefix)) {
            return "–".to_string();
        }
        let text = out
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap();
        let words: Vec<&str> = text.trim_start()[prefix.len()..]
            .split_whitespace()
            .collect();
        // `<average> on average, <max> at most, ...`
        format!("{} ({})", words[0], words[3])
    };
    let settings: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with("--flushes"))
        .collect();
    let flushes = args
        .iter()
        .find_map(|a| a.strip_prefix("--flushes="))
        .unwrap();
    format!(
        "| `{}` | {flushes} | {} | {} ({read_max}) | {} | {} | {} |",
        settings.join(" "),
        first_word("write amplification:"),
        read.split_whitespace().next().unwrap(),
        first_word("space amplification:"),
        met("SSTs met below:"),
        met("between levels:"),
    )
}

/// The tables of the compaction chapters, each a list of simulator runs, are exactly what the
/// simulator reports for those runs (`MINI_LSM_BLESS=1` rewrites them).
#[test]
fn test_book_tables_are_real_simulator_figures() {
    let tables: [(&str, &[&[&str]]); 3] = [
        (
            "simple.md",
            &[&["simple", "--flushes=100"], &["simple", "--flushes=1000"]],
        ),
        (
            "tiered.md",
            &[
                &["tiered", "--flushes=100"],
                &["tiered", "--flushes=1000"],
                &["tiered", "--num-tiers=8", "--flushes=1000"],
            ],
        ),
        (
            "strategies.md",
            &[
                &["simple", "--flushes=1000"],
                &["tiered", "--flushes=1000"],
                &["tiered", "--num-tiers=8", "--flushes=1000"],
                &["leveled", "--flushes=1000"],
                &["leveled", "--base-level-size-mb=4", "--flushes=1000"],
                &[
                    "leveled",
                    "--base-level-size-mb=4",
                    "--level-size-multiplier=4",
                    "--flushes=1000",
                ],
            ],
        ),
    ];
    let mut problems = Vec::new();
    for (name, runs) in tables {
        let mut table = String::from(
            "| strategy and settings | flushes | write amplification | read amplification \
             (max) | space amplification | SSTs met below per compaction: average (max) | per \
             move between levels |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for args in runs {
            table.push_str(&summary_row(args));
            table.push('\n');
        }
        check_book_file(name, &table, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "{}\n(MINI_LSM_BLESS=1 rewrites them)",
        problems.join("\n")
    );
}
