//! The command to run, prepared before the clone: argv, the exact environment, and the paths
//! to try, so that the child starts it without allocating.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Failure, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND};
use crate::sys::ExecArgs;

/// The search path when the container's environment has no `PATH` (the one runc uses).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a command cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no command given")]
    Missing,
    #[error("{value:?} contains a NUL byte")]
    Nul { value: String },
}

/// A command ready for `execve` in the container.
pub struct Command {
    name: String,
    /// Paths to try in order: the command itself when it has a `/`, else one per `PATH` entry.
    candidates: Vec<CString>,
    args: ExecArgs,
}

impl Command {
    /// Prepare `argv` to run with exactly `environment` (`KEY=VALUE` entries). The command is
    /// looked up in the container's own `PATH`, inside the container.
    pub fn new(argv: &[OsString], environment: &[String]) -> Result<Self, CommandError> {
        let to_c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| CommandError::Nul {
                value: String::from_utf8_lossy(bytes).into_owned(),
            })
        };
        let program = argv.first().ok_or(CommandError::Missing)?;
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| to_c(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let env: Vec<CString> = environment
            .iter()
            .map(|e| to_c(e.as_bytes()))
            .collect::<Result<_, _>>()?;
        let name = program.to_string_lossy().into_owned();
        let candidates = if name.contains('/') {
            vec![argv[0].clone()]
        } else {
            let path = environment
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|dir| if dir.is_empty() { "." } else { dir })
                .map(|dir| to_c(format!("{}/{name}", dir.trim_end_matches('/')).as_bytes()))
                .collect::<Result<_, _>>()?
        };
        Ok(Command {
            name,
            candidates,
            args: ExecArgs::new(argv, env),
        })
    }

    /// Whether the command can be found and executed here, as [`Command::exec`] would try
    /// it, without running it: a container released later through its gate reports a
    /// missing command at create time, while its creator still listens.
    pub fn check(&self) -> Result<(), Failure> {
        let mut denied = None;
        for path in &self.candidates {
            match nix::unistd::access(path.as_c_str(), nix::unistd::AccessFlags::X_OK) {
                Ok(()) => {
                    let is_file = std::fs::metadata(std::ffi::OsStr::from_bytes(path.to_bytes()))
                        .is_ok_and(|meta| meta.is_file());
                    if is_file {
                        return Ok(());
                    }
                    denied = Some(path);
                }
                Err(nix::Error::ENOENT | nix::Error::ENOTDIR) => continue,
                Err(_) => denied = Some(path),
            }
        }
        Err(match denied {
            Some(path) => Failure {
                code: EXIT_NOT_EXECUTABLE as u8,
                text: format!("exec {}: permission denied", path.to_string_lossy()),
            },
            None => self.not_found(),
        })
    }

    /// Replace this process with the command. Returns only when no candidate could be
    /// executed, with the exit code nsinit reports (126 or 127) and why.
    pub fn exec(&self) -> Failure {
        let mut denied = None;
        for (index, path) in self.candidates.iter().enumerate() {
            let err = self.args.execve(path);
            let errno = nix::Error::from_raw(err.raw_os_error().unwrap_or(libc::EIO));
            match errno {
                nix::Error::ENOENT | nix::Error::ENOTDIR => continue,
                nix::Error::EACCES => denied = Some(index),
                _ => return self.failure(errno, index),
            }
        }
        match denied {
            Some(index) => self.failure(nix::Error::EACCES, index),
            None => self.not_found(),
        }
    }

    /// Why the command did not start, when trying candidate `index` last failed with `errno`
    /// (an index past the candidates: none was found). [`Command::exec`] and the exec
    /// trampoline of a join try the candidates the same way.
    pub fn failure(&self, errno: nix::Error, index: usize) -> Failure {
        let Some(path) = self.candidates.get(index) else {
            return self.not_found();
        };
        let text = match errno {
            nix::Error::EACCES => "permission denied".to_string(),
            errno => crate::error::describe(errno),
        };
        Failure {
            code: EXIT_NOT_EXECUTABLE as u8,
            text: format!("exec {}: {text}", path.to_string_lossy()),
        }
    }

    /// The paths to try, in order.
    pub fn candidates(&self) -> &[CString] {
        &self.candidates
    }

    pub fn argv(&self) -> &[CString] {
        self.args.argv()
    }

    /// The environment, `KEY=VALUE` entries.
    pub fn env(&self) -> &[CString] {
        self.args.env()
    }

    fn not_found(&self) -> Failure {
        let text = if self.name.contains('/') {
            format!(
                "exec {}: no such file in the container (or its interpreter is missing)",
                self.name
            )
        } else {
            format!(
                "exec {}: command not found in the container's PATH",
                self.name
            )
        };
        Failure {
            code: EXIT_NOT_FOUND as u8,
            text,
        }
    }
}
