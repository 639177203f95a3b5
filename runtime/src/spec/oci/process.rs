//! `process`: what runs in the container, as whom and with what privilege. The same shape
//! is a `runc exec --process` file, hence [`super::parse_process`].

use super::super::error::{ErrorKind, Hint};
use super::super::json::{array, child, closest, invalid, item, string, Checked, Json};
use super::read::{
    absolute, boolean, environment, signed, texts, uint32, uint64, unsigned, Fields, Ignored,
};
use crate::plan::{Capability, CapabilitySets, Process, Rlimit, User};

/// `process`'s properties (`commandLine`, Windows', is left to the unknown ones).
const PROCESS_FIELDS: [&str; 15] = [
    "terminal",
    "consoleSize",
    "user",
    "args",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "scheduler",
    "ioPriority",
    "execCPUAffinity",
];
const USER_FIELDS: [&str; 4] = ["uid", "gid", "umask", "additionalGids"];
const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];
const CONSOLE_FIELDS: [&str; 2] = ["height", "width"];
const RLIMIT_FIELDS: [&str; 3] = ["type", "hard", "soft"];

/// The `RLIMIT_*` names of Linux, numbered as in `<asm-generic/resource.h>` (index = number).
pub const RLIMITS: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// The process's OOM score adjustment, as `/proc/PID/oom_score_adj` takes it.
const OOM_SCORE_ADJ: (i64, i64) = (-1000, 1000);
/// The largest umask: permission bits only.
const UMASK_MAX: u32 = 0o777;

/// `process`. `consoleSize` is dropped without `terminal`, as runtime-spec says. Without
/// `capabilities` the process keeps none (runc would leave it all of its own).
pub(super) fn process(field: &str, value: &Json, ignored: &Ignored) -> Checked<Process> {
    let object = Fields::read(field, value, &PROCESS_FIELDS, ignored)?;
    object.refuse("scheduler", || ErrorKind::Unsupported {
        why: "nsinit sets no scheduling policy (sched_setattr)",
    })?;
    object.refuse("ioPriority", || ErrorKind::Unsupported {
        why: "nsinit sets no I/O priority (ioprio_set)",
    })?;
    object.refuse("execCPUAffinity", || ErrorKind::Unsupported {
        why: "nsinit sets no CPU affinity for the process",
    })?;
    for (name, what) in [
        ("apparmorProfile", "AppArmor profile"),
        ("selinuxLabel", "SELinux label"),
    ] {
        object.optional(name, |field, value| not_applied(field, value, what))?;
    }
    let terminal = object.optional("terminal", boolean)?.unwrap_or(false);
    let console_size = object.optional("consoleSize", |f, v| console_size(f, v, ignored))?;
    let args = object.required("args", args)?;
    Ok(Process {
        args,
        env: object.optional("env", environment)?.unwrap_or_default(),
        cwd: object.required("cwd", absolute)?,
        terminal,
        console_size: console_size.filter(|_| terminal),
        user: object.required("user", |f, v| user(f, v, ignored))?,
        capabilities: object
            .optional("capabilities", |f, v| capabilities(f, v, ignored))?
            .unwrap_or_default(),
        rlimits: object
            .optional("rlimits", |f, v| rlimits(f, v, ignored))?
            .unwrap_or_default(),
        no_new_privileges: object
            .optional("noNewPrivileges", boolean)?
            .unwrap_or(false),
        oom_score_adj: object
            .optional("oomScoreAdj", |f, v| {
                signed(f, v, OOM_SCORE_ADJ.0, OOM_SCORE_ADJ.1)
            })?
            .map(|n| n as i32),
    })
}

/// A security label or profile nsinit has no module for: empty is fine.
fn not_applied(field: &str, value: &Json, what: &'static str) -> Checked<()> {
    let value = string(field, value)?;
    if value.is_empty() {
        return Ok(());
    }
    invalid(
        field,
        ErrorKind::NotApplied {
            value: value.to_string(),
            what,
        },
    )
}

/// `args`: at least one, as runtime-spec requires on Linux.
fn args(field: &str, value: &Json) -> Checked<Vec<String>> {
    let args = texts(field, value)?;
    if args.is_empty() {
        return invalid(field, ErrorKind::Empty);
    }
    Ok(args)
}

/// `consoleSize` as (rows, columns).
fn console_size(field: &str, value: &Json, ignored: &Ignored) -> Checked<(u16, u16)> {
    let object = Fields::read(field, value, &CONSOLE_FIELDS, ignored)?;
    let side = |f: &str, v: &Json| unsigned(f, v, u16::MAX);
    Ok((
        object.required("height", side)?,
        object.required("width", side)?,
    ))
}

