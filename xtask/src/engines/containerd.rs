//! A containerd of the harness's own: started by the step with its own config, root, state,
//! socket and opt directory under `target/engines/containerd`, inside the stand-in host's
//! network namespace, and stopped at the end (by its pid). Its CRI plugin has one runtime
//! handler per runtime under test (`runtime_type = "io.containerd.runc.v2"`, `BinaryName` =
//! the runtime, as a RuntimeClass would select it), each with its own state root.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::podman::toml_string;
use super::Runtime;

/// The namespace `ctr` scenarios use; the CRI plugin has its own (`k8s.io`).
pub const NAMESPACE: &str = "nsinit-engines";
pub const CRI_NAMESPACE: &str = "k8s.io";
/// Where containerd 1.6's shims put their sockets (fixed, not under containerd's state).
const SHIM_SOCKETS: &str = "/run/containerd/s";
const STARTUP: Duration = Duration::from_secs(60);
const SHUTDOWN: Duration = Duration::from_secs(15);

pub struct Containerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Writes the config and starts containerd in the network namespace `netns`, waiting until
    /// it answers on its socket.
    pub fn start(
        dir: &Path,
        netns: &Path,
        runtimes: &[Runtime],
        sandbox_image: &str,
    ) -> Result<Containerd> {
        fs::create_dir_all(dir)?;
        let config = dir.join("config.toml");
        fs::write(&config, config_toml(dir, runtimes, sandbox_image))?;
        let log = File::create(dir.join("containerd.log"))?;
        // nsenter execs containerd, so the child's pid is containerd's.
        let child = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .arg("containerd")
            .arg("--config")
            .arg(&config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start containerd")?;
        let mut containerd = Containerd {
            dir: dir.to_owned(),
            child: Some(child),
        };
        let started = Instant::now();
        loop {
            let version = containerd
                .ctr()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if version.is_ok_and(|s| s.success()) {
                break;
            }
            if let Some(child) = containerd.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    containerd.child = None;
                    bail!(
                        "containerd exited ({status}) while starting; see {}",
                        dir.join("containerd.log").display()
                    );
                }
            }
            if started.elapsed() > STARTUP {
                bail!(
                    "containerd did not answer within {} s; see {}",
                    STARTUP.as_secs(),
                    dir.join("containerd.log").display()
                );
            }
            sleep(Duration::from_millis(100));
        }
        Ok(containerd)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn socket(&self) -> PathBuf {
        socket(&self.dir)
    }

    /// `ctr --address SOCKET` (no namespace: `ctr -n NS` follows).
    pub fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.socket())
            .current_dir(&self.dir);
        command
    }

    /// `ctr --address SOCKET -n nsinit-engines`.
    pub fn ctr_ns(&self) -> Command {
        let mut command = self.ctr();
        command.args(["-n", NAMESPACE]);
        command
    }

    /// The socket of the shim of task `id` in `namespace`: containerd 1.6 names it
    /// `/run/containerd/s/` + SHA-256 of `ADDRESS/NAMESPACE/ID`, whatever its own state
    /// directory (a killed shim cannot remove it).
    pub fn shim_socket(&self, namespace: &str, id: &str) -> Result<PathBuf> {
        let key = format!("{}/{namespace}/{id}", self.socket().display());
        Ok(Path::new(SHIM_SOCKETS).join(super::image::sha256_of(key.as_bytes())?))
    }

    /// The runtime state root `ctr run --runc-root` is given for `runtime`.
    pub fn ctr_runtime_root(&self, runtime: &Runtime) -> PathBuf {
        self.dir.join("ctr-state").join(&runtime.name)
    }

    /// The runtime state root of the CRI handler for `runtime` (`options.Root`).
    pub fn cri_runtime_root(&self, runtime: &Runtime) -> PathBuf {
        cri_root(&self.dir, runtime)
    }

    /// Where ctr puts the fifos of a task's stdio.
    pub fn fifo_dir(&self) -> PathBuf {
        self.dir.join("fifo")
    }

    /// Where containerd keeps tasks' bundles and state (walked by the leftover checks).
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        vec![
            self.dir.join("state"),
            self.dir.join("ctr-state"),
            self.dir.join("cri-state"),
        ]
    }

    /// SIGTERM, then SIGKILL after a while; by pid, only the containerd started here.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill takes plain integers; the pid is our child's, not yet waited for, so it
        // cannot have been reused.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < SHUTDOWN {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            sleep(Duration::from_millis(50));
        }
        child.kill()?;
        child.wait()?;
        bail!(
            "containerd did not stop within {} s of SIGTERM (killed)",
            SHUTDOWN.as_secs()
        )
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("xtask: {error:#}");
        }
    }
}

