//! Steps (2) and (4) need programs: mdBook, found on the machine or installed with `cargo install`,
//! then run to build or serve the book; and Chromium, installed with apt-get for `--check` and
//! driven by the `book-check` crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::preprocess::{own_command, COMMAND_ENV, LENIENT_ENV};
use crate::util::step;

/// The mdBook release the book is written for; `cargo install` pins it.
const MDBOOK_VERSION: &str = "0.5.4";
/// Debian's Chromium, which `--check` installs if missing.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Pages the browser check photographs, into `target/book-screenshots/`.
const SCREENSHOT_PAGES: [&str; 2] = ["00-overview.html", "week1-06-write-path.html"];
/// Where `--serve` listens (the port is an option).
const SERVE_HOST: &str = "127.0.0.1";

/// `mdbook` from PATH or `$CARGO_HOME/bin`, if it is a 0.5 release; otherwise installs it.
pub(super) fn ensure_mdbook() -> Result<PathBuf> {
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

/// Runs `mdbook build`, echoing its output; a warning is as fatal as an error.
pub(super) fn build(mdbook: &Path, book_dir: &Path) -> Result<()> {
    let out = Command::new(mdbook)
        .arg("build")
        .arg(book_dir)
        .env("NO_COLOR", "1")
        .env(COMMAND_ENV, own_command()?)
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
pub(super) fn build_dir(book_dir: &Path) -> Result<PathBuf> {
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

/// Runs `mdbook serve` until it ends. Listings come from this binary, leniently (a listing that
/// cannot be rendered shows a warning in its page), and mdBook also rebuilds when the reference
/// changes (`build.extra-watch-dirs`). mdBook is tied to this process: Ctrl-C reaches both, and
/// on Linux, if this process is killed, mdBook gets SIGTERM ([`die_with_parent`]), so no
/// orphaned server keeps the port.
pub(super) fn serve_book(mdbook: &Path, book_dir: &Path, port: u16) -> Result<()> {
    step(&format!(
        "serving the book at http://{SERVE_HOST}:{port}/ (rebuilds when a page or the reference changes; Ctrl-C stops)"
    ));
    let mut cmd = Command::new(mdbook);
    cmd.arg("serve")
        .arg(book_dir)
        .args(["--hostname", SERVE_HOST, "--port", &port.to_string()])
        .env(COMMAND_ENV, own_command()?)
        .env(LENIENT_ENV, "1");
    die_with_parent(&mut cmd);
    let status = cmd.status().context("running mdbook serve")?;
    if !status.success() {
        bail!("mdbook serve failed ({status}); is port {port} already in use? Try --port");
    }
    Ok(())
}

/// Asks the kernel to send `cmd`'s process SIGTERM when this process dies, however it dies
/// (`PR_SET_PDEATHSIG`). Without it, killing `cargo x book --serve` by its process id (as an IDE
/// or a script does) would leave mdBook serving, holding the port.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; it makes two system calls and allocates nothing on success.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // If the parent died before the prctl, no signal will come: give up now.
            if u32::try_from(libc::getppid()) != Ok(parent) {
                return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
            }
            Ok(())
        });
    }
}

/// Elsewhere Ctrl-C still stops both (the terminal signals the whole process group); a kill of
/// this process alone leaves mdBook running.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Runs the `book-check` crate: every page in headless Chromium, plus the screenshots.
pub(super) fn browser_check(root: &Path, build_dir: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
