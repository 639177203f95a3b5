//! Writes nsinit makes into the container's `/proc` (sysctls), through an fd of a procfs it
//! verified, never through a path the container's mounts could redirect to another file
//! (CVE-2025-52881): `openat2` beneath that fd, refusing symlinks and mount crossings.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::error::{StepContext, StepError};

/// The container's `/proc`, checked to be a procfs.
fn open_proc() -> Result<OwnedFd, StepError> {
    let fd = open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open /proc".into())?;
    let fs = fstatfs(&fd).step(|| "inspect /proc".into())?;
    if fs.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(nix::Error::EXDEV)
            .step(|| "/proc is not a procfs; refusing to write to it".into());
    }
    Ok(fd)
}

/// The file under `/proc/sys` of a sysctl key (`net.ipv4.ip_forward` or `net/ipv4/ip_forward`).
pub fn sysctl_path(key: &str) -> String {
    format!("sys/{}", key.replace('.', "/"))
}

/// Set each kernel parameter, in key order, in the namespaces this process is in.
pub fn write_sysctls(sysctl: &BTreeMap<String, String>) -> Result<(), StepError> {
    if sysctl.is_empty() {
        return Ok(());
    }
    let proc = open_proc()?;
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            )
    };
    for (key, value) in sysctl {
        let path = sysctl_path(key);
        let fd = openat2(&proc, path.as_str(), how())
            .step(|| format!("open sysctl {key} (/proc/{path})"))?;
        File::from(fd)
            .write_all(value.as_bytes())
            .step(|| format!("set sysctl {key} to {value:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys_name_files_under_proc_sys() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward"),
            "sys/net/ipv4/ip_forward"
        );
        assert_eq!(sysctl_path("kernel/shmmax"), "sys/kernel/shmmax");
    }
}
