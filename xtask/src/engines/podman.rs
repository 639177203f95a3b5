//! podman as the harness runs it: every path its own (storage, run and tmp directories,
//! network configs under `target/engines/podman`), the `cgroupfs` manager, the `file` events
//! logger, vfs storage, and each runtime under test registered under `[engine.runtimes]` and
//! in `runtime_supports_json` (so conmon passes it `--log-format=json --log FILE`). Run in the
//! stand-in host's network namespace, so netavark's bridge and firewall rules land there; as
//! root, or as a plain user ([`AsUser`], rootless podman, set up by `rootless.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::Runtime;

/// podman's default network as the harness names it: its own name (and so its own entries in
/// netavark's IPAM database, which podman 4.3 keeps at a fixed `/run/containers/networks`
/// for every root instance), on a subnet of its own.
pub const NETWORK: &str = "nsinit-engines";
pub const SUBNET: &str = "10.89.213.0/24";
pub const GATEWAY: &str = "10.89.213.1";

/// podman's default ulimits exceed this host's hard limits, which no runtime can raise
/// without CAP_SYS_RESOURCE (issue 15): every container gets these instead.
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=8192:8192",
];

pub struct Podman {
    dir: PathBuf,
    netns: PathBuf,
    /// cgroupfs parent of every container (and of conmon, in `PARENT/conmon`).
    pub cgroup_parent: String,
    /// Who runs podman, when not root.
    pub user: Option<AsUser>,
}

/// A plain user podman runs as (rootless podman): each command enters a mount namespace of
/// its own (`unshare --mount`), where `script` binds the account files that name the user
/// over the host's and runs its arguments as the user (`setpriv`), with only `env` in the
/// environment besides podman's own settings.
pub struct AsUser {
    pub script: PathBuf,
    pub env: Vec<(&'static str, String)>,
}

impl Podman {
    /// Writes containers.conf, storage.conf and registries.conf under `dir`.
    pub fn setup(
        dir: &Path,
        netns: &Path,
        cgroup_parent: &str,
        runtimes: &[Runtime],
    ) -> Result<Podman> {
        let podman = Podman {
            dir: dir.to_owned(),
            netns: netns.to_owned(),
            cgroup_parent: cgroup_parent.to_owned(),
            user: None,
        };
        for sub in ["root", "run", "tmp", "networks", "tmpdir"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        fs::write(
            podman.containers_conf(),
            containers_conf(&podman.dir, runtimes),
        )?;
        fs::write(podman.storage_conf(), storage_conf(&podman.dir))?;
        fs::write(
            podman.dir.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )?;
        Ok(podman)
    }

    /// The stand-in host's network namespace podman runs in.
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    fn containers_conf(&self) -> PathBuf {
        self.dir.join("containers.conf")
    }

    fn storage_conf(&self) -> PathBuf {
        self.dir.join("storage.conf")
    }

    /// `nsenter --net=STANDIN podman GLOBAL-FLAGS --runtime NAME`, in podman's own directory
    /// (conmon inherits it as its working directory and writes its `oom` file there); for a
    /// plain user, `unshare --mount --propagation private SCRIPT` before `podman`.
    pub fn command(&self, runtime: &str) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net={}", self.netns.display()));
        if let Some(user) = &self.user {
            command
                .args(["unshare", "--mount", "--propagation", "private"])
                .arg(&user.script)
                .env_clear()
                .envs(user.env.iter().map(|(k, v)| (k, v)));
        }
        command
            .arg("podman")
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .arg("--network-config-dir")
            .arg(self.dir.join("networks"))
            .args([
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--storage-driver",
                "vfs",
                "--runtime",
                runtime,
            ])
            .current_dir(&self.dir)
            .env("CONTAINERS_CONF", self.containers_conf())
            .env("CONTAINERS_STORAGE_CONF", self.storage_conf())
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("TMPDIR", self.dir.join("tmpdir"));
        command
    }

    /// The options every `run`/`create` gets: the ulimits and the harness's cgroup parent.
    pub fn run_options(&self) -> Vec<String> {
        let mut options: Vec<String> = ULIMITS.iter().map(|s| s.to_string()).collect();
        options.push("--cgroup-parent".into());
        options.push(self.cgroup_parent.clone());
        options
    }

    /// Where podman keeps what it knows of containers (walked by the leftover checks).
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        ["run", "tmp", "root/vfs-containers", "root/libpod"]
            .iter()
            .map(|d| self.dir.join(d))
            .collect()
    }
}

