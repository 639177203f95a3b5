//! How a created container is released by another process (`nsinit-oci start`): a fifo in
//! the container's state directory. The first process, its setup done, opens the fifo for
//! writing, which blocks until a reader comes; `start` opens it for reading, removes it at
//! once (a container is released once), and waits for the byte the process writes as it
//! goes on to `execve`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::unistd::{chown, getegid, geteuid, mkfifo, Gid, Uid};

use crate::error::{StepContext, StepError};

/// A fifo the container's first process waits at.
pub struct Gate {
    path: PathBuf,
    /// `O_PATH` fd of the fifo, inherited by the first process: it reopens it through
    /// `/proc/self/fd` once the rootfs is `/` and the host path is out of reach.
    fd: OwnedFd,
}

impl Gate {
    /// Make the fifo at `path`, mode 0600 and owned by `owner` (uid, gid): the process,
    /// which opens it once it has become its user, and root, who releases it.
    pub fn create(path: &Path, owner: (u32, u32)) -> Result<Gate, StepError> {
        mkfifo(path, Mode::from_bits_truncate(0o600))
            .step(|| format!("create the exec fifo {}", path.display()))?;
        let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .step(|| format!("open the exec fifo {}", path.display()))?;
        let (uid, gid) = (Uid::from_raw(owner.0), Gid::from_raw(owner.1));
        if uid != geteuid() || gid != getegid() {
            // Not through the O_PATH fd: fchown refuses those.
            chown(path, Some(uid), Some(gid))
                .step(|| format!("give the exec fifo {} to {uid}:{gid}", path.display()))?;
        }
        Ok(Gate {
            path: path.to_path_buf(),
            fd,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// In the container's first process: block until another process releases the container.
pub fn wait(gate: BorrowedFd<'_>) -> Result<(), StepError> {
    let reopen = format!("/proc/self/fd/{}", gate.as_raw_fd());
    let fd = open(
        reopen.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| "wait at the exec fifo for start".into())?;
    File::from(fd)
        .write_all(b"0")
        .step(|| "answer start through the exec fifo".into())
}

/// Why a release did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// No fifo: the container was released already, or never created.
    #[error("container is not in the created state (it was started already)")]
    NotCreated,
    #[error("the container process exited before it could be started")]
    Exited,
    #[error("the container process did not answer start within {}s", .0.as_secs())]
    Timeout(Duration),
    #[error(transparent)]
    Step(#[from] StepError),
}

/// Release the process waiting at the gate at `path`; `pidfd` is that process, so that its
/// death ends the wait.
pub fn release(path: &Path, pidfd: BorrowedFd<'_>, timeout: Duration) -> Result<(), ReleaseError> {
    let fd = match open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Err(ReleaseError::NotCreated),
        Err(errno) => {
            return Err(errno)
                .step(|| format!("open the exec fifo {}", path.display()))
                .map_err(ReleaseError::from)
        }
    };
    let _ = std::fs::remove_file(path);
    let deadline = Instant::now() + timeout;
    let mut fifo = File::from(fd);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReleaseError::Timeout(timeout));
        }
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd, PollFlags::POLLIN),
        ];
        let wait =
            PollTimeout::try_from(left.min(Duration::from_secs(1))).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, wait) {
            Err(nix::Error::EINTR) | Ok(0) => continue,
            Err(errno) => {
                return Err(errno)
                    .step(|| "wait at the exec fifo".into())
                    .map_err(ReleaseError::from)
            }
            Ok(_) => {}
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let exited = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_ready {
            let mut byte = [0u8; 1];
            match fifo.read(&mut byte) {
                Ok(1) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // End of file: the writer went away without a word.
                _ => return Err(ReleaseError::Exited),
            }
        }
        if exited {
            return Err(ReleaseError::Exited);
        }
    }
}
