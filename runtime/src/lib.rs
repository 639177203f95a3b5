//! nsinit: run a directory holding a root filesystem and a `container.json` as a container.
//!
//! The library does the work; `main.rs` is a thin CLI over [`exec`]. One module per kernel
//! concern; `sys` holds the raw system calls and is the only module with `unsafe`.

pub mod capabilities;
pub mod cgroups;
pub mod config;
pub mod error;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod process;
pub mod seccomp;
pub mod state;
pub mod sys;
pub mod terminal;

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use error::{describe_io, EXIT_SETUP};
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
    State(state::StateError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{path}: {source}")]
    Namespaces {
        path: String,
        source: namespaces::NamespaceError,
    },
    #[error("{0}")]
    Command(String),
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error("stats: {0}")]
    Stats(String),
    /// A step on nsinit's side failed.
    #[error("{0}")]
    Supervise(String),
    /// The container's first process failed a setup step or could not exec the command.
    #[error("{text}")]
    Container { code: i32, text: String },
}

impl Error {
    /// nsinit's exit code for this error (see README: 125, or 126/127 for the command).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Container { code, .. } => *code,
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
    let dir = state::ContainerDir::open(&options.dir).map_err(Error::State)?;
    let lock = state::StateFile::lock(&dir).map_err(Error::State)?;
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

/// The create half of `exec`: read the config, start the container, supervise it.
fn create(
    options: &ExecOptions,
    dir: &state::ContainerDir,
    lock: state::StateFile,
) -> Result<i32, Error> {
    let config_path = display_path(&options.dir, CONFIG_FILE);
    let text = read_config(&dir.path, &config_path)?;
    let config = config::parse(Path::new(&config_path), &text)?;
    let clone_flags = namespaces::clone_flags(&config).map_err(|source| Error::Namespaces {
        path: config_path.clone(),
        source,
    })?;
    let command =
        process::Command::new(&options.command, &config.environment).map_err(Error::Command)?;
    process::start(
        &process::Start {
            dir,
            config_text: &text,
            rootfs: &dir.path,
            config: &config,
            clone_flags,
            command: &command,
            tty: options.tty.wanted(),
            cgroup: cgroup_plan(&config, dir),
        },
        lock,
    )
}

/// The cgroup a container gets: the configured one, or, without a pid namespace, one of
/// nsinit's own (`nsinit/<dev>-<inode>`), through which its processes die with PID 1.
fn cgroup_plan(
    config: &config::Config,
    dir: &state::ContainerDir,
) -> Option<(PathBuf, cgroups::Limits)> {
    match &config.cgroups {
        Some(c) => Some((c.path(), cgroups::Limits::from(c))),
        None if !config.has(config::Namespace::Pid) => Some((
            Path::new("nsinit").join(dir.id()),
            cgroups::Limits::default(),
        )),
        None => None,
    }
}

/// A dead container's leftovers in its cgroup (processes outside a pid namespace survive a
/// SIGKILLed nsinit): kill them and remove the group.
fn remove_stale_cgroup(record: &state::Record) {
    let Some(path) = &record.cgroup else { return };
    if let Ok(group) =
        cgroups::Hierarchy::detect().and_then(|h| cgroups::Cgroup::open(&h, Path::new(path)))
    {
        let _ = group.kill_all();
        let _ = group.remove();
    }
}

/// `nsinit stats`: the running container's cgroup figures, as JSON.
pub fn stats(dir: &Path) -> Result<String, Error> {
    let dir = state::ContainerDir::open(dir).map_err(Error::State)?;
    let lock = state::StateFile::lock_existing(&dir).map_err(Error::State)?;
    let record = lock
        .and_then(|lock| lock.read())
        .filter(|record| matches!(state::check(record, &dir), state::Liveness::Alive { .. }))
        .ok_or_else(|| {
            Error::Stats(format!("no container is running in {}", dir.path.display()))
        })?;
    let path = record.cgroup.ok_or_else(|| {
        Error::Stats(
            "the running container has no cgroup (no `cgroups` in its container.json)".into(),
        )
    })?;
    let group = cgroups::Cgroup::open(&cgroups::Hierarchy::detect()?, Path::new(&path))?;
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
