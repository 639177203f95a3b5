//! Rootless podman (issue 16): podman run by a plain user with subordinate ids, the runtime
//! registered as for root podman. The host's account files are never changed: each podman
//! command runs in a mount namespace of its own where copies of `/etc/passwd`, `/etc/group`,
//! `/etc/subuid` and `/etc/subgid` that add the user are bound over the originals (the setuid
//! `newuidmap` and `newgidmap` read them there), then becomes the user with `setpriv`.
//! Everything the user needs (a copy of the runtime's binary and of the image tarball,
//! podman's configuration and storage, `HOME`, `XDG_RUNTIME_DIR`) lies under one directory
//! of the system's temp dir, since the workspace may sit where the user cannot reach
//! (`/root`); the scenario removes it, after ending podman's pause process (which holds
//! podman's user namespace) and whatever else runs in that namespace.

use std::fs;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::cases::{gone, kill};
use super::exec::wait_for;
use super::host;
use super::podman::{AsUser, Podman};
use super::Runtime;

/// The user's name; its absence from the host's account files is checked.
const USER: &str = "nsinit-rootless";
/// The first uid (and gid) tried for the user.
const FIRST_ID: u32 = 4711;
/// Where the search for the user's subordinate ids starts, and how many it gets (useradd's
/// defaults).
const FIRST_SUBORDINATE: u32 = 100_000;
pub const SUBORDINATE_COUNT: u32 = 65_536;
/// The directory of a rootless run: `PREFIX` and the harness's pid, in the temp dir. Short:
/// rootless podman refuses a run root (`DIR/podman/run`) longer than 50 characters.
const PREFIX: &str = "nsinit-rootless-";
/// Where the rootless podman's `--tmpdir` keeps the pid of its pause process.
const PAUSE_PID: &str = "podman/tmp/pause.pid";

/// The plain user: uid = gid, unused on the host, and subordinate uids = gids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub id: u32,
    pub subordinate: u32,
}

/// The host's account files, as text.
struct HostAccounts {
    passwd: String,
    group: String,
    subuid: String,
    subgid: String,
}

impl HostAccounts {
    fn read() -> Result<HostAccounts> {
        // Each must exist: the copy is bound over it.
        let read = |name: &str| {
            let path = Path::new("/etc").join(name);
            fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
        };
        Ok(HostAccounts {
            passwd: read("passwd")?,
            group: read("group")?,
            subuid: read("subuid")?,
            subgid: read("subgid")?,
        })
    }

    /// The account to add: a name neither file knows, the first id from [`FIRST_ID`] that is
    /// no uid or gid, and [`SUBORDINATE_COUNT`] ids from [`FIRST_SUBORDINATE`] up that overlap
    /// no subordinate range and no uid or gid listed.
    fn account(&self) -> Result<Account> {
        for (file, text) in [("passwd", &self.passwd), ("group", &self.group)] {
            if text.lines().any(|l| l.split(':').next() == Some(USER)) {
                bail!("the host's /etc/{file} already has {USER}: the rootless scenario adds its own user");
            }
        }
        let field = |text: &str, n: usize| -> Vec<(u64, u64)> {
            text.lines()
                .filter_map(|l| l.split(':').nth(n)?.trim().parse().ok())
                .map(|id| (id, 1))
                .collect()
        };
        let mut taken = field(&self.passwd, 2);
        taken.extend(field(&self.passwd, 3));
        taken.extend(field(&self.group, 2));
        for text in [&self.subuid, &self.subgid] {
            // A range's owner may be a uid: that uid is taken too (newuidmap would grant its
            // ranges to the user).
            taken.extend(field(text, 0));
            taken.extend(text.lines().filter_map(|l| {
                let mut fields = l.split(':').skip(1);
                let start = fields.next()?.trim().parse().ok()?;
                let count = fields.next()?.trim().parse().ok()?;
                Some((start, count))
            }));
        }
        let id = free_range(&taken, FIRST_ID.into(), 1);
        taken.push((id, 1));
        let subordinate = free_range(&taken, FIRST_SUBORDINATE.into(), SUBORDINATE_COUNT.into());
        let fits = |n: u64, size: u32| n + u64::from(size) <= u64::from(u32::MAX);
        if !fits(id, 1) || !fits(subordinate, SUBORDINATE_COUNT) {
            bail!("no free uid or subordinate range for {USER} on this host");
        }
        Ok(Account {
            id: id as u32,
            subordinate: subordinate as u32,
        })
    }

