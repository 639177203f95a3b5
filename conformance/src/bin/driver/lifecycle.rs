//! The lifecycle scenarios: several `nsinit exec` in one directory, and what the driver sees
//! of the container from the host between them (`.nspid`, `/proc/PID`, the state files).
//! Each play returns its findings; the checks on them are in `suite`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conformance::facts::{CapabilitySets, Facts};
use conformance::names::NAMESPACES;

use crate::harness::{self, Run, STATE_ROOT};
use crate::stage::{Nsinit, Process, Stage};

/// How long the kernel and nsinit may take for what the lifecycle promises at once (a
/// container dying with PID 1 or with nsinit), on a loaded machine.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// The public mirror of PID 1's host pid in the container's directory.
pub const NSPID: &str = ".nspid";

/// A PID 1 that lives until the driver ends it.
const LONG_SLEEP: &[&str] = &["/probe", "sleep", "600"];

/// How many `nsinit exec` race to start the same container.
pub const RACERS: usize = 8;

/// What `.nspid` was when the driver looked, without following a symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nspid {
    Missing,
    /// A regular file, with its first line.
    File(String),
    /// Something else (a symlink, a directory), or unreadable: what it was.
    Other(String),
}

impl Nspid {
    pub fn look(dir: &Path) -> Nspid {
        let path = dir.join(NSPID);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Nspid::Missing,
            Err(e) => Nspid::Other(format!("unreadable: {e}")),
            Ok(meta) if meta.is_symlink() => Nspid::Other("a symlink".into()),
            Ok(meta) if meta.is_dir() => Nspid::Other("a directory".into()),
            Ok(meta) if !meta.is_file() => Nspid::Other("no regular file".into()),
            Ok(_) => match fs::read_to_string(&path) {
                Ok(text) => Nspid::File(text.lines().next().unwrap_or("").to_string()),
                Err(e) => Nspid::Other(format!("unreadable: {e}")),
            },
        }
    }

    /// A regular file whose first line is `pid`.
    pub fn names(&self, pid: i32) -> bool {
        matches!(self, Nspid::File(line) if line.trim() == pid.to_string())
    }
}

impl fmt::Display for Nspid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nspid::Missing => write!(f, "no {NSPID}"),
            Nspid::File(line) => write!(f, "{NSPID} saying {line:?}"),
            Nspid::Other(what) => write!(f, "{NSPID} that is {what}"),
        }
    }
}

/// A container process seen from the host through `/proc/PID`.
#[derive(Debug, Clone)]
pub struct Seen {
    pub process: Process,
    /// `/proc/PID/ns/NAME` link targets by namespace name.
    pub namespaces: BTreeMap<String, String>,
    pub capabilities: Result<CapabilitySets, String>,
}

impl Seen {
    fn look(process: Process) -> Seen {
        let pid = process.pid;
        let namespaces = NAMESPACES
            .iter()
            .map(|(name, _)| {
                let target = fs::read_link(format!("/proc/{pid}/ns/{name}"))
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_else(|e| format!("unreadable: {e}"));
                (name.to_string(), target)
            })
            .collect();
        let capabilities = fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| e.to_string())
            .and_then(|status| CapabilitySets::from_status(&status));
        Seen {
            process,
            namespaces,
            capabilities,
        }
    }
}

/// Whether `/proc/PID/root` of `pid` is `dir` itself (same device and inode).
fn root_is(pid: i32, dir: &Path) -> Result<(), String> {
    let root =
        fs::metadata(format!("/proc/{pid}/root")).map_err(|e| format!("/proc/{pid}/root: {e}"))?;
    let dir_meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if (root.dev(), root.ino()) == (dir_meta.dev(), dir_meta.ino()) {
        Ok(())
    } else {
        Err(format!(
            "/proc/{pid}/root is device {:x} inode {}, the directory device {:x} inode {}",
            root.dev(),
            root.ino(),
            dir_meta.dev(),
            dir_meta.ino()
        ))
    }
}

/// Start `command` as a new container's PID 1 and wait until it runs.
fn start_container(stage: &Stage, command: &[&str]) -> Result<(Nsinit, Process), String> {
    let mut nsinit = stage.start(command)?;
    let pid1 = stage.probe_under(&mut nsinit)?;
    Ok((nsinit, pid1))
}

/// A container's life from the host, and what joins into it see.
pub struct Lifecycle {
    /// PID 1 while it runs.
    pub pid1: Seen,
    /// `.nspid` while PID 1 runs, and whether the pid it names has this directory as root.
    pub nspid: Nspid,
    pub nspid_root: Result<(), String>,
    /// nsinit's record naming PID 1: its path, or why none was found.
    pub record: Result<PathBuf, String>,
    /// Joined runs: `/probe facts`, `/probe exit 9`, a missing command.
    pub facts: Run,
    pub exit_9: Run,
    pub missing: Run,
    /// The joining nsinit's executable, looked at from the host.
    pub exe: Exe,
    /// The first nsinit, ended by killing PID 1, and `.nspid` once it returned.
    pub first: Run,
    pub nspid_after: Nspid,
}

