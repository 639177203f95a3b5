//! The lifecycle scenarios: several `nsinit exec` in one directory, and what the driver sees
//! of the container from the host between them (`.nspid`, `/proc/PID`, the state files).
//! Each play returns its findings; the checks on them are in `suite`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conformance::facts::{CapabilitySets, Facts};
use conformance::names::NAMESPACES;

use crate::check::{mismatch, Verdict};
use crate::harness::{self, Outcome, Run, STATE_ROOT};
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
    /// A joined script naming `/proc/self/exe` as its interpreter.
    pub shebang: Shebang,
    /// Whether the joining nsinit stayed out of the container's pid namespace.
    pub joiner_outside: Result<(), String>,
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
    let shebang = Shebang::try_with(&dir, stage.nsinit(), |script| stage.run(&[script]))?;
    let mut joined = stage.start(LONG_SLEEP)?;
    let probe = stage.probe_under(&mut joined)?;
    let joiner_outside = joiner_outside(joined.pid(), pid1.pid);
    probe.kill();
    stage.finish(joined);

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
        shebang,
        joiner_outside,
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

/// CVE-2019-5736, the script move: a joined command that is a script naming
/// `/proc/self/exe` as its interpreter makes the kernel run whatever the joined process ran
/// before its `execve`. Under nsinit that is the sealed exec trampoline, which refuses to run
/// for anyone but nsinit; were it the runtime's own binary, it would start inside, where
/// `/proc/PID/exe` opens it for the container to overwrite once it exits.
pub struct Shebang {
    /// The joined script's run.
    pub run: Run,
    /// Whether the runtime's binary on disk kept its bytes.
    pub binary_unchanged: bool,
}

/// The script [`Shebang`] joins, in the container's root.
const SHEBANG_SCRIPT: &str = "/proc-self-exe.sh";

impl Shebang {
    /// Put the script in the rootfs `dir`, `join` it (the front-end's way, given the path
    /// inside), and compare `binary` before and after.
    pub fn try_with(
        dir: &Path,
        binary: &Path,
        join: impl FnOnce(&str) -> Run,
    ) -> Result<Shebang, String> {
        let before = fs::read(binary).map_err(|e| format!("read {}: {e}", binary.display()))?;
        let script = dir.join(SHEBANG_SCRIPT.trim_start_matches('/'));
        fs::write(&script, "#!/proc/self/exe\n")
            .and_then(|()| fs::set_permissions(&script, fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("write {}: {e}", script.display()))?;
        let run = join(SHEBANG_SCRIPT);
        let _ = fs::remove_file(&script);
        let binary_unchanged = fs::read(binary).is_ok_and(|now| now == before);
        Ok(Shebang {
            run,
            binary_unchanged,
        })
    }

    /// The trampoline ran as the interpreter and refused (exit 126, its own words), and the
    /// binary kept its bytes.
    pub fn expect_trampoline(&self) -> Verdict {
        let ran_trampoline = matches!(self.run.outcome, Outcome::Exited(126))
            && self.run.stderr.contains("nsinit-trampoline:");
        if ran_trampoline && self.binary_unchanged {
            return Ok(());
        }
        Err(mismatch(
            "the script's interpreter is the exec trampoline (exit 126, \"nsinit-trampoline:\" on stderr), the binary on disk unchanged",
            format!(
                "{}; stderr {:?}; binary unchanged: {}",
                self.run.outcome.describe(),
                self.run.stderr.trim(),
                self.binary_unchanged
            ),
        ))
    }
}

/// Whether the joining runtime process stays out of the container's pid namespace while its
/// command runs (what it runs is then never visible inside): `Ok`, or what was seen.
pub fn joiner_outside(joiner: i32, pid1: i32) -> Result<(), String> {
    let ns = |pid: String| fs::read_link(format!("/proc/{pid}/ns/pid")).map_err(|e| e.to_string());
    let (joiner_ns, container_ns) = (ns(joiner.to_string())?, ns(pid1.to_string())?);
    match joiner_ns == container_ns {
        false => Ok(()),
        true => Err(format!(
            "the joining process {joiner} is in the container's pid namespace ({})",
            container_ns.display()
        )),
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
