//! containerd scenarios (issue 15 §3): `ctr` → containerd → the runc v2 shim → the runtime
//! (`--runc-binary`), which the shim calls with `--root`, `--log` and `--log-format json`.

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::{expect_contains, wait_for_handler, Case, Ctx};
use crate::engines::exec::{self, wait_for, Output, PATIENCE};
use crate::engines::image::NAME as IMAGE;
use crate::engines::pty::Pty;

pub fn cases() -> Vec<Case> {
    let case = |name, run| Case {
        suite: "ctr",
        name,
        run,
    };
    vec![
        case("run --rm: output and exit status", run_rm),
        case("run -d, task ps: the pid is the container's", run_detached),
        case("task exec", task_exec),
        case("task pause / resume", pause_resume),
        case("task kill, task delete", kill_delete),
        case(
            "task kill: TERM reaches a handler, status passed through",
            kill_term,
        ),
        case("run --rm -t: a terminal", terminal),
    ]
}

impl Ctx<'_> {
    pub fn ctr_id(&self, what: &str) -> String {
        format!("nsinit-engines-{}-ctr-{what}", self.runtime.name)
    }

    /// `ctr -n NS ARGS`.
    pub fn ctr(&self, args: &[&str]) -> Result<Output> {
        self.scratch
            .run(self.containerd.ctr_ns().args(args), PATIENCE)
    }

    pub fn ctr_ok(&self, args: &[&str]) -> Result<String> {
        let what = format!(
            "ctr {}",
            args.iter().take(2).copied().collect::<Vec<_>>().join(" ")
        );
        Ok(self.ctr(args)?.ok(&what)?.stdout)
    }

    /// `ctr -n NS run` with this runtime (`--runc-binary`, its own `--runc-root`), the
    /// harness's fifo directory and a cgroup under the harness's parent; `options` before the
    /// image, `command` after the id.
    pub fn ctr_run_command(&self, id: &str, options: &[&str], command: &[&str]) -> Command {
        let mut ctr = self.containerd.ctr_ns();
        ctr.arg("run")
            .arg("--runc-binary")
            .arg(&self.runtime.path)
            .arg("--runc-root")
            .arg(self.containerd.ctr_runtime_root(self.runtime))
            .arg("--fifo-dir")
            .arg(self.containerd.fifo_dir())
            .arg("--cgroup")
            .arg(format!("{}/ctr/{id}", self.cgroup_root))
            .args(options)
            .arg(IMAGE)
            .arg(id)
            .args(command);
        ctr
    }

    pub fn ctr_run(&self, id: &str, options: &[&str], command: &[&str]) -> Result<Output> {
        self.note_id(id);
        self.scratch
            .run(&mut self.ctr_run_command(id, options, command), PATIENCE)
    }

    /// The task's pid and status from `ctr task ls`.
    pub fn ctr_task(&self, id: &str) -> Result<Option<(u32, String)>> {
        let out = self.ctr_ok(&["task", "ls"])?;
        Ok(out.lines().skip(1).find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == id).then_some(())?;
            let pid = fields.next()?.parse().ok()?;
            Some((pid, fields.next()?.to_string()))
        }))
    }

    /// Deletes the task (killing it first) and the container, ignoring failures.
    pub fn ctr_remove(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        let _ = wait_for(Duration::from_secs(5), || {
            matches!(self.ctr_task(id), Ok(Some((_, ref s))) if s == "STOPPED").then_some(())
        });
        let _ = self.ctr(&["task", "delete", id]);
        let _ = self.ctr(&["container", "rm", id]);
    }
}

fn run_rm(ctx: &Ctx) -> Result<String> {
    let id = ctx.ctr_id("rm");
    let script = format!("cat {}; exit 3", ctx.image.release_file);
    let out = ctx.ctr_run(&id, &["--rm"], &["sh", "-c", &script])?;
    ensure!(
        out.code == 3,
        "exit {}: {}",
        out.code,
        exec::one_line(&out.stderr)
    );
    ensure!(
        out.stdout == ctx.image.release_text,
        "printed {:?}",
        out.stdout
    );
    ctx.expect_clean(&[id])?;
    Ok(format!(
        "exit 3, output, {:.1} s",
        out.elapsed.as_secs_f64()
    ))
}

fn detached_id(ctx: &Ctx) -> String {
    ctx.ctr_id("detached")
}

fn run_detached(ctx: &Ctx) -> Result<String> {
    let id = detached_id(ctx);
    ctx.ctr_run(&id, &["-d"], &["sleep", "1000"])?
        .ok("ctr run -d")?;
    let (pid, status) = ctx
        .ctr_task(&id)?
        .ok_or_else(|| anyhow!("ctr task ls does not list {id}"))?;
    ensure!(status == "RUNNING", "status {status}");
    let listed = ctx.ctr_ok(&["task", "ps", &id])?;
    ensure!(
        listed
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "ctr task ps does not list {pid}: {listed:?}"
    );
    let comm = fs::read_to_string(format!("/proc/{pid}/comm"))?;
    ensure!(comm.trim() == "sleep", "pid {pid} is {:?}", comm.trim());
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    expect_contains("its cgroup", &cgroup, &id)?;
    // The shim called the runtime with `--root` = ctr's `--runc-root`: its state is there.
    let root = ctx.containerd.ctr_runtime_root(ctx.runtime);
    let mut found = false;
    if let Ok(namespaces) = fs::read_dir(&root) {
        for namespace in namespaces.flatten() {
            found |= namespace.path().join(&id).exists();
        }
    }
    ensure!(
        found,
        "no state for {id} under --runc-root {}",
        root.display()
    );
    Ok(format!("pid {pid}, state under --runc-root"))
}

