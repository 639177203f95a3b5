//! Bridge networking on this host, inside throwaway network namespaces only: a named namespace
//! with a bridge holding the gateway address stands in for the host, and a `sleep` unshared
//! into a namespace of its own stands in for the container. The code under test runs in a thread
//! that has entered the stand-in host first; traffic goes only between these namespaces.

use std::fs::File;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fixtures::harness::{needs_root, needs_tool, Ran, Trial};
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;
use nsinit::network::{self, NetworkError};
use nsinit::plan::Network;
use serde_json::Value;

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        setup_gives_the_container_a_ready_network_on_the_bridge,
        a_missing_bridge_is_named_with_a_recipe_and_leaves_no_veth,
        a_link_that_is_no_bridge_is_refused,
        an_mtu_the_kernel_refuses_names_network_mtu_and_leaves_no_veth,
        a_failure_inside_the_container_removes_the_pair_at_once,
        a_container_that_is_gone_is_named_and_leaves_no_veth,
        a_process_in_nsinits_own_namespace_is_refused,
        loopback_up_brings_up_lo_and_nothing_else,
        link_exists_looks_in_the_callers_namespace,
    ]
}

const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 42, 1);
const ADDRESS: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 100);
const PREFIX: u8 = 16;
/// An address of the stand-in host outside the container's network.
const BEYOND: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// Not the default 1500, so that the test sees it was applied.
const MTU: u32 = 1400;

/// Skip unless this test can run: root, and the tools that look at the result.
fn can_run() -> Ran {
    needs_root("network namespaces, veth pairs")?;
    for tool in ["ip", "unshare", "nsenter"] {
        needs_tool(tool, "-V")?;
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("ip -j prints JSON")
}

/// A named network namespace standing in for the host, deleted on drop.
struct Host {
    name: String,
    /// The bridge's name, unique to the test.
    bridge: String,
}

impl Host {
    fn new() -> Host {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let host = Host {
            name: format!("nsinit-t-{}-{n}", std::process::id()),
            bridge: format!("br-t{n}"),
        };
        run(Command::new("ip").args(["netns", "add", &host.name]));
        host
    }

    /// Give the stand-in host its bridge, holding the gateway address, up.
    fn with_bridge(self) -> Host {
        let bridge = self.bridge.clone();
        self.ip(&["link", "add", "name", &bridge, "type", "bridge"]);
        self.ip(&[
            "addr",
            "add",
            &format!("{GATEWAY}/{PREFIX}"),
            "dev",
            &bridge,
        ]);
        self.ip(&["link", "set", &bridge, "up"]);
        self
    }

    fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// The veth links of the stand-in host.
    fn veths(&self) -> Vec<String> {
        let links = json(self.ip(&["-j", "link", "show", "type", "veth"]));
        let links = links.as_array().cloned().unwrap_or_default();
        links
            .iter()
            .map(|link| link["ifname"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Run `f` in a thread standing in this namespace.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let netns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                    setns(&netns, CloneFlags::CLONE_NEWNET).expect("enter the stand-in host");
                    f()
                })
                .join()
                .expect("the thread in the stand-in host")
        })
    }

    fn network(&self) -> Network {
        Network {
            address: ADDRESS,
            prefix_len: PREFIX,
            gateway: Some(GATEWAY),
            bridge: self.bridge.clone(),
            mtu: MTU,
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A process in a network namespace of its own, killed on drop.
struct Container {
    child: Child,
    pidfd: OwnedFd,
}

impl Container {
    fn start() -> Container {
        let mut child = Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let pid = Pid::from_raw(child.id() as i32);
        // `unshare` execs `sleep` once the namespace exists.
        let comm = format!("/proc/{pid}/comm");
        let ready = wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")
        });
        if !ready {
            let _ = child.kill();
            panic!("unshare --net did not become sleep");
        }
        let pidfd = nsinit::sys::pidfd_open(pid).expect("pidfd_open");
        Container { child, pidfd }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// `ip ARGS` inside the container's namespace.
    fn ip(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid().to_string(), "-n", "ip"])
            .args(args);
        cmd
    }

    fn ip_json(&self, args: &[&str]) -> Value {
        json(run(&mut self.ip(&[&["-j"], args].concat())))
    }

    fn has_eth0(&self) -> bool {
        self.ip(&["link", "show", "dev", "eth0"])
            .stderr(Stdio::null())
            .status()
            .expect("run nsenter")
            .success()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

fn flags(link: &Value) -> Vec<&str> {
    link["flags"]
        .as_array()
        .map(|flags| flags.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A UDP round trip between the container and `target`, an address of the stand-in host:
/// whether the stand-in host heard the container's address and its answer came back. (UDP
/// rather than ICMP: std has no raw sockets, and this machine has no `ping`.)
fn round_trip(host: &Host, container: BorrowedFd<'_>, target: Ipv4Addr) -> bool {
    // A socket keeps the namespace of the thread that made it.
    let server = host.enter(|| UdpSocket::bind((target, 0)).expect("bind in the stand-in host"));
    let client = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(container, CloneFlags::CLONE_NEWNET).expect("enter the container");
                UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind in the container")
            })
            .join()
            .expect("the thread in the container")
    });
    let limit = Some(Duration::from_secs(2));
    server.set_read_timeout(limit).expect("timeout");
    client.set_read_timeout(limit).expect("timeout");
    let mut buf = [0u8; 16];
    client
        .send_to(b"ping", server.local_addr().expect("address"))
        .expect("send from the container");
    let Ok((_, from)) = server.recv_from(&mut buf) else {
        return false;
    };
    assert_eq!(
        from.ip(),
        ADDRESS,
        "the container's packets come from its address"
    );
    server.send_to(b"pong", from).expect("answer");
    client
        .recv(&mut buf)
        .is_ok_and(|len| &buf[..len] == b"pong")
}

