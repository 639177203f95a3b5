//! The JSON objects the probe prints, one per run, and the driver reads back.
//!
//! Every fact the probe could not gather is left at its default and explained in `errors`, so a
//! broken container still yields a complete object and the driver reports the real cause.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::capability_names;

/// `probe facts`: what a process sees from inside its container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    pub hostname: String,
    /// `KEY=VALUE` entries in the order the process received them.
    pub environment: Vec<String>,
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
    pub capabilities: CapabilitySets,
    /// `/proc/self/ns/NAME` link targets (`pid:[4026531836]`) by namespace name.
    pub namespaces: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    /// `/dev/NAME` entries by name (`null`, `tty`, `fd`, `ptmx`, ...).
    pub devices: BTreeMap<String, DevNode>,
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    pub cgroup: Cgroup,
    /// Open file descriptors, without the one used to list them.
    pub fds: Vec<OpenFd>,
    pub tty: Tty,
    /// Names in `/`, sorted.
    pub root_entries: Vec<String>,
    /// What could not be gathered, and why.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilitySets {
    pub inheritable: CapabilitySet,
    pub permitted: CapabilitySet,
    pub effective: CapabilitySet,
    pub bounding: CapabilitySet,
    pub ambient: CapabilitySet,
}

impl CapabilitySets {
    /// The five sets from the `CapInh`, `CapPrm`, `CapEff`, `CapBnd` and `CapAmb` lines of a
    /// `/proc/PID/status` text.
    pub fn from_status(status: &str) -> Result<CapabilitySets, String> {
        Ok(CapabilitySets {
            inheritable: CapabilitySet::from_status(status, "CapInh")?,
            permitted: CapabilitySet::from_status(status, "CapPrm")?,
            effective: CapabilitySet::from_status(status, "CapEff")?,
            bounding: CapabilitySet::from_status(status, "CapBnd")?,
            ambient: CapabilitySet::from_status(status, "CapAmb")?,
        })
    }

    /// The set called `name`: `inheritable`, `permitted`, `effective`, `bounding` or `ambient`.
    pub fn set(&self, name: &str) -> Option<&CapabilitySet> {
        match name {
            "inheritable" => Some(&self.inheritable),
            "permitted" => Some(&self.permitted),
            "effective" => Some(&self.effective),
            "bounding" => Some(&self.bounding),
            "ambient" => Some(&self.ambient),
            _ => None,
        }
    }
}

/// One capability set: the mask as `/proc/self/status` prints it, and the names in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilitySet {
    pub hex: String,
    pub names: Vec<String>,
}

impl CapabilitySet {
    /// The set on the `field:` line of a `/proc/PID/status` text.
    pub fn from_status(status: &str, field: &str) -> Result<CapabilitySet, String> {
        let hex = status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or_else(|| format!("no {field} line"))?;
        let mask = u64::from_str_radix(hex, 16).map_err(|e| format!("{field}: {hex}: {e}"))?;
        Ok(CapabilitySet {
            hex: hex.to_string(),
            names: capability_names(mask),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    pub mount_point: String,
    /// The directory of the filesystem that is mounted (`/` for a whole filesystem).
    pub root: String,
    /// `major:minor` of the filesystem.
    pub device: String,
    pub fstype: String,
    pub source: String,
    /// Per-mount options (`ro,nosuid,...`).
    pub options: String,
    /// Per-filesystem options (`mode=755,ptmxmode=666`).
    pub super_options: String,
}

impl Mount {
    /// Parse one line of `/proc/PID/mountinfo`:
    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
    pub fn parse_mountinfo_line(line: &str) -> Option<Mount> {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let tail: Vec<&str> = after.split(' ').collect();
        Some(Mount {
            device: fields.get(2)?.to_string(),
            root: unescape(fields.get(3)?),
            mount_point: unescape(fields.get(4)?),
            options: fields.get(5)?.to_string(),
            fstype: tail.first()?.to_string(),
            source: unescape(tail.get(1).unwrap_or(&"")),
            super_options: tail.get(2).unwrap_or(&"").to_string(),
        })
    }

    /// Every mount in a `/proc/PID/mountinfo` text.
    pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
        text.lines()
            .filter_map(Mount::parse_mountinfo_line)
            .collect()
    }

    pub fn has_option(&self, option: &str) -> bool {
        self.options.split(',').any(|o| o == option)
    }

    pub fn has_super_option(&self, option: &str) -> bool {
        self.super_options.split(',').any(|o| o == option)
    }
}

/// A `/dev` entry, as `lstat` sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DevNode {
    /// `char`, `block`, `dir`, `symlink`, `file`, `fifo`, `socket` or `missing`.
    pub kind: String,
    pub major: u32,
    pub minor: u32,
    /// Permission bits.
    pub mode: u32,
    /// Where a symlink points.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Interface {
    pub name: String,
    pub up: bool,
    pub loopback: bool,
    pub mtu: Option<u32>,
    /// IPv4 addresses with their prefix length (`172.17.0.100/16`).
    pub ipv4: Vec<String>,
}

/// One line of `/proc/net/route`, decoded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Route {
    pub iface: String,
    pub destination: String,
    pub prefix: u32,
    pub gateway: String,
    pub flags: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Cgroup {
    /// `/proc/self/cgroup`, line by line.
    pub lines: Vec<String>,
    /// The memory limit file found through a visible cgroupfs, and its content.
    pub memory_limit_file: Option<String>,
    pub memory_limit: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenFd {
    pub fd: i32,
    pub target: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Tty {
    /// `isatty` of fds 0, 1 and 2.
    pub isatty: [bool; 3],
    /// The terminal on fd 0, when it is one.
    pub ttyname: Option<String>,
    pub foreground_pgrp: Option<i32>,
    pub pgrp: i32,
    pub session: i32,
}

/// `probe try OP`: whether a privileged operation worked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TryResult {
    pub op: String,
    pub ok: bool,
    pub errno: Option<i32>,
    /// The errno's symbolic name (`EPERM`).
    pub error: Option<String>,
}

/// `probe wait-signal`: the first signal that arrived.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SignalReport {
    /// Name without `SIG` (`TERM`).
    pub signal: String,
    pub signo: i32,
}

/// `probe ping ADDR`: whether an ICMP echo to ADDR was answered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PingReport {
    pub address: String,
    pub replied: bool,
    /// Echo requests sent, one more each time a reply failed to come in time.
    pub sent: u32,
    /// Microseconds from the request that was answered to its reply.
    pub rtt_us: Option<u64>,
    /// Why no request could be sent, if so.
    pub error: Option<String>,
}

