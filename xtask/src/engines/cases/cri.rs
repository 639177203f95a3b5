//! Kubernetes' CRI (issue 15 §4): the calls kubelet makes for a pod with one container, through
//! containerd's CRI plugin and the runtime handler of the runtime under test.

use std::fs;
use std::time::Duration;

use anyhow::{anyhow, ensure, Result};

use super::{expect_contains, Case, Ctx};
use crate::engines::cri::{Cri, Pod, CONTAINER_EXITED, CONTAINER_RUNNING};
use crate::engines::exec::{wait_for, PATIENCE};
use crate::engines::image::NAME as IMAGE;

/// The CRI connection and what the lifecycle has created so far.
pub struct Session {
    cri: Cri,
    pod: Pod,
    pod_id: Option<String>,
    container_id: Option<String>,
}

pub fn cases() -> Vec<Case> {
    let case = |name, run| Case {
        suite: "cri",
        name,
        run,
    };
    vec![
        case("RunPodSandbox (runtime handler)", run_pod_sandbox),
        case("CreateContainer", create_container),
        case("StartContainer", start_container),
        case("ExecSync (output and exit status)", exec_sync),
        case("ContainerStatus: running", status_running),
        case(
            "StopContainer (TERM, KILL after the timeout)",
            stop_container,
        ),
        case("ContainerStatus: exited", status_exited),
        case("RemoveContainer", remove_container),
        case("StopPodSandbox", stop_pod_sandbox),
        case("RemovePodSandbox: nothing left", remove_pod_sandbox),
    ]
}

/// Runs `f` on the session, connecting first if needed.
fn with<T>(ctx: &Ctx, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
    let mut slot = ctx.cri.borrow_mut();
    if slot.is_none() {
        let mut cri = Cri::connect(&ctx.containerd.socket(), PATIENCE)?;
        let (name, version) = cri.version()?;
        ensure!(name == "containerd", "the CRI server is {name} {version}");
        *slot = Some(Session {
            cri,
            pod: Pod {
                name: format!("nsinit-engines-{}", ctx.runtime.name),
                uid: format!("nsinit-engines-{}-{}", ctx.runtime.name, std::process::id()),
                namespace: "nsinit-engines".into(),
                cgroup_parent: format!("{}/cri", ctx.cgroup_root),
            },
            pod_id: None,
            container_id: None,
        });
    }
    let session = slot.as_mut().ok_or_else(|| anyhow!("no CRI session"))?;
    f(session)
}

fn pod_id(session: &Session) -> Result<String> {
    session
        .pod_id
        .clone()
        .ok_or_else(|| anyhow!("no pod (RunPodSandbox failed)"))
}

fn container_id(session: &Session) -> Result<String> {
    session
        .container_id
        .clone()
        .ok_or_else(|| anyhow!("no container (CreateContainer failed)"))
}

fn run_pod_sandbox(ctx: &Ctx) -> Result<String> {
    let id = with(ctx, |s| {
        let id = s.cri.run_pod_sandbox(&s.pod, &ctx.runtime.name)?;
        s.pod_id = Some(id.clone());
        Ok(id)
    })?;
    ctx.note_id(&id);
    // The pause container runs under the runtime's own state root for this handler.
    let root = ctx.containerd.cri_runtime_root(ctx.runtime);
    let listed = wait_for(Duration::from_secs(10), || {
        fs::read_dir(&root).ok()?.flatten().find_map(|ns| {
            fs::read_dir(ns.path())
                .ok()?
                .flatten()
                .any(|e| e.file_name().to_string_lossy() == id)
                .then_some(())
        })
    });
    ensure!(
        listed.is_some(),
        "the sandbox {} is not in the handler's runtime root {}",
        &id[..12.min(id.len())],
        root.display()
    );
    Ok(format!(
        "{} via handler {}",
        &id[..12.min(id.len())],
        ctx.runtime.name
    ))
}

fn create_container(ctx: &Ctx) -> Result<String> {
    let id = with(ctx, |s| {
        let pod_id = pod_id(s)?;
        let id = s.cri.create_container(
            &pod_id,
            &s.pod.clone(),
            "sleeper",
            IMAGE,
            // Not PID 1 (the pod's pause container is), so TERM would end it: ignored here,
            // StopContainer must send KILL after its timeout.
            &["sh", "-c", "trap '' TERM; exec sleep 1000"],
        )?;
        s.container_id = Some(id.clone());
        Ok(id)
    })?;
    ctx.note_id(&id);
    Ok(id[..12.min(id.len())].to_string())
}

