//! `cargo xtask bench` (issue 8): nsinit side by side with the kernel floor, runc, crun and
//! nsenter, in one process on one machine. The whole bench runs inside a throwaway network
//! namespace standing in for the host (bridge `docker0` with 172.17.42.1/16), so every
//! contender pays the same and the real host's network is never touched. It prints markdown
//! tables and the targets with PASS/MISS, and writes JSON to `<target>/bench/`.
//!
//! Sections: `start` (issue 8), `hardened` (issue 13: the default protections against the
//! `security` opt-out and `floor.c --hardened`), `join`, `oci` (issue 14: nsinit-oci against
//! runc and crun through runc's CLI), `memory`, `scale`.

mod config;
mod hardened;
mod interrupt;
mod limit;
mod oci;
mod report;
mod runtimes;
mod seccomp;
mod stats;
mod timing;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::args::Args;
use crate::cargo::{build_dynamic_nsinit, build_release_nsinit, step, target_dir, workspace_root};
use crate::prereqs;
use crate::procfs::{self, CgroupMount};
use crate::standin::StandIn;
use config::{container_json, opted_out, scale_address, CGROUP_PARENT, PROTECTIONS};
use report::{median_of, CrunWrapper, Leftovers, Measured, MemoryRow, Oci, ScaleRow, TimeRow};
use stats::summarize;
use timing::{alternate, Contender};

/// Untimed runs of every contender before the measured rounds.
const WARMUPS: usize = 3;
const DEFAULT_ROUNDS: usize = 100;
/// Batches of each size in the scale section (after one untimed batch of each).
const DEFAULT_SCALE_ROUNDS: usize = 5;
const SCALE: [usize; 3] = [1, 10, 100];
/// Samples of each supervisor's memory.
const MEMORY_ROUNDS: usize = 5;
/// How long a container may take to come up, and the kernel to delete a batch's veths.
const PATIENCE: Duration = Duration::from_secs(15);
/// The cgroup2 mount of a hybrid host, which crun refuses to run next to v1 controllers.
const HYBRID_CGROUP2: &str = "/sys/fs/cgroup/unified";

/// Row names the targets are read from.
const FLOOR: &str = "kernel floor (floor.c)";
const FLOOR_FULL: &str = "kernel floor + /sys, /dev, hostname, lo, caps (floor.c --full)";
const NSINIT: &str = "nsinit";
const NSINIT_DYNAMIC: &str = "nsinit (dynamically linked)";
const WITH_CGROUPS: &str = "nsinit + cgroups";
const WITH_NETWORK: &str = "nsinit + network";
const RUNC: &str = "runc run";
const CRUN: &str = "crun run";
const NSENTER: &str = "nsenter -m -u -i -n -p";

#[derive(Debug, Clone, Copy)]
struct Sections {
    start: bool,
    hardened: bool,
    join: bool,
    oci: bool,
    memory: bool,
    scale: bool,
}

