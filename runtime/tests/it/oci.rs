//! `nsinit-oci` on a bundle in a temp dir (issue 15): the runtime-spec lifecycle, `run`,
//! `exec`, the JSON log, a failed create leaving nothing, `ps`, `pause`/`resume`, `list`;
//! and the bugs `cargo xtask engines` found (`exec --pid-file`, a non-root process, a tmpfs
//! with `tmpcopyup`); the command line's help and usage errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// The nsinit-oci binary under test.
const NSINIT_OCI: &str = env!("CARGO_BIN_EXE_nsinit-oci");

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        create_start_kill_delete_walks_the_states,
        run_passes_the_exit_status_through_and_frees_the_id,
        exec_runs_in_the_running_container_with_its_exit_status,
        exec_detach_writes_the_pid_file_on_the_host,
        exec_of_a_script_naming_proc_self_exe_gets_the_sealed_trampoline,
        create_into_a_joined_pid_namespace_runs_from_an_unwritable_copy,
        a_failure_logged_as_json_is_one_object,
        a_bad_config_exits_non_zero_and_leaves_nothing,
        a_failure_after_the_clone_leaves_no_state_cgroup_or_mount,
        ps_json_lists_the_container_process,
        pause_and_resume_change_the_status,
        list_quiet_prints_the_id,
        a_process_with_another_user_is_started,
        tmpcopyup_fills_a_tmpfs_with_what_it_covers,
        a_new_user_namespace_joins_a_network_namespace_by_path,
        help_and_version_print_on_stdout,
        a_usage_error_is_one_line_and_exit_2,
    ]
}

fn help_and_version_print_on_stdout() -> Ran {
    let help = Command::new(NSINIT_OCI)
        .arg("--help")
        .output()
        .expect("run nsinit-oci");
    assert!(help.status.success() && help.stderr.is_empty(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    let commands = [
        "create", "start", "state", "kill", "delete", "run", "exec", "ps", "list", "pause",
        "update", "features",
    ];
    for command in commands {
        let listed = text
            .lines()
            .any(|line| line.trim_start().starts_with(command));
        assert!(listed, "{command} is not in\n{text}");
    }
    let version = Command::new(NSINIT_OCI)
        .arg("--version")
        .output()
        .expect("run nsinit-oci");
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.status.success()
            && text.starts_with("nsinit-oci version ")
            && text.contains("\nspec: 1."),
        "{version:?}"
    );
    Ok(())
}

fn a_usage_error_is_one_line_and_exit_2() -> Ran {
    let cases: [(&[&str], &str); 3] = [
        (
            &["create", "--bogus", "c"],
            "create: unknown flag --bogus (see create --help)",
        ),
        (
            &["kill"],
            "kill: missing the container id (see kill --help)",
        ),
        (
            &["--log-format", "xml", "state", "c"],
            "--log-format \"xml\": expected text or json (see --help)",
        ),
    ];
    for (args, line) in cases {
        let out = Command::new(NSINIT_OCI)
            .args(args)
            .output()
            .expect("run nsinit-oci");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("nsinit-oci: {line}\n")
        );
    }
    Ok(())
}

/// A bundle (a busybox rootfs and `config.json`), a state root of its own and an id; on
/// drop, the container is deleted (`--force`) and the directories go.
struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    /// runc's `runc spec` config running `args` without a terminal, changed by `adjust`.
    fn new(name: &str, args: &[&str], adjust: impl FnOnce(&mut Value)) -> Bundle {
        let dir = tempfile::tempdir().expect("temp dir");
        template()
            .copy_to(&dir.path().join("rootfs"))
            .expect("copy rootfs");
        let mut config: Value =
            serde_json::from_str(fixtures::bundle("runc-spec").expect("runc-spec fixture"))
                .expect("runc-spec is JSON");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        adjust(&mut config);
        std::fs::write(dir.path().join("config.json"), config.to_string())
            .expect("write config.json");
        std::fs::create_dir(dir.path().join("state")).expect("state root");
        Bundle {
            dir,
            id: format!("it-{name}-{}", std::process::id()),
        }
    }

    /// A bundle running `sleep 100`, created and started.
    fn sleeping(name: &str) -> Bundle {
        let b = Bundle::new(name, &["sleep", "100"], |_| {});
        b.create();
        b.start();
        b
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> PathBuf {
        self.path().join("state")
    }

    /// `nsinit-oci --root ROOT ARGS...`, stdin from /dev/null.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(NSINIT_OCI);
        cmd.arg("--root").arg(self.root()).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run a command that leaves nothing holding its output, to the end.
    fn oci(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run nsinit-oci")
    }

    /// `create --bundle B ID`: the waiting process keeps its stdio, so none is a pipe here;
    /// errors go to a log file, shown on failure.
    fn create(&self) {
        let log = self.path().join("create.log");
        let status = self
            .command(&["--log"])
            .arg(&log)
            .args(["create", "--bundle"])
            .arg(self.path())
            .arg(&self.id)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run nsinit-oci create");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(status.success(), "create: {status}: {text}");
    }

    fn start(&self) {
        let out = self.oci(&["start", &self.id]);
        assert!(out.status.success(), "start: {}", stderr(&out));
    }

    /// `state ID` as JSON.
    fn state(&self) -> Value {
        let out = self.oci(&["state", &self.id]);
        assert!(out.status.success(), "state: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("state prints JSON")
    }

    fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .expect("status is a string")
            .to_string()
    }

    /// The container's state directory under the root.
    fn state_dir(&self) -> PathBuf {
        self.root().join(&self.id)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.oci(&["delete", "--force", &self.id]);
    }
}

