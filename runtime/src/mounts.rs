//! The container's filesystem: enter the rootfs with `pivot_root`, mount the plan's
//! filesystems, fill `/dev`, then hide the masked paths and make the read-only ones so. Runs
//! in the container's first process, inside its new mount namespace.
//!
//! The rootfs is untrusted: it may hold symlinks pointing anywhere. Only one host path is used,
//! the rootfs directory itself (chosen by the user, resolved on the host before the clone).
//! Every other path is touched after `pivot_root` has made the rootfs `/` and the old root is
//! detached, so a symlink inside can only ever resolve to somewhere inside (CVE-2021-30465).
//! Mount targets that are symlinks are refused all the same: mounting over `/etc` because
//! `/proc` pointed there would be a surprise. Masks and read-only binds go through an fd of
//! the very file checked (`/proc/self/fd/N`), and a mask's `/dev/null` is verified to be the
//! real device by its fd before it is bound (CVE-2025-31133).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{open, openat, readlinkat, AtFlags, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, lstat, makedev, mkdirat, mknod, mknodat, utimensat,
    FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{chdir, chroot, fchown, fchownat, mkdir, pivot_root, symlinkat, Gid, Uid};

use crate::error::{StepContext, StepError};
use crate::plan::{
    DeviceKind, DeviceNode, Mount, MountOption, MountSource, Propagation, PropagationKind,
};
use crate::sys;

/// Symlinks in the container's `/dev`: link name, target.
const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// The device a masked file is covered with: `/dev/null`, 1:3.
const NULL_DEVICE: (u64, u64) = (1, 3);

/// Make `rootfs` the root of this mount namespace and leave the host's tree behind.
///
/// Steps: make every mount private or a slave of the host's (nothing propagates back to the
/// host), bind the rootfs onto itself (`pivot_root` needs a mount point), with `nodev` when
/// asked, `pivot_root` into it and detach the old root. A shared or unbindable `/` is set
/// afterwards, once nothing done here can propagate.
pub fn enter_rootfs(rootfs: &Path, nodev: bool, propagation: Propagation) -> Result<(), StepError> {
    let show = rootfs.display();
    let first = match propagation.kind {
        PropagationKind::Slave => propagation,
        _ => Propagation {
            kind: PropagationKind::Private,
            recursive: true,
        },
    };
    set_propagation("/", first)?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("bind rootfs {show} onto itself"))?;
    if nodev {
        // A remount replaces every per-mount flag: keep the ones the rootfs had (a nosuid
        // host filesystem must stay nosuid in the container).
        let kept = kept_flags(rootfs).step(|| format!("read the mount flags of {show}"))?;
        mount(
            None::<&str>,
            rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV | kept,
            None::<&str>,
        )
        .step(|| format!("remount rootfs {show} nodev"))?;
    }
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
    chdir("/").step(|| "chdir to / in the container".into())?;
    if first != propagation {
        set_propagation("/", propagation)?;
    }
    Ok(())
}

/// What the container's `cgroup` mounts show: the cgroup2 hierarchy (seen from the
/// container's cgroup namespace), or on v1 the container's group in each hierarchy, bound
/// from the host by controller name (`memory`, `cpu,cpuacct`).
pub enum CgroupView {
    V2,
    /// v2 in a new user namespace without a new cgroup namespace, where the kernel refuses a
    /// cgroup2 mount (the cgroup namespace is another user namespace's): a read-only bind of
    /// this directory, the container's group (runc's fallback).
    V2Bound(PathBuf),
    V1(Vec<(String, PathBuf)>),
}

/// What every cgroup mount gets: the v1 tmpfs, each bound hierarchy or group.
const CGROUP_BIND_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NODEV);

/// The host files and directories the plan's mounts bind, cloned as detached mount trees in
/// this mount namespace before the rootfs becomes `/`: after, their mounts are out of reach
/// and `open_tree` refuses them (EINVAL), while a detached clone stays attachable. One entry
/// per mount.
pub struct Sources {
    binds: Vec<Vec<(String, OwnedFd)>>,
    cgroup_v2: bool,
}

