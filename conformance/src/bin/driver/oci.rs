//! The OCI front-end of the suite: each case is a bundle (the case directory as its rootfs,
//! a `config.json` made from `runc spec`'s default with the probe as its process) run by
//! `nsinit-oci --root <the driver's own state dir> run --bundle DIR ID`; the lifecycle case
//! drives `create`, `start`, `state`, `exec`, `kill`, `delete` one by one.
//!
//! Every case puts its container in `/nsinit-conformance-oci/<case>` (`cgroupsPath`), a parent
//! of the suite's own that the case removes, and deletes its container with `--force` when it
//! ends, whatever happened. The joined network namespace is one the driver makes for the case.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use conformance::facts::Mount;
use conformance::oci::{OciFacts, OpResult};
use serde_json::{json, Value};

use crate::check::{expect_eq, expect_exit, mismatch, Check, Verdict};
use crate::harness::{self, Outcome, Run};
use crate::lifecycle::Shebang;
use crate::stage::Stage;
use crate::suite::{Case, ConfigFile};

/// The `nsinit-oci` binary under test, set once from the command line.
static BINARY: OnceLock<PathBuf> = OnceLock::new();

/// Use `path` as the `nsinit-oci` under test.
pub fn use_binary(path: PathBuf) {
    let _ = BINARY.set(path);
}

/// The cgroup parent of every case's container, removed after each case.
const CGROUP_PARENT: &str = "nsinit-conformance-oci";
/// The driver's state root for `nsinit-oci --root`, in the workspace.
const STATE_DIR: &str = "oci-state";
/// Longest any one `nsinit-oci` command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the kernel may take to make a killed container stopped, on a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(5);
/// The container's memory limit (`linux.resources.memory.limit`).
const MEMORY_LIMIT: u64 = 64 << 20;
/// Where the netns-userns case maps the container's ids on the host.
const USERNS_HOST_ID: u32 = 100_000;
/// The open-files limit the user case asks for: soft, hard.
const NOFILE: (u64, u64) = (256, 512);
/// What the sysctl case sets (the defaults of a new namespace differ).
const SYSCTLS: [(&str, &str, &str); 2] = [
    ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward", "1"),
    ("kernel.shmmax", "/proc/sys/kernel/shmmax", "68719476736"),
];

/// Every OCI case, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
        facts_case(),
        mounts_case(),
        user_case(),
        seccomp_case(),
        devices_case(),
        netns_case(),
        netns_userns_case(),
        hooks_case(),
        lifecycle_case(),
    ]
}

/// What one `nsinit-oci run` of a bundle left: the run (the probe's JSON on stdout), the
/// config it ran, and what the case recorded beside it.
pub struct Ran {
    run: Run,
    id: String,
    /// The joined network namespace (`net:[N]`), for the netns case.
    netns: Option<String>,
    /// The hooks' log, for the hooks case.
    hooks_log: Option<String>,
}

impl Ran {
    fn facts(&self) -> Result<OciFacts, crate::check::Mismatch> {
        expect_exit(&self.run, 0)?;
        let line = self.run.stdout.lines().rev().find(|l| !l.trim().is_empty());
        let Some(line) = line else {
            return Err(mismatch("the probe's JSON on stdout", self.run.summary()));
        };
        serde_json::from_str(line).map_err(|e| {
            mismatch(
                "the probe's JSON on stdout",
                format!("{e} in {line:?}; {}", self.run.summary()),
            )
        })
    }
}

/// A check on what `probe oci` printed in a case's run.
fn on_facts(name: &str, verify: impl Fn(&OciFacts) -> Verdict + 'static) -> Check {
    Check::on_findings(format!("oci/{name}"), move |ran: &Ran| {
        verify(&ran.facts()?)
    })
}

/// A check on one operation's outcome.
fn on_op(name: &str, op: &'static str, verify: impl Fn(&OpResult) -> Verdict + 'static) -> Check {
    on_facts(name, move |f| verify(&f.op(op)))
}

/// The operation worked and read `content`.
fn read_as(content: &'static str) -> impl Fn(&OpResult) -> Verdict {
    move |r| match (&r.ok, &r.content) {
        (true, Some(saw)) if saw.trim_end() == content => Ok(()),
        _ => Err(mismatch(
            format!("{} reading {content:?}", r.op),
            describe(r),
        )),
    }
}

/// The operation failed with `errno`.
fn refused_with(errno: &'static str) -> impl Fn(&OpResult) -> Verdict {
    move |r| match r.error.as_deref() {
        Some(e) if e == errno && !r.ok => Ok(()),
        _ => Err(mismatch(
            format!("{} refused with {errno}", r.op),
            describe(r),
        )),
    }
}

fn succeeded(r: &OpResult) -> Verdict {
    match r.ok {
        true => Ok(()),
        false => Err(mismatch(format!("{} to work", r.op), describe(r))),
    }
}

fn describe(r: &OpResult) -> String {
    match (&r.error, &r.content) {
        (Some(e), _) => format!("{}: {e}", r.op),
        (None, Some(content)) => format!("{}: read {content:?}", r.op),
        (None, None) => format!("{}: worked", r.op),
    }
}

/// A case that runs the probe once with `probe oci OPS...` in a bundle whose config is
/// `runc spec`'s, changed by `edit` (which may also prepare the case directory).
fn bundle_case(
    name: &'static str,
    ops: Vec<String>,
    edit: impl Fn(&mut Value, &Path) -> io::Result<()> + 'static,
) -> Case {
    scenario(name, move |stage| {
        let mut config = base_config(stage.dir(), name, &ops);
        edit(&mut config, stage.dir()).map_err(|e| format!("prepare the bundle: {e}"))?;
        run_bundle(stage, name, &config)
    })
}

/// `nsinit-oci run` of `config` as the case's bundle.
fn run_bundle(stage: &Stage, name: &str, config: &Value) -> Result<Ran, String> {
    let oci = Oci::new(stage, name)?;
    oci.write_config(config)?;
    let run = oci.call(&["run", "--bundle", &oci.bundle_arg(), &oci.id]);
    Ok(Ran {
        run,
        id: oci.id.clone(),
        netns: None,
        hooks_log: None,
    })
}

