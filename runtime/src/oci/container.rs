//! An OCI container's state: one directory per id under the state root, holding
//! `state.json` (written whole, through a temp file and a rename) and, while the container
//! is created but not started, its exec fifo. A lock on the directory is held for
//! transitions only, so `state`, `ps` and `list` answer while a foreground `run` waits.
//!
//! A container's status is read off the live system, never stored: stopped unless its
//! recorded pid runs with the recorded start time and is not a zombie (pid reuse never
//! makes a dead container look alive); created while the fifo is there; paused while its
//! cgroup is frozen; else running.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::OciError;
use crate::cgroups::{Cgroup, Hierarchy};
use crate::plan::Plan;
use crate::sys;

/// The exec fifo's name in the container's directory.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// What nsinit-oci records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Host pid of the container's first process.
    pub pid: i32,
    /// Its start time (`/proc/PID/stat` field 22): with the pid, it names one process.
    pub start_time: u64,
    pub bundle: PathBuf,
    /// When it was created, RFC 3339.
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// The plan it was created from; `exec` joins by it.
    pub plan: Plan,
    /// Its cgroup, relative to the hierarchy root.
    pub cgroup: Option<PathBuf>,
}

/// The status of a container, as runtime-spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(name)
    }
}

/// The state JSON of runtime-spec, as `state` prints it and hooks read it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateJson<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

/// The runtime-spec version nsinit-oci implements.
pub const OCI_VERSION: &str = "1.2.0";

impl Record {
    /// The state JSON with this status.
    pub fn state_json(&self, status: Status) -> String {
        let pid = match status {
            Status::Stopped => 0,
            _ => self.pid,
        };
        serde_json::to_string(&StateJson {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid,
            bundle: &self.bundle,
            rootfs: &self.plan.rootfs,
            created: &self.created,
            owner: "",
            annotations: &self.annotations,
        })
        .expect("state serializes")
    }

    /// The container's cgroup, when it has one and it still exists.
    pub fn cgroup(&self) -> Option<Cgroup> {
        let path = self.cgroup.as_ref()?;
        Cgroup::open(&Hierarchy::detect().ok()?, path).ok()
    }

    /// A pidfd of the container's first process while it is the recorded process and not
    /// a zombie.
    pub fn live_pidfd(&self) -> Option<OwnedFd> {
        let pid = Pid::from_raw(self.pid);
        let pidfd = sys::pidfd_open(pid).ok()?;
        let (state, start_time) = proc_stat(pid)?;
        (start_time == self.start_time && state != 'Z' && state != 'X').then_some(pidfd)
    }
}

/// A process's state letter and start time from `/proc/PID/stat`.
pub fn proc_stat(pid: Pid) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// The state root: one directory per container id.
pub struct Root {
    pub path: PathBuf,
}

/// A container's directory, locked for a transition.
pub struct Locked {
    pub dir: PathBuf,
    _lock: Flock<File>,
}

impl Root {
    pub fn new(path: PathBuf) -> Root {
        Root { path }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Make the directory of a new container `id` and lock it; an id in use is an error.
    pub fn create(&self, id: &str) -> Result<Locked, OciError> {
        check_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.path)
            .map_err(|e| OciError::io(format!("create state root {}", self.path.display()), e))?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(OciError::Exists { id: id.to_string() })
            }
            Err(e) => return Err(OciError::io(format!("create {}", dir.display()), e)),
        }
        lock(&dir)
    }

    /// Lock the directory of the existing container `id`.
    pub fn lock(&self, id: &str) -> Result<Locked, OciError> {
        check_id(id)?;
        let dir = self.dir(id);
        if !dir.is_dir() {
            return Err(OciError::NotFound { id: id.to_string() });
        }
        lock(&dir)
    }

    /// The record of container `id`, read without the lock. `Ok(None)`: the directory is
    /// there but create has not written the record yet (status `creating`).
    pub fn load(&self, id: &str) -> Result<Option<Record>, OciError> {
        check_id(id)?;
        let dir = self.dir(id);
        match fs::read_to_string(dir.join(STATE_FILE)) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| OciError::Corrupt {
                    id: id.to_string(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if dir.is_dir() {
                    Ok(None)
                } else {
                    Err(OciError::NotFound { id: id.to_string() })
                }
            }
            Err(e) => Err(OciError::io(format!("read the state of {id}"), e)),
        }
    }

    /// The record of container `id`, which must have one.
    pub fn record(&self, id: &str) -> Result<Record, OciError> {
        self.load(id)?.ok_or_else(|| OciError::State {
            id: id.to_string(),
            status: Status::Creating,
            wanted: "created",
        })
    }

    /// Every container id under the root, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }

    /// The status of container `id` with this record.
    pub fn status(&self, record: &Record) -> Status {
        self.status_and_pidfd(record).0
    }

    /// The status, and unless stopped a pidfd of the first process (which a command acting
    /// on it would otherwise open and check a second time).
    pub fn status_and_pidfd(&self, record: &Record) -> (Status, Option<OwnedFd>) {
        let Some(pidfd) = record.live_pidfd() else {
            return (Status::Stopped, None);
        };
        let status = if self.dir(&record.id).join(EXEC_FIFO).exists() {
            Status::Created
        } else if record.cgroup().is_some_and(|group| group.is_frozen()) {
            Status::Paused
        } else {
            Status::Running
        };
        (status, Some(pidfd))
    }
}

impl Locked {
    /// Write the record whole: a temp file renamed over `state.json`.
    pub fn save(&self, record: &Record) -> Result<(), OciError> {
        let temp = self.dir.join(".state.json.tmp");
        let text = serde_json::to_string(record).expect("a record serializes");
        let written = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&temp, self.dir.join(STATE_FILE)));
        written
            .map_err(|e| OciError::io(format!("write {}", self.dir.join(STATE_FILE).display()), e))
    }

    /// Remove the container's directory and everything in it.
    pub fn remove(self) -> Result<(), OciError> {
        fs::remove_dir_all(&self.dir)
            .map_err(|e| OciError::io(format!("remove {}", self.dir.display()), e))
    }
}

fn lock(dir: &Path) -> Result<Locked, OciError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| OciError::io(format!("open {}", dir.display()), e))?;
    let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
        OciError::io(
            format!("lock {}", dir.display()),
            std::io::Error::from_raw_os_error(errno as i32),
        )
    })?;
    Ok(Locked {
        dir: dir.to_path_buf(),
        _lock: lock,
    })
}

/// A container id must be one path component of sensible characters.
pub fn check_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(OciError::BadId { id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_single_safe_components() {
        for good in ["c1", "libpod-0123abcd", "a.b_c-d+e"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = Pid::this();
        let (state, start_time) = proc_stat(me).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(start_time > 0);
    }
}
