//! The whole `vm-test`: one initramfs, one boot per cgroup hierarchy, the guest's lines
//! streamed with progress, a tally per boot and in total.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::guest::{self, CgroupMode};
use crate::initramfs::{self, Contents};
use crate::kernel::{self, Kernel};
use crate::qemu::{Accel, Machine, MachineKind};
use crate::report::{self, Line, Summary};

/// Where the rootfs tarball lands in the guest when one is given.
const GUEST_ROOTFS_TAR: &str = "/rootfs.tar";

/// Everything one `vm-test` needs: the binaries are built by the caller (static).
#[derive(Debug, Clone)]
pub struct Plan {
    /// A bzImage to boot instead of Debian's cloud kernel.
    pub kernel: Option<PathBuf>,
    /// Where the fetched kernel is cached (`<target>/vm/cache`).
    pub cache_dir: PathBuf,
    /// Where the initramfs is written (`<target>/vm/run`); removed afterwards unless `keep`.
    pub work_dir: PathBuf,
    /// The guest's own userland (its shell, `ip`, `insmod`), and the containers' rootfs when
    /// no tarball is given.
    pub busybox: PathBuf,
    pub nsinit: PathBuf,
    pub nsinit_oci: PathBuf,
    pub driver: PathBuf,
    pub probe: PathBuf,
    /// The static guest init (`guest-init` from this crate).
    pub init: PathBuf,
    /// The containers' rootfs as a tarball (plain or gzip); `None`: the busybox tree.
    pub rootfs_tar: Option<PathBuf>,
    /// How the summary lines name the rootfs (`alpine 3.23.6`).
    pub rootfs_label: String,
    pub filter: Option<String>,
    /// A shell command to run in the guest instead of the driver (to test the harness).
    pub guest_command: Option<String>,
    pub cgroups: Vec<CgroupMode>,
    pub accel: Accel,
    /// The machine type; `None` picks the fastest that works here.
    pub machine: Option<MachineKind>,
    pub cpus: u32,
    pub memory_mib: u32,
    /// Hard deadline for each boot.
    pub timeout: Duration,
    pub keep: bool,
}

/// What one boot reported.
#[derive(Debug)]
pub struct BootReport {
    pub cgroup: CgroupMode,
    pub summary: Summary,
    /// Why the boot failed, if it did.
    pub error: Option<String>,
}

/// Runs the plan; `Ok(true)` when every boot passed. Prints as it goes, ending with
/// `total: N passed, N failed`.
pub fn run(plan: &Plan) -> Result<bool> {
    let kernel = match &plan.kernel {
        Some(image) => Kernel::from_image(image)?,
        None => kernel::cloud_kernel(&plan.cache_dir)?,
    };
    println!("[fetch] kernel {}", kernel.description);
    for module in kernel.missing_modules() {
        println!("[fetch] note: no {module} module for this kernel; the guest will not load it");
    }

    let started = Instant::now();
    fs::create_dir_all(&plan.work_dir)
        .with_context(|| format!("create {}", plan.work_dir.display()))?;
    let rootfs_tar = match &plan.rootfs_tar {
        Some(tar) => Some(plain_tarball(tar, &plan.work_dir)?),
        None => None,
    };
    let initrd = plan.work_dir.join("initrd.cpio");
    initramfs::write(&contents(plan, &kernel, rootfs_tar), &initrd)?;
    let size = fs::metadata(&initrd)?.len();
    println!(
        "[build] initramfs {} ({:.1} MiB, {} ms)",
        initrd.display(),
        mib(size),
        started.elapsed().as_millis()
    );

    let expected = match plan.guest_command {
        Some(_) => None,
        None => count_checks(plan),
    };
    let kind = plan.machine.unwrap_or_else(MachineKind::fastest);
    let machines: Vec<(CgroupMode, Machine)> = plan
        .cgroups
        .iter()
        .map(|&cgroup| {
            let machine = Machine {
                kind,
                kernel: kernel.image.clone(),
                initrd: initrd.clone(),
                append: guest::kernel_command_line(cgroup),
                accel: plan.accel,
                memory_mib: plan.memory_mib,
                cpus: plan.cpus,
                timeout: plan.timeout,
            };
            if plan.keep {
                println!("[boot {cgroup}] {}", shell_line(&machine.command()));
            }
            (cgroup, machine)
        })
        .collect();
    // The boots share nothing but the initramfs they read: they run at once, their lines
    // interleaved, each tagged with its hierarchy.
    let reports = thread::scope(|scope| {
        let boots: Vec<_> = machines
            .iter()
            .map(|(cgroup, machine)| scope.spawn(move || boot(machine, *cgroup, expected)))
            .collect();
        boots
            .into_iter()
            .map(|boot| boot.join().expect("a boot thread panicked"))
            .collect::<Result<Vec<_>>>()
    })?;

    let mut total = Summary::default();
    for report in &reports {
        total += report.summary;
        match &report.error {
            None => println!(
                "cgroup {} ({}): {}",
                report.cgroup, plan.rootfs_label, report.summary
            ),
            Some(error) => println!(
                "cgroup {} ({}): {} ({error})",
                report.cgroup, plan.rootfs_label, report.summary
            ),
        }
    }
    if plan.keep {
        println!("[keep] initramfs kept at {}", initrd.display());
    } else {
        let _ = fs::remove_dir_all(&plan.work_dir);
    }
    println!("total: {total}");
    Ok(reports.iter().all(|report| report.error.is_none()))
}

