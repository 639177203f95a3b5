//! `delete`: take a stopped container back — its cgroup (and whatever still runs in it),
//! its state directory — then run the `poststop` hooks. A container that is not stopped is
//! refused unless `--force`, which kills it first.

use std::time::{Duration, Instant};

use super::container::{Record, Status};
use super::{Context, OciError};
use crate::process::hooks;

/// How long `delete --force` waits for a killed first process to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub fn run(ctx: &mut Context, id: &str, force: bool) -> Result<i32, OciError> {
    let locked = ctx.root.lock(id)?;
    let Some(record) = ctx.root.load(id)? else {
        // create died before it wrote the record (or is still at it, holding the lock we
        // now hold): nothing runs from this directory.
        locked.remove()?;
        return Ok(0);
    };
    let status = ctx.root.status(&record);
    if status != Status::Stopped {
        if !force {
            return Err(OciError::NotStopped {
                id: id.to_string(),
                status,
            });
        }
        kill_everything(&record)?;
    }
    if let Some(group) = record.cgroup() {
        group.kill_all()?;
        group.remove()?;
    }
    locked.remove()?;
    let stopped = record.state_json(Status::Stopped);
    for hook in &record.plan.hooks.poststop {
        // runtime-spec: a failed poststop hook is a warning; the delete stands.
        if let Err(error) = hooks::run("poststop", hook, None, &stopped) {
            ctx.log.warn(&error.to_string());
        }
    }
    Ok(0)
}

/// SIGKILL the first process and everything in the container's cgroup (thawed, so that
/// frozen processes die too), and wait until the first process is gone.
fn kill_everything(record: &Record) -> Result<(), OciError> {
    if let Some(group) = record.cgroup() {
        if group.is_frozen() {
            group.set_frozen(false)?;
        }
        group.kill_all()?;
    }
    if let Some(pidfd) = record.live_pidfd() {
        let _ = crate::sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), libc::SIGKILL);
    }
    let deadline = Instant::now() + KILL_WAIT;
    while record.live_pidfd().is_some() {
        if Instant::now() >= deadline {
            return Err(OciError::Invalid(format!(
                "container {}: pid {} still runs {}s after SIGKILL",
                record.id,
                record.pid,
                KILL_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
