// SPDX-License-Identifier: Apache-2.0
//! A toy LSM for verify's own tests: layers of sorted maps, newest first, with one bug to plant
//! (a tombstone dropped at flush). The search must find that bug and shrink it to the handful of
//! operations it needs, and must find nothing once the bug is gone. And a toy store for the
//! concurrency mode, which may answer a read with an older version.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use anyhow::Result;

use crate::engines::{Engine, Reply};
use crate::ops::{BatchOp, Op};

type Layer = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Memtable, frozen memtables and "SSTs", newest first; `None` is a tombstone.
#[derive(Default)]
pub struct Toy {
    memtable: Layer,
    frozen: Vec<Layer>,
    ssts: Vec<Layer>,
    /// The planted bug: a flush forgets the tombstones.
    pub drops_tombstones: bool,
    /// Freeze the memtable by itself once it holds this many keys, as an engine does by size.
    pub auto_freeze: Option<usize>,
}

impl Toy {
    fn layers(&self) -> impl Iterator<Item = &Layer> {
        std::iter::once(&self.memtable)
            .chain(&self.frozen)
            .chain(&self.ssts)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.layers().find_map(|l| l.get(key)).cloned().flatten()
    }

    fn entries(&self, keep: impl Fn(&[u8]) -> bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut merged = Layer::new();
        for layer in self.layers().collect::<Vec<_>>().into_iter().rev() {
            merged.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        merged
            .into_iter()
            .filter(|(k, _)| keep(k))
            .filter_map(|(k, v)| Some((k, v?)))
            .collect()
    }
}

impl Engine for Toy {
    fn apply(&mut self, op: &Op) -> Result<Reply> {
        match op {
            Op::Put(k, v) => {
                self.memtable.insert(k.clone(), Some(v.clone()));
            }
            Op::Delete(k) => {
                self.memtable.insert(k.clone(), None);
            }
            Op::Batch(records) => {
                for r in records {
                    match r {
                        BatchOp::Put(k, v) => self.memtable.insert(k.clone(), Some(v.clone())),
                        BatchOp::Del(k) => self.memtable.insert(k.clone(), None),
                        BatchOp::Merge(..) => anyhow::bail!("the toy has no merge operator"),
                    };
                }
            }
            Op::Get(k) => return Ok(Reply::Value(self.get(k))),
            Op::Scan(l, u) => {
                let range: (Bound<Vec<u8>>, Bound<Vec<u8>>) = (l.clone(), u.clone());
                return Ok(Reply::Entries(
                    self.entries(|k| range.contains(&k.to_vec())),
                ));
            }
            Op::ScanPrefix(p) => return Ok(Reply::Entries(self.entries(|k| k.starts_with(p)))),
            Op::Freeze => self.frozen.insert(0, std::mem::take(&mut self.memtable)),
            Op::Flush => {
                if let Some(mut oldest) = self.frozen.pop() {
                    if self.drops_tombstones {
                        oldest.retain(|_, v| v.is_some());
                    }
                    self.ssts.insert(0, oldest);
                }
            }
            Op::FullCompaction | Op::TriggerCompaction | Op::CloseReopen | Op::CrashReopen => {}
            // Its tests run the operations of week 1 only.
            op => anyhow::bail!("the toy has no timestamps: `{op}`"),
        }
        if self.auto_freeze.is_some_and(|n| self.memtable.len() >= n) {
            self.frozen.insert(0, std::mem::take(&mut self.memtable));
        }
        Ok(Reply::Done)
    }

    fn dump(&self) -> String {
        format!(
            "toy: memtable {} keys, {} frozen, {} SSTs\n",
            self.memtable.len(),
            self.frozen.len(),
            self.ssts.len()
        )
    }
}

/// A toy engine for the concurrency mode: a locked map that keeps each key's history and, with
/// `stale`, answers every third read with the previous version.
#[derive(Default)]
pub struct ToyShared {
    map: std::sync::Mutex<BTreeMap<Vec<u8>, Vec<Vec<u8>>>>,
    reads: std::sync::atomic::AtomicU64,
    /// The planted bug: now and then a read sees an older version.
    pub stale: bool,
}

impl ToyShared {
    fn pick(&self, history: &[Vec<u8>]) -> Option<Vec<u8>> {
        let n = self
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let back = usize::from(self.stale && n.is_multiple_of(3) && history.len() >= 2);
        history
            .len()
            .checked_sub(1 + back)
            .map(|i| history[i].clone())
    }
}

impl crate::engines::ConcurrentEngine for ToyShared {
    fn put(&self, key: &[u8], value: &[u8], _: Option<crate::ops::SyncMode>) -> Result<()> {
        let mut map = self.map.lock().expect("not poisoned");
        map.entry(key.to_vec()).or_default().push(value.to_vec());
        Ok(())
    }

    fn write_batch(&self, batch: &[BatchOp]) -> Result<()> {
        for record in batch {
            if let BatchOp::Put(k, v) = record {
                self.put(k, v, None)?;
            }
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let map = self.map.lock().expect("not poisoned");
        Ok(map.get(key).and_then(|h| self.pick(h)))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let map = self.map.lock().expect("not poisoned");
        Ok(map
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, h)| Some((k.clone(), self.pick(h)?)))
            .collect())
    }

    fn close(&self) -> Result<()> {
        Ok(())
    }