    /// Each account file with the user's line added (`home` its home directory).
    fn extended(&self, account: Account, home: &Path) -> [(&'static str, String); 4] {
        let Account { id, subordinate } = account;
        let range = format!("{USER}:{subordinate}:{SUBORDINATE_COUNT}");
        let add = |text: &str, line: &str| {
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out + line + "\n"
        };
        [
            (
                "passwd",
                add(
                    &self.passwd,
                    &format!(
                        "{USER}:x:{id}:{id}:cargo xtask engines:{}:/bin/sh",
                        home.display()
                    ),
                ),
            ),
            ("group", add(&self.group, &format!("{USER}:x:{id}:"))),
            ("subuid", add(&self.subuid, &range)),
            ("subgid", add(&self.subgid, &range)),
        ]
    }
}

/// The lowest start from `from` of `size` ids overlapping none of `taken` (start, count).
fn free_range(taken: &[(u64, u64)], from: u64, size: u64) -> u64 {
    let mut start = from;
    while let Some(&(s, n)) = taken
        .iter()
        .find(|&&(s, n)| s < start + size && start < s + n)
    {
        start = s + n;
    }
    start
}

/// The script each podman command runs in its new mount namespace: the copies bound over the
/// originals, then its arguments as the user.
fn enter_script(account: Account, binds: &[(PathBuf, PathBuf)]) -> Result<String> {
    let mut script = format!(
        "#!/bin/sh\n\
         # Written by cargo xtask engines: runs its arguments as {USER}, in a mount namespace of\n\
         # their own (unshare --mount) where the account files naming {USER} are bound over the\n\
         # host's.\n\
         set -e\n"
    );
    for (copy, original) in binds {
        script += &format!("mount --bind {} {}\n", quote(copy)?, quote(original)?);
    }
    let id = account.id;
    script += &format!("exec setpriv --reuid {id} --regid {id} --init-groups \"$@\"\n");
    Ok(script)
}

/// `path` in single quotes for sh.
fn quote(path: &Path) -> Result<String> {
    let text = path.display().to_string();
    if text.contains('\'') {
        bail!("{text}: a path with a single quote");
    }
    Ok(format!("'{text}'"))
}

/// A rootless podman for one runtime, in its directory. Dropping it ends what runs in
/// podman's user namespace and removes the directory.
pub struct Rootless {
    dir: PathBuf,
    pub account: Account,
    pub podman: Podman,
    /// The runtime as the user's podman knows it: its name, and a copy of its binary.
    pub runtime: Runtime,
    /// The image tarball, copied.
    pub image: PathBuf,
    /// A directory the user owns, for a bind mount.
    pub data: PathBuf,
    /// The user's home directory.
    pub home: PathBuf,
    /// The user's `XDG_RUNTIME_DIR`.
    pub runtime_dir: PathBuf,
}

impl Rootless {
    /// Makes the user, its directories and podman's configuration (`netns` the stand-in
    /// host's), for `runtime`, with the image `tarball` to import.
    pub fn setup(netns: &Path, runtime: &Runtime, tarball: &Path) -> Result<Rootless> {
        let temp = std::env::temp_dir();
        reachable(&temp)?;
        sweep_stale(&temp);
        let host = HostAccounts::read()?;
        let account = host.account()?;
        let dir = temp.join(format!("{PREFIX}{}", std::process::id()));
        if dir.exists() {
            end_processes(&dir);
            remove(&dir)?;
        }
        make_dir(&dir, 0o755, None)?;
        let made = Rootless::fill(&dir, netns, runtime, tarball, &host, account);
        if made.is_err() {
            let _ = remove(&dir);
        }
        made
    }

