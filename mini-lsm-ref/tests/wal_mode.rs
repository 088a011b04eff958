// SPDX-License-Identifier: Apache-2.0
//! The log's modes on real files: `WriteEachBatch` hands every acknowledged write to the OS, so
//! killing the process (SIGKILL: no destructor, no flush) loses none of them, without a sync;
//! `Buffered` keeps up to 64 KiB in the process.
//!
//! The child is this test binary, run again with an environment variable, as in `sigkill.rs`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mini_lsm::lsm_storage::{LsmStorageOptions, MiniLsm, WalMode};

/// Set in the child's environment: the database directory.
const CHILD_DIR: &str = "MINI_LSM_WAL_MODE_CHILD_DIR";
/// This test's name, to run it again as the child.
const TEST_NAME: &str = "test_write_each_batch_survives_sigkill_without_sync";

fn key(n: u64) -> Vec<u8> {
    format!("key{n:08}").into_bytes()
}

/// The log on in `mode`, memtables large enough that nothing is flushed.
fn options(mode: WalMode) -> LsmStorageOptions {
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.enable_wal = true;
    options.wal_mode = mode;
    options
}

/// The child: puts keys 0, 1, 2, ... and prints `acked <n>` after each put, never syncing,
/// until it is killed (or a minute passes, in case the parent died).
fn child(dir: &Path) -> ! {
    let lsm = MiniLsm::open(dir, options(WalMode::WriteEachBatch)).expect("child: open");
    let mut stdout = std::io::stdout().lock();
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while Instant::now() < give_up {
        lsm.put(&key(n), b"acknowledged").expect("child: put");
        writeln!(stdout, "acked {n}").expect("child: report");
        stdout.flush().expect("child: flush stdout");
        n += 1;
    }
    std::process::exit(0)
}

/// A child that writes each batch to the OS and never syncs is killed with SIGKILL after 300
/// acknowledged puts (a few KiB: far less than the 64 KiB a buffered log keeps in the process):
/// reopening finds every acknowledged key.
#[test]
fn test_write_each_batch_survives_sigkill_without_sync() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let log = dir.path().join("child.log");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, &db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let mut acked = None;
    for line in BufReader::new(stdout).lines() {
        if let Some(n) = line.unwrap().strip_prefix("acked ") {
            let n: u64 = n.parse().unwrap();
            acked = Some(n);
            if n >= 299 {
                break;
            }
        }
    }
    child.kill().expect("kill the child");
    child.wait().expect("reap the child");
    let acked = acked.unwrap_or_else(|| {
        panic!(
            "the child acknowledged nothing: {}",
            std::fs::read_to_string(&log).unwrap()
        )
    });
    let lsm = MiniLsm::open(&db, options(WalMode::WriteEachBatch)).unwrap();
    for n in 0..=acked {
        assert_eq!(
            lsm.get(&key(n)).unwrap().as_deref(),
            Some(&b"acknowledged"[..]),
            "key {n} was acknowledged (up to {acked}) but lost by the kill"
        );
    }
    lsm.close().unwrap();
}

/// After one put, the log file holds the record in `WriteEachBatch` mode and nothing yet in
/// `Buffered` mode (neither synced).
#[test]
fn test_modes_decide_when_a_put_reaches_the_file() {
    for (mode, reached) in [(WalMode::Buffered, false), (WalMode::WriteEachBatch, true)] {
        let dir = tempfile::tempdir().unwrap();
        let lsm = MiniLsm::open(dir.path(), options(mode)).unwrap();
        lsm.put(b"k", b"v").unwrap();
        let log_bytes: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
            .map(|path| std::fs::metadata(path).unwrap().len())
            .sum();
        assert_eq!(
            log_bytes > 0,
            reached,
            "{mode:?}: {log_bytes} bytes in the log"
        );
        lsm.close().unwrap();
    }
}
