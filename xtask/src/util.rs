//! Small helpers shared by the commands: paths, file walks, formatting.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
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
