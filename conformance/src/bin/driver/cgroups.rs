//! The cgroup cases: the container's group seen from the host (placement, memory limit,
//! removal), from a join and through `nsinit stats`; the OOM kill and its message; the
//! seed's own tiny limit; processes outside a pid namespace dying with PID 1 through the group
//! nsinit gives such a container; a limit nsinit refuses.
//!
//! Every configured group lives under [`PARENT`], a parent of the suite's own, which each case
//! removes when it is done (nsinit leaves parents in place, as they may be shared).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::facts::Mount;
use serde::Deserialize;

use crate::check::{expect_eq, expect_exit, facts_of, mismatch, Check};
use crate::harness::{self, Outcome, Run};
use crate::stage::{Process, Stage};
use crate::suite::{Case, ConfigFile};

/// The parent of every group the cases configure.
const PARENT: &str = "nsinit-conformance";
/// The seed without network and cgroups: the config the cases add their `cgroups` to.
const SEED: &str = "seed-no-net-cgroups";
/// The limit of the live container, and the same rounded down to pages by the kernel.
const LIVE_LIMIT: u64 = 64 << 20;
/// The OOM case's limit, far below what its PID 1 allocates.
const OOM_LIMIT: u64 = 8 << 20;
const OOM_ALLOC_MIB: &str = "64";
/// The seed's own `cgroups.memory`.
const SEED_LIMIT: u64 = 524_800;
/// Below the few pages any container needs: nsinit refuses it.
const TOO_LITTLE: u64 = 4096;
/// How long the kernel and nsinit may take for what they promise at once (a process dying
/// with PID 1), on a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(5);
/// A PID 1 that lives until the driver ends it.
const LONG_SLEEP: &[&str] = &["/probe", "sleep", "600"];

pub fn cases() -> Vec<Case> {
    vec![
        live_group(),
        seed_limit(),
        oom(),
        bad_memory(),
        no_pid_namespace_kill(),
    ]
}

/// The seed with `cgroups` naming `c-<case>` under [`PARENT`] with this memory limit.
fn config_with_limit(case: &str, memory: u64) -> ConfigFile {
    let text = fixtures::config(SEED).expect("the seed fixture exists");
    let mut json: serde_json::Value = serde_json::from_str(text).expect("the seed fixture parses");
    json["cgroups"] = serde_json::json!({
        "name": group_name(case),
        "parent": PARENT,
        "memory": memory,
    });
    ConfigFile::Derived(serde_json::to_string_pretty(&json).expect("JSON values serialize"))
}

fn group_name(case: &str) -> String {
    format!("c-{case}")
}

/// The group of `case` relative to the hierarchy root, as `/proc/PID/cgroup` shows it.
fn group_path(case: &str) -> String {
    format!("/{PARENT}/{}", group_name(case))
}

/// A case under a config with a memory limit; its play runs, then [`PARENT`] is removed.
fn limited<T: 'static>(
    case: &'static str,
    memory: u64,
    play: impl Fn(&mut Stage) -> Result<T, String> + 'static,
) -> Case {
    // The fixture named here is only a placeholder for the derived config.
    Case {
        config: config_with_limit(case, memory),
        ..Case::scenario(format!("cgroup-{case}"), SEED, move |stage| {
            let found = play(stage);
            if let Err(why) = remove_parent() {
                println!("# warning: {why}");
            }
            found
        })
    }
}

