//! Device rules on this host's real hierarchies, as root: a group per mechanism (the v1
//! `devices` controller; a v2 device program on the cgroup2 mount, which works on a hybrid
//! host too), the rules applied, and a probe process placed in the group reporting what it
//! could open and make. Each test works under a parent group of its own,
//! `nsinit-test-<pid>-<test>`, kills only the probe it spawned, and removes every group.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write as _};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fixtures::harness::{require, Ran, Skip, Trial};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::Pid;
use nsinit::cgroups::{default_rules, Cgroup, DevicePolicy, DeviceRule, Hierarchy, Limits};
use nsinit::sys;

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        default_rules_on_v1_open_only_the_dev_set,
        default_rules_on_v2_open_only_the_dev_set,
        an_allow_by_default_list_opens_planted_nodes_but_the_denied_one_on_v1_and_v2,
        v1_devices_list_is_exactly_the_default_allowlist,
        v2_applying_again_replaces_the_program_and_removing_the_group_frees_it,
        cost_per_start,
        nodev_cost_in_a_private_mount_namespace,
    ]
}

const PYTHON: &str = "/usr/bin/python3";

/// Waits for a line on stdin (it is in its group by then), then tries each step on the nodes
/// in the directory it is given and prints `<step> ok` or `<step> <ERRNO NAME>` per step.
/// Opens are non-blocking, so a tty node cannot hold it up.
const PROBE: &str = r#"
import errno, os, stat, sys
sys.stdin.readline()
d = sys.argv[1]
def attempt(step, f):
    try:
        f()
        print(step, "ok")
    except OSError as e:
        print(step, errno.errorcode[e.errno])
def opener(name, flags=os.O_RDONLY):
    return lambda: os.close(os.open(os.path.join(d, name), flags | os.O_NONBLOCK))
attempt("open-kmsg", opener("kmsg"))
attempt("open-loop-control", opener("loop-control", os.O_RDWR))
attempt("open-null", opener("null", os.O_RDWR))
attempt("open-loop0", opener("loop0"))
attempt("open-pts", opener("pts-99", os.O_RDWR))
attempt("mknod-kmsg", lambda: os.mknod(os.path.join(d, "made-kmsg"), stat.S_IFCHR | 0o600, os.makedev(1, 11)))
attempt("open-made-kmsg", opener("made-kmsg"))
attempt("mknod-loop0", lambda: os.mknod(os.path.join(d, "made-loop0"), stat.S_IFBLK | 0o600, os.makedev(7, 0)))
attempt("openpty", lambda: [os.close(fd) for fd in os.openpty()])
"#;

/// What the probe reported: step → `ok` or an errno name.
type Report = BTreeMap<String, String>;

/// Which hierarchy a test puts its group in.
#[derive(Clone, Copy, Debug)]
enum Mechanism {
    V1,
    V2,
}

/// The hierarchy for `mechanism` on this host, or why this host cannot run the test.
fn host(mechanism: Mechanism) -> Result<Hierarchy, Skip> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Skip(
            "this test needs root (it makes cgroups and device nodes)".into(),
        ));
    }
    if !Path::new(PYTHON).exists() {
        return Err(Skip(format!("the probe needs {PYTHON}")));
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    match mechanism {
        Mechanism::V1 => {
            let Ok(Hierarchy::V1 { controllers }) = Hierarchy::from_mountinfo(&mountinfo) else {
                return Err(Skip("no cgroup v1 hierarchy on this host".into()));
            };
            let Some(mount) = controllers.get("devices") else {
                return Err(Skip(
                    "the cgroup v1 devices controller is not mounted".into(),
                ));
            };
            Ok(Hierarchy::V1 {
                controllers: [("devices".to_string(), mount.clone())].into(),
            })
        }
        // The cgroup2 mount, also beside v1 controllers (hybrid): device programs attach to
        // cgroup2 directories whatever the controllers.
        Mechanism::V2 => {
            let root = mountinfo.lines().find_map(|line| {
                let (mount, fs) = line.split_once(" - ")?;
                let point = mount.split(' ').nth(4)?;
                fs.starts_with("cgroup2 ").then(|| PathBuf::from(point))
            });
            match root {
                Some(root) => Ok(Hierarchy::V2 { root }),
                None => Err(Skip("cgroup2 is not mounted on this host".into())),
            }
        }
    }
}

