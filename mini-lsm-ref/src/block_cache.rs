// SPDX-License-Identifier: Apache-2.0
//! The block cache: decoded blocks kept in memory, bounded in bytes.
//!
//! Reads of hot blocks should not touch the disk or decode again. The cache maps
//! `(sst id, block index)` to a decoded block and holds at most `capacity` bytes of block data.
//!
//! Eviction is CLOCK, a cheap approximation of least-recently-used: every entry has a
//! "referenced" bit, set on each hit. To make room, the hand walks the entries in insertion
//! order; a referenced entry gets its bit cleared and a second chance, an unreferenced one is
//! evicted. A hit costs one hash lookup and a bit store under a short lock.
//!
//! The cache is split into shards by key hash, each with its own lock, so that two readers rarely
//! wait for each other. Each shard holds `capacity / SHARDS` bytes.
//!
//! Left out on purpose: pinning, priorities for index blocks, and a lock-free hit path. A block
//! larger than a whole shard is returned to the caller but not cached.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use anyhow::Result;
use parking_lot::Mutex;

use crate::block::Block;
use crate::id_hash::BuildIdHasher;

const SHARDS: usize = 16;

/// `(sst id, block index)`.
pub type BlockKey = (usize, usize);

struct Slot {
    block: Arc<Block>,
    charge: usize,
    referenced: bool,
}

/// One shard. Guarded by its mutex: `map`, `clock` and `used` change together.
#[derive(Default)]
struct Shard {
    map: HashMap<BlockKey, Slot, BuildIdHasher>,
    /// The clock: keys in insertion order; the hand is the front.
    clock: VecDeque<BlockKey>,
    /// Bytes charged by the blocks in `map`.
    used: usize,
}

/// A byte-bounded cache of decoded blocks, shared by every SST of an engine.
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
}

impl BlockCache {
    /// A cache holding at most about `capacity` bytes of blocks.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_capacity: capacity / SHARDS,
        }
    }

    fn shard(&self, key: &BlockKey) -> &Mutex<Shard> {
        // The high bits: the map inside the shard takes its buckets from the low ones.
        let hash = BuildIdHasher::default().hash_one(key);
        &self.shards[(hash >> 48) as usize % SHARDS]
    }

    // ANCHOR: block_cache_get_or_load
    /// Returns the cached block for `key`, or loads it with `load`, caches and returns it.
    ///
    /// The shard lock is not held while `load` runs (it reads a file), so two readers missing on
    /// the same block may both load it; the second insert simply replaces the first.
    ///
    /// # Errors
    /// Whatever `load` returns; nothing is cached then.
    pub fn get_or_load(
        &self,
        key: BlockKey,
        load: impl FnOnce() -> Result<Arc<Block>>,
    ) -> Result<Arc<Block>> {
        let shard = self.shard(&key);
        if let Some(slot) = shard.lock().map.get_mut(&key) {
            slot.referenced = true;
            return Ok(slot.block.clone());
        }
        let block = load()?;
        let charge = block.data.len()
            + block.offsets.len() * 2
            + block.timestamps.heap_bytes()
            + std::mem::size_of::<Block>();
        if charge <= self.shard_capacity {
            let mut shard = shard.lock();
            shard.insert(key, block.clone(), charge, self.shard_capacity);
        }
        Ok(block)
    }
    // ANCHOR_END: block_cache_get_or_load

    /// The bytes of blocks currently cached.
    pub fn used_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().used).sum()
    }
}

impl Shard {
    // ANCHOR: clock_insert
    fn insert(&mut self, key: BlockKey, block: Arc<Block>, charge: usize, capacity: usize) {
        if let Some(old) = self.map.remove(&key) {
            self.used -= old.charge;
            self.clock.retain(|k| *k != key);
        }
        while self.used + charge > capacity {
            let Some(victim) = self.clock.pop_front() else {
                break;
            };
            let slot = self.map.get_mut(&victim).expect("clock and map agree");
            if slot.referenced {
                slot.referenced = false;
                self.clock.push_back(victim);
            } else {
                self.used -= slot.charge;
                self.map.remove(&victim);
            }
        }
        self.used += charge;
        self.clock.push_back(key);
        self.map.insert(
            key,
            Slot {
                block,
                charge,
                referenced: false,
            },
        );
    }
    // ANCHOR_END: clock_insert
}
