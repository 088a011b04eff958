//! Small helpers shared by the commands: finding the checkout and its target directory, running
//! cargo with its progress shown, file walks, formatting.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The workspace root of the checkout `cargo x` runs in, found at run time (a path fixed at
/// build time would act on the old checkout after a move or copy, or when two checkouts share a
/// target directory and so one xtask binary).
///
/// # Errors
/// If neither cargo's `CARGO_MANIFEST_DIR` nor the current directory is inside a checkout.
pub fn root() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    find_root(manifest_dir.as_deref(), &cwd)
}

/// Whether `dir` is the root of a mini-lsm checkout: it holds the chapter manifest and the
/// workspace's `Cargo.toml`.
fn is_root(dir: &Path) -> bool {
    dir.join("course.toml").is_file() && dir.join("Cargo.toml").is_file()
}

/// The checkout's root: the parent of `manifest_dir` (what `cargo run` sets for xtask, in the
/// checkout whose xtask it built and ran), or else the nearest ancestor of `cwd` that is a
/// checkout's root.
///
/// # Errors
/// If neither leads to a checkout.
pub fn find_root(manifest_dir: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(parent) = manifest_dir.and_then(Path::parent) {
        if is_root(parent) {
            return Ok(parent.to_path_buf());
        }
    }
    match cwd.ancestors().find(|dir| is_root(dir)) {
        Some(dir) => Ok(dir.to_path_buf()),
        None => bail!(
            "{} is not inside a mini-lsm checkout (no course.toml beside a Cargo.toml in it or \
             above it): run `cargo x` in your clone of the course",
            cwd.display()
        ),
    }
}

#[derive(Deserialize)]
struct Metadata {
    target_directory: PathBuf,
}

/// The target directory cargo really uses for the workspace at `root`: `CARGO_TARGET_DIR`,
/// `build.target-dir` of a cargo config, or `<root>/target`, as `cargo metadata` reports it.
/// Asked once per root and process.
///
/// # Errors
/// If `cargo metadata` fails.
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(dir) = cache.lock().expect("not poisoned").get(root) {
        return Ok(dir.clone());
    }
    // From `root`, so that the cargo config files cargo reads are the checkout's.
    let output = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout)
        .context("reading the target directory from cargo metadata")?;
    let dir = metadata.target_directory;
    cache
        .lock()
        .expect("not poisoned")
        .insert(root.to_path_buf(), dir.clone());
    Ok(dir)
}

/// What one `cargo build` produced.
#[derive(Debug, Default)]
pub struct Build {
    /// Whether it succeeded.
    pub ok: bool,
    /// Each executable built: its target name and path (under the real target directory).
    pub executables: Vec<(String, PathBuf)>,
    /// The rendered compiler errors, in order.
    pub errors: Vec<String>,
    /// The packages (cargo's package ids) that had a compiler error.
    pub failed_packages: Vec<String>,
}

impl Build {
    /// The executable named `name`.
    ///
    /// # Errors
    /// If the build produced none of that name.
    pub fn executable(&self, name: &str) -> Result<PathBuf> {
        self.executables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, path)| path.clone())
            .with_context(|| format!("cargo built no executable named {name}"))
    }
}

