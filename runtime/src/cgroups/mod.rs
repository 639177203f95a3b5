//! The container's cgroup: `<parent>/<name>` in every hierarchy nsinit uses, its limits and
//! device rules, placing processes in it, killing them through it, its figures, and removing it.
//!
//! Written straight against cgroupfs (a handful of `mkdir`/`write`/`rmdir`) rather than with
//! `cgroups-rs`, which pulls in a D-Bus stack (see ARCHITECTURE.md). Every file operation
//! starts from the mount root held by [`Hierarchy`], so tests run against temp directories.
//!
//! Start path cost, v1 hybrid host: one `mkdir` per mounted controller, two writes for the
//! memory limit, one `cgroup.procs` write per controller; v2: one `mkdir`, a read of each
//! parent's `cgroup.subtree_control` when a controller must be enabled, one write per limit,
//! and the group's fd for `clone3(CLONE_INTO_CGROUP)` instead of a `cgroup.procs` write.
//! No directory walks. Device rules (`devices.rs`), measured here: v1 0.02 ms (one write per
//! rule), v2 0.11 ms (the program's load, mostly the verifier).

mod devices;
mod hierarchy;
mod limits;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

pub use devices::{
    default_rules, Access, DeviceError, DevicePolicy, DeviceRule, DeviceType, Program,
};
pub use hierarchy::Hierarchy;
pub use limits::{Limits, MIN_MEMORY};

use crate::error::describe_io;
use crate::plan::CgroupPath;
use limits::Controller;

/// How long [`Cgroup::remove`] retries `rmdir` while the kernel still counts exited processes.
const REMOVE_RETRY: Duration = Duration::from_millis(500);
/// How long [`Cgroup::kill_all`] waits for the group to empty before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the v1 freezer gets to go from `FREEZING` to `FROZEN` before the kill goes ahead.
const FREEZE_TIMEOUT: Duration = Duration::from_millis(500);
/// v1 shows "no limit" as the largest page count in bytes (9223372036854771712 with 4 KiB
/// pages); anything above this is that.
const V1_UNLIMITED: u64 = 1 << 62;

/// A failed cgroup step, naming what was done to which file or group.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup filesystem: {detail}")]
    NoFilesystem { detail: String },
    #[error("cgroup controller {controller} is missing: {detail}")]
    MissingController {
        controller: &'static str,
        detail: String,
    },
    #[error("cgroup path {path:?}: {reason}")]
    BadPath { path: PathBuf, reason: &'static str },
    #[error("cgroup {} does not exist", .path.display())]
    NotFound { path: PathBuf },
    #[error(
        "cgroup {} already holds {processes} live processes (pid {first} among them): another container uses it",
        .path.display()
    )]
    InUse {
        path: PathBuf,
        processes: usize,
        first: i32,
    },
    #[error("{field} limit {value}: {reason}")]
    InvalidLimit {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{field} limit: write {value} to {}: {}", .path.display(), describe_io(.error))]
    Limit {
        field: &'static str,
        value: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error("read {}: {}", .path.display(), describe_io(.error))]
    Read { path: PathBuf, error: io::Error },
    #[error("open {}: {}", .path.display(), describe_io(.error))]
    Open { path: PathBuf, error: io::Error },
    #[error("create {}: {}", .path.display(), describe_io(.error))]
    Create { path: PathBuf, error: io::Error },
    #[error("write {value} to {}: {}", .path.display(), describe_io(.error))]
    Write {
        path: PathBuf,
        value: String,
        error: io::Error,
    },
    #[error("remove {}: {}", .path.display(), describe_io(.error))]
    Remove { path: PathBuf, error: io::Error },
    #[error("kill the processes of cgroup {}: {reason}", .path.display())]
    Kill { path: PathBuf, reason: String },
    #[error(transparent)]
    Devices(#[from] DeviceError),
}

/// A container's cgroup figures, for `nsinit stats`. `None`: the kernel does not keep that
/// figure here (no memory controller on the group, or an older kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The group, relative to the hierarchy root.
    pub cgroup: String,
    /// Bytes charged to the group now.
    pub memory_usage: Option<u64>,
    /// The most bytes ever charged to the group (v2: `memory.peak`, Linux 5.19+).
    pub memory_max_usage: Option<u64>,
    /// The memory limit as the kernel holds it; `None` for no limit.
    pub memory_limit: Option<u64>,
    /// Processes the kernel's OOM killer killed in the group.
    pub oom_kills: u64,
    /// Processes in the group now.
    pub processes: u64,
}

