//! The book's listings, rendered from the task markers: each page shows the code as the learner
//! has it at that page's point in the course, and the solutions of its own chapter behind
//! spoilers.
//!
//! Every page has a level, from its place in SUMMARY.md:
//!
//! ```text
//!  SUMMARY.md order:   preface  setup  ...  week1-01  week1-02  overview ...  week1-06  week1-07 ...
//!  listings show:      Nothing  Nothing     Nothing   day 1     day 2         day 5     day 6
//!  solutions of:       -        -           day 1     day 2     -             day 6     day 7
//! ```
//!
//! - A chapter's own page (its `book` in `course.toml`) shows the code as the learner has it when
//!   *starting* the chapter, `Upto::before(N)`: earlier chapters' code, the surroundings, and
//!   the stub of every task of chapter N and later, exactly as generated crates have it. After a
//!   listing that holds a stub (or an older version) of chapter N's code, each such region's
//!   chapter-N code follows, generated at `Upto::Chapter(N)`, folded in a `<details>` spoiler
//!   labelled with the chapter, the task and the function.
//! - Any other page takes the level of the last chapter page before it, as finished
//!   (`Upto::Chapter(K)`), and has no spoilers; pages before the first chapter are at
//!   `Upto::Nothing`.
//!
//! The text comes from [`crate::markers`], the emitter that writes the starter and the
//! checkpoints, so a listing cannot disagree with what the learner's crate holds. Only
//! `{{#include}}`s of the reference's generated sources are rendered here; mdBook's own `links`
//! preprocessor handles any other include. No marker or anchor line survives, and listings are
//! shifted left by their common indentation.
//!
//! An anchor line inside a region that is a stub at the page's level is not in the generated
//! text at all: that is an error naming the page, the anchor and the region, whose fix is to move
//! the anchor line out of the region. [`Listings::giveaways`] gives the lines the built-book check
//! (`book/spoilers.rs`) must not find outside a spoiler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::markdown::{dedent, fences, html_escape, indent_lines, spoiler};
use super::normalize;
use super::sources::find_includes;
use crate::manifest::Manifest;
use crate::markers::{anchor_of, AnchorLine, RegionRef, Shown, Sink, Source, TaskRef, Upto};
use crate::sync::parse_reference;

/// A spoiler's `<summary>` starts with this; the built-book check counts them by it.
pub(super) const SOLUTION_SUMMARY: &str = "<summary>Solution: ";

/// A line of task code shorter than this (trimmed) is too common to tell a task body by.
const MIN_GIVEAWAY_CHARS: usize = 10;

/// Where a page stands in the course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageLevel {
    /// The code its listings show.
    pub upto: Upto,
    /// The chapter whose page it is (a manifest index): its solutions go behind spoilers.
    pub chapter: Option<usize>,
}

impl PageLevel {
    /// For messages: "the page of week 1 day 6 (code as of starting it)".
    fn describe(self, manifest: &Manifest) -> String {
        let upto = match self.upto {
            Upto::Nothing => "no chapter's code".to_string(),
            Upto::Chapter(i) => format!("the code up to {}", manifest.chapters[i].label()),
        };
        match self.chapter {
            Some(i) => format!("the page of {} ({upto})", manifest.chapters[i].label()),
            None => format!("a page that shows {upto}"),
        }
    }
}

/// The level of each page, given the pages in SUMMARY.md order (paths relative to `book/src`).
pub(super) fn page_levels(pages: &[String], manifest: &Manifest) -> Vec<PageLevel> {
    let mut finished = Upto::Nothing;
    pages
        .iter()
        .map(|page| {
            let name = page.trim_start_matches("./").trim_end_matches(".md");
            match manifest.chapters.iter().position(|c| c.book == name) {
                Some(i) => {
                    finished = Upto::Chapter(i);
                    PageLevel {
                        upto: Upto::before(i),
                        chapter: Some(i),
                    }
                }
                None => PageLevel {
                    upto: finished,
                    chapter: None,
                },
            }
        })
        .collect()
}

/// A line of task code that must not be shown, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Giveaway {
    pub task: TaskRef,
    /// `file:line` of the region's marker.
    pub at: String,
}

/// The reference's generated sources, parsed once, ready to render listings from.
pub(super) struct Listings<'m> {
    manifest: &'m Manifest,
    /// By absolute path.
    sources: BTreeMap<PathBuf, Source>,
}

