//! Bad input and faults (issue 15): runtime errors reach the podman user as one readable line;
//! a killed conmon, shim or PID 1 leaves nothing behind once the engine has cleaned up; twenty
//! containers at once all succeed and leave nothing.

use std::fs;
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Result};

use super::{gone, kill, Case, Ctx};
use crate::engines::exec::{self, wait_for, Output, PATIENCE};
use crate::engines::image::NAME as IMAGE;

/// Containers started at once by the parallel scenario.
const PARALLEL: usize = 20;

pub fn cases() -> Vec<Case> {
    let case = |name, run| Case {
        suite: "faults",
        name,
        run,
    };
    vec![
        case("podman: --cap-add FOO is a readable error", bad_capability),
        case(
            "podman: a missing command is a readable error (127)",
            missing_command,
        ),
        case("podman: a bad mount is a readable error", bad_mount),
        case(
            "podman: conmon killed mid-run, rm -f (+ the runtime's delete) leaves nothing",
            kill_conmon,
        ),
        case("podman: kill -9 of PID 1 leaves nothing", kill_pid1_podman),
        case("podman: 20 containers at once, nothing left", parallel),
        case("ctr: shim killed mid-run leaves nothing", kill_shim),
        case("ctr: kill -9 of PID 1 leaves nothing", kill_pid1_ctr),
    ]
}

/// A failed `podman run` must say what failed in one line a person can read: no raw JSON log
/// record, no Go stack, and naming `object`.
fn readable(out: &Output, object: &str) -> Result<String> {
    let stderr = out.stderr.trim();
    ensure!(out.code != 0, "podman run succeeded");
    ensure!(!stderr.is_empty(), "nothing on stderr (exit {})", out.code);
    ensure!(
        !stderr.contains("{\"level\"") && !stderr.contains("\"msg\":"),
        "the runtime's JSON log record reached the user: {stderr}"
    );
    ensure!(
        !stderr.contains("goroutine "),
        "a Go stack reached the user"
    );
    let line = exec::one_line(stderr);
    ensure!(
        line.contains(object),
        "the error does not name {object}: {line}"
    );
    Ok(format!("exit {}: {line}", out.code))
}

fn bad_capability(ctx: &Ctx) -> Result<String> {
    let out = ctx.podman_run(&["--rm", "--cap-add", "FOO", IMAGE, "true"])?;
    readable(&out, "FOO")
}

fn missing_command(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("missing-command");
    let out = ctx.podman_run(&["--rm", "--name", &name, IMAGE, "/no/such/command"])?;
    let note = readable(&out, "/no/such/command")?;
    ensure!(
        out.code == 127,
        "exit {}, not 127 (command not found): {note}",
        out.code
    );
    let listed = ctx.podman_ok(&["ps", "-a", "--filter", &format!("name=^{name}$"), "-q"])?;
    ensure!(
        listed.trim().is_empty(),
        "the failed container is still listed"
    );
    Ok(note)
}

fn bad_mount(ctx: &Ctx) -> Result<String> {
    // A file bound over the image's /bin directory: podman accepts it, the runtime cannot.
    let file = ctx.work.join("a-file");
    fs::write(&file, "not a directory\n")?;
    let name = ctx.name("bad-mount");
    let volume = format!("{}:/bin", file.display());
    let out = ctx.podman_run(&["--rm", "--name", &name, "-v", &volume, IMAGE, "true"])?;
    let note = readable(&out, "/bin")?;
    let listed = ctx.podman_ok(&["ps", "-a", "--filter", &format!("name=^{name}$"), "-q"])?;
    ensure!(
        listed.trim().is_empty(),
        "the failed container is still listed"
    );
    Ok(note)
}

