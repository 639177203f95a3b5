//! The protections every container.json gets unless its `security` object turns one off
//! (issue 13): `/proc/sys` and friends read-only, host views masked, device nodes refused
//! (`nodev` rootfs, device rules when the container can make nodes), the default seccomp
//! filter (the "shocker" `open_by_handle_at`, keys, bpf, perf, new user namespaces, `clone3`)
//! and `no_new_privs`. Each is seen from PID 1 and, where a join could differ, from a joined
//! process; each opt-out shows its protection gone.
//!
//! A case is one scenario: the driver plants device nodes in the rootfs's `/tmp`, takes a file
//! handle of a host file outside the rootfs, starts `probe protect` as PID 1, joins it with a
//! second `probe protect`, and ends it. Nothing the probe tries does harm when it works (see
//! [`conformance::protect`]).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use conformance::protect::{
    Attempt, Handle, Report, CORE_PATTERN, MADE_NODE, MASKED_PATHS, OTHER_SYSCTLS, PLANTED_NODES,
    READONLY_PATHS, REFUSED_CALLS, SHOCKER_64, SHOCKER_INT80, SYSRQ_TRIGGER,
};

use crate::check::{expect_eq, mismatch, Check, Verdict};
use crate::harness::Run;
use crate::stage::Stage;
use crate::suite::{Case, ConfigFile};

/// The seed sample without network and cgroups, as the other cases run it: no `security`.
const SEED: &str = "seed-no-net-cgroups";
/// What the host file behind the probe's handle holds.
const HOST_FILE_TEXT: &str = "nsinit-conformance: a host file outside the rootfs\n";
/// The planted nodes by their short names.
const KMSG: &str = "/tmp/planted-kmsg";
const LOOP_CONTROL: &str = "/tmp/planted-loop-control";

pub fn cases() -> Vec<Case> {
    vec![
        defaults(),
        keep_mknod(),
        opt_out_readonly_paths(),
        opt_out_masked_paths(),
        opt_out_devices(),
        opt_out_devices_keep_mknod(),
        opt_out_seccomp(),
        opt_out_no_new_privileges(),
    ]
}

/// What PID 1 and a process joined into it reported.
pub struct Seen {
    pub first: Run,
    pub joined: Run,
}

/// A protect case under `config` (the seed's, changed).
fn case(name: &str, config: ConfigFile) -> Case {
    // The fixture named here is only a placeholder for `config`.
    Case {
        config,
        ..Case::scenario(name, SEED, play)
    }
}

/// The seed with `change` applied.
fn seed_with(change: impl FnOnce(&mut serde_json::Value)) -> ConfigFile {
    let text = fixtures::config(SEED).expect("the seed fixture exists");
    let mut json: serde_json::Value = serde_json::from_str(text).expect("the seed fixture parses");
    change(&mut json);
    ConfigFile::Derived(serde_json::to_string_pretty(&json).expect("JSON values serialize"))
}

/// The seed with `security.KEY` false.
fn opting_out(key: &str) -> impl FnOnce(&mut serde_json::Value) + '_ {
    move |json| json["security"] = serde_json::json!({ key: false })
}

/// The seed keeping `MKNOD` (it drops it): the container can make nodes.
fn keeping_mknod(json: &mut serde_json::Value) {
    if let Some(dropped) = json["capabilities"].as_array_mut() {
        dropped.retain(|cap| cap != "MKNOD");
    }
}

/// Plant the nodes, take the handle, start PID 1, join it, end it.
fn play(stage: &mut Stage) -> Result<Seen, String> {
    plant_nodes(stage.dir())?;
    let host_file = HostFile::create(stage.dir())?;
    let handle = host_file.handle.to_arg();
    let mut nsinit = stage.start(&[
        "/probe",
        "protect",
        "--handle",
        &handle,
        "--then-sleep",
        "600",
    ])?;
    let pid1 = stage.probe_under(&mut nsinit)?;
    stage.adopt(pid1);
    stage.until("PID 1's report", || {
        if nsinit.stdout_so_far().contains('\n') {
            return Some(Ok(()));
        }
        nsinit
            .ended()
            .map(|outcome| Err(format!("{} before reporting", outcome.describe())))
    })??;
    let joined = stage.run(&["/probe", "protect", "--handle", &handle]);
    pid1.kill();
    let first = stage.finish(nsinit);
    Ok(Seen { first, joined })
}