/// Start a container, look at it from the host, join it a few times, end it.
pub fn lifecycle(stage: &mut Stage) -> Result<Lifecycle, String> {
    let (first, pid1) = start_container(stage, LONG_SLEEP)?;
    stage.adopt(pid1);
    let dir = stage.dir().to_path_buf();
    let nspid = Nspid::look(&dir);
    let nspid_root = match &nspid {
        Nspid::File(line) => match line.trim().parse::<i32>() {
            Ok(pid) if pid > 0 => root_is(pid, &dir),
            _ => Err(format!("{line:?} is not a pid")),
        },
        other => Err(other.to_string()),
    };
    let record = record_naming(&dir, pid1.pid);
    let pid1_seen = Seen::look(pid1);

    let facts = stage.run(&["/probe", "facts"]);
    let exit_9 = stage.run(&["/probe", "exit", "9"]);
    let missing = stage.run(&["/no-such-command"]);
    let exe = Exe::watch_a_join(stage)?;

    pid1.kill();
    let first = stage.finish(first);
    let nspid_after = Nspid::look(&dir);
    Ok(Lifecycle {
        pid1: pid1_seen,
        nspid,
        nspid_root,
        record,
        facts,
        exit_9,
        missing,
        exe: exe.after_everything_ended(stage),
        first,
        nspid_after,
    })
}

/// The record of `dir` in [`STATE_ROOT`]: a regular file naming `pid`, named after the
/// directory's `<dev>-<inode>` ([`harness::state_of`]), or inside a directory so named.
fn record_naming(dir: &Path, pid: i32) -> Result<PathBuf, String> {
    let names_pid = |path: &Path| {
        path.is_file()
            && fs::read_to_string(path).is_ok_and(|text| {
                text.split(|c: char| !c.is_ascii_digit())
                    .any(|number| number == pid.to_string())
            })
    };
    for path in harness::state_of(dir) {
        if names_pid(&path) {
            return Ok(path);
        }
        if let Ok(inner) = fs::read_dir(&path) {
            if let Some(found) = inner.flatten().map(|e| e.path()).find(|p| names_pid(p)) {
                return Ok(found);
            }
        }
    }
    Err(format!(
        "no file in {STATE_ROOT} named after {} names pid {pid}",
        dir.display()
    ))
}

/// The executable of a joining nsinit, seen from the host (CVE-2019-5736).
pub struct Exe {
    /// Where `/proc/PID/exe` of the joining nsinit pointed while the join ran.
    pub link: String,
    /// Whether that executable was on a read-only overlayfs mount (the view a join makes of
    /// the binary where the kernel has overlayfs, when no supervisor's memfd copy is there).
    pub on_readonly_overlay: bool,
    /// Writing through that link while the join ran, and once every nsinit had exited.
    pub write_while_joined: Write,
    pub write_after: Write,
    /// Whether the nsinit binary on disk kept its bytes.
    pub binary_unchanged: bool,
    /// An `O_PATH` fd of the link's target, kept for the write once all is over.
    kept: Option<File>,
    binary_before: Vec<u8>,
}

/// What came of writing through `/proc/PID/exe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Refused(String),
    /// The write went through (with the byte already there, so nothing changed).
    Done,
}

impl Exe {
    /// Join with a long sleep, look at the joining nsinit's executable while the join runs,
    /// then end the join.
    fn watch_a_join(stage: &Stage) -> Result<Exe, String> {
        let binary_before = fs::read(stage.nsinit())
            .map_err(|e| format!("read {}: {e}", stage.nsinit().display()))?;
        let mut joined = stage.start(LONG_SLEEP)?;
        let probe = stage.probe_under(&mut joined)?;
        let exe = format!("/proc/{}/exe", joined.pid());
        let link = fs::read_link(&exe)
            .map(|target| target.to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        let on_readonly_overlay = on_readonly_overlay(&exe);
        let kept = File::options()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&exe)
            .ok();
        let write_while_joined = kept.as_ref().map_or_else(
            || Write::Refused("no O_PATH fd to write through".into()),
            write_through,
        );
        probe.kill();
        stage.finish(joined);
        Ok(Exe {
            link,
            on_readonly_overlay,
            write_while_joined,
            write_after: Write::Refused("not tried".into()),
            binary_unchanged: false,
            kept,
            binary_before,
        })
    }

