//! `cargo x bench`: the course's benchmark workload, on the reference, the starter and fjall.
//!
//! The workload and its phases live in the `mini-lsm-bench` crate; this command builds it in
//! release mode with exactly the engines asked for (each is a feature of the crate, so fjall, a
//! production engine to compare against, is compiled only when named) and runs it once per
//! engine, each in its own process, so that every engine's memory figures are its own.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::step;

/// Runs the benchmark on `engines` (comma-separated, in this order: `ref`, `starter`, `both` for
/// the two, or `fjall`).
///
/// # Errors
/// If the benchmark cannot be built, or any engine fails (the others still run).
pub fn bench(root: &Path, engines: &str, benchmarks: Option<&str>, num: Option<u64>) -> Result<()> {
    let engines: Vec<&str> = engines
        .split(',')
        .flat_map(|e| match e.trim() {
            "both" => vec!["ref", "starter"],
            other => vec![other],
        })
        .collect();
    for engine in &engines {
        if !["ref", "starter", "fjall"].contains(engine) {
            bail!("unknown engine `{engine}`; use ref, starter, both or fjall, comma-separated");
        }
    }
    step("building the benchmark (release)");
    // One feature per engine; their order does not matter to cargo, the runs below keep `engines`'.
    let mut features: Vec<&str> = engines.clone();
    features.sort_unstable();
    features.dedup();
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "mini-lsm-bench"])
        .args(["--no-default-features", "--features", &features.join(",")])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("the benchmark does not build");
    }
    let binary = root.join("target/release/mini-lsm-bench");
    let mut failed = Vec::new();
    let all = "fillseq,fillrandom,readrandom,readmissing,scanall,overwrite";
    let wanted: Vec<&str> = benchmarks
        .unwrap_or(all)
        .split(',')
        .map(str::trim)
        .collect();
    let (fills, rest): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .partition(|p| matches!(**p, "fillseq" | "fillrandom"));
    for engine in engines {
        step(&format!("engine {engine}"));
        // Fills and reads run in separate processes, so that the memory a fill leaves in the
        // allocator does not count against the reads; they share one directory of databases.
        let workdir =
            std::env::temp_dir().join(format!("mini-lsm-bench-{engine}-{}", std::process::id()));
        let mut runs: Vec<(String, bool)> = Vec::new();
        let reads_need_fill = !rest.is_empty() && !fills.contains(&"fillrandom");
        let mut first: Vec<&str> = fills.clone();
        if reads_need_fill {
            first.push("fillrandom");
        }
        if !first.is_empty() {
            runs.push((first.join(","), false));
        }
        if !rest.is_empty() {
            runs.push((rest.join(","), true));
        }
        let mut ok = true;
        for (phases, reuse) in runs {
            let mut command = Command::new(&binary);
            command
                .args(["--engine", engine, "--benchmarks", &phases])
                .arg("--workdir")
                .arg(&workdir)
                .current_dir(root);
            if reuse {
                command.arg("--reuse");
            }
            if let Some(n) = num {
                command.args(["--num", &n.to_string()]);
            }
            if !command.status().context("running the benchmark")?.success() {
                ok = false;
                break;
            }
        }
        let _ = std::fs::remove_dir_all(&workdir);
        if !ok {
            failed.push(engine);
        }
    }
    if !failed.is_empty() {
        bail!("the benchmark failed on: {}", failed.join(", "));
    }
    Ok(())
}
