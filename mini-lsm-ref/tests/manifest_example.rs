// SPDX-License-Identifier: Apache-2.0
//! The manifest the book shows is the engine's. The worked example of the manifest chapter
//! (`book/src/week2-05-manifest.md`): the engine opens a fresh directory without a log, puts
//! `a → 1`, freezes and flushes; the annotated dump of its `MANIFEST` must be exactly
//! `book/src/dumps/w2d5-manifest.txt`, and reopened, the manifest `open` writes must be exactly
//! `w2d5-manifest-reopened.txt`. The offsets drawn in `book/src/figures/w2d5-manifest-replay.svg`
//! are checked against the same bytes. The checksums chapter (`week2-07-batch-checksums.md`)
//! shows the same manifest as the file really is, frames and checksums included:
//! `w2d7-manifest.txt`.
//!
//! The manifest chapter is read at week 2 day 5, so its dumps show what a day-5 engine writes: the
//! records of the kinds day 5 writes, framed as day 5 frames them (`len:u32 payload`, no
//! checksums). The payloads are the real engine's bytes; a note says what the finished engine
//! writes besides. After an intended change to the engine, `MINI_LSM_BLESS=1` rewrites the dumps
//! (review the diff, and the pages' prose beside it); the figure is drawn by hand and must be
//! redrawn.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mini_lsm::compact::{StrategyKind, TreeLayout};
use mini_lsm::lsm_storage::{LsmStorageInner, LsmStorageOptions};
use mini_lsm::manifest::{ManifestRecord, MANIFEST_NAME};
use mini_lsm::record::{decode_records, encode_record};

/// The book's source folder.
fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src")
}

/// Whether to rewrite the book's dumps rather than check them (`MINI_LSM_BLESS=1`).
fn bless() -> bool {
    std::env::var("MINI_LSM_BLESS").is_ok_and(|v| v.trim() == "1")
}

/// The two manifests of the example, as the engine wrote them: after `open`, a put, a freeze
/// and a flush; and the one the next `open` writes (read before anything else is appended).
fn example_manifests() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("db");
    // No log, no compaction, and no background thread: nothing but these steps writes.
    let options = LsmStorageOptions::default_for_week1_test;
    let engine = LsmStorageInner::open(&path, options()).expect("open a fresh directory");
    engine.put(b"a", b"1").expect("put a → 1");
    engine.freeze_memtable().expect("freeze");
    engine.force_flush_next_imm_memtable().expect("flush");
    let first = std::fs::read(path.join(MANIFEST_NAME)).expect("read the manifest");
    drop(engine);
    let engine = LsmStorageInner::open(&path, options()).expect("reopen");
    assert!(
        engine.recovery_report().is_empty(),
        "a clean reopen reports nothing: {:?}",
        engine.recovery_report()
    );
    let reopened = std::fs::read(path.join(MANIFEST_NAME)).expect("read the new manifest");
    drop(engine);
    (first, reopened)
}

/// One record of a dump: the fields of its frame before the payload (`len`, and from day 7
/// `len_crc`), the payload, and those after it (from day 7, `crc`).
#[derive(Clone)]
struct Framed {
    record: ManifestRecord,
    head: Vec<Vec<u8>>,
    payload: Vec<u8>,
    tail: Vec<Vec<u8>>,
}

impl Framed {
    /// The bytes of the frame alone.
    fn frame_len(&self) -> usize {
        self.head.iter().chain(&self.tail).map(Vec::len).sum()
    }

    /// The record's size in the file.
    fn len(&self) -> usize {
        self.frame_len() + self.payload.len()
    }
}

/// The records of a manifest file as the engine framed them (`src/record.rs`: `len:u32
/// len_crc:u32 payload crc:u32`), each payload checked against the engine's own decoder.
fn engine_records(bytes: &[u8]) -> Vec<Framed> {
    let log = decode_records(Path::new(MANIFEST_NAME), bytes).expect("the manifest decodes");
    assert_eq!(log.torn_tail_at, None, "a clean manifest has no torn tail");
    let field = |at: usize| bytes[at..at + 4].to_vec();
    let mut framed = Vec::new();
    let mut pos = 0;
    for payload in &log.payloads {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let record = Framed {
            record: ManifestRecord::decode(payload).expect("every record decodes"),
            head: vec![field(pos), field(pos + 4)],
            payload: bytes[pos + 8..pos + 8 + len].to_vec(),
            tail: vec![field(pos + 8 + len)],
        };
        assert_eq!(
            &record.payload[..],
            *payload,
            "the record at offset {pos} is framed as src/record.rs specifies"
        );
        pos += record.len();
        framed.push(record);
    }
    assert_eq!(pos, bytes.len(), "the records fill the file");
    framed
}