    /// Once no nsinit runs, nothing keeps a binary busy: write through the kept fd (the
    /// CVE-2019-5736 move), and compare the binary on disk with what it was.
    fn after_everything_ended(mut self, stage: &Stage) -> Exe {
        if let Some(kept) = self.kept.take() {
            self.write_after = write_through(&kept);
        }
        self.binary_unchanged = fs::read(stage.nsinit()).is_ok_and(|now| now == self.binary_before);
        self
    }
}

/// Whether `path` is on a read-only overlayfs mount (`statfs(2)`, `statvfs(3)`).
pub fn on_readonly_overlay(path: &str) -> bool {
    let Ok(path) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: both are plain integers; all zeros is a valid value.
    let (mut fs, mut vfs): (libc::statfs, libc::statvfs) = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string, and buffers of the types the calls fill.
    let ok = unsafe {
        libc::statfs(path.as_ptr(), &mut fs) == 0 && libc::statvfs(path.as_ptr(), &mut vfs) == 0
    };
    ok && fs.f_type == libc::OVERLAYFS_SUPER_MAGIC && vfs.f_flag & libc::ST_RDONLY != 0
}

/// Reopen the file behind an `O_PATH` fd for writing and write its first byte back over
/// itself: refused for a sealed copy or a read-only overlay; for the host binary it would go
/// through, unchanged.
pub fn write_through(path_fd: &File) -> Write {
    let reopen = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    let file = match File::options().read(true).write(true).open(&reopen) {
        Ok(file) => file,
        Err(e) => return Write::Refused(format!("open for writing: {e}")),
    };
    let mut first = [0u8; 1];
    if let Err(e) = (&file).read_exact(&mut first) {
        return Write::Refused(format!("read: {e}"));
    }
    match file.write_at(&first, 0) {
        Ok(_) => Write::Done,
        Err(e) => Write::Refused(format!("write: {e}")),
    }
}

/// A joined command's end when PID 1 dies under it.
pub struct JoinedKill {
    /// How long the joined nsinit took to return after PID 1 was killed, or that it did not.
    pub took: Result<Duration, String>,
    /// Whether the joined command still ran when its nsinit returned.
    pub joined_alive_after: bool,
    pub joined: Run,
}

/// Join a long sleep into a container, then SIGKILL PID 1 from the host.
pub fn joined_dies_with_pid1(stage: &mut Stage) -> Result<JoinedKill, String> {
    let (first, pid1) = start_container(stage, LONG_SLEEP)?;
    stage.adopt(pid1);
    let mut joined = stage.start(LONG_SLEEP)?;
    let joined_probe = stage.probe_under(&mut joined)?;
    stage.adopt(joined_probe);
    pid1.kill();
    let killed = Instant::now();
    let took = stage.until_by(killed + PROMPTLY, "the joined nsinit to return", || {
        joined.ended().map(|_| killed.elapsed())
    });
    let joined_alive_after = joined_probe.is_alive();
    let joined = stage.finish(joined);
    stage.finish(first);
    Ok(JoinedKill {
        took,
        joined_alive_after,
        joined,
    })
}

/// A container whose nsinit was SIGKILLed, and the next exec in its directory.
pub struct NsinitKilled {
    /// PID 1's end after the kill: how long it took, or that it lived on.
    pub pid1_died: Result<Duration, String>,
    /// `nsinit exec /probe facts` afterwards.
    pub next: Run,
}

pub fn sigkill_nsinit(stage: &mut Stage) -> Result<NsinitKilled, String> {
    let (mut first, pid1) = start_container(stage, LONG_SLEEP)?;
    stage.adopt(pid1);
    if !first.signal(libc::SIGKILL) {
        return Err(format!("nsinit {} was gone before the kill", first.pid()));
    }
    let killed = Instant::now();
    let pid1_died = stage
        .until_by(killed + PROMPTLY, "PID 1 to die", || {
            (!pid1.is_alive()).then(|| killed.elapsed())
        })
        .map_err(|why| format!("PID 1 (host pid {}) still ran: {why}", pid1.pid));
    stage.finish(first);
    Ok(NsinitKilled {
        pid1_died,
        next: stage.run(&["/probe", "facts"]),
    })
}

/// A container started where `.nspid` already named some process.
pub struct PlantedNspid {
    pub planted: i32,
    /// The container that started (its facts on stdout), ended by killing its PID 1.
    pub run: Run,
    pub pid1: Process,
    /// `.nspid` while the container ran, and after its nsinit returned.
    pub during: Nspid,
    pub after: Nspid,
}

/// `.nspid` naming a pid that no longer runs: a host process the driver started and reaped.
pub fn dead_pid_planted(stage: &mut Stage) -> Result<PlantedNspid, String> {
    let mut gone = std::process::Command::new(stage.dir().join("probe"))
        .args(["exit", "0"])
        .spawn()
        .map_err(|e| format!("run the probe on the host for a pid: {e}"))?;
    let _ = gone.wait();
    planted_nspid(stage, gone.id() as i32)
}

