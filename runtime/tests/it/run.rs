//! Running a container (issue "Run a container"): namespaces, rootfs, hostname, environment,
//! capabilities, fds, exit status, signals, pipes, terminal, failures.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![
        seed_sample_runs_hostname_koye,
        environment_is_exactly_the_listed_entries,
        command_is_pid_1_with_cwd_root,
        listed_namespaces_are_new_and_unlisted_ones_shared,
        only_fds_0_1_2_reach_the_command,
        dropped_capabilities_leave_all_five_sets_and_the_rest_stay,
        dropped_capabilities_are_felt,
        rootfs_is_root_with_proc_sys_and_a_fresh_dev,
        exit_status_passes_through,
        missing_command_exits_127_and_says_so,
        non_executable_file_exits_126,
        killed_command_exits_128_plus_signal,
        signals_are_forwarded_to_pid_1,
        pipes_work,
        terminal_gives_a_controlling_pty_and_console,
        without_newns_it_refuses_with_a_reason,
        newuser_without_maps_is_refused,
        container_json_symlink_is_not_followed,
        symlinked_mount_target_is_refused_and_nothing_leaks_to_the_host,
        setup_failure_leaves_no_process_and_no_nspid,
    ]
}

/// The capabilities the seed sample drops, as a mask over kernel numbers.
const SEED_DROPPED_MASK: u64 = (1 << 8) // SETPCAP
    | (1 << 16) // SYS_MODULE
    | (1 << 17) // SYS_RAWIO
    | (1 << 20) // SYS_PACCT
    | (1 << 21) // SYS_ADMIN
    | (1 << 23) // SYS_NICE
    | (1 << 24) // SYS_RESOURCE
    | (1 << 25) // SYS_TIME
    | (1 << 26) // SYS_TTY_CONFIG
    | (1 << 27) // MKNOD
    | (1 << 29) // AUDIT_WRITE
    | (1 << 30) // AUDIT_CONTROL
    | (1 << 32) // MAC_OVERRIDE
    | (1 << 33); // MAC_ADMIN

fn seed_sample_runs_hostname_koye() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let out = c.run(&["hostname"]);
    assert_eq!(stdout(&out), "koye\n", "stderr: {}", stderr(&out));
    assert!(out.status.success());
    assert_eq!(
        stderr(&out),
        "",
        "nsinit prints nothing of its own on success"
    );
    Ok(())
}

fn environment_is_exactly_the_listed_entries() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let out = c.exec(&["env"]).env("LEAK_ME", "host").output().unwrap();
    assert_eq!(
        stdout(&out),
        "HOME=/\nPATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin\ncontainer=docker\nTERM=xterm-256color\n"
    );
    Ok(())
}

fn command_is_pid_1_with_cwd_root() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let out = c.run(&["sh", "-c", "echo $$; pwd"]);
    assert_eq!(stdout(&out), "1\n/\n");
    Ok(())
}

fn listed_namespaces_are_new_and_unlisted_ones_shared() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let script = "for n in ipc mnt pid uts net user cgroup; do readlink /proc/self/ns/$n; done";
    let inside = stdout(&c.run(&["sh", "-c", script]));
    for (line, ns) in inside
        .lines()
        .zip(["ipc", "mnt", "pid", "uts", "net", "user", "cgroup"])
    {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let shared = line == host.to_string_lossy();
        let listed = !matches!(ns, "user" | "cgroup");
        assert_eq!(
            !shared,
            listed,
            "{ns}: inside {line}, host {}",
            host.display()
        );
    }
    Ok(())
}

fn only_fds_0_1_2_reach_the_command() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    // ls opens the directory itself as fd 3.
    let out = c.run(&["ls", "/proc/self/fd"]);
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    Ok(())
}

fn dropped_capabilities_leave_all_five_sets_and_the_rest_stay() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let out = stdout(&c.run(&["grep", "^Cap", "/proc/self/status"]));
    let host_bounding = caps_field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "CapBnd",
    );
    let expected = host_bounding & !SEED_DROPPED_MASK;
    assert_eq!(caps_field(&out, "CapBnd"), expected, "{out}");
    assert_eq!(caps_field(&out, "CapPrm"), expected, "{out}");
    assert_eq!(caps_field(&out, "CapEff"), expected, "{out}");
    assert_eq!(caps_field(&out, "CapInh") & SEED_DROPPED_MASK, 0, "{out}");
    assert_eq!(caps_field(&out, "CapAmb") & SEED_DROPPED_MASK, 0, "{out}");
    Ok(())
}

fn caps_field(status: &str, name: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

fn dropped_capabilities_are_felt() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let out = c.run(&["sh", "-c", "mount -t tmpfs t /tmp && echo mounted; mknod /tmp/n c 1 3 && echo made; hostname x && echo renamed; exit 0"]);
    assert_eq!(stdout(&out), "", "stderr: {}", stderr(&out));
    let kept = with_field(seed(), "capabilities", "[]");
    let c = Container::new(&kept);
    let out = c.run(&[
        "sh",
        "-c",
        "mount -t tmpfs t /tmp && echo mounted; hostname x && echo renamed",
    ]);
    assert_eq!(
        stdout(&out),
        "mounted\nrenamed\n",
        "stderr: {}",
        stderr(&out)
    );
    Ok(())
}

