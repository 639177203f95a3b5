//! podman scenarios (issue 15 §2): podman → conmon → the runtime, each checked from the host
//! or from inside the container.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::{counter, expect_contains, wait_for_handler, Case, Ctx};
use crate::engines::exec::{self, wait_for, PATIENCE};
use crate::engines::host::Places;
use crate::engines::image::NAME as IMAGE;
use crate::engines::podman::GATEWAY;
use crate::engines::pty::Pty;
use crate::engines::rootless::{Rootless, SUBORDINATE_COUNT};

pub fn cases() -> Vec<Case> {
    let case = |name, run| Case {
        suite: "podman",
        name,
        run,
    };
    vec![
        case("run --rm IMG cat <release file>", run_rm),
        case("run: exit status passed through", exit_status),
        case("run -d", run_detached),
        case("exec (output and exit status)", exec),
        case("logs", logs),
        case("top", top),
        case("ps", ps),
        case("inspect: the pid is the container's PID 1", inspect_pid),
        case("pause / unpause", pause_unpause),
        case("stop: KILL after the timeout", stop_kill),
        case("stop: TERM handled", stop_term),
        case("kill", kill),
        case("rm -f of a running container", rm_force),
        case("run -it: terminal, resize passed through", terminal),
        case(
            "--memory 32m: the limit in the container's cgroup",
            memory_limit,
        ),
        case(
            "--memory 32m: an allocation past it is OOM-killed",
            memory_oom,
        ),
        case("--pids-limit", pids_limit),
        case("--network none: only lo", network_none),
        case("default bridge: address, route, gateway answers", bridge),
        case("--read-only", read_only),
        case("--cap-drop ALL --cap-add NET_BIND_SERVICE", capabilities),
        case("--user 1000:1000", user),
        case("--tmpfs", tmpfs),
        case("-v HOSTDIR:/data and :ro", bind_mounts),
        case("--security-opt seccomp=unconfined", seccomp_unconfined),
        case("default seccomp profile", seccomp_default),
        case("healthcheck run (an exec)", healthcheck),
        case(
            "rootless: a plain user's podman runs IMG id (root inside, its ids mapped)",
            rootless,
        ),
    ]
}

fn run_rm(ctx: &Ctx) -> Result<String> {
    let out = ctx
        .podman_run(&["--rm", IMAGE, "cat", ctx.image.release_file])?
        .ok("podman run --rm")?;
    ensure!(
        out.stdout == ctx.image.release_text,
        "expected {:?}, got {:?}",
        ctx.image.release_text,
        out.stdout
    );
    Ok(format!("{:.1} s", out.elapsed.as_secs_f64()))
}

fn exit_status(ctx: &Ctx) -> Result<String> {
    for code in [0, 3, 42] {
        let out = ctx.podman_run(&["--rm", IMAGE, "sh", "-c", &format!("exit {code}")])?;
        ensure!(
            out.code == code,
            "sh -c 'exit {code}' gave exit {}: {}",
            out.code,
            exec::one_line(&out.stderr)
        );
    }
    Ok("0, 3, 42".into())
}

