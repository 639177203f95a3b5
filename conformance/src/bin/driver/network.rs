//! The network cases: the seed's bridge network as the container sees it (eth0's address,
//! MTU and state, `lo`, the default route, the gateway answering), as the host sees it (the
//! veth on the bridge while the container runs, gone after), as a join sees it; another
//! address and MTU; a missing bridge; `NEWNET` without `network`.
//!
//! Every case with a `network` runs on a stand-in host ([`standin`](crate::standin)), never on
//! the real one.

use std::time::{Duration, Instant};

use conformance::facts::{Facts, Interface, PingReport};

use crate::check::{expect_eq, expect_exit, facts_of, mismatch, Check, Mismatch};
use crate::harness::Run;
use crate::stage::Stage;
use crate::standin::{on_stand_in, Link, StandIn, BRIDGE, GATEWAY};
use crate::suite::{Case, ConfigFile};

/// The seed's network, as its `network` says.
const ADDRESS: &str = "172.17.0.100/16";
const MTU: u32 = 1500;
/// The MTU and address of the variant.
const OTHER_MTU: u32 = 1400;
const OTHER_ADDRESS: &str = "172.17.1.2/16";
/// The fallback tunnel devices the kernel puts in every new network namespace while their
/// modules are loaded (`net.core.fb_tunnels_only_for_init_net` is 0 by default): there in the
/// container through no doing of nsinit's, so the checks that count interfaces skip them.
const KERNEL_FALLBACK_DEVICES: &[&str] = &[
    "tunl0", "sit0", "ip6tnl0", "gre0", "gretap0", "erspan0", "ip6gre0", "ip_vti0", "ip6_vti0",
];
/// A bridge no stand-in host has.
const NO_SUCH_BRIDGE: &str = "nosuchbr0";
/// How long the kernel may take to delete a dead container's veth pair (it does so with the
/// network namespace, after an RCU grace period: tens of milliseconds, more in a VM).
const VETH_GONE_WITHIN: Duration = Duration::from_secs(5);
/// A PID 1 that reports its facts and lives until the driver ends it.
const FACTS_THEN_SLEEP: &[&str] = &["/probe", "facts-then-sleep", "600"];

pub fn cases() -> Vec<Case> {
    vec![
        seed_network(),
        mtu_of_its_own(),
        missing_bridge(),
        no_network(),
    ]
}

/// The seed verbatim minus `cgroups`, with `change` applied to its `network`.
fn seed_network_config(change: impl FnOnce(&mut serde_json::Value)) -> ConfigFile {
    let text = fixtures::config("seed").expect("the seed fixture exists");
    let mut json: serde_json::Value = serde_json::from_str(text).expect("the seed fixture parses");
    json.as_object_mut()
        .expect("the seed is an object")
        .remove("cgroups");
    change(&mut json["network"]);
    ConfigFile::Derived(serde_json::to_string_pretty(&json).expect("JSON values serialize"))
}

/// A scenario under `config` whose play runs on a fresh stand-in host.
fn on_stand_in_case<T: Send + 'static>(
    name: &str,
    config: ConfigFile,
    play: fn(&mut Stage, &StandIn) -> Result<T, String>,
) -> Case {
    // The fixture named here is only a placeholder for `config`.
    Case {
        config,
        ..Case::scenario(name, "seed-no-net-cgroups", move |stage| {
            on_stand_in(|host| play(stage, host)).and_then(|found| found)
        })
    }
}

