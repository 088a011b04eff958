//! `cargo x demo`: the reference engine on a short scripted session.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::{cargo_build, step};

/// The demo session: fill, flush, overwrite and delete, look at the LSM state, read and scan.
const SCRIPT: &str = "\
fill 1000 1999
dump
flush
fill 1500 2499
del 1700
flush
put 1234 hello
dump
get 1234
get 1700
get 1800
scan 1995 2005
prefix 249
close
";

/// Runs the reference CLI on [`SCRIPT`] in `path`, or in a temporary directory removed after.
///
/// # Errors
/// If the CLI cannot be built or run, or exits with an error.
pub fn demo(root: &Path, path: Option<PathBuf>) -> Result<()> {
    let (dir, temporary) = match path {
        Some(p) => (p, false),
        None => (
            std::env::temp_dir().join(format!("mini-lsm-demo-{}", std::process::id())),
            true,
        ),
    };
    step("building the reference CLI");
    let build = cargo_build(
        root,
        &["-p", "mini-lsm-ref", "--bin", "mini-lsm-cli-ref"],
        &[],
    )?;
    if !build.ok {
        bail!("the reference CLI does not build (cargo's errors are above)");
    }
    let cli = build.executable("mini-lsm-cli-ref")?;
    step(&format!("running the demo in {}", dir.display()));
    let mut child = Command::new(cli)
        .arg("--path")
        .arg(&dir)
        .current_dir(root)
        .stdin(Stdio::piped())
        .spawn()
        .context("running the reference CLI")?;
    child
        .stdin
        .take()
        .context("the CLI's standard input")?
        .write_all(SCRIPT.as_bytes())?;
    let status = child.wait()?;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if !status.success() {
        bail!("the demo failed ({status})");
    }
    Ok(())
}