/// A case played on a stage; its config is the `config.json` the play writes.
fn scenario<T: 'static>(
    name: &'static str,
    play: impl Fn(&mut Stage) -> Result<T, String> + 'static,
) -> Case {
    Case {
        config: ConfigFile::Absent,
        ..Case::scenario(format!("oci-{name}"), "minimal", play)
    }
}

/// `runc spec`'s config with the probe as its process (no terminal), the case directory as
/// its rootfs and its container in the suite's cgroup parent.
fn base_config(dir: &Path, name: &str, ops: &[String]) -> Value {
    let text = fixtures::bundle("runc-spec").expect("the runc-spec bundle fixture exists");
    let mut config: Value = serde_json::from_str(text).expect("the runc-spec fixture parses");
    let args: Vec<&str> = ["/probe", "oci"]
        .into_iter()
        .chain(ops.iter().map(String::as_str))
        .collect();
    config["process"]["args"] = json!(args);
    config["process"]["terminal"] = json!(false);
    config["root"]["path"] = json!(dir);
    config["linux"]["cgroupsPath"] = json!(cgroup_path(name));
    config
}

fn cgroup_path(name: &str) -> String {
    format!("/{CGROUP_PARENT}/{name}")
}

/// The probe's process as the config lists it, for the environment and capability checks.
fn runc_spec() -> Value {
    let text = fixtures::bundle("runc-spec").expect("the runc-spec bundle fixture exists");
    serde_json::from_str(text).expect("the runc-spec fixture parses")
}

/// An array of strings of `runc spec`'s config, at `pointer`.
fn spec_strings(pointer: &str) -> Vec<String> {
    runc_spec()
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn owned(ops: &[&str]) -> Vec<String> {
    ops.iter().map(|op| op.to_string()).collect()
}

fn push(config: &mut Value, pointer: &str, item: Value) {
    if let Some(Value::Array(items)) = config.pointer_mut(pointer) {
        items.push(item);
    }
}

// ---------------------------------------------------------------------------------------
// The probe's view under runc spec's config, plus sysctl, cgroup and paths from the config.

/// `runc spec`'s config with a memory limit, two sysctls, and a masked file, a masked
/// directory and a read-only directory of its own; the rootfs writable.
fn facts_case() -> Case {
    const OPS: &[&str] = &[
        "read:/proc/cmdline",
        "read:/masked-dir",
        "write:/ro-dir/new",
        "write:/rw-new",
        "write:/proc/sys/kernel/domainname",
        "read:/proc/sys/net/ipv4/ip_forward",
        "read:/proc/sys/kernel/shmmax",
    ];
    let mut checks = vec![
        Check::on_findings("oci/exit-status", |r: &Ran| expect_exit(&r.run, 0)),
        on_facts("hostname", |f| expect_eq("runc", f.facts.hostname.as_str())),
        on_facts("env-exact", |f| {
            expect_eq(&spec_strings("/process/env"), &f.facts.environment)
        }),
        on_facts("pid-1", |f| expect_eq(1, f.facts.pid)),
        on_facts("cwd", |f| expect_eq("/", f.facts.cwd.as_str())),
        on_facts("fds-only-stdio", |f| {
            let fds: Vec<i32> = f.facts.fds.iter().map(|fd| fd.fd).collect();
            expect_eq(vec![0, 1, 2], fds)
        }),
        on_facts("no-new-privs", |f| expect_eq("1", f.status("NoNewPrivs"))),
        on_facts("seccomp-none", |f| expect_eq("0", f.status("Seccomp"))),
    ];
    checks.extend(namespace_checks());
    checks.extend(capability_checks());
    checks.extend(mount_checks());
    checks.extend([
        on_facts("masked/default-paths", |f| {
            let seen: Vec<String> = spec_strings("/linux/maskedPaths")
                .into_iter()
                .filter(|path| Path::new(path).exists())
                .filter_map(|path| {
                    let read = f.op(&format!("read:{path}"));
                    let empty = read.ok && read.content.as_deref() == Some("");
                    match (mount_at(f, &path), empty) {
                        (Some(_), true) => None,
                        (None, _) => Some(format!("nothing on {path}")),
                        (Some(_), false) => Some(describe(&read)),
                    }
                })
                .collect();
            match seen.is_empty() {
                true => Ok(()),
                false => Err(mismatch(
                    "an empty mask mounted on every masked path the host has",
                    seen.join("; "),
                )),
            }
        }),
        on_op("masked/config-file", "read:/proc/cmdline", read_as("")),
        on_op("masked/config-dir", "read:/masked-dir", read_as("")),
        on_facts("readonly/default-paths", |f| {
            let writable: Vec<String> = spec_strings("/linux/readonlyPaths")
                .into_iter()
                .filter(|path| Path::new(path).exists())
                .filter(|path| !mount_at(f, path).is_some_and(|m| m.has_option("ro")))
                .collect();
            match writable.is_empty() {
                true => Ok(()),
                false => Err(mismatch(
                    "a read-only mount on every read-only path the host has",
                    format!("none on {writable:?}"),
                )),
            }
        }),
        on_op(
            "readonly/proc-sys-write",
            "write:/proc/sys/kernel/domainname",
            refused_with("EROFS"),
        ),
        on_facts("readonly/config-dir", |f| {
            refused_with("EROFS")(&f.op("write:/ro-dir/new"))?;
            succeeded(&f.op("write:/rw-new"))
        }),
        on_op(
            "sysctl/net.ipv4.ip_forward",
            "read:/proc/sys/net/ipv4/ip_forward",
            read_as(SYSCTLS[0].2),
        ),
        on_op(
            "sysctl/kernel.shmmax",
            "read:/proc/sys/kernel/shmmax",
            read_as(SYSCTLS[1].2),
        ),
        on_facts("cgroup/placement", |f| {
            let wanted = cgroup_path("facts");
            let lines = &f.facts.cgroup.lines;
            let memory_line = lines.iter().find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == "memory"))
            });
            let line = memory_line.or_else(|| lines.iter().find(|l| l.starts_with("0::")));
            match line.and_then(|l| l.splitn(3, ':').nth(2)) {
                Some(path) if path == wanted => Ok(()),
                _ => Err(mismatch(
                    format!("the memory (v1) or unified (v2) group {wanted}"),
                    format!("/proc/self/cgroup: {lines:?}"),
                )),
            }
        }),
        on_facts("cgroup/memory-limit", |f| {
            expect_eq(
                Some(MEMORY_LIMIT.to_string()),
                f.facts.cgroup.memory_limit.clone(),
            )
        }),
    ]);
    let mut ops = owned(OPS);
    ops.extend(
        spec_strings("/linux/maskedPaths")
            .iter()
            .map(|p| format!("read:{p}")),
    );
    bundle_case("facts", ops, |config, dir| {
        fs::create_dir_all(dir.join("masked-dir"))?;
        fs::write(dir.join("masked-dir/secret"), "hidden\n")?;
        fs::create_dir_all(dir.join("ro-dir"))?;
        config["root"]["readonly"] = json!(false);
        config["linux"]["resources"]["memory"] = json!({ "limit": MEMORY_LIMIT });
        config["linux"]["sysctl"] = SYSCTLS
            .iter()
            .map(|(name, _, value)| (name.to_string(), json!(value)))
            .collect();
        push(config, "/linux/maskedPaths", json!("/proc/cmdline"));
        push(config, "/linux/maskedPaths", json!("/masked-dir"));
        push(config, "/linux/readonlyPaths", json!("/ro-dir"));
        Ok(())
    })
    .checks(checks)
}