/// Make [`PLANTED_NODES`] in the rootfs, as an image could ship them.
fn plant_nodes(rootfs: &Path) -> Result<(), String> {
    for &(path, major, minor) in PLANTED_NODES {
        let node = rootfs.join(path.trim_start_matches('/'));
        if let Some(parent) = node.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        mknod(&node, major, minor).map_err(|e| format!("plant {}: {e}", node.display()))?;
    }
    Ok(())
}

fn mknod(path: &Path, major: u32, minor: u32) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())?;
    let mode = libc::S_IFCHR | 0o666;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    match unsafe { libc::mknod(path.as_ptr(), mode, libc::makedev(major, minor)) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// A file next to the case directory, outside the rootfs, and a handle of it; removed when
/// dropped.
struct HostFile {
    path: PathBuf,
    handle: Handle,
}

impl HostFile {
    fn create(rootfs: &Path) -> Result<HostFile, String> {
        let mut name = rootfs.file_name().unwrap_or_default().to_os_string();
        name.push(".host-file");
        let path = rootfs.with_file_name(name);
        fs::write(&path, HOST_FILE_TEXT).map_err(|e| format!("write {}: {e}", path.display()))?;
        let mut file = HostFile {
            handle: Handle {
                handle_type: 0,
                bytes: Vec::new(),
            },
            path,
        };
        file.handle = handle_of(&file.path)
            .map_err(|e| format!("name_to_handle_at {}: {e}", file.path.display()))?;
        Ok(file)
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// `name_to_handle_at(AT_FDCWD, path, ...)`: the handle `open_by_handle_at` takes.
fn handle_of(path: &Path) -> io::Result<Handle> {
    /// `MAX_HANDLE_SZ`.
    const MAX_BYTES: usize = 128;
    #[repr(C)]
    struct FileHandle {
        handle_bytes: u32,
        handle_type: i32,
        f_handle: [u8; MAX_BYTES],
    }
    let path = CString::new(path.as_os_str().as_bytes())?;
    let mut fh = FileHandle {
        handle_bytes: MAX_BYTES as u32,
        handle_type: 0,
        f_handle: [0; MAX_BYTES],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `path` is NUL-terminated; `fh` is a `struct file_handle` with room for
    // `handle_bytes` bytes; `mount_id` is ours to write. All outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut fh,
            &mut mount_id,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (fh.handle_bytes as usize).min(MAX_BYTES);
    Ok(Handle {
        handle_type: fh.handle_type,
        bytes: fh.f_handle[..len].to_vec(),
    })
}

/// A check on PID 1's report.
fn first(name: impl Into<String>, verify: impl Fn(&Report) -> Verdict + 'static) -> Check {
    Check::on_output(name, verify).about(|s: &Seen| &s.first)
}

/// A check on the joined process's report; it must not be PID 1 itself.
fn joined(name: impl Into<String>, verify: impl Fn(&Report) -> Verdict + 'static) -> Check {
    Check::on_output(name, move |r: &Report| match r.pid {
        2.. => verify(r),
        pid => Err(mismatch(
            "a report from a joined process",
            format!("pid {pid}"),
        )),
    })
    .about(|s: &Seen| &s.joined)
}

/// The same check on PID 1 (`PREFIX/WHAT`) and on the joined process (`PREFIX/join/WHAT`).
fn both(prefix: &str, what: &str, verify: fn(&Report) -> Verdict) -> [Check; 2] {
    [
        first(format!("{prefix}/{what}"), verify),
        joined(format!("{prefix}/join/{what}"), verify),
    ]
}

/// Failed with one of `errnos` (`EROFS`, `killed by SIGSYS`).
fn refused(attempt: Option<&Attempt>, what: &str, errnos: &[&str]) -> Verdict {
    let Some(attempt) = attempt else {
        return Err(mismatch(format!("a report on {what}"), "none"));
    };
    if errnos.iter().any(|errno| attempt.failed_with(errno)) {
        return Ok(());
    }
    Err(mismatch(
        format!("{what} refused with {}", errnos.join(" or ")),
        attempt.describe(),
    ))
}

/// Refused with `errnos`, or missing (ENOENT) on this kernel.
fn refused_where_present(attempt: Option<&Attempt>, what: &str, errnos: &[&str]) -> Verdict {
    match attempt {
        Some(a) if a.failed_with("ENOENT") => Ok(()),
        _ => refused(attempt, what, errnos),
    }
}

/// Worked, or missing (ENOENT) on this kernel.
fn works_where_present(attempt: Option<&Attempt>, what: &str) -> Verdict {
    match attempt {
        Some(a) if a.ok || a.failed_with("ENOENT") => Ok(()),
        Some(a) => Err(mismatch(format!("{what} to work"), a.describe())),
        None => Err(mismatch(format!("a report on {what}"), "none")),
    }
}

/// `/proc/self/status` showed `WHAT: WANTED`.
fn status_is(what: &str, saw: Option<u32>, wanted: u32) -> Verdict {
    match saw {
        Some(saw) if saw == wanted => Ok(()),
        Some(saw) => Err(mismatch(
            format!("{what}: {wanted}"),
            format!("{what}: {saw}"),
        )),
        None => Err(mismatch(
            format!("{what}: {wanted}"),
            format!("no {what} line"),
        )),
    }
}

/// Everything on by default: the seed as it is.
fn defaults() -> Case {
    let mut checks = vec![
        first("protect/core-pattern-readonly", |r| {
            refused(
                r.write(CORE_PATTERN),
                "opening core_pattern for writing",
                &["EROFS"],
            )
        }),
        first("protect/sysrq-trigger-readonly", |r| {
            refused_where_present(
                r.write(SYSRQ_TRIGGER),
                "opening /proc/sysrq-trigger for writing",
                &["EROFS"],
            )
        }),
        first("protect/proc-sys-readonly", |r| {
            OTHER_SYSCTLS.iter().try_for_each(|path| {
                refused_where_present(
                    r.write(path),
                    &format!("opening {path} for writing"),
                    &["EROFS"],
                )
            })
        }),
        first("protect/readonly-paths-mounted-ro", |r| {
            let wrong: Vec<String> = r
                .readonly_present
                .iter()
                .filter_map(|path| match r.mount_at(path) {
                    Some(m) if m.has_option("ro") => None,
                    Some(m) => Some(format!("{path} mounted {}", m.options)),
                    None => Some(format!("{path} no mount")),
                })
                .collect();
            match wrong.is_empty() {
                true => Ok(()),
                false => Err(mismatch(
                    format!("a read-only mount on each of {:?}", r.readonly_present),
                    wrong.join(", "),
                )),
            }
        }),
    ];
    checks.extend(MASKED_PATHS.iter().map(|&path| {
        first(format!("protect/masked{path}"), move |r| {
            let Some(shown) = r.masked(path) else {
                return Err(mismatch(format!("a report on {path}"), "none"));
            };
            // A path this kernel lacks has nothing to hide.
            if shown.is_missing() || (shown.mounted && shown.is_empty()) {
                return Ok(());
            }
            Err(mismatch(
                format!("{path} masked: a mount on it, reading empty"),
                shown.describe(),
            ))
        })
    }));
    checks.extend([
        first("protect/dev/planted-kmsg-refused", |r| {
            refused(
                r.planted(KMSG),
                "opening a planted 1:11",
                &["EACCES", "EPERM"],
            )
        }),
        first("protect/dev/planted-loop-control-refused", |r| {
            refused(
                r.planted(LOOP_CONTROL),
                "opening a planted 10:237",
                &["EACCES", "EPERM"],
            )
        }),
    ]);
    checks.extend(REFUSED_CALLS.iter().map(|&(call, errno)| {
        first(
            format!("protect/seccomp/{call}-{}", errno.to_lowercase()),
            move |r| refused(r.call(call), call, &[errno]),
        )
    }));
    checks.extend([
        first("protect/shocker/open-by-handle-eperm", |r| {
            refused(r.shocker(SHOCKER_64), SHOCKER_64, &["EPERM"])
        }),
        first("protect/shocker/int80-refused", |r| {
            refused(
                r.shocker(SHOCKER_INT80),
                SHOCKER_INT80,
                &["EPERM", "killed by SIGSYS"],
            )
        }),
    ]);
    checks.extend(both("protect", "status/no-new-privs", |r| {
        status_is("NoNewPrivs", r.no_new_privs, 1)
    }));
    checks.extend(both("protect", "status/seccomp-filter", |r| {
        status_is("Seccomp", r.seccomp, 2)
    }));
    checks.extend([
        joined("protect/join/seccomp-refused", |r| {
            REFUSED_CALLS
                .iter()
                .try_for_each(|&(call, errno)| refused(r.call(call), call, &[errno]))
        }),
        joined("protect/join/shocker-refused", |r| {
            refused(r.shocker(SHOCKER_64), SHOCKER_64, &["EPERM"])?;
            refused(
                r.shocker(SHOCKER_INT80),
                SHOCKER_INT80,
                &["EPERM", "killed by SIGSYS"],
            )
        }),
    ]);
    case("protect", ConfigFile::Fixture(SEED)).checks(checks)
}

/// A node made inside the container's own `/dev`, which is not `nodev`, does not open.
fn made_node_refused(r: &Report) -> Verdict {
    let (path, _, _) = MADE_NODE;
    if !r.made.ok {
        return Err(mismatch(
            format!("mknod {path} to work with MKNOD kept"),
            r.made.describe(),
        ));
    }
    refused(
        r.made_open.as_ref(),
        "opening a node made inside",
        &["EPERM", "EACCES"],
    )
}

fn keep_mknod() -> Case {
    case("protect-keep-mknod", seed_with(keeping_mknod)).checks(both(
        "protect/keep-mknod",
        "made-node-refused",
        made_node_refused,
    ))
}

fn opt_out_readonly_paths() -> Case {
    let prefix = "protect/opt-out/readonly-paths";
    case(
        "protect-opt-out-readonly-paths",
        seed_with(opting_out("readonly_paths")),
    )
    .checks([
        first(format!("{prefix}/core-pattern-writable"), |r| {
            works_where_present(r.write(CORE_PATTERN), "opening core_pattern for writing")
        }),
        first(format!("{prefix}/sysrq-trigger-writable"), |r| {
            works_where_present(
                r.write(SYSRQ_TRIGGER),
                "opening /proc/sysrq-trigger for writing",
            )
        }),
        first(format!("{prefix}/proc-sys-writable"), |r| {
            OTHER_SYSCTLS.iter().try_for_each(|path| {
                works_where_present(r.write(path), &format!("opening {path} for writing"))
            })
        }),
        first(format!("{prefix}/no-read-only-binds"), |r| {
            let bound: Vec<&str> = READONLY_PATHS
                .iter()
                .copied()
                .filter(|path| r.mount_at(path).is_some())
                .collect();
            expect_eq(Vec::<&str>::new(), bound)
        }),
    ])
}

fn opt_out_masked_paths() -> Case {
    let prefix = "protect/opt-out/masked-paths";
    case(
        "protect-opt-out-masked-paths",
        seed_with(opting_out("masked_paths")),
    )
    .checks([
        first(format!("{prefix}/no-masks"), |r| {
            let masked: Vec<&str> = r
                .masked
                .iter()
                .filter(|s| s.mounted)
                .map(|s| s.path.as_str())
                .collect();
            expect_eq(Vec::<&str>::new(), masked)
        }),
        first(format!("{prefix}/timer-list-readable"), |r| {
            match r.masked("/proc/timer_list") {
                Some(s) if s.is_missing() || s.size.is_some_and(|size| size > 0) => Ok(()),
                Some(s) => Err(mismatch("/proc/timer_list with content", s.describe())),
                None => Err(mismatch("a report on /proc/timer_list", "none")),
            }
        }),
    ])
}

/// Opened, or failed past the permission checks (ENODEV, ENXIO: no driver for the number
/// on this kernel).
fn node_opens(attempt: Option<&Attempt>, what: &str, driverless: &[&str]) -> Verdict {
    match attempt {
        Some(a) if a.ok || driverless.iter().any(|errno| a.failed_with(errno)) => Ok(()),
        Some(a) => Err(mismatch(format!("{what} to open"), a.describe())),
        None => Err(mismatch(format!("a report on {what}"), "none")),
    }
}

fn opt_out_devices() -> Case {
    let prefix = "protect/opt-out/devices";
    case("protect-opt-out-devices", seed_with(opting_out("devices"))).checks([
        first(format!("{prefix}/planted-kmsg-opens"), |r| {
            node_opens(r.planted(KMSG), "a planted 1:11", &[])
        }),
        first(format!("{prefix}/planted-loop-control-opens"), |r| {
            node_opens(
                r.planted(LOOP_CONTROL),
                "a planted 10:237",
                &["ENODEV", "ENXIO"],
            )
        }),
    ])
}

fn opt_out_devices_keep_mknod() -> Case {
    case(
        "protect-opt-out-devices-keep-mknod",
        seed_with(|json| {
            keeping_mknod(json);
            opting_out("devices")(json);
        }),
    )
    .checks(both("protect/opt-out/devices", "made-node-opens", |r| {
        let (path, _, _) = MADE_NODE;
        if !r.made.ok {
            return Err(mismatch(
                format!("mknod {path} to work with MKNOD kept"),
                r.made.describe(),
            ));
        }
        node_opens(r.made_open.as_ref(), "a node made inside", &[])
    }))
}

/// The host file read through the handle: the protection is all that stood in the way.
fn reads_host_file(attempt: Option<&Attempt>, what: &str) -> Verdict {
    match attempt {
        Some(a) if a.ok && a.yielded.as_deref() == Some(HOST_FILE_TEXT) => Ok(()),
        Some(a) => Err(mismatch(
            format!("{what} to open the host file and read {HOST_FILE_TEXT:?}"),
            a.describe(),
        )),
        None => Err(mismatch(format!("a report on {what}"), "none")),
    }
}

fn opt_out_seccomp() -> Case {
    let prefix = "protect/opt-out/seccomp";
    let mut checks: Vec<Check> = REFUSED_CALLS
        .iter()
        .map(|&(call, errno)| {
            first(
                format!("{prefix}/{call}-reaches-kernel"),
                move |r| match r.call(call) {
                    Some(a) if !a.failed_with(errno) => Ok(()),
                    Some(a) => Err(mismatch(
                        format!("{call} answered by the kernel, not {errno}"),
                        a.describe(),
                    )),
                    None => Err(mismatch(format!("a report on {call}"), "none")),
                },
            )
        })
        .collect();
    checks.extend([
        first(format!("{prefix}/shocker-reads-host-file"), |r| {
            reads_host_file(r.shocker(SHOCKER_64), SHOCKER_64)
        }),
        first(format!("{prefix}/shocker-int80-reads-host-file"), |r| {
            reads_host_file(r.shocker(SHOCKER_INT80), SHOCKER_INT80)
        }),
    ]);
    checks.extend(both(prefix, "status-seccomp-0", |r| {
        status_is("Seccomp", r.seccomp, 0)
    }));
    case("protect-opt-out-seccomp", seed_with(opting_out("seccomp"))).checks(checks)
}

fn opt_out_no_new_privileges() -> Case {
    let prefix = "protect/opt-out/no-new-privileges";
    let mut checks = Vec::from(both(prefix, "status-0", |r| {
        status_is("NoNewPrivs", r.no_new_privs, 0)
    }));
    // The filter is still loaded, before the capability drop, as runc does without it.
    checks.extend(both(prefix, "seccomp-still-2", |r| {
        status_is("Seccomp", r.seccomp, 2)
    }));
    case(
        "protect-opt-out-no-new-privileges",
        seed_with(opting_out("no_new_privileges")),
    )
    .checks(checks)
}
