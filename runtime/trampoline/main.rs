//! nsinit's exec trampoline: the program a joined command's process runs between its fork
//! into the container's pid namespace and the `execve` of the command.
//!
//! Why it exists (CVE-2019-5736): a process that becomes visible inside a container while it
//! still runs nsinit's binary lets the container open that binary through `/proc/PID/exe`,
//! and a command that is a script naming `/proc/self/exe` as its interpreter makes the kernel
//! run nsinit's binary in the container outright. So the joining nsinit never forks into the
//! container itself. A helper, still outside the container's pid namespace, becomes the
//! process (limits, user, capabilities, cgroup) and then executes this program from a sealed
//! memfd that nobody can write; this program forks the command's process into the container
//! (`CLONE_PARENT`: the joining nsinit is its parent and supervisor), which sets up the
//! terminal, loads the last seccomp filter and executes the command. `/proc/self/exe` is then
//! this sealed copy, never the host's file.
//!
//! It uses no libc: a glibc program starts in about 0.9 ms on a host where `CPUID` traps to
//! the hypervisor (glibc probes the CPU at every start), this one in a fraction of that. It
//! allocates nothing and uses raw system calls only; nsinit builds it with its own build
//! script (`build/trampoline.rs`) and embeds it. Arguments: see `protocol.rs`.
#![no_std]
#![no_main]
#![no_builtins]

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("the trampoline is written for x86_64 Linux");

use core::arch::{asm, global_asm};

#[allow(dead_code)]
mod protocol {
    include!("protocol.rs");
}
use protocol::*;

const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_IOCTL: usize = 16;
const SYS_PREAD64: usize = 17;
const SYS_DUP2: usize = 33;
const SYS_CLONE: usize = 56;
const SYS_EXECVE: usize = 59;
const SYS_FCNTL: usize = 72;
const SYS_SETSID: usize = 112;
const SYS_PRCTL: usize = 157;
const SYS_EXIT_GROUP: usize = 231;
const SYS_SECCOMP: usize = 317;

const EINTR: i32 = 4;
const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const ENOTDIR: i32 = 20;
const EINVAL: i32 = 22;

const PR_SET_DUMPABLE: usize = 4;
const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const TIOCSCTTY: usize = 0x540E;
const CLONE_PARENT: usize = 0x8000;
const SIGCHLD: usize = 17;
const SECCOMP_SET_MODE_FILTER: usize = 1;

const EXIT_SETUP: i32 = 125;
const EXIT_NOT_EXECUTABLE: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

// The kernel starts a static program at `_start` with the stack pointer at `argc`, followed
// by `argv`, a null, `envp` and a null. Hand that pointer to `start` on an aligned stack.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {start}",
    "ud2",
    start = sym start,
);

/// A system call with up to five arguments; returns the kernel's result (`-errno` on failure).
///
/// # Safety
/// The arguments must be valid for system call `number` (pointers to memory of the sizes it
/// reads or writes).
unsafe fn syscall(number: usize, args: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number as isize => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes an integer and does not return.
    unsafe { syscall(SYS_EXIT_GROUP, [code as usize, 0, 0, 0, 0]) };
    loop {}
}