fn rootfs_is_root_with_proc_sys_and_a_fresh_dev() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let out = c.run(&["sh", "-c", "ls /container.json; grep -E ' (/|/proc|/sys|/dev|/dev/pts|/dev/shm|/dev/mqueue) ' /proc/self/mountinfo | cut -d' ' -f5,6,9 ; ls -l /dev | grep -E 'null|zero|full|random|tty$|ptmx|fd|std'"]);
    let text = stdout(&out);
    assert!(text.starts_with("/container.json\n"), "{text}");
    for want in [
        "/proc rw,",
        "/sys ro,",
        "/dev rw,",
        "/dev/pts rw,",
        "/dev/shm rw,",
        "/dev/mqueue rw,",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    for fs in [" proc", " sysfs", " tmpfs", " devpts", " mqueue"] {
        assert!(text.contains(fs), "missing {fs} in {text}");
    }
    for node in [
        "1,   3 ", "1,   5 ", "1,   7 ", "1,   8 ", "1,   9 ", "5,   0 ",
    ] {
        assert!(text.contains(node), "missing device {node:?} in {text}");
    }
    for link in [
        "fd -> /proc/self/fd",
        "stdin -> /proc/self/fd/0",
        "ptmx -> pts/ptmx",
    ] {
        assert!(text.contains(link), "missing {link:?} in {text}");
    }
    Ok(())
}

fn exit_status_passes_through() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    assert_eq!(c.run(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(c.run(&["true"]).status.code(), Some(0));
    Ok(())
}

fn missing_command_exits_127_and_says_so() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let out = c.run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("no-such-command"), "{}", stderr(&out));
    Ok(())
}

fn non_executable_file_exits_126() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    std::fs::write(c.file("notes"), "not a program").unwrap();
    std::fs::set_permissions(c.file("notes"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = c.run(&["/notes"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    Ok(())
}

fn killed_command_exits_128_plus_signal() -> Ran {
    needs_root()?;
    // Without a pid namespace, the command is not an init and dies of its own SIGTERM.
    let config = with_field(seed(), "namespaces", r#"["NEWNS","NEWUTS","NEWIPC"]"#);
    let c = Container::new(&config);
    assert_eq!(
        c.run(&["sh", "-c", "kill -TERM $$"]).status.code(),
        Some(143)
    );
    // PID 1 of a pid namespace killed from the host.
    let c = Container::new(seed());
    let mut child = c.exec(&["sleep", "30"]).spawn().unwrap();
    let pid = c.wait_for_nspid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(137));
    Ok(())
}

fn signals_are_forwarded_to_pid_1() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let child = c
        .exec(&[
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; touch /ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), || c.file("ready").exists());
    let nsinit = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(nsinit, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "got-term\n");
    assert_eq!(out.status.code(), Some(42));
    Ok(())
}

fn pipes_work() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let mut child = c
        .exec(&["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "hi\n");
    Ok(())
}

fn terminal_gives_a_controlling_pty_and_console() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    // script(1) gives nsinit a terminal of its own.
    let inner = format!("{NSINIT} exec -t sh -c 'tty; ls -l /dev/console | cut -c1'");
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .current_dir(c.path())
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    let text = stdout(&out).replace('\r', "");
    assert!(
        text.contains("/dev/pts/0\nc\n"),
        "{text:?} / {}",
        stderr(&out)
    );
    Ok(())
}

fn without_newns_it_refuses_with_a_reason() -> Ran {
    needs_root()?;
    let config = with_field(seed(), "namespaces", r#"["NEWPID","NEWUTS"]"#);
    let c = Container::new(&config);
    let out = c.run(&["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("mount namespace"), "{}", stderr(&out));
    Ok(())
}

fn newuser_without_maps_is_refused() -> Ran {
    needs_root()?;
    let config = with_field(seed(), "namespaces", r#"["NEWNS","NEWUTS","NEWUSER"]"#);
    let c = Container::new(&config);
    let out = c.run(&["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("namespaces: a new user namespace needs uid_mappings"),
        "{}",
        stderr(&out)
    );
    assert!(!c.file(".nspid").exists());
    Ok(())
}

fn container_json_symlink_is_not_followed() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    std::fs::remove_file(c.file("container.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", c.file("container.json")).unwrap();
    let out = c.run(&["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    Ok(())
}

/// CVE-2021-30465 class: a mount target that is a symlink pointing out of the rootfs must
/// not redirect the mount onto the host.
fn symlinked_mount_target_is_refused_and_nothing_leaks_to_the_host() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    let outside = tempfile::tempdir().unwrap();
    std::fs::remove_dir(c.file("proc")).unwrap();
    std::os::unix::fs::symlink(outside.path(), c.file("proc")).unwrap();
    let out = c.run(&["true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(err.contains("/proc") && err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&outside.path().display().to_string()),
        "{mounts}"
    );
    assert!(!c.file(".nspid").exists());
    Ok(())
}

fn setup_failure_leaves_no_process_and_no_nspid() -> Ran {
    needs_root()?;
    let c = Container::new(seed());
    std::fs::remove_dir(c.file("sys")).unwrap();
    std::fs::write(c.file("sys"), "a file where /sys should be").unwrap();
    let out = c.run(&["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("/sys"), "{}", stderr(&out));
    assert!(!c.file(".nspid").exists());
    assert!(!state_file(c.path()).exists(), "no state file left");
    Ok(())
}