/// A test's own parent group and its probes; dropping it kills the probes (by pid) and
/// removes the group and the parent, also after a failed assertion.
struct Scratch {
    h: Hierarchy,
    parent: PathBuf,
    probes: Vec<Child>,
}

impl Scratch {
    fn new(h: &Hierarchy, test: &str) -> Scratch {
        Scratch {
            h: h.clone(),
            parent: PathBuf::from(format!("nsinit-test-{}-{test}", std::process::id())),
            probes: Vec::new(),
        }
    }

    fn group(&self) -> PathBuf {
        self.parent.join("c1")
    }

    fn mount(&self) -> PathBuf {
        match &self.h {
            Hierarchy::V2 { root } => root.clone(),
            Hierarchy::V1 { controllers } => controllers["devices"].clone(),
        }
    }

    /// Run the probe on the nodes in `nodes` from inside `group`.
    fn probe(&mut self, group: &Cgroup, nodes: &Path) -> Report {
        let child = Command::new(PYTHON)
            .args(["-c", PROBE])
            .arg(nodes)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the probe");
        let pid = Pid::from_raw(child.id() as i32);
        self.probes.push(child);
        group.attach(pid).unwrap();
        let mut child = self.probes.pop().unwrap();
        child.stdin.take().unwrap().write_all(b"\n").unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "probe: {:?}", output.status);
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let (step, result) = line.split_once(' ').unwrap();
                (step.to_string(), result.to_string())
            })
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for probe in &mut self.probes {
            let _ = probe.kill();
            let _ = probe.wait();
        }
        let parent = self.mount().join(&self.parent);
        for dir in [parent.join("c1"), parent] {
            let deadline = Instant::now() + Duration::from_secs(2);
            while fs::remove_dir(&dir).is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY))
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// A temp dir holding the nodes the probe tries: /dev/kmsg (c 1:11), /dev/loop-control
/// (c 10:237), /dev/null (c 1:3), a pty slave (c 136:99), /dev/loop0 (b 7:0), made by the
/// test (root, outside the group), as nodes planted in a rootfs would be.
fn planted_nodes() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind, major, minor) in [
        ("kmsg", SFlag::S_IFCHR, 1, 11),
        ("loop-control", SFlag::S_IFCHR, 10, 237),
        ("null", SFlag::S_IFCHR, 1, 3),
        ("pts-99", SFlag::S_IFCHR, 136, 99),
        ("loop0", SFlag::S_IFBLK, 7, 0),
    ] {
        let path = dir.path().join(name);
        mknod(
            &path,
            kind,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
    }
    dir
}

/// Make the group, apply `rules`, run the probe in it.
fn probe_with(mechanism: Mechanism, test: &str, rules: &[DeviceRule]) -> Result<Report, Skip> {
    let h = host(mechanism)?;
    let mut scratch = Scratch::new(&h, test);
    let group = Cgroup::create(&h, &scratch.group(), &Limits::default()).unwrap();
    group.apply_device_rules(rules).unwrap();
    let nodes = planted_nodes();
    Ok(scratch.probe(&group, nodes.path()))
}

/// What the default rules must let a process do, and refuse it, on either mechanism.
fn assert_default_rules_hold(report: &Report) {
    let expect = |step: &str, result: &str| {
        assert_eq!(
            report.get(step).map(String::as_str),
            Some(result),
            "{step}: {report:?}"
        );
    };
    // Planted nodes outside the /dev set do not open.
    expect("open-kmsg", "EPERM");
    expect("open-loop-control", "EPERM");
    expect("open-loop0", "EPERM");
    // Making any node is allowed (m), opening what was made is not.
    expect("mknod-kmsg", "ok");
    expect("open-made-kmsg", "EPERM");
    expect("mknod-loop0", "ok");
    // The /dev set opens wherever its node is.
    expect("open-null", "ok");
    expect("openpty", "ok");
    // 136:* is allowed: the cgroup lets the open through to the tty layer, which has no
    // pty 99 behind a node outside devpts (ENXIO or EIO, never EPERM).
    assert_ne!(report["open-pts"], "EPERM", "{report:?}");
}

