// Written by `cargo x copy-test`: the chapters whose tests you have copied, in order.
// Run `cargo x copy-test --week 1 --day 1` to start.
