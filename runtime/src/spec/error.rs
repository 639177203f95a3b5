//! Why a config file was refused: the file, the field path and what is wrong, one line.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::plan::Namespace;

/// Why a config file (`container.json`, `config.json`) was refused:
/// `<path>: <field>: <what is wrong>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    path: PathBuf,
    field: String,
    kind: ErrorKind,
}

impl ConfigError {
    pub(crate) fn new(path: &Path, field: String, kind: ErrorKind) -> Self {
        ConfigError {
            path: path.to_path_buf(),
            field,
            kind,
        }
    }

    /// The file, as the caller named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The field path (`network.address`, `namespaces[3]`); empty for the file as a whole.
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// What is wrong with a field. Values appear as written, quoted with Rust's escapes, so a
/// message stays on one line whatever the file holds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("unknown field {name:?}{hint}")]
    UnknownField { name: String, hint: Hint },
    #[error("field {name:?} is given twice")]
    DuplicateField { name: String },
    #[error("missing field {name:?}")]
    MissingField { name: &'static str },
    #[error("must not be empty")]
    Empty,
    #[error("{value:?} contains a NUL byte")]
    Nul { value: String },
    #[error("{value:?} is {} bytes, more than the {max} allowed for {what}", .value.len())]
    TooLong {
        value: String,
        max: usize,
        what: &'static str,
    },
    #[error("{value:?} contains {character:?}: {rule}")]
    BadCharacter {
        value: String,
        character: char,
        rule: &'static str,
    },
    #[error("{value:?} has an empty label (a '.' at either end or next to another '.')")]
    EmptyLabel { value: String },
    #[error("{value:?} has a label that starts or ends with '-'")]
    HyphenLabel { value: String },
    #[error("{value:?} has no '=': write NAME=VALUE")]
    NoEquals { value: String },
    #[error("{value:?} has an empty name before '='")]
    EmptyName { value: String },
    #[error("{name:?} is already set by {first}")]
    DuplicateVariable { name: String, first: String },
    #[error("unknown namespace {name:?}{hint}")]
    UnknownNamespace { name: String, hint: Hint },
    #[error("unknown capability {name:?}{hint}")]
    UnknownCapability { name: String, hint: Hint },
    #[error("{name:?}: write {bare:?} without the CAP_ prefix")]
    CapPrefix { name: String, bare: &'static str },
    #[error("{name:?} is listed twice (also at {first})")]
    ListedTwice { name: String, first: String },
    #[error("set, but namespaces does not list {}", .namespace.json_name())]
    NeedsNamespace { namespace: Namespace },
    #[error("{value:?} is not an IPv4 address with a prefix")]
    NotCidr { value: String },
    #[error("{value:?} has no prefix length: write it as \"{value}/N\", N from 0 to 32")]
    NoPrefix { value: String },
    #[error("{value:?} has prefix length {prefix}, more than the 32 bits of an IPv4 address")]
    PrefixTooLong { value: String, prefix: u64 },
    #[error("{value:?} is the {role} address of {network}, not a host's")]
    NotHostAddress {
        value: String,
        role: &'static str,
        network: String,
    },
    #[error("{value:?} is not an IPv4 address")]
    NotIpv4 { value: String },
    #[error("{value:?} is outside network {network} of network.address")]
    GatewayOutside { value: String, network: String },
    #[error("{value:?} is the container's own address (network.address)")]
    GatewayIsAddress { value: String },
    #[error("{value:?} is not a valid interface name")]
    DotInterfaceName { value: String },
    #[error("{value} is outside the range {} to {}", .range.start(), .range.end())]
    OutOfRange {
        value: String,
        range: RangeInclusive<u64>,
    },
    #[error("{value} is not a positive integer")]
    NotPositive { value: String },
    #[error("{value} is below {min} bytes, too little for any container to start")]
    TooLittleMemory { value: u64, min: u64 },
    #[error("{value} is neither -1 (unlimited) nor a positive integer")]
    BadSwap { value: String },
    #[error(
        "{swap} is less than cgroups.memory ({memory}), and memory_swap counts memory plus swap"
    )]
    SwapBelowMemory { swap: i64, memory: u64 },
    #[error(
        "{value:?} is an absolute path: write it relative to the cgroup root, like \"docker\""
    )]
    AbsolutePath { value: String },
    #[error(
        "{value:?} has a {component:?} component, but cgroup paths must stay inside the hierarchy"
    )]
    DotComponent {
        value: String,
        component: &'static str,
    },
    #[error("{value:?} has an empty component")]
    EmptyComponent { value: String },
    #[error("{value:?} is more than one directory: write the rest in cgroups.parent")]
    NotOneComponent { value: String },
    // config.json (runtime-spec): what nsinit refuses, and values of the wrong shape.
    #[error("{value:?} is not a runtime-spec version nsinit reads (1.0.0 to 1.2.x)")]
    UnsupportedVersion { value: String },
    #[error("{what} are not supported yet")]
    NotYet { what: &'static str },
    #[error("not supported: {why}")]
    Unsupported { why: &'static str },
    #[error("{reason}")]
    Seccomp { reason: String },
    #[error("{0}")]
    IdMap(crate::plan::idmap::IdMapError),
    #[error("not for a plain user: {why}")]
    Rootless { why: &'static str },
    #[error("a new user namespace needs {missing}: which host ids the container's are")]
    MapsRequired { missing: &'static str },
    #[error("{value:?}: nsinit applies no {what}; leave it empty")]
    NotApplied { value: String, what: &'static str },
    #[error("{value:?} is not an absolute path")]
    NotAbsolute { value: String },
    #[error("unknown value {value:?}{hint}")]
    UnknownValue { value: String, hint: Hint },
    #[error("unknown resource limit {name:?}{hint}")]
    UnknownRlimit { name: String, hint: Hint },
    #[error("soft limit {soft} is above the hard limit {hard}")]
    SoftAboveHard { soft: u64, hard: u64 },
    #[error("{value} is outside the range {min} to {max}")]
    OutOfSignedRange { value: String, min: i64, max: i64 },
    #[error("set, but linux.namespaces has no {kind:?} namespace")]
    NoNamespace { kind: &'static str },
    #[error(
        "no \"mount\" namespace: nsinit sets up the rootfs with pivot_root, which needs a new one"
    )]
    NoMountNamespace,
    #[error("a mount namespace cannot be joined by path: nsinit sets the container's mounts up in a new one")]
    JoinMount,
    #[error("{key:?} needs the container's own {kind:?} namespace, and linux.namespaces has none")]
    SysctlNeedsNamespace { key: String, kind: &'static str },
    #[error("{key:?} is not namespaced: setting it would change the host")]
    SysctlNotNamespaced { key: String },
    #[error("{value:?} is not a sysctl name like \"net.ipv4.ip_forward\"")]
    BadSysctlKey { value: String },
    #[error("mount type {value:?} is not supported{hint}")]
    UnsupportedMountType { value: String, hint: Hint },
    #[error("{option:?}: {why}")]
    MountOptionRefused { option: String, why: &'static str },
    #[error("{data:?}: filesystem options mean nothing on a bind mount (the kernel ignores them)")]
    DataOnBind { data: String },
    #[error("{value:?} is a systemd unit (slice:prefix:name): nsinit has no systemd cgroup driver; give a cgroupfs path")]
    SystemdCgroup { value: String },
    #[error("{value:?} is the cgroup root itself: the container needs a group of its own")]
    CgroupRoot { value: String },
    #[error("{value:?} is not a device type (c, b, u or p)")]
    DeviceType { value: String },
    #[error("{value:?} is not under /dev")]
    NotUnderDev { value: String },
    #[error("file mode {mode:#o} has the file type bits of another kind of node than {kind:?}")]
    DeviceModeType { mode: u64, kind: String },
    #[error("{message}")]
    DeviceRule { message: String },
    #[error("the container's own /dev rules, which follow these as runc's do, cannot hold after them: {message}")]
    OwnDeviceRule { message: String },
    #[error("{value:?} is not a CPU or memory node list like \"0-3,6\"")]
    BadCpuList { value: String },
    #[error("{value:?} is not a huge page size like \"2MB\" or \"1GB\"")]
    BadPageSize { value: String },
    #[error("{value:?} is not a cgroup v2 interface file like \"memory.high\"")]
    BadUnifiedKey { value: String },
    #[error("needs {other}: {why}")]
    Needs {
        other: &'static str,
        why: &'static str,
    },
    #[error("{swap} is less than linux.resources.memory.limit ({limit}), and swap limits memory plus swap")]
    SwapBelowLimit { swap: i64, limit: u64 },
    #[error("has a key that is the empty string")]
    EmptyKey,
    #[error("resolves to {value:?}, the host's root directory")]
    HostRoot { value: String },
}

/// The help after an unknown name: a close match, the valid names, or where to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hint {
    DidYouMean(&'static str),
    OneOf(&'static [&'static str]),
    See(&'static str),
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::DidYouMean(name) => write!(f, ", did you mean {name:?}?"),
            Hint::OneOf(names) => {
                write!(f, " (expected one of ")?;
                for (i, name) in names.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{name:?}")?;
                }
                write!(f, ")")
            }
            Hint::See(text) => write!(f, " ({text})"),
        }
    }
}
