//! `cargo xtask engines` (issue 15): the runtime driven end to end by podman (via conmon),
//! containerd (`ctr`, via the runc v2 shim) and Kubernetes' CRI (containerd's CRI plugin),
//! with runc as the reference. Everything runs inside a throwaway network namespace standing
//! in for the host, with the engines' own configuration, storage and state under
//! `target/engines/`; the host's links, routes and firewall rules are compared before and
//! after, and every container must leave nothing behind. podman also runs rootless, as a plain
//! user the harness adds only in private mount namespaces (`rootless.rs`). With `--bench`, no
//! scenarios: nsinit-oci, crun and runc timed under the same engines (`bench.rs`).

mod bench;
mod cases;
mod containerd;
mod cri;
mod exec;
mod host;
mod image;
mod podman;
mod pty;
mod report;
mod rootless;

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::args::Args;
use crate::cargo::target_dir;
use crate::prereqs;
use crate::procfs;
use crate::standin::StandIn;
use cases::{Case, Ctx};
use containerd::Containerd;
use exec::{Scratch, PATIENCE};
use host::{HostNet, Places};
use image::Image;
use podman::Podman;
use report::Outcome;

/// A runtime the engines drive: its name (podman's `--runtime NAME`, the CRI handler) and
/// binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
}

/// The reference runtime every scenario also runs under.
const REFERENCE: &str = "runc";
const SUITES: [&str; 4] = ["podman", "ctr", "cri", "faults"];
/// What the step should stay under (it is one step of `cargo xtask ci`).
const BUDGET: Duration = Duration::from_secs(15 * 60);

