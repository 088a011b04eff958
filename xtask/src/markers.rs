//! Task markers: how the starter and every chapter checkpoint are derived from the reference.
//!
//! The reference source is the only copy of the engine. A learner task is a region of it between
//! marker comments; generating a crate "up to chapter N" keeps the reference code of tasks of
//! chapters <= N and replaces the rest by a stub. The pristine starter is "up to no chapter".
//!
//! ```text
//! // @task <chapter> <task> [stub=todo|comment|oldest]
//!     reference code (may contain nested @task regions)
//! // @or <chapter> <task>      an older version, for chapters before the one above:
//! // commented code            every line is the code behind "// "; no nesting
//! // @stub                     optional: the stub itself, as commented code
//! // commented code
//! // @end
//! // @starter <text>           a line that generated crates get as <text>
//! ```
//!
//! Choosing, for a region and a target chapter N: the first version (the reference code, then each
//! `@or` in order, newest to oldest) whose chapter is <= N. If none qualifies, the stub:
//! - the `@stub` section, after a `// TODO(...)` line, when there is one;
//! - `stub=oldest`: the oldest version, after a `// TODO(...)` line naming the newest task;
//! - `stub=comment`: only the `// TODO(...)` line (for code that extends an earlier function);
//! - otherwise (`stub=todo`): `todo!("...")`, whose message names the chapter, the task and the
//!   book page of the oldest version.
//!
//! mdBook anchor lines (`// ANCHOR: x`) are dropped from generated crates: only the book reads
//! them, and it reads the reference.

use std::fmt::Write;

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;

/// Which chapters' solutions a generated crate contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upto {
    /// None: the pristine starter.
    Nothing,
    /// Chapters `0..=i` (manifest indices).
    Chapter(usize),
}

