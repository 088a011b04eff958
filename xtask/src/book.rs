//! `cargo x book`: build the book and prove it is whole.
//!
//! The book's code listings are not written in the book: they are `{{#include file:anchor}}`
//! directives into the reference crate, so a listing can never disagree with the code that the
//! tests run. These checks keep it that way, and keep the book from rotting as chapters move:
//!
//! ```text
//!  book/src/*.md ──(1) sources──► mdbook build ──(2) build──► book/build/*.html ──(3) links──► (4) browser
//!   includes + anchors            no [ERROR]/WARN              every href/src and            console, requests,
//!   no hand-pasted Rust                                        #fragment resolves            images, screenshots
//!   SUMMARY == course.toml
//! ```
//!
//! (1)–(3) are plain file checks that run in `cargo x ci` in about a second. (4) needs a real
//! browser and runs only with `--check`: it lives in the `book-check` crate so its WebSocket
//! client is compiled only then. Numeric line-range includes are refused because they silently
//! point at the wrong lines after the source changes; anchors move with the code.
//!
//! Not checked: links to other sites (CI has no network), and `#fragment`-only links within a
//! page (mdBook makes most of them itself; a wrong one costs a reader a scroll, not a dead page).

mod links;
mod sources;
mod tools;

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

use crate::manifest::Manifest;
use crate::util::step;

use links::check_built;
use sources::check_sources;
use tools::{browser_check, build, build_dir, ensure_mdbook, serve_book};

/// Checks the book's sources, builds it with mdBook and checks the links of the result. With
/// `check`, then loads every page in headless Chromium (installing it if missing) and saves
/// screenshots; with `serve`, then serves the book with live reload.
///
/// `serve` alone reports source problems as warnings and serves anyway, so a writer can look at
/// a half-done page.
///
/// # Errors
/// On any problem found (every one is listed, with its file), if mdBook or Chromium cannot be
/// installed, or if a tool fails.
pub fn book(root: &Path, manifest: &Manifest, serve: bool, check: bool) -> Result<()> {
    let book_dir = root.join("book");
    let mdbook = ensure_mdbook()?;
    step("checking the book's sources");
    let problems = check_sources(root, &book_dir.join("src"), manifest)?;
    if serve && !check {
        for problem in &problems {
            eprintln!("warning: {problem}");
        }
        return serve_book(&mdbook, &book_dir);
    }
    fail_on(problems, "in the book's sources")?;
    step("building the book with mdbook");
    build(&mdbook, &book_dir)?;
    let build_dir = build_dir(&book_dir)?;
    step("checking the links of the built book");
    fail_on(
        check_built(root, &book_dir.join("src"), &build_dir)?,
        "in the built book",
    )?;
    if check {
        browser_check(root, &build_dir)?;
    }
    if serve {
        serve_book(&mdbook, &book_dir)?;
    }
    Ok(())
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
