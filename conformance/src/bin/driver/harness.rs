//! Running one case: a fresh copy of the template rootfs, `nsinit exec` in it under a hard
//! timeout, an optional action on the running container, and everything it printed.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::facts::Mount;
use conformance::names::signal_name;

use crate::suite::{Action, Case, ConfigFile};

/// The file every case directory gets, holding the case's name: seeing it at `/` inside the
/// container proves the container's root is this case's directory.
pub const CASE_MARKER: &str = ".nsinit-conformance-case";

/// How often the driver looks at a running container.
const POLL: Duration = Duration::from_millis(2);

/// How long the driver waits for output after nsinit exited before giving up on it (a
/// process left behind in the container may hold the pipes open).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// How one run of nsinit ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Exited(i32),
    /// nsinit itself was killed by this signal (not the container's command).
    Killed(i32),
    /// The hard timeout hit; nsinit and everything under it were killed.
    TimedOut(Duration),
    /// The case could not even start.
    NotRun(String),
}

impl From<ExitStatus> for Outcome {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(signal)) => Outcome::Killed(signal),
            (None, None) => Outcome::NotRun(format!("unknown wait status {status:?}")),
        }
    }
}

impl Outcome {
    /// How nsinit ended, in words.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Exited(code) => format!("nsinit exited {code}"),
            Outcome::Killed(signal) => format!("nsinit was killed by SIG{}", signal_name(*signal)),
            Outcome::TimedOut(after) => format!("nsinit timed out after {}s", after.as_secs()),
            Outcome::NotRun(why) => format!("case not run: {why}"),
        }
    }
}

/// What a case's checks look at.
#[derive(Debug, Clone)]
pub struct Run {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
    /// The case's directory, the container's root.
    pub dir: PathBuf,
    /// Why the case's action did not happen, if it had one that did not.
    pub action_missed: Option<String>,
    /// Said when output pipes stayed open after nsinit exited.
    pub output_note: Option<String>,
}

impl Run {
    /// A run that ended this way, with everything its pipes delivered: waits for their
    /// end-of-file a short grace after nsinit exited, and notes a pipe still held open then.
    pub fn finished(outcome: Outcome, dir: &Path, stdout: PipeReader, stderr: PipeReader) -> Run {
        let grace = Instant::now() + OUTPUT_GRACE;
        let (stdout, stdout_closed) = collect(stdout, grace);
        let (stderr, stderr_closed) = collect(stderr, grace);
        let still_open: Vec<&str> = [("stdout", stdout_closed), ("stderr", stderr_closed)]
            .into_iter()
            .filter(|(_, closed)| !closed)
            .map(|(name, _)| name)
            .collect();
        let output_note = (!still_open.is_empty()).then(|| {
            format!(
                "{} still open {}s after nsinit exited: a process outlived it",
                still_open.join(" and "),
                OUTPUT_GRACE.as_secs()
            )
        });
        Run {
            outcome,
            stdout,
            stderr,
            dir: dir.to_path_buf(),
            action_missed: None,
            output_note,
        }
    }

    /// A run that never started, for the reason given.
    pub fn not_run(dir: &Path, why: String) -> Run {
        Run {
            outcome: Outcome::NotRun(why),
            stdout: String::new(),
            stderr: String::new(),
            dir: dir.to_path_buf(),
            action_missed: None,
            output_note: None,
        }
    }

    /// One line saying how the run went, for failure messages.
    pub fn summary(&self) -> String {
        let mut text = self.outcome.describe();
        if let Some(missed) = &self.action_missed {
            text += &format!(" ({missed})");
        }
        if let Some(note) = &self.output_note {
            text += &format!(" ({note})");
        }
        let stderr = self.stderr.trim();
        if !stderr.is_empty() {
            text += &format!("; stderr: {stderr}");
        }
        text
    }
}

/// The driver's scratch space: the template rootfs and one directory per case.
pub struct Workspace {
    pub root: PathBuf,
    pub template: PathBuf,
    /// The template as read once it is complete ([`Workspace::template_done`]), for copying.
    copies: Option<fixtures::Template>,
    /// Whether the driver created `root` and removes it at the end.
    owns_root: bool,
    /// Mounts found under case directories after their run, detached by the driver.
    pub leftover_mounts: Vec<String>,
    /// nsinit's state (in [`STATE_ROOT`]) still naming a case directory after its run,
    /// removed by the driver.
    pub leftover_state: Vec<String>,
}

impl Workspace {
    /// Use `dir`, or a fresh directory under the system's temp dir.
    pub fn create(dir: Option<&Path>) -> io::Result<Workspace> {
        let (root, owns_root) = match dir {
            Some(dir) => (dir.to_path_buf(), !dir.exists()),
            None => (
                std::env::temp_dir().join(format!("nsinit-conformance.{}", std::process::id())),
                true,
            ),
        };
        fs::create_dir_all(&root)?;
        // nsinit keys containers by directory; keep the path free of symlinks.
        let root = root.canonicalize()?;
        let template = root.join("template");
        if template.exists() {
            fs::remove_dir_all(&template)?;
        }
        Ok(Workspace {
            root,
            template,
            copies: None,
            owns_root,
            leftover_mounts: Vec::new(),
            leftover_state: Vec::new(),
        })
    }

