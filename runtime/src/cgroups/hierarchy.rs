//! Which cgroup hierarchy this host has, read from `/proc/self/mountinfo`, never guessed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::CgroupError;
use crate::error::describe_io;

/// cgroup v1 controllers nsinit knows by name. Every other option of a `cgroup` mount
/// (`rw`, `xattr`, `name=systemd`, `release_agent=...`) is not a controller.
const V1_CONTROLLERS: [&str; 14] = [
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// Where the cgroup v2 hierarchy usually sits; preferred when several cgroup2 mounts exist.
const V2_MOUNT: &str = "/sys/fs/cgroup";

/// The cgroup hierarchy a container's group is made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy (cgroup2 mounted at `root`).
    V2 { root: PathBuf },
    /// cgroup v1 (also on hybrid hosts, where a cgroup2 mount without the memory controller
    /// sits beside the v1 controllers, usually at `/sys/fs/cgroup/unified`).
    V1 {
        /// The controllers a container's group is made in: name → mount point, e.g.
        /// `memory` → `/sys/fs/cgroup/memory`; co-mounted controllers share a mount point.
        /// Named hierarchies (`name=systemd`) are never listed, nor mounts holding `cpuset`:
        /// a new cpuset group starts with no cpus and no mems, so nsinit leaves it alone.
        controllers: BTreeMap<String, PathBuf>,
    },
}

/// One `cgroup` or `cgroup2` line of mountinfo.
#[derive(Debug, PartialEq, Eq)]
struct CgroupMount {
    mount_point: PathBuf,
    v2: bool,
    /// v1 only: the controllers of the mount (`cpu,cpuacct` → both).
    controllers: Vec<String>,
}

impl Hierarchy {
    /// The hierarchy described by the text of a `/proc/PID/mountinfo`: v1 when the v1 memory
    /// controller is mounted (v1 or hybrid host), else v2 when cgroup2 is mounted, else v1
    /// when other v1 controllers are (no memory limits possible); an error otherwise.
    pub fn from_mountinfo(mountinfo: &str) -> Result<Hierarchy, CgroupError> {
        let mounts: Vec<CgroupMount> = mountinfo.lines().filter_map(parse_line).collect();
        let mut controllers = BTreeMap::new();
        for mount in mounts.iter().filter(|m| !m.v2) {
            if mount.controllers.iter().any(|c| c == "cpuset") {
                continue;
            }
            for name in &mount.controllers {
                // A hierarchy can be mounted twice (a bind mount): the first mount wins.
                controllers
                    .entry(name.clone())
                    .or_insert_with(|| mount.mount_point.clone());
            }
        }
        let v2_root = mounts
            .iter()
            .filter(|m| m.v2)
            .map(|m| &m.mount_point)
            .min_by_key(|point| *point != Path::new(V2_MOUNT));
        match v2_root {
            _ if controllers.contains_key("memory") => Ok(Hierarchy::V1 { controllers }),
            Some(root) => Ok(Hierarchy::V2 { root: root.clone() }),
            None if !controllers.is_empty() => Ok(Hierarchy::V1 { controllers }),
            None => Err(CgroupError::NoFilesystem {
                detail: "neither cgroup2 nor a cgroup v1 controller is mounted".into(),
            }),
        }
    }

    /// The hierarchy of this host, from `/proc/self/mountinfo`, read once per process: nsinit
    /// never remounts a cgroup filesystem, and reads this only in the host's mount namespace
    /// (`exec` and `run` each needed it twice, 0.1 ms each time). For v2, the mount must
    /// hold `cgroup.controllers` (a real cgroup2 root).
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        static DETECTED: OnceLock<Hierarchy> = OnceLock::new();
        if let Some(hierarchy) = DETECTED.get() {
            return Ok(hierarchy.clone());
        }
        let hierarchy = Hierarchy::read()?;
        Ok(DETECTED.get_or_init(|| hierarchy).clone())
    }

    fn read() -> Result<Hierarchy, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|error| CgroupError::Read {
            path: path.into(),
            error,
        })?;
        let hierarchy = Hierarchy::from_mountinfo(&text)?;
        if let Hierarchy::V2 { root } = &hierarchy {
            let controllers = root.join("cgroup.controllers");
            if let Err(error) = std::fs::metadata(&controllers) {
                return Err(CgroupError::NoFilesystem {
                    detail: format!("{}: {}", controllers.display(), describe_io(&error)),
                });
            }
        }
        Ok(hierarchy)
    }

    /// Whether this is the unified hierarchy.
    pub fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }
}