/// `records` as a week 2 engine writes them: from week 3 day 3 a flush is a `FlushAt` record,
/// which also carries the commit timestamp; before it, a `Flush`, framed by the engine's own
/// encoders. Week 3's other records stay, for the notes to name.
fn week2_view(records: Vec<Framed>) -> Vec<Framed> {
    records
        .into_iter()
        .map(|framed| match framed.record {
            ManifestRecord::FlushAt { id, .. } => {
                let record = ManifestRecord::Flush(id);
                let mut payload = Vec::new();
                record.encode(&mut payload);
                let mut bytes = Vec::new();
                encode_record(&mut bytes, &payload);
                let end = bytes.len();
                Framed {
                    record,
                    head: vec![bytes[..4].to_vec(), bytes[4..8].to_vec()],
                    payload,
                    tail: vec![bytes[end - 4..].to_vec()],
                }
            }
            _ => framed,
        })
        .collect()
}

/// `records` framed as a day-5 engine frames them: `len:u32 payload`.
fn day5_frames(records: &[Framed]) -> Vec<Framed> {
    records
        .iter()
        .map(|r| Framed {
            record: r.record.clone(),
            head: vec![(r.payload.len() as u32).to_be_bytes().to_vec()],
            payload: r.payload.clone(),
            tail: Vec::new(),
        })
        .collect()
}

/// Whether a day-5 engine writes records of this kind: the log's records come with the log (day
/// 6). A kind a later chapter adds must be sorted here too.
fn written_at_day5(record: &ManifestRecord) -> bool {
    match record {
        ManifestRecord::NewMemtable(_)
        | ManifestRecord::Flush(_)
        | ManifestRecord::Levels { .. }
        | ManifestRecord::Layout(_)
        | ManifestRecord::Reserved(_)
        | ManifestRecord::Floor(_) => true,
        ManifestRecord::LogSealed { .. } | ManifestRecord::LogSynced { .. } => false,
        // Week 3 day 3's.
        ManifestRecord::Format(_)
        | ManifestRecord::CommitTs(_)
        | ManifestRecord::FlushAt { .. } => false,
    }
}

/// Whether a day-7 engine writes records of this kind: every kind so far. A kind a later
/// chapter adds must be sorted here too.
fn written_by_day7(record: &ManifestRecord) -> bool {
    match record {
        ManifestRecord::NewMemtable(_)
        | ManifestRecord::Flush(_)
        | ManifestRecord::Levels { .. }
        | ManifestRecord::Layout(_)
        | ManifestRecord::LogSealed { .. }
        | ManifestRecord::LogSynced { .. }
        | ManifestRecord::Reserved(_)
        | ManifestRecord::Floor(_) => true,
        // Week 3 day 3's.
        ManifestRecord::Format(_)
        | ManifestRecord::CommitTs(_)
        | ManifestRecord::FlushAt { .. } => false,
    }
}

/// How a record reads in the dump and in the page's prose.
fn describe(record: &ManifestRecord) -> String {
    let ids = |ids: &[usize]| {
        let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
        format!("[{}]", list.join(", "))
    };
    match record {
        ManifestRecord::NewMemtable(id) => format!("NewMemtable {id}"),
        ManifestRecord::Flush(id) => format!("Flush {id}"),
        ManifestRecord::Levels { l0, levels } if l0.is_empty() && levels.is_empty() => {
            "Levels: empty".to_string()
        }
        ManifestRecord::Levels { l0, levels } => {
            let below = if levels.is_empty() {
                "no levels".to_string()
            } else {
                let each: Vec<String> = levels
                    .iter()
                    .map(|(level, l)| format!("L{level} = {}", ids(l)))
                    .collect();
                each.join(", ")
            };
            format!("Levels: L0 = {}, {below}", ids(l0))
        }
        ManifestRecord::Layout(layout) => format!("Layout: {layout}"),
        ManifestRecord::LogSealed { id, len } => format!("LogSealed {id} (len {len})"),
        ManifestRecord::LogSynced { id, len } => format!("LogSynced {id} (len {len})"),
        ManifestRecord::Reserved(id) => format!("Reserved {id}"),
        ManifestRecord::Floor(id) => format!("Floor {id}"),
        ManifestRecord::Format(version) => format!("Format {version}"),
        ManifestRecord::CommitTs(ts) => format!("CommitTs {ts}"),
        ManifestRecord::FlushAt { id, commit_ts } => format!("FlushAt {id} (ts {commit_ts})"),
    }
}

