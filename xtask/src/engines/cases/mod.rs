//! The scenarios of issue 15, as data: a name and a function that drives an engine and checks
//! what it did, returning a short note on success. They run in order, one runtime at a time;
//! a few share a container with the one before (the `run -d` family, the CRI lifecycle).

pub mod cri;
pub mod ctr;
pub mod faults;
pub mod podman;

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::containerd::Containerd;
use super::exec::{wait_for, Output, Scratch, PATIENCE};
use super::host::Places;
use super::image::Image;
use super::podman::Podman;
use super::Runtime;
use crate::procfs::CgroupMount;

/// One scenario.
pub struct Case {
    /// Which engine drives it: `podman`, `ctr`, `cri` or `faults`.
    pub suite: &'static str,
    pub name: &'static str,
    pub run: fn(&Ctx) -> Result<String>,
}

/// Every scenario, in the order they run.
pub fn all() -> Vec<Case> {
    let mut cases = podman::cases();
    cases.extend(ctr::cases());
    cases.extend(cri::cases());
    cases.extend(faults::cases());
    cases
}

/// Everything a scenario may use, for one runtime.
pub struct Ctx<'a> {
    pub runtime: &'a Runtime,
    pub podman: &'a Podman,
    pub containerd: &'a Containerd,
    pub image: &'a Image,
    pub scratch: &'a Scratch,
    /// A directory of this runtime's own (bind-mount sources, pid files).
    pub work: PathBuf,
    pub places: &'a Places<'a>,
    pub cgroup_mounts: &'a [CgroupMount],
    /// The harness's cgroup parent (`/nsinit-engines-PID`).
    pub cgroup_root: &'a str,
    /// Every container id an engine reported, for the final leftover check.
    pub ids: RefCell<Vec<String>>,
    /// The `run -d` container the podman scenarios after it share: (name, id).
    pub detached: RefCell<Option<(String, String)>>,
    /// The CRI connection and the pod and container of the CRI lifecycle.
    pub cri: RefCell<Option<cri::Session>>,
}

impl Ctx<'_> {
    /// A container name unique to this runtime and scenario.
    pub fn name(&self, what: &str) -> String {
        format!("nsinit-engines-{}-{what}", self.runtime.name)
    }

    pub fn note_id(&self, id: &str) {
        let id = id.trim();
        if !id.is_empty() {
            self.ids.borrow_mut().push(id.to_string());
        }
    }

    /// `podman ARGS` with this runtime.
    pub fn podman(&self, args: &[&str]) -> Result<Output> {
        self.podman_limited(args, PATIENCE)
    }

    pub fn podman_limited(&self, args: &[&str], limit: Duration) -> Result<Output> {
        self.scratch
            .run(self.podman.command(&self.runtime.name).args(args), limit)
    }

    /// `podman ARGS`, failing unless it exits 0; its stdout.
    pub fn podman_ok(&self, args: &[&str]) -> Result<String> {
        let what = format!("podman {}", args.first().unwrap_or(&""));
        Ok(self.podman(args)?.ok(&what)?.stdout)
    }

    /// `podman run RUN-OPTIONS ARGS` (the ulimits and the harness's cgroup parent first).
    pub fn podman_run(&self, args: &[&str]) -> Result<Output> {
        let options = self.podman.run_options();
        let mut all: Vec<&str> = vec!["run"];
        all.extend(options.iter().map(String::as_str));
        all.extend_from_slice(args);
        self.podman(&all)
    }

    /// A podman `run`/`exec` command line (with this runtime) for a terminal.
    pub fn podman_command(&self, args: &[&str]) -> Command {
        let mut command = self.podman.command(&self.runtime.name);
        command.args(args);
        command
    }

    /// `podman run -d --name NAME OPTIONS IMAGE COMMAND...`: the container's id.
    pub fn podman_detached(
        &self,
        name: &str,
        options: &[&str],
        command: &[&str],
    ) -> Result<String> {
        let mut args = vec!["-d", "--name", name];
        args.extend_from_slice(options);
        args.push(super::image::NAME);
        args.extend_from_slice(command);
        let id = self.podman_run(&args)?.ok("podman run -d")?.stdout;
        let id = id.trim().to_string();
        self.note_id(&id);
        Ok(id)
    }

    /// `podman inspect --format FORMAT NAME`, one line.
    pub fn inspect(&self, name: &str, format: &str) -> Result<String> {
        super::podman::field(&self.podman_ok(&["inspect", "--format", format, name])?)
    }

    /// The container's PID 1 as the host sees it (`inspect`'s `.State.Pid`).
    pub fn podman_pid(&self, name: &str) -> Result<u32> {
        let pid = self.inspect(name, "{{.State.Pid}}")?;
        match pid.parse() {
            Ok(0) | Err(_) => bail!("podman inspect gave pid {pid:?}"),
            Ok(pid) => Ok(pid),
        }
    }

    /// `podman rm -f -t 0 NAME`, ignoring failure (cleanup after a failed check).
    pub fn podman_remove(&self, name: &str) {
        let _ = self.podman(&["rm", "-f", "-t", "0", name]);
    }

    /// What remains of `ids`, polled until nothing does or 10 s pass (engines clean up
    /// asynchronously: conmon's exit command, the shim's exit).
    pub fn leftovers(&self, ids: &[String]) -> Vec<String> {
        self.leftovers_within(ids, Duration::from_secs(10))
    }

    /// [`Ctx::leftovers`], polled for at most `limit`.
    pub fn leftovers_within(&self, ids: &[String], limit: Duration) -> Vec<String> {
        let mut last = Vec::new();
        let clean = wait_for(limit, || {
            last = self.places.leftovers(ids);
            last.is_empty().then_some(())
        });
        if clean.is_some() {
            Vec::new()
        } else {
            last
        }
    }

    /// Fails naming what remains of `ids`.
    pub fn expect_clean(&self, ids: &[String]) -> Result<()> {
        let left = self.leftovers(ids);
        if !left.is_empty() {
            bail!("left behind: {}", left.join("; "));
        }
        Ok(())
    }

    /// A file of a cgroup controller of process `pid`: `v1_file` in the v1 hierarchy holding
    /// `controller` when there is one, else `v2_file` in the unified hierarchy.
    pub fn cgroup_file(
        &self,
        pid: u32,
        controller: &str,
        v1_file: &str,
        v2_file: &str,
    ) -> Result<PathBuf> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .with_context(|| format!("read /proc/{pid}/cgroup"))?;
        cgroup_file(&text, self.cgroup_mounts, controller, v1_file, v2_file)
            .ok_or_else(|| anyhow!("no {controller} cgroup for pid {pid}"))
    }
}