/// One rendered listing: the code, and the solutions that follow it.
#[derive(Debug, PartialEq)]
struct Listing {
    code: String,
    /// `<summary>` label and code of each.
    solutions: Vec<(String, String)>,
}

impl<'m> Listings<'m> {
    /// Parses the reference's generated sources.
    ///
    /// # Errors
    /// On a bad marker (see [`parse_reference`]) or an I/O error.
    pub fn load(root: &Path, manifest: &'m Manifest) -> Result<Self> {
        let src = root.join("mini-lsm-ref/src");
        let sources = parse_reference(root, manifest)?
            .into_iter()
            .map(|(rel_path, source)| (src.join(rel_path), source))
            .collect();
        Ok(Self { manifest, sources })
    }

    #[cfg(test)]
    fn from_sources(manifest: &'m Manifest, sources: Vec<(PathBuf, Source)>) -> Self {
        Self {
            manifest,
            sources: sources.into_iter().collect(),
        }
    }

    /// Renders the listings of `text`, the page at `page` (a file under the book's sources), at
    /// `level`. A listing that cannot be rendered becomes a visible warning in the page, and its
    /// problem (naming `shown`, the page as messages call it) is returned as well.
    pub fn render_page(
        &self,
        page: &Path,
        shown: &str,
        text: &str,
        level: PageLevel,
    ) -> (String, Vec<String>) {
        let dir = page.parent().unwrap_or(Path::new(""));
        let lines: Vec<&str> = text.lines().collect();
        let fences = fences(&lines);
        // By line: the new text of the line, and what goes after the line.
        let mut replaced: HashMap<usize, String> = HashMap::new();
        let mut after: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut problems = Vec::new();
        for include in find_includes(text) {
            let target = dir.join(&include.path);
            let target = normalize(&target).unwrap_or(target);
            let Some(source) = self.sources.get(&target) else {
                continue; // not a generated source: mdBook's `links` includes it as it is
            };
            let at = include.line - 1;
            let fence = fences[at];
            let rendered = self.listing(source, include.selector.as_deref(), level);
            let line = replaced
                .remove(&at)
                .unwrap_or_else(|| lines[at].to_string());
            let (code, extra) = match rendered {
                Ok(listing) => {
                    let info = fence.map_or("rust,ignore", |f| f.info);
                    let spoilers = listing
                        .solutions
                        .iter()
                        .map(|(label, code)| spoiler(label, info, code))
                        .collect();
                    (listing.code, spoilers)
                }
                Err(problem) => {
                    let problem = format!(
                        "{shown}:{}: `{}`, on {}: {problem}",
                        include.line,
                        include.text,
                        level.describe(self.manifest)
                    );
                    let warning = format!(
                        "\n> **This listing could not be rendered.** {}\n",
                        html_escape(&problem)
                    );
                    problems.push(problem);
                    (
                        String::from("(listing missing: see the warning below)"),
                        vec![warning],
                    )
                }
            };
            // Inside an indented fence (in a list item) every line keeps the fence's indentation.
            let indent = fence.map_or("", |f| f.indent);
            let code = indent_lines(code.trim_end(), indent, false);
            replaced.insert(at, line.replacen(&include.text, &code, 1));
            let close = fence.map_or(at, |f| f.close);
            let extra = extra.iter().map(|block| indent_lines(block, indent, true));
            after.entry(close).or_default().extend(extra);
        }
        let mut out = String::with_capacity(text.len());
        for (i, line) in lines.iter().enumerate() {
            out.push_str(replaced.get(&i).map_or(line, String::as_str));
            out.push('\n');
            for block in after.get(&i).into_iter().flatten() {
                out.push('\n');
                out.push_str(block);
            }
        }
        if !text.ends_with('\n') {
            out.pop();
        }
        (out, problems)
    }

