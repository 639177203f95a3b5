//! The Alpine cases, run when the template is an Alpine tree (`/etc/alpine-release`): the tree
//! is whole inside a container. apk runs offline and lists the packages its database holds;
//! `/etc/os-release` names Alpine; musl's loader runs the dynamically linked busybox; a user from
//! `/etc/passwd` can be switched to with `su`, writes to the sticky `/tmp` and cannot read
//! `/etc/shadow`; musl's `getent` reads the accounts.
//!
//! What the checks expect is read from the template on the host, before any container runs.

use std::fs;
use std::path::Path;

use crate::check::{expect_exit, mismatch, Check};
use crate::harness::Run;
use crate::suite::{Case, ConfigFile};

/// The seed without network and cgroups, as the other cases run it.
const SEED: &str = "seed-no-net-cgroups";
/// musl's dynamic loader on x86-64.
const MUSL_LOADER: &str = "/lib/ld-musl-x86_64.so.1";

/// What the template says about itself.
#[derive(Debug, Clone)]
pub struct Alpine {
    /// `/etc/alpine-release`.
    pub release: String,
    /// The packages apk's database holds, sorted.
    pub packages: Vec<String>,
    /// root's line of `/etc/passwd`.
    root_account: String,
    /// A user of `/etc/passwd` other than root, for `su`.
    user: Option<User>,
}

#[derive(Debug, Clone)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    /// The name of the primary group, from `/etc/group`.
    group: String,
}

impl Alpine {
    /// The template's Alpine facts, or None when it is no Alpine tree.
    pub fn read(template: &Path) -> Option<Alpine> {
        let read = |path: &str| fs::read_to_string(template.join(path)).unwrap_or_default();
        let release = read("etc/alpine-release").trim().to_string();
        if release.is_empty() {
            return None;
        }
        let mut packages: Vec<String> = read("lib/apk/db/installed")
            .lines()
            .filter_map(|line| line.strip_prefix("P:"))
            .map(str::to_string)
            .collect();
        packages.sort();
        let passwd = read("etc/passwd");
        Some(Alpine {
            release,
            packages,
            root_account: passwd
                .lines()
                .find(|line| line.starts_with("root:"))
                .unwrap_or_default()
                .to_string(),
            user: User::first_in(&passwd, &read("etc/group")),
        })
    }

    /// `alpine 3.23.6`.
    pub fn label(&self) -> String {
        format!("alpine {}", self.release)
    }
}

impl User {
    /// The first account with a uid from 100 to 65533 (a user, neither a system account nor
    /// `nobody`), with its primary group's name.
    fn first_in(passwd: &str, group: &str) -> Option<User> {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let (name, uid, gid) = (*fields.first()?, fields.get(2)?, fields.get(3)?);
            let (uid, gid): (u32, u32) = (uid.parse().ok()?, gid.parse().ok()?);
            if !(100..65534).contains(&uid) {
                return None;
            }
            let group = group.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.get(2)? == &gid.to_string()).then(|| fields[0].to_string())
            })?;
            Some(User {
                name: name.to_string(),
                uid,
                gid,
                group,
            })
        })
    }

    /// What busybox `id` prints for the user, up to the supplementary groups.
    fn id_line(&self) -> String {
        format!(
            "uid={}({}) gid={}({})",
            self.uid, self.name, self.gid, self.group
        )
    }
}

pub fn cases(alpine: &Alpine) -> Vec<Case> {
    let mut cases = vec![release(alpine), apk(alpine), musl(), getent(alpine)];
    cases.extend(alpine.user.clone().map(su));
    cases
}

fn command(name: &str, command: &[&str]) -> Case {
    Case::new(name, ConfigFile::Fixture(SEED), command)
}

/// The lines of stdout, after nsinit and the command exited 0.
fn lines_of(run: &Run) -> Result<Vec<&str>, crate::check::Mismatch> {
    expect_exit(run, 0)?;
    Ok(run.stdout.lines().collect())
}

/// `/etc/alpine-release` and `/etc/os-release` read inside.
fn release(alpine: &Alpine) -> Case {
    let (release, version_line) = (
        alpine.release.clone(),
        format!("VERSION_ID={}", alpine.release),
    );
    command(
        "alpine-release",
        &["/bin/cat", "/etc/alpine-release", "/etc/os-release"],
    )
    .checks([
        Check::new("alpine/release", move |run| {
            let lines = lines_of(run)?;
            match lines.first() {
                Some(first) if *first == release => Ok(()),
                first => Err(mismatch(
                    format!("/etc/alpine-release {release:?}"),
                    format!("{first:?}"),
                )),
            }
        }),
        Check::new("alpine/os-release-id", move |run| {
            let lines = lines_of(run)?;
            if lines.contains(&"ID=alpine") && lines.contains(&version_line.as_str()) {
                return Ok(());
            }
            Err(mismatch(
                format!("ID=alpine and {version_line} in /etc/os-release"),
                format!("{:?}", run.stdout),
            ))
        }),
    ])
}

