//! The probe: runs inside a container and prints what it sees as one JSON object.

fn main() {}
