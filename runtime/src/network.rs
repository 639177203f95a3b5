//! Bridge networking: a veth pair from a host bridge into the container's network namespace,
//! configured over synchronous rtnetlink (no `ip` command, no async runtime, no threads).
//!
//! [`setup`] is a recipe of three exchanges with the kernel, in the order it needs them:
//! 1. host: look up the bridge (nsinit never creates or changes it);
//! 2. host: create the pair in one request: the host end on the bridge with the MTU and up, the
//!    peer born in the container's namespace as `eth0` with the MTU;
//! 3. container: `lo` up, `eth0` up, its address, the default route, in one batch (kernels
//!    before 6.1 do not echo the new pair, so there `eth0`'s index is looked up first).
//!
//! The container's side is reached through a netlink socket opened while the calling thread
//! stands for a moment in the container's namespace: a socket keeps the namespace it was
//! created in. The container's first process never runs any of this.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::File;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_ECHO, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;

use crate::error::{describe, describe_io, StepContext, StepError};
use crate::plan::Network;

/// The name of the container's end of the pair.
pub const CONTAINER_LINK: &str = "eth0";
/// The loopback device every network namespace is born with (down).
const LOOPBACK: &str = "lo";
/// The longest interface name the kernel takes: `IFNAMSIZ` less the NUL.
const IFNAME_MAX: usize = 15;
/// The MTUs a veth accepts: `ETH_MIN_MTU` to `ETH_MAX_MTU`.
const VETH_MTU: RangeInclusive<u32> = 68..=65535;
/// Where the calling thread's network namespace is, to come back to it.
const OWN_NETNS: &str = "/proc/thread-self/ns/net";
/// Room for one answer datagram; nsinit asks for single links, never for dumps.
const RECV_BUFFER: usize = 16 * 1024;

// Netlink acknowledgement details (include/uapi/linux/netlink.h) that netlink-packet-core
// does not name.
/// The error message carries only the request's header, not its payload (`NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
/// The error message carries extended-ACK attributes (`NETLINK_EXT_ACK`).
const NLM_F_ACK_TLVS: u16 = 0x200;
/// The extended-ACK attribute holding the kernel's explanation, a C string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;

/// What went wrong while giving the container its network. Every variant names the step and the
/// object it acted on; the config key where the user can fix it comes first.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network: open a netlink socket: {}", describe_io(.0))]
    Socket(io::Error),
    #[error("network: {step}: netlink: {}", describe_io(source))]
    Transport { step: String, source: io::Error },
    #[error("network: open {OWN_NETNS}: {}", describe_io(.0))]
    OwnNamespace(io::Error),
    #[error(
        "network: process {pid} shares nsinit's network namespace; `network` needs \"NEWNET\" \
         in namespaces"
    )]
    SharedNamespace { pid: Pid },
    #[error("network: enter the network namespace of process {pid}: {}", describe(*source))]
    EnterNamespace { pid: Pid, source: nix::Error },
    #[error("network: return to nsinit's own network namespace: {}", describe(*.0))]
    ReturnNamespace(nix::Error),
    #[error(
        "network.bridge: there is no bridge named \"{bridge}\" on the host; nsinit does not \
         create or change it, create it with: {recipe}"
    )]
    NoBridge { bridge: String, recipe: String },
    #[error("network.bridge: \"{bridge}\" is not a bridge but a {kind} device")]
    NotBridge { bridge: String, kind: String },
    #[error("network.mtu: the kernel refuses an MTU of {mtu} for the veth pair: {reason}")]
    Mtu { mtu: u32, reason: Refusal },
    #[error("network: {step}: {reason}")]
    Refused { step: String, reason: Refusal },
    #[error("network: {step}: the kernel's answer lacks {missing}")]
    Answer { step: String, missing: &'static str },
}

/// The kernel's refusal of one request: the errno and, when it gave one, its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub errno: nix::Error,
    pub message: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(self.errno))?;
        match &self.message {
            Some(message) => write!(f, " ({message})"),
            None => Ok(()),
        }
    }
}

/// A unique name for the host end of a container's pair, at most 15 bytes: `veth`, the pid in
/// base 36, then random base-36 digits up to the limit. The nonce matters: a dead container's
/// pair lives on until the kernel has dismantled its namespace, and by then its pid may be
/// reused.
pub fn host_veth_name(pid: Pid) -> String {
    let mut name = String::from("veth");
    push_base36(&mut name, u64::from(pid.as_raw().unsigned_abs()), 1);
    let nonce = RandomState::new().hash_one(pid.as_raw());
    let room = IFNAME_MAX.saturating_sub(name.len());
    let mut digits = String::new();
    push_base36(&mut digits, nonce, room);
    name.push_str(&digits[digits.len() - room..]);
    name.truncate(IFNAME_MAX);
    name
}

/// Append `value` in base 36 (lowercase), with at least `width` digits.
fn push_base36(out: &mut String, mut value: u64, width: usize) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    while value > 0 || digits.len() < width {
        digits.push(DIGITS[(value % 36) as usize]);
        value /= 36;
    }
    out.extend(digits.iter().rev().map(|&d| char::from(d)));
}

