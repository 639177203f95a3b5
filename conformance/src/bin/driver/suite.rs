//! The suite as data: each case is one `nsinit exec` with a fixture config, a command, maybe
//! stdin, files or an action on the running container, and the named checks on what came out;
//! or a scenario (several `nsinit exec` on a [`Stage`], see `lifecycle`) and the named checks
//! on what it recorded.
//!
//! A feature gets its checks here when it lands, as one more group function called from
//! [`cases`]; a check for a feature that has not landed is not in the list at all.

use std::any::Any;
use std::collections::BTreeSet;

use conformance::facts::{
    CapabilitySets, DevNode, Facts, Mount, SignalReport, TryResult, WAIT_SIGNAL_EXIT_BASE,
};
use conformance::names::{signal_name, NAMESPACES};

use crate::check::{expect_eq, expect_exit, expect_stdout, facts_of, mismatch, Check, Verdict};
use crate::expect::{Demands, Host};
use crate::harness::CASE_MARKER;
use crate::lifecycle::{
    self, JoinedKill, Lifecycle, NsinitKilled, Nspid, PlantedNspid, Racers, Rewritten, NSPID,
};
use crate::stage::Stage;

/// The seed sample without the parts whose features have not landed (network, cgroups).
const SEED: &str = "seed-no-net-cgroups";

/// Where a case's `container.json` comes from.
#[derive(Debug, Clone)]
pub enum ConfigFile {
    Fixture(&'static str),
    /// Text the driver derived from a fixture.
    Derived(String),
    /// The case directory has no `container.json`.
    Absent,
}

/// Something the driver does to the container while nsinit runs.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Once the probe has a handler for this signal, send the signal to nsinit.
    SignalNsinit(i32),
    /// Once the probe runs, SIGKILL it from outside (the container's PID 1).
    KillProbe,
}

/// A file a case adds to its rootfs.
pub struct CaseFile {
    pub path: &'static str,
    pub content: &'static str,
    pub mode: u32,
}

/// A multi-step case: what the driver does on its stage, boxed as
/// [`Evidence::Findings`](crate::check::Evidence::Findings) expects.
pub type Play = Box<dyn Fn(&mut Stage) -> Box<dyn Any>>;

pub struct Case {
    /// Names the case directory; check names carry their own prefixes.
    pub name: String,
    pub config: ConfigFile,
    /// When set, the case is this scenario instead of one `nsinit exec` of `command`.
    pub scenario: Option<Play>,
    /// What follows `nsinit exec --`.
    pub command: Vec<String>,
    pub stdin: Option<&'static [u8]>,
    pub files: Vec<CaseFile>,
    pub action: Option<Action>,
    pub checks: Vec<Check>,
}

impl Case {
    pub fn new(name: impl Into<String>, config: ConfigFile, command: &[&str]) -> Case {
        Case {
            name: name.into(),
            config,
            scenario: None,
            command: command.iter().map(|arg| arg.to_string()).collect(),
            stdin: None,
            files: Vec::new(),
            action: None,
            checks: Vec::new(),
        }
    }

    /// A case running the probe under a fixture config.
    pub fn probe(name: impl Into<String>, fixture: &'static str, args: &[&str]) -> Case {
        let command: Vec<&str> = std::iter::once("/probe")
            .chain(args.iter().copied())
            .collect();
        Case::new(name, ConfigFile::Fixture(fixture), &command)
    }

    /// A scenario under a fixture config: `play` drives nsinit on the stage and returns its
    /// findings (or why it could not go on), which [`Check::on_findings`] checks look at.
    pub fn scenario<T: 'static>(
        name: impl Into<String>,
        fixture: &'static str,
        play: impl Fn(&mut Stage) -> Result<T, String> + 'static,
    ) -> Case {
        Case {
            scenario: Some(Box::new(move |stage| Box::new(play(stage)))),
            ..Case::new(name, ConfigFile::Fixture(fixture), &[])
        }
    }

    fn stdin(mut self, bytes: &'static [u8]) -> Case {
        self.stdin = Some(bytes);
        self
    }

    fn file(mut self, path: &'static str, content: &'static str, mode: u32) -> Case {
        self.files.push(CaseFile {
            path,
            content,
            mode,
        });
        self
    }

    fn action(mut self, action: Action) -> Case {
        self.action = Some(action);
        self
    }

    pub fn checks(mut self, checks: impl IntoIterator<Item = Check>) -> Case {
        self.checks.extend(checks);
        self
    }
}

/// Every case, in the order they run.
pub fn cases(host: &Host) -> Vec<Case> {
    let mut cases = vec![seed_facts(host)];
    cases.extend(capabilities_felt());
    cases.push(all_capabilities_kept(host));
    cases.push(minimal(host));
    cases.push(without_pid_namespace(host));
    cases.extend(exit_statuses());
    cases.extend(signal_forwarding());
    cases.extend(pipes());
    cases.extend(refusals());
    cases.extend(bad_configs(host));
    cases.push(lifecycle_and_joins());
    cases.extend(deaths());
    cases.extend(stale_nspid(host));
    cases.push(concurrent_starts());
    cases.extend(crate::cgroups::cases());
    cases.extend(crate::network::cases());
    cases.extend(crate::protect::cases());
    cases
}

