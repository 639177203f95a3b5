//! Which namespaces a container gets: the clone flags for the listed ones, and the rules for
//! what nsinit can and cannot run.

use crate::plan::{Namespace, Plan};

/// Why nsinit refuses a plan at run time, though its config is well formed.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespaces: {0} is not supported yet")]
    Unsupported(&'static str),
    #[error("namespaces: a new user namespace needs its uid and gid maps")]
    NoMaps,
    #[error(
        "namespaces: NEWNS is missing: nsinit enters the rootfs with pivot_root, which needs a \
         private mount namespace (add \"NEWNS\" to namespaces)"
    )]
    MountNamespaceRequired,
}

/// The namespaces created by `clone3` itself. `NEWCGROUP` is not among them: the container's
/// cgroup namespace is unshared once the process sits in its cgroup, so that the cgroup
/// becomes the namespace's root.
pub fn clone_flags(plan: &Plan) -> Result<u64, NamespaceError> {
    if plan.new_user_namespace() && plan.id_maps.is_none() {
        return Err(NamespaceError::NoMaps);
    }
    if !plan.new_namespaces().any(|ns| ns == Namespace::Mount) {
        return Err(NamespaceError::MountNamespaceRequired);
    }
    Ok(plan
        .new_namespaces()
        .filter(|&ns| ns != Namespace::Cgroup)
        .fold(0u64, |flags, ns| flags | ns.clone_flag() as u64))
}

/// The flags naming every namespace the container has of its own, for `setns` through a
/// pidfd of one of its processes.
pub fn setns_flags(plan: &Plan) -> nix::sched::CloneFlags {
    plan.namespaces
        .iter()
        .fold(nix::sched::CloneFlags::empty(), |flags, ns| {
            flags | nix::sched::CloneFlags::from_bits_truncate(ns.kind.clone_flag())
        })
}
