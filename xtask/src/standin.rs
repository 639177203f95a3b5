//! A throwaway network namespace standing in for the host: `docker0` holding the seed's
//! gateway address, up. The sample and the bench run nsinit inside it, so nsinit's veths land
//! on this bridge and the real host's interfaces, routes and addresses are never touched.
//! The namespace is deleted on drop (the kernel then deletes every veth left in it).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The seed's bridge.
pub const BRIDGE: &str = "docker0";
/// The seed's gateway, held by the bridge.
pub const GATEWAY: &str = "172.17.42.1";
/// The prefix length of the seed's network (172.17.0.0/16).
pub const PREFIX: u8 = 16;

/// A named network namespace (`/run/netns/NAME`) with the bridge; deleted on drop.
pub struct StandIn {
    name: String,
    /// The network namespace this thread left when it entered the stand-in, to go back to.
    left: Option<OwnedFd>,
}

impl StandIn {
    /// Creates `<prefix>-<our pid>` with `lo` and the bridge up, the gateway address on it.
    pub fn create(prefix: &str) -> Result<StandIn> {
        let name = format!("{prefix}-{}", std::process::id());
        run_ip(&["netns", "add", &name])?;
        // From here on, dropping the guard deletes the namespace.
        let standin = StandIn { name, left: None };
        standin.ip(&["link", "set", "lo", "up"])?;
        standin.ip(&["link", "add", "name", BRIDGE, "type", "bridge"])?;
        standin.ip(&["addr", "add", &format!("{GATEWAY}/{PREFIX}"), "dev", BRIDGE])?;
        standin.ip(&["link", "set", BRIDGE, "up"])?;
        Ok(standin)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, the handle `nsenter --net=` and `setns` take.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip -n NAME ARGS`, its stdout on success.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run_ip(&[&["-n", self.name.as_str()], args].concat())
    }

    /// `nsenter --net=/run/netns/NAME PROGRAM`: PROGRAM in the stand-in host's network.
    /// Unlike `ip netns exec`, nsenter leaves the mounts alone: `ip netns exec` remounts
    /// `/sys`, which hides the cgroup mounts under `/sys/fs/cgroup` from nsinit.
    pub fn nsenter(&self, program: impl Into<PathBuf>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.path().display()))
            .arg(program.into());
        command
    }

    /// The veths attached to the bridge (`ip -o link show master docker0`).
    pub fn veths_on_bridge(&self) -> Result<usize> {
        let out = self.ip(&["-o", "link", "show", "master", BRIDGE])?;
        Ok(out.lines().filter(|line| !line.trim().is_empty()).count())
    }

    /// Moves this thread into the stand-in's network namespace; every process it spawns from
    /// now on starts there. Checked: fails unless this thread's namespace is then the
    /// stand-in's. Dropping the guard moves the thread back before deleting the namespace.
    pub fn enter(&mut self) -> Result<()> {
        if self.left.is_some() {
            return Ok(());
        }
        let here =
            File::open("/proc/thread-self/ns/net").context("open /proc/thread-self/ns/net")?;
        let there =
            File::open(self.path()).with_context(|| format!("open {}", self.path().display()))?;
        setns_net(&there).with_context(|| format!("enter the network namespace {}", self.name))?;
        self.left = Some(here.into());
        let now = std::fs::metadata("/proc/thread-self/ns/net")?;
        let want = there.metadata()?;
        if (now.dev(), now.ino()) != (want.dev(), want.ino()) {
            bail!(
                "setns reported success but this thread is not in {}",
                self.name
            );
        }
        Ok(())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(left) = self.left.take() {
            if let Err(error) = setns_net(&left) {
                eprintln!(
                    "xtask: could not leave the network namespace {}: {error}",
                    self.name
                );
            }
        }
        if let Err(error) = run_ip(&["netns", "del", &self.name]) {
            eprintln!("xtask: {error:#}");
        }
    }
}

fn setns_net(netns: &impl AsRawFd) -> std::io::Result<()> {
    // SAFETY: the fd is open for the duration of the call (borrowed from a live File or
    // OwnedFd); setns only reads it and changes this thread's network namespace.
    let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn run_ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run ip (from iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
