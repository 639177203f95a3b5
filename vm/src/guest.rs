//! The contract between the host and the guest init (`src/bin/guest-init/`): the kernel
//! command-line switch that selects the cgroup hierarchy, where the suite command lies, and the
//! status codes sent back through `isa-debug-exit`; plus the guest's pure parsing helpers.

use std::fmt;

/// Where the init finds the shell command to run (relative to `/`).
pub const COMMAND_PATH: &str = "etc/nsinit-vm/command";
/// The kernel command-line word that selects the cgroup hierarchy (`nsinit.cgroup=v1`). The
/// dot keeps the kernel from passing it to init as an argument; the init reads `/proc/cmdline`.
pub const CGROUP_SWITCH: &str = "nsinit.cgroup=";

/// The I/O port of QEMU's `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Which cgroup hierarchy the guest init mounts on `/sys/fs/cgroup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// A tmpfs with one cgroup v1 hierarchy per controller (`/sys/fs/cgroup/memory`, ...).
    V1,
    /// The unified hierarchy, every controller enabled for the children of the root.
    V2,
}

impl CgroupMode {
    /// v2 first: it is the hierarchy most hosts run today.
    pub const ALL: [CgroupMode; 2] = [CgroupMode::V2, CgroupMode::V1];

    pub fn parse(text: &str) -> Option<CgroupMode> {
        match text {
            "v1" | "1" => Some(CgroupMode::V1),
            "v2" | "2" => Some(CgroupMode::V2),
            _ => None,
        }
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
        })
    }
}

/// The guest's part of the kernel command line: serial console, only critical kernel messages
/// (errors such as the OOM killer's would interleave with the suite's lines), no reboot on panic
/// (QEMU's `-no-reboot` then ends the run), no crypto self-tests (slow under TCG), and the
/// cgroup switch.
pub fn kernel_command_line(cgroup: CgroupMode) -> String {
    format!(
        "console=ttyS0 loglevel=3 panic=-1 reboot=t cryptomgr.notests=1 {CGROUP_SWITCH}{cgroup}"
    )
}

/// The cgroup switch in the text of `/proc/cmdline`, if present and valid (the last one wins).
pub fn cgroup_switch(cmdline: &str) -> Option<CgroupMode> {
    let value = cmdline
        .split_whitespace()
        .filter_map(|word| word.strip_prefix(CGROUP_SWITCH))
        .next_back()?;
    CgroupMode::parse(value)
}

/// The enabled controllers in the text of `/proc/cgroups`, each to be its own v1 hierarchy.
pub fn v1_controllers(table: &str) -> Vec<&str> {
    table
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() == 4 && fields[3] == "1").then_some(fields[0])
        })
        .collect()
}

/// What the guest reports through `isa-debug-exit`; QEMU then exits with `(value << 1) | 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStatus {
    /// The suite command exited 0.
    Passed,
    /// The suite command exited non-zero.
    Failed,
    /// The init could not prepare the guest (a mount, a module, the cgroup switch).
    InitError,
}

impl GuestStatus {
    const ALL: [GuestStatus; 3] = [
        GuestStatus::Passed,
        GuestStatus::Failed,
        GuestStatus::InitError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GuestStatus::Passed => "passed",
            GuestStatus::Failed => "failed",
            GuestStatus::InitError => "init-error",
        }
    }

    pub fn from_name(name: &str) -> Option<GuestStatus> {
        Self::ALL.into_iter().find(|status| status.name() == name)
    }

    /// The value written to the debug-exit port.
    pub fn port_value(self) -> u32 {
        match self {
            GuestStatus::Passed => 0,
            GuestStatus::Failed => 1,
            GuestStatus::InitError => 2,
        }
    }

    /// Reads QEMU's exit code back; `None` when the guest never wrote to the port (QEMU's own
    /// 0 after a power-off or a guest panic, or 1 for QEMU's own errors).
    pub fn from_qemu_exit(code: i32) -> Option<GuestStatus> {
        Self::ALL
            .into_iter()
            .find(|status| (status.port_value() << 1 | 1) as i32 == code)
    }
}

/// A shell command line running `program` with `args`, each quoted for `sh`.
pub fn shell_command(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one `sh` word: bare when it is plainly safe, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-_.=,:+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_survive_the_qemu_exit_code() {
        for status in GuestStatus::ALL {
            let exit = (status.port_value() << 1 | 1) as i32;
            assert_eq!(GuestStatus::from_qemu_exit(exit), Some(status));
            assert_eq!(GuestStatus::from_name(status.name()), Some(status));
        }
        // QEMU's 0 (power-off, or a panic with -no-reboot) never means a status was sent.
        assert_eq!(GuestStatus::from_qemu_exit(0), None);
        assert_eq!(GuestStatus::from_qemu_exit(1), Some(GuestStatus::Passed));
        assert_eq!(GuestStatus::from_qemu_exit(3), Some(GuestStatus::Failed));
        assert_eq!(GuestStatus::from_qemu_exit(7), None);
    }

    #[test]
    fn command_line_carries_the_cgroup_switch() {
        assert!(kernel_command_line(CgroupMode::V1).ends_with(" nsinit.cgroup=v1"));
        assert!(kernel_command_line(CgroupMode::V2).contains("panic=-1"));
        assert_eq!(CgroupMode::parse("v2"), Some(CgroupMode::V2));
        assert_eq!(CgroupMode::parse("v3"), None);
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        let args = [
            "--filter".to_string(),
            "it's a test".to_string(),
            String::new(),
            "a=b".to_string(),
        ];
        assert_eq!(
            shell_command("/bin/x", &args),
            r"/bin/x --filter 'it'\''s a test' '' a=b"
        );
    }

    #[test]
    fn the_init_reads_the_switch_from_proc_cmdline() {
        let cmdline = format!("{} quiet\n", kernel_command_line(CgroupMode::V1));
        assert_eq!(cgroup_switch(&cmdline), Some(CgroupMode::V1));
        assert_eq!(
            cgroup_switch("console=ttyS0 nsinit.cgroup=v1 nsinit.cgroup=v2"),
            Some(CgroupMode::V2)
        );
        assert_eq!(cgroup_switch("console=ttyS0"), None);
        assert_eq!(cgroup_switch("nsinit.cgroup=hybrid"), None);
    }

    #[test]
    fn v1_hierarchies_are_the_enabled_controllers() {
        let table = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                     cpuset\t0\t1\t1\ncpu\t0\t1\t1\nmemory\t0\t1\t1\nrdma\t0\t1\t0\n";
        assert_eq!(v1_controllers(table), ["cpuset", "cpu", "memory"]);
    }
}
