//! `start`: release a created container's first process through its exec fifo, then run
//! the `poststart` hooks.

use std::os::fd::AsFd;
use std::time::Duration;

use super::container::{Record, Status};
use super::{Context, OciError};
use crate::process::gate::{self, ReleaseError};
use crate::process::hooks;

/// How long `start` waits for the released process to answer.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(ctx: &mut Context, id: &str) -> Result<i32, OciError> {
    let _locked = ctx.root.lock(id)?;
    let record = ctx.root.record(id)?;
    let (status, pidfd) = ctx.root.status_and_pidfd(&record);
    if status != Status::Created {
        return Err(OciError::State {
            id: id.to_string(),
            status,
            wanted: "created",
        });
    }
    has_process(&record)?;
    let pidfd = pidfd.ok_or_else(|| OciError::NotRunning {
        id: id.to_string(),
        action: "start",
        status: Status::Stopped,
    })?;
    gate::release(&ctx.root.fifo(id), pidfd.as_fd(), RELEASE_TIMEOUT).map_err(|e| match e {
        ReleaseError::NotCreated => OciError::State {
            id: id.to_string(),
            status: Status::Running,
            wanted: "created",
        },
        other => OciError::Invalid(format!("start container {id}: {other}")),
    })?;
    poststart(ctx, &record);
    Ok(0)
}

/// A container whose config.json has no `process` is created but never started.
pub fn has_process(record: &Record) -> Result<(), OciError> {
    match record.plan.process.args.is_empty() {
        true => Err(OciError::Invalid(format!(
            "cannot start container {}: its config.json has no process",
            record.id
        ))),
        false => Ok(()),
    }
}

/// The `poststart` hooks of a container just started.
pub fn poststart(ctx: &mut Context, record: &Record) {
    let running = record.state_json(Status::Running);
    for hook in &record.plan.hooks.poststart {
        // runtime-spec: a failed poststart hook is a warning; the container runs on.
        if let Err(error) = hooks::run("poststart", hook, None, &running) {
            ctx.log.warn(&error.to_string());
        }
    }
}
