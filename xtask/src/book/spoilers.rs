//! Check (3b), on the HTML mdBook wrote: what a reader sees gives nothing away too early.
//!
//! - No marker line reaches a page, in code or prose: `@task`, `@or`, `@stub`, `@end`,
//!   `@starter`, `ANCHOR`, `@@verify` marks, nor an include directive left unexpanded.
//! - No task body is shown before its time. A page at level L (see `listings.rs`) may show no
//!   line of task code of a chapter after L outside a `<details>` spoiler; inside one, a chapter
//!   page may show its own chapter's code and nothing later. On any other page, a `<details>` is
//!   the author's own fold (an example of tool output, say) that a reader opens on purpose, and
//!   its contents are not checked for task code. "A line of task code" is one of
//!   [`Listings::giveaways`]: a line of some version of a region, as generated for its chapter,
//!   that is nowhere in the code the learner has at that level and is long enough to be telling.
//!   A page's text lines (tags stripped, entities decoded, trimmed) are compared whole, so prose
//!   that names a function does not count, and code shown in any form does.
//! - A fence inside a spoiler rendered as code (no stray "```" line).
//!
//! It also counts each chapter page's spoilers, for the report.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};

use super::listings::{page_levels, Giveaway, Listings, PageLevel, SOLUTION_SUMMARY};
use super::sources::summary_pages;
use crate::manifest::Manifest;
use crate::markers::{TaskRef, Upto};
use crate::util::{rel, walk_files};

/// What the check found.
#[derive(Debug, Default)]
pub(super) struct SpoilerReport {
    /// Every problem, with its page.
    pub problems: Vec<String>,
    /// One line per chapter: how many solution spoilers its page has.
    pub counts: Vec<String>,
}

/// Checks every built page under `build` (the book's sources are under `src`).
///
/// # Errors
/// On an I/O error.
pub(super) fn check_spoilers(
    root: &Path,
    src: &Path,
    build: &Path,
    manifest: &Manifest,
    listings: &Listings<'_>,
) -> Result<SpoilerReport> {
    let pages = summary_pages(src);
    let levels = page_levels(&pages, manifest);
    let mut level_of: HashMap<String, (String, PageLevel)> = HashMap::new();
    for (page, level) in pages.iter().zip(&levels) {
        let html = Path::new(page).with_extension("html");
        let shown = rel(root, &src.join(page));
        level_of.insert(html.to_string_lossy().into_owned(), (shown, *level));
    }
    // mdBook copies the first page into index.html.
    if let (Some(first), Some(level)) = (pages.first(), levels.first()) {
        level_of.insert("index.html".into(), (rel(root, &src.join(first)), *level));
    }
    let mut giveaways: HashMap<Upto, HashMap<String, Giveaway>> = HashMap::new();
    let mut report = SpoilerReport::default();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for path in walk_files(build, "html")? {
        let html = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let rel_path = path
            .strip_prefix(build)?
            .to_string_lossy()
            .replace('\\', "/");
        let text = page_text(&html);
        let Some((shown, level)) = level_of.get(&rel_path) else {
            let shown = rel(root, &path);
            report.problems.extend(
                surface_problems(&text)
                    .into_iter()
                    .map(|p| format!("{shown}: {p}")),
            );
            continue;
        };
        let mut problems = surface_problems(&text);
        let outside = giveaways
            .entry(level.upto)
            .or_insert_with(|| listings.giveaways(level.upto));
        problems.extend(shown_too_early(
            &text.outside,
            outside,
            manifest,
            "outside a spoiler",
        ));
        if let Some(chapter) = level.chapter {
            let inside = giveaways
                .entry(Upto::Chapter(chapter))
                .or_insert_with(|| listings.giveaways(Upto::Chapter(chapter)));
            problems.extend(shown_too_early(
                &text.inside,
                inside,
                manifest,
                "in a spoiler",
            ));
        }
        report
            .problems
            .extend(problems.into_iter().map(|p| format!("{shown}: {p}")));
        if let (Some(chapter), false) = (level.chapter, rel_path == "index.html") {
            counts.insert(chapter, text.solutions);
        }
    }
    for (i, chapter) in manifest.chapters.iter().enumerate() {
        let line = match counts.get(&i) {
            Some(n) => format!(
                "{} ({}.md): {n} solution spoiler{}",
                chapter.label(),
                chapter.book,
                if *n == 1 { "" } else { "s" }
            ),
            None => format!("{} ({}.md): page not built", chapter.label(), chapter.book),
        };
        report.counts.push(line);
    }
    Ok(report)
}

