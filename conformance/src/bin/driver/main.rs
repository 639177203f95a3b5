//! The driver: runs `nsinit exec /probe ...` for each case of the suite (or, for a scenario,
//! several in turn) in a fresh copy of a template rootfs and checks what the probe saw, and
//! what the driver saw from the host, against what the config demands.
//!
//! It drives the `nsinit` binary and never links the runtime library. One line per check
//! (`ok NAME` or `FAILED NAME: expected X, saw Y`), then `N passed, N failed`; exit 1 on any
//! failure.

mod alpine;
mod cgroups;
mod check;
mod expect;
mod harness;
mod lifecycle;
mod network;
mod oci;
mod protect;
mod stage;
mod standin;
mod suite;
mod userns;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use check::{Evidence, Verdict};
use harness::{Run, Workspace};
use stage::Stage;
use suite::Case;

const USAGE: &str = "\
usage: nsinit-conformance --nsinit PATH --probe PATH [--nsinit-oci PATH]
                          [--busybox PATH | --rootfs-tar PATH]
                          [--workdir DIR] [--filter SUBSTR] [--timeout SECS] [--list]

  --nsinit PATH       the nsinit binary under test
  --probe PATH        the static nsinit-probe binary, installed as /probe in every rootfs
  --nsinit-oci PATH   the nsinit-oci binary under test (default: nsinit-oci beside --nsinit)
  --busybox PATH      build the rootfs around this static busybox (default: $NSINIT_BUSYBOX,
                      else /bin/busybox from busybox-static)
  --rootfs-tar PATH   use this rootfs tarball (plain or compressed) instead of busybox
  --workdir DIR       where case directories go (default: a temporary directory, removed)
  --filter SUBSTR     run only the checks whose name contains SUBSTR
  --timeout SECS      hard limit per case (default 30)
  --list              print the check names and exit";

/// Checks the driver makes on the host after all cases: nothing a container did shows there.
const HYGIENE_CHECKS: &[&str] = &[
    "hygiene/no-leftover-mounts",
    "hygiene/no-leftover-state",
    "hygiene/host-hostname-unchanged",
];

#[derive(Debug)]
enum Rootfs {
    Busybox(Option<PathBuf>),
    Tar(PathBuf),
}