    fn dump(&self) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gen::Mix;
    use crate::ops::{Chapter, Config};
    use crate::search::{Budget, Found, Search};

    fn search(drops_tombstones: bool, cases: u64) -> Found {
        let toy = move |_: Config| -> Result<Box<dyn Engine>> {
            Ok(Box::new(Toy {
                drops_tombstones,
                ..Toy::default()
            }))
        };
        let model =
            |_: Config| -> Result<Box<dyn Engine>> { Ok(Box::new(crate::model::Model::new())) };
        Search {
            mix: Mix {
                upto: Chapter::FLUSH,
            },
            max_ops: 100,
            seed: 1,
            budget: Budget {
                cases: Some(cases),
                time: Some(Duration::from_secs(60)),
            },
            shrink_time: Duration::from_secs(30),
            subject: &toy,
            oracle: &model,
        }
        .run(&mut |_| {})
    }

    /// A tombstone dropped at flush is found and shrunk to the few operations it needs: a put
    /// that reaches an SST, a delete that reaches a newer one, and a read.
    #[test]
    fn finds_and_shrinks_a_dropped_tombstone() {
        let Found::Failure(f) = search(true, 2000) else {
            panic!("the planted bug was not found");
        };
        assert!(f.original.ops.len() >= f.shrunk.ops.len());
        assert!(
            f.shrunk.ops.len() <= 7,
            "shrunk only to {} operations:\n{}",
            f.shrunk.ops.len(),
            f.shrunk.to_text()
        );
        let flushes = f.shrunk.ops.iter().filter(|op| **op == Op::Flush).count();
        assert_eq!(flushes, 2, "{}", f.shrunk.to_text());
        assert!(f.shrunk.ops.last().unwrap().is_read());
    }

    fn threads(stale: bool) -> crate::concurrent::RunResult {
        let open = move |_: &std::path::Path,
                         _: Config|
              -> Result<Box<dyn crate::engines::ConcurrentEngine>> {
            Ok(Box::new(ToyShared {
                stale,
                ..ToyShared::default()
            }))
        };
        let spec = crate::concurrent::RunSpec {
            mix: Mix {
                upto: Chapter::FLUSH,
            },
            writers: 2,
            readers: 2,
            ops: 3000,
            seed: 5,
        };
        crate::concurrent::run_with(&open, &spec)
    }

    /// The concurrency mode catches a read that goes back to an older version; a store that
    /// never does so passes, with every write done and reads checked.
    #[test]
    fn threads_catch_a_stale_read() {
        use crate::concurrent::RunResult;
        match threads(true) {
            RunResult::Failed(e) => assert!(e.contains("went back"), "{e}"),
            other => panic!("a stale read went unnoticed: {other:?}"),
        }
        match threads(false) {
            RunResult::Ok { writes, reads } => {
                assert_eq!(writes, 6000);
                assert!(reads > 0);
            }
            other => panic!("a correct store failed: {other:?}"),
        }
    }

    /// Writes that only fill a memtable until it freezes by itself give way to one `freeze`:
    /// a case of nine operations, none of which can be deleted alone, shrinks to the seven the
    /// bug needs; and a batch keeps only the records the bug needs.
    #[test]
    fn filler_writes_give_way_to_a_freeze() {
        let toy = |_: Config| -> Result<Box<dyn Engine>> {
            Ok(Box::new(Toy {
                drops_tombstones: true,
                auto_freeze: Some(3),
                ..Toy::default()
            }))
        };
        let model =
            |_: Config| -> Result<Box<dyn Engine>> { Ok(Box::new(crate::model::Model::new())) };
        let search = Search {
            mix: Mix {
                upto: Chapter::FLUSH,
            },
            max_ops: 100,
            seed: 1,
            budget: Budget {
                cases: Some(1),
                time: None,
            },
            shrink_time: Duration::from_secs(30),
            subject: &toy,
            oracle: &model,
        };
        let case = crate::ops::Case::parse(
            "config strategy=none wal=off\nput k00 v0\nput k01 v0\nput k02 v0\nflush\n\
             delete k00\nput k03 v0\nput k04 v0\nflush\nget k00\n",
        )
        .unwrap();
        let deadline = || std::time::Instant::now() + Duration::from_secs(30);
        let shrunk = search.minimize(case, deadline());
        assert_eq!(
            shrunk.to_text(),
            "config strategy=none wal=off\nput k00 v0\nfreeze\nflush\ndelete k00\nfreeze\n\
             flush\nget k00\n"
        );
        let case = crate::ops::Case::parse(
            "config strategy=none wal=off\nbatch put:k07=v1 put:k00=v2\nfreeze\n\
             flush\ndelete k00\nfreeze\nflush\nget k00\n",
        )
        .unwrap();
        let shrunk = search.minimize(case, deadline());
        assert_eq!(
            shrunk.to_text(),
            "config strategy=none wal=off\nbatch put:k00=v2\nfreeze\nflush\ndelete k00\n\
             freeze\nflush\nget k00\n"
        );
    }

    /// Without the bug, the toy agrees with the model on every case, and the cases did read
    /// something.
    #[test]
    fn a_correct_toy_passes() {
        match search(false, 300) {
            Found::Clean { cases, reads } => {
                assert_eq!(cases, 300);
                assert!(reads > 1000, "only {reads} non-empty reads");
            }
            other => panic!("a correct engine failed: {other:?}"),
        }
    }
}