/// Clone every bind source of `mounts` (and, for a `cgroup` mount on v1, the container's
/// groups) into a detached mount tree fd. Host paths: run before [`enter_rootfs`].
///
/// In a user namespace (`in_user_namespace`), `proc` and `sysfs` are made here too, as
/// detached mounts: the kernel lets a user namespace mount them only while the host's are
/// fully visible in its mount namespace, which they are no more once the rootfs is `/`.
pub fn open_sources(
    mounts: &[Mount],
    cgroups: &CgroupView,
    in_user_namespace: bool,
) -> Result<Sources, StepError> {
    let clone_host = |path: &Path, recursive: bool| {
        let source = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .step(|| format!("open bind source {}", path.display()))?;
        sys::open_tree_clone(source.as_fd(), recursive)
            .step(|| format!("clone the mount of bind source {}", path.display()))
    };
    let mut binds = Vec::new();
    for m in mounts {
        binds.push(match (&m.source, cgroups) {
            (MountSource::Bind { path, recursive }, _) => {
                vec![(String::new(), clone_host(path, *recursive)?)]
            }
            (MountSource::Cgroup, CgroupView::V2Bound(dir)) => {
                vec![(String::new(), clone_host(dir, false)?)]
            }
            (MountSource::Cgroup, CgroupView::V1(groups)) => groups
                .iter()
                .map(|(name, dir)| Ok((name.clone(), clone_host(dir, false)?)))
                .collect::<Result<_, StepError>>()?,
            (MountSource::Fs { fstype, source }, _)
                if in_user_namespace && (fstype == "proc" || fstype == "sysfs") =>
            {
                let source = format!("source={source}");
                let options: Vec<&str> = std::iter::once(source.as_str())
                    .chain(m.data.iter().flat_map(|d| d.split(',')))
                    .collect();
                let fs = sys::new_detached_mount(fstype, &options, attrs(&m.options))
                    .step(|| format!("make a {fstype} mount for {}", m.destination))?;
                vec![(String::new(), fs)]
            }
            _ => Vec::new(),
        });
    }
    Ok(Sources {
        binds,
        cgroup_v2: matches!(cgroups, CgroupView::V2 | CgroupView::V2Bound(_)),
    })
}

/// Mount each filesystem of the plan, in order, creating missing mount points. Call after
/// [`enter_rootfs`], with the sources [`open_sources`] opened before it.
pub fn mount_all(mounts: &[Mount], sources: &Sources) -> Result<(), StepError> {
    for (m, binds) in mounts.iter().zip(&sources.binds) {
        let target = m.destination.as_str();
        let flags = flags(&m.options);
        match &m.source {
            MountSource::Fs { .. } if !binds.is_empty() => bind(&binds[0].1, target, true)?,
            MountSource::Fs { fstype, source } if fstype == "tmpfs" => {
                mount_tmpfs(m, source, target, flags)?;
            }
            MountSource::Fs { fstype, source } => {
                ensure_mount_point(target, true)?;
                mount(
                    Some(source.as_str()),
                    target,
                    Some(fstype.as_str()),
                    flags,
                    m.data.as_deref(),
                )
                .step(|| format!("mount {fstype} on {target}"))?;
            }
            MountSource::Bind { .. } => {
                let (_, source) = &binds[0];
                let is_dir = fstat(source)
                    .map(|st| kind(st.st_mode) == SFlag::S_IFDIR)
                    .step(|| format!("inspect the source of {target}"))?;
                bind(source, target, is_dir)?;
                if m.options.contains(&MountOption::RecursiveReadOnly) {
                    let at = open_mount_point(target)?;
                    sys::make_tree_readonly(at.as_fd())
                        .step(|| format!("make {target} and its submounts read-only"))?;
                }
                if !(flags - MsFlags::MS_REC).is_empty() {
                    remount(target, flags)?;
                }
            }
            MountSource::Cgroup if sources.cgroup_v2 && !binds.is_empty() => {
                bind(&binds[0].1, target, true)?;
                remount(target, flags | MsFlags::MS_RDONLY | CGROUP_BIND_FLAGS)?;
            }
            MountSource::Cgroup if sources.cgroup_v2 => {
                ensure_mount_point(target, true)?;
                mount(
                    Some("cgroup2"),
                    target,
                    Some("cgroup2"),
                    flags,
                    None::<&str>,
                )
                .step(|| format!("mount cgroup2 on {target}"))?;
            }
            MountSource::Cgroup => {
                ensure_mount_point(target, true)?;
                mount(
                    Some("tmpfs"),
                    target,
                    Some("tmpfs"),
                    CGROUP_BIND_FLAGS,
                    Some("mode=755"),
                )
                .step(|| format!("mount tmpfs on {target} for the cgroup hierarchies"))?;
                for (name, source) in binds {
                    let at = format!("{}/{name}", target.trim_end_matches('/'));
                    bind(source, &at, true)?;
                    remount(&at, flags | MsFlags::MS_RDONLY | CGROUP_BIND_FLAGS)?;
                    // Co-mounted controllers (`cpu,cpuacct`) get a link per name.
                    for single in name.split(',').filter(|_| name.contains(',')) {
                        let link = format!("{}/{single}", target.trim_end_matches('/'));
                        symlinkat(name.as_str(), nix::fcntl::AT_FDCWD, link.as_str())
                            .step(|| format!("create symlink {link} -> {name}"))?;
                    }
                }
                remount(target, CGROUP_BIND_FLAGS | (flags & MsFlags::MS_RDONLY))?;
            }
        }
        if let Some(propagation) = m.propagation {
            set_propagation(target, propagation)?;
        }
    }
    Ok(())
}

