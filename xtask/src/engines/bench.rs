//! `cargo xtask engines --bench` (issue 15, item 5): nsinit-oci, crun and runc timed under the
//! same engine setup, in one run, alternated: `podman run --rm IMAGE /bin/true`, `podman exec`
//! of `/bin/true` into a running container, `ctr run --rm` (`--runc-binary`), and CRI
//! `ExecSync` of `/bin/true` into a running CRI container (one pod per runtime handler).
//!
//! Each runtime is registered as `runtime-timer` (`xtask/bench/runtime-timer.c`, built here
//! with the runtime's path compiled in): it forks the real runtime, waits for that process and
//! logs its start, end and CPU time. A command's runtime share is the sum over the runtime
//! calls that began while the command ran (conmon and the shim call it several times:
//! create, start, state, exec, delete); what `create` leaves running is not counted. Calls that
//! begin after the command returned (an engine's asynchronous cleanup) are counted apart.
//! The wrapper is only ever registered in this mode, never under the scenarios.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::containerd::Containerd;
use super::cri::{Cri, Pod};
use super::exec::{one_line, Scratch, PATIENCE};
use super::image::NAME as IMAGE;
use super::podman::Podman;
use super::Runtime;
use crate::cargo::workspace_root;
use crate::procfs::CgroupMount;

/// The commands timed, in the order of their rows.
pub const COMMANDS: [&str; 4] = [
    "podman run --rm IMAGE /bin/true",
    "podman exec CTR /bin/true",
    "ctr run --rm IMAGE ID /bin/true",
    "CRI ExecSync /bin/true",
];
/// Untimed rounds first (caches, the engines' first-call work).
pub const WARMUPS: usize = 2;
pub const DEFAULT_ROUNDS: usize = 30;
/// The runtimes compared, in the order they run within a round.
const NAMES: [&str; 3] = ["nsinit-oci", "crun", "runc"];
/// Where crun 1.8 refuses a hybrid host's cgroup2 mount (see `xtask/bench/hide-cgroup2.c`).
const HYBRID_CGROUP2: &str = "/sys/fs/cgroup/unified";

/// A runtime as the bench registers it: under its own name, the wrapper as its binary.
#[derive(Debug, Clone)]
pub struct Timed {
    /// Name and wrapper: what podman, ctr and the CRI handler are given.
    pub runtime: Runtime,
    /// The real binary the wrapper runs.
    pub real: PathBuf,
    /// How the rows name it (`crun (under hide-cgroup2)`).
    pub shown: String,
    /// The wrapper's log of calls.
    pub log: PathBuf,
}

/// A runtime that cannot be compared: its name and why.
pub type Missing = (String, String);

/// The runtimes to compare, wrapped, and those that cannot be.
pub fn prepare(
    nsinit_oci: &Path,
    dir: &Path,
    mounts: &[CgroupMount],
) -> Result<(Vec<Timed>, Vec<Missing>)> {
    let bin = dir.join("bin");
    let logs = dir.join("logs");
    fs::create_dir_all(&bin)?;
    fs::create_dir_all(&logs)?;
    let hybrid = is_hybrid(mounts);
    let mut timed = Vec::new();
    let mut missing = Vec::new();
    for name in NAMES {
        let real = match name {
            "nsinit-oci" => Some(nsinit_oci.to_owned()),
            other => super::find_in_path(other),
        };
        let Some(real) = real else {
            missing.push((name.to_string(), format!("{name} is not installed")));
            continue;
        };
        let hide = name == "crun" && hybrid;
        let log = logs.join(format!("{name}.log"));
        let wrapper = bin.join(name);
        compile_wrapper(&real, &log, hide, &wrapper)?;
        timed.push(Timed {
            runtime: Runtime {
                name: name.to_string(),
                path: wrapper,
            },
            real,
            shown: if hide {
                format!("{name} (under hide-cgroup2)")
            } else {
                name.to_string()
            },
            log,
        });
    }
    Ok((timed, missing))
}

