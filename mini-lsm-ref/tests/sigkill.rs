// SPDX-License-Identifier: Apache-2.0
//! A real crash. A child process (this test binary, run again with an environment variable)
//! opens the engine with its write-ahead log on real files and writes numbered keys, calling
//! `sync` every few writes and printing the number of the last synced one. The test kills it with
//! SIGKILL once it has reported a random number of syncs (polling its output, never sleeping),
//! reopens the directory, and checks that every synced write is there and that the keys found are
//! a prefix of the ones written, each with its value.
//!
//! The flush thread runs in the child meanwhile (small memtables, a low memtable limit), so the
//! kill may also land in a freeze, a flush, or the deletion of a log.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mini_lsm::iterators::StorageIterator;
use mini_lsm::lsm_storage::{LsmStorageOptions, MiniLsm};

/// Set in the child's environment: the database directory.
const CHILD_DIR: &str = "MINI_LSM_SIGKILL_CHILD_DIR";
/// Set in the child's environment: the seed of its sync pattern.
const CHILD_SEED: &str = "MINI_LSM_SIGKILL_CHILD_SEED";
/// This test's name, to run it again as the child.
const TEST_NAME: &str = "test_sigkill_keeps_every_synced_write";

/// SplitMix64, as in the chapter tests.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `1..=n`.
    fn upto(&mut self, n: u64) -> u64 {
        1 + self.next_u64() % n
    }
}

fn key(n: u64) -> Vec<u8> {
    format!("key{n:08}").into_bytes()
}

fn value(n: u64) -> Vec<u8> {
    format!("value of {n};")
        .repeat(1 + (n % 5) as usize)
        .into_bytes()
}

/// The log on, small memtables, and a flush thread that flushes as soon as two memtables wait.
fn options() -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week1_day6_test();
    options.enable_wal = true;
    options.target_sst_size = 2 << 10;
    options.block_size = 512;
    options
}

/// The child: writes keys 0, 1, 2, ... and syncs every 1 to 8 writes, printing `synced <n>`
/// after each sync (n: the last key synced), until it is killed. Exits after a minute in case the
/// parent died.
fn child(dir: &Path, seed: u64) -> ! {
    let lsm = MiniLsm::open(dir, options()).expect("child: open the engine");
    let mut rng = Rng(seed);
    let mut stdout = std::io::stdout().lock();
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while Instant::now() < give_up {
        for _ in 0..rng.upto(8) {
            lsm.put(&key(n), &value(n)).expect("child: put");
            n += 1;
        }
        lsm.sync().expect("child: sync");
        writeln!(stdout, "synced {}", n - 1).expect("child: report");
        stdout.flush().expect("child: flush stdout");
    }
    std::process::exit(0)
}

/// The test's seed: `MINI_LSM_SEED` to replay, else the clock; printed.
fn test_seed() -> u64 {
    let seed = match std::env::var("MINI_LSM_SEED") {
        Ok(text) => text.trim().parse().expect("MINI_LSM_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    println!("seed = {seed} (replay with MINI_LSM_SEED={seed})");
    seed
}

/// Runs the child in `dir` until it reports `kill_after` syncs, then kills it with SIGKILL.
/// Returns the last synced key number it reported.
fn run_and_kill(dir: &Path, seed: u64, kill_after: u64) -> u64 {
    let log = dir.join("child.log");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.join("db"))
        .env(CHILD_SEED, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).expect("create the child's log"))
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let mut synced = None;
    let mut reports = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the child's output");
        if let Some(n) = line.strip_prefix("synced ") {
            synced = Some(n.parse::<u64>().expect("a key number"));
            reports += 1;
            if reports >= kill_after {
                break;
            }
        }
    }
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no `close`.
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    let Some(synced) = synced.filter(|_| reports >= kill_after) else {
        panic!(
            "the child stopped after {reports} of {kill_after} syncs ({status}); its stderr:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    synced
}

/// A child killed with SIGKILL keeps every synced write; what survives is a prefix of the writes.
#[test]
fn test_sigkill_keeps_every_synced_write() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let seed = std::env::var(CHILD_SEED).map_or(0, |s| s.parse().unwrap_or(0));
        child(Path::new(&dir), seed);
    }
    let seed = test_seed();
    let mut rng = Rng(seed);
    let full = std::env::var("MINI_LSM_FULL").is_ok_and(|v| v.trim() == "1");
    let rounds = if full { 20 } else { 4 };
    for round in 0..rounds {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kill_after = rng.upto(if full { 400 } else { 120 });
        let synced = run_and_kill(dir.path(), rng.next_u64(), kill_after);
        let lsm = MiniLsm::open(dir.path().join("db"), options()).expect("reopen after the kill");
        let mut iter = lsm.scan(Bound::Unbounded, Bound::Unbounded).expect("scan");
        let mut found = 0;
        while iter.is_valid() {
            assert_eq!(
                (iter.key(), iter.value()),
                (&key(found)[..], &value(found)[..]),
                "seed {seed}, round {round}: the keys found must be 0, 1, 2, ... with their values"
            );
            found += 1;
            iter.next().expect("scan");
        }
        assert!(
            found > synced,
            "seed {seed}, round {round}: key {synced} was synced, but only keys below {found} \
             survived the kill"
        );
        for n in [0, synced / 2, synced] {
            assert_eq!(lsm.get(&key(n)).unwrap().as_deref(), Some(&value(n)[..]));
        }
        println!(
            "round {round}: killed after {kill_after} syncs; key {synced} was the last synced, \
             keys 0..{found} survived; {} L0 SSTs",
            lsm.inner.snapshot().l0_sstables.len()
        );
        lsm.close().expect("close");
    }
}
