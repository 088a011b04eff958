// SPDX-License-Identifier: Apache-2.0
//! The concurrency mode: writers and readers on one `MiniLsm` with its background threads.
//!
//! Each writer owns its keys (`w1-k07`: writer 1, key 7) and writes them increasing counters, so
//! a correct engine lets nobody see a key go back: a reader remembers the last counter it saw for
//! each key, and a smaller one, or the key missing after it was seen, is a violation. When the
//! writers are done every key must hold its writer's last counter, after a close and a reopen too
//! (from the manifest chapter on).
//!
//! ```text
//!   writer 0 ──put w0-k03=00000041──▶ ┌────────┐ ◀──get w0-k03── reader 0: 38 ≤ 41 ✓
//!   writer 1 ──put w1-k11=00000007──▶ │ engine │ ◀──scan w1-──── reader 1: each key ≥ last seen
//!                                     └────────┘   flush thread, compaction thread
//! ```
//!
//! From week 4 day 2 each writer's puts ask for a sync mode, drawn from its seed (one in sixteen
//! synced, about half written to the OS, the rest buffered), so that group commit puts writers of
//! every mode in one group, and a synced put waits for its group's sync.
//!
//! Thread interleavings cannot be replayed, so a run is repeated, and the table says how many
//! of them failed and the first failing seed (which fixes the keys and the configuration).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use std::sync::{Arc, Mutex};

use crate::engines::{open_concurrent, ConcurrentEngine};
use crate::gen::Mix;
use crate::ops::{BatchOp, Chapter, Config, Strategy, SyncMode};
use crate::run::{guarded, Step, Stub, OPS_RUN};

/// Keys per writer.
const KEYS: usize = 20;
/// Reads each reader does at least.
const MIN_READS: usize = 300;

/// SplitMix64: the keys a thread picks, from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn key(writer: usize, j: usize) -> Vec<u8> {
    format!("w{writer}-k{j:02}").into_bytes()
}

fn counter(value: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("a value that no writer wrote: {}", crate::text::show(value)))
}

/// One run's settings.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec {
    pub mix: Mix,
    pub writers: usize,
    pub readers: usize,
    /// Writes per writer.
    pub ops: usize,
    pub seed: u64,
}