/// Marker lines, unexpanded includes and unrendered fences in a page's text.
fn surface_problems(text: &PageText) -> Vec<String> {
    let mut problems = Vec::new();
    for (line, where_) in text
        .outside
        .iter()
        .map(|l| (l, ""))
        .chain(text.inside.iter().map(|l| (l, " (in a spoiler)")))
    {
        if let Some(marker) = marker_in(line) {
            problems.push(format!(
                "a `{marker}` marker reaches the reader{where_}: `{}`",
                shorten(line)
            ));
        }
        if line.contains("{{#include") || line.contains("{{#rustdoc_include") {
            problems.push(format!(
                "an include directive was not expanded{where_}: `{}`",
                shorten(line)
            ));
        }
        if line.starts_with("```") || line.starts_with("~~~") {
            problems.push(format!(
                "a code fence was not rendered as code{where_} (inside <details>, a fence needs a blank line before and after it): `{}`",
                shorten(line)
            ));
        }
    }
    problems
}

/// The lines of `lines` that are giveaways, as one problem per task region.
fn shown_too_early(
    lines: &[String],
    giveaways: &HashMap<String, Giveaway>,
    manifest: &Manifest,
    where_: &str,
) -> Vec<String> {
    let mut found: BTreeMap<(TaskRef, &str), (usize, &str)> = BTreeMap::new();
    for line in lines {
        if let Some(g) = giveaways.get(line.as_str()) {
            found.entry((g.task, &g.at)).or_insert((0, line)).0 += 1;
        }
    }
    found
        .into_iter()
        .map(|((task, at), (n, first))| {
            let chapter = &manifest.chapters[task.chapter];
            format!(
                "shows code of {}, task {} ({at}) {where_}: {n} line{}, the first `{}`",
                chapter.label(),
                task.task,
                if n == 1 { "" } else { "s" },
                shorten(first)
            )
        })
        .collect()
}

fn shorten(line: &str) -> String {
    const MAX: usize = 100;
    if line.chars().count() <= MAX {
        return line.to_string();
    }
    let cut: String = line.chars().take(MAX).collect();
    format!("{cut}...")
}

/// The marker in a line of text, if any.
fn marker_in(line: &str) -> Option<&'static str> {
    if line.contains("ANCHOR:") {
        return Some("ANCHOR");
    }
    if line.contains("ANCHOR_END:") {
        return Some("ANCHOR_END");
    }
    if line.contains("@@verify") {
        return Some("@@verify");
    }
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    for (at, _) in line.match_indices('@') {
        if line[..at].chars().next_back().is_some_and(word_char) {
            continue;
        }
        let rest = &line[at + 1..];
        for marker in ["task", "or", "stub", "end", "starter"] {
            if rest.starts_with(marker) && !rest[marker.len()..].starts_with(word_char) {
                return Some(match marker {
                    "task" => "@task",
                    "or" => "@or",
                    "stub" => "@stub",
                    "end" => "@end",
                    _ => "@starter",
                });
            }
        }
    }
    None
}

/// The text a reader sees in a page's `<main>`, split by whether it is inside a `<details>`.
#[derive(Debug, Default, PartialEq)]
struct PageText {
    /// Lines outside every `<details>`, trimmed, entities decoded; blank ones dropped.
    outside: Vec<String>,
    /// Lines inside one.
    inside: Vec<String>,
    /// How many `<details>` are solution spoilers.
    solutions: usize,
}

