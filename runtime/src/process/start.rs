//! Creating a container from its plan: the cgroup, the clone into new (and joined)
//! namespaces, the network, and the handshake up to `Ready`. The start is split there
//! exactly once: the creator either releases the process itself ([`Created::release`],
//! `nsinit exec` and `nsinit-oci run`) or leaves it waiting at a gate for another process
//! (`nsinit-oci start`, [`Created::leave_at_gate`]).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;

use super::channel::{self, Channel, Message};
use super::gate::Gate;
use super::{
    child, expect_exec, next_message, protocol_error, Command, Container, HANDSHAKE_TIMEOUT,
};
use crate::cgroups::{self, Cgroup, Hierarchy};
use crate::error::{StepContext, StepError};
use crate::mounts::CgroupView;
use crate::plan::{Namespace, Plan};
use crate::sys::{self, Forked};
use crate::{network, userns, Error};

/// What a start needs.
pub struct Start<'a> {
    pub plan: &'a Plan,
    /// The plan's new namespaces as `clone3` flags ([`crate::namespaces::clone_flags`]).
    pub clone_flags: u64,
    /// The command; only a container released through a gate may have none (OCI `create`
    /// of a config without `process`): it then exits when released.
    pub command: Option<&'a Command>,
    /// Who lets the first process go on to its command.
    pub release: Release<'a>,
    /// How many fds from 3 on the command inherits (OCI `--preserve-fds`).
    pub preserve_fds: u32,
}

/// Who lets a set-up first process go on to its command, and whether it outlives its creator.
#[derive(Clone, Copy)]
pub enum Release<'a> {
    /// Its creator, which supervises it to the end (`nsinit exec`): it dies with the creator.
    Supervised,
    /// Its creator, which then only waits for it or leaves (`nsinit-oci run`): it outlives
    /// the creator.
    Creator,
    /// Another process, through this gate (`nsinit-oci create`, then `start`).
    Gate(&'a Gate),
}

/// What the child needs besides the start: prepared by the parent before the clone.
pub(super) struct Prepared {
    /// Namespaces joined by path: the child enters them first.
    pub joined: Vec<(Namespace, OwnedFd)>,
    /// v1: the group's `tasks` files, for the child to move itself in.
    pub cgroup_tasks: Vec<File>,
    /// Whether the child must still unshare its cgroup namespace once in its group (v1);
    /// on v2 it is born in the group and in a new cgroup namespace at once.
    pub unshare_cgroupns: bool,
    /// What a `cgroup` mount shows.
    pub cgroup_view: CgroupView,
    /// The child is in a user namespace other than the initial one, where the kernel
    /// refuses `mknod` (its `/dev` nodes are binds of the host's) and mounts `proc` and
    /// `sysfs` only while the host's are visible (they are made before `pivot_root`).
    pub in_user_namespace: bool,
}

/// Whether a namespace joined by path is entered by nsinit for the clone rather than by the
/// child: a pid namespace always (it applies to the children of whoever enters it); with a
/// new user namespace, every other kind but mount and user too, because the child, root of
/// its new user namespace only, may not enter a namespace another user namespace owns (a
/// Kubernetes pod's network namespace), while a namespace the child is born in needs no
/// right of it. A mount namespace stays the child's: entering it would move nsinit's root.
fn entered_for_the_clone(plan: &Plan, kind: Namespace) -> bool {
    match kind {
        Namespace::Pid => true,
        Namespace::Mount | Namespace::User => false,
        _ => plan.new_user_namespace(),
    }
}