fn run_detached(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("detached");
    let id = ctx.podman_detached(&name, &[], &["sh", "-c", "echo started; exec sleep 1000"])?;
    ensure!(id.len() == 64, "podman run -d printed {id:?}, not an id");
    *ctx.detached.borrow_mut() = Some((name.clone(), id.clone()));
    let status = ctx.inspect(&name, "{{.State.Status}}")?;
    ensure!(status == "running", "status {status}");
    // conmon runs this runtime and hands it a JSON log (its name is in
    // runtime_supports_json), which is how the runtime's errors reach podman's user.
    let conmon = ctx.inspect(&name, "{{.State.ConmonPid}}")?;
    let cmdline = fs::read(format!("/proc/{conmon}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .with_context(|| format!("read conmon {conmon}'s command line"))?;
    expect_contains(
        "conmon's command line",
        &cmdline,
        &format!("-r {}", ctx.runtime.path.display()),
    )?;
    expect_contains("conmon's command line", &cmdline, "--log-format=json")?;
    Ok(format!(
        "{} running; conmon {conmon} runs {} with --log-format=json",
        &id[..12],
        ctx.runtime.path.display()
    ))
}

/// The `run -d` container's name and id.
fn detached(ctx: &Ctx) -> Result<(String, String)> {
    ctx.detached
        .borrow()
        .clone()
        .ok_or_else(|| anyhow!("no detached container (run -d failed)"))
}

fn exec(ctx: &Ctx) -> Result<String> {
    let (name, _) = detached(ctx)?;
    let script = format!("cat {}; exit 7", ctx.image.release_file);
    let out = ctx.podman(&["exec", &name, "sh", "-c", &script])?;
    ensure!(
        out.code == 7,
        "exit {}: {}",
        out.code,
        exec::one_line(&out.stderr)
    );
    ensure!(
        out.stdout == ctx.image.release_text,
        "printed {:?}",
        out.stdout
    );
    Ok("exit 7, output".into())
}

fn logs(ctx: &Ctx) -> Result<String> {
    let (name, _) = detached(ctx)?;
    let out = ctx.podman_ok(&["logs", &name])?;
    expect_contains("podman logs", &out, "started")?;
    Ok(String::new())
}

fn top(ctx: &Ctx) -> Result<String> {
    let (name, _) = detached(ctx)?;
    let out = ctx.podman_ok(&["top", &name])?;
    expect_contains("podman top", &out, "sleep 1000")?;
    Ok(String::new())
}

fn ps(ctx: &Ctx) -> Result<String> {
    let (name, id) = detached(ctx)?;
    let out = ctx.podman_ok(&[
        "ps",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.ID}} {{.Status}}",
    ])?;
    expect_contains("podman ps", &out, &id[..12])?;
    expect_contains("podman ps", &out, "Up")?;
    Ok(out.trim().to_string())
}

fn inspect_pid(ctx: &Ctx) -> Result<String> {
    let (name, id) = detached(ctx)?;
    let pid = ctx.podman_pid(&name)?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm"))?;
    ensure!(
        comm.trim() == "sleep",
        "pid {pid} is {:?}, not sleep",
        comm.trim()
    );
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap_or("")
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string();
    ensure!(
        nspid == "1",
        "pid {pid} is pid {nspid} in its namespace, not 1"
    );
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    expect_contains("its /proc/PID/cgroup", &cgroup, &id)?;
    Ok(format!("pid {pid}"))
}

/// `freezer.state` (v1) or `cgroup.freeze` (v2) of the container whose PID 1 is `pid`.
fn frozen(ctx: &Ctx, pid: u32) -> Result<bool> {
    let file = ctx.cgroup_file(pid, "freezer", "freezer.state", "cgroup.freeze")?;
    let text = fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    Ok(matches!(text.trim(), "FROZEN" | "1"))
}

fn pause_unpause(ctx: &Ctx) -> Result<String> {
    let (name, _) = detached(ctx)?;
    let pid = ctx.podman_pid(&name)?;
    ctx.podman_ok(&["pause", &name])?;
    let status = ctx.inspect(&name, "{{.State.Status}}")?;
    ensure!(status == "paused", "after pause: status {status}");
    ensure!(frozen(ctx, pid)?, "after pause: the cgroup is not frozen");
    ctx.podman_ok(&["unpause", &name])?;
    let status = ctx.inspect(&name, "{{.State.Status}}")?;
    ensure!(status == "running", "after unpause: status {status}");
    ensure!(
        !frozen(ctx, pid)?,
        "after unpause: the cgroup is still frozen"
    );
    ctx.podman_ok(&["exec", &name, "true"])?;
    Ok("frozen, thawed, exec works".into())
}

