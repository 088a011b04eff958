// SPDX-License-Identifier: Apache-2.0
//! Sorted string tables (SSTs): the immutable, sorted files the engine keeps on disk.
//!
//! An SST is written once, by a flush (and, from week 2, by compaction), and never changed; it is
//! deleted as a whole when nothing needs it any more. It is a sequence of blocks (see
//! [`crate::block`]) followed by an index of those blocks, so that a reader holds only the small
//! index in memory and reads one block per lookup.
//!
//! # Format
//!
//! All integers are big-endian.
//!
//! ```text
//! sst        := (block crc:u32){m}  meta crc:u32  meta_offset:u32  bloom crc:u32  bloom_offset:u32
//! meta       := m:u32  block_meta{m}  max_ts:u64
//! block_meta := offset:u32  first_key_len:u16  first_key  first_ts:u64
//!                           last_key_len:u16   last_key   last_ts:u64
//! bloom      := bits[nbytes]  k:u8                           (see `bloom.rs`)
//! crc        := CRC-32 (IEEE) of the section just before it
//! ```
//!
//! `offset` is where block i starts; it ends where block i+1 (or, for the last, `meta`) starts,
//! checksum included. `first_ts` and `last_ts` are the timestamps of the block's first and last
//! keys, and `max_ts` the largest timestamp of any key in the table (recovery starts the commit
//! timestamp above it). `meta_offset` is the position of `meta`, `bloom_offset` the position of
//! `bloom`. The bloom filter holds user keys only: a lookup asks about a key, not a version.
//!
//! The format grew over the course: before week 3 day 1 no key has a timestamp (no `first_ts`,
//! `last_ts` or `max_ts`); before week 2 day 7 there is no `crc` anywhere; before week 1 day 7 the
//! file also ends at `meta_offset` (no bloom filter, no `bloom_offset`).
//!
//! Bytes read back are untrusted: [`SsTable::open`] checks that every offset lies inside the file
//! and in order, and every error names the file.

pub mod bloom;
mod builder;
mod file;
mod index;
mod iterator;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::{Buf, BufMut};
use parking_lot::Mutex;

pub use builder::SsTableBuilder;
pub use file::FileObject;
pub use iterator::SsTableIterator;

use self::bloom::Bloom;
use self::index::LastKeys;
use crate::block::Block;
use crate::block_cache::BlockCache;
use crate::fs::FileSystem;
use crate::key::{KeyBytes, KeySlice};

const SIZEOF_U32: usize = std::mem::size_of::<u32>();
const SIZEOF_U16: usize = std::mem::size_of::<u16>();
const SIZEOF_U64: usize = std::mem::size_of::<u64>();

/// Where a block lies in an SST, and the range of keys it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    /// The offset of the block in the file.
    pub offset: usize,
    /// The block's first key.
    pub first_key: KeyBytes,
    /// The block's last key.
    pub last_key: KeyBytes,
}

impl BlockMeta {
    // ANCHOR: block_meta_codec
    /// Appends the `meta` section (see the module docs) for `block_meta` to `buf`.
    pub fn encode_block_meta(block_meta: &[BlockMeta], buf: &mut Vec<u8>) {
        // @task week1_day4 1
        buf.put_u32(block_meta.len() as u32);
        for meta in block_meta {
            buf.put_u32(meta.offset as u32);
            buf.put_u16(meta.first_key.len() as u16);
            buf.put_slice(meta.first_key.raw_ref());
            // @task week3_day1 2 stub=comment
            buf.put_u64(meta.first_key.ts());
            // @end
            buf.put_u16(meta.last_key.len() as u16);
            buf.put_slice(meta.last_key.raw_ref());
            // @task week3_day1 2 stub=comment
            buf.put_u64(meta.last_key.ts());
            // @end
        }
        // @end
    }

