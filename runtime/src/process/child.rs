//! The container's first process, from the clone to `execve`: the setup recipe, in the order
//! the kernel needs it. Runs in the new namespaces; nsinit is single-threaded, so the copy of
//! its memory here is consistent, but nothing in here may start a thread.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::stat::{umask, Mode};
use nix::unistd::sethostname;

use super::channel::{Channel, Message};
use super::Start;
use crate::error::{Failure, StepContext, EXIT_SETUP};
use crate::plan::Namespace;
use crate::{cgroups, mounts, sys, terminal};

/// Set up the container and exec the command; on failure, tell nsinit why and exit.
pub fn run(start: &Start<'_>, cgroup_tasks: &[File], channel: Channel) -> ! {
    let failure = match setup_and_exec(start, cgroup_tasks, &channel) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    let code = failure.code;
    let _ = channel.send(&Message::Failed(failure));
    sys::exit_now(code.into())
}

fn setup_and_exec(
    start: &Start<'_>,
    cgroup_tasks: &[File],
    channel: &Channel,
) -> Result<Infallible, Failure> {
    let plan = start.plan;
    // If nsinit dies, so does the container. SIGKILL: a pid namespace's init ignores every
    // other signal it has no handler for. Had nsinit died before this line, the handshake
    // below reads end-of-file and we exit.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .step(|| "set the parent-death signal".into())?;
    // Device nodes and mount points get exactly the modes we ask for.
    umask(Mode::empty());

    mounts::enter_rootfs(&plan.rootfs, plan.rootfs_nodev)?;
    mounts::mount_all(&plan.mounts)?;
    mounts::make_devices(&plan.devices)?;
    // Never without a UTS namespace of our own: that would rename the host. The config
    // refuses it; this guard keeps it so whatever the front-end does.
    if let (Some(hostname), true) = (&plan.hostname, plan.has(Namespace::Uts)) {
        sethostname(hostname).step(|| format!("set hostname to {hostname:?}"))?;
    }
    let pty = if start.tty {
        let pty = terminal::open_pty()?;
        mounts::bind_console(&pty.slave_path)?;
        Some(pty)
    } else {
        None
    };
    mounts::mask(&plan.masked_paths)?;
    mounts::make_readonly(&plan.readonly_paths)?;

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

    if plan.has(Namespace::Cgroup) {
        // Now that the process sits in its cgroup, that cgroup becomes the namespace's root.
        unshare(CloneFlags::CLONE_NEWCGROUP).step(|| "create the cgroup namespace".into())?;
    }
    if let Some(slave) = &slave {
        terminal::make_controlling(slave.as_fd())?;
    }
    drop(slave);
    super::become_process(&plan.process)?;
    // Only 0, 1 and 2 reach the command (CVE-2024-21626); our channel end stays open until
    // the exec succeeds, so a failure can still be reported on it.
    super::prepare_exec()?;
    Err(start.command.exec())
}