fn kill_conmon(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("kill-conmon");
    let id = ctx.podman_detached(&name, &[], &["sleep", "1000"])?;
    let result = (|| -> Result<_> {
        let pid = ctx.podman_pid(&name)?;
        let conmon: u32 = ctx.inspect(&name, "{{.State.ConmonPid}}")?.parse()?;
        ensure!(conmon > 1, "no conmon pid");
        kill(conmon, libc::SIGKILL)?;
        wait_for(Duration::from_secs(10), || gone(conmon).then_some(()))
            .ok_or_else(|| anyhow!("conmon {conmon} survived SIGKILL"))?;
        ctx.podman_ok(&["rm", "-f", "-t", "0", &name])?;
        wait_for(Duration::from_secs(10), || gone(pid).then_some(()))
            .ok_or_else(|| anyhow!("PID 1 ({pid}) outlived podman rm -f"))?;
        Ok(format!(
            "conmon {conmon} killed, PID 1 {pid} gone after rm -f"
        ))
    })();
    if result.is_err() {
        ctx.podman_remove(&name);
    }
    let mut note = result?;
    // podman 4.3.1 never calls the runtime's `delete` for a container whose conmon is gone:
    // the runtime's state and the (empty) cgroups stay, whatever the runtime. Anything else
    // (a process, a mount) is a failure; those two are cleared with the runtime's own
    // `delete --force`, as an operator would, and then nothing may remain.
    let left = ctx.leftovers_within(std::slice::from_ref(&id), Duration::from_secs(2));
    if !left.is_empty() {
        let other: Vec<&String> = left
            .iter()
            .filter(|l| !l.starts_with("state ") && !l.starts_with("cgroup "))
            .collect();
        ensure!(
            other.is_empty(),
            "left behind: {}",
            left.iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        );
        let out = ctx.scratch.run(
            std::process::Command::new(&ctx.runtime.path).args(["delete", "--force", &id]),
            PATIENCE,
        )?;
        ensure!(
            out.code == 0,
            "{} delete --force: {}",
            ctx.runtime.name,
            exec::one_line(&out.stderr)
        );
        note.push_str(&format!(
            "; podman left the runtime's state and cgroups ({} entries), `{} delete --force` cleared them",
            left.len(),
            ctx.runtime.name
        ));
    }
    ctx.expect_clean(&[id])?;
    Ok(note)
}

fn kill_pid1_podman(ctx: &Ctx) -> Result<String> {
    let name = ctx.name("kill-pid1");
    let id = ctx.podman_detached(&name, &[], &["sleep", "1000"])?;
    let result = (|| -> Result<_> {
        let pid = ctx.podman_pid(&name)?;
        kill(pid, libc::SIGKILL)?;
        let status = wait_for(Duration::from_secs(20), || {
            let s = ctx
                .inspect(&name, "{{.State.Status}} {{.State.ExitCode}}")
                .ok()?;
            s.starts_with("exited").then_some(s)
        })
        .ok_or_else(|| anyhow!("podman never saw PID 1 die"))?;
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

fn parallel(ctx: &Ctx) -> Result<String> {
    let cid_dir = ctx.work.join("cids");
    if cid_dir.exists() {
        fs::remove_dir_all(&cid_dir)?;
    }
    fs::create_dir_all(&cid_dir)?;
    let options = ctx.podman.run_options();
    let commands: Vec<_> = (0..PARALLEL)
        .map(|i| {
            let cidfile = cid_dir.join(i.to_string()).display().to_string();
            let name = ctx.name(&format!("parallel-{i}"));
            let echo = format!("echo container {i}");
            let mut args: Vec<&str> = vec!["run", "--rm", "--name", &name, "--cidfile", &cidfile];
            args.extend(options.iter().map(String::as_str));
            args.extend([IMAGE, "sh", "-c", &echo]);
            ctx.podman_command(&args)
        })
        .collect();
    let scratch = ctx.scratch;
    let outcomes: Vec<Result<Output>> = thread::scope(|scope| {
        let handles: Vec<_> = commands
            .into_iter()
            .map(|mut command| scope.spawn(move || scratch.run(&mut command, PATIENCE * 2)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("thread panicked"))))
            .collect()
    });
    let mut ids = Vec::new();
    for i in 0..PARALLEL {
        if let Ok(id) = fs::read_to_string(cid_dir.join(i.to_string())) {
            ctx.note_id(&id);
            ids.push(id.trim().to_string());
        }
    }
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(out) if out.code == 0 && out.text() == format!("container {i}") => {
                slowest = slowest.max(out.elapsed);
            }
            Ok(out) => failures.push(format!(
                "#{i}: exit {}, {:?}, {}",
                out.code,
                out.text(),
                exec::one_line(&out.stderr)
            )),
            Err(error) => failures.push(format!("#{i}: {error:#}")),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {PARALLEL} failed: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    ensure!(ids.len() == PARALLEL, "only {} cidfiles written", ids.len());
    let listed = ctx.podman_ok(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("name={}", ctx.name("parallel-")),
    ])?;
    ensure!(
        listed.trim().is_empty(),
        "podman ps -a still lists: {}",
        listed.trim()
    );
    ctx.expect_clean(&ids)?;
    Ok(format!(
        "{PARALLEL} ok, slowest {:.1} s",
        slowest.as_secs_f64()
    ))
}

/// The shim's pid: the parent of the task's PID 1.
fn parent(pid: u32) -> Result<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    crate::procfs::parse_stat(&text)
        .map(|s| s.ppid)
        .ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))
}

