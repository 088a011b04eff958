// SPDX-License-Identifier: Apache-2.0
//! The starter engine's interactive shell; see `mini_lsm_starter::cli`.

fn main() -> anyhow::Result<()> {
    mini_lsm_starter::cli::main()
}