/// The widths of a payload's fields, in bytes, as `manifest.rs` specifies them.
fn field_widths(record: &ManifestRecord) -> Vec<usize> {
    let mut widths = vec![1];
    let list = |widths: &mut Vec<usize>, ids: &[usize]| {
        widths.push(4);
        if !ids.is_empty() {
            widths.push(8 * ids.len());
        }
    };
    match record {
        ManifestRecord::NewMemtable(_)
        | ManifestRecord::Flush(_)
        | ManifestRecord::Reserved(_)
        | ManifestRecord::Floor(_) => widths.push(8),
        ManifestRecord::Layout(_) => widths.extend([1, 4]),
        ManifestRecord::Format(_) => widths.push(4),
        ManifestRecord::CommitTs(_) => widths.push(8),
        ManifestRecord::FlushAt { .. } => widths.extend([8, 8]),
        ManifestRecord::LogSealed { .. } | ManifestRecord::LogSynced { .. } => {
            widths.extend([8, 8]);
        }
        ManifestRecord::Levels { l0, levels } => {
            list(&mut widths, l0);
            widths.push(4);
            for (_, ids) in levels {
                widths.push(4);
                list(&mut widths, ids);
            }
        }
    }
    widths
}

/// `bytes` in hex, a space between bytes.
fn hex(bytes: &[u8]) -> String {
    let each: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    each.join(" ")
}

