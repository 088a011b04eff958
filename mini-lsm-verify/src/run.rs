// SPDX-License-Identifier: Apache-2.0
//! Running one case: the subject (the engine under test) and the oracle (the model, or the
//! reference for `compare`) take the same operations, and the first reply that differs is the
//! divergence.
//!
//! Every call into an engine is guarded: a panic is caught and becomes the step's outcome, with
//! its location, and a `todo!()` stub of the course (`not yet implemented: week 1 day 1, task 1:
//! ...`) becomes a [`Stub`]: the engine does not implement that task yet, which is not a bug to
//! shrink but a fact to explain.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::engines::{Engine, Opener, Refusal, Reply};
use crate::ops::{Case, Chapter};
use crate::text::show;

/// A task stub the engine reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stub {
    /// The chapter of the task.
    pub chapter: Chapter,
    /// The task's number within its chapter.
    pub task: u32,
    /// The rest of the stub's message: the task and its book page.
    pub what: String,
}

impl Stub {
    /// Parses a panic message `not yet implemented: week 1 day 1, task 1: ... (book: ...)`.
    pub fn parse(message: &str) -> Option<Self> {
        let rest = message.strip_prefix("not yet implemented: week ")?;
        let (week, rest) = rest.split_once(" day ")?;
        let (day, rest) = rest.split_once(", task ")?;
        let (task, what) = rest.split_once(": ")?;
        Some(Self {
            chapter: Chapter(week.parse().ok()?, day.parse().ok()?),
            task: task.parse().ok()?,
            what: what.to_string(),
        })
    }

    /// The book page the stub names (`book/src/<page>.md`), if it names one.
    pub fn book_page(&self) -> Option<String> {
        let page = self.what.rsplit_once("(book: ")?.1.strip_suffix(')')?;
        Some(format!("book/src/{page}.md"))
    }
}

impl fmt::Display for Stub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = self
            .what
            .rsplit_once(" (book: ")
            .map_or(self.what.as_str(), |(t, _)| t);
        write!(f, "{}, task {}: {task}", self.chapter, self.task)?;
        if let Some(page) = self.book_page() {
            write!(f, " (book: {page})")?;
        }
        Ok(())
    }
}

/// What one guarded call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A reply.
    Reply(Reply),
    /// An error the engine returned.
    Error(String),
    /// A panic, with where it happened.
    Panic { message: String, location: String },
    /// A `todo!()` of the course.
    Stub(Stub),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Reply(Reply::Done) => write!(f, "ok"),
            Step::Reply(Reply::Value(None)) => write!(f, "None"),
            Step::Reply(Reply::Value(Some(v))) => write!(f, "Some({})", show(v)),
            Step::Reply(Reply::Ts(ts)) => write!(f, "ts {ts}"),
            Step::Reply(Reply::Acked(acked)) => {
                let shown: Vec<&str> = acked
                    .iter()
                    .map(|&a| if a { "ok" } else { "failed" })
                    .collect();
                write!(f, "writes that returned [{}]", shown.join(" "))
            }
            Step::Reply(Reply::WhileHeld(ts)) => {
                write!(f, "latest commit {ts} while the group waited")
            }
            Step::Reply(Reply::Committed(Some(ts))) => write!(f, "committed at ts {ts}"),
            Step::Reply(Reply::Committed(None)) => write!(f, "committed (it wrote nothing)"),
            Step::Reply(Reply::Conflict) => write!(f, "a conflict (nothing committed)"),
            Step::Reply(Reply::Refused(Refusal::BelowWatermark { ts, watermark })) => {
                write!(f, "refused: ts {ts} is below the watermark {watermark}")
            }
            Step::Reply(Reply::Refused(Refusal::AboveLatestCommit { ts, latest })) => {
                write!(f, "refused: ts {ts} is above the latest commit {latest}")
            }
            Step::Reply(Reply::Entries(entries)) => {
                let shown: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}={}", show(k), show(v)))
                    .collect();
                write!(f, "[{}]", shown.join(" "))
            }
            Step::Error(e) => write!(f, "error: {e}"),
            Step::Panic { message, location } => write!(f, "panic at {location}: {message}"),
            Step::Stub(stub) => write!(f, "stub: {stub}"),
        }
    }
}

