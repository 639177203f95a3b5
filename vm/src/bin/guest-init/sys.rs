//! The raw system calls the guest init needs and `std` lacks: mount, module loading, reaping
//! any child, power-off, and the write to QEMU's debug-exit port.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use libc::MS_MOVE;

fn cstring(text: impl AsRef<std::ffi::OsStr>) -> io::Result<CString> {
    CString::new(text.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

/// `mount(2)`; `fstype` and `data` may be absent (as for `MS_MOVE`).
pub fn mount(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = cstring(source)?;
    let target = cstring(target)?;
    let fstype = fstype.map(cstring).transpose()?;
    let data = data.map(cstring).transpose()?;
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is either null (allowed for fstype and data) or a NUL-terminated
    // string owned by this frame, alive for the duration of the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Loads a kernel module from its `.ko` file (`finit_module(2)`, no parameters).
pub fn load_module(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: the fd is open for the whole call (owned by `file`); the parameter string is a
    // static NUL-terminated empty string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), c"".as_ptr(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits for any child (PID 1 inherits every orphan) and returns its pid and raw wait status.
pub fn wait_any() -> io::Result<(u32, i32)> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int for the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            return Ok((pid as u32, status));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// The shell-style status of a raw wait status: the exit code, or 128 + the signal.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// Writes `value` to QEMU's `isa-debug-exit` port, which ends QEMU with `(value << 1) | 1`.
/// Returns only if the device is missing or the port cannot be opened.
#[cfg(target_arch = "x86_64")]
pub fn debug_exit(port: u16, value: u32) -> io::Result<()> {
    // SAFETY: ioperm only changes this process's I/O permission bitmap; plain integers.
    if unsafe { libc::ioperm(port.into(), 4, 1) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ioperm above granted this process the four ports at `port`, so `out` does not
    // fault; it touches no memory of this process, only the emulated device.
    unsafe {
        std::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack));
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
pub fn debug_exit(_port: u16, _value: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "isa-debug-exit needs x86_64",
    ))
}

/// Powers the machine off (with `-no-reboot` QEMU then exits 0); never returns.
pub fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; RB_POWER_OFF ends the machine.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    loop {
        std::thread::park();
    }
}
