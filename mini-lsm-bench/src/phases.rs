//! The phases of the workload, their timing and their memory figures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engines::{open, open_counting, CourseConfig, Engine};
use crate::workload::{SplitMix64, Workload, KEY_LEN, VALUE_LEN};

/// The thread counts `fillsync` runs with, one line each.
const FILLSYNC_THREADS: [usize; 3] = [1, 4, 16];
/// The most puts `fillsync` makes per thread count: each costs a sync on one thread.
const FILLSYNC_MAX: u64 = 20_000;

/// Runs phases for one engine.
pub struct Runner {
    pub engine: String,
    pub workload: Workload,
    pub dir: PathBuf,
    /// Whether to draw progress bars (stdout is a terminal).
    pub progress: bool,
    /// Whether the fillrandom database is already in `dir` (from an earlier process).
    pub reuse: bool,
    /// How the course engines run.
    pub course: CourseConfig,
}

/// What a phase measured.
struct Figures {
    ops: u64,
    secs: f64,
    /// For writing phases: the final flush, the wait for background work, the bytes on disk, and
    /// the bytes the process wrote (to logs, SSTs and every other file) during the phase.
    writes: Option<Writes>,
}

/// What a writing phase measured besides its operations.
struct Writes {
    flush_secs: f64,
    settle_secs: f64,
    disk_bytes: u64,
    written_bytes: u64,
}

impl Runner {
    /// Runs the phases in `wanted`, in the workload's order.
    ///
    /// # Errors
    /// The first engine error, or a read that returned a wrong answer.
    pub fn run(&self, wanted: &[&str]) -> Result<()> {
        if !self.reuse {
            let config = match self.engine.as_str() {
                "ref" | "starter" => self.course.describe(),
                _ => "its own leveled compaction, log written to the OS at every write, never \
                      synced"
                    .to_string(),
            };
            println!("engine={}: {config}", self.engine);
        }
        if wanted.contains(&"fillsync") {
            for threads in FILLSYNC_THREADS {
                self.fill_sync(threads)?;
            }
        }
        let fillseq = self.dir.join("fillseq");
        let random = self.dir.join("fillrandom");
        let needs_random_db = wanted.iter().any(|p| !matches!(*p, "fillseq" | "fillsync"));
        if wanted.contains(&"fillseq") {
            self.phase("fillseq", || self.fill(&fillseq, false))?;
        }
        if wanted.contains(&"fillrandom") || (needs_random_db && !self.reuse) {
            self.phase("fillrandom", || self.fill(&random, true))?;
        }
        let reads = ["readrandom", "readmissing", "scanall"];
        if wanted
            .iter()
            .any(|p| reads.contains(p) || *p == "overwrite")
        {
            // Reads run on the fillrandom database after a close and reopen.
            let db = open(&self.engine, &random, &self.course)?;
            for phase in reads.iter().filter(|p| wanted.contains(p)) {
                self.phase(phase, || match *phase {
                    "readrandom" => self.read_random(&*db),
                    "readmissing" => self.read_missing(&*db),
                    _ => self.scan_all(&*db),
                })?;
            }
            if wanted.contains(&"overwrite") {
                self.phase("overwrite", || self.overwrite(&*db, &random))?;
            }
            db.close()?;
        }
        Ok(())
    }

