//! Running nsinit itself from a copy nobody can write, for the one case where a process
//! running nsinit's binary is visible to another container: `nsinit-oci create` of a
//! container that joins an existing pid namespace (a pod sharing its processes). Its first
//! process sits at the gate, inside that namespace, until `start`; another container's root
//! could open its `/proc/PID/exe` and, once it exits, write the host's binary
//! (CVE-2019-5736), or run it there through a script naming `/proc/self/exe`. So such a
//! create re-executes from a read-only overlayfs view of the binary (no upper layer: the
//! filesystem refuses writes; about 0.2 ms, the binary's own page cache), or from a sealed
//! memfd copy where overlayfs or the right to mount it is missing (1.1-1.4 ms). Joins never
//! need it: their process runs the exec trampoline (`trampoline.rs`).

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::unistd::fexecve;

use crate::error::StepContext;
use crate::{sys, Error};
/// Whether this process runs from an executable nobody can write through `/proc/PID/exe`:
/// a memfd with the write seal, or a file on a read-only mount (the overlay of
/// [`readonly_view`]; a write through the magic link goes to that same mount).
pub fn running() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    let sealed = fcntl(&exe, FcntlArg::F_GET_SEALS)
        .map(|seals| SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_WRITE))
        .unwrap_or(false);
    sealed
        || nix::sys::statvfs::fstatvfs(&exe)
            .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Replace this process with the same invocation, run from an executable nobody can write:
/// a read-only overlay view of the binary, else a sealed memfd copy. Returns only on failure.
pub fn reexec() -> Error {
    let exe = readonly_view().map_or_else(copy_to_sealed_memfd, Ok);
    let reexec = exe.and_then(|exe| -> nix::Result<std::convert::Infallible> {
        let args = to_cstrings(std::env::args_os())?;
        let env = to_cstrings(std::env::vars_os().map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        }))?;
        fexecve(exe, &args, &env)
    });
    match reexec.step(|| "run nsinit from an unwritable copy".into()) {
        Err(error) => error.into(),
        Ok(never) => match never {},
    }
}

/// The running binary, opened through a new read-only overlayfs mount of its directory. No
/// upper layer: the filesystem itself refuses writes (EROFS), whatever the mount flags. The
/// mount is detached, in no mount table, and goes with the last process running from it.
/// Nothing is copied (the pages are the binary's own page cache): about 0.2 ms where a
/// sealed memfd copy of the 3.6 MB binary took 1.1-1.4 ms. `None` where overlayfs or the
/// privilege to mount it is missing, or the directory cannot be said in a `lowerdir` list.
fn readonly_view() -> Option<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let (dir, name) = (exe.parent()?.to_str()?, exe.file_name()?);
    // Without an upper layer overlayfs wants two lower ones, neither inside the other; the
    // second is never looked in (the binary's own directory is on top).
    let other = ["/dev", "/run", "/tmp"]
        .into_iter()
        .find(|other| !Path::new(dir).starts_with(other) && !Path::new(other).starts_with(dir))?;
    // Before Linux 6.5 overlayfs parses one option string: `:`, `,` and `\` would split it.
    if dir.contains([':', ',', '\\']) {
        return None;
    }
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    let lower = format!("lowerdir={dir}:{other}");
    let mount = sys::new_detached_mount("overlay", &[&lower], attrs).ok()?;
    nix::fcntl::openat(
        &mount,
        name,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}

/// A sealed memfd holding a copy of the running nsinit binary: nobody can change its bytes.
fn copy_to_sealed_memfd() -> nix::Result<OwnedFd> {
    sys::sealed_executable(c"nsinit", |copy| {
        std::io::copy(&mut File::open("/proc/self/exe")?, copy).map(drop)
    })
}

fn to_cstrings(items: impl Iterator<Item = OsString>) -> nix::Result<Vec<CString>> {
    items
        .map(|s| CString::new(s.as_bytes()).map_err(|_| nix::Error::EINVAL))
        .collect()
}
