// SPDX-License-Identifier: Apache-2.0
//! The engine's files in the database directory, as recovery and repair find them: only names the
//! engine itself produces (`<number>.sst`, `<number>.wal`), each with its id and size.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::fs::FileSystem;

/// The kinds of file the engine names `<id>.sst` and `<id>.wal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileKind {
    Sst,
    Wal,
}

/// One file of the engine's in the database directory.
#[derive(Debug, Clone)]
pub(crate) struct EngineFile {
    pub id: usize,
    pub kind: FileKind,
    pub path: PathBuf,
    pub len: u64,
}

impl EngineFile {
    /// The file's name, for messages.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// The engine's files in a directory: names made of a number, a dot and `sst` or `wal`. Other
/// files (`NOTES.txt`, `backup.sst.old`, `MANIFEST`) are never the engine's to judge.
pub(crate) struct EngineFiles(Vec<EngineFile>);

impl EngineFiles {
    /// Lists the engine's files in `dir`, with their sizes.
    ///
    /// # Errors
    /// If the directory cannot be listed or a file cannot be opened to read its size.
    pub fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Self> {
        let mut files = Vec::new();
        for path in fs.list(dir)? {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some((id, ext)) = name.rsplit_once('.') else {
                continue;
            };
            let kind = match ext {
                "sst" => FileKind::Sst,
                "wal" => FileKind::Wal,
                _ => continue,
            };
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(id) = id.parse::<usize>() else {
                continue;
            };
            let len = fs.open(&path)?.len();
            files.push(EngineFile {
                id,
                kind,
                path,
                len,
            });
        }
        files.sort_by_key(|f| (f.id, f.kind));
        Ok(Self(files))
    }

    /// Every engine file, by id.
    pub fn iter(&self) -> impl Iterator<Item = &EngineFile> {
        self.0.iter()
    }

    /// The file of kind `kind` with id `id`, if there is one.
    pub fn get(&self, kind: FileKind, id: usize) -> Option<&EngineFile> {
        self.0.iter().find(|f| f.kind == kind && f.id == id)
    }

    /// The files that hold at least one byte.
    pub fn holding_data(&self) -> Vec<&EngineFile> {
        self.0.iter().filter(|f| f.len > 0).collect()
    }

    /// `"3 data files (00001.sst, 00002.sst, 00003.wal)"`, at most eight names.
    pub fn describe(files: &[&EngineFile]) -> String {
        let names: Vec<String> = files.iter().take(8).map(|f| f.name()).collect();
        let more = match files.len().saturating_sub(8) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        format!(
            "{} data file{} ({}{more})",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
    }
}
