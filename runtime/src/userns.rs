//! User namespaces: the maps of a container's new one, written from outside it, and whether
//! nsinit itself runs in one (rootless podman runs its runtime inside its own).

use std::io::Write;
use std::process::Command;

use nix::unistd::{getegid, geteuid, Pid};

use crate::error::{StepContext, StepError};
use crate::plan::{IdMap, IdMaps};

/// Write the uid and gid maps of `pid`'s new user namespace. As root, straight into
/// `/proc/PID/{uid,gid}_map`. As a plain user, a map of one's own ids alone is written the
/// same way (after `setgroups` is denied, as the kernel requires); any other map goes
/// through the setuid `newuidmap`/`newgidmap` of the `uidmap` package, which check it
/// against `/etc/subuid` and `/etc/subgid`.
pub fn write_maps(pid: Pid, maps: &IdMaps) -> Result<(), StepError> {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let own =
        |map: &[IdMap], id: u32| matches!(map, [line] if line.host_id == id && line.size == 1);
    if uid == 0 || (own(&maps.uids, uid) && own(&maps.gids, gid)) {
        if uid != 0 {
            write_proc(pid, "setgroups", "deny")?;
        }
        write_proc(pid, "uid_map", &text(&maps.uids))?;
        write_proc(pid, "gid_map", &text(&maps.gids))
    } else {
        helper("newuidmap", pid, &maps.uids)?;
        helper("newgidmap", pid, &maps.gids)
    }
}

/// Whether nsinit runs in the initial user namespace (where `mknod` and new sysfs mounts
/// are allowed to root): its uid map is the identity over every id.
pub fn in_initial() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true)
}

fn text(map: &[IdMap]) -> String {
    map.iter().map(IdMap::line).collect()
}

/// One write: the kernel takes a map whole, once.
fn write_proc(pid: Pid, file: &str, text: &str) -> Result<(), StepError> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .step(|| format!("write {} to {path}", text.trim_end().replace('\n', ", ")))
}

fn helper(program: &str, pid: Pid, map: &[IdMap]) -> Result<(), StepError> {
    let mut command = Command::new(program);
    command.arg(pid.to_string());
    for line in map {
        command.args([
            line.container_id.to_string(),
            line.host_id.to_string(),
            line.size.to_string(),
        ]);
    }
    let step = || format!("map ids with {program} (from the uidmap package) for pid {pid}");
    let output = command.output().step(step)?;
    if !output.status.success() {
        // Its own message says which range /etc/subuid or /etc/subgid does not allow.
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(StepError {
            step: format!("{}: {}", step(), said.trim()),
            errno: nix::Error::EPERM,
        });
    }
    Ok(())
}
