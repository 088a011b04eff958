// SPDX-License-Identifier: Apache-2.0
//! The repair tool; see `mini_lsm::lsm_storage::repair`.

fn main() -> anyhow::Result<()> {
    mini_lsm::lsm_storage::repair::main()
}
