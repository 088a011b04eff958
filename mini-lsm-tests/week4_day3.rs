// SPDX-License-Identifier: Apache-2.0
//! Week 4 day 3: errors reach every writer: a failed log write or sync fails every writer of its
//! group, and is sticky: later writes, `sync` and `close` return it, and nothing acknowledged is
//! lost.

use std::sync::Arc;

use crate::fs::{Fault, MemFs};
use crate::lsm_storage::{LsmStorageInner, LsmStorageOptions, MiniLsm, SyncMode, WriteOptions};

use super::harness::commit::{spawn_writer, wait_queued, GateFs, GateOn, Writer};
use super::harness::persist::{db, mem_options};

/// Options for an engine on `fs` with the log on.
fn gate_options(fs: &GateFs) -> LsmStorageOptions {
    let mut options = mem_options(&fs.mem, true);
    options.fs = Arc::new(fs.clone());
    options
}

/// A put of `key` on its own thread, durable as `sync` says; returns its error, if any.
fn put_on_thread(
    inner: &Arc<LsmStorageInner>,
    key: &str,
    sync: SyncMode,
) -> Writer<Result<(), String>> {
    let (inner, key) = (Arc::clone(inner), key.to_string());
    spawn_writer(move || {
        inner
            .put_opt(key.as_bytes(), b"v", &WriteOptions::new(sync))
            .map_err(|e| format!("{e:#}"))
    })
}

/// Holds a leader at its log append, queues four fsync followers behind it, and makes the
/// followers' group fail at its `fail_at` (its append, or its sync); returns each follower's
/// result.
fn fail_a_group(
    fs: &GateFs,
    inner: &Arc<LsmStorageInner>,
    fail_at: GateOn,
) -> Vec<Result<(), String>> {
    fs.gate.arm(GateOn::Append);
    let leader = put_on_thread(inner, "leader", SyncMode::Os);
    fs.gate.wait_held(1);
    let followers: Vec<_> = (0..4)
        .map(|i| put_on_thread(inner, &format!("follower{i}"), SyncMode::Fsync))
        .collect();
    wait_queued(inner, 4);
    // The next operation is the leader's append; then the group's append, then its sync.
    let next = fs.mem.ops();
    let failing = match fail_at {
        GateOn::Append => next + 1,
        GateOn::Sync => next + 2,
    };
    fs.mem.set_fault(Some(Fault::FailOp(failing)));
    fs.gate.open();
    leader.join().expect("the leader's own write succeeds");
    followers.into_iter().map(Writer::join).collect()
}

/// A failed log write or sync fails every writer of the group, not only its leader, and each
/// error names the failure.
#[test]
fn test_task1_a_failed_log_write_or_sync_fails_every_writer_of_its_group() {
    for fail_at in [GateOn::Append, GateOn::Sync] {
        let fs = GateFs::new(MemFs::new());
        let inner = Arc::new(LsmStorageInner::open(db(), gate_options(&fs)).unwrap());
        let results = fail_a_group(&fs, &inner, fail_at);
        for (i, result) in results.iter().enumerate() {
            let error = result
                .as_ref()
                .expect_err("a writer of the failed group was acknowledged");
            assert!(
                error.contains("injected"),
                "follower {i} ({fail_at:?}): the error does not name the failure: {error}"
            );
        }
    }
}

/// After a failed log write, later writes fail with that error without touching the log (its
/// tail is unknown), reads still work, and nothing acknowledged before the failure is lost.
#[test]
fn test_task1_a_log_error_is_sticky_and_loses_nothing_acknowledged() {
    let fs = GateFs::new(MemFs::new());
    let inner = Arc::new(LsmStorageInner::open(db(), gate_options(&fs)).unwrap());
    inner
        .put_opt(b"acked", b"1", &WriteOptions::fsync())
        .unwrap();
    fail_a_group(&fs, &inner, GateOn::Sync);
    let (appends, syncs) = fs.gate.counts();
    for write in [
        inner.put(b"later", b"1"),
        inner.put_opt(b"later", b"1", &WriteOptions::fsync()),
        inner.delete(b"acked"),
    ] {
        let error = format!(
            "{:#}",
            write.expect_err("a write after a log error succeeded")
        );
        assert!(error.contains("injected"), "{error}");
    }
    assert_eq!(
        fs.gate.counts(),
        (appends, syncs),
        "a write after the log error reached the log"
    );
    assert_eq!(inner.get(b"acked").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(inner.get(b"later").unwrap(), None);
    let reopened = LsmStorageInner::open(db(), mem_options(&fs.mem.crash_now(true), true)).unwrap();
    assert_eq!(reopened.get(b"acked").unwrap().as_deref(), Some(&b"1"[..]));
}

/// After a failed log write, `sync` and `close` return the error too: a caller that only syncs
/// or closes learns that its writes may not be durable.
#[test]
fn test_task2_sync_and_close_return_the_log_error() {
    let fs = GateFs::new(MemFs::new());
    let lsm = MiniLsm::open(db(), gate_options(&fs)).unwrap();
    lsm.put(b"a", b"1").unwrap();
    lsm.sync().unwrap();
    fs.mem.set_fault(Some(Fault::FailOp(fs.mem.ops())));
    let error = lsm
        .put_opt(b"b", b"2", &WriteOptions::new(SyncMode::Os))
        .expect_err("the log write fails");
    assert!(format!("{error:#}").contains("injected"), "{error:#}");
    let synced = lsm
        .sync()
        .expect_err("sync after a failed log write must fail");
    assert!(format!("{synced:#}").contains("injected"), "{synced:#}");
    let closed = lsm
        .close()
        .expect_err("close after a failed log write must fail");
    assert!(format!("{closed:#}").contains("injected"), "{closed:#}");
}
