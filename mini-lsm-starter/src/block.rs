// SPDX-License-Identifier: Apache-2.0
//! Blocks: the unit in which an SST is written, read and cached.
//!
//! A block holds a run of sorted entries followed by an index of where each entry starts, so that a
//! reader can binary-search it without decoding every entry.
//!
//! # Format
//!
//! All integers are big-endian.
//!
//! ```text
//! block   := entry{n}  ts_column  ts_kind:u8  offset{n}  n     (week 3 day 1, timestamps)
//! block   := entry{n}  offset{n}  n                            (week 1 day 3, before them)
//! offset  := u16            byte position of entry i from the start of the block
//! n       := u16            number of entries (at least 1)
//! entry   := key  value_len:u16  value[value_len]
//!
//! key     := overlap:u16  rest_len:u16  rest[rest_len]     (week 1 day 7, prefix compression)
//!            the key is first_key[..overlap] ++ rest, where first_key is the key of entry 0;
//!            entry 0 has overlap 0
//! key     := key_len:u16  key[key_len]                    (week 1 day 3, before compression)
//!
//! ts_kind 0:  ts_column := ts:u64                   every entry has this timestamp
//! ts_kind 1:  ts_column := ts:u64{n}                entry i's timestamp, in entry order
//! ts_kind 2:  ts_column := base:u64  delta:u32{n}   entry i's timestamp is base + delta_i
//! ```
//!
//! So keys and values are at most 65535 bytes, and a block's entries start below 64 KiB.
//!
//! The timestamps sit in a column of their own, after the entries, rather than beside each key:
//! an entry is found and decoded as in week 1, a timestamp is `column[i]`, and the tail
//! `offset{n} n` is where it always was. The builder picks the smallest kind that holds them: a
//! block whose entries share one timestamp (every block before week 3 day 3, and a batch committed
//! at one timestamp) pays 9 bytes in all (kind 0); a block whose timestamps lie within 2^32 of each
//! other, as the versions of one memtable or of a few neighbouring ones do, 9 bytes and 4 per entry
//! (kind 2); only a block whose timestamps span more pays 8 per entry, as RocksDB's internal-key
//! trailer does (kind 1). Every kind keeps a timestamp at a fixed position, so that a seek reads
//! any entry's directly. A varint per entry would save a few bytes more but lose that, and putting
//! the timestamp inside the key bytes would break `raw_ref`.
//!
//! Invariant: a [`Block`] that exists has passed [`Block::decode`]'s checks (or came from a
//! builder), so every offset points at an entry that lies wholly inside `data`. The iterator relies
//! on that and never re-checks.

mod builder;
mod iterator;

use std::ops::Range;

use anyhow::{bail, ensure, Result};
use bytes::{Buf, BufMut, Bytes};

use crate::key::TS_DEFAULT;

pub use builder::BlockBuilder;
pub use iterator::BlockIterator;

/// Bytes in a `u16` length or offset field.
pub(crate) const SIZEOF_U16: usize = std::mem::size_of::<u16>();
/// Bytes in a timestamp.
pub(crate) const SIZEOF_TS: usize = std::mem::size_of::<u64>();
/// `ts_kind`: one timestamp for every entry of the block.
const TS_SAME: u8 = 0;
/// `ts_kind`: one timestamp per entry.
const TS_EACH: u8 = 1;
/// `ts_kind`: a base timestamp, and a 4-byte delta from it per entry.
const TS_DELTA: u8 = 2;
/// Bytes in a timestamp's delta from the block's base.
pub(crate) const SIZEOF_DELTA: usize = std::mem::size_of::<u32>();

/// A decoded data block: the entry bytes and where each entry starts.
pub struct Block {
    pub(crate) data: Vec<u8>,
    pub(crate) offsets: Vec<u16>,
    /// Each entry's timestamp (week 3). Before week 3 day 1 every key has the default timestamp:
    /// leave it at `BlockTimestamps::default()`.
    pub(crate) timestamps: BlockTimestamps,
}