/// Reads a built page: tags dropped (and `<script>`, `<style>` and comments with their
/// contents), each text line kept where it was, inside a `<details>` or not.
fn page_text(html: &str) -> PageText {
    let main = match (html.find("<main>"), html.rfind("</main>")) {
        (Some(start), Some(end)) if start < end => &html[start..end],
        _ => html,
    };
    let mut text = PageText {
        solutions: main.matches(SOLUTION_SUMMARY).count(),
        ..PageText::default()
    };
    let (mut outside, mut inside) = (String::new(), String::new());
    let mut depth = 0usize;
    let flush = |buf: &mut String, out: &mut Vec<String>| {
        let line = decode_entities(buf.trim());
        if !line.is_empty() {
            out.push(line);
        }
        buf.clear();
    };
    let mut rest = main;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(after) = rest.strip_prefix("<!--") {
                rest = after.find("-->").map_or("", |p| &after[p + 3..]);
                continue;
            }
            let end = rest.find('>').map_or(rest.len(), |p| p + 1);
            let tag = rest[1..end.saturating_sub(1).max(1)].trim();
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase();
            let closing = tag.starts_with('/');
            rest = &rest[end..];
            match (name.as_str(), closing) {
                ("details", false) => depth += 1,
                ("details", true) => depth = depth.saturating_sub(1),
                ("script" | "style", false) => {
                    let close = format!("</{name}");
                    rest = rest
                        .to_ascii_lowercase()
                        .find(&close)
                        .map_or("", |p| &rest[p..]);
                }
                _ => {}
            }
            continue;
        }
        if c == '\n' {
            flush(&mut outside, &mut text.outside);
            flush(&mut inside, &mut text.inside);
        } else if depth > 0 {
            inside.push(c);
        } else {
            outside.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut outside, &mut text.outside);
    flush(&mut inside, &mut text.inside);
    text
}

