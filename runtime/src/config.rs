//! The `container.json` model: parsing and validation, no I/O.
//!
//! [`parse`] turns the text of a `container.json` into a [`Config`], or into one
//! [`ConfigError`] naming the file, the field path (`network.address`, `namespaces[3]`) and the
//! offending value. The text is first read into a JSON tree that keeps object keys in file
//! order, duplicates included; then each field is checked; rules that tie fields together
//! (`network` needs `NEWNET`) come last. Every message is produced by one [`ErrorKind`] variant.
//!
//! [`Config::to_json`] writes the same shape back, so `parse(to_json(c)) == c`.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// The MTU of the container's interface when `network.mtu` is absent (Ethernet's).
pub const DEFAULT_MTU: u32 = 1500;
/// MTUs the kernel accepts for an IPv4 interface: 68 is IPv4's minimum, 65535 the largest
/// packet IPv4 can describe.
pub const MTU_RANGE: RangeInclusive<u32> = 68..=65535;
/// `HOST_NAME_MAX`: the longest hostname `sethostname` takes.
const HOSTNAME_MAX: usize = 64;
/// `IFNAMSIZ - 1`: the longest interface name, without its NUL.
const IFNAME_MAX: usize = 15;
/// `NAME_MAX`: the longest directory name, hence cgroup path component.
const CGROUP_COMPONENT_MAX: usize = 255;
/// cgroup v1 `cpu.shares` bounds (`MIN_SHARES`, `MAX_SHARES` in the kernel's scheduler).
const CPU_SHARES_RANGE: RangeInclusive<u64> = 2..=262_144;

const TOP_FIELDS: [&str; 6] = [
    "hostname",
    "environment",
    "namespaces",
    "capabilities",
    "network",
    "cgroups",
];
const NETWORK_FIELDS: [&str; 4] = ["address", "gateway", "bridge", "mtu"];
const CGROUPS_FIELDS: [&str; 5] = ["name", "parent", "memory", "memory_swap", "cpu_shares"];

/// A container as `container.json` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    /// The hostname inside the container's UTS namespace; needs `NEWUTS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The command's environment, `KEY=VALUE`, in file order, keys unique.
    pub environment: Vec<String>,
    /// The namespaces to create, in file order, without duplicates.
    pub namespaces: Vec<Namespace>,
    /// The capabilities to DROP, in file order, without duplicates.
    pub capabilities: Vec<Capability>,
    /// The container's interface on a host bridge; needs `NEWNET`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// The cgroup the container runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Cgroups>,
}

impl Config {
    /// Whether `namespaces` lists `ns`.
    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }

    /// The config as `container.json` text, in the shape [`parse`] reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a config holds only strings, integers, lists and string-keyed objects")
    }
}

/// A namespace the container gets, named in `container.json` after its clone flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    Ipc,
    Mount,
    Pid,
    Uts,
    Net,
    /// Accepted by the model; the runtime refuses it until user namespaces are implemented.
    User,
    Cgroup,
}

impl Namespace {
    /// Every namespace, in the order of their JSON names in the README.
    pub const ALL: [Namespace; 7] = [
        Namespace::Ipc,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Uts,
        Namespace::Net,
        Namespace::User,
        Namespace::Cgroup,
    ];

    /// The `CLONE_NEW*` flag that creates this namespace.
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
        }
    }

    /// The name in `container.json`: the clone flag without `CLONE_` (`NEWNS`).
    pub const fn json_name(self) -> &'static str {
        match self {
            Namespace::Ipc => "NEWIPC",
            Namespace::Mount => "NEWNS",
            Namespace::Pid => "NEWPID",
            Namespace::Uts => "NEWUTS",
            Namespace::Net => "NEWNET",
            Namespace::User => "NEWUSER",
            Namespace::Cgroup => "NEWCGROUP",
        }
    }

    /// The name of the namespace's file in `/proc/PID/ns` (`mnt`).
    pub const fn proc_name(self) -> &'static str {
        match self {
            Namespace::Ipc => "ipc",
            Namespace::Mount => "mnt",
            Namespace::Pid => "pid",
            Namespace::Uts => "uts",
            Namespace::Net => "net",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
        }
    }

    /// The namespace with this JSON name, exactly as written (`NEWNS`).
    pub fn from_json_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|ns| ns.json_name() == name)
    }
}

impl Serialize for Namespace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.json_name())
    }
}

/// Declares [`Capability`] from one table, so numbers and names cannot drift apart.
macro_rules! capabilities {
    ($($variant:ident = $number:literal $name:literal,)*) => {
        /// A Linux capability, numbered as in `<linux/capability.h>`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Capability {
            $($variant = $number,)*
        }

        impl Capability {
            /// Every capability, in kernel number order: `ALL[n].number() == n`.
            pub const ALL: [Capability; 41] = [$(Capability::$variant,)*];

            /// The name in `container.json`: the kernel's without `CAP_` (`SYS_ADMIN`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Capability::$variant => $name,)*
                }
            }
        }
    };
}

capabilities! {
    Chown = 0 "CHOWN",
    DacOverride = 1 "DAC_OVERRIDE",
    DacReadSearch = 2 "DAC_READ_SEARCH",
    Fowner = 3 "FOWNER",
    Fsetid = 4 "FSETID",
    Kill = 5 "KILL",
    Setgid = 6 "SETGID",
    Setuid = 7 "SETUID",
    Setpcap = 8 "SETPCAP",
    LinuxImmutable = 9 "LINUX_IMMUTABLE",
    NetBindService = 10 "NET_BIND_SERVICE",
    NetBroadcast = 11 "NET_BROADCAST",
    NetAdmin = 12 "NET_ADMIN",
    NetRaw = 13 "NET_RAW",
    IpcLock = 14 "IPC_LOCK",
    IpcOwner = 15 "IPC_OWNER",
    SysModule = 16 "SYS_MODULE",
    SysRawio = 17 "SYS_RAWIO",
    SysChroot = 18 "SYS_CHROOT",
    SysPtrace = 19 "SYS_PTRACE",
    SysPacct = 20 "SYS_PACCT",
    SysAdmin = 21 "SYS_ADMIN",
    SysBoot = 22 "SYS_BOOT",
    SysNice = 23 "SYS_NICE",
    SysResource = 24 "SYS_RESOURCE",
    SysTime = 25 "SYS_TIME",
    SysTtyConfig = 26 "SYS_TTY_CONFIG",
    Mknod = 27 "MKNOD",
    Lease = 28 "LEASE",
    AuditWrite = 29 "AUDIT_WRITE",
    AuditControl = 30 "AUDIT_CONTROL",
    Setfcap = 31 "SETFCAP",
    MacOverride = 32 "MAC_OVERRIDE",
    MacAdmin = 33 "MAC_ADMIN",
    Syslog = 34 "SYSLOG",
    WakeAlarm = 35 "WAKE_ALARM",
    BlockSuspend = 36 "BLOCK_SUSPEND",
    AuditRead = 37 "AUDIT_READ",
    Perfmon = 38 "PERFMON",
    Bpf = 39 "BPF",
    CheckpointRestore = 40 "CHECKPOINT_RESTORE",
}