pub fn run(mut args: Args) -> Result<()> {
    let under_test = args.value("--runtime")?;
    let no_reference = args.flag("--no-reference");
    let only = args.value("--only")?;
    let filter = args.value("--filter")?;
    let bench_mode = args.flag("--bench");
    let rounds: Option<usize> = args.parsed("--rounds", "a number of rounds")?;
    args.finish()?;
    let suites = parse_suites(only.as_deref())?;
    let bench_rounds = match (bench_mode, rounds) {
        (false, None) => None,
        (false, Some(_)) => bail!("--rounds goes with --bench"),
        (true, _) if only.is_some() || filter.is_some() || no_reference => {
            bail!("--bench runs no scenarios: it takes --runtime and --rounds only")
        }
        (true, Some(0)) => bail!("--rounds must be at least 1"),
        (true, rounds) => Some(rounds.unwrap_or(bench::DEFAULT_ROUNDS)),
    };
    if !vm::apt::is_root() {
        bail!("the engines start containers, which needs root: run `cargo xtask engines` as root");
    }
    let began = Instant::now();

    println!("==> prerequisites");
    prereqs::ensure(&prereqs::ENGINES)?;
    let dir = target_dir().join("engines");
    fresh_dir(&dir)?;
    let (runtimes, timed, bench_missing) = match bench_rounds {
        None => (
            runtimes(under_test.as_deref(), no_reference)?,
            Vec::new(),
            Vec::new(),
        ),
        Some(_) => {
            prereqs::ensure(&[prereqs::GCC, prereqs::LIBC_DEV])?;
            if let Err(error) = prereqs::ensure(&[prereqs::CRUN]) {
                println!("    crun: {error:#} (its rows will say so)");
            }
            let nsinit_oci = match under_test.as_deref() {
                Some(path) => {
                    fs::canonicalize(path).with_context(|| format!("--runtime {path}"))?
                }
                None => crate::cargo::build_release_nsinit()?.with_file_name("nsinit-oci"),
            };
            let (timed, missing) =
                bench::prepare(&nsinit_oci, &dir.join("bench"), &procfs::cgroup_mounts()?)?;
            for (name, reason) in &missing {
                println!("    runtime {name}: {reason}");
            }
            let runtimes = timed.iter().map(|t| t.runtime.clone()).collect();
            (runtimes, timed, missing)
        }
    };
    for runtime in &runtimes {
        println!("    runtime {}: {}", runtime.name, runtime.path.display());
    }
    for t in &timed {
        println!(
            "      timing {} (runtime-timer, logging to {})",
            t.real.display(),
            t.log.display()
        );
    }
    println!("==> image: the Alpine fixture, as a tarball and an OCI archive");
    let image = Image::build(&dir.join("image"))?;
    let host_before = HostNet::snapshot();
    let netns_before = netns_entries();
    let outcomes;
    let bench_results;
    let mut harness_failures = Vec::new();
    {
        let standin = StandIn::create("nsinit-engines")?;
        println!(
            "==> the engines run in the network namespace {}",
            standin.name()
        );
        let cgroup_root = format!("/nsinit-engines-{}", std::process::id());
        let cgroup_mounts = procfs::cgroup_mounts()?;
        let cgroups = CgroupRoot::claim(&cgroup_mounts, &cgroup_root)?;
        let scratch = Scratch::new(&dir.join("scratch"))?;

        let podman = Podman::setup(
            &dir.join("podman"),
            &standin.path(),
            &format!("{cgroup_root}/podman"),
            &runtimes,
        )?;
        let started = Instant::now();
        scratch
            .run(
                podman
                    .command(&runtimes[0].name)
                    .args([
                        "import",
                        "--change",
                        &format!("CMD={}", serde_json::to_string(&image::PAUSE_COMMAND)?),
                    ])
                    .arg(&image.tarball)
                    .arg(image::NAME),
                PATIENCE,
            )?
            .ok("podman import")?;
        println!(
            "==> podman import: {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let started = Instant::now();
        let mut containerd = Containerd::start(
            &dir.join("containerd"),
            &standin.path(),
            &runtimes,
            image::NAME,
        )?;
        for namespace in [containerd::NAMESPACE, containerd::CRI_NAMESPACE] {
            scratch
                .run(
                    containerd
                        .ctr()
                        .args(["-n", namespace, "images", "import"])
                        .arg(&image.oci_archive),
                    PATIENCE,
                )?
                .ok("ctr images import")?;
        }
        println!(
            "==> containerd {} started and the image imported (namespaces {}, {}): {:.1} s",
            containerd.pid().unwrap_or(0),
            containerd::NAMESPACE,
            containerd::CRI_NAMESPACE,
            started.elapsed().as_secs_f64()
        );

        let mut state_dirs = vec![PathBuf::from("/run")];
        state_dirs.extend(podman.state_dirs());
        // Not ctr's fifo directory: `ctr run -d` leaves its stdio fifos there until a
        // `ctr task delete` it makes itself, which cannot happen once the shim is gone.
        state_dirs.extend(containerd.state_dirs());
        let places = Places {
            cgroup_mounts: &cgroup_mounts,
            cgroup_root: &cgroup_root,
            state_dirs,
            work: &dir,
        };
        let mut bench_report = None;
        if let Some(rounds) = bench_rounds {
            let engines = bench::Engines {
                podman: &podman,
                containerd: &containerd,
                scratch: &scratch,
                cgroup_root: &cgroup_root,
                work: dir.join("bench").join("work"),
            };
            bench_report = Some(bench::run(&engines, &timed, &bench_missing, rounds));
        }
        let cases: Vec<Case> = cases::all()
            .into_iter()
            .filter(|c| suites.contains(&c.suite))
            .filter(|c| match filter.as_deref() {
                Some(f) => c.name.contains(f),
                None => true,
            })
            .collect();
        let mut all = Vec::new();
        let scenario_runtimes = match bench_rounds {
            Some(_) => &[][..],
            None => &runtimes[..],
        };
        for runtime in scenario_runtimes {
            println!(
                "==> {} ({}): {} scenarios",
                runtime.name,
                runtime.path.display(),
                cases.len()
            );
            let work = dir.join("cases").join(&runtime.name);
            fs::create_dir_all(&work)?;
            let ctx = Ctx {
                runtime,
                podman: &podman,
                containerd: &containerd,
                image: &image,
                scratch: &scratch,
                work,
                places: &places,
                cgroup_mounts: &cgroup_mounts,
                cgroup_root: &cgroup_root,
                ids: RefCell::new(Vec::new()),
                detached: RefCell::new(None),
                cri: RefCell::new(None),
            };
            for case in &cases {
                let started = Instant::now();
                let result = (case.run)(&ctx);
                let outcome = Outcome {
                    runtime: runtime.name.clone(),
                    suite: case.suite,
                    name: case.name.to_string(),
                    passed: result.is_ok(),
                    note: match result {
                        Ok(note) => note,
                        Err(error) => format!("{error:#}"),
                    },
                    elapsed: started.elapsed(),
                };
                println!("{}", outcome.line());
                all.push(outcome);
            }
            // Whatever a failed (or filtered-out) scenario left running goes, then nothing
            // may remain.
            cases::cri::abandon(&ctx);
            sweep(&ctx);
            let started = Instant::now();
            let ids = ctx.ids.borrow().clone();
            let mut left = ctx.leftovers(&ids);
            left.extend(places.stray_mounts());
            let outcome = Outcome {
                runtime: runtime.name.clone(),
                suite: "all",
                name: format!("nothing left of its {} containers", ids.len()),
                passed: left.is_empty(),
                note: left.join("; "),
                elapsed: started.elapsed(),
            };
            println!("{}", outcome.line());
            all.push(outcome);
            let (passed, failed) = report::tally(&all, &runtime.name);
            println!("==> {} ({}):", runtime.name, runtime.path.display());
            println!("engines: {passed} passed, {failed} failed");
        }
        outcomes = all;
        bench_results = bench_report;

        let listed = scratch
            .run(
                podman.command(&runtimes[0].name).args(["ps", "-a", "-q"]),
                PATIENCE,
            )?
            .stdout;
        if !listed.trim().is_empty() {
            harness_failures.push(format!("podman still lists containers: {}", listed.trim()));
        }
        if let Err(error) = containerd.stop() {
            harness_failures.push(format!("{error:#}"));
        }
        // Containers containerd lost track of: the runtime deletes them from its own roots.
        for runtime in &runtimes {
            for root in [
                containerd.ctr_runtime_root(runtime),
                containerd.cri_runtime_root(runtime),
            ] {
                for (namespace, id) in state_entries(&root) {
                    harness_failures.push(format!(
                        "{} still had {id} under {}",
                        runtime.name,
                        namespace.display()
                    ));
                    let _ = scratch.run(
                        std::process::Command::new(&runtime.path)
                            .arg("--root")
                            .arg(&namespace)
                            .args(["delete", "--force", &id]),
                        PATIENCE,
                    );
                }
            }
        }
        let containerd_dir = dir.join("containerd").display().to_string();
        for (pid, cmdline) in host::processes() {
            if cmdline.contains(&containerd_dir)
                || cmdline.contains(&dir.join("podman").display().to_string())
            {
                harness_failures.push(format!("process {pid} still runs: {cmdline}"));
                let _ = cases::kill(pid, libc::SIGKILL);
            }
        }
        for group in cgroups.remove() {
            harness_failures.push(format!("cgroup {} could not be removed", group.display()));
        }
        drop(standin);
    }
    let changes = HostNet::snapshot();
    for change in host_before.changes(&changes) {
        harness_failures.push(format!("the host's network changed: {change}"));
    }
    for entry in netns_entries() {
        if !netns_before.contains(&entry)
            && (entry.starts_with("netns-") || entry.starts_with("cni-"))
        {
            harness_failures.push(format!("network namespace /run/netns/{entry} left behind"));
        }
    }
    if harness_failures.is_empty() {
        println!("==> host: links, routes and firewall rules unchanged; no engine process, cgroup or netns left");
    }
    for failure in &harness_failures {
        println!("  FAIL  host: {failure}");
    }

    if let Some(report) = bench_results {
        return bench_output(report?, &harness_failures, began.elapsed());
    }
    let names: Vec<String> = runtimes.iter().map(|r| r.name.clone()).collect();
    let table = report::table(&outcomes, &names);
    let elapsed = began.elapsed();
    let mut timing = String::new();
    for name in &names {
        let parts: Vec<String> = report::suite_times(&outcomes, name)
            .iter()
            .map(|(suite, secs)| format!("{suite} {secs:.0} s"))
            .collect();
        timing.push_str(&format!("{name}: {}\n", parts.join(", ")));
    }
    println!("\n{table}");
    print!("{timing}");
    let markdown = format!(
        "## Engines\n\n`cargo xtask engines`: {:.0} s in all.\n\n{table}\n{timing}",
        elapsed.as_secs_f64()
    );
    fs::write(dir.join("latest.md"), markdown)?;
    fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "runtimes": runtimes.iter().map(|r| serde_json::json!({"name": r.name, "path": r.path})).collect::<Vec<_>>(),
            "scenarios": report::json(&outcomes),
            "host": harness_failures,
            "duration_s": elapsed.as_secs_f64(),
        }))?,
    )?;
    println!(
        "engines: {:.0} s in all (budget {} min); wrote {}",
        elapsed.as_secs_f64(),
        BUDGET.as_secs() / 60,
        dir.join("latest.md").display()
    );
    let failed = outcomes.iter().filter(|o| !o.passed).count() + harness_failures.len();
    if failed > 0 {
        bail!("{failed} engine scenarios or host checks failed");
    }
    Ok(())
}

