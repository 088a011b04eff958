//! Check (1), on `book/src` before mdBook sees it: every `{{#include}}` names a file that exists
//! and an anchor it has (never line numbers), no long ```rust listing is pasted by hand, and
//! SUMMARY.md lists the chapters of `course.toml`, in its order.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::normalize;
use crate::manifest::Manifest;
use crate::util::rel;
use crate::util::walk_files;

/// A ```rust fence with more non-blank lines than this must include its code from the source.
const MAX_HAND_WRITTEN_RUST_LINES: usize = 3;

/// Every problem in `book/src`: includes, hand-pasted Rust, and SUMMARY against the manifest.
pub(super) fn check_sources(root: &Path, src: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    if !src.is_dir() {
        bail!("{} does not exist", rel(root, src));
    }
    let mut problems = Vec::new();
    for md in walk_files(src, "md")? {
        let text =
            std::fs::read_to_string(&md).with_context(|| format!("reading {}", md.display()))?;
        let name = rel(root, &md);
        let dir = md.parent().expect("a file has a parent");
        for include in find_includes(&text) {
            let target =
                normalize(&dir.join(&include.path)).unwrap_or_else(|| dir.join(&include.path));
            let file = std::fs::read_to_string(&target).ok();
            if let Some(problem) = include_problem(&include, file.as_deref(), &rel(root, &target)) {
                problems.push(format!("{name}:{}: {problem}", include.line));
            }
        }
        for line in hand_written_rust(&text) {
            problems.push(format!(
                "{name}:{line}: a ```rust block of more than {MAX_HAND_WRITTEN_RUST_LINES} lines is written by hand; \
                 include it from the source instead: mark the code with `// ANCHOR: name` ... `// ANCHOR_END: name` \
                 and write {{{{#include ../../mini-lsm-ref/src/FILE.rs:name}}}}"
            ));
        }
    }
    let summary_path = src.join("SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path).ok();
    if summary.is_none() {
        problems.push(format!("{} does not exist", rel(root, &summary_path)));
    }
    let exists = |page: &str| src.join(page).is_file();
    problems.extend(check_summary(summary.as_deref(), manifest, exists));
    Ok(problems)
}

/// One `{{#include ...}}` or `{{#rustdoc_include ...}}` directive.
#[derive(Debug, PartialEq)]
pub(super) struct Include {
    /// 1-based line in the page.
    pub line: usize,
    /// The directive as written, for messages.
    pub text: String,
    /// The file, relative to the page.
    pub path: String,
    /// What follows the first `:` after the path, if anything.
    pub selector: Option<String>,
}

/// The include directives of a page, skipping escaped ones (`\{{#include ...}}`).
pub(super) fn find_includes(text: &str) -> Vec<Include> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(pos) = line[from..].find("{{#").map(|p| p + from) {
            from = pos + 3;
            let after = &line[from..];
            let Some(directive) = ["include", "rustdoc_include"].into_iter().find(|d| {
                after
                    .strip_prefix(d)
                    .is_some_and(|rest| rest.starts_with(char::is_whitespace))
            }) else {
                continue;
            };
            let Some(end) = after.find("}}") else {
                continue;
            };
            if line[..pos].ends_with('\\') {
                continue;
            }
            let args = after[directive.len()..end].trim();
            let (path, selector) = match args.split_once(':') {
                Some((path, sel)) if !sel.is_empty() => (path, Some(sel.to_string())),
                Some((path, _)) => (path, None),
                None => (args, None),
            };
            out.push(Include {
                line: i + 1,
                text: line[pos..from + end + 2].to_string(),
                path: path.trim().to_string(),
                selector,
            });
            from += end + 2;
        }
    }
    out
}

/// What is wrong with `include`, given the contents of its target (`None`: no such file).
fn include_problem(include: &Include, file: Option<&str>, shown_path: &str) -> Option<String> {
    let d = &include.text;
    let Some(file) = file else {
        return Some(format!("`{d}`: {shown_path} does not exist"));
    };
    let selector = include.selector.as_deref()?;
    if selector.chars().all(|c| c.is_ascii_digit() || c == ':') {
        return Some(format!(
            "`{d}` selects lines by number, which drift when the source changes; \
             mark them with `// ANCHOR: name` ... `// ANCHOR_END: name` in {shown_path} and include `:name`"
        ));
    }
    let missing: Vec<String> = ["ANCHOR", "ANCHOR_END"]
        .into_iter()
        .filter(|marker| !has_anchor(file, marker, selector))
        .map(|marker| format!("`{marker}: {selector}`"))
        .collect();
    (!missing.is_empty())
        .then(|| format!("`{d}`: {shown_path} has no {}", missing.join(" and no ")))
}

