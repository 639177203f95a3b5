//! User namespaces (issue 16): container root that is another uid on the host, and nsinit
//! run by a plain user (rootless). Each scenario runs in a full copy of the case directory
//! (no inode shared with the template, which other cases use) owned by the mapped range, as
//! a user of a user namespace prepares a rootfs once.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::{mismatch, Check, Verdict};
use crate::harness::Run;
use crate::stage::{Process, Stage};
use crate::suite::Case;

/// The host uid and gid container root is mapped to.
const HOST_ID: u32 = 300_000;
/// The plain user rootless runs as (no account needed: its own id alone is mapped).
const PLAIN_USER: u32 = 1_000;
/// How long each scenario may take.
const TIMEOUT: Duration = Duration::from_secs(60);

pub fn cases() -> Vec<Case> {
    vec![mapped(), namespaced_capabilities(), rootless()]
}

/// The seed without network and cgroups, with a user namespace of `size` ids at `host`.
fn config(host: u32, size: u32, extra: &str) -> String {
    format!(
        r#"{{"hostname": "koye",
  "environment": ["HOME=/", "PATH=/bin:/usr/bin:/sbin:/usr/sbin"],
  "namespaces": ["NEWIPC", "NEWNS", "NEWPID", "NEWUTS", "NEWNET", "NEWUSER"],
  "uid_mappings": [{{"container_id": 0, "host_id": {host}, "size": {size}}}],
  "gid_mappings": [{{"container_id": 0, "host_id": {host}, "size": {size}}}]{extra}}}"#
    )
}

/// The seed's capability drop list.
const SEED_DROPS: &str = r#",
  "capabilities": ["SETPCAP", "SYS_MODULE", "SYS_RAWIO", "SYS_PACCT", "SYS_ADMIN", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "AUDIT_WRITE", "AUDIT_CONTROL",
    "MAC_OVERRIDE", "MAC_ADMIN"]"#;

/// A full copy of `from` at `to`, every entry owned by `owner`:`owner`, removed on drop.
struct OwnedCopy {
    dir: PathBuf,
}

impl OwnedCopy {
    fn make(from: &Path, suffix: &str, owner: u32, config: &str) -> Result<OwnedCopy, String> {
        let dir = from.with_file_name(format!(
            "{}-{suffix}",
            from.file_name().unwrap_or_default().to_string_lossy()
        ));
        let copy = OwnedCopy { dir };
        fixtures::copy_owned(from, &copy.dir, owner)
            .map_err(|e| format!("copy {} owned by {owner}: {e}", from.display()))?;
        copy.write_config(config)?;
        Ok(copy)
    }

    fn write_config(&self, config: &str) -> Result<(), String> {
        fs::write(self.dir.join("container.json"), config)
            .map_err(|e| format!("write container.json: {e}"))
    }
}

impl Drop for OwnedCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What the mapped scenario saw.
struct Mapped {
    first: Run,
    made_owner: Result<(u32, u32), String>,
    pid1_uids: Result<String, String>,
    joined: Run,
}

