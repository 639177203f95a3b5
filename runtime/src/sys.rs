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

/// Whether the process behind `pidfd` is a child of this process (not yet reaped):
/// `waitid(P_PIDFD, ..., WNOHANG | WNOWAIT)` answers `ECHILD` for anyone else's.
pub fn is_our_child(pidfd: BorrowedFd<'_>) -> bool {
    // SAFETY: all zeros is a valid siginfo_t.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a siginfo_t the kernel may write; WNOWAIT leaves the child as it is.
    let ret = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    ret == 0
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

/// Set `lo` up in this thread's network namespace: `SIOCGIFFLAGS` and `SIOCSIFFLAGS` on a
/// UDP socket, two ioctls where rtnetlink needs a message, its parser and an acknowledgement.
pub fn set_loopback_up() -> io::Result<()> {
    // SAFETY: plain socket call with integer arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all zeros is a valid ifreq.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: both ioctls take a pointer to an ifreq, which outlives the calls; the union
    // member read is the one SIOCGIFFLAGS wrote.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
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

/// A new, detached mount of the filesystem `fstype` (no source, `options` as `key` or
/// `key=value` strings), with the per-mount `attrs` (`MOUNT_ATTR_*`): `fsopen`, `fsconfig`,
/// `fsmount` (Linux 5.2). The kernel decides whether the caller may mount it (a proc or
/// sysfs in a user namespace only while one is fully visible) here, in the caller's mount
/// namespace as it is now; [`move_mount`] attaches it later.
pub fn new_detached_mount(fstype: &str, options: &[&str], attrs: u64) -> io::Result<OwnedFd> {
    let c = |text: &str| CString::new(text).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    let fstype = c(fstype)?;
    // SAFETY: `fstype` is a valid C string for the call.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    let config = |cmd: libc::c_uint, key: Option<&CString>, value: Option<&CString>| {
        let ptr = |text: Option<&CString>| text.map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: `fs` is a valid fd; key and value are valid C strings or null, as the
        // command expects; aux is 0.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                ptr(key),
                ptr(value),
                0,
            )
        };
        match ret < 0 {
            true => Err(io::Error::last_os_error()),
            false => Ok(()),
        }
    };
    for option in options {
        match option.split_once('=') {
            Some((key, value)) => {
                config(libc::FSCONFIG_SET_STRING, Some(&c(key)?), Some(&c(value)?))?
            }
            None => config(libc::FSCONFIG_SET_FLAG, Some(&c(option)?), None)?,
        }
    }
    config(libc::FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: `fs` is a valid fs context fd; flags and attrs are plain integers.
    let mount = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        )
    };
    if mount < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(mount as RawFd) })
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

    pub fn argv(&self) -> &[CString] {
        &self._argv
    }

    pub fn env(&self) -> &[CString] {
        &self._env
    }

    /// Replace this process with the program open at `fd` (`execveat(fd, "", AT_EMPTY_PATH)`:
    /// no path, so no `/proc`), run with these arguments. Returns only on failure.
    pub fn execveat(&self, fd: BorrowedFd<'_>) -> io::Error {
        // SAFETY: as for `execve`; the empty path is a valid C string.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd.as_raw_fd(),
                c"".as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        io::Error::last_os_error()
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

/// The length of the datagram waiting on `socket`, without taking it (`MSG_PEEK |
/// MSG_TRUNC`: the whole length, whatever the buffer); 0 at end of file.
pub fn pending_datagram_len(socket: BorrowedFd<'_>) -> nix::Result<usize> {
    use nix::sys::socket::{recv, MsgFlags};
    recv(
        socket.as_raw_fd(),
        &mut [],
        MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
    )
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

/// `bpf(2)` commands, program and attach types nsinit uses (include/uapi/linux/bpf.h); the
/// `libc` crate has only `SYS_bpf`.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
/// `BPF_PROG_TYPE_CGROUP_DEVICE`: a program asked about every device open and mknod.
pub const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE`: the attach point of device programs on a cgroup v2 directory.
pub const BPF_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: several programs may sit on one group and its descendants; a request
/// passes only when every one of them allows it.
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// Most programs the kernel attaches to one cgroup at one attach point.
pub const BPF_CGROUP_MAX_PROGS: usize = 64;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `prog_name`; the kernel reads the
/// fields after it as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The `BPF_PROG_ATTACH`/`BPF_PROG_DETACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `BPF_PROG_QUERY` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, sizeof attr)`.
///
/// # Safety
/// `attr` must be the `union bpf_attr` member `cmd` reads, and every pointer in it must point
/// to memory valid for what the kernel does there (read or write) during the call.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller guarantees `attr` is what `cmd` expects; its size is passed with it,
    // and the kernel zero-extends a shorter `bpf_attr`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// `BPF_PROG_LOAD`: load `insns` (encoded `struct bpf_insn`s) as a program of `prog_type`,
/// named `name` (at most 15 of `[A-Za-z0-9_.]`) under `license`. With `log`, the verifier
/// writes its account of the program into it (level 1), NUL-terminated.
pub fn bpf_prog_load(
    prog_type: u32,
    insns: &[[u8; 8]],
    license: &std::ffi::CStr,
    name: &str,
    log: Option<&mut [u8]>,
) -> io::Result<OwnedFd> {
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    let name = name.as_bytes();
    let len = name.len().min(attr.prog_name.len() - 1);
    attr.prog_name[..len].copy_from_slice(&name[..len]);
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // SAFETY: `attr` is the PROG_LOAD member; `insns` (insn_cnt * 8 bytes), `license` (a C
    // string) and `log` (log_size bytes, written by the kernel) are borrowed for the call.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    // SAFETY: PROG_LOAD returned a new fd for the program; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `BPF_PROG_ATTACH`: attach the program `prog` to `target` (a cgroup v2 directory) at
/// `attach_type`, with `flags` (`BPF_F_ALLOW_MULTI`). The attachment holds its own
/// reference to the program: `prog` may be closed afterwards.
pub fn bpf_prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is the PROG_ATTACH member and holds no pointers; both fds are borrowed
    // for the call.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr)? };
    Ok(())
}

/// `BPF_PROG_DETACH`: take the program `prog` off `target` at `attach_type`.
pub fn bpf_prog_detach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        ..ProgAttachAttr::default()
    };
    // SAFETY: `attr` is the PROG_DETACH member and holds no pointers; both fds are borrowed
    // for the call.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr)? };
    Ok(())
}

/// `BPF_PROG_QUERY`: the ids of the programs attached to `target` itself (not inherited) at
/// `attach_type`, in `ids`; returns how many there are (`ENOSPC` when more than fit).
pub fn bpf_prog_query(
    target: BorrowedFd<'_>,
    attach_type: u32,
    ids: &mut [u32],
) -> io::Result<usize> {
    let mut attr = ProgQueryAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_type,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
        ..ProgQueryAttr::default()
    };
    // SAFETY: `attr` is the PROG_QUERY member; the kernel writes at most prog_cnt ids into
    // `ids`, which is borrowed mutably for the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr)? };
    Ok(attr.prog_cnt as usize)
}

/// `BPF_PROG_GET_FD_BY_ID`: an fd for the loaded program with this id (`ENOENT` once it is
/// freed).
pub fn bpf_prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetIdAttr {
        prog_id: id,
        ..GetIdAttr::default()
    };
    // SAFETY: `attr` is the GET_FD_BY_ID member and holds no pointers.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    // SAFETY: GET_FD_BY_ID returned a new fd for the program; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A close-on-exec memfd named `name` holding what `fill` writes, then sealed against every
/// change, ready for `execveat`/`fexecve`: nobody can alter the program it runs, through
/// `/proc/PID/exe` or otherwise (CVE-2019-5736). Made with `MFD_EXEC` (Linux 6.3) where the
/// kernel has it, which keeps it executable where `vm.memfd_noexec` is 1.
pub fn sealed_executable(
    name: &CStr,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> nix::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let exec = MFdFlags::from_bits_retain(libc::MFD_EXEC);
    let memfd = memfd_create(name, flags | exec).or_else(|_| memfd_create(name, flags))?;
    let mut file = std::fs::File::from(memfd);
    fill(&mut file).map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&file, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(file.into())
}
