//! `cargo x sync`: derive crates from the reference, and check that what is committed agrees.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;
use crate::markers::{Source, TaskRef, Upto};
use crate::util::{rel, run_rustfmt, walk_rs};

/// Source paths (relative to `src/`) that belong to each crate and are never generated: the
/// binaries' thin `main` and the learner's test area.
pub fn is_generated(rel_path: &Path) -> bool {
    !(rel_path.starts_with("bin")
        || rel_path.starts_with("tests")
        || rel_path == Path::new("tests.rs"))
}

/// Parses every generated source of the reference.
///
/// # Errors
/// On a bad marker, or a task in the manifest that no marker implements.
pub fn parse_reference(root: &Path, manifest: &Manifest) -> Result<Vec<(PathBuf, Source)>> {
    let src = root.join("mini-lsm-ref/src");
    let mut sources = Vec::new();
    let mut seen = BTreeSet::new();
    for path in walk_rs(&src)? {
        let rel_path = path.strip_prefix(&src)?.to_path_buf();
        if !is_generated(&rel_path) {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let source = Source::parse(&rel(root, &path), &text, manifest)?;
        for TaskRef { chapter, task } in source.tasks() {
            seen.insert((chapter, task));
        }
        sources.push((rel_path, source));
    }
    for (ci, chapter) in manifest.chapters.iter().enumerate() {
        for task in 1..=chapter.tasks.len() {
            if !seen.contains(&(ci, task)) {
                bail!(
                    "course.toml lists {} task {task} (\"{}\") but no `// @task {} {task}` marker in \
                     mini-lsm-ref/src implements it",
                    chapter.label(),
                    chapter.tasks[task - 1],
                    chapter.id
                );
            }
        }
    }
    Ok(sources)
}

/// Writes the reference's generated sources, up to `upto`, formatted, into `dest_src` (a `src/`
/// directory). Generated files of `dest_src` that no longer have a source are removed; the
/// learner's own files (`tests.rs`, `tests/`, `bin/`) are never touched.
///
/// The sources are generated and formatted in a scratch directory first: rustfmt follows `mod`
/// declarations, and must never reach the learner's test files.
///
/// # Errors
/// On a bad marker or an I/O error.
pub fn generate_into(root: &Path, manifest: &Manifest, upto: Upto, dest_src: &Path) -> Result<()> {
    generate_into_marked(root, manifest, upto, dest_src, None)
}

/// [`generate_into`], with the code of chapter `mark` between task marks (see
/// [`Source::generate_marked`]), when given.
///
/// # Errors
/// As [`generate_into`].
pub fn generate_into_marked(
    root: &Path,
    manifest: &Manifest,
    upto: Upto,
    dest_src: &Path,
    mark: Option<usize>,
) -> Result<()> {
    let sources = parse_reference(root, manifest)?;
    // One scratch directory per process: two `cargo x` commands at once (a book check while
    // syncing, say) must not generate into each other's files.
    let scratch = root.join(format!("target/xtask/generate-{}", std::process::id()));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let mut written = BTreeSet::new();
    for (rel_path, source) in &sources {
        let dest = scratch.join(rel_path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = match mark {
            Some(chapter) => source.generate_marked(upto, manifest, chapter),
            None => source.generate(upto, manifest),
        };
        std::fs::write(&dest, text).with_context(|| format!("writing {}", dest.display()))?;
        written.insert(rel_path.clone());
    }
    let files: Vec<PathBuf> = written.iter().map(|p| scratch.join(p)).collect();
    run_rustfmt(&files)?;
    for rel_path in &written {
        let dest = dest_src.join(rel_path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = std::fs::read(scratch.join(rel_path))?;
        if std::fs::read(&dest).ok().as_deref() != Some(text.as_slice()) {
            std::fs::write(&dest, text).with_context(|| format!("writing {}", dest.display()))?;
        }
    }
    std::fs::remove_dir_all(&scratch)?;
    if dest_src.exists() {
        for path in walk_rs(dest_src)? {
            let rel_path = path.strip_prefix(dest_src)?.to_path_buf();
            if is_generated(&rel_path) && !written.contains(&rel_path) {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// The starter's `Cargo.toml`, derived from the reference's: the package, library and binary
/// names change (`mini-lsm-ref` -> `mini-lsm-starter`, `mini_lsm` -> `mini_lsm_starter`, a `-ref`
/// suffix is dropped from binaries); dependencies stay identical.
pub fn starter_cargo_toml(reference: &str) -> String {
    let mut out =
        String::from("# Written by `cargo x sync` from mini-lsm-ref/Cargo.toml; do not edit.\n");
    for line in reference.lines() {
        let line = match line.trim() {
            "name = \"mini-lsm-ref\"" => "name = \"mini-lsm-starter\"".to_string(),
            "name = \"mini_lsm\"" => "name = \"mini_lsm_starter\"".to_string(),
            l if l.starts_with("description = ") => {
                "description = \"Your LSM storage engine: the starter crate of the mini-lsm course\""
                    .to_string()
            }
            l if l.starts_with("name = \"") && l.ends_with("-ref\"") => {
                l.replacen("-ref\"", "\"", 1)
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A starter binary's source, derived from the reference's: only the crate name changes.
pub fn starter_bin(reference: &str) -> String {
    reference.replace("mini_lsm::", "mini_lsm_starter::")
}

/// The starter's non-source files derived from the reference: `Cargo.toml` and `src/bin/*`, as
/// `(path relative to the crate, content)`.
///
/// # Errors
/// If the reference's files cannot be read.
pub fn starter_crate_files(root: &Path) -> Result<Vec<(PathBuf, String)>> {
    let reference = root.join("mini-lsm-ref");
    let mut files = vec![(
        PathBuf::from("Cargo.toml"),
        starter_cargo_toml(&std::fs::read_to_string(reference.join("Cargo.toml"))?),
    )];
    let bin = reference.join("src/bin");
    if bin.exists() {
        for path in walk_rs(&bin)? {
            let rel_path = path.strip_prefix(&reference)?.to_path_buf();
            files.push((rel_path, starter_bin(&std::fs::read_to_string(&path)?)));
        }
    }
    Ok(files)
}

/// The reference's `src/tests.rs`: every chapter's test file, compiled in place.
pub fn reference_tests_rs(manifest: &Manifest) -> String {
    let mut out = String::from(
        "// Written by `cargo x sync` from course.toml: every chapter's tests, compiled from\n\
         // mini-lsm-tests/ in place (never copied), in chapter order.\n\
         #[path = \"../../mini-lsm-tests/harness.rs\"]\nmod harness;\n",
    );
    for chapter in &manifest.chapters {
        out.push_str(&format!(
            "#[path = \"../../mini-lsm-tests/{}\"]\nmod {};\n",
            chapter.test_file(),
            chapter.id
        ));
    }
    out
}

/// `cargo x sync`: writes the starter's generated sources and the reference's `tests.rs`.
///
/// # Errors
/// On a bad marker or an I/O error.
pub fn sync(root: &Path, manifest: &Manifest) -> Result<()> {
    std::fs::write(
        root.join("mini-lsm-ref/src/tests.rs"),
        reference_tests_rs(manifest),
    )?;
    let starter_src = root.join("mini-lsm-starter/src");
    generate_into(root, manifest, Upto::Nothing, &starter_src)?;
    for (rel_path, text) in starter_crate_files(root)? {
        let dest = root.join("mini-lsm-starter").join(rel_path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(dest, text)?;
    }
    let tests_rs = starter_src.join("tests.rs");
    if !tests_rs.exists() {
        std::fs::write(&tests_rs, crate::learner::starter_tests_rs(manifest, &[]))?;
    }
    println!(
        "sync: wrote mini-lsm-starter/src from mini-lsm-ref/src, and mini-lsm-ref/src/tests.rs"
    );
    Ok(())
}

/// One difference between two trees of generated sources.
#[derive(Debug, PartialEq, Eq)]
pub struct Drift {
    pub file: String,
    pub detail: String,
}

/// Compares the generated files of two `src/` trees.
///
/// # Errors
/// On an I/O error.
pub fn compare_trees(expected: &Path, actual: &Path) -> Result<Vec<Drift>> {
    let list = |dir: &Path| -> Result<BTreeSet<PathBuf>> {
        let mut set = BTreeSet::new();
        if dir.exists() {
            for path in walk_rs(dir)? {
                let rel_path = path.strip_prefix(dir)?.to_path_buf();
                if is_generated(&rel_path) {
                    set.insert(rel_path);
                }
            }
        }
        Ok(set)
    };
    let (want, have) = (list(expected)?, list(actual)?);
    let mut drifts = Vec::new();
    for file in want.union(&have) {
        let name = file.display().to_string();
        match (want.contains(file), have.contains(file)) {
            (true, false) => drifts.push(Drift {
                file: name,
                detail: "missing".into(),
            }),
            (false, true) => drifts.push(Drift {
                file: name,
                detail: "not generated by sync (remove it)".into(),
            }),
            _ => {
                let a = std::fs::read_to_string(expected.join(file))?;
                let b = std::fs::read_to_string(actual.join(file))?;
                if a != b {
                    let line = a
                        .lines()
                        .zip(b.lines())
                        .position(|(x, y)| x != y)
                        .unwrap_or(a.lines().count().min(b.lines().count()));
                    drifts.push(Drift {
                        file: name,
                        detail: format!("differs from line {}", line + 1),
                    });
                }
            }
        }
    }
    Ok(drifts)
}

/// Check 5: the committed starter is exactly what `sync` writes, and so is the reference's
/// `tests.rs`.
///
/// # Errors
/// On an I/O error or a bad marker. Drift is reported in the returned list, not as an error.
pub fn check_sync(root: &Path, manifest: &Manifest) -> Result<Vec<Drift>> {
    let scratch = root.join("target/xtask/sync-check/src");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    generate_into(root, manifest, Upto::Nothing, &scratch)?;
    let mut drifts: Vec<Drift> = compare_trees(&scratch, &root.join("mini-lsm-starter/src"))?
        .into_iter()
        .map(|d| Drift {
            file: format!("mini-lsm-starter/src/{}", d.file),
            detail: d.detail,
        })
        .collect();
    let tests_rs =
        std::fs::read_to_string(root.join("mini-lsm-ref/src/tests.rs")).unwrap_or_default();
    for (rel_path, text) in starter_crate_files(root)? {
        let path = root.join("mini-lsm-starter").join(&rel_path);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            drifts.push(Drift {
                file: format!("mini-lsm-starter/{}", rel_path.display()),
                detail: "is not what sync derives from mini-lsm-ref".into(),
            });
        }
    }
    if tests_rs != reference_tests_rs(manifest) {
        drifts.push(Drift {
            file: "mini-lsm-ref/src/tests.rs".into(),
            detail: "does not list exactly the chapters of course.toml".into(),
        });
    }
    Ok(drifts)
}
