//! Joining a live container (a second `nsinit exec` in its directory, `nsinit-oci exec`):
//! enter its namespaces and cgroup, become the process the plan describes, and run the
//! command in its pid namespace.
//!
//! The command's process is visible inside the container from its fork to its `execve`, to
//! container processes that may hold `CAP_SYS_PTRACE` (the seed sample keeps it). So:
//! - nothing that forks into the container runs nsinit's binary: a helper, forked outside
//!   the container's pid namespace, becomes the process (cgroup, limits, user, capabilities)
//!   and executes the exec trampoline from a sealed memfd; the trampoline forks the command's
//!   process into the container and runs the command (`trampoline/main.rs`). Neither
//!   `/proc/PID/exe` nor a script naming `/proc/self/exe` as its interpreter reaches the
//!   host's file (CVE-2019-5736), and no second glibc program starts;
//! - every privileged step is finished before that fork, and the forked process holds no
//!   host fd or directory (CVE-2016-9962, CVE-2024-21626).
//!
//! The joining nsinit is the command's parent (the trampoline forks with `CLONE_PARENT`)
//! and supervises it as before.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;

use super::channel::{self, Channel, Message};
use super::trampoline::{self, Report, Trampoline};
use super::{block_forwarded_signals, supervise, Command, Container, SeccompMoment};
use crate::cgroups::{self, Cgroup, Hierarchy};
use crate::error::{Failure, StepContext, StepError, EXIT_SETUP};
use crate::plan::{Namespace, Plan, Process};
use crate::state::Record;
use crate::sys::{self, Forked};
use crate::{namespaces, terminal, Error};

/// What a join needs: the container's plan (its namespaces and cgroup), the process to
/// become (the plan's own, or one an `exec` describes), a pidfd pinning the container's
/// PID 1, and the command.
pub struct Join<'a> {
    pub plan: &'a Plan,
    pub process: &'a Process,
    pub pid1: OwnedFd,
    pub command: &'a Command,
    /// How many fds from 3 on the command inherits.
    pub preserve_fds: u32,
}

/// A command running in a live container, seen from the joining nsinit: its process (in
/// the container's pid namespace, our child) and its terminal's master.
pub struct Joined {
    pub child: Container,
    pub pty_master: Option<OwnedFd>,
}

/// Join the container and start the command in it; returns once the command runs (or failed
/// to start). The caller supervises it, or lets it go.
pub fn join(join: &Join<'_>) -> Result<Joined, Error> {
    let plan = join.plan;
    // Opened before entering the container's mount namespace, where cgroupfs is not visible.
    let placement = Placement::of(plan)?;
    let (parent_end, child_end) = channel::pair().step(|| "create the join channel".into())?;
    let trampoline = Trampoline::load()?;
    let last_filter = match (&plan.seccomp, SeccompMoment::of(join.process)) {
        (Some(seccomp), SeccompMoment::Last) => {
            let filter = seccomp.filter();
            Some((trampoline::program_memfd(filter)?, filter))
        }
        _ => None,
    };
    let pty = enter(join).map_err(|e| {
        Error::Container(Failure {
            code: EXIT_SETUP as u8,
            text: format!("join the container: {e}"),
        })
    })?;

    let born_in = match &placement {
        Placement::Born(fd) => Some(fd.as_fd()),
        _ => None,
    };
    // SAFETY: nsinit is single-threaded: no thread is ever spawned on the join path.
    let forked = unsafe { sys::clone3(0, born_in) };
    let mut helper = match forked {
        Ok(Forked::Child) => {
            drop(parent_end);
            let failure = match become_joined(join, &placement) {
                Ok(()) => trampoline.exec(
                    child_end.as_fd(),
                    pty.as_ref().map(|p| p.slave.as_fd()),
                    last_filter
                        .as_ref()
                        .map(|(fd, filter)| (fd.as_fd(), *filter)),
                    join.command,
                ),
                Err(e) => e.into(),
            };
            let code = failure.code;
            let _ = child_end.send(&Message::Failed(failure));
            sys::exit_now(code.into())
        }
        Ok(Forked::Parent { pid, pidfd }) => Container::new(pid, pidfd),
        Err(e) => {
            return Err(e)
                .step(|| "fork the join's helper".into())
                .map_err(Error::from)
        }
    };
    drop(child_end);
    let child = follow_to_exec(&parent_end, &mut helper, join.command)?;
    Ok(Joined {
        child,
        pty_master: pty.map(|pty| pty.master),
    })
}

/// Read the join's channel until every process holding its other end has exited or exec'd:
/// the helper's failure, or the trampoline's report of the command's process and then that
/// process's failure or (end of file) its `execve`. Returns the command's process.
fn follow_to_exec(
    channel: &Channel,
    helper: &mut Container,
    command: &Command,
) -> Result<Container, Error> {
    let mut child = None;
    let mut failure = None;
    loop {
        match channel.recv() {
            Ok(None) => break,
            Ok(Some(Message::Failed(reported))) => failure = Some(reported),
            Ok(Some(Message::Trampoline(Report::Forked(pid)))) if child.is_none() => {
                child = Some(our_child(Pid::from_raw(pid))?);
            }
            Ok(Some(Message::Trampoline(Report::Failed { step, errno, index }))) => {
                failure = Some(Report::failure(step, errno, index, command));
            }
            Ok(Some(other)) => return Err(super::protocol_error(&other)),
            Err(errno) => {
                return Err(errno)
                    .step(|| "wait for the joined command to start".into())
                    .map_err(Error::from)
            }
        }
    }
    let helper_code = helper.wait()?;
    match (child, failure) {
        (Some(mut child), Some(failure)) => Err(child.failed(failure)),
        (None, Some(failure)) => Err(Error::Container(failure)),
        (Some(child), None) => Ok(child),
        (None, None) => Err(Error::Container(Failure {
            code: EXIT_SETUP as u8,
            text: format!(
                "the join's helper ended (exit code {helper_code}) without starting the command"
            ),
        })),
    }
}