/// The live container: seen from the host, from a join and through `nsinit stats`, then
/// ended by killing its PID 1.
fn live_group() -> Case {
    let case = "live";
    limited(case, LIVE_LIMIT, move |stage| live(stage, case)).checks([
        Check::on_findings("cgroup/placement", move |l: &Live| {
            let wanted = group_path(case);
            if l.memory.group_in(&l.pid1_cgroup) == Some(wanted.clone()) {
                return Ok(());
            }
            Err(mismatch(
                format!("PID 1 in {wanted} ({})", l.memory.describe()),
                format!("/proc/PID/cgroup: {:?}", l.pid1_cgroup),
            ))
        }),
        Check::on_findings("cgroup/memory-limit", |l: &Live| {
            let limit = l.limit.as_ref().map_err(|why| mismatch(LIVE_LIMIT, why))?;
            expect_eq(LIVE_LIMIT.to_string().as_str(), limit.trim())
        }),
        Check::on_findings("cgroup/joined-same-cgroup", |l: &Live| {
            let joined = facts_of(&l.joined)?;
            let pid1: Vec<&str> = l.pid1_cgroup.lines().collect();
            expect_eq(
                pid1,
                joined.cgroup.lines.iter().map(String::as_str).collect(),
            )
        }),
        Check::on_findings("cgroup/stats", |l: &Live| {
            expect_exit(&l.stats, 0)?;
            let stats: Stats = serde_json::from_str(&l.stats.stdout)
                .map_err(|e| mismatch("stats as JSON", format!("{e}: {:?}", l.stats.stdout)))?;
            match stats {
                Stats {
                    memory_limit: Some(LIVE_LIMIT),
                    processes: 1..,
                } => Ok(()),
                _ => Err(mismatch(
                    format!("memory_limit {LIVE_LIMIT} and processes at least 1"),
                    l.stats.stdout.trim(),
                )),
            }
        }),
        Check::on_findings("cgroup/stats-after-exit", |l: &Live| {
            expect_exit(&l.stats_after, 125)?;
            if l.stats_after.stderr.contains("no container is running") {
                return Ok(());
            }
            Err(mismatch(
                "stderr saying \"no container is running\"",
                l.stats_after.summary(),
            ))
        }),
        Check::on_findings("cgroup/removed-after", |l: &Live| {
            if l.left_behind.is_empty() {
                return Ok(());
            }
            let left: Vec<String> = l
                .left_behind
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            Err(mismatch(
                "no group directory once nsinit returned",
                format!("{}; {}", left.join(" "), l.first.summary()),
            ))
        }),
    ])
}

/// What `nsinit stats` prints, as far as the checks read it.
#[derive(Deserialize)]
struct Stats {
    memory_limit: Option<u64>,
    processes: u64,
}

/// A container with a memory limit, from the host while it ran and after.
struct Live {
    memory: MemoryHierarchy,
    /// `/proc/PID/cgroup` of PID 1, read from the host.
    pid1_cgroup: String,
    /// The limit file of the group, or why it could not be read.
    limit: Result<String, String>,
    /// A joined `/probe facts`.
    joined: Run,
    /// `nsinit stats` while PID 1 ran, and once nsinit returned.
    stats: Run,
    stats_after: Run,
    /// The first nsinit, ended by killing PID 1.
    first: Run,
    /// The group's directories still there once it returned.
    left_behind: Vec<PathBuf>,
}

fn live(stage: &mut Stage, case: &str) -> Result<Live, String> {
    let memory = MemoryHierarchy::find()?;
    let mut first = stage.start(LONG_SLEEP)?;
    let pid1 = stage.probe_under(&mut first)?;
    stage.adopt(pid1);
    let pid1_cgroup = fs::read_to_string(format!("/proc/{}/cgroup", pid1.pid))
        .map_err(|e| format!("read /proc/{}/cgroup: {e}", pid1.pid))?;
    let limit_file = memory.limit_file(&group_path(case));
    let limit =
        fs::read_to_string(&limit_file).map_err(|e| format!("{}: {e}", limit_file.display()));
    let joined = stage.run(&["/probe", "facts"]);
    let stats = nsinit_stats(stage);
    pid1.kill();
    let first = stage.finish(first);
    Ok(Live {
        pid1_cgroup,
        limit,
        joined,
        stats,
        stats_after: nsinit_stats(stage),
        first,
        left_behind: existing_groups(&group_path(case))?,
        memory,
    })
}

/// The seed's own limit, 524800 bytes, is enough to start a container: on cgroup v2 its PID 1
/// is born in the group, so everything nsinit does in the child counts against it.
fn seed_limit() -> Case {
    limited("seed-limit", SEED_LIMIT, |stage| {
        Ok(stage.run(&["/bin/hostname"]))
    })
    .checks([Check::on_findings(
        "cgroup/seed-limit-runs-hostname",
        |run: &Run| {
            expect_exit(run, 0)?;
            expect_eq("koye\n", run.stdout.as_str())
        },
    )])
}

/// Far beyond its limit, the container is killed, and nsinit says so in one line.
fn oom() -> Case {
    let bytes = OOM_LIMIT.to_string();
    limited("oom", OOM_LIMIT, |stage| {
        Ok(stage.run(&["/probe", "alloc", OOM_ALLOC_MIB]))
    })
    .checks([
        Check::on_findings("cgroup/oom-137", |run: &Run| {
            expect_exit(run, 128 + libc::SIGKILL)
        }),
        Check::on_findings("cgroup/oom-message", move |run: &Run| {
            let lines: Vec<&str> = run
                .stderr
                .lines()
                .filter(|line| line.contains("memory limit"))
                .collect();
            match lines.as_slice() {
                [line] if line.contains(&bytes) => Ok(()),
                _ => Err(mismatch(
                    format!("one stderr line mentioning \"memory limit\" and {bytes}"),
                    run.summary(),
                )),
            }
        }),
    ])
}

