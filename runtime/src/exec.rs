//! `nsinit exec` and `nsinit stats`, the seed's commands: read a directory's
//! `container.json`, lower it to a plan, start the container and supervise it to the end, or,
//! while it lives, join it. The directory's record and `.nspid` (`state`) make it joinable.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use crate::cgroups::Hierarchy;
use crate::error::{describe_io, StepContext};
use crate::plan::Namespace;
use crate::process::{self, join, supervise};
use crate::spec::container_json;
use crate::spec::{ConfigError, ErrorKind};
use crate::state::{self, ContainerDir, Record, StateFile};
use crate::terminal::{self, RawMode, TtyMode};
use crate::{cgroups, namespaces, plan::Plan, Error};

/// The name of the config file in a container's directory.
pub const CONFIG_FILE: &str = "container.json";

/// The largest `container.json` nsinit reads.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What `nsinit exec` was asked to do.
pub struct ExecOptions {
    /// The container's directory, as the user gave it (`.` by default).
    pub dir: PathBuf,
    pub tty: TtyMode,
    /// The command and its arguments.
    pub command: Vec<OsString>,
}

/// `nsinit exec`: run the command as PID 1 of a new container made from `dir`, or, while
/// the container of `dir` lives, join it. Returns the exit code nsinit should exit with.
pub fn exec(options: &ExecOptions) -> Result<i32, Error> {
    let dir = ContainerDir::open(&options.dir)?;
    let lock = StateFile::lock(&dir)?;
    match lock
        .read()
        .map(|record| (state::check(&record, &dir), record))
    {
        Some((state::Liveness::Alive { pidfd }, record)) => {
            drop(lock);
            return join::run(&record, pidfd, &options.command, options.tty.wanted());
        }
        Some((state::Liveness::Gone(reason), record)) => {
            eprintln!("nsinit: {}: removing stale state: {reason}", state::NSPID);
            remove_stale_cgroup(&record);
            lock.clear();
            dir.remove_nspid();
        }
        None if dir.has_nspid() => {
            let said = dir.read_nspid().unwrap_or_default();
            eprintln!(
                "nsinit: {}: removing stale file (says {said:?}; no container of nsinit runs here)",
                state::NSPID
            );
            dir.remove_nspid();
        }
        None => {}
    }
    let started = create(options, &dir, lock);
    if started.is_err() {
        // A start that failed leaves no state file behind either.
        StateFile::remove_if_unused(&dir);
    }
    started
}

/// The create half of `exec`: read the config, lower it to a plan, start the container,
/// supervise it.
fn create(options: &ExecOptions, dir: &ContainerDir, lock: StateFile) -> Result<i32, Error> {
    let config_path = display_path(&options.dir, CONFIG_FILE);
    let text = read_config(&dir.path, &config_path)?;
    let config = container_json::parse(Path::new(&config_path), &text)?;
    let rootless = !nix::unistd::geteuid().is_root();
    if rootless {
        refuse_rootless(&config, &config_path)?;
    }
    let site = container_json::Site {
        rootfs: &dir.path,
        id: &dir.id(),
        rootless,
    };
    let mut plan = container_json::lower(&config, &site);
    plan.process.terminal = options.tty.wanted();
    let clone_flags = namespaces::clone_flags(&plan).map_err(|source| Error::Namespaces {
        path: config_path.clone(),
        source,
    })?;
    let command = process::Command::new(&options.command, &plan.process.env)?;
    let start = process::Start {
        plan: &plan,
        clone_flags,
        command: Some(&command),
        release: process::Release::Supervised,
        preserve_fds: 0,
    };
    run(&start, dir, lock)
}

/// What a plain user (rootless) cannot have, refused by its field before anything is made.
fn refuse_rootless(config: &container_json::Config, path: &str) -> Result<(), Error> {
    let refuse = |field: &str, why| {
        Err(Error::Config(ConfigError::new(
            Path::new(path),
            field.to_string(),
            ErrorKind::Rootless { why },
        )))
    };
    if !config.has(Namespace::User) {
        return refuse(
            "namespaces",
            "list NEWUSER (with uid_mappings and gid_mappings): the other namespaces are made \
             as root of a user namespace of the container's own",
        );
    }
    if config.network.is_some() {
        return refuse(
            "network",
            "a veth on a host bridge needs root; a container with NEWNET gets lo",
        );
    }
    if config.cgroups.is_some() && !matches!(Hierarchy::detect(), Ok(Hierarchy::V2 { .. })) {
        return refuse(
            "cgroups",
            "cgroup v1 delegates nothing to users: limits need root (or cgroup v2)",
        );
    }
    Ok(())
}

