//! `cargo x compare --code --week W --day D`: your code beside the reference's, for one chapter's
//! tasks and nothing else.
//!
//! The reference's code of chapter N is exactly what changes between the checkpoints of N-1 and
//! N, both generated from the task markers as the starter is (the code of chapter N is marked
//! with its task while it is generated, so that each changed line is labelled). Each changed hunk
//! is then found in your file: a line diff of the N-1 checkpoint against your file pairs the lines
//! around the hunk, which are not part of any later task, and your lines between them are what you
//! wrote (or the stub still there). The two are shown as a unified diff per task: `-` yours, `+`
//! the reference's.
//!
//! ```text
//!  checkpoint N-1 ──diff──▶ checkpoint N        the hunks: chapter N's code, labelled by task
//!        │
//!        └──────diff──▶ your file               the same place in your file
//! ```
//!
//! This is a spoiler, so it asks first, unless the chapter's tests already pass or `--force` is
//! given; without a terminal to ask on, it refuses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write as _};
use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Result};
use similar::{Algorithm, DiffTag, TextDiff};

use crate::learner::progress;
use crate::manifest::Manifest;
use crate::markers::{strip_task_marks, Upto};
use crate::sync::generate_into_marked;
use crate::util::{step, walk_rs};

/// One hunk of chapter N's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The lines it replaces in the N-1 checkpoint.
    pub before: Range<usize>,
    /// The reference's lines (of the N checkpoint).
    pub lines: Vec<String>,
    /// The tasks the lines belong to, in order (several when regions nest or touch).
    pub tasks: Vec<usize>,
}

fn diff<'a>(old: &'a str, new: &'a str) -> TextDiff<'a, 'a, str> {
    TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .diff_lines(old, new)
}

/// The hunks between the N-1 checkpoint `before` and the N checkpoint `after_marked` (generated
/// with chapter N's task marks).
pub fn chapter_hunks(before: &str, after_marked: &str) -> Vec<Hunk> {
    let (after, labels) = strip_task_marks(after_marked);
    let after_lines: Vec<&str> = after.lines().collect();
    let mut hunks = Vec::new();
    for op in diff(before, &after).ops() {
        let (tag, old, new) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            continue;
        }
        let mut tasks: Vec<usize> = labels[new.clone()].iter().flatten().copied().collect();
        tasks.sort_unstable();
        tasks.dedup();
        hunks.push(Hunk {
            before: old,
            lines: after_lines[new].iter().map(|l| l.to_string()).collect(),
            tasks,
        });
    }
    hunks
}

/// Where `before[range]` is in `learner`: the lines between the nearest lines around the range
/// that the two files share. When the learner kept a line of the range (a `// TODO` stub, say),
/// the region starts there, not at the shared line above, which may be far up, past code of
/// theirs for another task.
pub fn map_region(before: &str, learner: &str, range: &Range<usize>) -> Range<usize> {
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for op in diff(before, learner).ops() {
        let (tag, old, new) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            pairs.extend(old.zip(new));
        }
    }
    let kept = pairs.iter().find(|(b, _)| range.contains(b));
    let start = match kept {
        Some((_, l)) => *l,
        None => pairs
            .iter()
            .rev()
            .find(|(b, _)| *b < range.start)
            .map_or(0, |(_, l)| l + 1),
    };
    let end = pairs
        .iter()
        .find(|(b, _)| *b >= range.end.max(range.start))
        .map_or(learner.lines().count(), |(_, l)| *l);
    start..end.max(start)
}

/// A unified diff of `yours` against `reference`, every line prefixed: ` ` both, `-` yours only,
/// `+` the reference's only.
pub fn unified(yours: &[&str], reference: &[String]) -> String {
    let text = |lines: Vec<&str>| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let (a, b) = (
        text(yours.to_vec()),
        text(reference.iter().map(String::as_str).collect()),
    );
    let mut out = String::new();
    for change in TextDiff::from_lines(a.as_str(), b.as_str()).iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Equal => ' ',
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
        };
        let _ = write!(out, "{sign}{}", change.value());
        if change.missing_newline() {
            out.push('\n');
        }
    }
    out
}