/// Give the container its network: a veth pair with the host end `host_veth` on `net.bridge` and
/// the peer as `eth0` in the container, with `net`'s MTU, address and default route, and `lo` up.
///
/// Runs in the caller's network namespace (the host's). `container` is a pidfd of the
/// container's first process, whose host pid is `pid`; the process must stay unreaped until this
/// returns. On any failure the host end is deleted (taking the peer with it) before the error
/// is returned.
pub fn setup(
    net: &Network,
    container: BorrowedFd<'_>,
    pid: Pid,
    host_veth: &str,
) -> Result<(), NetworkError> {
    let mut host = NetlinkSocket::open().map_err(NetworkError::Socket)?;
    let mut inside = NetlinkSocket::open_in(container, pid)?;
    configure(
        &mut host,
        &mut inside,
        &Pair {
            net,
            pid,
            host_veth,
        },
    )
}

/// For a container with its own network namespace but no `network`: set `lo` up in the
/// calling thread's network namespace. The container's first process does it, by ioctl:
/// nsinit need not enter the namespace (which a plain user, or root of a user namespace
/// other than the initial one, could not come back from), and a start or create without a
/// `network` runs no rtnetlink code (it was 0.4 MiB of `nsinit-oci create`'s peak RSS).
pub fn loopback_up_here() -> Result<(), StepError> {
    crate::sys::set_loopback_up().step(|| format!("set {LOOPBACK} up in the container"))
}

/// Whether a link named `name` exists in the calling thread's network namespace.
pub fn link_exists(name: &str) -> bool {
    NetlinkSocket::open()
        .and_then(|mut socket| socket.exchange(vec![get_link(name)]))
        .is_ok_and(|answers| answers.iter().all(Result::is_ok))
}

/// One pair to make: what the config asks for, and where.
struct Pair<'a> {
    net: &'a Network,
    pid: Pid,
    host_veth: &'a str,
}

/// The recipe of [`setup`], over any two rtnetlink sockets: one in the host's namespace, one in
/// the container's.
fn configure(
    host: &mut impl Rtnl,
    inside: &mut impl Rtnl,
    pair: &Pair<'_>,
) -> Result<(), NetworkError> {
    let bridge = find_bridge(host, pair.net)?;
    let peer = match create_pair(host, pair, bridge) {
        // The request left, but its fate is unknown: the pair may exist.
        Err(e @ NetworkError::Transport { .. }) => return Err(remove_pair(host, pair, e)),
        // The kernel refused it: nothing was created, and the name may be someone else's.
        Err(e) => return Err(e),
        Ok(peer) => peer,
    };
    configure_inside(inside, pair, peer).map_err(|e| remove_pair(host, pair, e))
}

/// The index of the bridge, which must exist and be a bridge.
fn find_bridge(host: &mut impl Rtnl, net: &Network) -> Result<u32, NetworkError> {
    let step = format!("look up bridge {}", net.bridge);
    let answer = single(host.exchange(vec![get_link(&net.bridge)]), &step)?;
    let replies = match answer {
        Ok(replies) => replies,
        Err(reason) if reason.errno == nix::Error::ENODEV => {
            return Err(NetworkError::NoBridge {
                bridge: net.bridge.clone(),
                recipe: bridge_recipe(net),
            })
        }
        Err(reason) => return Err(NetworkError::Refused { step, reason }),
    };
    let link = first_link(replies).ok_or(NetworkError::Answer {
        step,
        missing: "the link",
    })?;
    match link_kind(&link) {
        Some(InfoKind::Bridge) => Ok(link.header.index),
        kind => Err(NetworkError::NotBridge {
            bridge: net.bridge.clone(),
            kind: kind.map_or("plain".into(), |kind| kind.to_string()),
        }),
    }
}

/// The commands that make the bridge `net` expects, for the error when it is missing.
fn bridge_recipe(net: &Network) -> String {
    let bridge = &net.bridge;
    let mut recipe = format!("ip link add name {bridge} type bridge && ");
    if let Some(gateway) = net.gateway {
        let prefix = net.prefix_len;
        recipe += &format!("ip addr add {gateway}/{prefix} dev {bridge} && ");
    }
    recipe + &format!("ip link set {bridge} up")
}

/// Create the pair; returns the peer's index in the container when the kernel's echo told it.
fn create_pair(
    host: &mut impl Rtnl,
    pair: &Pair<'_>,
    bridge: u32,
) -> Result<Option<u32>, NetworkError> {
    let net = pair.net;
    let step = format!(
        "create veth pair {} on bridge {} with {CONTAINER_LINK} in process {}'s namespace",
        pair.host_veth, net.bridge, pair.pid
    );
    let request = new_veth(pair.host_veth, net.mtu, bridge, pair.pid);
    match single(host.exchange(vec![request]), &step)? {
        Ok(echo) => Ok(peer_index(echo, pair.host_veth)),
        Err(reason) if refuses_mtu(&reason, net.mtu) => Err(NetworkError::Mtu {
            mtu: net.mtu,
            reason,
        }),
        Err(reason) => Err(NetworkError::Refused { step, reason }),
    }
}

/// Whether the kernel's refusal of the new pair is about its MTU.
fn refuses_mtu(reason: &Refusal, mtu: u32) -> bool {
    reason.errno == nix::Error::EINVAL
        && match &reason.message {
            Some(message) => message.to_ascii_lowercase().contains("mtu"),
            None => !VETH_MTU.contains(&mtu),
        }
}