fn stop_kill(ctx: &Ctx) -> Result<String> {
    let (name, id) = detached(ctx)?;
    // PID 1 `sleep` has no TERM handler: the kernel drops TERM, podman sends KILL at 2 s.
    let out = ctx.podman(&["stop", "-t", "2", &name])?.ok("podman stop")?;
    ensure!(
        out.elapsed >= Duration::from_secs(2),
        "stop returned after {:.1} s, before its 2 s timeout",
        out.elapsed.as_secs_f64()
    );
    let code = ctx.inspect(&name, "{{.State.ExitCode}}")?;
    ensure!(code == "137", "exit code {code}, not 137 (KILL)");
    ctx.podman_ok(&["rm", &name])?;
    *ctx.detached.borrow_mut() = None;
    ctx.expect_clean(&[id])?;
    Ok(format!(
        "{:.1} s, exit 137, removed",
        out.elapsed.as_secs_f64()
    ))
}

fn stop_term(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("stop-term");
    let id = ctx.podman_detached(
        &name,
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.1; done",
        ],
    )?;
    let result = (|| -> Result<_> {
        wait_for_handler(ctx.podman_pid(&name)?, libc::SIGTERM)?;
        let out = ctx
            .podman(&["stop", "-t", "20", &name])?
            .ok("podman stop")?;
        ensure!(
            out.elapsed < Duration::from_secs(15),
            "stop took {:.1} s: TERM was not handled",
            out.elapsed.as_secs_f64()
        );
        let code = ctx.inspect(&name, "{{.State.ExitCode}}")?;
        ensure!(code == "42", "exit code {code}, not the trap's 42");
        Ok(format!("{:.1} s, exit 42", out.elapsed.as_secs_f64()))
    })();
    ctx.podman_remove(&name);
    let note = result?;
    ctx.expect_clean(&[id])?;
    Ok(note)
}

fn kill(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("kill");
    let id = ctx.podman_detached(&name, &[], &["sleep", "1000"])?;
    let result = (|| -> Result<_> {
        let pid = ctx.podman_pid(&name)?;
        ctx.podman_ok(&["kill", &name])?;
        wait_for(Duration::from_secs(10), || super::gone(pid).then_some(()))
            .ok_or_else(|| anyhow!("PID 1 ({pid}) still alive after podman kill"))?;
        let status = wait_for(Duration::from_secs(10), || {
            let s = ctx
                .inspect(&name, "{{.State.Status}} {{.State.ExitCode}}")
                .ok()?;
            s.starts_with("exited").then_some(s)
        })
        .ok_or_else(|| anyhow!("podman never saw the container exit"))?;
        ensure!(status == "exited 137", "{status}");
        ctx.podman_ok(&["rm", &name])?;
        Ok(status)
    })();
    if result.is_err() {
        ctx.podman_remove(&name);
    }
    let note = result?;
    ctx.expect_clean(&[id])?;
    Ok(note)
}

fn rm_force(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("rm-f");
    let id = ctx.podman_detached(&name, &[], &["sleep", "1000"])?;
    let pid = ctx.podman_pid(&name)?;
    ctx.podman_ok(&["rm", "-f", "-t", "0", &name])?;
    ensure!(super::gone(pid), "PID 1 ({pid}) alive after rm -f");
    let listed = ctx.podman_ok(&["ps", "-a", "--filter", &format!("name=^{name}$"), "-q"])?;
    ensure!(listed.trim().is_empty(), "podman ps -a still lists it");
    ctx.expect_clean(&[id])?;
    Ok(String::new())
}

