//! Task markers: how the starter, every chapter checkpoint and the book's listings are derived
//! from the reference.
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
//! One emitter serves every consumer: it walks the parsed file for a target chapter and hands
//! each line to a [`Sink`], with where each region begins and ends and which version it shows.
//! A generated crate is the plain text ([`Source::generate`]); `compare --code` marks the lines of
//! one chapter ([`Source::generate_marked`]); the book cuts listings out of the same output at
//! the mdBook anchors and adds each region's solution (`book/listings.rs`). mdBook anchor lines
//! (`// ANCHOR: x`) are dropped from generated crates: only the book reads them.

mod parse;

use std::fmt::Write;

use anyhow::Result;

use crate::manifest::Manifest;
pub use parse::anchor_of;
use parse::Parser;

/// Which chapters' solutions a generated crate contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upto {
    /// None: the pristine starter.
    Nothing,
    /// Chapters `0..=i` (manifest indices).
    Chapter(usize),
}

impl Upto {
    /// What a learner has when starting chapter `chapter` (a manifest index): every chapter
    /// before it.
    pub fn before(chapter: usize) -> Self {
        match chapter {
            0 => Upto::Nothing,
            n => Upto::Chapter(n - 1),
        }
    }

    /// Whether chapter `chapter`'s code is in.
    pub fn includes(self, chapter: usize) -> bool {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskRef {
    pub chapter: usize,
    pub task: usize,
}

#[derive(Debug)]
enum Node {
    Line(String),
    /// An mdBook anchor line (`// ANCHOR: x`, `// ANCHOR_END: x`) and its 1-based line.
    Anchor(String, usize),
    Starter(String),
    Region(Region),
}

#[derive(Debug)]
struct Region {
    /// Numbers the regions of a file in source order, from 0.
    id: usize,
    /// The 1-based line of its `@task` marker.
    line: usize,
    /// The item it belongs to, for labels: `Type::function`, `function` or an item's name.
    item: Option<String>,
    indent: String,
    stub: StubKind,
    task: TaskRef,
    body: Vec<Node>,
    /// Older versions, newest first: their task and their lines, already uncommented.
    older: Vec<(TaskRef, Vec<String>)>,
    /// The explicit stub, already uncommented.
    stub_lines: Option<Vec<String>>,
}

/// Which version of a region a generated file shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The reference code (with its nested regions generated in turn).
    Body,
    /// The `@or` version of this task.
    Older(TaskRef),
    /// The stub.
    Stub,
}

impl Region {
    fn shown(&self, upto: Upto) -> Shown {
        if upto.includes(self.task.chapter) {
            return Shown::Body;
        }
        match self.older.iter().find(|(t, _)| upto.includes(t.chapter)) {
            Some((task, _)) => Shown::Older(*task),
            None => Shown::Stub,
        }
    }
}

/// A region of a parsed file, as sinks and the book see it.
#[derive(Debug, Clone, Copy)]
pub struct RegionRef<'a>(&'a Region);

impl<'a> RegionRef<'a> {
    /// The region's number within its file (source order, from 0).
    pub fn id(self) -> usize {
        self.0.id
    }

    /// The task of its reference code.
    pub fn task(self) -> TaskRef {
        self.0.task
    }

    /// The 1-based line of its `@task` marker.
    pub fn line(self) -> usize {
        self.0.line
    }

    /// The item it belongs to (`Type::function`, `function`, or an item's name), if found.
    pub fn item(self) -> Option<&'a str> {
        self.0.item.as_deref()
    }

    /// The indentation of its marker lines.
    pub fn indent(self) -> &'a str {
        &self.0.indent
    }

    /// The version a crate generated up to `upto` shows.
    pub fn shown(self, upto: Upto) -> Shown {
        self.0.shown(upto)
    }

    /// The task whose code a crate generated up to `upto` shows here (`None`: the stub).
    pub fn version(self, upto: Upto) -> Option<TaskRef> {
        match self.0.shown(upto) {
            Shown::Body => Some(self.0.task),
            Shown::Older(task) => Some(task),
            Shown::Stub => None,
        }
    }

    /// Every version's task: the reference code's, then each `@or`'s, newest first.
    pub fn versions(self) -> Vec<TaskRef> {
        std::iter::once(self.0.task)
            .chain(self.0.older.iter().map(|(t, _)| *t))
            .collect()
    }
}

