//! The stand-in host of the network cases: a throwaway network namespace holding the seed's
//! bridge, `docker0` with `172.17.42.1/16`, up. nsinit runs inside it, so the veths it makes
//! land on this bridge, and the real host's interfaces, routes and addresses are never touched.
//!
//! A network namespace belongs to a thread: [`on_stand_in`] runs its work on a thread of its
//! own that leaves for a new namespace, and every process that thread starts (nsinit, its
//! joins) starts there. The namespace goes with the thread, and the kernel deletes whatever
//! veths are still in it. Setup is a few ioctls and the link listing one netlink dump: no `ip`
//! command, so the same code works on any host and in the VM's busybox guest.

use std::ffi::CStr;
use std::io;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The seed's bridge.
pub const BRIDGE: &str = "docker0";
/// The seed's gateway, held by the bridge.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 42, 1);
/// The prefix length of the seed's network, 172.17.0.0/16.
const PREFIX: u32 = 16;

/// `SIOCBRADDBR` from `<linux/sockios.h>`: create a bridge named by the argument.
const SIOCBRADDBR: libc::c_ulong = 0x89a0;

/// The netlink constants of `<linux/netlink.h>` and `<linux/if_link.h>` the dump uses.
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_DONE: u16 = 0x3;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
/// Attribute types carry flag bits above these.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// One network interface of the stand-in host, as its netlink dump describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    pub mtu: u32,
    pub up: bool,
    /// The index of the bridge (or other master) it is a port of.
    pub master: Option<i32>,
    /// `veth`, `bridge`, ...; `None` for a device without link info (`lo`).
    pub kind: Option<String>,
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, mtu {}, {}",
            self.name,
            self.kind.as_deref().unwrap_or("no kind"),
            self.mtu,
            if self.up { "up" } else { "down" }
        )?;
        match self.master {
            Some(master) => write!(f, ", master {master})"),
            None => write!(f, ")"),
        }
    }
}

/// The stand-in host, usable only on the thread inside it (a netlink socket opened elsewhere
/// would list another namespace's links).
pub struct StandIn {
    /// Not `Send`: the namespace is this thread's.
    _thread_bound: PhantomData<*const ()>,
}

/// Run `work` on a new thread inside a fresh stand-in host and return what it returns; the
/// namespace, and every veth left in it, goes when the thread ends.
pub fn on_stand_in<T: Send>(work: impl FnOnce(&StandIn) -> T + Send) -> Result<T, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| StandIn::create().map(|host| work(&host)))
            .join()
            .unwrap_or_else(|_| Err("the stand-in host's thread panicked".to_string()))
    })
}

impl StandIn {
    /// Move this thread into a new network namespace with `lo` and the bridge up, the
    /// gateway address on the bridge.
    fn create() -> Result<StandIn, String> {
        let before = own_netns().map_err(|e| format!("read this thread's netns: {e}"))?;
        // SAFETY: unshare takes only flags; CLONE_NEWNET changes this thread's namespace
        // alone, which is what the stand-in is.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let e = io::Error::last_os_error();
            return Err(format!(
                "unshare a network namespace for the stand-in host: {e}"
            ));
        }
        let after = own_netns().map_err(|e| format!("read this thread's netns: {e}"))?;
        if after == before {
            return Err(format!(
                "unshare(CLONE_NEWNET) left this thread in {before}"
            ));
        }
        let socket = Socket::new(libc::AF_INET, libc::SOCK_DGRAM, 0)
            .map_err(|e| format!("open an inet socket in the stand-in host: {e}"))?;
        let step = |what: &str, result: io::Result<()>| {
            result.map_err(|e| format!("stand-in host: {what}: {e}"))
        };
        step("set lo up", set_up(&socket, "lo"))?;
        step(&format!("create the bridge {BRIDGE}"), add_bridge(&socket))?;
        step(
            &format!("give {BRIDGE} {GATEWAY}/{PREFIX}"),
            set_address(&socket, BRIDGE, GATEWAY, PREFIX),
        )?;
        step(&format!("set {BRIDGE} up"), set_up(&socket, BRIDGE))?;
        Ok(StandIn {
            _thread_bound: PhantomData,
        })
    }

    /// Every link of the stand-in host.
    pub fn links(&self) -> Result<Vec<Link>, String> {
        dump_links().map_err(|e| format!("list the stand-in host's links: {e}"))
    }

    /// The veths whose master is the bridge.
    pub fn veths_on_bridge(&self) -> Result<Vec<Link>, String> {
        let links = self.links()?;
        let bridge = links
            .iter()
            .find(|link| link.name == BRIDGE)
            .map(|link| link.index)
            .ok_or_else(|| format!("the stand-in host lost {BRIDGE}"))?;
        Ok(links
            .into_iter()
            .filter(|link| link.kind.as_deref() == Some("veth") && link.master == Some(bridge))
            .collect())
    }

    /// Every veth of the stand-in host, on the bridge or not.
    pub fn veths(&self) -> Result<Vec<Link>, String> {
        Ok(self
            .links()?
            .into_iter()
            .filter(|link| link.kind.as_deref() == Some("veth"))
            .collect())
    }
}