/// One run of the seed sample, and everything the probe saw in it.
fn seed_facts(host: &Host) -> Case {
    let demands = Demands::of(SEED);
    let mut checks = vec![Check::exit("seed/exit-status", 0)];
    checks.extend(hostname_and_environment_checks("seed", &demands));
    checks.extend([
        Check::on_facts("seed/pid-1", |f| expect_eq(1, f.pid)),
        Check::on_facts("seed/ppid-0", |f| expect_eq(0, f.ppid)),
        Check::on_facts("seed/uid-0", |f| expect_eq(0, f.uid)),
        Check::on_facts("seed/gid-0", |f| expect_eq(0, f.gid)),
        Check::on_facts("seed/cwd", |f| expect_eq("/", &f.cwd)),
    ]);
    checks.extend(namespace_checks("seed", &demands, host));
    checks.extend(dropped_capability_checks("seed", &demands));
    checks.extend(kept_capability_checks("seed", &demands, host));
    checks.extend(rootfs_checks("seed", &demands, host));
    checks.extend(dev_checks("seed"));
    checks.push(fds_only_stdio_check("seed"));
    Case::probe("seed", SEED, &["facts"]).checks(checks)
}

/// The config's hostname and exactly its environment.
fn hostname_and_environment_checks(prefix: &str, demands: &Demands) -> [Check; 2] {
    let hostname = demands.hostname.clone().unwrap_or_default();
    let environment = demands.environment.clone();
    [
        Check::on_facts(format!("{prefix}/hostname"), move |f| {
            expect_eq(hostname.as_str(), f.hostname.as_str())
        }),
        Check::on_facts(format!("{prefix}/env-exact"), move |f| {
            expect_eq(&environment, &f.environment)
        }),
    ]
}

/// No fd but 0, 1 and 2 reaches the command.
fn fds_only_stdio_check(prefix: &str) -> Check {
    Check::on_facts(format!("{prefix}/fds-only-stdio"), |f| {
        let numbers: Vec<i32> = f.fds.iter().map(|fd| fd.fd).collect();
        if numbers == [0, 1, 2] {
            return Ok(());
        }
        let open: Vec<String> = f
            .fds
            .iter()
            .map(|fd| format!("{} -> {}", fd.fd, fd.target))
            .collect();
        Err(mismatch("fds 0, 1, 2", open.join(", ")))
    })
}

/// Each listed namespace is new (differs from the driver's); each unlisted one is shared.
fn namespace_checks(prefix: &str, demands: &Demands, host: &Host) -> Vec<Check> {
    NAMESPACES
        .iter()
        .map(|&(name, flag)| {
            let hosts = host.namespaces.get(name).cloned().unwrap_or_default();
            if demands.has_namespace(flag) {
                Check::on_facts(format!("{prefix}/ns-new/{name}"), move |f| {
                    let saw = f.namespaces.get(name).map_or("nothing", String::as_str);
                    if saw == hosts || !saw.starts_with(name) {
                        Err(mismatch(
                            format!("a new {name} namespace, not {hosts}"),
                            saw,
                        ))
                    } else {
                        Ok(())
                    }
                })
            } else {
                Check::on_facts(format!("{prefix}/ns-shared/{name}"), move |f| {
                    expect_eq(Some(&hosts), f.namespaces.get(name))
                })
            }
        })
        .collect()
}

/// Every dropped capability is absent from each of the five sets.
fn dropped_capability_checks(prefix: &str, demands: &Demands) -> Vec<Check> {
    [
        "bounding",
        "permitted",
        "effective",
        "inheritable",
        "ambient",
    ]
    .into_iter()
    .map(|set| {
        let dropped = demands.dropped.clone();
        Check::on_facts(format!("{prefix}/caps-dropped/{set}"), move |f| {
            let caps = f.capabilities.set(set).expect("one of the five sets");
            let still: Vec<&str> = dropped
                .iter()
                .filter(|c| caps.contains(c))
                .map(String::as_str)
                .collect();
            if still.is_empty() {
                Ok(())
            } else {
                Err(mismatch(
                    format!(
                        "none of the {} dropped capabilities in {set}",
                        dropped.len()
                    ),
                    format!("{} still there ({})", still.join(" "), caps.hex),
                ))
            }
        })
    })
    .collect()
}

