// SPDX-License-Identifier: Apache-2.0
//! Merge operands (week 4 day 6): a write that says how to change a value rather than what it is.
//!
//! A counter kept with `get` then `put` costs a read per increment and loses increments when two
//! writers race. A merge operator lets the writer append an *operand* instead ("add 5"), at the
//! cost of a put; the engine folds the operands into a value when someone reads the key, and when
//! compaction rewrites it.
//!
//! # The fold
//!
//! A key's versions lie newest first. A reader lands on the newest version it may see; if that is
//! an operand, it keeps reading older versions of the key, collecting operands, until it meets a
//! *base*: a put (its value is the starting point) or a tombstone (there is no value: start from
//! nothing). Running out of versions is the same as a tombstone. The operator then folds the
//! operands, oldest first, over the base:
//!
//! ```text
//!   versions of k:  k@9 +1   k@7 +5   k@4 =10   k@2 =3        reading at 9
//!   fold:           merge(k, Some(10), [+5, +1]) = 16          (k@2 lies under the base: unread)
//!
//!   versions of k:  k@9 +1   k@6 del  k@4 =10                  a tombstone ends the fold
//!   fold:           merge(k, None, [+1]) = 1
//! ```
//!
//! So a put or a delete *replaces* everything older, operands included, as it always did; an
//! operand *changes* what lies below it. A fold whose result is the empty value reads as no
//! value, as an empty put would.
//!
//! # The operator's laws
//!
//! Compaction folds only part of a key's history at a time (the versions in the SSTs it merges,
//! and only those at or below the watermark), so the operator must give the same answer however
//! the operands are grouped. With `ops = x ++ y`:
//!
//! - *fold in steps:* `merge(k, b, x ++ y) == merge(k, Some(merge(k, b, x)), y)`;
//! - *partial merge:* `merge(k, b, x ++ [merge(k, None, y)]) == merge(k, b, x ++ y)`, that is, the
//!   fold of some operands from nothing is itself an operand worth all of them.
//!
//! Addition, appending, max and set union obey both. The operator may fail (an operand that is
//! not a number, say): the read or the compaction then fails with its error, naming the key; a
//! fold never guesses.
//!
//! # On disk
//!
//! Each entry has a [`ValueKind`]; the memtable, the block's kind column, the log record and
//! the write batch carry it. A file written before this chapter has no kinds: there an entry
//! is a put, or a tombstone if its value is empty, exactly as it was read then. Each format
//! says where it keeps the kinds, beside its encoder (`block.rs`, `wal.rs`).
//!
//! # Left out, and what it costs
//!
//! The operator is not recorded in the database: open it again with the same operator, or the
//! operands already written cannot be read (reads and compactions meeting one fail, naming the
//! missing operator). Reads fold every time: a key with a thousand operands above its last
//! compaction costs a thousand entries per read (RocksDB caps this with
//! `max_successive_merges`, folding at write time).

use std::fmt::Debug;

use anyhow::{Context, Result};

use crate::iterators::StorageIterator;
use crate::key::KeySlice;

// ANCHOR: value_kind
/// What an entry of the engine is: a value, a deletion, or a merge operand.
///
/// The tags are stored on disk (in the block's kind column and in log records) and never
/// renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// A value: the key's value from this version on.
    Put = 0,
    /// A tombstone: no value from this version on. Its value is empty.
    Delete = 1,
    /// A merge operand: changes the value below it (week 4 day 6).
    Merge = 2,
}

impl ValueKind {
    /// The kind of an entry stored before kinds existed: a tombstone if the value is empty, else
    /// a put.
    pub fn of_value(value: &[u8]) -> Self {
        if value.is_empty() {
            Self::Delete
        } else {
            Self::Put
        }
    }

    /// The kind with on-disk tag `tag`, if there is one.
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(Self::Put),
            1 => Some(Self::Delete),
            2 => Some(Self::Merge),
            _ => None,
        }
    }

    /// The on-disk tag.
    pub fn tag(self) -> u8 {
        self as u8
    }
}
// ANCHOR_END: value_kind

