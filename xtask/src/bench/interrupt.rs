//! Ctrl-C (or SIGTERM) during `cargo xtask bench`: noted rather than fatal, so the bench
//! stops at its next run and unwinds through its cleanups (stand-in netns, cgroup parent,
//! container directories) instead of dying with them left behind.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on SIGINT and SIGTERM only set a flag that [`check`] reads. Children start with
/// the default dispositions again (a caught signal is reset by `execve`), so a Ctrl-C still
/// ends the contender running at that moment.
pub fn catch() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler only stores
        // to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// An error once the user asked the bench to stop.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted: stopping and cleaning up");
    }
    Ok(())
}
