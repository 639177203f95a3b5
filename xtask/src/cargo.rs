//! Where the workspace and its target directory are, running cargo and other steps, and the
//! static builds of the binaries the suite runs.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace's build target (`.cargo/config.toml`): builds for it are linked statically,
/// and an explicit target keeps those flags off proc-macros and build scripts.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The flags `.cargo/config.toml` gives [`TARGET`], passed again by the steps that need a
/// static binary, so that a `RUSTFLAGS` in the environment cannot make them dynamic.
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";

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
        .args(["build", "--release", "--target", TARGET])
        .args(packages.iter().flat_map(|p| ["-p", p]))
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    command
}

/// Where cargo puts the binaries of `profile` (`debug` or `release`).
pub fn binary_dir(profile: &str) -> PathBuf {
    target_dir().join(TARGET).join(profile)
}

/// The release nsinit, as `cargo build --release -p nsinit` makes it (static).
pub fn build_release_nsinit() -> Result<PathBuf> {
    step(
        "cargo build --release -p nsinit",
        &mut static_build(&["nsinit"]),
    )?;
    Ok(binary_dir("release").join("nsinit"))
}

/// The release nsinit linked dynamically, as it would be without `.cargo/config.toml`'s
/// flags: the bench's reference for what static linking saves. Built in a target directory
/// of its own so that the two builds do not undo each other.
pub fn build_dynamic_nsinit() -> Result<PathBuf> {
    let dir = target_dir().join("dynamic");
    let mut command = cargo();
    command
        .args(["build", "--release", "--target", TARGET, "-p", "nsinit"])
        .env("CARGO_TARGET_DIR", &dir)
        .env("RUSTFLAGS", "")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    step(
        "cargo build --release -p nsinit (dynamically linked, for reference)",
        &mut command,
    )?;
    Ok(dir.join(TARGET).join("release/nsinit"))
}

/// The static (`crt-static`) release binaries the suite runs, on a host or in the VM.
pub struct StaticBinaries {
    pub nsinit: PathBuf,
    pub nsinit_oci: PathBuf,
    pub driver: PathBuf,
    pub probe: PathBuf,
    pub guest_init: PathBuf,
}

/// Builds nsinit and nsinit-oci, the conformance driver and probe, and the VM's `guest-init`, statically.
pub fn build_static() -> Result<StaticBinaries> {
    crate::prereqs::ensure(&[crate::prereqs::LIBSECCOMP_DEV])?;
    let mut command = static_build(&["nsinit", "conformance", "vm"]);
    command.arg("--bins");
    step(
        "cargo build --release (static nsinit, conformance, guest-init)",
        &mut command,
    )?;
    let dir = binary_dir("release");
    Ok(StaticBinaries {
        nsinit: dir.join("nsinit"),
        nsinit_oci: dir.join("nsinit-oci"),
        driver: dir.join("nsinit-conformance"),
        probe: dir.join("nsinit-probe"),
        guest_init: dir.join("guest-init"),
    })
}