// ANCHOR: merge_operator
/// A user's rule for folding merge operands into a value. Put one in
/// `LsmStorageOptions::merge_operator` to use `merge`.
///
/// Must obey the laws in the module docs, be deterministic, and not depend on anything but its
/// arguments: compaction and reads call it at different times and must agree.
pub trait MergeOperator: Send + Sync + Debug {
    /// Folds `operands` (oldest first, at least one) over `existing`, the value under them
    /// (`None`: there is none, or a tombstone), for `key`.
    ///
    /// # Errors
    /// When an operand or the existing value is not something this operator can fold; the read
    /// or compaction that asked fails with it.
    fn merge(&self, key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>>;
}
// ANCHOR_END: merge_operator

// ANCHOR: add_operator
/// Adds decimal integers: values and operands are ASCII decimal `i64`s (`"42"`, `"-3"`); the
/// sum of nothing is 0. The REPL's operator: `merge visits 1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddOperator;

impl AddOperator {
    fn parse(key: &[u8], what: &str, bytes: &[u8]) -> Result<i64> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .with_context(|| {
                format!(
                    "the add operator cannot fold key {:?}: its {what} {:?} is not a decimal \
                     integer",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(bytes)
                )
            })
    }
}

impl MergeOperator for AddOperator {
    fn merge(&self, key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>> {
        let mut sum = match existing {
            Some(value) => Self::parse(key, "value", value)?,
            None => 0,
        };
        for operand in operands {
            let add = Self::parse(key, "operand", operand)?;
            sum = sum.checked_add(add).with_context(|| {
                format!(
                    "the add operator overflows i64 on key {:?}",
                    String::from_utf8_lossy(key)
                )
            })?;
        }
        Ok(sum.to_string().into_bytes())
    }
}
// ANCHOR_END: add_operator

/// Appends operands to the value, in order, each after a separator (but the first of an empty
/// value): a list. Order matters, which makes it the operator that shows a fold in the wrong
/// order.
#[derive(Debug, Clone, Default)]
pub struct AppendOperator {
    separator: Vec<u8>,
}

impl AppendOperator {
    /// An operator joining with `separator` (`b","`, say).
    pub fn new(separator: &[u8]) -> Self {
        Self {
            separator: separator.to_vec(),
        }
    }
}

impl MergeOperator for AppendOperator {
    fn merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>> {
        let mut out = existing.unwrap_or_default().to_vec();
        for operand in operands {
            if !out.is_empty() && !operand.is_empty() {
                out.extend_from_slice(&self.separator);
            }
            out.extend_from_slice(operand);
        }
        Ok(out)
    }
}

// ANCHOR: folded
/// A key's operands folded by [`fold_operands`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folded {
    /// The fold's result.
    pub value: Vec<u8>,
    /// Whether the fold met a base (a put or a tombstone) under the operands. Without one, the
    /// versions read may not be all of the key's history (a compaction reads only some SSTs),
    /// and the result is itself an operand unless nothing older can exist.
    pub based: bool,
}
// ANCHOR_END: folded

/// The error for an operand met without an operator to fold it.
pub(crate) fn no_operator(key: &[u8]) -> anyhow::Error {
    anyhow::anyhow!(
        "key {:?} has merge operands but the engine has no merge operator: open it with the \
         `merge_operator` it was written with",
        String::from_utf8_lossy(key)
    )
}

// ANCHOR: fold_operands
/// Folds the operands of one user key, starting at `iter`'s current entry, which must be a merge
/// operand: reads on through the key's older versions, collecting operands, up to and including
/// its base (a put or a tombstone), or to the end of the key's versions. Leaves `iter` after the
/// last version it read: at the next version after the base, or at the next key.
///
/// `iter` hands out a key's versions together, newest first, as every merged stream does.
///
/// # Errors
/// If `operator` is `None`, the operator fails, or `iter` does.
pub(crate) fn fold_operands<I>(operator: Option<&dyn MergeOperator>, iter: &mut I) -> Result<Folded>
where
    I: 'static + for<'a> StorageIterator<KeyType<'a> = KeySlice<'a>>,
{
    // @task week4_day6 2
    let key = iter.key().key_ref().to_vec();
    let Some(operator) = operator else {
        return Err(no_operator(&key));
    };
    let mut operands: Vec<Vec<u8>> = Vec::new();
    let mut base = None;
    let mut based = false;
    while iter.is_valid() && iter.key().key_ref() == key {
        match iter.value_kind() {
            ValueKind::Merge => operands.push(iter.value().to_vec()),
            ValueKind::Put => base = Some(iter.value().to_vec()),
            ValueKind::Delete => {}
        }
        let kind = iter.value_kind();
        iter.next()?;
        if kind != ValueKind::Merge {
            based = true;
            break;
        }
    }
    // Read newest first; the operator takes them oldest first.
    let operands: Vec<&[u8]> = operands.iter().rev().map(Vec::as_slice).collect();
    let value = operator
        .merge(&key, base.as_deref(), &operands)
        .with_context(|| {
            format!(
                "folding the merge operands of key {:?}",
                String::from_utf8_lossy(&key)
            )
        })?;
    Ok(Folded { value, based })
    // @end
}
// ANCHOR_END: fold_operands
