// SPDX-License-Identifier: Apache-2.0
//! Random cases, as proptest strategies: the operation mix follows the chapters done.
//!
//! Keys come from a small space (`k00`..`k39`) so that operations collide: overwrites, deletes of
//! live keys, scans whose bounds fall exactly on an SST's first or last key. A bound may also fall
//! between two keys (`k035`) or be unbounded. Values are `v0`..`v999`.
//!
//! Proptest shrinks a failing case by dropping operations and simplifying the ones left (a key
//! towards `k00`, a bound towards `>=k00`, the configuration towards no compaction and no log),
//! keeping every change after which the case still fails.

use std::ops::Bound;

use proptest::prelude::*;
use proptest::strategy::Union;

use crate::ops::{BatchOp, Case, Chapter, Config, Op, Strategy as Compaction};

/// What the chapters done so far support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// The last chapter done.
    pub upto: Chapter,
}

impl Mix {
    /// Whether `chapter` is done.
    pub fn has(self, chapter: Chapter) -> bool {
        self.upto >= chapter
    }
}

/// Keys `k00`..`k39`.
fn key() -> BoxedStrategy<Vec<u8>> {
    (0u8..40)
        .prop_map(|i| format!("k{i:02}").into_bytes())
        .boxed()
}

/// A key, or a point between two keys (`k035`).
fn bound_key() -> BoxedStrategy<Vec<u8>> {
    (0u8..40, any::<bool>())
        .prop_map(|(i, between)| {
            let mut k = format!("k{i:02}").into_bytes();
            if between {
                k.push(b'5');
            }
            k
        })
        .boxed()
}

fn bound() -> BoxedStrategy<Bound<Vec<u8>>> {
    prop_oneof![
        bound_key().prop_map(Bound::Included),
        bound_key().prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<Vec<u8>> {
    (0u16..1000)
        .prop_map(|n| format!("v{n}").into_bytes())
        .boxed()
}

fn prefix() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"k".to_vec()),
        (0u8..4).prop_map(|d| format!("k{d}").into_bytes()),
        key(),
    ]
    .boxed()
}

fn batch_op() -> BoxedStrategy<BatchOp> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| BatchOp::Put(k, v)),
        1 => key().prop_map(BatchOp::Del),
    ]
    .boxed()
}

/// One operation of `mix`, weighted: writes and reads mostly, structural changes now and then.
pub fn op(mix: Mix) -> BoxedStrategy<Op> {
    let mut arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            30,
            (key(), value()).prop_map(|(k, v)| Op::Put(k, v)).boxed(),
        ),
        (10, key().prop_map(Op::Delete).boxed()),
        (18, key().prop_map(Op::Get).boxed()),
        (5, Just(Op::Freeze).boxed()),
    ];
    let mut add = |chapter: Chapter, weight: u32, strategy: BoxedStrategy<Op>| {
        if mix.has(chapter) {
            arms.push((weight, strategy));
        }
    };
    add(
        Chapter::SCAN,
        12,
        (bound(), bound()).prop_map(|(l, u)| Op::Scan(l, u)).boxed(),
    );
    add(Chapter::FLUSH, 6, Just(Op::Flush).boxed());
    add(Chapter::FLUSH, 4, prefix().prop_map(Op::ScanPrefix).boxed());
    add(
        Chapter::FULL_COMPACTION,
        2,
        Just(Op::FullCompaction).boxed(),
    );
    add(Chapter::SIMPLE, 4, Just(Op::TriggerCompaction).boxed());
    add(Chapter::REOPEN, 2, Just(Op::CloseReopen).boxed());
    add(Chapter::WAL, 2, Just(Op::CrashReopen).boxed());
    add(
        Chapter::BATCH,
        4,
        proptest::collection::vec(batch_op(), 1..6)
            .prop_map(Op::Batch)
            .boxed(),
    );
    Union::new_weighted(arms).boxed()
}

/// An engine configuration of `mix`: a strategy it has, and the log if it has one.
pub fn config(mix: Mix) -> BoxedStrategy<Config> {
    let strategies: Vec<Compaction> = Compaction::ALL
        .into_iter()
        .filter(|s| mix.has(s.needs()))
        .collect();
    let wal = if mix.has(Chapter::WAL) {
        any::<bool>().boxed()
    } else {
        Just(false).boxed()
    };
    (proptest::sample::select(strategies), wal)
        .prop_map(|(strategy, wal)| Config { strategy, wal })
        .boxed()
}

/// A case of `mix` with 1 to `max_ops` operations.
pub fn case(mix: Mix, max_ops: usize) -> BoxedStrategy<Case> {
    (
        config(mix),
        proptest::collection::vec(op(mix), 1..=max_ops.max(1)),
    )
        .prop_map(|(config, ops)| Case { config, ops })
        .boxed()
}

/// `n` operations of `mix`, for tests.
#[cfg(test)]
pub fn sample_ops(mix: Mix, n: usize) -> Vec<Op> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = op(mix);
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Week 1 day 1's mix has only memtable operations; week 2 day 7's has every kind.
    #[test]
    fn the_mix_follows_the_chapters() {
        let early = sample_ops(
            Mix {
                upto: Chapter::MEMTABLE,
            },
            2000,
        );
        assert!(early.iter().all(|op| op.needs() == Chapter::MEMTABLE));
        let late = sample_ops(
            Mix {
                upto: Chapter::BATCH,
            },
            3000,
        );
        for wanted in [
            Chapter::SCAN,
            Chapter::FLUSH,
            Chapter::FULL_COMPACTION,
            Chapter::SIMPLE,
            Chapter::REOPEN,
            Chapter::WAL,
            Chapter::BATCH,
        ] {
            assert!(
                late.iter().any(|op| op.needs() == wanted),
                "no operation of {wanted} in 3000"
            );
        }
        let bounds: Vec<_> = late
            .iter()
            .filter_map(|op| match op {
                Op::Scan(l, u) => Some((l.clone(), u.clone())),
                _ => None,
            })
            .collect();
        assert!(bounds.iter().any(|(l, _)| matches!(l, Bound::Excluded(_))));
        assert!(bounds.iter().any(|(_, u)| matches!(u, Bound::Included(_))));
        assert!(bounds.iter().any(|(l, _)| matches!(l, Bound::Unbounded)));
    }
}
