// SPDX-License-Identifier: Apache-2.0
//! Helpers of week 4's back-pressure chapters (stalls, the memory budget, metrics): engines on a
//! fake clock, and writers on threads of their own, so that a test can watch one stall, move
//! the clock, and see it return; and fail at a deadline rather than hang when an engine never
//! returns.
#![allow(
    dead_code,
    reason = "a chapter checkpoint compiles only the tests up to it; later ones use some helpers"
)]

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

use crate::clock::FakeClock;
use crate::compact::{CompactionOptions, SimpleLeveledCompactionOptions};
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, Pressure};

use super::mvcc::{install_l0, version};
use super::{freeze, poll_until};

/// How long a test waits, in real time, for something that should happen at once (a stalled
/// writer to show up, a woken one to return): generous, so that a loaded machine never fails it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// The stop bound of these tests: a minute, which the fake clock crosses in no time.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The delay per slowed write of these tests, distinct from any other duration in them.
pub(crate) const SLOWDOWN_DELAY: Duration = Duration::from_millis(7);

/// Options with the L0 triggers on: simple leveled compaction (by hand only, as
/// `LsmStorageInner` runs no thread) that compacts at 2 L0 SSTs, writers slowed at 3 and stopped
/// at 5, the stall bound [`STALL_TIMEOUT`], on `clock`.
pub(crate) fn l0_options(clock: &Arc<FakeClock>) -> LsmStorageOptions {
    let compaction = CompactionOptions::Simple(SimpleLeveledCompactionOptions {
        level0_file_num_compaction_trigger: 2,
        ..Default::default()
    });
    let mut options = LsmStorageOptions::default_for_week2_test(compaction);
    options.block_size = 256;
    options.l0_slowdown_writes_trigger = Some(3);
    options.l0_stop_writes_trigger = Some(5);
    options.l0_slowdown_delay = SLOWDOWN_DELAY;
    options.write_stall_timeout = STALL_TIMEOUT;
    options.clock = clock.clone();
    options
}

/// Opens an engine in a fresh temporary directory, shared so that writer threads can hold it.
#[track_caller]
pub(crate) fn open_shared(options: LsmStorageOptions) -> (tempfile::TempDir, Arc<LsmStorageInner>) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let inner = LsmStorageInner::open(dir.path(), options).expect("open the engine");
    (dir, Arc::new(inner))
}

/// Adds L0 SSTs, each of one key `l0-<i>`, until L0 holds `count`: put and flushed while the
/// engine takes writes, built and installed by hand once L0 stops them.
#[track_caller]
pub(crate) fn fill_l0(inner: &LsmStorageInner, count: usize) {
    while inner.snapshot().l0_sstables.len() < count {
        let snapshot = inner.snapshot();
        let key = format!("l0-{}", snapshot.l0_sstables.len());
        if matches!(inner.write_pressure(&snapshot), Pressure::Stop(_)) {
            let ts = inner.latest_commit_ts();
            install_l0(inner, &[version(key.as_bytes(), ts, b"v")]);
            continue;
        }
        inner
            .put(key.as_bytes(), b"v")
            .expect("a put that is not stopped");
        freeze(inner);
        inner
            .force_flush_next_imm_memtable()
            .expect("flush into L0");
    }
}

/// Runs `write` on a thread of its own. Not a scoped thread: if it never returns, the test
/// fails at its deadline instead of hanging.
pub(crate) fn spawn_write(
    inner: &Arc<LsmStorageInner>,
    write: impl FnOnce(&LsmStorageInner) -> Result<()> + Send + 'static,
) -> JoinHandle<Result<()>> {
    let inner = Arc::clone(inner);
    std::thread::spawn(move || write(&inner))
}

/// What a finished writer thread did, in words.
fn outcome(writer: JoinHandle<Result<()>>) -> String {
    match writer.join() {
        Ok(Ok(())) => "it succeeded".to_string(),
        Ok(Err(error)) => format!("it failed: {error:#}"),
        Err(_) => "it panicked".to_string(),
    }
}

/// Waits until `writer` sleeps in the engine's stall (`stalled_writers() == 1`). Panics, saying
/// what happened, if it returned instead or never got there.
#[track_caller]
pub(crate) fn await_stall(inner: &LsmStorageInner, writer: &mut Option<JoinHandle<Result<()>>>) {
    let handle = writer.as_ref().expect("a writer");
    let stalled = poll_until(PATIENCE, || {
        handle.is_finished() || inner.stalled_writers() == 1
    });
    if handle.is_finished() {
        let done = outcome(writer.take().expect("a writer"));
        panic!("the write returned instead of waiting for room ({done}); it must stop and wait");
    }
    assert!(
        stalled,
        "the write neither returned nor waited on the engine's flush signal within {PATIENCE:?} \
         (stalled_writers() stayed 0): a stopped write must wait in FlushSignal::wait_on"
    );
}

/// Advances `clock` by `by`, short of a stalled writer's deadline, and checks that the writer saw
/// the new time and went on waiting.
#[track_caller]
pub(crate) fn advance_short_of_deadline(
    clock: &FakeClock,
    by: Duration,
    writer: &mut Option<JoinHandle<Result<()>>>,
) {
    clock.advance(by);
    let handle = writer.as_ref().expect("a writer");
    let waiting = poll_until(PATIENCE, || {
        handle.is_finished() || clock.waits_since_advance() > 0
    });
    if handle.is_finished() {
        let done = outcome(writer.take().expect("a writer"));
        panic!(
            "after {:?} on the clock, short of the {STALL_TIMEOUT:?} bound, the stalled write \
             returned ({done}); it must wait for the whole bound",
            clock.elapsed()
        );
    }
    assert!(
        waiting,
        "the stalled write did not look at the clock again after it moved: it must wait on the \
         engine's clock (options.clock), not the system's"
    );
}

/// Waits for `writer` to return, for at most [`PATIENCE`]; returns what it returned.
#[track_caller]
pub(crate) fn join_within(writer: JoinHandle<Result<()>>, what: &str) -> Result<()> {
    assert!(
        poll_until(PATIENCE, || writer.is_finished()),
        "{what}, yet the write had not returned {PATIENCE:?} later"
    );
    writer.join().expect("the writer thread panicked")
}

/// Runs `work` on a thread of its own and returns its result, failing the test if it takes
/// longer than [`PATIENCE`]: for calls that a wrong engine would never return from (a write
/// that stalls forever on a fake clock, a loop that never ends).
#[track_caller]
pub(crate) fn within<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let handle = std::thread::spawn(work);
    assert!(
        poll_until(PATIENCE, || handle.is_finished()),
        "{what} did not finish within {PATIENCE:?}: something waited that should not"
    );
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