/// Where one entry's parts lie in `Block::data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryRef {
    /// How many leading bytes the key shares with the block's first key.
    pub overlap: usize,
    /// The rest of the key, after the shared prefix.
    pub rest: Range<usize>,
    /// The value.
    pub value: Range<usize>,
}

/// The timestamps of a block's entries: one for all of them, or one each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockTimestamps {
    /// Every entry has this timestamp.
    Same(u64),
    /// Entry i's timestamp, in entry order.
    Each(Vec<u64>),
    /// Entry i's timestamp is `base + deltas[i]`.
    Delta {
        /// The smallest timestamp of the block.
        base: u64,
        /// Each entry's distance from it, in entry order.
        deltas: Vec<u32>,
    },
}

impl Default for BlockTimestamps {
    /// Every entry at [`TS_DEFAULT`]: a block before week 3.
    fn default() -> Self {
        Self::Same(TS_DEFAULT)
    }
}

impl BlockTimestamps {
    /// The bytes the timestamps take besides the enum itself.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Same(_) => 0,
            Self::Each(all) => all.len() * SIZEOF_TS,
            Self::Delta { deltas, .. } => deltas.len() * SIZEOF_DELTA,
        }
    }

    /// Entry `idx`'s timestamp. Requires `idx` to be an entry of the block.
    pub(crate) fn get(&self, idx: usize) -> u64 {
        match self {
            Self::Same(ts) => *ts,
            Self::Each(all) => all[idx],
            Self::Delta { base, deltas } => base + u64::from(deltas[idx]),
        }
    }

    /// The bytes of the smallest column that holds `n` timestamps between `min` and `max`
    /// (without its kind byte).
    pub(crate) fn column_len(n: usize, min: u64, max: u64) -> usize {
        todo!("week 3 day 1, task 1: store each entry's timestamp in the block, in a column after the entries (book: week3-01-timestamped-keys)")
    }

    /// The column for `all`, the timestamps of a block's entries in entry order: the smallest
    /// kind that holds them (see the module docs).
    pub(crate) fn of(all: Vec<u64>) -> Self {
        todo!("week 3 day 1, task 1: store each entry's timestamp in the block, in a column after the entries (book: week3-01-timestamped-keys)")
    }
}

impl Block {
    /// Serialises the block as specified in the module docs.
    pub fn encode(&self) -> Bytes {
        todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
    }

    /// Parses and checks a block read from disk.
    ///
    /// # Errors
    /// If the bytes are too short, the entry count or an offset points outside the block, or an
    /// entry runs past the end of its data. Never panics, whatever the input.
    pub fn decode(data: &[u8]) -> Result<Self> {
        todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
    }

    /// The number of entries in the block.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the block has no entries (only a builder's empty block can).
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Locates entry `idx`, checking that it lies wholly inside the block.
    ///
    /// # Errors
    /// If the offset or any length points past the end of the entry data.
    pub(crate) fn parse_entry(&self, idx: usize) -> Result<EntryRef> {
        todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
    }
}

/// Splits the timestamp column and its kind off the end of `head` (a block up to its offsets),
/// for a block of `num` entries. Returns where the entries end, and the timestamps.
///
/// # Errors
/// If the kind is unknown, or the column is longer than what lies before it.
fn decode_timestamps(head: &[u8], num: usize) -> Result<(usize, BlockTimestamps)> {
    todo!("week 3 day 1, task 1: store each entry's timestamp in the block, in a column after the entries (book: week3-01-timestamped-keys)")
}

/// Appends `key`, encoded against the block's first key, to `buf`.
pub(crate) fn encode_key(buf: &mut Vec<u8>, first_key: &[u8], key: &[u8]) {
    todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
}

/// Reads a key's header at `pos` with `field` (which reads one `u16` and advances `pos`), and
/// returns `(overlap, rest_len)`.
pub(crate) fn decode_key_header(
    pos: &mut usize,
    mut field: impl FnMut(&mut usize) -> Result<usize>,
) -> Result<(usize, usize)> {
    todo!("week 1 day 3, task 1: build, encode and decode a data block (book: week1-03-block)")
}