thread_local! {
    /// Set while a guarded call runs: its panics are caught and reported, not printed.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic happened.
    static LOCATION: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Installs a panic hook that keeps guarded panics quiet (their message is reported with the
/// case instead) and prints every other panic as usual.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if GUARDED.with(Cell::get) {
            let at = info.location().map(|l| l.to_string()).unwrap_or_default();
            LOCATION.with(|l| *l.borrow_mut() = at);
        } else {
            default(info);
        }
    }));
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a panic without a message)".to_string())
}

/// A panic caught on a thread of its own: its payload, and where it happened.
pub type Caught = (Box<dyn std::any::Any + Send>, String);

/// Runs `f` on a thread an adapter started (a writer of a `group`), keeping its panic quiet as
/// [`guarded`] does; the caller hands a caught panic to [`rethrow`] on the guarded thread.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, Caught> {
    GUARDED.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    result.map_err(|payload| (payload, LOCATION.with(|l| l.borrow().clone())))
}

/// Panics again with a panic [`quietly`] caught, so that the [`guarded`] call around it reports
/// it (a stub reached on a writer's thread is a stub, not a bug).
pub fn rethrow((payload, location): Caught) -> ! {
    LOCATION.with(|l| *l.borrow_mut() = location);
    std::panic::resume_unwind(payload)
}

/// Runs `f`, turning a panic into a [`Step`].
pub fn guarded<T>(f: impl FnOnce() -> anyhow::Result<T>) -> Result<T, Step> {
    GUARDED.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Step::Error(format!("{e:#}"))),
        Err(panic) => {
            let message = panic_message(&*panic);
            Err(match Stub::parse(&message) {
                Some(stub) => Step::Stub(stub),
                None => Step::Panic {
                    message,
                    location: LOCATION.with(|l| l.borrow().clone()),
                },
            })
        }
    }
}

/// The first disagreement between the subject and the oracle.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// The operation's index, or `None` when opening the engine failed.
    pub at: Option<usize>,
    /// The subject's outcome.
    pub got: Step,
    /// The oracle's.
    pub want: Step,
    /// The subject's `dump` right after the operation.
    pub dump: String,
    /// The oracle's `dump` then.
    pub oracle_dump: String,
}

/// How a case ended.
#[derive(Debug, Clone)]
pub enum CaseOutcome {
    /// Every reply agreed; `reads` non-empty reads were checked.
    Pass { reads: usize },
    /// A reply differed.
    Diverged(Divergence),
    /// The subject reached a task stub at operation `at` (`None`: at open).
    Stub { at: Option<usize>, stub: Stub },
}

/// Counts operations run, for the watchdog; and names the one running now.
pub static OPS_RUN: AtomicU64 = AtomicU64::new(0);
/// The operation running now, for the watchdog's report.
pub static CURRENT_OP: Mutex<String> = Mutex::new(String::new());

fn dump_of(engine: &dyn Engine) -> String {
    guarded(|| Ok(engine.dump())).unwrap_or_else(|step| format!("(dump failed: {step})\n"))
}

fn open_guarded(open: Opener<'_>, case: &Case) -> Result<Box<dyn Engine>, Step> {
    guarded(|| open(case.config))
}

