//! `linux`: namespaces, device nodes, the cgroup and its limits, the mount and path
//! protections, sysctls, personality; what nsinit cannot honour refused by its path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::super::error::{ErrorKind, Hint};
use super::super::json::{
    array, child, closest, invalid, item, string, wrong_type, Checked, Invalid, Json,
};
use super::mounts::propagation;
use super::read::{absolute, one_of, text, uint32, unsigned, Fields, Ignored};
use super::resources::{resources, Resources};
use super::seccomp::{seccomp, Compiler};
use crate::plan::idmap::{self, IdMap, IdMaps};
use crate::plan::{
    CgroupPath, DeviceKind, DeviceNode, Namespace, NamespacePlan, Personality, Propagation,
};
use crate::seccomp::Filter;

const MAPPING_FIELDS: [&str; 3] = ["containerID", "hostID", "size"];
const LINUX_FIELDS: [&str; 16] = [
    "uidMappings",
    "gidMappings",
    "sysctl",
    "resources",
    "cgroupsPath",
    "namespaces",
    "devices",
    "seccomp",
    "rootfsPropagation",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
    "intelRdt",
    "personality",
    "timeOffsets",
    "netDevices",
];
const NAMESPACE_FIELDS: [&str; 2] = ["type", "path"];
const DEVICE_FIELDS: [&str; 7] = ["path", "type", "major", "minor", "fileMode", "uid", "gid"];
const PERSONALITY_FIELDS: [&str; 2] = ["domain", "flags"];

/// runtime-spec's namespace types, in its order.
pub const NAMESPACE_TYPES: [&str; 8] = [
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];
const PROPAGATIONS: [&str; 8] = [
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];
const PERSONALITY_DOMAINS: [&str; 2] = ["LINUX", "LINUX32"];

/// The largest major and minor a `dev_t` holds in the kernel (12 and 20 bits).
const MAX_MAJOR: u64 = (1 << 12) - 1;
const MAX_MINOR: u64 = (1 << 20) - 1;
/// Permission bits of a device node's mode, and its file type bits.
const PERMISSION_BITS: u32 = 0o7777;
const TYPE_BITS: u32 = 0o170_000;

/// `linux` as the plan takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Linux {
    /// In file order; `user` and `time` are refused, `mount` cannot be joined by path.
    pub namespaces: Vec<NamespacePlan>,
    /// Device nodes to make in the container's `/dev`, as listed (`lower` adds the defaults).
    pub devices: Vec<DeviceNode>,
    /// `cgroupsPath`: absolute is below each hierarchy's root, relative below nsinit's own
    /// group; absent: `lower` makes it `<id>` below nsinit's own group, as runc does.
    pub cgroups_path: Option<CgroupPath>,
    pub resources: Resources,
    pub rootfs_propagation: Option<Propagation>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub sysctl: BTreeMap<String, String>,
    pub personality: Option<Personality>,
    /// `seccomp`, compiled.
    pub seccomp: Option<Filter>,
    /// `uidMappings` and `gidMappings`, for a new user namespace.
    pub id_maps: Option<IdMaps>,
}

impl Linux {
    /// Whether the container gets a namespace of this kind of its own (new or joined).
    pub fn has(&self, kind: Namespace) -> bool {
        self.namespaces.iter().any(|ns| ns.kind == kind)
    }
}

