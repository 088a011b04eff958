// SPDX-License-Identifier: Apache-2.0
//! Building an SST from entries added in key order.
//!
//! A builder made with [`SsTableBuilder::new`] keeps the finished blocks in memory and writes the
//! whole file in `build`: simple, and what the tests use. The engine's flushes and compactions use
//! [`SsTableBuilder::create_in`] instead, which creates the file up front and writes the finished
//! blocks out whenever a megabyte has gathered, so that a builder holds about a megabyte, not a
//! whole SST (a 64 MiB memtable's SST is some 30 MB, which counted in the peak memory of every
//! fill). A failed write is kept and returned by `build`; a builder dropped before `build` leaves a
//! partial file that no manifest names, which the next `open` removes as a stray.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use bytes::BufMut;

use super::bloom::{key_hash, Bloom};
use super::{BlockMeta, FileObject, SsTable};
use crate::block::BlockBuilder;
use crate::block_cache::BlockCache;
use crate::fs::{FileSystem, RealFs, WritableFile};
use crate::key::{KeySlice, KeyVec};
use crate::merge::ValueKind;

/// Default bits per key of the bloom filter: about 1% false positives.
const DEFAULT_BLOOM_BITS_PER_KEY: usize = 10;
/// A builder streaming to its file writes its finished blocks out once this many bytes gather.
const SPILL_BYTES: usize = 1 << 20;

