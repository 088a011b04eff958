// SPDX-License-Identifier: Apache-2.0
//! Building an SST from entries added in key order.

use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Result};
use bytes::BufMut;

use super::bloom::{key_hash, Bloom};
use super::{BlockMeta, FileObject, SsTable};
use crate::block::BlockBuilder;
use crate::block_cache::BlockCache;
use crate::fs::{FileSystem, RealFs};
use crate::key::{KeySlice, KeyVec};

/// Default bits per key of the bloom filter: under 1% false positives.
const DEFAULT_BLOOM_BITS_PER_KEY: usize = 10;

/// Builds an SST: fills blocks up to the block size, then writes the index and the bloom filter.
pub struct SsTableBuilder {
    /// The block being filled.
    builder: BlockBuilder,
    /// The first key of the block being filled.
    first_key: KeyVec,
    /// The last key added.
    last_key: KeyVec,
    /// The encoded blocks finished so far.
    data: Vec<u8>,
    /// The index of the finished blocks.
    pub(crate) meta: Vec<BlockMeta>,
    block_size: usize,
    /// The hash of every key added, for the bloom filter.
    key_hashes: Vec<u32>,
    bloom_bits_per_key: usize,
}

impl SsTableBuilder {
    /// An empty builder with blocks of about `block_size` bytes.
    pub fn new(block_size: usize) -> Self {
        Self {
            builder: BlockBuilder::new(block_size),
            first_key: KeyVec::new(),
            last_key: KeyVec::new(),
            data: Vec::new(),
            meta: Vec::new(),
            block_size,
            key_hashes: Vec::new(),
            bloom_bits_per_key: DEFAULT_BLOOM_BITS_PER_KEY,
        }
    }

    /// Sets the bloom filter's bits per key (10 by default).
    pub fn set_bloom_bits_per_key(&mut self, bits_per_key: usize) {
        self.bloom_bits_per_key = bits_per_key;
    }

    /// Adds an entry. Keys must come in strictly increasing order.
    pub fn add(&mut self, key: KeySlice, value: &[u8]) {
        todo!("week 1 day 4, task 1: build an SST: blocks, block metadata, metadata offset (book: week1-04-sst)")
    }

    /// Seals the block being filled: encodes it and records its metadata.
    fn finish_block(&mut self) {
        todo!("week 1 day 4, task 1: build an SST: blocks, block metadata, metadata offset (book: week1-04-sst)")
    }

    /// The size of the SST so far, counting only finished blocks; the engine uses it to split
    /// compaction output.
    pub fn estimated_size(&self) -> usize {
        self.data.len()
    }

    /// Writes the SST to `path` on the real file system (synced) and opens it.
    ///
    /// # Errors
    /// If no entry was added, or the file cannot be written.
    pub fn build(
        self,
        id: usize,
        block_cache: Option<Arc<BlockCache>>,
        path: impl AsRef<Path>,
    ) -> Result<SsTable> {
        self.build_in(&RealFs, id, block_cache, path)
    }

    /// Writes the SST to `path` in `fs` (synced) and opens it. The file's name is durable once
    /// the caller syncs the directory.
    ///
    /// # Errors
    /// If no entry was added, or the file cannot be written.
    pub fn build_in(
        mut self,
        fs: &dyn FileSystem,
        id: usize,
        block_cache: Option<Arc<BlockCache>>,
        path: impl AsRef<Path>,
    ) -> Result<SsTable> {
        todo!("week 1 day 4, task 1: build an SST: blocks, block metadata, metadata offset (book: week1-04-sst)")
    }
}