/// The container's end, from the echo of the host end: a veth's `IFLA_LINK` is its peer's index
/// (in the peer's namespace). Kernels before 6.1 send no echo.
fn peer_index(echo: Vec<RouteNetlinkMessage>, host_veth: &str) -> Option<u32> {
    let link = first_link(echo)?;
    let named = link
        .attributes
        .iter()
        .any(|a| matches!(a, LinkAttribute::IfName(name) if name == host_veth));
    let peer = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(index) => Some(*index),
        _ => None,
    });
    peer.filter(|_| named)
}

/// In the container: `lo` up, `eth0` up, its address, the default route; one batch.
fn configure_inside(
    inside: &mut impl Rtnl,
    pair: &Pair<'_>,
    eth0: Option<u32>,
) -> Result<(), NetworkError> {
    let net = pair.net;
    let eth0 = match eth0 {
        Some(index) => index,
        None => find_link(inside, CONTAINER_LINK)?,
    };
    let mut steps = vec![
        (
            format!("set {LOOPBACK} up in the container"),
            set_up(LOOPBACK),
        ),
        (format!("set {CONTAINER_LINK} up"), set_index_up(eth0)),
        (
            format!(
                "add address {}/{} to {CONTAINER_LINK}",
                net.address, net.prefix_len
            ),
            new_address(net.address, net.prefix_len, eth0),
        ),
    ];
    if let Some(gateway) = net.gateway {
        steps.push((
            format!("add default route via {gateway} dev {CONTAINER_LINK}"),
            default_route(gateway, eth0),
        ));
    }
    let (names, requests): (Vec<_>, Vec<_>) = steps.into_iter().unzip();
    let answers = inside
        .exchange(requests)
        .map_err(|source| NetworkError::Transport {
            step: names.join(", "),
            source,
        })?;
    for (step, answer) in names.into_iter().zip(answers) {
        answer.map_err(|reason| NetworkError::Refused { step, reason })?;
    }
    Ok(())
}

/// The index of the link `name` in the socket's namespace.
fn find_link(socket: &mut impl Rtnl, name: &str) -> Result<u32, NetworkError> {
    let step = format!("look up {name} in the container");
    match single(socket.exchange(vec![get_link(name)]), &step)? {
        Ok(replies) => {
            first_link(replies)
                .map(|link| link.header.index)
                .ok_or(NetworkError::Answer {
                    step,
                    missing: "the link",
                })
        }
        Err(reason) => Err(NetworkError::Refused { step, reason }),
    }
}

/// Delete the host end, which takes the peer with it, and hand back `error`. Best effort: if the
/// kernel refuses, the pair still goes when the container's namespace does.
fn remove_pair(host: &mut impl Rtnl, pair: &Pair<'_>, error: NetworkError) -> NetworkError {
    let _ = host.exchange(vec![Request {
        message: RouteNetlinkMessage::DelLink(link_named(pair.host_veth)),
        flags: 0,
    }]);
    error
}

/// The answer to the only request of an exchange.
fn single(answers: io::Result<Vec<Answer>>, step: &str) -> Result<Answer, NetworkError> {
    answers
        .map_err(|source| NetworkError::Transport {
            step: step.into(),
            source,
        })?
        .pop()
        .ok_or(NetworkError::Answer {
            step: step.into(),
            missing: "an acknowledgement",
        })
}

fn first_link(replies: Vec<RouteNetlinkMessage>) -> Option<LinkMessage> {
    replies.into_iter().find_map(|reply| match reply {
        RouteNetlinkMessage::NewLink(link) => Some(link),
        _ => None,
    })
}

fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
            LinkInfo::Kind(kind) => Some(kind),
            _ => None,
        }),
        _ => None,
    })
}

// The requests: pure data, built without I/O.

/// One request, and its flags beyond `NLM_F_REQUEST | NLM_F_ACK`.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    message: RouteNetlinkMessage,
    flags: u16,
}

fn link_named(name: &str) -> LinkMessage {
    let mut link = LinkMessage::default();
    link.attributes.push(LinkAttribute::IfName(name.into()));
    link
}

fn up(link: &mut LinkMessage) {
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
}

fn get_link(name: &str) -> Request {
    Request {
        message: RouteNetlinkMessage::GetLink(link_named(name)),
        flags: 0,
    }
}

fn set_up(name: &str) -> Request {
    let mut link = link_named(name);
    up(&mut link);
    Request {
        message: RouteNetlinkMessage::SetLink(link),
        flags: 0,
    }
}

fn set_index_up(index: u32) -> Request {
    let mut link = LinkMessage::default();
    link.header.index = index;
    up(&mut link);
    Request {
        message: RouteNetlinkMessage::SetLink(link),
        flags: 0,
    }
}

/// `ip link add HOST mtu MTU master BRIDGE up type veth peer name eth0 mtu MTU netns PID`,
/// echoed back so that the answer tells the peer's index.
fn new_veth(host: &str, mtu: u32, bridge: u32, pid: Pid) -> Request {
    // Not up here: the kernel configures the peer before the pair is joined, and a veth without
    // its peer refuses to come up (ENOTCONN).
    let mut peer = link_named(CONTAINER_LINK);
    peer.attributes.push(LinkAttribute::Mtu(mtu));
    peer.attributes
        .push(LinkAttribute::NetNsPid(pid.as_raw().unsigned_abs()));
    let mut link = link_named(host);
    up(&mut link);
    link.attributes.extend([
        LinkAttribute::Mtu(mtu),
        LinkAttribute::Controller(bridge),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]),
    ]);
    Request {
        message: RouteNetlinkMessage::NewLink(link),
        flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
    }
}

