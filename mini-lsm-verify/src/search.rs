// SPDX-License-Identifier: Apache-2.0
//! The search: random cases until one fails or the budget runs out, then proptest's shrinking.
//!
//! Case `i` of a run with seed `S` is generated from seed `S + i` alone, so `--seed S+i --cases 1`
//! replays exactly that case. Each case gets its own proptest `TestRunner`; when it fails, the
//! runner shrinks it (dropping operations, simplifying the rest, keeping every change after which
//! the case still fails: see [`crate::gen`]); then verify shrinks it on, deleting again,
//! replacing runs of writes that only fill the memtable with one `freeze` and dropping records
//! of batches; and the shrunk case is run once more for its report and dumps.

use std::cell::RefCell;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::strategy::{Just, Strategy};
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use proptest_state_machine::strategy::Sequential;

use crate::engines::Opener;
use crate::gen::{self, Mix, State};
use crate::ops::{Case, Config, Op};
use crate::run::{run_case, CaseOutcome, Divergence, Stub};

/// How long a search may go on.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// At most this many cases.
    pub cases: Option<u64>,
    /// At most this long (checked between cases).
    pub time: Option<Duration>,
}

/// What a search looks for, and with what.
pub struct Search<'a> {
    pub mix: Mix,
    pub max_ops: usize,
    pub seed: u64,
    pub budget: Budget,
    /// How long shrinking one failure may take.
    pub shrink_time: Duration,
    pub subject: Opener<'a>,
    pub oracle: Opener<'a>,
}

/// A failure, shrunk.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that generates the original case.
    pub seed: u64,
    /// The original case, cut after its failing operation.
    pub original: Case,
    /// The shrunk case, cut after its failing operation.
    pub shrunk: Case,
    /// The shrunk case's divergence, with the dumps.
    pub divergence: Divergence,
    /// How long the shrinking took.
    pub shrink_elapsed: Duration,
}

/// How a search ended.
#[derive(Debug, Clone)]
pub enum Found {
    /// No failure in `cases` cases.
    Clean { cases: u64, reads: usize },
    /// A failure.
    Failure(Failure),
    /// The engine reached a task stub: shrunk to the shortest case that reaches it.
    Stub {
        case: Case,
        at: Option<usize>,
        stub: Stub,
    },
}

/// Cuts `case` after operation `at` (the rest cannot matter).
fn cut(case: &Case, at: Option<usize>) -> Case {
    let len = at.map_or(0, |i| i + 1);
    Case {
        config: case.config,
        ops: case.ops[..len.min(case.ops.len())].to_vec(),
    }
}

/// The proptest RNG for case seed `seed`.
fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Fails a case that diverges (or reaches a stub), recording how many operations ran in `seen`.
fn check(
    search: &Search<'_>,
    case: &Case,
    seen: Option<&std::sync::atomic::AtomicUsize>,
    on_pass: &dyn Fn(usize),
) -> Result<(), TestCaseError> {
    let at = match run_case(case, search.subject, search.oracle) {
        CaseOutcome::Pass { reads } => {
            on_pass(reads);
            return Ok(());
        }
        CaseOutcome::Diverged(d) => d.at,
        CaseOutcome::Stub { at, .. } => at,
    };
    // The operations after the failing one never ran: shrinking drops them at once.
    if let Some(seen) = seen {
        seen.store(at.map_or(0, |i| i + 1), std::sync::atomic::Ordering::SeqCst);
    }
    Err(TestCaseError::fail("diverged"))
}

