//! Joining a live container (a second `nsinit exec` in its directory): enter its namespaces
//! and cgroup, drop the same capabilities, fork into its pid namespace, exec the command.
//!
//! The joining process becomes visible inside the container the moment it forks, to container
//! processes that may hold `CAP_SYS_PTRACE` (the seed sample keeps it). So:
//! - it runs from a copy of nsinit nobody can write (a read-only overlay view of the binary,
//!   or a sealed memfd), never from the host's binary as such, so that `/proc/PID/exe`
//!   cannot be opened to overwrite the host file (CVE-2019-5736);
//! - every privileged step (namespaces, capability drop, fds) is finished before the fork,
//!   and the forked child holds no host fd or directory (CVE-2016-9962, CVE-2024-21626).

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sched::setns;
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::unistd::{fexecve, Pid};

use super::channel::{self, Message};
use super::{block_forwarded_signals, expect_exec, supervise, Command, Container, SeccompMoment};
use crate::cgroups::{self, Cgroup, Hierarchy};
use crate::error::{Failure, StepContext, StepError, EXIT_SETUP};
use crate::plan::{Namespace, Plan, Process};
use crate::state::{ProcStat, Record};
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

/// Whether this process runs from an executable nobody can write through `/proc/PID/exe`:
/// a memfd with the write seal, or a file on a read-only mount (the overlay of
/// [`readonly_view`]; a write through the magic link goes to that same mount).
pub fn running_unwritable() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    let sealed = fcntl(&exe, FcntlArg::F_GET_SEALS)
        .map(|seals| SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_WRITE))
        .unwrap_or(false);
    sealed
        || nix::sys::statvfs::fstatvfs(&exe)
            .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Replace this process with the same invocation, run from an executable nobody can write:
/// the sealed memfd a container's supervisor keeps (see [`Record::sealed_exe`]) when the
/// record names one and it is there and sealed, else a read-only overlay view of the binary,
/// else a fresh sealed memfd copy. Returns only on failure.
pub fn reexec_unwritable(record: Option<&Record>) -> Error {
    let exe = record
        .and_then(supervisors_copy)
        .or_else(readonly_view)
        .map_or_else(copy_to_sealed_memfd, Ok);
    let reexec = exe.and_then(|exe| -> nix::Result<std::convert::Infallible> {
        let args = to_cstrings(std::env::args_os())?;
        let env = to_cstrings(std::env::vars_os().map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        }))?;
        fexecve(exe, &args, &env)
    });
    match reexec.step(|| "run nsinit from an unwritable copy before joining".into()) {
        Err(error) => error.into(),
        Ok(never) => match never {},
    }
}

/// The running binary, opened through a new read-only overlayfs mount of its directory. No
/// upper layer: the filesystem itself refuses writes (EROFS), whatever the mount flags. The
/// mount is detached, in no mount table, and goes with the last process running from it.
/// Nothing is copied (the pages are the binary's own page cache): about 0.2 ms where a
/// sealed memfd copy of the 3.6 MB binary took 1.1-1.4 ms. `None` where overlayfs or the
/// privilege to mount it is missing, or the directory cannot be said in a `lowerdir` list.
fn readonly_view() -> Option<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let (dir, name) = (exe.parent()?.to_str()?, exe.file_name()?);
    // Without an upper layer overlayfs wants two lower ones, neither inside the other; the
    // second is never looked in (the binary's own directory is on top).
    let other = ["/dev", "/run", "/tmp"]
        .into_iter()
        .find(|other| !Path::new(dir).starts_with(other) && !Path::new(other).starts_with(dir))?;
    // Before Linux 6.5 overlayfs parses one option string: `:`, `,` and `\` would split it.
    if dir.contains([':', ',', '\\']) {
        return None;
    }
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    let lower = format!("lowerdir={dir}:{other}");
    let mount = sys::new_detached_mount("overlay", &[&lower], attrs).ok()?;
    nix::fcntl::openat(
        &mount,
        name,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}

/// The sealed copy held by the supervisor of the container's PID 1, if the record names one,
/// that supervisor is PID 1's parent, and the fd is a memfd with every seal set.
fn supervisors_copy(record: &Record) -> Option<OwnedFd> {
    let (supervisor, fd) = record.sealed_exe?;
    let pid_1 = ProcStat::of(Pid::from_raw(record.pid))?;
    if pid_1.ppid != supervisor {
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
            let slave = pty.as_ref().map(|p| p.slave.as_fd());
            let failure = run_child(join, &placement, slave);
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

/// Enter the container's namespaces in this process and open the pty. The process's limits,
/// capabilities, user and seccomp filter are the forked child's ([`run_child`]): a filter
/// without `no_new_privs` must be loaded while `CAP_SYS_ADMIN` is held, and once loaded the
/// filter refuses the `clone3` of the fork.
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
    // Only 0, 1, 2 and the preserved fds may reach the command; everything nsinit holds is
    // close-on-exec.
    sys::cloexec_from(3 + join.preserve_fds).step(|| "mark inherited fds close-on-exec".into())?;
    Ok(pty)
}

/// The forked child, inside the container's pid namespace (not dumpable, so the container
/// cannot ptrace it while it is still privileged): seccomp, the process's limits,
/// capabilities and user, terminal, signals, exec.
fn run_child(
    join: &Join<'_>,
    placement: &Placement,
    pty_slave: Option<std::os::fd::BorrowedFd<'_>>,
) -> Failure {
    if let Placement::MovesItself(tasks) = placement {
        if let Err(e) = cgroups::move_self(tasks).step(|| "move into the container's cgroup".into())
        {
            return e.into();
        }
    }
    match become_joined(join, pty_slave) {
        Ok(()) => join.command.exec(),
        Err(e) => e.into(),
    }
}

fn become_joined(
    join: &Join<'_>,
    pty_slave: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<(), StepError> {
    let seccomp = join.plan.seccomp.as_ref();
    super::load_seccomp(seccomp, join.process, SeccompMoment::BeforeCapabilities)?;
    super::become_process(join.process)?;
    if let Some(slave) = pty_slave {
        terminal::make_controlling(slave)?;
    }
    super::prepare_exec(join.preserve_fds)?;
    super::load_seccomp(seccomp, join.process, SeccompMoment::Last)
}
