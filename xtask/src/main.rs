//! `cargo x`: the course runner. See the README's maintainer section for the design.

mod bench;
mod book;
mod ci;
mod compare_code;
mod demo;
mod learner;
mod learner_crate;
mod manifest;
mod markers;
mod planted;
mod repair;
mod repl_check;
mod scratch;
mod sync;
mod testrun;
mod util;
mod verify;

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
    /// Check the starter: fmt --check, build, the copied tests, clippy; a per-chapter table
    /// with every failing test and its message.
    Scheck {
        #[command(flatten)]
        chapter: MaybeChapter,
        /// Run only the copied tests whose name contains NAME, with their whole output.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["week", "day"])]
        test: Option<String>,
    },
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
    Ci {
        /// The long form: verify for 5 minutes, and the full crash and corruption sweeps
        /// (`MINI_LSM_FULL=1`).
        #[arg(long)]
        full: bool,
    },
    /// Random operation sequences against a model; a failure is shrunk, saved and printed as a
    /// test. Uses the operations of every chapter up to your latest one with copied tests,
    /// passing or not (or --upto).
    Verify {
        /// The engine: starter (yours) or ref.
        #[arg(long, default_value = "starter")]
        engine: String,
        /// The last chapter whose operations to use, e.g. week1_day6 (default: your latest
        /// chapter with copied tests; every chapter for the reference).
        #[arg(long)]
        upto: Option<String>,
        /// Stop after this many cases.
        #[arg(long)]
        cases: Option<u64>,
        /// The seed of the first case (printed by every run, to replay it).
        #[arg(long)]
        seed: Option<u64>,
        /// Stop after this long, e.g. 30s or 10m (the default: 30s, unless --cases is given).
        #[arg(long)]
        time: Option<String>,
        /// Concurrency mode: this many threads, half writers, half readers, with the engine's
        /// background threads.
        #[arg(long)]
        threads: Option<usize>,
        /// With --threads: how many runs.
        #[arg(long, requires = "threads")]
        runs: Option<usize>,
        /// Maintainers: check that verify finds and shrinks bugs planted in a copy of the
        /// reference, and that a plain verify finds one in a learner's crate whose chapter's
        /// tests fail (run by `cargo x ci`).
        #[arg(long, conflicts_with_all = ["threads", "upto", "cases", "seed"])]
        planted: bool,
    },
    /// Your engine against the reference on the same random operations (or, with --code, your
    /// code beside the reference's for one chapter's tasks).
    Compare {
        /// The week.
        #[arg(long)]
        week: u32,
        /// The day.
        #[arg(long)]
        day: u32,
        /// Show your code beside the reference's for this chapter's tasks (a spoiler).
        #[arg(long)]
        code: bool,
        /// With --code: do not ask first.
        #[arg(long, requires = "code")]
        force: bool,
        /// Stop after this many cases.
        #[arg(long, conflicts_with = "code")]
        cases: Option<u64>,
        /// The seed of the first case.
        #[arg(long, conflicts_with = "code")]
        seed: Option<u64>,
        /// Stop after this long, e.g. 30s.
        #[arg(long, conflicts_with = "code")]
        time: Option<String>,
    },
    /// Check and build the book; --serve serves it, --check drives headless Chromium over it.
    Book {
        /// Serve the book with live reload on http://127.0.0.1:PORT; it rebuilds when a page or
        /// the reference changes. Ctrl-C stops it.
        #[arg(long)]
        serve: bool,
        /// With --serve: the port to listen on.
        #[arg(long, default_value_t = 3000, requires = "serve")]
        port: u16,
        /// Load every page in headless Chromium and save screenshots.
        #[arg(long)]
        check: bool,
    },
    /// The book's mdBook preprocessor: mdBook runs it (see book/book.toml), not you.
    #[command(hide = true)]
    BookPreprocess {
        /// `supports RENDERER`, or nothing.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the benchmark workload (release build) on the reference, the starter, fjall and/or
    /// RocksDB.
    Bench {
        /// Engines, comma-separated, run in this order: ref, starter, both (ref,starter), fjall
        /// or rocksdb (production engines, compiled only when named; rocksdb needs libclang).
        #[arg(long, default_value = "ref")]
        engine: String,
        /// Phases, comma-separated (default: all six; `fillsync`, puts synced before they return
        /// from 1, 4 and 16 threads, runs only when named).
        #[arg(long)]
        benchmarks: Option<String>,
        /// The number of keys (default 1,000,000).
        #[arg(long)]
        num: Option<u64>,
        /// Run the course engines with this compaction strategy: simple, tiered or leveled
        /// (default settings), for engines that have finished week 2. It also writes their log
        /// to the OS at every write, the durability RocksDB and fjall give (see --wal).
        #[arg(long)]
        compaction: Option<String>,
        /// The course engines' log: each-batch (written to the OS before each write returns) or
        /// buffered (64 KiB in the process). Default: each-batch with --compaction, else buffered.
        #[arg(long)]
        wal: Option<String>,
    },
    /// Rebuild a damaged database's manifest from the files that verify, moving the others into
    /// `<path>/quarantine/` (never deleting). Runs the reference engine's repair, which reads the
    /// files of your engine too once it has week 2 day 7's checksums; --starter runs yours.
    Repair {
        /// The database directory.
        #[arg(long)]
        path: std::path::PathBuf,
        /// The database's compaction strategy: none, simple, tiered or leveled.
        #[arg(long, default_value = "none")]
        compaction: String,
        /// Report what would be done, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run your engine's repair (`mini-lsm-repair`) rather than the reference's.
        #[arg(long)]
        starter: bool,
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
    let root = util::root()?;
    let manifest = Manifest::load(&root)?;
    match cli.command {
        Cmd::CopyTest(c) => learner::copy_test(&root, &manifest, &manifest.select(c.week, c.day)?),
        Cmd::Scheck {
            test: Some(name), ..
        } => learner::scheck_test(&root, &manifest, &name),
        Cmd::Scheck { chapter: c, .. } => {
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
        Cmd::Ci { full } => ci::ci(&root, &manifest, full),
        Cmd::Verify {
            engine,
            upto,
            cases,
            seed,
            time,
            threads,
            runs,
            planted,
        } => {
            if planted {
                let problems =
                    planted::planted(&root, &manifest, time.as_deref().unwrap_or("30s"))?;
                if problems.is_empty() {
                    return Ok(());
                }
                anyhow::bail!("{}", problems.join("\n"));
            }
            let args = verify::VerifyArgs {
                engine,
                upto,
                budget: verify::Budget { cases, seed, time },
                threads,
                runs,
                summary: None,
            };
            verify::verify(&root, &manifest, &args)
        }
        Cmd::Compare {
            week,
            day,
            code,
            force,
            cases,
            seed,
            time,
        } => {
            let chapter = manifest.select_one(week, day)?;
            if code {
                compare_code::compare_code(&root, &manifest, chapter, force)
            } else {
                verify::compare(
                    &root,
                    &manifest,
                    chapter,
                    &verify::Budget { cases, seed, time },
                )
            }
        }
        Cmd::Book { serve, port, check } => {
            book::book(&root, &manifest, serve.then_some(port), check)
        }
        Cmd::BookPreprocess { args } => book::preprocess(&args),
        Cmd::Bench {
            engine,
            benchmarks,
            num,
            compaction,
            wal,
        } => {
            let course = bench::CourseSettings { compaction, wal };
            bench::bench(&root, &engine, benchmarks.as_deref(), num, &course)
        }
        Cmd::Repair {
            path,
            compaction,
            dry_run,
            starter,
        } => repair::repair(&root, &path, &compaction, dry_run, starter),
        Cmd::Demo { path } => demo::demo(&root, path),
    }
}