/// v1 controllers and a cgroup2 mount at `/sys/fs/cgroup/unified`.
fn is_hybrid(mounts: &[CgroupMount]) -> bool {
    mounts.iter().any(|m| !m.v2)
        && mounts
            .iter()
            .any(|m| m.v2 && m.path == Path::new(HYBRID_CGROUP2))
}

/// `gcc -static xtask/bench/runtime-timer.c` with the runtime and the log compiled in.
fn compile_wrapper(real: &Path, log: &Path, hide: bool, out: &Path) -> Result<()> {
    let source = workspace_root().join("xtask/bench/runtime-timer.c");
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-static", "-Wall", "-o"])
        .arg(out)
        .arg(format!(
            "-DRUNTIME={}",
            c_string(&real.display().to_string())
        ))
        .arg(format!("-DLOG={}", c_string(&log.display().to_string())));
    if hide {
        gcc.arg("-DHIDE_CGROUP2");
    }
    let output = gcc.arg(&source).output().context("run gcc")?;
    if !output.status.success() {
        bail!(
            "gcc runtime-timer.c for {}: {}",
            real.display(),
            one_line(&String::from_utf8_lossy(&output.stderr))
        );
    }
    Ok(())
}

/// A C string literal.
fn c_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One runtime call the wrapper logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub start_ns: u64,
    pub end_ns: u64,
    pub cpu_us: u64,
    pub verb: String,
}

/// The wrapper's log: `START_NS END_NS USER_US SYS_US VERB` a line.
pub fn parse_log(text: &str) -> Vec<Call> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let start_ns = f.next()?.parse().ok()?;
            let end_ns = f.next()?.parse().ok()?;
            let user: u64 = f.next()?.parse().ok()?;
            let sys: u64 = f.next()?.parse().ok()?;
            Some(Call {
                start_ns,
                end_ns,
                cpu_us: user + sys,
                verb: f.next().unwrap_or("-").to_string(),
            })
        })
        .collect()
}

/// `CLOCK_MONOTONIC` in ns: the wrapper's clock.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a live local the call writes into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One timed command: its window on the monotonic clock and why it failed, if it did.
#[derive(Debug, Clone)]
struct Sample {
    runtime: usize,
    command: usize,
    warmup: bool,
    start_ns: u64,
    end_ns: u64,
    error: Option<String>,
}

/// Runs `command` (stdin and stdout on /dev/null, stderr in `stderr`), waiting on a pidfd so
/// that the end is taken when the process exits, not at the next poll: its window.
fn run_timed(
    command: &mut Command,
    stderr: &Path,
    limit: Duration,
) -> Result<(u64, u64, Option<String>)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(stderr)?);
    let start = monotonic_ns();
    let mut child = command
        .spawn()
        .with_context(|| format!("start {}", super::exec::describe(command)))?;
    // SAFETY: pidfd_open takes a pid and flags; the pid is our unreaped child's.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        let _ = child.kill();
        let _ = child.wait();
        return Err(error).context("pidfd_open");
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    let pidfd: std::os::fd::OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) };
    let mut poll = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&pidfd),
        events: libc::POLLIN,
        revents: 0,
    };
    let ready = loop {
        // SAFETY: one live pollfd, count 1.
        let ready = unsafe { libc::poll(&mut poll, 1, limit.as_millis() as libc::c_int) };
        if ready >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break ready;
        }
    };
    if ready <= 0 {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "{} did not finish within {} s (killed); stderr: {}",
            super::exec::describe(command),
            limit.as_secs(),
            one_line(&fs::read_to_string(stderr).unwrap_or_default())
        );
    }
    let status = child.wait()?;
    let end = monotonic_ns();
    let error = (!status.success()).then(|| {
        format!(
            "exit {}: {}",
            super::exec::code(status),
            one_line(&fs::read_to_string(stderr).unwrap_or_default())
        )
    });
    Ok((start, end, error))
}

