//! `mounts`: each entry becomes a plan [`Mount`]. A mount is a bind mount when its options
//! hold `bind` or `rbind` (runtime-spec) or its type is `bind`; its source stays as written
//! here (relative to the bundle or absolute) and is made absolute by `lower`.
//!
//! Options, in order, later ones winning (`ro` then `rw` is read-write), as runc reads them:
//! flags and their negations (`ro`/`rw`, `nosuid`/`suid`, `nodev`/`dev`, `noexec`/`exec`,
//! `sync`/`async`, `dirsync`, `relatime`/`norelatime`, `strictatime`/`nostrictatime`,
//! `noatime`/`atime`, `nodiratime`/`diratime`, `rro`/`rrw`, `defaults`, `tmpcopyup` on a
//! tmpfs), propagation
//! (`private`, `slave`, `shared`, `unbindable` and their `r` forms), `bind`/`rbind`. Flags
//! nsinit cannot set are refused. Anything else is filesystem data (`mode=755`,
//! `newinstance`, an unknown word alike), joined with `,` as runc does: the kernel judges it
//! when it mounts, and a bind mount, whose data the kernel ignores, refuses it here.

use std::path::PathBuf;

use super::super::error::{ErrorKind, Hint};
use super::super::json::{array, invalid, item, string, Checked, Json};
use super::read::{clean, text, texts, Fields, Ignored};
use crate::plan::{Mount, MountOption, MountSource, Propagation, PropagationKind};

const MOUNT_FIELDS: [&str; 6] = [
    "destination",
    "type",
    "source",
    "options",
    "uidMappings",
    "gidMappings",
];

/// The filesystem types a mount may name, besides bind mounts.
pub const MOUNT_TYPES: [&str; 9] = [
    "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "bind", "none",
];

/// A per-mount flag option: set (`true`) or cleared (`false`).
const FLAGS: [(&str, MountOption, bool); 21] = [
    ("ro", MountOption::ReadOnly, true),
    ("rw", MountOption::ReadOnly, false),
    ("nosuid", MountOption::NoSuid, true),
    ("suid", MountOption::NoSuid, false),
    ("nodev", MountOption::NoDev, true),
    ("dev", MountOption::NoDev, false),
    ("noexec", MountOption::NoExec, true),
    ("exec", MountOption::NoExec, false),
    ("sync", MountOption::Sync, true),
    ("async", MountOption::Sync, false),
    ("dirsync", MountOption::DirSync, true),
    ("relatime", MountOption::RelAtime, true),
    ("norelatime", MountOption::RelAtime, false),
    ("strictatime", MountOption::StrictAtime, true),
    ("nostrictatime", MountOption::StrictAtime, false),
    ("noatime", MountOption::NoAtime, true),
    ("atime", MountOption::NoAtime, false),
    ("nodiratime", MountOption::NoDirAtime, true),
    ("diratime", MountOption::NoDirAtime, false),
    ("rro", MountOption::RecursiveReadOnly, true),
    ("tmpcopyup", MountOption::CopyUp, true),
];

/// Options that ask for nothing nsinit does not already do: the kernel's defaults.
const NO_OPS: [&str; 7] = [
    "defaults",
    "rrw",
    "nomand",
    "nolazytime",
    "symfollow",
    "noiversion",
    "loud",
];

/// Flags runc knows and nsinit cannot set, with why. (`tmpcopyup` is a flag above: the
/// engine copies what a new tmpfs covers into it.)
const REFUSED: [(&str, &str); 8] = [
    ("mand", "mandatory locking is gone from Linux (5.15)"),
    ("lazytime", "nsinit does not set MS_LAZYTIME"),
    ("nosymfollow", "nsinit does not set MS_NOSYMFOLLOW"),
    ("iversion", "nsinit does not set MS_I_VERSION"),
    ("silent", "nsinit does not set MS_SILENT"),
    (
        "remount",
        "nsinit mounts anew; it does not remount an existing mount",
    ),
    ("idmap", "ID-mapped mounts are not supported yet"),
    ("ridmap", "ID-mapped mounts are not supported yet"),
];

/// runc's other recursive attributes (`mount_setattr` with `AT_RECURSIVE`).
const RECURSIVE_ATTRS: [&str; 16] = [
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

const PROPAGATIONS: [(&str, PropagationKind, bool); 8] = [
    ("private", PropagationKind::Private, false),
    ("rprivate", PropagationKind::Private, true),
    ("slave", PropagationKind::Slave, false),
    ("rslave", PropagationKind::Slave, true),
    ("shared", PropagationKind::Shared, false),
    ("rshared", PropagationKind::Shared, true),
    ("unbindable", PropagationKind::Unbindable, false),
    ("runbindable", PropagationKind::Unbindable, true),
];

/// The propagation a name (`rslave`) stands for.
pub(super) fn propagation(name: &str) -> Option<Propagation> {
    PROPAGATIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, kind, recursive)| Propagation { kind, recursive })
}

