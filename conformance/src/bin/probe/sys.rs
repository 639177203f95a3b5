//! The raw system calls the probe makes, each wrapped once so the rest of the probe is safe
//! code. Everything here is plain libc: no NSS, so a static build works in any rootfs.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use conformance::facts::Interface;

pub struct Ids {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub gid: u32,
}

pub fn ids() -> Ids {
    // SAFETY: these calls take no arguments, cannot fail and touch no memory of ours.
    unsafe {
        Ids {
            pid: libc::getpid(),
            ppid: libc::getppid(),
            uid: libc::getuid(),
            gid: libc::getgid(),
        }
    }
}

pub fn hostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the kernel writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The numbers of the open file descriptors, without the one this listing itself uses.
pub fn open_fds() -> io::Result<Vec<i32>> {
    let path = c"/proc/self/fd";
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let dir = unsafe { libc::opendir(path.as_ptr()) };
    if dir.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dir` is the open stream returned above.
    let own_fd = unsafe { libc::dirfd(dir) };
    let mut fds = Vec::new();
    loop {
        // SAFETY: `dir` is open; the entry stays valid until the next readdir or closedir,
        // and we copy its name out before either.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if let Ok(fd) = name.to_string_lossy().parse::<i32>() {
            if fd != own_fd {
                fds.push(fd);
            }
        }
    }
    // SAFETY: `dir` is open and not used after this.
    unsafe { libc::closedir(dir) };
    fds.sort_unstable();
    Ok(fds)
}

/// Network interfaces with their flags, MTU and IPv4 addresses, in the order the kernel
/// lists them.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: on success the kernel-filled list is ours until freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found: Vec<Interface> = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` walks the list getifaddrs returned, which is still allocated.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        // SAFETY: every entry carries a NUL-terminated interface name.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let index = match found.iter().position(|i| i.name == name) {
            Some(index) => index,
            None => {
                found.push(Interface {
                    up: entry.ifa_flags & libc::IFF_UP as u32 != 0,
                    loopback: entry.ifa_flags & libc::IFF_LOOPBACK as u32 != 0,
                    mtu: mtu(&name).ok(),
                    name,
                    ipv4: Vec::new(),
                });
                found.len() - 1
            }
        };
        if let Some(address) = ipv4_with_prefix(entry) {
            found[index].ipv4.push(address);
        }
    }
    // SAFETY: `head` came from getifaddrs and no reference into the list outlives this.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

fn ipv4_with_prefix(entry: &libc::ifaddrs) -> Option<String> {
    let ipv4 = |sockaddr: *const libc::sockaddr| -> Option<Ipv4Addr> {
        // SAFETY: the pointer is either null or a sockaddr from getifaddrs; we only read it
        // as sockaddr_in after checking its family says so.
        unsafe {
            if sockaddr.is_null() || i32::from((*sockaddr).sa_family) != libc::AF_INET {
                return None;
            }
            let sin = &*(sockaddr as *const libc::sockaddr_in);
            Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
        }
    };
    let address = ipv4(entry.ifa_addr)?;
    let prefix = ipv4(entry.ifa_netmask).map_or(32, |mask| u32::from(mask).count_ones());
    Some(format!("{address}/{prefix}"))
}

/// `struct ifreq` as SIOCGIFMTU reads it: the name, then the MTU in the union.
#[repr(C)]
struct IfreqMtu {
    name: [libc::c_char; libc::IFNAMSIZ],
    mtu: libc::c_int,
    _rest_of_union: [u8; 20],
}

fn mtu(name: &str) -> io::Result<u32> {
    let mut request = IfreqMtu {
        name: [0; libc::IFNAMSIZ],
        mtu: 0,
        _rest_of_union: [0; 20],
    };
    for (dst, src) in request
        .name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    // SAFETY: plain socket creation; the fd is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFMTU reads the name from and writes the MTU into `request`, a properly
    // sized `struct ifreq` we own.
    let rc = unsafe { libc::ioctl(sock, libc::SIOCGIFMTU, &mut request) };
    let result = if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(request.mtu as u32)
    };
    // SAFETY: `sock` is ours and not used again.
    unsafe { libc::close(sock) };
    result
}