/// What the bench needs of the engines the harness set up.
pub struct Engines<'a> {
    pub podman: &'a Podman,
    pub containerd: &'a Containerd,
    pub scratch: &'a Scratch,
    pub cgroup_root: &'a str,
    pub work: PathBuf,
}

/// What is running for one runtime: the podman container and the CRI pod and container.
struct Targets {
    podman: Result<String, String>,
    pod: Option<String>,
    cri: Result<String, String>,
}

impl Default for Targets {
    fn default() -> Targets {
        Targets {
            podman: Err("not started".into()),
            pod: None,
            cri: Err("not started".into()),
        }
    }
}

/// The bench's results: its rows, markdown and JSON.
pub struct Report {
    pub markdown: String,
    pub json: serde_json::Value,
}

impl Engines<'_> {
    fn podman_name(runtime: &Timed) -> String {
        format!("nsinit-bench-{}", runtime.runtime.name)
    }

    fn pod(&self, runtime: &Timed) -> Pod {
        Pod {
            name: format!("nsinit-bench-{}", runtime.runtime.name),
            uid: format!(
                "nsinit-bench-{}-{}",
                runtime.runtime.name,
                std::process::id()
            ),
            namespace: "nsinit-engines".into(),
            cgroup_parent: format!("{}/cri", self.cgroup_root),
        }
    }

    /// The running containers `podman exec` and `ExecSync` go into.
    fn start_targets(&self, cri: &mut Cri, runtime: &Timed) -> Targets {
        let name = Self::podman_name(runtime);
        let options = self.podman.run_options();
        let podman = self
            .scratch
            .run(
                self.podman
                    .command(&runtime.runtime.name)
                    .args(["run", "-d", "--name", &name])
                    .args(&options)
                    .args([IMAGE, "/bin/sleep", "3600"]),
                PATIENCE,
            )
            .and_then(|out| out.ok("podman run -d"))
            .map(|_| name)
            .map_err(|e| format!("{e:#}"));
        let mut targets = Targets {
            podman,
            ..Targets::default()
        };
        let pod = self.pod(runtime);
        let cri_target = (|| -> Result<String> {
            let pod_id = cri.run_pod_sandbox(&pod, &runtime.runtime.name)?;
            targets.pod = Some(pod_id.clone());
            let id =
                cri.create_container(&pod_id, &pod, "sleeper", IMAGE, &["/bin/sleep", "3600"])?;
            cri.start_container(&id).inspect_err(|_| {
                let _ = cri.remove_container(&id);
            })?;
            Ok(id)
        })();
        targets.cri = cri_target.map_err(|e| format!("CRI: {e:#}"));
        targets
    }

    fn stop_targets(&self, cri: &mut Cri, runtime: &Timed, targets: &Targets) {
        if let Ok(name) = &targets.podman {
            let _ = self.scratch.run(
                self.podman
                    .command(&runtime.runtime.name)
                    .args(["rm", "-f", "-t", "0", name]),
                PATIENCE,
            );
        }
        if let Ok(id) = &targets.cri {
            let _ = cri.stop_container(id, Duration::from_secs(0));
            let _ = cri.remove_container(id);
        }
        if let Some(pod) = &targets.pod {
            let _ = cri.stop_pod_sandbox(pod);
            let _ = cri.remove_pod_sandbox(pod);
        }
    }

    /// Command `c` once with `runtime`: its window and failure.
    fn once(
        &self,
        cri: &mut Cri,
        runtime: &Timed,
        targets: &Targets,
        c: usize,
        n: usize,
    ) -> Result<(u64, u64, Option<String>)> {
        let name = &runtime.runtime.name;
        let stderr = self.work.join(format!("{name}-{c}.err"));
        let target = |t: &Result<String, String>| -> Result<String> {
            t.clone()
                .map_err(|e| anyhow::anyhow!("no running container: {e}"))
        };
        match c {
            0 => {
                let mut command = self.podman.command(name);
                command
                    .args(["run", "--rm"])
                    .args(self.podman.run_options())
                    .args([IMAGE, "/bin/true"]);
                run_timed(&mut command, &stderr, PATIENCE)
            }
            1 => {
                let ctr_name = target(&targets.podman)?;
                let mut command = self.podman.command(name);
                command.args(["exec", &ctr_name, "/bin/true"]);
                run_timed(&mut command, &stderr, PATIENCE)
            }
            2 => {
                let id = format!("nsinit-bench-{name}-{n}");
                let mut command = self.containerd.ctr_ns();
                command
                    .args(["run", "--rm", "--runc-binary"])
                    .arg(&runtime.runtime.path)
                    .arg("--runc-root")
                    .arg(self.containerd.ctr_runtime_root(&runtime.runtime))
                    .arg("--fifo-dir")
                    .arg(self.containerd.fifo_dir())
                    .arg("--cgroup")
                    .arg(format!("{}/ctr/{id}", self.cgroup_root))
                    .args([IMAGE, &id, "/bin/true"]);
                run_timed(&mut command, &stderr, PATIENCE)
            }
            _ => {
                let id = target(&targets.cri)?;
                let start = monotonic_ns();
                let result = cri.exec_sync(&id, &["/bin/true"], Duration::from_secs(30));
                let end = monotonic_ns();
                let error = match result {
                    Ok(r) if r.exit_code == 0 => None,
                    Ok(r) => Some(format!("exit {}: {}", r.exit_code, one_line(&r.stderr))),
                    Err(e) => Some(format!("{e:#}")),
                };
                Ok((start, end, error))
            }
        }
    }
}

