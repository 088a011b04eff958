// SPDX-License-Identifier: Apache-2.0
//! The reference compaction simulator; see `mini_lsm_starter::compact::simulator`.

fn main() -> anyhow::Result<()> {
    mini_lsm_starter::compact::simulator::main()
}