fn default_rules_on_v1_open_only_the_dev_set() -> Ran {
    let report = probe_with(Mechanism::V1, "devices-v1", &default_rules())?;
    assert_default_rules_hold(&report);
    Ok(())
}

fn default_rules_on_v2_open_only_the_dev_set() -> Ran {
    let report = probe_with(Mechanism::V2, "devices-v2", &default_rules())?;
    assert_default_rules_hold(&report);
    Ok(())
}

/// The probe sees the difference: on a list that allows by default, planted nodes open and
/// only the denied one does not, for mknod either. Guards the tests above against passing
/// for a reason other than the rules (and runs the allow-by-default path of both
/// mechanisms: `a` to `devices.allow` then denies; a program whose blocks deny).
fn an_allow_by_default_list_opens_planted_nodes_but_the_denied_one_on_v1_and_v2() -> Ran {
    let rules: Vec<DeviceRule> = serde_json::from_str(
        r#"[{"allow": true}, {"allow": false, "type": "c", "major": 1, "minor": 11}]"#,
    )
    .unwrap();
    for mechanism in [Mechanism::V1, Mechanism::V2] {
        let test = format!("devices-open-{mechanism:?}");
        let Ok(report) = probe_with(mechanism, &test, &rules) else {
            continue;
        };
        let result = |step: &str| report[step].as_str();
        assert_eq!(
            result("open-loop-control"),
            "ok",
            "{mechanism:?}: {report:?}"
        );
        assert_eq!(result("open-null"), "ok", "{mechanism:?}: {report:?}");
        assert_eq!(result("open-kmsg"), "EPERM", "{mechanism:?}: {report:?}");
        assert_eq!(result("mknod-kmsg"), "EPERM", "{mechanism:?}: {report:?}");
        assert_eq!(result("mknod-loop0"), "ok", "{mechanism:?}: {report:?}");
    }
    Ok(())
}