    fn fill(
        dir: &Path,
        netns: &Path,
        runtime: &Runtime,
        tarball: &Path,
        host: &HostAccounts,
        account: Account,
    ) -> Result<Rootless> {
        let id = Some(account.id);
        let home = dir.join("home");
        let runtime_dir = dir.join("run");
        make_dir(&dir.join("etc"), 0o755, None)?;
        make_dir(&dir.join("bin"), 0o755, None)?;
        make_dir(&home, 0o700, id)?;
        make_dir(&runtime_dir, 0o700, id)?;
        let data = dir.join("data");
        make_dir(&data, 0o755, id)?;
        let mut binds = Vec::new();
        for (name, text) in host.extended(account, &home) {
            let copy = dir.join("etc").join(name);
            fs::write(&copy, text).with_context(|| format!("write {}", copy.display()))?;
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o644))?;
            binds.push((copy, Path::new("/etc").join(name)));
        }
        let script = dir.join("as-user");
        fs::write(&script, enter_script(account, &binds)?)?;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
        // The runtime as the user's podman knows it: its name, a copy of its binary.
        let copy = Runtime {
            name: runtime.name.clone(),
            path: dir.join("bin").join(&runtime.name),
        };
        fs::copy(&runtime.path, &copy.path)
            .with_context(|| format!("copy {}", runtime.path.display()))?;
        fs::set_permissions(&copy.path, fs::Permissions::from_mode(0o755))?;
        let image = dir.join("image.tar");
        fs::copy(tarball, &image).with_context(|| format!("copy {}", tarball.display()))?;
        fs::set_permissions(&image, fs::Permissions::from_mode(0o644))?;
        // No cgroup parent: rootless podman makes no cgroups on cgroup v1, and none is asked.
        let podman_dir = dir.join("podman");
        let mut podman = Podman::setup(&podman_dir, netns, "", std::slice::from_ref(&copy))?;
        chown_tree(&podman_dir, account.id)?;
        let text = |path: &Path| path.display().to_string();
        podman.user = Some(AsUser {
            script,
            env: vec![
                (
                    "PATH",
                    "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into(),
                ),
                ("HOME", text(&home)),
                ("USER", USER.into()),
                ("LOGNAME", USER.into()),
                ("XDG_RUNTIME_DIR", text(&runtime_dir)),
            ],
        });
        Ok(Rootless {
            dir: dir.to_owned(),
            account,
            podman,
            runtime: copy,
            image,
            data,
            home,
            runtime_dir,
        })
    }

    /// Where this podman and the runtimes it runs keep what they know of containers.
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.podman.state_dirs();
        dirs.push(self.runtime_dir.clone());
        dirs
    }

    /// Ends what runs in podman's user namespace and removes the directory; what ran there
    /// besides podman's pause process.
    pub fn remove(mut self) -> Result<Vec<String>> {
        let dir = std::mem::take(&mut self.dir);
        let ended = end_processes(&dir);
        remove(&dir)?;
        Ok(ended)
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            end_processes(&self.dir);
            let _ = remove(&self.dir);
        }
    }
}

fn make_dir(path: &Path, mode: u32, owner: Option<u32>) -> Result<()> {
    fs::create_dir(path).with_context(|| format!("create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    if let Some(id) = owner {
        lchown(path, Some(id), Some(id)).with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// `chown -R id:id path`, links not followed.
fn chown_tree(path: &Path, id: u32) -> Result<()> {
    lchown(path, Some(id), Some(id)).with_context(|| format!("chown {}", path.display()))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), id)?;
        }
    }
    Ok(())
}

/// Fails unless every directory from `/` to `dir` lets others through.
fn reachable(dir: &Path) -> Result<()> {
    for ancestor in dir.ancestors() {
        let mode = fs::metadata(ancestor)
            .with_context(|| format!("stat {}", ancestor.display()))?
            .mode();
        if mode & 0o001 == 0 {
            bail!(
                "{} is closed to other users (mode {:o}): the rootless scenario's user cannot \
                 reach the temp dir {}; set TMPDIR to a directory it can",
                ancestor.display(),
                mode & 0o7777,
                dir.display()
            );
        }
    }
    Ok(())
}

/// Ends every process in the user namespace of the pause process recorded under `dir`, the
/// pause process last, and any process naming `dir`; what it ended besides the pause process.
fn end_processes(dir: &Path) -> Vec<String> {
    let pause = fs::read_to_string(dir.join(PAUSE_PID))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|&pid| is_pause(pid, dir));
    let namespace = pause.and_then(|pid| fs::read_link(format!("/proc/{pid}/ns/user")).ok());
    let marker = dir.display().to_string();
    let mut ended = Vec::new();
    let mut pids = Vec::new();
    for (pid, cmdline) in host::processes() {
        if Some(pid) == pause {
            continue;
        }
        let inside =
            namespace.is_some() && fs::read_link(format!("/proc/{pid}/ns/user")).ok() == namespace;
        if (inside || cmdline.contains(&marker)) && !gone(pid) {
            ended.push(format!(
                "process {pid} ({})",
                cmdline.chars().take(120).collect::<String>()
            ));
            let _ = kill(pid, libc::SIGKILL);
            pids.push(pid);
        }
    }
    pids.extend(pause);
    if let Some(pid) = pause {
        let _ = kill(pid, libc::SIGKILL);
    }
    wait_for(Duration::from_secs(10), || {
        pids.iter().all(|&p| gone(p)).then_some(())
    });
    ended
}