impl Sections {
    const NAMES: [&'static str; 6] = ["start", "hardened", "join", "oci", "memory", "scale"];

    fn parse(list: Option<&str>) -> Result<Sections> {
        let wanted: Vec<&str> = match list {
            Some(list) => list.split(',').map(str::trim).collect(),
            None => Self::NAMES.to_vec(),
        };
        if let Some(bad) = wanted.iter().find(|w| !Self::NAMES.contains(w)) {
            bail!(
                "--only {bad}: expected a comma-separated list of {}",
                Self::NAMES.join(", ")
            );
        }
        Ok(Sections {
            start: wanted.contains(&"start"),
            hardened: wanted.contains(&"hardened"),
            join: wanted.contains(&"join"),
            oci: wanted.contains(&"oci"),
            memory: wanted.contains(&"memory"),
            scale: wanted.contains(&"scale"),
        })
    }

    fn all(&self) -> bool {
        self.start && self.hardened && self.join && self.oci && self.memory && self.scale
    }
}

pub fn run(mut args: Args) -> Result<()> {
    let rounds: usize = args
        .parsed("--rounds", "a number of rounds")?
        .unwrap_or(DEFAULT_ROUNDS);
    let scale_rounds: usize = args
        .parsed("--scale-rounds", "a number of batches")?
        .unwrap_or(DEFAULT_SCALE_ROUNDS);
    let sections = Sections::parse(args.value("--only")?.as_deref())?;
    args.finish()?;
    if rounds == 0 || scale_rounds == 0 {
        bail!("--rounds and --scale-rounds must be at least 1");
    }
    if !vm::apt::is_root() {
        bail!("the bench starts containers, which needs root: run `cargo xtask bench` as root");
    }
    let began = Instant::now();
    interrupt::catch();

    println!("==> prerequisites");
    prereqs::ensure(&[
        prereqs::BUSYBOX,
        prereqs::IPROUTE,
        prereqs::GCC,
        prereqs::LIBC_DEV,
    ])?;
    let rivals = prereqs::ensure(&[prereqs::RUNC, prereqs::CRUN]);
    if let Err(error) = &rivals {
        println!("    runc/crun: {error:#} (their rows will say so)");
    }
    let out = target_dir().join("bench");
    fs::create_dir_all(&out)?;
    let nsinit = build_release_nsinit()?;
    // `cargo build -p nsinit` builds both of the crate's binaries.
    let nsinit_oci = nsinit.with_file_name("nsinit-oci");
    let tools = Tools {
        nsinit_oci: match nsinit_oci.is_file() {
            true => Ok(nsinit_oci),
            false => Err(format!("{} was not built", nsinit_oci.display())),
        },
        nsinit,
        nsinit_dynamic: build_dynamic_nsinit()?,
        floor: compile(&out, "floor")?,
        peak_rss: compile(&out, "peak-rss")?,
        hide_cgroup2: if is_hybrid(&procfs::cgroup_mounts()?) {
            Some(compile(&out, "hide-cgroup2")?)
        } else {
            None
        },
        runc: find_in_path("runc"),
        crun: find_in_path("crun"),
    };
    let machine = Machine::now();

    // Dropped in reverse: the cgroup parent, then the stand-in host, then the files.
    let work = WorkDir::create(out.join(format!("run-{}", std::process::id())))?;
    let template = work.path.join("rootfs");
    fixtures::build_busybox_rootfs(&template, &prereqs::busybox()?)
        .with_context(|| format!("build the busybox rootfs in {}", template.display()))?;
    let mut standin = StandIn::create("nsinit-bench")?;
    standin.enter()?;
    println!(
        "==> the bench runs in the network namespace {} (bridge docker0, 172.17.42.1/16)",
        standin.name()
    );
    let cgroup_parent = CgroupParent::claim()?;
    let busy = cpu_busy(Duration::from_secs(1));
    println!(
        "==> the CPUs were {:.0}% busy in the second before timing began (this bench asleep)",
        busy * 100.0
    );
    if busy > 0.25 {
        println!("    note: the machine is busy; timings will be noisy (re-run when it is quiet)");
    }

    let bench = Bench {
        tools: &tools,
        work: &work,
        template: &template,
        standin: &standin,
        cgroup_mounts: procfs::cgroup_mounts()?,
        spec: runtime_spec(&tools, &work.path),
    };
    let start = if sections.start {
        bench.start(rounds)?
    } else {
        Vec::new()
    };
    let hardened = if sections.hardened {
        bench.hardened(rounds)?
    } else {
        Vec::new()
    };
    let join = if sections.join {
        bench.join(rounds)?
    } else {
        Vec::new()
    };
    let runtimes = if sections.oci {
        Some(bench.runtimes(rounds)?)
    } else {
        None
    };
    // Before the scale section, which loads the machine itself.
    let load_after = load_average();
    let (memory, limits) = if sections.memory {
        (bench.memory()?, bench.limits()?)
    } else {
        (Vec::new(), Vec::new())
    };
    let scale = if sections.scale {
        bench.scale(scale_rounds)?
    } else {
        Vec::new()
    };
    drop(bench);
    drop(cgroup_parent);
    drop(standin);
    drop(work);

    let measured = measured(&start, &hardened, &join, runtimes.as_ref(), &memory, &scale);
    let targets = report::targets(&measured);
    let elapsed = began.elapsed();
    let markdown = markdown(
        &machine,
        &load_after,
        busy,
        rounds,
        &start,
        &hardened,
        &join,
        runtimes.as_ref(),
        &measured.oci,
        &memory,
        &limits,
        &scale,
        &targets,
    );
    println!();
    println!("{markdown}");
    let document = json!({
        "date": machine.date,
        "machine": {
            "cpus": machine.cpus,
            "cpu_model": machine.cpu,
            "kernel": machine.kernel,
            "os": machine.os,
            "load_average_before": machine.load,
            "cpu_busy_before": busy,
            "load_average_after": load_after,
        },
        "nsinit_commit": machine.commit,
        "runc": tools.runc.as_ref().map(|p| version(p)),
        "crun": tools.crun.as_ref().map(|p| version(p)),
        "warmups": WARMUPS,
        "rounds": rounds,
        "scale_batches": scale_rounds,
        "start": report::rows_json(&start),
        "hardened": report::rows_json(&hardened),
        "hardened_costs_ms": hardened::costs(&hardened)
            .iter()
            .map(|(what, cost)| json!({ "what": what, "ms": cost }))
            .collect::<Vec<_>>(),
        "join": report::rows_json(&join),
        "oci": runtimes.as_ref().map(|r| report::rows_json(&r.times)),
        "oci_peak_rss": runtimes.as_ref().map(|r| report::peak_json(&r.rss)),
        "oci_wrapper": runtimes
            .as_ref()
            .and_then(|r| r.wrapper.as_ref())
            .map(|rows| report::rows_json(rows)),
        "oci_crun": runtimes.as_ref().map(|_| report::oci_json(&measured.oci)),
        "memory": report::memory_json(&memory),
        "memory_limit": limit::json(&limits),
        "scale": report::scale_json(&scale),
        "targets": report::targets_json(&targets),
        "duration_s": elapsed.as_secs_f64(),
    });
    let text = serde_json::to_string_pretty(&document)?;
    // latest.* is the last full run; a run of some sections only is kept under its date.
    let full = sections.all();
    let suffix = if full { "" } else { "-partial" };
    let dated = out.join(format!("bench-{}{suffix}.json", machine.stamp));
    fs::write(&dated, &text)?;
    if full {
        fs::write(out.join("latest.json"), &text)?;
        fs::write(out.join("latest.md"), &markdown)?;
    }
    println!(
        "bench: {:.0} s in all; wrote {}{}",
        elapsed.as_secs_f64(),
        dated.display(),
        if full {
            ", latest.json and latest.md"
        } else {
            ""
        }
    );
    if elapsed > Duration::from_secs(600) {
        println!("bench: took longer than the 10 minutes it should");
    }
    Ok(())
}

/// The binaries the bench runs.
struct Tools {
    nsinit: PathBuf,
    /// The OCI front-end, built with nsinit (or why it is missing).
    nsinit_oci: Result<PathBuf, String>,
    nsinit_dynamic: PathBuf,
    floor: PathBuf,
    /// Runs a command and writes its peak RSS (KiB) to a file.
    peak_rss: PathBuf,
    /// crun's way onto a hybrid cgroup host (None: the host is not hybrid).
    hide_cgroup2: Option<PathBuf>,
    runc: Option<PathBuf>,
    crun: Option<PathBuf>,
}

/// Compiles `xtask/bench/NAME.c` into `out/NAME`, statically (a floor pays no dynamic loader).
fn compile(out: &Path, name: &str) -> Result<PathBuf> {
    let source = workspace_root()
        .join("xtask/bench")
        .join(format!("{name}.c"));
    let binary = out.join(name);
    step(
        &format!("gcc -O2 -static xtask/bench/{name}.c"),
        Command::new("gcc")
            .args(["-O2", "-static", "-Wall", "-o"])
            .arg(&binary)
            .arg(&source),
    )?;
    Ok(binary)
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// v1 controllers and a cgroup2 mount at `/sys/fs/cgroup/unified`.
fn is_hybrid(mounts: &[CgroupMount]) -> bool {
    mounts.iter().any(|m| !m.v2)
        && mounts
            .iter()
            .any(|m| m.v2 && m.path == Path::new(HYBRID_CGROUP2))
}

/// The first line of `program --version`.
fn version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// The OCI template (`runc spec`, or `crun spec` without runc), or why there is none.
fn runtime_spec(tools: &Tools, work: &Path) -> Result<String, String> {
    let dir = work.join("spec");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let runtime = tools
        .runc
        .as_ref()
        .or(tools.crun.as_ref())
        .ok_or("neither runc nor crun is installed")?;
    let out = Command::new(runtime)
        .arg("spec")
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("{}: {e}", runtime.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} spec: {}",
            runtime.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    fs::read_to_string(dir.join("config.json")).map_err(|e| e.to_string())
}

/// Everything the sections share.
struct Bench<'a> {
    tools: &'a Tools,
    work: &'a WorkDir,
    template: &'a Path,
    standin: &'a StandIn,
    cgroup_mounts: Vec<CgroupMount>,
    spec: Result<String, String>,
}

impl Bench<'_> {
    /// A container directory `NAME`: a copy of the rootfs with `config` as container.json.
    fn container(&self, name: &str, config: &str) -> Result<PathBuf> {
        let dir = self.work.path.join(name);
        fixtures::copy_rootfs(self.template, &dir)
            .with_context(|| format!("copy the rootfs to {}", dir.display()))?;
        fs::write(dir.join("container.json"), config)?;
        self.work.track(&dir);
        Ok(dir)
    }

