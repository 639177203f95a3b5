//! `probe protect`: what the default protections of a container.json look like from inside
//! (read-only and masked paths, device nodes, the seccomp filter, `no_new_privs`), and the
//! paths and nodes both sides agree on.
//!
//! Every attempt is harmless when it works: files are opened for writing and closed without a
//! write, nodes are opened and closed, system calls get arguments the kernel refuses or that
//! change nothing, and what could change the probe itself runs in a child process.

use serde::{Deserialize, Serialize};

use crate::facts::Mount;

/// The paths container.json binds read-only by default (`security.readonly_paths`).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The host-global kernel settings under [`READONLY_PATHS`] the probe opens for writing,
/// and closes without writing: `core_pattern` with a `|` runs a program as host root.
pub const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
pub const SYSRQ_TRIGGER: &str = "/proc/sysrq-trigger";
pub const OTHER_SYSCTLS: &[&str] = &[
    "/proc/sys/kernel/modprobe",
    "/proc/sys/vm/drop_caches",
    "/proc/sys/kernel/panic",
];

/// The paths container.json hides by default (`security.masked_paths`); a kernel may lack
/// some of them.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Character devices the driver plants in the rootfs before the start: the kernel's log
/// (`/dev/kmsg`, 1:11) and the loop devices' control node (10:237).
pub const PLANTED_NODES: &[(&str, u32, u32)] = &[
    ("/tmp/planted-kmsg", 1, 11),
    ("/tmp/planted-loop-control", 10, 237),
];

/// The node the probe tries to make inside, in the container's own `/dev` (no `nodev`
/// there): `/dev/kmsg`'s numbers. Removed again at once.
pub const MADE_NODE: (&str, u32, u32) = ("/dev/probe-made-kmsg", 1, 11);

/// The system calls the default filter refuses, tried with harmless arguments, and the errno
/// the filter answers with (`clone3` as if the kernel lacked it).
pub const REFUSED_CALLS: &[(&str, &str)] = &[
    ("keyctl", "EPERM"),
    ("add_key", "EPERM"),
    ("bpf", "EPERM"),
    ("perf_event_open", "EPERM"),
    ("unshare-newuser", "EPERM"),
    ("clone3", "ENOSYS"),
];

/// The 64-bit `open_by_handle_at` and the same through x86's `int $0x80` (call 342).
pub const SHOCKER_64: &str = "open_by_handle_at";
pub const SHOCKER_INT80: &str = "int80-open_by_handle_at";

/// One attempt: what was tried, whether it worked, the errno (or how a child process died),
/// and what it yielded (a file's first bytes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Attempt {
    pub what: String,
    pub ok: bool,
    /// `EPERM`, ..., or `killed by SIGSYS` for a child process.
    pub error: Option<String>,
    pub yielded: Option<String>,
}

impl Attempt {
    /// Failed with this errno name.
    pub fn failed_with(&self, errno: &str) -> bool {
        !self.ok && self.error.as_deref() == Some(errno)
    }

    /// `ok`, or `EPERM`, or `killed by SIGSYS`.
    pub fn describe(&self) -> String {
        match (&self.error, self.ok) {
            (_, true) => match &self.yielded {
                Some(what) => format!("{}: ok, yielding {what:?}", self.what),
                None => format!("{}: ok", self.what),
            },
            (Some(error), false) => format!("{}: {error}", self.what),
            (None, false) => format!("{}: failed without an errno", self.what),
        }
    }
}

/// What a masked path shows: missing, or a file with its first bytes counted, or a
/// directory with its entries counted; and whether a mount sits on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Shown {
    pub path: String,
    /// `missing`, `file`, `dir` or `other`.
    pub kind: String,
    /// Bytes read from a file (at most 4096), or entries of a directory.
    pub size: Option<usize>,
    /// Why it could not be read.
    pub error: Option<String>,
    /// A mount sits exactly on the path.
    pub mounted: bool,
}

