//! The exec trampoline, seen from nsinit: the libc-free program (`trampoline/main.rs`) a join
//! executes, from a sealed memfd, to fork the command's process into the container and run
//! the command. What it is for and how it works is in that file; this side puts it in the
//! memfd, starts it, and reads what it reports.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::command::Command;
use crate::error::{Failure, StepContext, StepError, EXIT_SETUP};
use crate::seccomp::Filter;
use crate::sys::{self, ExecArgs};

#[allow(dead_code)] // The trampoline's side of the protocol uses the rest.
pub(crate) mod protocol {
    include!("../../trampoline/protocol.rs");
}
use protocol::*;

// The trampoline's buffer holds the largest program a `Filter` may have; checked here, where
// both sides are in view (the trampoline builds without this crate).
const _: () = assert!(MAX_PROGRAM_BYTES == crate::seccomp::MAX_INSTRUCTIONS * 8);

/// The program, built by `build/trampoline.rs`.
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nsinit-trampoline"));

/// The trampoline in a memfd sealed against every change: what `/proc/PID/exe` of the
/// command's process shows until its `execve`, and what a script naming `/proc/self/exe` as
/// its interpreter would run.
pub(crate) struct Trampoline {
    memfd: OwnedFd,
}

impl Trampoline {
    /// Copy the program (4 KiB) into a new sealed memfd.
    pub fn load() -> Result<Trampoline, StepError> {
        Self::sealed_copy().step(|| "put the exec trampoline in a sealed memfd".into())
    }

    fn sealed_copy() -> nix::Result<Trampoline> {
        let memfd = sys::sealed_executable(c"nsinit-trampoline", |file| file.write_all(PROGRAM))?;
        Ok(Trampoline { memfd })
    }

    /// Replace this process with the trampoline, to run `command` with `terminal` as its
    /// controlling terminal and the seccomp `program` loaded last. Returns only on failure.
    /// The fds handed over must not be close-on-exec; the trampoline marks them so.
    pub fn exec(
        &self,
        channel: BorrowedFd<'_>,
        terminal: Option<BorrowedFd<'_>>,
        program: Option<(BorrowedFd<'_>, &Filter)>,
        command: &Command,
    ) -> Failure {
        match arguments(channel, terminal, program, command) {
            Ok(args) => {
                let error = args.execveat(self.memfd.as_fd());
                let errno = nix::Error::from_raw(error.raw_os_error().unwrap_or(libc::EIO));
                let hint = match errno {
                    nix::Error::EACCES => " (is the sysctl vm.memfd_noexec 2?)",
                    _ => "",
                };
                Failure {
                    code: EXIT_SETUP as u8,
                    text: format!("execute the exec trampoline from its memfd: {errno}{hint}"),
                }
            }
            Err(e) => e.into(),
        }
    }
}

/// The trampoline's `argv` (see `protocol.rs`) and environment (the command's), with the
/// fds it is handed made inheritable.
fn arguments(
    channel: BorrowedFd<'_>,
    terminal: Option<BorrowedFd<'_>>,
    program: Option<(BorrowedFd<'_>, &Filter)>,
    command: &Command,
) -> Result<ExecArgs, StepError> {
    let mut handed_over = vec![channel];
    handed_over.extend(terminal);
    handed_over.extend(program.map(|(fd, _)| fd));
    for fd in handed_over {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
            .step(|| format!("hand fd {} to the exec trampoline", fd.as_raw_fd()))?;
    }
    let fd_arg = |fd: Option<BorrowedFd<'_>>| match fd {
        Some(fd) => fd.as_raw_fd().to_string(),
        None => "-".to_string(),
    };
    let arg = |text: String| CString::new(text).expect("digits and - have no NUL");
    let mut argv = vec![
        c"nsinit-trampoline".to_owned(),
        CString::new(MAGIC).expect("no NUL in the magic"),
        arg(channel.as_raw_fd().to_string()),
        arg(fd_arg(terminal)),
        arg(fd_arg(program.map(|(fd, _)| fd))),
        arg(program
            .map_or(0, |(_, filter)| filter.flag_bits())
            .to_string()),
        arg(command.candidates().len().to_string()),
    ];
    debug_assert_eq!(argv.len(), FIXED_ARGS);
    argv.extend(command.candidates().iter().cloned());
    argv.extend(command.argv().iter().cloned());
    Ok(ExecArgs::new(argv, command.env().to_vec()))
}

/// The seccomp program the trampoline loads, as `struct sock_filter[]` in a memfd.
pub(crate) fn program_memfd(filter: &Filter) -> Result<OwnedFd, StepError> {
    let write = || -> nix::Result<OwnedFd> {
        let memfd = memfd_create(c"nsinit-seccomp", MFdFlags::MFD_CLOEXEC)?;
        let mut file = File::from(memfd);
        file.write_all(&filter.to_bytes())
            .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(file.into())
    };
    write().step(|| "hand the seccomp filter to the exec trampoline".into())
}

/// What the trampoline, or the command's process it forked, reported.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// The command's process was forked: its pid.
    Forked(i32),
    /// A step failed.
    Failed { step: u8, errno: i32, index: u32 },
}

