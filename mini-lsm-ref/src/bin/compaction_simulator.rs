// SPDX-License-Identifier: Apache-2.0
//! The reference compaction simulator; see `mini_lsm::compact::simulator`.

fn main() -> anyhow::Result<()> {
    mini_lsm::compact::simulator::main()
}