/// A tmpfs as runc makes one: when it covers a directory, its root takes that directory's
/// mode and, with `tmpcopyup`, a copy of what it holds; a read-only one is mounted writable
/// and made read-only once filled.
fn mount_tmpfs(m: &Mount, source: &str, target: &str, flags: MsFlags) -> Result<(), StepError> {
    // Still reachable through this fd once the tmpfs covers it.
    let covered = match open_directory(target) {
        Ok(dir) => {
            let st = fstat(&dir).step(|| format!("inspect mount point {target}"))?;
            Some((dir, Mode::from_bits_truncate(st.st_mode & 0o7777)))
        }
        Err(_) => None,
    };
    ensure_mount_point(target, true)?;
    mount(
        Some(source),
        target,
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        m.data.as_deref(),
    )
    .step(|| format!("mount tmpfs on {target}"))?;
    if let Some((covered, mode)) = covered {
        let fresh = open_directory(target)?;
        fchmod(&fresh, mode).step(|| format!("give tmpfs {target} the mode {mode:o} it covers"))?;
        if m.options.contains(&MountOption::CopyUp) {
            copy_tree(covered.as_fd(), fresh.as_fd(), target)?;
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(target, flags)?;
    }
    Ok(())
}

/// A directory fd of `path`, not following a symlink in its last component.
fn open_directory(path: &str) -> Result<OwnedFd, StepError> {
    open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| format!("open directory {path}"))
}

/// `tmpcopyup`: copy the tree under the directory `from` (what a new tmpfs now covers) into
/// the directory `to` (the tmpfs): directories, files, symlinks and special files with
/// their owners, modes and times, never following a symlink. Hard links become copies.
fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>, shown: &str) -> Result<(), StepError> {
    let mut dir = Dir::openat(
        from,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| format!("read directory {shown} to copy it up"))?;
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
        .collect();
    for name in &names {
        let path = format!("{shown}/{}", name.to_string_lossy());
        copy_entry(from, to, name, &path)?;
    }
    Ok(())
}

fn copy_entry(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    shown: &str,
) -> Result<(), StepError> {
    let st =
        fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW).step(|| format!("inspect {shown}"))?;
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let copied: nix::Result<()> = match kind(st.st_mode) {
        SFlag::S_IFDIR => {
            mkdirat(to, name, Mode::from_bits_truncate(0o700))
                .step(|| format!("create {shown}"))?;
            let open_dir = |at, flags| {
                openat(
                    at,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow | flags,
                    Mode::empty(),
                )
            };
            let source = open_dir(from, OFlag::empty()).step(|| format!("open {shown}"))?;
            let copy = open_dir(to, OFlag::empty()).step(|| format!("open the copy of {shown}"))?;
            copy_tree(source.as_fd(), copy.as_fd(), shown)?;
            fchown(&copy, uid, gid)
                .and_then(|()| fchmod(&copy, perm))
                .and_then(|()| futimens(&copy, &atime, &mtime))
        }
        SFlag::S_IFREG => {
            let source = openat(from, name, OFlag::O_RDONLY | nofollow, Mode::empty())
                .step(|| format!("open {shown}"))?;
            let copy = openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow,
                Mode::from_bits_truncate(0o600),
            )
            .step(|| format!("create {shown}"))?;
            let (mut source, mut copy) = (std::fs::File::from(source), std::fs::File::from(copy));
            std::io::copy(&mut source, &mut copy).step(|| format!("copy the bytes of {shown}"))?;
            fchown(&copy, uid, gid)
                .and_then(|()| fchmod(&copy, perm))
                .and_then(|()| futimens(&copy, &atime, &mtime))
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(from, name).step(|| format!("read symlink {shown}"))?;
            symlinkat(target.as_os_str(), to, name)
                .and_then(|()| fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW))
                .and_then(|()| utimensat(to, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink))
        }
        special => mknodat(to, name, special, perm, st.st_rdev)
            .and_then(|()| fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW))
            .and_then(|()| fchmodat(to, name, perm, FchmodatFlags::NoFollowSymlink))
            .and_then(|()| utimensat(to, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)),
    };
    copied.step(|| format!("give the copy of {shown} its owner, mode and times"))
}