impl Capability {
    /// The kernel's number for this capability (`CAP_SYS_ADMIN` is 21).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The capability with this name, exactly as written in `container.json` (`SYS_ADMIN`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|cap| cap.name() == name)
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The container's interface: one end of a veth pair on a host bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The container's address; a host address of its network, not the network or broadcast
    /// address (for prefixes under 31).
    pub address: Ipv4Addr,
    /// The prefix length written after the address (`/16`), 0 to 32.
    pub prefix_len: u8,
    /// The default route's next hop, inside the address's network; no default route if absent.
    pub gateway: Option<Ipv4Addr>,
    /// The host bridge the veth's host end is attached to.
    pub bridge: String,
    /// The MTU of both veth ends; [`DEFAULT_MTU`] when absent.
    pub mtu: u32,
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The JSON shape: address and prefix length are one string.
        #[derive(serde::Serialize)]
        struct Shape<'a> {
            address: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            gateway: Option<String>,
            bridge: &'a str,
            mtu: u32,
        }
        Shape {
            address: format!("{}/{}", self.address, self.prefix_len),
            gateway: self.gateway.map(|gateway| gateway.to_string()),
            bridge: &self.bridge,
            mtu: self.mtu,
        }
        .serialize(serializer)
    }
}

/// The cgroup the container runs in: `<parent>/<name>` below each hierarchy's root.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cgroups {
    /// The container's own cgroup: one path component.
    pub name: String,
    /// Where `name` sits, relative to the hierarchy's root (`docker`, `docker/sub`); the root
    /// itself when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The memory limit in bytes; no limit when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// The limit on memory plus swap in bytes, at least `memory`; -1 means unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// The relative CPU weight (cgroup v1 `cpu.shares`, 2 to 262144).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
}

impl Cgroups {
    /// The container's cgroup relative to a hierarchy's root: `parent/name`, or `name`.
    pub fn path(&self) -> PathBuf {
        match &self.parent {
            Some(parent) => Path::new(parent).join(&self.name),
            None => PathBuf::from(&self.name),
        }
    }
}

/// Why a `container.json` was refused: `<path>: <field>: <what is wrong>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    path: PathBuf,
    field: String,
    kind: ErrorKind,
}

impl ConfigError {
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

/// Read `container.json` text. `path` only names the file in errors, as given.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let error = |Invalid { field, kind }| ConfigError {
        path: path.to_path_buf(),
        field,
        kind,
    };
    // Editors on some systems start UTF-8 files with a byte order mark; it is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json: Json = serde_json::from_str(text).map_err(|e| error(syntax(&e)))?;
    read_config(&json).map_err(error)
}

/// A field that failed a check, before the file's path is attached.
struct Invalid {
    field: String,
    kind: ErrorKind,
}

type Checked<T> = Result<T, Invalid>;

fn invalid<T>(field: &str, kind: ErrorKind) -> Checked<T> {
    Err(Invalid {
        field: field.to_string(),
        kind,
    })
}

fn syntax(error: &serde_json::Error) -> Invalid {
    let (line, column) = (error.line(), error.column());
    let text = error.to_string();
    let suffix = format!(" at line {line} column {column}");
    Invalid {
        field: String::new(),
        kind: ErrorKind::Json {
            line,
            column,
            message: text.strip_suffix(&suffix).unwrap_or(&text).to_string(),
        },
    }
}

