//! The stage of a multi-step case: several `nsinit exec` in one case directory, started one by
//! one or all at the same moment, and the host processes the driver watches in between.
//!
//! Every wait is bounded by the case's deadline. Whatever the stage started is killed, by pid,
//! when its handle or the stage goes away, so a failed step never leaves a container behind.

use std::fs;
use std::io;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{self, Outcome, PipeReader, Run};

/// How often the stage looks at processes and files while it waits.
const POLL: Duration = Duration::from_millis(5);

/// A host process named by its pid and its start time, so that a reused pid is never taken
/// for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    /// Clock ticks after boot (`/proc/PID/stat`, field 22).
    start_time: u64,
}

impl Process {
    /// The process running as `pid` now, if any.
    pub fn of(pid: i32) -> Option<Process> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let start_time = harness::stat_field(&stat, 22)?.parse().ok()?;
        Some(Process { pid, start_time })
    }

    /// Whether it still runs; a zombie does not.
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let same =
            harness::stat_field(&stat, 22).and_then(|t| t.parse().ok()) == Some(self.start_time);
        same && !matches!(harness::stat_field(&stat, 3), Some("Z" | "X"))
    }

    /// SIGKILL it if it still runs; returns whether the signal was sent.
    pub fn kill(&self) -> bool {
        self.is_alive() && harness::send_signal(self.pid, libc::SIGKILL)
    }
}

/// One `nsinit exec` the stage started. Dropping it before [`Stage::finish`] kills it and
/// everything under it.
pub struct Nsinit {
    child: Child,
    started: Instant,
    /// Taken by [`Stage::finish_by`] only.
    stdout: Option<PipeReader>,
    stderr: Option<PipeReader>,
    ended: Option<Outcome>,
}

impl Nsinit {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// How it ended, reaping it, or `None` while it runs.
    pub fn ended(&mut self) -> Option<Outcome> {
        if self.ended.is_none() {
            self.ended = match self.child.try_wait() {
                Ok(Some(status)) => Some(status.into()),
                Ok(None) => None,
                Err(e) => Some(Outcome::NotRun(format!("wait for nsinit: {e}"))),
            };
        }
        self.ended.clone()
    }

    /// What it printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout
            .as_ref()
            .map(PipeReader::so_far)
            .unwrap_or_default()
    }

    fn stderr_so_far(&self) -> String {
        self.stderr
            .as_ref()
            .map(PipeReader::so_far)
            .unwrap_or_default()
    }

    /// Send `signal` to nsinit itself while it runs; returns whether it was sent.
    pub fn signal(&mut self, signal: i32) -> bool {
        self.ended().is_none() && harness::send_signal(self.pid(), signal)
    }

    fn kill_and_reap(&mut self) {
        harness::kill_tree(self.pid());
        if let Ok(status) = self.child.wait() {
            self.ended = Some(status.into());
        }
    }
}

impl Drop for Nsinit {
    fn drop(&mut self) {
        if self.ended().is_none() {
            self.kill_and_reap();
        }
    }
}

/// The case directory, the nsinit under test and the case's deadline.
pub struct Stage {
    nsinit: PathBuf,
    dir: PathBuf,
    deadline: Instant,
    /// Processes that may outlive the nsinit they came from, killed when the stage ends.
    adopted: Vec<Process>,
}

impl Stage {
    pub fn new(nsinit: &Path, dir: &Path, timeout: Duration) -> Stage {
        Stage {
            nsinit: nsinit.to_path_buf(),
            dir: dir.to_path_buf(),
            deadline: Instant::now() + timeout,
            adopted: Vec::new(),
        }
    }

    /// The case directory: the container's root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nsinit binary under test.
    pub fn nsinit(&self) -> &Path {
        &self.nsinit
    }

    /// Start `nsinit exec -- COMMAND...` in the case directory, stdin closed.
    pub fn start(&self, command: &[&str]) -> Result<Nsinit, String> {
        self.spawn(command, None)
    }

