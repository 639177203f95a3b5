//! `features`: what this runtime supports, as runtime-spec's features document says it,
//! truthfully: no systemd cgroups, no AppArmor, SELinux or RDT,
//! seccomp without agents (`SCMP_ACT_NOTIFY`).

use super::container::OCI_VERSION;
use super::{Context, OciError};
use crate::plan::{Capability, Namespace};
use crate::seccomp::{Action, Arch, ArgOp, Flag};

pub fn run(_ctx: &mut Context) -> Result<i32, OciError> {
    let namespaces: Vec<&str> = Namespace::ALL
        .into_iter()
        .map(|ns| match ns {
            Namespace::Mount => "mount",
            Namespace::Net => "network",
            other => other.proc_name(),
        })
        .collect();
    let capabilities: Vec<String> = Capability::ALL
        .into_iter()
        .map(|cap| format!("CAP_{}", cap.name()))
        .collect();
    let document = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "bind", "rbind", "ro", "rw", "rro", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "sync", "dirsync", "relatime", "strictatime", "noatime", "nodiratime",
            "tmpcopyup",
            "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"
        ],
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": names(Action::ALL.iter().filter(|a| **a != Action::Notify)),
                "operators": names(ArgOp::ALL.iter()),
                "archs": names(Arch::ALL.iter()),
                "knownFlags": names(Flag::ALL.iter()),
                "supportedFlags": names(Flag::ALL.iter().filter(|f| **f != Flag::WaitKillableRecv))
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.nsinit.version": env!("CARGO_PKG_VERSION")
        }
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&document).expect("features serialize")
    );
    Ok(0)
}

/// The spec's names of `items`.
fn names<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> Vec<String> {
    items.map(|item| item.to_string()).collect()
}
