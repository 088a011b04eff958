// SPDX-License-Identifier: Apache-2.0
//! The real file system, through `std::fs`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};

use super::{FileSystem, ReadableFile, WritableFile};

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealReadable {
    file: File,
    len: u64,
    path: PathBuf,
}

impl ReadableFile for RealReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        ensure!(
            offset
                .checked_add(buf.len() as u64)
                .is_some_and(|end| end <= self.len),
            "{}: read of {} bytes at offset {offset} runs past the end of the {}-byte file",
            self.path.display(),
            buf.len(),
            self.len
        );
        self.file
            .read_exact_at(buf, offset)
            .with_context(|| format!("{}: read at offset {offset}", self.path.display()))
    }

    fn len(&self) -> u64 {
        self.len
    }
}

struct RealWritable {
    file: File,
    path: PathBuf,
}

impl WritableFile for RealWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .with_context(|| format!("{}: write", self.path.display()))
    }

    fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .with_context(|| format!("{}: sync", self.path.display()))
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("{}: create", path.display()))?;
        Ok(Box::new(RealWritable {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: open for append", path.display()))?;
        Ok(Box::new(RealWritable {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn ReadableFile>> {
        let file = File::open(path).with_context(|| format!("{}: open", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("{}: stat", path.display()))?
            .len();
        Ok(Arc::new(RealReadable {
            file,
            len,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        std::fs::rename(from, to)
            .with_context(|| format!("renaming {} to {}", from.display(), to.display()))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        std::fs::remove_file(path).with_context(|| format!("{}: remove", path.display()))
    }

    fn list(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("{}: list", dir.display()))? {
            let entry = entry.with_context(|| format!("{}: list", dir.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("{}: sync directory", dir.display()))
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}
