// SPDX-License-Identifier: Apache-2.0
//! The reference engine's interactive shell; see `mini_lsm::cli`.

fn main() -> anyhow::Result<()> {
    mini_lsm::cli::main()
}
