//! The engine's processes: creating a container from its plan and its first process's
//! recipe (`start`, `child`), the gate another process releases it through, joining a live
//! one (`join`), hooks, and supervising a process until it exits.

pub mod channel;
mod child;
pub mod command;
pub mod gate;
pub mod hooks;
pub mod join;
pub mod start;
pub mod supervise;
mod trampoline;
pub mod unwritable;

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, setgroups, setresgid, setresuid, Gid, Pid, Uid};

use crate::error::{Failure, StepContext, StepError, EXIT_SETUP, EXIT_SIGNAL_BASE};
use crate::plan::{Process, Seccomp};
use crate::{capabilities, sys, Error};
use channel::Message;
pub use command::{Command, CommandError};
pub use start::{create, Created, OwnedCgroup, Release, Start};

/// Signals nsinit passes on to the container's PID 1. `SIGWINCH` with a terminal becomes a
/// window-size update of the pty instead (the kernel then signals the foreground group).
const FORWARDED: [Signal; 9] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGALRM,
    Signal::SIGCONT,
];

/// How long nsinit waits for each step of the handshake before giving up on the container.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The container's first process, seen from nsinit. Until [`Container::wait`] has reaped it,
/// dropping this kills it: an error on nsinit's side never leaves a half-made container.
pub struct Container {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    reaped: bool,
}

impl Container {
    fn new(pid: Pid, pidfd: OwnedFd) -> Self {
        Container {
            pid,
            pidfd,
            reaped: false,
        }
    }

    /// Wait for the process to exit and turn its status into nsinit's exit code.
    pub fn wait(&mut self) -> Result<i32, Error> {
        loop {
            match waitpid(self.pid, None) {
                Err(nix::Error::EINTR) => continue,
                Err(errno) => {
                    return Err(errno)
                        .step(|| format!("wait for container process {}", self.pid))
                        .map_err(Error::from)
                }
                Ok(status) => {
                    self.reaped = true;
                    return Ok(exit_code(status));
                }
            }
        }
    }
}

impl Container {
    /// Take charge of our child `pid` again (one a creator left at its gate): wait for it,
    /// kill it on drop.
    pub fn adopt(pid: Pid) -> Result<Container, Error> {
        let pidfd = sys::pidfd_open(pid).step(|| format!("open a pidfd of process {pid}"))?;
        Ok(Container::new(pid, pidfd))
    }

    /// Let the process go without killing it: it outlives this handle (its new parent, the
    /// one reaping this process's orphans, reaps it).
    pub fn disown(mut self) -> Pid {
        self.reaped = true;
        self.pid
    }

    /// The process reported `failure` and exits: reap it and turn the failure into nsinit's.
    fn failed(&mut self, failure: Failure) -> Error {
        match self.wait() {
            Ok(_) => Error::Container(failure),
            Err(error) => error,
        }
    }

    /// Make sure the process is gone and reaped.
    pub fn kill_and_wait(&mut self) {
        if !self.reaped {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            let _ = self.wait();
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.kill_and_wait();
    }
}

/// nsinit's exit code for a wait status: the command's own, or 128+N for signal N.
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => EXIT_SIGNAL_BASE + signal as i32,
        _ => EXIT_SETUP,
    }
}

/// The child's next message; `None` when it closed its end (exec'd, or died). A failure it
/// reports ends the start with that failure (the child is reaped), as does a timeout (the
/// child is killed by `Container`'s drop).
fn next_message(
    channel: &channel::Channel,
    container: &mut Container,
    step: &'static str,
) -> Result<Option<Message>, Error> {
    match channel.recv() {
        Ok(Some(Message::Failed(failure))) => Err(container.failed(failure)),
        Ok(message) => Ok(message),
        Err(nix::Error::EAGAIN) => Err(Error::SetupTimeout {
            step,
            secs: HANDSHAKE_TIMEOUT.as_secs(),
        }),
        Err(errno) => Err(errno)
            .step(|| format!("wait for the container process ({step})"))
            .map_err(Error::from),
    }
}

/// After `Go`: the child's end closes when `execve` succeeds; anything else is a failure.
pub(crate) fn expect_exec(
    channel: &channel::Channel,
    container: &mut Container,
    step: &'static str,
) -> Result<(), Error> {
    match next_message(channel, container, step)? {
        None => Ok(()),
        Some(other) => Err(protocol_error(&other)),
    }
}

