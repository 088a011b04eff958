// SPDX-License-Identifier: Apache-2.0
//! Bytes written to files, counted at the one layer every byte passes: a [`FileSystem`] that
//! wraps the engine's own and counts what is appended through it, by kind of file.
//!
//! Counting here rather than in the log, the SST builder and the manifest means no writer of a
//! file can be forgotten or counted twice, and the figure is what the file system was handed
//! (whether or not it was synced yet), as the benchmark's `wchar` is.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;

use crate::fs::{FileSystem, ReadableFile, WritableFile};

/// Bytes appended to files so far: to logs, and to every file (logs included).
#[derive(Debug, Default)]
pub(crate) struct FileBytes {
    log: AtomicU64,
    total: AtomicU64,
    /// Syncs of write-ahead logs (that succeeded).
    log_syncs: AtomicU64,
}

impl FileBytes {
    /// Bytes appended to write-ahead logs.
    pub(crate) fn log(&self) -> u64 {
        self.log.load(Ordering::Relaxed)
    }

    /// Bytes appended to every file.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Syncs of write-ahead logs.
    pub(crate) fn log_syncs(&self) -> u64 {
        self.log_syncs.load(Ordering::Relaxed)
    }
}

/// A [`FileSystem`] that passes every call to `inner` and counts the bytes appended.
#[derive(Debug)]
pub struct CountingFs {
    inner: Arc<dyn FileSystem>,
    bytes: Arc<FileBytes>,
}

impl CountingFs {
    /// Counts what is appended through `inner` into `bytes`.
    pub(crate) fn new(inner: Arc<dyn FileSystem>, bytes: Arc<FileBytes>) -> Self {
        Self { inner, bytes }
    }

    /// A counting file for `file`, opened at `path`.
    fn wrap(&self, path: &Path, file: Box<dyn WritableFile>) -> Box<dyn WritableFile> {
        Box::new(CountingFile {
            inner: file,
            bytes: Arc::clone(&self.bytes),
            is_log: path.extension().is_some_and(|e| e == "wal"),
        })
    }
}

// ANCHOR: counting_file
struct CountingFile {
    inner: Box<dyn WritableFile>,
    bytes: Arc<FileBytes>,
    is_log: bool,
}

impl WritableFile for CountingFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.inner.append(data)?;
        // Counted once handed over: a failed append wrote nothing we can count on.
        let n = data.len() as u64;
        self.bytes.total.fetch_add(n, Ordering::Relaxed);
        if self.is_log {
            self.bytes.log.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.inner.sync()?;
        if self.is_log {
            self.bytes.log_syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
// ANCHOR_END: counting_file

impl FileSystem for CountingFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(self.wrap(path, self.inner.open_append(path)?))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn ReadableFile>> {
        self.inner.open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> Result<()> {
        self.inner.remove(path)
    }

    fn list(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        self.inner.list(dir)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        self.inner.read_all(path)
    }
}
