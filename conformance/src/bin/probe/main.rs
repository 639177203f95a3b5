//! The probe: runs inside a container and prints what it sees as one JSON object on stdout.
//! It is the only code of the suite that looks from inside; the driver checks what it prints.
//!
//! Built statically (`crt-static`) so it runs in any rootfs; it does no NSS lookups.

mod gather;
mod oci;
mod ping;
mod protect;
mod sys;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use conformance::facts::{SignalReport, TryResult, WAITED_SIGNALS, WAIT_SIGNAL_EXIT_BASE};
use conformance::names::{signal_name, signal_number};
use serde::Serialize;
use serde_json::json;

const USAGE: &str =
    "usage: probe facts | facts-then-sleep SECS | exit N | segv | kill-self SIG | sleep SECS \
                     | try mount|mknod|sethostname|chroot|load-module|nice | wait-signal \
                     | cat-file PATH | write-file PATH TEXT | alloc MIB | ping ADDR \
                     | protect [--handle TYPE:HEX] [--then-sleep SECS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["facts"] => print(&gather::facts()),
        ["oci", ops @ ..] => match oci::look(ops) {
            Ok(found) => print(&found),
            Err(why) => return usage(&format!("oci: {why}")),
        },
        // For a container that must outlive what it reports (the driver ends it).
        ["facts-then-sleep", secs] => match seconds(secs) {
            Some(duration) => {
                print(&gather::facts());
                std::thread::sleep(duration);
            }
            None => {
                return usage(&format!(
                    "facts-then-sleep: {secs} is not a number of seconds"
                ))
            }
        },
        ["exit", code] => match code.parse::<u8>() {
            Ok(code) => return ExitCode::from(code),
            Err(_) => return usage(&format!("exit: {code} is not a number 0..=255")),
        },
        ["segv"] => sys::segfault(),
        ["kill-self", signal] => return kill_self(signal),
        ["sleep", secs] => match seconds(secs) {
            Some(duration) => {
                std::thread::sleep(duration);
                print(&json!({ "slept": duration.as_secs_f64() }));
            }
            None => return usage(&format!("sleep: {secs} is not a number of seconds")),
        },
        ["try", op] => return try_op(op),
        ["wait-signal"] => return wait_signal(),
        ["cat-file", path] => match std::fs::read_to_string(path) {
            Ok(content) => print(&json!({ "path": path, "ok": true, "content": content })),
            Err(e) => print(&json!({ "path": path, "ok": false, "error": e.to_string() })),
        },
        ["write-file", path, text] => match std::fs::write(path, text) {
            Ok(()) => print(&json!({ "path": path, "ok": true })),
            Err(e) => print(&json!({ "path": path, "ok": false, "error": e.to_string() })),
        },
        ["ping", address] => match address.parse() {
            Ok(address) => print(&ping::ping(address, Duration::from_secs(5))),
            Err(_) => return usage(&format!("ping: {address} is not an IPv4 address")),
        },
        ["alloc", mib] => match mib.parse::<usize>() {
            Ok(mib) => {
                print(&json!({ "allocating_mib": mib }));
                let touched = alloc(mib);
                print(&json!({ "allocated_mib": touched }));
            }
            Err(_) => return usage(&format!("alloc: {mib} is not a number of MiB")),
        },
        ["protect", rest @ ..] => return protect(rest),
        _ => return usage("unknown or missing subcommand"),
    }
    ExitCode::SUCCESS
}

/// A non-negative number of seconds, fractions allowed.
fn seconds(text: &str) -> Option<Duration> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
}

fn usage(why: &str) -> ExitCode {
    eprintln!("probe: {why}\n{USAGE}");
    ExitCode::from(2)
}