/// The seed's network: PID 1's own view, the stand-in host's, a join's, and the gateway.
fn seed_network() -> Case {
    let mut checks: Vec<Check> = pid1_checks()
        .into_iter()
        .map(|check| check.about(|n: &Seed| &n.first))
        .collect();
    checks.extend([
        Check::on_findings("net/gateway-reachable", |n: &Seed| {
            let report = ping_report(&n.ping)?;
            if report.replied {
                return Ok(());
            }
            Err(mismatch(
                format!("an echo reply from {GATEWAY}"),
                format!(
                    "none to {} requests{}",
                    report.sent,
                    report.error.map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            ))
        }),
        Check::on_findings("net/host-veth-on-bridge", |n: &Seed| {
            let veths = n
                .on_bridge
                .as_ref()
                .map_err(|why| mismatch("a veth", why))?;
            match veths.as_slice() {
                [veth] if veth.name.starts_with("veth") && veth.mtu == MTU && veth.up => Ok(()),
                _ => Err(mismatch(
                    format!("one veth* on {BRIDGE}, MTU {MTU}, up"),
                    describe_links(veths),
                )),
            }
        }),
        Check::on_findings("net/host-veth-gone-after", |n: &Seed| {
            n.veths_after.as_ref().map(|_| ()).map_err(|why| {
                mismatch(
                    format!(
                        "no veth on {BRIDGE} within {}s of the container's end",
                        VETH_GONE_WITHIN.as_secs()
                    ),
                    why,
                )
            })
        }),
        Check::on_findings("net/joined-same-netns", |n: &Seed| {
            let pid1 = facts_of(&n.first)?;
            let joined = facts_of(&n.joined)?;
            let view = |f: &Facts| (f.namespaces.get("net").cloned(), eth0(f).map(|i| i.ipv4));
            expect_eq(view(&pid1), view(&joined))
        }),
    ]);
    on_stand_in_case("net-seed", seed_network_config(|_| {}), seed).checks(checks)
}

/// What PID 1 of the seed sees of its network.
fn pid1_checks() -> Vec<Check> {
    vec![
        Check::on_facts("net/eth0-address", |f| {
            let ipv4 = eth0(f).map(|i| i.ipv4).unwrap_or_default();
            expect_eq(vec![ADDRESS.to_string()], ipv4)
        }),
        Check::on_facts("net/eth0-mtu", |f| {
            expect_eq(Some(MTU), eth0(f).and_then(|i| i.mtu))
        }),
        Check::on_facts("net/eth0-up", |f| {
            expect_eq(Some(true), eth0(f).map(|i| i.up))
        }),
        Check::on_facts("net/lo-up", |f| {
            let lo = f.interfaces.iter().find(|i| i.name == "lo");
            expect_eq(Some(true), lo.map(|i| i.up))
        }),
        Check::on_facts("net/default-route", |f| {
            let default: Vec<(&str, &str)> = f
                .routes
                .iter()
                .filter(|r| r.destination == "0.0.0.0" && r.prefix == 0)
                .map(|r| (r.iface.as_str(), r.gateway.as_str()))
                .collect();
            expect_eq(vec![("eth0", GATEWAY.to_string().as_str())], default)
        }),
        Check::on_facts("net/only-lo-and-eth0", |f| {
            let mut names: Vec<&str> = interfaces(f).map(|i| i.name.as_str()).collect();
            names.sort_unstable();
            expect_eq(vec!["eth0", "lo"], names)
        }),
    ]
}

/// The seed's container, seen from inside, from the stand-in host and from a join.
struct Seed {
    /// PID 1's run: its facts, then a sleep ended by killing it.
    first: Run,
    /// The veths on the bridge once PID 1 reported.
    on_bridge: Result<Vec<Link>, String>,
    /// A joined `/probe facts` and `/probe ping GATEWAY`.
    joined: Run,
    ping: Run,
    /// When the last veth left the bridge, or that one stayed.
    veths_after: Result<Duration, String>,
}

fn seed(stage: &mut Stage, host: &StandIn) -> Result<Seed, String> {
    let mut first = stage.start(FACTS_THEN_SLEEP)?;
    let pid1 = stage.probe_under(&mut first)?;
    stage.adopt(pid1);
    stage.until("PID 1's facts", || {
        first.stdout_so_far().contains('\n').then_some(())
    })?;
    let on_bridge = host.veths_on_bridge();
    let joined = stage.run(&["/probe", "facts"]);
    let ping = stage.run(&["/probe", "ping", &GATEWAY.to_string()]);
    pid1.kill();
    let first = stage.finish(first);
    let ended = Instant::now();
    let veths_after = stage
        .until_by(ended + VETH_GONE_WITHIN, "the veth to leave", || {
            host.veths_on_bridge()
                .is_ok_and(|veths| veths.is_empty())
                .then(|| ended.elapsed())
        })
        .map_err(|why| {
            let left = host
                .veths_on_bridge()
                .map_or_else(|e| e, |v| describe_links(&v));
            format!("{left} ({why})")
        });
    Ok(Seed {
        first,
        on_bridge,
        joined,
        ping,
        veths_after,
    })
}

/// Another address, and an MTU below the bridge's: the container's are what its config says.
fn mtu_of_its_own() -> Case {
    let config = seed_network_config(|network| {
        network["mtu"] = OTHER_MTU.into();
        network["address"] = OTHER_ADDRESS.into();
    });
    let checks = [
        Check::on_facts("net/mtu-1400", |f| {
            expect_eq(Some(OTHER_MTU), eth0(f).and_then(|i| i.mtu))
        }),
        Check::on_facts("net/address-from-config", |f| {
            let ipv4 = eth0(f).map(|i| i.ipv4).unwrap_or_default();
            expect_eq(vec![OTHER_ADDRESS.to_string()], ipv4)
        }),
    ];
    on_stand_in_case("net-variant", config, |stage, _| {
        Ok(stage.run(&["/probe", "facts"]))
    })
    .checks(checks.map(|check| check.about(|run: &Run| run)))
}

/// A bridge the host lacks: nsinit refuses, naming it, and leaves nothing behind.
fn missing_bridge() -> Case {
    let config = seed_network_config(|network| network["bridge"] = NO_SUCH_BRIDGE.into());
    on_stand_in_case("net-missing-bridge", config, missing).checks([
        Check::exit_saying("net/missing-bridge", 125, &[NO_SUCH_BRIDGE])
            .about(|m: &Missing| &m.run),
        Check::on_findings("net/missing-bridge-leaves-nothing", |m: &Missing| {
            let veths = m.veths.as_ref().map_err(|why| mismatch("no veth", why))?;
            if veths.is_empty() && !m.nspid_left {
                return Ok(());
            }
            Err(mismatch(
                "no veth on the stand-in host and no .nspid once nsinit returned",
                format!(
                    "veths: {}; .nspid {}",
                    describe_links(veths),
                    if m.nspid_left { "left" } else { "gone" }
                ),
            ))
        }),
    ])
}

struct Missing {
    run: Run,
    /// The stand-in host's veths, and whether `.nspid` was there, once nsinit returned.
    veths: Result<Vec<Link>, String>,
    nspid_left: bool,
}

fn missing(stage: &mut Stage, host: &StandIn) -> Result<Missing, String> {
    let run = stage.run(&["/probe", "facts"]);
    Ok(Missing {
        run,
        veths: host.veths(),
        nspid_left: stage.dir().join(".nspid").symlink_metadata().is_ok(),
    })
}

/// `NEWNET` without `network`: only `lo`, up. No veth is made, so no stand-in host is needed.
fn no_network() -> Case {
    Case::probe("net-none", "seed-no-net-cgroups", &["facts"]).checks([Check::on_facts(
        "net/no-network-only-lo",
        |f| {
            let seen: Vec<(&str, bool)> = interfaces(f).map(|i| (i.name.as_str(), i.up)).collect();
            expect_eq(vec![("lo", true)], seen)
        },
    )])
}

/// The container's interfaces but the kernel's fallback devices.
fn interfaces(facts: &Facts) -> impl Iterator<Item = &Interface> {
    facts
        .interfaces
        .iter()
        .filter(|i| !KERNEL_FALLBACK_DEVICES.contains(&i.name.as_str()))
}

fn eth0(facts: &Facts) -> Option<Interface> {
    facts.interfaces.iter().find(|i| i.name == "eth0").cloned()
}

fn ping_report(run: &Run) -> Result<PingReport, Mismatch> {
    expect_exit(run, 0)?;
    serde_json::from_str(run.stdout.trim())
        .map_err(|e| mismatch("the probe's ping report", format!("{e}; {}", run.summary())))
}

fn describe_links(links: &[Link]) -> String {
    match links {
        [] => "none".to_string(),
        _ => links
            .iter()
            .map(Link::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}