impl Shown {
    pub fn is_missing(&self) -> bool {
        self.kind == "missing"
    }

    /// Present and read as empty.
    pub fn is_empty(&self) -> bool {
        self.size == Some(0) && self.error.is_none()
    }

    pub fn describe(&self) -> String {
        let read = match (&self.error, self.size) {
            (Some(error), _) => format!("unreadable: {error}"),
            (None, Some(size)) if self.kind == "dir" => format!("{size} entries"),
            (None, Some(size)) => format!("{size} bytes"),
            (None, None) => "not read".to_string(),
        };
        let mounted = if self.mounted { ", a mount" } else { "" };
        format!("{} {} ({read}{mounted})", self.kind, self.path)
    }
}

/// `probe protect`'s report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    pub pid: i32,
    /// `NoNewPrivs` and `Seccomp` of `/proc/self/status`.
    pub no_new_privs: Option<u32>,
    pub seccomp: Option<u32>,
    /// Opening [`CORE_PATTERN`], [`SYSRQ_TRIGGER`] and [`OTHER_SYSCTLS`] for writing.
    pub writes: Vec<Attempt>,
    /// What each of [`MASKED_PATHS`] shows.
    pub masked: Vec<Shown>,
    /// Which of [`READONLY_PATHS`] exist here.
    pub readonly_present: Vec<String>,
    /// `/proc/self/mountinfo`.
    pub mounts: Vec<Mount>,
    /// Opening each of [`PLANTED_NODES`] for writing (nothing is written).
    pub planted: Vec<Attempt>,
    /// Making [`MADE_NODE`], and opening it when made.
    pub made: Attempt,
    pub made_open: Option<Attempt>,
    /// [`REFUSED_CALLS`], in that order.
    pub calls: Vec<Attempt>,
    /// [`SHOCKER_64`] and [`SHOCKER_INT80`] with the driver's handle, when given one.
    pub shocker: Vec<Attempt>,
    /// What could not be done at all.
    pub errors: Vec<String>,
}

impl Report {
    pub fn write(&self, path: &str) -> Option<&Attempt> {
        self.writes.iter().find(|a| a.what == path)
    }

    pub fn call(&self, name: &str) -> Option<&Attempt> {
        self.calls.iter().find(|a| a.what == name)
    }

    pub fn planted(&self, path: &str) -> Option<&Attempt> {
        self.planted.iter().find(|a| a.what == path)
    }

    pub fn shocker(&self, what: &str) -> Option<&Attempt> {
        self.shocker.iter().find(|a| a.what == what)
    }

    pub fn masked(&self, path: &str) -> Option<&Shown> {
        self.masked.iter().find(|s| s.path == path)
    }

    /// The topmost mount exactly at `path`.
    pub fn mount_at(&self, path: &str) -> Option<&Mount> {
        self.mounts.iter().rfind(|m| m.mount_point == path)
    }
}

/// A file handle as `name_to_handle_at` gives it, passed to the probe as `TYPE:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub handle_type: i32,
    pub bytes: Vec<u8>,
}

impl Handle {
    pub fn to_arg(&self) -> String {
        let hex: String = self.bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{hex}", self.handle_type)
    }

    pub fn from_arg(arg: &str) -> Option<Handle> {
        let (handle_type, hex) = arg.split_once(':')?;
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Handle {
            handle_type: handle_type.parse().ok()?,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_survives_its_argument_form() {
        let handle = Handle {
            handle_type: 0x81,
            bytes: vec![0, 1, 0xab, 0xff],
        };
        assert_eq!(handle.to_arg(), "129:0001abff");
        assert_eq!(Handle::from_arg(&handle.to_arg()), Some(handle));
        assert_eq!(Handle::from_arg("1:abc"), None);
        assert_eq!(Handle::from_arg("x:ab"), None);
        assert_eq!(Handle::from_arg("1:é0"), None);
    }
}
