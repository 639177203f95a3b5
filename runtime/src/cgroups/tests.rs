//! Unit tests against temp directories shaped like v1, v2 and hybrid hierarchies. A temp dir
//! has no kernel behind it: `mkdir` makes no control files, so a group whose files a test
//! reads is laid out beforehand, as the kernel would have it (the "left by a crash" case).

use std::collections::BTreeMap;
use std::os::fd::AsFd;

use super::*;

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Make `dir` and write `files` into it, as cgroupfs shows a group.
fn lay_out(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
}

/// This host's mountinfo shape (hybrid: v1 controllers, cpuset, `name=systemd`, cgroup2 at
/// `unified`), with every mount under `root`.
fn hybrid(root: &Path) -> Hierarchy {
    let r = root.display();
    let mountinfo = format!(
        "\
31 23 0:28 / {r} rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {r}/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / {r}/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / {r}/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / {r}/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / {r}/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / {r}/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / {r}/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / {r}/unified rw,relatime - cgroup2 cgroup2 rw
"
    );
    for mount in [
        "cpu", "cpuacct", "cpuset", "memory", "freezer", "pids", "systemd", "unified",
    ] {
        fs::create_dir_all(root.join(mount)).unwrap();
    }
    Hierarchy::from_mountinfo(&mountinfo).unwrap()
}

/// A v1 VM: cpu and cpuacct co-mounted, memory, freezer.
fn v1_vm(root: &Path) -> Hierarchy {
    let controllers: BTreeMap<String, PathBuf> = [
        ("cpu", "cpu,cpuacct"),
        ("cpuacct", "cpu,cpuacct"),
        ("memory", "memory"),
        ("freezer", "freezer"),
    ]
    .into_iter()
    .map(|(name, mount)| (name.to_string(), root.join(mount)))
    .collect();
    for mount in controllers.values() {
        fs::create_dir_all(mount).unwrap();
    }
    Hierarchy::V1 { controllers }
}

/// A pure v2 root holding `controllers`, with `enabled` in its `cgroup.subtree_control`.
fn v2(root: &Path, controllers: &str, enabled: &str) -> Hierarchy {
    lay_out(
        root,
        &[
            ("cgroup.controllers", controllers),
            ("cgroup.subtree_control", enabled),
        ],
    );
    Hierarchy::V2 {
        root: root.to_path_buf(),
    }
}

const V1_MEMORY_FILES: [(&str, &str); 5] = [
    ("cgroup.procs", ""),
    ("memory.limit_in_bytes", "9223372036854771712\n"),
    ("memory.soft_limit_in_bytes", "9223372036854771712\n"),
    ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
    (
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    ),
];

fn seed_limits() -> Limits {
    Limits {
        memory: Some(524_800),
        ..Limits::default()
    }
}

#[test]
fn v1_create_makes_the_group_in_every_controller_but_cpuset_and_named_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let h = hybrid(tmp.path());
    let group = Cgroup::create(&h, Path::new("docker/docker-koye"), &Limits::default()).unwrap();
    for joined in ["cpu", "cpuacct", "memory", "freezer", "pids"] {
        assert!(
            tmp.path().join(joined).join("docker/docker-koye").is_dir(),
            "{joined}"
        );
    }
    for alone in ["cpuset", "systemd", "unified"] {
        assert!(!tmp.path().join(alone).join("docker").exists(), "{alone}");
    }
    assert_eq!(group.path(), Path::new("docker/docker-koye"));
}

#[test]
fn v1_create_sets_hard_and_soft_memory_limit_swap_and_shares() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    let memory = tmp.path().join("memory/docker/docker-koye");
    let cpu = tmp.path().join("cpu,cpuacct/docker/docker-koye");
    lay_out(&memory, &V1_MEMORY_FILES);
    lay_out(&cpu, &[("cgroup.procs", ""), ("cpu.shares", "1024\n")]);
    let limits = Limits {
        memory: Some(524_800),
        memory_reservation: Some(524_800),
        memory_swap: Some(1 << 20),
        cpu_shares: Some(512),
        ..Limits::default()
    };
    Cgroup::create(&h, Path::new("docker/docker-koye"), &limits).unwrap();
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "524800");
    assert_eq!(read(&memory.join("memory.soft_limit_in_bytes")), "524800");
    assert_eq!(read(&memory.join("memory.memsw.limit_in_bytes")), "1048576");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
}

