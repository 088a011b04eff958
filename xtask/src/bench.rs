//! `cargo x bench`: the course's benchmark workload, on the reference, the starter, fjall and
//! RocksDB.
//!
//! The workload and its phases live in the `mini-lsm-bench` crate; this command builds it in
//! release mode with exactly the engines asked for (each is a feature of the crate, so fjall and
//! RocksDB, production engines to compare against, are compiled only when named) and runs it once
//! per engine, each in its own process, so that every engine's memory figures are its own.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::step;

/// How the course engines run: `--compaction` and `--wal` of `mini-lsm-bench`.
#[derive(Debug, Default)]
pub struct CourseSettings {
    /// simple, tiered or leveled; none without.
    pub compaction: Option<String>,
    /// each-batch or buffered; the benchmark's default without.
    pub wal: Option<String>,
}

impl CourseSettings {
    /// The benchmark's arguments for these settings.
    ///
    /// # Errors
    /// An unknown strategy or log mode, named with the ones there are.
    fn args(&self) -> Result<Vec<String>> {
        let mut args = Vec::new();
        if let Some(strategy) = &self.compaction {
            if !["simple", "tiered", "leveled"].contains(&strategy.as_str()) {
                bail!("unknown compaction strategy `{strategy}`; use simple, tiered or leveled");
            }
            args.extend(["--compaction".to_string(), strategy.clone()]);
        }
        if let Some(wal) = &self.wal {
            if !["each-batch", "buffered"].contains(&wal.as_str()) {
                bail!("unknown log mode `{wal}`; use each-batch or buffered");
            }
            args.extend(["--wal".to_string(), wal.clone()]);
        }
        Ok(args)
    }
}

/// Runs the benchmark on `engines` (comma-separated, in this order: `ref`, `starter`, `both` for
/// the two, `fjall` or `rocksdb`), the course engines as `course` says.
///
/// # Errors
/// If the settings are unknown, the benchmark cannot be built, or any engine fails (the others
/// still run).
pub fn bench(
    root: &Path,
    engines: &str,
    benchmarks: Option<&str>,
    num: Option<u64>,
    course: &CourseSettings,
) -> Result<()> {
    let course_args = course.args()?;
    let engines: Vec<&str> = engines
        .split(',')
        .flat_map(|e| match e.trim() {
            "both" => vec!["ref", "starter"],
            other => vec![other],
        })
        .collect();
    for engine in &engines {
        if !["ref", "starter", "fjall", "rocksdb"].contains(engine) {
            bail!(
                "unknown engine `{engine}`; use ref, starter, both, fjall or rocksdb, \
                 comma-separated"
            );
        }
    }
    let rocksdb = engines.contains(&"rocksdb");
    step(if rocksdb {
        "building the benchmark (release; RocksDB's C++ sources take many minutes the first time)"
    } else {
        "building the benchmark (release)"
    });
    // One feature per engine; their order does not matter to cargo, the runs below keep `engines`'.
    let mut features: Vec<&str> = engines.clone();
    features.sort_unstable();
    features.dedup();
    let mut build = Command::new("cargo");
    build
        .args(["build", "--release", "-p", "mini-lsm-bench"])
        .args(["--no-default-features", "--features", &features.join(",")])
        .current_dir(root);
    if !rocksdb {
        if !build.status().context("running cargo build")?.success() {
            bail!("the benchmark does not build");
        }
    } else if !build_watching_for_libclang(build)? {
        bail!("the benchmark does not build");
    }
    let binary = crate::util::target_dir(root)?.join("release/mini-lsm-bench");
    let mut failed = Vec::new();
    let all = "fillseq,fillrandom,readrandom,readmissing,scanall,overwrite";
    let wanted: Vec<&str> = benchmarks
        .unwrap_or(all)
        .split(',')
        .map(str::trim)
        .collect();
    let (fills, rest): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .partition(|p| matches!(**p, "fillsync" | "fillseq" | "fillrandom"));
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
            command.args(&course_args);
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

/// Runs `build`, passing its errors through, and says what to install if they show that the
/// RocksDB bindings found no libclang. Returns whether the build succeeded.
///
/// # Errors
/// If cargo cannot be run.
fn build_watching_for_libclang(mut build: Command) -> Result<bool> {
    let color = if std::io::stderr().is_terminal() {
        "always"
    } else {
        "never"
    };
    let mut child = build
        .args(["--color", color])
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo build")?;
    let mut libclang = false;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading cargo's output")?;
            // clang-sys's "Unable to find libclang", or a libclang without its own headers.
            libclang |= line.contains("libclang") || line.contains("'stddef.h' file not found");
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
    let ok = child.wait().context("running cargo build")?.success();
    if !ok && libclang {
        eprintln!(
            "The RocksDB bindings need libclang to build: `apt-get install libclang-dev` on \
             Debian or Ubuntu (or set LIBCLANG_PATH to the directory of libclang.so)."
        );
    }
    Ok(ok)
}