/// Move the calling thread (of a single-threaded process) into the groups whose `tasks`
/// files these are (see [`Cgroup::tasks_files`]).
pub fn move_self(tasks: &[File]) -> io::Result<()> {
    for mut file in tasks {
        file.write_all(b"0")?;
    }
    Ok(())
}

/// One container's group, `<parent>/<name>`, across the hierarchies it lives in.
#[derive(Debug)]
pub struct Cgroup {
    /// Relative to the hierarchy root, e.g. `docker/docker-koye`.
    relative: PathBuf,
    v2: bool,
    /// v2 only: the hierarchy root, whose descendants enable controllers for the group.
    root: Option<PathBuf>,
    /// The group's directory under each mount it is made in (one on v2).
    dirs: Vec<PathBuf>,
    /// v1 only: the group's directory by controller name (`memory` → its dir there).
    v1: BTreeMap<String, PathBuf>,
}

impl Cgroup {
    /// Make the group `relative` (e.g. `docker/docker-koye`) with `limits`. Missing parents
    /// are created and later left in place; an existing group without processes (left by a
    /// crash) is reused, one with processes is an error. On v2 the controllers the limits need
    /// are enabled in every parent's `cgroup.subtree_control`. On error, group directories
    /// made here are removed again.
    pub fn create(h: &Hierarchy, relative: &Path, limits: &Limits) -> Result<Cgroup, CgroupError> {
        let group = Cgroup::layout(h, relative)?;
        let writes = limits.writes(group.v2)?;
        let needed = limits.controllers(group.v2);
        for &controller in &needed {
            group.controller_dir(controller)?;
        }
        let mut made = Vec::new();
        let result = (|| {
            for dir in &group.dirs {
                if make_group(dir)? {
                    made.push(dir.clone());
                }
            }
            if let Some(root) = &group.root {
                enable_controllers(root, &group.relative, &needed)?;
            }
            group.write_limits(writes)
        })();
        match result {
            Ok(()) => Ok(group),
            Err(error) => {
                for dir in made {
                    let _ = fs::remove_dir(dir);
                }
                Err(error)
            }
        }
    }

