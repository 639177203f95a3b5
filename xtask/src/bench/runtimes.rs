//! Issue 14: nsinit-oci against runc and crun through runc's command line, on one bundle
//! (`runc spec`'s template over the Alpine fixture, the image the engines run, five namespaces,
//! a cgroup under the bench's parent). Each runtime keeps its state in a `--root` of its own under the
//! bench's work directory. Timed side by side, alternated: `run` of `/bin/true` (foreground,
//! the runtime deletes the container), `create` + `start` + wait + `delete`, and `exec` of
//! `/bin/true` into a running container. Then, untimed, the peak RSS of the runtime process of
//! each (`peak-rss.c`: `ru_maxrss`, the process and what it reaped, the container's process
//! before its `execve` included, as `/usr/bin/time -f %M` reports it).
//!
//! For `create`, the bench is what conmon or a shim is: the child subreaper the container's
//! process is reparented to when `create` exits, so it reaps the process itself.
//!
//! On a hybrid cgroup host every crun command runs under `hide-cgroup2.c`, and the same
//! alternation times that wrapper around `/bin/true` and `/bin/true` alone, so the report can
//! take the wrapper's cost off crun's medians.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::config::CGROUP_PARENT;
use super::report::{median_of, PeakRow, TimeRow};
use super::stats::summarize;
use super::timing::{alternate_runs, run_command, run_once, wait_pid, Contender, Label, Run};
use super::{oci, unavailable, Bench, MEMORY_ROUNDS, WARMUPS};

/// The operations timed, in the order of their rows.
pub const OPERATIONS: [&str; 3] = ["run", "create + start + wait + delete", "exec"];

/// The runtime commands each operation times: what crun's wrapper is paid per (the lifecycle
/// is `create`, `start` and `delete`, each under it).
pub const COMMANDS: [usize; 3] = [1, 3, 1];

/// The rows timing crun's wrapper, crun aside.
pub const WRAPPED: &str = "hide-cgroup2 /bin/true (crun's wrapper alone)";
pub const PLAIN: &str = "/bin/true";

/// One runtime driven through runc's CLI.
struct Runtime {
    name: String,
    /// The program and the arguments before runc's (crun's hide-cgroup2 wrapper and crun).
    program: PathBuf,
    prefix: Vec<OsString>,
    /// `peak-rss`, which runs a command and writes its peak RSS to a file.
    peak_rss: PathBuf,
    root: PathBuf,
    /// Where `create` writes the container's pid.
    pid_dir: PathBuf,
    /// Bundles running `/bin/true` and `sleep`.
    true_bundle: PathBuf,
    sleep_bundle: PathBuf,
    id: String,
}