fn socket(dir: &Path) -> PathBuf {
    dir.join("containerd.sock")
}

fn cri_root(dir: &Path, runtime: &Runtime) -> PathBuf {
    dir.join("cri-state").join(&runtime.name)
}

/// containerd's config: every path under `dir`; plugins that would touch the machine
/// (`/opt/containerd`) pointed at `dir` or disabled; the CRI plugin with one handler per
/// runtime and `sandbox_image` as the pods' pause image.
pub fn config_toml(dir: &Path, runtimes: &[Runtime], sandbox_image: &str) -> String {
    let path = |sub: &str| toml_string(&dir.join(sub).display().to_string());
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let mut handlers = String::new();
    for runtime in runtimes {
        let name = toml_string(&runtime.name);
        handlers.push_str(&format!(
            "\n[{cri}.containerd.runtimes.{name}]\n\
             runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.{name}.options]\n\
             BinaryName = {binary}\n\
             Root = {root}\n\
             SystemdCgroup = false\n",
            binary = toml_string(&runtime.path.display().to_string()),
            root = toml_string(&cri_root(dir, runtime).display().to_string()),
        ));
    }
    format!(
        "# Written by cargo xtask engines: this containerd's own configuration.\n\
         version = 2\n\
         root = {root}\n\
         state = {state}\n\
         disabled_plugins = [\"io.containerd.snapshotter.v1.aufs\", \"io.containerd.snapshotter.v1.btrfs\", \
         \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \
         \"io.containerd.tracing.processor.v1.otlp\", \"io.containerd.internal.v1.tracing\"]\n\
         \n\
         [grpc]\n\
         address = {socket}\n\
         [ttrpc]\n\
         address = {ttrpc}\n\
         \n\
         [plugins.\"io.containerd.internal.v1.opt\"]\n\
         path = {opt}\n\
         \n\
         [{cri}]\n\
         sandbox_image = {sandbox}\n\
         stream_server_address = \"127.0.0.1\"\n\
         stream_server_port = \"0\"\n\
         enable_selinux = false\n\
         # CAP_SYS_RESOURCE is not in this host's bounding set: a pod's default oom_score_adj\n\
         # (-998) cannot be set by any runtime; keep them at or above containerd's own.\n\
         restrict_oom_score_adj = true\n\
         [{cri}.containerd]\n\
         snapshotter = \"overlayfs\"\n\
         default_runtime_name = {default}\n\
         [{cri}.cni]\n\
         bin_dir = \"/usr/lib/cni\"\n\
         conf_dir = {cni}\n\
         {handlers}",
        root = path("root"),
        state = path("state"),
        socket = toml_string(&socket(dir).display().to_string()),
        ttrpc = path("containerd.sock.ttrpc"),
        opt = path("opt"),
        sandbox = toml_string(sandbox_image),
        default = toml_string(runtimes.first().map_or("runc", |r| r.name.as_str())),
        cni = path("cni"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runtime_is_a_cri_handler_with_its_own_root() {
        let runtimes = [
            Runtime {
                name: "nsinit-oci".into(),
                path: PathBuf::from("/x/nsinit-oci"),
            },
            Runtime {
                name: "runc".into(),
                path: PathBuf::from("/usr/sbin/runc"),
            },
        ];
        let text = config_toml(Path::new("/w/c"), &runtimes, "localhost/i:latest");
        assert!(text.contains(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"nsinit-oci\".options]\n\
             BinaryName = \"/x/nsinit-oci\"\n\
             Root = \"/w/c/cri-state/nsinit-oci\"\n"
        ), "{text}");
        assert!(text.contains("runtime_type = \"io.containerd.runc.v2\""));
        assert!(text.contains("address = \"/w/c/containerd.sock\""));
        assert!(text.contains("default_runtime_name = \"nsinit-oci\""));
        assert!(text.contains("path = \"/w/c/opt\""));
        assert!(text.contains("sandbox_image = \"localhost/i:latest\""));
    }
}
