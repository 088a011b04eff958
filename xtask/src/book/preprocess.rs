//! `cargo x book-preprocess`: the mdBook preprocessor that renders the listings (`listings.rs`).
//!
//! `book/book.toml` declares it as `[preprocessor.listings]`, to run before mdBook's `links`
//! (which would otherwise paste the reference as it is, markers and all), and for the `html`
//! renderer by name: mdBook then runs it without first asking whether it supports the renderer,
//! a question whose failed answer would make mdBook skip it silently. A plain `mdbook build` or
//! `mdbook serve` in `book/` runs it as `cargo x book-preprocess`; `cargo x book` points mdBook
//! at its own binary instead ([`COMMAND_ENV`]), so nothing is rebuilt.
//!
//! The protocol: `book-preprocess supports <renderer>` answers yes (exit 0); a plain run reads
//! mdBook's `[context, book]` JSON on stdin and writes the book back on stdout, each chapter's
//! `content` rendered. Any listing that cannot be rendered fails the run with every problem
//! listed, unless [`LENIENT_ENV`] is set (as `cargo x book --serve` does, so that a half-done
//! page can still be looked at): then the listing becomes a visible warning in its page.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::listings::{page_levels, Listings};
use crate::manifest::Manifest;
use crate::util::rel;

/// The environment variable through which `cargo x book` overrides book.toml's
/// `preprocessor.listings.command` (mdBook reads `MDBOOK_<key>`, `__` between key parts).
pub(super) const COMMAND_ENV: &str = "MDBOOK_PREPROCESSOR__LISTINGS__COMMAND";
/// When set to 1, a listing that cannot be rendered is a warning, not an error.
pub(super) const LENIENT_ENV: &str = "MINI_LSM_BOOK_LENIENT";