    /// Start one `nsinit exec` per command, all released at the same moment, once every
    /// one of them is started.
    pub fn start_together(&self, commands: &[&[&str]]) -> Result<Vec<Nsinit>, String> {
        let gate = Gate::new().map_err(|e| format!("create the start gate: {e}"))?;
        let started = commands
            .iter()
            .map(|command| self.spawn(command, Some(&gate)))
            .collect();
        gate.open();
        started
    }

    /// [`Stage::run`] with nsinit run by the plain user `uid`:`gid` (no supplementary groups,
    /// no `XDG_RUNTIME_DIR`): rootless.
    pub fn run_as(&self, uid: u32, gid: u32, command: &[&str]) -> Run {
        match self.spawn_as(command, None, Some((uid, gid))) {
            Ok(nsinit) => self.finish(nsinit),
            Err(why) => Run::not_run(&self.dir, why),
        }
    }

    fn spawn(&self, command: &[&str], gate: Option<&Gate>) -> Result<Nsinit, String> {
        self.spawn_as(command, gate, None)
    }

    fn spawn_as(
        &self,
        command: &[&str],
        gate: Option<&Gate>,
        user: Option<(u32, u32)>,
    ) -> Result<Nsinit, String> {
        let cannot = |e: io::Error| format!("cannot start {}: {e}", self.nsinit.display());
        let mut nsinit = Command::new(&self.nsinit);
        nsinit
            .arg("exec")
            .arg("--")
            .args(command)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        if let Some((uid, gid)) = user {
            use std::os::unix::process::CommandExt;
            nsinit.env_remove("XDG_RUNTIME_DIR");
            // SAFETY: between fork and exec the closure makes only the setgroups, setgid and
            // setuid system calls (groups first: a plain user may not set them), which are
            // async-signal-safe, and touches no memory of the parent's.
            unsafe {
                nsinit.pre_exec(move || {
                    let ok = libc::setgroups(0, std::ptr::null()) == 0
                        && libc::setgid(gid) == 0
                        && libc::setuid(uid) == 0;
                    match ok {
                        true => Ok(()),
                        false => Err(io::Error::last_os_error()),
                    }
                });
            }
        }
        if let Some(gate) = gate {
            nsinit = gate.behind(&nsinit).map_err(cannot)?;
        }
        let mut child = nsinit
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(cannot)?;
        Ok(Nsinit {
            stdout: Some(harness::read_in_background(child.stdout.take())),
            stderr: Some(harness::read_in_background(child.stderr.take())),
            child,
            started: Instant::now(),
            ended: None,
        })
    }

    /// Wait for nsinit to exit, killing it and everything under it at the case's deadline;
    /// returns the run with what it printed.
    pub fn finish(&self, nsinit: Nsinit) -> Run {
        self.finish_by(nsinit, self.deadline)
    }

    /// [`Stage::finish`] with an earlier deadline.
    pub fn finish_by(&self, mut nsinit: Nsinit, by: Instant) -> Run {
        let by = by.min(self.deadline);
        let outcome = loop {
            if let Some(outcome) = nsinit.ended() {
                break outcome;
            }
            if Instant::now() >= by {
                nsinit.kill_and_reap();
                break Outcome::TimedOut(nsinit.started.elapsed());
            }
            std::thread::sleep(POLL);
        };
        let stdout = nsinit.stdout.take().expect("only finish takes the pipes");
        let stderr = nsinit.stderr.take().expect("only finish takes the pipes");
        Run::finished(outcome, &self.dir, stdout, stderr)
    }

    /// Start `nsinit exec -- COMMAND...` and wait for it to end.
    pub fn run(&self, command: &[&str]) -> Run {
        match self.start(command) {
            Ok(nsinit) => self.finish(nsinit),
            Err(why) => Run::not_run(&self.dir, why),
        }
    }

    /// Poll `look` until it finds something, up to the case's deadline; the error says
    /// what never happened.
    pub fn until<T>(&self, what: &str, look: impl FnMut() -> Option<T>) -> Result<T, String> {
        self.until_by(self.deadline, what, look)
    }

