//! The Linux capabilities, numbered and named as in `<linux/capability.h>`, from one table.

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};

/// Declares [`Capability`] from one table, so numbers and names cannot drift apart.
macro_rules! capabilities {
    ($($variant:ident = $number:literal $name:literal,)*) => {
        /// A Linux capability, numbered as in `<linux/capability.h>`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Capability {
            $($variant = $number,)*
        }

        impl Capability {
            /// Every capability, in kernel number order: `ALL[n].number() == n`.
            pub const ALL: [Capability; 41] = [$(Capability::$variant,)*];

            /// The name in `container.json`: the kernel's without `CAP_` (`SYS_ADMIN`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Capability::$variant => $name,)*
                }
            }
        }
    };
}

capabilities! {
    Chown = 0 "CHOWN",
    DacOverride = 1 "DAC_OVERRIDE",
    DacReadSearch = 2 "DAC_READ_SEARCH",
    Fowner = 3 "FOWNER",
    Fsetid = 4 "FSETID",
    Kill = 5 "KILL",
    Setgid = 6 "SETGID",
    Setuid = 7 "SETUID",
    Setpcap = 8 "SETPCAP",
    LinuxImmutable = 9 "LINUX_IMMUTABLE",
    NetBindService = 10 "NET_BIND_SERVICE",
    NetBroadcast = 11 "NET_BROADCAST",
    NetAdmin = 12 "NET_ADMIN",
    NetRaw = 13 "NET_RAW",
    IpcLock = 14 "IPC_LOCK",
    IpcOwner = 15 "IPC_OWNER",
    SysModule = 16 "SYS_MODULE",
    SysRawio = 17 "SYS_RAWIO",
    SysChroot = 18 "SYS_CHROOT",
    SysPtrace = 19 "SYS_PTRACE",
    SysPacct = 20 "SYS_PACCT",
    SysAdmin = 21 "SYS_ADMIN",
    SysBoot = 22 "SYS_BOOT",
    SysNice = 23 "SYS_NICE",
    SysResource = 24 "SYS_RESOURCE",
    SysTime = 25 "SYS_TIME",
    SysTtyConfig = 26 "SYS_TTY_CONFIG",
    Mknod = 27 "MKNOD",
    Lease = 28 "LEASE",
    AuditWrite = 29 "AUDIT_WRITE",
    AuditControl = 30 "AUDIT_CONTROL",
    Setfcap = 31 "SETFCAP",
    MacOverride = 32 "MAC_OVERRIDE",
    MacAdmin = 33 "MAC_ADMIN",
    Syslog = 34 "SYSLOG",
    WakeAlarm = 35 "WAKE_ALARM",
    BlockSuspend = 36 "BLOCK_SUSPEND",
    AuditRead = 37 "AUDIT_READ",
    Perfmon = 38 "PERFMON",
    Bpf = 39 "BPF",
    CheckpointRestore = 40 "CHECKPOINT_RESTORE",
}

impl Capability {
    /// The kernel's number for this capability (`CAP_SYS_ADMIN` is 21).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The capability with this name, exactly as written in `container.json` (`SYS_ADMIN`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|cap| cap.name() == name)
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Capability::from_name(&name)
            .ok_or_else(|| de::Error::custom(format!("unknown capability {name:?}")))
    }
}
