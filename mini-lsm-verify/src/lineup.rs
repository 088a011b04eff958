// SPDX-License-Identifier: Apache-2.0
//! Lining writers up behind a held leader, for the `group` and `group_cut` operations: each
//! writer runs on a scoped thread that borrows the engine, and each wait for one is bounded.

use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::Result;

/// How long a writer may take to reach its place in the line.
const PATIENCE: Duration = Duration::from_secs(30);

/// Waits (polling every millisecond, bounded by [`PATIENCE`]) until `ready`; fails saying
/// `what` if `writer` returns first or the time runs out.
pub(crate) fn wait_for<T>(
    ready: &dyn Fn() -> bool,
    writer: &ScopedJoinHandle<'_, T>,
    what: &str,
) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        if writer.is_finished() {
            anyhow::bail!("{what}: it returned instead");
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Spawns a writer per write on `scope`, each lined up before the next starts: the first held
/// at the log's gate (`held()`), each later one queued behind it (`queued() >= i`). Stops at
/// the first that does not line up. Returns the writers spawned and whether all lined up.
pub(crate) fn line_up<'scope, 'env, W, T, F>(
    scope: &'scope Scope<'scope, 'env>,
    writes: &'env [W],
    put: F,
    held: &dyn Fn() -> bool,
    queued: &dyn Fn() -> usize,
) -> (Vec<ScopedJoinHandle<'scope, T>>, Result<()>)
where
    W: Sync,
    T: Send + 'scope,
    F: Fn(&'env W) -> T + Send + Copy + 'scope,
{
    let mut writers = Vec::new();
    for (i, write) in writes.iter().enumerate() {
        let writer = scope.spawn(move || put(write));
        let lined_up = if i == 0 {
            wait_for(
                held,
                &writer,
                "the group's first put did not reach its log write",
            )
        } else {
            let what = format!("the group's put #{i} did not queue behind the held leader");
            wait_for(&|| queued() >= i, &writer, &what)
        };
        writers.push(writer);
        if lined_up.is_err() {
            return (writers, lined_up);
        }
    }
    (writers, Ok(()))
}