fn create_start_kill_delete_walks_the_states() -> Ran {
    needs_root()?;
    let b = Bundle::new("lifecycle", &["sleep", "100"], |_| {});
    b.create();
    let state = b.state();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], b.id.as_str());
    let pid = state["pid"].as_i64().expect("a pid");
    assert!(pid > 0 && alive(pid as i32));
    b.start();
    assert_eq!(b.status(), "running");
    let out = b.oci(&["kill", &b.id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    wait_until(Duration::from_secs(10), || b.status() == "stopped");
    let out = b.oci(&["delete", &b.id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(!b.state_dir().exists(), "state directory removed");
    let out = b.oci(&["state", &b.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    Ok(())
}

fn run_passes_the_exit_status_through_and_frees_the_id() -> Ran {
    needs_root()?;
    let b = Bundle::new("run", &["sh", "-c", "echo ran; exit 3"], |_| {});
    for round in 1..=2 {
        let out = b
            .command(&["run", "--bundle"])
            .arg(b.path())
            .arg(&b.id)
            .output()
            .expect("run nsinit-oci run");
        assert_eq!(
            out.status.code(),
            Some(3),
            "round {round}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "ran\n");
        assert!(!b.state_dir().exists(), "round {round}: deleted after run");
    }
    Ok(())
}

fn exec_runs_in_the_running_container_with_its_exit_status() -> Ran {
    needs_root()?;
    let b = Bundle::sleeping("exec");
    let pid1 = b.state()["pid"].as_i64().unwrap();
    let out = b.oci(&["exec", &b.id, "sh", "-c", "hostname; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "runc\n", "the container's hostname");
    // Same pid namespace as the container's PID 1.
    let out = b.oci(&["exec", &b.id, "readlink", "/proc/self/ns/pid"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ns = std::fs::read_link(format!("/proc/{pid1}/ns/pid")).unwrap();
    assert_eq!(stdout(&out).trim(), ns.to_string_lossy());
    // --process FILE, as conmon and containerd's shim call it.
    let process = b.path().join("process.json");
    let spec = json!({"args": ["sh", "-c", "exit 5"], "cwd": "/", "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0}});
    std::fs::write(&process, spec.to_string()).unwrap();
    let out = b
        .command(&["exec", "--process"])
        .arg(&process)
        .arg(&b.id)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    Ok(())
}

/// CVE-2019-5736: a script naming `/proc/self/exe` as its interpreter, exec'd into the
/// container, gets the sealed exec trampoline (which refuses), never nsinit-oci's binary.
fn exec_of_a_script_naming_proc_self_exe_gets_the_sealed_trampoline() -> Ran {
    needs_root()?;
    let b = Bundle::sleeping("exec-exe");
    let before = std::fs::read(NSINIT_OCI).unwrap();
    let script = b.path().join("rootfs/evil.sh");
    std::fs::write(&script, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = b.oci(&["exec", &b.id, "/evil.sh"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("nsinit-trampoline: "),
        "the trampoline ran, not nsinit-oci: {}",
        stderr(&out)
    );
    assert_binary_unchanged(&before);
    Ok(())
}

/// CVE-2019-5736 in a pod sharing its processes: a container created into another's pid
/// namespace waits at its gate running nsinit-oci, visible there until `start`. That process
/// runs from a copy nobody can write (a read-only overlay view, or a sealed memfd), so
/// `/proc/PID/exe` refuses writes and the binary keeps its bytes.
fn create_into_a_joined_pid_namespace_runs_from_an_unwritable_copy() -> Ran {
    needs_root()?;
    let before = std::fs::read(NSINIT_OCI).unwrap();
    let pod = Bundle::sleeping("pid-pod");
    let pod_pid = pod.state()["pid"].as_i64().expect("the pod's pid");
    let b = Bundle::new("pid-member", &["true"], |config| {
        let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "pid");
        namespaces.push(json!({"type": "pid", "path": format!("/proc/{pod_pid}/ns/pid")}));
    });
    b.create();
    let waiting = b.state()["pid"].as_i64().expect("the member's pid");
    let exe = format!("/proc/{waiting}/exe");
    let link = std::fs::read_link(&exe).unwrap();
    let memfd = link.to_string_lossy().starts_with("/memfd:");
    let overlay = nix::sys::statfs::statfs(exe.as_str())
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
        && nix::sys::statvfs::statvfs(exe.as_str())
            .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    assert!(
        memfd || overlay,
        "the waiting process runs {}",
        link.display()
    );
    let write = std::fs::OpenOptions::new().append(true).open(&exe);
    assert!(write.is_err(), "a write through /proc/PID/exe is refused");
    assert_binary_unchanged(&before);
    Ok(())
}

/// nsinit-oci's binary on disk still has the bytes it had `before` (CVE-2019-5736).
fn assert_binary_unchanged(before: &[u8]) {
    assert!(
        std::fs::read(NSINIT_OCI).unwrap() == before,
        "nsinit-oci's binary changed on disk"
    );
}

/// engines: podman's and containerd's `exec --detach --pid-file P` failed with "write pid
/// file P: no such file or directory": the pid file was written after the join had entered
/// the container's mount namespace, where the host path is not.
fn exec_detach_writes_the_pid_file_on_the_host() -> Ran {
    needs_root()?;
    let b = Bundle::sleeping("exec-pid");
    let pid_file = b.path().join("exec.pid");
    let status = b
        .command(&["exec", "--detach", "--pid-file"])
        .arg(&pid_file)
        .args([b.id.as_str(), "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "exec --detach: {status}");
    let text = std::fs::read_to_string(&pid_file).expect("the pid file is on the host");
    let pid: i32 = text.trim().parse().expect("a pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x0030\x00");
    // A relative pid file is relative to exec's own directory, not the container's.
    let status = b
        .command(&["exec", "--detach", "--pid-file", "relative.pid"])
        .args([b.id.as_str(), "true"])
        .current_dir(b.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "exec --detach with a relative pid file");
    assert!(b.path().join("relative.pid").exists());
    Ok(())
}

fn a_failure_logged_as_json_is_one_object() -> Ran {
    needs_root()?;
    let b = Bundle::new("json-log", &["/no/such/command"], |_| {});
    let log = b.path().join("log.json");
    let out = b
        .command(&["--log"])
        .arg(&log)
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).expect("the log file");
    // podman reads the whole file as one JSON object.
    let line: Value = serde_json::from_str(&text).expect("the log is one JSON object");
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("/no/such/command"),
        "{text}"
    );
    assert!(line["time"].as_str().unwrap().contains('T'), "{text}");
    assert!(!b.state_dir().exists());
    Ok(())
}

fn a_bad_config_exits_non_zero_and_leaves_nothing() -> Ran {
    needs_root()?;
    let b = Bundle::new("bad-config", &["true"], |config| {
        config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOPE", "hard": 1, "soft": 1}]);
    });
    let out = b
        .command(&["create", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("RLIMIT_NOPE"), "{}", stderr(&out));
    assert!(!b.state_dir().exists(), "no state directory");
    Ok(())
}

fn a_failure_after_the_clone_leaves_no_state_cgroup_or_mount() -> Ran {
    needs_root()?;
    let cgroup = format!("/nsinit-it/bad-bind-{}", std::process::id());
    let missing = format!("/nonexistent-{}", std::process::id());
    let b = Bundle::new("bad-bind", &["true"], |config| {
        config["linux"]["cgroupsPath"] = json!(cgroup);
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/data", "type": "bind", "source": missing,
            "options": ["rbind"]}),
        );
    });
    let out = b
        .command(&["create", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&missing), "{}", stderr(&out));
    assert!(!b.state_dir().exists(), "no state directory");
    let left: Vec<PathBuf> = cgroup_dirs(&cgroup)
        .into_iter()
        .filter(|dir| dir.exists())
        .collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rootfs = b.path().join("rootfs");
    assert!(
        !mountinfo.contains(rootfs.to_str().unwrap()),
        "a mount of the rootfs is left"
    );
    for dir in cgroup_dirs("/nsinit-it") {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// Where a cgroup path would be in every mounted hierarchy (v2, v1's controllers, hybrid's
/// unified).
fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let relative = path.trim_start_matches('/');
    let mut dirs = vec![base.join(relative)];
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                dirs.push(entry.path().join(relative));
            }
        }
    }
    dirs
}

fn ps_json_lists_the_container_process() -> Ran {
    needs_root()?;
    let b = Bundle::sleeping("ps");
    let pid1 = b.state()["pid"].as_i64().unwrap();
    let out = b.oci(&["ps", "--format", "json", &b.id]);
    assert!(out.status.success(), "ps: {}", stderr(&out));
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("a JSON array of pids");
    assert_eq!(pids, [pid1]);
    Ok(())
}

fn pause_and_resume_change_the_status() -> Ran {
    needs_root()?;
    let b = Bundle::sleeping("pause");
    let out = b.oci(&["pause", &b.id]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    assert_eq!(b.status(), "paused");
    let out = b.oci(&["resume", &b.id]);
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert_eq!(b.status(), "running");
    Ok(())
}

fn list_quiet_prints_the_id() -> Ran {
    needs_root()?;
    let b = Bundle::new("list", &["sleep", "100"], |_| {});
    b.create();
    let out = b.oci(&["list", "-q"]);
    assert!(out.status.success(), "list: {}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", b.id));
    Ok(())
}

/// engines: `podman run --user 1000:1000` failed at `start`: the process, already uid 1000,
/// could not open the exec fifo (root's, mode 0600) to wait at it, and exited.
fn a_process_with_another_user_is_started() -> Ran {
    needs_root()?;
    let b = Bundle::new("user", &["sh", "-c", "id -u; id -g"], |config| {
        config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let out = b
        .command(&["run", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .unwrap();
    assert!(out.status.success(), "run: {}", stderr(&out));
    assert_eq!(stdout(&out), "1000\n1000\n");
    Ok(())
}

/// engines: podman's `--read-only` and `--tmpfs` mount tmpfs with `tmpcopyup`, which was
/// refused.
fn tmpcopyup_fills_a_tmpfs_with_what_it_covers() -> Ran {
    needs_root()?;
    let script =
        "cat /etc/passwd | head -1; grep ' /etc ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; \
                  stat -c %a /etc; touch /etc/x 2>/dev/null || echo read-only";
    let b = Bundle::new("tmpcopyup", &["sh", "-c", script], |config| {
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "tmpcopyup", "ro"]}),
        );
    });
    let etc = b.path().join("rootfs/etc");
    std::fs::set_permissions(&etc, std::os::unix::fs::PermissionsExt::from_mode(0o751)).unwrap();
    let out = b
        .command(&["run", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .unwrap();
    assert!(out.status.success(), "run: {}", stderr(&out));
    let passwd = std::fs::read_to_string(etc.join("passwd")).unwrap();
    let first = passwd.lines().next().unwrap();
    assert_eq!(stdout(&out), format!("{first}\nro\n751\nread-only\n"));
    Ok(())
}

/// A new user namespace with a network namespace joined by path, as a Kubernetes pod with
/// user namespaces has (the pod's network namespace belongs to the host's user namespace):
/// the child, root of its new user namespace only, could not enter it (EPERM), so nsinit
/// enters it for the clone; `/sys` is then the host's, bound.
fn a_new_user_namespace_joins_a_network_namespace_by_path() -> Ran {
    needs_root()?;
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .expect("unshare --net sleep");
    let netns = format!("/proc/{}/ns/net", holder.id());
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    wait_until(Duration::from_secs(10), || {
        std::fs::read_link(&netns).is_ok_and(|ns| ns != own)
    });
    let target = std::fs::read_link(&netns).unwrap();
    let script = "readlink /proc/self/ns/net; cat /proc/self/uid_map; ls /sys/class/net";
    let b = Bundle::new("userns-netns", &["sh", "-c", script], |config| {
        let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "network");
        namespaces.push(json!({"type": "network", "path": netns}));
        namespaces.push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        config["linux"]["uidMappings"] = map.clone();
        config["linux"]["gidMappings"] = map;
    });
    let out = b
        .command(&["run", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .expect("run nsinit-oci run");
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(out.status.success(), "run: {}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(target.to_string_lossy().as_ref()),
        "{text}"
    );
    let map: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(map, ["0", "100000", "65536"], "{text}");
    Ok(())
}
