//! The container lifecycle (issue "Container lifecycle"): `.nspid`, join on a second exec,
//! everything dies with PID 1, stale and foreign `.nspid`, concurrency, the join's security.

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::*;

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        nspid_holds_pid_1_while_alive_and_goes_after,
        second_exec_joins_the_same_namespaces_environment_and_capabilities,
        joined_commands_report_their_exit_codes,
        joined_process_dies_when_pid_1_exits,
        nspid_naming_a_host_process_is_never_joined,
        nspid_rewritten_from_inside_does_not_steer_the_next_exec,
        dead_pid_in_nspid_starts_a_fresh_container,
        a_late_supervisor_leaves_the_next_container_alone,
        concurrent_first_starts_make_one_container,
        sigkill_of_nsinit_takes_the_container_down_and_leaves_the_directory_usable,
        a_joined_script_naming_proc_self_exe_gets_the_sealed_trampoline,
        without_newpid_everything_dies_with_pid_1_through_the_cgroup,
    ]
}

/// Start `sleep SECS` as PID 1 and wait until the container is joinable.
fn start_sleeper(c: &Container, secs: &str) -> (Child, i32) {
    let child = c.exec(&["sleep", secs]).spawn().unwrap();
    let pid = c.wait_for_nspid();
    (child, pid)
}

fn nspid_holds_pid_1_while_alive_and_goes_after() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let (mut child, pid) = start_sleeper(&c, "1");
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(ns, std::fs::read_link("/proc/self/ns/pid").unwrap());
    assert!(child.wait().unwrap().success());
    assert!(!c.file(".nspid").exists());
    assert!(!state_file(c.path()).exists(), "state file removed");
    Ok(())
}

fn second_exec_joins_the_same_namespaces_environment_and_capabilities() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let (mut first, pid) = start_sleeper(&c, "30");
    let script = "for n in ipc mnt pid uts net; do readlink /proc/self/ns/$n; done; hostname; grep CapBnd /proc/self/status; echo $container; pwd; ls /proc/self/fd";
    let out = c.run(&["sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    for ns in ["ipc", "mnt", "pid", "uts", "net"] {
        let pid1 = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(lines.next().unwrap(), pid1.to_string_lossy(), "{ns}");
    }
    assert_eq!(lines.next(), Some("koye"));
    let pid1_status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let bounding = pid1_status
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .unwrap();
    assert_eq!(lines.next(), Some(bounding));
    assert_eq!(lines.next(), Some("docker"));
    assert_eq!(lines.next(), Some("/"));
    assert_eq!(lines.collect::<Vec<_>>(), ["0", "1", "2", "3"]);
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    Ok(())
}

fn joined_commands_report_their_exit_codes() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let (mut first, pid) = start_sleeper(&c, "30");
    assert_eq!(c.run(&["sh", "-c", "exit 9"]).status.code(), Some(9));
    assert_eq!(c.run(&["missing-here"]).status.code(), Some(127));
    assert_eq!(
        c.run(&["sh", "-c", "kill -KILL $$"]).status.code(),
        Some(137)
    );
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    Ok(())
}

fn joined_process_dies_when_pid_1_exits() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let (mut first, _) = start_sleeper(&c, "2");
    let mut joined = c.exec(&["sleep", "60"]).spawn().unwrap();
    assert!(first.wait().unwrap().success());
    let status = joined.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    Ok(())
}

fn nspid_naming_a_host_process_is_never_joined() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    // The host's init, and this very test process: both alive, neither is the container.
    for pid in [1, std::process::id() as i32] {
        std::fs::write(c.file(".nspid"), format!("{pid}\n")).unwrap();
        let out = c.run(&["readlink", "/proc/self/ns/pid"]);
        assert!(out.status.success(), "{}", stderr(&out));
        // Not joined: a fresh pid namespace, not the one nsinit (or the named pid) lives in.
        let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        assert_ne!(stdout(&out).trim(), host_ns.to_string_lossy());
        assert!(stdout(&out).starts_with("pid:["), "{}", stdout(&out));
        assert!(
            stderr(&out).contains(".nspid"),
            "a notice names the stale file"
        );
        assert!(!c.file(".nspid").exists());
    }
    Ok(())
}

fn nspid_rewritten_from_inside_does_not_steer_the_next_exec() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let (mut first, pid) = start_sleeper(&c, "30");
    std::fs::write(c.file(".nspid"), "1\n").unwrap();
    let out = c.run(&["readlink", "/proc/self/ns/mnt"]);
    let pid1_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_eq!(
        stdout(&out).trim(),
        pid1_mnt.to_string_lossy(),
        "joined the real container"
    );
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    Ok(())
}

fn dead_pid_in_nspid_starts_a_fresh_container() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let dead = {
        let mut p = std::process::Command::new("true").spawn().unwrap();
        let id = p.id();
        p.wait().unwrap();
        id
    };
    std::fs::write(c.file(".nspid"), format!("{dead}\n")).unwrap();
    let out = c.run(&["sh", "-c", "echo $$"]);
    assert_eq!(stdout(&out), "1\n", "{}", stderr(&out));
    Ok(())
}