/// A limit of one page is refused, naming the field and the value.
fn bad_memory() -> Case {
    limited("bad-memory", TOO_LITTLE, |stage| {
        Ok(stage.run(&["/probe", "facts"]))
    })
    .checks([Check::on_findings("cgroup/bad-memory", |run: &Run| {
        expect_exit(run, 125)?;
        let value = TOO_LITTLE.to_string();
        match ["cgroups.memory", value.as_str()]
            .iter()
            .find(|wanted| !run.stderr.contains(*wanted))
        {
            None => Ok(()),
            Some(missing) => Err(mismatch(
                format!("stderr naming {missing:?}"),
                run.summary(),
            )),
        }
    })])
}

/// Without a pid namespace the kernel kills nothing when PID 1 exits: nsinit must, through
/// the group it gives the container. PID 1 starts a background process, a command joins, and
/// PID 1 exits when the driver says so.
fn no_pid_namespace_kill() -> Case {
    Case::scenario("kill-no-newpid", "no-pid", background_and_join).checks([
        Check::on_findings("kill/no-newpid-background-dies", |k: &Orphans| {
            k.background_died.as_ref().map(|_| ()).map_err(|why| {
                mismatch(
                    format!(
                        "PID 1's background process gone within {}s of PID 1's exit",
                        PROMPTLY.as_secs()
                    ),
                    format!("{why}; {}", k.first.summary()),
                )
            })
        }),
        Check::on_findings("kill/no-newpid-joined-dies", |k: &Orphans| {
            expect_exit(&k.joined, 128 + libc::SIGKILL)
        }),
    ])
}

/// PID 1's script: a background process whose host pid goes to `/bg`, then wait until the
/// driver opens `/release` for writing, then exit 0.
const BACKGROUND_THEN_WAIT: &str = "/probe sleep 300 & echo $! > /bg; : < /release";

struct Orphans {
    /// How long the background process took to die after PID 1 exited, or that it lived on.
    background_died: Result<Duration, String>,
    /// The joined `nsinit exec /probe sleep 300`, ended by PID 1's exit.
    joined: Run,
    /// The first nsinit.
    first: Run,
}

fn background_and_join(stage: &mut Stage) -> Result<Orphans, String> {
    let release = stage.dir().join("release");
    make_fifo(&release).map_err(|e| format!("mkfifo {}: {e}", release.display()))?;
    let first = stage.start(&["/bin/sh", "-c", BACKGROUND_THEN_WAIT])?;
    let bg_file = stage.dir().join("bg");
    let background = stage.until("PID 1's background probe in /bg", || {
        let pid = fs::read_to_string(&bg_file).ok()?.trim().parse().ok()?;
        harness::is_probe(pid).then(|| Process::of(pid)).flatten()
    })?;
    stage.adopt(background);
    let mut joined = stage.start(&["/probe", "sleep", "300"])?;
    let joined_probe = stage.probe_under(&mut joined)?;
    stage.adopt(joined_probe);
    // Opening the FIFO for writing lets PID 1's `: < /release` go on; it needs PID 1 to have
    // it open for reading, so retry until then.
    let writer = stage.until("PID 1 to wait on /release", || open_fifo_writer(&release))?;
    drop(writer);
    let released = Instant::now();
    let first = stage.finish_by(first, released + PROMPTLY);
    let joined = stage.finish_by(joined, released + PROMPTLY);
    let background_died = stage
        .until_by(released + PROMPTLY, "the background process to die", || {
            (!background.is_alive()).then(|| released.elapsed())
        })
        .map_err(|why| format!("host pid {} still ran: {why}", background.pid));
    Ok(Orphans {
        background_died,
        joined,
        first,
    })
}

fn make_fifo(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The FIFO opened for writing without blocking, once a reader has it open.
fn open_fifo_writer(path: &Path) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::File::options()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()
}

