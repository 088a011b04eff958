// SPDX-License-Identifier: Apache-2.0
//! An in-memory file system for tests, which can crash, tear a write, or fail an operation.
//!
//! It keeps two views of the namespace: `names`, what a running program sees, and `durable`, what
//! would be found after a power cut (updated by `sync_dir`). Each file keeps its bytes and how many
//! of them are synced. A crash keeps the durable names, each cut back to its synced bytes; with
//! `tear_last_write`, the file written last also keeps half of its unsynced tail, as a disk that
//! lost power in the middle of a write might.
//!
//! Every mutating operation (create, append, sync, rename, remove, sync_dir) is numbered from 0; a
//! [`Fault`] names the operation at which to fail or crash, so a test can crash a workload at each
//! of its write and sync points in turn.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, ensure, Result};
use parking_lot::Mutex;

use super::{FileSystem, ReadableFile, WritableFile};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Operation `n` fails with an I/O error; the ones after it succeed.
    FailOp(u64),
    /// The machine loses power just before operation `op`: it and everything after fail, and
    /// [`MemFs::crash_image`] returns what a reboot would find.
    CrashAt {
        /// The operation that does not happen.
        op: u64,
        /// Whether the file written last keeps half of its unsynced bytes.
        tear_last_write: bool,
    },
}

/// One file's bytes, and how many of them are durable.
#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    synced: usize,
}

type InodeRef = Arc<Mutex<Inode>>;

/// Guarded by `MemFs::state`: everything but file contents, which each inode guards itself. Lock
/// order: the state before an inode.
#[derive(Default)]
struct State {
    names: BTreeMap<PathBuf, InodeRef>,
    durable: BTreeMap<PathBuf, InodeRef>,
    dirs: BTreeSet<PathBuf>,
    /// Mutating operations so far.
    ops: u64,
    fault: Option<Fault>,
    /// Once crashed, the image a reboot finds; every operation fails from then on.
    crashed: Option<Image>,
    /// The file appended to last, for tearing.
    last_written: Option<InodeRef>,
}

/// The files a reboot finds: name to bytes.
#[derive(Clone, Debug, Default)]
struct Image {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: BTreeSet<PathBuf>,
}

/// An in-memory [`FileSystem`] with crash and fault injection.
#[derive(Default, Clone)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        write!(f, "MemFs({} files, {} ops)", state.names.len(), state.ops)
    }
}

impl State {
    /// Counts a mutating operation, firing the fault if it is due.
    fn tick(&mut self, what: &str, path: &Path) -> Result<()> {
        if self.crashed.is_some() {
            bail!("{}: {what} after the simulated crash", path.display());
        }
        let op = self.ops;
        self.ops += 1;
        match self.fault {
            Some(Fault::FailOp(n)) if n == op => {
                bail!(
                    "{}: {what} failed: injected I/O error at operation {op}",
                    path.display()
                )
            }
            Some(Fault::CrashAt {
                op: n,
                tear_last_write,
            }) if n == op => {
                self.crashed = Some(self.image(tear_last_write));
                bail!(
                    "{}: {what} failed: simulated crash at operation {op}",
                    path.display()
                )
            }
            _ => Ok(()),
        }
    }

    fn image(&self, tear_last_write: bool) -> Image {
        let files = self
            .durable
            .iter()
            .map(|(name, inode)| {
                let torn = tear_last_write
                    && self
                        .last_written
                        .as_ref()
                        .is_some_and(|last| Arc::ptr_eq(last, inode));
                let inode = inode.lock();
                let keep = if torn {
                    inode.synced + (inode.data.len() - inode.synced) / 2
                } else {
                    inode.synced
                };
                (name.clone(), inode.data[..keep].to_vec())
            })
            .collect();
        Image {
            files,
            dirs: self.dirs.clone(),
        }
    }

