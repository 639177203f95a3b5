//! Errors of a failed setup step, and the exit codes nsinit returns for them.

use std::fmt;

/// nsinit itself failed (bad config, setup error).
pub const EXIT_SETUP: i32 = 125;
/// The command was found but could not be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;
/// The command was killed by signal N: nsinit exits `EXIT_SIGNAL_BASE + N`.
pub const EXIT_SIGNAL_BASE: i32 = 128;

/// A setup step that failed in the kernel: what was done, to which object, and the errno.
///
/// Steps run in the container's first process report this to nsinit as a [`Failure`] over the
/// start channel, so it is one flat type rather than an enum per module.
#[derive(Debug)]
pub struct StepError {
    /// The step and its object, e.g. `mount proc on /proc`.
    pub step: String,
    pub errno: nix::Error,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, describe(self.errno))
    }
}

impl std::error::Error for StepError {}

/// Why a container's process stopped before its command ran: the exit code nsinit reports
/// (125 for a setup step, 126/127 for the command) and the message. The one shape on both
/// sides of the clone: the child sends it over the start channel, nsinit prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct Failure {
    pub code: u8,
    pub text: String,
}

impl From<StepError> for Failure {
    fn from(error: StepError) -> Self {
        Failure {
            code: EXIT_SETUP as u8,
            text: error.to_string(),
        }
    }
}

/// The errno as a person reads it: `permission denied`, not `EPERM: Operation not permitted`.
pub fn describe(errno: nix::Error) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {}", errno as i32),
    }
}

/// An I/O error as a person reads it, without the `(os error N)` suffix.
pub fn describe_io(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(errno) => describe(nix::Error::from_raw(errno)),
        None => err.to_string(),
    }
}

/// Attach the step to a failed syscall: `mount(...).step(|| format!("mount proc on /proc"))?`.
pub trait StepContext<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, StepError>;
}

impl<T> StepContext<T> for nix::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|errno| StepError {
            step: step(),
            errno,
        })
    }
}

impl<T> StepContext<T> for std::io::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|e| StepError {
            step: step(),
            errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_errors_read_as_step_then_reason() {
        let e: Result<(), _> = Err(nix::Error::EPERM).step(|| "mount proc on /proc".into());
        assert_eq!(
            e.unwrap_err().to_string(),
            "mount proc on /proc: operation not permitted"
        );
    }
}
