//! `probe ping ADDR`: an ICMP echo to an IPv4 address, resent until a reply comes or the time
//! is up. It uses a raw socket, which needs `CAP_NET_RAW` (the seed keeps it): the
//! unprivileged ICMP datagram socket is no way out, since a new network namespace's
//! `net.ipv4.ping_group_range` is `1 0`, which admits no group, not even root's.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use conformance::facts::PingReport;

/// How long to wait for a reply before sending the next request (the first one may wait for
/// ARP to resolve the address).
const RESEND: Duration = Duration::from_millis(200);
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;

pub fn ping(address: Ipv4Addr, within: Duration) -> PingReport {
    let mut report = PingReport {
        address: address.to_string(),
        ..PingReport::default()
    };
    if let Err(e) = echo(address, within, &mut report) {
        report.error = Some(e.to_string());
    }
    report
}

fn echo(address: Ipv4Addr, within: Duration, report: &mut PingReport) -> io::Result<()> {
    // SAFETY: plain socket creation; on success the fd is ours alone.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: getpid takes nothing and cannot fail.
    let id = unsafe { libc::getpid() } as u16;
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        report.sent += 1;
        let sent_at = Instant::now();
        send_request(&socket, address, id, report.sent as u16)?;
        let resend = (sent_at + RESEND).min(deadline);
        while let Some(left) = resend.checked_duration_since(Instant::now()) {
            if wait_readable(&socket, left)? && is_reply(&receive(&socket)?, address, id) {
                report.replied = true;
                report.rtt_us = Some(sent_at.elapsed().as_micros() as u64);
                return Ok(());
            }
        }
    }
    Ok(())
}

fn send_request(socket: &OwnedFd, to: Ipv4Addr, id: u16, sequence: u16) -> io::Result<()> {
    let mut packet = [0u8; 16];
    packet[0] = ICMP_ECHO_REQUEST;
    packet[4..6].copy_from_slice(&id.to_be_bytes());
    packet[6..8].copy_from_slice(&sequence.to_be_bytes());
    packet[8..].copy_from_slice(b"nsinit!!");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    // SAFETY: sockaddr_in is plain old data; all zeroes is valid.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_addr.s_addr = u32::from(to).to_be();
    // SAFETY: the packet and the address are live for the call and their lengths are passed.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether something arrived within `timeout`.
fn wait_readable(socket: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one live pollfd, and the count says one.
    match unsafe { libc::poll(&mut poll, 1, millis) } {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => Ok(false),
                _ => Err(e),
            }
        }
    }
}

/// One datagram: an IPv4 header followed by an ICMP message.
fn receive(socket: &OwnedFd) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; 1500];
    // SAFETY: the kernel writes at most `buffer.len()` bytes into the buffer we own.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buffer.truncate(n as usize);
    Ok(buffer)
}

/// An echo reply from `from` to our `id`. A raw socket sees every ICMP message of the
/// namespace, so the rest is skipped.
fn is_reply(datagram: &[u8], from: Ipv4Addr, id: u16) -> bool {
    let Some(&first) = datagram.first() else {
        return false;
    };
    let header = usize::from(first & 0x0f) * 4;
    let source = datagram
        .get(12..16)
        .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
    let Some(icmp) = datagram.get(header..header + 8) else {
        return false;
    };
    source == Some(from)
        && icmp[0] == ICMP_ECHO_REPLY
        && icmp[1] == 0
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
}

/// The Internet checksum (RFC 1071) of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_rfc_1071s() {
        // The example of RFC 1071 section 3: the sum of these words is 0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&bytes), !0xddf2);
        let mut packet = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            checksum(&packet),
            0,
            "a packet with its checksum sums to zero"
        );
    }

    #[test]
    fn only_our_echo_replies_count() {
        let gateway = Ipv4Addr::new(172, 17, 42, 1);
        let mut datagram = vec![0x45; 1];
        datagram.resize(20, 0);
        datagram[12..16].copy_from_slice(&gateway.octets());
        datagram.extend_from_slice(&[ICMP_ECHO_REPLY, 0, 0, 0, 0x12, 0x34, 0, 1]);
        assert!(is_reply(&datagram, gateway, 0x1234));
        assert!(!is_reply(&datagram, gateway, 0x1235));
        assert!(!is_reply(&datagram, Ipv4Addr::new(172, 17, 0, 1), 0x1234));
        datagram[20] = ICMP_ECHO_REQUEST;
        assert!(!is_reply(&datagram, gateway, 0x1234));
        assert!(!is_reply(&[], gateway, 0x1234));
    }
}
