//! `cargo xtask host-test`: the conformance suite on this host, with the static binaries, on
//! the Alpine fixture unless told otherwise.

use std::process::Command;

use anyhow::{bail, Result};

use crate::args::Args;
use crate::cargo::{build_static, step, target_dir};
use crate::prereqs;
use crate::rootfs::SuiteRootfs;

pub fn run(mut args: Args) -> Result<()> {
    let rootfs = SuiteRootfs::from_args(&mut args)?;
    let filter = args.value("--filter")?;
    args.finish()?;

    if !vm::apt::is_root() {
        println!(
            "host-test: skipped: the suite starts containers, which needs root (run it as root)"
        );
        return Ok(());
    }
    let rootfs_tar = rootfs.tarball()?;
    let binaries = build_static()?;
    let mut driver = Command::new(&binaries.driver);
    driver
        .arg("--nsinit")
        .arg(&binaries.nsinit)
        .arg("--nsinit-oci")
        .arg(&binaries.nsinit_oci)
        .arg("--probe")
        .arg(&binaries.probe);
    match rootfs_tar {
        Some(tar) => driver.arg("--rootfs-tar").arg(tar),
        None => {
            prereqs::ensure(&[prereqs::BUSYBOX])?;
            driver.arg("--busybox").arg(prereqs::busybox()?)
        }
    };
    if let Some(filter) = filter {
        driver.args(["--filter", &filter]);
    }
    driver.arg("--workdir").arg(target_dir().join("host-test"));
    if step("nsinit-conformance on this host", &mut driver).is_err() {
        bail!("host-test: the conformance suite failed");
    }
    Ok(())
}
