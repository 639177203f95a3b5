//! `probe protect [--handle TYPE:HEX]`: try what the default protections stop, harmlessly
//! (see [`conformance::protect`]), and report each outcome.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use conformance::facts::Mount;
use conformance::names::signal_name;
use conformance::protect::{
    Attempt, Handle, Report, Shown, CORE_PATTERN, MADE_NODE, MASKED_PATHS, OTHER_SYSCTLS,
    PLANTED_NODES, READONLY_PATHS, SHOCKER_64, SHOCKER_INT80, SYSRQ_TRIGGER,
};

use crate::sys::{self, ChildEnd};

/// How much of a masked file, or of the host file reached by a handle, is read.
const READ_AT_MOST: usize = 4096;

pub fn report(handle: Option<&Handle>) -> Report {
    let mut report = Report {
        pid: sys::ids().pid,
        ..Report::default()
    };
    match fs::read_to_string("/proc/self/status") {
        Ok(status) => {
            report.no_new_privs = status_number(&status, "NoNewPrivs");
            report.seccomp = status_number(&status, "Seccomp");
        }
        Err(e) => report.errors.push(format!("/proc/self/status: {e}")),
    }
    report.writes = std::iter::once(CORE_PATTERN)
        .chain([SYSRQ_TRIGGER])
        .chain(OTHER_SYSCTLS.iter().copied())
        .map(|path| result(path, open_for_writing(path)))
        .collect();
    match fs::read_to_string("/proc/self/mountinfo") {
        Ok(text) => report.mounts = Mount::parse_mountinfo(&text),
        Err(e) => report.errors.push(format!("/proc/self/mountinfo: {e}")),
    }
    report.masked = MASKED_PATHS
        .iter()
        .map(|path| Shown {
            mounted: report.mounts.iter().any(|m| m.mount_point == *path),
            ..show(path)
        })
        .collect();
    report.readonly_present = READONLY_PATHS
        .iter()
        .filter(|path| fs::symlink_metadata(path).is_ok())
        .map(|path| path.to_string())
        .collect();
    report.planted = PLANTED_NODES
        .iter()
        .map(|(path, _, _)| result(path, open_for_writing(path)))
        .collect();
    let (made, major, minor) = MADE_NODE;
    report.made = attempt(made, sys::mknod_char(Path::new(made), major, minor));
    if report.made.ok {
        report.made_open = Some(result(made, open_for_writing(made)));
        let _ = fs::remove_file(made);
    }
    report.calls = refused_calls();
    if let Some(handle) = handle {
        report.shocker = shocker(handle);
    }
    report
}