#[derive(Debug)]
struct Options {
    nsinit: Option<PathBuf>,
    probe: Option<PathBuf>,
    nsinit_oci: Option<PathBuf>,
    rootfs: Rootfs,
    workdir: Option<PathBuf>,
    filter: Option<String>,
    timeout: Duration,
    list: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [at_gate, program, args @ ..] = args.as_slice() {
        if at_gate == stage::AT_GATE {
            let why = stage::wait_then_exec(program, args);
            eprintln!("nsinit-conformance: run {program}: {why}");
            return ExitCode::from(2);
        }
    }
    let options = match parse_args(args.into_iter()) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("nsinit-conformance: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(why) => {
            eprintln!("nsinit-conformance: {why}");
            ExitCode::from(2)
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        nsinit: None,
        probe: None,
        nsinit_oci: None,
        rootfs: Rootfs::Busybox(None),
        workdir: None,
        filter: None,
        timeout: Duration::from_secs(30),
        list: false,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--nsinit" => options.nsinit = Some(value()?.into()),
            "--probe" => options.probe = Some(value()?.into()),
            "--nsinit-oci" => options.nsinit_oci = Some(value()?.into()),
            "--busybox" => options.rootfs = Rootfs::Busybox(Some(value()?.into())),
            "--rootfs-tar" => options.rootfs = Rootfs::Tar(value()?.into()),
            "--workdir" => options.workdir = Some(value()?.into()),
            "--filter" => options.filter = Some(value()?),
            "--timeout" => {
                let text = value()?;
                let secs: f64 = text
                    .parse()
                    .map_err(|_| format!("--timeout {text}: not a number"))?;
                options.timeout = Duration::from_secs_f64(secs);
            }
            "--list" => options.list = true,
            "-h" | "--help" => return Err("help".to_string()),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(options)
}

/// Run the suite; `Ok(true)` when every check passed.
fn run(options: &Options) -> Result<bool, String> {
    let host = expect::Host::gather().map_err(|e| format!("look at the host: {e}"))?;
    let mut workspace = Workspace::create(options.workdir.as_deref())
        .map_err(|e| format!("create the workdir: {e}"))?;
    let passed = run_in(&mut workspace, options, &host);
    if let Err(e) = workspace.remove() {
        eprintln!(
            "nsinit-conformance: remove {}: {e}",
            workspace.root.display()
        );
    }
    passed
}

/// Build the template, then list or run the checks that apply to it.
fn run_in(
    workspace: &mut Workspace,
    options: &Options,
    host: &expect::Host,
) -> Result<bool, String> {
    // Listing needs the template (what it is decides the checks), not the binaries.
    let binaries = match options.list {
        true => None,
        false => Some((
            absolute(options.nsinit.as_deref(), "--nsinit")?,
            absolute(options.probe.as_deref(), "--probe")?,
        )),
    };
    if let Some((nsinit, _)) = &binaries {
        let beside = nsinit.with_file_name("nsinit-oci");
        let given = options.nsinit_oci.as_deref().unwrap_or(&beside);
        oci::use_binary(absolute(Some(given), "--nsinit-oci")?);
    }
    let started = Instant::now();
    let probe = binaries.as_ref().map(|(_, probe)| probe.as_path());
    let source = build_template(workspace, &options.rootfs, probe)?;
    workspace
        .template_done()
        .map_err(|e| format!("read the template: {e}"))?;
    let ready = started.elapsed();
    let alpine = alpine::Alpine::read(&workspace.template);

    let mut cases = suite::cases(host);
    cases.extend(alpine.iter().flat_map(alpine::cases));
    cases.extend(oci::cases());
    cases.extend(userns::cases());
    let wants = |name: &str| {
        options
            .filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    };
    for case in &mut cases {
        case.checks.retain(|check| wants(&check.name));
    }
    cases.retain(|case| !case.checks.is_empty());
    let hygiene: Vec<&str> = HYGIENE_CHECKS
        .iter()
        .copied()
        .filter(|name| wants(name))
        .collect();
    let total = cases.iter().map(|c| c.checks.len()).sum::<usize>() + hygiene.len();

    let Some((nsinit, _)) = binaries else {
        for case in &cases {
            for check in &case.checks {
                println!("{}", check.name);
            }
        }
        for name in &hygiene {
            println!("{name}");
        }
        return Ok(true);
    };
    if total == 0 {
        return Err(format!(
            "no check matches --filter {}",
            options.filter.as_deref().unwrap_or("")
        ));
    }
    let rootfs = match &alpine {
        Some(alpine) => format!("{} ({source})", alpine.label()),
        None => source,
    };
    say(&format!(
        "# {} in {}; rootfs: {rootfs}, template ready in {} ms",
        count(total, "check"),
        count(cases.len(), "case"),
        ready.as_millis()
    ));
    let mut tally = Tally::default();
    for (index, case) in cases.iter().enumerate() {
        run_case(workspace, index, case, &nsinit, options.timeout, &mut tally);
    }
    for name in &hygiene {
        tally.report(name, &hygiene_verdict(name, workspace, host));
    }
    say(&format!(
        "# {} cases: {:.1} s copying the template, {:.1} s running nsinit, {:.1} s removing case directories",
        cases.len(),
        tally.copying.as_secs_f64(),
        tally.running.as_secs_f64(),
        tally.removing.as_secs_f64()
    ));
    say(&format!("{} passed, {} failed", tally.passed, tally.failed));
    Ok(tally.failed == 0)
}

fn absolute(path: Option<&Path>, flag: &str) -> Result<PathBuf, String> {
    let path = path.ok_or_else(|| format!("{flag} PATH is required"))?;
    path.canonicalize()
        .map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// Build the template rootfs, with the probe at `/probe` when given; returns what it was built
/// from.
fn build_template(
    workspace: &Workspace,
    rootfs: &Rootfs,
    probe: Option<&Path>,
) -> Result<String, String> {
    let template = &workspace.template;
    let description = match rootfs {
        Rootfs::Busybox(path) => {
            let busybox = match path {
                Some(path) => path.clone(),
                None => fixtures::find_busybox()?,
            };
            fixtures::build_busybox_rootfs(template, &busybox)
                .map_err(|e| format!("build the busybox rootfs: {e}"))?;
            format!("busybox {}", busybox.display())
        }
        Rootfs::Tar(tar) => {
            fixtures::extract_rootfs_tar(tar, template)
                .map_err(|e| format!("unpack {}: {e}", tar.display()))?;
            format!("tarball {}", tar.display())
        }
    };
    let Some(probe) = probe else {
        return Ok(description);
    };
    fixtures::install_file(template, probe, "/probe", 0o755)
        .map_err(|e| format!("install the probe: {e}"))?;
    if !fixtures::is_static_executable(probe).unwrap_or(false) {
        say(&format!(
            "# warning: {} is not a static executable; it runs only in a rootfs holding its loader and libraries",
            probe.display()
        ));
    }
    Ok(description)
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Time spent copying the template into case directories.
    copying: Duration,
    /// Time spent running nsinit (cases and scenarios).
    running: Duration,
    /// Time spent removing case directories.
    removing: Duration,
}

impl Tally {
    fn report(&mut self, name: &str, verdict: &Verdict) {
        match verdict {
            Ok(()) => {
                self.passed += 1;
                say(&format!("ok {name}"));
            }
            Err(m) => {
                self.failed += 1;
                say(&format!(
                    "FAILED {name}: expected {}, saw {}",
                    one_line(&m.expected),
                    one_line(&m.saw)
                ));
            }
        }
    }
}

fn run_case(
    workspace: &mut Workspace,
    index: usize,
    case: &Case,
    nsinit: &Path,
    timeout: Duration,
    tally: &mut Tally,
) {
    let started = Instant::now();
    let evidence = match workspace.case_dir(index, case) {
        Ok(dir) => {
            tally.copying += started.elapsed();
            let started = Instant::now();
            let evidence = match &case.scenario {
                None => Evidence::Run(harness::run_nsinit(nsinit, &dir, case, timeout)),
                // The stage goes (killing what it adopted) before the directory does.
                Some(play) => Evidence::Findings(play(&mut Stage::new(nsinit, &dir, timeout))),
            };
            tally.running += started.elapsed();
            let started = Instant::now();
            if let Err(e) = workspace.remove_case_dir(&dir) {
                say(&format!("# warning: remove {}: {e}", dir.display()));
            }
            tally.removing += started.elapsed();
            evidence
        }
        Err(e) => Evidence::Run(Run::not_run(
            Path::new(""),
            format!("prepare the case directory: {e}"),
        )),
    };
    for check in &case.checks {
        tally.report(&check.name, &check.verify(&evidence));
    }
}

fn hygiene_verdict(name: &str, workspace: &Workspace, host: &expect::Host) -> Verdict {
    match name {
        "hygiene/no-leftover-mounts" if !workspace.leftover_mounts.is_empty() => {
            Err(check::mismatch(
                "no mounts left under case directories",
                workspace.leftover_mounts.join(", "),
            ))
        }
        "hygiene/no-leftover-state" if !workspace.leftover_state.is_empty() => {
            Err(check::mismatch(
                "no state left in /run/nsinit for case directories once nsinit returned",
                workspace.leftover_state.join(", "),
            ))
        }
        "hygiene/host-hostname-unchanged" => {
            let now = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            check::expect_eq(host.hostname.as_str(), now.trim())
        }
        _ => Ok(()),
    }
}

/// `1 check`, `2 checks`.
fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// Failure text on one line, short enough to read.
fn one_line(text: &str) -> String {
    const LIMIT: usize = 600;
    let flat = text.trim().replace('\n', "\\n");
    match flat.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

/// Print a line and flush, so progress streams to whoever watches (the VM's serial console).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn arguments_parse_as_documented() {
        let options = parse(&[
            "--nsinit",
            "/n",
            "--probe",
            "/p",
            "--rootfs-tar",
            "/r.tar.gz",
            "--workdir",
            "/w",
            "--filter",
            "seed/",
            "--timeout",
            "2.5",
            "--list",
        ])
        .unwrap();
        assert_eq!(options.nsinit.as_deref(), Some(Path::new("/n")));
        assert_eq!(options.probe.as_deref(), Some(Path::new("/p")));
        assert!(matches!(options.rootfs, Rootfs::Tar(ref t) if t == Path::new("/r.tar.gz")));
        assert_eq!(options.workdir.as_deref(), Some(Path::new("/w")));
        assert_eq!(options.filter.as_deref(), Some("seed/"));
        assert_eq!(options.timeout, Duration::from_millis(2500));
        assert!(options.list);
        assert!(matches!(parse(&[]).unwrap().rootfs, Rootfs::Busybox(None)));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&["--nsinit"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bogus"])
            .unwrap_err()
            .contains("unknown argument"));
        assert!(parse(&["--timeout", "soon"]).is_err());
    }

    #[test]
    fn failure_text_stays_on_one_line() {
        assert_eq!(one_line("a\nb\n"), "a\\nb");
        let long = "x".repeat(1000);
        assert!(one_line(&long).len() < 700);
    }
}