/// `tar` itself when it is no gzip file, else its content unzipped into `work_dir`: the guest's
/// busybox takes about 0.8 s to unzip the Alpine tarball under TCG, the host 0.05 s, and the
/// bigger plain tarball costs the guest next to nothing more to load.
fn plain_tarball(tar: &Path, work_dir: &Path) -> Result<PathBuf> {
    let mut magic = [0u8; 2];
    let mut file = fs::File::open(tar).with_context(|| format!("open {}", tar.display()))?;
    let _ = file.read(&mut magic)?;
    if magic != [0x1f, 0x8b] {
        return Ok(tar.to_path_buf());
    }
    let plain = work_dir.join("rootfs.tar");
    let output = fs::File::create(&plain).with_context(|| format!("create {}", plain.display()))?;
    let status = Command::new("gzip")
        .arg("-dc")
        .arg(tar)
        .stdout(output)
        .status()
        .context("run gzip")?;
    if !status.success() {
        bail!("gzip -dc {}: {status}", tar.display());
    }
    Ok(plain)
}

/// The initramfs contents for `plan`: busybox, modules, the binaries, the rootfs tarball
/// (`rootfs_tar`, plain) and the suite command.
fn contents(plan: &Plan, kernel: &Kernel, rootfs_tar: Option<PathBuf>) -> Contents {
    let mut files = Vec::new();
    let mut args: Vec<String> = [
        "--nsinit",
        "/bin/nsinit",
        "--nsinit-oci",
        "/bin/nsinit-oci",
        "--probe",
        "/bin/nsinit-probe",
    ]
    .map(String::from)
    .into();
    match rootfs_tar {
        Some(tar) => {
            files.push((GUEST_ROOTFS_TAR.to_string(), tar));
            args.extend(["--rootfs-tar".to_string(), GUEST_ROOTFS_TAR.to_string()]);
        }
        None => args.extend(["--busybox".to_string(), "/bin/busybox".to_string()]),
    }
    if let Some(filter) = &plan.filter {
        args.extend(["--filter".to_string(), filter.clone()]);
    }
    let command = match &plan.guest_command {
        Some(command) => command.clone(),
        None => guest::shell_command("/bin/nsinit-conformance", &args),
    };
    Contents {
        init: plan.init.clone(),
        busybox: plan.busybox.clone(),
        modules: kernel.modules.clone(),
        binaries: vec![
            ("nsinit".into(), plan.nsinit.clone()),
            ("nsinit-oci".into(), plan.nsinit_oci.clone()),
            ("nsinit-conformance".into(), plan.driver.clone()),
            ("nsinit-probe".into(), plan.probe.clone()),
        ],
        files,
        command,
    }
}

/// How many checks the driver will run, from `--list` on this host (for "check i of N").
fn count_checks(plan: &Plan) -> Option<usize> {
    let mut command = Command::new(&plan.driver);
    command
        .arg("--nsinit")
        .arg(&plan.nsinit)
        .arg("--nsinit-oci")
        .arg(&plan.nsinit_oci)
        .arg("--probe")
        .arg(&plan.probe)
        .arg("--list");
    match &plan.rootfs_tar {
        Some(tar) => command.arg("--rootfs-tar").arg(tar),
        None => command.arg("--busybox").arg(&plan.busybox),
    };
    if let Some(filter) = &plan.filter {
        command.args(["--filter", filter]);
    }
    let output = command
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let listed = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    Some(listed).filter(|&n| n > 0)
}

/// One boot: streams the guest's lines, numbering the checks, and judges the end.
fn boot(machine: &Machine, cgroup: CgroupMode, expected: Option<usize>) -> Result<BootReport> {
    println!(
        "[boot {cgroup}] {}, {}, {} MiB, {} vCPU, deadline {} s",
        machine.kind,
        machine.accel,
        machine.memory_mib,
        machine.cpus,
        machine.timeout.as_secs()
    );
    let start = Instant::now();
    let mut ready_at = None;
    let mut first_check_at = None;
    let mut seen = Summary::default();
    let mut summary = None;
    let run = machine.run(|line| {
        let check = match report::parse_line(line) {
            Line::Passed(_) => {
                seen.passed += 1;
                true
            }
            Line::Failed(_) => {
                seen.failed += 1;
                true
            }
            Line::Summary(s) => {
                summary = Some(s);
                false
            }
            Line::Other => false,
        };
        if line.starts_with("nsinit-vm: ready") && ready_at.is_none() {
            ready_at = Some(start.elapsed());
        }
        if check {
            first_check_at.get_or_insert(start.elapsed());
            let done = seen.passed + seen.failed;
            match expected {
                Some(n) => println!("{cgroup} | [check {done}/{n}] {line}"),
                None => println!("{cgroup} | [check {done}] {line}"),
            }
        } else {
            println!("{cgroup} | {line}");
        }
    })?;

    let mut timing = format!("QEMU ran {:.1} s", run.elapsed.as_secs_f64());
    if let Some(at) = ready_at {
        timing.push_str(&format!(", init ready at {:.1} s", at.as_secs_f64()));
    }
    if let Some(at) = first_check_at {
        timing.push_str(&format!(", first check at {:.1} s", at.as_secs_f64()));
    }
    println!("[boot {cgroup}] {timing}");

    let verdict = report::verdict(run.ending, summary);
    if verdict.is_err() && !run.stderr.trim().is_empty() {
        println!("[boot {cgroup}] QEMU said: {}", run.stderr.trim());
    }
    Ok(match verdict {
        Ok(summary) => BootReport {
            cgroup,
            summary,
            error: None,
        },
        Err(error) => {
            // Count what was seen; a boot that failed without a failed check counts as one.
            let mut summary = summary.unwrap_or(seen);
            summary.failed = summary.failed.max(1);
            BootReport {
                cgroup,
                summary,
                error: Some(error),
            }
        }
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A command as a line to paste into a shell.
fn shell_line(command: &Command) -> String {
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    guest::shell_command(&command.get_program().to_string_lossy(), &args)
}