/// Whether `file` has `marker: name` (as mdBook matches it: `ANCHOR:\s*([\w-]+)`).
fn has_anchor(file: &str, marker: &str, name: &str) -> bool {
    let tag = format!("{marker}:");
    file.match_indices(&tag).any(|(at, _)| {
        let rest = file[at + tag.len()..].trim_start();
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        word == name
    })
}

/// The lines of ```rust fences that hold more than a few lines of code and no include.
fn hand_written_rust(text: &str) -> Vec<usize> {
    struct Open {
        fence: String,
        rust: bool,
        line: usize,
        code_lines: usize,
        includes: bool,
    }
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    let close = |o: Open, out: &mut Vec<usize>| {
        if o.rust && o.code_lines > MAX_HAND_WRITTEN_RUST_LINES && !o.includes {
            out.push(o.line);
        }
    };
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let trimmed = line.trim_start_matches(' ');
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let fence_len = fence_char.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        let is_fence = indent <= 3 && fence_len >= 3;
        match open.take() {
            Some(o)
                if is_fence
                    && trimmed[fence_len..].trim().is_empty()
                    && trimmed.starts_with(o.fence.as_str()) =>
            {
                close(o, &mut out);
            }
            Some(mut o) => {
                o.code_lines += usize::from(!line.trim().is_empty());
                o.includes |= line.contains("{{#include") || line.contains("{{#rustdoc_include");
                open = Some(o);
            }
            None if is_fence => {
                let info = trimmed[fence_len..].trim();
                let lang = info.split([',', ' ', '{']).next().unwrap_or("");
                open = Some(Open {
                    fence: trimmed[..fence_len].to_string(),
                    rust: lang == "rust" || lang == "rs",
                    line: i + 1,
                    code_lines: 0,
                    includes: false,
                });
            }
            None => {}
        }
    }
    // An unclosed fence runs to the end of the page.
    if let Some(o) = open {
        close(o, &mut out);
    }
    out
}

/// SUMMARY.md against the manifest: every chapter's page exists and is linked, in course order,
/// and every page SUMMARY links to exists (mdBook would quietly create it empty). With no
/// SUMMARY.md, only the chapters' pages are checked.
fn check_summary(
    summary: Option<&str>,
    manifest: &Manifest,
    exists: impl Fn(&str) -> bool,
) -> Vec<String> {
    let links = summary_links(summary.unwrap_or(""));
    let mut problems: Vec<String> = links
        .iter()
        .filter(|(_, page)| !exists(page))
        .map(|(line, page)| {
            format!("book/src/SUMMARY.md:{line}: links to {page}, which does not exist")
        })
        .collect();
    let mut previous: Option<(usize, &str)> = None;
    for chapter in &manifest.chapters {
        let page = format!("{}.md", chapter.book);
        if !exists(&page) {
            problems.push(format!(
                "chapter {} ({}): its page book/src/{page} does not exist",
                chapter.id, chapter.title
            ));
        }
        let Some(at) = links.iter().position(|(_, p)| *p == page) else {
            if summary.is_none() {
                continue;
            }
            problems.push(format!(
                "book/src/SUMMARY.md: chapter {} ({}): {page} is not linked",
                chapter.id, chapter.title
            ));
            continue;
        };
        if let Some((before, id)) = previous {
            if at < before {
                problems.push(format!(
                    "book/src/SUMMARY.md: chapter {} ({page}) is listed before chapter {id}; course.toml has it after",
                    chapter.id
                ));
            }
        }
        previous = Some((at, &chapter.id));
    }
    problems
}

/// The pages `src/SUMMARY.md` links to, in reading order, each once; none without SUMMARY.md.
pub(super) fn summary_pages(src: &Path) -> Vec<String> {
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap_or_default();
    let mut pages: Vec<String> = Vec::new();
    for (_, page) in summary_links(&summary) {
        if !pages.contains(&page) {
            pages.push(page);
        }
    }
    pages
}

