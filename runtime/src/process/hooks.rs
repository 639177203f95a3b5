//! OCI hooks: each a program run with the container's state JSON on its stdin, its own argv
//! and environment, and an optional timeout; a hook that fails, or outlives its timeout (it
//! is killed), fails the lifecycle step it belongs to.

use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Failure, StepContext, StepError, EXIT_SETUP};
use crate::plan::Hook;

/// A hook that failed: its path and what happened.
#[derive(Debug, thiserror::Error)]
#[error("{point} hook {path}: {reason}")]
pub struct HookError {
    /// The lifecycle point (`createRuntime`, `poststop`, ...).
    pub point: &'static str,
    pub path: String,
    pub reason: String,
}

impl From<HookError> for Failure {
    fn from(error: HookError) -> Self {
        Failure {
            code: EXIT_SETUP as u8,
            text: error.to_string(),
        }
    }
}

/// Open each hook's executable where its path resolves now (`O_PATH`), to run it later from
/// another mount namespace or root.
pub fn open_programs(hooks: &[Hook]) -> Result<Vec<OwnedFd>, StepError> {
    hooks
        .iter()
        .map(|hook| {
            open(
                hook.path.as_str(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .step(|| format!("open createContainer hook {}", hook.path))
        })
        .collect()
}

/// `state` (the container's state JSON) as a hook run in the container's namespaces gets it,
/// from this process, the container's first: runtime-spec gives such a hook the pid as the
/// container sees it (1 in a pid namespace of its own), and `status` is where the lifecycle
/// is (`creating` for `createContainer`, `created` for `startContainer`).
pub fn state_inside(state: &str, status: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("pid".into(), std::process::id().into());
        object.insert("status".into(), status.into());
    }
    value.to_string()
}

/// Run `hooks` in order, each found by its path in this process's mount namespace; stop at
/// the first that fails.
pub fn run_all(point: &'static str, hooks: &[Hook], state: &str) -> Result<(), HookError> {
    for hook in hooks {
        run(point, hook, None, state)?;
    }
    Ok(())
}

/// Run one hook: from `program` (an fd of its executable, opened where its path resolves)
/// when given, else from its path.
pub fn run(
    point: &'static str,
    hook: &Hook,
    program: Option<BorrowedFd<'_>>,
    state: &str,
) -> Result<(), HookError> {
    let fail = |reason: String| HookError {
        point,
        path: hook.path.clone(),
        reason,
    };
    let executable = match program {
        Some(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()),
        None => hook.path.clone(),
    };
    let mut command = Command::new(&executable);
    if let Some((arg0, rest)) = hook.args.split_first() {
        command.arg0(arg0).args(rest);
    }
    command
        .env_clear()
        .envs(hook.env.iter().filter_map(|kv| kv.split_once('=')))
        .stdin(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("start: {}", crate::error::describe_io(&e))))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: a broken pipe is not its failure.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout
        .map(|secs| Instant::now() + Duration::from_secs(secs.into()));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(fail(format!("wait: {}", crate::error::describe_io(&e)))),
        }
        if deadline.is_some_and(|at| Instant::now() >= at) {
            let _ = child.kill();
            let _ = child.wait();
            let secs = hook.timeout.unwrap_or_default();
            return Err(fail(format!("timed out after {secs}s and was killed")));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(fail(format!("exited with status {code}"))),
        (None, Some(signal)) => Err(fail(format!("killed by signal {signal}"))),
        (None, None) => Err(fail(format!("ended with {status}"))),
    }
}
