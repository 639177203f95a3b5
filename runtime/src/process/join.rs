//! Joining a live container (a second `nsinit exec` in its directory): enter its namespaces
//! and cgroup, drop the same capabilities, fork into its pid namespace, exec the command.
//!
//! The joining process becomes visible inside the container the moment it forks, to container
//! processes that may hold `CAP_SYS_PTRACE` (the seed sample keeps it). So:
//! - it runs from a sealed memfd copy of nsinit, never from the host's binary, so that
//!   `/proc/PID/exe` cannot be opened to overwrite the host file (CVE-2019-5736);
//! - every privileged step (namespaces, capability drop, fds) is finished before the fork,
//!   and the forked child holds no host fd or directory (CVE-2016-9962, CVE-2024-21626).

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sched::setns;
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::unistd::fexecve;

use super::channel::{self, Message};
use super::{block_forwarded_signals, expect_exec, supervise, Command, Container};
use crate::cgroups::{Cgroup, Hierarchy};
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

/// Whether this process runs from a sealed memfd rather than the host's nsinit binary.
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    fcntl(&exe, FcntlArg::F_GET_SEALS)
        .map(|seals| SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_WRITE))
        .unwrap_or(false)
}

/// Replace this process with the same invocation, run from a sealed memfd copy of the
/// binary: the one a container's supervisor keeps (see [`Record::sealed_exe`]) when the
/// record names one and it is there and sealed, else a fresh copy. Returns only on failure.
pub fn reexec_sealed(record: Option<&Record>) -> Error {
    let sealed = record
        .and_then(supervisors_copy)
        .map_or_else(copy_to_sealed_memfd, Ok);
    let reexec = sealed.and_then(|memfd| -> nix::Result<std::convert::Infallible> {
        let args = to_cstrings(std::env::args_os())?;
        let env = to_cstrings(std::env::vars_os().map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        }))?;
        fexecve(memfd, &args, &env)
    });
    match reexec.step(|| "run nsinit from a sealed copy before joining".into()) {
        Err(error) => error.into(),
        Ok(never) => match never {},
    }
}

/// The sealed copy held by the supervisor of the container's PID 1, if the record names one,
/// that supervisor is PID 1's parent, and the fd is a memfd with every seal set.
fn supervisors_copy(record: &Record) -> Option<OwnedFd> {
    let (supervisor, fd) = record.sealed_exe?;
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", record.pid)).ok()?;
    let ppid: i32 = stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    if ppid != supervisor {
        return None;
    }
    let file = File::open(format!("/proc/{supervisor}/fd/{fd}")).ok()?;
    let seals = SealFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GET_SEALS).ok()?);
    let all = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    seals.contains(all).then(|| file.into())
}

/// A sealed memfd holding a copy of the running nsinit binary: nobody can change its bytes.
pub(crate) fn copy_to_sealed_memfd() -> nix::Result<OwnedFd> {
    let memfd = memfd_create(
        c"nsinit",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut exe = File::open("/proc/self/exe").map_err(io_errno)?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).map_err(io_errno)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(copy.into())
}