    /// The existing group `relative`, e.g. to place a joining process in a live container's
    /// group. It must exist in every hierarchy nsinit uses.
    pub fn open(h: &Hierarchy, relative: &Path) -> Result<Cgroup, CgroupError> {
        let group = Cgroup::layout(h, relative)?;
        for dir in &group.dirs {
            match fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(CgroupError::NotFound { path: dir.clone() }),
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    return Err(CgroupError::NotFound { path: dir.clone() })
                }
                Err(error) => {
                    return Err(CgroupError::Read {
                        path: dir.clone(),
                        error,
                    })
                }
            }
        }
        Ok(group)
    }

    /// v2: the group's directory, opened for `clone3(CLONE_INTO_CGROUP)` (close-on-exec).
    /// v1 has no such thing: `None`, write the pid with [`Cgroup::attach`] instead.
    pub fn dir_fd(&self) -> Result<Option<OwnedFd>, CgroupError> {
        if !self.v2 {
            return Ok(None);
        }
        let dir = &self.dirs[0];
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|error| CgroupError::Open {
                path: dir.clone(),
                error,
            })?;
        Ok(Some(file.into()))
    }

    /// v1: the group's `tasks` files, opened for a single-threaded process to move itself in
    /// with [`move_self`] (v2 has `dir_fd` instead: empty). A thread writing `0` to `tasks`
    /// is the one migration the kernel does without taking its global threadgroup lock,
    /// whose RCU grace period costs 10-20 ms per `cgroup.procs` write of another pid.
    pub fn tasks_files(&self) -> Result<Vec<File>, CgroupError> {
        if self.v2 {
            return Ok(Vec::new());
        }
        self.dirs
            .iter()
            .map(|dir| {
                let path = dir.join("tasks");
                File::options()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(|error| CgroupError::Open { path, error })
            })
            .collect()
    }

    /// v1: the group's directory in each hierarchy, named as the hierarchy's mount point is
    /// (`memory`, `cpu,cpuacct`), for a container's view of its own groups. v2: empty.
    pub fn v1_dirs(&self) -> Vec<(String, PathBuf)> {
        self.dirs
            .iter()
            .filter(|_| !self.v2)
            .filter_map(|dir| {
                let mount = dir.ancestors().nth(self.relative.components().count())?;
                Some((
                    mount.file_name()?.to_string_lossy().into_owned(),
                    dir.clone(),
                ))
            })
            .collect()
    }

    /// v2: the group's directory (v1: `None`).
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs.first().filter(|_| self.v2).map(PathBuf::as_path)
    }

    /// Whether the group is in the unified (v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// Let the group's processes open and make only the device nodes `rules` allow (see
    /// [`DeviceRule`]): v1 writes the group's `devices.deny` and `devices.allow`, v2 attaches
    /// a device program to the group's directory. Call it before any process is in the group.
    pub fn apply_device_rules(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        let policy = DevicePolicy::new(rules)?;
        if self.v2 {
            let dir = &self.dirs[0];
            let fd = self.dir_fd()?.expect("a v2 group has a directory fd");
            devices::attach_program(dir, fd.as_fd(), &policy.program())?;
        } else {
            let dir = self
                .v1
                .get("devices")
                .ok_or(CgroupError::MissingController {
                    controller: "devices",
                    detail:
                        "the cgroup v1 devices controller is not mounted (see /proc/self/mountinfo)"
                            .into(),
                })?;
            devices::write_v1(dir, &policy)?;
        }
        Ok(())
    }

    /// Move process `pid` (all its threads) into the group, in every hierarchy.
    pub fn attach(&self, pid: Pid) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for dir in &self.dirs {
            let path = dir.join("cgroup.procs");
            write_file(&path, &value).map_err(|error| CgroupError::Write {
                path,
                value: value.clone(),
                error,
            })?;
        }
        Ok(())
    }

    /// How many processes of the group the OOM killer killed (v2 `memory.events`, v1
    /// `memory.oom_control`; `memory.failcnt` would count limit hits, not kills). 0 when the
    /// group has no memory controller.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.memory_file(file)
            .and_then(|text| keyed(&text, "oom_kill"))
            .unwrap_or(0)
    }

    /// The memory limit as the kernel holds it (rounded down to pages); `None` for no limit or
    /// no memory controller.
    pub fn memory_limit(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        let text = self.memory_file(file)?;
        text.trim()
            .parse()
            .ok()
            .filter(|&limit| limit < V1_UNLIMITED)
    }

    /// Kill every process in the group and wait until it is empty. v2: `cgroup.kill` (Linux
    /// 5.14+); v1: freeze the group so nothing forks, SIGKILL each pid, thaw; then, and where
    /// neither is available, SIGKILL whatever `cgroup.procs` still lists until it is empty.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        // The common case after PID 1 of a pid namespace exits: nothing left to kill, and no
        // freezer round trip to pay for.
        if self.is_empty() {
            return Ok(());
        }
        if self.v2 {
            let path = self.dirs[0].join("cgroup.kill");
            match write_file(&path, "1") {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(CgroupError::Write {
                        path,
                        value: "1".into(),
                        error,
                    })
                }
            }
        } else if let Some(freezer) = self.v1.get("freezer") {
            let state = freezer.join("freezer.state");
            let write = |value: &str| {
                write_file(&state, value).map_err(|error| CgroupError::Write {
                    path: state.clone(),
                    value: value.into(),
                    error,
                })
            };
            write("FROZEN")?;
            let deadline = Instant::now() + FREEZE_TIMEOUT;
            while Instant::now() < deadline
                && fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FREEZING")
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            let killed = self.signal_all();
            write("THAWED")?;
            killed?;
        }
        self.kill_until_empty()
    }

    /// Every process in the group now, across hierarchies.
    pub fn pids(&self) -> Vec<Pid> {
        self.procs()
    }

    /// Whether the group is frozen (v2 `cgroup.events` says `frozen 1`, v1 `freezer.state`
    /// says `FROZEN`).
    pub fn is_frozen(&self) -> bool {
        match self.freezer_file() {
            Some((path, true)) => {
                fs::read_to_string(path).is_ok_and(|text| keyed(&text, "frozen") == Some(1))
            }
            Some((path, false)) => {
                fs::read_to_string(path).is_ok_and(|text| text.trim() == "FROZEN")
            }
            None => false,
        }
    }

    /// Freeze or thaw every process of the group, and wait until the kernel says it is so.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (file, value) = match (self.v2, frozen) {
            (true, true) => ("cgroup.freeze", "1"),
            (true, false) => ("cgroup.freeze", "0"),
            (false, true) => ("freezer.state", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED"),
        };
        let dir = match self.v2 {
            true => self.dirs[0].clone(),
            false => self.controller_dir_named("freezer")?,
        };
        let path = dir.join(file);
        write_file(&path, value).map_err(|error| CgroupError::Write {
            path,
            value: value.into(),
            error,
        })?;
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        while self.is_frozen() != frozen && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Apply `limits` to the existing group (what `update` asks), in the order they need.
    pub fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        self.write_limits(limits.writes(self.v2)?)
    }

    /// Write each limit file into its controller's directory, in order.
    fn write_limits(&self, writes: Vec<limits::Write>) -> Result<(), CgroupError> {
        for write in writes {
            let dir = match write.controller {
                Some(controller) => self.controller_dir(controller)?,
                None => &self.dirs[0],
            };
            let path = dir.join(&write.file);
            write_file(&path, &write.value).map_err(|error| CgroupError::Limit {
                field: write.field,
                value: write.value,
                path,
                error,
            })?;
        }
        Ok(())
    }

    /// The file telling whether the group is frozen, and whether it is v2's `cgroup.events`.
    fn freezer_file(&self) -> Option<(PathBuf, bool)> {
        match self.v2 {
            true => Some((self.dirs[0].join("cgroup.events"), true)),
            false => Some((self.v1.get("freezer")?.join("freezer.state"), false)),
        }
    }

    fn controller_dir_named(&self, name: &'static str) -> Result<PathBuf, CgroupError> {
        self.v1
            .get(name)
            .cloned()
            .ok_or(CgroupError::MissingController {
                controller: name,
                detail: format!("the cgroup v1 {name} controller is not mounted"),
            })
    }

    /// Whether no process is in the group (in any hierarchy).
    pub fn is_empty(&self) -> bool {
        self.procs().is_empty()
    }

    /// Remove the group from every hierarchy; its parents stay. `rmdir` is retried briefly
    /// while the kernel still counts processes that just exited (`EBUSY`).
    pub fn remove(self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + REMOVE_RETRY;
        let mut pause = Duration::from_micros(100);
        for dir in &self.dirs {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(error) if error.kind() == ErrorKind::NotFound => break,
                    Err(error)
                        if error.raw_os_error() == Some(libc::EBUSY)
                            && Instant::now() < deadline =>
                    {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(10));
                    }
                    Err(error) => {
                        return Err(CgroupError::Remove {
                            path: dir.clone(),
                            error,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// The group's figures as the kernel reports them now.
    pub fn stats(&self) -> Stats {
        let number = |file: &str| {
            self.memory_file(file)
                .and_then(|text| text.trim().parse().ok())
        };
        let (usage, max_usage) = if self.v2 {
            ("memory.current", "memory.peak")
        } else {
            ("memory.usage_in_bytes", "memory.max_usage_in_bytes")
        };
        Stats {
            cgroup: self.relative.display().to_string(),
            memory_usage: number(usage),
            memory_max_usage: number(max_usage),
            memory_limit: self.memory_limit(),
            oom_kills: self.oom_kills(),
            processes: self.procs().len() as u64,
        }
    }

    /// The group relative to the hierarchy root, e.g. `docker/docker-koye` (as
    /// `/proc/PID/cgroup` shows it, with a leading `/`, when the mount root is the hierarchy's).
    pub fn path(&self) -> &Path {
        &self.relative
    }

    /// Where `relative` lives in `h`, without touching the filesystem.
    fn layout(h: &Hierarchy, relative: &Path) -> Result<Cgroup, CgroupError> {
        check_relative(relative)?;
        let relative = relative.to_path_buf();
        Ok(match h {
            Hierarchy::V2 { root } => {
                let dir = root.join(&relative);
                Cgroup {
                    relative,
                    v2: true,
                    root: Some(root.clone()),
                    dirs: vec![dir],
                    v1: BTreeMap::new(),
                }
            }
            Hierarchy::V1 { controllers } => {
                let mut dirs: Vec<PathBuf> = Vec::new();
                for mount in controllers.values() {
                    let dir = mount.join(&relative);
                    if !dirs.contains(&dir) {
                        dirs.push(dir);
                    }
                }
                let v1 = controllers
                    .iter()
                    .map(|(name, mount)| (name.clone(), mount.join(&relative)))
                    .collect();
                Cgroup {
                    relative,
                    v2: false,
                    root: None,
                    dirs,
                    v1,
                }
            }
        })
    }

    /// The group's directory for `controller`, or an error naming the missing controller.
    fn controller_dir(&self, controller: Controller) -> Result<&Path, CgroupError> {
        if self.v2 {
            return Ok(&self.dirs[0]);
        }
        let name = controller.name(false);
        self.v1
            .get(name)
            .map(PathBuf::as_path)
            .ok_or(CgroupError::MissingController {
                controller: name,
                detail: format!(
                    "the cgroup v1 {name} controller is not mounted for nsinit (see /proc/self/mountinfo; nsinit leaves cpuset hierarchies alone)"
                ),
            })
    }

    fn memory_file(&self, file: &str) -> Option<String> {
        let dir = self.controller_dir(Controller::Memory).ok()?;
        fs::read_to_string(dir.join(file)).ok()
    }

    /// Every pid in the group, across hierarchies, without duplicates.
    fn procs(&self) -> Vec<Pid> {
        let mut pids = Vec::new();
        for dir in &self.dirs {
            for pid in read_procs(dir).unwrap_or_default() {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// SIGKILL every process the group lists now.
    fn signal_all(&self) -> Result<(), CgroupError> {
        for pid in self.procs() {
            match kill(pid, Signal::SIGKILL) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(errno) => {
                    return Err(CgroupError::Kill {
                        path: self.relative.clone(),
                        reason: format!("kill {pid}: {}", crate::error::describe(errno)),
                    })
                }
            }
        }
        Ok(())
    }

    /// SIGKILL what the group lists until it lists nothing, within [`KILL_TIMEOUT`].
    fn kill_until_empty(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        let mut pause = Duration::from_micros(100);
        loop {
            let left = self.procs().len();
            if left == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(CgroupError::Kill {
                    path: self.relative.clone(),
                    reason: format!("{left} processes still in it after SIGKILL"),
                });
            }
            self.signal_all()?;
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

/// Where a planned group is, relative to the hierarchy's root: as given, or below the group
/// this process runs in (read from `/proc/self/cgroup`).
pub fn resolve(h: &Hierarchy, path: &CgroupPath) -> Result<PathBuf, CgroupError> {
    match path {
        CgroupPath::Root(path) => Ok(path.strip_prefix("/").unwrap_or(path).to_path_buf()),
        CgroupPath::Caller(path) => {
            let own = read(Path::new("/proc/self/cgroup"))?;
            let ours = own_group(h, &own).ok_or_else(|| CgroupError::BadPath {
                path: path.clone(),
                reason: "nsinit's own cgroup is not in /proc/self/cgroup",
            })?;
            Ok(Path::new(ours.trim_start_matches('/')).join(path))
        }
    }
}

/// On v2, the directory of the group this process runs in.
pub fn own_v2_dir() -> Option<PathBuf> {
    let h = Hierarchy::detect().ok()?;
    let Hierarchy::V2 { root } = &h else {
        return None;
    };
    let own = read(Path::new("/proc/self/cgroup")).ok()?;
    Some(root.join(own_group(&h, &own)?.trim_start_matches('/')))
}

/// The group of this process in `h`, from the text of `/proc/self/cgroup`: the `0::` line
/// on v2, the memory controller's on v1.
fn own_group<'a>(h: &Hierarchy, text: &'a str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let wanted = match h {
            Hierarchy::V2 { .. } => id == "0" && controllers.is_empty(),
            Hierarchy::V1 { .. } => controllers.split(',').any(|c| c == "memory"),
        };
        wanted.then_some(path)
    })
}

/// A group path must stay below the hierarchy root: relative, no `..`, not empty.
fn check_relative(relative: &Path) -> Result<(), CgroupError> {
    let bad = |reason| CgroupError::BadPath {
        path: relative.to_path_buf(),
        reason,
    };
    if relative.as_os_str().is_empty() {
        return Err(bad("empty: the container needs a group of its own"));
    }
    for component in relative.components() {
        match component {
            Component::Normal(_) => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("must be relative to the cgroup root"))
            }
            Component::CurDir | Component::ParentDir => {
                return Err(bad("must not contain `.` or `..`"))
            }
        }
    }
    Ok(())
}

/// `mkdir` the group, creating missing parents only when the first `mkdir` says they are
/// missing (one syscall in the common case). Returns whether it was made here; an existing
/// group is reused only when no process is in it.
fn make_group(dir: &Path) -> Result<bool, CgroupError> {
    let create = |path: &Path, result: io::Result<()>| {
        result.map_err(|error| CgroupError::Create {
            path: path.to_path_buf(),
            error,
        })
    };
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                create(parent, fs::create_dir_all(parent))?;
            }
            create(dir, fs::create_dir(dir))?;
            Ok(true)
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            let pids = read_procs(dir)?;
            match pids.first() {
                None => Ok(false),
                Some(first) => Err(CgroupError::InUse {
                    path: dir.to_path_buf(),
                    processes: pids.len(),
                    first: first.as_raw(),
                }),
            }
        }
        Err(error) => Err(CgroupError::Create {
            path: dir.to_path_buf(),
            error,
        }),
    }
}