fn kill_shim(ctx: &Ctx) -> Result<String> {
    let id = ctx.ctr_id("kill-shim");
    ctx.ctr_run(&id, &["-d"], &["sleep", "1000"])?
        .ok("ctr run -d")?;
    let result = (|| -> Result<_> {
        let (pid, _) = ctx.ctr_task(&id)?.ok_or_else(|| anyhow!("no task {id}"))?;
        let shim = parent(pid)?;
        let cmdline = fs::read_to_string(format!("/proc/{shim}/cmdline")).unwrap_or_default();
        ensure!(
            cmdline.contains("containerd-shim"),
            "the parent of PID 1 is not the shim: {cmdline:?}"
        );
        kill(shim, libc::SIGKILL)?;
        // containerd notices the shim's death, runs the shim's cleanup (`delete`), which
        // force-deletes the container through the runtime.
        wait_for(Duration::from_secs(30), || gone(pid).then_some(()))
            .ok_or_else(|| anyhow!("PID 1 ({pid}) outlived its shim"))?;
        let _ = ctx.ctr(&["task", "delete", &id]);
        ctx.ctr_ok(&["container", "rm", &id])?;
        Ok(format!("shim {shim} killed, PID 1 {pid} gone"))
    })();
    if result.is_err() {
        ctx.ctr_remove(&id);
    }
    let mut note = result?;
    ctx.expect_clean(std::slice::from_ref(&id))?;
    // containerd leaves the killed shim's socket behind (in its fixed /run/containerd/s):
    // an engine leftover whatever the runtime, noted and removed.
    let socket = ctx
        .containerd
        .shim_socket(crate::engines::containerd::NAMESPACE, &id)?;
    if socket.exists() {
        fs::remove_file(&socket)?;
        note.push_str(&format!(
            "; containerd left the dead shim's socket {} (removed)",
            socket.display()
        ));
    }
    Ok(note)
}

fn kill_pid1_ctr(ctx: &Ctx) -> Result<String> {
    let id = ctx.ctr_id("kill-pid1");
    ctx.ctr_run(&id, &["-d"], &["sleep", "1000"])?
        .ok("ctr run -d")?;
    let result = (|| -> Result<_> {
        let (pid, _) = ctx.ctr_task(&id)?.ok_or_else(|| anyhow!("no task {id}"))?;
        kill(pid, libc::SIGKILL)?;
        wait_for(Duration::from_secs(20), || {
            matches!(ctx.ctr_task(&id), Ok(Some((_, ref s))) if s == "STOPPED").then_some(())
        })
        .ok_or_else(|| anyhow!("containerd never saw PID 1 die"))?;
        ctx.ctr_ok(&["task", "delete", &id])?;
        ctx.ctr_ok(&["container", "rm", &id])?;
        Ok(format!("PID 1 {pid} killed, task STOPPED, deleted"))
    })();
    if result.is_err() {
        ctx.ctr_remove(&id);
    }
    let note = result?;
    ctx.expect_clean(&[id])?;
    Ok(note)
}