    /// [`Bench::container`] with a full copy of the rootfs (no inode shared with the
    /// template) owned by `owner`: the rootfs of a user namespace mapping its root there.
    fn owned_container(&self, name: &str, config: &str, owner: u32) -> Result<PathBuf> {
        let dir = self.work.path.join(name);
        fs::create_dir_all(&dir)?;
        self.work.track(&dir);
        fixtures::copy_owned(self.template, &dir, owner)
            .with_context(|| format!("copy the rootfs to {} owned by {owner}", dir.display()))?;
        fs::write(dir.join("container.json"), config)?;
        Ok(dir)
    }

    fn scratch(&self) -> PathBuf {
        self.work.path.join("scratch")
    }

    /// `nsinit -C DIR exec -- ARGS`.
    fn nsinit(&self, name: &str, binary: &Path, dir: &Path, args: &[&str]) -> Contender {
        Contender::new(name, binary)
            .args([OsString::from("-C"), dir.into(), "exec".into(), "--".into()])
            .args(args.iter().copied())
    }

    /// `runc run` or `crun run` of a bundle over a rootfs of its own running `args`, or why
    /// that runtime cannot be measured. crun runs under hide-cgroup2 on a hybrid host.
    fn runtime(
        &self,
        runtime: &str,
        name: &str,
        tag: &str,
        args: &[&str],
    ) -> Result<Contender, String> {
        let binary = match runtime {
            "runc" => self.tools.runc.clone(),
            _ => self.tools.crun.clone(),
        }
        .ok_or_else(|| format!("{runtime} is not installed"))?;
        let spec = self
            .spec
            .as_ref()
            .map_err(|e| format!("no OCI template: {e}"))?;
        let rootfs = self.work.path.join(format!("{runtime}-rootfs"));
        if !rootfs.exists() {
            fixtures::copy_rootfs(self.template, &rootfs).map_err(|e| e.to_string())?;
        }
        let bundle = self.work.path.join(format!("{runtime}-{tag}"));
        let pid = std::process::id();
        let cgroups_path = format!("/{CGROUP_PARENT}/{runtime}-{pid}");
        let config =
            oci::bundle_config(spec, &rootfs, args, &cgroups_path).map_err(|e| e.to_string())?;
        fs::create_dir_all(&bundle)
            .and_then(|()| fs::write(bundle.join("config.json"), config))
            .map_err(|e| e.to_string())?;
        let run = [
            OsString::from("run"),
            "-b".into(),
            bundle.into(),
            format!("nsinit-bench-{runtime}-{pid}").into(),
        ];
        Ok(match (&self.tools.hide_cgroup2, runtime) {
            (Some(hide), "crun") => Contender::new(name, hide)
                .args([binary.into_os_string()])
                .args(run),
            _ => Contender::new(name, binary).args(run),
        })
    }

