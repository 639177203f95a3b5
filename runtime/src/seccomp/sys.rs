//! The `seccomp(2)` system call that loads a filter: the seccomp module's only `unsafe`.

use nix::errno::Errno;

use super::filter::Instruction;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &{len, program})`. Allocates nothing.
pub(super) fn set_mode_filter(program: &[Instruction], flags: u32) -> Result<(), Errno> {
    // `Filter` keeps its program between 1 and BPF_MAXINSNS (4096) instructions.
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `prog` points at `len` instructions of `program`, borrowed for the whole call;
    // `Instruction` has the layout of `struct sock_filter` (asserted at compile time in
    // filter.rs). The kernel only reads the program (it copies it before returning) and
    // writes nothing through the pointer despite the `*mut` of `sock_fprog`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    Errno::result(ret).map(drop)
}