/// See [`Ctx::cgroup_file`]; `proc_cgroup` is the text of `/proc/PID/cgroup`.
pub fn cgroup_file(
    proc_cgroup: &str,
    mounts: &[CgroupMount],
    controller: &str,
    v1_file: &str,
    v2_file: &str,
) -> Option<PathBuf> {
    let entries: Vec<(&str, &str)> = proc_cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let _id = fields.next()?;
            Some((fields.next()?, fields.next()?))
        })
        .collect();
    let under = |mount: &Path, path: &str| mount.join(path.trim_start_matches('/'));
    if let Some(mount) = mounts
        .iter()
        .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
    {
        let (_, path) = entries
            .iter()
            .find(|(list, _)| list.split(',').any(|c| c == controller))?;
        return Some(under(&mount.path, path).join(v1_file));
    }
    let mount = mounts.iter().find(|m| m.v2)?;
    let (_, path) = entries.iter().find(|(list, _)| list.is_empty())?;
    Some(under(&mount.path, path).join(v2_file))
}

/// A counter line `NAME VALUE` of a flat-keyed cgroup file (memory.events, oom_control).
pub fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// Waits until process `pid` has a handler for `signal` (its SigCgt bit), so a signal sent
/// next is not lost on a shell that has not yet run its `trap`.
pub fn wait_for_handler(pid: u32, signal: i32) -> Result<()> {
    let bit = 1u64 << (signal - 1);
    wait_for(Duration::from_secs(10), || {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())?;
        (mask & bit != 0).then_some(())
    })
    .ok_or_else(|| anyhow!("pid {pid} never installed a handler for signal {signal}"))
}

/// Sends `signal` to `pid` (a process of a container the harness started).
pub fn kill(pid: u32, signal: i32) -> Result<()> {
    // SAFETY: kill takes plain integers and touches no memory.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("kill {pid}"));
    }
    Ok(())
}

/// Whether `pid` is gone (or a zombie).
pub fn gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(text) => match crate::procfs::parse_stat(&text) {
            Some(stat) => stat.state == 'Z',
            None => true,
        },
    }
}

/// Fails unless `haystack` contains `needle`, showing what it was.
pub fn expect_contains(what: &str, haystack: &str, needle: &str) -> Result<()> {
    if !haystack.contains(needle) {
        bail!(
            "{what}: expected {needle:?} in {:?}",
            haystack.chars().take(400).collect::<String>()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(v1_memory: bool) -> Vec<CgroupMount> {
        let mut list = vec![CgroupMount {
            path: "/sys/fs/cgroup/unified".into(),
            v2: true,
            controllers: Vec::new(),
        }];
        if v1_memory {
            list.push(CgroupMount {
                path: "/sys/fs/cgroup/memory".into(),
                v2: false,
                controllers: vec!["memory".into()],
            });
        }
        list
    }

    const PROC_CGROUP: &str = "4:memory:/p/libpod-1\n1:name=systemd:/p/libpod-1\n0::/p/libpod-1\n";

    #[test]
    fn a_v1_controller_wins_on_a_hybrid_host() {
        assert_eq!(
            cgroup_file(
                PROC_CGROUP,
                &mounts(true),
                "memory",
                "memory.limit_in_bytes",
                "memory.max"
            ),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/p/libpod-1/memory.limit_in_bytes"
            ))
        );
        assert_eq!(
            cgroup_file(
                PROC_CGROUP,
                &mounts(false),
                "memory",
                "memory.limit_in_bytes",
                "memory.max"
            ),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/p/libpod-1/memory.max"
            ))
        );
    }

    #[test]
    fn counters_are_read_by_name() {
        let events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n";
        assert_eq!(counter(events, "oom_kill"), Some(1));
        assert_eq!(
            counter("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill"),
            Some(2)
        );
        assert_eq!(counter(events, "nothing"), None);
    }

    #[test]
    fn case_names_are_unique() {
        let cases = all();
        for (i, a) in cases.iter().enumerate() {
            for b in &cases[i + 1..] {
                assert!(
                    (a.suite, a.name) != (b.suite, b.name),
                    "{} {}",
                    a.suite,
                    a.name
                );
            }
        }
    }
}
