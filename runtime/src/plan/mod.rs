//! The plan: one container described without reference to any config dialect — what to
//! create or join and how to set it up. Each front-end (`spec::container_json`, an OCI
//! bundle's `config.json`) lowers its JSON to a [`Plan`], purely; the engine (start, join,
//! state) reads nothing else. A running container's record holds its plan as JSON, so a
//! join never parses a config again.
//!
//! Plain data: no I/O here, and nothing that depends on the host it will run on. Every field
//! is honoured by the engine; a front-end refuses what has no field here.

mod capability;
pub mod idmap;
mod namespace;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use capability::Capability;
pub use idmap::{IdMap, IdMaps};
pub use namespace::Namespace;

use crate::cgroups::{DeviceRule, Limits};
use crate::seccomp::Filter;

/// The MTU of the container's interface when none is given (Ethernet's).
pub const DEFAULT_MTU: u32 = 1500;
/// MTUs the kernel accepts for an IPv4 interface: 68 is IPv4's minimum, 65535 the largest
/// packet IPv4 can describe.
pub const MTU_RANGE: RangeInclusive<u32> = 68..=65535;

/// Everything the engine needs to start a container, and a join to enter it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The root filesystem: absolute, resolved on the host before the start.
    pub rootfs: PathBuf,
    /// Whether the rootfs is remounted read-only once everything is mounted in it.
    pub readonly_rootfs: bool,
    /// What the container's mounts become, propagation-wise, before anything is mounted
    /// (`rprivate` unless the config asks otherwise): nothing propagates back to the host.
    pub rootfs_propagation: Propagation,
    /// The namespaces the container gets; the others are shared with the caller.
    pub namespaces: Vec<NamespacePlan>,
    /// The hostname inside the container's own UTS namespace.
    pub hostname: Option<String>,
    /// The NIS domain name inside the container's own UTS namespace.
    pub domainname: Option<String>,
    /// The container's process (its first, and the template of every joined one).
    pub process: Process,
    /// Filesystems mounted inside the rootfs once it is `/`, in order.
    pub mounts: Vec<Mount>,
    /// Device nodes made in the container's `/dev` (a tmpfs among `mounts`).
    pub devices: Vec<DeviceNode>,
    /// Paths made unreadable: an empty read-only tmpfs over a directory, the container's
    /// `/dev/null` over a file. A path the kernel lacks is skipped.
    pub masked_paths: Vec<String>,
    /// Paths bound read-only onto themselves. A path the kernel lacks is skipped.
    pub readonly_paths: Vec<String>,
    /// Whether the rootfs is bound `nodev`: a device node found in it (planted by whoever
    /// made the tree) cannot be opened. The container's own `/dev` is a separate mount.
    pub rootfs_nodev: bool,
    /// Kernel parameters set in the container's namespaces (`net.ipv4.ip_forward` → `1`),
    /// written under `/proc/sys` before it is made read-only.
    pub sysctl: BTreeMap<String, String>,
    /// The cgroup the container runs in, when it gets one.
    pub cgroup: Option<CgroupPlan>,
    /// The container's interface on a host bridge, when it gets one.
    pub network: Option<Network>,
    /// Programs run at the lifecycle's points (OCI hooks).
    pub hooks: Hooks,
    /// The execution domain of the process (`personality(2)`), when not the default.
    pub personality: Option<Personality>,
    /// The system call filter the process (and every process joining it) runs under.
    pub seccomp: Option<Seccomp>,
    /// The maps of the container's new user namespace (the plan lists `User` without a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_maps: Option<IdMaps>,
}

/// A seccomp filter: nsinit's default (compiled into the binary, recorded by name) or one
/// compiled from the config's profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    Default,
    Filter(Filter),
}

impl Seccomp {
    pub fn filter(&self) -> &Filter {
        match self {
            Seccomp::Default => crate::seccomp::default_filter(),
            Seccomp::Filter(filter) => filter,
        }
    }
}

impl Plan {
    /// Whether the container gets a namespace of this kind of its own (new or joined).
    pub fn has(&self, kind: Namespace) -> bool {
        self.namespaces.iter().any(|ns| ns.kind == kind)
    }

    /// The namespaces created new, in plan order.
    pub fn new_namespaces(&self) -> impl Iterator<Item = Namespace> + '_ {
        self.namespaces
            .iter()
            .filter(|ns| ns.path.is_none())
            .map(|ns| ns.kind)
    }

    /// Whether the container gets a new user namespace of its own, created with the others.
    pub fn new_user_namespace(&self) -> bool {
        self.new_namespaces().any(|ns| ns == Namespace::User)
    }

    /// The kinds of every namespace the container has of its own, in plan order.
    pub fn namespace_kinds(&self) -> Vec<Namespace> {
        self.namespaces.iter().map(|ns| ns.kind).collect()
    }
}

/// One namespace of the container: a new one, or an existing one joined by its path
/// (`/proc/PID/ns/net`, `/run/netns/NAME`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacePlan {
    pub kind: Namespace,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

impl NamespacePlan {
    /// A new namespace of this kind.
    pub fn new(kind: Namespace) -> Self {
        NamespacePlan { kind, path: None }
    }
}

/// The container's process: what runs, as whom, with what privilege.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// The command and its arguments; looked up in `env`'s `PATH` inside the container.
    /// Empty when the command is given at run time (`nsinit exec CMD`).
    pub args: Vec<String>,
    /// The exact environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// The working directory, absolute, inside the container.
    pub cwd: String,
    /// Whether the process gets a terminal (a pty from the container's own devpts).
    pub terminal: bool,
    /// The terminal's size, rows and columns, when the config gives one.
    pub console_size: Option<(u16, u16)>,
    pub user: User,
    pub capabilities: CapabilitySets,
    /// Resource limits set before the command runs.
    pub rlimits: Vec<Rlimit>,
    /// `PR_SET_NO_NEW_PRIVS`: setuid binaries and file capabilities grant nothing.
    pub no_new_privileges: bool,
    /// The OOM killer's score adjustment, -1000 to 1000.
    pub oom_score_adj: Option<i32>,
}

