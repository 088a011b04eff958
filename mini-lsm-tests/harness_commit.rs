// SPDX-License-Identifier: Apache-2.0
//! Helpers of week 4's commit chapters (ordered publishing, group commit, log errors): a file
//! system that counts the log's appends and syncs and can hold one of them at a gate, so that a
//! test can line writers up behind a leader that is in the middle of its log write, and know
//! exactly which groups the leaders then write.
#![allow(
    dead_code,
    reason = "a chapter checkpoint compiles only the tests up to it; later ones use some helpers"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use parking_lot::{Condvar, Mutex};

use crate::fs::{FileSystem, MemFs, ReadableFile, WritableFile};
use crate::lsm_storage::LsmStorageInner;

/// How long a test waits for something another thread must do before it fails: generous, as
/// the machine may be busy; nothing waits this long when the engine is right.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Which log operation the gate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateOn {
    Append,
    Sync,
}

#[derive(Default)]
struct GateState {
    /// Hold the next log operation of this kind.
    armed: Option<GateOn>,
    /// How many operations have been held so far.
    held: usize,
    /// How many of them have been let go.
    released: usize,
}

/// Counts and a gate on the log files (`*.wal`) of a [`MemFs`].
#[derive(Default)]
pub(crate) struct LogGate {
    state: Mutex<GateState>,
    changed: Condvar,
    /// Appends to log files so far.
    pub(crate) appends: AtomicUsize,
    /// Syncs of log files so far.
    pub(crate) syncs: AtomicUsize,
}

impl LogGate {
    /// Holds the next log operation of kind `on` until [`Self::open`].
    pub(crate) fn arm(&self, on: GateOn) {
        self.state.lock().armed = Some(on);
    }

    /// Waits (bounded by [`PATIENCE`]) until `n` operations in all have been held at the gate.
    pub(crate) fn wait_held(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        let mut state = self.state.lock();
        while state.held < n {
            assert!(
                !self.changed.wait_until(&mut state, deadline).timed_out(),
                "no writer reached the log's gate within {PATIENCE:?}"
            );
        }
    }

    /// How many operations have been held at the gate so far.
    pub(crate) fn held(&self) -> usize {
        self.state.lock().held
    }

    /// Lets the oldest held operation go on.
    pub(crate) fn open(&self) {
        self.state.lock().released += 1;
        self.changed.notify_all();
    }

    /// The log's appends and syncs so far.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.appends.load(Ordering::SeqCst),
            self.syncs.load(Ordering::SeqCst),
        )
    }

    fn pass(&self, op: GateOn) {
        let mut state = self.state.lock();
        if state.armed != Some(op) {
            return;
        }
        state.armed = None;
        let number = state.held;
        state.held += 1;
        self.changed.notify_all();
        let deadline = Instant::now() + PATIENCE;
        while state.released <= number {
            assert!(
                !self.changed.wait_until(&mut state, deadline).timed_out(),
                "the gate was never opened"
            );
        }
    }
}

/// A [`MemFs`] whose log files pass through a [`LogGate`].
#[derive(Clone)]
pub(crate) struct GateFs {
    pub(crate) mem: MemFs,
    pub(crate) gate: Arc<LogGate>,
}

impl std::fmt::Debug for GateFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GateFs({:?})", self.mem)
    }
}

impl GateFs {
    pub(crate) fn new(mem: MemFs) -> Self {
        Self {
            mem,
            gate: Arc::new(LogGate::default()),
        }
    }

    fn wrap(&self, path: &Path, file: Box<dyn WritableFile>) -> Box<dyn WritableFile> {
        if path.extension().is_some_and(|ext| ext == "wal") {
            Box::new(GatedFile {
                file,
                gate: Arc::clone(&self.gate),
            })
        } else {
            file
        }
    }
}

struct GatedFile {
    file: Box<dyn WritableFile>,
    gate: Arc<LogGate>,
}

impl WritableFile for GatedFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.gate.pass(GateOn::Append);
        self.gate.appends.fetch_add(1, Ordering::SeqCst);
        self.file.append(data)
    }

    fn sync(&mut self) -> Result<()> {
        self.gate.pass(GateOn::Sync);
        self.gate.syncs.fetch_add(1, Ordering::SeqCst);
        self.file.sync()
    }
}

impl FileSystem for GateFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.mem.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(self.wrap(path, self.mem.create(path)?))
    }
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(self.wrap(path, self.mem.open_append(path)?))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn ReadableFile>> {
        self.mem.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.mem.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        self.mem.remove(path)
    }
    fn list(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        self.mem.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.mem.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.mem.exists(path)
    }
}

/// A write running on a thread of its own.
pub(crate) struct Writer<T> {
    done: std::sync::mpsc::Receiver<std::thread::Result<T>>,
    finished: Arc<std::sync::atomic::AtomicBool>,
}

/// Runs `write` on a thread of its own.
pub(crate) fn spawn_writer<T: Send + 'static>(
    write: impl FnOnce() -> T + Send + 'static,
) -> Writer<T> {
    let (tx, done) = std::sync::mpsc::channel();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(write));
        flag.store(true, Ordering::SeqCst);
        let _ = tx.send(result);
    });
    Writer { done, finished }
}

impl<T> Writer<T> {
    /// Its result, failing the test (rather than hanging) if it does not finish in time.
    pub(crate) fn join(self) -> T {
        match self.done.recv_timeout(PATIENCE) {
            Ok(Ok(value)) => value,
            Ok(Err(_)) => panic!("the writer panicked"),
            Err(_) => panic!("a writer did not return within {PATIENCE:?}"),
        }
    }

    /// Whether it has finished (without waiting, and without taking its result).
    pub(crate) fn is_done(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Its result if it has returned (without waiting); `None` if it is still running.
    pub(crate) fn try_join(&self) -> Option<T> {
        match self.done.try_recv() {
            Ok(Ok(value)) => Some(value),
            Ok(Err(_)) => panic!("the writer panicked"),
            Err(_) => None,
        }
    }
}

/// Waits (bounded by [`PATIENCE`], polling) until `n` writers are queued behind the leader.
pub(crate) fn wait_queued(inner: &LsmStorageInner, n: usize) {
    let queued = super::poll_until(PATIENCE, || inner.queued_writers() >= n);
    assert!(
        queued,
        "only {} of {n} writers queued within {PATIENCE:?}",
        inner.queued_writers()
    );
}
