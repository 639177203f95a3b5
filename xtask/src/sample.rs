//! `cargo xtask sample`: the seed's sample container end to end: build nsinit and unpack the
//! Alpine rootfs, write the seed's container.json verbatim, run a few commands in it inside a
//! throwaway network namespace standing in for the host (bridge `docker0` holding the
//! gateway), and show what they saw, then what the stand-in host saw of a running container.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::args::Args;
use crate::cargo::{binary_dir, cargo, step, target_dir};
use crate::rootfs::Fixture;
use crate::standin::{StandIn, GATEWAY};
use crate::{prereqs, procfs};

/// What the sample runs, each in a fresh container, shown under a header.
const COMMANDS: &[&[&str]] = &[
    &["cat", "/etc/alpine-release"],
    &["hostname"],
    &["env"],
    &["sh", "-c", "echo pid=$$; grep Cap /proc/self/status"],
    &["ip", "addr", "show", "eth0"],
    &["ip", "route"],
    &["cat", "/sys/class/net/eth0/mtu"],
    &["ping", "-c1", "-W1", GATEWAY],
];
/// Shown as well when the config has `cgroups`.
const CGROUP_COMMAND: &[&str] = &["cat", "/proc/self/cgroup"];

pub fn run(args: Args) -> Result<()> {
    args.finish()?;
    prereqs::ensure(&[prereqs::IPROUTE, prereqs::LIBSECCOMP_DEV])?;
    step(
        "cargo build -p nsinit",
        cargo().args(["build", "-p", "nsinit"]),
    )?;
    let nsinit = binary_dir("debug").join("nsinit");

    let rootfs = target_dir().join("sample/rootfs");
    let fixture = Fixture::Alpine;
    println!(
        "==> unpacking the {} rootfs into {}",
        fixture.label(),
        rootfs.display()
    );
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).with_context(|| format!("remove {}", rootfs.display()))?;
    }
    fixture.write(&rootfs)?;
    let config_path = rootfs.join("container.json");
    fs::write(&config_path, fixtures::SEED)?;
    println!(
        "==> wrote the seed's container.json, verbatim, to {}",
        config_path.display()
    );

    if !vm::apt::is_root() {
        bail!("starting a container needs root: run `cargo xtask sample` as root");
    }
    let standin = StandIn::create("nsinit-sample")?;
    println!(
        "==> stand-in host: network namespace {} with bridge {} ({GATEWAY}/{}), up",
        standin.name(),
        crate::standin::BRIDGE,
        crate::standin::PREFIX
    );
    let cgroups = Cgroups::before();
    let sample = Sample {
        nsinit: &nsinit,
        rootfs: &rootfs,
        standin: &standin,
    };
    let with_cgroups = sample.cgroups_work(&config_path)?;

    let mut commands: Vec<&[&str]> = COMMANDS.to_vec();
    if with_cgroups {
        commands.push(CGROUP_COMMAND);
    }
    let mut failed = Vec::new();
    for command in commands {
        if let Err(line) = sample.show(command)? {
            failed.push(line);
        }
    }
    let seen = sample.host_side(with_cgroups);
    cgroups.remove_new_parents();
    drop(standin);
    seen?;
    if !failed.is_empty() {
        bail!("sample: failed: {}", failed.join(", "));
    }
    Ok(())
}

struct Sample<'a> {
    nsinit: &'a Path,
    rootfs: &'a Path,
    standin: &'a StandIn,
}