pub(super) fn linux(
    field: &str,
    value: &Json,
    ignored: &Ignored,
    compiler: Compiler<'_>,
) -> Checked<Linux> {
    let object = Fields::read(field, value, &LINUX_FIELDS, ignored)?;
    object.refuse("timeOffsets", || ErrorKind::NotYet {
        what: "time namespaces",
    })?;
    object.refuse("intelRdt", || ErrorKind::Unsupported {
        why: "nsinit has no Intel RDT (resctrl) support",
    })?;
    object.refuse("netDevices", || ErrorKind::Unsupported {
        why: "nsinit moves no network devices into the container",
    })?;
    let seccomp = object
        .optional("seccomp", |f, v| seccomp(f, v, compiler))?
        .flatten();
    object.optional("mountLabel", |f, v| {
        let label = string(f, v)?;
        match label.is_empty() {
            true => Ok(()),
            false => invalid(
                f,
                ErrorKind::NotApplied {
                    value: label.to_string(),
                    what: "SELinux mount label",
                },
            ),
        }
    })?;
    let namespaces = object
        .optional("namespaces", |f, v| namespaces(f, v, ignored))?
        .unwrap_or_default();
    // Empty maps ask for nothing (Go writes `[]` for none).
    let maps = |name: &str| -> Checked<Option<Vec<IdMap>>> {
        let map = object.optional(name, |f, v| mappings(f, v, ignored))?;
        Ok(map.filter(|map| !map.is_empty()))
    };
    let (uids, gids) = (maps("uidMappings")?, maps("gidMappings")?);
    let new_user = namespaces
        .iter()
        .any(|ns| ns.kind == Namespace::User && ns.path.is_none());
    let id_maps = match (new_user, uids, gids) {
        (true, Some(uids), Some(gids)) => {
            for (name, map) in [("uidMappings", &uids), ("gidMappings", &gids)] {
                idmap::check(map).map_err(|(index, error)| Invalid {
                    field: index.map_or(object.path(name), |i| item(&object.path(name), i)),
                    kind: ErrorKind::IdMap(error),
                })?;
            }
            Some(IdMaps { uids, gids })
        }
        (true, uids, _) => {
            let missing = match uids {
                None => "uidMappings",
                Some(_) => "gidMappings",
            };
            return invalid(
                &object.path("namespaces"),
                ErrorKind::MapsRequired { missing },
            );
        }
        (false, None, None) => None,
        (false, uids, _) => {
            let name = match uids {
                Some(_) => "uidMappings",
                None => "gidMappings",
            };
            return invalid(&object.path(name), ErrorKind::NoNamespace { kind: "user" });
        }
    };
    let sysctl = object
        .optional("sysctl", |f, v| sysctl(f, v, &namespaces))?
        .unwrap_or_default();
    let paths = |f: &str, v: &Json| -> Checked<Vec<String>> {
        array(f, v)?
            .iter()
            .enumerate()
            .map(|(i, path)| absolute(&item(f, i), path))
            .collect()
    };
    Ok(Linux {
        devices: object
            .optional("devices", |f, v| devices(f, v, ignored))?
            .unwrap_or_default(),
        cgroups_path: object.optional("cgroupsPath", cgroups_path)?.flatten(),
        resources: object
            .optional("resources", |f, v| resources(f, v, ignored))?
            .unwrap_or_default(),
        rootfs_propagation: object
            .optional("rootfsPropagation", |f, v| {
                if string(f, v)?.is_empty() {
                    return Ok(None);
                }
                Ok(propagation(PROPAGATIONS[one_of(f, v, &PROPAGATIONS)?]))
            })?
            .flatten(),
        masked_paths: object.optional("maskedPaths", paths)?.unwrap_or_default(),
        readonly_paths: object.optional("readonlyPaths", paths)?.unwrap_or_default(),
        personality: object.optional("personality", |f, v| personality(f, v, ignored))?,
        namespaces,
        sysctl,
        seccomp,
        id_maps,
    })
}

/// `uidMappings` or `gidMappings`: `[{"containerID": 0, "hostID": 100000, "size": 65536}]`.
fn mappings(field: &str, value: &Json, ignored: &Ignored) -> Checked<Vec<IdMap>> {
    array(field, value)?
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let at = item(field, i);
            let object = Fields::read(&at, line, &MAPPING_FIELDS, ignored)?;
            Ok(IdMap {
                container_id: object.required("containerID", uint32)?,
                host_id: object.required("hostID", uint32)?,
                size: object.required("size", uint32)?,
            })
        })
        .collect()
}

fn namespaces(field: &str, value: &Json, ignored: &Ignored) -> Checked<Vec<NamespacePlan>> {
    let mut found: Vec<NamespacePlan> = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let object = Fields::read(&here, entry, &NAMESPACE_FIELDS, ignored)?;
        let kind = object.required("type", namespace_type)?;
        let path = object
            .optional("path", |f, v| {
                let path = text(f, v)?;
                match path.is_empty() {
                    true => Ok(None),
                    false => absolute(f, v).map(Some),
                }
            })?
            .flatten();
        if let Some(first) = found.iter().position(|ns| ns.kind == kind) {
            return invalid(
                &child(&here, "type"),
                ErrorKind::ListedTwice {
                    name: oci_name(kind).to_string(),
                    first: item(field, first),
                },
            );
        }
        if kind == Namespace::Mount && path.is_some() {
            return invalid(&child(&here, "path"), ErrorKind::JoinMount);
        }
        found.push(NamespacePlan {
            kind,
            path: path.map(PathBuf::from),
        });
    }
    Ok(found)
}