/// `NAME:\tN` of a `/proc/PID/status` text.
fn status_number(status: &str, name: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

/// Open for writing and close at once: nothing is written.
fn open_for_writing(path: &str) -> Result<(), i32> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map(drop)
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

fn attempt(what: &str, outcome: sys::Attempt) -> Attempt {
    result(what, outcome)
}

fn result<T>(what: &str, outcome: Result<T, i32>) -> Attempt {
    Attempt {
        what: what.to_string(),
        ok: outcome.is_ok(),
        error: outcome.err().map(sys::errno_name),
        yielded: None,
    }
}

/// What `path` shows: its kind, and how much a read of it gives.
fn show(path: &str) -> Shown {
    let shown = |kind: &str| Shown {
        path: path.to_string(),
        kind: kind.to_string(),
        ..Shown::default()
    };
    let Ok(meta) = fs::symlink_metadata(path) else {
        return shown("missing");
    };
    let (kind, read) = if meta.is_dir() {
        ("dir", fs::read_dir(path).map(Iterator::count))
    } else if meta.is_file() || meta.file_type().is_symlink() {
        ("file", read_some(path).map(|bytes| bytes.len()))
    } else {
        // A node (a mask of /dev/null shows as the file it covers, so this is no mask).
        ("other", read_some(path).map(|bytes| bytes.len()))
    };
    match read {
        Ok(size) => Shown {
            size: Some(size),
            ..shown(kind)
        },
        Err(e) => Shown {
            error: Some(
                e.raw_os_error()
                    .map_or_else(|| e.to_string(), sys::errno_name),
            ),
            ..shown(kind)
        },
    }
}

fn read_some(path: &str) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(READ_AT_MOST as u64)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Each of the refused calls with harmless arguments; `unshare` in a child, since it would
/// move the probe into a new user namespace when it works.
fn refused_calls() -> Vec<Attempt> {
    vec![
        attempt("keyctl", sys::keyctl_lookup()),
        attempt("add_key", sys::add_key_without_type()),
        attempt("bpf", sys::bpf_unknown_command()),
        attempt("perf_event_open", sys::perf_event_open_without_attributes()),
        child_attempt(
            "unshare-newuser",
            sys::in_child(|_| match sys::unshare(libc::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(errno) => errno,
            }),
        ),
        attempt("clone3", sys::clone3_too_small()),
    ]
}

/// A child's end as an attempt: exit 0 is success, another code the errno, a signal a kill.
fn child_attempt(what: &str, end: ChildEnd) -> Attempt {
    let (ok, error, yielded) = match end {
        ChildEnd::Exited(0, wrote) => (
            true,
            None,
            (!wrote.is_empty()).then(|| String::from_utf8_lossy(&wrote).into_owned()),
        ),
        ChildEnd::Exited(errno, _) => (false, Some(sys::errno_name(errno)), None),
        ChildEnd::Killed(signal) => (
            false,
            Some(format!("killed by SIG{}", signal_name(signal))),
            None,
        ),
        ChildEnd::NotRun(e) => (false, Some(format!("no child: {e}")), None),
    };
    Attempt {
        what: what.to_string(),
        ok,
        error,
        yielded,
    }
}

/// Open the host file behind `handle` relative to `/`, through the 64-bit ABI and through
/// x86's `int $0x80` (in a child: a filter may kill it), and read what it holds.
fn shocker(handle: &Handle) -> Vec<Attempt> {
    let root = match File::open("/") {
        Ok(root) => root,
        Err(e) => {
            let failed = |what: &str| Attempt {
                what: what.to_string(),
                error: Some(format!("open /: {e}")),
                ..Attempt::default()
            };
            return vec![failed(SHOCKER_64), failed(SHOCKER_INT80)];
        }
    };
    let fh = sys::file_handle(handle.handle_type, &handle.bytes);
    let opened = sys::open_by_handle(&root, &fh);
    let mut by_64 = result(SHOCKER_64, opened.as_ref().map(drop).map_err(|&e| e));
    by_64.yielded = opened.ok().and_then(read_file);
    vec![by_64, int80(&root, &fh)]
}

fn read_file(file: File) -> Option<String> {
    let mut bytes = Vec::new();
    file.take(READ_AT_MOST as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(target_arch = "x86_64")]
fn int80(root: &File, fh: &[u8]) -> Attempt {
    let low = match sys::Low::copy_of(fh) {
        Ok(low) => low,
        Err(e) => {
            return Attempt {
                what: SHOCKER_INT80.to_string(),
                error: Some(format!("map the handle below 4 GiB: {e}")),
                ..Attempt::default()
            }
        }
    };
    let end = sys::in_child(|pipe| match sys::open_by_handle_int80(root, &low) {
        Ok(file) => {
            let content = read_file(file).unwrap_or_default();
            let _ = pipe.write_all(content.as_bytes());
            0
        }
        Err(errno) => errno,
    });
    child_attempt(SHOCKER_INT80, end)
}

#[cfg(not(target_arch = "x86_64"))]
fn int80(_root: &File, _fh: &[u8]) -> Attempt {
    Attempt {
        what: SHOCKER_INT80.to_string(),
        error: Some("no int $0x80 on this architecture".to_string()),
        ..Attempt::default()
    }
}
