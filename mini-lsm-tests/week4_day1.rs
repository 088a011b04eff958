// SPDX-License-Identifier: Apache-2.0
//! Week 4 day 1: ordered publishing: timestamps prepared in commit order, batches applied
//! concurrently, timestamps published in order over the applied prefix, every wait bounded.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::clock::{Clock, FakeClock, Wake};
use crate::fs::MemFs;
use crate::lsm_storage::LsmStorageInner;
use crate::mvcc::Mvcc;

use super::harness::commit::{spawn_writer, PATIENCE};
use super::harness::persist::{db, mem_options};
use super::harness::poll_until;

/// Prepare hands out timestamps one above the other, in order, runs its closure with each under
/// the commit lock, and publishes none of them: nothing is visible before it is applied.
#[test]
fn test_task1_prepare_takes_timestamps_in_order_and_publishes_none() {
    let mvcc = Mvcc::new(5);
    let mut seen = Vec::new();
    for expected in 6..=8 {
        let (ts, ordered) = mvcc.prepare(&[(b"k", b"v")], None, |ts| ts * 10).unwrap();
        assert_eq!(
            ts, expected,
            "timestamps are handed out one above the other"
        );
        assert_eq!(
            ordered,
            ts * 10,
            "prepare returns what its closure returned"
        );
        seen.push(ts);
    }
    assert_eq!(seen, vec![6, 7, 8]);
    assert_eq!(mvcc.last_prepared_ts(), 8);
    assert_eq!(
        mvcc.latest_commit_ts(),
        5,
        "prepare published a timestamp that is not applied yet"
    );
}

/// The visible timestamp advances only over a prefix of done timestamps: a commit done before
/// an earlier one stays invisible until that one is done, and then both show at once.
#[test]
fn test_task2_publish_advances_over_the_done_prefix_only() {
    let mvcc = Mvcc::new(0);
    for _ in 0..4 {
        mvcc.prepare(&[], None, |_| ()).unwrap();
    }
    mvcc.publish(2);
    assert_eq!(mvcc.latest_commit_ts(), 0, "2 is done, but 1 is not");
    mvcc.publish(4);
    assert_eq!(mvcc.latest_commit_ts(), 0, "4 is done, but 1 and 3 are not");
    mvcc.publish(1);
    assert_eq!(mvcc.latest_commit_ts(), 2, "1 and 2 are done: both visible");
    mvcc.publish(3);
    assert_eq!(mvcc.latest_commit_ts(), 4, "all four are done");
    let clock = FakeClock::new();
    mvcc.wait_visible(4, &*clock, clock.now())
        .expect("a visible timestamp needs no wait");
}

/// A writer waiting for its timestamp to be visible returns once the commits before it are
/// published, and past its deadline (on the engine's clock) returns an error naming the commit
/// it waited for, rather than waiting forever.
#[test]
fn test_task2_wait_for_visibility_is_bounded_on_the_clock() {
    let mvcc = Arc::new(Mvcc::new(0));
    let clock = FakeClock::new();
    clock.on_advance(Arc::downgrade(&mvcc.publisher()) as std::sync::Weak<dyn Wake>);
    for _ in 0..3 {
        mvcc.prepare(&[], None, |_| ()).unwrap();
    }
    // 2 waits for 1, which its writer publishes later: it returns.
    mvcc.publish(2);
    let deadline = clock.now() + Duration::from_secs(1);
    let waiter = {
        let (mvcc, clock) = (Arc::clone(&mvcc), Arc::clone(&clock));
        spawn_writer(move || mvcc.wait_visible(2, &*clock, deadline))
    };
    assert!(poll_until(PATIENCE, || clock.waits_since_advance() >= 1));
    assert!(
        waiter.try_join().is_none(),
        "2 was visible before 1 was done"
    );
    mvcc.publish(1);
    waiter.join().expect("1 was published: 2 is visible");
    // 3 is done, but nothing publishes 4... which was never prepared; prepare it and never
    // publish it: the wait for 5 must end at its deadline.
    mvcc.publish(3);
    mvcc.prepare(&[], None, |_| ()).unwrap();
    mvcc.prepare(&[], None, |_| ()).unwrap();
    mvcc.publish(5);
    // Moved by nothing, to count only the waits that begin from here.
    clock.advance(Duration::ZERO);
    let deadline = clock.now() + Duration::from_secs(1);
    let waiter = {
        let (mvcc, clock) = (Arc::clone(&mvcc), Arc::clone(&clock));
        spawn_writer(move || mvcc.wait_visible(5, &*clock, deadline))
    };
    assert!(poll_until(PATIENCE, || clock.waits_since_advance() >= 1));
    clock.advance(Duration::from_secs(2));
    let error = waiter
        .join()
        .expect_err("4 never finished: the wait must end with an error at its deadline");
    let message = format!("{error:#}");
    assert!(message.contains("commit 4"), "{message}");
    assert_eq!(mvcc.latest_commit_ts(), 3);
}

/// The engine's commit applies a batch while an earlier commit is still in flight, but neither
/// a reader nor the engine's latest timestamp shows it until the earlier one is published; its
/// writer returns only then, and reads its write back.
#[test]
fn test_task3_a_write_is_visible_only_after_every_earlier_commit() {
    let fs = MemFs::new();
    let inner = Arc::new(LsmStorageInner::open(db(), mem_options(&fs, true)).unwrap());
    inner.put(b"a", b"1").unwrap();
    assert_eq!(inner.latest_commit_ts(), 1);
    // An earlier commit that is slow to apply: prepared at 2, not yet published.
    let (slow, ()) = inner.mvcc.prepare(&[], None, |_| ()).unwrap();
    assert_eq!(slow, 2);
    let writer = {
        let inner = Arc::clone(&inner);
        spawn_writer(move || inner.put(b"b", b"2"))
    };
    // The put applies its batch (at 3) to the memtable without waiting for 2...
    let applied = poll_until(PATIENCE, || inner.snapshot().memtable.get(b"b").is_some());
    assert!(
        applied,
        "the put did not apply its batch while an earlier commit was in flight"
    );
    // ...but it is not visible, and the put has not returned.
    assert_eq!(inner.get(b"b").unwrap(), None, "3 is visible before 2");
    assert_eq!(inner.latest_commit_ts(), 1);
    assert!(
        writer.try_join().is_none(),
        "the put returned before its write was visible"
    );
    inner.mvcc.publish(slow);
    writer.join().unwrap();
    assert_eq!(inner.latest_commit_ts(), 3);
    assert_eq!(inner.get(b"b").unwrap(), Some(Bytes::from_static(b"2")));
}

/// Many writers commit at once, each reading its own write back the moment its put returns, and
/// every timestamp is used exactly once: the latest commit is the number of writes.
#[test]
fn test_task3_concurrent_writers_read_their_own_writes() {
    let fs = MemFs::new();
    let inner = Arc::new(LsmStorageInner::open(db(), mem_options(&fs, true)).unwrap());
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let inner = Arc::clone(&inner);
            spawn_writer(move || {
                for i in 0..200 {
                    let key = format!("t{t}-{i:03}");
                    inner.put(key.as_bytes(), b"v").unwrap();
                    assert_eq!(
                        inner.get(key.as_bytes()).unwrap().as_deref(),
                        Some(&b"v"[..]),
                        "{key} was not visible when its put returned"
                    );
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join();
    }
    assert_eq!(inner.latest_commit_ts(), 8 * 200);
}
