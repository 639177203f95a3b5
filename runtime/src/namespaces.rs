//! Which namespaces a container gets: the clone flags for the listed ones, and the rules for
//! what nsinit can and cannot run.

use crate::plan::Namespace;

/// Why nsinit refuses a plan at run time, though its config is well formed.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespaces: {0} is not supported yet")]
    Unsupported(&'static str),
    #[error(
        "namespaces: NEWNS is missing: nsinit enters the rootfs with pivot_root, which needs a \
         private mount namespace (add \"NEWNS\" to namespaces)"
    )]
    MountNamespaceRequired,
}

/// The namespaces created by `clone3` itself. `NEWCGROUP` is not among them: the container's
/// cgroup namespace is unshared once the process sits in its cgroup, so that the cgroup
/// becomes the namespace's root.
pub fn clone_flags(namespaces: &[Namespace]) -> Result<u64, NamespaceError> {
    if namespaces.contains(&Namespace::User) {
        return Err(NamespaceError::Unsupported("NEWUSER"));
    }
    if !namespaces.contains(&Namespace::Mount) {
        return Err(NamespaceError::MountNamespaceRequired);
    }
    Ok(namespaces
        .iter()
        .filter(|&&ns| ns != Namespace::Cgroup)
        .fold(0u64, |flags, ns| flags | ns.clone_flag() as u64))
}

/// The flags naming every namespace of `namespaces`, for `setns` through a pidfd.
pub fn setns_flags(namespaces: &[Namespace]) -> nix::sched::CloneFlags {
    namespaces
        .iter()
        .fold(nix::sched::CloneFlags::empty(), |flags, ns| {
            flags | nix::sched::CloneFlags::from_bits_truncate(ns.clone_flag())
        })
}