impl Runtime {
    /// The runtime with `args`; with `peak`, under `peak-rss` writing its peak RSS there.
    fn command(&self, args: &[&std::ffi::OsStr], peak: Option<&Path>) -> Command {
        let mut command = match peak {
            Some(out) => {
                let mut command = Command::new(&self.peak_rss);
                command.arg(out).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.prefix)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }

    fn run(&self, stderr: &Path, peak: Option<&Path>) -> Result<Run> {
        let id = format!("{}-run", self.id);
        let args = [
            "run".as_ref(),
            "-b".as_ref(),
            self.true_bundle.as_os_str(),
            id.as_ref(),
        ];
        run_command(&mut self.command(&args, peak), stderr)
    }

    /// `create` with a pid file: the container's pid, and the create's own run.
    fn create(
        &self,
        bundle: &Path,
        id: &str,
        stderr: &Path,
        peak: Option<&Path>,
    ) -> Result<(Option<u32>, Run)> {
        let pid_file = self.pid_dir.join(format!("{id}.pid"));
        let _ = fs::remove_file(&pid_file);
        let run = run_command(
            &mut self.command(
                &[
                    "create".as_ref(),
                    "-b".as_ref(),
                    bundle.as_os_str(),
                    "--pid-file".as_ref(),
                    pid_file.as_os_str(),
                    id.as_ref(),
                ],
                peak,
            ),
            stderr,
        )?;
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        Ok((pid, run))
    }

    fn simple(&self, verb: &str, id: &str, stderr: &Path) -> Result<Run> {
        run_command(
            &mut self.command(&[verb.as_ref(), id.as_ref()], None),
            stderr,
        )
    }

    /// `create`, `start`, reap the container's process, `delete`: the time of it all and the
    /// first failure; with `peak`, `create` runs under `peak-rss`.
    fn lifecycle(&self, stderr: &Path, peak: Option<&Path>) -> Result<Run> {
        let id = format!("{}-lifecycle", self.id);
        let started = std::time::Instant::now();
        let (pid, create) = self.create(&self.true_bundle, &id, stderr, peak)?;
        if create.error.is_some() {
            let _ = self.simple("delete", &id, stderr);
            return Ok(create);
        }
        let Some(pid) = pid else {
            bail!("{} create wrote no pid file", self.name);
        };
        let start = self.simple("start", &id, stderr)?;
        let mut error = start.error;
        if error.is_some() {
            // SAFETY: kill takes plain integers; `pid` is the created container's process,
            // ours to reap (we are its subreaper), so not reused before the wait below.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        let status = wait_pid(pid)?;
        if error.is_none() && !status.success() {
            error = Some(format!("the container's /bin/true: {status}"));
        }
        let delete = self.simple("delete", &id, stderr)?;
        Ok(Run {
            ms: started.elapsed().as_secs_f64() * 1000.0,
            error: error.or(delete.error),
        })
    }
}

/// A container running `sleep`, created and started; killed, reaped and deleted on drop.
struct Running<'a> {
    runtime: &'a Runtime,
    id: String,
    pid: u32,
    scratch: PathBuf,
}

impl<'a> Running<'a> {
    fn start(runtime: &'a Runtime, scratch: &Path) -> Result<Running<'a>> {
        let id = format!("{}-exec", runtime.id);
        let stderr = scratch.join(format!("{}-running", runtime.name));
        let (pid, create) = runtime.create(&runtime.sleep_bundle, &id, &stderr, None)?;
        if let Some(error) = create.error {
            let _ = runtime.simple("delete", &id, &stderr);
            bail!("create: {error}");
        }
        let pid = pid.context("create wrote no pid file")?;
        let running = Running {
            runtime,
            id,
            pid,
            scratch: scratch.to_owned(),
        };
        if let Some(error) = runtime.simple("start", &running.id, &stderr)?.error {
            bail!("start: {error}");
        }
        Ok(running)
    }

    fn exec(&self, stderr: &Path, peak: Option<&Path>) -> Result<Run> {
        let args = ["exec".as_ref(), self.id.as_ref(), "/bin/true".as_ref()];
        run_command(&mut self.runtime.command(&args, peak), stderr)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // SAFETY: kill takes plain integers; `pid` is the container process we are the
        // subreaper of and have not reaped, so it cannot have been reused.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        let _ = wait_pid(self.pid);
        let stderr = self.scratch.join(format!("{}-delete", self.runtime.name));
        match self.runtime.simple("delete", &self.id, &stderr) {
            Ok(Run { error: None, .. }) => {}
            Ok(Run { error: Some(e), .. }) => {
                eprintln!("xtask: {} delete {}: {e}", self.runtime.name, self.id)
            }
            Err(e) => eprintln!("xtask: {} delete {}: {e:#}", self.runtime.name, self.id),
        }
    }
}

/// This process as the child subreaper while it lives.
struct Subreaper;

impl Subreaper {
    fn become_one() -> Result<Subreaper> {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_CHILD_SUBREAPER)");
        }
        Ok(Subreaper)
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
        reap_orphans();
    }
}