/// Every capability the config does not drop stays in the bounding, permitted and effective
/// sets, as far as the driver itself has it.
fn kept_capability_checks(prefix: &str, demands: &Demands, host: &Host) -> Vec<Check> {
    let host_sets = [
        ("bounding", &host.capabilities.bounding),
        ("permitted", &host.capabilities.permitted),
        ("effective", &host.capabilities.effective),
    ];
    host_sets
        .into_iter()
        .map(|(set, hosts)| {
            let kept: Vec<String> = hosts
                .names
                .iter()
                .filter(|c| !demands.drops(c))
                .cloned()
                .collect();
            Check::on_facts(format!("{prefix}/caps-kept/{set}"), move |f| {
                let caps = f.capabilities.set(set).expect("one of the five sets");
                let lost: Vec<&str> = kept
                    .iter()
                    .filter(|c| !caps.contains(c))
                    .map(String::as_str)
                    .collect();
                if lost.is_empty() {
                    Ok(())
                } else {
                    Err(mismatch(
                        format!("all {} kept capabilities in {set}", kept.len()),
                        format!("{} missing ({})", lost.join(" "), caps.hex),
                    ))
                }
            })
        })
        .collect()
}

/// The case directory is the root, with the kernel filesystems on it and nothing of the host.
fn rootfs_checks(prefix: &str, demands: &Demands, host: &Host) -> Vec<Check> {
    let mut checks = vec![
        Check::on_facts(format!("{prefix}/rootfs/case-dir-is-root"), |f| {
            let wanted = [CASE_MARKER, "container.json", "probe"];
            let missing: Vec<&str> = wanted
                .into_iter()
                .filter(|w| !f.root_entries.iter().any(|e| e == w))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(mismatch(
                    format!("{wanted:?} in /"),
                    format!("{:?} in /", f.root_entries),
                ))
            }
        }),
        Check::on_run_and_facts(format!("{prefix}/mounts/root-is-case-dir"), |run, f| {
            let Some(root) = f.mounts.iter().rfind(|m| m.mount_point == "/") else {
                return Err(mismatch("a mount at /", "none"));
            };
            // The mount's root is the case directory's path inside its own filesystem.
            if run.dir.ends_with(root.root.trim_start_matches('/')) && root.root != "/" {
                Ok(())
            } else {
                Err(mismatch(
                    format!("{} mounted at /", run.dir.display()),
                    format!("{} of {} ({})", root.root, root.device, root.fstype),
                ))
            }
        }),
        mount_check(format!("{prefix}/mounts/proc"), "/proc", "proc", None),
        mount_check(
            format!("{prefix}/mounts/sys-readonly"),
            "/sys",
            "sysfs",
            Some(("ro", |m| m.has_option("ro"))),
        ),
        mount_check(format!("{prefix}/mounts/dev-tmpfs"), "/dev", "tmpfs", None),
        mount_check(
            format!("{prefix}/mounts/dev-pts"),
            "/dev/pts",
            "devpts",
            Some(("ptmxmode=666", |m| m.has_super_option("ptmxmode=666"))),
        ),
        mount_check(
            format!("{prefix}/mounts/dev-shm"),
            "/dev/shm",
            "tmpfs",
            None,
        ),
    ];
    if demands.has_namespace("NEWIPC") {
        checks.push(mount_check(
            format!("{prefix}/mounts/dev-mqueue"),
            "/dev/mqueue",
            "mqueue",
            None,
        ));
    }
    let host_root = host.root_mount.clone();
    checks.push(Check::on_facts(
        format!("{prefix}/mounts/no-host-root"),
        move |f| {
            let Some(host_root) = &host_root else {
                return Ok(());
            };
            let leaked: Vec<&Mount> = f
                .mounts
                .iter()
                .filter(|m| m.device == host_root.device && m.root == "/")
                .collect();
            match leaked.first() {
                None => Ok(()),
                Some(m) => Err(mismatch(
                    format!(
                        "no mount of the host's root ({} {})",
                        host_root.device, host_root.fstype
                    ),
                    format!("it at {}", m.mount_point),
                )),
            }
        },
    ));
    checks.push(Check::on_facts(
        format!("{prefix}/mounts/old-root-detached"),
        |f| {
            let kernel_dirs = ["/proc", "/sys", "/dev"];
            let stray: Vec<&str> = f
                .mounts
                .iter()
                .map(|m| m.mount_point.as_str())
                .filter(|point| {
                    *point != "/"
                        && !kernel_dirs
                            .iter()
                            .any(|dir| std::path::Path::new(point).starts_with(dir))
                })
                .collect();
            if stray.is_empty() {
                Ok(())
            } else {
                Err(mismatch(
                    "mounts only at / and under /proc /sys /dev",
                    format!("{stray:?}"),
                ))
            }
        },
    ));
    checks
}