    /// Runs one phase with peak-memory tracking and prints its line.
    fn phase(&self, name: &str, run: impl FnOnce() -> Result<Figures>) -> Result<()> {
        reset_peak_rss();
        let figures = run()?;
        let n = self.workload.n;
        // Every writing phase leaves exactly `n` live keys of user data.
        let user_bytes = n * (KEY_LEN + VALUE_LEN) as u64;
        let bytes = (figures.ops * (KEY_LEN + VALUE_LEN) as u64) as f64;
        let mut line = format!(
            "engine={} workload={name} num={n} secs={:.3} ops_per_sec={:.0} MB_per_sec={:.1} peak_rss_kb={}",
            self.engine,
            figures.secs,
            figures.ops as f64 / figures.secs,
            bytes / figures.secs / 1e6,
            peak_rss_kb()
        );
        if let Some(w) = figures.writes {
            line.push_str(&format!(
                " flush_secs={:.3} settle_secs={:.3} sustained_ops_per_sec={:.0} disk_bytes={} \
                 write_amp={:.2} space_amp={:.2}",
                w.flush_secs,
                w.settle_secs,
                figures.ops as f64 / (figures.secs + w.flush_secs + w.settle_secs),
                w.disk_bytes,
                w.written_bytes as f64 / (figures.ops * (KEY_LEN + VALUE_LEN) as u64) as f64,
                w.disk_bytes as f64 / user_bytes as f64,
            ));
        }
        println!("{line}");
        Ok(())
    }

    fn bar(&self, name: &str, len: u64) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len).with_message(name.to_string());
        bar.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    }

    /// fillseq / fillrandom: `n` puts into an empty database, then close.
    fn fill(&self, path: &Path, random: bool) -> Result<Figures> {
        let w = &self.workload;
        let order: Vec<u64> = if random {
            w.permutation()
        } else {
            (0..w.n).collect()
        };
        let written = bytes_written();
        let db = open(&self.engine, path, &self.course)?;
        let bar = self.bar(if random { "fillrandom" } else { "fillseq" }, w.n);
        let start = Instant::now();
        for (done, &i) in order.iter().enumerate() {
            db.put(&w.key(i), w.value(i, 0))?;
            if done % 4096 == 0 {
                bar.set_position(done as u64);
            }
        }
        let figures = finish_writes(&*db, start, w.n, path, written)?;
        bar.finish_and_clear();
        db.close()?;
        Ok(figures)
    }

    /// fillsync: `min(n, FILLSYNC_MAX)` puts into an empty database from `threads` threads, each
    /// acknowledged only once it is synced to the disk. Prints its own line: the rate, and the
    /// log syncs per acknowledged write (where the engine tells).
    fn fill_sync(&self, threads: usize) -> Result<()> {
        let w = &self.workload;
        let n = w.n.min(FILLSYNC_MAX);
        let path = self.dir.join(format!("fillsync-{threads}"));
        reset_peak_rss();
        let db = open_counting(&self.engine, &path, &self.course, true)?;
        let syncs_before = db.log_syncs();
        let start = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let workers: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let db = &db;
                    scope.spawn(move || -> Result<()> {
                        let mut i = t;
                        while i < n {
                            db.put_synced(&w.key(i), w.value(i, 0))?;
                            i += threads as u64;
                        }
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a fillsync thread panicked"))??;
            }
            Ok(())
        })?;
        let secs = start.elapsed().as_secs_f64();
        let syncs = match (syncs_before, db.log_syncs()) {
            (Some(before), Some(after)) => format!("{:.3}", (after - before) as f64 / n as f64),
            _ => "unknown".to_string(),
        };
        db.close()?;
        println!(
            "engine={} workload=fillsync threads={threads} num={n} secs={secs:.3} \
             ops_per_sec={:.0} fsyncs_per_write={syncs} peak_rss_kb={}",
            self.engine,
            n as f64 / secs,
            peak_rss_kb()
        );
        let _ = std::fs::remove_dir_all(&path);
        Ok(())
    }

    /// readrandom: `n` lookups of random existing keys, each checked.
    fn read_random(&self, db: &dyn Engine) -> Result<Figures> {
        let w = &self.workload;
        let mut rng = SplitMix64::new(7);
        let bar = self.bar("readrandom", w.n);
        let start = Instant::now();
        for done in 0..w.n {
            let i = rng.next_u64() % w.n;
            ensure!(
                db.get_is(&w.key(i), Some(w.value(i, 0)))?,
                "readrandom: key {i} is missing or has the wrong value"
            );
            if done % 4096 == 0 {
                bar.set_position(done);
            }
        }
        bar.finish_and_clear();
        Ok(Figures {
            ops: w.n,
            secs: start.elapsed().as_secs_f64(),
            writes: None,
        })
    }

    /// readmissing: 100,000 lookups of absent keys that fall inside the key range.
    fn read_missing(&self, db: &dyn Engine) -> Result<Figures> {
        let w = &self.workload;
        let ops = 100_000;
        let mut rng = SplitMix64::new(11);
        let start = Instant::now();
        for _ in 0..ops {
            let i = rng.next_u64() % w.n;
            ensure!(
                db.get_is(&w.missing_key(i), None)?,
                "readmissing: an absent key was found"
            );
        }
        Ok(Figures {
            ops,
            secs: start.elapsed().as_secs_f64(),
            writes: None,
        })
    }

    /// scanall: one full scan, checking count, order and values.
    fn scan_all(&self, db: &dyn Engine) -> Result<Figures> {
        let w = &self.workload;
        let mut next = 0u64;
        let mut expected = w.key(0);
        let start = Instant::now();
        db.scan_all(&mut |key, value| {
            ensure!(key == expected, "scanall: expected key {next} next");
            ensure!(
                value == w.value(next, 0),
                "scanall: key {next} has the wrong value"
            );
            next += 1;
            Workload::increment_key(&mut expected);
            Ok(())
        })?;
        ensure!(next == w.n, "scanall: saw {next} keys, expected {}", w.n);
        Ok(Figures {
            ops: w.n,
            secs: start.elapsed().as_secs_f64(),
            writes: None,
        })
    }

    /// overwrite: `n` puts of random existing keys with generation-1 values.
    fn overwrite(&self, db: &dyn Engine, path: &Path) -> Result<Figures> {
        let w = &self.workload;
        let mut rng = SplitMix64::new(9);
        let bar = self.bar("overwrite", w.n);
        let written = bytes_written();
        let start = Instant::now();
        for done in 0..w.n {
            let i = rng.next_u64() % w.n;
            db.put(&w.key(i), w.value(i, 1))?;
            if done % 4096 == 0 {
                bar.set_position(done);
            }
        }
        let figures = finish_writes(db, start, w.n, path, written)?;
        bar.finish_and_clear();
        Ok(figures)
    }
}