    /// `nsinit exec /bin/true` with and without cgroups and network, against the floor, runc
    /// and crun.
    fn start(&self, rounds: usize) -> Result<Vec<TimeRow>> {
        let bare = self.container("start-bare", &container_json(None, None)?)?;
        let cgroups =
            self.container("start-cgroups", &container_json(Some("bench-start"), None)?)?;
        let network = self.container(
            "start-network",
            &container_json(None, Some("172.17.0.100"))?,
        )?;
        let seed = self.container(
            "start-seed",
            &container_json(Some("bench-start-seed"), Some("172.17.0.101"))?,
        )?;
        let floor_rootfs = self.container("floor", "{}")?;
        let t = self.tools;
        let mut contenders = vec![
            Contender::new(FLOOR, &t.floor).args([floor_rootfs.as_os_str(), "/bin/true".as_ref()]),
            Contender::new(FLOOR_FULL, &t.floor).args([
                "--full".as_ref(),
                floor_rootfs.as_os_str(),
                "/bin/true".as_ref(),
            ]),
            self.nsinit(NSINIT, &t.nsinit, &bare, &["/bin/true"]),
            self.nsinit(NSINIT_DYNAMIC, &t.nsinit_dynamic, &bare, &["/bin/true"]),
            self.nsinit(WITH_CGROUPS, &t.nsinit, &cgroups, &["/bin/true"])
                .when_failing("cgroups not landed"),
            self.nsinit(WITH_NETWORK, &t.nsinit, &network, &["/bin/true"]),
            self.nsinit(
                "nsinit + cgroups + network",
                &t.nsinit,
                &seed,
                &["/bin/true"],
            )
            .when_failing("cgroups not landed"),
        ];
        let mut missing = Vec::new();
        for (runtime, name) in [("runc", RUNC), ("crun", CRUN)] {
            let name = match (runtime, &t.hide_cgroup2) {
                ("crun", Some(_)) => format!("{name} (under hide-cgroup2)"),
                _ => name.to_string(),
            };
            match self.runtime(runtime, &name, "true", &["/bin/true"]) {
                Ok(contender) => contenders.push(contender),
                Err(reason) => missing.push(unavailable(&name, reason)),
            }
        }
        if let Some(hide) = &t.hide_cgroup2 {
            contenders.push(
                Contender::new("hide-cgroup2 /bin/true (crun's wrapper alone)", hide)
                    .args(["/bin/true"]),
            );
        }
        println!(
            "==> start: {} contenders, {WARMUPS} warm-ups + {rounds} rounds, alternated",
            contenders.len()
        );
        let mut rows = alternate(&contenders, WARMUPS, rounds, &self.prepared_scratch()?)?;
        rows.extend(missing);
        Ok(rows)
    }

    fn prepared_scratch(&self) -> Result<PathBuf> {
        let scratch = self.scratch();
        fs::create_dir_all(&scratch)?;
        Ok(scratch)
    }

    /// `nsinit exec /bin/true` into a running container against nsenter into its namespaces.
    fn join(&self, rounds: usize) -> Result<Vec<TimeRow>> {
        let dir = self.container("join", &container_json(None, None)?)?;
        let scratch = self.prepared_scratch()?;
        let mut command = Command::new(&self.tools.nsinit);
        command
            .arg("-C")
            .arg(&dir)
            .args(["exec", "/bin/sleep", "3600"]);
        let live = Live::start(command, &scratch.join("join-stderr"))?;
        let target = live.pid1.to_string();
        let off = self.container(
            "join-opted-out",
            &opted_out(&container_json(None, None)?, &PROTECTIONS)?,
        )?;
        let mut command = Command::new(&self.tools.nsinit);
        command
            .arg("-C")
            .arg(&off)
            .args(["exec", "/bin/sleep", "3600"]);
        let live_off = Live::start(command, &scratch.join("join-opted-out-stderr"))?;
        let contenders = [
            self.nsinit(NSINIT, &self.tools.nsinit, &dir, &["/bin/true"]),
            self.nsinit(
                hardened::OPTED_OUT,
                &self.tools.nsinit,
                &off,
                &["/bin/true"],
            ),
            self.nsinit(
                NSINIT_DYNAMIC,
                &self.tools.nsinit_dynamic,
                &dir,
                &["/bin/true"],
            ),
            Contender::new(NSENTER, "nsenter").args([
                "--target",
                &target,
                "-m",
                "-u",
                "-i",
                "-n",
                "-p",
                "/bin/true",
            ]),
        ];
        println!(
            "==> join: {} contenders into PID {target}, {WARMUPS} warm-ups + {rounds} rounds, alternated",
            contenders.len()
        );
        let rows = alternate(&contenders, WARMUPS, rounds, &scratch);
        live.stop();
        live_off.stop();
        rows
    }

