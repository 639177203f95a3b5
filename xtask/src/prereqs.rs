//! System prerequisites: the Debian packages each command needs, installed when root and
//! missing, and the static busybox the rootfs and the VM are made of.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Result};

/// A static busybox: the sample rootfs, the conformance fixtures and the VM's userland.
pub const BUSYBOX: &str = "busybox-static";
/// `qemu-system-x86_64`, for vm-test.
pub const QEMU: &str = "qemu-system-x86";
/// `ip`, for the stand-in host's network namespace and bridge (sample, bench).
pub const IPROUTE: &str = "iproute2";
/// The runtimes the bench measures nsinit against.
pub const RUNC: &str = "runc";
pub const CRUN: &str = "crun";
/// gcc and a static libc, for the bench's C programs (the kernel floor, crun's wrapper).
pub const GCC: &str = "gcc";
pub const LIBC_DEV: &str = "libc6-dev";
/// libseccomp's static library, which nsinit links to compile seccomp profiles.
pub const LIBSECCOMP_DEV: &str = "libseccomp-dev";
/// The engines `cargo xtask engines` drives (Debian 12: podman 4.3.1, conmon 2.1.6,
/// containerd 1.6.20 with ctr, its runc v2 shim and the CRI plugin), podman's network stack
/// (netavark and the iptables it programs), runc, the reference runtime, and `uidmap`'s
/// setuid `newuidmap`/`newgidmap`, with which rootless podman maps its user namespace (only a
/// recommendation of podman's, which apt leaves out here).
pub const ENGINES: [&str; 9] = [
    BUSYBOX,
    IPROUTE,
    RUNC,
    "podman",
    "conmon",
    "containerd",
    "netavark",
    "iptables",
    "uidmap",
];

/// Installs the missing `packages` (as root), or fails saying what is missing and how to
/// install it.
pub fn ensure(packages: &[&str]) -> Result<()> {
    vm::apt::ensure_installed(packages)
}

/// The static busybox to build rootfs trees from (`NSINIT_BUSYBOX` overrides).
pub fn busybox() -> Result<PathBuf> {
    fixtures::find_busybox().map_err(|error| anyhow!("{error}"))
}

/// Fails unless `cargo fmt` and `cargo clippy` are available, naming the rustup components.
pub fn ensure_rust_components() -> Result<()> {
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(subcommand, _)| {
            !crate::cargo::cargo()
                .args([subcommand, "--version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .map(|(_, component)| component)
        .collect();
    if !missing.is_empty() {
        let list = missing.join(" ");
        let has_rustup = Command::new("rustup").arg("--version").output().is_ok();
        let how = if has_rustup {
            format!("rustup component add {list}")
        } else {
            format!("install {list} for this toolchain")
        };
        bail!("missing Rust components: {list}\ninstall them with: {how}");
    }
    Ok(())
}