/// The topmost mount at `point`.
fn mount_at<'a>(f: &'a OciFacts, point: &str) -> Option<&'a Mount> {
    f.facts.mounts.iter().rfind(|m| m.mount_point == point)
}

/// The config's five namespaces are new; the user and cgroup namespaces are the driver's.
fn namespace_checks() -> Vec<Check> {
    let new = ["pid", "net", "ipc", "uts", "mnt"];
    ["pid", "net", "ipc", "uts", "mnt", "user", "cgroup"]
        .into_iter()
        .map(|name| {
            let fresh = new.contains(&name);
            let kind = if fresh { "ns-new" } else { "ns-shared" };
            on_facts(&format!("{kind}/{name}"), move |f| {
                let hosts = fs::read_link(format!("/proc/self/ns/{name}"))
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let saw = f.facts.namespaces.get(name).cloned().unwrap_or_default();
                match (fresh, saw == hosts, saw.starts_with(name)) {
                    (true, false, true) | (false, true, _) => Ok(()),
                    (true, ..) => Err(mismatch(
                        format!("a new {name} namespace, not {hosts}"),
                        saw,
                    )),
                    (false, ..) => Err(mismatch(format!("the driver's {hosts}"), saw)),
                }
            })
        })
        .collect()
}

/// Each capability set is exactly the config's (an absent set is empty; ambient as the
/// kernel allows it).
fn capability_checks() -> Vec<Check> {
    [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ]
    .into_iter()
    .map(|set| {
        let listed = |set: &str| -> BTreeSet<String> {
            spec_strings(&format!("/process/capabilities/{set}"))
                .into_iter()
                .map(|c| c.trim_start_matches("CAP_").to_string())
                .collect()
        };
        // The kernel keeps an ambient capability only while it is permitted and inheritable
        // (runc spec's ambient list, without an inheritable one, gives none).
        let wanted = match set {
            "ambient" => listed("ambient")
                .intersection(&listed("inheritable"))
                .filter(|c| listed("permitted").contains(*c))
                .cloned()
                .collect(),
            _ => listed(set),
        };
        on_facts(&format!("caps/{set}"), move |f| {
            let caps = f.facts.capabilities.set(set).expect("one of the five sets");
            let saw: BTreeSet<String> = caps
                .names
                .iter()
                .map(|c| c.trim_start_matches("CAP_").to_string())
                .collect();
            expect_eq(&wanted, &saw)
        })
    })
    .collect()
}