    /// RSS of each supervising process while its container runs `sleep`.
    fn memory(&self) -> Result<Vec<MemoryRow>> {
        let bare = self.container("memory-bare", &container_json(None, None)?)?;
        let seed = self.container(
            "memory-seed",
            &container_json(Some("bench-memory"), Some("172.17.0.102"))?,
        )?;
        let sleep_args = ["/bin/sleep", "3600"];
        let t = self.tools;
        let mut supervisors: Vec<(String, Result<Contender, String>)> = vec![
            (
                NSINIT.into(),
                Ok(self.nsinit(NSINIT, &t.nsinit, &bare, &sleep_args)),
            ),
            (
                NSINIT_DYNAMIC.into(),
                Ok(self.nsinit(NSINIT_DYNAMIC, &t.nsinit_dynamic, &bare, &sleep_args)),
            ),
            (
                "nsinit + cgroups + network".into(),
                Ok(self.nsinit("", &t.nsinit, &seed, &sleep_args)),
            ),
        ];
        for (runtime, name) in [("runc", RUNC), ("crun", CRUN)] {
            supervisors.push((
                name.into(),
                self.runtime(runtime, name, "sleep", &sleep_args),
            ));
        }
        println!(
            "==> memory: {} supervisors, {MEMORY_ROUNDS} samples each, alternated",
            supervisors.len()
        );
        let scratch = self.prepared_scratch()?;
        let mut samples: Vec<(Vec<f64>, Vec<f64>)> =
            vec![(Vec::new(), Vec::new()); supervisors.len()];
        let mut errors: Vec<Option<String>> = supervisors
            .iter()
            .map(|(_, c)| c.as_ref().err().cloned())
            .collect();
        for _ in 0..MEMORY_ROUNDS {
            for (i, (_, contender)) in supervisors.iter().enumerate() {
                let Ok(contender) = contender else { continue };
                if errors[i].is_some() && samples[i].0.is_empty() {
                    continue;
                }
                interrupt::check()?;
                let mut command = Command::new(&contender.program);
                command.args(&contender.args);
                match Live::start(command, &scratch.join(format!("memory-{i}"))) {
                    Ok(live) => {
                        sleep(Duration::from_millis(100));
                        let sampled = procfs::memory(live.child.id());
                        live.stop();
                        let memory = sampled?;
                        samples[i].0.push(memory.rss_kib as f64);
                        samples[i].1.push(memory.anon_kib as f64);
                    }
                    Err(error) => errors[i] = Some(format!("{error:#}")),
                }
            }
        }
        Ok(supervisors
            .iter()
            .zip(samples.iter().zip(errors))
            .map(|((name, _), ((rss, anon), error))| MemoryRow {
                name: name.clone(),
                rss: summarize(rss),
                anon: summarize(anon),
                unavailable: error.map(|e| format!("cannot run ({})", e.replace('|', "/"))),
            })
            .collect())
    }

