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
//! block   := entry{n}  kind{n}  ts_column  ts_kind|0x80:u8  offset{n}  n
//!                                                             (week 4 day 6, with a merge operand)
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
//!
//! kind    := u8             entry i's kind, a [`ValueKind`] tag: 0 put, 1 delete, 2 merge operand
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
//! The kinds (week 4 day 6) follow the same idea, one step further: a block has a kind column
//! only if it holds a merge operand, and says so with the top bit of its `ts_kind` byte. Without
//! it, an entry is a put, or a tombstone if its value is empty, as every block before week 4 day
//! 6 reads; so those blocks, and every block of a database that never merges, keep their bytes
//! (week 1's prefix-compression test measures them), and an older reader refuses a block with
//! operands (an unknown timestamp kind) rather than read an operand as a value. A byte per entry
//! rather than a bitmap of operands: a seek reads any entry's kind directly, and a block with
//! operands pays one byte per entry, next to keys of ten or more.
//!
//! Invariant: a [`Block`] that exists has passed [`Block::decode`]'s checks (or came from a
//! builder), so every offset points at an entry that lies wholly inside `data`. The iterator relies
//! on that and never re-checks.

mod builder;
mod iterator;

use std::ops::Range;

use anyhow::{bail, ensure, Context, Result};
use bytes::{Buf, BufMut, Bytes};

use crate::key::TS_DEFAULT;
use crate::merge::ValueKind;

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
/// The top bit of the `ts_kind` byte: the block has a kind column (week 4 day 6).
const HAS_KINDS: u8 = 0x80;

/// A decoded data block: the entry bytes and where each entry starts.
pub struct Block {
    pub(crate) data: Vec<u8>,
    pub(crate) offsets: Vec<u16>,
    /// Each entry's timestamp (week 3). Before week 3 day 1 every key has the default timestamp:
    /// leave it at `BlockTimestamps::default()`.
    pub(crate) timestamps: BlockTimestamps,
    /// Each entry's kind (week 4 day 6), or empty when the block holds no merge operand: every
    /// entry is then a put, or a tombstone if its value is empty.
    pub(crate) kinds: Vec<ValueKind>,
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

    /// Entry `idx`'s kind, given its value (week 4 day 6). Requires `idx` to be an entry.
    pub(crate) fn kind(&self, idx: usize, value: &[u8]) -> ValueKind {
        match self.kinds.get(idx) {
            Some(kind) => *kind,
            None => ValueKind::of_value(value),
        }
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

/// Splits the kind column off the end of `head[..entries_end]` (the block before its timestamp
/// column), if the `ts_kind` byte, the last of `head`, says the block has one (week 4 day 6).
/// Returns where the entries end, and the kinds (empty without a column).
///
/// # Errors
/// If the column is longer than what lies before it, or holds an unknown tag.
fn decode_kinds(head: &[u8], entries_end: usize, num: usize) -> Result<(usize, Vec<ValueKind>)> {
    todo!("week 4 day 6, task 1: give every entry a kind (put, delete, merge operand) in the memtable, the block's kind column, the log and the write batch, and merge through the commit path (book: week4-06-merge-operator)")
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
