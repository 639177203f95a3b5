//! The cgroups module against this host's real hierarchy (hybrid here: the v1 memory
//! controller), as root. Each test works under a parent group of its own,
//! `nsinit-test-<pid>-<test>`, kills only the processes it spawned, and removes every group
//! it made.

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fixtures::harness::{needs_root, require, Ran, Skip, Trial};
use nix::unistd::Pid;
use nsinit::cgroups::{Cgroup, CgroupError, Hierarchy, Limits};

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        memory_limit_is_visible_from_the_host_for_first_and_joined_processes,
        an_allocation_beyond_the_limit_is_counted_as_an_oom_kill,
        kill_all_kills_every_process_of_the_group_and_its_forks,
        a_group_with_live_processes_is_refused_and_an_empty_one_reused,
        v2_cgroup_kill_and_the_group_fd_on_a_cgroup2_mount,
    ]
}

const PYTHON: &str = "/usr/bin/python3";

/// The host hierarchy, or why the test cannot run here.
fn host() -> Result<Hierarchy, Skip> {
    needs_root("it makes cgroups")?;
    Hierarchy::detect().map_err(|e| Skip(format!("no usable cgroup hierarchy on this host: {e}")))
}

/// The mount points a hierarchy's groups live under.
fn mounts(h: &Hierarchy) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = match h {
        Hierarchy::V2 { root } => vec![root.clone()],
        Hierarchy::V1 { controllers } => controllers.values().cloned().collect(),
    };
    mounts.dedup();
    mounts
}

/// The directory holding the memory files of `relative`.
fn memory_dir(h: &Hierarchy, relative: &Path) -> PathBuf {
    match h {
        Hierarchy::V2 { root } => root.join(relative),
        Hierarchy::V1 { controllers } => controllers["memory"].join(relative),
    }
}

/// A test's own parent group and the processes it spawned; dropping it kills those processes
/// (by pid) and removes every group under the parent, then the parent.
struct Scratch {
    h: Hierarchy,
    parent: PathBuf,
    children: Vec<Child>,
}

impl Scratch {
    fn new(h: Hierarchy, test: &str) -> Scratch {
        let parent = PathBuf::from(format!("nsinit-test-{}-{test}", std::process::id()));
        Scratch {
            h,
            parent,
            children: Vec::new(),
        }
    }

    fn group(&self, name: &str) -> PathBuf {
        self.parent.join(name)
    }

