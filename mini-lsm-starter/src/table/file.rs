// SPDX-License-Identifier: Apache-2.0
//! The file under an SST: written once, then read at offsets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::fs::{FileSystem, ReadableFile, RealFs};

/// A read-only file of known size; every error names its path.
pub struct FileObject {
    file: Arc<dyn ReadableFile>,
    size: u64,
    path: PathBuf,
}

impl FileObject {
    /// Reads `len` bytes at `offset`.
    ///
    /// # Errors
    /// If the range runs past the end of the file, or the read fails.
    pub fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        anyhow::ensure!(
            offset.checked_add(len).is_some_and(|end| end <= self.size),
            "{}: read of {len} bytes at offset {offset} runs past the end of the {}-byte file",
            self.path.display(),
            self.size
        );
        let mut data = vec![0; len as usize];
        self.file.read_exact_at(&mut data, offset)?;
        Ok(data)
    }

    /// The size of the file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data` to a new file at `path` on the real file system, syncs it, and opens it.
    ///
    /// # Errors
    /// If the file cannot be written or synced.
    pub fn create(path: &Path, data: Vec<u8>) -> Result<Self> {
        Self::create_in(&RealFs, path, data)
    }

    /// Writes `data` to a new file at `path` in `fs`, syncs it, and opens it for reading. The
    /// file's name is durable only once the caller syncs the directory.
    ///
    /// # Errors
    /// If the file cannot be written or synced.
    pub fn create_in(fs: &dyn FileSystem, path: &Path, data: Vec<u8>) -> Result<Self> {
        let mut file = fs.create(path)?;
        file.append(&data)?;
        file.sync()?;
        drop(file);
        Self::open_in(fs, path)
    }

    /// Opens an existing file on the real file system.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_in(&RealFs, path)
    }

    /// Opens an existing file in `fs`.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn open_in(fs: &dyn FileSystem, path: &Path) -> Result<Self> {
        let file = fs
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            size: file.len(),
            file,
            path: path.to_path_buf(),
        })
    }
}
