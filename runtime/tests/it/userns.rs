//! User namespaces: container root that is another uid on the host, maps as configured,
//! joins that enter the same namespace with the same protections, and nsinit run by a plain
//! user (rootless), alone or with subordinate ids, on this host.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use fixtures::harness::{needs_tool, require, Ran, Skip, Trial};

use crate::support::{needs_root, seed, stderr, stdout, with_field, Container, NSINIT};

const NSINIT_OCI: &str = env!("CARGO_BIN_EXE_nsinit-oci");

pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        container_root_is_the_mapped_host_uid,
        a_join_enters_the_user_namespace_with_its_protections,
        a_plain_user_runs_a_container_as_its_root,
        a_plain_user_gets_a_clear_error_for_a_bridge,
        a_plain_user_runs_an_oci_bundle_without_a_cgroup,
        issue_16_root_of_podmans_user_namespace_gets_lo_up,
        issue_16_a_plain_user_maps_its_subordinate_ids_with_newuidmap,
        issue_16_a_plain_user_runs_an_oci_bundle_with_subordinate_ids,
    ]
}

/// The seed (without network and cgroups) with a user namespace mapping 0-65535 to
/// `host`-`host`+65535.
fn mapped(host: u32, size: u32) -> String {
    let namespaces = r#"["NEWIPC","NEWNS","NEWPID","NEWUTS","NEWNET","NEWUSER"]"#;
    let map = format!(r#"[{{"container_id": 0, "host_id": {host}, "size": {size}}}]"#);
    let config = with_field(seed(), "namespaces", namespaces);
    let config = with_field(&config, "uid_mappings", &map);
    with_field(&config, "gid_mappings", &map)
}

fn container_root_is_the_mapped_host_uid() -> Ran {
    needs_root()?;
    let c = Container::owned_by(&mapped(300_000, 65_536), 300_000);
    let out = c.run(&[
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map; touch /tmp/made; grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[..3], ["0", "0", "0 300000 65536"], "{lines:?}");
    assert!(lines.contains(&"NoNewPrivs: 1".to_string()), "{lines:?}");
    assert!(lines.contains(&"Seccomp: 2".to_string()), "{lines:?}");
    let made = std::fs::metadata(c.file("tmp/made")).expect("the file the container made");
    assert_eq!((made.uid(), made.gid()), (300_000, 300_000));
    assert!(!c.file(".nspid").exists());
    Ok(())
}

fn a_join_enters_the_user_namespace_with_its_protections() -> Ran {
    needs_root()?;
    let c = Container::owned_by(&mapped(300_000, 65_536), 300_000);
    let mut first = c
        .exec(&["sleep", "30"])
        .spawn()
        .expect("start the container");
    let pid1 = c.wait_for_nspid();
    // PID 1 runs as the mapped uid on the host.
    let status = std::fs::read_to_string(format!("/proc/{pid1}/status")).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    let out = c.run(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
    ]);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid1),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = first.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "0",
            "0",
            "300000",
            "65536",
            "NoNewPrivs:",
            "1",
            "Seccomp:",
            "2"
        ]
    );
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert_eq!(uids, ["300000"; 4], "{uid_line}");
    Ok(())
}

/// Root, with `setpriv` (util-linux) there to run nsinit as a plain user.
fn needs_root_and_setpriv() -> Ran {
    needs_root()?;
    require(
        std::path::Path::new("/usr/bin/setpriv").exists(),
        "needs setpriv (util-linux) to run nsinit as a plain user",
    )
}

/// `setpriv` (util-linux) as `nobody`, through `wrap` (a command that runs the rest, e.g.
/// `unshare --user --map-root-user`), then `env` without `XDG_RUNTIME_DIR`: append the
/// program to run.
fn setpriv_nobody(wrap: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(wrap)
        .args(["env", "-u", "XDG_RUNTIME_DIR"])
        .stdin(std::process::Stdio::null());
    command
}

/// nsinit run by `nobody`; its own uid alone is mapped to root.
fn as_nobody(c: &Container, args: &[&str]) -> std::process::Output {
    setpriv_nobody(&[])
        .args([NSINIT, "exec", "-T"])
        .args(args)
        .current_dir(c.path())
        .output()
        .expect("run setpriv")
}