/// The config's mounts, with the types and options it lists.
fn mount_checks() -> Vec<Check> {
    let mounts: [(&str, &str, &[&str], &[&str]); 7] = [
        ("proc", "/proc", &["proc"], &[]),
        ("dev", "/dev", &["tmpfs"], &["nosuid"]),
        ("dev-pts", "/dev/pts", &["devpts"], &["nosuid", "noexec"]),
        (
            "dev-shm",
            "/dev/shm",
            &["tmpfs"],
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "dev-mqueue",
            "/dev/mqueue",
            &["mqueue"],
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "sys",
            "/sys",
            &["sysfs"],
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        (
            "sys-fs-cgroup",
            "/sys/fs/cgroup",
            &["cgroup2", "cgroup", "tmpfs"],
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ];
    mounts
        .into_iter()
        .map(|(name, point, types, options)| {
            on_facts(&format!("mounts/{name}"), move |f| {
                mount_has(f, point, types, options)
            })
        })
        .collect()
}

/// The topmost mount at `point` is one of `types` (any when empty) with every one of
/// `options`.
fn mount_has(f: &OciFacts, point: &str, types: &[&str], options: &[&str]) -> Verdict {
    let kind = match types {
        [] => "a mount".to_string(),
        _ => types.join(" or "),
    };
    let wanted = format!("{kind} on {point} with {options:?}");
    let Some(mount) = mount_at(f, point) else {
        return Err(mismatch(wanted, "nothing mounted there"));
    };
    let type_ok = types.is_empty() || types.contains(&mount.fstype.as_str());
    if type_ok && options.iter().all(|o| mount.has_option(o)) {
        return Ok(());
    }
    Err(mismatch(
        wanted,
        format!(
            "{} {} ({})",
            mount.fstype, mount.options, mount.super_options
        ),
    ))
}

// ---------------------------------------------------------------------------------------
// Mount options, user, rlimits, seccomp, devices.

/// A tmpfs with `ro,nosuid,nodev,noexec`, a read-only bind, a recursively read-only rbind,
/// on a read-only rootfs.
fn mounts_case() -> Case {
    const OPS: &[&str] = &[
        "read:/mnt/bind/hello",
        "write:/mnt/bind/hello",
        "write:/mnt/opts/new",
        "write:/mnt/rro/sub/new",
        "write:/new-in-root",
    ];
    bundle_case("mounts", owned(OPS), |config, dir| {
        for point in ["mnt/opts", "mnt/bind", "mnt/rro", "bind-src", "rro-src/sub"] {
            fs::create_dir_all(dir.join(point))?;
        }
        fs::write(dir.join("bind-src/hello"), "bound\n")?;
        let source = |name: &str| dir.join(name).to_string_lossy().into_owned();
        push(
            config,
            "/mounts",
            json!({ "destination": "/mnt/opts", "type": "tmpfs", "source": "tmpfs",
                    "options": ["ro", "nosuid", "nodev", "noexec", "size=64k"] }),
        );
        push(
            config,
            "/mounts",
            json!({ "destination": "/mnt/bind", "type": "bind", "source": source("bind-src"),
                    "options": ["bind", "ro"] }),
        );
        push(
            config,
            "/mounts",
            json!({ "destination": "/mnt/rro", "type": "bind", "source": source("rro-src"),
                    "options": ["rbind", "rro"] }),
        );
        Ok(())
    })
    .checks([
        on_facts("mounts/tmpfs-ro-nosuid-nodev-noexec", |f| {
            mount_has(
                f,
                "/mnt/opts",
                &["tmpfs"],
                &["ro", "nosuid", "nodev", "noexec"],
            )?;
            refused_with("EROFS")(&f.op("write:/mnt/opts/new"))
        }),
        on_facts("mounts/bind-ro", |f| {
            mount_has(f, "/mnt/bind", &[], &["ro"])?;
            read_as("bound")(&f.op("read:/mnt/bind/hello"))?;
            refused_with("EROFS")(&f.op("write:/mnt/bind/hello"))
        }),
        on_facts("mounts/rbind-rro", |f| {
            mount_has(f, "/mnt/rro", &[], &["ro"])?;
            refused_with("EROFS")(&f.op("write:/mnt/rro/sub/new"))
        }),
        on_op(
            "rootfs-readonly",
            "write:/new-in-root",
            refused_with("EROFS"),
        ),
    ])
}

/// A user with supplementary groups and an open-files limit.
fn user_case() -> Case {
    bundle_case("user", Vec::new(), |config, _| {
        config["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20] });
        // No capability at all: the process, uid 1000 by then, still reaches its start gate.
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            config["process"]["capabilities"][set] = json!([]);
        }
        config["process"]["rlimits"] =
            json!([{ "type": "RLIMIT_NOFILE", "soft": NOFILE.0, "hard": NOFILE.1 }]);
        Ok(())
    })
    .checks([
        on_facts("user/uid", |f| {
            expect_eq("1000 1000 1000 1000", f.status("Uid"))
        }),
        on_facts("user/gid", |f| {
            expect_eq("1000 1000 1000 1000", f.status("Gid"))
        }),
        on_facts("user/additional-gids", |f| {
            expect_eq("10 20", f.status("Groups"))
        }),
        on_facts("rlimit/nofile", |f| {
            let wanted = (NOFILE.0.to_string(), NOFILE.1.to_string());
            expect_eq(Some(wanted), f.nofile.clone())
        }),
    ])
}

/// A seccomp filter refusing `mkdir` with EPERM and allowing everything else.
fn seccomp_case() -> Case {
    bundle_case("seccomp", owned(&["mkdir:/seccomp-dir"]), |config, _| {
        config["root"]["readonly"] = json!(false);
        config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
            ]
        });
        Ok(())
    })
    .checks([
        on_facts("seccomp/filter-mode", |f| {
            expect_eq("2", f.status("Seccomp"))
        }),
        on_op(
            "seccomp/rule-applies",
            "mkdir:/seccomp-dir",
            refused_with("EPERM"),
        ),
    ])
}

