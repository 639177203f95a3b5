//! What the harness checks on the machine itself: that the host's network (links, routes,
//! firewall rules) is the same after the step as before it, and that a container leaves
//! nothing behind (cgroup, runtime state directory, mount, process) once its engine has
//! cleaned up.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::procfs::CgroupMount;

/// The host network namespace's configuration, as text to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNet {
    parts: Vec<(&'static str, String)>,
}

impl HostNet {
    /// `ip -o link` (names and flags), `ip route`, `ip -6 route`, `iptables-save`,
    /// `ip6tables-save` and `nft list ruleset`, from the harness's own namespace (the host's).
    pub fn snapshot() -> HostNet {
        let run = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("({program}: {e})"))
        };
        HostNet {
            parts: vec![
                ("ip link", links(&run("ip", &["-o", "link"]))),
                ("ip route", run("ip", &["route"])),
                ("ip -6 route", run("ip", &["-6", "route"])),
                ("iptables-save", rules(&run("iptables-save", &[]))),
                ("ip6tables-save", rules(&run("ip6tables-save", &[]))),
                ("nft list ruleset", run("nft", &["list", "ruleset"])),
            ],
        }
    }

    /// What changed, one line per changed part with the lines added and removed.
    pub fn changes(&self, after: &HostNet) -> Vec<String> {
        self.parts
            .iter()
            .zip(&after.parts)
            .filter(|((_, a), (_, b))| a != b)
            .map(|((name, a), (_, b))| {
                let a: BTreeSet<&str> = a.lines().collect();
                let b: BTreeSet<&str> = b.lines().collect();
                let added: Vec<&str> = b.difference(&a).copied().collect();
                let removed: Vec<&str> = a.difference(&b).copied().collect();
                format!("{name}: added {added:?}, removed {removed:?}")
            })
            .collect()
    }
}

/// `ip -o link` reduced to `name flags` (counters, qdisc state and the like may move).
fn links(text: &str) -> String {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _index = fields.next()?;
            let name = fields.next()?;
            let flags = fields.next()?;
            Some(format!("{name} {flags}\n"))
        })
        .collect()
}

/// `iptables-save` without its comments (timestamps) and chain counters.
fn rules(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match (l.starts_with(':'), l.rfind(" [")) {
            (true, Some(at)) => format!("{}\n", &l[..at]),
            _ => format!("{l}\n"),
        })
        .collect()
}

/// Where a container's traces may remain.
pub struct Places<'a> {
    pub cgroup_mounts: &'a [CgroupMount],
    /// The harness's cgroup parent (`/nsinit-engines-PID`).
    pub cgroup_root: &'a str,
    /// Directories to search for entries named after a container: `/run` (runc, crun and
    /// nsinit-oci keep their default state there) and the engines' own state directories.
    pub state_dirs: Vec<PathBuf>,
    /// Mounts at or under this directory are the harness's.
    pub work: &'a Path,
}

/// How deep the state directories are searched.
const STATE_DEPTH: usize = 5;

impl Places<'_> {
    /// What remains of the containers `ids`: cgroups, state entries, mounts and processes
    /// whose names or command lines contain one of them.
    pub fn leftovers(&self, ids: &[String]) -> Vec<String> {
        let ids: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| id.len() >= 12)
            .collect();
        let mut found = Vec::new();
        if ids.is_empty() {
            return found;
        }
        let named = |name: &str| ids.iter().any(|id| name.contains(id));
        for mount in self.cgroup_mounts {
            let root = mount.path.join(self.cgroup_root.trim_start_matches('/'));
            walk(&root, 8, &mut |path| {
                if path.is_dir() && named(&file_name(path)) {
                    found.push(format!("cgroup {}", path.display()));
                }
            });
        }
        for dir in &self.state_dirs {
            walk(dir, STATE_DEPTH, &mut |path| {
                if named(&file_name(path)) {
                    found.push(format!("state {}", path.display()));
                }
            });
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for point in mount_points(&mountinfo) {
            if named(&point) {
                found.push(format!("mount {point}"));
            }
        }
        for (pid, cmdline) in processes() {
            if named(&cmdline) {
                found.push(format!("process {pid} ({})", shorten(&cmdline)));
            }
        }
        found
    }
}

impl Places<'_> {
    /// Mounts at or under the work directory: none may remain once every container is gone.
    pub fn stray_mounts(&self) -> Vec<String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        mount_points(&mountinfo)
            .into_iter()
            .filter(|point| Path::new(point).starts_with(self.work))
            .map(|point| format!("mount {point}"))
            .collect()
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn shorten(text: &str) -> String {
    text.chars().take(120).collect()
}

/// Calls `visit` for every entry under `dir` down to `depth`, symlinks not followed.
fn walk(dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path)) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        visit(&path);
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, depth - 1, visit);
        }
    }
}

/// The mount points in mountinfo text (octal escapes decoded).
pub fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(unescape)
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("0");
            out.push(u8::from_str_radix(digits, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every process's pid and command line (NULs as spaces).
pub fn processes() -> Vec<(u32, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id())
        .filter_map(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let text = String::from_utf8_lossy(&raw).replace('\0', " ");
            Some((pid, text.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_names_and_flags_only() {
        let text = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\\    link/loopback 00:00\n";
        assert_eq!(links(text), "lo: <LOOPBACK,UP,LOWER_UP>\n");
    }

    #[test]
    fn rules_drop_timestamps_and_counters() {
        let text = "# Generated by iptables-save v1.8.9 on Fri\n*filter\n:INPUT ACCEPT [12:345]\n-A FORWARD -j X\nCOMMIT\n";
        assert_eq!(
            rules(text),
            "*filter\n:INPUT ACCEPT\n-A FORWARD -j X\nCOMMIT\n"
        );
    }

    #[test]
    fn changes_name_the_lines() {
        let before = HostNet {
            parts: vec![("ip link", "lo: <UP>\n".into())],
        };
        let after = HostNet {
            parts: vec![("ip link", "lo: <UP>\npodman0: <UP>\n".into())],
        };
        assert_eq!(
            before.changes(&after),
            ["ip link: added [\"podman0: <UP>\"], removed []"]
        );
        assert!(before.changes(&before).is_empty());
    }

    #[test]
    fn mount_points_are_unescaped() {
        let info = "36 35 98:0 /mnt1 /mnt\\040two rw - ext3 /dev/root rw\n";
        assert_eq!(mount_points(info), ["/mnt two"]);
    }

    #[test]
    fn leftovers_are_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123";
        fs::create_dir_all(dir.path().join("runc").join(id)).unwrap();
        fs::create_dir_all(dir.path().join("runc/other-container")).unwrap();
        let places = Places {
            cgroup_mounts: &[],
            cgroup_root: "/nsinit-engines-test",
            state_dirs: vec![dir.path().to_owned()],
            work: Path::new("/nonexistent-work"),
        };
        let found = places.leftovers(&[id.to_string(), "short".into()]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("state ") && found[0].ends_with(id));
        assert!(places.leftovers(&[]).is_empty());
    }
}
