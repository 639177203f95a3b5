//! `cargo xtask vm-test`: the conformance suite in QEMU, once per cgroup hierarchy.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use vm::guest::CgroupMode;
use vm::qemu::{Accel, MachineKind};
use vm::suite::Plan;

use crate::args::Args;
use crate::cargo::{build_static, target_dir};
use crate::prereqs;
use crate::rootfs::SuiteRootfs;

/// Each boot is killed after this long unless `--timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(150);

pub fn run(mut args: Args) -> Result<()> {
    let cgroups = match args.value("--cgroup")? {
        None => CgroupMode::ALL.to_vec(),
        Some(text) => vec![CgroupMode::parse(&text)
            .ok_or_else(|| anyhow!("--cgroup {text}: expected v1 or v2"))?],
    };
    let accel = match args.value("--accel")? {
        None => Accel::Tcg,
        Some(text) => {
            Accel::parse(&text).ok_or_else(|| anyhow!("--accel {text}: expected tcg or kvm"))?
        }
    };
    let timeout = args
        .parsed("--timeout", "seconds")?
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let cpus = match args.parsed("--cpus", "a number of vCPUs")? {
        Some(cpus) => cpus,
        None => default_cpus(cgroups.len()),
    };
    let machine = match args.value("--machine")?.as_deref() {
        None => None,
        Some("q35") => Some(MachineKind::Q35),
        Some("microvm") => Some(MachineKind::fastest()),
        Some(other) => bail!("--machine {other}: expected microvm or q35"),
    };
    let kernel = args.value("--kernel")?.map(Into::into);
    let rootfs = SuiteRootfs::from_args(&mut args)?;
    let filter = args.value("--filter")?;
    let keep = args.flag("--keep");
    // Hidden, for testing the harness itself: a shell command to run instead of the driver.
    let guest_command = args.value("--guest-cmd")?;
    args.finish()?;

    let start = Instant::now();
    prereqs::ensure(&[prereqs::QEMU, prereqs::BUSYBOX])?;
    let rootfs_tar = rootfs.tarball()?;
    let binaries = build_static()?;
    let target = target_dir();
    let plan = Plan {
        kernel,
        cache_dir: target.join("vm/cache"),
        work_dir: target.join("vm/run"),
        busybox: prereqs::busybox()?,
        nsinit: binaries.nsinit,
        nsinit_oci: binaries.nsinit_oci,
        driver: binaries.driver,
        probe: binaries.probe,
        init: binaries.guest_init,
        rootfs_tar,
        rootfs_label: rootfs.label(),
        filter,
        guest_command,
        cgroups,
        accel,
        machine,
        cpus,
        memory_mib: 512,
        timeout,
        keep,
    };
    let passed = vm::suite::run(&plan)?;
    println!("vm-test: {:.1} s in all", start.elapsed().as_secs_f64());
    if !passed {
        bail!("vm-test failed");
    }
    Ok(())
}

/// The boots run at once: each gets its share of the host's cores, one at least, two at most
/// (the driver runs one case at a time). Measured on 2 cores: both boots at once with one vCPU
/// each, 46 s; with two each, 56 s; one after the other with two each, 76 s.
fn default_cpus(boots: usize) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / boots.max(1)).clamp(1, 2) as u32
}