/// `nsinit stats` in the case directory, killed if it takes longer than [`PROMPTLY`].
fn nsinit_stats(stage: &Stage) -> Run {
    let spawned = Command::new(stage.nsinit())
        .arg("stats")
        .current_dir(stage.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Run::not_run(stage.dir(), format!("cannot start nsinit stats: {e}")),
    };
    let stdout = harness::read_in_background(child.stdout.take());
    let stderr = harness::read_in_background(child.stderr.take());
    let deadline = Instant::now() + PROMPTLY;
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.into(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Outcome::TimedOut(PROMPTLY);
            }
            Err(e) => break Outcome::NotRun(format!("wait for nsinit stats: {e}")),
        }
    };
    Run::finished(outcome, stage.dir(), stdout, stderr)
}

/// The hierarchy holding the memory controller, chosen as nsinit chooses it: a cgroup v1
/// `memory` mount when there is one (a hybrid host also has a cgroup2 mount, without memory),
/// else the cgroup2 mount.
struct MemoryHierarchy {
    mount: PathBuf,
    v2: bool,
}

impl MemoryHierarchy {
    fn find() -> Result<MemoryHierarchy, String> {
        let mounts = cgroup_mounts()?;
        let v1 = mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.has_super_option("memory"));
        let v2 = mounts.iter().find(|m| m.fstype == "cgroup2");
        match (v1, v2) {
            (Some(m), _) => Ok(MemoryHierarchy {
                mount: m.mount_point.clone().into(),
                v2: false,
            }),
            (None, Some(m)) => Ok(MemoryHierarchy {
                mount: m.mount_point.clone().into(),
                v2: true,
            }),
            (None, None) => Err("no cgroup memory controller in /proc/self/mountinfo".into()),
        }
    }

    /// The limit file of `group` (`/parent/name`).
    fn limit_file(&self, group: &str) -> PathBuf {
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        self.mount.join(group.trim_start_matches('/')).join(file)
    }

    /// The group a `/proc/PID/cgroup` text names in this hierarchy: the `memory` line on v1,
    /// the `0::` line on v2.
    fn group_in(&self, proc_cgroup: &str) -> Option<String> {
        proc_cgroup.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let ours = match self.v2 {
                true => controllers.is_empty(),
                false => controllers.split(',').any(|c| c == "memory"),
            };
            ours.then(|| path.to_string())
        })
    }

    fn describe(&self) -> String {
        let version = if self.v2 { "v2" } else { "v1 memory" };
        format!("cgroup {version} at {}", self.mount.display())
    }
}

/// Every cgroup (v1) and cgroup2 mount of the driver.
fn cgroup_mounts() -> Result<Vec<Mount>, String> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    Ok(Mount::parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .collect())
}

/// The directories of `group` (`/parent/name`) that exist in any hierarchy.
fn existing_groups(group: &str) -> Result<Vec<PathBuf>, String> {
    Ok(cgroup_mounts()?
        .into_iter()
        .map(|m| Path::new(&m.mount_point).join(group.trim_start_matches('/')))
        .filter(|dir| dir.exists())
        .collect())
}

/// Remove [`PARENT`] from every hierarchy, retrying briefly while the kernel still counts a
/// group that just went (`EBUSY`).
fn remove_parent() -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    for mount in cgroup_mounts()? {
        let dir = Path::new(&mount.mount_point).join(PARENT);
        loop {
            match fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(format!("remove the test cgroup {}: {e}", dir.display())),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_line_names_the_group() {
        let text = "9:name=systemd:/\n4:memory:/nsinit-conformance/c-live\n0::/\n";
        let v1 = MemoryHierarchy {
            mount: "/sys/fs/cgroup/memory".into(),
            v2: false,
        };
        assert_eq!(
            v1.group_in(text).as_deref(),
            Some("/nsinit-conformance/c-live")
        );
        let v2 = MemoryHierarchy {
            mount: "/sys/fs/cgroup".into(),
            v2: true,
        };
        assert_eq!(v2.group_in(text).as_deref(), Some("/"));
        assert_eq!(
            v2.limit_file("/p/c"),
            Path::new("/sys/fs/cgroup/p/c/memory.max")
        );
    }

    #[test]
    fn configs_keep_the_seed_and_add_the_group() {
        let ConfigFile::Derived(text) = config_with_limit("live", LIVE_LIMIT) else {
            panic!("not derived");
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["hostname"], "koye");
        assert_eq!(json["cgroups"]["parent"], PARENT);
        assert_eq!(json["cgroups"]["name"], "c-live");
        assert_eq!(json["cgroups"]["memory"], LIVE_LIMIT);
    }
}
