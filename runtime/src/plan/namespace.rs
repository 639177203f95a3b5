//! The namespaces a container can have: their names, clone flags and `/proc/PID/ns` files.

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};

/// A namespace the container gets, named in `container.json` after its clone flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    Ipc,
    Mount,
    Pid,
    Uts,
    Net,
    /// Accepted by the model; the runtime refuses it until user namespaces are implemented.
    User,
    Cgroup,
}

impl Namespace {
    /// Every namespace, in the order of their JSON names in the README.
    pub const ALL: [Namespace; 7] = [
        Namespace::Ipc,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Uts,
        Namespace::Net,
        Namespace::User,
        Namespace::Cgroup,
    ];

    /// The `CLONE_NEW*` flag that creates this namespace.
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
        }
    }

    /// The name in `container.json`: the clone flag without `CLONE_` (`NEWNS`).
    pub const fn json_name(self) -> &'static str {
        match self {
            Namespace::Ipc => "NEWIPC",
            Namespace::Mount => "NEWNS",
            Namespace::Pid => "NEWPID",
            Namespace::Uts => "NEWUTS",
            Namespace::Net => "NEWNET",
            Namespace::User => "NEWUSER",
            Namespace::Cgroup => "NEWCGROUP",
        }
    }

    /// The name of the namespace's file in `/proc/PID/ns` (`mnt`).
    pub const fn proc_name(self) -> &'static str {
        match self {
            Namespace::Ipc => "ipc",
            Namespace::Mount => "mnt",
            Namespace::Pid => "pid",
            Namespace::Uts => "uts",
            Namespace::Net => "net",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
        }
    }

    /// The namespace with this JSON name, exactly as written (`NEWNS`).
    pub fn from_json_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|ns| ns.json_name() == name)
    }
}

impl Serialize for Namespace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.json_name())
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Namespace::from_json_name(&name)
            .ok_or_else(|| de::Error::custom(format!("unknown namespace {name:?}")))
    }
}
