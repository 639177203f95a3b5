//! Where the workspace and its target directory are, running cargo and other steps, and the
//! static builds of the binaries the suite runs.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The target triple of the static builds (an explicit `--target` keeps `RUSTFLAGS` off
/// proc-macros and build scripts).
const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// `CARGO_TARGET_DIR` when set (relative to the current directory, as cargo reads it), else
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                env::current_dir().map(|cwd| cwd.join(&dir)).unwrap_or(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// `cargo` (the one running us, when known), in the workspace root, with the target directory
/// made absolute so every step agrees on it.
pub fn cargo() -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

/// Prints `==> what` and runs `command`, failing when it does.
pub fn step(what: &str, command: &mut Command) -> Result<()> {
    println!("==> {what}");
    let status = command.status().with_context(|| format!("start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// `cargo build --release` of `packages`' binaries, linked statically (`crt-static`).
fn static_build(packages: &[&str]) -> Command {
    let mut command = cargo();
    command
        .args(["build", "--release", "--target", STATIC_TARGET])
        .args(packages.iter().flat_map(|p| ["-p", p]))
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    command
}

fn static_dir() -> PathBuf {
    target_dir().join(STATIC_TARGET).join("release")
}

/// The release nsinit, as `cargo build --release -p nsinit` makes it.
pub fn build_release_nsinit() -> Result<PathBuf> {
    step(
        "cargo build --release -p nsinit",
        cargo().args(["build", "--release", "-p", "nsinit"]),
    )?;
    Ok(target_dir().join("release/nsinit"))
}

/// The release nsinit, linked statically.
pub fn build_static_nsinit() -> Result<PathBuf> {
    step(
        &format!("cargo build --release --target {STATIC_TARGET} -p nsinit (static)"),
        &mut static_build(&["nsinit"]),
    )?;
    Ok(static_dir().join("nsinit"))
}

/// The static (`crt-static`) release binaries the suite runs, on a host or in the VM.
pub struct StaticBinaries {
    pub nsinit: PathBuf,
    pub driver: PathBuf,
    pub probe: PathBuf,
    pub guest_init: PathBuf,
}

/// Builds nsinit, the conformance driver and probe, and the VM's `guest-init`, statically.
pub fn build_static() -> Result<StaticBinaries> {
    let mut command = static_build(&["nsinit", "conformance", "vm"]);
    command.arg("--bins");
    step(&format!("cargo build --release --target {STATIC_TARGET} (static nsinit, conformance, guest-init)"), &mut command)?;
    let dir = static_dir();
    Ok(StaticBinaries {
        nsinit: dir.join("nsinit"),
        driver: dir.join("nsinit-conformance"),
        probe: dir.join("nsinit-probe"),
        guest_init: dir.join("guest-init"),
    })
}
