// Written by `cargo x sync` from course.toml: every chapter's tests, compiled from
// mini-lsm-tests/ in place (never copied), in chapter order.
#[path = "../../mini-lsm-tests/harness.rs"]
mod harness;
