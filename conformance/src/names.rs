//! Names both sides of the suite use: capabilities as container.json spells them (no `CAP_`
//! prefix), signals without the `SIG` prefix, and namespaces as `/proc/PID/ns/` names them.

/// Every Linux capability, indexed by its number (`CAPABILITIES[21] == "SYS_ADMIN"`).
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The names of the capabilities set in a mask as `/proc/PID/status` prints it (`000001ffffffffff`).
/// Bits beyond the known capabilities come out as `CAP_<bit>`.
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match CAPABILITIES.get(bit as usize) {
            Some(name) => name.to_string(),
            None => format!("CAP_{bit}"),
        })
        .collect()
}

/// Signals the suite sends or reports, by name without `SIG`.
pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ABRT", libc::SIGABRT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("WINCH", libc::SIGWINCH),
];

/// The number of a signal named with or without `SIG`, or given as a number.
pub fn signal_number(name: &str) -> Option<i32> {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(bare))
        .map(|(_, number)| *number)
        .or_else(|| name.parse().ok())
}

/// The name of a signal without `SIG`, or its number as text.
pub fn signal_name(number: i32) -> String {
    SIGNALS
        .iter()
        .find(|(_, known)| *known == number)
        .map_or_else(|| number.to_string(), |(name, _)| name.to_string())
}

/// The namespaces as `/proc/PID/ns/` names them, with the container.json entry that asks for
/// a new one.
pub const NAMESPACES: &[(&str, &str)] = &[
    ("ipc", "NEWIPC"),
    ("mnt", "NEWNS"),
    ("pid", "NEWPID"),
    ("uts", "NEWUTS"),
    ("net", "NEWNET"),
    ("user", "NEWUSER"),
    ("cgroup", "NEWCGROUP"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_numbers_match_the_kernel() {
        assert_eq!(CAPABILITIES[21], "SYS_ADMIN");
        assert_eq!(CAPABILITIES[27], "MKNOD");
        assert_eq!(CAPABILITIES[40], "CHECKPOINT_RESTORE");
    }

    #[test]
    fn masks_decode_to_names() {
        assert_eq!(capability_names(0), Vec::<String>::new());
        assert_eq!(capability_names(1 << 21 | 1), ["CHOWN", "SYS_ADMIN"]);
        assert_eq!(capability_names(1 << 50), ["CAP_50"]);
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("SIGusr1"), Some(libc::SIGUSR1));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("BOGUS"), None);
        assert_eq!(signal_name(libc::SIGHUP), "HUP");
        assert_eq!(signal_name(63), "63");
    }
}
