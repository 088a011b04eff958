//! Reading the marker syntax (see the parent module's docs) into a tree of lines and regions;
//! each region also gets a label for the book, the function or item it belongs to, found by
//! reading the lines around it (a heuristic on rustfmt-formatted code, not a Rust parser).

use anyhow::{bail, Context, Result};

use super::{Node, Region, StubKind, TaskRef};
use crate::manifest::Manifest;

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

/// The anchor on an mdBook anchor line (`// ANCHOR: name`, `// ANCHOR_END: name`): its name,
/// and whether it is an `ANCHOR_END`.
pub fn anchor_of(line: &str) -> Option<(String, bool)> {
    let rest = line.trim_start().strip_prefix("//")?.trim_start();
    let (rest, end) = match rest.strip_prefix("ANCHOR_END:") {
        Some(rest) => (rest, true),
        None => (rest.strip_prefix("ANCHOR:")?, false),
    };
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    Some((name, end))
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

pub(super) struct Parser<'a> {
    pub(super) file: &'a str,
    pub(super) lines: &'a [&'a str],
    /// The next line to read (0-based).
    pub(super) pos: usize,
    pub(super) manifest: &'a Manifest,
    pub(super) next_id: usize,
}

impl Parser<'_> {
    /// Parses nodes until the end of input or, inside a region, its first `@or`/`@stub`/`@end`.
    pub(super) fn nodes(&mut self, open: Option<usize>) -> Result<Vec<Node>> {
        let (file, manifest) = (self.file, self.manifest);
        let mut nodes = Vec::new();
        while self.pos < self.lines.len() {
            let line = self.lines[self.pos];
            let at = self.pos + 1;
            let ctx = || format!("{file}:{at}");
            match directive(line) {
                None if anchor_of(line).is_some() => {
                    nodes.push(Node::Anchor(line.to_string(), at));
                    self.pos += 1;
                }
                None => {
                    nodes.push(Node::Line(line.to_string()));
                    self.pos += 1;
                }
                Some(("starter", _)) => {
                    let text = line.trim_start().strip_prefix("// @starter").unwrap_or("");
                    nodes.push(Node::Starter(
                        text.strip_prefix(' ').unwrap_or(text).to_string(),
                    ));
                    self.pos += 1;
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
                    let id = self.next_id;
                    self.next_id += 1;
                    let item = item_label(self.lines, self.pos, indent.len());
                    self.pos += 1;
                    let body = self.nodes(Some(at))?;
                    let mut region = Region {
                        id,
                        line: at,
                        item,
                        indent,
                        stub,
                        task,
                        body,
                        older: Vec::new(),
                        stub_lines: None,
                    };
                    self.region_tail(&mut region, at)?;
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
    fn region_tail(&mut self, region: &mut Region, start: usize) -> Result<()> {
        let file = self.file;
        loop {
            let line = self.lines[self.pos];
            let at = self.pos + 1;
            let ctx = || format!("{file}:{at}");
            self.pos += 1;
            let (name, words) = directive(line).expect("nodes() stops only at a directive");
            if name == "end" {
                if !words.is_empty() {
                    bail!("{}: stray text after @end", ctx());
                }
                return Ok(());
            }
            let mut section = Vec::new();
            while self.pos < self.lines.len() && directive(self.lines[self.pos]).is_none() {
                let at = self.pos + 1;
                section.push(uncomment(self.lines[self.pos], &region.indent, &|| {
                    format!("{file}:{at}")
                })?);
                self.pos += 1;
            }
            match name {
                "or" => {
                    if region.stub_lines.is_some() {
                        bail!("{}: @or must come before @stub", ctx());
                    }
                    let task = parse_task(&words, self.manifest, &ctx)?;
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
            if self.pos >= self.lines.len() {
                bail!("{file}:{start}: this @task region has no // @end");
            }
        }
    }
}

/// Item keywords, for [`item_label`].
const ITEM_KEYWORDS: [&str; 8] = [
    "fn", "type", "struct", "enum", "trait", "const", "static", "mod",
];

/// The item declared on `line`, if any: `fn put(` -> `put`.
fn declared_item(line: &str) -> Option<&str> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return None;
    }
    let mut words = code.split_whitespace();
    while let Some(word) = words.next() {
        if ITEM_KEYWORDS.contains(&word) {
            let name = words.next()?;
            let end = name
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(name.len());
            return (end > 0).then(|| &name[..end]);
        }
        if !(word.starts_with("pub") || matches!(word, "async" | "unsafe" | "extern" | "\"C\"")) {
            return None;
        }
    }
    None
}

/// The type an `impl` header is for: `impl<I: X> Trait for Merge<I> {` -> `Merge`.
fn impl_type(header: &str) -> Option<&str> {
    let mut rest = header.trim_start().strip_prefix("impl")?;
    if rest.starts_with('<') {
        let mut depth = 0;
        let close = rest.char_indices().find(|&(_, c)| {
            depth += match c {
                '<' => 1,
                '>' => -1,
                _ => 0,
            };
            depth == 0
        })?;
        rest = &rest[close.0 + 1..];
    } else if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.split(" where ").next().unwrap_or(rest);
    let rest = rest.rsplit(" for ").next().unwrap_or(rest).trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// A label for the region whose marker is `lines[at]`, indented `indent`: the function it lies
/// in (`Type::function` inside an `impl`), or for a region that holds whole items, the first
/// item it declares.
fn item_label(lines: &[&str], at: usize, indent: usize) -> Option<String> {
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let enclosing = lines[..at]
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, l)| !l.trim().is_empty() && indent_of(l) < indent)
        .find_map(|(i, l)| Some((i, declared_item(l)?)));
    let Some((fn_at, name)) = enclosing else {
        return lines[at + 1..]
            .iter()
            .find_map(|l| declared_item(l))
            .map(str::to_string);
    };
    let fn_indent = indent_of(lines[fn_at]);
    let impl_at = (0..fn_at)
        .rev()
        .filter(|&i| !lines[i].trim().is_empty() && indent_of(lines[i]) < fn_indent)
        .find(|&i| lines[i].trim_start().starts_with("impl"));
    // An `impl` header may span lines, up to its `{`.
    let header = impl_at.map(|i| {
        let mut header = String::new();
        for line in &lines[i..fn_at] {
            header.push_str(line.trim());
            header.push(' ');
            if line.contains('{') {
                break;
            }
        }
        header
    });
    Some(match header.as_deref().and_then(impl_type) {
        Some(ty) => format!("{ty}::{name}"),
        None => name.to_string(),
    })
}
