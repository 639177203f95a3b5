//! Builds `trampoline/main.rs`, the libc-free program a join runs between its fork into the
//! container and the command's `execve` (see that file), into `OUT_DIR/nsinit-trampoline`,
//! which `src/process/trampoline.rs` embeds with `include_bytes!`.
//!
//! A plain `rustc` call rather than a crate: the program has no `std`, no libc and its own
//! `_start`, and must be linked static and position-dependent whatever the workspace's
//! flags are. Warnings are errors, as for the rest of nsinit.

use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "trampoline/main.rs";

pub fn build() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=trampoline/protocol.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = out.join("nsinit-trampoline");
    let status = Command::new(&rustc)
        .args(["--edition", "2021", "--crate-type", "bin", "--crate-name"])
        .arg("nsinit_trampoline")
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "debuginfo=0",
        ])
        .args(["-C", "strip=symbols", "-C", "relocation-model=static"])
        .args(["-C", "target-feature=+crt-static"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-D", "warnings"])
        .arg("-o")
        .arg(&output)
        .arg(SOURCE)
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", rustc.to_string_lossy()));
    assert!(status.success(), "building {SOURCE} failed ({status})");
}