pub struct TtyState {
    pub isatty: [bool; 3],
    pub foreground_pgrp: Option<i32>,
    pub pgrp: i32,
    pub session: i32,
}

pub fn tty_state() -> TtyState {
    // SAFETY: isatty only inspects the fd number; a closed fd yields 0.
    let isatty = [0, 1, 2].map(|fd| unsafe { libc::isatty(fd) } == 1);
    // SAFETY: tcgetpgrp only inspects fd 0; it fails harmlessly when that is no terminal.
    let foreground = unsafe { libc::tcgetpgrp(0) };
    // SAFETY: getpgrp and getsid(0) take no pointers and cannot fail for the caller.
    let (pgrp, session) = unsafe { (libc::getpgrp(), libc::getsid(0)) };
    TtyState {
        isatty,
        foreground_pgrp: (foreground >= 0).then_some(foreground),
        pgrp,
        session,
    }
}

/// The outcome of a privileged operation: `Ok` or the errno it failed with.
pub type Attempt = Result<(), i32>;

fn attempt(rc: libc::c_int) -> Attempt {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("paths given to the probe have no NUL")
}

/// Mount a tmpfs on `target` (needs `CAP_SYS_ADMIN`).
pub fn mount_tmpfs(target: &Path) -> Attempt {
    let target = cstring(target);
    // SAFETY: all strings are NUL-terminated and outlive the call; no data argument.
    attempt(unsafe {
        libc::mount(
            c"none".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    })
}

/// Detach the mount on `target`.
pub fn unmount(target: &Path) -> Attempt {
    let target = cstring(target);
    // SAFETY: `target` is NUL-terminated and outlives the call.
    attempt(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
}

/// Create the character device 1:3 at `path` (needs `CAP_MKNOD`).
pub fn mknod_null(path: &Path) -> Attempt {
    mknod_char(path, 1, 3)
}

/// Create the character device `major:minor` at `path`, mode 0600 (needs `CAP_MKNOD`).
pub fn mknod_char(path: &Path, major: u32, minor: u32) -> Attempt {
    let path = cstring(path);
    let mode = libc::S_IFCHR | 0o600;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    attempt(unsafe { libc::mknod(path.as_ptr(), mode, libc::makedev(major, minor)) })
}

/// Set the hostname (needs `CAP_SYS_ADMIN`).
pub fn sethostname(name: &str) -> Attempt {
    // SAFETY: the kernel reads exactly `name.len()` bytes from the string we own.
    attempt(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
}

/// chroot to `path` (needs `CAP_SYS_CHROOT`).
pub fn chroot(path: &Path) -> Attempt {
    let path = cstring(path);
    // SAFETY: `path` is NUL-terminated and outlives the call.
    attempt(unsafe { libc::chroot(path.as_ptr()) })
}

/// Ask to load a module from an invalid fd: `EPERM` without `CAP_SYS_MODULE`, `EBADF` with it.
pub fn load_module() -> Attempt {
    // SAFETY: finit_module with fd -1 reads no memory of ours besides the empty param string.
    attempt(unsafe { libc::syscall(libc::SYS_finit_module, -1, c"".as_ptr(), 0) } as libc::c_int)
}

/// Raise our own priority (needs `CAP_SYS_NICE`).
pub fn raise_priority() -> Attempt {
    // SAFETY: setpriority takes only integers and changes only this process.
    attempt(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -5) })
}

/// The symbolic name of an errno, for the JSON (`EPERM`).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENXIO => "ENXIO",
        libc::ENOSPC => "ENOSPC",
        libc::ESTALE => "ESTALE",
        libc::ENOKEY => "ENOKEY",
        libc::E2BIG => "E2BIG",
        libc::ELOOP => "ELOOP",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// The first signal caught by [`catch_signals`], or 0.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn record_signal(signo: libc::c_int) {
    // Only the first one counts; a store to an atomic is async-signal-safe.
    let _ = CAUGHT.compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
}

