//! The start handshake between nsinit and the container's first process: a `SOCK_SEQPACKET`
//! socketpair carrying a few typed messages.
//!
//! The protocol, in order:
//! 0. with a new user namespace, parent → child `Mapped` once its uid and gid maps are written;
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

use super::trampoline::protocol::{TAG_FORKED, TAG_STEP_FAILED};
use super::trampoline::Report;
use crate::error::Failure;
use crate::sys;

/// The largest message; a `Failed` text or a hook state longer than this is cut.
const MAX_MESSAGE: usize = 64 * 1024;

const TAG_READY: u8 = 1;
const TAG_GO: u8 = 2;
const TAG_FAILED: u8 = 3;
const TAG_WAITING: u8 = 4;
const TAG_MAPPED: u8 = 5;

/// One message of the handshake.
#[derive(Debug)]
pub enum Message {
    /// The container's mounts and hostname are in place; carries the pty master, if any.
    Ready { pty_master: Option<OwnedFd> },
    /// The parent finished its part; the child may go on. Carries the container's state
    /// JSON for the hooks the child runs, which gives each its own pid and status (empty
    /// without hooks).
    Go { hook_state: String },
    /// The child failed: nsinit should print the text and exit with the code.
    Failed(Failure),
    /// The child is set up and waits at its gate for another process to release it.
    Waiting,
    /// The parent wrote the maps of the child's new user namespace: it may act in it.
    Mapped,
    /// What the exec trampoline of a join, or the command's process it forked, reported (its
    /// tags are in `trampoline/protocol.rs`).
    Trampoline(Report),
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

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
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
        let bytes = encode(message);
        let fds: Vec<_> = match message {
            Message::Ready {
                pty_master: Some(fd),
            } => vec![fd.as_raw_fd()],
            _ => Vec::new(),
        };
        let iov = [IoSlice::new(&bytes)];
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
        // A buffer the datagram's size (peeked first), not the largest a message may be: a
        // 64 KiB buffer on the stack cost 16 page faults in each process that received one,
        // and page faults are the dearest thing on the start path here.
        let pending = loop {
            match sys::pending_datagram_len(self.socket.as_fd()) {
                Err(nix::Error::EINTR) => continue,
                other => break other?,
            }
        };
        let mut bytes = vec![0u8; pending.clamp(1, MAX_MESSAGE)];
        let (len, fd) = loop {
            match sys::recv_with_fd(self.socket.as_fd(), &mut bytes) {
                Err(nix::Error::EINTR) => continue,
                other => break other?,
            }
        };
        decode(&bytes[..len], fd)
    }
}

/// The datagram of `message` (but the fd it may carry). A `Failed` text or hook state
/// longer than a message may be is cut.
fn encode(message: &Message) -> Vec<u8> {
    let with_text = |head: &[u8], text: &str| {
        let n = text.len().min(MAX_MESSAGE - head.len());
        [head, &text.as_bytes()[..n]].concat()
    };
    match message {
        Message::Ready { .. } => vec![TAG_READY],
        Message::Go { hook_state } => with_text(&[TAG_GO], hook_state),
        Message::Waiting => vec![TAG_WAITING],
        Message::Mapped => vec![TAG_MAPPED],
        Message::Failed(Failure { code, text }) => with_text(&[TAG_FAILED, *code], text),
        Message::Trampoline(report) => report.encode(),
    }
}

/// The message in one received datagram, with the fd that rode along: `None` for no bytes
/// (the peer closed its end), `EBADMSG` for anything that is not a message.
fn decode(datagram: &[u8], fd: Option<OwnedFd>) -> nix::Result<Option<Message>> {
    Ok(match datagram {
        [] => None,
        [TAG_READY, ..] => Some(Message::Ready { pty_master: fd }),
        [TAG_GO, hook_state @ ..] => Some(Message::Go {
            hook_state: String::from_utf8_lossy(hook_state).into_owned(),
        }),
        [TAG_WAITING, ..] => Some(Message::Waiting),
        [TAG_MAPPED, ..] => Some(Message::Mapped),
        [TAG_FAILED, code, text @ ..] => Some(Message::Failed(Failure {
            code: *code,
            text: String::from_utf8_lossy(text).into_owned(),
        })),
        [TAG_FORKED | TAG_STEP_FAILED, ..] => match Report::decode(datagram) {
            Some(report) => Some(Message::Trampoline(report)),
            None => return Err(nix::Error::EBADMSG),
        },
        _ => return Err(nix::Error::EBADMSG),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

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
        child.send(&Message::Waiting).unwrap();
        assert!(matches!(parent.recv().unwrap(), Some(Message::Waiting)));
        parent.send(&Message::Mapped).unwrap();
        assert!(matches!(child.recv().unwrap(), Some(Message::Mapped)));
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

    /// The text of a `Failed` message, or what it became.
    fn failed_text(message: Option<Message>) -> (u8, String) {
        match message {
            Some(Message::Failed(Failure { code, text })) => (code, text),
            other => panic!("not a Failed message: {other:?}"),
        }
    }

    proptest! {
        /// Whatever the datagram, `decode` returns a message or an error, never a panic.
        #[test]
        fn any_datagram_decodes_or_is_refused(bytes in vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes, None);
        }

        /// A `Failed` message whose text fits comes back as it was sent.
        #[test]
        fn a_failure_round_trips(code: u8, text in ".{0,200}") {
            let failure = Message::Failed(Failure { code, text: text.clone() });
            let decoded = decode(&encode(&failure), None).unwrap();
            prop_assert_eq!(failed_text(decoded), (code, text));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// A text too long for one datagram is cut to what fits, never refused.
        #[test]
        fn a_long_failure_is_cut(text in "[a-z ]{65535,66000}") {
            let failure = Message::Failed(Failure { code: 125, text: text.clone() });
            let (_, cut) = failed_text(decode(&encode(&failure), None).unwrap());
            prop_assert_eq!(cut.as_str(), &text[..MAX_MESSAGE - 2]);
        }

        /// Through a real socketpair, any datagram the peer sends (even one longer than a
        /// message can be) is received as `decode` reads it, or refused; `recv` never panics.
        #[test]
        fn recv_takes_any_datagram(bytes in vec(any::<u8>(), 1..70_000)) {
            let (parent, child) = pair().unwrap();
            nix::sys::socket::send(child.socket.as_raw_fd(), &bytes, MsgFlags::empty()).unwrap();
            let received = parent.recv();
            let kept = &bytes[..bytes.len().min(MAX_MESSAGE)];
            match (received, decode(kept, None)) {
                (Ok(got), Ok(expected)) => prop_assert_eq!(format!("{got:?}"), format!("{expected:?}")),
                (Err(got), Err(expected)) => prop_assert_eq!(got, expected),
                (got, expected) => prop_assert!(false, "recv {got:?}, decode {expected:?}"),
            }
        }
    }
}