/// A property a mount must have: its description and its test.
type MountProperty = (&'static str, fn(&Mount) -> bool);

/// The topmost mount at `point` has `fstype` and, if given, a property (described, tested).
fn mount_check(
    name: String,
    point: &'static str,
    fstype: &'static str,
    property: Option<MountProperty>,
) -> Check {
    Check::on_facts(name, move |f| {
        let Some(mount) = f.mounts.iter().rfind(|m| m.mount_point == point) else {
            return Err(mismatch(
                format!("{fstype} on {point}"),
                "nothing mounted there",
            ));
        };
        let has_property = property.is_none_or(|(_, test)| test(mount));
        if mount.fstype == fstype && has_property {
            return Ok(());
        }
        let wanted = match property {
            Some((what, _)) => format!("{fstype} ({what}) on {point}"),
            None => format!("{fstype} on {point}"),
        };
        Err(mismatch(
            wanted,
            format!(
                "{} {} ({})",
                mount.fstype, mount.options, mount.super_options
            ),
        ))
    })
}

/// The device nodes and symlinks of `/dev`.
fn dev_checks(prefix: &str) -> Vec<Check> {
    let nodes = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx|/dev/pts/ptmx"),
    ];
    let describe = |node: &DevNode| match &node.target {
        Some(target) => format!("{} -> {target}", node.kind),
        None => format!("{} {}:{}", node.kind, node.major, node.minor),
    };
    let node_checks = nodes.into_iter().map(move |(name, major, minor)| {
        Check::on_facts(format!("{prefix}/dev/{name}"), move |f| {
            let node = device(f, name);
            if (node.kind.as_str(), node.major, node.minor) == ("char", major, minor) {
                Ok(())
            } else {
                Err(mismatch(format!("char {major}:{minor}"), describe(&node)))
            }
        })
    });
    let link_checks = links.into_iter().map(move |(name, targets)| {
        Check::on_facts(format!("{prefix}/dev/{name}-link"), move |f| {
            let node = device(f, name);
            let points_right = node
                .target
                .as_deref()
                .is_some_and(|t| targets.split('|').any(|want| want == t));
            if node.kind == "symlink" && points_right {
                Ok(())
            } else {
                Err(mismatch(format!("symlink -> {targets}"), describe(&node)))
            }
        })
    });
    node_checks.chain(link_checks).collect()
}

fn device(facts: &Facts, name: &str) -> DevNode {
    facts.devices.get(name).cloned().unwrap_or_default()
}

/// Dropped capabilities are felt: the operations they guard fail; kept ones still work.
fn capabilities_felt() -> Vec<Case> {
    let denied = [
        ("mount", "SYS_ADMIN"),
        ("mknod", "MKNOD"),
        ("sethostname", "SYS_ADMIN"),
    ];
    let mut cases: Vec<Case> = denied
        .into_iter()
        .map(|(op, capability)| {
            Case::probe(format!("seed-try-{op}"), SEED, &["try", op]).checks([Check::on_output(
                format!("seed/denied/{op}"),
                move |r: &TryResult| match (r.ok, r.error.as_deref()) {
                    (false, Some("EPERM")) => Ok(()),
                    (true, _) => Err(mismatch(
                        format!("EPERM without CAP_{capability}"),
                        "it worked",
                    )),
                    (false, error) => Err(mismatch("EPERM", error.unwrap_or("no errno"))),
                },
            )])
        })
        .collect();
    cases.push(
        Case::probe("seed-try-nice", SEED, &["try", "nice"]).checks([Check::on_output(
            "seed/denied/nice",
            |r: &TryResult| {
                if r.ok {
                    Err(mismatch(
                        "raising priority denied without CAP_SYS_NICE",
                        "it worked",
                    ))
                } else {
                    Ok(())
                }
            },
        )]),
    );
    cases.push(
        Case::probe("seed-try-chroot", SEED, &["try", "chroot"])
            .checks([Check::on_output("seed/allowed/chroot", |r: &TryResult| {
                expect_ok("chroot with CAP_SYS_CHROOT kept", r)
            })]),
    );
    cases.push(
        Case::probe(
            "keep-sys-admin-sethostname",
            "keep-sys-admin",
            &["try", "sethostname"],
        )
        .checks([Check::on_output(
            "keep-sys-admin/sethostname-allowed",
            |r: &TryResult| {
                expect_ok(
                    "sethostname in the new UTS namespace with SYS_ADMIN kept",
                    r,
                )
            },
        )]),
    );
    cases
}

fn expect_ok(what: &str, result: &TryResult) -> Verdict {
    if result.ok {
        Ok(())
    } else {
        Err(mismatch(
            what,
            result.error.as_deref().unwrap_or("failure without errno"),
        ))
    }
}

/// With nothing dropped, the container keeps every capability the driver has.
fn all_capabilities_kept(host: &Host) -> Case {
    let demands = Demands::of("all-caps-kept");
    Case::probe("all-caps-kept", "all-caps-kept", &["facts"]).checks(kept_capability_checks(
        "all-caps-kept",
        &demands,
        host,
    ))
}

/// Only a mount namespace: everything else is the host's.
fn minimal(host: &Host) -> Case {
    let demands = Demands::of("minimal");
    let hostname = host.hostname.clone();
    let mut checks = namespace_checks("minimal", &demands, host);
    checks.push(Check::on_facts("minimal/hostname-shared", move |f| {
        expect_eq(&hostname, &f.hostname)
    }));
    checks.push(Check::on_facts("minimal/env-empty", |f| {
        expect_eq(&Vec::<String>::new(), &f.environment)
    }));
    checks.push(Check::on_facts(
        "minimal/mounts/no-mqueue-without-newipc",
        |f| match f.mounts.iter().find(|m| m.fstype == "mqueue") {
            None => Ok(()),
            Some(m) => Err(mismatch(
                "no mqueue mount (the IPC namespace is the host's)",
                format!("mqueue on {}", m.mount_point),
            )),
        },
    ));
    Case::probe("minimal", "minimal", &["facts"]).checks(checks)
}

