//! A container's lifecycle state: the record of its PID 1 kept outside the rootfs, the lock
//! that makes one container per directory, and `.nspid`, the public mirror in the directory.
//!
//! The container's directory is its root, so a process inside can rewrite `.nspid` (or
//! `container.json`) at will. Nothing read from the directory decides what nsinit joins: the
//! record lives in `/run/nsinit/<dev>-<inode>`, and a recorded PID 1 is joined only while
//! its `/proc/PID/root` is this very directory and its start time is the recorded one,
//! checked through a pidfd so the answer cannot go stale.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, openat, renameat, Flock, FlockArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, Pid, UnlinkatFlags};
use serde::{Deserialize, Serialize};

use crate::error::StepError;
use crate::plan::Plan;
use crate::sys;

/// Where nsinit run by root keeps the state of every container, out of any container's reach.
pub const STATE_ROOT: &str = "/run/nsinit";

/// Where this nsinit keeps container state: [`STATE_ROOT`] for root; for a plain user
/// (rootless) `$XDG_RUNTIME_DIR/nsinit`, their own, or failing that a directory of theirs
/// under `/tmp` (`nsinit-<uid>`).
pub fn state_root() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from(STATE_ROOT);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("nsinit"),
        _ => std::env::temp_dir().join(format!("nsinit-{uid}")),
    }
}
/// The public mirror of PID 1's host pid in the container's directory (the seed's convention).
pub const NSPID: &str = ".nspid";

fn failed(step: String, errno: nix::Error) -> StepError {
    StepError { step, errno }
}

fn failed_io(step: String, err: std::io::Error) -> StepError {
    let errno = nix::Error::from_raw(err.raw_os_error().unwrap_or(libc::EIO));
    StepError { step, errno }
}

/// The container's directory on the host, opened once and identified by device and inode.
pub struct ContainerDir {
    /// Absolute, symlinks resolved on the host.
    pub path: PathBuf,
    /// `O_PATH` fd of the directory: `.nspid` is written through it, never by path.
    pub fd: OwnedFd,
    pub dev: u64,
    pub ino: u64,
}