/// Container root mapped to [`HOST_ID`]: ids and maps inside, ownership on the host, a host
/// file of real root closed, the seed's protections, PID 1's uid on the host, and a join.
fn mapped() -> Case {
    let play = |stage: &mut Stage| -> Result<Mapped, String> {
        let copy = OwnedCopy::make(
            stage.dir(),
            "userns",
            HOST_ID,
            &config(HOST_ID, 65_536, SEED_DROPS),
        )?;
        // A file of the host's real root, mode 0600, in the container's view.
        let secret = copy.dir.join("secret");
        fs::write(&secret, "host root only\n").map_err(|e| e.to_string())?;
        std::os::unix::fs::lchown(&secret, Some(0), Some(0)).map_err(|e| e.to_string())?;
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        let own = Stage::new(stage.nsinit(), &copy.dir, TIMEOUT);
        let first = own.run(&[
            "/bin/sh",
            "-c",
            "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/made; \
             cat /secret 2>/dev/null; echo secret=$?; stat -c %u /secret; \
             grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ]);
        let made_owner = fs::metadata(copy.dir.join("tmp/made"))
            .map(|m| (m.uid(), m.gid()))
            .map_err(|e| format!("tmp/made on the host: {e}"));
        let mut pid1 = own.start(&["/bin/sleep", "60"])?;
        let nspid = copy.dir.join(".nspid");
        let pid = own.until(".nspid", || {
            fs::read_to_string(&nspid).ok()?.trim().parse::<i32>().ok()
        })?;
        let pid1_uids = fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| e.to_string())
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
                    .ok_or_else(|| "no Uid line".to_string())
            });
        let joined = own.run(&[
            "/bin/sh",
            "-c",
            "id -u; cat /proc/self/uid_map; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ]);
        if let Some(process) = Process::of(pid) {
            process.kill();
        }
        pid1.signal(9);
        own.finish(pid1);
        Ok(Mapped {
            first,
            made_owner,
            pid1_uids,
            joined,
        })
    };
    Case::scenario("userns-mapped", "seed-no-net-cgroups", play).checks([
        lines_check(
            "userns/root-inside",
            |m: &Mapped| &m.first,
            &[0, 1],
            &["0", "0"],
        ),
        lines_check(
            "userns/uid-and-gid-map",
            |m: &Mapped| &m.first,
            &[2, 3],
            &["0 300000 65536", "0 300000 65536"],
        ),
        Check::on_findings(
            "userns/file-owned-by-mapped-host-uid",
            |m: &Mapped| match &m.made_owner {
                Ok(owner) if *owner == (HOST_ID, HOST_ID) => Ok(()),
                other => Err(mismatch(
                    "tmp/made owned by 300000:300000",
                    format!("{other:?}"),
                )),
            },
        ),
        lines_check(
            "userns/host-root-file-closed",
            |m: &Mapped| &m.first,
            &[4, 5],
            &["secret=1", "65534"],
        ),
        lines_check(
            "userns/protections",
            |m: &Mapped| &m.first,
            &[6, 7],
            &["NoNewPrivs: 1", "Seccomp: 2"],
        ),
        Check::on_findings(
            "userns/pid1-is-the-mapped-uid-on-the-host",
            |m: &Mapped| match &m.pid1_uids {
                Ok(uids) if uids == "300000 300000 300000 300000" => Ok(()),
                other => Err(mismatch("Uid: 300000 (all four)", format!("{other:?}"))),
            },
        ),
        lines_check(
            "userns/join-enters-with-protections",
            |m: &Mapped| &m.joined,
            &[0, 1, 2, 3],
            &["0", "0 300000 65536", "NoNewPrivs: 1", "Seccomp: 2"],
        ),
    ])
}

/// What the capabilities scenario saw.
struct Capabilities {
    run: Run,
    /// The host kernel loads modules at all (`/proc/modules`).
    modules: bool,
}

/// Capabilities in a user namespace are the namespace's: with every capability kept and
/// no seccomp filter, root inside mounts a tmpfs (its mount namespace is its own) but loads
/// no module (the kernel's is not): EPERM, where root outside would get as far as the
/// module's format (ENOEXEC).
fn namespaced_capabilities() -> Case {
    let play = |stage: &mut Stage| -> Result<Capabilities, String> {
        let extra = r#", "capabilities": [], "security": {"seccomp": false}"#;
        let copy = OwnedCopy::make(
            stage.dir(),
            "userns-caps",
            HOST_ID,
            &config(HOST_ID, 65_536, extra),
        )?;
        fs::write(copy.dir.join("tmp/junk.ko"), "not a module\n").map_err(|e| e.to_string())?;
        let own = Stage::new(stage.nsinit(), &copy.dir, TIMEOUT);
        let run = own.run(&[
            "/bin/sh",
            "-c",
            "if mount -t tmpfs none /mnt; then echo mounted; else echo not-mounted; fi; \
             insmod /tmp/junk.ko 2>&1; true",
        ]);
        Ok(Capabilities {
            run,
            modules: Path::new("/proc/modules").exists(),
        })
    };
    Case::scenario("userns-capabilities", "seed-no-net-cgroups", play).checks([
        lines_check(
            "userns/caps-mount-tmpfs",
            |c: &Capabilities| &c.run,
            &[0],
            &["mounted"],
        ),
        Check::on_findings("userns/caps-no-module", |c: &Capabilities| {
            let said = lines(&c.run)?.get(1).cloned().unwrap_or_default();
            let refused =
                said.contains("not permitted") || (!c.modules && said.contains("not support"));
            match refused {
                true => Ok(()),
                false => Err(mismatch(
                    "insmod refused with EPERM (or ENOSYS on a kernel without modules)",
                    said,
                )),
            }
        }),
    ])
}

/// What the rootless scenario saw.
struct Rootless {
    run: Run,
    made_owner: Result<u32, String>,
    state_left: Vec<String>,
}

/// nsinit run by [`PLAIN_USER`], its own uid mapped to root: root inside, the file it makes
/// is the user's on the host, `lo` is up, and no state is left.
fn rootless() -> Case {
    let play = |stage: &mut Stage| -> Result<Rootless, String> {
        let copy = OwnedCopy::make(
            stage.dir(),
            "rootless",
            PLAIN_USER,
            &config(PLAIN_USER, 1, ""),
        )?;
        // The user reaches the copy through the case directory's parent.
        let own = Stage::new(stage.nsinit(), &copy.dir, TIMEOUT);
        let run = own.run_as(
            PLAIN_USER,
            PLAIN_USER,
            &[
                "/bin/sh",
                "-c",
                "id -u; cat /proc/self/uid_map; touch /tmp/made; cat /sys/class/net/lo/flags",
            ],
        );
        let made_owner = fs::metadata(copy.dir.join("tmp/made"))
            .map(|m| m.uid())
            .map_err(|e| format!("tmp/made on the host: {e}"));
        let state = std::env::temp_dir().join(format!("nsinit-{PLAIN_USER}"));
        let state_left = fs::read_dir(&state)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let _ = fs::remove_dir(&state);
        Ok(Rootless {
            run,
            made_owner,
            state_left,
        })
    };
    Case::scenario("userns-rootless", "seed-no-net-cgroups", play).checks([
        lines_check(
            "rootless/root-inside",
            |r: &Rootless| &r.run,
            &[0, 1],
            &["0", "0 1000 1"],
        ),
        Check::on_findings("rootless/file-owned-by-the-user", |r: &Rootless| {
            match &r.made_owner {
                Ok(1_000) => Ok(()),
                other => Err(mismatch("tmp/made owned by uid 1000", format!("{other:?}"))),
            }
        }),
        Check::on_findings("rootless/lo-up", |r: &Rootless| {
            let words = words(&r.run)?;
            let flags = words
                .get(4)
                .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
            match flags {
                Some(flags) if flags & 1 == 1 => Ok(()),
                _ => Err(mismatch("lo's flags with IFF_UP", format!("{words:?}"))),
            }
        }),
        Check::on_findings("rootless/no-state-left", |r: &Rootless| {
            match r.state_left.is_empty() {
                true => Ok(()),
                false => Err(mismatch(
                    "nothing in /tmp/nsinit-1000",
                    r.state_left.join(" "),
                )),
            }
        }),
    ])
}

/// The whitespace-normalized lines of a run that exited 0.
fn lines(run: &Run) -> Result<Vec<String>, crate::check::Mismatch> {
    crate::check::expect_exit(run, 0)?;
    Ok(run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect())
}

fn words(run: &Run) -> Result<Vec<String>, crate::check::Mismatch> {
    crate::check::expect_exit(run, 0)?;
    Ok(run.stdout.split_whitespace().map(String::from).collect())
}

/// A check that lines `at` of the run `of` picks are `expected`.
fn lines_check<T: 'static>(
    name: &'static str,
    of: impl Fn(&T) -> &Run + 'static,
    at: &'static [usize],
    expected: &'static [&'static str],
) -> Check {
    Check::on_findings(name, move |found: &T| -> Verdict {
        let lines = lines(of(found))?;
        let seen: Vec<&str> = at
            .iter()
            .map(|&i| lines.get(i).map_or("(missing)", String::as_str))
            .collect();
        match seen == expected {
            true => Ok(()),
            false => Err(mismatch(expected.join(" | "), seen.join(" | "))),
        }
    })
}