/// Enters `namespaces`, returning nsinit's own namespace of each kind to return to.
fn enter_for_the_clone(
    namespaces: &[(Namespace, OwnedFd)],
) -> Result<Vec<(Namespace, OwnedFd)>, StepError> {
    let mut own: Vec<(Namespace, OwnedFd)> = Vec::new();
    for (kind, target) in namespaces {
        let flag = CloneFlags::from_bits_truncate(kind.clone_flag());
        let mine = open(
            format!("/proc/self/ns/{}", kind.proc_name()).as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .step(|| format!("open nsinit's own {} namespace", kind.proc_name()))?;
        if let Err(e) = setns(target, flag) {
            for (kind, mine) in &own {
                let _ = setns(mine, CloneFlags::from_bits_truncate(kind.clone_flag()));
            }
            return Err(e).step(|| format!("enter the {} namespace to join", kind.proc_name()));
        }
        own.push((*kind, mine));
    }
    Ok(own)
}

/// A container set up up to its command, its first process waiting for the creator's word.
/// Dropping it kills the process and removes the cgroup.
pub struct Created {
    pub container: Container,
    channel: Channel,
    pub cgroup: Option<OwnedCgroup>,
    /// The pty master, when the process has a terminal.
    pub pty_master: Option<OwnedFd>,
}

/// Make the container of `start` up to `Ready`.
pub fn create(start: &Start<'_>) -> Result<Created, Error> {
    let plan = start.plan;
    let (parent_end, child_end) = channel::pair().step(|| "create the start channel".into())?;
    parent_end
        .set_timeout(HANDSHAKE_TIMEOUT)
        .step(|| "set the start channel timeout".into())?;
    let mut joined = Vec::new();
    let mut for_the_clone = Vec::new();
    for ns in &plan.namespaces {
        let Some(path) = &ns.path else { continue };
        let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .step(|| format!("open {} namespace {}", ns.kind.proc_name(), path.display()))?;
        match entered_for_the_clone(plan, ns.kind) {
            true => for_the_clone.push((ns.kind, fd)),
            false => joined.push((ns.kind, fd)),
        }
    }
    // A user namespace joined by path first: the others are entered as its root.
    joined.sort_by_key(|(kind, _)| *kind != Namespace::User);
    let cgroup = match &plan.cgroup {
        Some(c) => {
            let hierarchy = Hierarchy::detect()?;
            let path = cgroups::resolve(&hierarchy, &c.path)?;
            let group = OwnedCgroup(Some(Cgroup::create(&hierarchy, &path, &c.limits)?));
            if !c.devices.is_empty() {
                group.get().apply_device_rules(&c.devices)?;
            }
            Some(group)
        }
        None => None,
    };
    // cgroup v2: the child is born in its group (CLONE_INTO_CGROUP), and in its cgroup
    // namespace; v1: it moves itself in, then unshares the namespace.
    let (cgroup_fd, cgroup_tasks, cgroup_view) = match &cgroup {
        Some(group) => (
            group.get().dir_fd()?,
            group.get().tasks_files()?,
            match group.get().is_v2() {
                true => CgroupView::V2,
                false => CgroupView::V1(group.get().v1_dirs()),
            },
        ),
        None => (None, Vec::new(), default_cgroup_view()),
    };
    let cgroupns = plan.new_namespaces().any(|ns| ns == Namespace::Cgroup);
    // A new user namespace may mount cgroup2 only in a cgroup namespace of its own.
    let cgroup_view = match cgroup_view {
        CgroupView::V2 if plan.new_user_namespace() && !cgroupns => {
            let group = cgroup
                .as_ref()
                .and_then(|g| g.get().v2_dir().map(Path::to_owned));
            match group.or_else(cgroups::own_v2_dir) {
                Some(dir) => CgroupView::V2Bound(dir),
                None => CgroupView::V2,
            }
        }
        view => view,
    };
    let cgroupns_in_clone = cgroupns && cgroup_fd.is_some();
    let mut flags = start.clone_flags;
    if cgroupns_in_clone {
        flags |= libc::CLONE_NEWCGROUP as u64;
    }
    let prepared = Prepared {
        joined,
        cgroup_tasks,
        unshare_cgroupns: cgroupns && !cgroupns_in_clone,
        cgroup_view,
        in_user_namespace: plan.has(Namespace::User) || !userns::in_initial(),
    };

    // Entered by this process for the clone only (see `entered_for_the_clone`); the child is
    // born in them.
    let own_namespaces = enter_for_the_clone(&for_the_clone)?;
    // SAFETY: nsinit is single-threaded: no thread is ever spawned on the start path.
    let forked = unsafe { sys::clone3(flags, cgroup_fd.as_ref().map(|fd| fd.as_fd())) };
    if !matches!(forked, Ok(Forked::Child)) {
        for (kind, own) in &own_namespaces {
            setns(own, CloneFlags::from_bits_truncate(kind.clone_flag()))
                .step(|| format!("return to nsinit's own {} namespace", kind.proc_name()))?;
        }
    }
    let mut container = match forked {
        Ok(Forked::Child) => {
            drop(parent_end);
            child::run(start, &prepared, child_end)
        }
        Ok(Forked::Parent { pid, pidfd }) => Container::new(pid, pidfd),
        Err(e) => {
            let names: Vec<_> = plan.new_namespaces().map(|ns| ns.json_name()).collect();
            return Err(e)
                .step(|| {
                    format!(
                        "create the container process (clone3 with {})",
                        names.join(" ")
                    )
                })
                .map_err(Error::from);
        }
    };
    drop(child_end);
    drop(prepared);
    if let (true, Some(maps)) = (plan.new_user_namespace(), &plan.id_maps) {
        // Before anything else: until then, the child is nobody in its own namespace.
        userns::write_maps(container.pid, maps)?;
        parent_end
            .send(&Message::Mapped)
            .step(|| "tell the container its ids are mapped".into())?;
    }
    // While the child mounts its rootfs, give it its network.
    let network = connect_network(plan, &container);
    if let Err(network_error) = network {
        // The child may have failed first, and vanished: its own reason says more.
        if let Ok(Some(Message::Failed(failure))) = parent_end.recv() {
            return Err(container.failed(failure));
        }
        return Err(network_error);
    }
    if let Some(score) = plan.process.oom_score_adj {
        // Through the host's /proc, which no container can mount over.
        let path = format!("/proc/{}/oom_score_adj", container.pid);
        std::fs::write(&path, score.to_string()).step(|| format!("write {score} to {path}"))?;
    }

    const SETUP: &str = "mount the rootfs";
    let pty_master = match next_message(&parent_end, &mut container, SETUP)? {
        Some(Message::Ready { pty_master }) => pty_master,
        Some(other) => return Err(protocol_error(&other)),
        None => {
            let code = container.wait()?;
            return Err(Error::DiedDuringSetup { step: SETUP, code });
        }
    };
    Ok(Created {
        container,
        channel: parent_end,
        cgroup,
        pty_master,
    })
}

/// Without a group of its own, a `cgroup` mount shows the hierarchy nsinit finds.
fn default_cgroup_view() -> CgroupView {
    match Hierarchy::detect() {
        Ok(Hierarchy::V2 { .. }) => CgroupView::V2,
        _ => CgroupView::V1(Vec::new()),
    }
}

impl Created {
    /// Let the process go on to its command; returns once it runs (or failed to start).
    /// `hook_state` is the state JSON its own hooks get.
    pub fn release(&mut self, hook_state: String) -> Result<(), Error> {
        self.channel
            .send(&Message::Go { hook_state })
            .step(|| "release the container process".into())?;
        expect_exec(&self.channel, &mut self.container, "start the command")
    }

    /// After [`Created::release`], when the process outlives its creator
    /// ([`Release::Creator`]): the handle on the running process (dropping it still kills
    /// it); the cgroup is no longer this handle's to remove, but whoever deletes the container.
    pub fn into_running(mut self) -> Container {
        self.leave_cgroup();
        self.container
    }

    /// Let the process finish its setup and wait at its gate, then let go of it: it outlives
    /// this process (reaped by whoever reaps this one's orphans), and so does its cgroup.
    /// `hook_state` is the state JSON its own hooks get.
    pub fn leave_at_gate(mut self, hook_state: String) -> Result<(), Error> {
        self.channel
            .send(&Message::Go { hook_state })
            .step(|| "let the container process finish its setup".into())?;
        const SETUP: &str = "finish setup and wait for start";
        match next_message(&self.channel, &mut self.container, SETUP)? {
            Some(Message::Waiting) => {}
            Some(other) => return Err(protocol_error(&other)),
            None => {
                let code = self.container.wait()?;
                return Err(Error::DiedDuringSetup { step: SETUP, code });
            }
        }
        self.leave_cgroup();
        self.container.disown();
        Ok(())
    }

    /// The cgroup is no longer this handle's to remove: it goes with the container.
    fn leave_cgroup(&mut self) {
        if let Some(mut group) = self.cgroup.take() {
            group.0.take();
        }
    }
}

/// The container's cgroup, owned by its creator: whatever happens, the processes in it are
/// killed and the group is removed when this goes.
pub struct OwnedCgroup(Option<Cgroup>);

impl OwnedCgroup {
    pub fn get(&self) -> &Cgroup {
        self.0.as_ref().expect("present until finish or drop")
    }

    /// PID 1 has exited: kill what is left in the group (all of it without a pid namespace),
    /// say so if the memory limit killed something, remove the group.
    pub fn finish(mut self, result: Result<i32, Error>) -> Result<i32, Error> {
        let group = self.0.take().expect("present until finish or drop");
        let killed = group.kill_all();
        let oom_kills = group.oom_kills();
        if oom_kills > 0 {
            let limit = group
                .memory_limit()
                .map_or("its".to_string(), |bytes| format!("{bytes} bytes"));
            eprintln!(
                "nsinit: the container hit its memory limit ({limit}): the kernel killed \
                 {oom_kills} of its processes"
            );
        }
        let removed = group.remove();
        let code = result?;
        killed?;
        removed?;
        Ok(code)
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            let _ = group.kill_all();
            let _ = group.remove();
        }
    }
}

/// The container's network, when the plan has one: a veth pair on the bridge.
fn connect_network(plan: &Plan, container: &Container) -> Result<(), Error> {
    let (pid, pidfd) = (container.pid, container.pidfd.as_fd());
    if let Some(net) = &plan.network {
        network::setup(net, pidfd, pid, &network::host_veth_name(pid))?;
    }
    Ok(())
}