    /// Parses a `meta` section.
    ///
    /// # Errors
    /// If the section is shorter than its contents claim, or has bytes left over.
    pub fn decode_block_meta(mut buf: &[u8]) -> Result<Vec<BlockMeta>> {
        // @task week1_day4 1
        fn take<'a>(buf: &mut &'a [u8], len: usize, what: &str) -> Result<&'a [u8]> {
            ensure!(buf.len() >= len, "block metadata is cut short in {what}");
            let (head, tail) = buf.split_at(len);
            *buf = tail;
            Ok(head)
        }
        let num = take(&mut buf, SIZEOF_U32, "the block count")?.get_u32() as usize;
        let mut metas = Vec::with_capacity(num.min(buf.len()));
        for _ in 0..num {
            let offset = take(&mut buf, SIZEOF_U32, "a block offset")?.get_u32() as usize;
            let len = take(&mut buf, SIZEOF_U16, "a key length")?.get_u16() as usize;
            let first_key = KeySlice::from_slice(take(&mut buf, len, "a first key")?);
            // @task week3_day1 2 stub=comment
            let ts = take(&mut buf, SIZEOF_U64, "a timestamp")?.get_u64();
            let first_key = KeySlice::from_slice_ts(first_key.raw_ref(), ts);
            // @end
            let len = take(&mut buf, SIZEOF_U16, "a key length")?.get_u16() as usize;
            let last_key = KeySlice::from_slice(take(&mut buf, len, "a last key")?);
            // @task week3_day1 2 stub=comment
            let ts = take(&mut buf, SIZEOF_U64, "a timestamp")?.get_u64();
            let last_key = KeySlice::from_slice_ts(last_key.raw_ref(), ts);
            // @end
            metas.push(BlockMeta {
                offset,
                first_key: first_key.to_key_bytes(),
                last_key: last_key.to_key_bytes(),
            });
        }
        ensure!(
            buf.is_empty(),
            "{} stray bytes after the block metadata",
            buf.len()
        );
        Ok(metas)
        // @end
    }
    // ANCHOR_END: block_meta_codec
}

/// An open SST: its index in memory, its blocks on disk (and in the block cache).
pub struct SsTable {
    /// The file; every block read goes through it.
    pub(crate) file: FileObject,
    /// Where each block lies, and its key range.
    pub(crate) block_meta: Vec<BlockMeta>,
    /// Where the `meta` section starts, which is where the last block ends.
    pub(crate) block_meta_offset: usize,
    /// The blocks' last keys again, laid out for `find_block_idx`'s binary search.
    last_keys: LastKeys,
    id: usize,
    block_cache: Option<Arc<BlockCache>>,
    first_key: KeyBytes,
    last_key: KeyBytes,
    /// The bloom filter over every key, from week 1 day 7.
    pub(crate) bloom: Option<Bloom>,
    /// The largest timestamp of any key in the table (from week 3 day 1; 0 before).
    max_ts: u64,
    /// Blocks read from the file (cache misses and uncached reads); tests use it to prove that a
    /// lookup skipped the table.
    block_reads: AtomicU64,
    /// Set once the table has left the engine's state (compaction replaced it): the file system
    /// to delete its file from when the last reader drops it.
    delete_on_drop: Mutex<Option<Arc<dyn FileSystem>>>,
}

impl SsTable {
    /// Assembles a table from parts already checked; the builder and `open` use it.
    pub(crate) fn from_parts(
        id: usize,
        file: FileObject,
        block_meta: Vec<BlockMeta>,
        block_meta_offset: usize,
        block_cache: Option<Arc<BlockCache>>,
        bloom: Option<Bloom>,
        max_ts: u64,
    ) -> Result<Self> {
        let (Some(first), Some(last)) = (block_meta.first(), block_meta.last()) else {
            bail!("{}: the SST has no blocks", file.path().display());
        };
        Ok(Self {
            first_key: first.first_key.clone(),
            last_key: last.last_key.clone(),
            last_keys: LastKeys::new(&block_meta),
            file,
            block_meta,
            block_meta_offset,
            id,
            block_cache,
            bloom,
            max_ts,
            block_reads: AtomicU64::new(0),
            delete_on_drop: Mutex::new(None),
        })
    }

    // ANCHOR: mark_obsolete
    /// Marks the table obsolete: its file is deleted from `fs` when the last `Arc` to the table is
    /// dropped, so that a scan still reading it is never cut short.
    pub fn mark_obsolete(&self, fs: Arc<dyn FileSystem>) {
        *self.delete_on_drop.lock() = Some(fs);
    }
    // ANCHOR_END: mark_obsolete

