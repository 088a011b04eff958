//! Scratch crates: a generated starter, with chosen tests copied in, built outside the learner's
//! tree. `cargo x ci` builds the pristine starter and every chapter checkpoint this way.
//!
//! They share the workspace's `target/` directory, so the dependencies are compiled once for the
//! workspace and every scratch build.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::learner::starter_tests_rs;
use crate::manifest::Manifest;
use crate::markers::Upto;
use crate::sync::generate_into;
use crate::testrun::{run_nextest, RunOutcome};
use crate::util::{copy_dir, target_dir};

/// Builds the scratch crate `name` (under `target/xtask/scratch/`) generated up to `upto`, with
/// the tests of chapters `tests` copied in, and runs those tests.
///
/// # Errors
/// If the crate cannot be written or nextest cannot be started.
pub fn build_and_test(
    root: &Path,
    manifest: &Manifest,
    name: &str,
    upto: Upto,
    tests: &[usize],
) -> Result<RunOutcome> {
    let target = target_dir(root)?;
    let dir = crate_dir(root, name)?;
    let src = dir.join("src");
    std::fs::create_dir_all(&src)?;
    // Cargo.toml: the starter's, as its own workspace with the root's profiles.
    let starter_toml = std::fs::read_to_string(root.join("mini-lsm-starter/Cargo.toml"))?;
    // Each scratch crate is the root of its own workspace, and cargo identifies a workspace's
    // own package by its path *relative to the workspace root*: the pristine crate and the
    // ladder crate would be one unit to it, sharing artifacts and fingerprints in the shared
    // target directory, so the ladder ran the pristine build. A version of their own (a
    // pre-release tag named after the scratch crate) tells them apart.
    let starter_toml = tag_version(&starter_toml, name)
        .context("mini-lsm-starter/Cargo.toml has no `version = \"...\"` line")?;
    // Binaries of their own names too, so that building one never replaces the workspace's
    // `mini-lsm-cli` in the shared target directory.
    let starter_toml = starter_toml
        .replace(
            "name = \"mini-lsm-cli\"",
            &format!("name = \"{}\"", bin_name("mini-lsm-cli", name)),
        )
        .replace(
            "name = \"compaction-simulator\"",
            &format!("name = \"{}\"", bin_name("compaction-simulator", name)),
        );
    let root_toml = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let profiles = root_toml.find("[profile").map_or("", |at| &root_toml[at..]);
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("{starter_toml}\n[workspace]\n\n{profiles}"),
    )?;
    if root.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    generate_into(root, manifest, upto, &src)?;
    let bin = src.join("bin");
    if bin.exists() {
        std::fs::remove_dir_all(&bin)?;
    }
    copy_dir(&root.join("mini-lsm-starter/src/bin"), &bin)?;
    let tests_dir = src.join("tests");
    if tests_dir.exists() {
        std::fs::remove_dir_all(&tests_dir)?;
    }
    std::fs::create_dir_all(&tests_dir)?;
    copy_test_files(root, manifest, tests, &tests_dir)?;
    std::fs::write(src.join("tests.rs"), starter_tests_rs(manifest, tests))?;
    run_nextest(
        &dir.join("Cargo.toml"),
        "mini-lsm-starter",
        &target,
        true,
        &[],
    )
}

/// The name of binary `bin` in the scratch crate `crate_name`.
pub fn bin_name(bin: &str, crate_name: &str) -> String {
    format!("{bin}-{crate_name}")
}

/// The directory of the scratch crate `name`.
///
/// # Errors
/// If the target directory cannot be found.
pub fn crate_dir(root: &Path, name: &str) -> Result<PathBuf> {
    Ok(target_dir(root)?.join("xtask/scratch").join(name))
}

/// `toml` with the package version `x.y.z` turned into `x.y.z-tag`.
pub fn tag_version(toml: &str, tag: &str) -> Option<String> {
    let at = toml.find("\nversion = \"")? + "\nversion = \"".len();
    let end = at + toml[at..].find('"')?;
    Some(format!("{}-{tag}{}", &toml[..end], &toml[end..]))
}

/// The harness's files: every `.rs` file of `mini-lsm-tests/` that is not a chapter's.
///
/// # Errors
/// If the directory cannot be read.
pub fn harness_files(root: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let chapter_files: Vec<String> = manifest.chapters.iter().map(|c| c.test_file()).collect();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("mini-lsm-tests"))? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if name.ends_with(".rs") && !chapter_files.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Copies the harness and the test files of `chapters` from `mini-lsm-tests/` into `dest`.
///
/// # Errors
/// If a file is missing or cannot be copied.
pub fn copy_test_files(
    root: &Path,
    manifest: &Manifest,
    chapters: &[usize],
    dest: &Path,
) -> Result<Vec<PathBuf>> {
    let tests = root.join("mini-lsm-tests");
    let mut names = harness_files(root, manifest)?;
    names.extend(chapters.iter().map(|&i| manifest.chapters[i].test_file()));
    let mut copied = Vec::new();
    for name in names {
        let from = tests.join(&name);
        let to = dest.join(&name);
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        copied.push(to);
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package version gets the tag; the rest of the manifest is untouched.
    #[test]
    fn tags_the_package_version() {
        let toml = "[package]\nname = \"x\"\nversion = \"0.1.0\"\n\n[dependencies]\ny = { version = \"1\" }\n";
        assert_eq!(
            tag_version(toml, "ladder").unwrap(),
            "[package]\nname = \"x\"\nversion = \"0.1.0-ladder\"\n\n[dependencies]\ny = { version = \"1\" }\n"
        );
        assert_eq!(tag_version("[package]\nname = \"x\"\n", "ladder"), None);
    }
}