/// The command's process, from the pid the trampoline reported: only if it is our child
/// (forked with `CLONE_PARENT`), so that a forged report cannot point nsinit at another
/// process.
fn our_child(pid: Pid) -> Result<Container, Error> {
    let child = Container::adopt(pid)?;
    if sys::is_our_child(child.pidfd.as_fd()) {
        return Ok(child);
    }
    child.disown();
    Err(Error::Protocol {
        message: format!("the exec trampoline reported pid {pid}, which is not nsinit's child"),
    })
}

/// `nsinit exec` into a live container: join it with the recorded plan's process, relay the
/// terminal, and supervise the command to its end; returns nsinit's exit code.
pub fn run(record: &Record, pid1: OwnedFd, argv: &[OsString], tty: bool) -> Result<i32, Error> {
    let mut process = record.plan.process.clone();
    process.terminal = tty;
    let command = Command::new(argv, &process.env)?;
    let signals = block_forwarded_signals()?;
    let mut joined = join(&Join {
        plan: &record.plan,
        process: &process,
        pid1,
        command: &command,
        preserve_fds: 0,
    })?;
    let master = joined.pty_master.take();
    let host_stdin = std::io::stdin();
    let _raw_mode = master.as_ref().and_then(|master| {
        terminal::copy_window_size(host_stdin.as_fd(), master.as_fd());
        terminal::RawMode::enter(host_stdin.as_fd())
    });
    supervise::run(&mut joined.child, &signals, master)
}

/// How the joined command gets into the container's cgroup; never the joining nsinit itself,
/// whose memory must not count against the container's limit.
enum Placement {
    /// The container has no cgroup.
    None,
    /// cgroup v2: born in it (`CLONE_INTO_CGROUP` with the group's directory).
    Born(OwnedFd),
    /// cgroup v1: the forked child moves itself in through these `tasks` files, before
    /// anything else (see [`Cgroup::tasks_files`]: writing another process's pid to
    /// `cgroup.procs` waited 10-20 ms for the kernel's global lock).
    MovesItself(Vec<File>),
}

impl Placement {
    fn of(plan: &Plan) -> Result<Placement, Error> {
        let Some(cgroup) = &plan.cgroup else {
            return Ok(Placement::None);
        };
        let hierarchy = Hierarchy::detect()?;
        let path = crate::cgroups::resolve(&hierarchy, &cgroup.path)?;
        let group = Cgroup::open(&hierarchy, &path)?;
        if let Some(fd) = group.dir_fd()? {
            return Ok(Placement::Born(fd));
        }
        Ok(Placement::MovesItself(group.tasks_files()?))
    }
}

/// Enter the container's namespaces but its pid namespace in this process, and open the pty.
/// The pid namespace is the helper's to enter ([`become_joined`]): once entered, every
/// process forked is born inside, and nsinit must never be.
fn enter(join: &Join<'_>) -> Result<Option<terminal::Pty>, StepError> {
    let plan = join.plan;
    // Not dumpable: no ptrace attach and no /proc/PID/{mem,fd} without CAP_SYS_PTRACE.
    nix::sys::prctl::set_dumpable(false).step(|| "mark nsinit non-dumpable".into())?;
    // One setns through the pidfd enters all of them at once (Linux 5.8), atomically, and
    // cannot hit a reused pid.
    let flags = namespaces::setns_flags(plan) - CloneFlags::CLONE_NEWPID;
    setns(&join.pid1, flags).step(|| {
        let names: Vec<_> = plan
            .namespace_kinds()
            .iter()
            .filter(|ns| **ns != Namespace::Pid)
            .map(|ns| ns.json_name())
            .collect();
        format!("enter namespaces {} of the container", names.join(" "))
    })?;
    debug_assert!(plan.has(Namespace::Mount));
    let pty = if join.process.terminal {
        Some(terminal::open_pty()?)
    } else {
        None
    };
    // Only 0, 1, 2 and the preserved fds may reach the command; everything nsinit holds is
    // close-on-exec.
    sys::cloexec_from(3 + join.preserve_fds).step(|| "mark inherited fds close-on-exec".into())?;
    Ok(pty)
}

/// The helper, forked outside the container's pid namespace: into the cgroup, into the pid
/// namespace (for the process the trampoline forks), the seccomp filter when it must come
/// before the capability drop, the process's limits, user and capabilities. The terminal,
/// the last seccomp filter and the `execve` are the trampoline's.
fn become_joined(join: &Join<'_>, placement: &Placement) -> Result<(), StepError> {
    if let Placement::MovesItself(tasks) = placement {
        cgroups::move_self(tasks).step(|| "move into the container's cgroup".into())?;
    }
    if join.plan.has(Namespace::Pid) {
        setns(&join.pid1, CloneFlags::CLONE_NEWPID)
            .step(|| "enter the container's pid namespace".into())?;
    }
    let seccomp = join.plan.seccomp.as_ref();
    super::load_seccomp(seccomp, join.process, SeccompMoment::BeforeCapabilities)?;
    super::become_process(join.process)?;
    super::prepare_exec(join.preserve_fds)
}