impl Report {
    /// A datagram of the trampoline, if it is one.
    pub fn decode(datagram: &[u8]) -> Option<Report> {
        let int = |bytes: &[u8]| bytes.try_into().ok().map(i32::from_le_bytes);
        match datagram {
            [TAG_FORKED, pid @ ..] => Some(Report::Forked(int(pid)?)),
            [TAG_STEP_FAILED, step, errno @ .., a, b, c, d] => Some(Report::Failed {
                step: *step,
                errno: int(errno)?,
                index: u32::from_le_bytes([*a, *b, *c, *d]),
            }),
            _ => None,
        }
    }

    /// The datagram the trampoline sends for this report.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Report::Forked(pid) => [&[TAG_FORKED][..], &pid.to_le_bytes()].concat(),
            Report::Failed { step, errno, index } => [
                &[TAG_STEP_FAILED, *step][..],
                &errno.to_le_bytes(),
                &index.to_le_bytes(),
            ]
            .concat(),
        }
    }

    /// A failed step as nsinit reports it: an exec failure as [`Command::exec`] words it.
    pub fn failure(step: u8, errno: i32, index: u32, command: &Command) -> Failure {
        let errno = nix::Error::from_raw(errno);
        let setup = |what: &str| Failure {
            code: EXIT_SETUP as u8,
            text: format!("{what}: {errno}"),
        };
        match step {
            STEP_EXEC => command.failure(errno, index as usize),
            STEP_TERMINAL => setup("make the pty the controlling terminal and stdio"),
            STEP_SECCOMP => setup("load the seccomp filter"),
            STEP_FORK => setup("fork into the container"),
            STEP_READ_SECCOMP => setup("read the seccomp filter in the exec trampoline"),
            _ => setup("start the exec trampoline"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::SealFlag;
    use proptest::prelude::*;

    #[test]
    fn the_memfd_is_sealed_against_writes() {
        let trampoline = Trampoline::load().unwrap();
        let seals = fcntl(&trampoline.memfd, FcntlArg::F_GET_SEALS).unwrap();
        let seals = SealFlag::from_bits_truncate(seals);
        assert!(seals.contains(SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SEAL));
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", trampoline.memfd.as_raw_fd()))
            .and_then(|mut f| f.write_all(b"x"));
        assert_eq!(
            reopened.map_err(|e| e.raw_os_error()),
            Err(Some(libc::EPERM))
        );
    }

    #[test]
    fn the_program_is_a_static_executable() {
        assert_eq!(&PROGRAM[..4], b"\x7fELF");
        assert!(PROGRAM.len() < 64 * 1024, "{} bytes", PROGRAM.len());
    }

    proptest! {
        #[test]
        fn reports_survive_the_wire(pid: i32, step: u8, errno: i32, index: u32) {
            for report in [Report::Forked(pid), Report::Failed { step, errno, index }] {
                prop_assert_eq!(Report::decode(&report.encode()), Some(report));
            }
        }
    }
}