/// Two `linux.devices` nodes: one the default rules allow (1:5), one no rule allows (10:200,
/// the tun device, harmless to open).
fn devices_case() -> Case {
    const OPS: &[&str] = &[
        "stat:/dev/oci-zero",
        "stat:/dev/oci-tun",
        "open:/dev/oci-zero",
        "open:/dev/oci-tun",
    ];
    bundle_case("devices", owned(OPS), |config, _| {
        config["linux"]["devices"] = json!([
            { "path": "/dev/oci-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640,
              "uid": 0, "gid": 0 },
            { "path": "/dev/oci-tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666,
              "uid": 0, "gid": 0 }
        ]);
        Ok(())
    })
    .checks([
        on_op(
            "devices/node-created",
            "stat:/dev/oci-tun",
            read_as("char 10:200 mode 666"),
        ),
        on_op(
            "devices/node-mode",
            "stat:/dev/oci-zero",
            read_as("char 1:5 mode 640"),
        ),
        on_op("devices/allowed-opens", "open:/dev/oci-zero", succeeded),
        on_op(
            "devices/denied-does-not-open",
            "open:/dev/oci-tun",
            refused_with("EPERM"),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// A joined network namespace, hooks.

/// The network namespace joined by path: one the driver makes for the case and holds on a
/// thread of its own while the container runs.
fn netns_case() -> Case {
    scenario("netns", |stage| run_in_held_netns(stage, "netns", false))
        .checks([on_facts_with("netns/joined-by-path", joined_the_held_netns)])
}

/// The same, with a new user namespace: a Kubernetes pod with user namespaces, whose network
/// namespace belongs to the host's user namespace. Root of its new user namespace only, the
/// container's process may not enter it itself: nsinit-oci enters it for the clone.
fn netns_userns_case() -> Case {
    scenario("netns-userns", |stage| {
        run_in_held_netns(stage, "netns-userns", true)
    })
    .checks([
        on_facts_with("netns-userns/joined-by-path", joined_the_held_netns),
        // cgroup2 may not be mounted from a new user namespace without a cgroup namespace of
        // its own (v2); v1's hierarchies are bound anyway. Either way: read-only, there.
        on_facts_with("netns-userns/cgroup-read-only", |_, f| {
            match mount_at(f, "/sys/fs/cgroup") {
                Some(m) if m.options.split(',').any(|o| o == "ro") => Ok(()),
                Some(m) => Err(mismatch("/sys/fs/cgroup read-only", m.options.clone())),
                None => Err(mismatch("a mount at /sys/fs/cgroup", "none")),
            }
        }),
        on_facts_with("netns-userns/user-namespace-new", |_, f| {
            let host = fs::read_link("/proc/self/ns/user")
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let saw = f.facts.namespaces.get("user").cloned().unwrap_or_default();
            match !saw.is_empty() && saw != host {
                true => Ok(()),
                false => Err(mismatch(format!("a user namespace other than {host}"), saw)),
            }
        }),
    ])
}

/// `run` of the base bundle with its network namespace joined by path (one held for the
/// case); with `userns`, in a new user namespace mapped to [`USERNS_HOST_ID`] too.
fn run_in_held_netns(stage: &Stage, name: &str, userns: bool) -> Result<Ran, String> {
    let held = HeldNetns::create()?;
    let mut config = base_config(stage.dir(), name, &[]);
    if let Some(Value::Array(namespaces)) = config.pointer_mut("/linux/namespaces") {
        for ns in namespaces.iter_mut().filter(|ns| ns["type"] == "network") {
            ns["path"] = json!(held.path);
        }
        if userns {
            namespaces.push(json!({ "type": "user" }));
        }
    }
    if userns {
        let map = json!([{ "containerID": 0, "hostID": USERNS_HOST_ID, "size": 65536 }]);
        config["linux"]["uidMappings"] = map.clone();
        config["linux"]["gidMappings"] = map;
    }
    let ran = run_bundle(stage, name, &config)?;
    Ok(Ran {
        netns: Some(held.link.clone()),
        ..ran
    })
}

fn joined_the_held_netns(ran: &Ran, f: &OciFacts) -> Verdict {
    let wanted = ran.netns.clone().unwrap_or_default();
    let saw = f.facts.namespaces.get("net").cloned().unwrap_or_default();
    expect_eq(wanted, saw)
}

fn on_facts_with(name: &str, verify: impl Fn(&Ran, &OciFacts) -> Verdict + 'static) -> Check {
    Check::on_findings(format!("oci/{name}"), move |ran: &Ran| {
        verify(ran, &ran.facts()?)
    })
}

/// A network namespace of the driver's, held by a thread that stays in it until dropped.
struct HeldNetns {
    /// `/proc/<driver>/task/<thread>/ns/net`.
    path: String,
    /// Its `net:[N]`.
    link: String,
    release: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeldNetns {
    fn create() -> Result<HeldNetns, String> {
        let (tell, told) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: unshare takes only flags; CLONE_NEWNET moves this thread alone into a
            // new network namespace, which is the point of the thread.
            let made = match unsafe { libc::unshare(libc::CLONE_NEWNET) } {
                0 => {
                    // SAFETY: gettid has no arguments and cannot fail.
                    let tid = unsafe { libc::gettid() };
                    let path = format!("/proc/{}/task/{tid}/ns/net", std::process::id());
                    match fs::read_link(&path) {
                        Ok(link) => Ok((path, link.to_string_lossy().into_owned())),
                        Err(e) => Err(format!("read {path}: {e}")),
                    }
                }
                _ => Err(format!(
                    "unshare a network namespace: {}",
                    io::Error::last_os_error()
                )),
            };
            let _ = tell.send(made);
            let _ = released.recv();
        });
        let (path, link) = told
            .recv()
            .map_err(|_| "the network namespace's thread died".to_string())??;
        Ok(HeldNetns {
            path,
            link,
            release: Some(release),
            thread: Some(thread),
        })
    }
}

impl Drop for HeldNetns {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The hooks, in the order they run, and the status each one finds in the state on stdin.
const HOOKS: [(&str, &str); 6] = [
    ("prestart", "creating"),
    ("createRuntime", "creating"),
    ("createContainer", "creating"),
    ("startContainer", "created"),
    ("poststart", "running"),
    ("poststop", "stopped"),
];

/// Whether a hook runs in the container's namespaces (its state's pid is the container's
/// view of it) rather than the runtime's.
fn in_container(hook: &str) -> bool {
    matches!(hook, "createContainer" | "startContainer")
}

/// Every hook appends its name and the state JSON from its stdin to one log the driver reads:
/// the host's commands to the case directory's `hooks.log`, the container's to `/hooks.log`,
/// the same file (the case directory is the rootfs). A `createContainer` hook's path
/// resolves on the host and it runs in the container, so it is the rootfs' own busybox.
fn hooks_case() -> Case {
    scenario("hooks", |stage| {
        let log = stage.dir().join("hooks.log");
        let mut config = base_config(stage.dir(), "hooks", &[]);
        config["root"]["readonly"] = json!(false);
        for (hook, _) in HOOKS {
            let (path, file) = match hook {
                "createContainer" => (stage.dir().join("bin/busybox"), PathBuf::from("/hooks.log")),
                "startContainer" => (PathBuf::from("/bin/sh"), PathBuf::from("/hooks.log")),
                _ => (PathBuf::from("/bin/sh"), log.clone()),
            };
            let script = format!("printf '%s %s\\n' {hook} \"$(cat)\" >> {}", file.display());
            config["hooks"][hook] = json!([{ "path": path, "args": ["sh", "-c", script] }]);
        }
        let ran = run_bundle(stage, "hooks", &config)?;
        let hooks_log = fs::read_to_string(&log).unwrap_or_default();
        Ok(Ran {
            hooks_log: Some(hooks_log),
            ..ran
        })
    })
    .checks([
        Check::on_findings("oci/hooks/run-exit-status", |r: &Ran| {
            expect_exit(&r.run, 0)
        }),
        Check::on_findings("oci/hooks/order", |r: &Ran| {
            let order: Vec<&str> = hook_states(r).iter().map(|(hook, _)| *hook).collect();
            let wanted: Vec<&str> = HOOKS.iter().map(|(hook, _)| *hook).collect();
            expect_eq(wanted, order)
        }),
        Check::on_findings("oci/hooks/state-on-stdin", |r: &Ran| {
            let states = hook_states(r);
            for (hook, status) in HOOKS {
                let state = states.iter().find(|(name, _)| *name == hook);
                let state = state.map_or(&Value::Null, |(_, state)| state);
                if state["id"] != r.id.as_str() || state["status"] != status {
                    return Err(mismatch(
                        format!("{hook}'s stdin: the state of {} ({status})", r.id),
                        state,
                    ));
                }
            }
            Ok(())
        }),
        // runtime-spec: the pid as the runtime sees it for hooks in its namespaces, as the
        // container sees it (1, its own pid namespace) for hooks in the container's.
        Check::on_findings("oci/hooks/pid-as-each-side-sees-it", |r: &Ran| {
            let states = hook_states(r);
            let host_pid = states
                .iter()
                .find(|(hook, _)| *hook == "createRuntime")
                .and_then(|(_, state)| state["pid"].as_i64());
            for (hook, state) in &states {
                let wanted = match *hook {
                    "poststop" => Some(0),
                    hook if in_container(hook) => Some(1),
                    _ => host_pid.filter(|pid| *pid > 1),
                };
                if wanted.is_none() || state["pid"].as_i64() != wanted {
                    return Err(mismatch(format!("{hook}'s pid: {wanted:?}"), &state["pid"]));
                }
            }
            Ok(())
        }),
    ])
}

/// Each line of the hooks' log: the hook's name and the state it read.
fn hook_states(r: &Ran) -> Vec<(&str, Value)> {
    let log = r.hooks_log.as_deref().unwrap_or_default();
    log.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(hook, json)| (hook, serde_json::from_str(json).unwrap_or(Value::Null)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The lifecycle, one command at a time.

/// What the lifecycle scenario saw at each step.
pub struct Lifecycle {
    create: Run,
    pid_file: Option<i32>,
    created: Run,
    start: Run,
    running: Run,
    start_again: Run,
    delete_running: Run,
    still_running: Run,
    exec_7: Run,
    shebang: Result<Shebang, String>,
    pid_member: Result<PidMember, String>,
    ps: Run,
    list: Run,
    pause: Run,
    paused: Run,
    resume: Run,
    resumed: Run,
    kill: Run,
    stopped: Result<Run, String>,
    kill_stopped: Run,
    exec_stopped: Run,
    delete: Run,
    gone: Run,
    state_left: bool,
}

fn lifecycle_case() -> Case {
    let state_is = |name: &str, pick: fn(&Lifecycle) -> &Run, status: &'static str| {
        Check::on_findings(format!("oci/lifecycle/{name}"), move |l: &Lifecycle| {
            expect_state(pick(l), status, l.pid_file)
        })
    };
    let exit_0 = |name: &str, pick: fn(&Lifecycle) -> &Run| {
        Check::on_findings(format!("oci/lifecycle/{name}"), move |l: &Lifecycle| {
            expect_exit(pick(l), 0)
        })
    };
    let refused = |name: &str, pick: fn(&Lifecycle) -> &Run| {
        Check::on_findings(format!("oci/lifecycle/{name}"), move |l: &Lifecycle| {
            expect_failure(pick(l))
        })
    };
    scenario("lifecycle", lifecycle).checks([
        exit_0("create", |l| &l.create),
        Check::on_findings("oci/lifecycle/pid-file", |l: &Lifecycle| match l.pid_file {
            Some(pid) if pid > 1 => Ok(()),
            _ => Err(mismatch(
                "a pid in the --pid-file once create returned",
                "none",
            )),
        }),
        state_is("state-created", |l| &l.created, "created"),
        exit_0("start", |l| &l.start),
        state_is("state-running", |l| &l.running, "running"),
        refused("start-twice-refused", |l| &l.start_again),
        refused("delete-running-refused", |l| &l.delete_running),
        state_is(
            "running-after-refused-delete",
            |l| &l.still_running,
            "running",
        ),
        Check::on_findings("oci/exec/exit-status-passed", |l: &Lifecycle| {
            expect_exit(&l.exec_7, 7)
        }),
        Check::on_findings("oci/pid-joined/create-runs-unwritable", |l: &Lifecycle| {
            let member = l
                .pid_member
                .as_ref()
                .map_err(|why| mismatch("a member created into the pid namespace", why))?;
            member.expect_unwritable()
        }),
        Check::on_findings(
            "oci/exec/proc-self-exe-is-the-trampoline",
            |l: &Lifecycle| {
                let shebang = l
                    .shebang
                    .as_ref()
                    .map_err(|why| mismatch("an exec to look at", why))?;
                shebang.expect_trampoline()
            },
        ),
        Check::on_findings("oci/ps/lists-pid", |l: &Lifecycle| {
            expect_exit(&l.ps, 0)?;
            let pids: Vec<i64> = serde_json::from_str(l.ps.stdout.trim()).unwrap_or_default();
            match l.pid_file {
                Some(pid) if pids.contains(&i64::from(pid)) => Ok(()),
                _ => Err(mismatch(
                    format!("a JSON array holding {:?}", l.pid_file),
                    l.ps.stdout.trim(),
                )),
            }
        }),
        Check::on_findings("oci/list/names-id", |l: &Lifecycle| {
            expect_exit(&l.list, 0)?;
            match l
                .list
                .stdout
                .lines()
                .any(|line| line.trim() == id("lifecycle"))
            {
                true => Ok(()),
                false => Err(mismatch(id("lifecycle"), l.list.stdout.trim())),
            }
        }),
        exit_0("pause", |l| &l.pause),
        state_is("state-paused", |l| &l.paused, "paused"),
        exit_0("resume", |l| &l.resume),
        state_is("state-resumed", |l| &l.resumed, "running"),
        exit_0("kill", |l| &l.kill),
        Check::on_findings("oci/lifecycle/state-stopped", |l: &Lifecycle| {
            let stopped = l.stopped.as_ref().map_err(|why| mismatch("stopped", why))?;
            expect_state(stopped, "stopped", None)
        }),
        refused("kill-stopped-refused", |l| &l.kill_stopped),
        Check::on_findings("oci/exec/refused-when-stopped", |l: &Lifecycle| {
            expect_failure(&l.exec_stopped)
        }),
        exit_0("delete", |l| &l.delete),
        Check::on_findings("oci/lifecycle/state-after-delete", |l: &Lifecycle| {
            expect_failure(&l.gone)?;
            match l.gone.stderr.contains("does not exist") {
                true => Ok(()),
                false => Err(mismatch(
                    "stderr saying \"does not exist\"",
                    l.gone.summary(),
                )),
            }
        }),
        Check::on_findings("oci/lifecycle/no-state-left", |l: &Lifecycle| {
            match l.state_left {
                false => Ok(()),
                true => Err(mismatch("no state directory once deleted", "one left")),
            }
        }),
    ])
}

/// The executable of an exec'ing nsinit-oci while its command runs (CVE-2019-5736): it is
/// visible inside the container, so it must not be the host's binary as such.
/// CVE-2019-5736 in a pod sharing its processes: a second container created into the
/// lifecycle container's pid namespace waits at its gate running nsinit-oci, visible there.
/// What it runs must refuse writes through `/proc/PID/exe`: a sealed memfd copy or a
/// read-only overlayfs view, never the host's binary.
struct PidMember {
    create: Run,
    /// Where `/proc/PID/exe` of the waiting process pointed, and whether that is a memfd or
    /// on a read-only overlayfs mount.
    exe: Result<(String, bool), String>,
    /// Opening that executable for writing, from the host.
    write_refused: bool,
    binary_unchanged: bool,
}

impl PidMember {
    fn watch(stage: &Stage, oci: &Oci, pod: Option<i32>) -> Result<PidMember, String> {
        let pod = pod.ok_or("no pid of the lifecycle container")?;
        let before = fs::read(&oci.binary).map_err(|e| format!("read the binary: {e}"))?;
        let bundle = oci.scratch.join("pid-member");
        fs::create_dir_all(&bundle).map_err(|e| format!("create {}: {e}", bundle.display()))?;
        let mut config = base_config(stage.dir(), "pid-member", &[]);
        config["process"]["args"] = json!(["/probe", "exit", "0"]);
        if let Some(Value::Array(namespaces)) = config.pointer_mut("/linux/namespaces") {
            for ns in namespaces.iter_mut().filter(|ns| ns["type"] == "pid") {
                ns["path"] = json!(format!("/proc/{pod}/ns/pid"));
            }
        }
        let text = serde_json::to_string_pretty(&config).expect("JSON values serialize");
        fs::write(bundle.join("config.json"), text).map_err(|e| e.to_string())?;
        let id = format!("{}-member", oci.id);
        let pid_path = oci.scratch.join("pid-member.pid");
        let bundle_arg = bundle.to_string_lossy().into_owned();
        let pid_arg = pid_path.to_string_lossy().into_owned();
        let create = oci.call(&[
            "create",
            "--bundle",
            &bundle_arg,
            "--pid-file",
            &pid_arg,
            &id,
        ]);
        let exe = fs::read_to_string(&pid_path)
            .map_err(|e| format!("read the pid file: {e}"))
            .map(|pid| format!("/proc/{}/exe", pid.trim()));
        let seen = exe.as_ref().map_err(Clone::clone).and_then(|exe| {
            let link = fs::read_link(exe).map_err(|e| format!("readlink {exe}: {e}"))?;
            let link = link.to_string_lossy().into_owned();
            let unwritable = link.starts_with("/memfd:") || on_readonly_overlay(exe);
            Ok((link, unwritable))
        });
        let write_refused = exe
            .as_ref()
            .is_ok_and(|exe| fs::OpenOptions::new().append(true).open(exe).is_err());
        let _ = oci.call(&["delete", "--force", &id]);
        let _ = fs::remove_dir_all(&bundle);
        Ok(PidMember {
            create,
            exe: seen,
            write_refused,
            binary_unchanged: fs::read(&oci.binary).is_ok_and(|now| now == before),
        })
    }

    fn expect_unwritable(&self) -> Verdict {
        expect_exit(&self.create, 0)?;
        let (link, unwritable) = self
            .exe
            .as_ref()
            .map_err(|why| mismatch("the waiting process's executable", why))?;
        match *unwritable && self.write_refused && self.binary_unchanged {
            true => Ok(()),
            false => Err(mismatch(
                "the waiting process runs a /memfd: copy or a read-only overlay view, writes refused, the binary unchanged",
                format!(
                    "exe -> {link} (unwritable: {unwritable}); write refused: {}; binary unchanged: {}",
                    self.write_refused, self.binary_unchanged
                ),
            )),
        }
    }
}

/// Whether `path` is on a read-only overlayfs mount (`statfs(2)`, `statvfs(3)`).
fn on_readonly_overlay(path: &str) -> bool {
    let Ok(path) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: both are plain integers; all zeros is a valid value.
    let (mut fs, mut vfs): (libc::statfs, libc::statvfs) = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string, and buffers of the types the calls fill.
    let ok = unsafe {
        libc::statfs(path.as_ptr(), &mut fs) == 0 && libc::statvfs(path.as_ptr(), &mut vfs) == 0
    };
    ok && fs.f_type == libc::OVERLAYFS_SUPER_MAGIC && vfs.f_flag & libc::ST_RDONLY != 0
}

fn lifecycle(stage: &mut Stage) -> Result<Lifecycle, String> {
    let mut config = base_config(stage.dir(), "lifecycle", &[]);
    config["process"]["args"] = json!(["/probe", "sleep", "600"]);
    let oci = Oci::new(stage, "lifecycle")?;
    oci.write_config(&config)?;
    let pid_path = oci.scratch.join(format!("{}.pid", oci.id));
    let id = oci.id.as_str();
    let create = oci.call(&[
        "create",
        "--bundle",
        &oci.bundle_arg(),
        "--pid-file",
        &pid_path.to_string_lossy(),
        id,
    ]);
    let pid_file = fs::read_to_string(&pid_path)
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let _ = fs::remove_file(&pid_path);
    let created = oci.call(&["state", id]);
    let start = oci.call(&["start", id]);
    let running = oci.call(&["state", id]);
    let start_again = oci.call(&["start", id]);
    let delete_running = oci.call(&["delete", id]);
    let still_running = oci.call(&["state", id]);
    let exec_7 = oci.call(&["exec", id, "/probe", "exit", "7"]);
    let pid_member = PidMember::watch(stage, &oci, pid_file);
    let shebang = Shebang::try_with(stage.dir(), &oci.binary, |script| {
        oci.call(&["exec", id, script])
    });
    let ps = oci.call(&["ps", "--format", "json", id]);
    let list = oci.call(&["list", "-q"]);
    let pause = oci.call(&["pause", id]);
    let paused = oci.call(&["state", id]);
    let resume = oci.call(&["resume", id]);
    let resumed = oci.call(&["state", id]);
    let kill = oci.call(&["kill", id, "KILL"]);
    let by = Instant::now() + PROMPTLY;
    let stopped = stage.until_by(by, "the state to say stopped", || {
        let state = oci.call(&["state", id]);
        (status_of(&state).as_deref() == Some("stopped")).then_some(state)
    });
    let kill_stopped = oci.call(&["kill", id, "KILL"]);
    let exec_stopped = oci.call(&["exec", id, "/probe", "exit", "0"]);
    let delete = oci.call(&["delete", id]);
    let gone = oci.call(&["state", id]);
    let state_left = oci.root.join(id).exists();
    Ok(Lifecycle {
        create,
        pid_file,
        created,
        start,
        running,
        start_again,
        delete_running,
        still_running,
        exec_7,
        shebang,
        pid_member,
        ps,
        list,
        pause,
        paused,
        resume,
        resumed,
        kill,
        stopped,
        kill_stopped,
        exec_stopped,
        delete,
        gone,
        state_left,
    })
}

/// `state` printed this status, and the recorded pid when `pid` is given.
fn expect_state(run: &Run, status: &str, pid: Option<i32>) -> Verdict {
    expect_exit(run, 0)?;
    let state: Value = serde_json::from_str(run.stdout.trim()).unwrap_or(Value::Null);
    let saw_pid = state["pid"].as_i64();
    let pid_ok = pid.is_none_or(|pid| saw_pid == Some(i64::from(pid)));
    if state["status"] == status && pid_ok {
        return Ok(());
    }
    let wanted = match pid {
        Some(pid) => format!("status {status}, pid {pid} (the pid file's)"),
        None => format!("status {status}"),
    };
    Err(mismatch(wanted, run.stdout.trim()))
}

fn status_of(run: &Run) -> Option<String> {
    let state: Value = serde_json::from_str(run.stdout.trim()).ok()?;
    state["status"].as_str().map(String::from)
}

/// The command exited non-zero (and was not killed or timed out).
fn expect_failure(run: &Run) -> Verdict {
    match run.outcome {
        Outcome::Exited(code) if code != 0 => Ok(()),
        _ => Err(mismatch("a non-zero exit", run.summary())),
    }
}

// ---------------------------------------------------------------------------------------
// Running nsinit-oci.

fn id(case: &str) -> String {
    format!("ociconf-{case}")
}

/// `nsinit-oci` with the driver's state root, for one case's container. Dropping it deletes
/// the container (`--force`) and removes the case's cgroup parent and the empty state root.
struct Oci {
    binary: PathBuf,
    root: PathBuf,
    /// Where command output goes (the workspace).
    scratch: PathBuf,
    bundle: PathBuf,
    id: String,
}

impl Oci {
    fn new(stage: &Stage, case: &str) -> Result<Oci, String> {
        let binary = BINARY
            .get()
            .cloned()
            .ok_or("no nsinit-oci binary given (--nsinit-oci)")?;
        let scratch = stage
            .dir()
            .parent()
            .ok_or("the case directory has no parent")?
            .to_path_buf();
        let root = scratch.join(STATE_DIR);
        fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        Ok(Oci {
            binary,
            root,
            scratch,
            bundle: stage.dir().to_path_buf(),
            id: id(case),
        })
    }

    fn bundle_arg(&self) -> String {
        self.bundle.to_string_lossy().into_owned()
    }

    fn write_config(&self, config: &Value) -> Result<(), String> {
        let text = serde_json::to_string_pretty(config).expect("JSON values serialize");
        let path = self.bundle.join("config.json");
        fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// `nsinit-oci --root ROOT ARGS...`, stdin closed, stdout and stderr to files (a
    /// container started by `create` keeps them; a pipe would stay open), killed at
    /// [`CALL_TIMEOUT`].
    fn call(&self, args: &[&str]) -> Run {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        let out = self.scratch.join(format!("oci-call-{n}.out"));
        let err = self.scratch.join(format!("oci-call-{n}.err"));
        let run = self.call_into(args, &out, &err);
        let _ = fs::remove_file(&out);
        let _ = fs::remove_file(&err);
        run
    }

    fn call_into(&self, args: &[&str], out: &Path, err: &Path) -> Run {
        let not_run = |why: String| Run::not_run(&self.bundle, why);
        let (stdout, stderr) = match (fs::File::create(out), fs::File::create(err)) {
            (Ok(stdout), Ok(stderr)) => (stdout, stderr),
            (Err(e), _) | (_, Err(e)) => return not_run(format!("create output files: {e}")),
        };
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return not_run(format!("cannot start {}: {e}", self.binary.display())),
        };
        let started = Instant::now();
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Outcome::from(status),
                Ok(None) if started.elapsed() >= CALL_TIMEOUT => {
                    harness::kill_tree(child.id() as i32);
                    let _ = child.wait();
                    break Outcome::TimedOut(started.elapsed());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => break Outcome::NotRun(format!("wait for nsinit-oci: {e}")),
            }
        };
        let mut run = Run::not_run(&self.bundle, String::new());
        run.outcome = outcome;
        run.stdout = fs::read_to_string(out).unwrap_or_default();
        run.stderr = format!(
            "nsinit-oci {}: {}",
            args.join(" "),
            fs::read_to_string(err).unwrap_or_default()
        );
        run
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        let dir = self.root.join(&self.id);
        if dir.exists() {
            let _ = self.call(&["delete", "--force", &self.id]);
        }
        if let Err(why) = remove_cgroup_parent() {
            println!("# warning: {why}");
        }
        let _ = fs::remove_dir(&self.root);
    }
}

/// Remove [`CGROUP_PARENT`] from every cgroup hierarchy, retrying briefly while the kernel
/// still counts a group below it.
fn remove_cgroup_parent() -> Result<(), String> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(1);
    for mount in Mount::parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
    {
        let parent = Path::new(&mount.mount_point).join(CGROUP_PARENT);
        loop {
            let result = remove_groups(&parent);
            match result {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(format!("remove the cgroup {}: {e}", parent.display())),
            }
        }
    }
    Ok(())
}

/// `rmdir` a group after its child groups (a group's files are not removable; its child
/// directories are groups).
fn remove_groups(group: &Path) -> io::Result<()> {
    for entry in fs::read_dir(group)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_groups(&entry.path())?;
        }
    }
    fs::remove_dir(group)
}
