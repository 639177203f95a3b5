//! What the sample and the bench read from the host's `/proc`: processes and their parents,
//! a process's memory, the cgroup mounts, and where a process's memory limit is written.
//! The parsers take text, so they are tested with data alone.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One line of `/proc/PID/stat`, the fields the harness uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub comm: String,
    pub state: char,
    pub ppid: u32,
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid ...`; comm may hold spaces and parens,
/// so it runs to the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
    })
}

/// Every process now (those that vanish while being read are skipped).
pub fn processes() -> Vec<Stat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| fs::read_to_string(entry.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// The first process named `comm` that descends from `ancestor`, alive (not a zombie).
pub fn descendant_named(all: &[Stat], ancestor: u32, comm: &str) -> Option<u32> {
    let parent_of = |pid: u32| all.iter().find(|p| p.pid == pid).map(|p| p.ppid);
    all.iter()
        .filter(|p| p.comm == comm && p.state != 'Z')
        .find(|p| {
            let mut pid = p.ppid;
            for _ in 0..64 {
                if pid == ancestor {
                    return true;
                }
                match parent_of(pid) {
                    Some(parent) if parent != 0 && parent != pid => pid = parent,
                    _ => return false,
                }
            }
            false
        })
        .map(|p| p.pid)
}

/// A process's resident memory, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: every resident page, shared ones (the binary, libc) included.
    pub rss_kib: u64,
    /// `RssAnon`: the resident pages of the process's own (anonymous) memory.
    pub anon_kib: u64,
}

pub fn parse_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        anon_kib: field("RssAnon")?,
    })
}

pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_memory(&text).with_context(|| format!("{path}: no VmRSS or RssAnon"))
}

/// A mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub path: PathBuf,
    /// cgroup2 (the unified hierarchy) rather than a v1 hierarchy.
    pub v2: bool,
    /// The v1 controllers (and `name=` options) of the hierarchy; empty for cgroup2.
    pub controllers: Vec<String>,
}

/// The cgroup hierarchies in `/proc/self/mountinfo` text.
pub fn parse_cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mount_point = before.split_whitespace().nth(4)?;
            let mut after = after.split_whitespace();
            let fstype = after.next()?;
            let options = after.nth(1).unwrap_or_default();
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if v2 {
                Vec::new()
            } else {
                options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("xattr"))
                    .map(str::to_string)
                    .collect()
            };
            Some(CgroupMount {
                path: PathBuf::from(mount_point),
                v2,
                controllers,
            })
        })
        .collect()
}

pub fn cgroup_mounts() -> Result<Vec<CgroupMount>> {
    let text = fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    Ok(parse_cgroup_mounts(&text))
}

/// The file holding the memory limit of the process whose `/proc/PID/cgroup` is `proc_cgroup`:
/// `memory.limit_in_bytes` when a v1 memory hierarchy is mounted (it wins on hybrid hosts),
/// else `memory.max` in the unified hierarchy.
pub fn memory_limit_file(proc_cgroup: &str, mounts: &[CgroupMount]) -> Option<PathBuf> {
    let entries: Vec<(&str, &str)> = proc_cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let _id = fields.next()?;
            Some((fields.next()?, fields.next()?))
        })
        .collect();
    let v1 = mounts
        .iter()
        .find(|m| !m.v2 && m.controllers.iter().any(|c| c == "memory"));
    if let Some(mount) = v1 {
        let (_, path) = entries
            .iter()
            .find(|(controllers, _)| controllers.split(',').any(|c| c == "memory"))?;
        return Some(under(&mount.path, path).join("memory.limit_in_bytes"));
    }
    let mount = mounts.iter().find(|m| m.v2)?;
    let (_, path) = entries
        .iter()
        .find(|(controllers, _)| controllers.is_empty())?;
    Some(under(&mount.path, path).join("memory.max"))
}

/// `path` (absolute within a hierarchy) below the hierarchy's mount point.
fn under(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn stat_lines_with_awkward_names_parse() {
        let stat = parse_stat("4242 (my (odd) name) S 17 4242 4242 0 -1").unwrap();
        assert_eq!(
            stat,
            Stat {
                pid: 4242,
                comm: "my (odd) name".into(),
                state: 'S',
                ppid: 17
            }
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_are_found_through_intermediate_parents() {
        let p = |pid, comm: &str, state, ppid| Stat {
            pid,
            comm: comm.into(),
            state,
            ppid,
        };
        let all = [
            p(1, "init", 'S', 0),
            p(10, "runc", 'S', 1),
            p(11, "runc:[2:INIT]", 'S', 10),
            p(12, "sleep", 'S', 11),
            p(20, "sleep", 'S', 1),
            p(30, "sleep", 'Z', 10),
        ];
        assert_eq!(descendant_named(&all, 10, "sleep"), Some(12));
        assert_eq!(descendant_named(&all, 11, "sleep"), Some(12));
        assert_eq!(descendant_named(&all, 20, "sleep"), None);
    }

    #[test]
    fn memory_comes_from_status() {
        let status =
            "Name:\tnsinit\nVmRSS:\t    2048 kB\nRssAnon:\t     512 kB\nRssFile:\t1536 kB\n";
        assert_eq!(
            parse_memory(status),
            Some(Memory {
                rss_kib: 2048,
                anon_kib: 512
            })
        );
        assert_eq!(parse_memory("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn cgroup_mounts_of_a_hybrid_host() {
        let mounts = parse_cgroup_mounts(MOUNTINFO);
        let paths: Vec<_> = mounts.iter().map(|m| m.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified"
            ]
        );
        assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(mounts[2].controllers, ["name=systemd"]);
        assert!(mounts[3].v2);
    }

    #[test]
    fn the_memory_limit_is_v1_on_hybrid_hosts_and_memory_max_on_v2() {
        let hybrid = parse_cgroup_mounts(MOUNTINFO);
        let proc_cgroup = "9:name=systemd:/\n4:memory:/docker/docker-koye\n0::/\n";
        assert_eq!(
            memory_limit_file(proc_cgroup, &hybrid),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/docker/docker-koye/memory.limit_in_bytes"
            ))
        );
        let v2 = parse_cgroup_mounts("41 1 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            memory_limit_file("0::/docker/docker-koye\n", &v2),
            Some(PathBuf::from(
                "/sys/fs/cgroup/docker/docker-koye/memory.max"
            ))
        );
        assert_eq!(memory_limit_file("0::/\n", &[]), None);
    }
}