    // ANCHOR: sst_open
    /// Opens an SST, reading and checking its index.
    ///
    /// # Errors
    /// If the file is shorter than its footer, or any offset in it points outside the file or out
    /// of order. The error names the file.
    pub fn open(id: usize, block_cache: Option<Arc<BlockCache>>, file: FileObject) -> Result<Self> {
        // @task week1_day4 2
        let path = file.path().to_path_buf();
        let check = || -> Result<Self> {
            // @task week1_day7 2
            let bloom_offset = read_footer_u32(&file, file.size(), "bloom offset")?;
            let bloom_len = file.size() - SIZEOF_U32 as u64 - bloom_offset;
            let bloom_bytes = file.read(bloom_offset, bloom_len)?;
            // @task week2_day7 3
            let bloom_bytes = strip_checksum(&bloom_bytes).context("bad bloom filter")?;
            // @stub
            // let bloom_bytes = &bloom_bytes[..];
            // @end
            let bloom = Some(Bloom::decode(bloom_bytes).context("bad bloom filter")?);
            let end = bloom_offset;
            // @stub
            // let (bloom, end) = (None, file.size());
            // @end
            let meta_offset = read_footer_u32(&file, end, "meta offset")?;
            let meta_bytes = file.read(meta_offset, end - SIZEOF_U32 as u64 - meta_offset)?;
            // @task week2_day7 3
            let meta_bytes = strip_checksum(&meta_bytes).context("bad block metadata")?;
            // @stub
            // let meta_bytes = &meta_bytes[..];
            // @end
            // @task week3_day1 2
            let Some(split) = meta_bytes.len().checked_sub(SIZEOF_U64) else {
                bail!("block metadata is cut short before its max_ts");
            };
            let (meta_bytes, mut max_ts) = meta_bytes.split_at(split);
            let max_ts = max_ts.get_u64();
            // @stub
            // let max_ts = 0;
            // @end
            let block_meta = BlockMeta::decode_block_meta(meta_bytes)?;
            check_block_layout(&block_meta, meta_offset as usize)?;
            Self::from_parts(
                id,
                file,
                block_meta,
                meta_offset as usize,
                block_cache,
                bloom,
                max_ts,
            )
        };
        check().with_context(|| format!("{}: corrupt SST", path.display()))
        // @end
    }
    // ANCHOR_END: sst_open

    // ANCHOR: read_block_raw
    /// Reads block `block_idx` from the file and decodes it, bypassing the cache.
    ///
    /// # Errors
    /// If the index is out of range, the read fails or the block is corrupt; the error names the
    /// file, the block and its offset.
    pub fn read_block(&self, block_idx: usize) -> Result<Arc<Block>> {
        // @task week1_day4 2
        self.block_reads.fetch_add(1, Ordering::Relaxed);
        let Some(meta) = self.block_meta.get(block_idx) else {
            bail!(
                "{}: block {block_idx} does not exist; the SST has {}",
                self.file.path().display(),
                self.block_meta.len()
            );
        };
        let end = self
            .block_meta
            .get(block_idx + 1)
            .map_or(self.block_meta_offset, |next| next.offset);
        let data = self
            .file
            .read(meta.offset as u64, (end - meta.offset) as u64)?;
        // @task week2_day7 3
        let data = strip_checksum(&data).with_context(|| {
            format!(
                "{}: corrupt block {block_idx} at offset {}",
                self.file.path().display(),
                meta.offset
            )
        })?;
        // @stub
        // let data = &data[..];
        // @end
        let block = Block::decode(data).with_context(|| {
            format!(
                "{}: corrupt block {block_idx} at offset {}",
                self.file.path().display(),
                meta.offset
            )
        })?;
        Ok(Arc::new(block))
        // @end
    }
    // ANCHOR_END: read_block_raw

    // ANCHOR: read_block_cached
    /// Reads block `block_idx` through the block cache, if the table has one.
    ///
    /// # Errors
    /// As [`SsTable::read_block`].
    pub fn read_block_cached(&self, block_idx: usize) -> Result<Arc<Block>> {
        // @task week1_day4 2
        match &self.block_cache {
            Some(cache) => cache.get_or_load((self.id, block_idx), || self.read_block(block_idx)),
            None => self.read_block(block_idx),
        }
        // @end
    }
    // ANCHOR_END: read_block_cached

    // ANCHOR: find_block_idx
    /// The index of the first block whose last key is `>= key`: the only block that can hold
    /// `key`. Returns `num_of_blocks()` when every key in the table is smaller.
    pub fn find_block_idx(&self, key: KeySlice) -> usize {
        // @task week1_day4 2
        // The same search as `block_meta.partition_point(|m| m.last_key < key)`, over keys laid
        // out contiguously (see `index.rs`): this runs on every lookup.
        self.last_keys.first_at_or_after(key)
        // @end
    }
    // ANCHOR_END: find_block_idx

    /// The number of blocks.
    pub fn num_of_blocks(&self) -> usize {
        self.block_meta.len()
    }

