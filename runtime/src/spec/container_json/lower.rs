//! `container.json` in the engine's terms: a [`Plan`] with the kernel filesystems every
//! container of the seed gets and the protections every container gets unless its
//! `security` object turns one off. Pure: the host's facts come in through [`Site`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Config;
use crate::cgroups::{default_rules, Limits};
use crate::plan::{
    default_devices, Capability, CapabilitySets, CgroupPath, CgroupPlan, Hooks, IdMaps, Mount,
    MountOption, MountSource, Namespace, NamespacePlan, Plan, Process, Propagation,
    PropagationKind, Seccomp, User,
};

/// Paths bound read-only: host-global kernel settings a container's root could otherwise
/// write (`/proc/sys/kernel/core_pattern` with a `|` runs a program as host root).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Paths hidden: host memory, keys, timers, firmware and power controls.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Where the container is, as found on the host.
pub struct Site<'a> {
    /// The container's directory, its rootfs: absolute, symlinks resolved.
    pub rootfs: &'a Path,
    /// The directory's id under nsinit's state root (`<dev>-<inode>`); it names the cgroup
    /// nsinit gives a container without a pid namespace of its own.
    pub id: &'a str,
    /// nsinit runs as a plain user: no cgroup of nsinit's own (it could not make one).
    pub rootless: bool,
}

/// The plan of `config` run at `site`. The command is not part of `container.json`: it is
/// given to each `nsinit exec`, so the plan's `process.args` stay empty.
pub fn lower(config: &Config, site: &Site<'_>) -> Plan {
    let security = &config.security;
    let kept: Vec<Capability> = Capability::ALL
        .into_iter()
        .filter(|cap| !config.capabilities.contains(cap))
        .collect();
    let paths = |on: bool, list: &[&str]| match on {
        true => list.iter().map(|path| path.to_string()).collect(),
        false => Vec::new(),
    };
    Plan {
        rootfs: site.rootfs.to_path_buf(),
        readonly_rootfs: false,
        rootfs_propagation: Propagation {
            kind: PropagationKind::Private,
            recursive: true,
        },
        namespaces: config
            .namespaces
            .iter()
            .map(|&kind| NamespacePlan::new(kind))
            .collect(),
        hostname: config.hostname.clone(),
        domainname: None,
        process: Process {
            args: Vec::new(),
            env: config.environment.clone(),
            cwd: "/".into(),
            terminal: false,
            console_size: None,
            user: User::default(),
            // The seed lists what to drop; everything else the caller holds is kept.
            // Inheritable and ambient stay empty, as a root process's are.
            capabilities: CapabilitySets {
                bounding: kept.clone(),
                effective: kept.clone(),
                permitted: kept,
                inheritable: Vec::new(),
                ambient: Vec::new(),
            },
            rlimits: Vec::new(),
            no_new_privileges: security.no_new_privileges,
            oom_score_adj: None,
        },
        mounts: kernel_filesystems(
            config.has(Namespace::Ipc),
            // sysfs is the network namespace's: a user namespace without a network namespace
            // of its own may not mount it, and binds the host's, read-only.
            !config.has(Namespace::User) || config.has(Namespace::Net),
        ),
        devices: default_devices(),
        masked_paths: paths(security.masked_paths, &MASKED_PATHS),
        readonly_paths: paths(security.readonly_paths, &READONLY_PATHS),
        rootfs_nodev: security.devices,
        sysctl: BTreeMap::new(),
        cgroup: cgroup(config, site),
        network: config.network.clone(),
        hooks: Hooks::default(),
        personality: None,
        seccomp: security.seccomp.then_some(Seccomp::Default),
        id_maps: config.has(Namespace::User).then(|| IdMaps {
            uids: config.uid_mappings.clone(),
            gids: config.gid_mappings.clone(),
        }),
    }
}

/// `/proc`, `/sys` read-only (a new sysfs, or with `own_sysfs` false a recursive bind of the
/// host's), a fresh `/dev` tmpfs with a new devpts instance and `/dev/shm`, and `/dev/mqueue`
/// when the container has its own IPC namespace.
fn kernel_filesystems(mqueue: bool, own_sysfs: bool) -> Vec<Mount> {
    use MountOption::*;
    let mount =
        |fstype: &str, destination: &str, options: &[MountOption], data: Option<&str>| Mount {
            destination: destination.into(),
            source: MountSource::Fs {
                fstype: fstype.into(),
                source: fstype.into(),
            },
            options: options.to_vec(),
            propagation: None,
            data: data.map(String::from),
        };
    let mut mounts = vec![
        mount("proc", "/proc", &[NoSuid, NoExec, NoDev], None),
        match own_sysfs {
            true => mount("sysfs", "/sys", &[NoSuid, NoExec, NoDev, ReadOnly], None),
            false => Mount {
                destination: "/sys".into(),
                source: MountSource::Bind {
                    path: "/sys".into(),
                    recursive: true,
                },
                options: vec![NoSuid, NoExec, NoDev, RecursiveReadOnly],
                propagation: None,
                data: None,
            },
        },
        mount(
            "tmpfs",
            "/dev",
            &[NoSuid, StrictAtime],
            Some("mode=755,size=65536k"),
        ),
        mount(
            "devpts",
            "/dev/pts",
            &[NoSuid, NoExec],
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        mount(
            "tmpfs",
            "/dev/shm",
            &[NoSuid, NoExec, NoDev],
            Some("mode=1777,size=65536k"),
        ),
    ];
    if mqueue {
        mounts.push(mount(
            "mqueue",
            "/dev/mqueue",
            &[NoSuid, NoExec, NoDev],
            None,
        ));
    }
    mounts
}

/// The configured cgroup, or one of nsinit's own (`nsinit/<id>`): without a pid namespace,
/// the container's processes die with PID 1 through it; keeping `MKNOD`, the container
/// needs its device rules (a node it makes in its own `/dev` is not under `nodev`), as it
/// does keeping `SYS_ADMIN` (it could remount the rootfs without `nodev`).
fn cgroup(config: &Config, site: &Site<'_>) -> Option<CgroupPlan> {
    let devices = match config.security.devices {
        true => default_rules(),
        false => Vec::new(),
    };
    let makes_nodes = [Capability::Mknod, Capability::SysAdmin]
        .iter()
        .any(|cap| !config.capabilities.contains(cap));
    let own_group = || CgroupPlan {
        path: CgroupPath::Root(PathBuf::from("nsinit").join(site.id)),
        limits: Limits::default(),
        devices: devices.clone(),
    };
    match &config.cgroups {
        // The seed's memory limit was hard and soft at once, as in 2014's libcontainer.
        Some(c) => Some(CgroupPlan {
            path: CgroupPath::Root(c.path()),
            limits: Limits {
                memory: c.memory,
                memory_reservation: c.memory,
                memory_swap: c.memory_swap,
                cpu_shares: c.cpu_shares,
                ..Limits::default()
            },
            devices,
        }),
        None if site.rootless => None,
        None if !config.has(Namespace::Pid) => Some(own_group()),
        None if makes_nodes && config.security.devices => Some(own_group()),
        None => None,
    }
}
