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

// ANCHOR: block_struct
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
// ANCHOR_END: block_struct

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

    // ANCHOR: column_len
    /// The bytes of the smallest column that holds `n` timestamps between `min` and `max`
    /// (without its kind byte).
    pub(crate) fn column_len(n: usize, min: u64, max: u64) -> usize {
        // @task week3_day1 1
        if min == max {
            SIZEOF_TS
        } else if max - min <= u64::from(u32::MAX) {
            SIZEOF_TS + n * SIZEOF_DELTA
        } else {
            n * SIZEOF_TS
        }
        // @end
    }

    /// The column for `all`, the timestamps of a block's entries in entry order: the smallest
    /// kind that holds them (see the module docs).
    pub(crate) fn of(all: Vec<u64>) -> Self {
        // @task week3_day1 1
        let (Some(&min), Some(&max)) = (all.iter().min(), all.iter().max()) else {
            return Self::default();
        };
        if min == max {
            Self::Same(min)
        } else if max - min <= u64::from(u32::MAX) {
            let deltas = all.iter().map(|ts| (ts - min) as u32).collect();
            Self::Delta { base: min, deltas }
        } else {
            Self::Each(all)
        }
        // @end
    }
    // ANCHOR_END: column_len
}

impl Block {
    // ANCHOR: block_codec
    /// Serialises the block as specified in the module docs.
    pub fn encode(&self) -> Bytes {
        // @task week1_day3 1
        let mut buf = Vec::with_capacity(self.data.len() + (self.offsets.len() + 1) * SIZEOF_U16);
        buf.extend_from_slice(&self.data);
        // @task week4_day6 1 stub=comment
        buf.extend(self.kinds.iter().map(|kind| kind.tag()));
        // @end
        // @task week3_day1 1 stub=comment
        match &self.timestamps {
            BlockTimestamps::Same(ts) => {
                buf.put_u64(*ts);
                buf.put_u8(TS_SAME);
            }
            BlockTimestamps::Each(all) => {
                for ts in all {
                    buf.put_u64(*ts);
                }
                buf.put_u8(TS_EACH);
            }
            BlockTimestamps::Delta { base, deltas } => {
                buf.put_u64(*base);
                for delta in deltas {
                    buf.put_u32(*delta);
                }
                buf.put_u8(TS_DELTA);
            }
        }
        // @task week4_day6 1 stub=comment
        if !self.kinds.is_empty() {
            *buf.last_mut().expect("the timestamp kind was just written") |= HAS_KINDS;
        }
        // @end
        // @end
        for offset in &self.offsets {
            buf.put_u16(*offset);
        }
        buf.put_u16(self.offsets.len() as u16);
        buf.into()
        // @end
    }

    /// Parses and checks a block read from disk.
    ///
    /// # Errors
    /// If the bytes are too short, the entry count or an offset points outside the block, or an
    /// entry runs past the end of its data. Never panics, whatever the input.
    pub fn decode(data: &[u8]) -> Result<Self> {
        // @task week1_day3 1
        ensure!(
            data.len() >= SIZEOF_U16,
            "block is {} bytes, too short to hold its entry count",
            data.len()
        );
        let num = (&data[data.len() - SIZEOF_U16..]).get_u16() as usize;
        let index_len = (num + 1) * SIZEOF_U16;
        ensure!(num > 0, "block has no entries");
        ensure!(
            index_len <= data.len(),
            "block claims {num} entries but is only {} bytes",
            data.len()
        );
        let offsets_start = data.len() - index_len;
        let offsets: Vec<u16> = data[offsets_start..data.len() - SIZEOF_U16]
            .chunks_exact(SIZEOF_U16)
            .map(|mut x| x.get_u16())
            .collect();
        // @task week3_day1 1
        let (entries_end, timestamps) = decode_timestamps(&data[..offsets_start], num)?;
        // @stub
        // let (entries_end, timestamps) = (offsets_start, BlockTimestamps::default());
        // @end
        // @task week4_day6 1
        let (entries_end, kinds) = decode_kinds(&data[..offsets_start], entries_end, num)?;
        // @stub
        // let kinds = Vec::new();
        // @end
        // ANCHOR: block_decode_check
        let block = Self {
            data: data[..entries_end].to_vec(),
            offsets,
            timestamps,
            kinds,
        };
        // Check every entry once here, so that iterators can slice without checks.
        let first = block.parse_entry(0)?;
        ensure!(
            first.overlap == 0,
            "entry 0 claims to share {} bytes with itself",
            first.overlap
        );
        let first_key_len = first.rest.len();
        for idx in 0..num {
            let entry = block.parse_entry(idx)?;
            ensure!(
                entry.overlap <= first_key_len,
                "entry {idx} shares {} bytes with a first key of {first_key_len} bytes",
                entry.overlap
            );
            // @task week4_day6 1 stub=comment
            if let Some(kind) = block.kinds.get(idx) {
                let empty = entry.value.is_empty();
                ensure!(
                    (*kind == ValueKind::Delete) == empty || *kind == ValueKind::Merge,
                    "entry {idx} is a {kind:?} with a value of {} bytes",
                    entry.value.len()
                );
            }
            // @end
        }
        // ANCHOR_END: block_decode_check
        Ok(block)
        // @end
    }
    // ANCHOR_END: block_codec

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
        // @task week1_day3 1
        let Some(&offset) = self.offsets.get(idx) else {
            bail!("entry {idx} does not exist; the block has {}", self.len());
        };
        let mut pos = offset as usize;
        let field = |pos: &mut usize| -> Result<usize> {
            let Some(bytes) = self.data.get(*pos..*pos + SIZEOF_U16) else {
                bail!("entry {idx} at offset {offset} runs past the end of the block");
            };
            *pos += SIZEOF_U16;
            Ok(u16::from_be_bytes([bytes[0], bytes[1]]) as usize)
        };
        let (overlap, rest_len) = decode_key_header(&mut pos, field)?;
        let rest = pos..pos + rest_len;
        pos = rest.end;
        let value_len = field(&mut pos)?;
        let value = pos..pos + value_len;
        ensure!(
            value.end <= self.data.len(),
            "entry {idx} at offset {offset} runs past the end of the block"
        );
        Ok(EntryRef {
            overlap,
            rest,
            value,
        })
        // @end
    }
}