/// Decodes the character references mdBook writes: a few named ones and numeric ones.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let code = match name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => name.strip_prefix('#').and_then(|d| d.parse().ok()),
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::super::listings::fixture::{listings, manifest};
    use super::*;

    /// Runs the check on a book of two chapter pages and a page after them, whose built HTML
    /// is `pages` (file name, `<main>` contents); returns the problems and the counts.
    fn check(name: &str, pages: &[(&str, &str)]) -> SpoilerReport {
        let root =
            std::env::temp_dir().join(format!("xtask-spoilers-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (src, build) = (root.join("book/src"), root.join("book/build"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&build).unwrap();
        std::fs::write(
            src.join("SUMMARY.md"),
            "- [One](week1-01-one.md)\n- [Two](week1-02-two.md)\n- [After](after.md)\n",
        )
        .unwrap();
        for (page, main) in pages {
            let html = format!("<html><head><script>var x = '@task';</script></head><body><nav>@end</nav><main>\n{main}\n</main></body></html>");
            std::fs::write(build.join(page), html).unwrap();
        }
        let m = manifest();
        let report = check_spoilers(&root, &src, &build, &m, &listings(&m, &root)).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        report
    }

    /// The week 1 day 1 page as the renderer writes it: a stub, the solution in a spoiler.
    const GOOD_ONE: &str = r#"<pre><code class="language-rust">fn add(a: u32) -&gt; u32 {
    todo!(&quot;week 1 day 1, task 1: first task (book: week1-01-one)&quot;)
}</code></pre>
<details class="solution">
<summary>Solution: week 1 day 1, task 1: first task, in <code>add</code></summary>
<pre><code class="language-rust">let doubled = a * 2;
// TODO(week 1 day 2, task 1: second task (book: week1-02-two))
doubled</code></pre>
</details>"#;

    /// A good book passes, and each chapter page's spoilers are counted.
    #[test]
    fn passes_a_good_book_and_counts_spoilers() {
        let report = check(
            "good",
            &[
                ("week1-01-one.html", GOOD_ONE),
                ("week1-02-two.html", "<p>The <code>get</code> function:</p>"),
                (
                    "after.html",
                    "<pre><code>let value_from_the_future = 42;</code></pre>",
                ),
            ],
        );
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(
            report.counts,
            [
                "week 1 day 1 (week1-01-one.md): 1 solution spoiler",
                "week 1 day 2 (week1-02-two.md): 0 solution spoilers",
            ]
        );
    }

    /// A marker line, in code or in prose, is reported with its page (scripts and the
    /// navigation outside `<main>` are not the page's text).
    #[test]
    fn fails_on_a_marker_line() {
        let with_marker = GOOD_ONE.replace("fn add", "// @task week1_day1 1\nfn add");
        let report = check(
            "marker",
            &[
                ("week1-01-one.html", with_marker.as_str()),
                ("after.html", "<p>See <code>// ANCHOR: get</code>.</p>"),
            ],
        );
        assert_eq!(
            report.problems,
            [
                "book/src/after.md: a `ANCHOR` marker reaches the reader: `See // ANCHOR: get.`",
                "book/src/week1-01-one.md: a `@task` marker reaches the reader: `// @task week1_day1 1`",
            ]
        );
    }

    /// A task body of the page's chapter outside a spoiler is reported with its task and
    /// region, and so is a later chapter's anywhere, in a spoiler too.
    #[test]
    fn fails_on_a_task_body_before_its_time() {
        let page = GOOD_ONE
            .replace("<details", "<p>let doubled = a * 2;</p>\n<details")
            .replace("doubled</code>", "let value_from_the_future = 42;</code>");
        let report = check("early", &[("week1-01-one.html", page.as_str())]);
        assert_eq!(
            report.problems,
            [
                "book/src/week1-01-one.md: shows code of week 1 day 1, task 1 (mini-lsm-ref/src/f.rs:4) outside a spoiler: 1 line, the first `let doubled = a * 2;`",
                "book/src/week1-01-one.md: shows code of week 1 day 2, task 1 (mini-lsm-ref/src/f.rs:19) in a spoiler: 1 line, the first `let value_from_the_future = 42;`",
            ]
        );
        // The same spoiler is fine on day 2's page, which is that code's own.
        let own = GOOD_ONE.replace("doubled</code>", "let value_from_the_future = 42;</code>");
        let report = check("own", &[("week1-02-two.html", own.as_str())]);
        assert_eq!(report.problems, Vec::<String>::new());
    }

    /// A fence that did not render inside a spoiler and an unexpanded include are reported.
    #[test]
    fn fails_on_unrendered_fences_and_includes() {
        let page = "<details class=\"solution\"><summary>Solution: x</summary>\n<p>```rust\nfn f() {}\n```</p></details>\n<p>{{#include x.rs:a}}</p>";
        let problems = check("fence", &[("after.html", page)]).problems;
        assert_eq!(problems.len(), 3, "{problems:#?}");
        let has = |text: &str| problems.iter().filter(|p| p.contains(text)).count();
        assert_eq!(
            has("a code fence was not rendered as code (in a spoiler)"),
            2
        );
        assert_eq!(
            has("an include directive was not expanded: `{{#include x.rs:a}}`"),
            1
        );
    }

    /// Page text is split by `<details>`, entities are decoded, scripts and comments dropped.
    #[test]
    fn reads_page_text() {
        let text = page_text("<main><p>a &lt;b&gt; &amp;&#39;c&#x27;</p><!-- @task --><script>@end</script>\n<details><summary>Solution: s</summary>\n<pre><code>x\n  y</code></pre></details> z</main>");
        assert_eq!(text.outside, ["a <b> &'c'", "z"]);
        assert_eq!(text.inside, ["Solution: s", "x", "y"]);
        assert_eq!(text.solutions, 1);
    }

    /// Markers are found as words, not inside other words or addresses.
    #[test]
    fn finds_markers_as_words() {
        for (line, marker) in [
            ("// @task week1_day1 1", Some("@task")),
            ("`@or` and", Some("@or")),
            ("// @end", Some("@end")),
            ("x // @stub", Some("@stub")),
            ("// @starter #![x]", Some("@starter")),
            ("// ANCHOR_END: x", Some("ANCHOR_END")),
            ("// @@verify-task 1", Some("@@verify")),
            ("mail me@end.org", None),
            ("@order @ending @tasks", None),
        ] {
            assert_eq!(marker_in(line), marker, "{line}");
        }
    }
}
