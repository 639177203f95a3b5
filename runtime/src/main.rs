//! The `nsinit` command line: parses arguments, calls the library, renders errors.

fn main() {}