    /// The listing of `anchor` (the whole file if `None`) in `source` at `level`.
    fn listing(
        &self,
        source: &Source,
        anchor: Option<&str>,
        level: PageLevel,
    ) -> Result<Listing, String> {
        let mut sink = Collect {
            entries: Vec::new(),
            level,
        };
        source.emit(level.upto, self.manifest, &mut sink);
        let range = match anchor {
            None => 0..sink.entries.len(),
            Some(name) => {
                let anchors = source.anchors();
                self.check_anchor(source, &anchors, name, level)?;
                let is = |entry: &Entry, end: bool| matches!(entry, Entry::Anchor(n, e) if n == name && *e == end);
                let start = sink
                    .entries
                    .iter()
                    .position(|e| is(e, false))
                    .ok_or_else(|| format!("{} has no `ANCHOR: {name}`", source.file()))?;
                let len = sink.entries[start..]
                    .iter()
                    .position(|e| is(e, true))
                    .ok_or_else(|| {
                        format!(
                            "{} has no `ANCHOR_END: {name}` after its `ANCHOR: {name}`",
                            source.file()
                        )
                    })?;
                start + 1..start + len
            }
        };
        let mut code = Vec::new();
        let mut solutions = Vec::new();
        let mut seen: HashMap<(TaskRef, Option<&str>), usize> = HashMap::new();
        for entry in &sink.entries[range] {
            match entry {
                Entry::Code(line) => code.push(line.as_str()),
                Entry::Anchor(..) => {}
                Entry::Solution(id) => {
                    let region = source.region(*id).expect("emitted from this source");
                    *seen.entry((region.task(), region.item())).or_default() += 1;
                    solutions.push(region);
                }
            }
        }
        let solutions = match level.chapter {
            None => Vec::new(), // only a chapter's page has solutions
            Some(chapter) => solutions
                .into_iter()
                .scan(HashMap::new(), |part, region| {
                    let key = (region.task(), region.item());
                    let n = part.entry(key).or_insert(0);
                    *n += 1;
                    let of = seen[&key];
                    Some((region, (of > 1).then_some((*n, of))))
                })
                .map(|(region, part)| self.solution(source, region, chapter, part))
                .collect(),
        };
        Ok(Listing {
            code: dedent(&code),
            solutions,
        })
    }

    /// Fails if anchor `name`'s lines lie in a region that is not shown as it is at `level`.
    fn check_anchor(
        &self,
        source: &Source,
        anchors: &[AnchorLine],
        name: &str,
        level: PageLevel,
    ) -> Result<(), String> {
        for anchor in anchors.iter().filter(|a| a.name == name) {
            let hidden = anchor.regions.iter().find_map(|id| {
                let region = source.region(*id)?;
                (region.shown(level.upto) != Shown::Body).then_some(region)
            });
            let Some(region) = hidden else { continue };
            let task = region.task();
            let chapter = &self.manifest.chapters[task.chapter];
            return Err(format!(
                "its `{}: {name}` line ({}:{}) lies inside the region of {}, task {} ({}:{}), \
                 which is a stub at this page's level, so the anchor is not in the code the page shows; \
                 move the anchor line out of that region (above its `// @task` line or below its `// @end`)",
                if anchor.end { "ANCHOR_END" } else { "ANCHOR" },
                source.file(),
                anchor.line,
                chapter.label(),
                task.task,
                source.file(),
                region.line(),
            ));
        }
        Ok(())
    }

    /// The label and code of `region`'s solution for chapter `chapter`; `part` is (k, of) when
    /// one function holds several regions of the task.
    fn solution(
        &self,
        source: &Source,
        region: RegionRef<'_>,
        chapter: usize,
        part: Option<(usize, usize)>,
    ) -> (String, String) {
        let upto = Upto::Chapter(chapter);
        let task = region.version(upto).expect("a solution shows code");
        let c = &self.manifest.chapters[task.chapter];
        let mut label = format!(
            "{}, task {}: {}",
            c.label(),
            task.task,
            html_escape(&c.tasks[task.task - 1])
        );
        if let Some(item) = region.item() {
            label.push_str(&format!(", in <code>{}</code>", html_escape(item)));
        }
        if let Some((k, of)) = part {
            label.push_str(&format!(" (part {k} of {of})"));
        }
        let mut code = String::new();
        source.emit_region(region, upto, self.manifest, &mut code);
        let lines: Vec<&str> = code.lines().collect();
        (label, dedent(&lines))
    }

