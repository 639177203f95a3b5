//! The seccomp profile as a front-end describes it: the shape of OCI `linux.seccomp`
//! (default action, architectures, flags, rules with argument conditions) in Rust names.
//!
//! Serialized, a [`Profile`] is the spec's own JSON (camelCase fields, `SCMP_*` names), so the
//! OCI front-end can take `linux.seccomp` as it is. Nothing here is checked against the
//! kernel's tables: [`compile`](super::compile) does that, naming the field of each error.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SeccompError;

/// A seccomp profile: what to do with each system call a container makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// What happens to a call no rule matches.
    pub default_action: Action,
    /// The errno of `default_action` when it is `Errno` or `Trace` (EPERM when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// The system call ABIs the rules apply to, besides nsinit's own (always included); a
    /// call made through an ABI not listed kills the process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,
    /// `SECCOMP_FILTER_FLAG_*` passed to `seccomp(2)` with the filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// The seccomp agent's socket, for `Notify` (not supported: compiling fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    /// Opaque data for the seccomp agent (only meaningful with `listener_path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// The rules. Several for one call combine as in libseccomp (and so runc): an
    /// unconditional rule overrides conditional ones; of two unconditional ones, the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: the listed calls, when every argument condition holds, get `action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyscallRule {
    /// System call names, as in the kernel's tables (`open_by_handle_at`, `mmap2`).
    pub names: Vec<String>,
    pub action: Action,
    /// The errno of `action` when it is `Errno` or `Trace` (EPERM when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Conditions on the call's arguments, all of which must hold. Two conditions on the same
    /// argument are alternatives instead (each becomes its own rule), as runc and crun do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
}

/// A condition on one argument of a call: `args[index] <op> value`, or for `MaskedEq`
/// `args[index] & value == value_two`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgCondition {
    /// Which argument, 0 to 5.
    pub index: u32,
    pub value: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: ArgOp,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// An enum spelled in the spec's names (`SCMP_ACT_ALLOW`), with aliases the spec also has.
macro_rules! spelled {
    ($(#[$doc:meta])* $name:ident, $what:literal {
        $($(#[$vdoc:meta])* $variant:ident = $spelling:literal $(| $alias:literal)*,)+
    }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The spec's name for this value.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling,)+
                }
            }

            /// The value the spec calls `name` (aliases included).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($spelling $(| $alias)* => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// What a value of this kind is called in error messages.
            pub const WHAT: &'static str = $what;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                $name::from_name(&name).ok_or_else(|| {
                    serde::de::Error::custom(unknown_name($what, &name, $name::ALL.iter().map(|v| v.name())))
                })
            }
        }
    };
}

/// `unknown seccomp action "SCMP_ACT_FOO" (one of SCMP_ACT_KILL, ...)`.
fn unknown_name<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    format!("unknown {what} {name:?} (one of {})", known.join(", "))
}

spelled!(
    /// What the filter does with a call.
    Action, "seccomp action" {
        /// Kill the calling thread (`SCMP_ACT_KILL` is the same, its older name).
        KillThread = "SCMP_ACT_KILL_THREAD" | "SCMP_ACT_KILL",
        /// Kill the whole process.
        KillProcess = "SCMP_ACT_KILL_PROCESS",
        /// Send `SIGSYS`.
        Trap = "SCMP_ACT_TRAP",
        /// Fail the call with an errno (`errno_ret`, EPERM by default).
        Errno = "SCMP_ACT_ERRNO",
        /// Hand the call to a ptrace tracer (or fail with `errno_ret` when there is none).
        Trace = "SCMP_ACT_TRACE",
        /// Let the call through.
        Allow = "SCMP_ACT_ALLOW",
        /// Let the call through and log it.
        Log = "SCMP_ACT_LOG",
        /// Ask a seccomp agent (not supported).
        Notify = "SCMP_ACT_NOTIFY",
    }
);