/// `ip addr add ADDRESS/PREFIX dev INDEX`.
fn new_address(address: Ipv4Addr, prefix_len: u8, index: u32) -> Request {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix_len;
    message.header.index = index;
    message.attributes = vec![
        AddressAttribute::Local(IpAddr::V4(address)),
        AddressAttribute::Address(IpAddr::V4(address)),
    ];
    Request {
        message: RouteNetlinkMessage::NewAddress(message),
        flags: NLM_F_CREATE | NLM_F_EXCL,
    }
}

/// `ip route add default via GATEWAY dev INDEX`.
fn default_route(gateway: Ipv4Addr, index: u32) -> Request {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message.attributes = vec![
        RouteAttribute::Gateway(RouteAddress::Inet(gateway)),
        RouteAttribute::Oif(index),
    ];
    Request {
        message: RouteNetlinkMessage::NewRoute(message),
        flags: NLM_F_CREATE | NLM_F_EXCL,
    }
}

// Talking to the kernel.

/// The kernel's answer to one request: what it sent back before the acknowledgement (a link
/// for a get, the echo of a creation), or its refusal.
type Answer = Result<Vec<RouteNetlinkMessage>, Refusal>;

/// A rtnetlink socket: the seam between the recipe and the kernel.
trait Rtnl {
    /// Send `requests` in one datagram, each asking for an acknowledgement, and return the
    /// answer to each, in order. The kernel handles them in order and goes on after a refusal.
    fn exchange(&mut self, requests: Vec<Request>) -> io::Result<Vec<Answer>>;
}

/// A `NETLINK_ROUTE` socket in the namespace of the thread that opened it.
struct NetlinkSocket {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl NetlinkSocket {
    fn open() -> io::Result<Self> {
        let socket = Socket::new(NETLINK_ROUTE)?;
        socket.set_ext_ack(true)?;
        socket.set_cap_ack(true)?;
        Ok(NetlinkSocket {
            socket,
            sequence: 0,
            buffer: Vec::with_capacity(RECV_BUFFER),
        })
    }

    /// A socket in the network namespace of the process behind `pidfd`: step into it, open the
    /// socket, step back. Only the calling thread moves.
    /// Refuses a process in the caller's own namespace: its `lo` and `eth0` would be the host's.
    fn open_in(pidfd: BorrowedFd<'_>, pid: Pid) -> Result<Self, NetworkError> {
        let own = File::open(OWN_NETNS).map_err(NetworkError::OwnNamespace)?;
        if same_file(&own, &format!("/proc/{pid}/ns/net")) {
            return Err(NetworkError::SharedNamespace { pid });
        }
        setns(pidfd, CloneFlags::CLONE_NEWNET)
            .map_err(|source| NetworkError::EnterNamespace { pid, source })?;
        let socket = NetlinkSocket::open();
        setns(&own, CloneFlags::CLONE_NEWNET).map_err(NetworkError::ReturnNamespace)?;
        socket.map_err(NetworkError::Socket)
    }
}

/// Whether `path` is `file` (a namespace is a file on nsfs). False when `path` cannot be read:
/// then `setns` reports the problem.
fn same_file(file: &File, path: &str) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

impl Rtnl for NetlinkSocket {
    fn exchange(&mut self, requests: Vec<Request>) -> io::Result<Vec<Answer>> {
        let count = requests.len();
        let first = self.sequence.wrapping_add(1);
        self.sequence = self.sequence.wrapping_add(count as u32);
        let mut datagram = Vec::new();
        for (n, request) in requests.into_iter().enumerate() {
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | NLM_F_ACK | request.flags;
            header.sequence_number = first.wrapping_add(n as u32);
            let mut message = NetlinkMessage::new(header, request.message.into());
            message.finalize();
            let start = datagram.len();
            datagram.resize(start + message.buffer_len(), 0);
            message.serialize(&mut datagram[start..]);
        }
        self.socket.send(&datagram, 0)?;

        let mut answers = Answers::new(first, count);
        while !answers.complete() {
            self.buffer.clear();
            // The kernel handles rtnetlink requests within `send`: every answer is queued by now,
            // so a missing one is an error, never a wait.
            let len = self
                .socket
                .recv(&mut self.buffer, libc::MSG_TRUNC | libc::MSG_DONTWAIT)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::WouldBlock => io::Error::other("the kernel did not answer"),
                    _ => e,
                })?;
            if len > self.buffer.len() {
                return Err(io::Error::other("netlink answer larger than the buffer"));
            }
            answers.read(&self.buffer)?;
        }
        Ok(answers.into_answers())
    }
}

/// The answers to one exchange as they come in, datagram by datagram: the replies to each
/// request, ended by its acknowledgement or refusal. Bytes in, answers out: no I/O.
struct Answers {
    /// The sequence number of the exchange's first request; the others follow it.
    first: u32,
    replies: Vec<Vec<RouteNetlinkMessage>>,
    answers: Vec<Option<Answer>>,
}

impl Answers {
    fn new(first: u32, count: usize) -> Self {
        Answers {
            first,
            replies: vec![Vec::new(); count],
            answers: vec![None; count],
        }
    }

