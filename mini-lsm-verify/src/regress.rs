// SPDX-License-Identifier: Apache-2.0
//! Saved failures: one text file per case, replayed before any new search.
//!
//! A file is a case in the text form of [`crate::ops`], after `#` comment lines that say what it
//! found and how:
//!
//! ```text
//! # Found by `cargo x verify` (engine starter, chapters up to week1_day6), seed 1234:
//! # op #6 `get k03`: the engine returned Some(v5), the model None.
//! config strategy=none wal=off
//! put k03 v5
//! ...
//! ```
//!
//! They are kept after they pass again, as a regression suite; delete one to forget it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::ops::Case;

/// The file a case found with `seed` is saved as.
pub fn file_for(dir: &Path, seed: u64) -> PathBuf {
    dir.join(format!("case-{seed}.txt"))
}

/// Saves `case` under `dir` with the comment lines `header`; returns the file.
///
/// # Errors
/// If the directory or the file cannot be written.
pub fn save(dir: &Path, seed: u64, header: &[String], case: &Case) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = file_for(dir, seed);
    let mut text = String::new();
    for line in header {
        for part in line.lines() {
            text.push_str(&format!("# {part}\n"));
        }
    }
    text.push_str(&case.to_text());
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Every saved case under `dir`, in file-name order; files that do not parse are returned as
/// errors, so that the caller can name them and go on.
pub fn load(dir: &Path) -> Vec<(PathBuf, Result<Case>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let case = std::fs::read_to_string(&path)
                .map_err(anyhow::Error::from)
                .and_then(|text| Case::parse(&text));
            (path, case)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Config, Op, Strategy};

    /// A saved case loads back as it was, comments and all skipped; a broken file is an error
    /// of its own, not the end of the replay.
    #[test]
    fn saved_cases_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case {
            config: Config::new(Strategy::Leveled, false),
            ops: vec![Op::Put(b"k1".to_vec(), b"v1".to_vec()), Op::Flush],
        };
        let path = save(dir.path(), 42, &["found\non two lines".to_string()], &case).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# found\n# on two lines\nconfig strategy=leveled"));
        std::fs::write(dir.path().join("case-9.txt"), "config wal=on\nfly away\n").unwrap();
        let loaded = load(dir.path());
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].1.as_ref().unwrap(), &case);
        assert!(loaded[1].1.is_err());
    }
}
