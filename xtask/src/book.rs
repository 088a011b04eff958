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

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;
use crate::util::{rel, step};

/// The mdBook release the book is written for; `cargo install` pins it.
const MDBOOK_VERSION: &str = "0.5.4";
/// Debian's Chromium, which `--check` installs if missing.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Pages the browser check photographs, into `target/book-screenshots/`.
const SCREENSHOT_PAGES: [&str; 2] = ["00-overview.html", "week1-06-write-path.html"];
/// Where `--serve` listens.
const SERVE_ADDR: (&str, u16) = ("127.0.0.1", 3000);
/// A ```rust fence with more non-blank lines than this must include its code from the source.
const MAX_HAND_WRITTEN_RUST_LINES: usize = 3;

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
// Tools: mdBook and Chromium

/// `mdbook` from PATH or `$CARGO_HOME/bin`, if it is a 0.5 release; otherwise installs it.
fn ensure_mdbook() -> Result<PathBuf> {
    let installed = cargo_home().join("bin/mdbook");
    let mut found = Vec::new();
    for candidate in [PathBuf::from("mdbook"), installed.clone()] {
        let Ok(out) = Command::new(&candidate).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && is_mdbook_05(&version) {
            return Ok(candidate);
        }
        found.push(format!("{} is {version}", candidate.display()));
    }
    if found.is_empty() {
        eprintln!("mdbook not found: installing mdbook {MDBOOK_VERSION} with `cargo install --locked` (one time, a few minutes)");
    } else {
        eprintln!(
            "mdbook 0.5 not found ({}): installing mdbook {MDBOOK_VERSION} with `cargo install --locked` (one time, a few minutes)",
            found.join(", ")
        );
    }
    let status = Command::new(cargo())
        .args(["install", "mdbook", "--version", MDBOOK_VERSION, "--locked"])
        .status()
        .context("running cargo install mdbook")?;
    if !status.success() {
        bail!("`cargo install mdbook --version {MDBOOK_VERSION} --locked` failed");
    }
    Ok(installed)
}

/// Whether `mdbook --version` output names a 0.5 release ("mdbook v0.5.4").
fn is_mdbook_05(version: &str) -> bool {
    version
        .split_whitespace()
        .nth(1)
        .is_some_and(|v| v.trim_start_matches('v').starts_with("0.5."))
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Debian's Chromium, installed with apt-get if missing (as root, or through sudo).
fn ensure_chromium() -> Result<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        return Ok(path);
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has_sudo = Command::new("sudo")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let sudo: &[&str] = match (is_root, has_sudo) {
        (true, _) => &[],
        (false, true) => &["sudo"],
        (false, false) => bail!(
            "{CHROMIUM} is missing and we are not root; install it with\n  \
             apt-get update && apt-get install -y --no-install-recommends chromium\nas root, then run this again"
        ),
    };
    eprintln!("{CHROMIUM} not found: installing Debian's chromium package (apt-get update; apt-get install -y --no-install-recommends chromium)");
    for args in [
        &["apt-get", "update"][..],
        &[
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "chromium",
        ],
    ] {
        let mut cmd = Command::new(sudo.first().copied().unwrap_or("env"));
        if !sudo.is_empty() {
            cmd.arg("env");
        }
        let status = cmd
            .arg("DEBIAN_FRONTEND=noninteractive")
            .args(args)
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("running {}", args.join(" ")))?;
        if !status.success() {
            bail!(
                "`{}{}` failed",
                sudo.iter().map(|s| format!("{s} ")).collect::<String>(),
                args.join(" ")
            );
        }
    }
    if !path.exists() {
        bail!("installed the chromium package, but {CHROMIUM} is still missing");
    }
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// Build, serve, browser

/// Runs `mdbook build`, echoing its output; a warning is as fatal as an error.
fn build(mdbook: &Path, book_dir: &Path) -> Result<()> {
    let out = Command::new(mdbook)
        .arg("build")
        .arg(book_dir)
        .env("NO_COLOR", "1")
        .output()
        .context("running mdbook build")?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{log}");
    if !out.status.success() {
        bail!("mdbook build failed ({}); see its output above", out.status);
    }
    let bad: Vec<&str> = log.lines().filter(|l| is_mdbook_complaint(l)).collect();
    if !bad.is_empty() {
        bail!(
            "mdbook build printed warnings or errors; the book must build cleanly:\n  {}",
            bad.join("\n  ")
        );
    }
    Ok(())
}

