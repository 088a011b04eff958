// SPDX-License-Identifier: Apache-2.0
//! Repair: for each damage case where data is still readable, `repair` then `open` returns every
//! key whose SST or log survived, with its value; the test prints which keys were lost and why.
//! Repair never deletes: every file of the damaged database is afterwards either in place or in
//! `quarantine/`, byte for byte.

mod damage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use damage::{build, db, dir_image, open_and_read, options, record_ends, Db, Model, Outcome};
use mini_lsm::fs::{FileSystem, MemFs};
use mini_lsm::lsm_storage::repair::{repair, QUARANTINE_DIR};
use mini_lsm::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use mini_lsm::manifest::MANIFEST_NAME;

/// One damage to repair.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Delete,
    Cut(usize),
    Flip(usize),
}

/// Every file's bytes, in the directory and in its quarantine, by name (quarantined names
/// prefixed with `quarantine/`).
fn all_files(fs: &MemFs) -> BTreeMap<String, Vec<u8>> {
    let mut files = dir_image(fs, &db());
    let quarantine = db().join(QUARANTINE_DIR);
    if fs.exists(&quarantine) {
        for (name, bytes) in dir_image(fs, &quarantine) {
            files.insert(format!("{QUARANTINE_DIR}/{name}"), bytes);
        }
    }
    files
}

/// Damages `path` in a copy of `base`, repairs, opens, and checks the outcome against
/// `expected`: equal, unless repair said it had to order SSTs by id. Returns the keys lost or
/// changed against the undamaged database (with a guessed order: the keys missing).
fn repair_case(base: &Db, path: &Path, damage: Damage, expected: &Model) -> Vec<String> {
    let fs = base.copy();
    let bytes = fs.read_all(path).unwrap();
    match damage {
        Damage::Delete => fs.remove(path).unwrap(),
        Damage::Cut(len) => fs.overwrite(path, bytes[..len].to_vec()),
        Damage::Flip(at) => {
            let mut bytes = bytes;
            bytes[at] ^= 0x5a;
            fs.overwrite(path, bytes);
        }
    }
    let case = format!("{} {damage:?}", path.display());
    let before = all_files(&fs);
    let report = repair(&db(), &options(&fs), false)
        .unwrap_or_else(|e| panic!("{case}: repair failed: {e:#}"));
    let after = all_files(&fs);
    for (name, bytes) in &before {
        let kept = after.get(name) == Some(bytes)
            || after.iter().any(|(n, b)| {
                n.starts_with(QUARANTINE_DIR) && n.contains(name.as_str()) && b == bytes
            });
        assert!(
            kept,
            "{case}: repair lost {name}; report:\n{:#?}",
            report.lines
        );
    }
    let state = match open_and_read(&fs) {
        Outcome::Opened(_, Ok(state)) => state,
        Outcome::Opened(_, Err(e)) | Outcome::OpenFailed(e) | Outcome::Panicked(e) => {
            panic!("{case}: after repair: {e}\nreport:\n{:#?}", report.lines)
        }
    };
    if report.ordered_by_id {
        // Said so: the order is a guess. Count what differs, and show it.
        let missing: Vec<String> = expected
            .keys()
            .filter(|k| !state.contains_key(*k))
            .map(|k| k.escape_ascii().to_string())
            .collect();
        let stale = expected
            .iter()
            .filter(|(k, v)| state.get(*k).is_some_and(|found| found != *v))
            .count();
        let extra = state.keys().filter(|k| !expected.contains_key(*k)).count();
        println!(
            "{case}: repair placed SSTs by id (a guess, reported); of {} keys, {stale} hold an \
             older value, {} are missing {missing:?}, {extra} deleted keys are back",
            expected.len(),
            missing.len()
        );
        return missing;
    }
    assert!(
        &state == expected,
        "{case}: the repaired database holds {} keys, {} expected; report:\n{:#?}",
        state.len(),
        expected.len(),
        report.lines
    );
    let full = base.expected();
    full.keys()
        .filter(|k| !state.contains_key(*k) || state.get(*k) != full.get(*k))
        .map(|k| k.escape_ascii().to_string())
        .collect()
}

/// Each SST and each log damaged (deleted, cut, a byte flipped): repair keeps every other file
/// and the undamaged prefix of a log, and the result holds exactly what survived.
#[test]
fn test_repair_keeps_every_key_that_survived() {
    let base = build(true);
    let mut lines = Vec::new();
    for source in base.sources.clone() {
        let bytes = base.copy().read_all(&source.path).unwrap();
        let is_log = source.path.extension().is_some_and(|e| e == "wal");
        let middle = bytes.len() / 2;
        let cut = if is_log {
            record_ends(&bytes)[source.ends.len() / 2]
        } else {
            middle
        };
        for damage in [Damage::Delete, Damage::Cut(cut), Damage::Flip(middle)] {
            // A log keeps the whole records before the damage; an SST is all or nothing.
            let point = match damage {
                Damage::Delete => 0,
                Damage::Cut(at) | Damage::Flip(at) => at,
            };
            let keep = if is_log {
                source.ends.iter().filter(|&&end| end <= point).count()
            } else {
                0
            };
            let expected = base.state_with(|s| {
                if s.path == source.path {
                    keep
                } else {
                    usize::MAX
                }
            });
            let lost = repair_case(&base, &source.path, damage, &expected);
            lines.push(format!(
                "{} {damage:?}: {} keys lost or back to an older value ({}), because {}",
                source.path.display(),
                lost.len(),
                lost.join(" "),
                if is_log {
                    format!("the log's records from number {keep} on are gone")
                } else {
                    "the SST is gone".to_string()
                }
            ));
        }
    }
    println!("{}", lines.join("\n"));
}