/// `net:[INODE]` of the calling thread.
fn own_netns() -> io::Result<String> {
    Ok(std::fs::read_link("/proc/thread-self/ns/net")?
        .to_string_lossy()
        .into_owned())
}

struct Socket(OwnedFd);

impl Socket {
    fn new(domain: i32, kind: i32, protocol: i32) -> io::Result<Socket> {
        // SAFETY: plain socket creation; on success the fd is ours alone.
        let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `ioctl(fd, request, arg)` for requests that take a pointer to memory we own.
    fn ioctl<T>(&self, request: libc::c_ulong, arg: *mut T) -> io::Result<()> {
        // SAFETY: callers pass a pointer to a live value of the type `request` reads or
        // writes (an ifreq, or a NUL-terminated name for SIOCBRADDBR).
        if unsafe { libc::ioctl(self.0.as_raw_fd(), request, arg) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data (a name and a union of integers and sockaddrs), for
    // which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    request
}

fn set_up(socket: &Socket, name: &str) -> io::Result<()> {
    let mut request = ifreq(name);
    socket.ioctl(libc::SIOCGIFFLAGS, &mut request)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union, which we read and update.
    unsafe { request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    socket.ioctl(libc::SIOCSIFFLAGS, &mut request)
}

fn add_bridge(socket: &Socket) -> io::Result<()> {
    let mut name = [0u8; libc::IFNAMSIZ];
    name[..BRIDGE.len()].copy_from_slice(BRIDGE.as_bytes());
    socket.ioctl(SIOCBRADDBR, name.as_mut_ptr())
}

fn set_address(socket: &Socket, name: &str, address: Ipv4Addr, prefix: u32) -> io::Result<()> {
    let inet = |address: Ipv4Addr| {
        // SAFETY: sockaddr_in is plain old data; all zeroes is valid.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from(address).to_be();
        // SAFETY: sockaddr_in and sockaddr have the same size on Linux; the kernel reads the
        // family first and then the address as sockaddr_in.
        unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
    };
    let mut request = ifreq(name);
    request.ifr_ifru.ifru_addr = inet(address);
    socket.ioctl(libc::SIOCSIFADDR, &mut request)?;
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    let mut request = ifreq(name);
    request.ifr_ifru.ifru_netmask = inet(Ipv4Addr::from(mask));
    socket.ioctl(libc::SIOCSIFNETMASK, &mut request)
}

/// Every link of the calling thread's network namespace: one `RTM_GETLINK` dump.
fn dump_links() -> io::Result<Vec<Link>> {
    let socket = Socket::new(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
    // nlmsghdr (length, type, flags, sequence, port) and an all-zero ifinfomsg (any family).
    let mut request = Vec::with_capacity(NLMSG_HDRLEN + IFINFOMSG_LEN);
    request.extend_from_slice(&((NLMSG_HDRLEN + IFINFOMSG_LEN) as u32).to_ne_bytes());
    request.extend_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[0; IFINFOMSG_LEN]);
    // SAFETY: the buffer is live and its length is passed; the kernel only reads it.
    let sent = unsafe {
        libc::send(
            socket.0.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut links = Vec::new();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: the kernel writes at most `buffer.len()` bytes into the buffer we own.
        let received = unsafe {
            libc::recv(
                socket.0.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        if received < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if parse_messages(&buffer[..received as usize], &mut links)? {
            return Ok(links);
        }
    }
}

/// Parse one datagram of the dump into `links`; returns whether the dump is done.
fn parse_messages(mut data: &[u8], links: &mut Vec<Link>) -> io::Result<bool> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    while data.len() >= NLMSG_HDRLEN {
        let length = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes"));
        if length < NLMSG_HDRLEN || length > data.len() {
            return Err(bad("a netlink message overruns its datagram"));
        }
        let body = &data[NLMSG_HDRLEN..length];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = body
                    .get(..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(0);
                return Err(io::Error::from_raw_os_error(-errno));
            }
            libc::RTM_NEWLINK => links.push(parse_link(body).ok_or_else(|| bad("a short link"))?),
            _ => {}
        }
        data = &data[align(length).min(data.len())..];
    }
    Ok(false)
}

/// One `RTM_NEWLINK` body: ifinfomsg, then attributes.
fn parse_link(body: &[u8]) -> Option<Link> {
    let index = i32::from_ne_bytes(body.get(4..8)?.try_into().ok()?);
    let flags = u32::from_ne_bytes(body.get(8..12)?.try_into().ok()?);
    let mut link = Link {
        index,
        up: flags & libc::IFF_UP as u32 != 0,
        ..Link::default()
    };
    for (kind, value) in attributes(body.get(IFINFOMSG_LEN..)?) {
        let number = || Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?));
        match kind {
            IFLA_IFNAME => link.name = c_string(value),
            IFLA_MTU => link.mtu = number()?,
            IFLA_MASTER => link.master = Some(number()? as i32),
            IFLA_LINKINFO => {
                link.kind = attributes(value)
                    .find(|&(kind, _)| kind == IFLA_INFO_KIND)
                    .map(|(_, kind)| c_string(kind));
            }
            _ => {}
        }
    }
    Some(link)
}

/// The `(type, value)` pairs of a run of netlink attributes.
fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let length = usize::from(u16::from_ne_bytes(data.get(0..2)?.try_into().ok()?));
        let kind = u16::from_ne_bytes(data.get(2..4)?.try_into().ok()?) & NLA_TYPE_MASK;
        let value = data.get(4..length)?;
        data = data.get(align(length)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

fn c_string(bytes: &[u8]) -> String {
    CStr::from_bytes_until_nul(bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
}

/// Netlink messages and attributes are 4-byte aligned.
fn align(length: usize) -> usize {
    (length + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One attribute as the kernel lays it out, padded.
    fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut bytes = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(value);
        bytes.resize(align(bytes.len()), 0);
        bytes
    }

    #[test]
    fn a_link_message_decodes_name_mtu_master_and_kind() {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body[4..8].copy_from_slice(&7i32.to_ne_bytes());
        body[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        body.extend(attribute(IFLA_IFNAME, b"veth1abc\0"));
        body.extend(attribute(IFLA_MTU, &1400u32.to_ne_bytes()));
        body.extend(attribute(IFLA_MASTER, &3u32.to_ne_bytes()));
        body.extend(attribute(
            IFLA_LINKINFO,
            &attribute(IFLA_INFO_KIND, b"veth"),
        ));
        let link = parse_link(&body).unwrap();
        assert_eq!(
            link,
            Link {
                index: 7,
                name: "veth1abc".into(),
                mtu: 1400,
                up: true,
                master: Some(3),
                kind: Some("veth".into()),
            }
        );
    }

    #[test]
    fn a_dump_ends_at_done_and_reports_errors() {
        let mut done = ((NLMSG_HDRLEN + 4) as u32).to_ne_bytes().to_vec();
        done.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        done.resize(NLMSG_HDRLEN + 4, 0);
        assert!(parse_messages(&done, &mut Vec::new()).unwrap());
        let mut error = done.clone();
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[NLMSG_HDRLEN..].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse_messages(&error, &mut Vec::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }
}