// ANCHOR: decode_timestamps
/// Splits the timestamp column and its kind off the end of `head` (a block up to its offsets),
/// for a block of `num` entries. Returns where the entries end, and the timestamps.
///
/// # Errors
/// If the kind is unknown, or the column is longer than what lies before it.
fn decode_timestamps(head: &[u8], num: usize) -> Result<(usize, BlockTimestamps)> {
    // @task week3_day1 1
    let Some((&kind, before)) = head.split_last() else {
        bail!("block has no room for its timestamp kind");
    };
    // @task week4_day6 1 stub=comment
    // Without the kind column's flag (see `decode_kinds`).
    let kind = kind & !HAS_KINDS;
    // @end
    let column_len = match kind {
        TS_SAME => SIZEOF_TS,
        TS_EACH => num * SIZEOF_TS,
        TS_DELTA => SIZEOF_TS + num * SIZEOF_DELTA,
        kind => bail!("block has an unknown timestamp kind {kind}"),
    };
    ensure!(
        column_len <= before.len(),
        "block's timestamp column of {column_len} bytes is longer than the {} bytes before it",
        before.len()
    );
    let entries_end = before.len() - column_len;
    let mut column = &before[entries_end..];
    let timestamps = match kind {
        TS_SAME => BlockTimestamps::Same(column.get_u64()),
        TS_EACH => BlockTimestamps::Each((0..num).map(|_| column.get_u64()).collect()),
        _ => {
            let base = column.get_u64();
            let deltas: Vec<u32> = (0..num).map(|_| column.get_u32()).collect();
            ensure!(
                deltas
                    .iter()
                    .all(|&d| base.checked_add(u64::from(d)).is_some()),
                "block's timestamp deltas overflow its base {base}"
            );
            BlockTimestamps::Delta { base, deltas }
        }
    };
    Ok((entries_end, timestamps))
    // @end
}
// ANCHOR_END: decode_timestamps

// ANCHOR: decode_kinds
/// Splits the kind column off the end of `head[..entries_end]` (the block before its timestamp
/// column), if the `ts_kind` byte, the last of `head`, says the block has one (week 4 day 6).
/// Returns where the entries end, and the kinds (empty without a column).
///
/// # Errors
/// If the column is longer than what lies before it, or holds an unknown tag.
fn decode_kinds(head: &[u8], entries_end: usize, num: usize) -> Result<(usize, Vec<ValueKind>)> {
    // @task week4_day6 1
    if head.last().is_none_or(|kind| kind & HAS_KINDS == 0) {
        return Ok((entries_end, Vec::new()));
    }
    ensure!(
        num <= entries_end,
        "block's kind column of {num} bytes is longer than the {entries_end} bytes before it"
    );
    let start = entries_end - num;
    let kinds = head[start..entries_end]
        .iter()
        .enumerate()
        .map(|(idx, &tag)| {
            ValueKind::from_tag(tag)
                .with_context(|| format!("entry {idx} of the block has an unknown kind {tag}"))
        })
        .collect::<Result<_>>()?;
    Ok((start, kinds))
    // @end
}
// ANCHOR_END: decode_kinds

// ANCHOR: key_codec
/// Appends `key`, encoded against the block's first key, to `buf`.
pub(crate) fn encode_key(buf: &mut Vec<u8>, first_key: &[u8], key: &[u8]) {
    // @task week1_day7 3
    let overlap = first_key
        .iter()
        .zip(key)
        .take_while(|(a, b)| a == b)
        .count();
    buf.put_u16(overlap as u16);
    buf.put_u16((key.len() - overlap) as u16);
    buf.extend_from_slice(&key[overlap..]);
    // @or week1_day3 1
    // buf.put_u16(key.len() as u16);
    // buf.extend_from_slice(key);
    // @end
}

/// Reads a key's header at `pos` with `field` (which reads one `u16` and advances `pos`), and
/// returns `(overlap, rest_len)`.
pub(crate) fn decode_key_header(
    pos: &mut usize,
    mut field: impl FnMut(&mut usize) -> Result<usize>,
) -> Result<(usize, usize)> {
    // @task week1_day7 3
    let overlap = field(pos)?;
    let rest_len = field(pos)?;
    Ok((overlap, rest_len))
    // @or week1_day3 1
    // Ok((0, field(pos)?))
    // @end
}
// ANCHOR_END: key_codec
