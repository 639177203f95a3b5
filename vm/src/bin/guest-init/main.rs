//! The guest's init, PID 1 in the VM: leaves the initramfs for a tmpfs (pivot_root refuses to
//! work while the root is the initramfs), mounts the kernel filesystems, loads the modules,
//! mounts the cgroup hierarchy the kernel command line names, runs the suite and reports its
//! status to the host through `isa-debug-exit`.

mod sys;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use vm::guest::{self, CgroupMode, GuestStatus, DEBUG_EXIT_PORT};
use vm::kernel::MODULES;

/// The tmpfs the init moves onto; it becomes `/`.
const NEW_ROOT: &str = "/newroot";
/// Entries of the initramfs root not copied to the tmpfs: mount points and the tmpfs itself.
const NOT_COPIED: [&str; 4] = ["newroot", "dev", "proc", "sys"];

fn main() {
    let status = match run() {
        Ok(0) => GuestStatus::Passed,
        Ok(code) => {
            println!("nsinit-vm: the suite exited with status {code}");
            GuestStatus::Failed
        }
        Err(error) => {
            println!("nsinit-vm: init failed: {error:#}");
            GuestStatus::InitError
        }
    };
    if let Err(error) = sys::debug_exit(DEBUG_EXIT_PORT, status.port_value()) {
        println!("nsinit-vm: no isa-debug-exit device ({error}); powering off");
    }
    sys::power_off()
}

/// The recipe, in the order the kernel needs it; returns the suite's exit status.
fn run() -> Result<i32> {
    println!("nsinit-vm: init");
    leave_initramfs()?;
    mount_kernel_filesystems()?;
    // RCU grace periods dominate namespace and netdev teardown under TCG.
    fs::write("/sys/kernel/rcu_expedited", "1").context("write /sys/kernel/rcu_expedited")?;
    load_modules()?;
    let cmdline = fs::read_to_string("/proc/cmdline").context("read /proc/cmdline")?;
    let Some(cgroup) = guest::cgroup_switch(&cmdline) else {
        bail!(
            "no {}v1|v2 on the kernel command line",
            guest::CGROUP_SWITCH
        );
    };
    mount_cgroups(cgroup)?;
    fs::write("/proc/sys/kernel/hostname", "nsinit-vm").context("set the hostname")?;
    shell(&["ip", "link", "set", "lo", "up"])?;
    println!("nsinit-vm: ready: cgroup {cgroup}, uptime {}s", uptime());
    run_suite()
}

/// Copies the initramfs onto a tmpfs and makes that the root, as `switch_root` does
/// (move-mount onto `/`, chroot). The initramfs's copy stays behind, unreachable.
fn leave_initramfs() -> Result<()> {
    let new_root = Path::new(NEW_ROOT);
    fs::create_dir_all(new_root).context("mkdir /newroot")?;
    sys::mount("tmpfs", new_root, Some("tmpfs"), 0, Some("mode=0755"))
        .context("mount tmpfs on /newroot")?;
    for entry in fs::read_dir("/").context("read /")? {
        let entry = entry?;
        if !NOT_COPIED.iter().any(|name| entry.file_name() == *name) {
            copy_tree(&entry.path(), &new_root.join(entry.file_name()))?;
        }
    }
    for dir in NOT_COPIED.iter().skip(1).chain(&["tmp", "run"]) {
        fs::create_dir_all(new_root.join(dir)).with_context(|| format!("mkdir /newroot/{dir}"))?;
    }
    std::env::set_current_dir(new_root).context("chdir /newroot")?;
    sys::mount(".", Path::new("/"), None, sys::MS_MOVE, None).context("move /newroot onto /")?;
    std::os::unix::fs::chroot(".").context("chroot into /newroot")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

/// Copies a file, symlink or directory tree, keeping permission bits.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(from).with_context(|| format!("stat {}", from.display()))?;
    let what = || format!("copy {} to {}", from.display(), to.display());
    if meta.is_symlink() {
        symlink(fs::read_link(from).with_context(what)?, to).with_context(what)?;
    } else if meta.is_dir() {
        fs::create_dir(to).with_context(what)?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.permissions().mode()))
            .with_context(what)?;
        for entry in fs::read_dir(from).with_context(what)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        fs::copy(from, to).with_context(what)?;
    }
    Ok(())
}

