//! The container's filesystem: enter the rootfs with `pivot_root`, then mount `/proc`, `/sys`
//! and a fresh `/dev`. Runs in the container's first process, inside its new mount namespace.
//!
//! The rootfs is untrusted: it may hold symlinks pointing anywhere. Only one host path is used,
//! the rootfs directory itself (chosen by the user, resolved on the host before the clone).
//! Every other path is touched after `pivot_root` has made the rootfs `/` and the old root is
//! detached, so a symlink inside can only ever resolve to somewhere inside (CVE-2021-30465).
//! Mount targets that are symlinks are refused all the same: mounting over `/etc` because
//! `/proc` pointed there would be a surprise.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{lstat, makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, chroot, mkdir, pivot_root, symlinkat};

use crate::error::{StepContext, StepError};

/// A device node in the container's `/dev`: name, major, minor. Created with mode 0666.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Symlinks in the container's `/dev`: link name, target.
const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Make `rootfs` the root of this mount namespace and leave the host's tree behind.
///
/// Steps: make every mount private (nothing propagates back to the host), bind the rootfs
/// onto itself (`pivot_root` needs a mount point), `pivot_root` into it and detach the old root.
pub fn enter_rootfs(rootfs: &Path) -> Result<(), StepError> {
    let show = rootfs.display();
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .step(|| "make mounts private (mount --make-rprivate /)".into())?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("bind rootfs {show} onto itself"))?;
    chdir(rootfs).step(|| format!("chdir to rootfs {show}"))?;
    match pivot_root(".", ".") {
        Ok(()) => {
            // The old root is now stacked on ".": detach it, lazily, as it may be busy.
            umount2(".", MntFlags::MNT_DETACH).step(|| "detach the old root".into())?;
        }
        // The host runs from a ramdisk (initramfs), where pivot_root is not allowed: move the
        // rootfs over "/" and chroot, as the original libcontainer did.
        Err(nix::Error::EINVAL) => {
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .step(|| format!("move rootfs {show} to / (pivot_root refused: ramdisk root)"))?;
            chroot(".").step(|| format!("chroot to rootfs {show}"))?;
        }
        Err(errno) => return Err(errno).step(|| format!("pivot_root to rootfs {show}")),
    }
    chdir("/").step(|| "chdir to / in the container".into())
}

/// Mount the kernel's filesystems the container expects: `/proc`, `/sys` (read-only) and a
/// fresh `/dev` with its nodes, `/dev/pts`, `/dev/shm`, and `/dev/mqueue` when `mqueue`
/// (the container has its own IPC namespace). Call after [`enter_rootfs`].
pub fn mount_kernel_filesystems(mqueue: bool) -> Result<(), StepError> {
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    mount_fs("proc", "/proc", nosuid_noexec_nodev, None)?;
    mount_fs(
        "sysfs",
        "/sys",
        nosuid_noexec_nodev | MsFlags::MS_RDONLY,
        None,
    )?;
    mount_fs(
        "tmpfs",
        "/dev",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let path = format!("/dev/{name}");
        mknod(
            path.as_str(),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .step(|| format!("create device node {path} ({major}:{minor})"))?;
    }
    for (name, target) in DEV_SYMLINKS {
        symlinkat(
            target,
            nix::fcntl::AT_FDCWD,
            format!("/dev/{name}").as_str(),
        )
        .step(|| format!("create symlink /dev/{name} -> {target}"))?;
    }
    mount_fs(
        "devpts",
        "/dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mount_fs(
        "tmpfs",
        "/dev/shm",
        nosuid_noexec_nodev,
        Some("mode=1777,size=65536k"),
    )?;
    if mqueue {
        mount_fs("mqueue", "/dev/mqueue", nosuid_noexec_nodev, None)?;
    }
    Ok(())
}

/// Bind the container's terminal (a `/dev/pts/N`) at `/dev/console`.
pub fn bind_console(pts: &str) -> Result<(), StepError> {
    // A regular file on our own /dev tmpfs serves as the mount point.
    std::fs::File::create("/dev/console").step(|| "create /dev/console".into())?;
    mount(
        Some(pts),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .step(|| format!("bind {pts} at /dev/console"))
}

/// Mount a filesystem of type `fstype` (also used as the source name) on `target`, creating
/// the target directory when missing.
fn mount_fs(
    fstype: &str,
    target: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), StepError> {
    ensure_mount_point(target)?;
    mount(Some(fstype), target, Some(fstype), flags, data)
        .step(|| format!("mount {fstype} on {target}"))
}

/// Make sure `target` is a directory we may mount on: create it when missing, refuse a symlink
/// or a non-directory.
fn ensure_mount_point(target: &str) -> Result<(), StepError> {
    match lstat(target) {
        Ok(st) => match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => Ok(()),
            SFlag::S_IFLNK => Err(nix::Error::ELOOP)
                .step(|| format!("mount point {target} in the rootfs is a symlink; refusing")),
            _ => Err(nix::Error::ENOTDIR)
                .step(|| format!("mount point {target} in the rootfs is not a directory")),
        },
        Err(nix::Error::ENOENT) => mkdir(target, Mode::from_bits_truncate(0o755))
            .step(|| format!("create mount point {target} in the rootfs")),
        Err(errno) => Err(errno).step(|| format!("inspect mount point {target} in the rootfs")),
    }
}
