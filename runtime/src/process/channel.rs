//! The start handshake between nsinit and the container's first process: a `SOCK_SEQPACKET`
//! socketpair carrying a few typed messages.
//!
//! The protocol, in order:
//! 1. child → parent `Ready` (mounts and hostname in place; with a terminal, the pty master rides
//!    along as `SCM_RIGHTS`), or `Failed`;
//! 2. parent → child `Go` (cgroup, network and `.nspid` in place);
//! 3. child → parent: nothing on success (the child's end is close-on-exec, so a successful
//!    `execve` shows up as end-of-file), or `Failed` when the command could not be started;
//!    with a gate (`nsinit-oci create`), `Waiting` once it waits there for `start`.
//!
//! End-of-file where a message was due means the peer died; each side treats that as failure.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};

use crate::error::Failure;
use crate::sys;

/// The largest message; a `Failed` text or a hook state longer than this is cut.
const MAX_MESSAGE: usize = 64 * 1024;

const TAG_READY: u8 = 1;
const TAG_GO: u8 = 2;
const TAG_FAILED: u8 = 3;
const TAG_WAITING: u8 = 4;

/// One message of the handshake.
#[derive(Debug)]
pub enum Message {
    /// The container's mounts and hostname are in place; carries the pty master, if any.
    Ready { pty_master: Option<OwnedFd> },
    /// The parent finished its part; the child may go on. Carries the container's state
    /// JSON for the hooks the child runs (empty without hooks).
    Go { hook_state: String },
    /// The child failed: nsinit should print the text and exit with the code.
    Failed(Failure),
    /// The child is set up and waits at its gate for another process to release it.
    Waiting,
}

/// One end of the channel.
pub struct Channel {
    socket: OwnedFd,
}

/// Make a connected pair: `(parent end, child end)`. Both are close-on-exec.
pub fn pair() -> nix::Result<(Channel, Channel)> {
    let (parent, child) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { socket: parent }, Channel { socket: child }))
}

impl Channel {
    /// Make `recv` fail with `EAGAIN` when nothing arrives within `timeout`.
    pub fn set_timeout(&self, timeout: std::time::Duration) -> nix::Result<()> {
        let timeval = nix::sys::time::TimeVal::new(timeout.as_secs() as _, 0);
        nix::sys::socket::setsockopt(
            &self.socket,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &timeval,
        )
    }

    /// Send one message.
    pub fn send(&self, message: &Message) -> nix::Result<()> {
        let mut bytes = [0u8; MAX_MESSAGE];
        let mut fds = Vec::new();
        let len = match message {
            Message::Ready { pty_master } => {
                bytes[0] = TAG_READY;
                fds.extend(pty_master.as_ref().map(|fd| fd.as_raw_fd()));
                1
            }
            Message::Go { hook_state } => {
                bytes[0] = TAG_GO;
                let text = hook_state.as_bytes();
                let n = text.len().min(MAX_MESSAGE - 1);
                bytes[1..1 + n].copy_from_slice(&text[..n]);
                1 + n
            }
            Message::Waiting => {
                bytes[0] = TAG_WAITING;
                1
            }
            Message::Failed(Failure { code, text }) => {
                bytes[0] = TAG_FAILED;
                bytes[1] = *code;
                let text = text.as_bytes();
                let n = text.len().min(MAX_MESSAGE - 2);
                bytes[2..2 + n].copy_from_slice(&text[..n]);
                2 + n
            }
        };
        let iov = [IoSlice::new(&bytes[..len])];
        let rights = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
        sendmsg::<()>(
            self.socket.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Receive one message; `Ok(None)` when the peer closed its end (or exec'd).
    pub fn recv(&self) -> nix::Result<Option<Message>> {
        let mut bytes = [0u8; MAX_MESSAGE];
        let (len, fd) = loop {
            match sys::recv_with_fd(self.socket.as_fd(), &mut bytes) {
                Err(nix::Error::EINTR) => continue,
                other => break other?,
            }
        };
        Ok(match (len, bytes[0]) {
            (0, _) => None,
            (_, TAG_READY) => Some(Message::Ready { pty_master: fd }),
            (n, TAG_GO) => Some(Message::Go {
                hook_state: String::from_utf8_lossy(&bytes[1..n]).into_owned(),
            }),
            (_, TAG_WAITING) => Some(Message::Waiting),
            (n, TAG_FAILED) if n >= 2 => Some(Message::Failed(Failure {
                code: bytes[1],
                text: String::from_utf8_lossy(&bytes[2..n]).into_owned(),
            })),
            _ => return Err(nix::Error::EBADMSG),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_intact() {
        let (parent, child) = pair().unwrap();
        child.send(&Message::Ready { pty_master: None }).unwrap();
        assert!(matches!(
            parent.recv().unwrap(),
            Some(Message::Ready { pty_master: None })
        ));
        let hook_state = r#"{"id":"c1","status":"creating"}"#.to_string();
        parent
            .send(&Message::Go {
                hook_state: hook_state.clone(),
            })
            .unwrap();
        match child.recv().unwrap() {
            Some(Message::Go { hook_state: got }) => assert_eq!(got, hook_state),
            other => panic!("unexpected {other:?}"),
        }
        let text = "mount proc on /proc: permission denied".to_string();
        child
            .send(&Message::Failed(Failure {
                code: 125,
                text: text.clone(),
            }))
            .unwrap();
        match parent.recv().unwrap() {
            Some(Message::Failed(Failure { code: 125, text: t })) => assert_eq!(t, text),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn fd_rides_along_with_ready() {
        let (parent, child) = pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        child
            .send(&Message::Ready {
                pty_master: Some(file.into()),
            })
            .unwrap();
        match parent.recv().unwrap() {
            Some(Message::Ready {
                pty_master: Some(fd),
            }) => assert!(fd.as_raw_fd() > 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn closed_peer_reads_as_none() {
        let (parent, child) = pair().unwrap();
        drop(child);
        assert!(parent.recv().unwrap().is_none());
    }
}
