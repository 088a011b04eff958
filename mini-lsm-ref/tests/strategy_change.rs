// SPDX-License-Identifier: Apache-2.0
//! Reopening a database with another compaction strategy: the shell sequence of issue 12 for
//! every ordered pair of strategies, and the relabelling of sorted runs that `open` does.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use mini_lsm::compact::{StrategyKind, TreeLayout};

/// The strategies the shell offers.
const STRATEGIES: [&str; 4] = ["none", "simple", "tiered", "leveled"];

/// Runs `mini-lsm-cli-ref --path path --compaction strategy` with `script` on stdin; returns
/// what it printed on stdout (without prompts) and on stderr, after checking it exited cleanly.
fn shell(path: &Path, strategy: &str, script: &str) -> (Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mini-lsm-cli-ref"))
        .arg("--path")
        .arg(path)
        .args(["--compaction", strategy])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the shell");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().expect("run the shell");
    let stdout = String::from_utf8(output.stdout).expect("text");
    let stderr = String::from_utf8(output.stderr).expect("text");
    assert!(output.status.success(), "{strategy}: {stdout}\n{stderr}");
    let lines = stdout
        .lines()
        .filter(|l| !l.starts_with("mini-lsm> "))
        .map(str::to_string)
        .collect();
    (lines, stderr)
}

/// Issue 12's sequence: `put k old; flush; close` and a reopen with strategy A, then `put k
/// new; flush; get k` with strategy B prints `new` for every ordered pair, and the engine says
/// on stderr that it converted the tree exactly when the two strategies differ.
#[test]
fn test_cli_reopen_with_every_other_strategy_prints_new() {
    for a in STRATEGIES {
        for b in STRATEGIES {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            shell(&path, a, "put k old\nflush\nclose\n");
            shell(&path, a, "close\n");
            let (out, err) = shell(&path, b, "put k new\nflush\nget k\n");
            assert_eq!(
                out,
                ["ok", "flushed", "new", "closed"],
                "{a} then {b}:\n{err}"
            );
            let converted = err.contains(&format!("the tree was laid out by {}", layout(a)));
            assert_eq!(converted, a != b, "{a} then {b}: stderr says:\n{err}");
            // And back: the first strategy reads the second's tree.
            let (out, err) = shell(&path, a, "get k\n");
            assert_eq!(out, ["new", "closed"], "{a} then {b} then {a}:\n{err}");
        }
    }
}

/// How the shell's strategy names read in messages (with the default number of levels).
fn layout(strategy: &str) -> &'static str {
    match strategy {
        "none" => "no compaction",
        "simple" => "simple leveled compaction with 3 levels",
        "tiered" => "tiered compaction",
        _ => "leveled compaction with 4 levels",
    }
}

fn tiered() -> TreeLayout {
    TreeLayout {
        strategy: StrategyKind::Tiered,
        max_levels: 0,
    }
}

fn leveled(max_levels: usize) -> TreeLayout {
    TreeLayout {
        strategy: StrategyKind::Leveled,
        max_levels,
    }
}

fn none() -> TreeLayout {
    TreeLayout {
        strategy: StrategyKind::NoCompaction,
        max_levels: 0,
    }
}

/// The module's example: leveled with 3 levels to tiers, then to leveled with 2 levels; every
/// sorted run keeps its age order, and each result passes the check of its layout.
#[test]
fn test_convert_relabels_sorted_runs_in_age_order() {
    let l0 = vec![9, 8];
    let levels = vec![(1, vec![5, 6]), (2, vec![2, 3]), (3, vec![1, 4, 7])];
    let (t0, tiers) = tiered().convert(leveled(3), &l0, &levels);
    assert!(t0.is_empty());
    let expected = vec![
        (9, vec![9]),
        (8, vec![8]),
        (5, vec![5, 6]),
        (2, vec![2, 3]),
        (1, vec![1, 4, 7]),
    ];
    assert_eq!(tiers, expected);
    tiered().check(&t0, &tiers).unwrap();
    let (l0, levels) = leveled(2).convert(tiered(), &t0, &tiers);
    assert_eq!(l0, [9, 8, 5, 6]);
    assert_eq!(levels, [(1, vec![2, 3]), (2, vec![1, 4, 7])]);
    leveled(2).check(&l0, &levels).unwrap();
    // Two tiers into four levels: the bottom two, and empty levels above them.
    let (l0, levels) = leveled(4).convert(tiered(), &[], &[(8, vec![8]), (1, vec![1, 2])]);
    assert!(l0.is_empty());
    assert_eq!(
        levels,
        [(1, vec![]), (2, vec![]), (3, vec![8]), (4, vec![1, 2])]
    );
    // Without compaction there is one level: the oldest run; the rest go to L0.
    let (l0, levels) = none().convert(tiered(), &[], &[(8, vec![8]), (1, vec![1, 2])]);
    assert_eq!((l0, levels), (vec![8], vec![(1, vec![1, 2])]));
}

/// A tree that fits keeps its levels: simple to leveled with as many levels, and leveled to a
/// level count that still covers every non-empty level (empty levels beyond it go, missing
/// ones come); one that does not fit is relabelled.
#[test]
fn test_convert_keeps_levels_that_fit() {
    let simple = TreeLayout {
        strategy: StrategyKind::Simple,
        max_levels: 3,
    };
    let levels = vec![(1, vec![4]), (2, vec![]), (3, vec![1, 2])];
    assert_eq!(
        leveled(3).convert(simple, &[7], &levels),
        (vec![7], levels.clone())
    );
    let (l0, shorter) =
        leveled(3).convert(leveled(5), &[7], &[(1, vec![4]), (3, vec![1]), (5, vec![])]);
    assert_eq!(
        (l0, shorter),
        (vec![7], vec![(1, vec![4]), (2, vec![]), (3, vec![1])])
    );
    let (l0, relabelled) = leveled(2).convert(simple, &[7], &levels);
    assert_eq!(
        (l0, relabelled),
        (vec![7], vec![(1, vec![4]), (2, vec![1, 2])])
    );
    assert_eq!(
        none().convert(leveled(4), &[7], &[(4, vec![1])]),
        (vec![7], vec![(4, vec![1])]),
        "without compaction, any level is read"
    );
}

/// The checks each layout makes: tiered compaction refuses L0 and twice-named tiers; leveled
/// ones refuse levels out of order or past `max_levels`; none lets an SST be listed twice.
#[test]
fn test_layout_checks_say_what_is_wrong() {
    let error = tiered().check(&[3], &[(1, vec![1])]).unwrap_err();
    assert!(format!("{error}").contains("L0"), "{error}");
    assert!(tiered().check(&[], &[(1, vec![1]), (1, vec![2])]).is_err());
    let error = leveled(2)
        .check(&[], &[(1, vec![1]), (3, vec![2])])
        .unwrap_err();
    assert!(format!("{error}").contains("numbered 3"), "{error}");
    assert!(leveled(3)
        .check(&[], &[(2, vec![1]), (1, vec![2])])
        .is_err());
    assert!(none().check(&[1], &[(1, vec![1])]).is_err(), "SST 1 twice");
    none().check(&[2], &[(1, vec![1]), (7, vec![3])]).unwrap();
}