/// An mdBook anchor line of a parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorLine {
    /// The anchor's name.
    pub name: String,
    /// `ANCHOR_END` rather than `ANCHOR`.
    pub end: bool,
    /// 1-based.
    pub line: usize,
    /// The ids of the regions it lies in, outermost first.
    pub regions: Vec<usize>,
}

/// Receives a generated file from the emitter.
pub trait Sink {
    /// A line of the generated file.
    fn line(&mut self, line: &str);
    /// An mdBook anchor line of the source; generated crates drop them.
    fn anchor(&mut self, _line: &str) {}
    /// A region begins, showing `shown`: what comes until its `close` is that version.
    fn open(&mut self, _region: RegionRef<'_>, _shown: Shown) {}
    /// The region opened last ends.
    fn close(&mut self, _region: RegionRef<'_>, _shown: Shown) {}
}

/// The plain text of a generated file.
impl Sink for String {
    fn line(&mut self, line: &str) {
        self.push_str(line);
        self.push('\n');
    }
}

/// A parsed source file.
pub struct Source {
    file: String,
    nodes: Vec<Node>,
}

impl Source {
    /// Parses a reference source file.
    ///
    /// # Errors
    /// On a malformed or unbalanced marker, or one naming a chapter or task not in the manifest;
    /// the message gives `file:line`.
    pub fn parse(file: &str, text: &str, manifest: &Manifest) -> Result<Self> {
        let lines: Vec<&str> = text.lines().collect();
        let mut parser = Parser {
            file,
            lines: &lines,
            pos: 0,
            manifest,
            next_id: 0,
        };
        let nodes = parser.nodes(None)?;
        Ok(Self {
            file: file.to_string(),
            nodes,
        })
    }

    /// The file's name, as given to [`Source::parse`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every task this file has a marker for.
    pub fn tasks(&self) -> Vec<TaskRef> {
        let mut out = Vec::new();
        for region in self.regions() {
            out.extend(region.versions());
        }
        out
    }

    /// Every region, nested ones included, in source order.
    pub fn regions(&self) -> Vec<RegionRef<'_>> {
        fn walk<'a>(nodes: &'a [Node], out: &mut Vec<RegionRef<'a>>) {
            for node in nodes {
                if let Node::Region(r) = node {
                    out.push(RegionRef(r));
                    walk(&r.body, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }

    /// Region `id`.
    pub fn region(&self, id: usize) -> Option<RegionRef<'_>> {
        self.regions().into_iter().find(|r| r.id() == id)
    }

    /// Every mdBook anchor line, with the regions it lies in.
    pub fn anchors(&self) -> Vec<AnchorLine> {
        fn walk(nodes: &[Node], regions: &mut Vec<usize>, out: &mut Vec<AnchorLine>) {
            for node in nodes {
                match node {
                    Node::Anchor(text, line) => {
                        let (name, end) = anchor_of(text).expect("classified at parse");
                        out.push(AnchorLine {
                            name,
                            end,
                            line: *line,
                            regions: regions.clone(),
                        });
                    }
                    Node::Region(r) => {
                        regions.push(r.id);
                        walk(&r.body, regions, out);
                        regions.pop();
                    }
                    Node::Line(_) | Node::Starter(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut Vec::new(), &mut out);
        out
    }

    /// The file as a crate generated up to `upto` has it.
    pub fn generate(&self, upto: Upto, manifest: &Manifest) -> String {
        let mut out = String::new();
        self.emit(upto, manifest, &mut out);
        out
    }

    /// [`Source::generate`], with the code of every region of chapter `mark` that is kept
    /// between a `// @@verify-task <task>` line and a `// @@verify-end` line (see
    /// [`strip_task_marks`]): `compare --code` tells each line of a chapter's code by its task.
    pub fn generate_marked(&self, upto: Upto, manifest: &Manifest, mark: usize) -> String {
        let mut sink = Marked {
            out: String::new(),
            mark,
            upto,
        };
        self.emit(upto, manifest, &mut sink);
        sink.out
    }

    /// Generates the file up to `upto` into `sink`.
    pub fn emit(&self, upto: Upto, manifest: &Manifest, sink: &mut dyn Sink) {
        emit(&self.nodes, upto, manifest, sink);
    }

    /// Generates only region `region` (what lies between its `open` and `close`) up to `upto`.
    pub fn emit_region(
        &self,
        region: RegionRef<'_>,
        upto: Upto,
        manifest: &Manifest,
        sink: &mut dyn Sink,
    ) {
        emit_region(region.0, upto, manifest, sink);
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

/// [`Source::generate_marked`]'s sink: the code of chapter `mark` between task marks.
struct Marked {
    out: String,
    mark: usize,
    upto: Upto,
}

impl Sink for Marked {
    fn line(&mut self, line: &str) {
        self.out.line(line);
    }

    fn open(&mut self, region: RegionRef<'_>, _shown: Shown) {
        if let Some(task) = region.version(self.upto).filter(|t| t.chapter == self.mark) {
            let _ = writeln!(self.out, "{}{TASK_MARK}{}", region.indent(), task.task);
        }
    }

    fn close(&mut self, region: RegionRef<'_>, _shown: Shown) {
        if region
            .version(self.upto)
            .is_some_and(|t| t.chapter == self.mark)
        {
            let _ = writeln!(self.out, "{}{TASK_MARK_END}", region.indent());
        }
    }
}

fn emit(nodes: &[Node], upto: Upto, manifest: &Manifest, sink: &mut dyn Sink) {
    for node in nodes {
        match node {
            Node::Line(line) | Node::Starter(line) => sink.line(line),
            Node::Anchor(line, _) => sink.anchor(line),
            Node::Region(region) => emit_region(region, upto, manifest, sink),
        }
    }
}

fn emit_region(region: &Region, upto: Upto, manifest: &Manifest, sink: &mut dyn Sink) {
    let shown = region.shown(upto);
    sink.open(RegionRef(region), shown);
    match shown {
        Shown::Body => emit(&region.body, upto, manifest, sink),
        Shown::Older(task) => {
            let (_, lines) = region
                .older
                .iter()
                .find(|(t, _)| *t == task)
                .expect("shown() picked one of them");
            for line in lines {
                sink.line(line);
            }
        }
        Shown::Stub => emit_stub(region, manifest, sink),
    }
    sink.close(RegionRef(region), shown);
}

fn emit_stub(region: &Region, manifest: &Manifest, sink: &mut dyn Sink) {
    let oldest = region.older.last().map_or(region.task, |(t, _)| *t);
    let indent = &region.indent;
    let todo_comment = |task| format!("{indent}// TODO({})", stub_message(manifest, task));
    match (&region.stub_lines, region.stub) {
        (Some(lines), _) => {
            sink.line(&todo_comment(oldest));
            for line in lines {
                sink.line(line);
            }
        }
        (None, StubKind::Oldest) => {
            sink.line(&todo_comment(region.task));
            for line in &region.older.last().expect("checked at parse").1 {
                sink.line(line);
            }
        }
        (None, StubKind::Comment) => sink.line(&todo_comment(oldest)),
        (None, StubKind::Todo) => {
            let message = stub_message(manifest, oldest)
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            sink.line(&format!("{indent}todo!(\"{message}\")"));
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

    /// Each region knows its marker's line and the function or item it belongs to (through a
    /// multi-line `impl` header too), and each anchor line the regions it lies in.
    #[test]
    fn regions_know_their_line_item_and_anchors() {
        let m = manifest();
        let src = "\
impl<I: Clone>
    Trait for Merge<I>
{
    fn next(&mut self) {
        // @task week1_day1 1
        // ANCHOR: inside
        step();
        // ANCHOR_END: inside
        // @end
    }
}
// @task week1_day2 1 stub=oldest
pub(crate) type Inner = u64;
// @or week1_day1 2
// pub(crate) type Inner = u32;
// @end
";
        let source = Source::parse("f.rs", src, &m).unwrap();
        let regions = source.regions();
        let found: Vec<_> = regions
            .iter()
            .map(|r| (r.id(), r.line(), r.item()))
            .collect();
        assert_eq!(found, [(0, 5, Some("Merge::next")), (1, 12, Some("Inner"))]);
        let anchors = source.anchors();
        assert_eq!(anchors.len(), 2);
        assert_eq!(
            (anchors[0].name.as_str(), anchors[0].end, anchors[0].line),
            ("inside", false, 6)
        );
        assert_eq!(anchors[1].regions, [0]);
        assert_eq!(
            regions[1].shown(Upto::Chapter(0)),
            Shown::Older(TaskRef {
                chapter: 0,
                task: 2
            })
        );
        assert_eq!(regions[1].shown(Upto::Nothing), Shown::Stub);
        assert_eq!(regions[1].shown(Upto::Chapter(1)), Shown::Body);
        // Generated crates still drop the anchor lines.
        assert!(!source.generate(Upto::Chapter(1), &m).contains("ANCHOR"));
    }
}