fn task_exec(ctx: &Ctx) -> Result<String> {
    let id = detached_id(ctx);
    let script = format!("cat {}; exit 5", ctx.image.release_file);
    let out = ctx.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        &id,
        "sh",
        "-c",
        &script,
    ])?;
    ensure!(
        out.code == 5,
        "exit {}: {}",
        out.code,
        exec::one_line(&out.stderr)
    );
    ensure!(
        out.stdout == ctx.image.release_text,
        "printed {:?}",
        out.stdout
    );
    Ok("exit 5, output".into())
}

fn pause_resume(ctx: &Ctx) -> Result<String> {
    let id = detached_id(ctx);
    let (pid, _) = ctx
        .ctr_task(&id)?
        .ok_or_else(|| anyhow!("no task {id} (run -d failed)"))?;
    let frozen = || -> Result<bool> {
        let file = ctx.cgroup_file(pid, "freezer", "freezer.state", "cgroup.freeze")?;
        Ok(matches!(fs::read_to_string(file)?.trim(), "FROZEN" | "1"))
    };
    ctx.ctr_ok(&["task", "pause", &id])?;
    let status = ctx.ctr_task(&id)?.map(|t| t.1).unwrap_or_default();
    ensure!(status == "PAUSED", "after pause: {status}");
    ensure!(frozen()?, "after pause: the cgroup is not frozen");
    ctx.ctr_ok(&["task", "resume", &id])?;
    let status = ctx.ctr_task(&id)?.map(|t| t.1).unwrap_or_default();
    ensure!(status == "RUNNING", "after resume: {status}");
    ensure!(!frozen()?, "after resume: still frozen");
    Ok("frozen, thawed".into())
}

fn kill_delete(ctx: &Ctx) -> Result<String> {
    let id = detached_id(ctx);
    let result = (|| -> Result<_> {
        ctx.ctr_ok(&["task", "kill", "-s", "SIGKILL", &id])?;
        wait_for(Duration::from_secs(10), || {
            matches!(ctx.ctr_task(&id), Ok(Some((_, ref s))) if s == "STOPPED").then_some(())
        })
        .ok_or_else(|| anyhow!("the task never stopped"))?;
        ctx.ctr_ok(&["task", "delete", &id])?;
        ensure!(ctx.ctr_task(&id)?.is_none(), "ctr task ls still lists it");
        ctx.ctr_ok(&["container", "rm", &id])?;
        Ok(())
    })();
    if result.is_err() {
        ctx.ctr_remove(&id);
    }
    result?;
    ctx.expect_clean(&[id])?;
    Ok("stopped, deleted, nothing left".into())
}

fn kill_term(ctx: &Ctx) -> Result<String> {
    let id = ctx.ctr_id("term");
    ctx.note_id(&id);
    let log = ctx.work.join("ctr-term.out");
    let mut child = ctx
        .ctr_run_command(
            &id,
            &["--rm"],
            &[
                "sh",
                "-c",
                "trap 'exit 42' TERM; while :; do sleep 0.1; done",
            ],
        )
        .stdin(Stdio::null())
        .stdout(File::create(&log)?)
        .stderr(File::create(ctx.work.join("ctr-term.err"))?)
        .spawn()
        .context("start ctr run")?;
    let result = (|| -> Result<_> {
        let mut exited = None;
        let task = wait_for(PATIENCE, || {
            if let Some(task) = ctx.ctr_task(&id).ok().flatten() {
                return Some(Some(task));
            }
            exited = child.try_wait().ok().flatten();
            exited.map(|_| None)
        });
        let Some(Some((pid, _))) = task else {
            let stderr = fs::read_to_string(ctx.work.join("ctr-term.err")).unwrap_or_default();
            match exited {
                Some(status) => bail!(
                    "ctr run exited {} before its task ran: {}",
                    exec::code(status),
                    exec::one_line(&stderr)
                ),
                None => bail!("the task never appeared"),
            }
        };
        wait_for_handler(pid, libc::SIGTERM)?;
        ctx.ctr_ok(&["task", "kill", &id])?;
        let status = wait_for(Duration::from_secs(20), || child.try_wait().ok().flatten())
            .ok_or_else(|| anyhow!("ctr run did not return after the TERM"))?;
        let code = exec::code(status);
        ensure!(code == 42, "ctr run exited {code}, not the trap's 42");
        Ok(())
    })();
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        ctx.ctr_remove(&id);
    }
    result?;
    ctx.expect_clean(&[id])?;
    Ok("exit 42".into())
}

fn terminal(ctx: &Ctx) -> Result<String> {
    let id = ctx.ctr_id("tty");
    ctx.note_id(&id);
    let mut pty = Pty::open(24, 80)?;
    // ctr sizes the console from its terminal just after the start (busybox's `stty size`
    // of a 0x0 console may even exit 0): wait for the size to arrive.
    let script = "i=0; while [ \"$(stty size 2>/dev/null)\" != '24 80' ] && [ $i -lt 100 ]; \
                  do sleep 0.1; i=$((i+1)); done; stty size; tty; exit 4";
    let command = ctx.ctr_run_command(&id, &["--rm", "-t"], &["sh", "-c", script]);
    let mut child = pty.spawn(command)?;
    pty.read_to_end(Duration::from_secs(60));
    let status = wait_for(Duration::from_secs(30), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        ctx.ctr_remove(&id);
        bail!(
            "ctr run -t did not exit; the terminal showed {:?}",
            pty.seen
        );
    };
    expect_contains("stty size", &pty.seen, "24 80")?;
    expect_contains("tty", &pty.seen, "/dev/pts/")?;
    let code = exec::code(status);
    ensure!(code == 4, "ctr run -t exited {code}, not 4");
    ctx.expect_clean(&[id])?;
    Ok("24x80 pty, exit 4".into())
}
