//! nsinit: run a directory holding a root filesystem and a `container.json` as a container.
//!
//! The library does the work; `main.rs` is a thin CLI over [`exec`]. A config is read and
//! lowered to a [`plan::Plan`] by its front-end (`spec`); the engine (`process`, `state`,
//! and one module per kernel concern) reads only the plan. `sys` holds the raw system calls;
//! the only `unsafe` outside it are the two calls of the unsafe `sys::clone3` (start, join).

pub mod capabilities;
pub mod cgroups;
pub mod error;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod plan;
pub mod process;
pub mod spec;
pub mod state;
pub mod sys;
pub mod terminal;

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use error::{describe_io, Failure, StepError, EXIT_SETUP};
use spec::container_json;
use terminal::TtyMode;

/// The name of the config file in a container's directory.
pub const CONFIG_FILE: &str = "container.json";

/// The largest `container.json` nsinit reads.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Everything that can stop `nsinit exec` before or around the command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    ReadConfig { path: String, reason: String },
    #[error(transparent)]
    Config(#[from] spec::ConfigError),
    #[error("{path}: {source}")]
    Namespaces {
        path: String,
        source: namespaces::NamespaceError,
    },
    #[error(transparent)]
    Command(#[from] process::CommandError),
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// A step on nsinit's side failed.
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("stats: no container is running in {}", .dir.display())]
    NotRunning { dir: PathBuf },
    #[error("stats: the running container has no cgroup (no `cgroups` in its container.json)")]
    NoCgroup,
    #[error("the container process died during setup ({step}) with exit code {code}")]
    DiedDuringSetup { step: &'static str, code: i32 },
    #[error("the container process did not finish setup ({step}) within {secs}s")]
    SetupTimeout { step: &'static str, secs: u64 },
    #[error("start channel: unexpected message {message}")]
    Protocol { message: String },
    /// The container's process failed a setup step or could not exec the command.
    #[error(transparent)]
    Container(Failure),
}

impl Error {
    /// nsinit's exit code for this error (see README: 125, or 126/127 for the command).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Container(failure) => failure.code.into(),
            _ => EXIT_SETUP,
        }
    }
}

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
    let dir = state::ContainerDir::open(&options.dir)?;
    let lock = state::StateFile::lock(&dir)?;
    match lock
        .read()
        .map(|record| (state::check(&record, &dir), record))
    {
        Some((state::Liveness::Alive { pidfd }, record)) => {
            if !process::join::running_sealed() {
                drop(lock);
                return Err(process::join::reexec_sealed(&record));
            }
            drop(lock);
            return process::join::join(process::join::Join {
                record: &record,
                pid1: pidfd,
                command: &options.command,
                tty: options.tty.wanted(),
            });
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
        state::StateFile::remove_if_unused(&dir);
    }
    started
}

/// The create half of `exec`: read the config, lower it to a plan, start the container,
/// supervise it.
fn create(
    options: &ExecOptions,
    dir: &state::ContainerDir,
    lock: state::StateFile,
) -> Result<i32, Error> {
    let config_path = display_path(&options.dir, CONFIG_FILE);
    let text = read_config(&dir.path, &config_path)?;
    let config = container_json::parse(Path::new(&config_path), &text)?;
    let site = container_json::Site {
        rootfs: &dir.path,
        id: &dir.id(),
    };
    let plan = container_json::lower(&config, &site);
    let clone_flags =
        namespaces::clone_flags(&plan.namespaces).map_err(|source| Error::Namespaces {
            path: config_path.clone(),
            source,
        })?;
    let command = process::Command::new(&options.command, &plan.process.env)?;
    process::start(
        &process::Start {
            dir,
            plan: &plan,
            clone_flags,
            command: &command,
            tty: options.tty.wanted(),
        },
        lock,
    )
}

/// A dead container's leftovers in its cgroup (processes outside a pid namespace survive a
/// SIGKILLed nsinit): kill them and remove the group.
fn remove_stale_cgroup(record: &state::Record) {
    let Some(cgroup) = &record.plan.cgroup else {
        return;
    };
    if let Ok(group) =
        cgroups::Hierarchy::detect().and_then(|h| cgroups::Cgroup::open(&h, &cgroup.path))
    {
        let _ = group.kill_all();
        let _ = group.remove();
    }
}

/// `nsinit stats`: the running container's cgroup figures, as JSON.
pub fn stats(dir: &Path) -> Result<String, Error> {
    let dir = state::ContainerDir::open(dir)?;
    let lock = state::StateFile::lock_existing(&dir)?;
    let record = lock
        .and_then(|lock| lock.read())
        .filter(|record| matches!(state::check(record, &dir), state::Liveness::Alive { .. }))
        .ok_or_else(|| Error::NotRunning {
            dir: dir.path.clone(),
        })?;
    let cgroup = record.plan.cgroup.ok_or(Error::NoCgroup)?;
    let group = cgroups::Cgroup::open(&cgroups::Hierarchy::detect()?, &cgroup.path)?;
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