pub(super) fn mounts(field: &str, value: &Json, ignored: &Ignored) -> Checked<Vec<Mount>> {
    array(field, value)?
        .iter()
        .enumerate()
        .map(|(i, entry)| mount(&item(field, i), entry, ignored))
        .collect()
}

/// What the options say, read in order.
#[derive(Default)]
struct Options {
    flags: Vec<MountOption>,
    propagation: Option<Propagation>,
    /// `Some(recursive)` when `bind` or `rbind` is among them.
    bind: Option<bool>,
    data: Vec<String>,
}

fn options(field: &str, value: &Json) -> Checked<Options> {
    let mut options = Options::default();
    for (i, entry) in texts(field, value)?.into_iter().enumerate() {
        let here = item(field, i);
        let word = entry.as_str();
        if let Some(&(_, flag, set)) = FLAGS.iter().find(|(n, _, _)| *n == word) {
            options.flags.retain(|&f| f != flag);
            if set {
                options.flags.push(flag);
            }
        } else if let Some(p) = propagation(word) {
            options.propagation = Some(p);
        } else if word == "bind" || word == "rbind" {
            options.bind = Some(options.bind == Some(true) || word == "rbind");
        } else if NO_OPS.contains(&word) {
            // The kernel's default already.
        } else if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == word) {
            return refused(&here, word, why);
        } else if RECURSIVE_ATTRS.contains(&word) {
            return refused(
                &here,
                word,
                "recursive mount attributes other than rro are not supported",
            );
        } else {
            options.data.push(entry);
        }
    }
    Ok(options)
}

fn refused<T>(field: &str, option: &str, why: &'static str) -> Checked<T> {
    invalid(
        field,
        ErrorKind::MountOptionRefused {
            option: option.to_string(),
            why,
        },
    )
}

fn mount(field: &str, value: &Json, ignored: &Ignored) -> Checked<Mount> {
    let object = Fields::read(field, value, &MOUNT_FIELDS, ignored)?;
    for name in ["uidMappings", "gidMappings"] {
        object.refuse(name, || ErrorKind::NotYet {
            what: "ID-mapped mounts",
        })?;
    }
    // runtime-spec 1.1: a relative destination is relative to "/" (deprecated, still read).
    let destination = object.required("destination", text)?;
    if destination.is_empty() {
        return invalid(&object.path("destination"), ErrorKind::Empty);
    }
    let destination = clean(&format!("/{destination}"));
    let fstype = object.optional("type", |f, v| string(f, v).map(str::to_string))?;
    let source = object.optional("source", text)?;
    let options = object.optional("options", options)?.unwrap_or_default();
    let data = (!options.data.is_empty()).then(|| options.data.join(","));
    let mut flags = options.flags;
    let tmpfs = options.bind.is_none() && fstype.as_deref() == Some("tmpfs");
    if flags.contains(&MountOption::CopyUp) && !tmpfs {
        let why = "only a tmpfs is filled with what it covers";
        return refused(&object.path("options"), "tmpcopyup", why);
    }

    let bind = match (options.bind, fstype.as_deref()) {
        (Some(recursive), _) => Some(recursive),
        (None, Some("bind")) => Some(false),
        _ => None,
    };
    let source = match bind {
        Some(recursive) => {
            if let Some(data) = data {
                return invalid(&object.path("options"), ErrorKind::DataOnBind { data });
            }
            let path = object.required("source", text)?;
            if path.is_empty() {
                return invalid(&object.path("source"), ErrorKind::Empty);
            }
            return Ok(Mount {
                destination,
                source: MountSource::Bind {
                    path: PathBuf::from(path),
                    recursive,
                },
                options: flags,
                propagation: options.propagation,
                data: None,
            });
        }
        None => match fstype.as_deref() {
            None | Some("") => {
                return invalid(field, ErrorKind::MissingField { name: "type" });
            }
            Some("cgroup" | "cgroup2") => MountSource::Cgroup,
            Some(t @ ("proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue")) => MountSource::Fs {
                fstype: t.to_string(),
                source: source.filter(|s| !s.is_empty()).unwrap_or_else(|| t.into()),
            },
            Some(other) => {
                let hint = match other {
                    "none" => Hint::See(
                        "a mount of type \"none\" needs \"bind\" or \"rbind\" in its options",
                    ),
                    _ => Hint::OneOf(&MOUNT_TYPES),
                };
                return invalid(
                    &object.path("type"),
                    ErrorKind::UnsupportedMountType {
                        value: other.to_string(),
                        hint,
                    },
                );
            }
        },
    };
    // A new filesystem has no submounts yet: `rro` is `ro` for it.
    if flags.contains(&MountOption::RecursiveReadOnly) {
        flags.retain(|&f| f != MountOption::RecursiveReadOnly && f != MountOption::ReadOnly);
        flags.push(MountOption::ReadOnly);
    }
    Ok(Mount {
        destination,
        source,
        options: flags,
        propagation: options.propagation,
        data,
    })
}