#[test]
fn an_existing_empty_group_is_reused_and_a_busy_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    let memory = tmp.path().join("memory/docker/docker-koye");
    lay_out(&memory, &V1_MEMORY_FILES);
    for mount in ["freezer", "cpu,cpuacct"] {
        lay_out(
            &tmp.path().join(mount).join("docker/docker-koye"),
            &[("cgroup.procs", "")],
        );
    }
    Cgroup::create(&h, Path::new("docker/docker-koye"), &seed_limits()).unwrap();
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "524800");

    fs::write(memory.join("cgroup.procs"), "4242\n4343\n").unwrap();
    let error = Cgroup::create(&h, Path::new("docker/docker-koye"), &seed_limits()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cgroup {} already holds 2 live processes (pid 4242 among them): another container uses it",
            memory.display()
        )
    );
}

#[test]
fn a_refused_limit_names_the_field_and_value_and_undoes_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    // A fresh temp-dir group has no control files: the write fails as on a kernel without
    // the file, and the directories made for the group go again; the parent stays.
    let error = Cgroup::create(&h, Path::new("docker/docker-koye"), &seed_limits()).unwrap_err();
    let file = tmp
        .path()
        .join("memory/docker/docker-koye/memory.limit_in_bytes");
    assert_eq!(
        error.to_string(),
        format!(
            "memory limit: write 524800 to {}: no such file or directory",
            file.display()
        )
    );
    for mount in ["memory", "freezer", "cpu,cpuacct"] {
        assert!(!tmp.path().join(mount).join("docker/docker-koye").exists());
        assert!(tmp.path().join(mount).join("docker").is_dir());
    }
}

#[test]
fn a_memory_limit_without_a_memory_controller_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Hierarchy::V1 {
        controllers: [("pids".to_string(), tmp.path().join("pids"))].into(),
    };
    let error = Cgroup::create(&h, Path::new("c1"), &seed_limits()).unwrap_err();
    insta::assert_snapshot!(error, @"cgroup controller memory is missing: the cgroup v1 memory controller is not mounted for nsinit (see /proc/self/mountinfo; nsinit leaves cpuset hierarchies alone)");
    assert!(!tmp.path().join("pids/c1").exists());
}

#[test]
fn a_limit_too_low_is_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    let limits = Limits {
        memory: Some(4096),
        ..Limits::default()
    };
    let error = Cgroup::create(&h, Path::new("docker/c1"), &limits).unwrap_err();
    assert!(
        error.to_string().starts_with("memory limit 4096: "),
        "{error}"
    );
    assert!(!tmp.path().join("memory/docker").exists());
}

#[test]
fn v2_create_enables_controllers_in_every_parent_and_sets_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "cpuset cpu io memory pids\n", "cpu\n");
    let parent = tmp.path().join("docker");
    lay_out(
        &parent,
        &[
            ("cgroup.controllers", "cpu\nmemory\n"),
            ("cgroup.subtree_control", "\n"),
        ],
    );
    let group = parent.join("docker-koye");
    lay_out(
        &group,
        &[
            ("cgroup.procs", ""),
            ("memory.max", "max\n"),
            ("cpu.weight", "100\n"),
        ],
    );
    let limits = Limits {
        memory: Some(524_800),
        cpu_shares: Some(1024),
        ..Limits::default()
    };
    Cgroup::create(&h, Path::new("docker/docker-koye"), &limits).unwrap();
    assert_eq!(read(&tmp.path().join("cgroup.subtree_control")), "+memory");
    assert_eq!(read(&parent.join("cgroup.subtree_control")), "+memory +cpu");
    assert_eq!(read(&group.join("memory.max")), "524800");
    assert_eq!(read(&group.join("cpu.weight")), "39");
}

#[test]
fn v2_controllers_already_enabled_are_not_written_again() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "cpu memory\n", "cpu memory\n");
    lay_out(
        &tmp.path().join("c1"),
        &[("cgroup.procs", ""), ("memory.max", "max\n")],
    );
    Cgroup::create(&h, Path::new("c1"), &seed_limits()).unwrap();
    assert_eq!(
        read(&tmp.path().join("cgroup.subtree_control")),
        "cpu memory\n"
    );
    assert_eq!(read(&tmp.path().join("c1/memory.max")), "524800");
}