    /// The template is complete: read it once for the copies of every case.
    pub fn template_done(&mut self) -> io::Result<()> {
        self.copies = Some(fixtures::Template::read(&self.template)?);
        Ok(())
    }

    /// A fresh copy of the template for `case`, with its `container.json`, marker and files.
    pub fn case_dir(&self, index: usize, case: &Case) -> io::Result<PathBuf> {
        let dir = self.root.join(format!("{index:03}-{}", case.name));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        match &self.copies {
            Some(template) => template.copy_to(&dir)?,
            None => fixtures::copy_rootfs(&self.template, &dir)?,
        }
        match &case.config {
            ConfigFile::Fixture(name) => {
                let text = fixtures::config(name).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("no fixture {name}"))
                })?;
                fs::write(dir.join("container.json"), text)?;
            }
            ConfigFile::Derived(text) => fs::write(dir.join("container.json"), text)?,
            ConfigFile::Absent => {}
        }
        fs::write(dir.join(CASE_MARKER), format!("{}\n", case.name))?;
        for file in &case.files {
            let path = dir.join(file.path.trim_start_matches('/'));
            fs::write(&path, file.content)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))?;
        }
        Ok(dir)
    }

    /// Remove a case directory, first detaching anything still mounted under it, so the
    /// removal never walks into a mounted filesystem.
    pub fn remove_case_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut stale = mounts_under(dir)?;
        // Deepest first, so that each detach finds its mount point still reachable.
        stale.sort_by_key(|point| std::cmp::Reverse(point.len()));
        for point in stale {
            detach(Path::new(&point))?;
            self.leftover_mounts.push(point);
        }
        for path in state_of(dir) {
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            self.leftover_state
                .push(format!("{} (for {})", path.display(), dir.display()));
        }
        match &self.copies {
            Some(template) if dir != template.root() => template.remove_copy(dir),
            _ => fs::remove_dir_all(dir),
        }
    }

    /// Remove the template, and the workspace itself if the driver created it.
    pub fn remove(&mut self) -> io::Result<()> {
        if self.template.exists() {
            self.remove_case_dir(&self.template.clone())?;
        }
        if self.owns_root {
            fs::remove_dir_all(&self.root)?;
        }
        Ok(())
    }
}

/// Where nsinit keeps its state (README, "Lifecycle").
pub const STATE_ROOT: &str = "/run/nsinit";

/// Entries of [`STATE_ROOT`] named after `dir`'s device and inode (hex as nsinit names them,
/// or decimal), whatever their suffix.
pub fn state_of(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(dir) else {
        return Vec::new();
    };
    let ids = [
        format!("{:x}-{:x}", meta.dev(), meta.ino()),
        format!("{}-{}", meta.dev(), meta.ino()),
    ];
    let named_after = |name: &str| {
        ids.iter().any(|id| {
            name.strip_prefix(id.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    };
    let Ok(entries) = fs::read_dir(STATE_ROOT) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(named_after))
        .map(|entry| entry.path())
        .collect()
}

/// Mount points at or under `dir` in the driver's own mount namespace.
fn mounts_under(dir: &Path) -> io::Result<Vec<String>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(Mount::parse_mountinfo(&text)
        .into_iter()
        .map(|mount| mount.mount_point)
        .filter(|point| Path::new(point).starts_with(dir))
        .collect())
}

fn detach(target: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let target = std::ffi::CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: `target` is NUL-terminated and outlives the call.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Run `nsinit exec -- COMMAND...` in `dir`, perform the case's action while it runs, and
/// collect what it printed. Never takes longer than `timeout` plus a short grace.
pub fn run_nsinit(nsinit: &Path, dir: &Path, case: &Case, timeout: Duration) -> Run {
    let mut command = Command::new(nsinit);
    command
        .arg("exec")
        .arg("--")
        .args(&case.command)
        .current_dir(dir)
        .stdin(if case.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Run::not_run(dir, format!("cannot start {}: {e}", nsinit.display())),
    };
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    if let (Some(bytes), Some(mut stdin)) = (case.stdin, child.stdin.take()) {
        // nsinit may exit without reading; its status tells the story then.
        let _ = stdin.write_all(bytes);
        // Dropping `stdin` closes it: the command sees end-of-file.
    }

    let (outcome, action_done) = supervise(&mut child, case.action, timeout);
    let action_missed = match (case.action, action_done) {
        (Some(action), false) => Some(format!(
            "{} never happened: {}",
            action.describe(),
            action.waits_for()
        )),
        _ => None,
    };
    Run {
        action_missed,
        ..Run::finished(outcome, dir, stdout, stderr)
    }
}

/// Wait for nsinit with a hard deadline, performing `action` once its condition holds.
/// Returns how nsinit ended and whether the action was performed.
fn supervise(child: &mut Child, action: Option<Action>, timeout: Duration) -> (Outcome, bool) {
    let nsinit = child.id() as i32;
    let deadline = Instant::now() + timeout;
    let mut pending = action;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status.into(), pending.is_none()),
            Ok(None) => {}
            Err(e) => return (Outcome::NotRun(format!("wait for nsinit: {e}")), false),
        }
        if Instant::now() >= deadline {
            kill_tree(nsinit);
            let _ = child.wait();
            return (Outcome::TimedOut(timeout), pending.is_none());
        }
        if let Some(action) = pending {
            if action.perform(nsinit) {
                pending = None;
            }
        }
        std::thread::sleep(POLL);
    }
}