/// The nearest `fn` (or `impl`) line above line `at` of `text`, trimmed, for a hunk's header.
fn enclosing_item(text: &str, at: usize) -> Option<String> {
    text.lines()
        .take(at + 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(str::trim)
        .find(|l| {
            let l = l
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            l.starts_with("fn ") || l.starts_with("impl")
        })
        .map(|l| l.trim_end_matches('{').trim_end().to_string())
}

/// Asks whether to show the spoiler; refuses without a terminal.
fn consent(label: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "compare --code shows the reference's solution of {label}, and that chapter's tests do \
             not pass yet, so it asks first; there is no terminal to ask on: pass --force"
        );
    }
    print!(
        "This shows the reference's solution of {label}, whose tests do not pass yet. Show it? \
         [y/N] "
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `cargo x compare --code`.
///
/// # Errors
/// If the checkpoints cannot be generated, or the learner refuses or cannot be asked.
pub fn compare_code(root: &Path, manifest: &Manifest, chapter: usize, force: bool) -> Result<()> {
    let c = &manifest.chapters[chapter];
    let label = format!("{} ({})", c.label(), c.title);
    if !force {
        let progress = progress(root, manifest, Some(chapter))?;
        let passes = progress.done()[chapter];
        if passes {
            println!("{label}: your tests pass, so here is the reference's code beside yours.");
        } else if !consent(&label)? {
            println!("not shown");
            return Ok(());
        }
    }
    step(&format!(
        "generating the checkpoints before and after {}",
        c.id
    ));
    let scratch = root.join("target/xtask/compare-code");
    let (before_dir, after_dir) = (scratch.join("before"), scratch.join("after"));
    let before_upto = match chapter {
        0 => Upto::Nothing,
        n => Upto::Chapter(n - 1),
    };
    generate_into_marked(root, manifest, before_upto, &before_dir, None)?;
    generate_into_marked(
        root,
        manifest,
        Upto::Chapter(chapter),
        &after_dir,
        Some(chapter),
    )?;
    let starter = root.join("mini-lsm-starter/src");
    // Per task: (file, your lines, the reference's lines, where yours are).
    let mut by_task: BTreeMap<Vec<usize>, Vec<String>> = BTreeMap::new();
    for path in walk_rs(&after_dir)? {
        let rel = path.strip_prefix(&after_dir)?;
        let after = std::fs::read_to_string(&path)?;
        let before = std::fs::read_to_string(before_dir.join(rel)).unwrap_or_default();
        let hunks = chapter_hunks(&before, &after);
        if hunks.is_empty() {
            continue;
        }
        let file = format!("mini-lsm-starter/src/{}", rel.display());
        let learner = std::fs::read_to_string(starter.join(rel)).ok();
        // A hunk that only removes lines (a stub comment the chapter's code has no use for)
        // shows nothing of the reference.
        for hunk in hunks.into_iter().filter(|h| !h.lines.is_empty()) {
            let mut text = String::new();
            match &learner {
                Some(learner) => {
                    let region = map_region(&before, learner, &hunk.before);
                    let yours: Vec<&str> = learner
                        .lines()
                        .skip(region.start)
                        .take(region.len())
                        .collect();
                    let within = enclosing_item(learner, region.start)
                        .map_or(String::new(), |item| format!(", in `{item}`"));
                    let _ = writeln!(
                        text,
                        "--- {file}:{} (yours{within})\n+++ the reference",
                        region.start + 1
                    );
                    text.push_str(&unified(&yours, &hunk.lines));
                }
                None => {
                    let _ = writeln!(
                        text,
                        "--- {file} (you have no such file)\n+++ the reference"
                    );
                    text.push_str(&unified(&[], &hunk.lines));
                }
            }
            by_task.entry(hunk.tasks).or_default().push(text);
        }
    }
    if by_task.is_empty() {
        println!("{label} changes no code of the reference (nothing to show)");
        return Ok(());
    }
    for (tasks, hunks) in by_task {
        println!();
        if tasks.is_empty() {
            println!("=== {}: code that goes with its tasks", c.label());
        }
        for t in tasks {
            println!(
                "=== {}, task {t}: {}",
                c.label(),
                c.tasks.get(t - 1).map_or("?", String::as_str)
            );
        }
        for hunk in hunks {
            print!("{hunk}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers::Source;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
[[chapter]]
id = "week1_day1"
title = "One"
book = "week1-01-one"
tasks = ["first", "second"]

[[chapter]]
id = "week1_day2"
title = "Two"
book = "week1-02-two"
tasks = ["third", "fourth"]

[[chapter]]
id = "week1_day3"
title = "Three"
book = "week1-03-three"
tasks = ["fifth"]
"#,
        )
        .unwrap()
    }

    const SRC: &str = "\
fn get() -> u32 {
    // @task week1_day1 1
    let a = 1;
    // @task week1_day2 1 stub=comment
    let a = a + 20;
    // @end
    // @task week1_day3 1 stub=comment
    let a = a * 300;
    // @end
    a
    // @end
}

fn put() -> u32 {
    // @task week1_day2 2
    4000
    // @end
}
";

    /// The hunks of chapter 2 hold only chapter 2's code, each labelled with its task; neither
    /// chapter 1's nor chapter 3's code appears.
    #[test]
    fn hunks_hold_one_chapters_code_by_task() {
        let m = manifest();
        let src = Source::parse("f.rs", SRC, &m).unwrap();
        let before = src.generate(Upto::Chapter(0), &m);
        let after = src.generate_marked(Upto::Chapter(1), &m, 1);
        let hunks = chapter_hunks(&before, &after);
        let shown: Vec<(Vec<usize>, String)> = hunks
            .iter()
            .map(|h| (h.tasks.clone(), h.lines.join("\n")))
            .collect();
        assert_eq!(
            shown,
            vec![
                (vec![1], "    let a = a + 20;".to_string()),
                (vec![2], "    4000".to_string()),
            ]
        );
        let all: String = hunks.iter().flat_map(|h| h.lines.clone()).collect();
        assert!(!all.contains("let a = 1;") && !all.contains("300"));
    }

    /// A hunk is found in the learner's file around their own code: their lines in place of the
    /// stub, however many, and nothing of the lines around.
    #[test]
    fn hunks_map_onto_the_learners_code() {
        let m = manifest();
        let src = Source::parse("f.rs", SRC, &m).unwrap();
        let before = src.generate(Upto::Chapter(0), &m);
        let after = src.generate_marked(Upto::Chapter(1), &m, 1);
        let hunks = chapter_hunks(&before, &after);
        // The learner did chapter 1 their own way and started task 2 of chapter 2.
        let learner = before
            .replace("    let a = 1;\n", "    let a = 0 + 1; // mine\n")
            .replace(
                "    todo!(\"week 1 day 2, task 2: fourth (book: week1-02-two)\")\n",
                "    let x = 3999;\n    x + 1\n",
            );
        assert_ne!(learner, before);
        let lines: Vec<&str> = learner.lines().collect();
        let region = map_region(&before, &learner, &hunks[1].before);
        assert_eq!(lines[region.clone()], ["    let x = 3999;", "    x + 1"]);
        let diff = unified(&lines[region], &hunks[1].lines);
        assert_eq!(diff, "-    let x = 3999;\n-    x + 1\n+    4000\n");
        // Task 1's stub is a comment the learner kept: it is found as it is.
        let region = map_region(&before, &learner, &hunks[0].before);
        assert_eq!(
            lines[region],
            ["    // TODO(week 1 day 2, task 1: third (book: week1-02-two))"]
        );
    }
}
