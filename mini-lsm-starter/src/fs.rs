// SPDX-License-Identifier: Apache-2.0
//! The file layer: every byte the engine reads or writes goes through a [`FileSystem`].
//!
//! An engine's promises are about what survives a crash, and a crash is hard to test on a real
//! disk. So the engine never calls `std::fs` directly: it asks a `FileSystem`, which is either the
//! real one ([`RealFs`]) or an in-memory one for tests ([`MemFs`]) that can crash on demand,
//! dropping every byte that was not synced, tear the last write, or fail a chosen write or sync.
//!
//! The model of durability both implement (and the engine relies on):
//!
//! - Bytes appended to a file are durable only once the file is `sync`ed.
//! - A new file's *name* is durable only once its directory is `sync_dir`ed; so is a removal.
//! - Files are written by appending only; an SST is written once, a log is appended to.
//! - A file is created only where none exists: `create` never truncates. An id that collides with
//!   a file left by an earlier session is an error, never the silent loss of that file.
//!
//! ```text
//!   append ──▶ [ data ...... | unsynced tail ]   sync ──▶ tail becomes durable
//!   create ──▶ name visible now               sync_dir ──▶ name survives a crash
//! ```

mod mem;
mod real;

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

pub use mem::{Fault, MemFs};
pub use real::RealFs;

/// A file opened for reading at offsets.
pub trait ReadableFile: Send + Sync {
    /// Fills `buf` with the bytes at `offset`.
    ///
    /// # Errors
    /// If the range runs past the end of the file, or the read fails.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;

    /// The size of the file in bytes.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file opened for appending.
pub trait WritableFile: Send {
    /// Appends `data`. It is durable only after [`WritableFile::sync`].
    ///
    /// # Errors
    /// If the write fails.
    fn append(&mut self, data: &[u8]) -> Result<()>;

    /// Makes every byte appended so far durable.
    ///
    /// # Errors
    /// If the sync fails; the bytes may then be lost in a crash.
    fn sync(&mut self) -> Result<()>;
}

/// The engine's view of a file system. Every error names the path.
pub trait FileSystem: Send + Sync + Debug {
    /// Creates a directory and its parents.
    ///
    /// # Errors
    /// If it cannot be created.
    fn create_dir_all(&self, dir: &Path) -> Result<()>;

    /// Creates a new, empty file for appending. It never truncates: a file already at `path` is an
    /// error, so that a bug or a damaged manifest that reuses a name cannot destroy a file.
    ///
    /// # Errors
    /// If a file already exists at `path`, or it cannot be created.
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>>;

    /// Opens an existing file for appending at its end.
    ///
    /// # Errors
    /// If it does not exist or cannot be opened.
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>>;

    /// Opens an existing file for reading.
    ///
    /// # Errors
    /// If it does not exist or cannot be opened.
    fn open(&self, path: &Path) -> Result<Arc<dyn ReadableFile>>;

    /// Renames `from` to `to` atomically, replacing `to`. Durable after `sync_dir`.
    ///
    /// # Errors
    /// If `from` does not exist or the rename fails.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;

    /// Removes a file. The removal is durable after `sync_dir`.
    ///
    /// # Errors
    /// If it cannot be removed.
    fn remove(&self, path: &Path) -> Result<()>;

    /// The files directly in `dir`, sorted.
    ///
    /// # Errors
    /// If the directory cannot be read.
    fn list(&self, dir: &Path) -> Result<Vec<PathBuf>>;

    /// Makes the names in `dir` (creations and removals) durable.
    ///
    /// # Errors
    /// If the sync fails.
    fn sync_dir(&self, dir: &Path) -> Result<()>;

    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;

    /// The whole content of a file.
    ///
    /// # Errors
    /// If it cannot be opened or read.
    fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        let file = self.open(path)?;
        let mut data = vec![0; file.len() as usize];
        file.read_exact_at(&mut data, 0)?;
        Ok(data)
    }
}
