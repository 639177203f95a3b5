//! The container's terminal: a pty from the container's own devpts, made the controlling
//! terminal of the command; on the host side, raw mode and window-size forwarding.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, isatty, setsid};

use crate::error::{StepContext, StepError};
use crate::sys;

/// Whether to give the command a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtyMode {
    /// A terminal when nsinit's stdin and stdout are both terminals.
    Auto,
    Always,
    Never,
}

impl TtyMode {
    /// Decide for this invocation.
    pub fn wanted(self) -> bool {
        match self {
            TtyMode::Always => true,
            TtyMode::Never => false,
            TtyMode::Auto => {
                isatty(std::io::stdin()).unwrap_or(false)
                    && isatty(std::io::stdout()).unwrap_or(false)
            }
        }
    }
}

/// A pty opened inside the container: the master goes to nsinit, the slave becomes the
/// command's stdio.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// The slave's path inside the container, e.g. `/dev/pts/0`.
    pub slave_path: String,
}

/// Open a new pty in the container's devpts instance (`/dev/pts/ptmx`).
pub fn open_pty() -> Result<Pty, StepError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master =
        open("/dev/pts/ptmx", flags, Mode::empty()).step(|| "open /dev/pts/ptmx".into())?;
    let number = sys::unlock_pty(master.as_fd()).step(|| "unlock the pty".into())?;
    let slave_path = format!("/dev/pts/{number}");
    let slave =
        open(slave_path.as_str(), flags, Mode::empty()).step(|| format!("open {slave_path}"))?;
    Ok(Pty {
        master,
        slave,
        slave_path,
    })
}

/// Hand the pty `master` to whoever listens on the unix socket at `socket` (runc's
/// `--console-socket` convention: one message carrying the fd as `SCM_RIGHTS`, its text the
/// terminal's name). conmon and containerd's shim relay the terminal from there.
pub fn send_to_console_socket(socket: &Path, master: BorrowedFd<'_>) -> Result<(), StepError> {
    ConsoleSocket::connect(socket)?.send(master)
}

/// A connection to a `--console-socket`, made before the pty exists (an `exec` connects on
/// the host, before it enters the container's mount namespace, where the path is not).
pub struct ConsoleSocket {
    stream: std::os::unix::net::UnixStream,
    path: std::path::PathBuf,
}

impl ConsoleSocket {
    pub fn connect(socket: &Path) -> Result<ConsoleSocket, StepError> {
        let stream = std::os::unix::net::UnixStream::connect(socket)
            .step(|| format!("connect to console socket {}", socket.display()))?;
        Ok(ConsoleSocket {
            stream,
            path: socket.to_path_buf(),
        })
    }

    /// Send `master`: one message carrying the fd as `SCM_RIGHTS`, its text the terminal's
    /// name.
    pub fn send(self, master: BorrowedFd<'_>) -> Result<(), StepError> {
        use std::os::fd::AsRawFd;
        let name = b"/dev/ptmx";
        let iov = [std::io::IoSlice::new(name)];
        let fds = [master.as_raw_fd()];
        let rights = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(
            self.stream.as_raw_fd(),
            &iov,
            &rights,
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .step(|| {
            format!(
                "send the terminal to console socket {}",
                self.path.display()
            )
        })?;
        Ok(())
    }
}

/// Give the terminal of `master` this many rows and columns.
pub fn set_size(master: BorrowedFd<'_>, rows: u16, columns: u16) -> Result<(), StepError> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    sys::set_window_size(master, &size)
        .step(|| format!("set the terminal size to {rows}x{columns}"))
}

/// Make `slave` this process's controlling terminal and its stdin, stdout and stderr.
pub fn make_controlling(slave: BorrowedFd<'_>) -> Result<(), StepError> {
    setsid().step(|| "start a new session (setsid)".into())?;
    sys::set_controlling_terminal(slave).step(|| "make the pty the controlling terminal".into())?;
    dup2_stdin(slave).step(|| "use the pty as stdin".into())?;
    dup2_stdout(slave).step(|| "use the pty as stdout".into())?;
    dup2_stderr(slave).step(|| "use the pty as stderr".into())
}

/// Copy the host terminal's window size to the container's pty.
pub fn copy_window_size(host: BorrowedFd<'_>, master: BorrowedFd<'_>) {
    if let Ok(size) = sys::window_size(host) {
        let _ = sys::set_window_size(master, &size);
    }
}

/// The host terminal in raw mode for as long as this lives; the old mode comes back on drop.
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    /// Put `fd` in raw mode; `None` when it is not a terminal.
    pub fn enter(fd: BorrowedFd<'fd>) -> Option<Self> {
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSAFLUSH, &self.saved);
    }
}
