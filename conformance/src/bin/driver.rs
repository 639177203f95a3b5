//! The driver: runs `nsinit exec /probe ...` for each fixture case and checks what the probe saw.

fn main() {}