/// The seed without NEWPID: the pid namespace is the host's, so the probe is not PID 1.
fn without_pid_namespace(host: &Host) -> Case {
    let demands = Demands::of("no-pid");
    let mut checks = namespace_checks("no-pid", &demands, host);
    checks.push(Check::on_facts("no-pid/pid-not-1", |f| match f.pid {
        1 => Err(mismatch("a host pid", 1)),
        _ => Ok(()),
    }));
    Case::probe("no-pid", "no-pid", &["facts"]).checks(checks)
}

/// nsinit's exit status: the command's own, 126, 127, 128+N.
fn exit_statuses() -> Vec<Case> {
    let not_executable = "#!/bin/sh\nexit 0\n";
    vec![
        Case::probe("exit-0", SEED, &["exit", "0"]).checks([
            Check::exit("exit/status-0", 0),
            Check::new("exit/silent-on-success", |run| {
                expect_eq("", run.stdout.as_str())?;
                expect_eq("", run.stderr.as_str())
            }),
        ]),
        Case::probe("exit-7", SEED, &["exit", "7"]).checks([Check::exit("exit/status-7", 7)]),
        Case::probe("exit-segv", SEED, &["segv"])
            .checks([Check::exit("exit/segv-139", 128 + libc::SIGSEGV)]),
        Case::new(
            "exit-not-found",
            ConfigFile::Fixture(SEED),
            &["/no-such-command"],
        )
        .checks([
            Check::exit("exit/not-found-127", 127),
            Check::exit_saying("exit/not-found-names-command", 127, &["no-such-command"]),
        ]),
        Case::new(
            "exit-not-in-path",
            ConfigFile::Fixture(SEED),
            &["no-such-command"],
        )
        .checks([Check::exit("exit/not-in-path-127", 127)]),
        Case::new(
            "exit-not-executable",
            ConfigFile::Fixture(SEED),
            &["/not-executable"],
        )
        .file("/not-executable", not_executable, 0o644)
        .checks([Check::exit("exit/not-executable-126", 126)]),
        Case::probe("exit-sigkill", SEED, &["sleep", "600"])
            .action(Action::KillProbe)
            .checks([Check::exit("exit/sigkill-pid1-137", 128 + libc::SIGKILL)]),
    ]
}

/// Signals sent to nsinit reach the container's PID 1, which has handlers for them.
fn signal_forwarding() -> Vec<Case> {
    [libc::SIGTERM, libc::SIGUSR1, libc::SIGHUP]
        .into_iter()
        .map(|signal| {
            let name = signal_name(signal);
            let lower = name.to_lowercase();
            Case::probe(format!("signal-{lower}"), SEED, &["wait-signal"])
                .action(Action::SignalNsinit(signal))
                .checks([
                    Check::on_output(
                        format!("signal/{lower}/reaches-pid1"),
                        move |r: &SignalReport| expect_eq(name.as_str(), r.signal.as_str()),
                    ),
                    Check::exit(
                        format!("signal/{lower}/exit-{}", WAIT_SIGNAL_EXIT_BASE + signal),
                        WAIT_SIGNAL_EXIT_BASE + signal,
                    ),
                ])
        })
        .collect()
}

/// Plain stdio passes through without a terminal.
fn pipes() -> Vec<Case> {
    vec![
        Case::new("pipe-cat", ConfigFile::Fixture(SEED), &["/bin/cat"])
            .stdin(b"hi\n")
            .checks([Check::new("pipe/stdin-to-cat", |run| {
                expect_exit(run, 0)?;
                expect_stdout(run, "hi\n")
            })]),
        Case::new(
            "pipe-stderr",
            ConfigFile::Fixture(SEED),
            &["/bin/sh", "-c", "echo out; echo err >&2"],
        )
        .checks([Check::new("pipe/stdout-and-stderr-apart", |run| {
            expect_exit(run, 0)?;
            expect_eq(
                ("out\n", "err\n"),
                (run.stdout.as_str(), run.stderr.as_str()),
            )
        })]),
    ]
}

/// Configs nsinit refuses at run time though they are well formed, and a missing config.
fn refusals() -> Vec<Case> {
    vec![
        Case::probe("refuse-no-newns", "no-newns", &["facts"]).checks([
            Check::exit("refuse/no-newns-125", 125),
            Check::exit_saying(
                "refuse/no-newns-names-mount-namespace",
                125,
                &["mount namespace|NEWNS"],
            ),
        ]),
        Case::new(
            "refuse-newuser-without-maps",
            newuser_without_maps(),
            &["/probe", "facts"],
        )
        .checks([
            Check::exit("refuse/newuser-without-maps-125", 125),
            Check::exit_saying(
                "refuse/newuser-without-maps-says-so",
                125,
                &["namespaces", "a new user namespace needs uid_mappings"],
            ),
        ]),
        Case::new("refuse-no-config", ConfigFile::Absent, &["/probe", "facts"]).checks([
            Check::exit("refuse/no-container-json-125", 125),
            Check::exit_saying(
                "refuse/no-container-json-names-file",
                125,
                &["container.json"],
            ),
        ]),
    ]
}

