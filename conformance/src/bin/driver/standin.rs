//! The stand-in host of the network cases: a throwaway network namespace holding the seed's
//! bridge, `docker0` with `172.17.42.1/16`, up. nsinit runs inside it, so the veths it makes
//! land on this bridge, and the real host's interfaces, routes and addresses are never touched.
//!
//! A network namespace belongs to a thread: [`on_stand_in`] runs its work on a thread of its
//! own that leaves for a new namespace, and every process that thread starts (nsinit, its
//! joins) starts there. The namespace goes with the thread, and the kernel deletes whatever
//! veths are still in it. Setup and the link listing are a few rtnetlink requests, made with
//! `netlink-packet-route` and `netlink-sys` as nsinit makes its own: no `ip` command, so the
//! same code works on any host and in the VM's busybox guest.

use std::io;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

/// The seed's bridge.
pub const BRIDGE: &str = "docker0";
/// The seed's gateway, held by the bridge.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 42, 1);
/// The prefix length of the seed's network, 172.17.0.0/16.
const PREFIX: u8 = 16;

/// One network interface of the stand-in host, as its netlink dump describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub up: bool,
    /// The index of the bridge (or other master) it is a port of.
    pub master: Option<u32>,
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
        let mut rtnl =
            Rtnl::open().map_err(|e| format!("open a netlink socket in the stand-in host: {e}"))?;
        let step = |what: &str, result: io::Result<()>| {
            result.map_err(|e| format!("stand-in host: {what}: {e}"))
        };
        step("set lo up", rtnl.set_up("lo"))?;
        step(
            &format!("create the bridge {BRIDGE}"),
            rtnl.add_bridge(BRIDGE),
        )?;
        step(
            &format!("give {BRIDGE} {GATEWAY}/{PREFIX}"),
            rtnl.add_address(BRIDGE, GATEWAY, PREFIX),
        )?;
        step(&format!("set {BRIDGE} up"), rtnl.set_up(BRIDGE))?;
        Ok(StandIn {
            _thread_bound: PhantomData,
        })
    }

    /// Every link of the stand-in host.
    pub fn links(&self) -> Result<Vec<Link>, String> {
        Rtnl::open()
            .and_then(|mut rtnl| rtnl.links())
            .map_err(|e| format!("list the stand-in host's links: {e}"))
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

/// A `NETLINK_ROUTE` socket in the namespace of the thread that opened it.
struct Rtnl {
    socket: Socket,
    sequence: u32,
}

impl Rtnl {
    fn open() -> io::Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        Ok(Rtnl {
            socket,
            sequence: 0,
        })
    }

    /// `ip link set NAME up`.
    fn set_up(&mut self, name: &str) -> io::Result<()> {
        let mut link = link_named(name);
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(link), 0)
            .map(drop)
    }

    /// `ip link add name NAME type bridge`.
    fn add_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut link = link_named(name);
        link.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        self.request(RouteNetlinkMessage::NewLink(link), flags)
            .map(drop)
    }

    /// `ip addr add ADDRESS/PREFIX dev NAME`.
    fn add_address(&mut self, name: &str, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let index = self.index_of(name)?;
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        message.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(address)),
            AddressAttribute::Address(IpAddr::V4(address)),
        ];
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        self.request(RouteNetlinkMessage::NewAddress(message), flags)
            .map(drop)
    }

    /// The index of the link `name`.
    fn index_of(&mut self, name: &str) -> io::Result<u32> {
        let replies = self.request(RouteNetlinkMessage::GetLink(link_named(name)), 0)?;
        replies
            .iter()
            .find_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })
            .ok_or_else(|| io::Error::other(format!("the kernel did not describe {name}")))
    }

    /// Every link of the socket's namespace: one `RTM_GETLINK` dump.
    fn links(&mut self) -> io::Result<Vec<Link>> {
        let dump = RouteNetlinkMessage::GetLink(LinkMessage::default());
        let replies = self.request(dump, NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(describe(&link)),
                _ => None,
            })
            .collect())
    }

    /// Send one request and gather the kernel's replies up to its acknowledgement (or the end
    /// of a dump); a refusal is its errno. Every request but a dump asks for the
    /// acknowledgement: without it a `get` is answered by its reply alone, and this would wait.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence += 1;
        let end = if flags & NLM_F_DUMP == NLM_F_DUMP {
            0
        } else {
            NLM_F_ACK
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | end | flags;
        header.sequence_number = self.sequence;
        let mut request = NetlinkMessage::new(header, message.into());
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;

        let mut replies = Vec::new();
        loop {
            let (datagram, _) = self.socket.recv_from_full()?;
            for message in messages(&datagram)? {
                if message.header.sequence_number != self.sequence {
                    continue;
                }
                match message.payload {
                    NetlinkPayload::InnerMessage(reply) => replies.push(reply),
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(replies),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn link_named(name: &str) -> LinkMessage {
    let mut link = LinkMessage::default();
    link.attributes.push(LinkAttribute::IfName(name.into()));
    link
}

/// The netlink messages of one datagram.
fn messages(mut datagram: &[u8]) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    let mut messages = Vec::new();
    while datagram.len() >= NLMSG_HDRLEN {
        let length = u32::from_ne_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
        let length = length as usize;
        if length < NLMSG_HDRLEN || length > datagram.len() {
            return Err(io::Error::other("a netlink message overruns its datagram"));
        }
        let message = NetlinkMessage::deserialize(&datagram[..length])
            .map_err(|e| io::Error::other(format!("an undecodable netlink message: {e}")))?;
        messages.push(message);
        datagram = datagram.get(align(length)..).unwrap_or_default();
    }
    Ok(messages)
}

/// One link as the dump describes it.
fn describe(link: &LinkMessage) -> Link {
    let mut described = Link {
        index: link.header.index,
        up: link.header.flags.contains(LinkFlags::Up),
        ..Link::default()
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(name) => described.name = name.clone(),
            LinkAttribute::Mtu(mtu) => described.mtu = *mtu,
            LinkAttribute::Controller(master) => described.master = Some(*master),
            LinkAttribute::LinkInfo(infos) => {
                described.kind = infos.iter().find_map(|info| match info {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    described
}

/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;

/// Netlink messages are 4-byte aligned.
fn align(length: usize) -> usize {
    (length + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram as the kernel sends it: the messages one after the other, each padded.
    fn datagram(payloads: Vec<NetlinkPayload<RouteNetlinkMessage>>) -> Vec<u8> {
        let mut bytes = Vec::new();
        for payload in payloads {
            let mut message = NetlinkMessage::new(NetlinkHeader::default(), payload);
            message.finalize();
            let start = bytes.len();
            bytes.resize(start + message.buffer_len(), 0);
            message.serialize(&mut bytes[start..]);
            bytes.resize(align(bytes.len()), 0);
        }
        bytes
    }

    fn veth() -> LinkMessage {
        let mut link = link_named("veth1abc");
        link.header.index = 7;
        link.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        link.attributes.extend([
            LinkAttribute::Mtu(1400),
            LinkAttribute::Controller(3),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ]);
        link
    }

    #[test]
    fn a_link_message_is_described_by_name_mtu_master_and_kind() {
        assert_eq!(
            describe(&veth()),
            Link {
                index: 7,
                name: "veth1abc".into(),
                mtu: 1400,
                up: true,
                master: Some(3),
                kind: Some("veth".into()),
            }
        );
        let lo = describe(&link_named("lo"));
        assert_eq!((lo.kind, lo.master, lo.up), (None, None, false));
    }

    #[test]
    fn a_datagram_splits_into_its_messages() {
        let links = [veth(), link_named("lo")];
        let bytes = datagram(
            links
                .iter()
                .map(|link| RouteNetlinkMessage::NewLink(link.clone()).into())
                .collect(),
        );
        let parsed: Vec<_> = messages(&bytes)
            .unwrap()
            .into_iter()
            .map(|message| message.payload)
            .collect();
        assert_eq!(
            parsed,
            links.map(|link| NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)))
        );
    }

    #[test]
    fn a_message_that_overruns_its_datagram_is_an_error() {
        let mut bytes = datagram(vec![RouteNetlinkMessage::NewLink(veth()).into()]);
        bytes[0] += 4;
        assert!(messages(&bytes).is_err());
    }

    proptest::proptest! {
        /// Whatever the bytes, splitting them never panics.
        #[test]
        fn any_datagram_splits_or_is_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = messages(&bytes);
        }
    }
}
