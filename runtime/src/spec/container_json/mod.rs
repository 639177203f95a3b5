//! `container.json`, the seed's dialect: its model, parsing and validation, no I/O.
//!
//! [`parse`] turns the text of a `container.json` into a [`Config`], or into one
//! [`ConfigError`] naming the file, the field path (`network.address`, `namespaces[3]`) and the
//! offending value. The text is first read into a JSON tree that keeps object keys in file
//! order, duplicates included; then each field is checked; rules that tie fields together
//! (`network` needs `NEWNET`) come last. Every message is produced by one [`ErrorKind`] variant.
//! [`lower`] turns a config into the engine's [`Plan`](crate::plan::Plan).
//!
//! [`Config::to_json`] writes the same shape back, so `parse(to_json(c)) == c`.

mod lower;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::ser::{Serialize, Serializer};

pub use lower::{lower, Site, MASKED_PATHS, READONLY_PATHS};

use super::error::{ConfigError, ErrorKind, Hint};
use super::json::{
    array, child, closest, integer, invalid, item, string, syntax, wrong_type, Checked, Invalid,
    Json, Object,
};
use crate::cgroups::MIN_MEMORY;
use crate::plan::idmap::{self, IdMap};
use crate::plan::{Capability, Namespace, Network, DEFAULT_MTU, MTU_RANGE};

/// `HOST_NAME_MAX`: the longest hostname `sethostname` takes.
const HOSTNAME_MAX: usize = 64;
/// `IFNAMSIZ - 1`: the longest interface name, without its NUL.
const IFNAME_MAX: usize = 15;
/// `NAME_MAX`: the longest directory name, hence cgroup path component.
const CGROUP_COMPONENT_MAX: usize = 255;
/// cgroup v1 `cpu.shares` bounds (`MIN_SHARES`, `MAX_SHARES` in the kernel's scheduler).
const CPU_SHARES_RANGE: RangeInclusive<u64> = 2..=262_144;

const TOP_FIELDS: [&str; 9] = [
    "hostname",
    "environment",
    "namespaces",
    "capabilities",
    "network",
    "cgroups",
    "security",
    "uid_mappings",
    "gid_mappings",
];
const MAPPING_FIELDS: [&str; 3] = ["container_id", "host_id", "size"];
const NETWORK_FIELDS: [&str; 4] = ["address", "gateway", "bridge", "mtu"];
const CGROUPS_FIELDS: [&str; 5] = ["name", "parent", "memory", "memory_swap", "cpu_shares"];
const SECURITY_FIELDS: [&str; 5] = [
    "masked_paths",
    "readonly_paths",
    "devices",
    "seccomp",
    "no_new_privileges",
];

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
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "network_json"
    )]
    pub network: Option<Network>,
    /// The cgroup the container runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Cgroups>,
    /// Which of the protections every container gets by default are on.
    #[serde(skip_serializing_if = "Security::is_default")]
    pub security: Security,
    /// With `NEWUSER`: the host uids of the container's uids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMap>,
    /// With `NEWUSER`: the host gids of the container's gids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMap>,
}

/// The protections a container gets unless its `security` object turns one off. Each is
/// on when absent: `{}` is the safe default, and opting out is written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Security {
    /// `/proc/kcore`, `/proc/keys`, `/sys/firmware`, ... hidden ([`MASKED_PATHS`]).
    pub masked_paths: bool,
    /// `/proc/sys`, `/proc/sysrq-trigger`, ... read-only ([`READONLY_PATHS`]).
    pub readonly_paths: bool,
    /// Only the container's own `/dev` nodes open: the rootfs is bound `nodev`, and a
    /// devices cgroup allowlist applies wherever the container has a cgroup.
    pub devices: bool,
    /// The default seccomp filter.
    pub seccomp: bool,
    /// `no_new_privs`: setuid binaries and file capabilities grant nothing.
    pub no_new_privileges: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            masked_paths: true,
            readonly_paths: true,
            devices: true,
            seccomp: true,
            no_new_privileges: true,
        }
    }
}

impl Security {
    fn is_default(&self) -> bool {
        *self == Security::default()
    }
}