/// Every bad-input case of the config rules: exit 125 and a message naming field and value.
fn bad_configs(host: &Host) -> Vec<Case> {
    fixtures::BAD_CASES
        .iter()
        .map(|bad| {
            let short = bad.name.trim_start_matches("bad-");
            let config = harmless_on_the_host(bad.name, host);
            Case::new(bad.name, config, &["/probe", "facts"]).checks([Check::new(
                format!("bad-config/{short}"),
                move |run| {
                    expect_exit(run, 125)
                        .map_err(|m| mismatch(format!("{} for {}", m.expected, bad.what), m.saw))?;
                    match bad.missing_from(&run.stderr) {
                        None => Ok(()),
                        Some(missing) => Err(mismatch(
                            format!("stderr mentioning {missing:?} ({})", bad.what),
                            run.summary(),
                        )),
                    }
                },
            )])
        })
        .collect()
}

/// The `newuser` fixture without its maps: a user namespace nsinit cannot map.
fn newuser_without_maps() -> ConfigFile {
    let text = fixtures::config("newuser").unwrap_or_default();
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(text) else {
        return ConfigFile::Fixture("newuser");
    };
    if let Some(object) = json.as_object_mut() {
        object.remove("uid_mappings");
        object.remove("gid_mappings");
    }
    ConfigFile::Derived(serde_json::to_string_pretty(&json).expect("JSON values serialize"))
}

/// A bad config that a runtime failing to reject it would apply to the host: a hostname
/// without `NEWUTS` renames the host. Such a case gets the host's own hostname, which keeps it
/// just as wrong but changes nothing if it runs.
fn harmless_on_the_host(fixture: &'static str, host: &Host) -> ConfigFile {
    let text = fixtures::config(fixture).unwrap_or_default();
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(text) else {
        return ConfigFile::Fixture(fixture);
    };
    let demands = Demands::of(fixture);
    if demands.hostname.is_none() || demands.has_namespace("NEWUTS") {
        return ConfigFile::Fixture(fixture);
    }
    json["hostname"] = serde_json::Value::String(host.hostname.clone());
    ConfigFile::Derived(serde_json::to_string_pretty(&json).expect("JSON values serialize"))
}

/// A container's life seen from the host (`.nspid`, the record outside the rootfs), and the
/// joins into it: the same namespaces, capabilities, environment and hostname as PID 1,
/// nothing of the host's, and a joining nsinit that never runs from the host's binary.
fn lifecycle_and_joins() -> Case {
    let demands = Demands::of(SEED);
    let mut on_joined_facts = Vec::from(hostname_and_environment_checks("join", &demands));
    on_joined_facts.extend([
        Check::on_facts("join/pid-not-1", |f| match f.pid {
            2.. => Ok(()),
            pid => Err(mismatch(
                "a pid above 1 in the container's pid namespace",
                pid,
            )),
        }),
        Check::on_facts("join/cwd", |f| expect_eq("/", &f.cwd)),
        fds_only_stdio_check("join"),
    ]);
    on_joined_facts.extend(dropped_capability_checks("join", &demands));

    let mut checks = vec![
        Check::on_findings("lifecycle/nspid-written", |l: &Lifecycle| {
            let pid = l.pid1.process.pid;
            match (l.nspid.names(pid), &l.nspid_root) {
                (true, Ok(())) => Ok(()),
                (_, root) => Err(mismatch(
                    format!(
                        "{NSPID} naming PID 1's host pid {pid}, whose root is the case directory"
                    ),
                    format!(
                        "{}; root: {}",
                        l.nspid,
                        root.as_ref()
                            .err()
                            .map_or("the case directory", String::as_str)
                    ),
                )),
            }
        }),
        Check::on_findings("lifecycle/state-outside-rootfs", |l: &Lifecycle| {
            l.record
                .as_ref()
                .map(|_| ())
                .map_err(|why| mismatch("a record naming PID 1 in /run/nsinit/<dev>-<inode>", why))
        }),
        Check::on_findings("lifecycle/nspid-removed", |l: &Lifecycle| {
            match &l.nspid_after {
                Nspid::Missing => Ok(()),
                left => Err(mismatch(
                    format!("no {NSPID} once PID 1 exited and nsinit returned"),
                    format!("{left}; {}", l.first.summary()),
                )),
            }
        }),
        Check::on_findings("join/same-namespaces", |l: &Lifecycle| {
            let facts = facts_of(&l.facts)?;
            expect_eq(&l.pid1.namespaces, &facts.namespaces)
        }),
        Check::on_findings("join/same-capabilities", |l: &Lifecycle| {
            let facts = facts_of(&l.facts)?;
            let pid1 = l
                .pid1
                .capabilities
                .as_ref()
                .map_err(|why| mismatch("PID 1's capabilities", why))?;
            expect_eq(three_sets(pid1), three_sets(&facts.capabilities))
        }),
    ];
    checks.extend(
        on_joined_facts
            .into_iter()
            .map(|check| check.about(|l: &Lifecycle| &l.facts)),
    );
    checks.extend([
        Check::exit("join/exit-status-9", 9).about(|l: &Lifecycle| &l.exit_9),
        Check::exit("join/not-found-127", 127).about(|l: &Lifecycle| &l.missing),
        Check::on_findings("join/proc-self-exe-is-the-trampoline", |l: &Lifecycle| {
            l.shebang.expect_trampoline()
        }),
        Check::on_findings("join/nsinit-outside-the-pid-namespace", |l: &Lifecycle| {
            l.joiner_outside
                .clone()
                .map_err(|saw| mismatch("the joining nsinit in a pid namespace of its own", saw))
        }),
    ]);
    Case::scenario("lifecycle", SEED, lifecycle::lifecycle).checks(checks)
}