fn namespace_type(field: &str, value: &Json) -> Checked<Namespace> {
    let name = string(field, value)?;
    let kind = match name {
        "pid" => Namespace::Pid,
        "network" => Namespace::Net,
        "mount" => Namespace::Mount,
        "ipc" => Namespace::Ipc,
        "uts" => Namespace::Uts,
        "cgroup" => Namespace::Cgroup,
        "user" => Namespace::User,
        "time" => {
            return invalid(
                field,
                ErrorKind::NotYet {
                    what: "time namespaces",
                },
            )
        }
        _ => {
            // People reach for the /proc/PID/ns name (`net`, `mnt`) or the clone flag.
            let spellings = NAMESPACE_TYPES.iter().flat_map(|&oci| {
                let other: Vec<(String, &'static str)> = Namespace::ALL
                    .iter()
                    .filter(|ns| oci_name(**ns) == oci)
                    .flat_map(|ns| {
                        [
                            (ns.proc_name().to_string(), oci),
                            (ns.json_name().to_string(), oci),
                            (format!("CLONE_{}", ns.json_name()), oci),
                        ]
                    })
                    .collect();
                std::iter::once((oci.to_string(), oci)).chain(other)
            });
            let hint =
                closest(name, spellings).map_or(Hint::OneOf(&NAMESPACE_TYPES), Hint::DidYouMean);
            return invalid(
                field,
                ErrorKind::UnknownNamespace {
                    name: name.to_string(),
                    hint,
                },
            );
        }
    };
    Ok(kind)
}

/// runtime-spec's name of a namespace kind.
pub(super) fn oci_name(kind: Namespace) -> &'static str {
    match kind {
        Namespace::Pid => "pid",
        Namespace::Net => "network",
        Namespace::Mount => "mount",
        Namespace::Ipc => "ipc",
        Namespace::Uts => "uts",
        Namespace::User => "user",
        Namespace::Cgroup => "cgroup",
    }
}

fn devices(field: &str, value: &Json, ignored: &Ignored) -> Checked<Vec<DeviceNode>> {
    let mut nodes: Vec<DeviceNode> = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let node = device(&here, entry, ignored)?;
        if let Some(first) = nodes.iter().position(|n| n.path == node.path) {
            return invalid(
                &child(&here, "path"),
                ErrorKind::ListedTwice {
                    name: node.path,
                    first: item(field, first),
                },
            );
        }
        nodes.push(node);
    }
    Ok(nodes)
}

/// One device node: under `/dev`, type `c` (or `u`, unbuffered char), `b` or `p`; major and
/// minor required but for `p`; `fileMode` 0666 by default, and type bits in it (which
/// podman sends) must agree with `type`.
fn device(field: &str, value: &Json, ignored: &Ignored) -> Checked<DeviceNode> {
    let object = Fields::read(field, value, &DEVICE_FIELDS, ignored)?;
    let path = object.required("path", absolute)?;
    if !path.starts_with("/dev/") {
        let value = object.required("path", text)?;
        return invalid(&object.path("path"), ErrorKind::NotUnderDev { value });
    }
    if path == "/dev/ptmx" {
        return invalid(
            &object.path("path"),
            ErrorKind::Unsupported {
                why: "the container's /dev/ptmx is a symlink to its own pts/ptmx, as runtime-spec's default devices have it",
            },
        );
    }
    let letter = object.required("type", |f, v| string(f, v).map(str::to_string))?;
    let (kind, type_bits) = match letter.as_str() {
        "c" | "u" => (DeviceKind::Char, libc::S_IFCHR),
        "b" => (DeviceKind::Block, libc::S_IFBLK),
        "p" => (DeviceKind::Fifo, libc::S_IFIFO),
        _ => {
            return invalid(
                &object.path("type"),
                ErrorKind::DeviceType { value: letter },
            )
        }
    };
    let (major, minor) = match kind {
        DeviceKind::Fifo => (0, 0),
        _ => (
            object.required("major", |f, v| unsigned(f, v, MAX_MAJOR))?,
            object.required("minor", |f, v| unsigned(f, v, MAX_MINOR))?,
        ),
    };
    let mode = match object.optional("fileMode", uint32)? {
        None => 0o666,
        Some(mode) if mode & TYPE_BITS == 0 || mode & TYPE_BITS == type_bits => {
            mode & PERMISSION_BITS
        }
        Some(mode) => {
            return invalid(
                &object.path("fileMode"),
                ErrorKind::DeviceModeType {
                    mode: u64::from(mode),
                    kind: letter,
                },
            )
        }
    };
    Ok(DeviceNode {
        path,
        kind,
        major,
        minor,
        mode,
        uid: object.optional("uid", uint32)?.unwrap_or(0),
        gid: object.optional("gid", uint32)?.unwrap_or(0),
    })
}