#[derive(Deserialize)]
struct BuildMessage {
    reason: String,
    #[serde(default)]
    package_id: String,
    #[serde(default)]
    target: Option<BuildTarget>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct BuildTarget {
    name: String,
}

#[derive(Deserialize)]
struct Diagnostic {
    level: String,
    #[serde(default)]
    rendered: Option<String>,
}

/// Runs `cargo build <args>` in `dir` with cargo's own progress shown on stderr (the first build
/// of a crate takes minutes on two cores, and a silent one looks hung). Compiler errors are
/// printed as cargo prints them and kept; warnings are left out (they belong to `scheck`).
///
/// # Errors
/// If cargo cannot be run.
pub fn cargo_build(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Build> {
    let mut child = Command::new("cargo")
        .arg("build")
        .args(args)
        .args(["--message-format", "json-diagnostic-rendered-ansi"])
        .current_dir(dir)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running cargo build {}", args.join(" ")))?;
    let mut build = Build::default();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<BuildMessage>(&line) else {
            continue;
        };
        match message.reason.as_str() {
            "compiler-artifact" => {
                if let (Some(target), Some(exe)) = (message.target, message.executable) {
                    build.executables.push((target.name, exe));
                }
            }
            "compiler-message" => {
                let Some(diagnostic) = message.message else {
                    continue;
                };
                if diagnostic.level == "error" {
                    let rendered = diagnostic.rendered.unwrap_or_default();
                    let shown = if std::io::stderr().is_terminal() {
                        rendered.clone()
                    } else {
                        strip_ansi(&rendered)
                    };
                    let _ = write!(std::io::stderr(), "{shown}");
                    build.errors.push(strip_ansi(&rendered));
                    if !build.failed_packages.contains(&message.package_id) {
                        build.failed_packages.push(message.package_id);
                    }
                }
            }
            _ => {}
        }
    }
    build.ok = child.wait().context("running cargo build")?.success();
    Ok(build)
}

/// `text` without ANSI colour escapes (`ESC [ ... m`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `path` relative to the workspace root, for messages.
pub fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every `.rs` file under `dir`, sorted.
///
/// # Errors
/// On an I/O error.
pub fn walk_rs(dir: &Path) -> Result<Vec<PathBuf>> {
    walk_files(dir, "rs")
}

/// Every file with extension `ext` under `dir`, sorted.
///
/// # Errors
/// On an I/O error.
pub fn walk_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
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

/// Formats `files` in place with rustfmt (edition 2021), one by one so that `mod` declarations
/// are not followed into files we did not generate.
///
/// # Errors
/// If rustfmt is missing or fails.
pub fn run_rustfmt(files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let status = Command::new("rustfmt")
        .args(["--edition", "2021", "--config", "skip_children=true"])
        .args(files)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        // skip_children is unstable on older rustfmt; fall back to the plain call.
        _ => {
            let status = Command::new("rustfmt")
                .args(["--edition", "2021"])
                .args(files)
                .status()
                .context("running rustfmt (is the rustfmt component installed? `rustup component add rustfmt`)")?;
            if !status.success() {
                bail!("rustfmt failed on the generated sources");
            }
            Ok(())
        }
    }
}

/// Copies a directory tree.
///
/// # Errors
/// On an I/O error.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Prints a step of a long command, so the user sees progress.
pub fn step(message: &str) {
    eprintln!("==> {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake checkout: `course.toml` and `Cargo.toml` at its root, and `xtask/src` below.
    fn checkout(at: &Path) -> PathBuf {
        std::fs::create_dir_all(at.join("xtask/src")).unwrap();
        std::fs::write(at.join("course.toml"), "").unwrap();
        std::fs::write(at.join("Cargo.toml"), "[workspace]\n").unwrap();
        at.to_path_buf()
    }

    /// The root is found at run time: from cargo's `CARGO_MANIFEST_DIR` (xtask's directory in
    /// the checkout cargo ran), else from the current directory upwards; a moved checkout is
    /// found where it is now, and a directory outside any checkout is a clear error.
    #[test]
    fn the_root_is_found_at_run_time() {
        let tmp = tempfile::tempdir().unwrap();
        let a = checkout(&tmp.path().join("a"));
        let b = checkout(&tmp.path().join("b"));
        // cargo run in checkout b, from a directory of checkout a: b's xtask acts on b.
        assert_eq!(
            find_root(Some(&b.join("xtask")), &a.join("xtask/src")).unwrap(),
            b
        );
        // No manifest dir (the binary run by hand): the current directory's checkout.
        assert_eq!(find_root(None, &a.join("xtask/src")).unwrap(), a);
        assert_eq!(find_root(None, &b).unwrap(), b);
        // A stale manifest dir (a checkout moved away) falls back to the current directory.
        let gone = tmp.path().join("moved-away/xtask");
        assert_eq!(find_root(Some(&gone), &a).unwrap(), a);
        let outside = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        let err = find_root(None, &outside).unwrap_err().to_string();
        assert!(err.contains("not inside a mini-lsm checkout"), "{err}");
    }

    /// This checkout's target directory is the one cargo reports: `CARGO_TARGET_DIR` when set
    /// (as in CI and under nextest), else `<root>/target` or a config's `build.target-dir`.
    #[test]
    fn the_target_dir_is_cargos() {
        let root = root().unwrap();
        let dir = target_dir(&root).unwrap();
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(env) => assert_eq!(dir, root.join(env)),
            None => assert!(dir.is_dir(), "{}", dir.display()),
        }
    }

    /// Colour escapes are removed from compiler messages kept as text.
    #[test]
    fn ansi_escapes_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[0m\u{1b}[1m\u{1b}[38;5;9merror\u{1b}[0m: x"),
            "error: x"
        );
    }
}