/// Reaps whatever exited and was reparented to us (an intermediate process a runtime left).
/// Runs only between measured commands, when no `Child` of ours is waiting to be waited for.
fn reap_orphans() {
    loop {
        // SAFETY: a null status pointer is allowed; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// One contender of the alternation.
enum Job {
    /// `OPERATIONS[op]` of the runtime at `runtime`.
    Operation { runtime: usize, op: usize },
    /// `hide-cgroup2 /bin/true` or `/bin/true`: the wrapper's cost, measured crun aside.
    Alone(Contender),
}

/// The rows: three per runtime (one per operation, runtime by runtime), and per runtime the
/// peak RSS (KiB) of the runtime process of each operation (for the second, `create`'s).
pub struct Results {
    pub times: Vec<TimeRow>,
    pub rss: Vec<PeakRow>,
    /// How crun is named in the rows (with its wrapper, if it has one).
    pub crun: &'static str,
    /// [`WRAPPED`] and [`PLAIN`] when crun runs under hide-cgroup2 (`None`: it runs bare).
    pub wrapper: Option<Vec<TimeRow>>,
}

impl Results {
    /// The medians of a runtime's rows (named as in the rows), in [`OPERATIONS`] order.
    pub fn medians(&self, runtime: &str) -> [Option<f64>; 3] {
        OPERATIONS.map(|operation| median_of(&self.times, &format!("{runtime} {operation}")))
    }

    /// The median peak RSS (KiB) of a runtime's `create`.
    pub fn create_rss(&self, runtime: &str) -> Option<f64> {
        self.rss.iter().find(|r| r.name == runtime)?.kib[1].map(|s| s.median)
    }
}

impl Bench<'_> {
    fn oci_runtime(&self, name: &str, rootfs: &Path) -> Result<Runtime, String> {
        let pid = std::process::id();
        let t = self.tools;
        let (program, prefix) = match name {
            "nsinit-oci" => (t.nsinit_oci.clone()?, Vec::new()),
            "runc" => (t.runc.clone().ok_or("runc is not installed")?, Vec::new()),
            _ => {
                let crun = t.crun.clone().ok_or("crun is not installed")?;
                match &t.hide_cgroup2 {
                    Some(hide) => (hide.clone(), vec![crun.into_os_string()]),
                    None => (crun, Vec::new()),
                }
            }
        };
        let spec = self
            .spec
            .as_ref()
            .map_err(|e| format!("no OCI template: {e}"))?;
        let base = self.work.path.join("oci").join(name);
        let bundle = |tag: &str, args: &[&str]| -> Result<PathBuf, String> {
            let dir = base.join(tag);
            let cgroup = format!("/{CGROUP_PARENT}/oci-{name}-{tag}-{pid}");
            let config =
                oci::bundle_config(spec, rootfs, args, &cgroup).map_err(|e| e.to_string())?;
            fs::create_dir_all(&dir)
                .and_then(|()| fs::write(dir.join("config.json"), config))
                .map_err(|e| e.to_string())?;
            Ok(dir)
        };
        let root = base.join("state");
        fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let true_bundle = bundle("true", &["/bin/true"])?;
        let sleep_bundle = bundle("sleep", &["/bin/sleep", "3600"])?;
        Ok(Runtime {
            name: name.to_string(),
            program,
            prefix,
            peak_rss: t.peak_rss.clone(),
            root,
            pid_dir: base,
            true_bundle,
            sleep_bundle,
            id: format!("nsinit-bench-{pid}"),
        })
    }

    pub(super) fn runtimes(&self, rounds: usize) -> Result<Results> {
        // Alpine, as under the engines: its `/bin/true` is musl's busybox, 0.2 ms a run, where
        // the busybox rootfs' glibc-static one spends about 1 ms probing the CPU (ARCHITECTURE.md).
        let rootfs = self.work.path.join("oci-rootfs");
        fixtures::extract_rootfs_tar(&crate::rootfs::alpine_tarball()?, &rootfs)
            .with_context(|| format!("unpack the Alpine fixture in {}", rootfs.display()))?;
        let scratch = self.prepared_scratch()?;
        let crun_name = match self.tools.hide_cgroup2 {
            Some(_) => "crun (under hide-cgroup2)",
            None => "crun",
        };
        let names = [
            ("nsinit-oci", "nsinit-oci"),
            ("runc", "runc"),
            ("crun", crun_name),
        ];
        let _subreaper = Subreaper::become_one()?;
        let mut runtimes = Vec::new();
        let mut missing = Vec::new();
        for (name, shown) in names {
            match self.oci_runtime(name, &rootfs) {
                Ok(runtime) => runtimes.push((shown, runtime)),
                Err(reason) => missing.push((shown, reason)),
            }
        }
        // The running containers `exec` goes into; a runtime that cannot start one has no
        // exec row, with the reason.
        let mut running = Vec::new();
        let mut not_running = Vec::new();
        for (shown, runtime) in &runtimes {
            match Running::start(runtime, &scratch) {
                Ok(live) => running.push(Some(live)),
                Err(error) => {
                    println!("    {shown}: no running container to exec into: {error:#}");
                    not_running.push((*shown, format!("{error:#}")));
                    running.push(None);
                }
            }
        }
        let mut labels = Vec::new();
        let mut jobs = Vec::new();
        for (k, (shown, _)) in runtimes.iter().enumerate() {
            for (op, operation) in OPERATIONS.iter().enumerate() {
                if op == 2 && running[k].is_none() {
                    continue;
                }
                labels.push(Label {
                    name: format!("{shown} {operation}"),
                    when_failing: None,
                });
                jobs.push(Job::Operation { runtime: k, op });
            }
        }
        // Every crun command above pays for its wrapper; its cost is timed in the same rounds.
        let crun_wrapped = runtimes.iter().any(|(_, runtime)| runtime.name == "crun")
            && self.tools.hide_cgroup2.is_some();
        if let (true, Some(hide)) = (crun_wrapped, &self.tools.hide_cgroup2) {
            for contender in [
                Contender::new(WRAPPED, hide).args(["/bin/true"]),
                Contender::new(PLAIN, "/bin/true"),
            ] {
                labels.push(Label {
                    name: contender.name.clone(),
                    when_failing: None,
                });
                jobs.push(Job::Alone(contender));
            }
        }
        let one = |i: usize, stderr: &Path, peak: Option<&Path>| -> Result<Run> {
            let (k, op) = match &jobs[i] {
                Job::Operation { runtime, op } => (*runtime, *op),
                Job::Alone(contender) => {
                    let (ms, error) = run_once(contender, stderr)?;
                    return Ok(Run { ms, error });
                }
            };
            let runtime = &runtimes[k].1;
            let run = match (op, &running[k]) {
                (0, _) => runtime.run(stderr, peak)?,
                (1, _) => runtime.lifecycle(stderr, peak)?,
                (_, Some(live)) => live.exec(stderr, peak)?,
                (_, None) => bail!("no running container"),
            };
            reap_orphans();
            Ok(run)
        };
        println!(
            "==> oci: {} contenders, {WARMUPS} warm-ups + {rounds} rounds, alternated",
            labels.len()
        );
        let rows = alternate_runs(&labels, WARMUPS, rounds, &scratch, |i, stderr| {
            let run = one(i, stderr, None)?;
            Ok((run.ms, run.error))
        })?;
        let (wrapper, mut times): (Vec<TimeRow>, Vec<TimeRow>) = rows
            .into_iter()
            .partition(|row| row.name == WRAPPED || row.name == PLAIN);
        println!("==> oci: peak RSS, {MEMORY_ROUNDS} untimed runs each under peak-rss, alternated");
        let mut rss: Vec<Vec<f64>> = vec![Vec::new(); jobs.len()];
        for _ in 0..MEMORY_ROUNDS {
            for (i, samples) in rss.iter_mut().enumerate() {
                if let Job::Alone(_) = jobs[i] {
                    continue;
                }
                let out = scratch.join(format!("peak-rss-{i}"));
                let _ = fs::remove_file(&out);
                let run = one(i, &scratch.join(format!("peak-stderr-{i}")), Some(&out))?;
                let kib = fs::read_to_string(&out)
                    .ok()
                    .and_then(|text| text.trim().parse::<f64>().ok());
                match (run.error, kib) {
                    (None, Some(kib)) => samples.push(kib),
                    (error, _) => println!(
                        "    {}: no peak RSS sample ({})",
                        labels[i].name,
                        error.unwrap_or_else(|| "peak-rss wrote nothing".into())
                    ),
                }
            }
        }
        drop(running);
        let rss_rows = runtimes
            .iter()
            .enumerate()
            .map(|(k, (shown, _))| PeakRow {
                name: shown.to_string(),
                kib: std::array::from_fn(|op| {
                    let i = jobs.iter().position(|job| {
                        matches!(job, Job::Operation { runtime, op: o } if (*runtime, *o) == (k, op))
                    })?;
                    summarize(&rss[i])
                }),
            })
            .collect();
        for (shown, reason) in missing {
            for operation in OPERATIONS {
                times.push(unavailable(&format!("{shown} {operation}"), reason.clone()));
            }
        }
        for (shown, reason) in not_running {
            times.push(unavailable(&format!("{shown} exec"), reason));
        }
        Ok(Results {
            times,
            rss: rss_rows,
            crun: crun_name,
            // Empty when crun could not run: its rows say why.
            wrapper: self.tools.hide_cgroup2.is_some().then_some(wrapper),
        })
    }
}