/// `network` in the shape `container.json` writes it: address and prefix length are one
/// string.
fn network_json<S: Serializer>(
    network: &Option<Network>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(serde::Serialize)]
    struct Shape<'a> {
        address: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        gateway: Option<String>,
        bridge: &'a str,
        mtu: u32,
    }
    let Some(network) = network else {
        return serializer.serialize_none();
    };
    Shape {
        address: format!("{}/{}", network.address, network.prefix_len),
        gateway: network.gateway.map(|gateway| gateway.to_string()),
        bridge: &network.bridge,
        mtu: network.mtu,
    }
    .serialize(serializer)
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

/// Read `container.json` text. `path` only names the file in errors, as given.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let error = |Invalid { field, kind }| ConfigError::new(path, field, kind);
    // Editors on some systems start UTF-8 files with a byte order mark; it is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json: Json = serde_json::from_str(text).map_err(|e| error(syntax(&e)))?;
    read_config(&json).map_err(error)
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
        security: top.optional("security", security)?.unwrap_or_default(),
        uid_mappings: top.optional("uid_mappings", mappings)?.unwrap_or_default(),
        gid_mappings: top.optional("gid_mappings", mappings)?.unwrap_or_default(),
    };
    let needs = [
        ("hostname", config.hostname.is_some(), Namespace::Uts),
        ("network", config.network.is_some(), Namespace::Net),
        (
            "uid_mappings",
            !config.uid_mappings.is_empty(),
            Namespace::User,
        ),
        (
            "gid_mappings",
            !config.gid_mappings.is_empty(),
            Namespace::User,
        ),
    ];
    for (field, set, namespace) in needs {
        if set && !config.has(namespace) {
            return invalid(field, ErrorKind::NeedsNamespace { namespace });
        }
    }
    if config.has(Namespace::User) {
        for (missing, map) in [
            ("uid_mappings", &config.uid_mappings),
            ("gid_mappings", &config.gid_mappings),
        ] {
            if map.is_empty() {
                return invalid("namespaces", ErrorKind::MapsRequired { missing });
            }
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

/// `uid_mappings` or `gid_mappings`: `[{"container_id": 0, "host_id": 100000, "size": 65536}]`,
/// checked as the kernel will take it.
fn mappings(field: &str, value: &Json) -> Checked<Vec<IdMap>> {
    let map = array(field, value)?
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let at = item(field, i);
            let object = Object::read(&at, line, &MAPPING_FIELDS)?;
            Ok(IdMap {
                container_id: object.required("container_id", id)?,
                host_id: object.required("host_id", id)?,
                size: object.required("size", id)?,
            })
        })
        .collect::<Checked<Vec<IdMap>>>()?;
    idmap::check(&map).map_err(|(index, error)| Invalid {
        field: index.map_or(field.to_string(), |i| item(field, i)),
        kind: ErrorKind::IdMap(error),
    })?;
    Ok(map)
}

/// A uid, gid or count of them: 0 to 4294967295.
fn id(field: &str, value: &Json) -> Checked<u32> {
    let n = integer(field, value, "an integer from 0 to 4294967295")?;
    u32::try_from(n).or_else(|_| {
        invalid(
            field,
            ErrorKind::OutOfRange {
                value: n.to_string(),
                range: 0..=u64::from(u32::MAX),
            },
        )
    })
}

fn security(field: &str, value: &Json) -> Checked<Security> {
    let object = Object::read(field, value, &SECURITY_FIELDS)?;
    let on = |name| Ok(object.optional(name, boolean)?.unwrap_or(true));
    Ok(Security {
        masked_paths: on("masked_paths")?,
        readonly_paths: on("readonly_paths")?,
        devices: on("devices")?,
        seccomp: on("seccomp")?,
        no_new_privileges: on("no_new_privileges")?,
    })
}

fn boolean(field: &str, value: &Json) -> Checked<bool> {
    match value {
        Json::Bool(b) => Ok(*b),
        other => wrong_type(field, "true or false", other),
    }
}

fn cgroups(field: &str, value: &Json) -> Checked<Cgroups> {
    let object = Object::read(field, value, &CGROUPS_FIELDS)?;
    let name = object.required("name", cgroup_name)?;
    let parent = object.optional("parent", cgroup_path)?;
    let memory = object.optional("memory", memory)?;
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

/// A memory limit a container can start under: at least [`MIN_MEMORY`] bytes.
fn memory(field: &str, value: &Json) -> Checked<u64> {
    let bytes = positive(field, value)?;
    if bytes < MIN_MEMORY {
        return invalid(
            field,
            ErrorKind::TooLittleMemory {
                value: bytes,
                min: MIN_MEMORY,
            },
        );
    }
    Ok(bytes)
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
