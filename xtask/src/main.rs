//! `cargo x`: the course runner. See the README's maintainer section for the design.

mod bench;
mod book;
mod ci;
mod demo;
mod learner;
mod manifest;
mod markers;
mod scratch;
mod sync;
mod testrun;
mod util;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::manifest::Manifest;

#[derive(Parser)]
#[command(name = "cargo x", about = "The mini-lsm course runner", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// `--week W [--day D]`.
#[derive(Args, Clone, Copy)]
struct Chapters {
    /// The week.
    #[arg(long)]
    week: u32,
    /// The day; every chapter of the week when left out.
    #[arg(long)]
    day: Option<u32>,
}

/// `[--week W --day D]`.
#[derive(Args, Clone, Copy)]
struct MaybeChapter {
    /// The week (with --day): check one chapter only.
    #[arg(long, requires = "day")]
    week: Option<u32>,
    /// The day (with --week).
    #[arg(long, requires = "week")]
    day: Option<u32>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Copy a chapter's tests (or a whole week's) and the harness into the starter.
    CopyTest(Chapters),
    /// Check the starter: fmt --check, build, the copied tests, clippy; a per-chapter table.
    Scheck(MaybeChapter),
    /// Progress over every chapter, and what to do next.
    Status,
    /// Remove the copied tests from the starter (a backup is kept).
    ResetTests,
    /// Fast-forward: write the reference solutions up to a chapter into the starter.
    Checkpoint {
        /// The week.
        #[arg(long)]
        week: u32,
        /// The day.
        #[arg(long)]
        day: u32,
        /// Overwrite your own code (a backup is kept in .checkpoint-backups/).
        #[arg(long)]
        force: bool,
    },
    /// Write the starter's sources from the reference's task markers (maintainers).
    Sync,
    /// fmt, clippy with warnings denied, and the tests of the reference and of xtask.
    Check,
    /// Every check of the course: the README's test command.
    Ci,
    /// Check and build the book; --serve serves it, --check drives headless Chromium over it.
    Book {
        /// Serve the book with live reload on http://127.0.0.1:3000.
        #[arg(long)]
        serve: bool,
        /// Load every page in headless Chromium and save screenshots.
        #[arg(long)]
        check: bool,
    },
    /// Run the benchmark workload (release build) on the reference and/or the starter.
    Bench {
        /// Engines, comma-separated: ref, starter, or both.
        #[arg(long, default_value = "ref")]
        engine: String,
        /// Phases, comma-separated (default: all six).
        #[arg(long)]
        benchmarks: Option<String>,
        /// The number of keys (default 1,000,000).
        #[arg(long)]
        num: Option<u64>,
    },
    /// Run the reference engine on a built-in demo.
    Demo {
        /// Keep the database here instead of a temporary directory.
        #[arg(long)]
        path: Option<std::path::PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        // `{:#}` prints the whole chain of context; a backtrace would only bury the message.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = util::root();
    let manifest = Manifest::load(&root)?;
    match cli.command {
        Cmd::CopyTest(c) => learner::copy_test(&root, &manifest, &manifest.select(c.week, c.day)?),
        Cmd::Scheck(c) => {
            let only = match (c.week, c.day) {
                (Some(w), Some(d)) => Some(manifest.select_one(w, d)?),
                _ => None,
            };
            learner::scheck(&root, &manifest, only)
        }
        Cmd::Status => learner::status(&root, &manifest),
        Cmd::ResetTests => learner::reset_tests(&root, &manifest),
        Cmd::Checkpoint { week, day, force } => {
            let upto = manifest.select_one(week, day)?;
            learner::checkpoint(&root, &manifest, upto, force)
        }
        Cmd::Sync => sync::sync(&root, &manifest),
        Cmd::Check => ci::check(&root),
        Cmd::Ci => ci::ci(&root, &manifest),
        Cmd::Book { serve, check } => book::book(&root, &manifest, serve, check),
        Cmd::Bench {
            engine,
            benchmarks,
            num,
        } => bench::bench(&root, &engine, benchmarks.as_deref(), num),
        Cmd::Demo { path } => demo::demo(&root, path),
    }
}