fn start_container(ctx: &Ctx) -> Result<String> {
    with(ctx, |s| {
        let id = container_id(s)?;
        s.cri.start_container(&id)
    })?;
    Ok(String::new())
}

fn exec_sync(ctx: &Ctx) -> Result<String> {
    with(ctx, |s| {
        let id = container_id(s)?;
        let script = format!("cat {}; echo oops >&2; exit 3", ctx.image.release_file);
        let result = s
            .cri
            .exec_sync(&id, &["sh", "-c", &script], Duration::from_secs(30))?;
        ensure!(result.exit_code == 3, "exit code {}", result.exit_code);
        ensure!(
            result.stdout == ctx.image.release_text,
            "stdout {:?}",
            result.stdout
        );
        expect_contains("stderr", &result.stderr, "oops")?;
        Ok("exit 3, stdout, stderr".into())
    })
}

fn status_running(ctx: &Ctx) -> Result<String> {
    with(ctx, |s| {
        let id = container_id(s)?;
        let status = s.cri.container_status(&id)?;
        ensure!(status.id == id, "status of {}", status.id);
        ensure!(
            status.state == CONTAINER_RUNNING,
            "state {} ({})",
            status.state,
            status.reason
        );
        Ok("CONTAINER_RUNNING".into())
    })
}

fn stop_container(ctx: &Ctx) -> Result<String> {
    with(ctx, |s| {
        let id = container_id(s)?;
        let started = std::time::Instant::now();
        s.cri.stop_container(&id, Duration::from_secs(2))?;
        let elapsed = started.elapsed();
        ensure!(
            elapsed >= Duration::from_secs(2),
            "returned after {:.1} s, before its 2 s timeout",
            elapsed.as_secs_f64()
        );
        Ok(format!("{:.1} s", elapsed.as_secs_f64()))
    })
}

fn status_exited(ctx: &Ctx) -> Result<String> {
    with(ctx, |s| {
        let id = container_id(s)?;
        let status = s.cri.container_status(&id)?;
        ensure!(
            status.state == CONTAINER_EXITED,
            "state {} ({} {})",
            status.state,
            status.reason,
            status.message
        );
        // TERM is ignored: the stop ends in KILL.
        ensure!(
            status.exit_code == 137,
            "exit code {}, not 137",
            status.exit_code
        );
        Ok(format!(
            "CONTAINER_EXITED, exit 137, reason {}",
            status.reason
        ))
    })
}

fn remove_container(ctx: &Ctx) -> Result<String> {
    let id = with(ctx, |s| {
        let id = container_id(s)?;
        s.cri.remove_container(&id)?;
        s.container_id = None;
        Ok(id)
    })?;
    ctx.expect_clean(&[id])?;
    Ok("nothing left".into())
}

fn stop_pod_sandbox(ctx: &Ctx) -> Result<String> {
    with(ctx, |s| {
        let id = pod_id(s)?;
        s.cri.stop_pod_sandbox(&id)
    })?;
    Ok(String::new())
}

fn remove_pod_sandbox(ctx: &Ctx) -> Result<String> {
    let id = with(ctx, |s| {
        let id = pod_id(s)?;
        s.cri.remove_pod_sandbox(&id)?;
        s.pod_id = None;
        Ok(id)
    })?;
    ctx.expect_clean(&[id])?;
    Ok("nothing left".into())
}

/// Removes whatever the lifecycle left after a failure (best effort).
pub fn abandon(ctx: &Ctx) {
    let Some(mut session) = ctx.cri.borrow_mut().take() else {
        return;
    };
    if let Some(id) = session.container_id.take() {
        let _ = session.cri.stop_container(&id, Duration::from_secs(0));
        let _ = session.cri.remove_container(&id);
    }
    if let Some(id) = session.pod_id.take() {
        let _ = session.cri.stop_pod_sandbox(&id);
        let _ = session.cri.remove_pod_sandbox(&id);
    }
}
