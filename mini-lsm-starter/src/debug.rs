// SPDX-License-Identifier: Apache-2.0
//! A human-readable picture of the engine's state, for the CLI's `dump` and for test failures.

use std::fmt::Write;

use bytes::Bytes;

use crate::lsm_storage::LsmStorageInner;

impl LsmStorageInner {
    /// Lists the memtables and the L0 SSTs with ids, key ranges and sizes, newest first, then the
    /// SST ids of each level (or tier).
    pub fn dump(&self) -> String {
        let snapshot = self.snapshot();
        let mut out = String::new();
        let memtable = &snapshot.memtable;
        let _ = writeln!(
            out,
            "memtable        id={:<5} ~{} bytes",
            memtable.id(),
            memtable.approximate_size()
        );
        for imm in &snapshot.imm_memtables {
            let _ = writeln!(
                out,
                "imm memtable    id={:<5} ~{} bytes",
                imm.id(),
                imm.approximate_size()
            );
        }
        let _ = writeln!(
            out,
            "L0 ({} SSTs, newest first)",
            snapshot.l0_sstables.len()
        );
        for id in &snapshot.l0_sstables {
            match snapshot.sstables.get(id) {
                Some(table) => {
                    let _ = writeln!(
                        out,
                        "  sst           id={:<5} {} bytes, {} blocks, keys {:?} ..= {:?}",
                        id,
                        table.table_size(),
                        table.num_of_blocks(),
                        // User keys: a range of keys, whatever their versions' timestamps.
                        Bytes::copy_from_slice(table.first_key().raw_ref()),
                        Bytes::copy_from_slice(table.last_key().raw_ref())
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  sst           id={id:<5} (missing from the table map)"
                    );
                }
            }
        }
        // Tiered compaction names a run by its first SST (a tier), the others by a level number.
        let run = if self.compaction_controller.flush_to_l0() {
            "L"
        } else {
            "tier "
        };
        for (level, ids) in &snapshot.levels {
            let _ = writeln!(out, "{run}{level}: {ids:?}");
        }
        out
    }
}