#[test]
fn v2_without_limits_makes_only_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "", "");
    Cgroup::create(&h, Path::new("nsinit/c1"), &Limits::default()).unwrap();
    assert!(tmp.path().join("nsinit/c1").is_dir());
    assert_eq!(read(&tmp.path().join("cgroup.subtree_control")), "");
}

#[test]
fn v2_missing_memory_controller_names_the_file_and_makes_nothing_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "cpu pids\n", "");
    let error = Cgroup::create(&h, Path::new("c1"), &seed_limits()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cgroup controller memory is missing: not in {}",
            tmp.path().join("cgroup.controllers").display()
        )
    );
    assert!(!tmp.path().join("c1").exists());
}

#[test]
fn attach_writes_the_pid_into_every_hierarchy_once() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    let dirs = ["memory", "freezer", "cpu,cpuacct"].map(|m| tmp.path().join(m).join("c1"));
    for dir in &dirs {
        lay_out(dir, &[("cgroup.procs", "")]);
    }
    let group = Cgroup::open(&h, Path::new("c1")).unwrap();
    group.attach(Pid::from_raw(4242)).unwrap();
    for dir in &dirs {
        assert_eq!(read(&dir.join("cgroup.procs")), "4242");
    }
}

#[test]
fn attach_failure_names_the_file_and_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "", "");
    fs::create_dir(tmp.path().join("c1")).unwrap();
    let group = Cgroup::open(&h, Path::new("c1")).unwrap();
    let error = group.attach(Pid::from_raw(4242)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "write 4242 to {}: no such file or directory",
            tmp.path().join("c1/cgroup.procs").display()
        )
    );
}

#[test]
fn open_needs_the_group_in_every_hierarchy() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    fs::create_dir(tmp.path().join("memory/c1")).unwrap();
    let error = Cgroup::open(&h, Path::new("c1")).unwrap_err();
    assert!(matches!(error, CgroupError::NotFound { .. }), "{error}");
    assert!(error.to_string().ends_with("/c1 does not exist"), "{error}");
}

#[test]
fn dir_fd_is_the_group_directory_on_v2_and_none_on_v1() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "", "");
    let group = Cgroup::create(&h, Path::new("c1"), &Limits::default()).unwrap();
    let fd = group.dir_fd().unwrap().expect("an fd on v2");
    let opened = nix::sys::stat::fstat(fd.as_fd()).unwrap();
    let on_disk = nix::sys::stat::stat(&tmp.path().join("c1")).unwrap();
    assert_eq!(
        (opened.st_dev, opened.st_ino),
        (on_disk.st_dev, on_disk.st_ino)
    );

    let tmp = tempfile::tempdir().unwrap();
    let group = Cgroup::create(&v1_vm(tmp.path()), Path::new("c1"), &Limits::default()).unwrap();
    assert!(group.dir_fd().unwrap().is_none());
}

#[test]
fn remove_takes_the_group_from_every_hierarchy_and_keeps_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let h = hybrid(tmp.path());
    let group = Cgroup::create(&h, Path::new("docker/docker-koye"), &Limits::default()).unwrap();
    group.remove().unwrap();
    for mount in ["cpu", "cpuacct", "memory", "freezer", "pids"] {
        assert!(!tmp.path().join(mount).join("docker/docker-koye").exists());
        assert!(tmp.path().join(mount).join("docker").is_dir());
    }
}

#[test]
fn remove_of_a_group_already_gone_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "", "");
    let group = Cgroup::create(&h, Path::new("c1"), &Limits::default()).unwrap();
    fs::remove_dir(tmp.path().join("c1")).unwrap();
    group.remove().unwrap();
}