fn a_plain_user_runs_a_container_as_its_root() -> Ran {
    needs_root_and_setpriv()?;
    let c = Container::owned_by(&mapped(65_534, 1), 65_534);
    let out = as_nobody(
        &c,
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; hostname; touch /tmp/made; cat /sys/class/net/lo/flags",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let words: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(words[..5], ["0", "0", "65534", "1", "koye"], "{words:?}");
    // IFF_UP is bit 0 of lo's flags.
    let flags = u32::from_str_radix(words[5].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up: {words:?}");
    let made = std::fs::metadata(c.file("tmp/made")).expect("the file the container made");
    assert_eq!(made.uid(), 65_534);
    assert!(!c.file(".nspid").exists());
    Ok(())
}

fn a_plain_user_gets_a_clear_error_for_a_bridge() -> Ran {
    needs_root_and_setpriv()?;
    let network = r#"{"address": "10.0.0.2/24", "bridge": "nsinit-none0"}"#;
    let c = Container::owned_by(&with_field(&mapped(65_534, 1), "network", network), 65_534);
    let out = as_nobody(&c, &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("network: not for a plain user: a veth on a host bridge needs root"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

/// A bundle of `config` in a container directory: its rootfs (`rootfs/`, a full copy of the
/// busybox tree) and the directory owned by `owner`, no devpts `gid=` (a plain user maps only
/// its own gid), a writable root, no terminal, `args` as the process.
fn bundle_owned_by(owner: u32, mut config: serde_json::Value, args: &[&str]) -> Container {
    let bundle = Container::owned_by("{}", owner);
    let rootfs = bundle.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    for entry in std::fs::read_dir(bundle.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "rootfs" {
            std::fs::rename(entry.path(), rootfs.join(entry.file_name())).unwrap();
        }
    }
    std::os::unix::fs::lchown(&rootfs, Some(owner), Some(owner)).unwrap();
    for mount in config["mounts"].as_array_mut().unwrap() {
        if mount["type"] == "devpts" {
            let options = mount["options"].as_array_mut().unwrap();
            options.retain(|o| !o.as_str().unwrap().starts_with("gid="));
        }
    }
    config["root"]["readonly"] = false.into();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(args);
    std::fs::write(bundle.file("config.json"), config.to_string()).unwrap();
    bundle
}

/// `runc spec --rootless`'s shape (the user-namespace fixture, mapped to the user alone, no
/// `gid=` on devpts), run by `nobody` with nsinit-oci: root inside, no cgroup asked, none made.
fn a_plain_user_runs_an_oci_bundle_without_a_cgroup() -> Ran {
    needs_root_and_setpriv()?;
    let mut config: serde_json::Value =
        serde_json::from_str(fixtures::bundle("user-namespace").unwrap()).unwrap();
    let own = serde_json::json!([{"containerID": 0, "hostID": 65534, "size": 1}]);
    config["linux"]["uidMappings"] = own.clone();
    config["linux"]["gidMappings"] = own;
    let args = ["sh", "-c", "id -u; cat /proc/self/uid_map; touch /tmp/made"];
    let bundle = bundle_owned_by(65_534, config, &args);
    let state = bundle.path().join("state");
    let out = oci_run_as_nobody(&bundle, "rootless-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let words: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(words, ["0", "0", "65534", "1"], "{}", stderr(&out));
    let made = std::fs::metadata(bundle.file("rootfs/tmp/made")).unwrap();
    assert_eq!(made.uid(), 65_534);
    // `run` deletes what it made.
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(left.iter().all(|&n| n == 0), "state left: {left:?}");
    Ok(())
}

/// `nsinit-oci --root BUNDLE/state run ID` in `bundle`, as `nobody`, through `wrap` (a
/// command that runs the rest, e.g. `unshare --user --map-root-user`), with no
/// `XDG_RUNTIME_DIR`.
fn oci_run_as_nobody(bundle: &Container, id: &str, wrap: &[&str]) -> std::process::Output {
    setpriv_nobody(wrap)
        .args([NSINIT_OCI, "--root"])
        .arg(bundle.path().join("state"))
        .args(["run", id])
        .current_dir(bundle.path())
        .output()
        .expect("run setpriv")
}

/// Rootless podman's shape: nsinit-oci runs as root of podman's user namespace (here
/// `unshare --map-root-user` by `nobody`), not the initial one, and the config asks for a new
/// network namespace but no user namespace (`runc spec`'s). nsinit-oci may enter the
/// container's network namespace, which its user namespace owns, but not come back to its
/// own, which the initial one owns: the container sets its `lo` up itself. Before, the start
/// failed with `network: return to nsinit's own network namespace: operation not permitted`.
fn issue_16_root_of_podmans_user_namespace_gets_lo_up() -> Ran {
    needs_root()?;
    for tool in ["/usr/bin/setpriv", "/usr/bin/unshare"] {
        require(
            std::path::Path::new(tool).exists(),
            "needs setpriv and unshare (util-linux) to run nsinit-oci in a user namespace",
        )?;
    }
    let config: serde_json::Value =
        serde_json::from_str(fixtures::bundle("runc-spec").unwrap()).unwrap();
    let args = [
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; cat /sys/class/net/lo/flags",
    ];
    let bundle = bundle_owned_by(65_534, config, &args);
    let out = oci_run_as_nobody(
        &bundle,
        "podman-rootless-1",
        &["unshare", "--user", "--map-root-user"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let words: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(words[..4], ["0", "0", "65534", "1"], "{words:?}");
    // IFF_UP is bit 0 of lo's flags.
    let flags = u32::from_str_radix(words[4].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up: {words:?}");
    Ok(())
}

/// The plain user of the `newuidmap` tests: a name and uid the host's account files do not
/// use, and subordinate uids = gids overlapping no range or id they list.
const SUB_USER: &str = "nsinit-subids";
const SUB_USER_ID: u32 = 4713;
const SUBORDINATE: u32 = 200_000;
const SUBORDINATE_COUNT: u32 = 65_536;

/// The host's account files, each with [`SUB_USER`]'s line added, or why they cannot be.
fn account_files_with_sub_user() -> Result<Vec<(&'static str, String)>, String> {
    let read = |name: &str| {
        std::fs::read_to_string(Path::new("/etc").join(name))
            .map_err(|e| format!("needs /etc/{name} to bind a copy over it: {e}"))
    };
    let files = [
        ("passwd", read("passwd")?),
        ("group", read("group")?),
        ("subuid", read("subuid")?),
        ("subgid", read("subgid")?),
    ];
    let (id, sub) = (
        u64::from(SUB_USER_ID),
        u64::from(SUBORDINATE)..u64::from(SUBORDINATE) + u64::from(SUBORDINATE_COUNT),
    );
    for (name, text) in &files {
        for line in text.lines() {
            let fields: Vec<&str> = line.split(':').map(str::trim).collect();
            let number = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok());
            let clash = match *name {
                // The name, and ids that are the user's own or fall in its range.
                "passwd" | "group" => {
                    fields[0] == SUB_USER
                        || [number(2), number(3)]
                            .into_iter()
                            .flatten()
                            .any(|n| n == id || sub.contains(&n))
                }
                // Ranges of the name or of the uid (newuidmap grants either), or overlapping.
                _ => {
                    fields[0] == SUB_USER
                        || number(0) == Some(id)
                        || matches!((number(1), number(2)),
                            (Some(start), Some(count)) if start < sub.end && sub.start < start + count)
                }
            };
            if clash {
                return Err(format!(
                    "/etc/{name} has `{line}`, which clashes with the test's user \
                     {SUB_USER} ({SUB_USER_ID}, subordinate {SUBORDINATE}:{SUBORDINATE_COUNT})"
                ));
            }
        }
    }
    let id = SUB_USER_ID;
    let range = format!("{SUB_USER}:{SUBORDINATE}:{SUBORDINATE_COUNT}");
    let lines = [
        format!("{SUB_USER}:x:{id}:{id}:nsinit tests:/nonexistent:/bin/sh"),
        format!("{SUB_USER}:x:{id}:"),
        range.clone(),
        range,
    ];
    let add = |(name, mut text): (&'static str, String), line: String| {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        (name, text + &line + "\n")
    };
    Ok(files
        .into_iter()
        .zip(lines)
        .map(|(file, line)| add(file, line))
        .collect())
}

/// [`SUB_USER`] on this host, for one test: copies of the account files that add it, and its
/// `XDG_RUNTIME_DIR` (where nsinit keeps its state), in a temp dir removed on drop.
struct SubUser {
    dir: tempfile::TempDir,
}

impl SubUser {
    /// Skips unless root, with `newuidmap`, `newgidmap`, `setpriv` and `unshare`, on a host
    /// whose account files leave [`SUB_USER`]'s name, id and range free.
    fn new() -> Result<SubUser, Skip> {
        needs_root()?;
        for tool in ["newuidmap", "newgidmap"] {
            needs_tool(tool, "--help")?;
        }
        for tool in ["/usr/bin/setpriv", "/usr/bin/unshare"] {
            require(
                Path::new(tool).exists(),
                "needs setpriv and unshare (util-linux) to run nsinit as a user with \
                 subordinate ids",
            )?;
        }
        let files = account_files_with_sub_user().map_err(Skip)?;
        let dir = tempfile::tempdir().expect("temp dir");
        // The user reaches its runtime dir through it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        for (name, text) in files {
            let copy = etc.join(name);
            std::fs::write(&copy, text).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::os::unix::fs::lchown(&run, Some(SUB_USER_ID), Some(SUB_USER_ID)).unwrap();
        Ok(SubUser { dir })
    }

    /// Its `XDG_RUNTIME_DIR`.
    fn runtime_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("run")
    }

    /// `program ARGS...` run by the user as rootless podman's runtime is (the xtask engines'
    /// rootless scenario does the same): in a mount namespace of its own, where the copies
    /// are bound over the host's account files (the setuid `newuidmap` and `newgidmap` read
    /// `/etc/subuid` and `/etc/subgid` there; the host's are never changed), then as the
    /// user, with `setpriv`.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let script = "set -e; etc=$1; id=$2; shift 2\n\
                      for f in passwd group subuid subgid; do\n\
                      mount --bind \"$etc/$f\" /etc/$f\n\
                      done\n\
                      exec setpriv --reuid $id --regid $id --init-groups \"$@\"\n";
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", script])
            .arg("sh")
            .arg(self.dir.path().join("etc"))
            .arg(SUB_USER_ID.to_string())
            .arg("env")
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir().display()))
            .arg(program)
            .args(args)
            .stdin(std::process::Stdio::null());
        cmd
    }
}

/// What the container runs: its ids, both maps, and a file it makes and gives to 1000.
const TWO_RANGES_SCRIPT: &str = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; \
                                 touch /tmp/made; chown 1000:1000 /tmp/made; \
                                 stat -c '%u:%g' /tmp/made";

/// Root inside, both ranges in each map (`out`), and the file made (`made`, on the host) owned
/// by the subordinate ids that 1000 maps to.
fn assert_two_ranges(out: &std::process::Output, made: &Path) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    let lines: Vec<String> = stdout(out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let map = format!("0 {SUB_USER_ID} 1\n1 {SUBORDINATE} {SUBORDINATE_COUNT}");
    let expected = format!("0\n0\n{map}\n{map}\n1000:1000");
    assert_eq!(lines.join("\n"), expected, "{}", stderr(out));
    let made = std::fs::metadata(made).expect("the file the container made");
    let host = SUBORDINATE + 1000 - 1;
    assert_eq!((made.uid(), made.gid()), (host, host));
}

/// The helper path of `write_maps`: a plain user with subordinate ids runs `nsinit exec` with
/// two ranges in each map (0 its own uid, 1-65536 its subordinate ids), which only the setuid
/// `newuidmap` and `newgidmap` may write. Root inside, both ranges in both maps, and a file
/// chowned to 1000 inside belongs to the matching subordinate id on the host.
fn issue_16_a_plain_user_maps_its_subordinate_ids_with_newuidmap() -> Ran {
    let user = SubUser::new()?;
    let map = format!(
        r#"[{{"container_id": 0, "host_id": {SUB_USER_ID}, "size": 1}},
            {{"container_id": 1, "host_id": {SUBORDINATE}, "size": {SUBORDINATE_COUNT}}}]"#
    );
    let namespaces = r#"["NEWIPC","NEWNS","NEWPID","NEWUTS","NEWNET","NEWUSER"]"#;
    let config = with_field(seed(), "namespaces", namespaces);
    let config = with_field(&config, "uid_mappings", &map);
    let config = with_field(&config, "gid_mappings", &map);
    // The container's root owns its rootfs: the user's own id on the host.
    let c = Container::owned_by(&config, SUB_USER_ID);
    let out = user
        .command(NSINIT, &["exec", "-T", "sh", "-c", TWO_RANGES_SCRIPT])
        .current_dir(c.path())
        .output()
        .expect("run unshare");
    assert_two_ranges(&out, &c.file("tmp/made"));
    Ok(())
}

/// The same through an OCI bundle: `linux.uidMappings` and `gidMappings` of two ranges, run
/// with `nsinit-oci run` by the user, whose state (`$XDG_RUNTIME_DIR/nsinit-oci`) is left
/// empty.
fn issue_16_a_plain_user_runs_an_oci_bundle_with_subordinate_ids() -> Ran {
    let user = SubUser::new()?;
    let mut config: serde_json::Value =
        serde_json::from_str(fixtures::bundle("user-namespace").unwrap()).unwrap();
    let map = serde_json::json!([
        {"containerID": 0, "hostID": SUB_USER_ID, "size": 1},
        {"containerID": 1, "hostID": SUBORDINATE, "size": SUBORDINATE_COUNT},
    ]);
    config["linux"]["uidMappings"] = map.clone();
    config["linux"]["gidMappings"] = map;
    // `runc spec`'s capabilities lack the chown the script does.
    for set in config["process"]["capabilities"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        set.as_array_mut().unwrap().push("CAP_CHOWN".into());
    }
    let bundle = bundle_owned_by(SUB_USER_ID, config, &["sh", "-c", TWO_RANGES_SCRIPT]);
    let out = user
        .command(NSINIT_OCI, &["run", "subids-1"])
        .current_dir(bundle.path())
        .output()
        .expect("run unshare");
    assert_two_ranges(&out, &bundle.file("rootfs/tmp/made"));
    let state = user.runtime_dir().join("nsinit-oci");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(left.iter().all(|&n| n == 0), "state left: {left:?}");
    Ok(())
}