/// Whether `pid` is podman's pause process (`catatonit -P`, or podman's own) of the user
/// owning `dir`'s `run`.
fn is_pause(pid: u32, dir: &Path) -> bool {
    let Ok(owner) = fs::metadata(dir.join("run")).map(|m| m.uid()) else {
        return false;
    };
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let uid = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next()?.parse::<u32>().ok())
        });
    matches!(comm.trim(), "catatonit" | "podman pause") && uid == Some(owner)
}

fn remove(dir: &Path) -> Result<()> {
    fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))
}

/// Removes what rootless runs of earlier, interrupted `cargo xtask engines` left in `temp`
/// (their harness's pid is gone), ending their processes first.
fn sweep_stale(temp: &Path) {
    for entry in fs::read_dir(temp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        println!("    removing a rootless run's directory a previous run left: {name}");
        end_processes(&entry.path());
        let _ = remove(&entry.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(passwd: &str, group: &str, subuid: &str, subgid: &str) -> HostAccounts {
        HostAccounts {
            passwd: passwd.into(),
            group: group.into(),
            subuid: subuid.into(),
            subgid: subgid.into(),
        }
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/false\n";

    #[test]
    fn on_a_host_without_ranges_the_defaults() {
        let account = host(PASSWD, "root:x:0:\n", "", "").account().unwrap();
        assert_eq!(
            account,
            Account {
                id: 4711,
                subordinate: 100_000
            }
        );
    }

    #[test]
    fn ids_and_ranges_in_use_are_passed_over() {
        let passwd = format!("{PASSWD}a:x:4711:100:::\nb:x:200:4712:::\n");
        let group = "g:x:4713:\nbig:x:120000:\n";
        let subuid = "a:100000:65536\n";
        let subgid = "b:165536:10\n";
        let account = host(&passwd, group, subuid, subgid).account().unwrap();
        // 4711 is a uid, 4712 a gid, 4713 a group; 100000-165545 are subordinate ranges
        // (with group 120000 inside them).
        assert_eq!(
            account,
            Account {
                id: 4714,
                subordinate: 165_546
            }
        );
    }

    #[test]
    fn a_uid_owning_ranges_is_taken() {
        let account = host(PASSWD, "", "4711:300000:10\n", "").account().unwrap();
        assert_eq!(account.id, 4712);
    }

    #[test]
    fn the_name_must_be_free() {
        let passwd = format!("{PASSWD}{USER}:x:9:9:::\n");
        let error = host(&passwd, "", "", "").account().unwrap_err();
        assert!(
            error.to_string().contains("/etc/passwd already has"),
            "{error}"
        );
    }

    #[test]
    fn ranges_skip_every_overlap() {
        assert_eq!(free_range(&[], 10, 5), 10);
        assert_eq!(free_range(&[(12, 1)], 10, 5), 13);
        assert_eq!(free_range(&[(15, 1)], 10, 5), 10);
        assert_eq!(free_range(&[(14, 2), (16, 4), (5, 6)], 10, 5), 20);
    }

    #[test]
    fn the_files_gain_one_line_each() {
        let hosts = host("root:x:0:0::/root:/bin/sh", "root:x:0:\n", "", "");
        let account = Account {
            id: 4711,
            subordinate: 100_000,
        };
        let files = hosts.extended(account, Path::new("/tmp/r/home"));
        assert_eq!(
            files[0].1,
            format!("root:x:0:0::/root:/bin/sh\n{USER}:x:4711:4711:cargo xtask engines:/tmp/r/home:/bin/sh\n")
        );
        assert_eq!(files[1].1, format!("root:x:0:\n{USER}:x:4711:\n"));
        assert_eq!(files[2], ("subuid", format!("{USER}:100000:65536\n")));
        assert_eq!(files[3], ("subgid", format!("{USER}:100000:65536\n")));
    }

    #[test]
    fn the_script_binds_then_becomes_the_user() {
        let account = Account {
            id: 4711,
            subordinate: 100_000,
        };
        let binds = [(
            PathBuf::from("/tmp/r/etc/passwd"),
            PathBuf::from("/etc/passwd"),
        )];
        let script = enter_script(account, &binds).unwrap();
        let body: Vec<&str> = script.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "set -e",
                "mount --bind '/tmp/r/etc/passwd' '/etc/passwd'",
                "exec setpriv --reuid 4711 --regid 4711 --init-groups \"$@\""
            ]
        );
        let quoted = [(PathBuf::from("/tmp/it's"), PathBuf::from("/etc/passwd"))];
        assert!(enter_script(account, &quoted).is_err());
    }
}
