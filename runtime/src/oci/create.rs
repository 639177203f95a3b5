//! `create`: set the container up from its bundle and leave its first process waiting at
//! the exec fifo, then exit. Everything a failure leaves (the process, the cgroup, the state
//! directory) is taken back before the error is returned.

use std::ffi::OsString;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::container::{Locked, Record, Root, Status, EXEC_FIFO};
use super::{log, Context, OciError};
use crate::plan::idmap;
use crate::plan::{CgroupPath, Namespace};
use crate::process::gate::Gate;
use crate::process::{self, hooks, unwritable, Command, Created, Release};
use crate::spec::oci;
use crate::{namespaces, state, terminal};

/// The largest `config.json` nsinit-oci reads.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// What `create` (and `run`) were asked.
#[derive(Debug)]
pub struct Options {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// Who lets the container's first process go on to its command once it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// `start`, another process, through the exec fifo: the process waits at its gate.
    Start,
    /// `run`, this process: the process waits for [`Created::release`] (no fifo).
    Run,
}

/// A container created in this process: its record, its locked directory, and, for `run`,
/// the engine's handle on its first process, waiting for its word.
pub struct Made {
    pub record: Record,
    pub locked: Locked,
    /// The pty master, when the process has a terminal and no console socket took it.
    pub pty_master: Option<OwnedFd>,
    /// [`Handoff::Run`]: the first process, set up; dropping this kills it.
    pub waiting: Option<Created>,
}

pub fn run(ctx: &mut Context, options: &Options) -> Result<i32, OciError> {
    let made = create(ctx, options, Handoff::Start)?;
    drop(made);
    Ok(0)
}

/// Create the container up to its `handoff`; on error nothing is left.
pub fn create(ctx: &mut Context, options: &Options, handoff: Handoff) -> Result<Made, OciError> {
    let bundle = options
        .bundle
        .canonicalize()
        .map_err(|e| OciError::io(format!("open bundle {}", options.bundle.display()), e))?;
    let config_path = bundle.join("config.json");
    let text = read_config(&config_path)?;
    // The state root keeps compiled seccomp filters: an engine's profile is compiled once.
    let filters = crate::seccomp::FilterCache::new(&ctx.root.path);
    let config = oci::parse_with(&config_path, &text, oci::Compiler::Cached(&filters))?;
    // The first process will wait at its gate running this binary, inside a pid namespace
    // other processes live in: run from a copy nobody can write (`process::unwritable`).
    let joins_pids = config
        .linux
        .namespaces
        .iter()
        .any(|ns| ns.kind == Namespace::Pid && ns.path.is_some());
    if joins_pids && !unwritable::running() {
        return Err(unwritable::reexec().into());
    }
    let locked = ctx.root.create(&options.id)?;
    let made = make(ctx, options, handoff, &locked, &bundle, &config);
    match made {
        Ok((record, pty_master, waiting)) => Ok(Made {
            record,
            locked,
            pty_master,
            waiting,
        }),
        Err(error) => {
            let _ = locked.remove();
            Err(error)
        }
    }
}

fn make(
    ctx: &mut Context,
    options: &Options,
    handoff: Handoff,
    locked: &Locked,
    bundle: &Path,
    config: &oci::Config,
) -> Result<(Record, Option<OwnedFd>, Option<Created>), OciError> {
    let config_path = bundle.join("config.json");
    let mut plan = oci::lower(
        config,
        &oci::Site {
            bundle,
            id: &options.id,
        },
    )?;
    if rootless() {
        without_cgroup_unless_asked(ctx, config, &mut plan, &config_path)?;
    }
    ctx.log.debug(&format!(
        "create {}: plan lowered from {}",
        options.id,
        config_path.display()
    ));
    let clone_flags =
        namespaces::clone_flags(&plan).map_err(|source| crate::Error::Namespaces {
            path: config_path.display().to_string(),
            source,
        })?;
    let command = match plan.process.args.is_empty() {
        true => None,
        false => {
            let argv: Vec<OsString> = plan.process.args.iter().map(OsString::from).collect();
            Some(Command::new(&argv, &plan.process.env).map_err(crate::Error::from)?)
        }
    };
    // The process's user as the host sees it: through the maps of a new user namespace.
    let user = &plan.process.user;
    let owner = match &plan.id_maps {
        Some(maps) => (
            idmap::to_host(&maps.uids, user.uid).unwrap_or(nix::unistd::geteuid().as_raw()),
            idmap::to_host(&maps.gids, user.gid).unwrap_or(nix::unistd::getegid().as_raw()),
        ),
        None => (user.uid, user.gid),
    };
    let gate = match handoff {
        Handoff::Start => Some(Gate::create(&locked.dir.join(EXEC_FIFO), owner)?),
        Handoff::Run => None,
    };
    let mut created = process::create(&process::Start {
        plan: &plan,
        clone_flags,
        command: command.as_ref(),
        release: match &gate {
            Some(gate) => Release::Gate(gate),
            None => Release::Creator,
        },
        preserve_fds: options.preserve_fds,
    })?;
    let pid = created.container.pid;
    let cgroup_path = created
        .cgroup
        .as_ref()
        .map(|g| g.get().path().to_path_buf());
    // Recorded as found: an `exec` from another cgroup than this `create`'s must still find
    // the group a relative `cgroupsPath` named.
    if let (Some(cgroup), Some(path)) = (&mut plan.cgroup, &cgroup_path) {
        cgroup.path = CgroupPath::Root(path.clone());
    }
    let start_time = state::start_time(pid).ok_or_else(|| {
        OciError::Invalid(format!(
            "the container process {pid} vanished during create"
        ))
    })?;
    let record = Record {
        id: options.id.clone(),
        pid: pid.as_raw(),
        start_time,
        bundle: bundle.to_path_buf(),
        created: log::rfc3339(SystemTime::now()),
        annotations: config.annotations.clone(),
        plan: plan.clone(),
        cgroup: cgroup_path,
    };
    let pty_master = match (created.pty_master.take(), &options.console_socket) {
        (Some(master), Some(socket)) => {
            terminal::send_to_console_socket(socket, master.as_fd())?;
            None
        }
        (master, _) => master,
    };
    let creating = record.state_json(Status::Creating);
    hooks::run_all("prestart", &plan.hooks.prestart, &creating)?;
    hooks::run_all("createRuntime", &plan.hooks.create_runtime, &creating)?;
    locked.save(&record)?;
    if let Some(path) = &options.pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    let waiting = match handoff {
        Handoff::Start => {
            created.leave_at_gate(record.state_json(Status::Created))?;
            None
        }
        Handoff::Run => Some(created),
    };
    Ok((record, pty_master, waiting))
}

