//! `guest-exit passed|failed|init-error`: run inside the VM (as root), it ends QEMU with the
//! status's code through the `isa-debug-exit` device. If the device is missing it returns,
//! failing, and the init powers off instead.

use std::process::ExitCode;

use vm::guest::{GuestStatus, DEBUG_EXIT_PORT};

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(status) = GuestStatus::from_name(&name) else {
        eprintln!("usage: guest-exit passed|failed|init-error");
        return ExitCode::from(2);
    };
    if let Err(error) = debug_exit(status.port_value()) {
        eprintln!("guest-exit: ioperm {DEBUG_EXIT_PORT:#x}: {error}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "guest-exit: wrote {} to port {DEBUG_EXIT_PORT:#x} but QEMU is still running",
        status.port_value()
    );
    ExitCode::FAILURE
}

#[cfg(target_arch = "x86_64")]
fn debug_exit(value: u32) -> std::io::Result<()> {
    extern "C" {
        fn ioperm(
            from: std::ffi::c_ulong,
            num: std::ffi::c_ulong,
            turn_on: std::ffi::c_int,
        ) -> std::ffi::c_int;
    }
    // SAFETY: ioperm only changes this process's I/O permission bitmap; it takes plain integers.
    if unsafe { ioperm(DEBUG_EXIT_PORT.into(), 4, 1) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ioperm above granted access to the four ports at DEBUG_EXIT_PORT, so `out` does not
    // fault; the write touches no memory of this process, only the emulated device, which ends
    // the VM.
    unsafe {
        std::arch::asm!("out dx, eax", in("dx") DEBUG_EXIT_PORT, in("eax") value, options(nomem, nostack));
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
fn debug_exit(_value: u32) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "isa-debug-exit needs x86_64",
    ))
}
