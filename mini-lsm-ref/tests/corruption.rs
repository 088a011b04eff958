// SPDX-License-Identifier: Apache-2.0
//! The corruption campaign: damage every kind of file of a real multi-file database (SSTs in L0
//! and in L1, three logs, a manifest) and check what `open` makes of it.
//!
//! Damage: each file deleted; cut at every record boundary (logs and the manifest) and at random
//! lengths; random bytes flipped. `MINI_LSM_FULL=1` cuts every file at every length and flips
//! every byte (`cargo x ci --full`). The database is taken twice: after a clean `close` (every log
//! vouched for in the manifest), and after a crash that followed a sync (the last log is not).
//!
//! Every case must end in one of:
//! - a clean error: `open` or a read fails naming the damaged file, and no file changed;
//! - the correct contents;
//! - a reported, exact drop of a torn tail: only in the log still taking writes of the crashed
//!   database, whose records after the damage are dropped and the report says where;
//! - a shorter history of that same log cut at a record boundary, which is exactly what a crash
//!   before those writes were synced leaves, and so cannot be told from one.
//!
//! Anything else fails: a wrong answer, a panic, an error that does not name the file, a failed
//! `open` that changed a file, or a file removed without a word in the recovery report. The
//! sampled cases are drawn from a seed, printed; `MINI_LSM_SEED` replays it.

mod damage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use damage::{build, db, dir_image, full, open_and_read, record_ends, seed, Db, Outcome, Rng};
use mini_lsm::fs::{FileSystem, MemFs};
use mini_lsm::manifest::MANIFEST_NAME;

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Damage {
    Delete,
    Cut(usize),
    Flip(usize, u8),
}

/// How a case ended, when it ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    CleanError,
    Intact,
    TornTailReported,
    ShorterUnsealedLog,
}

/// The damage to do to `bytes` (the file at `path`).
fn cases(path: &Path, bytes: &[u8], rng: &mut Rng, full: bool) -> Vec<Damage> {
    let mut cases = vec![Damage::Delete];
    let logged = path.extension().is_some_and(|e| e == "wal")
        || path.file_name().is_some_and(|n| n == MANIFEST_NAME);
    if full {
        cases.extend((0..bytes.len()).map(Damage::Cut));
        for at in 0..bytes.len() {
            cases.push(Damage::Flip(at, 0xff));
            cases.push(Damage::Flip(at, 1 << rng.below(8)));
        }
        return cases;
    }
    if logged {
        let ends = record_ends(bytes);
        cases.push(Damage::Cut(0));
        cases.extend(
            ends.iter()
                .filter(|&&e| e < bytes.len())
                .map(|&e| Damage::Cut(e)),
        );
    }
    for _ in 0..24 {
        cases.push(Damage::Cut(rng.below(bytes.len())));
        cases.push(Damage::Flip(
            rng.below(bytes.len()),
            1 + rng.below(255) as u8,
        ));
    }
    cases
}

/// Applies `damage` to `path` in a copy of the database's image.
fn damaged_image(base: &Db, path: &Path, damage: &Damage) -> MemFs {
    let image = base.copy();
    let bytes = image.read_all(path).unwrap();
    match damage {
        Damage::Delete => image.remove(path).unwrap(),
        Damage::Cut(len) => image.overwrite(path, bytes[..*len].to_vec()),
        Damage::Flip(at, mask) => {
            let mut bytes = bytes;
            bytes[*at] ^= mask;
            image.overwrite(path, bytes);
        }
    }
    image
}

