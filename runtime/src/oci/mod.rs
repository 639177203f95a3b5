//! `nsinit-oci`: the OCI runtime command line (runc's) over the same engine. A bundle's
//! `config.json` is lowered to a plan by `spec::oci`; the commands here keep each
//! container's state under the state root and drive the engine through runtime-spec's
//! lifecycle: `create` leaves the first process waiting at its exec fifo and exits (the
//! caller — conmon, containerd's shim — is its parent and reaper), `start` releases it,
//! `delete` cleans up. No nsinit process stays behind.

pub mod container;
pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod log;
pub mod pause;
pub mod ps;
pub mod run;
pub mod start;
pub mod state;
pub mod update;

use std::path::PathBuf;

use container::{Root, Status};
use log::Logger;

/// Everything a command needs besides its own arguments.
pub struct Context {
    pub root: Root,
    pub log: Logger,
}

impl Context {
    /// The state root runc would use: `/run/nsinit-oci` for root outside a user namespace,
    /// else `$XDG_RUNTIME_DIR/nsinit-oci` (how rootless podman calls a runtime).
    pub fn default_root() -> PathBuf {
        let rootless = !nix::unistd::geteuid().is_root() || in_user_namespace();
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if rootless && !dir.is_empty() => PathBuf::from(dir).join("nsinit-oci"),
            _ => PathBuf::from("/run/nsinit-oci"),
        }
    }
}

/// Whether this process runs in a user namespace other than the initial one.
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        })
        .unwrap_or(false)
}

/// Why a command failed; one line each, what engines match on kept verbatim
/// ("does not exist", "container not running").
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("container {id} does not exist")]
    NotFound { id: String },
    #[error("container with id {id} already exists")]
    Exists { id: String },
    #[error("invalid container id {id:?}: use letters, digits, '_', '-', '.' and '+'")]
    BadId { id: String },
    #[error("container {id} is {status}, not {wanted}")]
    State {
        id: String,
        status: Status,
        wanted: &'static str,
    },
    #[error("cannot {action} container {id}: container not running ({status})")]
    NotRunning {
        id: String,
        action: &'static str,
        status: Status,
    },
    #[error("cannot delete container {id} that is not stopped: {status} (use --force)")]
    NotStopped { id: String, status: Status },
    #[error("the state of container {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("{step}: {reason}")]
    Io { step: String, reason: String },
    #[error(transparent)]
    Config(#[from] crate::spec::ConfigError),
    #[error(transparent)]
    Engine(#[from] crate::Error),
    #[error("{0}")]
    Invalid(String),
}

impl OciError {
    pub fn io(step: String, error: std::io::Error) -> OciError {
        OciError::Io {
            step,
            reason: crate::error::describe_io(&error),
        }
    }

    /// The exit code: the container command's own where an error carries one (a command
    /// that cannot be found: 127), else 1 as runc.
    pub fn exit_code(&self) -> i32 {
        match self {
            OciError::Engine(crate::Error::Container(failure)) => failure.code.into(),
            _ => 1,
        }
    }
}

impl From<crate::error::StepError> for OciError {
    fn from(error: crate::error::StepError) -> Self {
        OciError::Engine(error.into())
    }
}

impl From<crate::cgroups::CgroupError> for OciError {
    fn from(error: crate::cgroups::CgroupError) -> Self {
        OciError::Engine(error.into())
    }
}

impl From<crate::process::hooks::HookError> for OciError {
    fn from(error: crate::process::hooks::HookError) -> Self {
        OciError::Engine(error.into())
    }
}