    /// 1, 10 and 100 containers at once, each with cgroups and network on the one bridge.
    fn scale(&self, batches: usize) -> Result<Vec<ScaleRow>> {
        let most = *SCALE.iter().max().unwrap_or(&1);
        println!("==> scale: preparing {most} container directories");
        let dirs: Vec<PathBuf> = (0..most)
            .map(|i| {
                let config = container_json(Some(&format!("bench-{i}")), Some(&scale_address(i)))?;
                self.container(&format!("scale/c{i}"), &config)
            })
            .collect::<Result<_>>()?;
        let errors = self.work.path.join("scale-stderr");
        fs::create_dir_all(&errors)?;
        let roots: HashSet<(u64, u64)> = dirs
            .iter()
            .filter_map(|d| fs::metadata(d).ok().map(|m| (m.dev(), m.ino())))
            .collect();
        println!(
            "==> scale: batches of {SCALE:?} containers at once, 1 untimed + {batches} each, alternated"
        );
        let mut walls: Vec<Vec<f64>> = vec![Vec::new(); SCALE.len()];
        let mut failures = vec![0usize; SCALE.len()];
        let mut first_error: Vec<Option<String>> = vec![None; SCALE.len()];
        let mut leftovers = vec![Leftovers::default(); SCALE.len()];
        let mut gone: Vec<Vec<f64>> = vec![Vec::new(); SCALE.len()];
        for batch in 0..=batches {
            for (k, &n) in SCALE.iter().enumerate() {
                interrupt::check()?;
                let (wall, failed, error) = self.batch(&dirs[..n], &errors)?;
                let (left, veths_gone) = self.leftovers(&dirs[..n], &roots)?;
                leftovers[k] = leftovers[k].max(left);
                failures[k] += failed;
                if first_error[k].is_none() {
                    first_error[k] = error;
                }
                if batch > 0 {
                    walls[k].push(wall);
                    gone[k].extend(veths_gone);
                }
            }
            print!(".");
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
        println!();
        let rows: Vec<ScaleRow> = SCALE
            .iter()
            .enumerate()
            .filter_map(|(k, &n)| {
                Some(ScaleRow {
                    containers: n,
                    wall: summarize(&walls[k])?,
                    failures: failures[k],
                    leftovers: leftovers[k],
                    veths_gone: summarize(&gone[k]).map(|s| s.median),
                    first_error: first_error[k].clone(),
                })
            })
            .collect();
        for row in &rows {
            if let Some(error) = &row.first_error {
                println!(
                    "    {} at once: {} failed, the first: {error}",
                    row.containers, row.failures
                );
            }
        }
        Ok(rows)
    }

    /// Starts `nsinit exec /bin/true` in every dir at once: wall time until the last exits
    /// (ms), the failures and the first failure's reason.
    fn batch(&self, dirs: &[PathBuf], errors: &Path) -> Result<(f64, usize, Option<String>)> {
        let files: Vec<(PathBuf, File)> = (0..dirs.len())
            .map(|i| {
                let path = errors.join(format!("c{i}"));
                File::create(&path).map(|file| (path, file))
            })
            .collect::<std::io::Result<_>>()?;
        let start = Instant::now();
        let mut children = Vec::with_capacity(dirs.len());
        for (dir, (_, file)) in dirs.iter().zip(files.iter()) {
            let child = Command::new(&self.tools.nsinit)
                .arg("-C")
                .arg(dir)
                .args(["exec", "/bin/true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file.try_clone()?)
                .spawn();
            children.push(child);
        }
        let statuses: Vec<_> = children
            .into_iter()
            .map(|child| child.and_then(|mut c| c.wait()))
            .collect();
        let wall = start.elapsed().as_secs_f64() * 1000.0;
        let mut failed = 0;
        let mut first = None;
        for (status, (path, _)) in statuses.iter().zip(files.iter()) {
            let reason = match status {
                Ok(s) if s.success() => continue,
                Ok(s) => timing::failure(&s.to_string(), path),
                Err(e) => format!("spawn: {e}"),
            };
            failed += 1;
            first.get_or_insert(reason);
        }
        Ok((wall, failed, first))
    }

    /// What a batch left behind once every nsinit had exited, after waiting (up to
    /// [`PATIENCE`]) for the kernel to delete the veths; and how long that took (ms).
    fn leftovers(
        &self,
        dirs: &[PathBuf],
        roots: &HashSet<(u64, u64)>,
    ) -> Result<(Leftovers, Option<f64>)> {
        let start = Instant::now();
        let mut veths = self.standin.veths_on_bridge()?;
        while veths > 0 && start.elapsed() < PATIENCE {
            sleep(Duration::from_millis(20));
            veths = self.standin.veths_on_bridge()?;
        }
        let veths_gone = (veths == 0).then(|| start.elapsed().as_secs_f64() * 1000.0);
        let cgroups = (0..dirs.len())
            .flat_map(|i| {
                self.cgroup_mounts
                    .iter()
                    .map(move |m| m.path.join(CGROUP_PARENT).join(format!("bench-{i}")))
            })
            .filter(|path| path.exists())
            .count();
        let nspid = dirs.iter().filter(|d| d.join(".nspid").exists()).count();
        let state = dirs
            .iter()
            .filter_map(|d| state_file(d))
            .filter(|s| s.exists())
            .count();
        let processes = procfs::processes()
            .iter()
            .filter(|p| {
                fs::metadata(format!("/proc/{}/root", p.pid))
                    .is_ok_and(|m| roots.contains(&(m.dev(), m.ino())))
            })
            .count();
        Ok((
            Leftovers {
                veths,
                cgroups,
                nspid,
                state,
                processes,
            },
            veths_gone,
        ))
    }
}

fn unavailable(name: &str, reason: String) -> TimeRow {
    TimeRow {
        name: name.into(),
        summary: None,
        failures: 0,
        unavailable: Some(format!("cannot run ({})", reason.replace('|', "/"))),
        samples: Vec::new(),
    }
}

/// nsinit's state file of a container directory: `/run/nsinit/<dev>-<inode>` (hex).
fn state_file(dir: &Path) -> Option<PathBuf> {
    let meta = fs::metadata(dir).ok()?;
    Some(Path::new("/run/nsinit").join(format!("{:x}-{:x}", meta.dev(), meta.ino())))
}

/// A supervisor running a container whose command is `sleep`: found once it runs, killed
/// (the container's PID 1, by pid) and waited for when stopped or dropped.
struct Live {
    child: Child,
    pid1: u32,
    stopped: bool,
}

impl Live {
    fn start(mut command: Command, stderr: &Path) -> Result<Live> {
        let file = File::create(stderr)?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {:?}", command.get_program()))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(anyhow!(timing::failure(&status.to_string(), stderr)));
            }
            if let Some(pid1) = procfs::descendant_named(&procfs::processes(), child.id(), "sleep")
            {
                return Ok(Live {
                    child,
                    pid1,
                    stopped: false,
                });
            }
            if started.elapsed() > PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "its container did not start within {} s",
                    PATIENCE.as_secs()
                );
            }
            sleep(Duration::from_millis(5));
        }
    }

    fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // SAFETY: kill takes plain integers; pid1 is the container's PID 1 we started, and
        // its supervisor (our child, not yet waited for) keeps it from being reaped and reused
        // by another process before this.
        unsafe { libc::kill(self.pid1 as libc::pid_t, libc::SIGKILL) };
        let started = Instant::now();
        while started.elapsed() < PATIENCE {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(5));
        }
        eprintln!(
            "xtask: supervisor {} did not exit after its container; killing it",
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The bench's files, removed on drop, with nsinit's records of its container directories.
struct WorkDir {
    path: PathBuf,
    containers: std::cell::RefCell<Vec<PathBuf>>,
}

impl WorkDir {
    fn create(path: PathBuf) -> Result<WorkDir> {
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("remove {}", path.display()))?;
        }
        fs::create_dir_all(&path)?;
        Ok(WorkDir {
            path,
            containers: Default::default(),
        })
    }

    fn track(&self, dir: &Path) {
        self.containers.borrow_mut().push(dir.to_owned());
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // A killed nsinit leaves its state file behind; the directories go, so do those.
        for dir in self.containers.borrow().iter() {
            if let Some(state) = state_file(dir) {
                let _ = fs::remove_file(state);
            }
        }
        if let Err(error) = fs::remove_dir_all(&self.path) {
            eprintln!("xtask: remove {}: {error}", self.path.display());
        }
    }
}