fn user(field: &str, value: &Json, ignored: &Ignored) -> Checked<User> {
    // `username` is Windows'.
    let object = Fields::read(field, value, &USER_FIELDS, ignored)?;
    let gids = |field: &str, value: &Json| -> Checked<Vec<u32>> {
        array(field, value)?
            .iter()
            .enumerate()
            .map(|(i, gid)| uint32(&item(field, i), gid))
            .collect()
    };
    Ok(User {
        uid: object.required("uid", uint32)?,
        gid: object.required("gid", uint32)?,
        additional_gids: object.optional("additionalGids", gids)?.unwrap_or_default(),
        umask: object.optional("umask", |f, v| unsigned(f, v, UMASK_MAX))?,
    })
}

fn capabilities(field: &str, value: &Json, ignored: &Ignored) -> Checked<CapabilitySets> {
    let object = Fields::read(field, value, &CAPABILITY_SETS, ignored)?;
    let set = |name| Ok(object.optional(name, capability_set)?.unwrap_or_default());
    Ok(CapabilitySets {
        bounding: set("bounding")?,
        effective: set("effective")?,
        permitted: set("permitted")?,
        inheritable: set("inheritable")?,
        ambient: set("ambient")?,
    })
}

/// A set of `CAP_*` names; one listed twice counts once. An unknown name is an error (runc
/// only warns): a capability the config counts on and nsinit does not know is a capability
/// the process would silently lack.
fn capability_set(field: &str, value: &Json) -> Checked<Vec<Capability>> {
    let mut set = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let name = string(&here, entry)?;
        let cap = match name.strip_prefix("CAP_").and_then(Capability::from_name) {
            Some(cap) => cap,
            None => {
                return invalid(
                    &here,
                    ErrorKind::UnknownCapability {
                        name: name.to_string(),
                        hint: capability_hint(name),
                    },
                )
            }
        };
        if !set.contains(&cap) {
            set.push(cap);
        }
    }
    Ok(set)
}

/// The `CAP_` spelling a near name (with or without the prefix, any case) meant.
fn capability_hint(name: &str) -> Hint {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if let Some(cap) = Capability::from_name(bare) {
        return Hint::DidYouMean(cap_name(cap));
    }
    let spellings = Capability::ALL.into_iter().flat_map(|cap| {
        let full = cap_name(cap);
        [(cap.name().to_string(), full), (full.to_string(), full)]
    });
    closest(name, spellings).map_or(
        Hint::See("names as in capabilities(7), like \"CAP_SYS_ADMIN\""),
        Hint::DidYouMean,
    )
}

/// `CAP_SYS_ADMIN` for `SysAdmin`: the names runtime-spec uses.
pub(super) fn cap_name(cap: Capability) -> &'static str {
    CAP_NAMES[usize::from(cap.number())]
}

/// The plan's capability names with `CAP_`, in kernel number order (a test holds the two
/// tables together).
pub(super) const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `rlimits`: each resource at most once (runtime-spec: a duplicate is an error), the soft
/// limit at most the hard one (`setrlimit` refuses it otherwise).
fn rlimits(field: &str, value: &Json, ignored: &Ignored) -> Checked<Vec<Rlimit>> {
    let mut limits: Vec<Rlimit> = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let object = Fields::read(&here, entry, &RLIMIT_FIELDS, ignored)?;
        let resource = object.required("type", rlimit_type)?;
        let hard = object.required("hard", uint64)?;
        let soft = object.required("soft", uint64)?;
        if let Some(first) = limits.iter().position(|l| l.resource == resource) {
            return invalid(
                &child(&here, "type"),
                ErrorKind::ListedTwice {
                    name: RLIMITS[resource as usize].to_string(),
                    first: item(field, first),
                },
            );
        }
        if soft > hard {
            return invalid(
                &child(&here, "soft"),
                ErrorKind::SoftAboveHard { soft, hard },
            );
        }
        limits.push(Rlimit {
            resource,
            soft,
            hard,
        });
    }
    Ok(limits)
}

fn rlimit_type(field: &str, value: &Json) -> Checked<u32> {
    let name = string(field, value)?;
    if let Some(number) = RLIMITS.iter().position(|&n| n == name) {
        return Ok(number as u32);
    }
    let upper = name.to_ascii_uppercase();
    let spellings = RLIMITS.iter().flat_map(|&full| {
        let bare = &full["RLIMIT_".len()..];
        [(full.to_string(), full), (bare.to_string(), full)]
    });
    let hint = match RLIMITS.iter().find(|&&n| n == upper || n[7..] == upper) {
        Some(&full) => Hint::DidYouMean(full),
        None => closest(name, spellings).map_or(Hint::OneOf(&RLIMITS), Hint::DidYouMean),
    };
    invalid(
        field,
        ErrorKind::UnknownRlimit {
            name: name.to_string(),
            hint,
        },
    )
}