/// Ends a writing phase: the loop's time, then the final flush and the wait for background work,
/// timed apart, the bytes the database takes on disk, and the bytes the process wrote since
/// `written_before` (see [`bytes_written`]).
fn finish_writes(
    db: &dyn Engine,
    start: Instant,
    ops: u64,
    path: &Path,
    written_before: u64,
) -> Result<Figures> {
    let secs = start.elapsed().as_secs_f64();
    let flush_start = Instant::now();
    db.flush()?;
    let flush_secs = flush_start.elapsed().as_secs_f64();
    let settle_start = Instant::now();
    db.settle()?;
    let settle_secs = settle_start.elapsed().as_secs_f64();
    Ok(Figures {
        ops,
        secs,
        writes: Some(Writes {
            flush_secs,
            settle_secs,
            disk_bytes: disk_bytes(path),
            written_bytes: bytes_written().saturating_sub(written_before),
        }),
    })
}

/// The bytes this process has handed to `write(2)` and its kin so far, in all its threads
/// (`wchar` of `/proc/self/io`): for an engine, its logs, SSTs, manifest and other files (and
/// the few bytes of these figures). The same count for every engine, whatever it calls its files;
/// 0 where the kernel does not tell.
fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The bytes the files under `dir` take on disk, subdirectories included (the course engines keep
/// one flat directory; fjall keeps its tables in subdirectories). Allocated blocks, not file
/// lengths: fjall sets its journal file's length to 64 MiB up front (a sparse file), and the length
/// would count space that holds nothing.
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;

    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let entry = e.ok()?;
                    let meta = entry.metadata().ok()?;
                    Some(if meta.is_dir() {
                        disk_bytes(&entry.path())
                    } else {
                        meta.blocks() * 512
                    })
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Resets the peak resident set size (VmHWM) of this process.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set size (VmHWM) since the last reset, in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
