//! Whole-process timing: a contender is spawned and waited for, wall time in between, with
//! stdin and stdout on /dev/null and stderr in a file (read only when a run fails). The
//! contenders of a comparison alternate run by run (A B C A B C ...), so a disturbance of the
//! shared machine hits all of them alike.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};

use super::report::TimeRow;
use super::stats::summarize;

/// One program the bench times.
#[derive(Debug, Clone)]
pub struct Contender {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// What a failure in every warm-up means, shown before the error (`cgroups not landed`).
    pub when_failing: Option<&'static str>,
}

impl Contender {
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Contender {
        Contender {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            when_failing: None,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Contender
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn when_failing(mut self, meaning: &'static str) -> Contender {
        self.when_failing = Some(meaning);
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }
}

/// Runs `contender` once with stderr in `stderr`: the wall time in ms from spawn to wait, and
/// why it failed if it did.
pub fn run_once(contender: &Contender, stderr: &Path) -> Result<(f64, Option<String>)> {
    let run = run_command(&mut contender.command(), stderr)?;
    Ok((run.ms, run.error))
}

/// One finished run of a command.
#[derive(Debug, Clone)]
pub struct Run {
    /// Wall time from spawn to reaping, in ms.
    pub ms: f64,
    /// Why it failed (status and the last line of stderr), if it did.
    pub error: Option<String>,
}

/// Runs `command` with stderr in `stderr` and waits for it.
pub fn run_command(command: &mut Command, stderr: &Path) -> Result<Run> {
    super::interrupt::check()?;
    let file = File::create(stderr).with_context(|| format!("create {}", stderr.display()))?;
    command.stderr(file);
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("run {}", command.get_program().to_string_lossy()))?;
    let mut child = child;
    let status = child.wait()?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let error = (!status.success()).then(|| failure(&status.to_string(), stderr));
    Ok(Run { ms, error })
}

/// Waits for `pid`, a child of ours that is no `Child` (a container process we reap as its
/// subreaper): its status.
pub fn wait_pid(pid: u32) -> Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live local the call writes into; `pid` is our child.
        let ret = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if ret >= 0 {
            return Ok(ExitStatus::from_raw(status));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).with_context(|| format!("wait for process {pid}"));
        }
    }
}

/// `exit status: 1: <last line of stderr>`, fit for a table cell.
pub fn failure(status: &str, stderr: &Path) -> String {
    let text = fs::read_to_string(stderr).unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut reason = format!("{status}: {}", last.trim()).replace('|', "/");
    if reason.len() > 160 {
        let mut cut = 157;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push_str("...");
    }
    reason
}

/// `warmups` then `rounds` rounds of every contender in turn. A contender that fails every
/// warm-up is dropped and its row says why; later failures are counted, not timed.
pub fn alternate(
    contenders: &[Contender],
    warmups: usize,
    rounds: usize,
    scratch: &Path,
) -> Result<Vec<TimeRow>> {
    let labels: Vec<Label> = contenders
        .iter()
        .map(|c| Label {
            name: c.name.clone(),
            when_failing: c.when_failing,
        })
        .collect();
    alternate_runs(&labels, warmups, rounds, scratch, |i, stderr| {
        run_once(&contenders[i], stderr)
    })
}

/// A row of [`alternate_runs`]: its name and what failing every warm-up means.
#[derive(Debug, Clone)]
pub struct Label {
    pub name: String,
    pub when_failing: Option<&'static str>,
}

/// [`alternate`] for contenders that are more than one command: `run(i, stderr)` runs
/// contender `i` once and returns its time in ms and why it failed, if it did.
pub fn alternate_runs(
    contenders: &[Label],
    warmups: usize,
    rounds: usize,
    scratch: &Path,
    mut run: impl FnMut(usize, &Path) -> Result<(f64, Option<String>)>,
) -> Result<Vec<TimeRow>> {
    let stderr: Vec<PathBuf> = (0..contenders.len())
        .map(|i| scratch.join(format!("stderr-{i}")))
        .collect();
    let mut rows: Vec<TimeRow> = contenders
        .iter()
        .map(|c| TimeRow {
            name: c.name.clone(),
            summary: None,
            failures: 0,
            unavailable: None,
            samples: Vec::with_capacity(rounds),
        })
        .collect();
    let mut warm_failures = vec![0usize; contenders.len()];
    let mut last_error: Vec<Option<String>> = vec![None; contenders.len()];
    for round in 0..warmups + rounds {
        let warm = round < warmups;
        for (i, contender) in contenders.iter().enumerate() {
            if rows[i].unavailable.is_some() {
                continue;
            }
            let (ms, error) = run(i, &stderr[i])?;
            match (error, warm) {
                (None, false) => rows[i].samples.push(ms),
                (None, true) => {}
                (Some(error), true) => {
                    warm_failures[i] += 1;
                    if warm_failures[i] == warmups {
                        rows[i].unavailable = Some(match contender.when_failing {
                            Some(meaning) => format!("{meaning} ({error})"),
                            None => format!("cannot run ({error})"),
                        });
                    }
                    last_error[i] = Some(error);
                }
                (Some(error), false) => {
                    rows[i].failures += 1;
                    last_error[i] = Some(error);
                }
            }
        }
        if !warm && (round - warmups + 1).is_multiple_of(10) {
            print!(".");
            let _ = std::io::stdout().flush();
        }
    }
    println!();
    for (i, row) in rows.iter_mut().enumerate() {
        row.summary = summarize(&row.samples);
        if row.failures > 0 {
            if let Some(error) = &last_error[i] {
                println!(
                    "    {}: {} failed runs, the last: {error}",
                    row.name, row.failures
                );
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contenders_alternate_and_failing_ones_say_why() {
        let scratch = tempfile::tempdir().unwrap();
        let log = scratch.path().join("log");
        let append = |tag: &str| {
            Contender::new(tag, "/bin/sh").args(["-c", &format!("echo {tag} >> {}", log.display())])
        };
        let failing = Contender::new("broken", "/bin/sh")
            .args(["-c", "echo 'nsinit: unknown key | cgroups' >&2; exit 125"])
            .when_failing("cgroups not landed");
        let rows = alternate(&[append("a"), failing, append("b")], 2, 3, scratch.path()).unwrap();
        let order = fs::read_to_string(&log).unwrap();
        assert_eq!(order.split_whitespace().collect::<String>(), "ababababab");
        assert_eq!(rows[0].summary.unwrap().n, 3);
        assert_eq!(rows[1].summary, None);
        assert_eq!(
            rows[1].unavailable.as_deref(),
            Some("cgroups not landed (exit status: 125: nsinit: unknown key / cgroups)")
        );
    }
}