/// containers.conf: cgroupfs, the file events logger, file locks (podman's default shm locks
/// are shared by every podman on the machine), the harness's network, each runtime.
pub fn containers_conf(dir: &Path, runtimes: &[Runtime]) -> String {
    let mut json_runtimes: Vec<String> = ["crun", "runc", "kata", "runsc", "krun"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut table = String::new();
    for runtime in runtimes {
        if !json_runtimes.contains(&runtime.name) {
            json_runtimes.push(runtime.name.clone());
        }
        table.push_str(&format!(
            "{} = [{}]\n",
            toml_string(&runtime.name),
            toml_string(&runtime.path.display().to_string())
        ));
    }
    let list = json_runtimes
        .iter()
        .map(|n| toml_string(n))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "# Written by cargo xtask engines: this podman's own configuration.\n\
         [containers]\n\
         log_driver = \"k8s-file\"\n\
         \n\
         [network]\n\
         network_backend = \"netavark\"\n\
         network_config_dir = {netdir}\n\
         default_network = {network}\n\
         default_subnet = {subnet}\n\
         \n\
         [engine]\n\
         cgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\n\
         lock_type = \"file\"\n\
         tmp_dir = {tmp}\n\
         static_dir = {static_dir}\n\
         volume_path = {volumes}\n\
         runtime = {default}\n\
         runtime_supports_json = [{list}]\n\
         \n\
         [engine.runtimes]\n\
         {table}",
        netdir = toml_string(&dir.join("networks").display().to_string()),
        network = toml_string(NETWORK),
        subnet = toml_string(SUBNET),
        tmp = toml_string(&dir.join("tmp").display().to_string()),
        static_dir = toml_string(&dir.join("root/libpod").display().to_string()),
        volumes = toml_string(&dir.join("root/volumes").display().to_string()),
        default = toml_string(runtimes.first().map_or("runc", |r| r.name.as_str())),
    )
}

/// storage.conf: vfs (no overlay mounts), graph and run roots of its own.
pub fn storage_conf(dir: &Path) -> String {
    format!(
        "# Written by cargo xtask engines.\n\
         [storage]\n\
         driver = \"vfs\"\n\
         graphroot = {}\n\
         runroot = {}\n",
        toml_string(&dir.join("root").display().to_string()),
        toml_string(&dir.join("run").display().to_string()),
    )
}

/// A TOML basic string.
pub fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads `podman inspect --format` output that is one value per line.
pub fn field(text: &str) -> Result<String> {
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .context("podman inspect printed nothing")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtimes() -> Vec<Runtime> {
        vec![
            Runtime {
                name: "nsinit-oci".into(),
                path: PathBuf::from("/x/nsinit-oci"),
            },
            Runtime {
                name: "runc".into(),
                path: PathBuf::from("/usr/sbin/runc"),
            },
        ]
    }

    #[test]
    fn every_runtime_is_registered_and_speaks_json() {
        let text = containers_conf(Path::new("/w/podman"), &runtimes());
        assert!(
            text.contains("\"nsinit-oci\" = [\"/x/nsinit-oci\"]\n"),
            "{text}"
        );
        assert!(text.contains("\"runc\" = [\"/usr/sbin/runc\"]\n"), "{text}");
        assert!(
            text.contains(
                "runtime_supports_json = [\"crun\", \"runc\", \"kata\", \"runsc\", \"krun\", \"nsinit-oci\"]"
            ),
            "{text}"
        );
        assert!(text.contains("runtime = \"nsinit-oci\"\n"));
    }

    #[test]
    fn nothing_points_at_the_machines_own_directories() {
        let text = containers_conf(Path::new("/w/podman"), &runtimes())
            + &storage_conf(Path::new("/w/podman"));
        for line in text.lines().filter(|l| l.contains('/')) {
            let value = line.split_once('=').map_or(line, |(_, v)| v);
            for path in value.split('"').filter(|p| p.starts_with('/')) {
                assert!(
                    path.starts_with("/w/podman")
                        || path == "/x/nsinit-oci"
                        || path == "/usr/sbin/runc",
                    "{line}"
                );
            }
        }
        for setting in [
            "cgroup_manager = \"cgroupfs\"",
            "events_logger = \"file\"",
            "driver = \"vfs\"",
        ] {
            assert!(text.contains(setting), "{setting}");
        }
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
