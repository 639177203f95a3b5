//! User namespaces: container root that is another uid on the host, maps as configured,
//! joins that enter the same namespace with the same protections, and nsinit run by a plain
//! user (rootless), on this host.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use fixtures::harness::{require, Ran, Trial};

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

/// `setpriv` (util-linux) runs nsinit as `nobody`; its own uid alone is mapped to root.
fn as_nobody(c: &Container, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["env", "-u", "XDG_RUNTIME_DIR", NSINIT, "exec", "-T"])
        .args(args)
        .current_dir(c.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run setpriv")
}

fn a_plain_user_runs_a_container_as_its_root() -> Ran {
    needs_root()?;
    require(
        std::path::Path::new("/usr/bin/setpriv").exists(),
        "needs setpriv (util-linux) to run nsinit as a plain user",
    )?;
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
    needs_root()?;
    require(
        std::path::Path::new("/usr/bin/setpriv").exists(),
        "needs setpriv (util-linux) to run nsinit as a plain user",
    )?;
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
    needs_root()?;
    require(
        std::path::Path::new("/usr/bin/setpriv").exists(),
        "needs setpriv (util-linux) to run nsinit-oci as a plain user",
    )?;
    let mut config: serde_json::Value =
        serde_json::from_str(fixtures::bundle("user-namespace").unwrap()).unwrap();
    let own = serde_json::json!([{"containerID": 0, "hostID": 65534, "size": 1}]);
    config["linux"]["uidMappings"] = own.clone();
    config["linux"]["gidMappings"] = own;
    let args = ["sh", "-c", "id -u; cat /proc/self/uid_map; touch /tmp/made"];
    let bundle = bundle_owned_by(65_534, config, &args);
    let state = bundle.path().join("state");
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["env", "-u", "XDG_RUNTIME_DIR", NSINIT_OCI, "--root"])
        .arg(&state)
        .args(["run", "rootless-1"])
        .current_dir(bundle.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run setpriv");
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
    let state = bundle.path().join("state");
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["unshare", "--user", "--map-root-user"])
        .args(["env", "-u", "XDG_RUNTIME_DIR", NSINIT_OCI, "--root"])
        .arg(&state)
        .args(["run", "podman-rootless-1"])
        .current_dir(bundle.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run setpriv");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let words: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(words[..4], ["0", "0", "65534", "1"], "{words:?}");
    // IFF_UP is bit 0 of lo's flags.
    let flags = u32::from_str_radix(words[4].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up: {words:?}");
    Ok(())
}