fn terminal(ctx: &Ctx) -> Result<String> {
    let mut pty = Pty::open(24, 80)?;
    let options = ctx.podman.run_options();
    let mut args: Vec<&str> = vec!["run", "-it", "--rm"];
    args.extend(options.iter().map(String::as_str));
    let script = "stty size; i=0; while [ \"$(stty size)\" = '24 80' ] && [ $i -lt 200 ]; \
                  do sleep 0.1; i=$((i+1)); done; stty size; tty; exit 5";
    args.extend([IMAGE, "sh", "-c", script]);
    let mut child = pty.spawn(ctx.podman_command(&args))?;
    let result = (|| -> Result<_> {
        ensure!(
            pty.read_until("24 80", Duration::from_secs(60)),
            "the container never printed its size 24 80: {:?}",
            pty.seen
        );
        pty.resize(40, 100)?;
        ensure!(
            pty.read_until("40 100", Duration::from_secs(30)),
            "the resize to 40x100 never reached the container: {:?}",
            pty.seen
        );
        pty.read_to_end(Duration::from_secs(30));
        expect_contains("tty", &pty.seen, "/dev/pts/")?;
        Ok(())
    })();
    let status = wait_for(Duration::from_secs(30), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        result?;
        bail!("podman run -it did not exit");
    };
    result?;
    let code = exec::code(status);
    ensure!(code == 5, "podman run -it exited {code}, not 5");
    Ok("24x80, resized to 40x100, exit 5".into())
}

fn memory_limit(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("memory");
    let id = ctx.podman_detached(&name, &["--memory", "32m"], &["sleep", "1000"])?;
    let result = (|| -> Result<_> {
        let pid = ctx.podman_pid(&name)?;
        let file = ctx.cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")?;
        let limit = fs::read_to_string(&file)?;
        ensure!(
            limit.trim() == "33554432",
            "{} is {}, not 32 MiB",
            file.display(),
            limit.trim()
        );
        ensure!(
            file.to_string_lossy().contains(&id),
            "{} is not the container's own group",
            file.display()
        );
        Ok(format!("{} = 33554432", file.display()))
    })();
    ctx.podman_remove(&name);
    result
}

fn memory_oom(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("oom");
    let id = ctx.podman_detached(&name, &["--memory", "32m"], &["sleep", "1000"])?;
    let result = (|| -> Result<_> {
        let pid = ctx.podman_pid(&name)?;
        let events = ctx.cgroup_file(pid, "memory", "memory.oom_control", "memory.events")?;
        let out = ctx.podman(&[
            "exec",
            &name,
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$?",
        ])?;
        expect_contains("the allocation's exit status", &out.stdout, "dd=137")?;
        let text = fs::read_to_string(&events)?;
        let kills = counter(&text, "oom_kill").unwrap_or(0);
        ensure!(kills >= 1, "{} counts no OOM kill", events.display());
        Ok(kills)
    })();
    ctx.podman_remove(&name);
    let kills = result?;
    // The same allocation as PID 1: podman reports the container's death by KILL.
    let name = ctx.name("oom-pid1");
    let out = ctx.podman_run(&[
        "--name",
        &name,
        "--memory",
        "32m",
        IMAGE,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ])?;
    let oom_killed = ctx
        .inspect(&name, "{{.State.OOMKilled}}")
        .unwrap_or_default();
    ctx.podman_remove(&name);
    ensure!(out.code == 137, "podman run exited {}, not 137", out.code);
    let _ = id;
    Ok(format!(
        "allocation killed (dd=137), cgroup oom_kill {kills}, podman run exit 137, inspect OOMKilled={oom_killed}"
    ))
}

fn pids_limit(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("pids");
    ctx.podman_detached(&name, &["--pids-limit", "16"], &["sleep", "1000"])?;
    let result = (|| -> Result<_> {
        let pid = ctx.podman_pid(&name)?;
        let file = ctx.cgroup_file(pid, "pids", "pids.max", "pids.max")?;
        let max = fs::read_to_string(&file)?;
        ensure!(max.trim() == "16", "{} is {}", file.display(), max.trim());
        let out = ctx.podman(&[
            "exec",
            &name,
            "sh",
            "-c",
            "for i in $(seq 24); do sleep 3 & done; wait",
        ])?;
        expect_contains("forking past the limit", &out.stderr, "fork")?;
        Ok("pids.max 16, fork refused past it".into())
    })();
    ctx.podman_remove(&name);
    result
}

fn network_none(ctx: &Ctx) -> Result<String> {
    let out = ctx
        .podman_run(&["--rm", "--network", "none", IMAGE, "ls", "/sys/class/net"])?
        .ok("podman run")?;
    ensure!(out.text() == "lo", "interfaces: {:?}", out.text());
    Ok("lo".into())
}