/// `/proc`, `/sys`, `/dev` (with `/dev/pts` and `/dev/shm`), and tmpfs on `/tmp` and `/run`.
fn mount_kernel_filesystems() -> Result<()> {
    let mounts: [(&str, &str, &str, Option<&str>); 7] = [
        ("proc", "/proc", "proc", None),
        ("sysfs", "/sys", "sysfs", None),
        ("devtmpfs", "/dev", "devtmpfs", None),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            Some("gid=5,mode=620,ptmxmode=666"),
        ),
        ("tmpfs", "/dev/shm", "tmpfs", None),
        ("tmpfs", "/tmp", "tmpfs", None),
        ("tmpfs", "/run", "tmpfs", None),
    ];
    for (source, target, fstype, data) in mounts {
        let target = Path::new(target);
        fs::create_dir_all(target).with_context(|| format!("mkdir {}", target.display()))?;
        sys::mount(source, target, Some(fstype), 0, data)
            .with_context(|| format!("mount {fstype} on {}", target.display()))?;
    }
    Ok(())
}

/// Loads the modules the checks need, in dependency order; a kernel given with `--kernel`
/// may come without them.
fn load_modules() -> Result<()> {
    for name in MODULES {
        let path = Path::new("/lib/modules").join(format!("{name}.ko"));
        if path.exists() {
            sys::load_module(&path).with_context(|| format!("load module {name}"))?;
        } else {
            println!("nsinit-vm: note: no {name} module; not loaded");
        }
    }
    Ok(())
}

/// v2: the unified hierarchy, every controller enabled for the root's children. v1: a tmpfs
/// with one hierarchy per enabled controller (`/sys/fs/cgroup/memory`, ...).
fn mount_cgroups(mode: CgroupMode) -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    match mode {
        CgroupMode::V2 => {
            sys::mount("cgroup2", root, Some("cgroup2"), 0, Some("nsdelegate"))
                .context("mount cgroup2")?;
            let controllers = fs::read_to_string(root.join("cgroup.controllers"))?;
            for controller in controllers.split_whitespace() {
                fs::write(
                    root.join("cgroup.subtree_control"),
                    format!("+{controller}"),
                )
                .with_context(|| format!("enable the {controller} controller"))?;
            }
        }
        CgroupMode::V1 => {
            sys::mount("cgroup", root, Some("tmpfs"), 0, Some("mode=0755"))
                .context("mount tmpfs on /sys/fs/cgroup")?;
            let table = fs::read_to_string("/proc/cgroups").context("read /proc/cgroups")?;
            for controller in guest::v1_controllers(&table) {
                let dir = root.join(controller);
                fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
                sys::mount("cgroup", &dir, Some("cgroup"), 0, Some(controller))
                    .with_context(|| format!("mount cgroup v1 {controller}"))?;
            }
        }
    }
    Ok(())
}

/// Runs a busybox command, failing unless it exits 0.
fn shell(args: &[&str]) -> Result<()> {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .with_context(|| format!("run {}", args[0]))?;
    if !status.success() {
        bail!("{} failed: {status}", args.join(" "));
    }
    Ok(())
}

/// Runs the suite command and returns its status, reaping every orphan meanwhile (PID 1's job).
fn run_suite() -> Result<i32> {
    let path = Path::new("/").join(guest::COMMAND_PATH);
    let command = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let child = Command::new("/bin/sh")
        .args(["-c", command.trim()])
        .env_clear()
        .envs([("PATH", "/bin"), ("HOME", "/root")])
        // Nothing ever arrives on the console (QEMU's stdin is closed), as in CI.
        .stdin(Stdio::null())
        .spawn()
        .context("start the suite")?;
    loop {
        let (pid, status) = sys::wait_any().context("wait for the suite")?;
        if pid == child.id() {
            return Ok(sys::exit_code(status));
        }
    }
}

fn uptime() -> String {
    let text = fs::read_to_string("/proc/uptime").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_string()
}
