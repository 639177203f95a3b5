//! `run`: `create` and `start` in one, then (unless `--detach`) wait for the container's
//! first process to exit, relaying signals and the terminal, and `delete` it, as runc does,
//! so the same id can run again. Exits with the process's status. The process is released
//! by this process itself, through the start channel: no exec fifo, and no second lock,
//! read of the record or status check as a separate `start` makes.

use std::os::fd::AsFd;

use super::container::Status;
use super::create::{self, Handoff, Made, Options};
use super::{delete, start, Context, OciError};
use crate::process::{self, supervise};
use crate::terminal::{self, RawMode};

pub fn run(ctx: &mut Context, options: &Options, detach: bool) -> Result<i32, OciError> {
    let id = options.id.clone();
    // Blocked before the clone, so that no signal for the container is lost.
    let signals = match detach {
        true => None,
        false => Some(process::block_forwarded_signals()?),
    };
    let Made {
        record,
        locked,
        pty_master,
        waiting,
    } = create::create(ctx, options, Handoff::Run)?;
    let mut waiting = waiting.expect("a container created to run waits for its word");
    let released = start::has_process(&record).and_then(|()| {
        waiting
            .release(record.state_json(Status::Created))
            .map_err(OciError::from)
    });
    if let Err(error) = released {
        drop(waiting);
        drop(locked);
        let _ = delete::run(ctx, &id, true);
        return Err(error);
    }
    let mut container = waiting.into_running();
    drop(locked);
    start::poststart(ctx, &record);
    let Some(signals) = signals else {
        container.disown();
        return Ok(0);
    };
    let host_stdin = std::io::stdin();
    let raw_mode = pty_master.as_ref().and_then(|master| {
        terminal::copy_window_size(host_stdin.as_fd(), master.as_fd());
        RawMode::enter(host_stdin.as_fd())
    });
    let code = supervise::run(&mut container, &signals, pty_master);
    drop(raw_mode);
    let deleted = delete::run(ctx, &id, true);
    let code = code?;
    deleted?;
    Ok(code)
}