impl Action {
    /// Perform the action if the container is ready for it; returns whether it was done.
    fn perform(self, nsinit: i32) -> bool {
        match self {
            Action::SignalNsinit(signal) => {
                let ready = descendants(nsinit)
                    .into_iter()
                    .any(|pid| is_probe(pid) && catches(pid, signal));
                ready && send_signal(nsinit, signal)
            }
            Action::KillProbe => descendants(nsinit)
                .into_iter()
                .find(|&pid| is_probe(pid))
                .is_some_and(|pid| send_signal(pid, libc::SIGKILL)),
        }
    }

    fn describe(self) -> String {
        match self {
            Action::SignalNsinit(signal) => format!("SIG{} to nsinit", signal_name(signal)),
            Action::KillProbe => "SIGKILL to the container's PID 1".to_string(),
        }
    }

    fn waits_for(self) -> &'static str {
        match self {
            Action::SignalNsinit(_) => "the probe never had its signal handlers installed",
            Action::KillProbe => "the probe never ran",
        }
    }
}

/// What a pipe delivered so far, and whether it reached end-of-file.
pub struct PipeReader {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

pub fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> PipeReader {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let (sender, done) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        let sink = Arc::clone(&bytes);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .expect("reader holds no lock while panicking")
                    .extend_from_slice(&chunk[..n]);
            }
            let _ = sender.send(());
        });
    } else {
        let _ = sender.send(());
    }
    PipeReader { bytes, done }
}

impl PipeReader {
    /// What the pipe delivered so far, while it may still deliver more.
    pub fn so_far(&self) -> String {
        let bytes = self
            .bytes
            .lock()
            .expect("reader holds no lock while panicking");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Everything the pipe delivered, and whether it reached end-of-file before `deadline`.
fn collect(reader: PipeReader, deadline: Instant) -> (String, bool) {
    let left = deadline.saturating_duration_since(Instant::now());
    let closed = reader.done.recv_timeout(left).is_ok();
    let bytes = reader
        .bytes
        .lock()
        .expect("reader holds no lock while panicking");
    (String::from_utf8_lossy(&bytes).into_owned(), closed)
}

/// Whether `pid` runs the probe (its command name after exec).
pub fn is_probe(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "probe")
}

/// Whether `pid` has a handler installed for `signal` (`SigCgt` in its status).
fn catches(pid: i32, signal: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

pub fn send_signal(pid: i32, signal: i32) -> bool {
    // SAFETY: kill takes only integers; `pid` is a process the driver started or one under it.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// The processes whose parent is `parent`.
pub fn children(parent: i32) -> Vec<i32> {
    parent_pids()
        .into_iter()
        .filter(|&(_, ppid)| ppid == parent)
        .map(|(pid, _)| pid)
        .collect()
}

/// Every process below `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    let parents = parent_pids();
    let mut found = vec![];
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// `(pid, parent pid)` of every process, from `/proc/*/stat`.
fn parent_pids() -> Vec<(i32, i32)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat_field(&stat, 4)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// Field `n` (numbered from 1, as proc(5) does) of a `/proc/PID/stat` line.
pub fn stat_field(stat: &str, n: usize) -> Option<&str> {
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so count from its
    // last `)`, which ends field 2.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(n.checked_sub(3)?)
}

/// SIGKILL `root` and everything below it; the tree is read before anything dies, so
/// reparented orphans are not lost.
pub fn kill_tree(root: i32) {
    for pid in descendants(root).into_iter().rev() {
        send_signal(pid, libc::SIGKILL);
    }
    send_signal(root, libc::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the text and field number, a field or nothing, never a panic.
        #[test]
        fn any_text_gives_a_field_or_nothing(text in any::<String>(), n in 0..64usize) {
            let _ = stat_field(&text, n);
        }

        /// In a line the kernel could print (any command name but NUL, at most 15 bytes, in
        /// parentheses), field `n` is the `n`th, for every field after the name.
        #[test]
        fn every_field_after_the_name_is_found(
            comm in "[^\\u{0}]{0,15}",
            fields in proptest::collection::vec(any::<i64>().prop_map(|n| n.to_string()), 50),
        ) {
            let line = format!("4242 ({comm}) {}\n", fields.join(" "));
            for (i, field) in fields.iter().enumerate() {
                prop_assert_eq!(stat_field(&line, i + 3), Some(field.as_str()));
            }
        }
    }
}