/// A JSON value as written: objects keep their keys in file order, duplicates included,
/// which `serde_json::Value` would sort and merge.
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// What the value is, for "expected ..., found ..." messages.
    fn describe(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => format!("{b}"),
            Json::Number(n) => format!("the number {n}"),
            Json::String(s) => format!("the string {s:?}"),
            Json::Array(_) => "an array".into(),
            Json::Object(_) => "an object".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

/// `parent.name`, or `name` at the top level.
fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[index]`.
fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

fn wrong_type<T>(field: &str, expected: &'static str, found: &Json) -> Checked<T> {
    invalid(
        field,
        ErrorKind::WrongType {
            expected,
            found: found.describe(),
        },
    )
}

/// An object whose keys are all known and each given once.
struct Object<'a> {
    field: String,
    entries: &'a [(String, Json)],
}

impl<'a> Object<'a> {
    fn read(field: &str, value: &'a Json, known: &'static [&'static str]) -> Checked<Self> {
        let Json::Object(entries) = value else {
            return wrong_type(field, "an object", value);
        };
        for (i, (name, _)) in entries.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                let hint = closest(name, known.iter().map(|&k| (k.to_string(), k)))
                    .map_or(Hint::OneOf(known), Hint::DidYouMean);
                let name = name.clone();
                return invalid(field, ErrorKind::UnknownField { name, hint });
            }
            if entries[..i].iter().any(|(earlier, _)| earlier == name) {
                let name = name.clone();
                return invalid(field, ErrorKind::DuplicateField { name });
            }
        }
        Ok(Object {
            field: field.to_string(),
            entries,
        })
    }

    /// Read the field `name` with `read` when present.
    fn optional<T>(
        &self,
        name: &str,
        read: impl FnOnce(&str, &Json) -> Checked<T>,
    ) -> Checked<Option<T>> {
        self.entries
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| read(&child(&self.field, name), value))
            .transpose()
    }

    /// Read the field `name` with `read`; its absence is an error.
    fn required<T>(
        &self,
        name: &'static str,
        read: impl FnOnce(&str, &Json) -> Checked<T>,
    ) -> Checked<T> {
        match self.optional(name, read)? {
            Some(value) => Ok(value),
            None => invalid(&self.field, ErrorKind::MissingField { name }),
        }
    }
}

fn string<'a>(field: &str, value: &'a Json) -> Checked<&'a str> {
    match value {
        Json::String(s) => Ok(s),
        other => wrong_type(field, "a string", other),
    }
}

fn array<'a>(field: &str, value: &'a Json) -> Checked<&'a [Json]> {
    match value {
        Json::Array(items) => Ok(items),
        other => wrong_type(field, "an array", other),
    }
}

/// An integer of any sign and size JSON may hold; fractions and exponents are not integers.
fn integer(field: &str, value: &Json, expected: &'static str) -> Checked<i128> {
    let whole = match value {
        Json::Number(n) => n
            .as_u64()
            .map(i128::from)
            .or_else(|| n.as_i64().map(i128::from)),
        _ => None,
    };
    match whole {
        Some(n) => Ok(n),
        None => wrong_type(field, expected, value),
    }
}

fn read_config(json: &Json) -> Checked<Config> {
    let top = Object::read("", json, &TOP_FIELDS)?;
    let config = Config {
        hostname: top.optional("hostname", hostname)?,
        environment: top
            .optional("environment", environment)?
            .unwrap_or_default(),
        namespaces: top.optional("namespaces", namespaces)?.unwrap_or_default(),
        capabilities: top
            .optional("capabilities", capabilities)?
            .unwrap_or_default(),
        network: top.optional("network", network)?,
        cgroups: top.optional("cgroups", cgroups)?,
    };
    let needs = [
        ("hostname", config.hostname.is_some(), Namespace::Uts),
        ("network", config.network.is_some(), Namespace::Net),
    ];
    for (field, set, namespace) in needs {
        if set && !config.has(namespace) {
            return invalid(field, ErrorKind::NeedsNamespace { namespace });
        }
    }
    Ok(config)
}

/// A hostname as RFC 1123 has it: dot-separated labels of letters, digits and inner hyphens.
fn hostname(field: &str, value: &Json) -> Checked<String> {
    let name = string(field, value)?;
    let fail = |kind| invalid(field, kind);
    let value = || name.to_string();
    if name.is_empty() {
        return fail(ErrorKind::Empty);
    }
    if name.len() > HOSTNAME_MAX {
        return fail(ErrorKind::TooLong {
            value: value(),
            max: HOSTNAME_MAX,
            what: "a hostname",
        });
    }
    if let Some(character) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return fail(ErrorKind::BadCharacter {
            value: value(),
            character,
            rule: "a hostname holds only letters, digits, '-' and '.'",
        });
    }
    if name.split('.').any(str::is_empty) {
        return fail(ErrorKind::EmptyLabel { value: value() });
    }
    if name
        .split('.')
        .any(|label| label.starts_with('-') || label.ends_with('-'))
    {
        return fail(ErrorKind::HyphenLabel { value: value() });
    }
    Ok(name.to_string())
}

/// `KEY=VALUE` entries; the value is everything after the first `=`, taken literally.
fn environment(field: &str, value: &Json) -> Checked<Vec<String>> {
    let mut names: Vec<&str> = Vec::new();
    let mut entries = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let entry = string(&here, entry)?;
        let value = entry.to_string();
        if entry.contains('\0') {
            return invalid(&here, ErrorKind::Nul { value });
        }
        let Some((name, _)) = entry.split_once('=') else {
            return invalid(&here, ErrorKind::NoEquals { value });
        };
        if name.is_empty() {
            return invalid(&here, ErrorKind::EmptyName { value });
        }
        if let Some(first) = names.iter().position(|&seen| seen == name) {
            let (name, first) = (name.to_string(), item(field, first));
            return invalid(&here, ErrorKind::DuplicateVariable { name, first });
        }
        names.push(name);
        entries.push(value);
    }
    Ok(entries)
}

fn namespaces(field: &str, value: &Json) -> Checked<Vec<Namespace>> {
    unique_names(field, value, |name| {
        Namespace::from_json_name(name).ok_or_else(|| ErrorKind::UnknownNamespace {
            name: name.to_string(),
            hint: namespace_hint(name),
        })
    })
}

/// Names people reach for: the `/proc/PID/ns` name (`mnt`, `NEWMNT`) and the full clone flag.
fn namespace_hint(name: &str) -> Hint {
    const NAMES: [&str; 7] = [
        Namespace::ALL[0].json_name(),
        Namespace::ALL[1].json_name(),
        Namespace::ALL[2].json_name(),
        Namespace::ALL[3].json_name(),
        Namespace::ALL[4].json_name(),
        Namespace::ALL[5].json_name(),
        Namespace::ALL[6].json_name(),
    ];
    let spellings = Namespace::ALL.into_iter().flat_map(|ns| {
        let json = ns.json_name();
        let proc = ns.proc_name();
        [
            (json.to_string(), json),
            (format!("CLONE_{json}"), json),
            (proc.to_string(), json),
            (format!("NEW{proc}"), json),
        ]
    });
    closest(name, spellings).map_or(Hint::OneOf(&NAMES), Hint::DidYouMean)
}

fn capabilities(field: &str, value: &Json) -> Checked<Vec<Capability>> {
    unique_names(field, value, |name| {
        if let Some(cap) = Capability::from_name(name) {
            return Ok(cap);
        }
        let prefixed = name
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("CAP_"));
        let bare = prefixed
            .then(|| Capability::from_name(&name[4..].to_ascii_uppercase()))
            .flatten();
        if let Some(cap) = bare {
            return Err(ErrorKind::CapPrefix {
                name: name.to_string(),
                bare: cap.name(),
            });
        }
        let spellings = Capability::ALL.into_iter().flat_map(|cap| {
            let bare = cap.name();
            [(bare.to_string(), bare), (format!("CAP_{bare}"), bare)]
        });
        let hint = closest(name, spellings).map_or(
            Hint::See("names as in capabilities(7), without CAP_, like \"SYS_ADMIN\""),
            Hint::DidYouMean,
        );
        Err(ErrorKind::UnknownCapability {
            name: name.to_string(),
            hint,
        })
    })
}

/// A list of names, each looked up with `lookup` and listed at most once.
fn unique_names<T: PartialEq>(
    field: &str,
    value: &Json,
    lookup: impl Fn(&str) -> Result<T, ErrorKind>,
) -> Checked<Vec<T>> {
    let mut found: Vec<T> = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let name = string(&here, entry)?;
        let thing = match lookup(name) {
            Ok(thing) => thing,
            Err(kind) => return invalid(&here, kind),
        };
        if let Some(first) = found.iter().position(|seen| *seen == thing) {
            let (name, first) = (name.to_string(), item(field, first));
            return invalid(&here, ErrorKind::ListedTwice { name, first });
        }
        found.push(thing);
    }
    Ok(found)
}

fn network(field: &str, value: &Json) -> Checked<Network> {
    let object = Object::read(field, value, &NETWORK_FIELDS)?;
    let (address, prefix_len) = object.required("address", cidr)?;
    let gateway = object.optional("gateway", ipv4)?;
    let bridge = object.required("bridge", interface_name)?;
    let mtu = object.optional("mtu", mtu)?.unwrap_or(DEFAULT_MTU);

    let subnet = format!("{}/{prefix_len}", network_of(address, prefix_len));
    if let Some(role) = reserved_role(address, prefix_len) {
        return invalid(
            &child(field, "address"),
            ErrorKind::NotHostAddress {
                value: format!("{address}/{prefix_len}"),
                role,
                network: subnet,
            },
        );
    }
    if let Some(gateway) = gateway {
        let here = child(field, "gateway");
        let value = gateway.to_string();
        if network_of(gateway, prefix_len) != network_of(address, prefix_len) {
            return invalid(
                &here,
                ErrorKind::GatewayOutside {
                    value,
                    network: subnet,
                },
            );
        }
        if gateway == address {
            return invalid(&here, ErrorKind::GatewayIsAddress { value });
        }
        if let Some(role) = reserved_role(gateway, prefix_len) {
            let network = subnet;
            return invalid(
                &here,
                ErrorKind::NotHostAddress {
                    value,
                    role,
                    network,
                },
            );
        }
    }
    Ok(Network {
        address,
        prefix_len,
        gateway,
        bridge,
        mtu,
    })
}

/// The netmask of a prefix length (0 to 32) as an integer.
fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn network_of(address: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) & mask(prefix_len))
}

/// `Some("network")` or `Some("broadcast")` when `address` is that address of its network.
/// Networks of one or two addresses (/32, /31, RFC 3021) have neither.
fn reserved_role(address: Ipv4Addr, prefix_len: u8) -> Option<&'static str> {
    if prefix_len >= 31 {
        return None;
    }
    let host = u32::from(address) & !mask(prefix_len);
    if host == 0 {
        Some("network")
    } else if host == !mask(prefix_len) {
        Some("broadcast")
    } else {
        None
    }
}

/// `a.b.c.d/N`, N from 0 to 32 in decimal without leading zeros.
fn cidr(field: &str, value: &Json) -> Checked<(Ipv4Addr, u8)> {
    let text = string(field, value)?;
    let value = text.to_string();
    let Some((address, prefix)) = text.split_once('/') else {
        return match text.parse::<Ipv4Addr>() {
            Ok(_) => invalid(field, ErrorKind::NoPrefix { value }),
            Err(_) => invalid(field, ErrorKind::NotCidr { value }),
        };
    };
    let decimal = !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && (prefix == "0" || !prefix.starts_with('0'));
    match (address.parse::<Ipv4Addr>(), prefix.parse::<u64>()) {
        (Ok(address), Ok(prefix)) if decimal => match u8::try_from(prefix) {
            Ok(prefix_len) if prefix_len <= 32 => Ok((address, prefix_len)),
            _ => invalid(field, ErrorKind::PrefixTooLong { value, prefix }),
        },
        _ => invalid(field, ErrorKind::NotCidr { value }),
    }
}

fn ipv4(field: &str, value: &Json) -> Checked<Ipv4Addr> {
    let text = string(field, value)?;
    text.parse().or_else(|_| {
        invalid(
            field,
            ErrorKind::NotIpv4 {
                value: text.to_string(),
            },
        )
    })
}

/// A name the kernel's `dev_valid_name` accepts, without control characters.
fn interface_name(field: &str, value: &Json) -> Checked<String> {
    let name = string(field, value)?;
    let value = name.to_string();
    if name.is_empty() {
        return invalid(field, ErrorKind::Empty);
    }
    if name.len() > IFNAME_MAX {
        return invalid(
            field,
            ErrorKind::TooLong {
                value,
                max: IFNAME_MAX,
                what: "an interface name",
            },
        );
    }
    if let Some(character) = name
        .chars()
        .find(|&c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return invalid(
            field,
            ErrorKind::BadCharacter {
                value,
                character,
                rule: "an interface name cannot hold '/', ':', spaces or control characters",
            },
        );
    }
    if name == "." || name == ".." {
        return invalid(field, ErrorKind::DotInterfaceName { value });
    }
    Ok(value)
}

fn mtu(field: &str, value: &Json) -> Checked<u32> {
    let n = integer(field, value, "an integer")?;
    match u32::try_from(n) {
        Ok(mtu) if MTU_RANGE.contains(&mtu) => Ok(mtu),
        _ => invalid(
            field,
            ErrorKind::OutOfRange {
                value: n.to_string(),
                range: u64::from(*MTU_RANGE.start())..=u64::from(*MTU_RANGE.end()),
            },
        ),
    }
}

fn cgroups(field: &str, value: &Json) -> Checked<Cgroups> {
    let object = Object::read(field, value, &CGROUPS_FIELDS)?;
    let name = object.required("name", cgroup_name)?;
    let parent = object.optional("parent", cgroup_path)?;
    let memory = object.optional("memory", positive)?;
    let memory_swap = object.optional("memory_swap", memory_swap)?;
    let cpu_shares = object.optional("cpu_shares", cpu_shares)?;
    if let (Some(memory), Some(swap)) = (memory, memory_swap) {
        if swap != -1 && i128::from(swap) < i128::from(memory) {
            return invalid(
                &child(field, "memory_swap"),
                ErrorKind::SwapBelowMemory { swap, memory },
            );
        }
    }
    Ok(Cgroups {
        name,
        parent,
        memory,
        memory_swap,
        cpu_shares,
    })
}

/// A relative path that stays below the hierarchy's root: no `/` at the start, no `.`, `..`
/// or empty components.
fn cgroup_path(field: &str, value: &Json) -> Checked<String> {
    let path = string(field, value)?;
    let value = path.to_string();
    if path.is_empty() {
        return invalid(field, ErrorKind::Empty);
    }
    if path.contains('\0') {
        return invalid(field, ErrorKind::Nul { value });
    }
    if path.starts_with('/') {
        return invalid(field, ErrorKind::AbsolutePath { value });
    }
    for component in path.split('/') {
        let dots = [".", ".."].into_iter().find(|&dots| dots == component);
        if let Some(component) = dots {
            return invalid(field, ErrorKind::DotComponent { value, component });
        }
        if component.is_empty() {
            return invalid(field, ErrorKind::EmptyComponent { value });
        }
        if component.len() > CGROUP_COMPONENT_MAX {
            return invalid(
                field,
                ErrorKind::TooLong {
                    value: component.to_string(),
                    max: CGROUP_COMPONENT_MAX,
                    what: "a cgroup directory name",
                },
            );
        }
    }
    Ok(value)
}

/// The container's own cgroup: a [`cgroup_path`] of one component.
fn cgroup_name(field: &str, value: &Json) -> Checked<String> {
    let name = cgroup_path(field, value)?;
    if name.contains('/') {
        return invalid(field, ErrorKind::NotOneComponent { value: name });
    }
    Ok(name)
}

fn positive(field: &str, value: &Json) -> Checked<u64> {
    let n = integer(field, value, "a positive integer")?;
    match u64::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => invalid(
            field,
            ErrorKind::NotPositive {
                value: n.to_string(),
            },
        ),
    }
}

fn memory_swap(field: &str, value: &Json) -> Checked<i64> {
    let n = integer(field, value, "an integer")?;
    match i64::try_from(n) {
        Ok(n) if n == -1 || n > 0 => Ok(n),
        _ => invalid(
            field,
            ErrorKind::BadSwap {
                value: n.to_string(),
            },
        ),
    }
}

fn cpu_shares(field: &str, value: &Json) -> Checked<u64> {
    let n = integer(field, value, "an integer")?;
    match u64::try_from(n) {
        Ok(shares) if CPU_SHARES_RANGE.contains(&shares) => Ok(shares),
        _ => invalid(
            field,
            ErrorKind::OutOfRange {
                value: n.to_string(),
                range: CPU_SHARES_RANGE,
            },
        ),
    }
}

/// The suggestion whose spelling is closest to `input`, ignoring ASCII case, if it is close
/// enough to be the likely intent: at most one edit per three characters (at least one).
fn closest(
    input: &str,
    spellings: impl IntoIterator<Item = (String, &'static str)>,
) -> Option<&'static str> {
    // Long input is not a typo of a short name, and distance is quadratic.
    const LONGEST: usize = 64;
    if input.len() > LONGEST {
        return None;
    }
    let input = input.to_ascii_lowercase();
    let budget = (input.chars().count() / 3).max(1);
    spellings
        .into_iter()
        .map(|(spelling, suggestion)| {
            (
                edit_distance(&input, &spelling.to_ascii_lowercase()),
                suggestion,
            )
        })
        .filter(|&(distance, _)| distance <= budget)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, suggestion)| suggestion)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    /// The seed README's sample, verbatim.
    const SEED: &str = r#"{ "hostname": "koye", "environment": [ "HOME=/", "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin", "container=docker", "TERM=xterm-256color" ], "namespaces": [ "NEWIPC", "NEWNS", "NEWPID", "NEWUTS", "NEWNET" ], "capabilities": [ "SETPCAP", "SYS_MODULE", "SYS_RAWIO", "SYS_PACCT", "SYS_ADMIN", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "AUDIT_WRITE", "AUDIT_CONTROL", "MAC_OVERRIDE", "MAC_ADMIN" ], "network": { "address": "172.17.0.100/16", "gateway": "172.17.42.1", "bridge": "docker0", "mtu": 1500 }, "cgroups": { "name": "docker-koye", "parent": "docker", "memory": 524800 } }"#;

    const PATH: &str = "./container.json";

    fn read(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new(PATH), text)
    }

    fn rejection(text: &str) -> String {
        match read(text) {
            Ok(config) => panic!("accepted {text}: {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn seed_config() -> Config {
        use Capability::*;
        use Namespace::*;
        Config {
            hostname: Some("koye".into()),
            environment: vec![
                "HOME=/".into(),
                "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin".into(),
                "container=docker".into(),
                "TERM=xterm-256color".into(),
            ],
            namespaces: vec![Ipc, Mount, Pid, Uts, Net],
            capabilities: vec![
                Setpcap,
                SysModule,
                SysRawio,
                SysPacct,
                SysAdmin,
                SysNice,
                SysResource,
                SysTime,
                SysTtyConfig,
                Mknod,
                AuditWrite,
                AuditControl,
                MacOverride,
                MacAdmin,
            ],
            network: Some(Network {
                address: Ipv4Addr::new(172, 17, 0, 100),
                prefix_len: 16,
                gateway: Some(Ipv4Addr::new(172, 17, 42, 1)),
                bridge: "docker0".into(),
                mtu: 1500,
            }),
            cgroups: Some(Cgroups {
                name: "docker-koye".into(),
                parent: Some("docker".into()),
                memory: Some(524_800),
                memory_swap: None,
                cpu_shares: None,
            }),
        }
    }

    #[test]
    fn the_seed_sample_parses_to_what_it_says() {
        assert_eq!(read(SEED).unwrap(), seed_config());
    }

    #[test]
    fn the_seed_sample_here_is_the_fixture_byte_for_byte() {
        assert_eq!(SEED, fixtures::SEED.trim_end());
    }

    #[test]
    fn the_seed_sample_path_value_is_taken_literally() {
        let config = read(SEED).unwrap();
        let path = config
            .environment
            .iter()
            .find(|e| e.starts_with("PATH="))
            .unwrap();
        assert_eq!(path, "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin");
    }

    #[test]
    fn an_empty_object_is_the_default_config() {
        assert_eq!(read("{}").unwrap(), Config::default());
    }

    #[test]
    fn mtu_defaults_to_1500_and_gateway_to_none() {
        let config = read(
            r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0"}}"#,
        )
        .unwrap();
        let network = config.network.unwrap();
        assert_eq!((network.mtu, network.gateway), (DEFAULT_MTU, None));
    }

    #[test]
    fn cgroups_path_joins_parent_and_name() {
        let config = read(r#"{"cgroups": {"name": "c1", "parent": "docker/sub"}}"#).unwrap();
        assert_eq!(config.cgroups.unwrap().path(), Path::new("docker/sub/c1"));
        let config = read(r#"{"cgroups": {"name": "c1"}}"#).unwrap();
        assert_eq!(config.cgroups.unwrap().path(), Path::new("c1"));
    }

    #[test]
    fn has_answers_for_listed_namespaces_only() {
        let config = read(r#"{"namespaces": ["NEWNS", "NEWUSER"]}"#).unwrap();
        assert!(config.has(Namespace::Mount) && config.has(Namespace::User));
        assert!(!config.has(Namespace::Pid));
    }

    #[test]
    fn namespaces_keep_file_order() {
        let config = read(r#"{"namespaces": ["NEWPID", "NEWCGROUP", "NEWNS"]}"#).unwrap();
        let order = [Namespace::Pid, Namespace::Cgroup, Namespace::Mount];
        assert_eq!(config.namespaces, order);
    }

    #[test]
    fn to_json_writes_the_seed_back_in_its_shape() {
        let json = seed_config().to_json();
        insta::assert_snapshot!("seed_to_json", json);
        assert_eq!(read(&json).unwrap(), seed_config());
    }

    #[test]
    fn every_good_fixture_parses() {
        for (name, text) in fixtures::configs() {
            if !name.starts_with("bad-") {
                assert!(read(text).is_ok(), "{name}: {:?}", read(text));
            }
        }
    }

    #[test]
    fn every_bad_fixture_names_its_field_and_value() {
        for case in fixtures::BAD_CASES {
            let message = rejection(case.config());
            assert_eq!(
                case.missing_from(&message),
                None,
                "{}: {message}",
                case.name
            );
        }
    }

    #[test]
    fn the_error_names_the_path_as_given() {
        let error = parse(Path::new("/srv/c1/container.json"), "[]").unwrap_err();
        assert_eq!(error.path(), Path::new("/srv/c1/container.json"));
        assert!(error
            .to_string()
            .starts_with("/srv/c1/container.json: expected an object"));
    }

    #[test]
    fn the_error_exposes_field_and_kind() {
        let error = read(r#"{"namespaces": ["NEWNS", "NEWNS"]}"#).unwrap_err();
        assert_eq!(error.field(), "namespaces[1]");
        assert!(matches!(error.kind(), ErrorKind::ListedTwice { .. }));
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        assert_eq!(read("\u{feff}{}").unwrap(), Config::default());
    }

    #[test]
    fn deep_nesting_is_a_json_error_not_a_stack_overflow() {
        let text = format!("{{\"hostname\": {}", "[".repeat(100_000));
        let message = rejection(&text);
        insta::assert_snapshot!("rejected_json_too_deep", message);
    }

    #[test]
    fn namespace_flags_and_names_match_the_kernel() {
        let table: Vec<_> = Namespace::ALL
            .iter()
            .map(|ns| (ns.json_name(), ns.proc_name(), ns.clone_flag()))
            .collect();
        assert_eq!(
            table,
            [
                ("NEWIPC", "ipc", libc::CLONE_NEWIPC),
                ("NEWNS", "mnt", libc::CLONE_NEWNS),
                ("NEWPID", "pid", libc::CLONE_NEWPID),
                ("NEWUTS", "uts", libc::CLONE_NEWUTS),
                ("NEWNET", "net", libc::CLONE_NEWNET),
                ("NEWUSER", "user", libc::CLONE_NEWUSER),
                ("NEWCGROUP", "cgroup", libc::CLONE_NEWCGROUP),
            ]
        );
        for ns in Namespace::ALL {
            assert_eq!(Namespace::from_json_name(ns.json_name()), Some(ns));
        }
    }

    #[test]
    fn capabilities_are_numbered_as_in_the_kernel() {
        for (n, cap) in Capability::ALL.iter().enumerate() {
            assert_eq!(usize::from(cap.number()), n, "{}", cap.name());
            assert_eq!(Capability::from_name(cap.name()), Some(*cap));
        }
        let named = |name| Capability::from_name(name).map(Capability::number);
        assert_eq!(named("CHOWN"), Some(0));
        assert_eq!(named("SYS_ADMIN"), Some(21));
        assert_eq!(named("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(named("CAP_SYS_ADMIN"), None);
        assert_eq!(named("sys_admin"), None);
    }

    #[test]
    fn capability_names_agree_with_the_caps_crate() {
        for cap in Capability::ALL {
            let theirs: caps::Capability = format!("CAP_{}", cap.name()).parse().unwrap();
            assert_eq!(theirs.index(), cap.number(), "{}", cap.name());
        }
    }

    #[rstest]
    #[case::hostname("hostnme", &TOP_FIELDS, Some("hostname"))]
    #[case::case_only("Hostname", &TOP_FIELDS, Some("hostname"))]
    #[case::swap("memoryswap", &CGROUPS_FIELDS, Some("memory_swap"))]
    #[case::far("rootfs", &TOP_FIELDS, None)]
    #[case::one_letter("x", &NETWORK_FIELDS, None)]
    fn closest_suggests_only_near_names(
        #[case] input: &str,
        #[case] known: &'static [&'static str],
        #[case] expected: Option<&str>,
    ) {
        assert_eq!(
            closest(input, known.iter().map(|&k| (k.to_string(), k))),
            expected
        );
    }

    #[rstest]
    #[case("", "", 0)]
    #[case("kitten", "sitting", 3)]
    #[case("NEWMNT", "NEWNS", 2)]
    #[case("gatway", "gateway", 1)]
    fn edit_distance_is_levenshtein(#[case] a: &str, #[case] b: &str, #[case] distance: usize) {
        assert_eq!(edit_distance(a, b), distance);
        assert_eq!(edit_distance(b, a), distance);
    }

    #[rstest]
    #[case::empty_object("{}")]
    #[case::seed(SEED)]
    #[case::whitespace_around(" \n\t{ }\n")]
    #[case::empty_lists(r#"{"environment": [], "namespaces": [], "capabilities": []}"#)]
    #[case::newuser_and_newcgroup(r#"{"namespaces": ["NEWUSER", "NEWCGROUP"]}"#)]
    #[case::every_namespace(
        r#"{"namespaces": ["NEWIPC","NEWNS","NEWPID","NEWUTS","NEWNET","NEWUSER","NEWCGROUP"]}"#
    )]
    #[case::hostname_with_dots(r#"{"namespaces": ["NEWUTS"], "hostname": "web-1.example.org"}"#)]
    #[case::hostname_64_bytes(
        r#"{"namespaces": ["NEWUTS"], "hostname": "a123456789b123456789c123456789d123456789e123456789f123456789abcd"}"#
    )]
    #[case::env_empty_value(r#"{"environment": ["EMPTY="]}"#)]
    #[case::env_equals_in_value(r#"{"environment": ["A=b=c", "B==", "C=$A"]}"#)]
    #[case::env_unicode(r#"{"environment": ["GRÜSSE=grüß gott"]}"#)]
    #[case::newest_capability(r#"{"capabilities": ["CHECKPOINT_RESTORE", "CHOWN", "BPF"]}"#)]
    #[case::no_gateway(
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.1.2.3/8", "bridge": "br0"}}"#
    )]
    #[case::prefix_31(
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.0/31", "gateway": "10.0.0.1", "bridge": "br0"}}"#
    )]
    #[case::prefix_32(
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.7/32", "bridge": "br0"}}"#
    )]
    #[case::prefix_0(
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.7/0", "gateway": "192.168.0.1", "bridge": "br0"}}"#
    )]
    #[case::mtu_68(r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": 68}}"#)]
    #[case::mtu_65535(
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": 65535}}"#
    )]
    #[case::bridge_15_bytes(
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br-0123456789ab"}}"#
    )]
    #[case::cgroup_name_only(r#"{"cgroups": {"name": "c1"}}"#)]
    #[case::cgroup_nested_parent(r#"{"cgroups": {"name": "c1", "parent": "docker/sub.slice"}}"#)]
    #[case::cgroup_dots_in_names(r#"{"cgroups": {"name": "...", "parent": "a.b/.c"}}"#)]
    #[case::cgroup_2014_fields(
        r#"{"cgroups": {"name": "c1", "memory": 1048576, "memory_swap": 2097152, "cpu_shares": 512}}"#
    )]
    #[case::cgroup_swap_unlimited(
        r#"{"cgroups": {"name": "c1", "memory": 1048576, "memory_swap": -1}}"#
    )]
    #[case::cgroup_swap_equal_memory(
        r#"{"cgroups": {"name": "c1", "memory": 4096, "memory_swap": 4096}}"#
    )]
    #[case::cgroup_largest_memory(r#"{"cgroups": {"name": "c1", "memory": 18446744073709551615}}"#)]
    fn accepted(#[case] text: &str) {
        let config = read(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&config.to_json()).unwrap(), config);
    }

    /// Every distinct message, by case name; the snapshot is `rejected_<name>`.
    #[rstest]
    // The file as a whole.
    #[case::json_syntax(
        "json_syntax",
        "{\n  \"hostname\": \"koye\"\n  \"namespaces\": [ \"NEWNS\", \"NEWUTS\" ]\n}"
    )]
    #[case::json_empty("json_empty", "")]
    #[case::json_trailing("json_trailing", "{} {}")]
    #[case::json_lone_surrogate("json_lone_surrogate", r#"{"hostname": "\ud800"}"#)]
    #[case::json_huge_number("json_huge_number", r#"{"cgroups": {"name": "c", "memory": 1e400}}"#)]
    #[case::top_not_object("top_not_object", "[]")]
    #[case::unknown_field_did_you_mean("unknown_field_did_you_mean", r#"{"hostnme": "koye"}"#)]
    #[case::unknown_field_list("unknown_field_list", r#"{"rootfs": "/"}"#)]
    #[case::unknown_network_field(
        "unknown_network_field",
        r#"{"namespaces": ["NEWNET"], "network": {"address": "172.17.0.100/16", "bridge": "docker0", "gatway": "172.17.42.1"}}"#
    )]
    #[case::unknown_cgroups_field(
        "unknown_cgroups_field",
        r#"{"cgroups": {"name": "c1", "memroy": 4096}}"#
    )]
    #[case::duplicate_field(
        "duplicate_field",
        r#"{"namespaces": ["NEWUTS"], "hostname": "a", "hostname": "b"}"#
    )]
    #[case::missing_address(
        "missing_address",
        r#"{"namespaces": ["NEWNET"], "network": {"bridge": "docker0"}}"#
    )]
    #[case::missing_bridge(
        "missing_bridge",
        r#"{"namespaces": ["NEWNET"], "network": {"address": "172.17.0.100/16"}}"#
    )]
    #[case::missing_cgroup_name("missing_cgroup_name", r#"{"cgroups": {"parent": "docker"}}"#)]
    // Types.
    #[case::hostname_number("hostname_number", r#"{"namespaces": ["NEWUTS"], "hostname": 42}"#)]
    #[case::hostname_null("hostname_null", r#"{"namespaces": ["NEWUTS"], "hostname": null}"#)]
    #[case::environment_string("environment_string", r#"{"environment": "HOME=/"}"#)]
    #[case::namespace_number("namespace_number", r#"{"namespaces": ["NEWNS", "NEWPID", 3]}"#)]
    #[case::capability_object("capability_object", r#"{"capabilities": [{"name": "MKNOD"}]}"#)]
    #[case::network_string("network_string", r#"{"namespaces": ["NEWNET"], "network": "bridge"}"#)]
    #[case::cgroups_array("cgroups_array", r#"{"cgroups": ["docker"]}"#)]
    #[case::mtu_fraction(
        "mtu_fraction",
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": 1500.5}}"#
    )]
    #[case::mtu_string(
        "mtu_string",
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": "1500"}}"#
    )]
    #[case::memory_string("memory_string", r#"{"cgroups": {"name": "c1", "memory": "512m"}}"#)]
    #[case::swap_bool("swap_bool", r#"{"cgroups": {"name": "c1", "memory_swap": true}}"#)]
    // hostname.
    #[case::hostname_empty("hostname_empty", r#"{"namespaces": ["NEWUTS"], "hostname": ""}"#)]
    #[case::hostname_too_long("hostname_too_long", &format!(r#"{{"namespaces": ["NEWUTS"], "hostname": "{}"}}"#, "k".repeat(65)))]
    #[case::hostname_space("hostname_space", r#"{"namespaces": ["NEWUTS"], "hostname": "ko ye"}"#)]
    #[case::hostname_underscore(
        "hostname_underscore",
        r#"{"namespaces": ["NEWUTS"], "hostname": "koye_1"}"#
    )]
    #[case::hostname_newline(
        "hostname_newline",
        r#"{"namespaces": ["NEWUTS"], "hostname": "ko\nye"}"#
    )]
    #[case::hostname_leading_hyphen(
        "hostname_leading_hyphen",
        r#"{"namespaces": ["NEWUTS"], "hostname": "-koye"}"#
    )]
    #[case::hostname_label_hyphen(
        "hostname_label_hyphen",
        r#"{"namespaces": ["NEWUTS"], "hostname": "koye-.org"}"#
    )]
    #[case::hostname_trailing_dot(
        "hostname_trailing_dot",
        r#"{"namespaces": ["NEWUTS"], "hostname": "koye."}"#
    )]
    #[case::hostname_without_newuts(
        "hostname_without_newuts",
        r#"{"namespaces": ["NEWNS"], "hostname": "koye"}"#
    )]
    // environment.
    #[case::env_no_equals("env_no_equals", r#"{"environment": ["HOME=/", "NO_EQUALS_SIGN"]}"#)]
    #[case::env_empty_name("env_empty_name", r#"{"environment": ["=value"]}"#)]
    #[case::env_nul("env_nul", r#"{"environment": ["A=x\u0000y"]}"#)]
    #[case::env_duplicate(
        "env_duplicate",
        r#"{"environment": ["HOME=/", "TERM=xterm", "HOME=/root"]}"#
    )]
    // namespaces.
    #[case::namespace_newmnt("namespace_newmnt", r#"{"namespaces": ["NEWMNT"]}"#)]
    #[case::namespace_lowercase("namespace_lowercase", r#"{"namespaces": ["newpid"]}"#)]
    #[case::namespace_clone_prefix("namespace_clone_prefix", r#"{"namespaces": ["CLONE_NEWNET"]}"#)]
    #[case::namespace_unknown("namespace_unknown", r#"{"namespaces": ["NEWTIME"]}"#)]
    #[case::namespace_twice(
        "namespace_twice",
        r#"{"namespaces": ["NEWIPC", "NEWNS", "NEWPID", "NEWPID"]}"#
    )]
    // capabilities.
    #[case::capability_prefix("capability_prefix", r#"{"capabilities": ["CAP_SYS_ADMIN"]}"#)]
    #[case::capability_prefix_lowercase(
        "capability_prefix_lowercase",
        r#"{"capabilities": ["cap_net_raw"]}"#
    )]
    #[case::capability_typo("capability_typo", r#"{"capabilities": ["SYS_ADMN"]}"#)]
    #[case::capability_typo_with_prefix(
        "capability_typo_with_prefix",
        r#"{"capabilities": ["CAP_SYS_ADMN"]}"#
    )]
    #[case::capability_unknown("capability_unknown", r#"{"capabilities": ["FLY"]}"#)]
    #[case::capability_twice(
        "capability_twice",
        r#"{"capabilities": ["MKNOD", "SYS_ADMIN", "MKNOD"]}"#
    )]
    // network.
    #[case::network_without_newnet(
        "network_without_newnet",
        r#"{"namespaces": ["NEWNS"], "network": {"address": "172.17.0.100/16", "bridge": "docker0"}}"#
    )]
    #[case::address_bad_octet("address_bad_octet", &network_with(r#""address": "172.17.0.300/16""#))]
    #[case::address_no_prefix("address_no_prefix", &network_with(r#""address": "172.17.0.100""#))]
    #[case::address_prefix_33("address_prefix_33", &network_with(r#""address": "172.17.0.100/33""#))]
    #[case::address_prefix_leading_zero("address_prefix_leading_zero", &network_with(r#""address": "172.17.0.100/016""#))]
    #[case::address_hostname("address_hostname", &network_with(r#""address": "docker""#))]
    #[case::address_ipv6("address_ipv6", &network_with(r#""address": "fd00::2/64""#))]
    #[case::address_network("address_network", &network_with(r#""address": "172.17.0.0/16""#))]
    #[case::address_broadcast("address_broadcast", &network_with(r#""address": "172.17.255.255/16""#))]
    #[case::gateway_bad_octet("gateway_bad_octet", &network_with(r#""gateway": "172.17.42.256""#))]
    #[case::gateway_with_prefix("gateway_with_prefix", &network_with(r#""gateway": "172.17.42.1/16""#))]
    #[case::gateway_outside("gateway_outside", &network_with(r#""gateway": "10.0.0.1""#))]
    #[case::gateway_is_address("gateway_is_address", &network_with(r#""gateway": "172.17.0.100""#))]
    #[case::gateway_broadcast("gateway_broadcast", &network_with(r#""gateway": "172.17.255.255""#))]
    #[case::bridge_empty("bridge_empty", &network_with(r#""bridge": """#))]
    #[case::bridge_too_long("bridge_too_long", &network_with(r#""bridge": "bridge-name-too-long""#))]
    #[case::bridge_slash("bridge_slash", &network_with(r#""bridge": "br/0""#))]
    #[case::bridge_space("bridge_space", &network_with(r#""bridge": "br 0""#))]
    #[case::bridge_colon("bridge_colon", &network_with(r#""bridge": "br0:1""#))]
    #[case::bridge_dotdot("bridge_dotdot", &network_with(r#""bridge": "..""#))]
    #[case::mtu_low("mtu_low", &network_with(r#""mtu": 67"#))]
    #[case::mtu_high("mtu_high", &network_with(r#""mtu": 65536"#))]
    #[case::mtu_negative("mtu_negative", &network_with(r#""mtu": -1500"#))]
    // cgroups.
    #[case::cgroup_name_empty("cgroup_name_empty", r#"{"cgroups": {"name": ""}}"#)]
    #[case::cgroup_name_dotdot("cgroup_name_dotdot", r#"{"cgroups": {"name": "../escape"}}"#)]
    #[case::cgroup_name_dot("cgroup_name_dot", r#"{"cgroups": {"name": "."}}"#)]
    #[case::cgroup_name_two_components(
        "cgroup_name_two_components",
        r#"{"cgroups": {"name": "docker/koye"}}"#
    )]
    #[case::cgroup_name_absolute("cgroup_name_absolute", r#"{"cgroups": {"name": "/koye"}}"#)]
    #[case::cgroup_name_nul("cgroup_name_nul", r#"{"cgroups": {"name": "ko\u0000ye"}}"#)]
    #[case::cgroup_name_too_long("cgroup_name_too_long", &format!(r#"{{"cgroups": {{"name": "{}"}}}}"#, "c".repeat(256)))]
    #[case::cgroup_parent_empty(
        "cgroup_parent_empty",
        r#"{"cgroups": {"name": "c1", "parent": ""}}"#
    )]
    #[case::cgroup_parent_absolute(
        "cgroup_parent_absolute",
        r#"{"cgroups": {"name": "c1", "parent": "/sys/fs/cgroup"}}"#
    )]
    #[case::cgroup_parent_dotdot(
        "cgroup_parent_dotdot",
        r#"{"cgroups": {"name": "c1", "parent": "docker/../../escape"}}"#
    )]
    #[case::cgroup_parent_dot(
        "cgroup_parent_dot",
        r#"{"cgroups": {"name": "c1", "parent": "./docker"}}"#
    )]
    #[case::cgroup_parent_double_slash(
        "cgroup_parent_double_slash",
        r#"{"cgroups": {"name": "c1", "parent": "docker//sub"}}"#
    )]
    #[case::cgroup_parent_trailing_slash(
        "cgroup_parent_trailing_slash",
        r#"{"cgroups": {"name": "c1", "parent": "docker/"}}"#
    )]
    #[case::memory_zero("memory_zero", r#"{"cgroups": {"name": "c1", "memory": 0}}"#)]
    #[case::memory_negative("memory_negative", r#"{"cgroups": {"name": "c1", "memory": -524800}}"#)]
    #[case::memory_fraction("memory_fraction", r#"{"cgroups": {"name": "c1", "memory": 1.5e6}}"#)]
    #[case::memory_too_large(
        "memory_too_large",
        r#"{"cgroups": {"name": "c1", "memory": 18446744073709551616}}"#
    )]
    #[case::swap_zero("swap_zero", r#"{"cgroups": {"name": "c1", "memory_swap": 0}}"#)]
    #[case::swap_minus_two("swap_minus_two", r#"{"cgroups": {"name": "c1", "memory_swap": -2}}"#)]
    #[case::swap_below_memory(
        "swap_below_memory",
        r#"{"cgroups": {"name": "c1", "memory": 524800, "memory_swap": 4096}}"#
    )]
    #[case::cpu_shares_low("cpu_shares_low", r#"{"cgroups": {"name": "c1", "cpu_shares": 1}}"#)]
    #[case::cpu_shares_high(
        "cpu_shares_high",
        r#"{"cgroups": {"name": "c1", "cpu_shares": 262145}}"#
    )]
    fn rejected(#[case] name: &str, #[case] text: &str) {
        let message = rejection(text);
        assert!(message.starts_with("./container.json: "), "{message}");
        assert!(!message.contains('\n'), "not one line: {message}");
        assert!(!message.ends_with('.'), "trailing period: {message}");
        let first = message["./container.json: ".len()..]
            .chars()
            .next()
            .unwrap();
        assert!(!first.is_uppercase(), "not lowercase: {message}");
        insta::assert_snapshot!(format!("rejected_{name}"), message);
    }

    /// The seed's network section with one field replaced or added.
    fn network_with(field: &str) -> String {
        let key = &field[..field.find(':').unwrap()];
        let mut fields = vec![
            r#""address": "172.17.0.100/16""#,
            r#""gateway": "172.17.42.1""#,
            r#""bridge": "docker0""#,
            r#""mtu": 1500"#,
        ];
        fields.retain(|f| !f.starts_with(key));
        fields.push(field);
        format!(
            r#"{{"namespaces": ["NEWNET"], "network": {{{}}}}}"#,
            fields.join(", ")
        )
    }

    fn hostname_strategy() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?){0,3}"
    }

    fn environment_strategy() -> impl Strategy<Value = Vec<String>> {
        prop::collection::btree_map("[^=\\x00]{1,12}", "[^\\x00]{0,20}", 0..6)
            .prop_map(|vars| vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
    }

    fn network_strategy() -> impl Strategy<Value = Network> {
        let bridge = "[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,14}";
        (
            any::<u32>(),
            0u8..=32,
            prop::option::of(any::<u32>()),
            bridge,
            MTU_RANGE,
        )
            .prop_filter_map(
                "the address must be a host address",
                |(address, prefix_len, gateway, bridge, mtu)| {
                    let address = Ipv4Addr::from(address);
                    if reserved_role(address, prefix_len).is_some() {
                        return None;
                    }
                    let inside = |bits: u32| {
                        let net = u32::from(address) & mask(prefix_len);
                        Ipv4Addr::from(net | (bits & !mask(prefix_len)))
                    };
                    let gateway = gateway
                        .map(inside)
                        .filter(|&g| g != address && reserved_role(g, prefix_len).is_none());
                    Some(Network {
                        address,
                        prefix_len,
                        gateway,
                        bridge,
                        mtu,
                    })
                },
            )
    }

    fn cgroups_strategy() -> impl Strategy<Value = Cgroups> {
        let component = "[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,15}";
        let parent = prop::collection::vec(component, 1..4).prop_map(|parts| parts.join("/"));
        let swap = prop::option::of(prop::option::of(0..=i64::MAX));
        (
            component,
            prop::option::of(parent),
            prop::option::of(1..=u64::MAX),
            swap,
            prop::option::of(CPU_SHARES_RANGE),
        )
            .prop_map(|(name, parent, memory, swap, cpu_shares)| {
                // `Some(None)` is unlimited; `Some(Some(extra))` is memory plus extra.
                let memory_swap = swap.map(|extra| {
                    let base = i64::try_from(memory.unwrap_or(1)).ok();
                    extra
                        .and_then(|extra| base?.checked_add(extra))
                        .unwrap_or(-1)
                });
                Cgroups {
                    name,
                    parent,
                    memory,
                    memory_swap,
                    cpu_shares,
                }
            })
    }

    fn config_strategy() -> impl Strategy<Value = Config> {
        let namespaces = prop::sample::subsequence(Namespace::ALL.to_vec(), 0..=7).prop_shuffle();
        namespaces.prop_flat_map(|namespaces| {
            let hostname = if namespaces.contains(&Namespace::Uts) {
                prop::option::of(hostname_strategy()).boxed()
            } else {
                Just(None).boxed()
            };
            let network = if namespaces.contains(&Namespace::Net) {
                prop::option::of(network_strategy()).boxed()
            } else {
                Just(None).boxed()
            };
            let capabilities =
                prop::sample::subsequence(Capability::ALL.to_vec(), 0..=41).prop_shuffle();
            (
                Just(namespaces),
                hostname,
                environment_strategy(),
                capabilities,
                network,
                prop::option::of(cgroups_strategy()),
            )
                .prop_map(
                    |(namespaces, hostname, environment, capabilities, network, cgroups)| Config {
                        hostname,
                        environment,
                        namespaces,
                        capabilities,
                        network,
                        cgroups,
                    },
                )
        })
    }

    /// Strings that reach deep into validation when they land in the right place.
    const INTERESTING: &[&str] = &[
        "",
        "koye",
        "-koye",
        "HOME=/",
        "=x",
        "NEWNS",
        "NEWNET",
        "NEWUTS",
        "NEWMNT",
        "SYS_ADMIN",
        "CAP_SYS_ADMIN",
        "172.17.0.100/16",
        "172.17.42.1",
        "172.17.0.0/16",
        "10.0.0.1",
        "1.2.3.4/99",
        "docker0",
        "docker",
        "../escape",
        "/abs",
        "a//b",
        "\u{0}",
        "é",
    ];

    fn json_strategy() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(INTERESTING).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        let keys: Vec<&str> = TOP_FIELDS
            .iter()
            .chain(&NETWORK_FIELDS)
            .chain(&CGROUPS_FIELDS)
            .copied()
            .chain(["hostnme", "", "é"])
            .collect();
        leaf.prop_recursive(4, 48, 8, move |inner| {
            let key = prop::sample::select(keys.clone()).prop_map(String::from);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    /// Top-level objects with the right keys, so values reach their checks.
    fn config_like_strategy() -> impl Strategy<Value = String> {
        let key = prop::sample::select(TOP_FIELDS.to_vec());
        prop::collection::vec((key, json_strategy()), 0..7).prop_map(|entries| {
            let object: serde_json::Map<_, _> = entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            serde_json::Value::Object(object).to_string()
        })
    }

    /// Every outcome of parsing: a config that round-trips, or a one-line error for the file.
    fn check_outcome(text: &str) {
        match read(text) {
            Ok(config) => assert_eq!(read(&config.to_json()).unwrap(), config),
            Err(error) => {
                let message = error.to_string();
                assert!(message.starts_with("./container.json: "), "{message}");
                assert!(!message.contains('\n'), "{message}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_valid_config_survives_a_json_round_trip(config in config_strategy()) {
            let json = config.to_json();
            prop_assert_eq!(read(&json).map_err(|e| e.to_string()), Ok(config));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            check_outcome(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn json_token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", "\"hostname\"", "\"network\"", "\"cgroups\"", "\"namespaces\"",
            "\"NEWNET\"", "\"address\"", "\"10.0.0.1/8\"", "1500", "-1", "1e999", "0.5", "null", "true",
            "\"\\ud800\"", " ", "\n",
        ]), 0..48)) {
            check_outcome(&tokens.concat());
        }

        #[test]
        fn config_shaped_json_never_panics(text in config_like_strategy()) {
            check_outcome(&text);
        }

        #[test]
        fn a_valid_config_with_one_value_replaced_never_panics(
            config in config_strategy(),
            field in prop::sample::select(vec!["hostname", "environment", "namespaces", "capabilities", "network", "cgroups"]),
            replacement in json_strategy(),
        ) {
            let mut json: serde_json::Value = serde_json::from_str(&config.to_json()).unwrap();
            json[field] = replacement;
            check_outcome(&json.to_string());
        }
    }
}
