//! `kill`: send a signal to the container's first process, or with `--all` to every
//! process in its cgroup. Signals by name (`TERM`, `SIGTERM`) or number.

use nix::sys::signal::{kill, Signal};

use super::container::Status;
use super::{Context, OciError};
use crate::sys;

pub fn run(ctx: &mut Context, id: &str, signal: &str, all: bool) -> Result<i32, OciError> {
    let signal = parse_signal(signal)?;
    let record = ctx.root.record(id)?;
    let (status, pidfd) = ctx.root.status_and_pidfd(&record);
    if status == Status::Stopped {
        return Err(OciError::NotRunning {
            id: id.to_string(),
            action: "kill",
            status,
        });
    }
    let group = record.cgroup();
    if all {
        let group = group.as_ref().ok_or_else(|| {
            OciError::Invalid(format!("kill --all {id}: the container has no cgroup"))
        })?;
        for pid in group.pids() {
            match kill(pid, signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(errno) => {
                    return Err(OciError::Invalid(format!(
                        "kill {pid} with {signal}: {}",
                        crate::error::describe(errno)
                    )))
                }
            }
        }
    } else {
        let pidfd = pidfd.ok_or_else(|| OciError::NotRunning {
            id: id.to_string(),
            action: "kill",
            status: Status::Stopped,
        })?;
        sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), signal as i32).map_err(|e| {
            OciError::io(
                format!("send {signal} to container {id} (pid {})", record.pid),
                e,
            )
        })?;
    }
    // A frozen process takes a SIGKILL only when thawed.
    if signal == Signal::SIGKILL && status == Status::Paused {
        if let Some(group) = &group {
            group.set_frozen(false)?;
        }
    }
    Ok(0)
}

/// `TERM`, `SIGTERM`, `sigterm` or `15`.
pub fn parse_signal(text: &str) -> Result<Signal, OciError> {
    let bad = || OciError::Invalid(format!("invalid signal {text:?}"));
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_with_or_without_sig_or_by_number() {
        for text in ["TERM", "SIGTERM", "sigterm", "15"] {
            assert_eq!(parse_signal(text).unwrap(), Signal::SIGTERM, "{text}");
        }
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        for bad in ["", "TERMINATE", "0", "65", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad:?}");
        }
    }
}