    /// The lines of task code that must not appear in text written for level `allowed`: for
    /// every version of every region whose chapter `allowed` does not include, its lines (as
    /// generated for that chapter, trimmed, at least [`MIN_GIVEAWAY_CHARS`] long) that are
    /// nowhere in the code a learner has at `allowed`.
    pub fn giveaways(&self, allowed: Upto) -> HashMap<String, Giveaway> {
        let mut known = HashSet::new();
        for source in self.sources.values() {
            let text = source.generate(allowed, self.manifest);
            known.extend(text.lines().map(|l| l.trim().to_string()));
        }
        let mut out = HashMap::new();
        for source in self.sources.values() {
            for region in source.regions() {
                for task in region.versions() {
                    if allowed.includes(task.chapter) {
                        continue;
                    }
                    let mut code = CodeOnly::default();
                    let upto = Upto::Chapter(task.chapter);
                    source.emit_region(region, upto, self.manifest, &mut code);
                    for line in code.text.lines().map(str::trim) {
                        if line.chars().count() >= MIN_GIVEAWAY_CHARS && !known.contains(line) {
                            out.insert(
                                line.to_string(),
                                Giveaway {
                                    task,
                                    at: format!("{}:{}", source.file(), region.line()),
                                },
                            );
                        }
                    }
                }
            }
        }
        out
    }
}

/// What the emitter produced, in order: code, anchors, and where each solution region of the
/// page's chapter stands.
enum Entry {
    Code(String),
    /// Name, and whether it is an `ANCHOR_END`.
    Anchor(String, bool),
    /// A region whose chapter-N code goes behind a spoiler (by id).
    Solution(usize),
}

struct Collect {
    entries: Vec<Entry>,
    level: PageLevel,
}

impl Sink for Collect {
    fn line(&mut self, line: &str) {
        self.entries.push(Entry::Code(line.to_string()));
    }

    fn anchor(&mut self, line: &str) {
        let (name, end) = anchor_of(line).expect("the emitter passes anchor lines only");
        self.entries.push(Entry::Anchor(name, end));
    }

    fn open(&mut self, region: RegionRef<'_>, shown: Shown) {
        let Some(chapter) = self.level.chapter else {
            return;
        };
        let changes = region
            .version(Upto::Chapter(chapter))
            .is_some_and(|t| t.chapter == chapter);
        if shown != Shown::Body && changes {
            self.entries.push(Entry::Solution(region.id()));
        }
    }
}

/// The code of a region without the stubs of the later regions nested in it: a `TODO` line
/// gives nothing away.
#[derive(Default)]
struct CodeOnly {
    text: String,
    /// Per open region: whether it shows its stub.
    open: Vec<bool>,
}

impl Sink for CodeOnly {
    fn line(&mut self, line: &str) {
        if !self.open.contains(&true) {
            self.text.line(line);
        }
    }

    fn open(&mut self, _region: RegionRef<'_>, shown: Shown) {
        self.open.push(shown == Shown::Stub);
    }

    fn close(&mut self, _region: RegionRef<'_>, _shown: Shown) {
        self.open.pop();
    }
}

/// A small course and source that the tests of the renderer and of the built-book check share.
#[cfg(test)]
pub(super) mod fixture {
    use std::path::{Path, PathBuf};

    use super::Listings;
    use crate::manifest::Manifest;
    use crate::markers::Source;

    pub fn manifest() -> Manifest {
        Manifest::parse(
            r#"
[[chapter]]
id = "week1_day1"
title = "One"
book = "week1-01-one"
tasks = ["first task"]

[[chapter]]
id = "week1_day2"
title = "Two"
book = "week1-02-two"
tasks = ["second task"]
"#,
        )
        .unwrap()
    }

    /// Line 4: a region of chapter 1 with one of chapter 2 nested in it; line 19: a region of
    /// chapter 2 with an anchor inside (line 20).
    pub const SRC: &str = "\
// ANCHOR: all
/// Adds.
fn add(a: u32) -> u32 {
    // @task week1_day1 1
    let doubled = a * 2;
    // @task week1_day2 1 stub=comment
    let tripled_later = doubled + a;
    // @end
    doubled
    // @end
}
// ANCHOR_END: all
struct Counter;
impl<T: Clone>
    Counter
{
    // ANCHOR: get
    fn get(&self) -> u32 {
        // @task week1_day2 1
        // ANCHOR: inner
        let value_from_the_future = 42;
        value_from_the_future
        // ANCHOR_END: inner
        // @end
    }
    // ANCHOR_END: get
}
";