fn v1_devices_list_is_exactly_the_default_allowlist() -> Ran {
    let h = host(Mechanism::V1)?;
    let scratch = Scratch::new(&h, "devices-list");
    let group = Cgroup::create(&h, &scratch.group(), &Limits::default()).unwrap();
    let list = scratch.mount().join(scratch.group()).join("devices.list");
    // A new group starts with its parent's list: here the root's.
    assert_eq!(fs::read_to_string(&list).unwrap(), "a *:* rwm\n");
    group.apply_device_rules(&default_rules()).unwrap();
    insta::assert_snapshot!(fs::read_to_string(&list).unwrap(), @r"
    c *:* m
    b *:* m
    c 1:3 rwm
    c 1:5 rwm
    c 1:7 rwm
    c 1:8 rwm
    c 1:9 rwm
    c 5:0 rwm
    c 5:1 rwm
    c 5:2 rwm
    c 136:* rwm
    ");
    // Applying again resets first: the same list, nothing left over.
    let narrower: Vec<DeviceRule> = default_rules()[..4].to_vec();
    group.apply_device_rules(&narrower).unwrap();
    assert_eq!(
        fs::read_to_string(&list).unwrap(),
        "c *:* m\nb *:* m\nc 1:3 rwm\n"
    );
    Ok(())
}

/// The ids of the device programs attached to the group directory `dir`.
fn attached(dir: &Path) -> Vec<u32> {
    let fd = fs::File::open(dir).unwrap();
    let mut ids = [0u32; sys::BPF_CGROUP_MAX_PROGS];
    let n = sys::bpf_prog_query(fd.as_fd(), sys::BPF_CGROUP_DEVICE, &mut ids).unwrap();
    ids[..n].to_vec()
}

fn v2_applying_again_replaces_the_program_and_removing_the_group_frees_it() -> Ran {
    let h = host(Mechanism::V2)?;
    let scratch = Scratch::new(&h, "devices-program");
    let group = Cgroup::create(&h, &scratch.group(), &Limits::default()).unwrap();
    let dir = scratch.mount().join(scratch.group());
    group.apply_device_rules(&default_rules()).unwrap();
    let first = attached(&dir);
    assert_eq!(first.len(), 1, "{first:?}");
    group.apply_device_rules(&default_rules()).unwrap();
    let second = attached(&dir);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second, "a new program replaced the first");
    // The first is freed once detached: our fd was its only other reference.
    let gone =
        |id: u32| sys::bpf_prog_get_fd_by_id(id).is_err_and(|e| e.kind() == ErrorKind::NotFound);
    assert!(gone(first[0]), "program {} still loaded", first[0]);
    // Removing the group frees the attached program (asynchronously, as the kernel releases
    // the group): nothing was pinned.
    group.remove().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(second[0]) {
        assert!(
            Instant::now() < deadline,
            "program {} still loaded 5 s after its group went",
            second[0]
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Median and 90th percentile of `runs` timings of `f`, after 5 warm-up runs; `f` times
/// its own part and returns it.
fn timed(runs: usize, mut f: impl FnMut() -> Duration) -> (Duration, Duration) {
    for _ in 0..5 {
        f();
    }
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    (times[runs / 2], times[runs * 9 / 10])
}

fn report(what: &str, (median, p90): (Duration, Duration)) {
    println!(
        "cost {what:<58} median {:>7.1} us  p90 {:>7.1} us",
        median.as_secs_f64() * 1e6,
        p90.as_secs_f64() * 1e6
    );
}

/// What each device mechanism adds to a container start on this host, and the `nodev`
/// remount of the rootfs bind that would stop planted nodes instead. Run by hand:
/// `NSINIT_TIMING=1 cargo test --release -p nsinit --test it devices::cost -- --nocapture`.
fn cost_per_start() -> Ran {
    require(
        std::env::var_os(TIMING).is_some(),
        "timing, run by hand with NSINIT_TIMING=1 and --release --nocapture",
    )?;
    const RUNS: usize = 50;
    let rules = default_rules();
    if let Ok(h) = host(Mechanism::V1) {
        let scratch = Scratch::new(&h, "devices-cost-v1");
        report(
            "v1 mkdir + rmdir of the devices group (made today already)",
            timed(RUNS, || {
                let start = Instant::now();
                Cgroup::create(&h, &scratch.group(), &Limits::default())
                    .unwrap()
                    .remove()
                    .unwrap();
                start.elapsed()
            }),
        );
        report(
            "v1 apply default rules (policy + 12 writes)",
            timed(RUNS, || {
                let group = Cgroup::create(&h, &scratch.group(), &Limits::default()).unwrap();
                let start = Instant::now();
                group.apply_device_rules(&rules).unwrap();
                let took = start.elapsed();
                group.remove().unwrap();
                took
            }),
        );
    }
    if let Ok(h) = host(Mechanism::V2) {
        let scratch = Scratch::new(&h, "devices-cost-v2");
        let dir = scratch.mount().join(scratch.group());
        report(
            "v2 build the program (policy + instructions)",
            timed(RUNS, || {
                let start = Instant::now();
                let program = DevicePolicy::new(&rules).unwrap().program().encode();
                let took = start.elapsed();
                assert_eq!(program.len(), 60);
                took
            }),
        );
        let program = DevicePolicy::new(&rules).unwrap().program().encode();
        let load = || {
            sys::bpf_prog_load(
                sys::BPF_PROG_TYPE_CGROUP_DEVICE,
                &program,
                c"Apache-2.0",
                "nsinit_devices",
                None,
            )
            .unwrap()
        };
        report(
            "v2 load (bpf BPF_PROG_LOAD, verifier)",
            timed(RUNS, || {
                let start = Instant::now();
                let fd = load();
                let took = start.elapsed();
                drop(fd);
                took
            }),
        );
        let deny_all = DevicePolicy::new(&[]).unwrap().program().encode();
        report(
            "v2 load of the 2-instruction deny-all program (fixed cost)",
            timed(RUNS, || {
                let start = Instant::now();
                let fd = sys::bpf_prog_load(
                    sys::BPF_PROG_TYPE_CGROUP_DEVICE,
                    &deny_all,
                    c"Apache-2.0",
                    "nsinit_devices",
                    None,
                )
                .unwrap();
                let took = start.elapsed();
                drop(fd);
                took
            }),
        );
        report(
            "v2 open dir + query + attach (BPF_F_ALLOW_MULTI)",
            timed(RUNS, || {
                let group = Cgroup::create(&h, &scratch.group(), &Limits::default()).unwrap();
                let prog = load();
                let start = Instant::now();
                let fd = fs::File::open(&dir).unwrap();
                let mut ids = [0u32; sys::BPF_CGROUP_MAX_PROGS];
                sys::bpf_prog_query(fd.as_fd(), sys::BPF_CGROUP_DEVICE, &mut ids).unwrap();
                sys::bpf_prog_attach(
                    fd.as_fd(),
                    prog.as_fd(),
                    sys::BPF_CGROUP_DEVICE,
                    sys::BPF_F_ALLOW_MULTI,
                )
                .unwrap();
                let took = start.elapsed();
                drop((fd, prog));
                group.remove().unwrap();
                took
            }),
        );
        report(
            "v2 apply default rules (build + load + attach, all of it)",
            timed(RUNS, || {
                let group = Cgroup::create(&h, &scratch.group(), &Limits::default()).unwrap();
                let start = Instant::now();
                group.apply_device_rules(&rules).unwrap();
                let took = start.elapsed();
                group.remove().unwrap();
                took
            }),
        );
        for (what, attach) in [
            ("v2 rmdir of a group without a program", false),
            ("v2 rmdir of a group with the program", true),
        ] {
            report(
                what,
                timed(RUNS, || {
                    let group = Cgroup::create(&h, &scratch.group(), &Limits::default()).unwrap();
                    if attach {
                        group.apply_device_rules(&rules).unwrap();
                    }
                    let start = Instant::now();
                    group.remove().unwrap();
                    start.elapsed()
                }),
            );
        }
    }
    // The nodev remount needs a mount namespace of its own, which a threaded test process
    // cannot unshare: run its part in this binary again under `unshare -m`.
    if nix::unistd::Uid::effective().is_root() && Path::new("/usr/bin/unshare").exists() {
        let status = Command::new("/usr/bin/unshare")
            .args(["-m", "--propagation", "private"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "devices::nodev_cost_in_a_private_mount_namespace",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ])
            .env(NODEV_CHILD, "1")
            .status()
            .unwrap();
        assert!(status.success());
    }
    Ok(())
}

const NODEV_CHILD: &str = "NSINIT_TEST_NODEV_COST";
const TIMING: &str = "NSINIT_TIMING";

/// The rootfs bind nsinit makes today (`MS_BIND | MS_REC` onto itself), alone and followed
/// by the remount that adds `nodev`; each run unmounts again.
fn nodev_cost_in_a_private_mount_namespace() -> Ran {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    require(
        std::env::var_os(NODEV_CHILD).is_some(),
        "run by devices::cost_per_start inside `unshare -m`, not alone",
    )?;
    let rootfs = tempfile::tempdir().unwrap();
    let root = rootfs.path();
    let bind = || {
        mount(
            Some(root),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .unwrap()
    };
    let remount_nodev = || {
        mount(
            None::<&str>,
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .unwrap()
    };
    let unmount = || umount2(root, MntFlags::MNT_DETACH).unwrap();
    report(
        "rootfs bind (today)",
        timed(50, || {
            let start = Instant::now();
            bind();
            let took = start.elapsed();
            unmount();
            took
        }),
    );
    report(
        "rootfs bind + remount nodev",
        timed(50, || {
            let start = Instant::now();
            bind();
            remount_nodev();
            let took = start.elapsed();
            unmount();
            took
        }),
    );
    report(
        "remount nodev alone",
        timed(50, || {
            bind();
            let start = Instant::now();
            remount_nodev();
            let took = start.elapsed();
            unmount();
            took
        }),
    );
    Ok(())
}