/// The bench's cgroup parent in every hierarchy, emptied of stale groups at the start and
/// removed on drop (rmdir, deepest first: only groups without processes go).
struct CgroupParent {
    paths: Vec<PathBuf>,
}

impl CgroupParent {
    fn claim() -> Result<CgroupParent> {
        let paths: Vec<PathBuf> = procfs::cgroup_mounts()?
            .iter()
            .map(|m| m.path.join(CGROUP_PARENT))
            .collect();
        let parent = CgroupParent { paths };
        let stale: Vec<String> = parent
            .remove()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if !stale.is_empty() {
            bail!("stale cgroups with processes in them: {}", stale.join(", "));
        }
        Ok(parent)
    }

    /// Removes every group under the parent and the parent; returns what could not go.
    fn remove(&self) -> Vec<PathBuf> {
        let mut kept = Vec::new();
        for path in self.paths.iter().filter(|p| p.exists()) {
            remove_groups(path, &mut kept);
        }
        kept
    }
}

fn remove_groups(group: &Path, kept: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(group) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_groups(&entry.path(), kept);
            }
        }
    }
    if fs::remove_dir(group).is_err() {
        kept.push(group.to_owned());
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for path in self.remove() {
            eprintln!("xtask: cgroup {} could not be removed", path.display());
        }
    }
}

/// The machine and moment of a run.
struct Machine {
    date: String,
    stamp: String,
    cpus: usize,
    cpu: String,
    kernel: String,
    os: String,
    load: String,
    commit: String,
}

impl Machine {
    fn now() -> Machine {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (date, time) = utc(secs);
        let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_default();
        let commit = Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .current_dir(workspace_root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine {
            stamp: format!("{date}T{}Z", time.replace(':', "")),
            date: format!("{date} {time} UTC"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
            load: load_average(),
            commit,
        }
    }
}

/// The share of CPU time not idle over `window`, from `/proc/stat`.
fn cpu_busy(window: Duration) -> f64 {
    let read = || cpu_times(&fs::read_to_string("/proc/stat").unwrap_or_default());
    let before = read();
    sleep(window);
    let after = read();
    match (before, after) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            (busy1 - busy0) as f64 / (total1 - total0) as f64
        }
        _ => 0.0,
    }
}

