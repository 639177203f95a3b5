//! nsinit's default seccomp profile: the calls a container never needs that reach past it
//! into state the host shares with it (the kernel, its keys, its devices, other namespaces).
//!
//! Everything else is allowed: the profile stops escapes and host-wide side effects, it does
//! not shrink the kernel's surface call by call (that is what a front-end's own profile is
//! for). Its compiled program is checked in (`default_program.rs`), so no start compiles it.

use super::profile::{Action, Arch, ArgCondition, ArgOp, Profile, SyscallRule};

/// Refused with EPERM, with why. Each name is looked up on every ABI of the profile and
/// skipped where an ABI lacks it (x86 has no `kexec_file_load`).
pub const REFUSED: &[(&str, &str)] = &[
    // Files of the host.
    (
        "open_by_handle_at",
        "opens any inode of a filesystem by a handle made elsewhere: with \
         CAP_DAC_READ_SEARCH, host files outside the rootfs (\"shocker\", 2014)",
    ),
    // The kernel itself.
    ("kexec_load", "replaces the running kernel"),
    ("kexec_file_load", "replaces the running kernel"),
    ("init_module", "loads code into the host kernel"),
    ("finit_module", "loads code into the host kernel"),
    ("delete_module", "unloads the host's kernel modules"),
    (
        "bpf",
        "loads programs into the host kernel and reads its maps; a frequent source of \
         kernel exploits",
    ),
    (
        "perf_event_open",
        "observes the host's processes and kernel; a frequent source of kernel exploits",
    ),
    (
        "userfaultfd",
        "stalls the kernel at a chosen page fault: the usual way to win kernel races",
    ),
    (
        "lookup_dcookie",
        "turns a profiling cookie into a host path (oprofile)",
    ),
    // The kernel's keyrings are not namespaced: keys of the host and of other containers.
    ("keyctl", "reads and changes the host's kernel keyrings"),
    ("add_key", "adds to the host's kernel keyrings"),
    ("request_key", "asks the host's key upcall to run a program"),
    // Hardware and host-wide resources.
    ("iopl", "gives raw access to every I/O port"),
    ("ioperm", "gives raw access to I/O ports"),
    ("swapon", "adds host swap"),
    ("swapoff", "removes host swap"),
    ("acct", "turns on process accounting for the whole host"),
    ("quotactl", "changes disk quotas of host filesystems"),
];

/// `CLONE_NEWUSER`: a new user namespace gives its creator every capability inside it, and
/// with them the parts of the kernel only root reached before (most kernel exploits of
/// recent years start there). `clone` and `unshare` asking for one are refused.
const NEW_USER_NAMESPACE: u64 = libc::CLONE_NEWUSER as u64;

/// Calls that fail with ENOSYS, as if this kernel lacked them.
pub const ABSENT: &[(&str, &str)] = &[(
    "clone3",
    "takes its flags in memory, which a filter cannot read, so CLONE_NEWUSER could not be \
     refused; C libraries fall back to clone on ENOSYS",
)];

/// The ABIs the rules cover: a 64-bit process may call through the x86 ABI (`int $0x80`)
/// and, where the kernel has it, x32 (bit 30 of the call's number). Both get the same rules
/// rather than being killed, so 32-bit programs in an image keep running, as under docker
/// and podman; any other ABI kills the process.
pub const ARCHITECTURES: &[Arch] = &[Arch::X86_64, Arch::X86, Arch::X32];

/// The default profile, described as a front-end would describe one.
pub fn default_profile() -> Profile {
    let refused = SyscallRule {
        names: REFUSED.iter().map(|(name, _)| name.to_string()).collect(),
        action: Action::Errno,
        errno_ret: Some(libc::EPERM as u32),
        args: Vec::new(),
    };
    let new_user_namespace = SyscallRule {
        names: vec!["clone".to_owned(), "unshare".to_owned()],
        action: Action::Errno,
        errno_ret: Some(libc::EPERM as u32),
        // The flags are the first argument of both, on each of the three ABIs.
        args: vec![ArgCondition {
            index: 0,
            value: NEW_USER_NAMESPACE,
            value_two: NEW_USER_NAMESPACE,
            op: ArgOp::MaskedEqual,
        }],
    };
    let absent = SyscallRule {
        names: ABSENT.iter().map(|(name, _)| name.to_string()).collect(),
        action: Action::Errno,
        errno_ret: Some(libc::ENOSYS as u32),
        args: Vec::new(),
    };
    Profile {
        default_action: Action::Allow,
        default_errno_ret: None,
        architectures: ARCHITECTURES.to_vec(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
        syscalls: vec![refused, new_user_namespace, absent],
    }
}