/// Attach `tree`, a detached clone of a host file or directory, onto `target` inside the
/// container.
fn bind(tree: &OwnedFd, target: &str, is_dir: bool) -> Result<(), StepError> {
    ensure_mount_point(target, is_dir)?;
    let at = open_mount_point(target)?;
    sys::move_mount(tree.as_fd(), at.as_fd()).step(|| format!("bind mount on {target}"))
}

/// Apply `flags` to the mount at `target`, keeping the per-mount flags it has that a
/// remount would otherwise clear.
fn remount(target: &str, flags: MsFlags) -> Result<(), StepError> {
    let kept =
        kept_flags(Path::new(target)).step(|| format!("read the mount flags of {target}"))?;
    let wanted = flags - MsFlags::MS_REC;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | kept | wanted,
        None::<&str>,
    )
    .step(|| format!("remount {target} with {wanted:?}"))
}

fn set_propagation(target: &str, propagation: Propagation) -> Result<(), StepError> {
    let mut flags = match propagation.kind {
        PropagationKind::Private => MsFlags::MS_PRIVATE,
        PropagationKind::Slave => MsFlags::MS_SLAVE,
        PropagationKind::Shared => MsFlags::MS_SHARED,
        PropagationKind::Unbindable => MsFlags::MS_UNBINDABLE,
    };
    if propagation.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .step(|| format!("set {target} {flags:?}"))
}

/// Remount the container's `/` read-only (its submounts keep their own flags).
pub fn make_rootfs_readonly() -> Result<(), StepError> {
    remount("/", MsFlags::MS_RDONLY)
}

/// The host's node for each of `devices` (the same path, as runc binds them), checked to be
/// the device asked for and cloned as a detached mount: in a user namespace the kernel
/// refuses `mknod`, so [`make_devices`] binds these instead. Host paths: run before
/// [`enter_rootfs`].
pub fn open_host_nodes(devices: &[DeviceNode]) -> Result<Vec<OwnedFd>, StepError> {
    devices
        .iter()
        .map(|device| {
            let path = device.path.as_str();
            let node = open(
                path,
                OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .step(|| format!("open the host's {path} to bind into the user namespace"))?;
            let st = fstat(&node).step(|| format!("inspect the host's {path}"))?;
            let kind = file_type(device.kind);
            let wanted = makedev(device.major, device.minor);
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != kind
                || (device.kind != DeviceKind::Fifo && st.st_rdev != wanted)
            {
                return Err(nix::Error::ENODEV).step(|| {
                    format!(
                        "bind the host's {path}: it is not the device {}:{}",
                        device.major, device.minor
                    )
                });
            }
            sys::open_tree_clone(node.as_fd(), false)
                .step(|| format!("clone the mount of the host's {path}"))
        })
        .collect()
}

/// Make the plan's device nodes (or, given `host_nodes` from [`open_host_nodes`], bind
/// them) and the usual `/dev` symlinks (`fd`, `stdin`, `ptmx`, ...).
pub fn make_devices(
    devices: &[DeviceNode],
    host_nodes: Option<&[OwnedFd]>,
) -> Result<(), StepError> {
    for (i, device) in devices.iter().enumerate() {
        let path = device.path.as_str();
        let (major, minor) = (device.major, device.minor);
        if let Some(parent) = Path::new(path).parent() {
            std::fs::create_dir_all(parent)
                .step(|| format!("create {} for device {path}", parent.display()))?;
        }
        if let Some(nodes) = host_nodes {
            bind(&nodes[i], path, false)?;
            continue;
        }
        let kind = file_type(device.kind);
        // A node the config lists twice, or one the rootfs's /dev already had: replace it.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).step(|| format!("replace {path}"))
            }
            _ => {}
        }
        mknod(
            path,
            kind,
            Mode::from_bits_truncate(device.mode),
            makedev(major, minor),
        )
        .step(|| format!("create device node {path} ({major}:{minor})"))?;
        if (device.uid, device.gid) != (0, 0) {
            nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(device.uid)),
                Some(nix::unistd::Gid::from_raw(device.gid)),
            )
            .step(|| format!("chown device node {path}"))?;
        }
    }
    for (name, target) in DEV_SYMLINKS {
        match symlinkat(
            target,
            nix::fcntl::AT_FDCWD,
            format!("/dev/{name}").as_str(),
        ) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(errno) => {
                return Err(errno).step(|| format!("create symlink /dev/{name} -> {target}"))
            }
        }
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