/// The cgroup mount a mountinfo line describes, if it is one:
/// `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory`.
fn parse_line(line: &str) -> Option<CgroupMount> {
    let (mount, filesystem) = line.split_once(" - ")?;
    let mount_point = mount.split(' ').nth(4)?;
    let mut filesystem = filesystem.split(' ');
    let fs_type = filesystem.next()?;
    let options = filesystem.nth(1).unwrap_or("");
    let (v2, controllers) = match fs_type {
        "cgroup2" => (true, Vec::new()),
        "cgroup" => (
            false,
            options
                .split(',')
                .filter(|option| V1_CONTROLLERS.contains(option))
                .map(String::from)
                .collect(),
        ),
        _ => return None,
    };
    Some(CgroupMount {
        mount_point: PathBuf::from(unescape(mount_point)),
        v2,
        controllers,
    })
}

/// Undo mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
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

    /// This development host (Debian 12, kernel 6.18), verbatim: v1 controllers on a tmpfs,
    /// `name=systemd`, and cgroup2 at `/sys/fs/cgroup/unified` holding no memory controller.
    pub const HYBRID: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,nr_inodes=3083608,mode=755
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw,discard
";

    /// A systemd host on the unified hierarchy (Debian 12 default).
    pub const PURE_V2: &str = "\
21 26 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
22 26 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
29 21 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
30 21 0:27 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:5 - pstore pstore rw
";

    /// A minimal VM guest on v1: a tmpfs at `/sys/fs/cgroup` and one mount per controller
    /// (cpu and cpuacct co-mounted, as distributions did), no systemd.
    pub const V1_VM: &str = "\
15 1 0:2 / / rw - rootfs rootfs rw
16 15 0:4 / /proc rw,relatime - proc proc rw
17 15 0:15 / /sys rw,relatime - sysfs sysfs rw
18 17 0:16 / /sys/fs/cgroup rw,relatime - tmpfs cgroup_root rw,mode=755
19 18 0:17 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
20 18 0:18 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
21 18 0:19 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
22 18 0:20 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
23 18 0:21 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
";

    fn v1(pairs: &[(&str, &str)]) -> Hierarchy {
        Hierarchy::V1 {
            controllers: pairs
                .iter()
                .map(|(name, path)| (name.to_string(), PathBuf::from(path)))
                .collect(),
        }
    }

    #[test]
    fn hybrid_host_uses_v1_controllers_without_cpuset_or_named_hierarchies() {
        let expected = v1(&[
            ("blkio", "/sys/fs/cgroup/blkio"),
            ("cpu", "/sys/fs/cgroup/cpu"),
            ("cpuacct", "/sys/fs/cgroup/cpuacct"),
            ("devices", "/sys/fs/cgroup/devices"),
            ("freezer", "/sys/fs/cgroup/freezer"),
            ("memory", "/sys/fs/cgroup/memory"),
            ("pids", "/sys/fs/cgroup/pids"),
        ]);
        assert_eq!(Hierarchy::from_mountinfo(HYBRID).unwrap(), expected);
    }

    #[test]
    fn pure_v2_host_uses_the_cgroup2_mount() {
        let expected = Hierarchy::V2 {
            root: "/sys/fs/cgroup".into(),
        };
        assert_eq!(Hierarchy::from_mountinfo(PURE_V2).unwrap(), expected);
    }

    #[test]
    fn v1_vm_maps_co_mounted_controllers_to_one_mount() {
        let expected = v1(&[
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
            ("freezer", "/sys/fs/cgroup/freezer"),
            ("memory", "/sys/fs/cgroup/memory"),
            ("pids", "/sys/fs/cgroup/pids"),
        ]);
        assert_eq!(Hierarchy::from_mountinfo(V1_VM).unwrap(), expected);
    }

    #[test]
    fn cgroup2_beside_v1_without_memory_is_v2() {
        let text = "\
32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        let expected = Hierarchy::V2 {
            root: "/sys/fs/cgroup/unified".into(),
        };
        assert_eq!(Hierarchy::from_mountinfo(text).unwrap(), expected);
    }

    #[test]
    fn the_standard_cgroup2_mount_wins_over_others() {
        let text = "\
40 1 0:40 / /mnt/other rw - cgroup2 cgroup2 rw
29 21 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let expected = Hierarchy::V2 {
            root: "/sys/fs/cgroup".into(),
        };
        assert_eq!(Hierarchy::from_mountinfo(text).unwrap(), expected);
    }

    #[test]
    fn a_cpuset_co_mount_is_left_alone_and_a_bind_mount_does_not_win() {
        let text = "\
19 18 0:17 / /sys/fs/cgroup/cpuset,cpu rw - cgroup cgroup rw,cpuset,cpu
21 18 0:19 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
50 18 0:19 / /mnt/memory\\040copy rw - cgroup cgroup rw,memory
";
        let expected = v1(&[("memory", "/sys/fs/cgroup/memory")]);
        assert_eq!(Hierarchy::from_mountinfo(text).unwrap(), expected);
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        let text = "21 18 0:19 / /cg\\040root/mem\\134ory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            Hierarchy::from_mountinfo(text).unwrap(),
            v1(&[("memory", "/cg root/mem\\ory")])
        );
    }

    #[test]
    fn no_cgroup_filesystem_is_an_error_naming_what_is_missing() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        let error = Hierarchy::from_mountinfo(text).unwrap_err().to_string();
        insta::assert_snapshot!(error, @"no cgroup filesystem: neither cgroup2 nor a cgroup v1 controller is mounted");
    }

    #[test]
    fn detect_reads_this_host() {
        // Whatever the host, detection must not fail where /proc/self/mountinfo shows cgroups.
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        if text.contains(" - cgroup") {
            assert_eq!(
                Hierarchy::detect().unwrap(),
                Hierarchy::from_mountinfo(&text).unwrap()
            );
        }
    }

    /// Escape a path as the kernel's mountinfo does (`mangle`: space, tab, newline and
    /// backslash as three octal digits).
    fn escape(path: &str) -> String {
        path.chars()
            .map(|c| match c {
                ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
                c => c.to_string(),
            })
            .collect()
    }

    /// Per-mount and per-superblock options that are no controller.
    const OTHER_OPTIONS: [&str; 6] = [
        "rw",
        "relatime",
        "xattr",
        "name=systemd",
        "nsdelegate",
        "release_agent=/sbin/x",
    ];

    /// The options of a `cgroup` mount: some controllers, shuffled among other options.
    fn v1_options() -> impl Strategy<Value = (Vec<&'static str>, Vec<&'static str>)> {
        let controllers = proptest::sample::subsequence(V1_CONTROLLERS.to_vec(), 0..=4);
        let others = proptest::sample::subsequence(OTHER_OPTIONS.to_vec(), 0..=3);
        (controllers, others).prop_flat_map(|(controllers, others)| {
            let all = [controllers.clone(), others].concat();
            (Just(controllers), Just(all).prop_shuffle())
        })
    }

    proptest! {
        /// Whatever the text, detection gives a hierarchy or an error, never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in any::<String>()) {
            let _ = Hierarchy::from_mountinfo(&text);
        }

        /// The same for lines shaped like mountinfo's around any fields.
        #[test]
        fn any_fields_are_read_or_refused(
            fields in proptest::collection::vec("[^ \n]{0,12}", 0..8),
            tail in proptest::collection::vec("[^ \n]{0,12}", 0..4),
        ) {
            let line = format!("{} - {}", fields.join(" "), tail.join(" "));
            let _ = Hierarchy::from_mountinfo(&line);
        }

        /// Escaping as the kernel does, then unescaping, gives the path back.
        #[test]
        fn unescape_undoes_the_kernels_escapes(path in any::<String>()) {
            prop_assert_eq!(unescape(&escape(&path)), path);
        }

        /// A cgroup line the kernel could print parses to its mount point, its version and, on
        /// v1, the controllers among its options.
        #[test]
        fn a_cgroup_line_parses_to_what_it_describes(
            mount_point in "/[^\u{0}]{0,30}",
            v2: bool,
            (controllers, options) in v1_options(),
            optional in proptest::collection::vec("(shared|master|propagate_from):[0-9]{1,3}", 0..3),
        ) {
            let (fs_type, super_options) = if v2 {
                ("cgroup2", "rw,nsdelegate".to_string())
            } else {
                ("cgroup", options.join(","))
            };
            let mut fields = vec!["35", "31", "0:32", "/"];
            let escaped = escape(&mount_point);
            fields.extend([escaped.as_str(), "rw,relatime"]);
            fields.extend(optional.iter().map(String::as_str));
            let line = format!("{} - {fs_type} cgroup {super_options}", fields.join(" "));
            let mut parsed = parse_line(&line).expect("a cgroup mount");
            parsed.controllers.sort();
            let mut controllers: Vec<String> = controllers.iter().map(|c| c.to_string()).collect();
            controllers.sort();
            let expected = CgroupMount {
                mount_point: PathBuf::from(&mount_point),
                v2,
                controllers: if v2 { Vec::new() } else { controllers },
            };
            prop_assert_eq!(parsed, expected);
        }
    }
}
