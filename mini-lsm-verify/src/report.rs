// SPDX-License-Identifier: Apache-2.0
//! What verify and compare print: a failure with its shrunk case, the dumps and a test to paste;
//! a stub the engine reached, as an explanation rather than a panic.

use std::fmt::Write;

use crate::engines::Reply;
use crate::ops::{Case, Chapter};
use crate::run::{model_trace, Divergence, Stub};
use crate::search::Failure;

/// Who is compared with whom, for the wording.
#[derive(Debug, Clone, Copy)]
pub struct Sides {
    /// "the engine", "your engine".
    pub subject: &'static str,
    /// "the model", "the reference".
    pub oracle: &'static str,
}

/// `text` with every line indented by `by`.
pub fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// The operations of a case, numbered, one a line, with the configuration first; `stamped`
/// (from week 3 day 3) adds the timestamp each write commits at and each read at an older
/// timestamp reads at, as the model has them.
pub fn listing(case: &Case, mark: Option<usize>, stamped: bool) -> String {
    let mut out = format!("    {}\n", case.config);
    let trace = model_trace(case);
    let ops: Vec<String> = case.ops.iter().map(ToString::to_string).collect();
    let width = ops.iter().map(String::len).max().unwrap_or(0);
    for (i, (op, step)) in ops.iter().zip(&trace).enumerate() {
        let arrow = if Some(i) == mark {
            "   <- diverges"
        } else {
            ""
        };
        let stamp = match (&step.reply, step.commit_ts, step.read_ts) {
            (Ok(Reply::Conflict), ..) => "conflict".to_string(),
            (Ok(Reply::Committed(None)), ..) => "read-only".to_string(),
            (Ok(Reply::Refused(_)), _, Some(ts)) => format!("ts {ts} refused"),
            (_, Some(ts), _) => format!("ts {ts}"),
            (_, _, Some(ts)) => format!("as of ts {ts}"),
            _ => String::new(),
        };
        let line = if stamped {
            format!("    #{i:<3} {op:<width$}   {stamp:<11}{arrow}")
        } else {
            format!("    #{i:<3} {op}{arrow}")
        };
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// One line: what the subject and the oracle said at the divergence.
pub fn summary(case: &Case, d: &Divergence, sides: Sides) -> String {
    let at = match d.at {
        Some(i) => format!("op #{i} `{}`", case.ops[i]),
        None => "open".to_string(),
    };
    format!(
        "{at}: {} returned {}, {} {}",
        sides.subject, d.got, sides.oracle, d.want
    )
}

/// The whole report of a failure; `stamped` as for [`listing`].
pub fn failure(f: &Failure, sides: Sides, stamped: bool) -> String {
    let d = &f.divergence;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "FAILED (seed {}): {} disagrees with {} after {} operations.",
        f.seed,
        sides.subject,
        sides.oracle,
        f.original.ops.len()
    );
    let _ = writeln!(
        out,
        "Shrunk from {} to {} operations in {:.1?}:",
        f.original.ops.len(),
        f.shrunk.ops.len(),
        f.shrink_elapsed
    );
    out.push_str(&listing(&f.shrunk, d.at, stamped));
    let _ = writeln!(out, "\nAt {}.", summary(&f.shrunk, d, sides));
    let after =
        d.at.map_or("at open".to_string(), |i| format!("after op #{i}"));
    let _ = writeln!(out, "\n{}'s dump {after}:", capitalize(sides.subject));
    out.push_str(&indent(&d.dump, "    "));
    let _ = writeln!(out, "{}'s dump {after}:", capitalize(sides.oracle));
    out.push_str(&indent(&d.oracle_dump, "    "));
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// Where a case reached a stub: "at `put k00 v0`, the shortest case that gets there (...)".
pub fn stub_place(case: &Case, at: Option<usize>) -> String {
    let place = match at {
        Some(i) => format!("`{}`", case.ops[i]),
        None => "opening the engine".to_string(),
    };
    format!(
        "at {place}, the shortest case that gets there ({})",
        case.config
    )
}

/// The explanation of a stub reached `place` (see [`stub_place`]); `tool` is "verify" or
/// "compare", `narrow` says how to ask it for fewer chapters.
pub fn stub(stub: &Stub, place: &str, upto: Chapter, tool: &str, narrow: &str) -> String {
    let mut out = format!("{tool}: your engine does not implement {stub} yet.\n");
    let _ = writeln!(out, "It reached that stub {place}.");
    if stub.chapter == Chapter::MEMTABLE {
        let _ = writeln!(
            out,
            "{tool} has nothing to check before {} is done: every operation needs the memtable.",
            Chapter::MEMTABLE
        );
    } else if stub.chapter <= upto {
        let _ = writeln!(
            out,
            "{tool} ran the operations of the chapters up to {upto}, which includes {}; finish \
             that chapter, or {narrow} before it to check what is done.",
            stub.chapter,
        );
    } else {
        let _ = writeln!(
            out,
            "{tool} ran the operations of the chapters up to {upto} only, yet one of them needs \
             {}: a task of an earlier chapter may call it.",
            stub.chapter
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::Reply;
    use crate::ops::{Config, Op, Strategy};
    use crate::run::Step;

    fn case() -> Case {
        Case {
            config: Config::new(Strategy::None, false),
            ops: vec![
                Op::Put(b"k1".to_vec(), b"v1".to_vec()),
                Op::Get(b"k1".to_vec()),
            ],
        }
    }

    /// A pristine starter's stub is explained: the task, its page, and that there is nothing to
    /// check yet, with no panic text.
    #[test]
    fn a_first_stub_says_there_is_nothing_to_check() {
        let stub = Stub::parse(
            "not yet implemented: week 1 day 1, task 2: write puts and deletes through the \
             engine into the memtable (book: week1-01-memtable)",
        )
        .unwrap();
        let place = stub_place(&case(), Some(0));
        let text = super::stub(&stub, &place, Chapter::MEMTABLE, "verify", "pass --upto");
        assert!(text.starts_with(
            "verify: your engine does not implement week 1 day 1, task 2: write puts and \
             deletes through the engine into the memtable (book: book/src/week1-01-memtable.md) \
             yet.\n"
        ));
        assert!(text.contains("at `put k1 v1`"), "{text}");
        assert!(
            text.contains("nothing to check before week 1 day 1 is done"),
            "{text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }

    /// A failure report lists the shrunk case, marks the diverging operation, and shows both
    /// answers and both dumps.
    #[test]
    fn a_failure_shows_the_case_and_both_dumps() {
        let f = Failure {
            seed: 77,
            original: case(),
            shrunk: case(),
            divergence: Divergence {
                at: Some(1),
                got: Step::Reply(Reply::Value(None)),
                want: Step::Reply(Reply::Value(Some(b"v1".to_vec()))),
                dump: "memtable id=0".into(),
                oracle_dump: "1 keys: k1=v1".into(),
            },
            shrink_elapsed: std::time::Duration::from_millis(5),
        };
        let sides = Sides {
            subject: "your engine",
            oracle: "the reference",
        };
        let text = failure(&f, sides, false);
        assert!(text.contains("    #1   get k1   <- diverges\n"), "{text}");
        assert!(
            text.contains("At op #1 `get k1`: your engine returned None, the reference Some(v1)."),
            "{text}"
        );
        assert!(text.contains("Your engine's dump after op #1:\n    memtable id=0\n"));
        assert!(text.contains("The reference's dump after op #1:\n    1 keys: k1=v1\n"));
    }
}