impl Action {
    /// Whether the action carries an errno (`errno_ret`, `default_errno_ret`).
    pub const fn takes_errno(self) -> bool {
        matches!(self, Action::Errno | Action::Trace)
    }
}

spelled!(
    /// A comparison of an argument with a value.
    ArgOp, "seccomp operator" {
        NotEqual = "SCMP_CMP_NE",
        LessThan = "SCMP_CMP_LT",
        LessOrEqual = "SCMP_CMP_LE",
        Equal = "SCMP_CMP_EQ",
        GreaterOrEqual = "SCMP_CMP_GE",
        GreaterThan = "SCMP_CMP_GT",
        /// `arg & value == value_two`.
        MaskedEqual = "SCMP_CMP_MASKED_EQ",
    }
);

spelled!(
    /// A system call ABI (the kernel's `AUDIT_ARCH_*`): on an x86_64 kernel a process may call
    /// through x86_64 (`syscall`), x86 (`int $0x80`) and, where built in, x32 (`syscall` with
    /// the number's bit 30 set).
    Arch, "seccomp architecture" {
        X86 = "SCMP_ARCH_X86",
        X86_64 = "SCMP_ARCH_X86_64",
        X32 = "SCMP_ARCH_X32",
        Arm = "SCMP_ARCH_ARM",
        Aarch64 = "SCMP_ARCH_AARCH64",
        Mips = "SCMP_ARCH_MIPS",
        Mips64 = "SCMP_ARCH_MIPS64",
        Mips64N32 = "SCMP_ARCH_MIPS64N32",
        Mipsel = "SCMP_ARCH_MIPSEL",
        Mipsel64 = "SCMP_ARCH_MIPSEL64",
        Mipsel64N32 = "SCMP_ARCH_MIPSEL64N32",
        Ppc = "SCMP_ARCH_PPC",
        Ppc64 = "SCMP_ARCH_PPC64",
        Ppc64Le = "SCMP_ARCH_PPC64LE",
        S390 = "SCMP_ARCH_S390",
        S390X = "SCMP_ARCH_S390X",
        Parisc = "SCMP_ARCH_PARISC",
        Parisc64 = "SCMP_ARCH_PARISC64",
        Riscv64 = "SCMP_ARCH_RISCV64",
        Loongarch64 = "SCMP_ARCH_LOONGARCH64",
        M68k = "SCMP_ARCH_M68K",
        Sh = "SCMP_ARCH_SH",
        Sheb = "SCMP_ARCH_SHEB",
    }
);

