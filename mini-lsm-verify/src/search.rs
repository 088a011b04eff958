// SPDX-License-Identifier: Apache-2.0
//! The search: random cases until one fails or the budget runs out, then proptest's shrinking.
//!
//! Case `i` of a run with seed `S` is generated from seed `S + i` alone, so `--seed S+i --cases 1`
//! replays exactly that case. Each case gets its own proptest `TestRunner`; when it fails, the
//! runner shrinks it (dropping operations, simplifying the rest, keeping every change after which
//! the case still fails), and the shrunk case is run once more for its report and dumps.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestError, TestRng, TestRunner};

use crate::engines::Opener;
use crate::gen::{self, Mix};
use crate::ops::Case;
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

impl Search<'_> {
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
            let config = RunnerConfig {
                cases: 1,
                failure_persistence: None,
                max_shrink_iters: 1_000_000,
                max_shrink_time: self.shrink_time.as_millis().min(u32::MAX as u128) as u32,
                ..RunnerConfig::default()
            };
            let mut runner = TestRunner::new_with_rng(config, rng(seed));
            let first: RefCell<Option<Case>> = RefCell::new(None);
            let last_reads = RefCell::new(0);
            let shrink_started = RefCell::new(None::<Instant>);
            let result = runner.run(&strategy, |case| {
                let outcome = run_case(&case, self.subject, self.oracle);
                let at = match outcome {
                    CaseOutcome::Pass { reads } => {
                        *last_reads.borrow_mut() = reads;
                        return Ok(());
                    }
                    CaseOutcome::Diverged(d) => d.at,
                    CaseOutcome::Stub { at, .. } => at,
                };
                if first.borrow().is_none() {
                    *first.borrow_mut() = Some(cut(&case, at));
                    *shrink_started.borrow_mut() = Some(Instant::now());
                }
                Err(proptest::test_runner::TestCaseError::fail("diverged"))
            });
            progress(cases);
            let shrunk = match result {
                Ok(()) => {
                    reads += *last_reads.borrow();
                    continue;
                }
                Err(TestError::Fail(_, shrunk)) => shrunk,
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
                        shrunk: original.clone(),
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
