//! Check (3), on the HTML mdBook wrote: every relative `href`/`src` names a file of the book, and
//! every `page#fragment` an id on that page. A small tag scanner reads the pages; it needs only
//! start tags and their attributes, not a full HTML parser.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::normalize;
use crate::util::rel;
use crate::util::walk_files;

/// Every broken relative `href`/`src` in the HTML under `build`, and every `page#fragment` whose
/// page has no such id. A problem is named once, on the chapter's source page where there is one,
/// with the other pages that repeat it (mdBook copies chapters into `index.html` and `print.html`).
pub(super) fn check_built(root: &Path, src: &Path, build: &Path) -> Result<Vec<String>> {
    let mut pages = walk_files(build, "html")?;
    if pages.is_empty() {
        bail!("mdbook wrote no HTML pages into {}", rel(root, build));
    }
    // Chapters first, so that a problem is named where its source is.
    pages.sort_by_key(|p| {
        (
            !src.join(p.strip_prefix(build).unwrap_or(p))
                .with_extension("md")
                .is_file(),
            p.clone(),
        )
    });
    let mut ids: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for page in &pages {
        let html =
            std::fs::read_to_string(page).with_context(|| format!("reading {}", page.display()))?;
        let source = src.join(page.strip_prefix(build)?).with_extension("md");
        let shown = if source.is_file() {
            rel(root, &source)
        } else {
            rel(root, page)
        };
        for problem in page_link_problems(root, build, page, &html, &mut ids) {
            match found.iter_mut().find(|(p, _)| *p == problem) {
                Some((_, on)) => {
                    if !on.contains(&shown) {
                        on.push(shown.clone());
                    }
                }
                None => found.push((problem, vec![shown.clone()])),
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(problem, on)| match on.split_first() {
            Some((first, [])) => format!("{first}: {problem}"),
            Some((first, rest)) => format!("{first}: {problem} (also on {})", rest.join(", ")),
            None => problem,
        })
        .collect())
}

/// The broken links of one built page; `ids` caches the ids of the pages looked into.
fn page_link_problems(
    root: &Path,
    build: &Path,
    page: &Path,
    html: &str,
    ids: &mut HashMap<PathBuf, HashSet<String>>,
) -> Vec<String> {
    let tags = scan_tags(html);
    let base = tags
        .iter()
        .find(|t| t.name == "base")
        .and_then(|t| t.attr("href"))
        .unwrap_or("");
    let mut problems = Vec::new();
    for tag in tags.iter().filter(|t| t.name != "base") {
        for link in ["href", "src"].into_iter().filter_map(|a| tag.attr(a)) {
            let Some(target) = local_target(link) else {
                continue;
            };
            let Some(file) = resolve(build, page, base, &target.path) else {
                problems.push(format!("`{link}` points outside the book"));
                continue;
            };
            if !file.is_file() {
                problems.push(format!(
                    "broken link `{link}`: {} does not exist",
                    rel(root, &file)
                ));
                continue;
            }
            let Some(fragment) = target.fragment else {
                continue;
            };
            if file.extension().is_none_or(|e| e != "html") {
                continue;
            }
            let page_ids = ids.entry(file.clone()).or_insert_with(|| {
                page_ids(&scan_tags(
                    &std::fs::read_to_string(&file).unwrap_or_default(),
                ))
            });
            if !page_ids.contains(&fragment) {
                problems.push(format!(
                    "broken link `{link}`: {} has no id=\"{fragment}\"",
                    rel(root, &file)
                ));
            }
        }
    }
    problems
}

/// An HTML start tag: its lowercase name and its attributes (entities in values decoded).
#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The start tags of `html`, skipping comments and the contents of `<script>` and `<style>`
/// (whose `href="` would be code, not links). Text between tags is not needed: code listings in
/// the text are entity-escaped by mdBook and so never look like tags.
fn scan_tags(html: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(lt) = html[i..].find('<').map(|p| p + i) {
        if html[lt..].starts_with("<!--") {
            i = html[lt..].find("-->").map_or(html.len(), |p| lt + p + 3);
            continue;
        }
        let (tag, end) = parse_tag(html, lt + 1);
        i = end;
        let Some(tag) = tag else { continue };
        if tag.name == "script" || tag.name == "style" {
            let close = format!("</{}", tag.name);
            i = html[i..]
                .to_ascii_lowercase()
                .find(&close)
                .map_or(html.len(), |p| i + p);
        }
        tags.push(tag);
    }
    tags
}

/// Parses the tag whose name starts at `at`; returns it (`None` for end tags, doctypes and
/// stray `<`) and the offset after it.
fn parse_tag(html: &str, at: usize) -> (Option<Tag>, usize) {
    let bytes = html.as_bytes();
    let name_end = (at..bytes.len())
        .find(|&j| !bytes[j].is_ascii_alphanumeric())
        .unwrap_or(bytes.len());
    if name_end == at {
        return (None, at);
    }
    let mut tag = Tag {
        name: html[at..name_end].to_ascii_lowercase(),
        attrs: Vec::new(),
    };
    let mut j = name_end;
    loop {
        while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b'/') {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] == b'>' {
            return (Some(tag), j + 1);
        }
        let name_start = j;
        while j < bytes.len()
            && !bytes[j].is_ascii_whitespace()
            && !matches!(bytes[j], b'=' | b'>' | b'/')
        {
            j += 1;
        }
        let name = html[name_start..j].to_ascii_lowercase();
        let mut value = String::new();
        if bytes.get(j) == Some(&b'=') {
            j += 1;
            let quote = bytes.get(j).copied().filter(|q| *q == b'"' || *q == b'\'');
            let start = j + usize::from(quote.is_some());
            let end = match quote {
                Some(q) => (start..bytes.len())
                    .find(|&k| bytes[k] == q)
                    .unwrap_or(bytes.len()),
                None => (start..bytes.len())
                    .find(|&k| bytes[k].is_ascii_whitespace() || bytes[k] == b'>')
                    .unwrap_or(bytes.len()),
            };
            value = decode_entities(&html[start..end]);
            j = end + usize::from(quote.is_some());
        }
        tag.attrs.push((name, value));
    }
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The ids a page offers to `#fragment` links: every `id`, and `name` on `<a>`.
fn page_ids(tags: &[Tag]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for tag in tags {
        ids.extend(tag.attr("id").map(str::to_string));
        if tag.name == "a" {
            ids.extend(tag.attr("name").map(str::to_string));
        }
    }
    ids
}

/// A link to a file of the book: its path (percent-decoded) and fragment.
#[derive(Debug, PartialEq)]
struct LocalTarget {
    path: String,
    fragment: Option<String>,
}

/// The book file a link points at, or `None` for links we do not check: other sites
/// (`scheme:` or `//host`), `#fragment`-only and empty links.
fn local_target(link: &str) -> Option<LocalTarget> {
    let link = link.trim();
    let scheme = link.split(['/', '?', '#']).next().unwrap_or("");
    if link.is_empty() || link.starts_with('#') || link.starts_with("//") || scheme.contains(':') {
        return None;
    }
    let (rest, fragment) = match link.split_once('#') {
        Some((rest, f)) => (rest, Some(percent_decode(f))),
        None => (link, None),
    };
    let path = rest.split('?').next().unwrap_or("");
    Some(LocalTarget {
        path: percent_decode(path),
        fragment: fragment.filter(|f| !f.is_empty()),
    })
}

/// The file `path` names, as linked from `page` (with `<base href>` `base`, possibly empty),
/// within `build`; a directory means its `index.html`. `None` if it leaves `build`.
fn resolve(build: &Path, page: &Path, base: &str, path: &str) -> Option<PathBuf> {
    let page_dir = page.parent()?.strip_prefix(build).ok()?;
    let dir = if base.starts_with('/') {
        PathBuf::from(base.trim_start_matches('/'))
    } else {
        page_dir.join(base)
    };
    let joined = if path.starts_with('/') {
        PathBuf::from(path.trim_start_matches('/'))
    } else {
        dir.join(path)
    };
    let file = build.join(normalize(&joined)?);
    Some(if file.is_dir() || path.ends_with('/') {
        file.join("index.html")
    } else {
        file
    })
}

/// Decodes `%XX` escapes; malformed ones are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed by the caller.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-book-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Links to other sites and #-only links are skipped; local ones are decoded and split.
    #[test]
    fn classifies_links() {
        for skipped in [
            "https://x.org/a",
            "mailto:a@b",
            "#top",
            "//cdn/x.js",
            "data:image/png;base64,AA",
            "",
        ] {
            assert_eq!(local_target(skipped), None, "{skipped}");
        }
        assert_eq!(
            local_target("fig%20ures/a.svg?v=2#S%C3%A9ction"),
            Some(LocalTarget {
                path: "fig ures/a.svg".into(),
                fragment: Some("Séction".into())
            })
        );
        assert_eq!(
            local_target("a.html#"),
            Some(LocalTarget {
                path: "a.html".into(),
                fragment: None
            })
        );
    }

    /// Tags and attributes are read from HTML; `href=` inside scripts and comments is ignored.
    #[test]
    fn scans_tags_not_scripts() {
        let html = r#"<!DOCTYPE html><!-- <a href="c.html"> --><a class=x HREF='a.html?x=1&amp;y=2'>t</a>
<script src="s.js">var s = '<a href="b.html">';</script><img src=i.png><h2 id="h">"#;
        let tags = scan_tags(html);
        let links: Vec<_> = tags
            .iter()
            .filter_map(|t| t.attr("href").or(t.attr("src")))
            .collect();
        assert_eq!(links, ["a.html?x=1&y=2", "s.js", "i.png"]);
        assert!(page_ids(&tags).contains("h"));
    }

    /// In a built book, a missing file, a missing #fragment on another page and a link out of
    /// the book are reported once, on the chapter's source, with the pages that repeat them;
    /// good links, `<base href="/">` pages and directories are not reported.
    #[test]
    fn reports_broken_built_links() {
        let root = temp_dir("links");
        let (src, build) = (root.join("src"), root.join("build"));
        std::fs::create_dir_all(build.join("sub/dir")).unwrap();
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/c.md"), "").unwrap();
        std::fs::write(build.join("sub/dir/index.html"), "").unwrap();
        std::fs::write(build.join("a.svg"), "<svg/>").unwrap();
        std::fs::write(build.join("b.html"), r#"<h1 id="intro">B</h1>"#).unwrap();
        std::fs::write(
            build.join("404.html"),
            r#"<base href="/"><a href="b.html#intro">ok</a>"#,
        )
        .unwrap();
        let chapter = r##"<a href="../b.html#intro">ok</a><a href="dir/">ok</a><img src="/a.svg"><a href="#anything">ok</a>
<a href="../b.html#gone">bad</a><img src="figures/nope.svg"><a href="../../etc.html">bad</a><img src="figures/nope.svg">"##;
        std::fs::write(build.join("sub/c.html"), chapter).unwrap();
        // mdBook's print page repeats the chapter; its problems are named once.
        std::fs::write(build.join("sub/print.html"), chapter).unwrap();
        let problems = check_built(&root, &src, &build).unwrap();
        assert_eq!(
            problems,
            [
                "src/sub/c.md: broken link `../b.html#gone`: build/b.html has no id=\"gone\" (also on build/sub/print.html)",
                "src/sub/c.md: broken link `figures/nope.svg`: build/sub/figures/nope.svg does not exist (also on build/sub/print.html)",
                "src/sub/c.md: `../../etc.html` points outside the book (also on build/sub/print.html)",
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