spelled!(
    /// A `SECCOMP_FILTER_FLAG_*` flag of `seccomp(2)`.
    Flag, "seccomp flag" {
        /// Apply to every thread (nsinit is single-threaded: harmless, not needed).
        Tsync = "SECCOMP_FILTER_FLAG_TSYNC",
        /// Log every action but `Allow`.
        Log = "SECCOMP_FILTER_FLAG_LOG",
        /// Keep speculative store bypass mitigation off.
        SpecAllow = "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        /// Wait killably for the agent (only with `Notify`: not supported).
        WaitKillableRecv = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
);

impl Flag {
    /// The flag's bit in `seccomp(2)`'s `flags` (include/uapi/linux/seccomp.h).
    pub const fn bit(self) -> u32 {
        match self {
            Flag::Tsync => 1,
            Flag::Log => 1 << 1,
            Flag::SpecAllow => 1 << 2,
            Flag::WaitKillableRecv => 1 << 5,
        }
    }
}

/// `root.name`, or `name` at the top.
pub(super) fn field(root: &str, name: &str) -> String {
    if root.is_empty() {
        name.to_owned()
    } else {
        format!("{root}.{name}")
    }
}

/// `parent[index]`.
pub(super) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

impl Profile {
    /// Reads a profile from the JSON of an OCI `linux.seccomp` object found at `root` (e.g.
    /// `linux.seccomp`), naming the field of the first error: an unknown field, a wrong type,
    /// an unknown action, operator, architecture or flag.
    pub fn from_json(value: &serde_json::Value, root: &str) -> Result<Profile, SeccompError> {
        let object = object(value, root, PROFILE_FIELDS)?;
        for (key, value) in object {
            let at = field(root, key);
            match key.as_str() {
                "defaultAction" => read::<Action>(value, &at).map(drop),
                "defaultErrnoRet" => read::<u32>(value, &at).map(drop),
                "architectures" => read_list::<Arch>(value, &at),
                "flags" => read_list::<Flag>(value, &at),
                "syscalls" => list(value, &at)?
                    .iter()
                    .enumerate()
                    .try_for_each(|(index, rule)| check_rule(rule, &item(&at, index))),
                _ => read::<String>(value, &at).map(drop),
            }?;
        }
        if !object.contains_key("defaultAction") {
            return Err(SeccompError::Json {
                field: root.to_owned(),
                reason: "missing field \"defaultAction\"".to_owned(),
            });
        }
        read(value, root)
    }
}

const PROFILE_FIELDS: &[&str] = &[
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
];
const RULE_FIELDS: &[&str] = &["names", "action", "errnoRet", "args"];
const ARG_FIELDS: &[&str] = &["index", "value", "valueTwo", "op"];

/// Checks each field of a rule on its own, so that an error names it.
fn check_rule(value: &serde_json::Value, at: &str) -> Result<(), SeccompError> {
    for (key, value) in object(value, at, RULE_FIELDS)? {
        let at = field(at, key);
        match key.as_str() {
            "names" => read_list::<String>(value, &at),
            "action" => read::<Action>(value, &at).map(drop),
            "errnoRet" => read::<u32>(value, &at).map(drop),
            _ => list(value, &at)?
                .iter()
                .enumerate()
                .try_for_each(|(index, arg)| check_arg(arg, &item(&at, index))),
        }?;
    }
    for required in ["names", "action"] {
        if value.get(required).is_none() {
            return Err(SeccompError::Json {
                field: at.to_owned(),
                reason: format!("missing field {required:?}"),
            });
        }
    }
    Ok(())
}

fn check_arg(value: &serde_json::Value, at: &str) -> Result<(), SeccompError> {
    for (key, value) in object(value, at, ARG_FIELDS)? {
        let at = field(at, key);
        match key.as_str() {
            "index" => read::<u32>(value, &at).map(drop),
            "op" => read::<ArgOp>(value, &at).map(drop),
            _ => read::<u64>(value, &at).map(drop),
        }?;
    }
    read::<ArgCondition>(value, at).map(drop)
}

/// `value` as an object with only `known` fields.
fn object<'a>(
    value: &'a serde_json::Value,
    at: &str,
    known: &[&str],
) -> Result<&'a serde_json::Map<String, serde_json::Value>, SeccompError> {
    let object = value.as_object().ok_or_else(|| SeccompError::Json {
        field: at.to_owned(),
        reason: format!("expected an object, not {}", kind(value)),
    })?;
    if let Some(key) = object.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(SeccompError::Json {
            field: at.to_owned(),
            reason: format!("unknown field {key:?} (one of {})", known.join(", ")),
        });
    }
    Ok(object)
}

fn list<'a>(
    value: &'a serde_json::Value,
    at: &str,
) -> Result<&'a [serde_json::Value], SeccompError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| SeccompError::Json {
            field: at.to_owned(),
            reason: format!("expected a list, not {}", kind(value)),
        })
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn read<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    at: &str,
) -> Result<T, SeccompError> {
    T::deserialize(value).map_err(|error| SeccompError::Json {
        field: at.to_owned(),
        reason: error.to_string(),
    })
}

fn read_list<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    at: &str,
) -> Result<(), SeccompError> {
    list(value, at)?
        .iter()
        .enumerate()
        .try_for_each(|(index, value)| read::<T>(value, &item(at, index)).map(drop))
}
