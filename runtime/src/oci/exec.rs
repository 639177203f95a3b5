//! `exec`: run another process in a running container, with the same join as `nsinit
//! exec`'s (an unwritable copy of the binary, one `setns` through a pidfd, placed in the
//! container's cgroup), as the process `--process` describes or the container's own with
//! the command line's changes. Foreground: its exit status is ours; `--detach`: we return
//! once it runs.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::container::Status;
use super::{create, Context, OciError};
use crate::plan::{Capability, Process};
use crate::process::{self, join, supervise, Command};
use crate::terminal::{self, RawMode};

/// What `exec` was asked.
#[derive(Debug)]
pub struct Options {
    pub id: String,
    /// The command and its arguments (unless `process` is given).
    pub args: Vec<OsString>,
    /// A runtime-spec `process` JSON file.
    pub process: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    /// Capabilities added (`CAP_NET_ADMIN`).
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: u32,
}

pub fn run(ctx: &mut Context, options: &Options) -> Result<i32, OciError> {
    let id = &options.id;
    let record = ctx.root.record(id)?;
    let (status, pidfd) = ctx.root.status_and_pidfd(&record);
    if status != Status::Running {
        return Err(OciError::NotRunning {
            id: id.clone(),
            action: "exec in",
            status,
        });
    }
    let process = process_of(&record.plan.process, options)?;
    let argv: Vec<OsString> = process.args.iter().map(OsString::from).collect();
    let command = Command::new(&argv, &process.env).map_err(crate::Error::from)?;
    let signals = match options.detach {
        true => None,
        false => Some(process::block_forwarded_signals()?),
    };
    let pid1 = pidfd.ok_or_else(|| OciError::NotRunning {
        id: id.clone(),
        action: "exec in",
        status: Status::Stopped,
    })?;
    // Both are host paths: reached before the join enters the container's mount namespace.
    let pid_file = options
        .pid_file
        .as_deref()
        .map(create::PidFile::open)
        .transpose()?;
    let console_socket = match (&options.console_socket, process.terminal) {
        (Some(path), true) => Some(terminal::ConsoleSocket::connect(path)?),
        _ => None,
    };
    let mut joined = join::join(&join::Join {
        plan: &record.plan,
        process: &process,
        pid1,
        command: &command,
        preserve_fds: options.preserve_fds,
    })?;
    let mut master = joined.pty_master.take();
    if let (Some(pty), Some(socket)) = (&master, console_socket) {
        socket.send(pty.as_fd())?;
        master = None;
    }
    if let Some(pid_file) = &pid_file {
        pid_file.write(joined.child.pid.as_raw())?;
    }
    let Some(signals) = signals else {
        joined.child.disown();
        return Ok(0);
    };
    let host_stdin = std::io::stdin();
    let _raw_mode = master.as_ref().and_then(|pty| {
        terminal::copy_window_size(host_stdin.as_fd(), pty.as_fd());
        RawMode::enter(host_stdin.as_fd())
    });
    Ok(supervise::run(&mut joined.child, &signals, master)?)
}

/// The process to run: the one `--process` describes, else the container's own with the
/// command line's command, cwd, environment, user, capabilities and `no_new_privs`.
fn process_of(base: &Process, options: &Options) -> Result<Process, OciError> {
    if let Some(path) = &options.process {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OciError::io(format!("read process {}", path.display()), e))?;
        return Ok(crate::spec::oci::parse_process(path, &text)?);
    }
    if options.args.is_empty() {
        return Err(OciError::Invalid(
            "exec needs a command or --process FILE".into(),
        ));
    }
    let mut process = base.clone();
    process.args = options
        .args
        .iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    process.terminal = options.tty;
    process.console_size = None;
    if let Some(cwd) = &options.cwd {
        process.cwd = cwd.clone();
    }
    for entry in &options.env {
        let name = entry.split('=').next().unwrap_or_default();
        process
            .env
            .retain(|kept| kept.split('=').next() != Some(name));
        process.env.push(entry.clone());
    }
    if let Some(user) = &options.user {
        let bad = || OciError::Invalid(format!("--user {user:?}: expected UID or UID:GID"));
        let (uid, gid) = match user.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (user.as_str(), None),
        };
        process.user.uid = uid.parse().map_err(|_| bad())?;
        process.user.gid = match gid {
            Some(gid) => gid.parse().map_err(|_| bad())?,
            None => process.user.uid,
        };
        process.user.additional_gids.clear();
    }
    process
        .user
        .additional_gids
        .extend(options.additional_gids.iter().copied());
    for name in &options.caps {
        let cap = name
            .strip_prefix("CAP_")
            .and_then(Capability::from_name)
            .ok_or_else(|| OciError::Invalid(format!("--cap {name:?}: unknown capability")))?;
        let sets = &mut process.capabilities;
        for set in [&mut sets.bounding, &mut sets.effective, &mut sets.permitted] {
            if !set.contains(&cap) {
                set.push(cap);
            }
        }
    }
    process.no_new_privileges |= options.no_new_privs;
    Ok(process)
}
