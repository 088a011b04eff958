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
//! block  := entry{n}  offset{n}  n
//! offset := u16            byte position of entry i from the start of the block
//! n      := u16            number of entries (at least 1)
//! entry  := key  value_len:u16  value[value_len]
//!
//! key    := overlap:u16  rest_len:u16  rest[rest_len]     (week 1 day 7, prefix compression)
//!           the key is first_key[..overlap] ++ rest, where first_key is the key of entry 0;
//!           entry 0 has overlap 0
//! key    := key_len:u16  key[key_len]                    (week 1 day 3, before compression)
//! ```
//!
//! So keys and values are at most 65535 bytes, and a block's entries start below 64 KiB.
//!
//! Invariant: a [`Block`] that exists has passed [`Block::decode`]'s checks (or came from a
//! builder), so every offset points at an entry that lies wholly inside `data`. The iterator relies
//! on that and never re-checks.

mod builder;
mod iterator;

use std::ops::Range;

use anyhow::{bail, ensure, Result};
use bytes::{Buf, BufMut, Bytes};

pub use builder::BlockBuilder;
pub use iterator::BlockIterator;

/// Bytes in a `u16` length or offset field.
pub(crate) const SIZEOF_U16: usize = std::mem::size_of::<u16>();

// ANCHOR: block_struct
/// A decoded data block: the entry bytes and where each entry starts.
pub struct Block {
    pub(crate) data: Vec<u8>,
    pub(crate) offsets: Vec<u16>,
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

impl Block {
    // ANCHOR: block_codec
    /// Serialises the block as specified in the module docs.
    pub fn encode(&self) -> Bytes {
        // @task week1_day3 1
        let mut buf = Vec::with_capacity(self.data.len() + (self.offsets.len() + 1) * SIZEOF_U16);
        buf.extend_from_slice(&self.data);
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
        let entries_end = data.len() - index_len;
        let offsets: Vec<u16> = data[entries_end..data.len() - SIZEOF_U16]
            .chunks_exact(SIZEOF_U16)
            .map(|mut x| x.get_u16())
            .collect();
        // ANCHOR: block_decode_check
        let block = Self {
            data: data[..entries_end].to_vec(),
            offsets,
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