/// Print one JSON object on its own line and flush, so a reader sees it even if we die next.
fn print(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string(value).expect("facts serialize");
    // A closed stdout leaves nothing to report to.
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// `protect [--handle TYPE:HEX] [--then-sleep SECS]`: the report, then maybe a sleep (for a
/// PID 1 that others join while it lives).
fn protect(args: &[&str]) -> ExitCode {
    let mut handle = None;
    let mut sleep = None;
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        let value = args.next().copied();
        match (arg, value) {
            ("--handle", Some(text)) => match conformance::protect::Handle::from_arg(text) {
                Some(parsed) => handle = Some(parsed),
                None => return usage(&format!("protect: {text} is not TYPE:HEX")),
            },
            ("--then-sleep", Some(secs)) => match seconds(secs) {
                Some(duration) => sleep = Some(duration),
                None => return usage(&format!("protect: {secs} is not a number of seconds")),
            },
            _ => return usage(&format!("protect: unknown or incomplete argument {arg}")),
        }
    }
    print(&protect::report(handle.as_ref()));
    if let Some(duration) = sleep {
        std::thread::sleep(duration);
    }
    ExitCode::SUCCESS
}

fn kill_self(signal: &str) -> ExitCode {
    let Some(signo) = signal_number(signal) else {
        return usage(&format!("kill-self: unknown signal {signal}"));
    };
    if let Err(e) = sys::kill_self(signo) {
        eprintln!("probe: kill-self {signal}: {e}");
        return ExitCode::from(1);
    }
    // Still here: the signal is ignored (a pid namespace's init ignores what it sends itself).
    std::thread::sleep(Duration::from_millis(100));
    print(&json!({ "signal": signal_name(signo), "survived": true }));
    ExitCode::SUCCESS
}

/// Attempt a privileged operation. Each is undone at once or changes nothing when it works,
/// so the probe is harmless even when run by mistake on the host.
fn try_op(op: &str) -> ExitCode {
    let attempt = match op {
        "mount" => {
            let target = Path::new("/tmp/probe-mount");
            let _ = std::fs::create_dir_all(target);
            let mounted = sys::mount_tmpfs(target);
            if mounted.is_ok() {
                let _ = sys::unmount(target);
            }
            let _ = std::fs::remove_dir(target);
            mounted
        }
        "mknod" => {
            let node = Path::new("/tmp/probe-mknod");
            let made = sys::mknod_null(node);
            let _ = std::fs::remove_file(node);
            made
        }
        // Setting the hostname it already has needs the same capability and changes nothing.
        "sethostname" => match sys::hostname() {
            Ok(current) => sys::sethostname(&current),
            Err(e) => Err(e.raw_os_error().unwrap_or(0)),
        },
        "chroot" => sys::chroot(Path::new("/")),
        "load-module" => sys::load_module(),
        "nice" => sys::raise_priority(),
        _ => return usage(&format!("try: unknown operation {op}")),
    };
    let errno = attempt.err();
    print(&TryResult {
        op: op.to_string(),
        // EBADF from load-module means the capability check passed: the fd was what failed.
        ok: errno.is_none() || (op == "load-module" && errno == Some(libc::EBADF)),
        errno,
        error: errno.map(sys::errno_name),
    });
    ExitCode::SUCCESS
}

/// Wait for the first of [`WAITED_SIGNALS`], report it and exit with 100 + its number.
fn wait_signal() -> ExitCode {
    let signals: Vec<i32> = WAITED_SIGNALS
        .iter()
        .filter_map(|name| signal_number(name))
        .collect();
    if let Err(e) = sys::catch_signals(&signals) {
        eprintln!("probe: wait-signal: install handlers: {e}");
        return ExitCode::from(1);
    }
    eprintln!("probe: waiting for a signal");
    let signo = loop {
        if let Some(signo) = sys::caught_signal() {
            break signo;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    print(&SignalReport {
        signal: signal_name(signo),
        signo,
    });
    ExitCode::from((WAIT_SIGNAL_EXIT_BASE + signo) as u8)
}

/// Allocate `mib` MiB and touch every page; returns how many MiB were touched.
fn alloc(mib: usize) -> usize {
    const MIB: usize = 1 << 20;
    const PAGE: usize = 4096;
    let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for _ in 0..mib {
        let mut block = vec![0u8; MIB];
        for page in block.chunks_mut(PAGE) {
            page[0] = 1;
        }
        blocks.push(std::hint::black_box(block));
    }
    blocks.len()
}