fn a_late_supervisor_leaves_the_next_container_alone() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let (mut first, old_pid) = start_sleeper(&c, "60");
    // The first supervisor stalls while its PID 1 dies (and stays an unreaped zombie).
    let supervisor = Pid::from_raw(first.id() as i32);
    kill(supervisor, Signal::SIGSTOP).unwrap();
    kill(Pid::from_raw(old_pid), Signal::SIGKILL).unwrap();
    wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{old_pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    });
    // The next exec finds it dead and starts the next container.
    let mut second = c
        .exec(&["sleep", "60"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let nspid = || {
        std::fs::read_to_string(c.file(".nspid"))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
    };
    wait_until(Duration::from_secs(10), || {
        nspid().is_some_and(|pid| pid != old_pid)
    });
    let new_pid = nspid().unwrap();
    // The first supervisor wakes up, reaps its PID 1 and cleans up after it.
    kill(supervisor, Signal::SIGCONT).unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(137));
    assert_eq!(
        nspid(),
        Some(new_pid),
        "the next container's .nspid is left alone"
    );
    let record = std::fs::read_to_string(state_file(c.path())).unwrap_or_default();
    assert!(
        record.contains(&format!("\"pid\":{new_pid}")),
        "and its record: {record}"
    );
    let joined = c.run(&["true"]);
    assert!(joined.status.success(), "{}", stderr(&joined));
    kill(Pid::from_raw(new_pid), Signal::SIGKILL).unwrap();
    second.wait().unwrap();
    assert!(!c.file(".nspid").exists());
    assert!(!state_file(c.path()).exists());
    Ok(())
}

fn concurrent_first_starts_make_one_container() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let children: Vec<_> = (0..8)
        .map(|_| {
            // PID 1 stays long enough for eight joins on a loaded machine.
            c.exec(&["sh", "-c", "readlink /proc/self/ns/pid; sleep 3"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let namespaces: HashSet<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success() || out.status.code() == Some(137),
                "{:?} {}",
                out.status,
                stderr(&out)
            );
            stdout(&out).trim().to_string()
        })
        .collect();
    assert_eq!(namespaces.len(), 1, "{namespaces:?}");
    Ok(())
}

fn sigkill_of_nsinit_takes_the_container_down_and_leaves_the_directory_usable() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let (mut first, pid) = start_sleeper(&c, "60");
    kill(Pid::from_raw(first.id() as i32), Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    wait_until(Duration::from_secs(10), || !alive(pid));
    let out = c.run(&["sh", "-c", "echo $$"]);
    assert_eq!(stdout(&out), "1\n", "{}", stderr(&out));
    Ok(())
}

/// CVE-2019-5736 class: what a joined command's process runs before its `execve` must not
/// be nsinit's binary, or a script naming `/proc/self/exe` as its interpreter runs nsinit
/// inside the container, where `/proc/PID/exe` opens the host's file for writing. It is the
/// exec trampoline, from a sealed memfd, which refuses to run for anyone but nsinit; the
/// joining nsinit itself stays out of the container's pid namespace.
fn a_joined_script_naming_proc_self_exe_gets_the_sealed_trampoline() -> Ran {
    needs_root()?;
    let host_binary = std::fs::read(NSINIT).unwrap();
    let c = Container::new(seed());
    let (mut first, pid) = start_sleeper(&c, "30");
    std::fs::write(c.file("evil.sh"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(
        c.file("evil.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = c.run(&["/evil.sh"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("nsinit-trampoline: "),
        "the trampoline ran, not nsinit: {}",
        stderr(&out)
    );
    let mut joined = c.exec(&["sleep", "30"]).spawn().unwrap();
    let pid_ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(
        pid_ns(joined.id()),
        pid_ns(pid as u32),
        "the joining nsinit stays out of the container's pid namespace"
    );
    assert_eq!(
        std::fs::read(NSINIT).unwrap(),
        host_binary,
        "host binary unchanged"
    );
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    joined.wait().unwrap();
    Ok(())
}

/// Without a pid namespace the kernel does not kill the container with PID 1: nsinit does,
/// through the cgroup it gives such a container.
fn without_newpid_everything_dies_with_pid_1_through_the_cgroup() -> Ran {
    needs_root()?;
    let config = with_field(seed(), "namespaces", r#"["NEWNS","NEWUTS","NEWIPC"]"#);
    let c = Container::new(&config);
    let mut first = c
        .exec(&["sh", "-c", "sleep 300 & echo $! > /bg; sleep 1"])
        .spawn()
        .unwrap();
    c.wait_for_nspid();
    let mut joined = c.exec(&["sleep", "300"]).spawn().unwrap();
    // The shell creates the file before it writes the pid: wait for the pid itself.
    let read_pid = || {
        std::fs::read_to_string(c.file("bg"))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
    };
    wait_until(Duration::from_secs(10), || read_pid().is_some());
    let background = read_pid().unwrap();
    assert!(first.wait().unwrap().success());
    assert_eq!(joined.wait().unwrap().code(), Some(137));
    wait_until(Duration::from_secs(5), || !alive(background));
    // nsinit leaves the shared parent in place; this test made it, so it removes it (an
    // rmdir that fails while another test still uses it).
    for mount in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(mount.path().join("nsinit"));
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/nsinit");
    Ok(())
}