/// The manifest deleted, emptied, or cut at any record boundary: repair rebuilds one; with the
/// manifest's placement where it survived, every key comes back with its value, and where repair
/// had to place SSTs by id it says so.
#[test]
fn test_repair_rebuilds_a_lost_or_cut_manifest() {
    let base = build(true);
    let manifest = db().join(MANIFEST_NAME);
    let bytes = base.copy().read_all(&manifest).unwrap();
    let mut damages = vec![Damage::Delete, Damage::Cut(0)];
    damages.extend(record_ends(&bytes).into_iter().map(Damage::Cut));
    let expected = base.expected();
    for damage in damages {
        // Every SST and log survived: every key must come back (with its value, unless repair
        // reports that it placed SSTs by id).
        let lost = repair_case(&base, &manifest, damage, &expected);
        assert!(lost.is_empty(), "{damage:?}: keys lost: {lost:?}");
    }
}

/// A database written by flushes only (as `mini-lsm-cli-ref` writes one): with its manifest
/// lost, repair's order by id is the true order, and every value comes back.
#[test]
fn test_repair_of_a_flush_only_database_is_exact() {
    let fs = MemFs::new();
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.fs = std::sync::Arc::new(fs.clone());
    let inner = LsmStorageInner::open(db(), options.clone()).unwrap();
    let mut model = Model::new();
    for round in 0..4 {
        for i in (round..40).step_by(round + 1) {
            let value = format!("value {i} of round {round}").into_bytes();
            inner.put(damage::key(i).as_slice(), &value).unwrap();
            model.insert(damage::key(i), value);
        }
        inner.delete(&damage::key(round * 3)).unwrap();
        model.remove(&damage::key(round * 3));
        inner.freeze_memtable().unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
    }
    drop(inner);
    let image = fs.crash_now(false);
    image.remove(&db().join(MANIFEST_NAME)).unwrap();
    assert!(LsmStorageInner::open(db(), with_fs(&options, &image)).is_err());
    let report = repair(&db(), &with_fs(&options, &image), false).unwrap();
    assert_eq!(report.ssts.len(), 4, "{:#?}", report.lines);
    let inner = LsmStorageInner::open(db(), with_fs(&options, &image)).unwrap();
    assert_eq!(damage::read_state(&inner).unwrap(), model);
}

fn with_fs(options: &LsmStorageOptions, fs: &MemFs) -> LsmStorageOptions {
    let mut options = options.clone();
    options.fs = std::sync::Arc::new(fs.clone());
    options
}

/// A dry run reports and changes nothing.
#[test]
fn test_repair_dry_run_changes_nothing() {
    let base = build(true);
    let fs = base.copy();
    let path: PathBuf = base.sources.last().unwrap().path.clone();
    fs.remove(&path).unwrap();
    let before = all_files(&fs);
    let report = repair(&db(), &options(&fs), true).unwrap();
    assert!(!report.lines.is_empty());
    assert_eq!(all_files(&fs), before);
}

/// Runs `bin` with `args` and `stdin`; returns its success, standard output and error.
fn run(bin: &str, args: &[&std::ffi::OsStr], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(bin)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the binary");
    // A shell that fails to open exits without reading its input: a broken pipe is no failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The reproduction on real files: the shell fills and flushes twice, the manifest is
/// truncated to nothing; the shell then refuses to open, naming the manifest and both SSTs, and
/// every file stays; `mini-lsm-repair-ref` rebuilds the manifest, and the shell reads the newest
/// values again.
#[test]
fn test_truncated_manifest_fails_then_repair_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let path_arg: [&std::ffi::OsStr; 2] = ["--path".as_ref(), path.as_os_str()];
    let cli = env!("CARGO_BIN_EXE_mini-lsm-cli-ref");
    let (ok, _, err) = run(
        cli,
        &path_arg,
        "fill 1 1000\nflush\nfill 1 1000\nflush\nquit\n",
    );
    assert!(ok, "{err}");
    let files = |p: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = files(&path);
    assert_eq!(before, ["00000.sst", "00001.sst", MANIFEST_NAME]);
    std::fs::write(path.join(MANIFEST_NAME), b"").unwrap();
    let (ok, _, err) = run(cli, &path_arg, "scan 1 2\n");
    assert!(!ok, "the shell opened a database whose manifest is empty");
    assert!(
        err.contains(MANIFEST_NAME) && err.contains("00000.sst") && err.contains("00001.sst"),
        "the error must name the manifest and the data files: {err}"
    );
    assert_eq!(files(&path), before, "a failed open changed the directory");
    let repair = env!("CARGO_BIN_EXE_mini-lsm-repair-ref");
    let (ok, out, err) = run(repair, &path_arg, "");
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("00000.sst") && out.contains("00001.sst"),
        "{out}"
    );
    let (ok, out, err) = run(cli, &path_arg, "get 5\nget 1000\n");
    assert!(ok, "{err}");
    assert!(
        out.contains("value5@1") && out.contains("value1000@1"),
        "the newest values are back: {out}"
    );
}