/// Hide each path: an empty read-only tmpfs over a directory, the container's `/dev/null`
/// over anything else. A path this kernel lacks is skipped.
pub fn mask(paths: &[String]) -> Result<(), StepError> {
    let mut null = None;
    for path in paths {
        let Some(target) = open_target(path, "masked")? else {
            continue;
        };
        let is_dir = fstat(&target)
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
            .step(|| format!("inspect masked path {path}"))?;
        let at = fd_path(&target);
        if is_dir {
            mount(
                Some("tmpfs"),
                at.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0,mode=555"),
            )
            .step(|| format!("mask {path} with an empty read-only tmpfs"))?;
        } else {
            if null.is_none() {
                null = Some(open_null_device()?);
            }
            let null = null.as_ref().expect("opened above");
            mount(
                Some(fd_path(null).as_str()),
                at.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .step(|| format!("mask {path} with /dev/null"))?;
        }
    }
    Ok(())
}

/// Bind each path read-only onto itself. A path this kernel lacks is skipped.
pub fn make_readonly(paths: &[String]) -> Result<(), StepError> {
    for path in paths {
        let Some(target) = open_target(path, "read-only")? else {
            continue;
        };
        let at = fd_path(&target);
        mount(
            Some(at.as_str()),
            at.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .step(|| format!("bind read-only path {path} onto itself"))?;
        // The fd still names the file under the new mount: reopen by path, which now
        // resolves to the bind, and remount that read-only, keeping its other flags.
        let Some(bound) = open_target(path, "read-only")? else {
            return Err(nix::Error::ENOENT).step(|| format!("reopen read-only path {path}"));
        };
        let bound_at = fd_path(&bound);
        let kept =
            kept_flags(Path::new(&bound_at)).step(|| format!("read the mount flags of {path}"))?;
        mount(
            None::<&str>,
            bound_at.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept,
            None::<&str>,
        )
        .step(|| format!("remount {path} read-only"))?;
    }
    Ok(())
}

/// An `O_PATH` fd of `path` for a mask or read-only bind to land on, never following a
/// symlink in its last component; `None` when the path does not exist.
fn open_target(path: &str, what: &str) -> Result<Option<OwnedFd>, StepError> {
    let fd = match open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno).step(|| format!("open {what} path {path}")),
    };
    let kind = fstat(&fd)
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
        .step(|| format!("inspect {what} path {path}"))?;
    if kind == SFlag::S_IFLNK {
        return Err(nix::Error::ELOOP)
            .step(|| format!("{what} path {path} is a symlink; refusing to follow it"));
    }
    Ok(Some(fd))
}

/// The container's `/dev/null`, checked by its fd to be the null device itself, not a
/// symlink or a node put there to redirect the bind.
fn open_null_device() -> Result<OwnedFd, StepError> {
    let fd = open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open /dev/null to mask files with".into())?;
    let st = fstat(&fd).step(|| "inspect /dev/null".into())?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || st.st_rdev != makedev(NULL_DEVICE.0, NULL_DEVICE.1) {
        return Err(nix::Error::EPERM)
            .step(|| "/dev/null is not the null device (1:3); refusing to mask with it".into());
    }
    Ok(fd)
}