/// Who the process runs as, inside the container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups; the caller's own are never passed on.
    pub additional_gids: Vec<u32>,
    /// The file mode creation mask; 0o022 when absent.
    pub umask: Option<u32>,
}

/// The capabilities the process keeps, set by set: everything not listed is dropped, and
/// nothing the caller does not hold can be gained.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySets {
    pub bounding: Vec<Capability>,
    pub effective: Vec<Capability>,
    pub permitted: Vec<Capability>,
    pub inheritable: Vec<Capability>,
    pub ambient: Vec<Capability>,
}

/// One resource limit (`setrlimit(2)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// The `RLIMIT_*` resource number.
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// A filesystem mounted in the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Where, inside the container: absolute. Resolved inside the rootfs; a symlink on the
    /// way can never lead outside it.
    pub destination: String,
    pub source: MountSource,
    pub options: Vec<MountOption>,
    /// The mount's propagation, set once it is mounted.
    pub propagation: Option<Propagation>,
    /// Filesystem-specific options (`mode=755,size=65536k`).
    pub data: Option<String>,
}

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    /// A new instance of a filesystem (`proc`, `sysfs`, `tmpfs`, `devpts`, `mqueue`):
    /// its type, and the source name `/proc/mounts` shows.
    Fs { fstype: String, source: String },
    /// A host path bound in: absolute on the host; `recursive` binds its submounts too.
    Bind { path: PathBuf, recursive: bool },
    /// The container's cgroup, read-only: a cgroup2 instance on v2 (rooted at the
    /// container's group with a cgroup namespace), the v1 hierarchies' groups bound on v1.
    Cgroup,
}

/// A per-mount flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountOption {
    #[serde(rename = "ro")]
    ReadOnly,
    /// Read-only for every submount of a recursive bind too (`mount_setattr`, Linux 5.12).
    #[serde(rename = "rro")]
    RecursiveReadOnly,
    NoSuid,
    NoDev,
    NoExec,
    Sync,
    DirSync,
    RelAtime,
    StrictAtime,
    NoAtime,
    NoDirAtime,
    /// A new tmpfs starts with a copy of what the directory it covers holds (`tmpcopyup`).
    #[serde(rename = "tmpcopyup")]
    CopyUp,
}

/// Mount propagation (`mount --make-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Propagation {
    pub kind: PropagationKind,
    /// For every submount too (`rprivate`, `rslave`, ...).
    pub recursive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropagationKind {
    Private,
    Slave,
    Shared,
    Unbindable,
}

/// The nodes every container's `/dev` gets (runtime-spec's default devices, which
/// container.json's containers get too): char devices, mode 0666, owned by root.
pub fn default_devices() -> Vec<DeviceNode> {
    const DEVICES: [(&str, u64, u64); 6] = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    DEVICES
        .iter()
        .map(|&(name, major, minor)| DeviceNode {
            path: format!("/dev/{name}"),
            kind: DeviceKind::Char,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect()
}

/// A device node in the container's `/dev`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Absolute, under `/dev`.
    pub path: String,
    pub kind: DeviceKind,
    pub major: u64,
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// The container's cgroup: where it is, its limits, and the device nodes its processes may
/// open and make (rules in order, last match wins; none: the host's own rules apply).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    pub path: CgroupPath,
    pub limits: Limits,
    pub devices: Vec<DeviceRule>,
}

/// Where the container's cgroup is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupPath {
    /// Relative to each hierarchy's root (`docker/c1`, `/libpod_parent/libpod-ID`).
    Root(PathBuf),
    /// Relative to the group the runtime itself runs in (runc's rule for a relative
    /// `cgroupsPath`, and for none at all: `<caller's group>/<id>`).
    Caller(PathBuf),
}

/// The container's interface: one end of a veth pair on a host bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The container's address; a host address of its network.
    pub address: Ipv4Addr,
    /// The prefix length (`/16`), 0 to 32.
    pub prefix_len: u8,
    /// The default route's next hop, inside the address's network; no default route if absent.
    pub gateway: Option<Ipv4Addr>,
    /// The host bridge the veth's host end is attached to.
    pub bridge: String,
    /// The MTU of both veth ends.
    pub mtu: u32,
}

/// Programs run at the points of the OCI lifecycle, each with the container's state JSON on
/// its stdin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Deprecated by runtime-spec; run with `create_runtime`, before it.
    pub prestart: Vec<Hook>,
    /// In the runtime's namespaces, once the container's namespaces exist (create).
    pub create_runtime: Vec<Hook>,
    /// In the container's namespaces, once its mounts are in place (create).
    pub create_container: Vec<Hook>,
    /// In the container, just before the user process (start).
    pub start_container: Vec<Hook>,
    /// In the runtime's namespaces, once the user process runs (start).
    pub poststart: Vec<Hook>,
    /// In the runtime's namespaces, once the container is deleted (delete).
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        *self == Hooks::default()
    }
}

/// One hook: a program, its argv (with argv[0]) and exact environment, and how long it
/// may run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute, in the namespace the hook runs in.
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds; no limit when absent.
    pub timeout: Option<u32>,
}

/// The process's execution domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Personality {
    /// `PER_LINUX`.
    Linux,
    /// `PER_LINUX32`: `uname` says i686.
    Linux32,
}