/// Install a handler that records the first of `signals` to arrive.
pub fn catch_signals(signals: &[i32]) -> io::Result<()> {
    for &signo in signals {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); we set the handler to a
        // function that only stores to an atomic, which is async-signal-safe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigaction(signo, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The signal [`catch_signals`] recorded, if one arrived.
pub fn caught_signal() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        signo => Some(signo),
    }
}

/// Send `signo` to ourselves.
pub fn kill_self(signo: i32) -> io::Result<()> {
    // SAFETY: kill takes only integers; the signal's effect on us is what the caller wants.
    if unsafe { libc::kill(libc::getpid(), signo) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Touch an unmapped page, so the kernel kills us with SIGSEGV. A real fault, unlike
/// `raise(SIGSEGV)`, kills even a pid namespace's init, which ignores signals it sends itself.
pub fn segfault() -> ! {
    // An address in the first page, which mmap_min_addr keeps unmapped.
    let address = std::hint::black_box(16usize) as *mut u8;
    // SAFETY: not safe, and deliberately so: the write faults and the kernel kills the
    // process before anything can observe it.
    unsafe { address.write_volatile(1) };
    unreachable!("a write to address 16 did not fault")
}

/// The outcome of a call that returns a number or -1 with errno.
fn attempt_long(rc: libc::c_long) -> Attempt {
    if rc >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0)`: looks the thread's keyring
/// up without creating it (ENOKEY when it has none).
pub fn keyctl_lookup() -> Attempt {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_THREAD_KEYRING: libc::c_long = -1;
    // SAFETY: integer arguments only; the call reads and writes no memory of ours.
    attempt_long(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_THREAD_KEYRING,
            0,
        )
    })
}

/// `add_key` with an empty key type, which the kernel refuses (EINVAL) before anything else.
pub fn add_key_without_type() -> Attempt {
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: both strings are NUL-terminated statics; the payload is absent (null, 0).
    attempt_long(unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"".as_ptr(),
            c"nsinit-probe".as_ptr(),
            std::ptr::null::<u8>(),
            0usize,
            KEY_SPEC_SESSION_KEYRING,
        )
    })
}

/// `bpf` with a command no kernel has and no attributes (EINVAL).
pub fn bpf_unknown_command() -> Attempt {
    // SAFETY: a null attribute pointer with size 0: the kernel copies nothing.
    attempt_long(unsafe { libc::syscall(libc::SYS_bpf, 10_000, std::ptr::null::<u8>(), 0u32) })
}

/// `perf_event_open` without attributes (EFAULT once the kernel reads them).
pub fn perf_event_open_without_attributes() -> Attempt {
    // SAFETY: a null attribute pointer: the kernel's read of it faults and it returns EFAULT.
    attempt_long(unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::null::<u8>(),
            0,
            -1,
            -1,
            0u64,
        )
    })
}

/// `clone3` with a size below the smallest `struct clone_args` (EINVAL: no process is made).
pub fn clone3_too_small() -> Attempt {
    // SAFETY: a null pointer with size 0: the kernel refuses the size before reading.
    attempt_long(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) })
}

/// `unshare(flags)`, for the calling process.
pub fn unshare(flags: libc::c_int) -> Attempt {
    // SAFETY: integer argument only.
    attempt(unsafe { libc::unshare(flags) })
}

/// How a child process made by [`in_child`] ended.
pub enum ChildEnd {
    /// Its exit code and what it wrote to its pipe.
    Exited(i32, Vec<u8>),
    Killed(i32),
    /// No child: fork, pipe or wait failed.
    NotRun(io::Error),
}

/// Run `work` in a forked child with the write end of a pipe, exit with what it returns, and
/// report how the child ended with what it wrote. For calls that may change or kill the
/// process making them. The probe is single-threaded, so the child may do anything.
pub fn in_child(work: impl FnOnce(&mut File) -> i32) -> ChildEnd {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return ChildEnd::NotRun(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both fds are open and nobody else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the probe runs no other thread, so the child is a complete copy of it.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return ChildEnd::NotRun(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(read);
        let code = work(&mut File::from(write));
        // SAFETY: ends the child at once, without running the parent's exit handlers twice.
        unsafe { libc::_exit(code) };
    }
    drop(write);
    let mut wrote = Vec::new();
    let _ = File::from(read).read_to_end(&mut wrote);
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is ours to write.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return ChildEnd::NotRun(io::Error::last_os_error());
    }
    if libc::WIFSIGNALED(status) {
        ChildEnd::Killed(libc::WTERMSIG(status))
    } else {
        ChildEnd::Exited(libc::WEXITSTATUS(status), wrote)
    }
}

/// `struct file_handle` as the kernel reads it: the handle's size, its type, its bytes.
pub fn file_handle(handle_type: i32, bytes: &[u8]) -> Vec<u8> {
    let mut fh = Vec::with_capacity(8 + bytes.len());
    fh.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    fh.extend_from_slice(&handle_type.to_ne_bytes());
    fh.extend_from_slice(bytes);
    fh
}

/// `open_by_handle_at(mount, fh, O_RDONLY)` through the 64-bit ABI.
pub fn open_by_handle(mount: &File, fh: &[u8]) -> Result<File, i32> {
    // SAFETY: `fh` is a complete `struct file_handle` (see [`file_handle`]) that outlives the
    // call; on success the kernel returns a new fd that we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            fh.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

/// A copy of `bytes` in memory below 4 GiB (`MAP_32BIT`), where x86's 32-bit ABI can point.
pub struct Low {
    address: *mut libc::c_void,
    len: usize,
}

impl Low {
    pub fn copy_of(bytes: &[u8]) -> io::Result<Low> {
        let len = bytes.len().max(1);
        // SAFETY: a fresh private anonymous mapping; we own it until munmap in Drop.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the mapping is `len` >= `bytes.len()` bytes, writable, and ours alone.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), address.cast::<u8>(), bytes.len()) };
        Ok(Low { address, len })
    }

    /// The address as x86's ABI takes it.
    pub fn address32(&self) -> u32 {
        self.address as usize as u32
    }
}

impl Drop for Low {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing points into it any more.
        unsafe { libc::munmap(self.address, self.len) };
    }
}

/// `open_by_handle_at(mount, fh, O_RDONLY)` through x86's `int $0x80` ABI: call 342 in the
/// i386 table, arguments in ebx, ecx, edx. The 32-bit ABI reads only the low halves, so `fh`
/// must be below 4 GiB.
#[cfg(target_arch = "x86_64")]
pub fn open_by_handle_int80(mount: &File, fh: &Low) -> Result<File, i32> {
    const I386_OPEN_BY_HANDLE_AT: i32 = 342;
    let result: i32;
    // SAFETY: the call takes an fd, a pointer to a complete `struct file_handle` below 4 GiB
    // that outlives the call, and flags. LLVM reserves rbx, so the fd is swapped into ebx
    // around the interrupt and back; the kernel may clobber r8-r11 on this path.
    unsafe {
        std::arch::asm!(
            "xchg {fd:e}, ebx",
            "int 0x80",
            "xchg {fd:e}, ebx",
            fd = inout(reg) mount.as_raw_fd() => _,
            inlateout("eax") I386_OPEN_BY_HANDLE_AT => result,
            in("ecx") fh.address32(),
            in("edx") libc::O_RDONLY,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    match result {
        // SAFETY: the kernel just returned this fd; nothing else owns it.
        fd @ 0.. => Ok(unsafe { File::from_raw_fd(fd) }),
        errno => Err(-errno),
    }
}