    /// The smallest key in the table.
    pub fn first_key(&self) -> &KeyBytes {
        &self.first_key
    }

    /// The largest key in the table.
    pub fn last_key(&self) -> &KeyBytes {
        &self.last_key
    }

    /// The largest timestamp of any key in the table (from week 3 day 1; 0 before, when no key
    /// has a timestamp of its own).
    pub fn max_ts(&self) -> u64 {
        self.max_ts
    }

    /// The size of the file in bytes.
    pub fn table_size(&self) -> u64 {
        self.file.size()
    }

    /// The table's id.
    pub fn sst_id(&self) -> usize {
        self.id
    }

    /// How many blocks were read from the file: cache misses and uncached reads.
    pub fn block_reads(&self) -> u64 {
        self.block_reads.load(Ordering::Relaxed)
    }

    // ANCHOR: bloom_excludes
    /// Whether the bloom filter rules `key` out; `false` when there is no filter.
    pub fn bloom_excludes(&self, key: &[u8]) -> bool {
        self.bloom_excludes_hash(bloom::key_hash(key))
    }

    /// As [`Self::bloom_excludes`], for a key whose [`bloom::key_hash`] is `hash`: a lookup that
    /// checks several tables hashes the key once.
    pub fn bloom_excludes_hash(&self, hash: u32) -> bool {
        self.bloom
            .as_ref()
            .is_some_and(|bloom| !bloom.may_contain(hash))
    }
    // ANCHOR_END: bloom_excludes
}

// ANCHOR: sst_drop
impl Drop for SsTable {
    fn drop(&mut self) {
        if let Some(fs) = self.delete_on_drop.get_mut().take() {
            // A failed delete only leaks a file that nothing refers to; the next `open` removes
            // every file the manifest does not list, so nothing is lost or resurrected.
            let _ = fs.remove(self.file.path());
        }
    }
}
// ANCHOR_END: sst_drop

// ANCHOR: strip_checksum
/// Checks and removes the CRC-32 that ends `data` (week 2 day 7).
///
/// # Errors
/// If `data` is too short to hold a checksum, or the checksum does not match.
pub fn strip_checksum(data: &[u8]) -> Result<&[u8]> {
    ensure!(
        data.len() >= SIZEOF_U32,
        "{} bytes, too short to hold a checksum",
        data.len()
    );
    let (body, mut crc) = data.split_at(data.len() - SIZEOF_U32);
    let (stored, actual) = (crc.get_u32(), crc32fast::hash(body));
    ensure!(
        stored == actual,
        "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
    );
    Ok(body)
}
// ANCHOR_END: strip_checksum

// ANCHOR: check_block_layout
/// Checks that the blocks tile the file from offset 0 up to the metadata: each starts after the
/// one before, and the last starts before `meta_offset`.
fn check_block_layout(block_meta: &[BlockMeta], meta_offset: usize) -> Result<()> {
    let mut prev: Option<usize> = None;
    for (idx, meta) in block_meta.iter().enumerate() {
        match prev {
            None => ensure!(meta.offset == 0, "block 0 starts at {}, not 0", meta.offset),
            Some(prev) => ensure!(
                meta.offset > prev,
                "block {idx} starts at {}, not after the block before it at {prev}",
                meta.offset
            ),
        }
        prev = Some(meta.offset);
    }
    if let Some(last) = prev {
        ensure!(
            last < meta_offset,
            "the last block starts at {last}, not before the metadata at {meta_offset}"
        );
    }
    Ok(())
}
// ANCHOR_END: check_block_layout

// ANCHOR: read_footer_u32
/// Reads the `u32` that ends at `end` in `file`: an offset into the file, which must point before
/// itself.
fn read_footer_u32(file: &FileObject, end: u64, what: &str) -> Result<u64> {
    ensure!(
        end >= SIZEOF_U32 as u64,
        "file ends at {end}, too short to hold the {what}"
    );
    let field_at = end - SIZEOF_U32 as u64;
    let value = file.read(field_at, SIZEOF_U32 as u64)?.as_slice().get_u32() as u64;
    if value > field_at {
        return Err(anyhow!(
            "the {what} at {field_at} says {value}, past itself"
        ));
    }
    Ok(value)
}
// ANCHOR_END: read_footer_u32

/// The file name of SST `id` in the database directory.
pub fn sst_path(dir: &Path, id: usize) -> std::path::PathBuf {
    dir.join(format!("{id:05}.sst"))
}