    fn check_alive(&self, path: &Path) -> Result<()> {
        ensure!(
            self.crashed.is_none(),
            "{}: read after the simulated crash",
            path.display()
        );
        Ok(())
    }
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the fault to inject (replacing any earlier one).
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().fault = fault;
    }

    /// The number of mutating operations so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Whether a `CrashAt` fault has fired.
    pub fn has_crashed(&self) -> bool {
        self.state.lock().crashed.is_some()
    }

    /// What a reboot finds after the crash: a new file system holding only durable bytes and
    /// names. `None` if no crash happened.
    pub fn crash_image(&self) -> Option<MemFs> {
        self.state.lock().crashed.clone().map(Self::from_image)
    }

    /// Cuts the power now: returns what a reboot would find, and makes this file system fail
    /// every later operation.
    pub fn crash_now(&self, tear_last_write: bool) -> MemFs {
        let mut state = self.state.lock();
        let image = state.image(tear_last_write);
        state.crashed = Some(image.clone());
        Self::from_image(image)
    }

    fn from_image(image: Image) -> MemFs {
        let mut state = State {
            dirs: image.dirs,
            ..State::default()
        };
        for (name, data) in image.files {
            let synced = data.len();
            let inode = Arc::new(Mutex::new(Inode { data, synced }));
            state.names.insert(name.clone(), inode.clone());
            state.durable.insert(name, inode);
        }
        MemFs {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The inode of an existing file, for `what` (an operation, named in the error).
    fn existing(&self, path: &Path, what: &str) -> Result<InodeRef> {
        let state = self.state.lock();
        state.check_alive(path)?;
        state
            .names
            .get(path)
            .cloned()
            .ok_or_else(|| anyhow!("{}: {what}: no such file", path.display()))
    }

    /// Replaces a file's whole content (durably), for corruption tests.
    pub fn overwrite(&self, path: &Path, data: Vec<u8>) {
        let mut state = self.state.lock();
        let synced = data.len();
        let inode = Arc::new(Mutex::new(Inode { data, synced }));
        state.names.insert(path.to_path_buf(), inode.clone());
        state.durable.insert(path.to_path_buf(), inode);
    }
}

struct MemReadable {
    inode: InodeRef,
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl ReadableFile for MemReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.state.lock().check_alive(&self.path)?;
        let inode = self.inode.lock();
        let start = offset as usize;
        let Some(src) = start
            .checked_add(buf.len())
            .and_then(|end| inode.data.get(start..end))
        else {
            bail!(
                "{}: read of {} bytes at offset {offset} runs past the end of the {}-byte file",
                self.path.display(),
                buf.len(),
                inode.data.len()
            );
        };
        buf.copy_from_slice(src);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.inode.lock().data.len() as u64
    }
}

struct MemWritable {
    inode: InodeRef,
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl WritableFile for MemWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let mut state = self.state.lock();
        state.tick("write", &self.path)?;
        state.last_written = Some(self.inode.clone());
        self.inode.lock().data.extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.state.lock().tick("sync", &self.path)?;
        let mut inode = self.inode.lock();
        inode.synced = inode.data.len();
        Ok(())
    }
}

impl FileSystem for MemFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let mut state = self.state.lock();
        state.check_alive(dir)?;
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let mut state = self.state.lock();
        let parent = path.parent().unwrap_or(Path::new(""));
        ensure!(
            state.dirs.contains(parent),
            "{}: create: no such directory {}",
            path.display(),
            parent.display()
        );
        ensure!(
            !state.names.contains_key(path),
            "{}: create: the file exists (files are created exclusively, never truncated)",
            path.display()
        );
        state.tick("create", path)?;
        let inode: InodeRef = Arc::default();
        state.names.insert(path.to_path_buf(), inode.clone());
        Ok(Box::new(MemWritable {
            inode,
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(Box::new(MemWritable {
            inode: self.existing(path, "open for append")?,
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn ReadableFile>> {
        Ok(Arc::new(MemReadable {
            inode: self.existing(path, "open")?,
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut state = self.state.lock();
        let parent = to.parent().unwrap_or(Path::new(""));
        ensure!(
            state.dirs.contains(parent),
            "{}: rename: no such directory {}",
            to.display(),
            parent.display()
        );
        state.tick("rename", from)?;
        let inode = state
            .names
            .remove(from)
            .ok_or_else(|| anyhow!("{}: rename: no such file", from.display()))?;
        state.names.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let mut state = self.state.lock();
        state.tick("remove", path)?;
        state
            .names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| anyhow!("{}: remove: no such file", path.display()))
    }

    fn list(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let state = self.state.lock();
        state.check_alive(dir)?;
        ensure!(
            state.dirs.contains(dir),
            "{}: list: no such directory",
            dir.display()
        );
        Ok(state
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let mut state = self.state.lock();
        state.tick("sync directory", dir)?;
        state.durable.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<(PathBuf, InodeRef)> = state
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        state.durable.extend(entries);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let state = self.state.lock();
        state.names.contains_key(path) || state.dirs.contains(path)
    }
}