/// Runs the bench: every command with every runtime, runtimes alternated within a round (the
/// order rotating round by round), `WARMUPS` untimed rounds first.
pub fn run(
    engines: &Engines,
    timed: &[Timed],
    missing: &[(String, String)],
    rounds: usize,
) -> Result<Report> {
    fs::create_dir_all(&engines.work)?;
    let mut cri = Cri::connect(&engines.containerd.socket(), PATIENCE)?;
    println!("==> bench: a running podman container and CRI pod per runtime");
    let targets: Vec<Targets> = timed
        .iter()
        .map(|runtime| {
            let targets = engines.start_targets(&mut cri, runtime);
            for (what, t) in [("podman", &targets.podman), ("CRI", &targets.cri)] {
                if let Err(e) = t {
                    println!("    {}: no running {what} container: {e}", runtime.shown);
                }
            }
            targets
        })
        .collect();
    let load_before = load_average();
    println!(
        "==> bench: {} commands × {} runtimes, {WARMUPS} warm-ups + {rounds} rounds, alternated",
        COMMANDS.len(),
        timed.len()
    );
    let mut samples = Vec::new();
    // A command that failed every warm-up with a runtime is not run again with it.
    let mut given_up: Vec<Vec<Option<String>>> = vec![vec![None; COMMANDS.len()]; timed.len()];
    let mut n = 0;
    for round in 0..WARMUPS + rounds {
        let warmup = round < WARMUPS;
        for c in 0..COMMANDS.len() {
            for j in 0..timed.len() {
                let k = (j + round) % timed.len();
                if given_up[k][c].is_some() {
                    continue;
                }
                n += 1;
                let (start_ns, end_ns, error) =
                    match engines.once(&mut cri, &timed[k], &targets[k], c, n) {
                        Ok(window) => window,
                        Err(e) => (0, 0, Some(format!("{e:#}"))),
                    };
                if let Some(e) = &error {
                    println!("    {} {}: {e}", timed[k].shown, COMMANDS[c]);
                }
                samples.push(Sample {
                    runtime: k,
                    command: c,
                    warmup,
                    start_ns,
                    end_ns,
                    error,
                });
            }
        }
        if round + 1 == WARMUPS {
            for (k, row) in given_up.iter_mut().enumerate() {
                for (c, slot) in row.iter_mut().enumerate() {
                    let mine = || samples.iter().filter(|s| s.runtime == k && s.command == c);
                    if mine().all(|s| s.error.is_some()) {
                        *slot = mine().next_back().and_then(|s| s.error.clone());
                    }
                }
            }
        }
        if !warmup {
            print!(".");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    }
    println!();
    let rounds_end = monotonic_ns();
    let load_after = load_average();
    for (runtime, t) in timed.iter().zip(&targets) {
        engines.stop_targets(&mut cri, runtime, t);
    }

    let calls: Vec<Vec<Call>> = timed
        .iter()
        .map(|t| parse_log(&fs::read_to_string(&t.log).unwrap_or_default()))
        .collect();
    let attributed = attribute(&samples, &calls, rounds_end);
    let rows = rows(timed, &samples, &attributed, &given_up);
    let markdown = markdown(&rows, timed, missing, rounds, &load_before, &load_after);
    let json = json!({
        "rounds": rounds,
        "warmups": WARMUPS,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "runtimes": timed.iter().map(|t| json!({"name": t.runtime.name, "shown": t.shown, "binary": t.real, "wrapper": t.runtime.path})).collect::<Vec<_>>(),
        "missing": missing.iter().map(|(name, reason)| json!({"runtime": name, "reason": reason})).collect::<Vec<_>>(),
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    Ok(Report { markdown, json })
}

/// The runtime calls of one sample: those that began while it ran, and those that began
/// after it returned and before the runtime's next command (an engine's cleanup).
#[derive(Debug, Default, Clone, PartialEq)]
struct Attributed {
    inside: Vec<Call>,
    late: Vec<Call>,
}

fn attribute(samples: &[Sample], calls: &[Vec<Call>], rounds_end: u64) -> Vec<Attributed> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.start_ns == 0 {
                return Attributed::default();
            }
            let next = samples[i + 1..]
                .iter()
                .find(|n| n.runtime == s.runtime && n.start_ns != 0)
                .map_or(rounds_end, |n| n.start_ns);
            let mine = calls.get(s.runtime).map_or(&[][..], Vec::as_slice);
            Attributed {
                inside: mine
                    .iter()
                    .filter(|c| c.start_ns >= s.start_ns && c.start_ns <= s.end_ns)
                    .cloned()
                    .collect(),
                late: mine
                    .iter()
                    .filter(|c| c.start_ns > s.end_ns && c.start_ns < next)
                    .cloned()
                    .collect(),
            }
        })
        .collect()
}