/// Start the container, make it joinable, release it and supervise it to the end; returns
/// nsinit's exit code. `state` is the locked state file: the lock is let go once the
/// container is joinable.
fn run(start: &process::Start<'_>, dir: &ContainerDir, state: StateFile) -> Result<i32, Error> {
    // Blocked before the clone, so that no signal for the container is lost.
    let signals = process::block_forwarded_signals()?;
    let mut created = process::create(start)?;
    let published = Published::new(dir, &state, start.plan, created.container.pid)?;
    drop(state);
    let pty_master = created.pty_master.take();
    let host_stdin = std::io::stdin();
    let raw_mode = pty_master.as_ref().and_then(|master| {
        terminal::copy_window_size(host_stdin.as_fd(), master.as_fd());
        RawMode::enter(host_stdin.as_fd())
    });
    let result = created
        .release(String::new())
        .and_then(|()| supervise::run(&mut created.container, &signals, pty_master));
    drop(raw_mode);
    created.container.kill_and_wait();
    let result = match created.cgroup.take() {
        Some(group) => group.finish(result),
        None => result,
    };
    published.remove();
    result
}

/// A container made public: its record in its state file and `.nspid` in its directory.
/// [`Published::remove`] takes both back once PID 1 is gone.
struct Published<'a> {
    dir: &'a ContainerDir,
    pid: Pid,
}

impl<'a> Published<'a> {
    fn new(dir: &'a ContainerDir, state: &StateFile, plan: &Plan, pid: Pid) -> Result<Self, Error> {
        let start_time = state::start_time(pid)
            .ok_or(nix::Error::ESRCH)
            .step(|| format!("read the start time of container process {pid}"))?;
        state.write(&Record {
            pid: pid.as_raw(),
            start_time,
            plan: plan.clone(),
        })?;
        let published = Published { dir, pid };
        if let Err(e) = dir.write_nspid(pid) {
            published.remove();
            return Err(e.into());
        }
        Ok(published)
    }

    fn remove(self) {
        // Under the lock, so that a concurrent nsinit never sees half of it. Once PID 1 is
        // gone, another nsinit may have found it dead and started the next container here:
        // its record and its `.nspid` are not ours to remove.
        let state = StateFile::lock_existing(self.dir).ok().flatten();
        let record = state.as_ref().and_then(StateFile::read);
        if record.is_some_and(|r| r.pid != self.pid.as_raw()) {
            return;
        }
        self.dir.remove_nspid();
        if let Some(state) = state {
            state.remove();
        }
    }
}

/// A dead container's leftovers in its cgroup (processes outside a pid namespace survive a
/// SIGKILLed nsinit): kill them and remove the group.
fn remove_stale_cgroup(record: &Record) {
    let Some(cgroup) = &record.plan.cgroup else {
        return;
    };
    let group = cgroups::Hierarchy::detect().and_then(|h| {
        let path = cgroups::resolve(&h, &cgroup.path)?;
        cgroups::Cgroup::open(&h, &path)
    });
    if let Ok(group) = group {
        let _ = group.kill_all();
        let _ = group.remove();
    }
}

/// `nsinit stats`: the running container's cgroup figures, as JSON.
pub fn stats(dir: &Path) -> Result<String, Error> {
    let dir = ContainerDir::open(dir)?;
    let lock = StateFile::lock_existing(&dir)?;
    let record = lock
        .and_then(|lock| lock.read())
        .filter(|record| matches!(state::check(record, &dir), state::Liveness::Alive { .. }))
        .ok_or_else(|| Error::NotRunning {
            dir: dir.path.clone(),
        })?;
    let cgroup = record.plan.cgroup.ok_or(Error::NoCgroup)?;
    let hierarchy = cgroups::Hierarchy::detect()?;
    let group = cgroups::Cgroup::open(&hierarchy, &cgroups::resolve(&hierarchy, &cgroup.path)?)?;
    Ok(serde_json::to_string_pretty(&group.stats()).expect("stats serialize"))
}

/// `dir/name` as the user would write it: `./container.json` for the current directory.
fn display_path(dir: &Path, name: &str) -> String {
    let dir = dir.display().to_string();
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Read `container.json` from the container's directory. The directory is the container's
/// root, so the container can replace the file: never follow a symlink, read regular files
/// only, and bound the size.
fn read_config(rootfs: &Path, shown: &str) -> Result<String, Error> {
    let fail = |reason: String| Error::ReadConfig {
        path: shown.to_string(),
        reason,
    };
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(rootfs.join(CONFIG_FILE))
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => fail(format!(
                "no such file: a container directory holds its rootfs and a {CONFIG_FILE}"
            )),
            Some(libc::ELOOP) => fail("is a symlink; refusing to follow it".into()),
            _ => fail(describe_io(&e)),
        })?;
    let meta = file.metadata().map_err(|e| fail(describe_io(&e)))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(fail(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| fail(describe_io(&e)))?;
    Ok(text)
}
