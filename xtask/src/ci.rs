//! `cargo xtask ci`: prerequisites, format, lints, unit and integration tests, then the
//! conformance suite on this host and in QEMU (`--no-vm` stops before the suite).

use anyhow::Result;

use crate::args::Args;
use crate::cargo::{cargo, step};
use crate::{host_test, prereqs, rootfs, vm_test};

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
    }
    println!("ci: all steps passed");
    Ok(())
}