/// `.nspid` naming a live host process that is no container: the driver itself.
pub fn host_pid_planted(stage: &mut Stage) -> Result<PlantedNspid, String> {
    planted_nspid(stage, std::process::id() as i32)
}

fn planted_nspid(stage: &mut Stage, planted: i32) -> Result<PlantedNspid, String> {
    let dir = stage.dir().to_path_buf();
    fs::write(dir.join(NSPID), format!("{planted}\n"))
        .map_err(|e| format!("plant {NSPID}: {e}"))?;
    let (nsinit, pid1) = start_container(stage, &["/probe", "facts-then-sleep", "600"])?;
    stage.adopt(pid1);
    stage.until("the probe's facts", || {
        nsinit.stdout_so_far().contains('\n').then_some(())
    })?;
    let during = Nspid::look(&dir);
    pid1.kill();
    let run = stage.finish(nsinit);
    Ok(PlantedNspid {
        planted,
        run,
        pid1,
        during,
        after: Nspid::look(&dir),
    })
}

/// A container that rewrote its `/.nspid` to name the host's init, and a join after that.
pub struct Rewritten {
    pub pid1: Seen,
    /// `.nspid` as the container left it.
    pub nspid: Nspid,
    /// `nsinit exec /probe facts` afterwards.
    pub next: Run,
}

/// What the container writes into its `/.nspid`: the pid of the host's init.
pub const REWRITTEN_TO: &str = "1";

pub fn rewritten_from_inside(stage: &mut Stage) -> Result<Rewritten, String> {
    let script = format!(
        "/probe write-file /{NSPID} {REWRITTEN_TO} >/dev/null && exec {}",
        LONG_SLEEP.join(" ")
    );
    let (first, pid1) = start_container(stage, &["/bin/sh", "-c", &script])?;
    stage.adopt(pid1);
    let dir = stage.dir().to_path_buf();
    let wanted = Nspid::File(REWRITTEN_TO.into());
    let nspid = stage
        .until(&format!("the container to rewrite {NSPID}"), || {
            Some(Nspid::look(&dir)).filter(|seen| *seen == wanted)
        })
        .unwrap_or_else(|_| Nspid::look(&dir));
    let pid1_seen = Seen::look(pid1);
    let next = stage.run(&["/probe", "facts"]);
    pid1.kill();
    stage.finish(first);
    Ok(Rewritten {
        pid1: pid1_seen,
        nspid,
        next,
    })
}

/// Concurrent first starts in one fresh directory.
pub struct Racers {
    /// Each `nsinit exec /probe facts-then-sleep`, ended by killing every PID 1 among them.
    pub runs: Vec<Run>,
}

pub fn concurrent_starts(stage: &mut Stage) -> Result<Racers, String> {
    let command: &[&str] = &["/probe", "facts-then-sleep", "600"];
    let mut racers = stage.start_together(&[command; RACERS])?;
    stage.until(&format!("all {RACERS} to print their facts"), || {
        racers
            .iter_mut()
            .all(|nsinit| nsinit.stdout_so_far().contains('\n') || nsinit.ended().is_some())
            .then_some(())
    })?;
    // End the container, or every container if there is more than one, through their PID 1.
    for nsinit in &mut racers {
        let said_pid_1 = serde_json::from_str::<Facts>(nsinit.stdout_so_far().trim())
            .is_ok_and(|facts| facts.pid == 1);
        if said_pid_1 {
            if let Ok(pid1) = stage.probe_under(nsinit) {
                pid1.kill();
            }
        }
    }
    let runs = racers
        .into_iter()
        .map(|nsinit| stage.finish(nsinit))
        .collect();
    Ok(Racers { runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid_is_looked_at_without_following_a_symlink() {
        let dir =
            std::env::temp_dir().join(format!("nsinit-conformance-nspid.{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let nspid = dir.join(NSPID);
        assert_eq!(Nspid::look(&dir), Nspid::Missing);

        fs::write(&nspid, "4242\nmore\n").unwrap();
        assert_eq!(Nspid::look(&dir), Nspid::File("4242".into()));
        assert!(Nspid::look(&dir).names(4242));
        assert!(!Nspid::look(&dir).names(424));

        fs::remove_file(&nspid).unwrap();
        std::os::unix::fs::symlink("/proc/self/stat", &nspid).unwrap();
        assert_eq!(Nspid::look(&dir), Nspid::Other("a symlink".into()));
        assert!(!Nspid::look(&dir).names(1));

        fs::remove_dir_all(&dir).unwrap();
    }
}