/// Read `config.json`: a regular file, bounded in size.
fn read_config(path: &Path) -> Result<String, OciError> {
    let meta =
        fs::metadata(path).map_err(|e| OciError::io(format!("read {}", path.display()), e))?;
    if !meta.is_file() || meta.len() > MAX_CONFIG_BYTES {
        return Err(OciError::Invalid(format!(
            "{}: not a regular file of at most {MAX_CONFIG_BYTES} bytes",
            path.display()
        )));
    }
    fs::read_to_string(path).map_err(|e| OciError::io(format!("read {}", path.display()), e))
}

/// Write `pid` to `path` whole: a temp file in the same directory renamed over it, so a
/// reader never sees half a pid.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), OciError> {
    PidFile::open(path)?.write(pid)
}

/// A pid file whose directory is held open: `exec` opens it on the host before joining the
/// container's mount namespace, where the path names nothing (or something else), and
/// writes it after the fork.
pub struct PidFile {
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
}

impl PidFile {
    pub fn open(path: &Path) -> Result<PidFile, OciError> {
        use nix::fcntl::OFlag;
        let failed = |e: nix::Error| {
            OciError::io(
                format!("write pid file {}", path.display()),
                std::io::Error::from(e),
            )
        };
        let name = path
            .file_name()
            .ok_or_else(|| OciError::Invalid(format!("pid file {}: no file name", path.display())))?
            .to_os_string();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(failed)?;
        Ok(PidFile {
            dir,
            name,
            path: path.to_path_buf(),
        })
    }

    /// Write `pid` whole: a temp file in the same directory renamed over the pid file, so a
    /// reader never sees half a pid.
    pub fn write(&self, pid: i32) -> Result<(), OciError> {
        use nix::fcntl::{openat, renameat, OFlag};
        use nix::sys::stat::Mode;
        let mut temp = OsString::from(".");
        temp.push(&self.name);
        temp.push(format!(".{}", std::process::id()));
        let temp = PathBuf::from(temp);
        let written = openat(
            &self.dir,
            &temp,
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_CLOEXEC
                | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(std::io::Error::from)
        .and_then(|fd| {
            let mut file = fs::File::from(fd);
            std::io::Write::write_all(&mut file, pid.to_string().as_bytes())
        })
        .and_then(|()| {
            renameat(&self.dir, &temp, &self.dir, Path::new(&self.name))
                .map_err(std::io::Error::from)
        });
        written.map_err(|e| {
            let _ =
                nix::unistd::unlinkat(&self.dir, &temp, nix::unistd::UnlinkatFlags::NoRemoveDir);
            OciError::io(format!("write pid file {}", self.path.display()), e)
        })
    }
}

impl Root {
    /// The directory of container `id` (for `create`'s callers that hold only the root).
    pub fn fifo(&self, id: &str) -> PathBuf {
        self.dir(id).join(EXEC_FIFO)
    }
}

/// nsinit-oci runs as a plain user, or as root of a user namespace that is not the host's
/// (rootless podman runs its runtime so): it may not be able to make cgroups.
fn rootless() -> bool {
    !nix::unistd::geteuid().is_root() || !crate::userns::in_initial()
}

/// Rootless, a config that asks for no cgroup (no `cgroupsPath`, no limits) runs without one,
/// as `runc spec --rootless` has it; its device rules cannot apply and are skipped (the
/// kernel refuses new device nodes in a user namespace anyway). Limits asked for on cgroup
/// v1, which delegates nothing, are an error naming the field.
fn without_cgroup_unless_asked(
    ctx: &mut Context,
    config: &oci::Config,
    plan: &mut crate::plan::Plan,
    path: &std::path::Path,
) -> Result<(), OciError> {
    let asks = config.linux.cgroups_path.is_some()
        || config.linux.resources.limits != crate::cgroups::Limits::default();
    if !asks {
        if let Some(cgroup) = plan.cgroup.take() {
            ctx.log.debug(&format!(
                "rootless: no cgroup of the container's own; {} device rules skipped",
                cgroup.devices.len()
            ));
        }
        return Ok(());
    }
    let v2 = matches!(
        crate::cgroups::Hierarchy::detect(),
        Ok(crate::cgroups::Hierarchy::V2 { .. })
    );
    if !v2 && config.linux.resources.limits != crate::cgroups::Limits::default() {
        return Err(OciError::Config(crate::spec::ConfigError::new(
            path,
            "linux.resources".into(),
            crate::spec::ErrorKind::Rootless {
                why: "cgroup v1 delegates nothing to users: limits need root (or cgroup v2)",
            },
        )));
    }
    Ok(())
}