/// Prints the bench's tables and writes them next to `cargo xtask bench`'s results.
fn bench_output(
    report: bench::Report,
    harness_failures: &[String],
    elapsed: Duration,
) -> Result<()> {
    println!("\n{}", report.markdown);
    let out = target_dir().join("bench");
    fs::create_dir_all(&out)?;
    fs::write(out.join("engines.md"), &report.markdown)?;
    let mut json = report.json;
    json["host"] = serde_json::json!(harness_failures);
    json["duration_s"] = serde_json::json!(elapsed.as_secs_f64());
    fs::write(
        out.join("engines.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    println!(
        "engines --bench: {:.0} s in all; wrote {} and engines.md",
        elapsed.as_secs_f64(),
        out.join("engines.json").display()
    );
    if !harness_failures.is_empty() {
        bail!("{} host checks failed", harness_failures.len());
    }
    Ok(())
}

/// Removes the containers of `ctx`'s runtime that podman or containerd still list.
fn sweep(ctx: &Ctx) {
    let prefix = ctx.name("");
    if let Ok(listed) = ctx.podman_ok(&["ps", "-a", "--format", "{{.Names}}"]) {
        for name in listed.lines().filter(|n| n.starts_with(&prefix)) {
            ctx.podman_remove(name);
        }
    }
    let prefix = ctx.ctr_id("");
    if let Ok(listed) = ctx.ctr_ok(&["containers", "ls", "-q"]) {
        for id in listed.lines().filter(|id| id.starts_with(&prefix)) {
            ctx.ctr_remove(id);
        }
    }
}

/// `(ROOT/NAMESPACE, ID)` for each container state a runtime keeps under `root`.
fn state_entries(root: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for namespace in fs::read_dir(root).into_iter().flatten().flatten() {
        // A container's state is a directory; files beside them are the runtime's own (its
        // compiled seccomp filters).
        for entry in fs::read_dir(namespace.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        {
            found.push((
                namespace.path(),
                entry.file_name().to_string_lossy().into_owned(),
            ));
        }
    }
    found
}

fn parse_suites(only: Option<&str>) -> Result<Vec<&'static str>> {
    let Some(only) = only else {
        return Ok(SUITES.to_vec());
    };
    only.split(',')
        .map(str::trim)
        .map(|want| {
            SUITES
                .iter()
                .find(|s| **s == want)
                .copied()
                .with_context(|| format!("--only {want}: expected a comma-separated list of podman, ctr, cri, faults"))
        })
        .collect()
}

/// The runtimes to drive: the one under test (`--runtime PATH`), then runc as the reference
/// (unless `--no-reference`); runc alone when no runtime is given.
fn runtimes(under_test: Option<&str>, no_reference: bool) -> Result<Vec<Runtime>> {
    let mut list = Vec::new();
    if let Some(path) = under_test {
        let path = fs::canonicalize(path).with_context(|| format!("--runtime {path}"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = if name == REFERENCE {
            format!("{name}-under-test")
        } else {
            name
        };
        list.push(Runtime { name, path });
    }
    if !no_reference || list.is_empty() {
        let path = find_in_path(REFERENCE).context("runc is not installed")?;
        list.push(Runtime {
            name: REFERENCE.into(),
            path,
        });
    }
    Ok(list)
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Empties `dir` for this run. What an interrupted run of this step left is ended first: its
/// containerd, shims and conmons (found by the directory on their command lines), then its
/// mounts are detached, so that removing the tree never reaches through a bind mount.
fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let marker = dir.display().to_string();
        for (pid, cmdline) in host::processes() {
            if cmdline.contains(&marker) {
                println!("    ending a process a previous run left: {pid} {cmdline:.120}");
                let _ = cases::kill(pid, libc::SIGKILL);
            }
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
        let mut stale: Vec<String> = host::mount_points(&mountinfo)
            .into_iter()
            .filter(|p| Path::new(p).starts_with(dir))
            .collect();
        stale.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in stale {
            println!("    detaching a stale mount: {point}");
            let status = std::process::Command::new("umount")
                .args(["--lazy", &point])
                .status()?;
            if !status.success() {
                bail!(
                    "umount --lazy {point} failed; remove {} by hand",
                    dir.display()
                );
            }
        }
        fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    fs::create_dir_all(dir)?;
    Ok(())
}

fn netns_entries() -> Vec<String> {
    fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The harness's cgroup parent in every hierarchy; removed (deepest first) at the end.
struct CgroupRoot {
    paths: Vec<PathBuf>,
}

impl CgroupRoot {
    fn claim(mounts: &[procfs::CgroupMount], root: &str) -> Result<CgroupRoot> {
        let paths = mounts
            .iter()
            .map(|m| m.path.join(root.trim_start_matches('/')))
            .collect();
        let claimed = CgroupRoot { paths };
        let stale = claimed.remove();
        if !stale.is_empty() {
            bail!("stale cgroups with processes in them under {root}: {stale:?}");
        }
        Ok(claimed)
    }

    /// Removes every group under the root and the root; what could not go.
    fn remove(&self) -> Vec<PathBuf> {
        fn remove_tree(group: &Path, kept: &mut Vec<PathBuf>) {
            if let Ok(entries) = fs::read_dir(group) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        remove_tree(&entry.path(), kept);
                    }
                }
            }
            if group.exists() && fs::remove_dir(group).is_err() {
                kept.push(group.to_owned());
            }
        }
        let mut kept = Vec::new();
        for path in &self.paths {
            remove_tree(path, &mut kept);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_are_chosen_by_name() {
        assert_eq!(parse_suites(None).unwrap(), SUITES);
        assert_eq!(parse_suites(Some("cri,podman")).unwrap(), ["cri", "podman"]);
        assert!(parse_suites(Some("docker")).is_err());
    }

    #[test]
    fn runc_is_the_reference_after_the_runtime_under_test() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("nsinit-oci");
        fs::write(&binary, "").unwrap();
        if find_in_path(REFERENCE).is_none() {
            eprintln!("skipped: runc is not installed");
            return;
        }
        let list = runtimes(Some(binary.to_str().unwrap()), false).unwrap();
        let names: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["nsinit-oci", "runc"]);
        let alone = runtimes(Some(binary.to_str().unwrap()), true).unwrap();
        assert_eq!(alone.len(), 1);
        assert_eq!(runtimes(None, true).unwrap()[0].name, "runc");
    }
}