/// One command with one runtime: medians in ms.
#[derive(Debug, Clone)]
struct Row {
    command: usize,
    runtime: String,
    whole: Vec<f64>,
    own: Vec<f64>,
    cpu: Vec<f64>,
    calls: Vec<f64>,
    late: Vec<f64>,
    /// The runtime calls of the first timed sample, in order.
    verbs: String,
    failures: usize,
    /// Why there are no samples.
    reason: Option<String>,
}

impl Row {
    fn median(samples: &[f64]) -> Option<f64> {
        median(samples)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "command": COMMANDS[self.command],
            "runtime": self.runtime,
            "median_ms": Self::median(&self.whole),
            "runtime_own_median_ms": Self::median(&self.own),
            "runtime_cpu_median_ms": Self::median(&self.cpu),
            "runtime_calls_median": Self::median(&self.calls),
            "late_calls_median_ms": Self::median(&self.late),
            "calls": self.verbs,
            "failures": self.failures,
            "reason": self.reason,
            "samples_ms": self.whole,
            "runtime_own_ms": self.own,
        })
    }
}

fn rows(
    timed: &[Timed],
    samples: &[Sample],
    attributed: &[Attributed],
    given_up: &[Vec<Option<String>>],
) -> Vec<Row> {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut rows = Vec::new();
    for c in 0..COMMANDS.len() {
        for (k, (runtime, gave_up)) in timed.iter().zip(given_up).enumerate() {
            let mut row = Row {
                command: c,
                runtime: runtime.shown.clone(),
                whole: Vec::new(),
                own: Vec::new(),
                cpu: Vec::new(),
                calls: Vec::new(),
                late: Vec::new(),
                verbs: String::new(),
                failures: 0,
                reason: gave_up[c].clone(),
            };
            let mut last_error = None;
            for (s, a) in samples.iter().zip(attributed) {
                if s.runtime != k || s.command != c || s.warmup {
                    continue;
                }
                if let Some(e) = &s.error {
                    row.failures += 1;
                    last_error = Some(e.clone());
                    continue;
                }
                row.whole.push(ms(s.end_ns - s.start_ns));
                row.own.push(
                    a.inside
                        .iter()
                        .map(|c| ms(c.end_ns - c.start_ns))
                        .fold(0.0, |a, b| a + b),
                );
                row.cpu.push(
                    a.inside
                        .iter()
                        .map(|c| c.cpu_us as f64 / 1e3)
                        .fold(0.0, |a, b| a + b),
                );
                row.calls.push(a.inside.len() as f64);
                row.late.push(
                    a.late
                        .iter()
                        .map(|c| ms(c.end_ns - c.start_ns))
                        .fold(0.0, |a, b| a + b),
                );
                if row.verbs.is_empty() {
                    row.verbs = a
                        .inside
                        .iter()
                        .map(|c| c.verb.as_str())
                        .chain(a.late.iter().map(|_| "(late)").take(1))
                        .chain(a.late.iter().map(|c| c.verb.as_str()))
                        .collect::<Vec<_>>()
                        .join(" ");
                }
            }
            if row.whole.is_empty() && row.reason.is_none() {
                row.reason = last_error.or(Some("no samples".into()));
            }
            rows.push(row);
        }
    }
    rows
}

