//! A real terminal for `podman run -it` and `ctr run -t`: a pty pair whose slave becomes the
//! engine's controlling terminal (new session, `TIOCSCTTY`), read from the master side, and
//! resized there as a terminal emulator would (the kernel then sends SIGWINCH).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct Pty {
    master: File,
    slave: Option<OwnedFd>,
    /// Everything read from the master so far.
    pub seen: String,
}

impl Pty {
    /// A new pty of `rows` x `cols`.
    pub fn open(rows: u16, cols: u16) -> Result<Pty> {
        // SAFETY: posix_openpt returns a new fd we own (or -1); grantpt, unlockpt and
        // ptsname_r only read it; ptsname_r writes at most `name.len()` bytes into `name`.
        let (master, slave) = unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            if master < 0 {
                return Err(std::io::Error::last_os_error()).context("posix_openpt");
            }
            let master = OwnedFd::from_raw_fd(master);
            let mut name = [0 as libc::c_char; 128];
            if libc::grantpt(master.as_raw_fd()) != 0
                || libc::unlockpt(master.as_raw_fd()) != 0
                || libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) != 0
            {
                return Err(std::io::Error::last_os_error()).context("unlock the pty");
            }
            let slave = libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if slave < 0 {
                return Err(std::io::Error::last_os_error()).context("open the pty's slave");
            }
            (master, OwnedFd::from_raw_fd(slave))
        };
        let pty = Pty {
            master: File::from(master),
            slave: Some(slave),
            seen: String::new(),
        };
        pty.resize(rows, cols)?;
        Ok(pty)
    }

    /// Sets the window size on the master, as a terminal emulator does on a resize.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        if unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            return Err(std::io::Error::last_os_error()).context("TIOCSWINSZ");
        }
        Ok(())
    }

    /// Starts `command` with the slave as its stdio and controlling terminal; the slave (and
    /// the command, which holds copies of it) are then closed here, so the master reads
    /// end-of-file (EIO) once the command and its children let go of it.
    pub fn spawn(&mut self, mut command: Command) -> Result<Child> {
        let Some(slave) = self.slave.take() else {
            bail!("this pty has been used already");
        };
        let stdio = |fd: &OwnedFd| -> Result<Stdio> { Ok(Stdio::from(fd.try_clone()?)) };
        command
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(stdio(&slave)?);
        // SAFETY: runs in the child between fork and exec; setsid and ioctl are
        // async-signal-safe and touch only the child's own session and its fd 0.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().context("start the command on the pty")?;
        drop(command);
        drop(slave);
        Ok(child)
    }

    /// Reads until `seen` contains `needle`, the terminal closes, or `limit` passes; whether
    /// the needle was seen.
    pub fn read_until(&mut self, needle: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while !self.seen.contains(needle) {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() || !self.read_some(left) {
                return self.seen.contains(needle);
            }
        }
        true
    }

    /// Reads everything until the terminal closes or `limit` passes.
    pub fn read_to_end(&mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() || !self.read_some(left) {
                return;
            }
        }
    }

    /// One read, waiting at most `limit`; false at end-of-file, error or timeout.
    fn read_some(&mut self, limit: Duration) -> bool {
        let mut poll = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = limit.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: poll reads and writes the one pollfd we pass, which outlives the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready <= 0 {
            return false;
        }
        let mut buffer = [0u8; 4096];
        match self.master.read(&mut buffer) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_sees_the_size_and_its_resize() {
        let mut pty = Pty::open(24, 80).unwrap();
        let mut child = pty
            .spawn({
                let mut sh = Command::new("sh");
                sh.args([
                "-c",
                "stty size; i=0; while [ \"$(stty size)\" = '24 80' ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; stty size",
                ]);
                sh
            })
            .unwrap();
        assert!(
            pty.read_until("24 80", Duration::from_secs(10)),
            "{}",
            pty.seen
        );
        pty.resize(40, 100).unwrap();
        assert!(
            pty.read_until("40 100", Duration::from_secs(10)),
            "{}",
            pty.seen
        );
        assert!(child.wait().unwrap().success());
    }
}
