//! The container's first process, from the clone to `execve`: the setup recipe, in the order
//! the kernel needs it. Runs in the new namespaces; nsinit is single-threaded, so the copy of
//! its memory here is consistent, but nothing in here may start a thread.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::sethostname;

use super::channel::{Channel, Message};
use super::Start;
use crate::config::Namespace;
use crate::error::{StepContext, StepError, EXIT_SETUP};
use crate::{capabilities, cgroups, mounts, sys, terminal};

/// Why the child stops before the command runs: nsinit's exit code and the message.
struct Failure {
    code: i32,
    text: String,
}

impl From<StepError> for Failure {
    fn from(e: StepError) -> Self {
        Failure {
            code: EXIT_SETUP,
            text: e.to_string(),
        }
    }
}

/// Set up the container and exec the command; on failure, tell nsinit why and exit.
pub fn run(start: &Start<'_>, cgroup_tasks: &[File], channel: Channel) -> ! {
    let failure = match setup_and_exec(start, cgroup_tasks, &channel) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    let _ = channel.send(&Message::Failed {
        code: failure.code as u8,
        text: failure.text,
    });
    sys::exit_now(failure.code)
}

fn setup_and_exec(
    start: &Start<'_>,
    cgroup_tasks: &[File],
    channel: &Channel,
) -> Result<Infallible, Failure> {
    let config = start.config;
    // If nsinit dies, so does the container. SIGKILL: a pid namespace's init ignores every
    // other signal it has no handler for. Had nsinit died before this line, the handshake
    // below reads end-of-file and we exit.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .step(|| "set the parent-death signal".into())?;
    // Device nodes and mount points get exactly the modes we ask for.
    umask(Mode::empty());

    mounts::enter_rootfs(start.rootfs)?;
    mounts::mount_kernel_filesystems(config.has(Namespace::Ipc))?;
    // Never without a UTS namespace of our own: that would rename the host. The config
    // refuses it; this guard keeps it so whatever the config module does.
    if let (Some(hostname), true) = (&config.hostname, config.has(Namespace::Uts)) {
        sethostname(hostname).step(|| format!("set hostname to {hostname:?}"))?;
    }
    let pty = if start.tty {
        let pty = terminal::open_pty()?;
        mounts::bind_console(&pty.slave_path)?;
        Some(pty)
    } else {
        None
    };

    // cgroup v1: into the container's group, after the mounts (their kernel memory is not
    // charged to a tiny limit) and before anything of the container can run.
    cgroups::move_self(cgroup_tasks).step(|| "move into the container's cgroup".into())?;

    let (master, slave) = match pty {
        Some(pty) => (Some(pty.master), Some(pty.slave)),
        None => (None, None),
    };
    channel
        .send(&Message::Ready { pty_master: master })
        .step(|| "report ready to nsinit".into())?;
    match channel.recv() {
        Ok(Some(Message::Go)) => {}
        // nsinit is gone or gave up: leave quietly, it reports.
        _ => sys::exit_now(EXIT_SETUP),
    }

    if config.has(Namespace::Cgroup) {
        // Now that the process sits in its cgroup, that cgroup becomes the namespace's root.
        unshare(CloneFlags::CLONE_NEWCGROUP).step(|| "create the cgroup namespace".into())?;
    }
    if let Some(slave) = &slave {
        terminal::make_controlling(slave.as_fd())?;
    }
    drop(slave);
    capabilities::drop_listed(&config.capabilities)?;
    umask(Mode::from_bits_truncate(0o022));
    // Only 0, 1 and 2 reach the command (CVE-2024-21626); our channel end stays open until
    // the exec succeeds, so a failure can still be reported on it.
    sys::cloexec_from(3).step(|| "mark inherited fds close-on-exec".into())?;
    sys::reset_signal_dispositions();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .step(|| "unblock signals".into())?;

    let failure = start.command.exec();
    Err(Failure {
        code: failure.code,
        text: failure.text,
    })
}