/// Runs `case` on a fresh subject and a fresh oracle.
pub fn run_case(case: &Case, subject: Opener<'_>, oracle: Opener<'_>) -> CaseOutcome {
    let mut oracle = match open_guarded(oracle, case) {
        Ok(engine) => engine,
        Err(step) => {
            return CaseOutcome::Diverged(Divergence {
                at: None,
                got: Step::Reply(Reply::Done),
                want: step,
                dump: String::new(),
                oracle_dump: String::new(),
            })
        }
    };
    let mut subject = match open_guarded(subject, case) {
        Ok(engine) => engine,
        Err(Step::Stub(stub)) => return CaseOutcome::Stub { at: None, stub },
        Err(step) => {
            return CaseOutcome::Diverged(Divergence {
                at: None,
                got: step,
                want: Step::Reply(Reply::Done),
                dump: String::new(),
                oracle_dump: dump_of(&*oracle),
            })
        }
    };
    let mut reads = 0;
    for (i, op) in case.ops.iter().enumerate() {
        if let Ok(mut current) = CURRENT_OP.lock() {
            *current = op.to_string();
        }
        OPS_RUN.fetch_add(1, Ordering::Relaxed);
        let got = match guarded(|| subject.apply(op)) {
            Ok(reply) => Step::Reply(reply),
            Err(Step::Stub(stub)) => return CaseOutcome::Stub { at: Some(i), stub },
            Err(step) => step,
        };
        let want = match guarded(|| oracle.apply(op)) {
            Ok(reply) => Step::Reply(reply),
            Err(step) => step,
        };
        if got != want {
            return CaseOutcome::Diverged(Divergence {
                at: Some(i),
                got,
                want,
                dump: dump_of(&*subject),
                oracle_dump: dump_of(&*oracle),
            });
        }
        if op.is_read() && !matches!(got, Step::Reply(Reply::Entries(ref e)) if e.is_empty()) {
            reads += 1;
        }
    }
    CaseOutcome::Pass { reads }
}

/// What the model did at one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// Its reply, or why it refused the operation (only a hand-written case misuses a slot).
    pub reply: Result<Reply, String>,
    /// The timestamp it read at, if not the latest commit (a snapshot's, or an older one).
    pub read_ts: Option<u64>,
    /// The timestamp it committed at, if it wrote.
    pub commit_ts: Option<u64>,
}

/// What the model does at each operation of `case` (for the printed test's assertions and the
/// listings).
pub fn model_trace(case: &Case) -> Vec<Traced> {
    let mut model = crate::model::Model::for_case(Chapter::COMMIT_TS, case.config);
    case.ops
        .iter()
        .map(|op| Traced {
            read_ts: model.read_ts(op),
            commit_ts: model.commit_ts(op),
            reply: model.apply(op).map_err(|e| format!("{e:#}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stub's panic message is recognised and shown with its chapter, task and page.
    #[test]
    fn stubs_are_recognised() {
        let stub = Stub::parse(
            "not yet implemented: week 1 day 6, task 1: flush the earliest immutable memtable to \
             a new L0 SST (book: week1-06-write-path)",
        )
        .unwrap();
        assert_eq!(stub.chapter, Chapter::FLUSH);
        assert_eq!(stub.task, 1);
        assert_eq!(
            stub.to_string(),
            "week 1 day 6, task 1: flush the earliest immutable memtable to a new L0 SST \
             (book: book/src/week1-06-write-path.md)"
        );
        assert_eq!(Stub::parse("not yet implemented"), None);
        assert_eq!(Stub::parse("index out of bounds"), None);
    }

    /// A panic inside a guarded call becomes a step with its message and location.
    #[test]
    fn guarded_panics_become_steps() {
        install_panic_hook();
        let step = guarded(|| -> anyhow::Result<()> { panic!("boom {}", 7) }).unwrap_err();
        match step {
            Step::Panic { message, location } => {
                assert_eq!(message, "boom 7");
                assert!(location.contains("run.rs"), "{location}");
            }
            other => panic!("expected a panic step, got {other:?}"),
        }
        let stub = guarded(|| -> anyhow::Result<()> {
            todo!("week 2 day 7, task 2: write a batch (book: week2-07-batch-checksums)")
        });
        assert!(matches!(stub, Err(Step::Stub(s)) if s.chapter == Chapter::BATCH));
    }
}
