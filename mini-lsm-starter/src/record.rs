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
//! record := len:u32  payload[len]  crc:u32        crc = CRC-32 (IEEE) of payload; big-endian
//! ```
//!
//! Before week 2 day 7 a record has no `crc` (`record := len:u32 payload[len]`).
//!
//! # Torn-tail policy
//!
//! - A record whose length field or body runs past the end of the file is a torn tail: it and
//!   nothing else is dropped, and the reader reports the offset where it starts.
//! - A record that fits but whose checksum does not match is a torn tail if it is the last thing
//!   in the file (a write that was cut and left garbage); anywhere else it is corruption, an error
//!   naming the file and the offset.

use std::path::Path;

use anyhow::{bail, Result};
use bytes::{Buf, BufMut};

const SIZEOF_U32: usize = std::mem::size_of::<u32>();

/// Appends `payload` to `buf` as one record.
pub fn encode_record(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.put_u32(payload.len() as u32);
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
        if rest.len() < SIZEOF_U32 {
            records.torn_tail_at = Some(pos);
            break;
        }
        let len = (&rest[..SIZEOF_U32]).get_u32() as usize;
        // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
        let trailer = 0;
        let Some(end) = (SIZEOF_U32 + len)
            .checked_add(trailer)
            .filter(|&end| end <= rest.len())
        else {
            records.torn_tail_at = Some(pos);
            break;
        };
        let payload = &rest[SIZEOF_U32..SIZEOF_U32 + len];
        // TODO(week 2 day 7, task 3: checksum every block, the SST index, the bloom filter and every log record (book: week2-07-batch-checksums))
        records.payloads.push(payload);
        pos += end;
    }
    Ok(records)
}
