//! nsinit's side while the command runs: forward signals to PID 1, relay the terminal, and
//! return the exit code when PID 1 exits.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

use super::Container;
use crate::error::StepError;
use crate::{sys, terminal, Error};

/// Run until PID 1 exits; returns nsinit's exit code.
pub fn run(
    container: &mut Container,
    signals: &SignalFd,
    pty_master: Option<OwnedFd>,
) -> Result<i32, Error> {
    let stdin = std::io::stdin();
    let mut relay = pty_master.map(|master| Relay {
        master: std::fs::File::from(master),
        stdin_open: true,
        master_open: true,
    });
    loop {
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(container.pidfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(relay) = &relay {
            if relay.stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            if relay.master_open {
                fds.push(PollFd::new(relay.master.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(errno) => {
                let step = "poll the container and the terminal".to_string();
                return Err(StepError { step, errno }.into());
            }
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            forward_signals(signals, container, relay.as_ref().map(|r| r.master.as_fd()));
        }
        if let Some(relay) = &mut relay {
            let mut next = 2;
            if relay.stdin_open {
                if ready[next] {
                    relay.stdin_to_master();
                }
                next += 1;
            }
            if relay.master_open && ready[next] {
                relay.master_to_stdout();
            }
        }
        if ready[1] {
            break;
        }
    }
    if let Some(relay) = &mut relay {
        relay.drain();
    }
    container.wait()
}

/// Pass every pending signal on to PID 1 (through its pidfd, so never to a reused pid).
fn forward_signals(signals: &SignalFd, container: &Container, pty_master: Option<BorrowedFd<'_>>) {
    while let Ok(Some(info)) = signals.read_signal() {
        let signo = info.ssi_signo as i32;
        match (Signal::try_from(signo), pty_master) {
            (Ok(Signal::SIGCHLD), _) => {}
            (Ok(Signal::SIGWINCH), Some(master)) => {
                terminal::copy_window_size(std::io::stdin().as_fd(), master)
            }
            _ => {
                let _ = sys::pidfd_send_signal(container.pidfd.as_fd(), signo);
            }
        }
    }
}

/// Bytes between the host terminal and the container's pty.
struct Relay {
    master: std::fs::File,
    stdin_open: bool,
    master_open: bool,
}

impl Relay {
    fn stdin_to_master(&mut self) {
        let mut buf = [0u8; 4096];
        match std::io::stdin().lock().read(&mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => {
                if self.master.write_all(&buf[..n]).is_err() {
                    self.stdin_open = false;
                }
            }
        }
    }

    fn master_to_stdout(&mut self) {
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // EIO: every slave fd is closed.
            Ok(0) | Err(_) => self.master_open = false,
            Ok(n) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
        }
    }

    /// After PID 1 exited: copy out what the pty still holds.
    fn drain(&mut self) {
        let _ = fcntl(&self.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        while self.master_open {
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => self.master_open = false,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                }
            }
        }
    }
}