/// Opens the damaged `image` and judges the outcome; `Err` describes a failure.
fn judge(base: &Db, image: &MemFs, path: &Path, damage: &Damage) -> Result<Verdict, String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let before = dir_image(image, &db());
    let (report, read) = match open_and_read(image) {
        Outcome::Panicked(panic) => return Err(format!("panic: {panic}")),
        Outcome::OpenFailed(error) => {
            if dir_image(image, &db()) != before {
                return Err(format!("a failed open changed the files: {error}"));
            }
            return match error.contains(&name) {
                true => Ok(Verdict::CleanError),
                false => Err(format!("the error does not name {name}: {error}")),
            };
        }
        Outcome::Opened(report, read) => (report, read),
    };
    let after = dir_image(image, &db());
    for (gone, bytes) in before.iter().filter(|(n, _)| !after.contains_key(*n)) {
        if !bytes.is_empty() && !report.iter().any(|l| l.contains(gone.as_str())) {
            return Err(format!("open removed {gone} without a word: {report:?}"));
        }
    }
    let state = match read {
        Ok(state) => state,
        Err(error) if error.contains(&name) => return Ok(Verdict::CleanError),
        Err(error) => return Err(format!("a read error that does not name {name}: {error}")),
    };
    let expected = base.expected();
    if state == expected {
        return Ok(Verdict::Intact);
    }
    // Only the log still taking writes, and only when it is not vouched for, may come back
    // shorter: as a torn tail (reported, exactly where), or cut at a record boundary.
    if !base.closed && path == base.active_log {
        let source = base.source(path).unwrap();
        let damaged_at = match damage {
            Damage::Delete => 0,
            Damage::Cut(len) => *len,
            Damage::Flip(at, _) => *at,
        };
        for k in 0..=source.ends.len() {
            let start = if k == 0 { 0 } else { source.ends[k - 1] };
            if start > damaged_at {
                break;
            }
            if state != base.state_with(|s| if s.path == path { k } else { usize::MAX }) {
                continue;
            }
            let reported = report
                .iter()
                .any(|l| l.contains(&name) && l.contains(&format!("offset {start}:")));
            if reported {
                return Ok(Verdict::TornTailReported);
            }
            if matches!(damage, Damage::Cut(len) if *len == start) {
                return Ok(Verdict::ShorterUnsealedLog);
            }
        }
    }
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| state.get(*k) != Some(v))
        .map(|(k, _)| k.escape_ascii().to_string())
        .chain(
            state
                .keys()
                .filter(|k| !expected.contains_key(*k))
                .map(|k| format!("+{}", k.escape_ascii())),
        )
        .take(6)
        .collect();
    Err(format!(
        "a silent wrong answer: {} keys read, {} expected; differing: {wrong:?}; report: \
         {report:?}",
        state.len(),
        expected.len()
    ))
}

/// The campaign over both databases; prints its counts and fails on any failure.
#[test]
fn test_corruption_campaign() {
    let seed = seed();
    let full = full();
    let mut rng = Rng(seed);
    let mut tally: BTreeMap<Verdict, usize> = BTreeMap::new();
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut panics = 0;
    let mut total = 0;
    for closed in [true, false] {
        let base = build(closed);
        match open_and_read(&base.copy()) {
            Outcome::Opened(report, Ok(state)) => {
                assert_eq!(state, base.expected(), "the undamaged database");
                assert!(
                    report.iter().all(|l| l.contains("was flushed")),
                    "the undamaged database opens without surprises: {report:?}"
                );
            }
            _ => panic!("the undamaged database does not open and read"),
        }
        let files: Vec<PathBuf> = base
            .files
            .iter()
            .filter(|p| closed || p.extension().is_none_or(|e| e != "sst"))
            .cloned()
            .collect();
        for path in &files {
            let bytes = base.copy().read_all(path).unwrap();
            let kind = match path.extension().and_then(|e| e.to_str()) {
                Some("sst") => "SST",
                Some("wal") => "log",
                _ => "manifest",
            };
            for damage in cases(path, &bytes, &mut rng, full) {
                total += 1;
                *per_kind.entry(kind).or_default() += 1;
                let image = damaged_image(&base, path, &damage);
                match judge(&base, &image, path, &damage) {
                    Ok(verdict) => *tally.entry(verdict).or_default() += 1,
                    Err(failure) => {
                        panics += usize::from(failure.starts_with("panic"));
                        let how = if closed { "closed" } else { "crashed" };
                        failures.push(format!(
                            "{how} db, {} {damage:?}: {failure}",
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    let count = |v: Verdict| tally.get(&v).copied().unwrap_or(0);
    let silent = failures
        .iter()
        .filter(|f| f.contains("silent wrong answer"))
        .count();
    println!(
        "corruption campaign ({}; seed {seed}, MINI_LSM_SEED={seed} replays it): {total} cases \
         ({per_kind:?}); {} clean errors, {} intact, {} torn tails dropped and reported, {} \
         unsealed logs cut at a record boundary (what a crash leaves); {silent} silent wrong \
         answers, {panics} panics, {} failures",
        if full {
            "in full"
        } else {
            "a sample; MINI_LSM_FULL=1 for every cut and flip"
        },
        count(Verdict::CleanError),
        count(Verdict::Intact),
        count(Verdict::TornTailReported),
        count(Verdict::ShorterUnsealedLog),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed (seed {seed}); the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(8)].join("\n")
    );
}