impl Search<'_> {
    fn runner(&self, seed: u64, deadline: Instant) -> TestRunner {
        let left = deadline.saturating_duration_since(Instant::now());
        let config = RunnerConfig {
            cases: 1,
            failure_persistence: None,
            max_shrink_iters: 1_000_000,
            // At least a millisecond: zero means no limit to proptest.
            max_shrink_time: left.as_millis().clamp(1, u32::MAX as u128) as u32,
            ..RunnerConfig::default()
        };
        TestRunner::new_with_rng(config, rng(seed))
    }

    /// Shrinks a shrunk case further: proptest's shrinker deletes operations in one pass, before
    /// it simplifies the rest, and a simplification can make an operation it kept deletable. So
    /// the case is fed to the shrinker again, as a state machine whose transitions are its
    /// operations, until a round deletes nothing or the time is up.
    fn reshrink(&self, mut case: Case, deadline: Instant) -> Case {
        while Instant::now() < deadline && case.ops.len() > 1 {
            let ops = Arc::new(case.ops.clone());
            let len = ops.len();
            let strategy = Sequential::new(
                (len..=len).into(),
                {
                    let state = State::new(case.config);
                    move || Just((state, 0usize)).boxed()
                },
                |state: &(State, usize), op: &Op| state.0.allows(op),
                move |state: &(State, usize)| Just(ops[state.1].clone()).boxed(),
                |(state, i), op| (state.after(op), i + 1),
            );
            let result = self
                .runner(0, deadline)
                .run(&strategy, |(state, ops, seen)| {
                    let case = Case {
                        config: state.0.config,
                        ops,
                    };
                    check(self, &case, seen.as_deref(), &|_| {})
                });
            match result {
                Err(TestError::Fail(_, ((state, _), ops, _))) if ops.len() < case.ops.len() => {
                    case = Case {
                        config: state.config,
                        ops,
                    };
                }
                _ => break,
            }
        }
        case
    }

    /// Replaces a run of two or more operations with one `freeze`, there or just before a later
    /// `flush`, the longest run first, if the case still diverges after it: a bug that needs data
    /// in an SST is often found with writes that only fill the memtable until it freezes by
    /// itself, and none of those writes can be deleted alone (the freeze would then come later,
    /// or never). Returns the shorter case.
    fn freeze_runs(&self, case: &Case, deadline: Instant) -> Option<Case> {
        let n = case.ops.len();
        for len in (2..n).rev() {
            for start in 0..=n - len {
                let mut without = case.ops[..start].to_vec();
                without.extend_from_slice(&case.ops[start + len..]);
                let flushes = (start..without.len()).filter(|&i| without[i] == Op::Flush);
                for at in std::iter::once(start).chain(flushes) {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    let mut ops = without.clone();
                    ops.insert(at, Op::Freeze);
                    if let Some(shorter) = self.still_diverges(case.config, ops) {
                        return Some(shorter);
                    }
                }
            }
        }
        None
    }

    /// The case of `config` and `ops`, cut after its divergence, if every operation is allowed
    /// where it stands and the case still diverges.
    fn still_diverges(&self, config: Config, ops: Vec<Op>) -> Option<Case> {
        let candidate = Case { config, ops };
        let mut state = State::new(config);
        let allowed = candidate.ops.iter().all(|op| {
            let ok = state.allows(op);
            state = state.after(op);
            ok
        });
        if !allowed {
            return None;
        }
        match run_case(&candidate, self.subject, self.oracle) {
            CaseOutcome::Diverged(d) => Some(cut(&candidate, d.at)),
            _ => None,
        }
    }

    /// Drops one record of a batch, if the case still diverges without it: proptest simplifies
    /// an operation once, and a batch it could not simplify then keeps records it does not need.
    fn thin_batches(&self, case: &Case, deadline: Instant) -> Option<Case> {
        for (i, op) in case.ops.iter().enumerate() {
            let Op::Batch(records) = op else { continue };
            if records.len() < 2 {
                continue;
            }
            for j in 0..records.len() {
                if Instant::now() >= deadline {
                    return None;
                }
                let mut ops = case.ops.clone();
                let mut fewer = records.clone();
                fewer.remove(j);
                ops[i] = Op::Batch(fewer);
                if let Some(thinner) = self.still_diverges(case.config, ops) {
                    return Some(thinner);
                }
            }
        }
        None
    }

    /// Shrinks a case proptest has shrunk: [`Self::reshrink`], then [`Self::freeze_runs`] or
    /// [`Self::thin_batches`], and again, until none makes it smaller or the time is up. A case
    /// that stopped at a stub is only reshrunk (a freeze would not bring it nearer the stub).
    pub fn minimize(&self, mut case: Case, deadline: Instant) -> Case {
        loop {
            case = self.reshrink(case, deadline);
            let diverges = matches!(
                run_case(&case, self.subject, self.oracle),
                CaseOutcome::Diverged(_)
            );
            let smaller = diverges
                .then(|| {
                    self.freeze_runs(&case, deadline)
                        .or_else(|| self.thin_batches(&case, deadline))
                })
                .flatten();
            match smaller {
                Some(smaller) => case = smaller,
                None => return case,
            }
        }
    }

    /// Runs the search; `progress` is called after each case with the number of cases so far.
    pub fn run(&self, progress: &mut dyn FnMut(u64)) -> Found {
        let started = Instant::now();
        let strategy = gen::case(self.mix, self.max_ops);
        let mut reads = 0;
        let mut cases = 0u64;
        loop {
            let out_of_cases = self.budget.cases.is_some_and(|n| cases >= n);
            let out_of_time = self.budget.time.is_some_and(|t| started.elapsed() >= t);
            if out_of_cases || out_of_time {
                return Found::Clean { cases, reads };
            }
            let seed = self.seed.wrapping_add(cases);
            cases += 1;
            // Generation never takes long; the deadline is for the shrinking.
            let deadline = Instant::now() + self.shrink_time;
            let first: RefCell<Option<Case>> = RefCell::new(None);
            let last_reads = RefCell::new(0);
            let shrink_started = RefCell::new(None::<Instant>);
            let result = self
                .runner(seed, deadline)
                .run(&strategy, |(state, ops, seen)| {
                    let case = Case {
                        config: state.config,
                        ops,
                    };
                    let result = check(self, &case, seen.as_deref(), &|r| {
                        *last_reads.borrow_mut() = r;
                    });
                    if result.is_err() && first.borrow().is_none() {
                        let ran = seen.map_or(case.ops.len(), |s| s.load(SeqCst));
                        *first.borrow_mut() = Some(Case {
                            config: case.config,
                            ops: case.ops[..ran.min(case.ops.len())].to_vec(),
                        });
                        *shrink_started.borrow_mut() = Some(Instant::now());
                    }
                    result
                });
            progress(cases);
            let shrunk = match result {
                Ok(()) => {
                    reads += *last_reads.borrow();
                    continue;
                }
                Err(TestError::Fail(_, (state, ops, _))) => self.minimize(
                    Case {
                        config: state.config,
                        ops,
                    },
                    deadline,
                ),
                Err(TestError::Abort(reason)) => {
                    unreachable!("a case is never rejected: {reason}")
                }
            };
            let shrink_elapsed = shrink_started
                .borrow()
                .map_or(Duration::ZERO, |t| t.elapsed());
            let original = first.borrow().clone().unwrap_or_else(|| shrunk.clone());
            return match run_case(&shrunk, self.subject, self.oracle) {
                CaseOutcome::Stub { at, stub } => Found::Stub {
                    case: cut(&shrunk, at),
                    at,
                    stub,
                },
                CaseOutcome::Diverged(divergence) => Found::Failure(Failure {
                    seed,
                    original,
                    shrunk: cut(&shrunk, divergence.at),
                    divergence,
                    shrink_elapsed,
                }),
                // The shrunk case passed on a second run: the failure depends on something
                // outside the case. Report the original instead of hiding it.
                CaseOutcome::Pass { .. } => match run_case(&original, self.subject, self.oracle) {
                    CaseOutcome::Diverged(divergence) => Found::Failure(Failure {
                        seed,
                        shrunk: cut(&original, divergence.at),
                        original,
                        divergence,
                        shrink_elapsed,
                    }),
                    _ => continue,
                },
            };
        }
    }
}
