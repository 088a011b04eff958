// SPDX-License-Identifier: Apache-2.0
//! Record framing for the engine's logs: the write-ahead log and the manifest.
//!
//! A log is a file that only grows by appending records. A crash can cut the last append short
//! (a *torn tail*), and disks can flip bits; the reader must tell a torn tail (expected, drop it
//! and say so) from damage in the middle (unexpected, refuse to guess).
//!
//! # Format
//!
//! ```text
//! log    := record*
//! record := len:u32  len_crc:u32  payload[len]  crc:u32                       big-endian
//!           len_crc = CRC-32 (IEEE) of the 4 bytes of len; crc = CRC-32 of payload
//! ```
//!
//! Before week 2 day 7 a record has no checksums (`record := len:u32 payload[len]`).
//!
//! # Torn-tail policy
//!
//! - A record whose header, or whose body as its (checked) length gives it, runs past the end of
//!   the file is a torn tail: it and nothing else is dropped, and the reader reports the offset
//!   where it starts.
//! - A record whose body checksum does not match is a torn tail if it is the last thing in the
//!   file (a write that was cut and left garbage); anywhere else it is corruption.
//! - A length whose own checksum does not match is always corruption: without it a flipped length
//!   would pass for a torn tail and silently drop every record after it.
//!
//! Corruption is an error naming the file and the offset; the reader never guesses.

use std::path::Path;

use anyhow::{bail, Result};
use bytes::{Buf, BufMut};

const SIZEOF_U32: usize = std::mem::size_of::<u32>();

/// Appends `payload` to `buf` as one record.
pub fn encode_record(buf: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    buf.extend_from_slice(&len);
    // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
    buf.extend_from_slice(payload);
    // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
}

/// The records of a log, and where its torn tail starts, if it has one.
#[derive(Debug, Default)]
pub struct Records<'a> {
    /// The payloads, in order.
    pub payloads: Vec<&'a [u8]>,
    /// The offset of a dropped incomplete last record.
    pub torn_tail_at: Option<usize>,
}

/// Splits a log into its records' payloads.
///
/// # Errors
/// A checksum mismatch before the last record, naming `path` and the offset.
pub fn decode_records<'a>(path: &Path, data: &'a [u8]) -> Result<Records<'a>> {
    let mut records = Records::default();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
        let header = SIZEOF_U32;
        if rest.len() < header {
            records.torn_tail_at = Some(pos);
            break;
        }
        let len = (&rest[..SIZEOF_U32]).get_u32() as usize;
        // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
        // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
        let trailer = 0;
        let Some(end) = (header + len)
            .checked_add(trailer)
            .filter(|&end| end <= rest.len())
        else {
            records.torn_tail_at = Some(pos);
            break;
        };
        let payload = &rest[header..header + len];
        // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
        records.payloads.push(payload);
        pos += end;
    }
    Ok(records)
}

/// The longest prefix of a damaged log that [`decode_records`] accepts, with its records and
/// the offset where each of them starts: what a repair can keep. (Any prefix of an accepted
/// log is accepted too, so a binary search over the length finds it.)
pub fn salvage_records<'a>(path: &Path, data: &'a [u8]) -> Salvaged<'a> {
    let accepts = |len: usize| decode_records(path, &data[..len]).is_ok();
    let (mut good, mut bad) = (0, data.len() + 1);
    if accepts(data.len()) {
        good = data.len();
    } else {
        // Invariant: a prefix of `good` bytes is accepted, one of `bad` bytes is not.
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if accepts(mid) {
                good = mid;
            } else {
                bad = mid;
            }
        }
    }
    let records = decode_records(path, &data[..good]).unwrap_or_default();
    // Every record's header is as long as the first one's, which starts at offset 0.
    let header = records
        .payloads
        .first()
        .map_or(0, |p| p.as_ptr() as usize - data.as_ptr() as usize);
    let starts = records
        .payloads
        .iter()
        .map(|p| p.as_ptr() as usize - data.as_ptr() as usize - header)
        .collect();
    let end = records.torn_tail_at.unwrap_or(good);
    Salvaged {
        payloads: records.payloads,
        starts,
        end,
    }
}

/// What [`salvage_records`] kept of a log.
#[derive(Debug, Default)]
pub struct Salvaged<'a> {
    /// The payloads of the whole records it kept, in order.
    pub payloads: Vec<&'a [u8]>,
    /// The offset where each kept record starts.
    pub starts: Vec<usize>,
    /// The offset where the kept records end: every byte from here on is dropped.
    pub end: usize,
}
