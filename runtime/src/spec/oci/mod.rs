//! An OCI bundle's `config.json` (runtime-spec 1.0 to 1.2, Linux): read on the project's
//! JSON tree, checked, and lowered to a [`Plan`](crate::plan::Plan), purely.
//!
//! [`parse`] turns the text into a [`Config`] or one [`ConfigError`] naming the file, the
//! field path (`linux.resources.memory.limit`, `mounts[3].options[1]`) and the value.
//! runtime-spec's rules for readers are followed: an unknown property is ignored (its path
//! is kept in [`Config::ignored`] for the caller to log), `null` is read as absent (as Go,
//! which writes these files, reads it), and a known property with a value nsinit cannot
//! honour is an error, never skipped; a field nsinit has no counterpart for is refused unless
//! it asks for nothing (`0`, `false`, `""`, `[]`, `{}`). [`lower`] adds what the file leaves
//! to the runtime: paths made absolute against the bundle, the default devices and their
//! cgroup rules, the container's cgroup when `cgroupsPath` is absent.
//!
//! The config is kept in the plan's vocabulary wherever the plan has one ([`Process`],
//! [`Mount`], [`Hooks`], ...): what `parse` accepts, the engine can do.

mod linux;
mod lower;
mod mounts;
mod process;
mod read;
mod resources;
mod seccomp;
pub use seccomp::Compiler;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use linux::{Linux, NAMESPACE_TYPES};
pub use lower::{lower, Site};
pub use mounts::MOUNT_TYPES;
pub use process::RLIMITS;
pub use resources::Resources;

use super::error::{ConfigError, ErrorKind};
use super::json::{array, child, invalid, item, syntax, wrong_type, Checked, Invalid, Json};
use crate::plan::{Hook, Hooks, Mount, Namespace, Process};
use read::{absolute, environment, integer_positive, text, texts, Fields, Ignored};

/// `HOST_NAME_MAX`: the longest hostname (and NIS domain name) the kernel takes.
const HOSTNAME_MAX: usize = 64;

const TOP_FIELDS: [&str; 9] = [
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
];
const ROOT_FIELDS: [&str; 2] = ["path", "readonly"];
const HOOK_POINTS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];
const HOOK_FIELDS: [&str; 4] = ["path", "args", "env", "timeout"];

/// A bundle's `config.json`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file, as the caller named it (errors of `lower` name it too).
    path: PathBuf,
    /// `ociVersion`, as written (1.0.0 to 1.2.x, pre-releases included).
    pub oci_version: String,
    /// `process`: absent is allowed at create; `start` needs it.
    pub process: Option<Process>,
    pub root: Root,
    /// Needs a UTS namespace of the container's own.
    pub hostname: Option<String>,
    /// Needs a UTS namespace of the container's own.
    pub domainname: Option<String>,
    /// In file order; a bind mount's source as written (relative to the bundle or absolute).
    pub mounts: Vec<Mount>,
    pub hooks: Hooks,
    /// `annotations`: not part of the plan; the caller keeps them (state, hooks).
    pub annotations: BTreeMap<String, String>,
    /// `linux`; all empty when absent (every namespace then shared with the caller, which
    /// [`parse`] refuses: nsinit needs a new mount namespace).
    pub linux: Linux,
    /// The field paths of the unknown properties ignored, in the order they were met (other
    /// platforms' sections, `process.user.username`, newer runtime-spec fields).
    pub ignored: Vec<String>,
}

impl Config {
    /// The file, as the caller named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the process asks for a terminal (`process.terminal`).
    pub fn terminal(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.terminal)
    }
}

/// `root`: the rootfs as the file names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Root {
    /// Relative to the bundle, or absolute.
    pub path: PathBuf,
    /// Remount the rootfs read-only once everything is mounted in it.
    pub readonly: bool,
}

/// Read `config.json` text. `path` only names the file in errors, as given.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    parse_with(path, text, Compiler::Here)
}

/// [`parse`], with `linux.seccomp` compiled by `compiler`.
pub fn parse_with(path: &Path, text: &str, compiler: Compiler<'_>) -> Result<Config, ConfigError> {
    let error = |Invalid { field, kind }| ConfigError::new(path, field, kind);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json: Json = serde_json::from_str(text).map_err(|e| error(syntax(&e)))?;
    let ignored = Ignored::default();
    let mut config = read_config(&json, &ignored, compiler).map_err(error)?;
    config.path = path.to_path_buf();
    config.ignored = ignored.into_inner();
    Ok(config)
}

/// Read a process file (`nsinit-oci exec --process FILE`): the shape of `config.json`'s
/// `process`, its field paths relative to the file (`capabilities.bounding[2]`). Unknown
/// properties are ignored.
pub fn parse_process(path: &Path, text: &str) -> Result<Process, ConfigError> {
    let error = |Invalid { field, kind }| ConfigError::new(path, field, kind);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json: Json = serde_json::from_str(text).map_err(|e| error(syntax(&e)))?;
    process::process("", &json, &Ignored::default()).map_err(error)
}

/// Read a resources file (`nsinit-oci update --resources FILE`): the shape of `config.json`'s
/// `linux.resources`, its field paths relative to the file (`memory.limit`).
pub fn parse_resources(path: &Path, text: &str) -> Result<Resources, ConfigError> {
    let error = |Invalid { field, kind }| ConfigError::new(path, field, kind);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json: Json = serde_json::from_str(text).map_err(|e| error(syntax(&e)))?;
    resources::resources("", &json, &Ignored::default()).map_err(error)
}