fn bridge(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("bridge");
    ctx.podman_detached(&name, &[], &["sleep", "1000"])?;
    let result = (|| -> Result<_> {
        let script = format!("ip -4 -o addr show eth0; ip route; ping -c1 -W3 {GATEWAY}");
        let out = ctx
            .podman(&["exec", &name, "sh", "-c", &script])?
            .ok("podman exec (ping the gateway)")?;
        let address = out
            .stdout
            .split_whitespace()
            .find(|w| w.starts_with("10.89.213.") && w.contains('/'))
            .ok_or_else(|| anyhow!("no 10.89.213.x address on eth0: {:?}", out.stdout))?
            .to_string();
        expect_contains("ip route", &out.stdout, &format!("default via {GATEWAY}"))?;
        expect_contains("ping", &out.stdout, "1 packets received")?;
        // The bridge and netavark's rules are the stand-in host's (the real host's are
        // compared before and after the whole step).
        let inside = |program: &str, args: &[&str]| -> Result<String> {
            let mut command = Command::new("nsenter");
            command
                .arg(format!("--net={}", ctx.podman.netns().display()))
                .arg(program)
                .args(args);
            Ok(ctx.scratch.run(&mut command, PATIENCE)?.ok(program)?.stdout)
        };
        expect_contains(
            "the stand-in's links",
            &inside("ip", &["-o", "link"])?,
            "podman0",
        )?;
        expect_contains(
            "the stand-in's rules",
            &inside("iptables-save", &[])?,
            "NETAVARK",
        )?;
        Ok(format!(
            "{address}, default via {GATEWAY}, ping answered; podman0 and NETAVARK rules in the stand-in netns"
        ))
    })();
    ctx.podman_remove(&name);
    result
}

fn read_only(ctx: &Ctx) -> Result<String> {
    let script =
        "if touch /x 2>/dev/null; then echo root-writable; fi; touch /tmp/y && echo tmp-writable";
    let out = ctx
        .podman_run(&["--rm", "--read-only", IMAGE, "sh", "-c", script])?
        .ok("podman run --read-only")?;
    ensure!(!out.stdout.contains("root-writable"), "/ is writable");
    expect_contains("/tmp", &out.stdout, "tmp-writable")?;
    Ok("/ refused, /tmp writable".into())
}

fn capabilities(ctx: &Ctx) -> Result<String> {
    let out = ctx
        .podman_run(&[
            "--rm",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_BIND_SERVICE",
            IMAGE,
            "grep",
            "^Cap",
            "/proc/self/status",
        ])?
        .ok("podman run")?;
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        expect_contains(set, &out.stdout, &format!("{set}:\t0000000000000400"))?;
    }
    Ok("CapPrm = CapEff = CapBnd = 0x400".into())
}

fn user(ctx: &Ctx) -> Result<String> {
    let out = ctx
        .podman_run(&[
            "--rm",
            "--user",
            "1000:1000",
            IMAGE,
            "sh",
            "-c",
            "id -u; id -g",
        ])?
        .ok("podman run --user")?;
    ensure!(out.text() == "1000\n1000", "id: {:?}", out.text());
    Ok("uid 1000, gid 1000".into())
}

fn tmpfs(ctx: &Ctx) -> Result<String> {
    let out = ctx
        .podman_run(&[
            "--rm",
            "--tmpfs",
            "/scratch",
            IMAGE,
            "sh",
            "-c",
            "grep ' /scratch ' /proc/mounts; echo written > /scratch/f && cat /scratch/f",
        ])?
        .ok("podman run --tmpfs")?;
    expect_contains("/proc/mounts", &out.stdout, "tmpfs /scratch tmpfs")?;
    expect_contains("a file in it", &out.stdout, "written")?;
    Ok(String::new())
}

