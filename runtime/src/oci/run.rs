//! `run`: `create` and `start` in one, then (unless `--detach`) wait for the container's
//! first process to exit, relaying signals and the terminal, and `delete` it, as runc does,
//! so the same id can run again. Exits with the process's status.

use std::os::fd::AsFd;

use super::create::{self, Options};
use super::{delete, start, Context, OciError};
use crate::process::{self, supervise, Container};
use crate::terminal::{self, RawMode};

pub fn run(ctx: &mut Context, options: &Options, detach: bool) -> Result<i32, OciError> {
    let id = options.id.clone();
    // Blocked before the clone, so that no signal for the container is lost.
    let signals = match detach {
        true => None,
        false => Some(process::block_forwarded_signals()?),
    };
    let made = create::create(ctx, options)?;
    let pid = nix::unistd::Pid::from_raw(made.record.pid);
    let pty_master = made.pty_master;
    drop(made.locked);
    let mut container = Container::adopt(pid)?;
    if let Err(error) = start::run(ctx, &id) {
        drop(container);
        let _ = delete::run(ctx, &id, true);
        return Err(error);
    }
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