/// apk, offline, lists what its database holds, and says nothing on stderr (a repository it
/// tried to reach would be a warning there).
fn apk(alpine: &Alpine) -> Case {
    let packages = alpine.packages.clone();
    command("alpine-apk", &["/sbin/apk", "--no-network", "info"]).checks([
        Check::new("alpine/apk-offline", |run| {
            expect_exit(run, 0)?;
            match run.stderr.trim() {
                "" => Ok(()),
                said => Err(mismatch("nothing on stderr", said)),
            }
        }),
        Check::new("alpine/apk-info-packages", move |run| {
            let mut listed = lines_of(run)?;
            listed.sort_unstable();
            if listed == packages {
                return Ok(());
            }
            Err(mismatch(
                format!(
                    "the {} packages of its database: {}",
                    packages.len(),
                    packages.join(" ")
                ),
                listed.join(" "),
            ))
        }),
    ])
}

/// The process's own mappings: busybox, linked dynamically, run by musl's loader.
fn musl() -> Case {
    command("alpine-musl", &["/bin/cat", "/proc/self/maps"]).checks([Check::new(
        "alpine/musl-loader",
        |run| {
            let lines = lines_of(run)?;
            let mapped = |path: &str| lines.iter().any(|line| line.ends_with(&format!(" {path}")));
            if mapped(MUSL_LOADER) && mapped("/bin/busybox") {
                return Ok(());
            }
            let files: Vec<&str> = lines
                .iter()
                .filter_map(|line| line.split_whitespace().nth(5))
                .filter(|path| path.starts_with('/'))
                .collect();
            Err(mismatch(
                format!("/bin/busybox and {MUSL_LOADER} mapped"),
                format!("{files:?}"),
            ))
        },
    )])
}

/// musl-utils' `getent` finds root as `/etc/passwd` has it.
fn getent(alpine: &Alpine) -> Case {
    let root = alpine.root_account.clone();
    command("alpine-getent", &["/usr/bin/getent", "passwd", "root"]).checks([Check::new(
        "alpine/getent-root",
        move |run| {
            let lines = lines_of(run)?;
            if lines == [root.as_str()] {
                return Ok(());
            }
            Err(mismatch(format!("{root:?}"), format!("{:?}", run.stdout)))
        },
    )])
}

/// busybox `su` to the user: it is who `id` says, it can write to `/tmp` (sticky, 1777) and
/// cannot read `/etc/shadow` (root:shadow 0640), so owners and modes survived the tarball and
/// the case's copy.
fn su(user: User) -> Case {
    let script = "id; touch /tmp/by-user && stat -c %u:%a /tmp/by-user /tmp; cat /etc/shadow";
    let name = user.name.clone();
    let (id_line, uid) = (user.id_line(), user.uid);
    command(
        "alpine-su",
        &["/bin/su", "-s", "/bin/sh", "-c", script, &name],
    )
    .checks([
        Check::new("alpine/su-to-user", move |run| {
            match run.stdout.lines().next() {
                Some(line) if line.starts_with(&id_line) => Ok(()),
                _ => Err(mismatch(
                    format!("`id` printing {id_line}"),
                    format!("stdout {:?}; {}", run.stdout, run.summary()),
                )),
            }
        }),
        Check::new("alpine/user-writes-sticky-tmp", move |run| {
            let wanted = [format!("{uid}:644"), "0:1777".to_string()];
            let saw: Vec<&str> = run.stdout.lines().skip(1).take(2).collect();
            if saw == wanted {
                return Ok(());
            }
            Err(mismatch(
                format!("a file of uid {uid} in /tmp, mode 1777 ({wanted:?})"),
                format!("{saw:?}; {}", run.summary()),
            ))
        }),
        Check::new("alpine/user-cannot-read-shadow", |run| {
            expect_exit(run, 1)?;
            if run.stderr.contains("/etc/shadow") && run.stderr.contains("Permission denied") {
                return Ok(());
            }
            Err(mismatch(
                "cat /etc/shadow refused: Permission denied",
                run.summary(),
            ))
        }),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          daemon:x:2:2:daemon:/sbin:/sbin/nologin\n\
                          guest:x:405:100:guest:/dev/null:/sbin/nologin\n\
                          nobody:x:65534:65534:nobody:/:/sbin/nologin\n";
    const GROUP: &str = "root:x:0:root\nusers:x:100:games\nnobody:x:65534:\n";

    #[test]
    fn the_user_is_the_first_non_system_account() {
        let user = User::first_in(PASSWD, GROUP).unwrap();
        assert_eq!(user.id_line(), "uid=405(guest) gid=100(users)");
        assert!(User::first_in("root:x:0:0::/:/bin/sh\n", GROUP).is_none());
    }

    #[test]
    fn a_tree_without_alpine_release_is_no_alpine() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path();
        assert!(Alpine::read(tree).is_none());
        fs::create_dir_all(tree.join("etc")).unwrap();
        fs::create_dir_all(tree.join("lib/apk/db")).unwrap();
        fs::write(tree.join("etc/alpine-release"), "3.23.6\n").unwrap();
        fs::write(tree.join("etc/passwd"), PASSWD).unwrap();
        fs::write(tree.join("etc/group"), GROUP).unwrap();
        fs::write(
            tree.join("lib/apk/db/installed"),
            "P:musl\nV:1\n\nP:busybox\nV:1\n",
        )
        .unwrap();
        let alpine = Alpine::read(tree).unwrap();
        assert_eq!(alpine.label(), "alpine 3.23.6");
        assert_eq!(alpine.packages, ["busybox", "musl"]);
        assert_eq!(alpine.root_account, "root:x:0:0:root:/root:/bin/sh");
        assert_eq!(cases(&alpine).len(), 5);
    }
}