fn read_config(json: &Json, ignored: &Ignored, compiler: Compiler<'_>) -> Checked<Config> {
    let top = Fields::read("", json, &TOP_FIELDS, ignored)?;
    let oci_version = top.required("ociVersion", oci_version)?;
    let linux = top
        .optional("linux", |f, v| linux::linux(f, v, ignored, compiler))?
        .unwrap_or_default();
    let uts_name = |f: &str, v: &Json| -> Checked<Option<String>> {
        let name = text(f, v)?;
        if name.is_empty() {
            return Ok(None);
        }
        if name.len() > HOSTNAME_MAX {
            return invalid(
                f,
                ErrorKind::TooLong {
                    value: name,
                    max: HOSTNAME_MAX,
                    what: "a hostname",
                },
            );
        }
        if !linux.has(Namespace::Uts) {
            return invalid(f, ErrorKind::NoNamespace { kind: "uts" });
        }
        Ok(Some(name))
    };
    let config = Config {
        path: PathBuf::new(),
        oci_version,
        process: top.optional("process", |f, v| process::process(f, v, ignored))?,
        root: top.required("root", |f, v| root(f, v, ignored))?,
        hostname: top.optional("hostname", uts_name)?.flatten(),
        domainname: top.optional("domainname", uts_name)?.flatten(),
        mounts: top
            .optional("mounts", |f, v| mounts::mounts(f, v, ignored))?
            .unwrap_or_default(),
        hooks: top
            .optional("hooks", |f, v| hooks(f, v, ignored))?
            .unwrap_or_default(),
        annotations: top
            .optional("annotations", annotations)?
            .unwrap_or_default(),
        ignored: Vec::new(),
        linux,
    };
    if !config
        .linux
        .namespaces
        .iter()
        .any(|ns| ns.kind == Namespace::Mount)
    {
        return invalid("linux.namespaces", ErrorKind::NoMountNamespace);
    }
    Ok(config)
}

/// `ociVersion`: SemVer 1.0.0 to 1.2.x, with any pre-release or build suffix (`1.0.2-dev`).
fn oci_version(field: &str, value: &Json) -> Checked<String> {
    let version = text(field, value)?;
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let numbers: Vec<&str> = core.split('.').collect();
    let decimal = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let readable = numbers.len() == 3
        && numbers.iter().all(|n| decimal(n))
        && numbers[0] == "1"
        && ["0", "1", "2"].contains(&numbers[1]);
    if !readable {
        return invalid(field, ErrorKind::UnsupportedVersion { value: version });
    }
    Ok(version)
}

fn root(field: &str, value: &Json, ignored: &Ignored) -> Checked<Root> {
    let object = Fields::read(field, value, &ROOT_FIELDS, ignored)?;
    let path = object.required("path", text)?;
    if path.is_empty() {
        return invalid(&object.path("path"), ErrorKind::Empty);
    }
    Ok(Root {
        path: PathBuf::from(path),
        readonly: object.optional("readonly", read::boolean)?.unwrap_or(false),
    })
}

fn hooks(field: &str, value: &Json, ignored: &Ignored) -> Checked<Hooks> {
    let object = Fields::read(field, value, &HOOK_POINTS, ignored)?;
    let list = |name: &'static str| -> Checked<Vec<Hook>> {
        Ok(object
            .optional(name, |f, v| {
                array(f, v)?
                    .iter()
                    .enumerate()
                    .map(|(i, h)| hook(&item(f, i), h, ignored))
                    .collect::<Checked<Vec<Hook>>>()
            })?
            .unwrap_or_default())
    };
    Ok(Hooks {
        prestart: list("prestart")?,
        create_runtime: list("createRuntime")?,
        create_container: list("createContainer")?,
        start_container: list("startContainer")?,
        poststart: list("poststart")?,
        poststop: list("poststop")?,
    })
}

/// One hook: an absolute path, its argv (with argv[0]), its exact environment, and a
/// timeout in seconds greater than zero.
fn hook(field: &str, value: &Json, ignored: &Ignored) -> Checked<Hook> {
    let object = Fields::read(field, value, &HOOK_FIELDS, ignored)?;
    Ok(Hook {
        path: object.required("path", absolute)?,
        args: object.optional("args", texts)?.unwrap_or_default(),
        env: object.optional("env", environment)?.unwrap_or_default(),
        timeout: object.optional("timeout", integer_positive)?,
    })
}

/// `annotations`: string values under non-empty keys, each key once.
fn annotations(field: &str, value: &Json) -> Checked<BTreeMap<String, String>> {
    let Json::Object(entries) = value else {
        return wrong_type(field, "an object", value);
    };
    let mut annotations = BTreeMap::new();
    for (key, value) in entries {
        let here = child(field, key);
        if key.is_empty() {
            return invalid(field, ErrorKind::EmptyKey);
        }
        let value = match value {
            Json::String(s) => s.clone(),
            other => return wrong_type(&here, "a string", other),
        };
        if annotations.insert(key.clone(), value).is_some() {
            return invalid(field, ErrorKind::DuplicateField { name: key.clone() });
        }
    }
    Ok(annotations)
}
