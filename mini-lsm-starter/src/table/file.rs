// SPDX-License-Identifier: Apache-2.0
//! The file under an SST: written once, then read at offsets.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

/// A read-only file of known size; every error names its path.
pub struct FileObject {
    file: File,
    size: u64,
    path: PathBuf,
}

impl FileObject {
    /// Reads `len` bytes at `offset`.
    ///
    /// # Errors
    /// If the range runs past the end of the file, or the read fails.
    pub fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        ensure!(
            offset.checked_add(len).is_some_and(|end| end <= self.size),
            "{}: read of {len} bytes at offset {offset} runs past the end of the {}-byte file",
            self.path.display(),
            self.size
        );
        let mut data = vec![0; len as usize];
        self.file
            .read_exact_at(&mut data, offset)
            .with_context(|| format!("{}: read at offset {offset}", self.path.display()))?;
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

    /// Writes `data` to a new file at `path`, syncs it to disk, and opens it for reading.
    ///
    /// # Errors
    /// If the file cannot be written or synced.
    pub fn create(path: &Path, data: Vec<u8>) -> Result<Self> {
        std::fs::write(path, &data).with_context(|| format!("{}: write", path.display()))?;
        let file = File::open(path).with_context(|| format!("{}: open", path.display()))?;
        file.sync_all()
            .with_context(|| format!("{}: sync", path.display()))?;
        Ok(Self {
            file,
            size: data.len() as u64,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing file for reading.
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("{}: open", path.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("{}: stat", path.display()))?
            .len();
        Ok(Self {
            file,
            size,
            path: path.to_path_buf(),
        })
    }
}