/// The bounding, effective and permitted sets, as `/proc/PID/status` prints them.
fn three_sets(capabilities: &CapabilitySets) -> [String; 3] {
    ["bounding", "effective", "permitted"].map(|set| {
        let hex = &capabilities.set(set).expect("one of the five sets").hex;
        format!("{set} {hex}")
    })
}

/// Everything in a container with a pid namespace dies with PID 1, joined commands included,
/// and with a SIGKILLed nsinit. (Without a pid namespace nsinit kills through the cgroup; the
/// cgroup cases check that.)
fn deaths() -> Vec<Case> {
    vec![
        Case::scenario("kill-joined", SEED, lifecycle::joined_dies_with_pid1).checks([
            Check::on_findings("kill/joined-dies-with-pid1", |k: &JoinedKill| {
                let killed = expect_exit(&k.joined, 128 + libc::SIGKILL).is_ok();
                if killed && k.took.is_ok() && !k.joined_alive_after {
                    return Ok(());
                }
                let took = match &k.took {
                    Ok(took) => format!("returned after {:.1}s", took.as_secs_f64()),
                    Err(why) => why.clone(),
                };
                let command = if k.joined_alive_after { "still ran" } else { "was gone" };
                Err(mismatch(
                    format!(
                        "the joined nsinit returning 137 within {}s of PID 1's death, its command gone",
                        lifecycle::PROMPTLY.as_secs()
                    ),
                    format!("{took}; the joined command {command}; {}", k.joined.summary()),
                ))
            }),
        ]),
        Case::scenario("kill-nsinit", SEED, lifecycle::sigkill_nsinit).checks([
            Check::on_findings("kill/sigkill-nsinit", |k: &NsinitKilled| {
                k.pid1_died.as_ref().map(|_| ()).map_err(|why| {
                    mismatch(
                        format!(
                            "PID 1 gone within {}s of SIGKILL to nsinit",
                            lifecycle::PROMPTLY.as_secs()
                        ),
                        why,
                    )
                })
            }),
            Check::on_findings("kill/directory-usable-after", |k: &NsinitKilled| {
                expect_exit(&k.next, 0)?;
                expect_eq(1, facts_of(&k.next)?.pid)
            }),
        ]),
    ]
}

/// A `.nspid` that names a dead pid or a live host process is never joined: nsinit removes it
/// with a one-line notice and starts a fresh container. Nor is one rewritten from inside.
fn stale_nspid(host: &Host) -> Vec<Case> {
    let mut cases = vec![
        planted_nspid("dead-pid", lifecycle::dead_pid_planted, host),
        planted_nspid("host-pid", lifecycle::host_pid_planted, host),
    ];
    cases.push(
        Case::scenario("stale-rewritten", SEED, lifecycle::rewritten_from_inside).checks([
            Check::on_findings("stale/rewritten-from-inside", |r: &Rewritten| {
                if r.nspid != Nspid::File(lifecycle::REWRITTEN_TO.into()) {
                    return Err(mismatch(
                        format!(
                            "{NSPID} rewritten by the container to {:?}",
                            lifecycle::REWRITTEN_TO
                        ),
                        &r.nspid,
                    ));
                }
                expect_exit(&r.next, 0)?;
                let facts = facts_of(&r.next)?;
                let pid1_mnt = r.pid1.namespaces.get("mnt");
                if facts.pid != 1 && facts.namespaces.get("mnt") == pid1_mnt {
                    return Ok(());
                }
                Err(mismatch(
                    format!(
                        "joined into the real container (mnt {}, pid not 1)",
                        pid1_mnt.map_or("?", String::as_str)
                    ),
                    format!(
                        "pid {}, mnt {}",
                        facts.pid,
                        facts.namespaces.get("mnt").map_or("?", String::as_str)
                    ),
                ))
            }),
        ]),
    );
    cases
}

