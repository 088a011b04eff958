//! `book-check`: loads every page of the built book in headless Chromium and fails on what a
//! reader would see go wrong: console errors, uncaught exceptions, failed requests, images that
//! did not load, solution spoilers that show no code. Saves screenshots of the pages asked for
//! (and of each one's first solution, opened). `cargo x book --check` runs it after
//! the static checks; it can also be run by hand:
//!
//! ```text
//! cargo run -p book-check -- --chromium /usr/bin/chromium --build book/build \
//!     --screenshots target/book-screenshots --shot 00-overview.html
//! ```

mod cdp;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long one page may take from navigation to its last check.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Chromium may take to start.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str =
    "usage: book-check --chromium PATH --build DIR --screenshots DIR [--shot PAGE.html]...";

struct Args {
    chromium: PathBuf,
    build: PathBuf,
    screenshots: PathBuf,
    shots: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let (mut chromium, mut build, mut screenshots, mut shots) = (None, None, None, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--chromium" => chromium = Some(PathBuf::from(value)),
            "--build" => build = Some(PathBuf::from(value)),
            "--screenshots" => screenshots = Some(PathBuf::from(value)),
            "--shot" => shots.push(value),
            _ => bail!("unknown argument {flag}\n{USAGE}"),
        }
    }
    match (chromium, build, screenshots) {
        (Some(chromium), Some(build), Some(screenshots)) => Ok(Args {
            chromium,
            build,
            screenshots,
            shots,
        }),
        _ => bail!("{USAGE}"),
    }
}

/// Every `.html` file under `dir`, as sorted `/`-separated paths relative to it.
fn html_pages(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                let rel = path.strip_prefix(dir)?.components();
                out.push(
                    rel.map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

fn run(args: &Args) -> Result<usize> {
    let pages = html_pages(&args.build)?;
    if pages.is_empty() {
        bail!(
            "no HTML pages under {}: build the book first",
            args.build.display()
        );
    }
    let mut failures = 0;
    for shot in &args.shots {
        if !pages.contains(shot) {
            eprintln!(
                "FAIL {shot}: asked for a screenshot, but the page is not in {}",
                args.build.display()
            );
            failures += 1;
        }
    }
    let origin = serve::start(args.build.clone())?;
    let mut browser = cdp::Browser::launch(&args.chromium, LAUNCH_TIMEOUT)?;
    let mut images = 0;
    let mut saved = Vec::new();
    for page in &pages {
        let shot = args.shots.contains(page).then(|| {
            args.screenshots
                .join(page.replace('/', "_"))
                .with_extension("png")
        });
        let report = browser
            .check_page(&format!("{origin}/{page}"), PAGE_TIMEOUT, shot.as_deref())
            .with_context(|| format!("checking {page}"))?;
        images += report.images;
        for failure in &report.failures {
            eprintln!("FAIL {page}: {failure}");
        }
        failures += report.failures.len();
        saved.extend(shot);
    }
    drop(browser);
    for path in &saved {
        println!("screenshot: {}", path.display());
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let spoiler = path.with_file_name(format!("{stem}-spoiler.png"));
        if spoiler.is_file() {
            println!("screenshot: {}", spoiler.display());
        }
    }
    println!(
        "book-check: {} pages checked, {images} images checked, {failures} failures",
        pages.len()
    );
    Ok(failures)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| run(&args));
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("book-check: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