fn setup_gives_the_container_a_ready_network_on_the_bridge() -> Ran {
    can_run()?;
    let host = Host::new().with_bridge();
    let mut container = Container::start();
    let veth = network::host_veth_name(container.pid());
    let net = host.network();

    let took = host.enter(|| {
        let start = Instant::now();
        network::setup(&net, container.pidfd(), container.pid(), &veth)
            .unwrap_or_else(|e| panic!("{e}"));
        start.elapsed()
    });
    eprintln!("network::setup took {took:?}");

    // Inside: eth0 with the address, prefix and MTU, up; lo up; the default route.
    let eth0 = &container.ip_json(&["addr", "show", "dev", "eth0"])[0];
    assert_eq!(eth0["mtu"], MTU, "{eth0}");
    assert!(flags(eth0).contains(&"UP"), "{eth0}");
    let inet: Vec<_> = eth0["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["family"] == "inet")
        .collect();
    assert_eq!(inet.len(), 1, "{eth0}");
    assert_eq!(inet[0]["local"], ADDRESS.to_string());
    assert_eq!(inet[0]["prefixlen"], PREFIX);
    let lo = &container.ip_json(&["link", "show", "dev", "lo"])[0];
    assert!(flags(lo).contains(&"UP"), "{lo}");
    let routes = container.ip_json(&["route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], GATEWAY.to_string(), "{routes}");
    assert_eq!(routes[0]["dev"], "eth0", "{routes}");
    assert!(
        round_trip(&host, container.pidfd(), GATEWAY),
        "the gateway does not answer"
    );
    // An address beyond the container's network is reached through the default route.
    host.ip(&["addr", "add", &format!("{BEYOND}/32"), "dev", "lo"]);
    host.ip(&["link", "set", "lo", "up"]);
    assert!(
        round_trip(&host, container.pidfd(), BEYOND),
        "{BEYOND} does not answer through the gateway"
    );

    // The stand-in host: the host end is on the bridge, with the MTU, up.
    let link = &json(host.ip(&["-j", "link", "show", "dev", &veth]))[0];
    assert_eq!(link["master"], host.bridge, "{link}");
    assert_eq!(link["mtu"], MTU, "{link}");
    assert!(flags(link).contains(&"UP"), "{link}");
    assert!(host.enter(|| network::link_exists(&veth)));

    // When the container ends, the kernel takes the pair away with its namespace.
    container.stop();
    let gone = wait_until(Duration::from_secs(20), || {
        !host.enter(|| network::link_exists(&veth))
    });
    assert!(gone, "{veth} outlived the container");
    Ok(())
}

fn a_missing_bridge_is_named_with_a_recipe_and_leaves_no_veth() -> Ran {
    can_run()?;
    let host = Host::new();
    let container = Container::start();
    let veth = network::host_veth_name(container.pid());
    let net = host.network();

    let error = host
        .enter(|| network::setup(&net, container.pidfd(), container.pid(), &veth))
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, NetworkError::NoBridge { .. }), "{text}");
    let recipe = format!(
        "ip link add name {0} type bridge && ip addr add {GATEWAY}/{PREFIX} dev {0} && \
         ip link set {0} up",
        host.bridge
    );
    assert!(text.contains(&format!("\"{}\"", host.bridge)), "{text}");
    assert!(text.contains(&recipe), "{text}");
    assert_eq!(host.veths(), Vec::<String>::new());
    assert!(!container.has_eth0());
    Ok(())
}

fn a_link_that_is_no_bridge_is_refused() -> Ran {
    can_run()?;
    let host = Host::new();
    let other_end = format!("{}p", host.bridge);
    host.ip(&[
        "link",
        "add",
        "name",
        &host.bridge,
        "type",
        "veth",
        "peer",
        &other_end,
    ]);
    let container = Container::start();
    let veth = network::host_veth_name(container.pid());
    let net = host.network();

    let error = host
        .enter(|| network::setup(&net, container.pidfd(), container.pid(), &veth))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "network.bridge: \"{}\" is not a bridge but a veth device",
            host.bridge
        )
    );
    assert_eq!(host.veths().len(), 2, "no veth but the test's own");
    Ok(())
}

