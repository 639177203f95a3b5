//! Starting a container: the clone, the handshake with its first process, and supervising it
//! until it exits (signals forwarded, terminal relayed, exit status returned).

pub mod channel;
mod child;
pub mod command;
pub mod join;
mod supervise;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, setgroups, setresgid, setresuid, Gid, Pid, Uid};

use crate::cgroups::{Cgroup, Hierarchy};
use crate::error::{Failure, StepContext, StepError, EXIT_SETUP, EXIT_SIGNAL_BASE};
use crate::plan::{Namespace, Plan, Process};
use crate::state::{self, ContainerDir, Record, StateFile};
use crate::sys::{self, Forked};
use crate::terminal::{self, RawMode};
use crate::{capabilities, network, Error};
use channel::Message;
pub use command::{Command, CommandError};

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

/// What a start needs: the container's directory, its plan (recorded for joins), the
/// command, and whether the command gets a terminal.
pub struct Start<'a> {
    pub dir: &'a ContainerDir,
    pub plan: &'a Plan,
    /// The plan's namespaces as `clone3` flags ([`crate::namespaces::clone_flags`]).
    pub clone_flags: u64,
    pub command: &'a Command,
    pub tty: bool,
}

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

/// Start a container and supervise it to the end; returns nsinit's exit code. `state` is the
/// locked state file: the lock is let go once the container is joinable.
pub fn start(start: &Start<'_>, state: StateFile) -> Result<i32, Error> {
    let plan = start.plan;
    let (parent_end, child_end) = channel::pair().step(|| "create the start channel".into())?;
    parent_end
        .set_timeout(HANDSHAKE_TIMEOUT)
        .step(|| "set the start channel timeout".into())?;
    let signals = block_forwarded_signals()?;
    let cgroup = match &plan.cgroup {
        Some(c) => Some(OwnedCgroup(Some(Cgroup::create(
            &Hierarchy::detect()?,
            &c.path,
            &c.limits,
        )?))),
        None => None,
    };
    // cgroup v2: the child is born in its group (CLONE_INTO_CGROUP); v1: it moves itself in.
    let (cgroup_fd, cgroup_tasks) = match &cgroup {
        Some(group) => (group.get().dir_fd()?, group.get().tasks_files()?),
        None => (None, Vec::new()),
    };

    // SAFETY: nsinit is single-threaded: no thread is ever spawned on the start path.
    let forked = unsafe { sys::clone3(start.clone_flags, cgroup_fd.as_ref().map(|fd| fd.as_fd())) };
    let mut container = match forked {
        Ok(Forked::Child) => {
            drop(parent_end);
            child::run(start, &cgroup_tasks, child_end)
        }
        Ok(Forked::Parent { pid, pidfd }) => Container::new(pid, pidfd),
        Err(e) => {
            let names: Vec<_> = plan.namespaces.iter().map(|ns| ns.json_name()).collect();
            return Err(e)
                .step(|| {
                    format!(
                        "create the container process (clone3 with {})",
                        names.join(" ")
                    )
                })
                .map_err(Error::from);
        }
    };
    drop(child_end);
    // While the child mounts its rootfs, give it its network.
    if let Err(network_error) = connect_network(plan, &container) {
        // The child may have failed first, and vanished: its own reason says more.
        if let Ok(Some(Message::Failed(failure))) = parent_end.recv() {
            return Err(container.failed(failure));
        }
        return Err(network_error);
    }

    const SETUP: &str = "mount the rootfs";
    let pty_master = match next_message(&parent_end, &mut container, SETUP)? {
        Some(Message::Ready { pty_master }) => pty_master,
        Some(other) => return Err(protocol_error(&other)),
        None => {
            let code = container.wait()?;
            return Err(Error::DiedDuringSetup { step: SETUP, code });
        }
    };
    // Joinable now: record it, publish .nspid, and let other nsinit invocations in.
    let published = Published::new(start.dir, &state, plan, container.pid)?;
    drop(state);
    let mut sealed_exe = None;
    let mut keep_sealed_copy = || sealed_exe = published.offer_sealed_copy();
    let result = run_started(
        &parent_end,
        &mut container,
        &signals,
        pty_master,
        &mut keep_sealed_copy,
    );
    container.kill_and_wait();
    let result = match cgroup {
        Some(group) => group.finish(result),
        None => result,
    };
    published.remove();
    result
}