/// The annotated dump of `records`: one line a record (a long payload wraps at a field, and the
/// frame's fields after the payload follow its last line), with the record's offset, its
/// frame's fields (named by `head` and `tail`), its payload field by field, and its meaning; then
/// the end offset. Returns the dump and the offset of each record and of the end.
fn dump(records: &[Framed], head: &[&str], tail: &[&str], column: usize) -> (String, Vec<usize>) {
    let mut out = format!("{:>6}", "offset");
    for name in head {
        write!(out, "  {name:<11}").unwrap();
    }
    write!(out, "  {:<column$}", "payload").unwrap();
    for name in tail {
        write!(out, "  {name:<11}").unwrap();
    }
    out.push_str("  record\n");
    let mut offsets = Vec::new();
    let mut offset = 0;
    for framed in records {
        offsets.push(offset);
        let widths = field_widths(&framed.record);
        assert_eq!(
            widths.iter().sum::<usize>(),
            framed.payload.len(),
            "the fields of {:?} as src/manifest.rs specifies them span its payload",
            framed.record
        );
        let mut lines = vec![String::new()];
        let mut rest = framed.payload.as_slice();
        for width in widths {
            let (field, more) = rest.split_at(width);
            rest = more;
            let field = hex(field);
            let line = lines.last_mut().expect("a line");
            if line.is_empty() {
                line.push_str(&field);
            } else if line.len() + 2 + field.len() <= column {
                line.push_str("  ");
                line.push_str(&field);
            } else {
                lines.push(field);
            }
        }
        let last = lines.len() - 1;
        for (i, payload) in lines.iter().enumerate() {
            let mut line = if i == 0 {
                format!("{offset:>6}")
            } else {
                " ".repeat(6)
            };
            for field in &framed.head {
                let field = if i == 0 { hex(field) } else { String::new() };
                write!(line, "  {field:<11}").unwrap();
            }
            write!(line, "  {payload:<column$}").unwrap();
            for field in &framed.tail {
                let field = if i == last { hex(field) } else { String::new() };
                write!(line, "  {field:<11}").unwrap();
            }
            if i == 0 {
                write!(line, "  {}", describe(&framed.record)).unwrap();
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        offset += framed.len();
    }
    offsets.push(offset);
    writeln!(
        out,
        "{offset:>6}  end of file: {} records, {offset} bytes",
        records.len()
    )
    .unwrap();
    (out, offsets)
}

/// The dump the manifest chapter shows of the manifest `bytes`, and the offsets of its records
/// (and its end): the records a day-5 engine writes, framed as it frames them, and a note on
/// what the finished engine writes besides.
fn day5_dump(bytes: &[u8]) -> (String, Vec<usize>) {
    let engine = engine_records(bytes);
    let all = week2_view(engine.clone());
    let kept = day5_frames(
        &all.iter()
            .filter(|r| written_at_day5(&r.record))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let (mut out, offsets) = dump(&kept, &["len"], &[], 41);
    // What the finished engine writes besides, each after the record it follows.
    let mut extra = Vec::new();
    for (i, framed) in engine.iter().enumerate() {
        if let ManifestRecord::FlushAt { id, .. } = framed.record {
            extra.push(format!("{} for Flush {id}", describe(&framed.record)));
        } else if !written_at_day5(&framed.record) {
            let after = i
                .checked_sub(1)
                .map_or("as the first record".to_string(), |p| {
                    format!("after {}", describe(&engine[p].record))
                });
            extra.push(format!("{} {after}", describe(&framed.record)));
        }
    }
    let besides = if extra.is_empty() {
        "no other record".to_string()
    } else {
        format!("adds {}", extra.join(", "))
    };
    let note = format!(
        "(the finished engine: {} records, {} bytes; it frames each record in {} bytes, not {}, \
         and {besides})",
        all.len(),
        bytes.len(),
        all[0].frame_len(),
        kept[0].frame_len(),
    );
    for line in wrap(&note, 100 - 8) {
        writeln!(out, "        {line}").unwrap();
    }
    (out, offsets)
}

/// The dump the checksums chapter shows of the manifest `bytes`: every record a day-7 engine
/// writes, framed as the file frames it.
fn day7_dump(bytes: &[u8]) -> String {
    let kept: Vec<Framed> = week2_view(engine_records(bytes))
        .into_iter()
        .filter(|r| written_by_day7(&r.record))
        .collect();
    dump(&kept, &["len", "len_crc"], &["crc"], 28).0
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Checks (or, blessing, writes) the book file `name` under `book/src/dumps`.
fn check_book_file(name: &str, expected: &str, problems: &mut Vec<String>) {
    let dir = book_src().join("dumps");
    let path = dir.join(name);
    if bless() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, expected).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(found) if found == expected => {}
        Ok(found) => problems.push(format!(
            "book/src/dumps/{name} differs from the engine's manifest:\n--- book\n{found}\n--- \
             engine\n{expected}"
        )),
        Err(e) => problems.push(format!("book/src/dumps/{name}: {e}")),
    }
}

/// The numbers of the `<text>` elements inside the SVG group `<g id="{id}">`, in order.
fn figure_offsets(svg: &str, id: &str) -> Vec<usize> {
    let start = svg
        .find(&format!("<g id=\"{id}\""))
        .unwrap_or_else(|| panic!("the figure has no group `{id}`"));
    let group = &svg[start..];
    let group = &group[..group.find("</g>").expect("the group ends")];
    group
        .split("<text")
        .skip(1)
        .map(|text| {
            let body = &text[text.find('>').expect("a text element") + 1..];
            let body = &body[..body.find('<').expect("the text ends")];
            body.trim()
                .parse()
                .unwrap_or_else(|_| panic!("`{id}`: `{body}` is not an offset"))
        })
        .collect()
}

/// The records the page's prose and figure walk through: `open` writes the floor, the layout,
/// the empty SST structure and memtable 0; the freeze memtable 1; the flush turns memtable 0
/// into SST 0; the next `open` writes floor 2, the layout, L0 = [0] and memtable 2 (memtable 1
/// had no log, so nothing of it is recovered). The dumps in the book are exactly these bytes,
/// and the figure's offsets are theirs.
#[test]
fn test_book_manifest_example_is_the_engines() {
    let (first, reopened) = example_manifests();
    let day5 = |bytes: &[u8]| -> Vec<ManifestRecord> {
        week2_view(engine_records(bytes))
            .into_iter()
            .map(|framed| framed.record)
            .filter(written_at_day5)
            .collect()
    };
    let layout = ManifestRecord::Layout(TreeLayout {
        strategy: StrategyKind::NoCompaction,
        max_levels: 0,
    });
    let levels = |l0: Vec<usize>| ManifestRecord::Levels { l0, levels: vec![] };
    // The page describes these records in words: change it with them.
    assert_eq!(
        day5(&first),
        [
            ManifestRecord::Floor(0),
            layout.clone(),
            levels(vec![]),
            ManifestRecord::NewMemtable(0),
            ManifestRecord::NewMemtable(1),
            ManifestRecord::Flush(0),
        ],
        "the records of the first manifest (the page's prose describes them)"
    );
    assert_eq!(
        day5(&reopened),
        [
            ManifestRecord::Floor(2),
            layout,
            levels(vec![0]),
            ManifestRecord::NewMemtable(2),
        ],
        "the records of the manifest the next open writes (the page's prose describes them)"
    );

    let mut problems = Vec::new();
    let (dump, first_offsets) = day5_dump(&first);
    check_book_file("w2d5-manifest.txt", &dump, &mut problems);
    let (dump, reopened_offsets) = day5_dump(&reopened);
    check_book_file("w2d5-manifest-reopened.txt", &dump, &mut problems);
    check_book_file("w2d7-manifest.txt", &day7_dump(&first), &mut problems);

    let figure = book_src().join("figures/w2d5-manifest-replay.svg");
    let svg = std::fs::read_to_string(&figure).expect("read the figure");
    for (group, offsets) in [
        ("offsets-first", &first_offsets),
        ("offsets-reopened", &reopened_offsets),
    ] {
        let drawn = figure_offsets(&svg, group);
        if &drawn != offsets {
            problems.push(format!(
                "book/src/figures/w2d5-manifest-replay.svg, group `{group}`: the figure marks \
                 offsets {drawn:?}, the records start at {offsets:?} (redraw it by hand)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n(MINI_LSM_BLESS=1 rewrites the dumps; the figure is redrawn by hand)",
        problems.join("\n")
    );
}