fn an_mtu_the_kernel_refuses_names_network_mtu_and_leaves_no_veth() -> Ran {
    can_run()?;
    let host = Host::new().with_bridge();
    let container = Container::start();
    for mtu in [60, 65536] {
        let veth = network::host_veth_name(container.pid());
        let net = Network {
            mtu,
            ..host.network()
        };
        let error = host
            .enter(|| network::setup(&net, container.pidfd(), container.pid(), &veth))
            .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, NetworkError::Mtu { .. }), "{text}");
        assert!(
            text.starts_with(&format!("network.mtu: the kernel refuses an MTU of {mtu} ")),
            "{text}"
        );
        assert_eq!(host.veths(), Vec::<String>::new());
        assert!(!container.has_eth0());
    }
    Ok(())
}

fn a_failure_inside_the_container_removes_the_pair_at_once() -> Ran {
    can_run()?;
    let host = Host::new().with_bridge();
    let container = Container::start();
    let veth = network::host_veth_name(container.pid());
    // A gateway outside the container's network: the kernel refuses the route, after the pair
    // exists (the config refuses this, but the kernel must not be trusted to agree).
    let net = Network {
        gateway: Some(Ipv4Addr::new(10, 99, 0, 1)),
        ..host.network()
    };

    let error = host
        .enter(|| network::setup(&net, container.pidfd(), container.pid(), &veth))
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("network: add default route via 10.99.0.1 dev eth0: "),
        "{text}"
    );
    // No polling: the container still lives, so only nsinit's own cleanup removes the pair.
    assert_eq!(host.veths(), Vec::<String>::new());
    assert!(!container.has_eth0());
    Ok(())
}

fn a_container_that_is_gone_is_named_and_leaves_no_veth() -> Ran {
    can_run()?;
    let host = Host::new().with_bridge();
    let mut container = Container::start();
    let veth = network::host_veth_name(container.pid());
    container.stop();
    let net = host.network();

    let error = host
        .enter(|| network::setup(&net, container.pidfd(), container.pid(), &veth))
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "network: enter the network namespace of process {}: ",
            container.pid()
        )),
        "{text}"
    );
    assert_eq!(host.veths(), Vec::<String>::new());
    Ok(())
}

fn a_process_in_nsinits_own_namespace_is_refused() -> Ran {
    can_run()?;
    let host = Host::new().with_bridge();
    // Started from the stand-in host without a namespace of its own.
    let mut child = host.enter(|| {
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep")
    });
    let pid = Pid::from_raw(child.id() as i32);
    let pidfd = nsinit::sys::pidfd_open(pid).expect("pidfd_open");
    let veth = network::host_veth_name(pid);
    let net = host.network();

    let error = host.enter(|| network::setup(&net, pidfd.as_fd(), pid, &veth));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        error.unwrap_err().to_string(),
        format!(
            "network: process {pid} shares nsinit's network namespace; `network` needs \
             \"NEWNET\" in namespaces"
        )
    );
    assert_eq!(host.veths(), Vec::<String>::new());
    assert!(!host.enter(|| network::link_exists("eth0")));
    Ok(())
}

fn loopback_up_brings_up_lo_and_nothing_else() -> Ran {
    can_run()?;
    let container = Container::start();
    let lo = &container.ip_json(&["link", "show", "dev", "lo"])[0];
    assert!(!flags(lo).contains(&"UP"), "lo starts down: {lo}");

    // As the container's first process does it: from inside its network namespace (a thread
    // of this test's, entered with setns).
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(container.pidfd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("enter the container's network namespace");
                network::loopback_up_here()
            })
            .join()
            .expect("the thread ran")
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let lo = &container.ip_json(&["link", "show", "dev", "lo"])[0];
    assert!(flags(lo).contains(&"UP"), "{lo}");
    let up: Vec<_> = container
        .ip_json(&["link", "show", "up"])
        .as_array()
        .expect("links")
        .iter()
        .map(|link| link["ifname"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(up, ["lo"]);
    Ok(())
}

fn link_exists_looks_in_the_callers_namespace() -> Ran {
    can_run()?;
    let host = Host::new().with_bridge();
    assert!(host.enter(|| network::link_exists(&host.bridge)));
    assert!(host.enter(|| network::link_exists("lo")));
    assert!(!host.enter(|| network::link_exists("br-t-nowhere")));
    Ok(())
}