fn io_errno(e: std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn to_cstrings(items: impl Iterator<Item = OsString>) -> nix::Result<Vec<CString>> {
    items
        .map(|s| CString::new(s.as_bytes()).map_err(|_| nix::Error::EINVAL))
        .collect()
}

/// Join the container and start the command in it; returns once the command runs (or failed
/// to start). The caller supervises it, or lets it go.
pub fn join(join: &Join<'_>) -> Result<Joined, Error> {
    let plan = join.plan;
    // Opened before entering the container's mount namespace, where cgroupfs is not visible.
    let placement = Placement::of(plan)?;
    let (parent_end, child_end) = channel::pair().step(|| "create the join channel".into())?;

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
    let mut child = match forked {
        Ok(Forked::Child) => {
            drop(parent_end);
            if matches!(placement, Placement::Written(_))
                && !matches!(child_end.recv(), Ok(Some(Message::Go { .. })))
            {
                sys::exit_now(EXIT_SETUP);
            }
            let slave = pty.as_ref().map(|p| p.slave.as_fd());
            let failure = run_child(join, slave);
            let code = failure.code;
            let _ = child_end.send(&Message::Failed(failure));
            sys::exit_now(code.into())
        }
        Ok(Forked::Parent { pid, pidfd }) => Container::new(pid, pidfd),
        Err(e) => {
            return Err(e)
                .step(|| "fork into the container".into())
                .map_err(Error::from)
        }
    };
    drop(child_end);
    if let Placement::Written(procs) = &placement {
        // The joining nsinit itself stays out of the container's cgroup: its memory must not
        // count against the container's limit.
        for mut file in procs {
            std::io::Write::write_all(&mut file, child.pid.to_string().as_bytes()).step(|| {
                format!(
                    "move joined process {} into the container's cgroup",
                    child.pid
                )
            })?;
        }
        parent_end
            .send(&Message::Go {
                hook_state: String::new(),
            })
            .step(|| "release the joined process".into())?;
    }
    expect_exec(&parent_end, &mut child, "start the joined command")?;
    Ok(Joined {
        child,
        pty_master: pty.map(|pty| pty.master),
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
    supervise::run(&mut joined.child, &signals, master, None)
}

/// How the joined command gets into the container's cgroup.
enum Placement {
    /// The container has no cgroup.
    None,
    /// cgroup v2: born in it (`CLONE_INTO_CGROUP` with the group's directory).
    Born(OwnedFd),
    /// cgroup v1: its pid is written into these `cgroup.procs` before it may run.
    Written(Vec<File>),
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
        let Hierarchy::V1 { controllers } = &hierarchy else {
            return Ok(Placement::None);
        };
        let mounts: std::collections::BTreeSet<_> = controllers.values().collect();
        let procs = mounts
            .into_iter()
            .map(|mount| {
                let file = mount.join(&path).join("cgroup.procs");
                File::options()
                    .write(true)
                    .open(&file)
                    .step(|| format!("open {}", file.display()))
                    .map_err(Error::from)
            })
            .collect::<Result<_, _>>()?;
        Ok(Placement::Written(procs))
    }
}

/// Enter the container in this process: namespaces, pty, then the process's limits,
/// capabilities, user, `no_new_privs` and cwd. Everything privileged happens here, before the
/// fork makes us visible inside.
fn enter(join: &Join<'_>) -> Result<Option<terminal::Pty>, StepError> {
    let plan = join.plan;
    // Not dumpable: no ptrace attach and no /proc/PID/{mem,fd} without CAP_SYS_PTRACE.
    nix::sys::prctl::set_dumpable(false).step(|| "mark nsinit non-dumpable".into())?;
    // One setns through the pidfd enters all of them at once (Linux 5.8), atomically, and
    // cannot hit a reused pid. The pid namespace applies to our children only.
    setns(&join.pid1, namespaces::setns_flags(plan)).step(|| {
        let names: Vec<_> = plan
            .namespace_kinds()
            .iter()
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
    super::become_process(join.process)?;
    // Only 0, 1, 2 and the preserved fds may reach the command; everything nsinit holds is
    // close-on-exec.
    sys::cloexec_from(3 + join.preserve_fds).step(|| "mark inherited fds close-on-exec".into())?;
    Ok(pty)
}

/// The forked child, inside the container's pid namespace: terminal, signals, exec.
fn run_child(join: &Join<'_>, pty_slave: Option<std::os::fd::BorrowedFd<'_>>) -> Failure {
    if let Some(slave) = pty_slave {
        if let Err(e) = terminal::make_controlling(slave) {
            return e.into();
        }
    }
    if let Err(e) = super::prepare_exec(join.preserve_fds) {
        return e.into();
    }
    join.command.exec()
}
