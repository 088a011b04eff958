// SPDX-License-Identifier: Apache-2.0
//! Time, for the waits of the write path (week 4 day 4): the real clock, or a fake one that a
//! test moves by hand.
//!
//! A writer that must wait (for a flush to make room, for compaction to shrink L0) waits on a
//! condition variable with a deadline, and a writer that must slow down sleeps. Both ask a
//! [`Clock`] rather than the operating system, so that a test can put a writer in a 60-second
//! stall and take it past its deadline in a microsecond, with no sleep and no flakiness:
//!
//! ```text
//!   writer:  deadline = clock.now() + 60 s ─▶ clock.wait_until(cv, deadline) ─▶ timed out?
//!   test:    clock.advance(59 s)  ─▶ the writer wakes, sees 59 s, waits again
//!            clock.advance(1 s)   ─▶ the writer wakes, sees 60 s: past its bound, an error
//! ```
//!
//! The real clock's time moves by itself; the condition variable's own timed wait does the rest.
//! A fake clock's time moves only when a test calls [`FakeClock::advance`], so it must wake the
//! waiters itself: whoever waits on a fake clock first registers what wakes it
//! ([`Clock::on_advance`]), and every advance wakes them all. A sleep on the fake clock moves it
//! forward by the sleep's length and returns at once: the sleeper is the one who spends the time.
//!
//! Left out: a fake clock that advances by itself when every thread is idle (as an async
//! runtime's paused time does); here a test that forgets to advance a waiting writer's clock
//! would hang, so a wait on a fake clock gives up with a panic after [`FAKE_IDLE_LIMIT`] of real
//! time in which nothing woke it.

use std::fmt::Debug;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

/// Something a clock wakes when its time jumps: the engine registers where its stalled writers
/// wait.
pub trait Wake: Send + Sync {
    /// Wakes every thread waiting on it, without a lost wakeup: it takes the mutex the waiters
    /// hold from their check to their wait.
    fn wake(&self);
}

// ANCHOR: clock
/// Where the write path's waits take their time from.
pub trait Clock: Send + Sync + Debug {
    /// The current time on this clock.
    fn now(&self) -> Instant;

    /// Blocks the calling thread for `duration` of this clock's time.
    fn sleep(&self, duration: Duration);

    /// Sleeps on `condvar`, with `guard` released while asleep and held again on return, until
    /// a notification or until this clock reaches `deadline`. It may also return early for no
    /// reason (a spurious wakeup), so callers check their condition in a loop. Returns whether
    /// the deadline has passed.
    fn wait_until(
        &self,
        condvar: &Condvar,
        guard: &mut MutexGuard<'_, ()>,
        deadline: Instant,
    ) -> bool;

    /// Registers `waker`, to be woken whenever this clock's time jumps. The real clock's time
    /// never jumps, so it ignores this.
    fn on_advance(&self, waker: Weak<dyn Wake>) {
        let _ = waker;
    }
}
// ANCHOR_END: clock

/// The operating system's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn wait_until(
        &self,
        condvar: &Condvar,
        guard: &mut MutexGuard<'_, ()>,
        deadline: Instant,
    ) -> bool {
        condvar.wait_until(guard, deadline).timed_out() || Instant::now() >= deadline
    }
}

/// How long a wait on a [`FakeClock`] may go without being woken, in real time, before it
/// panics: nothing but an advance or a notification can end it, so a test that forgot both would
/// otherwise hang.
pub const FAKE_IDLE_LIMIT: Duration = Duration::from_secs(30);

/// A clock for tests: its time moves only by [`FakeClock::advance`] (and by sleeps on it).
#[derive(Debug)]
pub struct FakeClock {
    /// The time, and what the waiters saw of it.
    state: Mutex<FakeTime>,
    /// What to wake at each advance; dead entries are dropped as they are found.
    wakers: Mutex<Vec<Weak<dyn Wake>>>,
}

#[derive(Debug)]
struct FakeTime {
    /// The clock's start: `now` is `start + elapsed`.
    start: Instant,
    elapsed: Duration,
    /// Waits that began (read the time and went to sleep) since the last advance.
    waits_since_advance: usize,
}

impl FakeClock {
    /// A fake clock at its start, shared: put a clone in the options, keep one to advance it.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FakeTime {
                start: Instant::now(),
                elapsed: Duration::ZERO,
                waits_since_advance: 0,
            }),
            wakers: Mutex::new(Vec::new()),
        })
    }

    // ANCHOR: fake_advance
    /// Moves the clock forward by `by` and wakes every waiter, which then looks at the new time.
    pub fn advance(&self, by: Duration) {
        {
            let mut time = self.state.lock();
            time.elapsed += by;
            time.waits_since_advance = 0;
        }
        // Woken outside both of our locks: a waker takes the engine's mutex, which a waiter holds
        // while it reads our time (so the waiter is asleep, or has not read the time yet, when the
        // wake arrives: no wakeup is lost).
        let live: Vec<Arc<dyn Wake>> = {
            let mut wakers = self.wakers.lock();
            wakers.retain(|w| w.strong_count() > 0);
            wakers.iter().filter_map(Weak::upgrade).collect()
        };
        for waker in live {
            waker.wake();
        }
    }
    // ANCHOR_END: fake_advance

    /// How far the clock has moved since it was made.
    pub fn elapsed(&self) -> Duration {
        self.state.lock().elapsed
    }

    /// How many waits began after the last [`Self::advance`]: a wait that began read the time
    /// the advance set and went back to sleep. A test that advances a stalled writer's clock short
    /// of its deadline polls this to know the writer saw the new time and is still waiting.
    pub fn waits_since_advance(&self) -> usize {
        self.state.lock().waits_since_advance
    }
}

// ANCHOR: fake_clock
impl Clock for FakeClock {
    fn now(&self) -> Instant {
        let time = self.state.lock();
        time.start + time.elapsed
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }

    fn wait_until(
        &self,
        condvar: &Condvar,
        guard: &mut MutexGuard<'_, ()>,
        deadline: Instant,
    ) -> bool {
        {
            let mut time = self.state.lock();
            if time.start + time.elapsed >= deadline {
                return true;
            }
            time.waits_since_advance += 1;
        }
        if condvar.wait_for(guard, FAKE_IDLE_LIMIT).timed_out() {
            panic!(
                "a wait on a FakeClock went {FAKE_IDLE_LIMIT:?} of real time without being woken: \
                 nothing advanced the clock (FakeClock::advance) or notified the waiter"
            );
        }
        self.now() >= deadline
    }

    fn on_advance(&self, waker: Weak<dyn Wake>) {
        self.wakers.lock().push(waker);
    }
}
// ANCHOR_END: fake_clock