    /// Take in one datagram from the kernel.
    fn read(&mut self, datagram: &[u8]) -> io::Result<()> {
        for message in split(datagram)? {
            let n = message.header.sequence_number.wrapping_sub(self.first) as usize;
            if n >= self.answers.len() {
                continue; // a late answer to an earlier exchange
            }
            match message.payload {
                NetlinkPayload::InnerMessage(reply) => self.replies[n].push(reply),
                NetlinkPayload::Error(error) => {
                    self.answers[n] = Some(match error.code {
                        None => Ok(std::mem::take(&mut self.replies[n])),
                        Some(code) => Err(Refusal {
                            // wrapping: the negative of i32::MIN is no errno, and no panic.
                            errno: nix::Error::from_raw(code.get().wrapping_abs()),
                            message: kernel_message(message.header.flags, &error.header),
                        }),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether every request has its answer.
    fn complete(&self) -> bool {
        self.answers.iter().all(Option::is_some)
    }

    /// The answers, in the order of the requests.
    fn into_answers(self) -> Vec<Answer> {
        self.answers.into_iter().flatten().collect()
    }
}

/// The netlink messages of one datagram.
fn split(datagram: &[u8]) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    let mut messages = Vec::new();
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(io::Error::other("malformed netlink message"));
        }
        let message = NetlinkMessage::deserialize(&rest[..len])
            .map_err(|e| io::Error::other(format!("undecodable netlink message: {e}")))?;
        messages.push(message);
        rest = rest.get(align(len)..).unwrap_or_default();
    }
    Ok(messages)
}

/// The kernel's explanation in an error message, from its extended-ACK attributes. `payload` is
/// what follows the errno: the request's header (with `NLM_F_CAPPED`) or the whole request,
/// then the attributes (with `NLM_F_ACK_TLVS`).
fn kernel_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let request_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let len = payload.get(..4)?;
        align(u32::from_ne_bytes([len[0], len[1], len[2], len[3]]) as usize)
    };
    NlasIterator::new(payload.get(request_len..)?)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .and_then(|nla| {
            let text = nla.value().split(|&b| b == 0).next()?;
            Some(String::from_utf8_lossy(text).into_owned())
        })
        .filter(|text| !text.is_empty())
}

/// Netlink's 4-byte alignment.
fn align(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn seed() -> Network {
        Network {
            address: Ipv4Addr::new(172, 17, 0, 100),
            prefix_len: 16,
            gateway: Some(Ipv4Addr::new(172, 17, 42, 1)),
            bridge: "docker0".into(),
            mtu: 1500,
        }
    }

    const PID: Pid = Pid::from_raw(4242);
    const HOST_VETH: &str = "veth39ubcdefghi";

    /// A socket that records what it was sent and answers from a script.
    #[derive(Default)]
    struct Fake {
        sent: Vec<Request>,
        script: VecDeque<io::Result<Vec<Answer>>>,
    }

    impl Fake {
        fn answering(script: impl IntoIterator<Item = io::Result<Vec<Answer>>>) -> Self {
            Fake {
                sent: Vec::new(),
                script: script.into_iter().collect(),
            }
        }

        fn kinds(&self) -> Vec<&'static str> {
            self.sent.iter().map(|r| kind(&r.message)).collect()
        }
    }

    impl Rtnl for Fake {
        fn exchange(&mut self, requests: Vec<Request>) -> io::Result<Vec<Answer>> {
            let count = requests.len();
            self.sent.extend(requests);
            let answers = self.script.pop_front().unwrap_or_else(|| Ok(vec![]))?;
            // Unscripted requests are acknowledged.
            Ok((0..count)
                .map(|n| answers.get(n).cloned().unwrap_or(Ok(vec![])))
                .collect())
        }
    }