/// `None` for no samples; the median of an even count is the mean of the middle two.
fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

/// Milliseconds with about three significant digits.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The tables: every command with every runtime, then the issue's targets (nsinit-oci
/// against crun, per command).
fn markdown(
    rows: &[Row],
    timed: &[Timed],
    missing: &[(String, String)],
    rounds: usize,
    load_before: &str,
    load_after: &str,
) -> String {
    let mut out = format!(
        "### The runtime under podman, ctr and the CRI\n\n\
         `cargo xtask engines --bench`: {rounds} rounds after {WARMUPS} warm-ups, runtimes \
         alternated; load average {load_before} before, {load_after} after. \"Runtime's own\" \
         is the wall time of the runtime's processes the command caused (every call summed: \
         create, start, state, exec, delete), \"runtime CPU\" their user + system time.\n\n\
         | command | runtime | median | min | max | runtime's own | share | runtime CPU | calls |\n\
         |---|---|--:|--:|--:|--:|--:|--:|---|\n"
    );
    for row in rows {
        let command = COMMANDS[row.command];
        match (median(&row.whole), &row.reason) {
            (Some(whole), _) => {
                let own = median(&row.own).unwrap_or(0.0);
                let min = row.whole.iter().copied().fold(f64::INFINITY, f64::min);
                let max = row.whole.iter().copied().fold(0.0, f64::max);
                let failed = if row.failures > 0 {
                    format!(" ({} failed)", row.failures)
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "| {command} | {}{failed} | {} | {} | {} | {} | {:.0}% | {} | {} |\n",
                    row.runtime,
                    ms(whole),
                    ms(min),
                    ms(max),
                    ms(own),
                    own / whole * 100.0,
                    ms(median(&row.cpu).unwrap_or(0.0)),
                    row.verbs,
                ));
            }
            (None, reason) => out.push_str(&format!(
                "| {command} | {} | — | | | | | | did not run: {} |\n",
                row.runtime,
                reason.as_deref().unwrap_or("no samples").replace('|', "/")
            )),
        }
    }
    for (name, reason) in missing {
        out.push_str(&format!("| (all) | {name} | — | | | | | | {reason} |\n"));
    }
    let find = |c: usize, name: &str| {
        let shown = timed.iter().find(|t| t.runtime.name == name)?.shown.clone();
        rows.iter().find(|r| r.command == c && r.runtime == shown)
    };
    out.push_str(
        "\nTargets (issue 15): with nsinit-oci each command faster than with crun; nsinit-oci's \
         own share at most 0.5x crun's.\n\n\
         | command | nsinit-oci | crun | ratio | faster | nsinit-oci's own | crun's own | ratio | ≤ 0.5x |\n\
         |---|--:|--:|--:|:-:|--:|--:|--:|:-:|\n",
    );
    for (c, command) in COMMANDS.iter().enumerate() {
        let ours = find(c, "nsinit-oci").and_then(|r| Some((median(&r.whole)?, median(&r.own)?)));
        let theirs = find(c, "crun").and_then(|r| Some((median(&r.whole)?, median(&r.own)?)));
        match (ours, theirs) {
            (Some((w1, o1)), Some((w2, o2))) => {
                let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
                out.push_str(&format!(
                    "| {command} | {} | {} | {:.2}x | {} | {} | {} | {:.2}x | {} |\n",
                    ms(w1),
                    ms(w2),
                    w1 / w2,
                    verdict(w1 < w2),
                    ms(o1),
                    ms(o2),
                    o1 / o2,
                    verdict(o1 <= 0.5 * o2),
                ));
            }
            _ => {
                let why = |name: &str| {
                    find(c, name)
                        .and_then(|r| r.reason.clone())
                        .or_else(|| {
                            missing
                                .iter()
                                .find(|(n, _)| n == name)
                                .map(|(_, r)| r.clone())
                        })
                        .map(|r| format!("{name}: {}", r.replace('|', "/")))
                };
                let reason = [why("nsinit-oci"), why("crun")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                out.push_str(&format!(
                    "| {command} | | | | n/a | | | | n/a ({reason}) |\n"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_read_line_by_line() {
        let calls = parse_log("10 20 3 4 create\n30 45 1 0 start\nbroken\n");
        assert_eq!(
            calls,
            [
                Call {
                    start_ns: 10,
                    end_ns: 20,
                    cpu_us: 7,
                    verb: "create".into()
                },
                Call {
                    start_ns: 30,
                    end_ns: 45,
                    cpu_us: 1,
                    verb: "start".into()
                }
            ]
        );
    }

    #[test]
    fn calls_belong_to_the_command_they_began_in_or_after() {
        let sample = |runtime, start_ns, end_ns| Sample {
            runtime,
            command: 0,
            warmup: false,
            start_ns,
            end_ns,
            error: None,
        };
        let samples = [
            sample(0, 100, 200),
            sample(1, 210, 300),
            sample(0, 310, 400),
        ];
        let call = |start_ns, end_ns| Call {
            start_ns,
            end_ns,
            cpu_us: 0,
            verb: "x".into(),
        };
        let calls = vec![
            vec![
                call(50, 60),
                call(110, 150),
                call(190, 230),
                call(250, 260),
                call(320, 330),
            ],
            vec![call(220, 240)],
        ];
        let got = attribute(&samples, &calls, 500);
        assert_eq!(got[0].inside, [call(110, 150), call(190, 230)]);
        assert_eq!(got[0].late, [call(250, 260)]);
        assert_eq!(got[1].inside, [call(220, 240)]);
        assert_eq!(got[2].inside, [call(320, 330)]);
        assert!(got[2].late.is_empty());
    }

    #[test]
    fn paths_become_c_strings() {
        assert_eq!(c_string(r#"/a/"b\c"#), r#""/a/\"b\\c""#);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