impl Upto {
    fn includes(self, chapter: usize) -> bool {
        match self {
            Upto::Nothing => false,
            Upto::Chapter(i) => chapter <= i,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StubKind {
    Todo,
    Comment,
    Oldest,
}

/// A task reference in a marker: manifest chapter index and task number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRef {
    pub chapter: usize,
    pub task: usize,
}

#[derive(Debug)]
enum Node {
    Line(String),
    Starter(String),
    Region(Region),
}

#[derive(Debug)]
struct Region {
    indent: String,
    stub: StubKind,
    task: TaskRef,
    body: Vec<Node>,
    /// Older versions, newest first: their task and their lines, already uncommented.
    older: Vec<(TaskRef, Vec<String>)>,
    /// The explicit stub, already uncommented.
    stub_lines: Option<Vec<String>>,
}

/// A parsed source file.
pub struct Source {
    nodes: Vec<Node>,
}

/// Strips `indent// ` (or a bare `indent//`) from a commented line.
fn uncomment(line: &str, indent: &str, ctx: &dyn Fn() -> String) -> Result<String> {
    let rest = line
        .strip_prefix(indent)
        .and_then(|l| l.strip_prefix("//"))
        .with_context(|| {
            format!(
                "{}: a line of an @or or @stub section must be commented code (`{indent}// ...`)",
                ctx()
            )
        })?;
    if rest.is_empty() {
        return Ok(String::new());
    }
    let code = rest
        .strip_prefix(' ')
        .with_context(|| format!("{}: expected `// ` before commented code", ctx()))?;
    Ok(format!("{indent}{code}"))
}

/// Parses the directive on a marker line: `@task week1_day1 2 stub=comment` -> words.
fn directive(line: &str) -> Option<(&str, Vec<&str>)> {
    let rest = line.trim_start().strip_prefix("// @")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    matches!(name, "task" | "or" | "stub" | "end" | "starter").then(|| (name, words.collect()))
}

impl Source {
    /// Parses a reference source file.
    ///
    /// # Errors
    /// On a malformed or unbalanced marker, or one naming a chapter or task not in the manifest;
    /// the message gives `file:line`.
    pub fn parse(file: &str, text: &str, manifest: &Manifest) -> Result<Self> {
        let lines: Vec<&str> = text.lines().collect();
        let mut pos = 0;
        let nodes = parse_nodes(file, &lines, &mut pos, manifest, None)?;
        Ok(Self { nodes })
    }

    /// Every task this file has a marker for.
    pub fn tasks(&self) -> Vec<TaskRef> {
        fn walk(nodes: &[Node], out: &mut Vec<TaskRef>) {
            for node in nodes {
                if let Node::Region(r) = node {
                    out.push(r.task);
                    out.extend(r.older.iter().map(|(t, _)| *t));
                    walk(&r.body, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }

    /// The file as a crate generated up to `upto` has it.
    pub fn generate(&self, upto: Upto, manifest: &Manifest) -> String {
        let mut out = String::new();
        emit(&self.nodes, upto, manifest, None, &mut out);
        out
    }

    /// [`Source::generate`], with the code of every region of chapter `mark` that is kept
    /// between a `// @@verify-task <task>` line and a `// @@verify-end` line (see
    /// [`strip_task_marks`]): `compare --code` tells each line of a chapter's code by its task.
    pub fn generate_marked(&self, upto: Upto, manifest: &Manifest, mark: usize) -> String {
        let mut out = String::new();
        emit(&self.nodes, upto, manifest, Some(mark), &mut out);
        out
    }
}

fn parse_task(words: &[&str], manifest: &Manifest, ctx: &dyn Fn() -> String) -> Result<TaskRef> {
    let [chapter_id, task, ..] = words else {
        bail!("{}: expected `<chapter> <task>` after the marker", ctx());
    };
    let chapter = manifest.index_of(chapter_id).with_context(|| {
        format!(
            "{}: unknown chapter `{chapter_id}`; valid chapters: {}",
            ctx(),
            manifest.valid_ids()
        )
    })?;
    let task: usize = task
        .parse()
        .with_context(|| format!("{}: `{task}` is not a task number", ctx()))?;
    let count = manifest.chapters[chapter].tasks.len();
    if task == 0 || task > count {
        bail!(
            "{}: chapter {chapter_id} has tasks 1..={count} in course.toml, not {task}",
            ctx()
        );
    }
    Ok(TaskRef { chapter, task })
}

/// Parses nodes until the end of input or, inside a region, its first `@or`/`@stub`/`@end`.
fn parse_nodes(
    file: &str,
    lines: &[&str],
    pos: &mut usize,
    manifest: &Manifest,
    open: Option<usize>,
) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    while *pos < lines.len() {
        let line = lines[*pos];
        let at = *pos + 1;
        let ctx = || format!("{file}:{at}");
        match directive(line) {
            None => {
                nodes.push(Node::Line(line.to_string()));
                *pos += 1;
            }
            Some(("starter", _)) => {
                let text = line.trim_start().strip_prefix("// @starter").unwrap_or("");
                nodes.push(Node::Starter(
                    text.strip_prefix(' ').unwrap_or(text).to_string(),
                ));
                *pos += 1;
            }
            Some(("task", words)) => {
                let task = parse_task(&words, manifest, &ctx)?;
                let stub = match words.get(2).copied() {
                    None | Some("stub=todo") => StubKind::Todo,
                    Some("stub=comment") => StubKind::Comment,
                    Some("stub=oldest") => StubKind::Oldest,
                    Some(other) => bail!(
                        "{}: unknown option `{other}`; use stub=todo, stub=comment or stub=oldest",
                        ctx()
                    ),
                };
                let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
                *pos += 1;
                let body = parse_nodes(file, lines, pos, manifest, Some(at))?;
                let mut region = Region {
                    indent,
                    stub,
                    task,
                    body,
                    older: Vec::new(),
                    stub_lines: None,
                };
                parse_region_tail(file, lines, pos, manifest, &mut region, at)?;
                if region.stub == StubKind::Oldest && region.older.is_empty() {
                    bail!("{file}:{at}: stub=oldest needs at least one @or version");
                }
                nodes.push(Node::Region(region));
            }
            Some(_) => {
                if open.is_none() {
                    bail!("{}: `{}` outside any @task region", ctx(), line.trim());
                }
                return Ok(nodes);
            }
        }
    }
    if let Some(start) = open {
        bail!("{file}:{start}: this @task region has no // @end");
    }
    Ok(nodes)
}

/// Parses a region's `@or` and `@stub` sections and its `@end`; `pos` is at the first of them.
fn parse_region_tail(
    file: &str,
    lines: &[&str],
    pos: &mut usize,
    manifest: &Manifest,
    region: &mut Region,
    start: usize,
) -> Result<()> {
    loop {
        let line = lines[*pos];
        let at = *pos + 1;
        let ctx = || format!("{file}:{at}");
        *pos += 1;
        let (name, words) = directive(line).expect("parse_nodes stops only at a directive");
        if name == "end" {
            if !words.is_empty() {
                bail!("{}: stray text after @end", ctx());
            }
            return Ok(());
        }
        let mut section = Vec::new();
        while *pos < lines.len() && directive(lines[*pos]).is_none() {
            let at = *pos + 1;
            section.push(uncomment(lines[*pos], &region.indent, &|| {
                format!("{file}:{at}")
            })?);
            *pos += 1;
        }
        match name {
            "or" => {
                if region.stub_lines.is_some() {
                    bail!("{}: @or must come before @stub", ctx());
                }
                let task = parse_task(&words, manifest, &ctx)?;
                let newer = region.older.last().map_or(region.task, |(t, _)| *t);
                if task.chapter >= newer.chapter {
                    bail!("{}: an @or version must belong to an earlier chapter than the one above it", ctx());
                }
                region.older.push((task, section));
            }
            "stub" => region.stub_lines = Some(section),
            _ => bail!(
                "{}: unexpected `{}` inside the region opened at line {start}",
                ctx(),
                line.trim()
            ),
        }
        if *pos >= lines.len() {
            bail!("{file}:{start}: this @task region has no // @end");
        }
    }
}

/// The message of a stub: chapter, task and book page.
pub fn stub_message(manifest: &Manifest, task: TaskRef) -> String {
    let chapter = &manifest.chapters[task.chapter];
    format!(
        "{}, task {}: {} (book: {})",
        chapter.label(),
        task.task,
        chapter.tasks[task.task - 1],
        chapter.book
    )
}

/// The line that opens the code of task `task` in [`Source::generate_marked`]'s output.
const TASK_MARK: &str = "// @@verify-task ";
/// The line that closes it.
const TASK_MARK_END: &str = "// @@verify-end";

/// Removes [`Source::generate_marked`]'s lines from `text`: returns the text as
/// [`Source::generate`] has it, and for each of its lines the task of the marked chapter whose
/// code it is (the innermost, for nested regions), if any.
pub fn strip_task_marks(text: &str) -> (String, Vec<Option<usize>>) {
    let (mut out, mut tasks, mut open) = (String::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(task) = trimmed.strip_prefix(TASK_MARK) {
            open.push(task.trim().parse().unwrap_or(0));
        } else if trimmed == TASK_MARK_END {
            open.pop();
        } else {
            out.push_str(line);
            out.push('\n');
            tasks.push(open.last().copied());
        }
    }
    (out, tasks)
}

fn emit(nodes: &[Node], upto: Upto, manifest: &Manifest, mark: Option<usize>, out: &mut String) {
    for node in nodes {
        match node {
            Node::Line(line) => {
                let t = line.trim_start();
                if !(t.starts_with("// ANCHOR:") || t.starts_with("// ANCHOR_END:")) {
                    let _ = writeln!(out, "{line}");
                }
            }
            Node::Starter(text) => {
                let _ = writeln!(out, "{text}");
            }
            Node::Region(region) => emit_region(region, upto, manifest, mark, out),
        }
    }
}

fn emit_region(
    region: &Region,
    upto: Upto,
    manifest: &Manifest,
    mark: Option<usize>,
    out: &mut String,
) {
    if upto.includes(region.task.chapter) {
        if mark != Some(region.task.chapter) {
            return emit(&region.body, upto, manifest, mark, out);
        }
        let _ = writeln!(out, "{}{TASK_MARK}{}", region.indent, region.task.task);
        emit(&region.body, upto, manifest, mark, out);
        let _ = writeln!(out, "{}{TASK_MARK_END}", region.indent);
        return;
    }
    if let Some((task, lines)) = region.older.iter().find(|(t, _)| upto.includes(t.chapter)) {
        let marked = mark == Some(task.chapter);
        if marked {
            let _ = writeln!(out, "{}{TASK_MARK}{}", region.indent, task.task);
        }
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        if marked {
            let _ = writeln!(out, "{}{TASK_MARK_END}", region.indent);
        }
        return;
    }
    let oldest = region.older.last().map_or(region.task, |(t, _)| *t);
    let indent = &region.indent;
    let todo_comment = |task| format!("{indent}// TODO({})", stub_message(manifest, task));
    match (&region.stub_lines, region.stub) {
        (Some(lines), _) => {
            let _ = writeln!(out, "{}", todo_comment(oldest));
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
        }
        (None, StubKind::Oldest) => {
            let _ = writeln!(out, "{}", todo_comment(region.task));
            for line in &region.older.last().expect("checked at parse").1 {
                let _ = writeln!(out, "{line}");
            }
        }
        (None, StubKind::Comment) => {
            let _ = writeln!(out, "{}", todo_comment(oldest));
        }
        (None, StubKind::Todo) => {
            let message = stub_message(manifest, oldest)
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            let _ = writeln!(out, "{indent}todo!(\"{message}\")");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
[[chapter]]
id = "week1_day1"
title = "One"
book = "week1-01-one"
tasks = ["first task", "second task"]

[[chapter]]
id = "week1_day2"
title = "Two"
book = "week1-02-two"
tasks = ["third task"]
"#,
        )
        .unwrap()
    }

    const SRC: &str = "\
fn f() -> u32 {
    // @task week1_day1 1
    // ANCHOR: x
    let a = 1;
    // @task week1_day2 1 stub=comment
    let a = a + 10;
    // @end
    a
    // ANCHOR_END: x
    // @end
}
// @starter #![allow(unused)]
fn g() -> u32 {
    // @task week1_day2 1
    2
    // @or week1_day1 2
    // 1
    // @end
}
fn h() -> u32 {
    // @task week1_day2 1
    let x = 3;
    // @stub
    // let x = 0;
    // @end
    x
}
";

    /// The pristine starter gets a todo!() naming chapter, task and book page, and the stubs.
    #[test]
    fn pristine_starter_has_stubs_with_messages() {
        let m = manifest();
        let out = Source::parse("f.rs", SRC, &m)
            .unwrap()
            .generate(Upto::Nothing, &m);
        assert!(
            out.contains("    todo!(\"week 1 day 1, task 1: first task (book: week1-01-one)\")\n")
        );
        assert!(out.contains("todo!(\"week 1 day 1, task 2: second task (book: week1-01-one)\")"));
        assert!(out.contains(
            "    // TODO(week 1 day 2, task 1: third task (book: week1-02-two))\n    let x = 0;\n"
        ));
        assert!(out.contains("#![allow(unused)]\n"));
        assert!(!out.contains("@task") && !out.contains("ANCHOR"));
    }

    /// A checkpoint keeps earlier chapters' code and picks the older version of later ones.
    #[test]
    fn checkpoint_picks_versions_by_chapter() {
        let m = manifest();
        let src = Source::parse("f.rs", SRC, &m).unwrap();
        let one = src.generate(Upto::Chapter(0), &m);
        assert!(one.contains("    let a = 1;\n    // TODO(week 1 day 2, task 1"));
        assert!(one.contains("fn g() -> u32 {\n    1\n}"));
        let two = src.generate(Upto::Chapter(1), &m);
        assert!(two.contains("let a = a + 10;"));
        assert!(two.contains("fn g() -> u32 {\n    2\n}"));
        assert!(two.contains("    let x = 3;\n    x\n"));
    }

    /// Markers naming unknown chapters or tasks, or left open, are errors with file:line.
    #[test]
    fn bad_markers_are_errors_with_location() {
        let m = manifest();
        let err = |src: &str| Source::parse("f.rs", src, &m).err().unwrap().to_string();
        assert!(err("// @task week9_day9 1\n// @end\n").contains("f.rs:1: unknown chapter"));
        assert!(err("// @task week1_day1 3\n// @end\n").contains("tasks 1..=2"));
        assert!(err("x\n// @task week1_day1 1\nfoo\n").contains("f.rs:2: this @task region has no"));
        assert!(err("// @end\n").contains("outside any @task"));
        assert!(
            err("// @task week1_day1 1\n// @or week1_day2 1\n// x\n// @end\n")
                .contains("earlier chapter")
        );
    }

    /// Marked generation tells the lines of the marked chapter by task, nested regions too, and
    /// stripping the marks gives exactly the plain generation.
    #[test]
    fn marked_generation_labels_a_chapters_lines() {
        let m = manifest();
        let src = Source::parse("f.rs", SRC, &m).unwrap();
        let marked = src.generate_marked(Upto::Chapter(1), &m, 1);
        let (plain, tasks) = strip_task_marks(&marked);
        assert_eq!(plain, src.generate(Upto::Chapter(1), &m));
        let label = |needle: &str| {
            let at = plain.lines().position(|l| l.contains(needle)).unwrap();
            tasks[at]
        };
        assert_eq!(label("let a = a + 10;"), Some(1));
        assert_eq!(label("let a = 1;"), None);
        assert_eq!(label("let x = 3;"), Some(1));
        assert_eq!(label("fn g()"), None);
        // An older version of a later region is its chapter's code too.
        let (_, tasks) = strip_task_marks(&src.generate_marked(Upto::Chapter(0), &m, 0));
        let plain = src.generate(Upto::Chapter(0), &m);
        let at = plain.lines().position(|l| l.trim() == "1").unwrap();
        assert_eq!(tasks[at], Some(2));
    }

    /// Every task a file marks is reported, including older versions.
    #[test]
    fn lists_marked_tasks() {
        let m = manifest();
        let tasks = Source::parse("f.rs", SRC, &m).unwrap().tasks();
        assert!(tasks.contains(&TaskRef {
            chapter: 0,
            task: 2
        }));
        assert!(tasks.contains(&TaskRef {
            chapter: 1,
            task: 1
        }));
    }
}