impl Sample<'_> {
    /// `nsenter --net=... nsinit -C ROOTFS exec -- CMD...`, and how a shell would write it.
    fn command(&self, command: &[&str]) -> (Command, String) {
        let mut cmd = self.standin.nsenter(self.nsinit);
        let mut args: Vec<String> = vec![format!("--net={}", self.standin.path().display())];
        args.push(self.nsinit.display().to_string());
        for arg in ["-C", &self.rootfs.display().to_string(), "exec", "--"] {
            cmd.arg(arg);
            args.push(arg.to_string());
        }
        cmd.args(command);
        args.extend(command.iter().map(|s| s.to_string()));
        (cmd, vm::guest::shell_command("nsenter", &args))
    }

    /// Whether the seed's `cgroups` section works with this nsinit: when nsinit rejects it,
    /// the config is rewritten without it and the sample says so.
    fn cgroups_work(&self, config_path: &Path) -> Result<bool> {
        let (mut probe, _) = self.command(&["true"]);
        let out = probe
            .stdin(Stdio::null())
            .output()
            .context("start nsenter")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains("cgroups") {
            return Ok(true);
        }
        let mut config: serde_json::Value = serde_json::from_str(fixtures::SEED)?;
        if let Some(object) = config.as_object_mut() {
            object.remove("cgroups");
        }
        fs::write(config_path, serde_json::to_string_pretty(&config)?)?;
        println!(
            "    cgroups: not supported by this nsinit yet ({}), left out of container.json",
            stderr.trim()
        );
        Ok(false)
    }

    /// Runs `command` in a fresh container under a header; Err(line) when it fails.
    fn show(&self, command: &[&str]) -> Result<Result<(), String>> {
        let (mut cmd, line) = self.command(command);
        println!();
        println!("==> {line}");
        let status = cmd.status().context("start nsenter")?;
        if status.success() {
            Ok(Ok(()))
        } else {
            println!("({line}: {status})");
            Ok(Err(command.join(" ")))
        }
    }

    /// Starts `sleep 30` in the container and shows what the stand-in host sees of it: the
    /// veth on the bridge, the container's cgroup and its memory limit.
    fn host_side(&self, with_cgroups: bool) -> Result<()> {
        // The kernel deletes the veths of the containers that ended a moment ago on its own
        // time; wait for them so the listing below shows this container's alone.
        let start = Instant::now();
        while self.standin.veths_on_bridge()? > 0 && start.elapsed() < Duration::from_secs(5) {
            sleep(Duration::from_millis(20));
        }
        let (mut cmd, line) = self.command(&["sleep", "30"]);
        println!();
        println!("==> from the stand-in host, while `{line}` runs:");
        let child = cmd.stdin(Stdio::null()).spawn().context("start nsenter")?;
        let mut running = Running { child, pid1: None };
        let pid1 = wait_for_pid1(self.rootfs, &mut running)?;
        println!("    .nspid: {pid1} (the container's PID 1 on the host)");
        let veths =
            self.standin
                .ip(&["-brief", "link", "show", "master", crate::standin::BRIDGE])?;
        for veth in veths.lines() {
            println!("    on {}: {}", crate::standin::BRIDGE, veth.trim_end());
        }
        if with_cgroups {
            let proc_cgroup = fs::read_to_string(format!("/proc/{pid1}/cgroup"))?;
            let memory = proc_cgroup
                .lines()
                .find(|l| {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|c| c == "memory"))
                })
                .or_else(|| proc_cgroup.lines().find(|l| l.starts_with("0::")))
                .unwrap_or_default();
            println!("    /proc/{pid1}/cgroup: {memory}");
            match procfs::memory_limit_file(&proc_cgroup, &procfs::cgroup_mounts()?) {
                Some(file) => {
                    let limit = fs::read_to_string(&file)
                        .with_context(|| format!("read {}", file.display()))?;
                    println!("    {}: {}", file.display(), limit.trim());
                }
                None => println!("    memory limit: no memory controller found"),
            }
        }
        running.stop();
        Ok(())
    }
}

/// The background container of [`Sample::host_side`]: killed (PID 1, by pid) and waited
/// for on drop.
struct Running {
    child: Child,
    pid1: Option<u32>,
}

impl Running {
    fn stop(&mut self) {
        if let Some(pid) = self.pid1.take() {
            // SAFETY: kill takes plain integers; the pid is the container's PID 1 we started,
            // and nsinit (our child, not yet waited for) keeps it from being reused.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// Waits for `.nspid` to name a running `sleep`.
fn wait_for_pid1(rootfs: &Path, running: &mut Running) -> Result<u32> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(status) = running.child.try_wait()? {
            bail!("the container exited early ({status})");
        }
        let pid = fs::read_to_string(rootfs.join(".nspid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                running.pid1 = Some(pid);
                return Ok(pid);
            }
        }
        sleep(Duration::from_millis(10));
    }
    bail!("the container did not start within 10 s")
}

/// The seed's cgroup parent (`docker`) in each hierarchy, as it was before the sample: the
/// ones the sample's containers created are removed afterwards (rmdir: only when empty).
struct Cgroups {
    created: Vec<PathBuf>,
}

impl Cgroups {
    fn before() -> Cgroups {
        let parent = serde_json::from_str::<serde_json::Value>(fixtures::SEED)
            .ok()
            .and_then(|c| c["cgroups"]["parent"].as_str().map(str::to_string));
        let created = match (parent, procfs::cgroup_mounts()) {
            (Some(parent), Ok(mounts)) => mounts
                .iter()
                .map(|m| m.path.join(&parent))
                .filter(|path| !path.exists())
                .collect(),
            _ => Vec::new(),
        };
        Cgroups { created }
    }

    fn remove_new_parents(&self) {
        for path in self.created.iter().filter(|path| path.exists()) {
            if let Err(error) = fs::remove_dir(path) {
                eprintln!("xtask: remove {}: {error}", path.display());
            }
        }
    }
}
