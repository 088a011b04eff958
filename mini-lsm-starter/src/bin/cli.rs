// SPDX-License-Identifier: Apache-2.0
//! The interactive shell over the engine; see the `cli` module.

fn main() -> anyhow::Result<()> {
    mini_lsm_starter::cli::main()
}
