//! `cargo x book`: build the book and prove it is whole, and that it gives nothing away early.
//!
//! The book's code listings are not written in the book: they are `{{#include file:anchor}}`
//! directives into the reference crate, so a listing can never disagree with the code that the
//! tests run. They are rendered per page by our mdBook preprocessor (`cargo x book-preprocess`,
//! named in `book/book.toml`) from the task markers, as the learner has the code at that page's
//! point in the course: a chapter's page shows the stubs of its tasks, with each solution behind
//! a spoiler; later chapters' code never shows early (`listings.rs` has the rule). These checks
//! keep it that way, and keep the book from rotting as chapters move:
//!
//! ```text
//!  book/src/*.md ──(1) sources──► mdbook build ──(2) build──► book/build/*.html ──(3) links──► (4) browser
//!   includes + anchors            listings rendered by        every href/src and            console, requests,
//!   no hand-pasted Rust           book-preprocess; no         #fragment resolves;           images, screenshots
//!   SUMMARY == course.toml        [ERROR]/WARN                (3b) no marker, no task
//!   every listing renders                                     body before its time
//! ```
//!
//! (1)–(3b) are plain file checks that run in `cargo x ci` in a few seconds. (4) needs a real
//! browser and runs only with `--check`: it lives in the `book-check` crate so its WebSocket
//! client is compiled only then. Numeric line-range includes are refused because they silently
//! point at the wrong lines after the source changes; anchors move with the code.
//!
//! Not checked: links to other sites (CI has no network), and `#fragment`-only links within a
//! page (mdBook makes most of them itself; a wrong one costs a reader a scroll, not a dead page).

mod links;
mod listings;
mod markdown;
mod preprocess;
mod sources;
mod spoilers;
mod tools;

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;
use crate::util::{rel, step};

use links::check_built;
use listings::{page_levels, Listings};
pub use preprocess::preprocess;
use sources::{check_sources, summary_pages};
use spoilers::check_spoilers;
use tools::{browser_check, build, build_dir, ensure_mdbook, serve_book};

/// Checks the book's sources, renders its listings, builds it with mdBook and checks the result:
/// links, and no marker or solution shown before its time (with each chapter's spoiler count).
/// With `check`, then loads every page in headless Chromium (installing it if missing) and saves
/// screenshots; with `serve` (a port), then serves the book with live reload.
///
/// `serve` alone reports source and listing problems as warnings (a listing that cannot be
/// rendered shows a warning in its page) and serves anyway, so a writer can look at a half-done
/// page.
///
/// # Errors
/// On any problem found (every one is listed, with its file), if mdBook or Chromium cannot be
/// installed, or if a tool fails.
pub fn book(root: &Path, manifest: &Manifest, serve: Option<u16>, check: bool) -> Result<()> {
    let book_dir = root.join("book");
    let src = book_dir.join("src");
    let mdbook = ensure_mdbook()?;
    step("checking the book's sources and rendering its listings");
    let listings = Listings::load(root, manifest)?;
    let mut problems = check_sources(root, &src, manifest)?;
    if problems.is_empty() {
        // Includes that do not resolve were named above; render only a book whose do.
        problems.extend(render_pages(root, &src, manifest, &listings)?);
    }
    if let (Some(port), false) = (serve, check) {
        for problem in &problems {
            eprintln!("warning: {problem}");
        }
        return serve_book(&mdbook, &book_dir, port);
    }
    fail_on(problems, "in the book's sources")?;
    step("building the book with mdbook");
    build(&mdbook, &book_dir)?;
    let build_dir = build_dir(&book_dir)?;
    step("checking the links of the built book");
    fail_on(check_built(root, &src, &build_dir)?, "in the built book")?;
    step("checking that no marker and no solution shows before its time");
    let report = check_spoilers(root, &src, &build_dir, manifest, &listings)?;
    for line in &report.counts {
        eprintln!("    {line}");
    }
    fail_on(report.problems, "in the rendered book")?;
    if check {
        browser_check(root, &build_dir)?;
    }
    if let Some(port) = serve {
        serve_book(&mdbook, &book_dir, port)?;
    }
    Ok(())
}

/// Renders every page SUMMARY.md lists, as the preprocessor will; returns the problems.
fn render_pages(
    root: &Path,
    src: &Path,
    manifest: &Manifest,
    listings: &Listings<'_>,
) -> Result<Vec<String>> {
    let pages = summary_pages(src);
    let mut problems = Vec::new();
    for (page, level) in pages.iter().zip(page_levels(&pages, manifest)) {
        let path = src.join(page);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        problems.extend(
            listings
                .render_page(&path, &rel(root, &path), &text, level)
                .1,
        );
    }
    Ok(problems)
}

fn fail_on(problems: Vec<String>, place: &str) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    bail!(
        "{n} problem{} {place}:\n  {}",
        if n == 1 { "" } else { "s" },
        problems.join("\n  ")
    )
}

// ---------------------------------------------------------------------------------------------
// Paths, shared by the source and link checks

/// `path` with `.` and `..` worked out without touching the disk; `None` if `..` climbs above
/// where the path starts.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    return None;
                }
                out.pop();
            }
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.` and `..` are worked out lexically, and climbing above the start is refused.
    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize(Path::new("/w/book/src/../../x/./a.rs")),
            Some(PathBuf::from("/w/x/a.rs"))
        );
        assert_eq!(normalize(Path::new("a/../../b")), None);
        assert_eq!(normalize(Path::new("/..")), None);
    }
}
