//! The plan: one container described without reference to any config dialect — what to
//! create and how to set it up. Each front-end (`spec::container_json`, later an OCI
//! bundle's `config.json`) lowers its JSON to a [`Plan`], purely; the engine (start, join,
//! state) reads nothing else. A running container's record holds its plan as JSON, so a
//! join never parses a config again.
//!
//! Plain data: no I/O here, and nothing that depends on the host it will run on.

mod capability;
mod namespace;

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use capability::Capability;
pub use namespace::Namespace;

use crate::cgroups::Limits;

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
    /// The namespaces the container gets, each new; the others are shared with the host.
    pub namespaces: Vec<Namespace>,
    /// The hostname inside the container's own UTS namespace.
    pub hostname: Option<String>,
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
    /// The cgroup the container runs in, when it gets one.
    pub cgroup: Option<CgroupPlan>,
    /// The container's interface on a host bridge, when it gets one.
    pub network: Option<Network>,
}

impl Plan {
    /// Whether the container gets a new namespace of this kind.
    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }
}

/// The container's process: what runs, as whom, with what privilege.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// The command and its arguments; looked up in `env`'s `PATH` inside the container.
    pub args: Vec<String>,
    /// The exact environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// The working directory, absolute, inside the container.
    pub cwd: String,
    pub user: User,
    pub capabilities: CapabilitySets,
    /// Resource limits set before the command runs.
    pub rlimits: Vec<Rlimit>,
    /// `PR_SET_NO_NEW_PRIVS`: setuid binaries and file capabilities grant nothing.
    pub no_new_privileges: bool,
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
    /// Where, inside the container: absolute.
    pub destination: String,
    /// The filesystem type (`proc`, `sysfs`, `tmpfs`, `devpts`, `mqueue`); also its source.
    pub fstype: String,
    pub options: Vec<MountOption>,
    /// Filesystem-specific options (`mode=755,size=65536k`).
    pub data: Option<String>,
}

/// A mount flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountOption {
    #[serde(rename = "ro")]
    ReadOnly,
    NoSuid,
    NoDev,
    NoExec,
    StrictAtime,
}

/// A device node in the container's `/dev`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Absolute, under `/dev`.
    pub path: String,
    pub major: u64,
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
}

/// The container's cgroup: where it is, relative to each hierarchy's root, and its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    pub path: PathBuf,
    pub limits: Limits,
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