/// Whether an mdBook log line is a warning or an error (in 0.4's `[WARN]` or 0.5's `WARN` style).
fn is_mdbook_complaint(line: &str) -> bool {
    line.split_whitespace().take(3).any(|w| {
        matches!(
            w.trim_matches(['[', ']', ':']),
            "WARN" | "WARNING" | "ERROR"
        )
    })
}

/// The build directory, from `[build] build-dir` in `book/book.toml` (mdBook's default: `book`).
fn build_dir(book_dir: &Path) -> Result<PathBuf> {
    let path = book_dir.join("book.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let dir = config
        .get("build")
        .and_then(|b| b.get("build-dir"))
        .and_then(|d| d.as_str())
        .unwrap_or("book");
    Ok(book_dir.join(dir))
}

fn serve_book(mdbook: &Path, book_dir: &Path) -> Result<()> {
    let (host, port) = SERVE_ADDR;
    step(&format!(
        "serving the book at http://{host}:{port}/ (rebuilds on every change; Ctrl-C stops)"
    ));
    let status = Command::new(mdbook)
        .arg("serve")
        .arg(book_dir)
        .args(["--hostname", host, "--port", &port.to_string()])
        .status()
        .context("running mdbook serve")?;
    if !status.success() {
        bail!("mdbook serve failed ({status}); is port {port} already in use?");
    }
    Ok(())
}

/// Runs the `book-check` crate: every page in headless Chromium, plus the screenshots.
fn browser_check(root: &Path, build_dir: &Path) -> Result<()> {
    let chromium = ensure_chromium()?;
    let shots = root.join("target/book-screenshots");
    step("loading every page in headless Chromium (first run compiles book-check)");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["run", "-p", "book-check", "--", "--chromium"])
        .arg(&chromium)
        .arg("--build")
        .arg(build_dir)
        .arg("--screenshots")
        .arg(&shots);
    for page in SCREENSHOT_PAGES {
        cmd.args(["--shot", page]);
    }
    let status = cmd.status().context("running cargo run -p book-check")?;
    if !status.success() {
        bail!("the browser check failed; see the FAIL lines above");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (1) Sources

/// Every problem in `book/src`: includes, hand-pasted Rust, and SUMMARY against the manifest.
fn check_sources(root: &Path, src: &Path, manifest: &Manifest) -> Result<Vec<String>> {
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
struct Include {
    /// 1-based line in the page.
    line: usize,
    /// The directive as written, for messages.
    text: String,
    /// The file, relative to the page.
    path: String,
    /// What follows the first `:` after the path, if anything.
    selector: Option<String>,
}

/// The include directives of a page, skipping escaped ones (`\{{#include ...}}`).
fn find_includes(text: &str) -> Vec<Include> {
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

// ---------------------------------------------------------------------------------------------
// (3) Links of the built book

/// Every broken relative `href`/`src` in the HTML under `build`, and every `page#fragment` whose
/// page has no such id. A problem is named once, on the chapter's source page where there is one,
/// with the other pages that repeat it (mdBook copies chapters into `index.html` and `print.html`).
fn check_built(root: &Path, src: &Path, build: &Path) -> Result<Vec<String>> {
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

/// Every file with extension `ext` under `dir`, sorted.
fn walk_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
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

    /// A fresh directory under the system temp dir, removed by the caller.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-book-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

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

    /// Only mdBook 0.5 releases are accepted, and its warning and error lines are recognised.
    #[test]
    fn recognises_mdbook_version_and_complaints() {
        assert!(is_mdbook_05("mdbook v0.5.4"));
        assert!(!is_mdbook_05("mdbook v0.4.52"));
        assert!(!is_mdbook_05(""));
        assert!(is_mdbook_complaint(
            "2025-01-01 12:00:00 [WARN] (mdbook::x): oops"
        ));
        assert!(is_mdbook_complaint(
            " WARN mdbook_html: Failed to find anchor"
        ));
        assert!(is_mdbook_complaint("ERROR Rendering failed"));
        assert!(!is_mdbook_complaint(" INFO Book building has started"));
        assert!(!is_mdbook_complaint(
            " INFO Running the html backend: no WARNings"
        ));
    }
}