/// The `.md` pages SUMMARY.md links to, in order, with their lines; draft chapters (`[x]()`)
/// have no page and are skipped.
fn summary_links(summary: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in summary.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            let target = target
                .split('#')
                .next()
                .unwrap_or("")
                .trim_start_matches("./");
            if !target.is_empty() {
                out.push((i + 1, target.to_string()));
            }
            rest = &rest[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[[chapter]]
id = "week1_day1"
title = "Memtable"
book = "week1-01-memtable"
tasks = ["a"]

[[chapter]]
id = "week1_day2"
title = "Merge"
book = "week1-02-merge"
tasks = ["b"]
"#;

    fn problems_of(page: &str, file: Option<&str>) -> Vec<String> {
        find_includes(page)
            .iter()
            .filter_map(|i| include_problem(i, file, "src/x.rs"))
            .collect()
    }

    /// Include directives are found with their path, selector and line; escaped ones are not.
    #[test]
    fn finds_include_directives() {
        let page = "text\n```rust\n{{#include ../../x.rs:put}}\n```\n\\{{#include nope.rs}} {{#rustdoc_include y.rs}}";
        let found = find_includes(page);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (
                found[0].line,
                found[0].path.as_str(),
                found[0].selector.as_deref()
            ),
            (3, "../../x.rs", Some("put"))
        );
        assert_eq!(
            (
                found[1].line,
                found[1].path.as_str(),
                found[1].selector.as_deref()
            ),
            (5, "y.rs", None)
        );
    }

    /// A missing file, a missing anchor end and a line-number range are each reported; a
    /// complete anchor is not.
    #[test]
    fn reports_broken_includes() {
        let source =
            "// ANCHOR: put\nfn put() {}\n// ANCHOR_END: put\n// ANCHOR: get\nfn get() {}\n";
        assert!(problems_of("{{#include x.rs:put}}", Some(source)).is_empty());
        assert!(problems_of("{{#include x.rs}}", Some(source)).is_empty());
        let missing = problems_of("{{#include x.rs:put}}", None);
        assert!(
            missing[0].contains("src/x.rs does not exist"),
            "{missing:?}"
        );
        let unclosed = problems_of("{{#include x.rs:get}}", Some(source));
        assert!(
            unclosed[0].contains("no `ANCHOR_END: get`") && !unclosed[0].contains("`ANCHOR: get`"),
            "{unclosed:?}"
        );
        // `put_all` must not match the anchor `put`.
        let prefix = problems_of("{{#include x.rs:put_all}}", Some(source));
        assert!(
            prefix[0].contains("no `ANCHOR: put_all` and no `ANCHOR_END: put_all`"),
            "{prefix:?}"
        );
        for range in [
            "{{#include x.rs:10:20}}",
            "{{#include x.rs:10}}",
            "{{#include x.rs::20}}",
        ] {
            let lines = problems_of(range, Some(source));
            assert!(
                lines[0].contains("selects lines by number"),
                "{range}: {lines:?}"
            );
        }
    }

    /// A long hand-written ```rust block is flagged with its line; included, short, and
    /// non-Rust blocks are not.
    #[test]
    fn flags_hand_written_rust() {
        let page = "# T\n\
                    ```rust,ignore\nfn a() {\n    b();\n    c();\n}\n```\n\
                    ```rust\n{{#include x.rs:a}}\nfn extra() {}\nfn more() {}\nfn again() {}\n```\n\
                    ```rust\nlet x = 1;\n\nlet y = 2;\n```\n\
                    ```text\n1\n2\n3\n4\n5\n```\n\
                    ````rust\n```\nfn inner() {}\n```\nfn four() {}\n````\n";
        assert_eq!(hand_written_rust(page), vec![2, 26]);
        assert_eq!(
            hand_written_rust("```rs\n1\n2\n3\n4"),
            vec![1],
            "an unclosed fence counts too"
        );
    }

    /// SUMMARY.md that matches the manifest passes; a missing link, a missing page, a link to a
    /// missing file and a swapped order are each reported, and missing pages even without SUMMARY.
    #[test]
    fn checks_summary_against_manifest() {
        let manifest = Manifest::parse(MANIFEST).unwrap();
        let pages = [
            "00-overview.md",
            "week1-01-memtable.md",
            "week1-02-merge.md",
        ];
        let exists = |p: &str| pages.contains(&p);
        let good = "# Summary\n[Overview](./00-overview.md)\n- [Memtable](week1-01-memtable.md)\n- [Merge](week1-02-merge.md#x)\n- [Later]()\n";
        assert_eq!(
            check_summary(Some(good), &manifest, exists),
            Vec::<String>::new()
        );

        let swapped = "- [Merge](week1-02-merge.md)\n- [Memtable](week1-01-memtable.md)\n";
        let problems = check_summary(Some(swapped), &manifest, exists);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .contains("week1_day2 (week1-02-merge.md) is listed before chapter week1_day1"),
            "{problems:?}"
        );

        let unlinked = "- [Memtable](week1-01-memtable.md)\n- [Ghost](ghost.md)\n";
        let problems = check_summary(Some(unlinked), &manifest, |p| {
            p != "week1-02-merge.md" && p != "ghost.md"
        });
        assert_eq!(
            problems,
            [
                "book/src/SUMMARY.md:2: links to ghost.md, which does not exist",
                "chapter week1_day2 (Merge): its page book/src/week1-02-merge.md does not exist",
                "book/src/SUMMARY.md: chapter week1_day2 (Merge): week1-02-merge.md is not linked",
            ]
        );

        // With no SUMMARY.md at all, missing pages are still named.
        let problems = check_summary(None, &manifest, |p| p != "week1-02-merge.md");
        assert_eq!(
            problems,
            ["chapter week1_day2 (Merge): its page book/src/week1-02-merge.md does not exist"]
        );
    }
}
