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
