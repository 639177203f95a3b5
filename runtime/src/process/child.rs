//! The container's first process, from the clone to `execve`: the setup recipe, in the order
//! the kernel needs it. Runs in the new namespaces; nsinit is single-threaded, so the copy of
//! its memory here is consistent, but nothing in here may start a thread.

use std::convert::Infallible;
use std::os::fd::AsFd;

use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::stat::{umask, Mode};
use nix::unistd::sethostname;

use super::channel::{Channel, Message};
use super::start::{Prepared, Release, Start};
use super::{gate, hooks, SeccompMoment};
use crate::error::{Failure, StepContext, StepError, EXIT_SETUP};
use crate::plan::{Namespace, Personality};
use crate::{cgroups, mounts, network, procfs, sys, terminal};

/// Set up the container and exec the command; on failure, tell nsinit why and exit.
pub fn run(start: &Start<'_>, prepared: &Prepared, channel: Channel) -> ! {
    let failure = match setup_and_exec(start, prepared, &channel) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    let code = failure.code;
    if channel.send(&Message::Failed(failure.clone())).is_err() {
        // Released through the gate, nsinit is gone: stderr is all that is left.
        eprintln!("nsinit: {failure}");
    }
    sys::exit_now(code.into())
}

fn setup_and_exec(
    start: &Start<'_>,
    prepared: &Prepared,
    channel: &Channel,
) -> Result<Infallible, Failure> {
    let plan = start.plan;
    // If nsinit dies during setup, so does the container. SIGKILL: a pid namespace's init
    // ignores every other signal it has no handler for. Had nsinit died before this line,
    // the handshake below reads end-of-file and we exit.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .step(|| "set the parent-death signal".into())?;
    if plan.new_user_namespace() {
        match channel.recv() {
            Ok(Some(Message::Mapped)) => {}
            _ => sys::exit_now(EXIT_SETUP),
        }
        become_namespace_root()?;
    }
    for (kind, fd) in &prepared.joined {
        setns(fd, CloneFlags::from_bits_truncate(kind.clone_flag()))
            .step(|| format!("join the {} namespace", kind.proc_name()))?;
    }
    // Device nodes and mount points get exactly the modes we ask for.
    umask(Mode::empty());

    // Host paths (bind sources, createContainer hooks) are opened here, before the rootfs
    // becomes `/`.
    let sources = mounts::open_sources(
        &plan.mounts,
        &prepared.cgroup_view,
        prepared.in_user_namespace,
    )?;
    let host_nodes = match prepared.in_user_namespace {
        true => Some(mounts::open_host_nodes(&plan.devices)?),
        false => None,
    };
    let create_hooks = hooks::open_programs(&plan.hooks.create_container)?;
    mounts::enter_rootfs(&plan.rootfs, plan.rootfs_nodev, plan.rootfs_propagation)?;
    mounts::mount_all(&plan.mounts, &sources)?;
    drop(sources);
    mounts::make_devices(&plan.devices, host_nodes.as_deref())?;
    drop(host_nodes);
    // Never without a UTS namespace of our own: that would rename the host. The front-ends
    // refuse it; this guard keeps it so whatever they do.
    if plan.has(Namespace::Uts) {
        if let Some(hostname) = &plan.hostname {
            sethostname(hostname).step(|| format!("set hostname to {hostname:?}"))?;
        }
        if let Some(domain) = &plan.domainname {
            sys::setdomainname(domain).step(|| format!("set domain name to {domain:?}"))?;
        }
    }
    procfs::write_sysctls(&plan.sysctl)?;
    // A new network namespace without a `network` (which nsinit connects from outside): the
    // container's `lo` is set up here.
    if plan.network.is_none() && plan.new_namespaces().any(|ns| ns == Namespace::Net) {
        network::loopback_up_here()?;
    }
    let pty = if plan.process.terminal {
        let pty = terminal::open_pty()?;
        if let Some((rows, columns)) = plan.process.console_size {
            terminal::set_size(pty.master.as_fd(), rows, columns)?;
        }
        mounts::bind_console(&pty.slave_path)?;
        Some(pty)
    } else {
        None
    };
    mounts::mask(&plan.masked_paths)?;
    mounts::make_readonly(&plan.readonly_paths)?;
    if plan.readonly_rootfs {
        mounts::make_rootfs_readonly()?;
    }

    // cgroup v1: into the container's group, after the mounts (their kernel memory is not
    // charged to a tiny limit) and before anything of the container can run.
    cgroups::move_self(&prepared.cgroup_tasks)
        .step(|| "move into the container's cgroup".into())?;

    let (master, slave) = match pty {
        Some(pty) => (Some(pty.master), Some(pty.slave)),
        None => (None, None),
    };
    channel
        .send(&Message::Ready { pty_master: master })
        .step(|| "report ready to nsinit".into())?;
    let hook_state = match channel.recv() {
        Ok(Some(Message::Go { hook_state })) => hook_state,
        // nsinit is gone or gave up: leave quietly, it reports.
        _ => sys::exit_now(EXIT_SETUP),
    };
    if !create_hooks.is_empty() {
        let state = hooks::state_inside(&hook_state, "creating");
        for (hook, program) in plan.hooks.create_container.iter().zip(&create_hooks) {
            hooks::run("createContainer", hook, Some(program.as_fd()), &state)?;
        }
    }
    drop(create_hooks);

    if prepared.unshare_cgroupns {
        // Now that the process sits in its cgroup, that cgroup becomes the namespace's root.
        unshare(CloneFlags::CLONE_NEWCGROUP).step(|| "create the cgroup namespace".into())?;
    }
    if let Some(slave) = &slave {
        terminal::make_controlling(slave.as_fd())?;
    }
    drop(slave);
    if let Some(personality) = plan.personality {
        sys::set_personality(personality == Personality::Linux32)
            .step(|| format!("set personality {personality:?}"))?;
    }
    let seccomp = plan.seccomp.as_ref();
    super::load_seccomp(seccomp, &plan.process, SeccompMoment::BeforeCapabilities)?;
    super::become_process(&plan.process)?;
    // Only 0, 1, 2 and the preserved fds reach the command (CVE-2024-21626); our channel end
    // stays open until the exec succeeds, so a failure can still be reported on it.
    super::prepare_exec(start.preserve_fds)?;
    if let Release::Creator | Release::Gate(_) = start.release {
        // The creator leaves (`create`, `run --detach`) or only waits: the container
        // outlives it.
        nix::sys::prctl::set_pdeathsig(None).step(|| "clear the parent-death signal".into())?;
    }
    if let Release::Gate(gate) = start.release {
        if let Some(command) = start.command {
            command.check()?;
        }
        channel
            .send(&Message::Waiting)
            .step(|| "report waiting for start".into())?;
        gate::wait(gate.fd())?;
    }
    if !plan.hooks.start_container.is_empty() {
        let state = hooks::state_inside(&hook_state, "created");
        hooks::run_all("startContainer", &plan.hooks.start_container, &state)?;
    }
    super::load_seccomp(seccomp, &plan.process, SeccompMoment::Last)?;
    Err(match start.command {
        Some(command) => command.exec(),
        None => Failure {
            code: EXIT_SETUP as u8,
            text: "the container's config has no process to run".into(),
        },
    })
}

/// In a new user namespace, become its root (the host ids its maps give 0), so that what the
/// setup creates belongs to the container; the capabilities in it, which the clone gave,
/// stay. Without 0 in a map, the ids stay unmapped.
fn become_namespace_root() -> Result<(), StepError> {
    // Denied when a plain user mapped only their own gid (`setgroups` is `deny` then).
    match nix::unistd::setgroups(&[]) {
        Ok(()) | Err(nix::Error::EPERM) => {}
        Err(e) => return Err(e).step(|| "clear supplementary groups".into()),
    }
    let root = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
    match nix::unistd::setresgid(root.0, root.0, root.0) {
        Ok(()) | Err(nix::Error::EINVAL) => {}
        Err(e) => return Err(e).step(|| "become gid 0 of the user namespace".into()),
    }
    match nix::unistd::setresuid(root.1, root.1, root.1) {
        Ok(()) | Err(nix::Error::EINVAL) => Ok(()),
        Err(e) => Err(e).step(|| "become uid 0 of the user namespace".into()),
    }
}