    /// [`Stage::until`] with an earlier deadline.
    pub fn until_by<T>(
        &self,
        by: Instant,
        what: &str,
        mut look: impl FnMut() -> Option<T>,
    ) -> Result<T, String> {
        let by = by.min(self.deadline);
        let waiting = Instant::now();
        loop {
            if let Some(found) = look() {
                return Ok(found);
            }
            if Instant::now() >= by {
                return Err(format!(
                    "waited {:.1}s for {what}",
                    waiting.elapsed().as_secs_f64()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The container process nsinit started: its child once it runs the probe (the
    /// container's PID 1 for a start, the joined command for a join).
    pub fn probe_under(&self, nsinit: &mut Nsinit) -> Result<Process, String> {
        let pid = nsinit.pid();
        let what = format!("the probe to run under nsinit {pid}");
        self.until(&what, || {
            if let Some(outcome) = nsinit.ended() {
                return Some(Err(format!(
                    "{} before its probe ran; stderr: {}",
                    outcome.describe(),
                    nsinit.stderr_so_far().trim()
                )));
            }
            harness::children(pid)
                .into_iter()
                .filter(|&child| harness::is_probe(child))
                .find_map(Process::of)
                .map(Ok)
        })?
    }

    /// Kill `process` when the stage ends, if it still runs then.
    pub fn adopt(&mut self, process: Process) {
        self.adopted.push(process);
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        for process in &self.adopted {
            process.kill();
        }
    }
}

/// A pipe whose end-of-file releases every command started behind it at the same moment.
///
/// A child cannot wait between fork and exec (spawning waits for the exec), so each one runs
/// the driver itself as `--at-gate PROGRAM ARGS...` with the gate on its stdin: it execs
/// `PROGRAM` once the driver closes the write end (see [`wait_then_exec`]).
struct Gate {
    read: OwnedFd,
    write: OwnedFd,
}

/// The driver's hidden first argument that makes it a waiter at a gate.
pub const AT_GATE: &str = "--at-gate";

impl Gate {
    fn new() -> io::Result<Gate> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both fds are open and nobody else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Gate { read, write })
    }

    /// A command that runs `command` once the gate opens.
    fn behind(&self, command: &Command) -> io::Result<Command> {
        let mut waiter = Command::new(std::env::current_exe()?);
        waiter
            .arg(AT_GATE)
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(self.read.try_clone()?);
        if let Some(dir) = command.get_current_dir() {
            waiter.current_dir(dir);
        }
        Ok(waiter)
    }

    /// Release every command waiting at the gate.
    fn open(self) {
        drop(self.write);
    }
}

/// `--at-gate PROGRAM ARGS...`: wait for end-of-file on stdin, then run `PROGRAM` in this
/// process with stdin on `/dev/null`. Returns only on failure.
pub fn wait_then_exec(program: &str, args: &[String]) -> io::Error {
    let mut gate = [0u8; 1];
    loop {
        match io::stdin().lock().read(&mut gate) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return e,
        }
    }
    Command::new(program).args(args).stdin(Stdio::null()).exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 0";
        assert_eq!(harness::stat_field(stat, 3), Some("S"));
        assert_eq!(harness::stat_field(stat, 4), Some("17"));
        assert_eq!(harness::stat_field(stat, 22), Some("98765"));
        assert_eq!(harness::stat_field(stat, 2), None);
    }

    #[test]
    fn a_process_is_alive_until_reaped_and_a_reused_pid_is_not_it() {
        let me = Process::of(std::process::id() as i32).expect("this process");
        assert!(me.is_alive());
        let not_me = Process {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!not_me.is_alive());

        let mut child = Command::new("/proc/self/exe")
            .arg("--list")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run this test binary again");
        let process = Process::of(child.id() as i32);
        child.wait().expect("reap the child");
        assert!(process.is_none_or(|p| !p.is_alive()));
    }
}