#[test]
fn v1_stats_read_memory_figures_oom_kills_and_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    let memory = tmp.path().join("memory/docker/docker-koye");
    lay_out(
        &memory,
        &[
            ("cgroup.procs", "12\n34\n"),
            ("memory.usage_in_bytes", "208896\n"),
            ("memory.max_usage_in_bytes", "524288\n"),
            ("memory.limit_in_bytes", "524288\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
        ],
    );
    for mount in ["freezer", "cpu,cpuacct"] {
        lay_out(
            &tmp.path().join(mount).join("docker/docker-koye"),
            &[("cgroup.procs", "12\n34\n")],
        );
    }
    let group = Cgroup::open(&h, Path::new("docker/docker-koye")).unwrap();
    let stats = group.stats();
    assert_eq!(
        stats,
        Stats {
            cgroup: "docker/docker-koye".into(),
            memory_usage: Some(208_896),
            memory_max_usage: Some(524_288),
            memory_limit: Some(524_288),
            oom_kills: 3,
            processes: 2,
        }
    );
    insta::assert_snapshot!(serde_json::to_string(&stats).unwrap(), @r#"{"cgroup":"docker/docker-koye","memory_usage":208896,"memory_max_usage":524288,"memory_limit":524288,"oom_kills":3,"processes":2}"#);
    assert!(!group.is_empty());
}

#[test]
fn v2_stats_read_memory_current_peak_and_events() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "memory\n", "memory\n");
    lay_out(
        &tmp.path().join("c1"),
        &[
            ("cgroup.procs", "7\n"),
            ("memory.current", "4096\n"),
            ("memory.peak", "8192\n"),
            ("memory.max", "max\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n",
            ),
        ],
    );
    let stats = Cgroup::open(&h, Path::new("c1")).unwrap().stats();
    assert_eq!(
        stats,
        Stats {
            cgroup: "c1".into(),
            memory_usage: Some(4096),
            memory_max_usage: Some(8192),
            memory_limit: None,
            oom_kills: 1,
            processes: 1,
        }
    );
}

#[test]
fn without_a_memory_controller_stats_say_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "", "");
    let group = Cgroup::create(&h, Path::new("c1"), &Limits::default()).unwrap();
    let stats = group.stats();
    assert_eq!(
        (stats.memory_usage, stats.memory_limit, stats.oom_kills),
        (None, None, 0)
    );
    assert!(group.is_empty());
}

#[test]
fn v1_memory_limit_reads_unlimited_as_none_and_rounded_values_as_held() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    let memory = tmp.path().join("memory/c1");
    lay_out(&memory, &V1_MEMORY_FILES);
    for mount in ["freezer", "cpu,cpuacct"] {
        fs::create_dir(tmp.path().join(mount).join("c1")).unwrap();
    }
    let group = Cgroup::open(&h, Path::new("c1")).unwrap();
    assert_eq!(group.memory_limit(), None);
    fs::write(memory.join("memory.limit_in_bytes"), "524288\n").unwrap();
    assert_eq!(group.memory_limit(), Some(524_288));
}

#[test]
fn oom_kill_is_the_kill_count_not_the_oom_count() {
    let v1 = "oom_kill_disable 0\nunder_oom 1\noom_kill 5\n";
    let v2 = "low 0\nhigh 0\nmax 40\noom 7\noom_kill 2\noom_group_kill 0\n";
    assert_eq!(keyed(v1, "oom_kill"), Some(5));
    assert_eq!(keyed(v2, "oom_kill"), Some(2));
    assert_eq!(keyed("oom 7\n", "oom_kill"), None);
}

#[test]
fn kill_all_on_an_empty_v2_group_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "", "");
    lay_out(
        &tmp.path().join("c1"),
        &[("cgroup.procs", ""), ("cgroup.kill", "")],
    );
    Cgroup::open(&h, Path::new("c1"))
        .unwrap()
        .kill_all()
        .unwrap();
    // Nothing to kill: no cgroup.kill (the host test exercises the real one).
    assert_eq!(read(&tmp.path().join("c1/cgroup.kill")), "");
}

#[test]
fn kill_all_on_an_empty_v1_group_leaves_the_freezer_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v1_vm(tmp.path());
    for mount in ["memory", "cpu,cpuacct"] {
        lay_out(&tmp.path().join(mount).join("c1"), &[("cgroup.procs", "")]);
    }
    let freezer = tmp.path().join("freezer/c1");
    lay_out(
        &freezer,
        &[("cgroup.procs", ""), ("freezer.state", "THAWED\n")],
    );
    Cgroup::open(&h, Path::new("c1"))
        .unwrap()
        .kill_all()
        .unwrap();
    assert_eq!(read(&freezer.join("freezer.state")), "THAWED\n");
}

#[test]
fn paths_outside_the_hierarchy_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let h = v2(tmp.path(), "", "");
    for (path, reason) in [
        ("/docker/c1", "must be relative to the cgroup root"),
        ("docker/../../c1", "must not contain `.` or `..`"),
        ("", "empty: the container needs a group of its own"),
    ] {
        let error = Cgroup::create(&h, Path::new(path), &Limits::default()).unwrap_err();
        assert_eq!(error.to_string(), format!("cgroup path {path:?}: {reason}"));
    }
}