/// `(busy, total)` jiffies of the `cpu` line of `/proc/stat` (idle and iowait are not busy).
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some((total - idle, total))
}

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(YYYY-MM-DD, HH:MM:SS)` of a Unix time (UTC; days to a civil date after H. Hinnant).
fn utc(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60),
    )
}

fn measured(
    start: &[TimeRow],
    hardened: &[TimeRow],
    join: &[TimeRow],
    runtimes: Option<&runtimes::Results>,
    memory: &[MemoryRow],
    scale: &[ScaleRow],
) -> Measured {
    let rss = |name: &str| {
        memory
            .iter()
            .find(|r| r.name == name)?
            .rss
            .map(|s| s.median)
    };
    let per = |n: usize| {
        scale
            .iter()
            .find(|r| r.containers == n)
            .map(ScaleRow::per_container)
    };
    Measured {
        floor: median_of(start, FLOOR),
        bare: median_of(start, NSINIT),
        bare_dynamic: median_of(start, NSINIT_DYNAMIC),
        cgroups: median_of(start, WITH_CGROUPS),
        network: median_of(start, WITH_NETWORK),
        runc: median_of(start, RUNC),
        join: median_of(join, NSINIT),
        nsenter: median_of(join, NSENTER),
        rss: rss(NSINIT),
        crun_rss: rss(CRUN),
        per_container_1: per(1),
        per_container_100: per(100),
        scale_failures: (!scale.is_empty()).then(|| scale.iter().map(|r| r.failures).sum()),
        scale_leftovers: (!scale.is_empty())
            .then(|| scale.iter().map(|r| r.leftovers.total()).sum()),
        hardened: median_of(hardened, hardened::HARDENED),
        opted_out: median_of(hardened, hardened::OPTED_OUT),
        seed_hardened: median_of(hardened, hardened::SEED_HARDENED),
        seed_opted_out: median_of(hardened, hardened::SEED_OPTED_OUT),
        floor_hardened: median_of(hardened, hardened::FLOOR_HARDENED),
        user_namespace: median_of(hardened, hardened::USER_NAMESPACE),
        oci: runtimes.map_or_else(Oci::default, oci_measured),
    }
}

/// Issue 14's numbers from the OCI section.
fn oci_measured(r: &runtimes::Results) -> Oci {
    Oci {
        nsinit_oci: r.medians("nsinit-oci"),
        runc: r.medians("runc"),
        crun: r.medians(r.crun),
        wrapper: match &r.wrapper {
            None => CrunWrapper::Bare,
            Some(rows) => CrunWrapper::HideCgroup2 {
                wrapped: median_of(rows, runtimes::WRAPPED),
                plain: median_of(rows, runtimes::PLAIN),
            },
        },
        nsinit_oci_create_rss: r.create_rss("nsinit-oci"),
        crun_create_rss: r.create_rss(r.crun),
    }
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    machine: &Machine,
    load_after: &str,
    busy: f64,
    rounds: usize,
    start: &[TimeRow],
    hardened: &[TimeRow],
    join: &[TimeRow],
    runtimes: Option<&runtimes::Results>,
    oci: &Oci,
    memory: &[MemoryRow],
    limits: &[limit::LimitRow],
    scale: &[ScaleRow],
    targets: &[report::Target],
) -> String {
    let mut out = String::from("## Performance\n\n");
    out.push_str(&format!(
        "Measured with `cargo xtask bench` on {}: {} CPUs ({}), Linux {}, {}; load average \
         {} before the timed comparisons, {} after them, CPUs {:.0}% busy in the second before \
         timing began (a shared machine). Whole-process wall time, spawn to exit, \
         contenders alternated run by run, {rounds} rounds after {WARMUPS} warm-ups; \
         everything runs in a throwaway network namespace standing in for the host.\n",
        machine.date,
        machine.cpus,
        machine.cpu,
        machine.kernel,
        machine.os,
        machine.load,
        load_after,
        busy * 100.0
    ));
    if !start.is_empty() {
        out.push_str(
            "\n### Start: a new container running `/bin/true`, the seed's five namespaces\n\n",
        );
        out.push_str(&report::time_table(start, NSINIT));
    }
    if !hardened.is_empty() {
        out.push_str(
            "\n### Hardened default: every protection of `security` on (the default) and off\n\n",
        );
        out.push_str(&report::time_table(hardened, hardened::HARDENED));
        out.push_str(
            "\nWhere the hardened default's time goes: the default's median less the median \
             of the default with that one protection off (one run, so the parts need not add \
             up to the whole):\n\n",
        );
        out.push_str(&report::cost_table(&hardened::costs(hardened)));
    }
    if !join.is_empty() {
        out.push_str("\n### Join: `/bin/true` in a running container\n\n");
        out.push_str(&report::time_table(join, NSINIT));
    }
    if let Some(runtimes) = runtimes {
        out.push_str(
            "\n### nsinit-oci, runc and crun through runc's CLI, one bundle (`runc spec`, five \
             namespaces, a cgroup, the Alpine fixture), alternated in one run\n",
        );
        for operation in runtimes::OPERATIONS {
            let rows: Vec<TimeRow> = runtimes
                .times
                .iter()
                .filter(|r| r.name.ends_with(&format!(" {operation}")))
                .cloned()
                .collect();
            out.push_str(&format!("\n`{operation}`:\n\n"));
            out.push_str(&report::time_table(
                &rows,
                &format!("nsinit-oci {operation}"),
            ));
        }
        out.push_str(&format!(
            "\nPeak RSS of the runtime process (`peak-rss.c`: `ru_maxrss` of a fork of a small \
             static program that execs the runtime, so the process and those it reaped, the \
             container's process before its `execve` included; for the lifecycle, `create`'s), \
             median of {MEMORY_ROUNDS} untimed runs:\n\n"
        ));
        out.push_str(&report::peak_table(&runtimes.rss, "nsinit-oci"));
        if let Some(rows) = runtimes.wrapper.as_ref().filter(|rows| !rows.is_empty()) {
            out.push_str(
                "\ncrun runs under `hide-cgroup2` here (crun 1.8 refuses a hybrid cgroup host; \
                 the wrapper gives it a mount namespace without /sys/fs/cgroup/unified), so \
                 every crun command above pays for it. The wrapper, timed in the same \
                 alternation:\n\n",
            );
            out.push_str(&report::wrapper_section(rows, oci));
            out.push_str(
                "\nPeak RSS needs no such correction: the wrapper execs crun in the same \
                 process, and `ru_maxrss` is the higher of the two images' peaks (the small \
                 static wrapper's well below crun's).\n",
            );
        }
    }
    if !memory.is_empty() {
        out.push_str(&format!(
            "\n### Supervisor memory while the container runs `sleep` (median of {MEMORY_ROUNDS})\n\n"
        ));
        out.push_str(&report::memory_table(memory, NSINIT));
    }
    if !limits.is_empty() {
        out.push_str(
            "\n### Smallest memory limit (16 KiB steps) a container running `/bin/true` starts under\n\n",
        );
        out.push_str(&limit::table(limits));
    }
    if !scale.is_empty() {
        out.push_str(
            "\n### Scale: N × `nsinit exec /bin/true` at once, each with cgroups and network on one bridge\n\n",
        );
        out.push_str(&report::scale_table(scale));
    }
    out.push_str("\n### Targets\n\n");
    out.push_str(&report::targets_table(targets));
    out.push_str(
        "\nTo reproduce: `cargo xtask bench` as root (it installs runc, crun and gcc when \
         missing); the numbers also land in `target/bench/latest.json`.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_become_utc_dates() {
        assert_eq!(utc(0), ("1970-01-01".into(), "00:00:00".into()));
        assert_eq!(utc(951_782_400), ("2000-02-29".into(), "00:00:00".into()));
        assert_eq!(utc(1_798_518_896), ("2026-12-29".into(), "04:34:56".into()));
    }

    #[test]
    fn cpu_time_counts_idle_and_iowait_as_idle() {
        let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n";
        assert_eq!(cpu_times(stat), Some((160, 1000)));
        assert_eq!(cpu_times("intr 1 2 3\n"), None);
    }

    #[test]
    fn sections_are_chosen_by_name() {
        let s = Sections::parse(Some("start,scale")).unwrap();
        assert!(s.start && s.scale && !s.join && !s.memory && !s.hardened && !s.oci);
        assert!(!s.all());
        assert!(Sections::parse(Some("startup")).is_err());
        let some = Sections::parse(Some("hardened,oci")).unwrap();
        assert!(some.hardened && some.oci && !some.start);
        assert!(Sections::parse(None).unwrap().all());
    }
}