impl RunSpec {
    /// The configuration of this run: a strategy and the log, as the seed picks among those the
    /// chapters done have.
    pub fn config(&self) -> Config {
        let strategies: Vec<Strategy> = Strategy::ALL
            .into_iter()
            .filter(|s| self.mix.has(s.needs()))
            .collect();
        Config::new(
            strategies[(self.seed % strategies.len() as u64) as usize],
            self.mix.has(Chapter::WAL) && (self.seed / 4) % 2 == 1,
        )
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum RunResult {
    /// No violation: `writes` and `reads` done.
    Ok { writes: usize, reads: usize },
    /// A violation or an error, said in a line.
    Failed(String),
    /// The engine reached a task stub.
    Stub(Stub),
}

/// What a thread ended with.
enum ThreadEnd {
    Done(usize),
    Failed(String),
    Stub(Stub),
}

fn from_step(who: &str, step: Step) -> ThreadEnd {
    match step {
        Step::Stub(stub) => ThreadEnd::Stub(stub),
        other => ThreadEnd::Failed(format!("{who}: {other}")),
    }
}

/// The state shared by a run's threads.
struct Shared {
    engine: Box<dyn ConcurrentEngine>,
    /// Set when the writers are done, or a thread failed.
    stop: AtomicBool,
    /// Each writer's last counter per key (0: never written), published after each write.
    written: Vec<Mutex<Vec<u64>>>,
}

fn writer(shared: &Shared, spec: &RunSpec, w: usize) -> ThreadEnd {
    let mut rng = Rng(spec.seed ^ (w as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d));
    let batches = spec.mix.has(Chapter::BATCH);
    for n in 1..=spec.ops as u64 {
        if shared.stop.load(Ordering::Relaxed) {
            return ThreadEnd::Done(n as usize - 1);
        }
        let value = format!("{n:08}").into_bytes();
        let mut keys = vec![rng.below(KEYS)];
        if batches && rng.below(10) == 0 {
            keys.extend((0..rng.below(3) + 1).map(|_| rng.below(KEYS)));
            keys.sort_unstable();
            keys.dedup();
        }
        let sync = spec
            .mix
            .has(Chapter::GROUP_COMMIT)
            .then(|| match rng.below(16) {
                0 => SyncMode::Fsync,
                1..=7 => SyncMode::Os,
                _ => SyncMode::Buffered,
            });
        let result = guarded(|| {
            if keys.len() == 1 {
                shared.engine.put(&key(w, keys[0]), &value, sync)
            } else {
                let batch: Vec<BatchOp> = keys
                    .iter()
                    .map(|&j| BatchOp::Put(key(w, j), value.clone()))
                    .collect();
                shared.engine.write_batch(&batch)
            }
        });
        if let Err(step) = result {
            return from_step(&format!("writer {w}, write #{n}"), step);
        }
        OPS_RUN.fetch_add(1, Ordering::Relaxed);
        let mut written = shared.written[w]
            .lock()
            .expect("no writer panics holding it");
        for &j in &keys {
            written[j] = n;
        }
    }
    ThreadEnd::Done(spec.ops)
}

fn reader(shared: &Shared, spec: &RunSpec, r: usize) -> ThreadEnd {
    let mut rng = Rng(spec.seed ^ (r as u64 + 101).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let scans = spec.mix.has(Chapter::FLUSH);
    let mut seen = vec![vec![0u64; KEYS]; spec.writers];
    let mut reads = 0;
    // Whether `value` for key j of writer w is a step back from what this reader saw before.
    let mut check = |w: usize, j: usize, value: Option<&[u8]>| -> Result<(), String> {
        let now = match value {
            Some(v) => counter(v)?,
            None => 0,
        };
        let before = seen[w][j];
        if now < before {
            let shown = |n: u64| {
                if n == 0 {
                    "absent".to_string()
                } else {
                    n.to_string()
                }
            };
            return Err(format!(
                "{} went back from {} to {} (per-key reads must be monotonic)",
                String::from_utf8_lossy(&key(w, j)),
                shown(before),
                shown(now)
            ));
        }
        seen[w][j] = now;
        Ok(())
    };
    // Until the writers are done, and at least a few hundred reads: with few writes, the
    // writers may be done before a reader starts.
    while !shared.stop.load(Ordering::Relaxed) || reads < MIN_READS {
        let w = rng.below(spec.writers);
        if scans && rng.below(8) == 0 {
            let prefix = format!("w{w}-").into_bytes();
            let entries = match guarded(|| shared.engine.scan_prefix(&prefix)) {
                Ok(entries) => entries,
                Err(step) => return from_step(&format!("reader {r}, scan"), step),
            };
            let mut next = 0;
            for (k, v) in &entries {
                let Some(j) = (next..KEYS).find(|&j| key(w, j) == *k) else {
                    return ThreadEnd::Failed(format!(
                        "reader {r}: the scan of prefix w{w}- returned {} out of order or unknown",
                        String::from_utf8_lossy(k)
                    ));
                };
                for missing in next..j {
                    if let Err(e) = check(w, missing, None) {
                        return ThreadEnd::Failed(format!("reader {r}, scan: {e}"));
                    }
                }
                if let Err(e) = check(w, j, Some(v)) {
                    return ThreadEnd::Failed(format!("reader {r}, scan: {e}"));
                }
                next = j + 1;
            }
        } else {
            let j = rng.below(KEYS);
            let value = match guarded(|| shared.engine.get(&key(w, j))) {
                Ok(value) => value,
                Err(step) => return from_step(&format!("reader {r}, get"), step),
            };
            if let Err(e) = check(w, j, value.as_deref()) {
                return ThreadEnd::Failed(format!("reader {r}, get: {e}"));
            }
        }
        reads += 1;
        OPS_RUN.fetch_add(1, Ordering::Relaxed);
    }
    ThreadEnd::Done(reads)
}

fn show_value(value: Option<&[u8]>) -> String {
    value.map_or("nothing".to_string(), |v| {
        String::from_utf8_lossy(v).to_string()
    })
}

/// Checks that every key holds its writer's last counter.
fn check_final(shared: &Shared, spec: &RunSpec, when: &str) -> Result<(), Step> {
    for w in 0..spec.writers {
        let written = shared.written[w].lock().expect("writers are done").clone();
        for (j, &n) in written.iter().enumerate() {
            let want = (n > 0).then(|| format!("{n:08}").into_bytes());
            let got = guarded(|| shared.engine.get(&key(w, j)))?;
            if got != want {
                return Err(Step::Error(format!(
                    "{when}: {} holds {}, but writer {w} last wrote {}",
                    String::from_utf8_lossy(&key(w, j)),
                    show_value(got.as_deref()),
                    show_value(want.as_deref())
                )));
            }
        }
    }
    Ok(())
}

/// The sum of the threads' counts, or the first failure among them.
fn total(ends: &[ThreadEnd]) -> Result<usize, RunResult> {
    let mut sum = 0;
    for end in ends {
        match end {
            ThreadEnd::Done(n) => sum += n,
            ThreadEnd::Failed(e) => return Err(RunResult::Failed(e.clone())),
            ThreadEnd::Stub(stub) => return Err(RunResult::Stub(stub.clone())),
        }
    }
    Ok(sum)
}

/// Runs one round of writers and readers.
pub fn run(engine_name: &str, spec: &RunSpec) -> RunResult {
    run_with(
        &|dir, config| open_concurrent(engine_name, dir, config),
        spec,
    )
}

/// Opens a concurrent engine in a directory.
pub type ConcurrentOpener<'a> = &'a dyn Fn(&Path, Config) -> Result<Box<dyn ConcurrentEngine>>;

/// [`run`], with the engine `open` opens.
pub fn run_with(open: ConcurrentOpener<'_>, spec: &RunSpec) -> RunResult {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => return RunResult::Failed(format!("cannot make a temporary directory: {e}")),
    };
    let config = spec.config();
    let open = || guarded(|| open(dir.path(), config));
    let engine = match open() {
        Ok(engine) => engine,
        Err(Step::Stub(stub)) => return RunResult::Stub(stub),
        Err(step) => return RunResult::Failed(format!("open: {step}")),
    };
    let shared = Arc::new(Shared {
        engine,
        stop: AtomicBool::new(false),
        written: (0..spec.writers)
            .map(|_| Mutex::new(vec![0; KEYS]))
            .collect(),
    });
    let spawn = |f: fn(&Shared, &RunSpec, usize) -> ThreadEnd, i: usize| {
        let (shared, spec) = (Arc::clone(&shared), *spec);
        std::thread::spawn(move || {
            let end = f(&shared, &spec, i);
            if !matches!(end, ThreadEnd::Done(_)) {
                shared.stop.store(true, Ordering::Relaxed);
            }
            end
        })
    };
    let writers: Vec<_> = (0..spec.writers).map(|w| spawn(writer, w)).collect();
    let readers: Vec<_> = (0..spec.readers).map(|r| spawn(reader, r)).collect();
    let join = |handles: Vec<std::thread::JoinHandle<ThreadEnd>>, who: &str| -> Vec<ThreadEnd> {
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(ThreadEnd::Failed(format!("a {who} panicked")))
            })
            .collect()
    };
    let writer_ends = join(writers, "writer");
    // The readers read until the writers are done.
    shared.stop.store(true, Ordering::Relaxed);
    let reader_ends = join(readers, "reader");
    let (writes, reads) = match (total(&writer_ends), total(&reader_ends)) {
        (Ok(writes), Ok(reads)) => (writes, reads),
        (Err(end), _) | (_, Err(end)) => return end,
    };
    let finish = || -> Result<(), Step> {
        check_final(&shared, spec, "after the writers finished")?;
        guarded(|| shared.engine.close())?;
        Ok(())
    };
    if let Err(step) = finish() {
        return match step {
            Step::Stub(stub) => RunResult::Stub(stub),
            other => RunResult::Failed(format!(
                "{other}\nthe engine's dump:\n{}",
                shared.engine.dump()
            )),
        };
    }
    if spec.mix.has(Chapter::REOPEN) {
        let written = shared
            .written
            .iter()
            .map(|m| Mutex::new(m.lock().expect("threads are done").clone()))
            .collect();
        // Every thread is joined: this drops the closed engine before another opens its files.
        drop(shared);
        let reopened = match open() {
            Ok(engine) => Shared {
                engine,
                stop: AtomicBool::new(true),
                written,
            },
            Err(step) => return RunResult::Failed(format!("reopen after close: {step}")),
        };
        let result = check_final(&reopened, spec, "after close and reopen")
            .and_then(|()| guarded(|| reopened.engine.close()));
        if let Err(step) = result {
            return RunResult::Failed(step.to_string());
        }
    }
    RunResult::Ok { writes, reads }
}