/// Runs the preprocessor protocol with the arguments after `book-preprocess`.
///
/// # Errors
/// On malformed input from mdBook, or (unless lenient) a listing that cannot be rendered.
pub fn preprocess(args: &[String]) -> Result<()> {
    match args {
        [supports, _renderer] if supports == "supports" => return Ok(()),
        [] => {}
        _ => bail!(
            "usage: book-preprocess [supports RENDERER]; this is the mdBook preprocessor of \
             `cargo x book`, which runs it for you"
        ),
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading mdBook's input")?;
    let lenient = std::env::var(LENIENT_ENV).is_ok_and(|v| v == "1");
    let (book, problems) = render_book(&input)?;
    if !problems.is_empty() {
        let list = problems.join("\n  ");
        if !lenient {
            bail!(
                "{} listing{} cannot be rendered:\n  {list}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
        }
        eprintln!("warning: listings that cannot be rendered (shown as warnings in their pages):\n  {list}");
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &book).context("writing the book for mdBook")?;
    out.flush()?;
    Ok(())
}

/// Renders every chapter of mdBook's input; returns the book and the problems found.
fn render_book(input: &str) -> Result<(Value, Vec<String>)> {
    let value: Value = serde_json::from_str(input)
        .context("mdBook's input is not JSON; run this through `cargo x book` or `mdbook build`")?;
    let Value::Array(mut parts) = value else {
        bail!("mdBook's input is not a [context, book] array");
    };
    let (Some(mut book), Some(ctx), true) = (parts.pop(), parts.pop(), parts.is_empty()) else {
        bail!("mdBook's input is not a [context, book] array");
    };
    let book_root = PathBuf::from(
        ctx["root"]
            .as_str()
            .context("mdBook's context has no root")?,
    );
    let src = book_root.join(ctx["config"]["book"]["src"].as_str().unwrap_or("src"));
    let root = book_root
        .parent()
        .context("the book's directory has no parent (the workspace)")?;
    let manifest = Manifest::load(root)?;
    let listings = Listings::load(root, &manifest)?;

    let mut pages = Vec::new();
    chapters(&book["items"], &mut |path, content| {
        pages.push((path.to_string(), content.to_string()));
    });
    let paths: Vec<String> = pages.iter().map(|(p, _)| p.clone()).collect();
    let levels = page_levels(&paths, &manifest);
    let mut problems = Vec::new();
    let mut rendered = Vec::new();
    for ((path, content), level) in pages.iter().zip(levels) {
        let page = src.join(path);
        let (text, page_problems) = listings.render_page(&page, &rel(root, &page), content, level);
        problems.extend(page_problems);
        rendered.push(text);
    }
    let mut rendered = rendered.into_iter();
    set_contents(&mut book["items"], &mut || rendered.next());
    Ok((book, problems))
}

/// Calls `f` with the source path and content of every chapter of `items`, in SUMMARY order
/// (a chapter before its sub-chapters). Draft chapters have no path and are skipped.
fn chapters(items: &Value, f: &mut dyn FnMut(&str, &str)) {
    for item in items.as_array().into_iter().flatten() {
        let Some(chapter) = item.get("Chapter") else {
            continue;
        };
        let path = chapter["source_path"]
            .as_str()
            .or_else(|| chapter["path"].as_str());
        if let (Some(path), Some(content)) = (path, chapter["content"].as_str()) {
            f(path, content);
        }
        chapters(&chapter["sub_items"], f);
    }
}

/// Sets the content of every chapter [`chapters`] visits, in the same order, from `next`.
fn set_contents(items: &mut Value, next: &mut dyn FnMut() -> Option<String>) {
    for item in items.as_array_mut().into_iter().flatten() {
        let Some(chapter) = item.get_mut("Chapter") else {
            continue;
        };
        let has_path = chapter["source_path"].is_string() || chapter["path"].is_string();
        if has_path && chapter["content"].is_string() {
            if let Some(text) = next() {
                chapter["content"] = Value::String(text);
            }
        }
        set_contents(&mut chapter["sub_items"], next);
    }
}

/// The `command` value for [`COMMAND_ENV`] that runs this very binary, quoted for mdBook's
/// shell-like splitting.
pub(super) fn own_command() -> Result<String> {
    let exe = std::env::current_exe().context("finding the running cargo x binary")?;
    Ok(format!("{} book-preprocess", shell_quote(&exe)))
}

fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chapters are visited in SUMMARY order, sub-chapters after their parent, drafts skipped,
    /// and contents are written back in the same order.
    #[test]
    fn walks_and_rewrites_chapters_in_order() {
        let mut items = serde_json::json!([
            {"Chapter": {"name": "A", "content": "a", "source_path": "a.md", "path": "a.md",
                "sub_items": [
                    {"Chapter": {"name": "B", "content": "b", "source_path": "b.md", "path": "b.md", "sub_items": []}},
                    {"Chapter": {"name": "Draft", "content": "", "source_path": null, "path": null, "sub_items": []}}
                ]}},
            "Separator",
            {"PartTitle": "Part"},
            {"Chapter": {"name": "C", "content": "c", "source_path": "c.md", "path": "c.md", "sub_items": []}}
        ]);
        let mut seen = Vec::new();
        chapters(&items, &mut |path, content| {
            seen.push(format!("{path}={content}"));
        });
        assert_eq!(seen, ["a.md=a", "b.md=b", "c.md=c"]);
        let mut new = ["A!", "B!", "C!"].into_iter().map(String::from);
        set_contents(&mut items, &mut || new.next());
        assert_eq!(items[0]["Chapter"]["content"], "A!");
        assert_eq!(
            items[0]["Chapter"]["sub_items"][0]["Chapter"]["content"],
            "B!"
        );
        assert_eq!(
            items[0]["Chapter"]["sub_items"][1]["Chapter"]["content"],
            ""
        );
        assert_eq!(items[3]["Chapter"]["content"], "C!");
    }

    /// A path with a quote survives mdBook's shell-like splitting.
    #[test]
    fn quotes_the_binary_path() {
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
