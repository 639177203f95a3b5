//! `cargo xtask`: the project's automation (ci, sample, host-test, vm-test, bench).

fn main() {}