/// The magic link naming an open fd of this process.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The per-mount flags of the mount `path` is on that a bind remount must repeat.
fn kept_flags(path: &Path) -> nix::Result<MsFlags> {
    let st = statvfs(path)?;
    let flags = st.flags();
    Ok([
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st, _)| flags.contains(*st))
    .fold(MsFlags::empty(), |all, (_, ms)| all | ms))
}

fn flags(options: &[MountOption]) -> MsFlags {
    options.iter().fold(MsFlags::empty(), |all, option| {
        all | match option {
            MountOption::ReadOnly => MsFlags::MS_RDONLY,
            MountOption::RecursiveReadOnly => MsFlags::empty(),
            MountOption::NoSuid => MsFlags::MS_NOSUID,
            MountOption::NoDev => MsFlags::MS_NODEV,
            MountOption::NoExec => MsFlags::MS_NOEXEC,
            MountOption::Sync => MsFlags::MS_SYNCHRONOUS,
            MountOption::DirSync => MsFlags::MS_DIRSYNC,
            MountOption::RelAtime => MsFlags::MS_RELATIME,
            MountOption::StrictAtime => MsFlags::MS_STRICTATIME,
            MountOption::NoAtime => MsFlags::MS_NOATIME,
            MountOption::NoDirAtime => MsFlags::MS_NODIRATIME,
            MountOption::CopyUp => MsFlags::empty(),
        }
    })
}

/// The `MOUNT_ATTR_*` of `options`, for a mount made with `fsmount`.
fn attrs(options: &[MountOption]) -> u64 {
    options.iter().fold(0, |all, option| {
        all | match option {
            MountOption::ReadOnly => libc::MOUNT_ATTR_RDONLY,
            MountOption::NoSuid => libc::MOUNT_ATTR_NOSUID,
            MountOption::NoDev => libc::MOUNT_ATTR_NODEV,
            MountOption::NoExec => libc::MOUNT_ATTR_NOEXEC,
            MountOption::StrictAtime => libc::MOUNT_ATTR_STRICTATIME,
            MountOption::NoAtime => libc::MOUNT_ATTR_NOATIME,
            MountOption::NoDirAtime => libc::MOUNT_ATTR_NODIRATIME,
            _ => 0,
        }
    })
}

/// The file type of a node of `kind`.
fn file_type(kind: DeviceKind) -> SFlag {
    match kind {
        DeviceKind::Char => SFlag::S_IFCHR,
        DeviceKind::Block => SFlag::S_IFBLK,
        DeviceKind::Fifo => SFlag::S_IFIFO,
    }
}

fn kind(mode: libc::mode_t) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

/// Make sure `target` is a directory (or, for a file bind, a file) we may mount on: create it
/// and its parents when missing, refuse a symlink or the wrong kind. The rootfs is `/` by
/// now, so every path here resolves inside it.
fn ensure_mount_point(target: &str, is_dir: bool) -> Result<(), StepError> {
    let wanted = if is_dir {
        SFlag::S_IFDIR
    } else {
        SFlag::S_IFREG
    };
    match lstat(target) {
        Ok(st) => match kind(st.st_mode) {
            SFlag::S_IFLNK => Err(nix::Error::ELOOP)
                .step(|| format!("mount point {target} in the rootfs is a symlink; refusing")),
            found if found == wanted || (!is_dir && found != SFlag::S_IFDIR) => Ok(()),
            _ if is_dir => Err(nix::Error::ENOTDIR)
                .step(|| format!("mount point {target} in the rootfs is not a directory")),
            _ => Err(nix::Error::EISDIR)
                .step(|| format!("mount point {target} for a file is a directory")),
        },
        Err(nix::Error::ENOENT) => {
            if let Some(parent) = Path::new(target).parent() {
                if lstat(parent).is_err() {
                    ensure_mount_point(&parent.to_string_lossy(), true)?;
                }
            }
            if is_dir {
                mkdir(target, Mode::from_bits_truncate(0o755))
                    .step(|| format!("create mount point {target} in the rootfs"))
            } else {
                std::fs::File::create(target)
                    .map(drop)
                    .step(|| format!("create mount point {target} in the rootfs"))
            }
        }
        Err(errno) => Err(errno).step(|| format!("inspect mount point {target} in the rootfs")),
    }
}

/// An `O_PATH` fd of an existing mount point, not following a symlink in its last component.
fn open_mount_point(target: &str) -> Result<OwnedFd, StepError> {
    open(
        target,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| format!("open mount point {target}"))
}
