//! Raw system calls that the `nix` crate lacks. The only module of `runtime` with `unsafe`
//! blocks but for the two calls of the unsafe [`clone3`] (start and join), whose caller
//! must promise what it needs.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

/// What `clone3` returned, seen from each side.
pub enum Forked {
    /// We are the new process.
    Child,
    /// We are the caller; the child has this host pid and this pidfd.
    Parent { pid: Pid, pidfd: OwnedFd },
}

/// `CLONE_INTO_CGROUP` (since Linux 5.7), a 64-bit flag only `clone3` takes.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `clone3(2)` (include/uapi/linux/sched.h), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Fork-like `clone3`: the child runs on a copy of the caller's stack, like `fork`, but is
/// created with `flags` (namespace flags), gets a pidfd, and is born in `cgroup` when given
/// (`CLONE_INTO_CGROUP`, cgroup v2 only).
///
/// # Safety
/// The calling process must be single-threaded: the child gets a copy of this thread only, so a
/// lock held by another thread (in the allocator, in stdio) would stay held forever in it.
pub unsafe fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size we pass and `pidfd` outlives the call.
    // With a null stack the child continues on a copy of our stack like fork(); the caller
    // guarantees we are single-threaded, so the copy holds no lock owned by another thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: Pid::from_raw(pid as libc::pid_t),
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd in `pidfd`; we own it now.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// `pidfd_open(2)`: a pidfd for a process that is not our child.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `pidfd_send_signal(2)`: signal the process behind `pidfd`, immune to pid reuse.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is valid for the duration of the call; a null siginfo is allowed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Mark every fd from `first` on close-on-exec (`close_range(2)` with `CLOSE_RANGE_CLOEXEC`),
/// so exactly the fds below `first` survive `execve`.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments; it closes nothing, it only sets flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Make `fd` (a terminal) the controlling terminal of this session (`TIOCSCTTY`).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; the fd is valid for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unlock a pty master and return the number of its slave (`TIOCSPTLCK`, `TIOCGPTN`).
pub fn unlock_pty(master: BorrowedFd<'_>) -> io::Result<u32> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer, which outlives the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the pointer, which outlives the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(number)
}

/// The window size of a terminal (`TIOCGWINSZ`).
pub fn window_size(tty: BorrowedFd<'_>) -> io::Result<libc::winsize> {
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer, which outlives the call.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

/// Set the window size of a terminal (`TIOCSWINSZ`); the kernel signals its foreground group.
pub fn set_window_size(tty: BorrowedFd<'_>, size: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer, which outlives the call.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reset every catchable signal to its default action, as a fresh process expects. Rust's
/// runtime ignores SIGPIPE, and ignored signals survive `execve`.
pub fn reset_signal_dispositions() {
    for signal in 1..libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL has no memory-safety preconditions; errors for signal
        // numbers reserved by libc are harmless and ignored.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

/// `open_tree(2)` with `OPEN_TREE_CLONE`: a detached copy of the mount at `fd` (an `O_PATH`
/// fd of a directory or file), with its submounts when `recursive`, ready to be attached
/// elsewhere with [`move_mount`]. The fd is close-on-exec.
pub fn open_tree_clone(fd: BorrowedFd<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: the path is a valid empty C string and the fd is valid for the call.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `move_mount(2)`: attach the detached mount `tree` onto the file or directory `target`
/// (an `O_PATH` fd), so the mount lands on exactly what `target` names.
pub fn move_mount(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both paths are valid empty C strings and both fds are valid for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mount_setattr(2)` setting `MOUNT_ATTR_RDONLY` on the mount at `fd` and, with
/// `AT_RECURSIVE`, on every mount below it (Linux 5.12).
pub fn make_tree_readonly(fd: BorrowedFd<'_>) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | libc::AT_RECURSIVE;
    // SAFETY: the path is a valid empty C string; `attr` is a mount_attr of the size passed,
    // read during the call; the fd is valid for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setdomainname(2)`: the NIS domain name of this UTS namespace.
pub fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, read during the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    nix::errno::Errno::result(ret).map(drop)
}

/// `personality(2)`: `PER_LINUX32` when `linux32` (`uname -m` says i686), else `PER_LINUX`.
pub fn set_personality(linux32: bool) -> nix::Result<()> {
    const PER_LINUX: libc::c_ulong = 0x0000;
    const PER_LINUX32: libc::c_ulong = 0x0008;
    let persona = if linux32 { PER_LINUX32 } else { PER_LINUX };
    // SAFETY: plain syscall with an integer argument.
    let ret = unsafe { libc::personality(persona) };
    nix::errno::Errno::result(ret).map(drop)
}

/// `setrlimit(2)` of resource number `resource` (`RLIMIT_*`).
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> nix::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: the rlimit is a plain struct read through the pointer during the call; an
    // unknown resource number is refused by the kernel with EINVAL.
    let ret = unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &limit) };
    nix::errno::Errno::result(ret).map(drop)
}

/// `_exit(2)`: leave the child without running the parent's atexit handlers or flushing the
/// parent's stdio buffers (the child holds copies of both).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// The arguments of an `execve(2)`, prepared so that the call itself allocates nothing:
/// the strings and the null-terminated pointer arrays into them, owned together, so the
/// pointers stay valid for as long as this lives (a `CString`'s bytes never move).
pub struct ExecArgs {
    _argv: Vec<CString>,
    _env: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    pub fn new(argv: Vec<CString>, env: Vec<CString>) -> Self {
        let null_terminated = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain([std::ptr::null()])
                .collect()
        };
        ExecArgs {
            argv_ptrs: null_terminated(&argv),
            env_ptrs: null_terminated(&env),
            _argv: argv,
            _env: env,
        }
    }

    /// Replace this process with `path`, run with these arguments. Returns only on failure.
    pub fn execve(&self, path: &CStr) -> io::Error {
        // SAFETY: `path` is a valid C string; both arrays are null-terminated and point into
        // C strings owned by `self`, alive across the call.
        unsafe {
            libc::execve(
                path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
            )
        };
        io::Error::last_os_error()
    }
}

/// Receive one datagram from a unix socket into `buf`, with at most one fd passed as
/// `SCM_RIGHTS` (close-on-exec). Returns the byte count and the fd, if one came.
pub fn recv_with_fd(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> nix::Result<(usize, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut received = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: SCM_RIGHTS installed these fds in our table during this call; nothing
            // else owns them. Wrapping each at once means extras are closed, not leaked.
            received.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, received.into_iter().next()))
}
