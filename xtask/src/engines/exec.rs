//! Running the engines' command-line tools: every command has a time limit, its output lands
//! in files (a daemonizing grandchild such as conmon may keep a pipe open forever), and the
//! result is the exit code as a shell reports it (128 + N for a signal).

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long one engine command may take unless a case says otherwise.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// What a finished command said.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code, or 128 + the signal that ended it.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// Fails unless the command exited 0, naming `what` and its stderr.
    pub fn ok(self, what: &str) -> Result<Output> {
        if self.code != 0 {
            bail!("{what}: exit {}: {}", self.code, one_line(&self.stderr));
        }
        Ok(self)
    }

    /// stdout, trimmed.
    pub fn text(&self) -> &str {
        self.stdout.trim()
    }
}

/// The shell's view of an exit status.
pub fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// The last non-empty line of `text`, at most 300 characters: what a failure line shows.
pub fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut line: String = line.chars().take(300).collect();
    if line.is_empty() {
        line.push_str("(nothing on stderr)");
    }
    line
}

/// Where commands write their output, numbered so that concurrent commands never share a file.
pub struct Scratch {
    dir: PathBuf,
    next: AtomicU64,
}

impl Scratch {
    pub fn new(dir: &Path) -> Result<Scratch> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Scratch {
            dir: dir.to_owned(),
            next: AtomicU64::new(0),
        })
    }

    /// Runs `command` with stdin from /dev/null, killing it after `limit`.
    pub fn run(&self, command: &mut Command, limit: Duration) -> Result<Output> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.join(format!("{n}.out"));
        let err_path = self.dir.join(format!("{n}.err"));
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(File::create(&out_path)?)
            .stderr(File::create(&err_path)?)
            .spawn()
            .with_context(|| format!("start {}", describe(command)))?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = fs::read_to_string(&err_path).unwrap_or_default();
                bail!(
                    "{} did not finish within {} s (killed); stderr: {}",
                    describe(command),
                    limit.as_secs(),
                    one_line(&stderr)
                );
            }
            sleep(Duration::from_millis(10));
        };
        let elapsed = started.elapsed();
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        let _ = fs::remove_file(&out_path);
        let _ = fs::remove_file(&err_path);
        Ok(Output {
            code: code(status),
            stdout,
            stderr,
            elapsed,
        })
    }
}

/// `program arg arg ...`, shortened for error lines.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        if arg.starts_with("--root")
            || arg.starts_with("--runroot")
            || arg.starts_with("--tmpdir")
            || arg.starts_with("--network-config-dir")
            || arg.starts_with("--net=")
        {
            continue;
        }
        text.push(' ');
        text.push_str(&arg);
    }
    text.chars().take(200).collect()
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if started.elapsed() > limit {
            return None;
        }
        sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_read_as_the_shell_reads_them() {
        assert_eq!(code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn a_failure_line_is_the_last_words() {
        assert_eq!(one_line("first\nError: it broke\n\n"), "Error: it broke");
        assert_eq!(one_line(""), "(nothing on stderr)");
    }

    #[test]
    fn commands_run_with_output_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::new(dir.path()).unwrap();
        let out = scratch
            .run(
                Command::new("sh").args(["-c", "echo hi; echo oops >&2; exit 4"]),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!((out.code, out.text(), out.stderr.trim()), (4, "hi", "oops"));
        let error = scratch
            .run(Command::new("sleep").arg("5"), Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(error.contains("did not finish"), "{error}");
    }
}