/// `probe wait-signal` exits with this plus the signal's number.
pub const WAIT_SIGNAL_EXIT_BASE: i32 = 100;

/// The signals `probe wait-signal` installs handlers for.
pub const WAITED_SIGNALS: &[&str] = &["TERM", "INT", "HUP", "USR1", "USR2", "QUIT", "WINCH"];

/// The `/dev` entries `probe facts` reports.
pub const DEV_ENTRIES: &[&str] = &[
    "null", "zero", "full", "random", "urandom", "tty", "console", "fd", "stdin", "stdout",
    "stderr", "ptmx", "pts", "shm", "mqueue",
];

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes_and_optional_fields() {
        let line =
            "36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
        let mount = Mount::parse_mountinfo_line(line).unwrap();
        assert_eq!(mount.mount_point, "/mnt 2");
        assert_eq!(mount.root, "/mnt1");
        assert_eq!(mount.device, "98:0");
        assert_eq!(mount.fstype, "ext3");
        assert_eq!(mount.source, "/dev/root");
        assert!(mount.has_option("noatime"));
        assert!(mount.has_super_option("errors=continue"));
    }

    #[test]
    fn capability_sets_come_from_status_lines() {
        let status = "Name:\tprobe\nCapInh:\t0000000000000000\nCapPrm:\t0000000000200001\n\
                      CapEff:\t0000000000200001\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";
        let sets = CapabilitySets::from_status(status).unwrap();
        assert_eq!(sets.permitted.names, ["CHOWN", "SYS_ADMIN"]);
        assert!(sets.bounding.contains("CHECKPOINT_RESTORE"));
        assert!(sets.inheritable.names.is_empty());
        assert!(CapabilitySets::from_status("Name: x").is_err());
    }

    /// Escape a field as the kernel's mountinfo does (`mangle`: space, tab, newline and
    /// backslash as three octal digits).
    fn escape(field: &str) -> String {
        field
            .chars()
            .map(|c| match c {
                ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
                c => c.to_string(),
            })
            .collect()
    }

    proptest! {
        /// Whatever the text, parsing gives mounts or skips lines, never a panic.
        #[test]
        fn any_text_parses_or_is_skipped(text in any::<String>()) {
            let _ = Mount::parse_mountinfo(&text);
        }

        /// A line the kernel could print parses to every field it holds, escapes undone.
        #[test]
        fn a_kernel_line_parses_to_its_fields(
            device in "[0-9]{1,3}:[0-9]{1,3}",
            root in "/[^\u{0}]{0,20}",
            mount_point in "/[^\u{0}]{0,20}",
            options in "(rw|ro)(,[a-z]{1,8}){0,3}",
            optional in proptest::collection::vec("(shared|master):[0-9]{1,3}", 0..3),
            fstype in "[a-z0-9]{1,8}",
            source in "[^\u{0}]{1,20}",
            super_options in "[a-z0-9=,_]{0,20}",
        ) {
            let mut fields = vec![
                "36".to_string(),
                "35".to_string(),
                device.clone(),
                escape(&root),
                escape(&mount_point),
                options.clone(),
            ];
            fields.extend(optional);
            let line = format!(
                "{} - {fstype} {} {super_options}",
                fields.join(" "),
                escape(&source)
            );
            let mount = Mount::parse_mountinfo_line(&line).expect("a mount");
            prop_assert_eq!(
                (mount.device, mount.root, mount.mount_point, mount.options),
                (device, root, mount_point, options)
            );
            prop_assert_eq!(
                (mount.fstype, mount.source, mount.super_options),
                (fstype, source, super_options)
            );
        }
    }
}
