//! `cargo xtask ci`: prerequisites, format, lints, unit and integration tests, then the
//! conformance suite on this host and in QEMU, and nsinit-oci driven by podman, containerd
//! and the CRI (`cargo xtask engines`; `--no-vm` stops before these suites).

use std::process::Command;

use anyhow::Result;

use crate::args::Args;
use crate::cargo::{binary_dir, cargo, step, workspace_root};
use crate::{engines, host_test, prereqs, rootfs, vm_test};

pub fn run(mut args: Args) -> Result<()> {
    let vm = !args.flag("--no-vm");
    args.finish()?;

    println!("==> prerequisites");
    let mut packages = vec![prereqs::BUSYBOX, prereqs::LIBSECCOMP_DEV];
    if vm {
        packages.push(prereqs::QEMU);
    }
    prereqs::ensure(&packages)?;
    prereqs::ensure_rust_components()?;
    // Made (or found in the cache) before the tests, which unpack it, and the suite.
    println!("==> the Alpine fixture");
    let tarball = rootfs::alpine_tarball()?;
    println!("{}", tarball.display());

    step(
        "cargo fmt --all --check",
        cargo().args(["fmt", "--all", "--check"]),
    )?;
    // Built by the runtime's build script, outside any crate cargo fmt walks.
    step(
        "rustfmt --check runtime/trampoline/main.rs",
        Command::new("rustfmt").current_dir(workspace_root()).args([
            "--edition",
            "2021",
            "--check",
            "runtime/trampoline/main.rs",
        ]),
    )?;
    step(
        "cargo clippy --workspace --all-targets -- -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "cargo test --workspace",
        cargo().args(["test", "--workspace"]),
    )?;
    if vm {
        println!("==> host-test");
        host_test::run(Args::new([]))?;
        println!("==> vm-test");
        vm_test::run(Args::new([]))?;
        println!("==> engines (nsinit-oci)");
        step(
            "cargo build -p nsinit --bin nsinit-oci",
            cargo().args(["build", "-p", "nsinit", "--bin", "nsinit-oci"]),
        )?;
        let runtime = binary_dir("debug").join("nsinit-oci");
        // Without runc as the reference: `cargo xtask engines` alone runs it too, and it
        // costs as much again (51 s with one runtime here).
        engines::run(Args::new([
            "--runtime".to_string(),
            runtime.display().to_string(),
            "--no-reference".to_string(),
        ]))?;
    }
    println!("ci: all steps passed");
    Ok(())
}