/// Builds an SST: fills blocks up to the block size, then writes the index and the bloom filter.
pub struct SsTableBuilder {
    /// The block being filled.
    builder: BlockBuilder,
    /// The first key of the block being filled.
    first_key: KeyVec,
    /// The last key added.
    last_key: KeyVec,
    /// The encoded blocks finished so far and not yet written to `file`.
    data: Vec<u8>,
    /// Bytes of finished blocks already written to `file`; they come before `data`.
    written: usize,
    /// The SST's file and its path, when the builder streams to it (see
    /// [`SsTableBuilder::create_in`]).
    file: Option<(Box<dyn WritableFile>, PathBuf)>,
    /// The first failed write to `file`, returned by `build`.
    write_error: Option<anyhow::Error>,
    /// The index of the finished blocks.
    pub(crate) meta: Vec<BlockMeta>,
    block_size: usize,
    /// The hash of every key added, for the bloom filter.
    key_hashes: Vec<u32>,
    /// The largest timestamp of any key added (week 3 day 1).
    max_ts: u64,
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
            written: 0,
            file: None,
            write_error: None,
            meta: Vec::new(),
            block_size,
            key_hashes: Vec::new(),
            max_ts: 0,
            bloom_bits_per_key: DEFAULT_BLOOM_BITS_PER_KEY,
        }
    }

    /// An empty builder that creates the SST's file at `path` in `fs` now and writes finished
    /// blocks to it as they gather; [`Self::build_in`] must then be given the same `fs` and `path`.
    ///
    /// # Errors
    /// If the file cannot be created.
    pub fn create_in(fs: &dyn FileSystem, path: &Path, block_size: usize) -> Result<Self> {
        Ok(Self {
            file: Some((fs.create(path)?, path.to_path_buf())),
            ..Self::new(block_size)
        })
    }

    /// Writes the finished blocks out, if the builder streams and a megabyte has gathered.
    fn spill(&mut self) {
        let Some((file, _)) = &mut self.file else {
            return;
        };
        if self.data.len() < SPILL_BYTES || self.write_error.is_some() {
            return;
        }
        match file.append(&self.data) {
            Ok(()) => {
                self.written += self.data.len();
                self.data.clear();
            }
            Err(error) => self.write_error = Some(error),
        }
    }

    /// Sets the bloom filter's bits per key (10 by default).
    pub fn set_bloom_bits_per_key(&mut self, bits_per_key: usize) {
        self.bloom_bits_per_key = bits_per_key;
    }

    // ANCHOR: sst_builder_add
    /// Adds an entry. Keys must come in strictly increasing order.
    pub fn add(&mut self, key: KeySlice, value: &[u8]) {
        self.add_with_kind(key, value, ValueKind::of_value(value));
    }

    /// Adds an entry of kind `kind` (week 4 day 6): [`Self::add`] for a merge operand too.
    pub fn add_with_kind(&mut self, key: KeySlice, value: &[u8], kind: ValueKind) {
        // @task week1_day4 1
        // @task week1_day7 2 stub=comment
        self.key_hashes.push(key_hash(key.raw_ref()));
        // @end
        // @task week3_day1 2 stub=comment
        self.max_ts = self.max_ts.max(key.ts());
        // @end
        if self.builder.is_empty() {
            self.first_key.set_from_slice(key);
        }
        // @task week4_day6 1
        let added = self.builder.add_with_kind(key, value, kind);
        // @or week1_day4 1
        // let added = self.builder.add(key, value);
        // @end
        if !added {
            // The block is full: seal it and start the next one with this entry.
            self.finish_block();
            // @task week4_day6 1
            let added = self.builder.add_with_kind(key, value, kind);
            // @or week1_day4 1
            // let added = self.builder.add(key, value);
            // @end
            debug_assert!(added, "an empty block accepts any entry");
            self.first_key.set_from_slice(key);
        }
        self.last_key.set_from_slice(key);
        // @end
    }
    // ANCHOR_END: sst_builder_add

    // ANCHOR: sst_finish_block
    /// Seals the block being filled: encodes it and records its metadata.
    fn finish_block(&mut self) {
        // @task week1_day4 1
        let builder = std::mem::replace(&mut self.builder, BlockBuilder::new(self.block_size));
        self.meta.push(BlockMeta {
            offset: self.written + self.data.len(),
            first_key: self.first_key.as_key_slice().to_key_bytes(),
            last_key: self.last_key.as_key_slice().to_key_bytes(),
        });
        let encoded = builder.build().encode();
        self.data.extend_from_slice(&encoded);
        // @task week2_day7 3 stub=comment
        self.data.put_u32(crc32fast::hash(&encoded));
        // @end
        self.spill();
        // @end
    }
    // ANCHOR_END: sst_finish_block

    /// The size of the SST so far, counting only finished blocks; the engine uses it to split
    /// compaction output.
    pub fn estimated_size(&self) -> usize {
        self.written + self.data.len()
    }

    // ANCHOR: sst_builder_build
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
    /// the caller syncs the directory. A builder from [`Self::create_in`] appends the rest of the
    /// SST to the file it made; `fs` and `path` must be the ones given there (another path is an
    /// error).
    ///
    /// # Errors
    /// If no entry was added, or the file cannot be written (now, or by an earlier spill).
    pub fn build_in(
        mut self,
        fs: &dyn FileSystem,
        id: usize,
        block_cache: Option<Arc<BlockCache>>,
        path: impl AsRef<Path>,
    ) -> Result<SsTable> {
        // @task week1_day4 1
        ensure!(
            !self.builder.is_empty() || !self.meta.is_empty(),
            "cannot build an SST with no entries"
        );
        if !self.builder.is_empty() {
            self.finish_block();
        }
        // `buf` holds what is not yet in the file, which starts `self.written` bytes in.
        let mut buf = std::mem::take(&mut self.data);
        let meta_start = buf.len();
        let meta_offset = self.written + meta_start;
        BlockMeta::encode_block_meta(&self.meta, &mut buf);
        // @task week3_day1 2 stub=comment
        buf.put_u64(self.max_ts);
        // @end
        // @task week2_day7 3 stub=comment
        let crc = crc32fast::hash(&buf[meta_start..]);
        buf.put_u32(crc);
        // @end
        buf.put_u32(meta_offset as u32);
        // @task week1_day7 2
        let filter = Bloom::build_from_key_hashes(&self.key_hashes, self.bloom_bits_per_key);
        let bloom_start = buf.len();
        filter.encode(&mut buf);
        // @task week2_day7 3 stub=comment
        let crc = crc32fast::hash(&buf[bloom_start..]);
        buf.put_u32(crc);
        // @end
        buf.put_u32((self.written + bloom_start) as u32);
        let bloom = Some(filter);
        // @stub
        // let bloom = None;
        // @end
        let path = path.as_ref();
        let file = match self.file.take() {
            Some((mut file, created)) => {
                ensure!(
                    created == path,
                    "SST builder: built at {} but its file was created at {}",
                    path.display(),
                    created.display()
                );
                let written = match self.write_error.take() {
                    Some(error) => Err(error),
                    None => file.append(&buf).and_then(|()| file.sync()),
                };
                written.with_context(|| format!("writing {}", path.display()))?;
                drop(file);
                FileObject::open_in(fs, path)?
            }
            None => FileObject::create_in(fs, path, buf)?,
        };
        SsTable::from_parts(
            id,
            file,
            self.meta,
            meta_offset,
            block_cache,
            bloom,
            self.max_ts,
        )
        // @end
    }
    // ANCHOR_END: sst_builder_build
}