fn bind_mounts(ctx: &Ctx) -> Result<String> {
    let dir = ctx.work.join("data");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("in"), "from-host\n")?;
    let volume = format!("{}:/data", dir.display());
    let out = ctx
        .podman_run(&[
            "--rm",
            "-v",
            &volume,
            IMAGE,
            "sh",
            "-c",
            "cat /data/in; echo from-container > /data/out",
        ])?
        .ok("podman run -v")?;
    ensure!(out.text() == "from-host", "read {:?}", out.text());
    let written = fs::read_to_string(dir.join("out")).context("the container's write")?;
    ensure!(written == "from-container\n", "host sees {written:?}");
    let volume = format!("{volume}:ro");
    let out = ctx
        .podman_run(&[
            "--rm",
            "-v",
            &volume,
            IMAGE,
            "sh",
            "-c",
            "cat /data/in; echo x > /data/out2 || echo refused",
        ])?
        .ok("podman run -v :ro")?;
    expect_contains(":ro read", &out.stdout, "from-host")?;
    expect_contains(":ro write", &out.stdout, "refused")?;
    ensure!(!dir.join("out2").exists(), "a write went through :ro");
    Ok("read and written; :ro read, write refused".into())
}

fn seccomp_mode(ctx: &Ctx, options: &[&str]) -> Result<String> {
    let mut args = vec!["--rm"];
    args.extend_from_slice(options);
    args.extend([IMAGE, "grep", "^Seccomp:", "/proc/self/status"]);
    let out = ctx.podman_run(&args)?.ok("podman run")?;
    Ok(out.text().trim_start_matches("Seccomp:").trim().to_string())
}

fn seccomp_unconfined(ctx: &Ctx) -> Result<String> {
    let mode = seccomp_mode(ctx, &["--security-opt", "seccomp=unconfined"])?;
    ensure!(mode == "0", "Seccomp: {mode}, not 0 (disabled)");
    Ok("Seccomp: 0".into())
}

fn seccomp_default(ctx: &Ctx) -> Result<String> {
    let mode = seccomp_mode(ctx, &[])?;
    ensure!(mode == "2", "Seccomp: {mode}, not 2 (filter)");
    Ok("Seccomp: 2".into())
}

fn healthcheck(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("health");
    ctx.podman_detached(
        &name,
        // No systemd here to run podman's timer: the check runs when asked.
        &[
            "--health-cmd",
            "cat /tmp/healthy",
            "--health-interval",
            "disable",
        ],
        &["sleep", "1000"],
    )?;
    let result = (|| -> Result<_> {
        let started = Instant::now();
        let out = ctx.podman(&["healthcheck", "run", &name])?;
        ensure!(
            out.code == 1,
            "before: healthcheck run exited {} (not 1, unhealthy)",
            out.code
        );
        ctx.podman_ok(&["exec", &name, "touch", "/tmp/healthy"])?;
        let out = ctx.podman(&["healthcheck", "run", &name])?;
        ensure!(
            out.code == 0,
            "after: healthcheck run exited {}: {}",
            out.code,
            exec::one_line(&out.stderr)
        );
        let health = ctx.inspect(&name, "{{.State.Health.Status}}")?;
        ensure!(health == "healthy", "inspect says {health}");
        Ok(format!(
            "unhealthy, then healthy ({:.1} s)",
            started.elapsed().as_secs_f64()
        ))
    })();
    ctx.podman_remove(&name);
    result
}

/// Issue 16: podman run by a plain user with subordinate ids (`rootless.rs`), this runtime
/// registered with it, imports the image and runs `id` in it as root; the user namespace is
/// podman's: its maps are the user's uid and subordinate range, and files the container makes
/// in a bind mount belong to the user (root inside) and to a subordinate id (1000 inside).
fn rootless(ctx: &Ctx) -> Result<String> {
    let rootless = Rootless::setup(ctx.podman.netns(), ctx.runtime, &ctx.image.tarball)?;
    let result = rootless_run(ctx, &rootless);
    let ended = rootless.remove()?;
    let note = result?;
    ensure!(
        ended.is_empty(),
        "still running in podman's user namespace: {}",
        ended.join("; ")
    );
    Ok(note)
}

