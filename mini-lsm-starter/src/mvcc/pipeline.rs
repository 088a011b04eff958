// SPDX-License-Identifier: Apache-2.0
//! The commit pipeline's timestamps (week 4 day 1): *prepare* hands them out in commit order,
//! *publish* makes them visible in the same order, whatever order the commits finish applying.
//!
//! ```text
//!   prepared:   6  7  8  9  10          (handed out under the commit lock, in order)
//!   applied:    6  7     9  10          (each writer applies its own batch, concurrently)
//!   visible:    ─────▶ 7                 8 is not applied: 9 and 10 wait, applied but unseen
//!   8 applies:  ───────────────▶ 10      the visible timestamp jumps over the applied prefix
//! ```
//!
//! A timestamp is *done* when its commit applied, or failed and applied nothing (a failed commit
//! still uses its timestamp up: see the module docs of [`crate::mvcc`]). The visible timestamp
//! is the end of the longest prefix of done timestamps; a reader reads at it, so it never sees a
//! timestamp some earlier one of which is still going in.
//!
//! Every wait here is bounded by a deadline on the engine's clock, and past it returns an error
//! that says what it waited for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use parking_lot::{Condvar, Mutex};

use super::{CommitCheck, Isolation, Mvcc};
use crate::clock::{Clock, Wake};

/// The timestamps that are done but not yet visible, and the writers waiting for theirs.
#[derive(Default)]
pub(crate) struct Publisher {
    /// Guards the advance of `Mvcc::latest_commit_ts` too, which only a holder of this lock
    /// stores.
    state: Mutex<PublishState>,
}

#[derive(Default)]
struct PublishState {
    /// Done timestamps above the visible one: each waits for every timestamp below it.
    done: BTreeSet<u64>,
    /// The writers waiting for their timestamp to be visible, by timestamp: an advance wakes
    /// exactly those it makes visible, not every waiter (sixteen writers would otherwise wake
    /// each other 256 times per group).
    /// (A writer and a transaction beginning may wait for the same one.)
    waiters: BTreeMap<u64, Vec<Arc<Waiter>>>,
}

/// Where one writer waits for its timestamp.
#[derive(Default)]
struct Waiter {
    /// Guards no data: the writer holds it from its look at the visible timestamp to its wait,
    /// and the publisher takes it to notify, so no advance falls between the two unseen.
    gap: Mutex<()>,
    visible: Condvar,
}

impl Waiter {
    fn wake(&self) {
        let _gap = self.gap.lock();
        self.visible.notify_one();
    }
}

impl Wake for Publisher {
    /// A fake clock moved: the waiters look at their deadlines again.
    fn wake(&self) {
        let waiters: Vec<Arc<Waiter>> = self
            .state
            .lock()
            .waiters
            .values()
            .flatten()
            .cloned()
            .collect();
        for waiter in waiters {
            waiter.wake();
        }
    }
}

impl Mvcc {
    /// The *prepare* step of a commit of the batch `writes`: under the commit lock, validates a
    /// transaction's `check` (week 3 day 6), takes the next timestamp, records the keys of
    /// `writes` for the live transactions, and runs `order` with the timestamp, still under the
    /// lock, so that whatever `order` queues (the log record, week 4 day 2) is queued in
    /// timestamp order. Returns the timestamp and what `order` returned.
    ///
    /// From here the caller owns the timestamp: it must [`Self::publish`] it, applied or failed,
    /// or no later timestamp ever becomes visible.
    ///
    /// # Errors
    /// A [`super::Conflict`] if validation fails; no timestamp is then used.
    pub fn prepare<T>(
        &self,
        writes: &[(&[u8], &[u8])],
        check: Option<&CommitCheck<'_>>,
        order: impl FnOnce(u64) -> T,
    ) -> Result<(u64, T)> {
        todo!("week 4 day 1, task 1: prepare a commit in one short critical section: validate, take the next timestamp, queue it in timestamp order (book: week4-01-ordered-publishing)")
    }

    /// The *publish* step: marks `ts` done (its batch applied, or its commit failed and applied
    /// nothing), and advances the visible timestamp over every done timestamp that follows it
    /// without a gap. Never waits.
    pub fn publish(&self, ts: u64) {
        todo!("week 4 day 1, task 2: publish in order: mark a timestamp done, advance the visible one over the done prefix, wait (bounded) for your own (book: week4-01-ordered-publishing)")
    }

    /// Waits until `ts` is visible, or until `deadline` on `clock`: a writer returns only once
    /// its own write is visible, so that it reads it back.
    ///
    /// # Errors
    /// Past the deadline, an error naming the timestamp still being applied. The commit at `ts`
    /// is applied then and becomes visible when the earlier ones finish; it is not undone.
    pub fn wait_visible(&self, ts: u64, clock: &dyn Clock, deadline: Instant) -> Result<()> {
        todo!("week 4 day 1, task 2: publish in order: mark a timestamp done, advance the visible one over the done prefix, wait (bounded) for your own (book: week4-01-ordered-publishing)")
    }

    /// Where the writers wait for their timestamps, for a fake clock to wake at each advance.
    pub(crate) fn publisher(&self) -> std::sync::Arc<Publisher> {
        std::sync::Arc::clone(&self.publisher)
    }

    /// The last timestamp prepared: every commit at or below it has its timestamp, applied or
    /// not yet (week 4 day 1).
    pub fn last_prepared_ts(&self) -> u64 {
        self.last_prepared.load(Ordering::Acquire)
    }
}
