//! `cargo x repair`: rebuilds a damaged database's manifest, with the reference engine's repair
//! tool (or, with `--starter`, yours).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::step;

/// Runs `mini-lsm-repair-ref` (or the starter's `mini-lsm-repair`) on `path`.
///
/// # Errors
/// If the tool cannot be built or run, or the repair fails.
pub fn repair(
    root: &Path,
    path: &Path,
    compaction: &str,
    dry_run: bool,
    starter: bool,
) -> Result<()> {
    // The tool runs from the workspace root: a relative path is the caller's.
    let path =
        &std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let (package, bin) = if starter {
        ("mini-lsm-starter", "mini-lsm-repair")
    } else {
        ("mini-lsm-ref", "mini-lsm-repair-ref")
    };
    step(&format!(
        "building {bin} and repairing {}{}",
        path.display(),
        if dry_run {
            " (dry run: nothing changes)"
        } else {
            ""
        }
    ));
    let mut command = Command::new("cargo");
    command
        .args(["run", "--quiet", "-p", package, "--bin", bin, "--"])
        .arg("--path")
        .arg(path)
        .args(["--compaction", compaction])
        .current_dir(root);
    if dry_run {
        command.arg("--dry-run");
    }
    let status = command.status().with_context(|| format!("running {bin}"))?;
    if !status.success() {
        bail!("the repair failed ({status})");
    }
    Ok(())
}
