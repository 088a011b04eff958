// SPDX-License-Identifier: Apache-2.0
//! The repair tool; see `mini_lsm_starter::lsm_storage::repair`.

fn main() -> anyhow::Result<()> {
    mini_lsm_starter::lsm_storage::repair::main()
}
