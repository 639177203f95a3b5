//! nsinit: run a directory holding a root filesystem and a `container.json` as a container.
//!
//! The library does the work; `main.rs` is a thin CLI over [`exec`]. A config is read and
//! lowered to a [`plan::Plan`] by its front-end (`spec`); the engine (`process`, `state`,
//! and one module per kernel concern) reads only the plan. `sys` holds the raw system calls;
//! the only `unsafe` outside it are the two calls of the unsafe `sys::clone3` (start, join).

pub mod capabilities;
pub mod cgroups;
pub mod error;
mod exec;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod oci;
pub mod plan;
pub mod process;
pub mod procfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;
pub mod terminal;
pub mod userns;

use std::path::PathBuf;

use error::{Failure, StepError, EXIT_SETUP};

pub use exec::{exec, stats, ExecOptions, CONFIG_FILE};

/// Everything that can stop `nsinit exec` before or around the command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    ReadConfig { path: String, reason: String },
    #[error(transparent)]
    Config(#[from] spec::ConfigError),
    #[error("{path}: {source}")]
    Namespaces {
        path: String,
        source: namespaces::NamespaceError,
    },
    #[error(transparent)]
    Command(#[from] process::CommandError),
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// A step on nsinit's side failed.
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("stats: no container is running in {}", .dir.display())]
    NotRunning { dir: PathBuf },
    #[error("stats: the running container has no cgroup (no `cgroups` in its container.json)")]
    NoCgroup,
    #[error("the container process died during setup ({step}) with exit code {code}")]
    DiedDuringSetup { step: &'static str, code: i32 },
    #[error("the container process did not finish setup ({step}) within {secs}s")]
    SetupTimeout { step: &'static str, secs: u64 },
    #[error("start channel: unexpected message {message}")]
    Protocol { message: String },
    /// The container's process failed a setup step or could not exec the command.
    #[error(transparent)]
    Container(Failure),
    /// A lifecycle hook failed.
    #[error(transparent)]
    Hook(#[from] process::hooks::HookError),
}

impl Error {
    /// nsinit's exit code for this error (see README: 125, or 126/127 for the command).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Container(failure) => failure.code.into(),
            _ => EXIT_SETUP,
        }
    }
}