/// `cgroupsPath`: `None` for the empty string. A systemd `slice:prefix:name` is refused, as
/// are `.` and `..` components and the root itself; empty components are dropped.
fn cgroups_path(field: &str, value: &Json) -> Checked<Option<CgroupPath>> {
    let path = text(field, value)?;
    if path.is_empty() {
        return Ok(None);
    }
    if path.contains(':') {
        return invalid(field, ErrorKind::SystemdCgroup { value: path });
    }
    for component in [".", ".."] {
        if path.split('/').any(|c| c == component) {
            return invalid(
                field,
                ErrorKind::DotComponent {
                    value: path,
                    component,
                },
            );
        }
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() {
        return invalid(field, ErrorKind::CgroupRoot { value: path });
    }
    let joined = PathBuf::from(parts.join("/"));
    Ok(Some(match path.starts_with('/') {
        true => CgroupPath::Root(PathBuf::from("/").join(joined)),
        false => CgroupPath::Caller(joined),
    }))
}

/// The namespace a sysctl belongs to (runc's list); `None` for a host-wide one.
fn sysctl_namespace(key: &str) -> Option<Namespace> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(Namespace::Ipc)
    } else if key.starts_with("net.") {
        Some(Namespace::Net)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(Namespace::Uts)
    } else {
        None
    }
}

/// `sysctl`: each key one of a namespace the container has of its own, since the write
/// lands in the namespace the container is in; host-wide keys are refused.
fn sysctl(
    field: &str,
    value: &Json,
    namespaces: &[NamespacePlan],
) -> Checked<BTreeMap<String, String>> {
    let Json::Object(entries) = value else {
        return wrong_type(field, "an object", value);
    };
    let mut sysctl = BTreeMap::new();
    for (key, value) in entries {
        let here = child(field, key);
        let dotted = key.replace('/', ".");
        let bad = key.is_empty()
            || key.starts_with(['/', '.'])
            || dotted
                .split('.')
                .any(|part| part.is_empty() || part == "..")
            || key.contains('\0');
        if bad {
            return invalid(&here, ErrorKind::BadSysctlKey { value: key.clone() });
        }
        match sysctl_namespace(&dotted) {
            None => {
                return invalid(&here, ErrorKind::SysctlNotNamespaced { key: key.clone() });
            }
            Some(kind) if !namespaces.iter().any(|ns| ns.kind == kind) => {
                return invalid(
                    &here,
                    ErrorKind::SysctlNeedsNamespace {
                        key: key.clone(),
                        kind: oci_name(kind),
                    },
                );
            }
            Some(_) => {}
        }
        let value = text(&here, value)?;
        if sysctl.insert(key.clone(), value).is_some() {
            return invalid(field, ErrorKind::DuplicateField { name: key.clone() });
        }
    }
    Ok(sysctl)
}

fn personality(field: &str, value: &Json, ignored: &Ignored) -> Checked<Personality> {
    let object = Fields::read(field, value, &PERSONALITY_FIELDS, ignored)?;
    object.refuse("flags", || ErrorKind::Unsupported {
        why: "runtime-spec defines no personality flags",
    })?;
    let domain = object.required("domain", |f, v| one_of(f, v, &PERSONALITY_DOMAINS))?;
    Ok(match domain {
        0 => Personality::Linux,
        _ => Personality::Linux32,
    })
}