    fn kind(message: &RouteNetlinkMessage) -> &'static str {
        match message {
            RouteNetlinkMessage::GetLink(_) => "getlink",
            RouteNetlinkMessage::NewLink(_) => "newlink",
            RouteNetlinkMessage::SetLink(_) => "setlink",
            RouteNetlinkMessage::DelLink(_) => "dellink",
            RouteNetlinkMessage::NewAddress(_) => "newaddr",
            RouteNetlinkMessage::NewRoute(_) => "newroute",
            _ => "other",
        }
    }

    fn refusal(errno: nix::Error, message: Option<&str>) -> Answer {
        Err(Refusal {
            errno,
            message: message.map(Into::into),
        })
    }

    fn bridge_link(index: u32, kind: Option<InfoKind>) -> Answer {
        let mut link = link_named("docker0");
        link.header.index = index;
        if let Some(kind) = kind {
            link.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)]));
        }
        Ok(vec![RouteNetlinkMessage::NewLink(link)])
    }

    fn echo(peer: u32) -> Answer {
        let mut link = link_named(HOST_VETH);
        link.attributes.push(LinkAttribute::Link(peer));
        Ok(vec![RouteNetlinkMessage::NewLink(link)])
    }

    fn run(host: &mut Fake, inside: &mut Fake, net: &Network) -> Result<(), NetworkError> {
        configure(
            host,
            inside,
            &Pair {
                net,
                pid: PID,
                host_veth: HOST_VETH,
            },
        )
    }

    #[test]
    fn host_veth_names_are_short_unique_and_carry_the_pid() {
        for pid in [1, 4242, 4_194_304, i32::MAX] {
            let name = host_veth_name(Pid::from_raw(pid));
            assert!(name.len() <= IFNAME_MAX, "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric()), "{name}");
        }
        let a = host_veth_name(Pid::from_raw(4242));
        let b = host_veth_name(Pid::from_raw(4242));
        assert!(a.starts_with("veth39u"), "{a}");
        assert_eq!(a.len(), IFNAME_MAX);
        assert_ne!(a, b);
    }

    #[test]
    fn the_recipe_is_three_exchanges_in_kernel_order() {
        let mut host = Fake::answering([
            Ok(vec![bridge_link(7, Some(InfoKind::Bridge))]),
            Ok(vec![echo(2)]),
        ]);
        let mut inside = Fake::default();
        run(&mut host, &mut inside, &seed()).unwrap();
        assert_eq!(host.kinds(), ["getlink", "newlink"]);
        assert_eq!(
            inside.kinds(),
            ["setlink", "setlink", "newaddr", "newroute"]
        );

        let RouteNetlinkMessage::NewLink(veth) = &host.sent[1].message else {
            unreachable!()
        };
        assert_eq!(veth.header.flags, LinkFlags::Up);
        assert!(veth
            .attributes
            .contains(&LinkAttribute::IfName(HOST_VETH.into())));
        assert!(veth.attributes.contains(&LinkAttribute::Controller(7)));
        assert!(veth.attributes.contains(&LinkAttribute::Mtu(1500)));
        let peer = veth
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) => Some(peer),
                    _ => None,
                }),
                _ => None,
            })
            .expect("a peer");
        assert_eq!(peer.header.change_mask, LinkFlags::empty());
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("eth0".into())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsPid(4242)));
        assert!(peer.attributes.contains(&LinkAttribute::Mtu(1500)));

        assert_eq!(inside.sent[0], set_up("lo"));
        assert_eq!(inside.sent[1], set_index_up(2));
        assert_eq!(inside.sent[2], new_address(seed().address, 16, 2));
        assert_eq!(
            inside.sent[3],
            default_route(Ipv4Addr::new(172, 17, 42, 1), 2)
        );
    }

    #[test]
    fn without_a_gateway_there_is_no_default_route() {
        let mut host = Fake::answering([
            Ok(vec![bridge_link(7, Some(InfoKind::Bridge))]),
            Ok(vec![echo(2)]),
        ]);
        let mut inside = Fake::default();
        let net = Network {
            gateway: None,
            ..seed()
        };
        run(&mut host, &mut inside, &net).unwrap();
        assert_eq!(inside.kinds(), ["setlink", "setlink", "newaddr"]);
    }

    #[test]
    fn without_an_echo_the_container_looks_eth0_up() {
        let mut host = Fake::answering([Ok(vec![bridge_link(7, Some(InfoKind::Bridge))])]);
        let mut eth0 = link_named("eth0");
        eth0.header.index = 5;
        let mut inside = Fake::answering([Ok(vec![Ok(vec![RouteNetlinkMessage::NewLink(eth0)])])]);
        run(&mut host, &mut inside, &seed()).unwrap();
        assert_eq!(
            inside.kinds(),
            ["getlink", "setlink", "setlink", "newaddr", "newroute"]
        );
        assert_eq!(inside.sent[3], new_address(seed().address, 16, 5));
    }

    #[test]
    fn a_missing_bridge_is_named_with_a_recipe_and_nothing_is_created() {
        let mut host = Fake::answering([Ok(vec![refusal(nix::Error::ENODEV, None)])]);
        let mut inside = Fake::default();
        let error = run(&mut host, &mut inside, &seed()).unwrap_err();
        assert_eq!(host.kinds(), ["getlink"]);
        assert!(inside.sent.is_empty());
        insta::assert_snapshot!(error, @r#"network.bridge: there is no bridge named "docker0" on the host; nsinit does not create or change it, create it with: ip link add name docker0 type bridge && ip addr add 172.17.42.1/16 dev docker0 && ip link set docker0 up"#);
    }

    #[test]
    fn a_link_that_is_no_bridge_is_refused() {
        let mut host = Fake::answering([Ok(vec![bridge_link(3, Some(InfoKind::Dummy))])]);
        let error = run(&mut host, &mut Fake::default(), &seed()).unwrap_err();
        assert_eq!(host.kinds(), ["getlink"]);
        insta::assert_snapshot!(error, @r#"network.bridge: "docker0" is not a bridge but a dummy device"#);

        let mut host = Fake::answering([Ok(vec![bridge_link(3, None)])]);
        let error = run(&mut host, &mut Fake::default(), &seed()).unwrap_err();
        insta::assert_snapshot!(error, @r#"network.bridge: "docker0" is not a bridge but a plain device"#);
    }

    #[test]
    fn a_refused_mtu_names_network_mtu_and_deletes_nothing() {
        let mut host = Fake::answering([
            Ok(vec![bridge_link(7, Some(InfoKind::Bridge))]),
            Ok(vec![refusal(
                nix::Error::EINVAL,
                Some("mtu less than device minimum"),
            )]),
        ]);
        let net = Network { mtu: 60, ..seed() };
        let error = run(&mut host, &mut Fake::default(), &net).unwrap_err();
        assert_eq!(host.kinds(), ["getlink", "newlink"]);
        insta::assert_snapshot!(error, @"network.mtu: the kernel refuses an MTU of 60 for the veth pair: invalid argument (mtu less than device minimum)");
    }

    #[test]
    fn an_existing_name_is_not_deleted() {
        let mut host = Fake::answering([
            Ok(vec![bridge_link(7, Some(InfoKind::Bridge))]),
            Ok(vec![refusal(nix::Error::EEXIST, None)]),
        ]);
        let error = run(&mut host, &mut Fake::default(), &seed()).unwrap_err();
        assert_eq!(host.kinds(), ["getlink", "newlink"]);
        insta::assert_snapshot!(error, @"network: create veth pair veth39ubcdefghi on bridge docker0 with eth0 in process 4242's namespace: file exists");
    }

    #[test]
    fn a_failure_in_the_container_deletes_the_pair() {
        let mut host = Fake::answering([
            Ok(vec![bridge_link(7, Some(InfoKind::Bridge))]),
            Ok(vec![echo(2)]),
        ]);
        let mut inside = Fake::answering([Ok(vec![
            Ok(vec![]),
            Ok(vec![]),
            Ok(vec![]),
            refusal(nix::Error::ENETUNREACH, Some("Nexthop has invalid gateway")),
        ])]);
        let error = run(&mut host, &mut inside, &seed()).unwrap_err();
        assert_eq!(host.kinds(), ["getlink", "newlink", "dellink"]);
        assert_eq!(
            host.sent[2].message,
            RouteNetlinkMessage::DelLink(link_named(HOST_VETH))
        );
        insta::assert_snapshot!(error, @"network: add default route via 172.17.42.1 dev eth0: network is unreachable (Nexthop has invalid gateway)");
    }

    #[test]
    fn a_lost_creation_answer_deletes_the_pair() {
        let mut host = Fake::answering([
            Ok(vec![bridge_link(7, Some(InfoKind::Bridge))]),
            Err(io::Error::from_raw_os_error(libc::ENOBUFS)),
        ]);
        let error = run(&mut host, &mut Fake::default(), &seed()).unwrap_err();
        assert_eq!(host.kinds(), ["getlink", "newlink", "dellink"]);
        assert!(matches!(error, NetworkError::Transport { .. }), "{error}");
    }

    #[rstest::rstest]
    #[case::capped_with_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, true, Some("mtu less than device minimum"))]
    #[case::full_request_with_message(NLM_F_ACK_TLVS, false, Some("mtu less than device minimum"))]
    #[case::no_attributes(NLM_F_CAPPED, true, None)]
    fn the_kernels_explanation_is_read_from_the_extended_ack(
        #[case] flags: u16,
        #[case] capped: bool,
        #[case] expected: Option<&str>,
    ) {
        let mut payload = Vec::new();
        let request_len: u32 = if capped { 16 } else { 22 };
        payload.extend(request_len.to_ne_bytes());
        payload.resize(align(request_len as usize), 0);
        if flags & NLM_F_ACK_TLVS != 0 {
            // NLMSGERR_ATTR_OFFS first, then the message.
            payload.extend(8u16.to_ne_bytes());
            payload.extend(2u16.to_ne_bytes());
            payload.extend(20u32.to_ne_bytes());
            let text = b"mtu less than device minimum\0";
            payload.extend((4 + text.len() as u16).to_ne_bytes());
            payload.extend(NLMSGERR_ATTR_MSG.to_ne_bytes());
            payload.extend(text);
            payload.resize(align(payload.len()), 0);
        }
        assert_eq!(kernel_message(flags, &payload).as_deref(), expected);
    }

    #[rstest::rstest]
    #[case::kernel_says_mtu(
        nix::Error::EINVAL,
        Some("mtu greater than device maximum"),
        1500,
        true
    )]
    #[case::silent_kernel_out_of_range(nix::Error::EINVAL, None, 67, true)]
    #[case::silent_kernel_in_range(nix::Error::EINVAL, None, 1500, false)]
    #[case::other_errno(nix::Error::EEXIST, None, 67, false)]
    fn mtu_refusals_are_told_apart(
        #[case] errno: nix::Error,
        #[case] message: Option<&str>,
        #[case] mtu: u32,
        #[case] expected: bool,
    ) {
        let reason = Refusal {
            errno,
            message: message.map(Into::into),
        };
        assert_eq!(refuses_mtu(&reason, mtu), expected);
    }

    #[test]
    fn requests_survive_a_round_trip_through_the_wire_format() {
        let request = new_veth(HOST_VETH, 1400, 7, PID);
        let mut message = NetlinkMessage::new(NetlinkHeader::default(), request.message.into());
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        let parsed = split(&bytes).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0], message);
    }

    /// What the kernel answers one request in a generated exchange.
    #[derive(Debug, Clone)]
    enum Scripted {
        /// Links (index, name) sent back, then the acknowledgement.
        Acked(Vec<(u32, String)>),
        /// A refusal: the errno and the extended-ACK message, if any.
        Refused(i32, Option<String>),
    }

    fn scripted() -> impl Strategy<Value = Scripted> {
        let link = (any::<u32>(), "[a-z0-9]{1,15}");
        prop_oneof![
            proptest::collection::vec(link, 0..3).prop_map(Scripted::Acked),
            (1..4096i32, proptest::option::of("[^\\u{0}]{1,40}"))
                .prop_map(|(errno, message)| Scripted::Refused(errno, message)),
        ]
    }

    /// One netlink message as the kernel lays it out, padded.
    fn wire(sequence: u32, flags: u16, payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = sequence;
        header.flags = flags;
        let mut message = NetlinkMessage::new(header, payload);
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes.resize(align(bytes.len()), 0);
        bytes
    }

    fn link(index: u32, name: &str) -> RouteNetlinkMessage {
        let mut link = link_named(name);
        link.header.index = index;
        RouteNetlinkMessage::NewLink(link)
    }

    /// The kernel's messages for request `sequence`, on a socket with `NETLINK_CAP_ACK` and
    /// `NETLINK_EXT_ACK` as nsinit opens it: the replies, then an error message carrying the
    /// request's header and, with a message, the `NLMSGERR_ATTR_MSG` attribute.
    fn kernel_answer(sequence: u32, scripted: &Scripted) -> Vec<u8> {
        let mut error = netlink_packet_core::ErrorMessage::default();
        error.header = vec![0; NLMSG_HDRLEN];
        let mut bytes = Vec::new();
        let flags = match scripted {
            Scripted::Acked(links) => {
                for (index, name) in links {
                    let reply = link(*index, name).into();
                    bytes.extend(wire(sequence, 0, reply));
                }
                NLM_F_CAPPED
            }
            Scripted::Refused(errno, message) => {
                error.code = std::num::NonZeroI32::new(-errno);
                if let Some(text) = message {
                    let value = [text.as_bytes(), b"\0"].concat();
                    error.header.extend((4 + value.len() as u16).to_ne_bytes());
                    error.header.extend(NLMSGERR_ATTR_MSG.to_ne_bytes());
                    error.header.extend(value);
                    error.header.resize(align(error.header.len()), 0);
                }
                NLM_F_CAPPED | NLM_F_ACK_TLVS
            }
        };
        bytes.extend(wire(sequence, flags, NetlinkPayload::Error(error)));
        bytes
    }

    fn expected(scripted: &Scripted) -> Answer {
        match scripted {
            Scripted::Acked(links) => Ok(links.iter().map(|(i, name)| link(*i, name)).collect()),
            Scripted::Refused(errno, message) => Err(Refusal {
                errno: nix::Error::from_raw(*errno),
                message: message.clone(),
            }),
        }
    }

    /// One message with a well-formed header around any payload: the kinds the kernel
    /// answers with (error, done, new link) and any other.
    fn any_message() -> impl Strategy<Value = Vec<u8>> {
        let kind = prop_oneof![Just(2u16), Just(3u16), Just(16u16), any::<u16>()];
        let payload = proptest::collection::vec(any::<u8>(), 0..96);
        (kind, any::<u16>(), any::<u32>(), payload).prop_map(|(kind, flags, sequence, payload)| {
            let mut bytes = ((NLMSG_HDRLEN + payload.len()) as u32)
                .to_ne_bytes()
                .to_vec();
            bytes.extend(kind.to_ne_bytes());
            bytes.extend(flags.to_ne_bytes());
            bytes.extend(sequence.to_ne_bytes());
            bytes.extend(0u32.to_ne_bytes());
            bytes.extend(payload);
            bytes.resize(align(bytes.len()), 0);
            bytes
        })
    }

    proptest! {
        /// Whatever the kernel's bytes, reading them gives answers or an error, never a panic.
        #[test]
        fn any_datagram_is_read_or_refused(
            first: u32,
            count in 0..4usize,
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let _ = Answers::new(first, count).read(&bytes);
        }

        /// The same for datagrams of well-formed headers around any payload.
        #[test]
        fn any_messages_are_read_or_refused(
            first: u32,
            count in 0..4usize,
            messages in proptest::collection::vec(any_message(), 1..4),
        ) {
            let _ = Answers::new(first, count).read(&messages.concat());
        }

        /// The kernel's answers to an exchange (links, acknowledgements, refusals with their
        /// explanation; a late answer to an earlier exchange among them) come back in order,
        /// whether they arrive in one datagram or one per request.
        #[test]
        fn kernel_answers_are_read_back(
            first: u32,
            script in proptest::collection::vec(scripted(), 1..4),
            one_datagram: bool,
        ) {
            let late = kernel_answer(first.wrapping_sub(1), &Scripted::Refused(1, None));
            let mut datagrams = vec![late];
            for (n, scripted) in script.iter().enumerate() {
                let answer = kernel_answer(first.wrapping_add(n as u32), scripted);
                match datagrams.last_mut() {
                    Some(last) if one_datagram => last.extend(answer),
                    _ => datagrams.push(answer),
                }
            }
            let mut answers = Answers::new(first, script.len());
            for datagram in &datagrams {
                prop_assert!(!answers.complete());
                answers.read(datagram).unwrap();
            }
            prop_assert!(answers.complete());
            let expected: Vec<Answer> = script.iter().map(expected).collect();
            prop_assert_eq!(answers.into_answers(), expected);
        }

        /// An error message's code is any 32-bit number to a parser: none panics.
        #[test]
        fn any_error_code_is_read(code in prop_oneof![Just(i32::MIN), any::<i32>()]) {
            let mut error = netlink_packet_core::ErrorMessage::default();
            error.code = std::num::NonZeroI32::new(code);
            error.header = vec![0; NLMSG_HDRLEN];
            let mut answers = Answers::new(1, 1);
            answers.read(&wire(1, NLM_F_CAPPED, NetlinkPayload::Error(error))).unwrap();
            prop_assert!(answers.complete());
        }
    }
}