/// A container started where `.nspid` named a process that is no container of this directory.
fn planted_nspid(
    kind: &str,
    play: impl Fn(&mut Stage) -> Result<PlantedNspid, String> + 'static,
    host: &Host,
) -> Case {
    let hosts = host.namespaces.clone();
    Case::scenario(format!("stale-{kind}"), SEED, play).checks([
        Check::on_findings(format!("stale/{kind}"), move |p: &PlantedNspid| {
            let facts = facts_of(&p.run)?;
            let own = |name: &str| facts.namespaces.get(name) != hosts.get(name);
            if facts.pid == 1 && own("mnt") && own("pid") {
                return Ok(());
            }
            Err(mismatch(
                format!(
                    "a fresh container (pid 1, mnt and pid namespaces of its own), not pid {}",
                    p.planted
                ),
                format!(
                    "pid {}, {}, {}",
                    facts.pid,
                    facts.namespaces.get("mnt").map_or("no mnt", String::as_str),
                    facts.namespaces.get("pid").map_or("no pid", String::as_str)
                ),
            ))
        }),
        Check::on_findings(format!("stale/{kind}-notice"), |p: &PlantedNspid| {
            let lines: Vec<&str> = p.run.stderr.lines().collect();
            match lines.as_slice() {
                [line] if line.contains(NSPID) => Ok(()),
                _ => Err(mismatch(
                    format!("one line on stderr naming {NSPID}"),
                    format!("{:?}", p.run.stderr),
                )),
            }
        }),
        Check::on_findings(format!("stale/{kind}-file-replaced"), |p: &PlantedNspid| {
            if p.during.names(p.pid1.pid) && p.after == Nspid::Missing {
                return Ok(());
            }
            Err(mismatch(
                format!(
                    "{NSPID} naming the new PID 1 ({}) while it ran, then none",
                    p.pid1.pid
                ),
                format!("{} while it ran, then {}", p.during, p.after),
            ))
        }),
    ])
}

/// Eight `nsinit exec` started at the same moment in a fresh directory make one container.
fn concurrent_starts() -> Case {
    Case::scenario("concurrent", SEED, lifecycle::concurrent_starts).checks([Check::on_findings(
        "concurrent/one-container",
        |r: &Racers| {
            let mut pid_namespaces = BTreeSet::new();
            let mut pid_1s = 0;
            for run in &r.runs {
                let facts = facts_of(run)?;
                pid_namespaces.insert(facts.namespaces.get("pid").cloned().unwrap_or_default());
                pid_1s += usize::from(facts.pid == 1);
            }
            if pid_namespaces.len() == 1 && pid_1s == 1 {
                return Ok(());
            }
            Err(mismatch(
                format!(
                    "all {} in one pid namespace, exactly one of them pid 1",
                    lifecycle::RACERS
                ),
                format!("{} pid namespaces, {pid_1s} at pid 1", pid_namespaces.len()),
            ))
        },
    )])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn host() -> Host {
        Host::gather().expect("the test process can read its own /proc entries")
    }

    #[test]
    fn check_names_are_unique_and_enough() {
        let cases = cases(&host());
        let names: Vec<&str> = cases
            .iter()
            .flat_map(|case| case.checks.iter().map(|c| c.name.as_str()))
            .collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "duplicate check names");
        assert!(names.len() >= 45, "only {} checks", names.len());
    }

    #[test]
    fn case_names_are_unique_and_fit_a_directory_name() {
        let cases = cases(&host());
        let unique: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(unique.len(), cases.len());
        for case in &cases {
            assert!(
                !case.name.contains('/') && !case.name.is_empty(),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn every_bad_fixture_is_a_check() {
        let cases = cases(&host());
        for bad in fixtures::BAD_CASES {
            let name = format!("bad-config/{}", bad.name.trim_start_matches("bad-"));
            assert!(
                cases
                    .iter()
                    .any(|c| c.checks.iter().any(|check| check.name == name)),
                "{name} missing"
            );
        }
    }

    #[test]
    fn a_hostname_without_newuts_becomes_the_hosts_own() {
        let host = host();
        let ConfigFile::Derived(text) = harmless_on_the_host("bad-hostname-without-newuts", &host)
        else {
            panic!("the fixture was not rewritten");
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["hostname"], host.hostname.as_str());
        assert!(!text.contains("NEWUTS"), "still wrong in the same way");
        assert!(matches!(
            harmless_on_the_host("bad-address", &host),
            ConfigFile::Fixture("bad-address")
        ));
    }

    #[test]
    fn the_seed_demands_come_from_the_fixture() {
        let seed = Demands::of(SEED);
        assert_eq!(seed.hostname.as_deref(), Some("koye"));
        assert_eq!(
            seed.environment[1],
            "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin"
        );
        assert!(seed.has_namespace("NEWPID") && !seed.has_namespace("NEWUSER"));
        assert!(seed.drops("SYS_ADMIN") && seed.drops("MKNOD") && !seed.drops("CHOWN"));
    }
}