    /// Spawn `sh -c SCRIPT`, which waits for a line on stdin before doing anything.
    fn spawn(&mut self, script: &str) -> Pid {
        let child = Command::new("/bin/sh")
            .args(["-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = Pid::from_raw(child.id() as i32);
        self.children.push(child);
        pid
    }

    /// Let a spawned shell go on (it is in its cgroup by now).
    fn release(&mut self, pid: Pid) {
        let child = self.child(pid);
        child.stdin.take().unwrap().write_all(b"\n").unwrap();
    }

    fn child(&mut self, pid: Pid) -> &mut Child {
        self.children
            .iter_mut()
            .find(|c| c.id() as i32 == pid.as_raw())
            .unwrap()
    }

    /// Wait (at most 10 s) for a spawned process and return the signal that killed it, if
    /// one did.
    fn wait_signal(&mut self, pid: Pid) -> Option<i32> {
        let child = self.child(pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.signal();
            }
            assert!(Instant::now() < deadline, "process {pid} still runs");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Scratch {
    /// Also after a failed assertion: kill the spawned processes and their forks (whatever is
    /// still in this test's groups: only this test put processes there), then remove the
    /// groups, retrying while the kernel lets the dead go.
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut dirs = Vec::new();
        for mount in mounts(&self.h) {
            let parent = mount.join(&self.parent);
            if let Ok(entries) = fs::read_dir(&parent) {
                dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
            dirs.push(parent);
        }
        for dir in &dirs {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.split_whitespace().filter_map(|p| p.parse().ok()) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for dir in &dirs {
            while fs::remove_dir(dir).is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY))
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// `/proc/PID/cgroup` names `relative` for the hierarchy holding the memory files (v1: the
/// `memory` line; v2: the `0::` line).
fn in_group(h: &Hierarchy, pid: Pid, relative: &Path) -> bool {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("/{}", relative.display());
    text.lines().any(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
        let hierarchy = match h {
            Hierarchy::V2 { .. } => controllers == Some(""),
            Hierarchy::V1 { .. } => {
                controllers.is_some_and(|c| c.split(',').any(|c| c == "memory"))
            }
        };
        hierarchy && path == Some(want.as_str())
    })
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Skip unless the hierarchy has a memory controller nsinit can use.
fn memory_controller(h: &Hierarchy) -> Ran {
    let present = match h {
        Hierarchy::V1 { controllers } => controllers.contains_key("memory"),
        Hierarchy::V2 { root } => fs::read_to_string(root.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory")),
    };
    require(present, "the host has no memory controller nsinit can use")
}

fn memory_limit_is_visible_from_the_host_for_first_and_joined_processes() -> Ran {
    let h = host()?;
    memory_controller(&h)?;
    let mut scratch = Scratch::new(h.clone(), "limit");
    let relative = scratch.group("c1");
    let limits = Limits {
        memory: Some(8 << 20),
        memory_reservation: Some(8 << 20),
        cpu_shares: Some(512),
        ..Limits::default()
    };
    let group = Cgroup::create(&h, &relative, &limits).unwrap();
    let first = scratch.spawn("exec sleep 60");
    group.attach(first).unwrap();
    let joined = scratch.spawn("exec sleep 60");
    Cgroup::open(&h, &relative).unwrap().attach(joined).unwrap();

    assert!(in_group(&h, first, &relative));
    assert!(in_group(&h, joined, &relative));
    assert_eq!(group.memory_limit(), Some(8 << 20));
    let memory = memory_dir(&h, &relative);
    if h.is_v2() {
        assert_eq!(
            fs::read_to_string(memory.join("memory.max")).unwrap(),
            "8388608\n"
        );
    } else {
        for file in ["memory.limit_in_bytes", "memory.soft_limit_in_bytes"] {
            assert_eq!(
                fs::read_to_string(memory.join(file)).unwrap(),
                "8388608\n",
                "{file}"
            );
        }
    }
    let stats = group.stats();
    assert_eq!(stats.processes, 2);
    assert_eq!(stats.memory_limit, Some(8 << 20));
    assert_eq!(stats.oom_kills, 0);

    group.kill_all().unwrap();
    assert!(group.is_empty());
    assert_eq!(scratch.wait_signal(first), Some(libc::SIGKILL));
    assert_eq!(scratch.wait_signal(joined), Some(libc::SIGKILL));
    let dirs: Vec<PathBuf> = mounts(&h).iter().map(|m| m.join(&relative)).collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    group.remove().unwrap();
    for dir in dirs {
        assert!(!dir.exists(), "{} is left behind", dir.display());
        assert!(dir.parent().unwrap().is_dir(), "the parent must stay");
    }
    Ok(())
}

fn an_allocation_beyond_the_limit_is_counted_as_an_oom_kill() -> Ran {
    let h = host()?;
    memory_controller(&h)?;
    require(
        Path::new(PYTHON).exists(),
        format!("{PYTHON} (the allocating process) is missing"),
    )?;
    let mut scratch = Scratch::new(h.clone(), "oom");
    let relative = scratch.group("c1");
    let memory = 32 << 20;
    // With swap on the host, the limit must cover swap too or the process just swaps.
    let swap_on = fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1);
    let limits = Limits {
        memory: Some(memory),
        memory_swap: swap_on.then_some(memory as i64),
        ..Limits::default()
    };
    let group = Cgroup::create(&h, &relative, &limits).unwrap();
    let pid = scratch.spawn(&format!("exec {PYTHON} -c 'b = bytearray(64 << 20)'"));
    group.attach(pid).unwrap();
    assert_eq!(group.oom_kills(), 0);
    scratch.release(pid);
    assert_eq!(scratch.wait_signal(pid), Some(libc::SIGKILL));
    assert_eq!(group.oom_kills(), 1);
    let stats = group.stats();
    assert_eq!(stats.oom_kills, 1);
    assert!(stats
        .memory_max_usage
        .map_or(true, |max| max <= memory && max > memory / 2));
    wait_until("the group to empty", || group.is_empty());
    group.remove().unwrap();
    assert!(!memory_dir(&h, &relative).exists());
    Ok(())
}

fn kill_all_kills_every_process_of_the_group_and_its_forks() -> Ran {
    let h = host()?;
    let mut scratch = Scratch::new(h.clone(), "kill");
    let relative = scratch.group("c1");
    let group = Cgroup::create(&h, &relative, &Limits::default()).unwrap();
    let pid = scratch.spawn("sleep 60 & sleep 60 & exec sleep 60");
    group.attach(pid).unwrap();
    scratch.release(pid);
    wait_until("three processes in the group", || {
        group.stats().processes == 3
    });
    let procs = fs::read_to_string(mounts(&h)[0].join(&relative).join("cgroup.procs")).unwrap();
    let forks: Vec<i32> = procs
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .filter(|&p| p != pid.as_raw())
        .collect();
    assert_eq!(forks.len(), 2);

    group.kill_all().unwrap();
    assert!(group.is_empty());
    assert_eq!(scratch.wait_signal(pid), Some(libc::SIGKILL));
    for fork in forks {
        // Reparented to an ancestor that reaps it; gone or a zombie being reaped.
        wait_until("the fork to die", || {
            fs::read_to_string(format!("/proc/{fork}/stat")).map_or(true, |stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap()
                    .trim_start()
                    .starts_with('Z')
            })
        });
    }
    group.remove().unwrap();
    Ok(())
}

fn a_group_with_live_processes_is_refused_and_an_empty_one_reused() -> Ran {
    let h = host()?;
    let mut scratch = Scratch::new(h.clone(), "busy");
    let relative = scratch.group("c1");
    let group = Cgroup::create(&h, &relative, &Limits::default()).unwrap();
    let pid = scratch.spawn("exec sleep 60");
    group.attach(pid).unwrap();

    let error = Cgroup::create(&h, &relative, &Limits::default()).unwrap_err();
    assert!(
        matches!(error, CgroupError::InUse { processes: 1, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&relative.display().to_string()),
        "{error}"
    );

    group.kill_all().unwrap();
    assert_eq!(scratch.wait_signal(pid), Some(libc::SIGKILL));
    // Left behind as by a crash: the next start takes it over.
    let again = Cgroup::create(&h, &relative, &Limits::default()).unwrap();
    again.remove().unwrap();
    assert!(!mounts(&h)[0].join(&relative).exists());
    Ok(())
}

fn v2_cgroup_kill_and_the_group_fd_on_a_cgroup2_mount() -> Ran {
    host()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = mountinfo
        .lines()
        .find_map(|line| {
            let (mount, fs_type) = line.split_once(" - ")?;
            fs_type
                .starts_with("cgroup2 ")
                .then(|| PathBuf::from(mount.split(' ').nth(4).unwrap()))
        })
        .ok_or_else(|| Skip("no cgroup2 mount on this host".into()))?;
    require(
        root.join("cgroup.kill").exists() || root.join("cgroup.procs").exists(),
        format!("{} is not a cgroup2 root", root.display()),
    )?;
    let h = Hierarchy::V2 { root: root.clone() };
    let mut scratch = Scratch::new(h.clone(), "v2");
    let relative = scratch.group("c1");
    let group = Cgroup::create(&h, &relative, &Limits::default()).unwrap();
    let fd = group.dir_fd().unwrap().expect("a group fd on v2");
    let stat = nix::sys::stat::fstat(&fd).unwrap();
    let dir = nix::sys::stat::stat(&root.join(&relative)).unwrap();
    assert_eq!((stat.st_dev, stat.st_ino), (dir.st_dev, dir.st_ino));

    let pid = scratch.spawn("exec sleep 60");
    group.attach(pid).unwrap();
    assert!(in_group(&h, pid, &relative));
    group.kill_all().unwrap();
    assert_eq!(scratch.wait_signal(pid), Some(libc::SIGKILL));
    group.remove().unwrap();
    assert!(!root.join(&relative).exists());
    Ok(())
}
