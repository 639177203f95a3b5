//! The container's cgroup as nsinit drives it (issue "Cgroups"): the seed's own limit, the
//! OOM report, `nsinit stats`, the group gone afterwards. Only on hosts with the v1 memory
//! controller or cgroup v2 (this machine: hybrid, v1 memory).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        seed_limit_of_524800_bytes_runs_hostname,
        limit_is_set_for_pid_1_and_joined_processes_and_the_group_goes_after,
        exceeding_the_limit_exits_137_with_one_line_naming_it,
    ]
}

/// The memory controller's group directory for `relative`, wherever this host keeps it.
fn memory_dir(relative: &str) -> std::path::PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.exists() {
        v1.join(relative)
    } else {
        Path::new("/sys/fs/cgroup").join(relative)
    }
}

/// Removes this test process's cgroup parent (`nsinit-test-<pid>`) from every hierarchy when
/// dropped; while another test still uses it, `rmdir` fails and the last one removes it.
struct TestParent;

impl Drop for TestParent {
    fn drop(&mut self) {
        let parent = format!("nsinit-test-{}", std::process::id());
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&parent));
        for mount in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(mount.path().join(&parent));
        }
    }
}

/// The seed sample minus `network`, with a cgroup of this test's own under `parent`.
fn with_cgroup(name: &str, memory: u64) -> String {
    let cgroups = format!(
        r#"{{"name": "{name}", "parent": "nsinit-test-{}", "memory": {memory}}}"#,
        std::process::id()
    );
    with_field(seed(), "cgroups", &cgroups)
}

fn seed_limit_of_524800_bytes_runs_hostname() -> Ran {
    needs_root()?;
    let _parent = TestParent;
    let c = Container::new(&with_cgroup("seed", 524800));
    let out = c.run(&["hostname"]);
    assert_eq!(stdout(&out), "koye\n", "{}", stderr(&out));
    Ok(())
}

fn limit_is_set_for_pid_1_and_joined_processes_and_the_group_goes_after() -> Ran {
    needs_root()?;
    let _parent = TestParent;
    let c = Container::new(&with_cgroup("limit", 64 << 20));
    let relative = format!("nsinit-test-{}/limit", std::process::id());
    let mut first = c.exec(&["sleep", "2"]).spawn().unwrap();
    let pid = c.wait_for_nspid();
    let dir = memory_dir(&relative);
    let limit = std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
        .or_else(|_| std::fs::read_to_string(dir.join("memory.max")))
        .unwrap();
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    let joined = c.run(&["cat", "/proc/self/cgroup"]);
    assert!(stdout(&joined).contains(&relative), "{}", stdout(&joined));
    let stats = std::process::Command::new(NSINIT)
        .current_dir(c.path())
        .arg("stats")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("stats is JSON");
    assert_eq!(json["memory_limit"], 64u64 << 20);
    assert_eq!(json["processes"], 1);
    assert!(first.wait().unwrap().success());
    assert!(!dir.exists(), "group removed");
    let out = std::process::Command::new(NSINIT)
        .current_dir(c.path())
        .arg("stats")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("no container is running"),
        "{}",
        stderr(&out)
    );
    assert!(!state_file(c.path()).exists(), "stats leaves no state file");
    Ok(())
}

fn exceeding_the_limit_exits_137_with_one_line_naming_it() -> Ran {
    needs_root()?;
    let _parent = TestParent;
    let c = Container::new(&with_cgroup("oom", 8 << 20));
    // Hold 64 MiB in a shell variable: far over the limit.
    let out = c
        .exec(&[
            "sh",
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived",
        ])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("memory limit") && err.contains("8388608 bytes"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let dir = memory_dir(&format!("nsinit-test-{}/oom", std::process::id()));
    wait_until(Duration::from_secs(2), || !dir.exists());
    Ok(())
}