    /// The workspace root the tests pretend to have.
    pub fn root() -> PathBuf {
        PathBuf::from("/w")
    }

    /// The fixture's source as `mini-lsm-ref/src/f.rs` under `root`.
    pub fn listings<'m>(manifest: &'m Manifest, root: &Path) -> Listings<'m> {
        let path = root.join("mini-lsm-ref/src/f.rs");
        let source = Source::parse("mini-lsm-ref/src/f.rs", SRC, manifest).unwrap();
        Listings::from_sources(manifest, vec![(path, source)])
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{listings, manifest, root};
    use super::*;

    const PAGES: [&str; 4] = [
        "intro.md",
        "week1-01-one.md",
        "between.md",
        "week1-02-two.md",
    ];

    fn level(page: &str) -> PageLevel {
        let m = manifest();
        let pages: Vec<String> = PAGES.iter().map(|p| p.to_string()).collect();
        let at = PAGES.iter().position(|p| *p == page).unwrap();
        page_levels(&pages, &m)[at]
    }

    /// Renders `text` as the page `page` of the fixture's book.
    fn render(page: &str, text: &str) -> (String, Vec<String>) {
        let m = manifest();
        let listings = listings(&m, &root());
        let path = root().join("book/src").join(page);
        listings.render_page(&path, &format!("book/src/{page}"), text, level(page))
    }

    fn include(anchor: &str) -> String {
        format!("Text.\n\n```rust,ignore\n{{{{#include ../../mini-lsm-ref/src/f.rs:{anchor}}}}}\n```\n\nMore.\n")
    }

    /// A chapter's page shows the code as of starting it, and a non-chapter page the code of
    /// the last chapter before it; pages before any chapter show none.
    #[test]
    fn page_levels_follow_summary_order() {
        let chapter = |i| Some(i);
        assert_eq!(
            level("intro.md"),
            PageLevel {
                upto: Upto::Nothing,
                chapter: None
            }
        );
        assert_eq!(
            level("week1-01-one.md"),
            PageLevel {
                upto: Upto::Nothing,
                chapter: chapter(0)
            }
        );
        assert_eq!(
            level("between.md"),
            PageLevel {
                upto: Upto::Chapter(0),
                chapter: None
            }
        );
        assert_eq!(
            level("week1-02-two.md"),
            PageLevel {
                upto: Upto::Chapter(0),
                chapter: chapter(1)
            }
        );
    }

    /// On its chapter's page a task is its stub, and its solution follows the listing in a
    /// labelled, collapsed spoiler whose nested later region is a stub; no marker line is left.
    #[test]
    fn chapter_page_shows_stubs_and_folds_its_solutions() {
        let (out, problems) = render("week1-01-one.md", &include("all"));
        assert!(problems.is_empty(), "{problems:?}");
        let (listing, spoiler) = out.split_once("<details").expect("a spoiler");
        assert!(listing.contains(
            "fn add(a: u32) -> u32 {\n    todo!(\"week 1 day 1, task 1: first task (book: week1-01-one)\")\n}\n```\n"
        ), "{out}");
        assert!(!listing.contains("let doubled"), "{out}");
        assert!(spoiler.starts_with(
            " class=\"solution\">\n<summary>Solution: week 1 day 1, task 1: first task, in <code>add</code></summary>\n\n```rust,ignore\nlet doubled = a * 2;\n// TODO(week 1 day 2, task 1: second task (book: week1-02-two))\ndoubled\n```\n\n</details>\n"
        ), "{out}");
        assert!(out.ends_with("\nMore.\n"), "{out}");
        for marker in ["@task", "@end", "@stub", "ANCHOR", "tripled_later"] {
            assert!(!out.contains(marker), "{marker} in {out}");
        }
    }

    /// Code of a later chapter is a stub, without a spoiler, until that chapter's page; a page
    /// that is not a chapter's shows the finished chapters and no spoiler.
    #[test]
    fn later_chapters_stay_stubs_until_their_page() {
        let (out, _) = render("week1-01-one.md", &include("get"));
        assert!(out.contains("todo!(\"week 1 day 2, task 1: second task (book: week1-02-two)\")"));
        assert!(
            !out.contains("value_from_the_future") && !out.contains("<details"),
            "{out}"
        );

        let (out, _) = render("between.md", &(include("all") + &include("get")));
        assert!(
            out.contains("let doubled = a * 2;\n    // TODO(week 1 day 2, task 1"),
            "{out}"
        );
        assert!(
            !out.contains("value_from_the_future") && !out.contains("<details"),
            "{out}"
        );

        let (out, problems) = render("week1-02-two.md", &(include("all") + &include("get")));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(out.contains("Solution: week 1 day 2, task 1: second task, in <code>add</code></summary>\n\n```rust,ignore\nlet tripled_later = doubled + a;\n```"), "{out}");
        assert!(out.contains("Solution: week 1 day 2, task 1: second task, in <code>Counter::get</code></summary>\n\n```rust,ignore\nlet value_from_the_future = 42;\nvalue_from_the_future\n```"), "{out}");
        assert_eq!(out.matches("<details").count(), 2);
    }

    /// An anchor inside a region that is a stub at the page's level is an error naming the
    /// page, the anchor, the region and the fix; the page shows a warning in its place.
    #[test]
    fn anchor_in_a_stubbed_region_is_an_error() {
        let (out, problems) = render("week1-02-two.md", &include("inner"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        for part in [
            "book/src/week1-02-two.md:4: `{{#include ../../mini-lsm-ref/src/f.rs:inner}}`",
            "the page of week 1 day 2",
            "`ANCHOR: inner` line (mini-lsm-ref/src/f.rs:20)",
            "region of week 1 day 2, task 1 (mini-lsm-ref/src/f.rs:19)",
            "move the anchor line out of that region",
        ] {
            assert!(p.contains(part), "{part:?} not in {p}");
        }
        assert!(
            out.contains("**This listing could not be rendered.**"),
            "{out}"
        );
        // Once the region is code, the same anchor renders, shifted left.
        let m = manifest();
        let listings = listings(&m, &root());
        let path = root().join("book/src/after.md");
        let after = PageLevel {
            upto: Upto::Chapter(1),
            chapter: None,
        };
        let (out, problems) = listings.render_page(&path, "after.md", &include("inner"), after);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(
            out.contains(
                "```rust,ignore\nlet value_from_the_future = 42;\nvalue_from_the_future\n```"
            ),
            "{out}"
        );
    }

    /// A listing in an indented fence (a list item) keeps the indentation on every line, and
    /// so does its spoiler; an include of a file that is not generated is left to mdBook.
    #[test]
    fn indented_fences_and_other_files() {
        let page = "- item:\n\n  ```rust\n  {{#include ../../mini-lsm-ref/src/f.rs:all}}\n  ```\n- next\n\n{{#include ../../README.md}}\n";
        let (out, problems) = render("week1-01-one.md", page);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(out.contains("  ```rust\n  /// Adds.\n"), "{out}");
        assert!(
            out.contains("\n  fn add(a: u32) -> u32 {\n      todo!("),
            "{out}"
        );
        assert!(
            out.contains("\n  <details class=\"solution\">\n  <summary>"),
            "{out}"
        );
        assert!(
            out.contains("\n  ```rust\n  let doubled = a * 2;\n"),
            "{out}"
        );
        assert!(out.ends_with("{{#include ../../README.md}}\n"), "{out}");
    }

    /// The lines that must not show before a chapter are its code, not its stubs' TODO lines,
    /// nor short lines, nor code the learner already has.
    #[test]
    fn giveaways_are_later_code_only() {
        let m = manifest();
        let listings = listings(&m, &root());
        let before = listings.giveaways(Upto::Nothing);
        assert_eq!(
            before["let doubled = a * 2;"].task,
            TaskRef {
                chapter: 0,
                task: 1
            }
        );
        assert_eq!(before["let doubled = a * 2;"].at, "mini-lsm-ref/src/f.rs:4");
        assert_eq!(before["let value_from_the_future = 42;"].task.chapter, 1);
        assert!(!before.keys().any(|l| l.contains("TODO")), "{before:?}");
        assert!(!before.contains_key("doubled"), "too short to tell");
        let after_one = listings.giveaways(Upto::Chapter(0));
        assert!(!after_one.contains_key("let doubled = a * 2;"));
        assert!(after_one.contains_key("let tripled_later = doubled + a;"));
        assert!(listings.giveaways(Upto::Chapter(1)).is_empty());
    }
}
