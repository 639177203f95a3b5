//! `config.json` in the engine's terms: what the file leaves to the runtime added, purely.
//! The host's facts (the bundle directory, the container's id) come in through [`Site`].
//!
//! Added here: the rootfs and bind sources made absolute against the bundle; the devices
//! runtime-spec says every container has (`/dev/null`, `zero`, `full`, `random`,
//! `urandom`, `tty`; `/dev/ptmx` is the engine's symlink to `pts/ptmx`, `/dev/console` its
//! bind of the terminal), a config's own entry for one of those paths winning; their
//! device cgroup rules after the config's (runc's order, so a `deny a` leaves them open);
//! a cgroup `<id>` below nsinit's own group when `cgroupsPath` is absent; `rprivate` as
//! the rootfs propagation when none is given (runc's default is `rslave`; the plan's is
//! `rprivate`: nothing propagates from the host into the container after it starts).

use std::path::{Component, Path, PathBuf};

use super::resources::with_own_devices;
use super::Config;
use crate::plan::{
    default_devices, CapabilitySets, CgroupPath, CgroupPlan, DeviceNode, Mount, MountOption,
    MountSource, Namespace, Plan, Process, Propagation, PropagationKind, Seccomp, User,
};
use crate::spec::error::{ConfigError, ErrorKind};

/// Where the container is, as the caller found it on the host.
pub struct Site<'a> {
    /// The bundle directory: absolute (`--bundle`, or the working directory).
    pub bundle: &'a Path,
    /// The container's id, one path component (the CLI checks it): it names the cgroup of a
    /// config without `cgroupsPath`.
    pub id: &'a str,
}

/// The plan of `config` run at `site`. A config without `process` gets a process with no
/// command (`args` empty), which the caller must refuse to start.
pub fn lower(config: &Config, site: &Site<'_>) -> Result<Plan, ConfigError> {
    let error = |field: &str, kind| ConfigError::new(config.path(), field.to_string(), kind);
    let rootfs = resolve(site.bundle, &config.root.path);
    if rootfs == Path::new("/") {
        return Err(error(
            "root.path",
            ErrorKind::HostRoot {
                value: rootfs.display().to_string(),
            },
        ));
    }
    let linux = &config.linux;
    let devices = with_own_devices(&linux.resources.devices).map_err(|(index, kind)| {
        let field = match index {
            Some(i) => format!("linux.resources.devices[{i}]"),
            None => "linux.resources.devices".into(),
        };
        error(&field, kind)
    })?;
    // sysfs belongs to the network namespace: a new user namespace without a new network
    // namespace (none, or one joined by path, which another user namespace owns) may not
    // mount one, so it gets the host's, bound (runc's rule).
    let new = |kind: Namespace| {
        linux
            .namespaces
            .iter()
            .any(|ns| ns.kind == kind && ns.path.is_none())
    };
    let sysfs_needs_bind = new(Namespace::User) && !new(Namespace::Net);
    Ok(Plan {
        rootfs,
        readonly_rootfs: config.root.readonly,
        rootfs_propagation: linux.rootfs_propagation.unwrap_or(Propagation {
            kind: PropagationKind::Private,
            recursive: true,
        }),
        namespaces: linux.namespaces.clone(),
        hostname: config.hostname.clone(),
        domainname: config.domainname.clone(),
        process: config.process.clone().unwrap_or_else(no_process),
        mounts: config
            .mounts
            .iter()
            .map(|m| in_bundle(m, site.bundle))
            .map(|m| match sysfs_needs_bind {
                true => host_sysfs(m),
                false => m,
            })
            .collect(),
        devices: with_default_devices(&linux.devices),
        masked_paths: linux.masked_paths.clone(),
        readonly_paths: linux.readonly_paths.clone(),
        // Nodes nsinit makes go to a /dev of the config's own (a tmpfs): the rootfs itself
        // need not hold a working one, and one planted there stays closed.
        rootfs_nodev: config.mounts.iter().any(|m| m.destination == "/dev"),
        sysctl: linux.sysctl.clone(),
        cgroup: Some(CgroupPlan {
            path: linux
                .cgroups_path
                .clone()
                .unwrap_or_else(|| CgroupPath::Caller(PathBuf::from(site.id))),
            limits: linux.resources.limits.clone(),
            devices,
        }),
        // A container's network is its caller's business (a namespace joined by path).
        network: None,
        hooks: config.hooks.clone(),
        personality: linux.personality,
        seccomp: linux.seccomp.clone().map(Seccomp::Filter),
        id_maps: linux.id_maps.clone(),
    })
}

/// The process of a config without one: no command, no capabilities, root.
fn no_process() -> Process {
    Process {
        args: Vec::new(),
        env: Vec::new(),
        cwd: "/".into(),
        terminal: false,
        console_size: None,
        user: User::default(),
        capabilities: CapabilitySets::default(),
        rlimits: Vec::new(),
        no_new_privileges: false,
        oom_score_adj: None,
    }
}

/// `path` against `bundle` when relative, lexically cleaned (`..` never above `/`).
fn resolve(bundle: &Path, path: &Path) -> PathBuf {
    let mut resolved = PathBuf::from("/");
    for component in bundle.join(path).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => resolved = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(part) => resolved.push(part),
        }
    }
    resolved
}

/// A mount with its bind source made absolute against the bundle.
fn in_bundle(mount: &Mount, bundle: &Path) -> Mount {
    let mut mount = mount.clone();
    if let MountSource::Bind { path, .. } = &mut mount.source {
        *path = resolve(bundle, path);
    }
    mount
}

/// A `sysfs` mount as a recursive bind of the host's `/sys`, with its options (read-only
/// for every submount too when it asks for read-only).
fn host_sysfs(mut mount: Mount) -> Mount {
    if matches!(&mount.source, MountSource::Fs { fstype, .. } if fstype == "sysfs") {
        mount.source = MountSource::Bind {
            path: PathBuf::from("/sys"),
            recursive: true,
        };
        if mount.options.contains(&MountOption::ReadOnly) {
            mount.options.push(MountOption::RecursiveReadOnly);
        }
    }
    mount
}

/// runtime-spec's default devices, unless the config lists the path itself, then the
/// config's devices (runc's order).
fn with_default_devices(listed: &[DeviceNode]) -> Vec<DeviceNode> {
    default_devices()
        .into_iter()
        .filter(|default| !listed.iter().any(|d| d.path == default.path))
        .chain(listed.iter().cloned())
        .collect()
}
