//! `mini-lsm-bench`: runs the course's workload on one engine and prints one line per phase.
//!
//! `cargo x bench` runs it in release mode, once per engine, so that each engine has the process
//! (and its memory figures) to itself.

mod engines;
mod phases;
mod workload;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Parser;

use crate::engines::{CourseConfig, Strategy};
use crate::phases::Runner;
use crate::workload::Workload;

/// Command-line options.
#[derive(Parser)]
#[command(about = "Run the mini-lsm benchmark workload on one engine")]
struct Args {
    /// The engine: ref, starter, fjall or rocksdb (each built in with its cargo feature).
    #[arg(long, default_value = "ref")]
    engine: String,
    /// The phases to run, comma-separated, in the workload's order. `fillsync` (puts synced
    /// before they return, from 1, 4 and 16 threads) runs only when named.
    #[arg(
        long,
        default_value = "fillseq,fillrandom,readrandom,readmissing,scanall,overwrite"
    )]
    benchmarks: String,
    /// The number of keys.
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,
    /// Where the databases go (a fresh directory is made inside, and removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Use exactly this directory for the databases, and keep it: `cargo x bench` fills in one
    /// process and reads in another, so that each phase's memory figure is its own.
    #[arg(long, conflicts_with = "dir")]
    workdir: Option<PathBuf>,
    /// The fillrandom database is already in `--workdir`: read phases use it without a fill.
    #[arg(long, requires = "workdir")]
    reuse: bool,
    /// Run the course engines with this compaction strategy (simple, tiered or leveled, with
    /// its default settings), for engines that have finished week 2; without it they do not
    /// compact, as a week 1 engine must. It also writes the log to the OS at every write, as
    /// RocksDB and fjall do, unless `--wal buffered` says otherwise.
    #[arg(long)]
    compaction: Option<String>,
    /// The course engines' log: `each-batch` writes every write to the OS before it returns
    /// (a killed process loses none), `buffered` keeps up to 64 KiB in the process. Default:
    /// `each-batch` with `--compaction`, else `buffered`.
    #[arg(long)]
    wal: Option<String>,
}

const PHASES: [&str; 7] = [
    "fillsync",
    "fillseq",
    "fillrandom",
    "readrandom",
    "readmissing",
    "scanall",
    "overwrite",
];

fn main() {
    let args = Args::parse();
    if let Err(error) = run(&args) {
        eprintln!("error: engine={}: {error:#}", args.engine);
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let wanted: Vec<&str> = args.benchmarks.split(',').map(str::trim).collect();
    for phase in &wanted {
        if !PHASES.contains(phase) {
            bail!(
                "unknown benchmark `{phase}`; the benchmarks are {}",
                PHASES.join(", ")
            );
        }
    }
    let compaction = args
        .compaction
        .as_deref()
        .map(Strategy::parse)
        .transpose()?;
    let write_each_batch = match args.wal.as_deref() {
        None => compaction.is_some(),
        Some("each-batch") => true,
        Some("buffered") => false,
        Some(other) => bail!("unknown log mode `{other}`; use each-batch or buffered"),
    };
    let course = CourseConfig {
        compaction,
        write_each_batch,
    };
    let keep = args.workdir.is_some();
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = args.workdir.clone().unwrap_or_else(|| {
        base.join(format!(
            "mini-lsm-bench-{}-{}",
            args.engine,
            std::process::id()
        ))
    });
    std::fs::create_dir_all(&dir)?;
    let runner = Runner {
        engine: args.engine.clone(),
        workload: Workload::new(args.num),
        dir: dir.clone(),
        progress: std::io::stdout().is_terminal(),
        reuse: args.reuse,
        course,
    };
    // A panic (a learner's `todo!()`, say) is reported as this engine's error, not a crash; the
    // hook prints only where it happened, as the error line below says what.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        eprintln!("panic at {at}");
    }));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&wanted)));
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match outcome {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            bail!("the engine panicked: {message}")
        }
    }
}