/// v2: enable `needed` in `cgroup.subtree_control` of the root and every parent of the group,
/// top down (a controller can be enabled only where the level above enabled it). Levels that
/// already have them are only read.
fn enable_controllers(
    root: &Path,
    relative: &Path,
    needed: &[Controller],
) -> Result<(), CgroupError> {
    if needed.is_empty() {
        return Ok(());
    }
    let mut level = root.to_path_buf();
    let parents = relative.parent().into_iter().flat_map(Path::components);
    enable_in(&level, needed)?;
    for component in parents {
        level.push(component);
        enable_in(&level, needed)?;
    }
    Ok(())
}

fn enable_in(level: &Path, needed: &[Controller]) -> Result<(), CgroupError> {
    let control = level.join("cgroup.subtree_control");
    let enabled = read(&control)?;
    let missing: Vec<Controller> = needed
        .iter()
        .copied()
        .filter(|c| !words(&enabled).any(|word| word == c.name(true)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let available_path = level.join("cgroup.controllers");
    let available = read(&available_path)?;
    if let Some(absent) = missing
        .iter()
        .find(|c| !words(&available).any(|word| word == c.name(true)))
    {
        return Err(CgroupError::MissingController {
            controller: absent.name(true),
            detail: format!("not in {}", available_path.display()),
        });
    }
    let value = missing
        .iter()
        .map(|c| format!("+{}", c.name(true)))
        .collect::<Vec<_>>()
        .join(" ");
    write_file(&control, &value).map_err(|error| CgroupError::Write {
        path: control,
        value,
        error,
    })
}

/// The words of a controller list, with a leading `+` (as written) ignored.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
        .map(|word| word.trim_start_matches('+'))
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|error| CgroupError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// The pids a group's `cgroup.procs` lists.
fn read_procs(dir: &Path) -> Result<Vec<Pid>, CgroupError> {
    let text = read(&dir.join("cgroup.procs"))?;
    Ok(text
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .map(Pid::from_raw)
        .collect())
}

/// The value of `key` in a flat keyed file (`oom_kill 3` in `memory.events`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(name, _)| *name == key)
        .and_then(|(_, value)| value.trim().parse().ok())
}

/// One `write(2)` of `value` to an existing control file: cgroupfs takes a value per write,
/// and never creates files. Truncating keeps temp-dir hierarchies in tests readable.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut file = File::options().write(true).truncate(true).open(path)?;
    file.write_all(value.as_bytes())
}

#[cfg(test)]
mod tests;