/// The container's cgroup, owned by nsinit: whatever happens, the processes in it are
/// killed and the group is removed when this goes.
struct OwnedCgroup(Option<Cgroup>);

impl OwnedCgroup {
    fn get(&self) -> &Cgroup {
        self.0.as_ref().expect("present until finish or drop")
    }

    /// PID 1 has exited: kill what is left in the group (all of it without a pid namespace),
    /// say so if the memory limit killed something, remove the group.
    fn finish(mut self, result: Result<i32, Error>) -> Result<i32, Error> {
        let group = self.0.take().expect("present until finish or drop");
        let killed = group.kill_all();
        let oom_kills = group.oom_kills();
        if oom_kills > 0 {
            let limit = group
                .memory_limit()
                .map_or("its".to_string(), |bytes| format!("{bytes} bytes"));
            eprintln!(
                "nsinit: the container hit its memory limit ({limit}, cgroups.memory): the \
                 kernel killed {oom_kills} of its processes"
            );
        }
        let removed = group.remove();
        let code = result?;
        killed?;
        removed?;
        Ok(code)
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            let _ = group.kill_all();
            let _ = group.remove();
        }
    }
}

/// The container's network: a veth pair on the bridge when the plan has one, else (with its
/// own network namespace) just `lo` up.
fn connect_network(plan: &Plan, container: &Container) -> Result<(), Error> {
    let (pid, pidfd) = (container.pid, container.pidfd.as_fd());
    match &plan.network {
        Some(net) => network::setup(net, pidfd, pid, &network::host_veth_name(pid))?,
        None if plan.has(Namespace::Net) => network::loopback_up(pidfd, pid)?,
        None => {}
    }
    Ok(())
}

/// From the container's `Ready` to its end: release it, see the command start, supervise.
fn run_started(
    channel: &channel::Channel,
    container: &mut Container,
    signals: &SignalFd,
    pty_master: Option<OwnedFd>,
    idle: &mut dyn FnMut(),
) -> Result<i32, Error> {
    let host_stdin = std::io::stdin();
    let _raw_mode = pty_master.as_ref().and_then(|master| {
        terminal::copy_window_size(host_stdin.as_fd(), master.as_fd());
        RawMode::enter(host_stdin.as_fd())
    });
    channel
        .send(&Message::Go)
        .step(|| "release the container process".into())?;
    expect_exec(channel, container, "start the command")?;
    supervise::run(container, signals, pty_master, Some(idle))
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
            sealed_exe: None,
        })?;
        let published = Published { dir, pid };
        if let Err(e) = dir.write_nspid(pid) {
            published.remove();
            return Err(e.into());
        }
        Ok(published)
    }

    /// Make a sealed copy of nsinit for joins to run from and name it in the record. Done
    /// once the container has run a while, off the start path. The fd must stay open for as
    /// long as the container lives.
    fn offer_sealed_copy(&self) -> Option<OwnedFd> {
        let memfd = join::copy_to_sealed_memfd().ok()?;
        let state = StateFile::lock_existing(self.dir).ok()??;
        let mut record = state.read().filter(|r| r.pid == self.pid.as_raw())?;
        record.sealed_exe = Some((std::process::id() as i32, memfd.as_raw_fd()));
        state.write(&record).ok()?;
        Some(memfd)
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
    setgroups(&gids).step(|| format!("set supplementary groups {:?}", user.additional_gids))?;
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

/// The last steps before `execve`: every fd but 0-2 close-on-exec, signal dispositions and
/// mask as a fresh process expects.
pub(crate) fn prepare_exec() -> Result<(), StepError> {
    sys::cloexec_from(3).step(|| "mark inherited fds close-on-exec".into())?;
    sys::reset_signal_dispositions();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .step(|| "unblock signals".into())
}