fn rootless_run(ctx: &Ctx, r: &Rootless) -> Result<String> {
    let podman = |args: &[&str]| {
        ctx.scratch
            .run(r.podman.command(&r.runtime.name).args(args), PATIENCE)
    };
    let image = r.image.display().to_string();
    let import = podman(&["import", &image, IMAGE])?.ok("podman import (rootless)")?;
    let info = podman(&[
        "info",
        "--format",
        "{{.Host.Security.Rootless}} {{.Host.OCIRuntime.Path}}",
    ])?
    .ok("podman info (rootless)")?;
    let expected = format!("true {}", r.runtime.path.display());
    ensure!(
        info.text() == expected,
        "podman info says {:?}, not {expected:?} (rootless, this runtime)",
        info.text()
    );
    let cidfile = r.home.join("cid").display().to_string();
    let volume = format!("{}:/data", r.data.display());
    // `--network none`: slirp4netns, rootless podman's default, opens /dev/net/tun, which is
    // root's alone on a host whose udev left it 0600 (this one); runc fails the same way.
    // `none` still gives the container a network namespace of its own, with `lo` up.
    let script = "id; cat /proc/self/uid_map /proc/self/gid_map /sys/class/net/lo/flags; \
                  touch /data/by-root; touch /data/by-1000; chown 1000:1000 /data/by-1000";
    // Not `--log-level debug`: conmon's exit command (`podman container cleanup`) would log to
    // syslog, fail where there is no /dev/log (this host), and `run --rm` would wait 20 s.
    let run = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cidfile",
        &cidfile,
        "-v",
        &volume,
        IMAGE,
        "sh",
        "-c",
        script,
    ])?
    .ok("podman run --rm (rootless)")?;
    let id = fs::read_to_string(&cidfile).context("podman's --cidfile")?;
    ctx.note_id(&id);
    let lines: Vec<String> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let (user, sub) = (r.account.id, r.account.subordinate);
    ensure!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("uid=0(root) gid=0(root)")),
        "id: {lines:?}"
    );
    let map = [
        format!("0 {user} 1"),
        format!("1 {sub} {SUBORDINATE_COUNT}"),
    ];
    ensure!(
        lines.get(1..5) == Some(&[map.clone(), map].concat()[..]),
        "uid_map and gid_map: {:?}",
        &lines[1..]
    );
    // IFF_UP is bit 0 of lo's flags.
    let flags = lines
        .get(5)
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    ensure!(
        flags.is_some_and(|f| f & 1 == 1),
        "lo's flags: {:?}",
        lines.get(5)
    );
    let owner = |name: &str| -> Result<(u32, u32)> {
        let meta = fs::metadata(r.data.join(name)).with_context(|| format!("/data/{name}"))?;
        Ok((meta.uid(), meta.gid()))
    };
    ensure!(
        owner("by-root")? == (user, user),
        "/data/by-root is {:?} on the host, not the user's {user}",
        owner("by-root")?
    );
    let mapped = sub + 999;
    ensure!(
        owner("by-1000")? == (mapped, mapped),
        "/data/by-1000 is {:?} on the host, not {mapped}",
        owner("by-1000")?
    );
    let places = Places {
        cgroup_mounts: ctx.cgroup_mounts,
        cgroup_root: ctx.cgroup_root,
        state_dirs: r.state_dirs(),
        work: &r.home,
    };
    let ids = [id.trim().to_string()];
    let left = wait_for(Duration::from_secs(10), || {
        places.leftovers(&ids).is_empty().then_some(())
    });
    ensure!(
        left.is_some(),
        "left behind: {}",
        places.leftovers(&ids).join("; ")
    );
    Ok(format!(
        "uid 0 inside; maps 0 {user} 1, 1 {sub} {SUBORDINATE_COUNT}; lo up; /data files owned by {user} and {mapped}; import {:.1} s, run {:.1} s",
        import.elapsed.as_secs_f64(),
        run.elapsed.as_secs_f64()
    ))
}