/// An integer system call; `Err(errno)` on failure.
fn call(number: usize, args: [usize; 5]) -> Result<usize, i32> {
    // SAFETY: callers pass integers and fds only, or pointers valid for the call.
    let ret = unsafe { syscall(number, args) };
    match ret {
        r if r < 0 => Err(-r as i32),
        r => Ok(r as usize),
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(EXIT_SETUP)
}

/// The precompiled `core` names an unwinding personality; with `panic = "abort"` nothing
/// unwinds, so nothing ever calls it.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// A null-terminated C string as bytes, without the null.
///
/// # Safety
/// `s` points at a null-terminated string that outlives the result.
unsafe fn bytes<'a>(s: *const u8) -> &'a [u8] {
    let mut len = 0;
    // SAFETY: the string is null-terminated (the caller's promise).
    while unsafe { *s.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` bytes from `s` are the string's.
    unsafe { core::slice::from_raw_parts(s, len) }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A decimal number, or `None` for `-` or anything that is not one.
fn number(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut n = 0usize;
    for &digit in s {
        if !digit.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(digit - b'0');
    }
    Some(n)
}

/// What nsinit asked for, read from `argv`.
struct Request {
    channel: usize,
    terminal: Option<usize>,
    seccomp: Option<(usize, usize)>,
    candidates: *const *const u8,
    count: usize,
    argv: *const *const u8,
    envp: *const *const u8,
}

/// The seccomp program, read from its fd before the fork: the kernel copies it at load time.
#[repr(C, align(8))]
struct Program([u8; MAX_PROGRAM_BYTES]);
static mut PROGRAM: Program = Program([0; MAX_PROGRAM_BYTES]);

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const u8,
}

/// The entry point, from `_start`: returns nothing, every path ends in `exit` or `execve`.
///
/// # Safety
/// `stack` is the initial stack pointer the kernel set up for a new program.
unsafe extern "C" fn start(stack: *const usize) -> ! {
    // Not dumpable before anything else: the command's process forked below inherits it and
    // is visible in the container until its `execve`; the container may not ptrace it or
    // open its `/proc/PID/{mem,fd,exe}` without `CAP_SYS_PTRACE`.
    let _ = call(SYS_PRCTL, [PR_SET_DUMPABLE, 0, 0, 0, 0]);
    // SAFETY: the kernel's layout: argc, then argc pointers and a null, then envp.
    let (argc, argv) = unsafe { (*stack, stack.add(1).cast::<*const u8>()) };
    // SAFETY: `argv` has `argc` entries and a null; `envp` follows.
    let envp = unsafe { argv.add(argc + 1) };
    // SAFETY: as above; every entry is a null-terminated string.
    let arg = |i: usize| unsafe { bytes(*argv.add(i)) };
    if argc < FIXED_ARGS || !same(arg(1), MAGIC) {
        let text = b"nsinit-trampoline: this program runs only as the last step of an nsinit \
                     join, started by nsinit; it was started by something else\n";
        let _ = call(SYS_WRITE, [2, text.as_ptr() as usize, text.len(), 0, 0]);
        exit(EXIT_NOT_EXECUTABLE);
    }
    let Some(channel) = number(arg(2)) else {
        exit(EXIT_SETUP)
    };
    let optional = |i: usize| match arg(i) {
        s if same(s, b"-") => Ok(None),
        s => number(s).map(Some).ok_or(()),
    };
    let (Ok(terminal), Ok(seccomp_fd), Some(flags), Some(count)) =
        (optional(3), optional(4), number(arg(5)), number(arg(6)))
    else {
        fail(channel, STEP_ARGUMENTS, EINVAL, 0)
    };
    if FIXED_ARGS + count >= argc {
        fail(channel, STEP_ARGUMENTS, EINVAL, 0)
    }
    // SAFETY: within argv (checked just above).
    let candidates = unsafe { argv.add(FIXED_ARGS) };
    let request = Request {
        channel,
        terminal,
        seccomp: seccomp_fd.map(|fd| (fd, flags)),
        candidates,
        count,
        // SAFETY: within argv; its null terminator ends the command's argv too.
        argv: unsafe { candidates.add(count) },
        envp,
    };
    trampoline(&request)
}

fn trampoline(request: &Request) -> ! {
    let channel = request.channel;
    // The channel must not reach the command; the terminal reaches it as 0, 1 and 2 only.
    let cloexec = |fd: usize| call(SYS_FCNTL, [fd, F_SETFD, FD_CLOEXEC, 0, 0]);
    if let Err(errno) = cloexec(channel) {
        fail(channel, STEP_ARGUMENTS, errno, 0)
    }
    if let Some(terminal) = request.terminal {
        if let Err(errno) = cloexec(terminal) {
            fail(channel, STEP_TERMINAL, errno, 0)
        }
    }
    let program = match request.seccomp {
        None => None,
        Some((fd, flags)) => match read_program(fd) {
            Ok(len) => Some((len, flags)),
            Err(errno) => fail(channel, STEP_READ_SECCOMP, errno, 0),
        },
    };
    match call(SYS_CLONE, [CLONE_PARENT | SIGCHLD, 0, 0, 0, 0]) {
        Err(errno) => fail(channel, STEP_FORK, errno, 0),
        Ok(0) => command(request, program),
        Ok(pid) => {
            let pid = (pid as i32).to_le_bytes();
            let message = [TAG_FORKED, pid[0], pid[1], pid[2], pid[3]];
            send(channel, &message);
            exit(0)
        }
    }
}

/// Read the seccomp program from `fd` into [`PROGRAM`]; returns its length in bytes.
fn read_program(fd: usize) -> Result<usize, i32> {
    let buffer = core::ptr::addr_of_mut!(PROGRAM).cast::<u8>();
    let mut len = 0;
    loop {
        let room = MAX_PROGRAM_BYTES - len;
        // SAFETY: `room` bytes from `len` lie within PROGRAM; this process has one thread.
        let args = [fd, unsafe { buffer.add(len) } as usize, room, len, 0];
        match call(SYS_PREAD64, args) {
            Err(EINTR) => continue,
            Err(errno) => return Err(errno),
            Ok(0) => break,
            Ok(n) => len += n,
        }
        if len == MAX_PROGRAM_BYTES {
            break;
        }
    }
    let _ = call(SYS_CLOSE, [fd, 0, 0, 0, 0]);
    match len {
        0 => Err(EINVAL),
        len if len % 8 != 0 => Err(EINVAL),
        len => Ok(len),
    }
}

/// The command's process, in the container's pid namespace: terminal, seccomp, `execve`.
fn command(request: &Request, program: Option<(usize, usize)>) -> ! {
    let channel = request.channel;
    if let Some(terminal) = request.terminal {
        let steps = [
            (SYS_SETSID, [0; 5]),
            (SYS_IOCTL, [terminal, TIOCSCTTY, 0, 0, 0]),
            (SYS_DUP2, [terminal, 0, 0, 0, 0]),
            (SYS_DUP2, [terminal, 1, 0, 0, 0]),
            (SYS_DUP2, [terminal, 2, 0, 0, 0]),
        ];
        for (number, args) in steps {
            if let Err(errno) = call(number, args) {
                fail(channel, STEP_TERMINAL, errno, 0)
            }
        }
    }
    if let Some((len, flags)) = program {
        let fprog = SockFprog {
            len: (len / 8) as u16,
            filter: core::ptr::addr_of!(PROGRAM).cast::<u8>(),
        };
        let args = [
            SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const _ as usize,
            0,
            0,
        ];
        if let Err(errno) = call(SYS_SECCOMP, args) {
            fail(channel, STEP_SECCOMP, errno, 0)
        }
    }
    // The command's paths in order, as nsinit's own `Command::exec` tries them.
    let mut denied = None;
    for i in 0..request.count {
        // SAFETY: `count` candidates precede the command's argv (checked in `start`).
        let path = unsafe { *request.candidates.add(i) };
        let args = [
            path as usize,
            request.argv as usize,
            request.envp as usize,
            0,
            0,
        ];
        match call(SYS_EXECVE, args) {
            Err(ENOENT | ENOTDIR) => continue,
            Err(EACCES) => denied = Some(i),
            Err(errno) => fail(channel, STEP_EXEC, errno, i),
            Ok(_) => unreachable!("execve returned without an error"),
        }
    }
    match denied {
        Some(i) => fail(channel, STEP_EXEC, EACCES, i),
        None => fail(channel, STEP_EXEC, ENOENT, request.count),
    }
}

/// Tell nsinit which step failed and how, then exit with the code nsinit would report.
fn fail(channel: usize, step: u8, errno: i32, index: usize) -> ! {
    let e = errno.to_le_bytes();
    let i = (index as u32).to_le_bytes();
    let message = [
        TAG_STEP_FAILED,
        step,
        e[0],
        e[1],
        e[2],
        e[3],
        i[0],
        i[1],
        i[2],
        i[3],
    ];
    send(channel, &message);
    exit(match (step, errno) {
        (STEP_EXEC, ENOENT) => EXIT_NOT_FOUND,
        (STEP_EXEC, _) => EXIT_NOT_EXECUTABLE,
        _ => EXIT_SETUP,
    })
}

/// One datagram on the channel (a `SOCK_SEQPACKET` socket); nothing to do if it fails.
fn send(channel: usize, message: &[u8]) {
    let args = [channel, message.as_ptr() as usize, message.len(), 0, 0];
    while let Err(EINTR) = call(SYS_WRITE, args) {}
}