/// Block the signals nsinit forwards (and SIGCHLD) and read them from a signalfd instead, so
/// that none is lost between the clone and the supervision loop. The child unblocks them.
pub(crate) fn block_forwarded_signals() -> Result<SignalFd, Error> {
    let mut mask = SigSet::empty();
    for signal in FORWARDED {
        mask.add(signal);
    }
    mask.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .step(|| "block signals".into())?;
    Ok(
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .step(|| "create a signalfd".into())?,
    )
}

pub(crate) fn protocol_error(message: &Message) -> Error {
    Error::Protocol {
        message: format!("{message:?}"),
    }
}

/// Become the plan's process, in this process: limits, capabilities, user, `no_new_privs`,
/// umask and working directory. The start's child and the joining nsinit both run it; the
/// order is the kernel's: the bounding set while `CAP_SETPCAP` is effective, the user
/// switch keeping the permitted set (`PR_SET_KEEPCAPS`), the other sets under the new uid.
pub(crate) fn become_process(process: &Process) -> Result<(), StepError> {
    for limit in &process.rlimits {
        sys::setrlimit(limit.resource, limit.soft, limit.hard).step(|| {
            format!(
                "set rlimit {} to {}:{}",
                limit.resource, limit.soft, limit.hard
            )
        })?;
    }
    capabilities::limit_bounding(&process.capabilities)?;
    let user = &process.user;
    nix::sys::prctl::set_keepcaps(true).step(|| "keep capabilities across setuid".into())?;
    let gids: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    match setgroups(&gids) {
        // A user namespace a plain user mapped alone denies setgroups: none to drop.
        Err(nix::Error::EPERM) if gids.is_empty() && setgroups_denied() => {}
        other => other.step(|| format!("set supplementary groups {:?}", user.additional_gids))?,
    }
    let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
    setresgid(gid, gid, gid).step(|| format!("set gid {gid}"))?;
    setresuid(uid, uid, uid).step(|| format!("set uid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).step(|| "reset keep-capabilities".into())?;
    capabilities::apply(&process.capabilities)?;
    if process.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().step(|| "set no_new_privs".into())?;
    }
    umask(Mode::from_bits_truncate(user.umask.unwrap_or(0o022)));
    chdir(process.cwd.as_str()).step(|| format!("chdir to {} in the container", process.cwd))
}

/// Load the plan's seccomp filter into this process, at the right moment for `process`. The
/// kernel takes a filter from a process with `no_new_privs` set, or else only from one holding
/// `CAP_SYS_ADMIN`: with `no_new_privs` the filter comes last, just before `execve`
/// ([`SeccompMoment::Last`]); without, before [`become_process`] drops capabilities
/// ([`SeccompMoment::BeforeCapabilities`]), as runc orders it.
pub(crate) fn load_seccomp(
    seccomp: Option<&Seccomp>,
    process: &Process,
    moment: SeccompMoment,
) -> Result<(), StepError> {
    match seccomp {
        Some(seccomp) if moment == SeccompMoment::of(process) => {
            crate::seccomp::install(seccomp.filter()).step(|| "load the seccomp filter".into())
        }
        _ => Ok(()),
    }
}

/// Where [`load_seccomp`] is called from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeccompMoment {
    BeforeCapabilities,
    Last,
}

impl SeccompMoment {
    /// When `process` gets its seccomp filter.
    pub(crate) fn of(process: &Process) -> SeccompMoment {
        match process.no_new_privileges {
            true => SeccompMoment::Last,
            false => SeccompMoment::BeforeCapabilities,
        }
    }
}

/// Whether this process's user namespace denies `setgroups`: `/proc/self/setgroups`, or for
/// a join's helper, which the container's `/proc` does not show, that of the container's
/// PID 1, in the same user namespace.
fn setgroups_denied() -> bool {
    ["/proc/self/setgroups", "/proc/1/setgroups"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .is_some_and(|s| s.trim() == "deny")
}

/// The last steps before `execve`: every fd but 0-2 and the `preserved` ones after them
/// close-on-exec, signal dispositions and mask as a fresh process expects.
pub(crate) fn prepare_exec(preserved: u32) -> Result<(), StepError> {
    sys::cloexec_from(3 + preserved).step(|| "mark inherited fds close-on-exec".into())?;
    sys::reset_signal_dispositions();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .step(|| "unblock signals".into())
}