impl ContainerDir {
    pub fn open(path: &Path) -> Result<Self, StepError> {
        let shown = path.display();
        let path = path
            .canonicalize()
            .map_err(|e| failed_io(format!("open container directory {shown}"), e))?;
        let fd = open(
            &path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| failed(format!("open container directory {shown}"), e))?;
        let st = nix::sys::stat::fstat(&fd)
            .map_err(|e| failed(format!("stat container directory {shown}"), e))?;
        Ok(ContainerDir {
            path,
            fd,
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// The name of this directory's state file under [`STATE_ROOT`].
    pub fn id(&self) -> String {
        format!("{:x}-{:x}", self.dev, self.ino)
    }

    /// Publish PID 1's host pid as `.nspid`: a temp file created exclusively without following
    /// symlinks, renamed over `.nspid` (a rename replaces a planted symlink, never follows it).
    pub fn write_nspid(&self, pid: Pid) -> Result<(), StepError> {
        let temp = format!(".nspid.{}", std::process::id());
        let fd = openat(
            &self.fd,
            temp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| failed(format!("create {temp} in {}", self.path.display()), e))?;
        let written = File::from(fd).write_all(format!("{pid}\n").as_bytes());
        let renamed = written
            .map_err(|e| failed_io(format!("write {temp}"), e))
            .and_then(|()| {
                renameat(&self.fd, temp.as_str(), &self.fd, NSPID)
                    .map_err(|e| failed(format!("rename {temp} to {NSPID}"), e))
            });
        if renamed.is_err() {
            let _ = unlinkat(&self.fd, temp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        renamed
    }

    /// Remove `.nspid`, whatever the container made of it.
    pub fn remove_nspid(&self) {
        let _ = unlinkat(&self.fd, NSPID, UnlinkatFlags::NoRemoveDir);
    }

    /// The first line of `.nspid` if it is a regular file (never following a symlink), for
    /// notices only: nsinit never acts on what it says.
    pub fn read_nspid(&self) -> Option<String> {
        let fd = match openat(
            &self.fd,
            NSPID,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(nix::Error::ELOOP) => return Some("(a symlink)".into()),
            Err(_) => return None,
        };
        let file = File::from(fd);
        if !file.metadata().ok()?.is_file() {
            return Some("(not a regular file)".into());
        }
        let mut text = String::new();
        file.take(64).read_to_string(&mut text).ok()?;
        Some(text.lines().next().unwrap_or("").to_string())
    }

    /// Whether anything named `.nspid` is in the directory.
    pub fn has_nspid(&self) -> bool {
        nix::sys::stat::fstatat(&self.fd, NSPID, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }
}

/// What nsinit records about a running container, in its state file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Host pid of the container's PID 1.
    pub pid: i32,
    /// Its start time (clock ticks after boot, `/proc/PID/stat` field 22): with the pid, it
    /// names one process for the life of the system.
    pub start_time: u64,
    /// The plan the container was started from; joins obey this, not whatever the
    /// directory's `container.json` says now.
    pub plan: Plan,
}

/// The state file of one container directory, `<STATE_ROOT>/<id>`, locked for as long as
/// this lives: the lock, and while a container runs, its [`Record`] as JSON.
///
/// One plain file in a shared directory: where `/run` is not a tmpfs (this project's own
/// test machine), every file created and every directory removed costs journal work, and
/// removing a directory frees a disk block, with `discard` a synchronous trim of about half a
/// millisecond per start. The record needs no temp file and rename: it is only ever read
/// and written under the lock.
pub struct StateFile {
    path: PathBuf,
    lock: Flock<File>,
}

impl StateFile {
    /// The state file of `dir`.
    pub fn path(dir: &ContainerDir) -> PathBuf {
        state_root().join(dir.id())
    }

    /// Create (when missing) and lock the state file of `dir`. The lock is held only around
    /// the decision to create or join, never while a command runs.
    pub fn lock(dir: &ContainerDir) -> Result<StateFile, StepError> {
        let root = state_root();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| failed_io(format!("create state directory {}", root.display()), e))?;
        StateFile::lock_with(dir, true).map(|state| state.expect("created when missing"))
    }

    /// Lock the state file of `dir` if there is one (for readers such as `nsinit stats`,
    /// which must not leave a file behind).
    pub fn lock_existing(dir: &ContainerDir) -> Result<Option<StateFile>, StepError> {
        StateFile::lock_with(dir, false)
    }

    fn lock_with(dir: &ContainerDir, create: bool) -> Result<Option<StateFile>, StepError> {
        let path = StateFile::path(dir);
        loop {
            let file = match File::options()
                .create(create)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(&path)
            {
                Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                other => other
                    .map_err(|e| failed_io(format!("open state file {}", path.display()), e))?,
            };
            let lock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| failed(format!("lock {}", path.display()), e))?;
            // The holder before us may have removed the file ([`StateFile::remove`]): then
            // our lock is on a file nobody else will ever open; start over.
            let held = lock.metadata().map(|m| m.ino()).ok();
            let current = fs::metadata(&path).map(|m| m.ino()).ok();
            if held.is_some() && held == current {
                return Ok(Some(StateFile { path, lock }));
            }
        }
    }

    /// Remove the state file of `dir` unless it records a container (a start failed).
    pub fn remove_if_unused(dir: &ContainerDir) {
        if let Ok(state) = StateFile::lock(dir) {
            if state.read().is_none() {
                state.remove();
            }
        }
    }

    /// Remove the state file (the container is gone), still holding the lock; anyone
    /// waiting on the lock notices and starts over with a fresh file.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }

    /// The record of the container believed to run here, if any.
    pub fn read(&self) -> Option<Record> {
        let mut file: &File = &self.lock;
        let mut text = String::new();
        file.rewind()
            .and_then(|()| file.read_to_string(&mut text))
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Record a running container.
    pub fn write(&self, record: &Record) -> Result<(), StepError> {
        let text = serde_json::to_string(record).expect("a record always serializes");
        let file: &File = &self.lock;
        file.write_all_at(text.as_bytes(), 0)
            .and_then(|()| file.set_len(text.len() as u64))
            .map_err(|e| failed_io(format!("write state {}", self.path.display()), e))
    }

    /// Forget the record.
    pub fn clear(&self) {
        let _ = self.lock.set_len(0);
    }
}

/// Whether a recorded PID 1 is still the container of this directory.
pub enum Liveness {
    /// It is; the pidfd pins that very process.
    Alive { pidfd: OwnedFd },
    /// It is not, and why (for the notice).
    Gone(String),
}

/// Check a record against the live system: the pid must run, be the same process (start
/// time), have this directory as its root, and still be alive once pinned by a pidfd.
pub fn check(record: &Record, dir: &ContainerDir) -> Liveness {
    let pid = Pid::from_raw(record.pid);
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(_) => return Liveness::Gone(format!("pid {pid} is not running")),
    };
    // From here on the pidfd names one process; if the pid is reused after this point, the
    // start time below no longer matches, or the pidfd reports the exit.
    if start_time(pid) != Some(record.start_time) {
        return Liveness::Gone(format!("pid {pid} is now another process"));
    }
    match fs::metadata(format!("/proc/{pid}/root")) {
        Ok(root) if root.dev() == dir.dev && root.ino() == dir.ino => {}
        _ => return Liveness::Gone(format!("pid {pid} is not a container of this directory")),
    }
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).unwrap_or(1) != 0 {
        return Liveness::Gone(format!("pid {pid} has exited"));
    }
    Liveness::Alive { pidfd }
}

/// A process's start time in clock ticks after boot (`/proc/PID/stat`, field 22).
pub fn start_time(pid: Pid) -> Option<u64> {
    ProcStat::of(pid).map(|stat| stat.start_time)
}

/// What nsinit reads of a process's `/proc/PID/stat` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 4.
    pub ppid: i32,
    /// Field 22: clock ticks after boot.
    pub start_time: u64,
}

impl ProcStat {
    /// The process running as `pid` now, if there is one.
    pub fn of(pid: Pid) -> Option<ProcStat> {
        ProcStat::parse(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Parse `pid (comm) state ppid ... starttime ...`. The command name (field 2) may hold
    /// spaces and parentheses, so the fields are counted from its last `)`.
    pub fn parse(stat: &str) -> Option<ProcStat> {
        let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
        let ppid = fields.nth(1)?.parse().ok()?;
        let start_time = fields.nth(17)?.parse().ok()?;
        Some(ProcStat { ppid, start_time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_this_process_is_stable() {
        let me = Pid::this();
        let first = start_time(me).expect("own start time");
        assert_eq!(start_time(me), Some(first));
        let stat = ProcStat::of(me).unwrap();
        assert_eq!(stat.ppid, nix::unistd::getppid().as_raw());
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_skipped_whole() {
        let line = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 5906432 312 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
        let expected = ProcStat {
            ppid: 17,
            start_time: 987654,
        };
        assert_eq!(ProcStat::parse(line), Some(expected));
        assert_eq!(ProcStat::parse("4242 (sh) S 17"), None);
        assert_eq!(ProcStat::parse(""), None);
    }

    /// A `/proc/PID/stat` line as the kernel prints it: the command name (at most 15 bytes,
    /// anything but NUL, so spaces and parentheses too) in parentheses, then the state and
    /// fields 4 to 52; `numbers` are fields 5 to 21 and 23 to 52.
    fn stat_line(comm: &str, state: char, ppid: i32, start_time: u64, numbers: &[i64]) -> String {
        let (before, after) = numbers.split_at(17);
        let join = |fields: &[i64]| fields.iter().map(i64::to_string).collect::<Vec<_>>();
        format!(
            "4242 ({comm}) {state} {ppid} {} {start_time} {}\n",
            join(before).join(" "),
            join(after).join(" ")
        )
    }

    proptest::proptest! {
        /// Whatever the text, parsing returns fields or nothing, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in proptest::prelude::any::<String>()) {
            let _ = ProcStat::parse(&text);
        }

        /// A line the kernel could print gives back the ppid and start time it holds.
        #[test]
        fn a_kernel_line_gives_its_ppid_and_start_time(
            comm in "[^\u{0}]{0,15}",
            state in proptest::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 't', 'X', 'I']),
            ppid in 0..i32::MAX,
            start_time: u64,
            numbers in proptest::collection::vec(proptest::prelude::any::<i64>(), 47),
        ) {
            let line = stat_line(&comm, state, ppid, start_time, &numbers);
            proptest::prop_assert_eq!(ProcStat::parse(&line), Some(ProcStat { ppid, start_time }));
        }
    }

    #[test]
    fn nspid_is_written_through_the_directory_and_replaces_a_planted_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "precious").unwrap();
        let dir_path = tmp.path().join("c");
        fs::create_dir(&dir_path).unwrap();
        std::os::unix::fs::symlink(&outside, dir_path.join(NSPID)).unwrap();
        let dir = ContainerDir::open(&dir_path).unwrap();
        assert_eq!(
            dir.read_nspid().as_deref(),
            Some("(a symlink)"),
            "a symlink is never followed"
        );
        dir.write_nspid(Pid::from_raw(4242)).unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "precious");
        assert_eq!(dir.read_nspid().as_deref(), Some("4242"));
        dir.remove_nspid();
        assert!(!dir.has_nspid());
    }

    /// The plan of `container.json` text `json`, as if run from `/`.
    fn plan(json: &str) -> Plan {
        use crate::spec::container_json::{lower, parse, Site};
        let config = parse(Path::new("container.json"), json).unwrap();
        let site = Site {
            rootfs: Path::new("/"),
            id: "test",
            rootless: false,
        };
        lower(&config, &site)
    }

    #[test]
    fn a_host_process_is_never_taken_for_the_container() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ContainerDir::open(tmp.path()).unwrap();
        let me = Pid::this();
        let record = Record {
            pid: me.as_raw(),
            start_time: start_time(me).unwrap(),
            plan: plan("{}"),
        };
        assert!(matches!(check(&record, &dir), Liveness::Gone(_)));
        let reused = Record {
            start_time: record.start_time + 1,
            ..record.clone()
        };
        assert!(matches!(check(&reused, &dir), Liveness::Gone(_)));
    }
}
