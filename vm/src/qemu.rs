//! Running QEMU: the machine's command line, the guest's serial lines streamed as they come,
//! and a hard deadline after which QEMU is killed.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::guest::DEBUG_EXIT_PORT;
use crate::report::Ending;

/// The accelerator: TCG works everywhere; KVM only where a guest really boots with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    pub fn parse(text: &str) -> Option<Accel> {
        match text {
            "tcg" => Some(Accel::Tcg),
            "kvm" => Some(Accel::Kvm),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// The machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineKind {
    /// `microvm`: ISA serial, no PCI, no firmware tables to speak of; the fastest to boot. It
    /// has no HPET, and under TCG the kernel's PIT calibration of the TSC fails often enough
    /// to hang the boot, so the TSC frequency (the host's: TCG reads the host's TSC) is given
    /// on the kernel command line and the PIT is left out.
    Microvm { tsc_khz: u64 },
    /// `q35`: slower to boot, but its HPET makes calibration reliable.
    Q35,
}

impl MachineKind {
    /// microvm when the host's TSC frequency can be measured, else q35.
    pub fn fastest() -> MachineKind {
        host_tsc_khz().map_or(MachineKind::Q35, |tsc_khz| MachineKind::Microvm { tsc_khz })
    }
}

impl fmt::Display for MachineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineKind::Microvm { tsc_khz } => write!(f, "microvm (TSC {tsc_khz} kHz)"),
            MachineKind::Q35 => f.write_str("q35"),
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One VM: a kernel, an initramfs, a command line; no disk and no network device.
#[derive(Debug, Clone)]
pub struct Machine {
    pub kind: MachineKind,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
}

/// How a run ended and what QEMU itself said on stderr.
#[derive(Debug)]
pub struct Run {
    pub ending: Ending,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Machine {
    /// `qemu-system-x86_64` for this machine: the serial console on stdout, and the
    /// debug-exit device through which the guest reports its status.
    pub fn command(&self) -> Command {
        let (machine, append) = match self.kind {
            MachineKind::Microvm { tsc_khz } => (
                "microvm,pit=off,pic=off",
                format!("{} tsc_early_khz={tsc_khz}", self.append),
            ),
            MachineKind::Q35 => ("q35", self.append.clone()),
        };
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args(["-M", machine, "-accel", self.accel.name()])
            .args([
                "-m",
                &self.memory_mib.to_string(),
                "-smp",
                &self.cpus.to_string(),
            ])
            .args([
                "-display",
                "none",
                "-no-reboot",
                "-nodefaults",
                "-serial",
                "stdio",
            ])
            .args([
                "-device",
                &format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"),
            ])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args(["-append", &append]);
        command
    }

    /// Boots the machine, hands each serial line (without its line ending) to `on_line` as it
    /// arrives, and kills QEMU at the deadline.
    pub fn run(&self, mut on_line: impl FnMut(&str)) -> Result<Run> {
        let start = Instant::now();
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("start qemu-system-x86_64 (is qemu-system-x86 installed?)")?;

        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines, received) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            while stdout.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line);
                if lines
                    .send(text.trim_end_matches(['\r', '\n']).to_string())
                    .is_err()
                {
                    break;
                }
                line.clear();
            }
        });
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr_reader = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });

        let deadline = start + self.timeout;
        let mut timed_out = false;
        loop {
            match received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => on_line(&line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    // Child::kill signals this child's pid, never anything found by name.
                    let _ = child.kill();
                    timed_out = true;
                    break;
                }
            }
        }
        let status = child.wait().context("wait for QEMU")?;
        let _ = reader.join();
        let stderr = stderr_reader.join().unwrap_or_default();
        let ending = match status.code() {
            _ if timed_out => Ending::TimedOut,
            Some(code) => Ending::Exited(code),
            None => Ending::Signalled,
        };
        Ok(Run {
            ending,
            stderr,
            elapsed: start.elapsed(),
        })
    }
}

/// The host's TSC frequency in kHz, measured against the monotonic clock over 50 ms.
#[cfg(target_arch = "x86_64")]
pub fn host_tsc_khz() -> Option<u64> {
    fn rdtsc() -> u64 {
        // SAFETY: rdtsc reads a counter; it has no memory effects and no preconditions.
        unsafe { std::arch::x86_64::_rdtsc() }
    }
    let (start, cycles) = (Instant::now(), rdtsc());
    thread::sleep(Duration::from_millis(50));
    let (elapsed, cycles) = (start.elapsed(), rdtsc().wrapping_sub(cycles));
    let khz = u128::from(cycles) * 1_000_000 / elapsed.as_nanos().max(1);
    u64::try_from(khz).ok().filter(|&khz| khz > 100_000)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn host_tsc_khz() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_has_no_network_and_the_exit_device() {
        let machine = Machine {
            kind: MachineKind::Microvm { tsc_khz: 2_445_000 },
            kernel: "/k".into(),
            initrd: "/i".into(),
            append: "console=ttyS0".into(),
            accel: Accel::Tcg,
            memory_mib: 512,
            cpus: 1,
            timeout: Duration::from_secs(1),
        };
        let command = machine.command();
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        let line = args.join(" ");
        assert!(
            line.contains("-M microvm,pit=off,pic=off -accel tcg"),
            "{line}"
        );
        assert!(
            line.ends_with("console=ttyS0 tsc_early_khz=2445000"),
            "{line}"
        );
        assert!(
            line.contains("isa-debug-exit,iobase=0xf4,iosize=0x04"),
            "{line}"
        );
        assert!(line.contains("-nodefaults"), "{line}");
        assert!(!line.contains("-net"), "{line}");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_host_tsc_runs_at_some_hundreds_of_mhz_at_least() {
        let khz = host_tsc_khz().expect("a TSC");
        assert!((100_000..20_000_000).contains(&khz), "{khz} kHz");
    }
}
