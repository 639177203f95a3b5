//! Which device nodes a container's processes may open and make: rules shaped like OCI
//! `linux.resources.devices`, the default allowlist, and putting them on the group (cgroup
//! v1 `devices.deny`/`devices.allow`, cgroup v2 a `BPF_PROG_TYPE_CGROUP_DEVICE` program).
//!
//! Meaning of a rule list: starting from "nothing allowed", rules apply in order and the
//! last rule naming a device and an access decides it, as on the v1 kernel and in runc's
//! emulation of it. The list is first lowered, purely, to the one form both kernel
//! interfaces hold ([`DevicePolicy`]): a default verdict plus exceptions to it. Two cases
//! follow from that form, the same on v1 and v2:
//! - a rule cutting a hole in a wider earlier exception (`deny c 1:11 m` after
//!   `allow c *:* m`, on a deny-by-default list) is refused: the v1 list cannot hold it (the
//!   kernel would silently keep the wider rule);
//! - a request for several accesses at once (an `O_RDWR` open asks `r` and `w`) needs one
//!   exception granting all of them on a deny-by-default list, and is refused by any deny
//!   exception sharing one of them on an allow-by-default list, as the v1 kernel checks.
//!
//! Apply the rules to the group before any process is in it: the start path makes the group,
//! applies them, then places the first process (v1) or clones it into the group (v2).

use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::describe_io;
use crate::sys;

/// The largest major and minor numbers a `dev_t` holds in the kernel (12 and 20 bits).
const MAX_MAJOR: u32 = (1 << 12) - 1;
const MAX_MINOR: u32 = (1 << 20) - 1;

/// The container's own `/dev` (made by `mounts.rs` on a fresh tmpfs), which every container
/// may read, write and make: what runc, crun and youki allow by default. runc also allowed
/// `/dev/net/tun` (10:200) until 1.2; nsinit does not.
const DEV_SET: [(&str, u32, Option<u32>); 9] = [
    ("null", 1, Some(3)),
    ("zero", 1, Some(5)),
    ("full", 1, Some(7)),
    ("random", 1, Some(8)),
    ("urandom", 1, Some(9)),
    ("tty", 5, Some(0)),
    ("console", 5, Some(1)),
    ("ptmx", 5, Some(2)),
    // Unix98 pty slaves, /dev/pts/N.
    ("pts/*", 136, None),
];

/// The rules every container gets unless its config says otherwise: deny everything, allow
/// making any char and block node (opening one is what grants access, and images are
/// unpacked with `mknod`), and allow everything on the container's own `/dev` set.
pub fn default_rules() -> Vec<DeviceRule> {
    let mut rules = vec![
        DeviceRule::reset(false),
        DeviceRule::any(DeviceType::Char, Access::MKNOD),
        DeviceRule::any(DeviceType::Block, Access::MKNOD),
    ];
    rules.extend(DEV_SET.iter().map(|&(_, major, minor)| DeviceRule {
        allow: true,
        kind: DeviceType::Char,
        major: Some(major),
        minor,
        access: Access::ALL,
    }));
    rules
}

/// A bad device rule, or a failed step putting the rules on a group.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device rule type {value:?}: not a (all), c (char) or b (block)")]
    Type { value: String },
    #[error("device rule access {value:?}: {letter:?} is not r (read), w (write) or m (mknod)")]
    Access { value: String, letter: char },
    #[error("device rule access \"\": names no access; give some of r, w, m, or leave it out for all three")]
    EmptyAccess,
    #[error("device rule {field} {value}: not a device number (0 to {max})")]
    Number {
        field: &'static str,
        value: i64,
        max: u32,
    },
    #[error("device rule {rule}: would cut a hole in the earlier {earlier}, which a cgroup v1 device list cannot hold; list the devices that rule is meant for instead")]
    Hole { rule: DeviceRule, earlier: String },
    #[error("write device rule {entry:?} to {}: {}", .path.display(), describe_io(.error))]
    Write {
        path: PathBuf,
        entry: String,
        error: io::Error,
    },
    #[error("load device program for cgroup {}: {}{}", .path.display(), describe_io(.error), verifier(.log))]
    Load {
        path: PathBuf,
        error: io::Error,
        /// What the verifier said, when it said anything.
        log: String,
    },
    #[error("list the device programs of cgroup {}: {}", .path.display(), describe_io(.error))]
    Query { path: PathBuf, error: io::Error },
    #[error("attach device program to cgroup {}: {}", .path.display(), describe_io(.error))]
    Attach { path: PathBuf, error: io::Error },
    #[error("detach the earlier device program {id} from cgroup {}: {}", .path.display(), describe_io(.error))]
    Detach {
        path: PathBuf,
        id: u32,
        error: io::Error,
    },
}

/// The verifier's last words for an error line: its final lines, joined.
fn verifier(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(3)..];
    format!(" (verifier: {})", tail.join("; "))
}

/// The device type a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// `a`: char and block devices.
    All,
    /// `c`
    Char,
    /// `b`
    Block,
}

impl DeviceType {
    fn letter(self) -> char {
        match self {
            DeviceType::All => 'a',
            DeviceType::Char => 'c',
            DeviceType::Block => 'b',
        }
    }

    /// The node types the rule covers.
    fn nodes(self) -> &'static [Node] {
        match self {
            DeviceType::All => &[Node::Char, Node::Block],
            DeviceType::Char => &[Node::Char],
            DeviceType::Block => &[Node::Block],
        }
    }
}

impl FromStr for DeviceType {
    type Err = DeviceError;

    fn from_str(value: &str) -> Result<Self, DeviceError> {
        match value {
            "a" => Ok(DeviceType::All),
            "c" => Ok(DeviceType::Char),
            "b" => Ok(DeviceType::Block),
            _ => Err(DeviceError::Type {
                value: value.into(),
            }),
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

impl Serialize for DeviceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a rule allows or denies: some of read, write and mknod. The bits are the kernel's
/// `BPF_DEVCG_ACC_*`, so the program compares them as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access(u8);

impl Access {
    pub const MKNOD: Access = Access(1);
    pub const READ: Access = Access(2);
    pub const WRITE: Access = Access(4);
    pub const ALL: Access = Access(7);

    /// Whether every access of `other` is in this one.
    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    fn intersects(self, other: Access) -> bool {
        self.0 & other.0 != 0
    }

    fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    fn without(self, other: Access) -> Access {
        Access(self.0 & !other.0)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn bits(self) -> i32 {
        i32::from(self.0)
    }
}

impl FromStr for Access {
    type Err = DeviceError;

    /// Letters `r`, `w`, `m`, in any order.
    fn from_str(value: &str) -> Result<Self, DeviceError> {
        if value.is_empty() {
            return Err(DeviceError::EmptyAccess);
        }
        let mut access = Access(0);
        for letter in value.chars() {
            access = access.union(match letter {
                'r' => Access::READ,
                'w' => Access::WRITE,
                'm' => Access::MKNOD,
                _ => {
                    return Err(DeviceError::Access {
                        value: value.into(),
                        letter,
                    })
                }
            });
        }
        Ok(access)
    }
}

impl fmt::Display for Access {
    /// Canonical order, as `devices.list` shows it: `rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Access({self})")
    }
}

impl Serialize for Access {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One device rule, as OCI `linux.resources.devices` writes it:
/// `{"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}`. An absent type
/// is `a`, an absent major or minor is any (`*`), an absent access is `rwm`. Valid by
/// construction: made by [`DeviceRule::new`] or deserialized through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RuleFields")]
pub struct DeviceRule {
    allow: bool,
    #[serde(rename = "type")]
    kind: DeviceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    major: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minor: Option<u32>,
    access: Access,
}

/// A rule as JSON has it, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFields {
    allow: bool,
    #[serde(rename = "type")]
    kind: Option<String>,
    major: Option<i64>,
    minor: Option<i64>,
    access: Option<String>,
}

impl TryFrom<RuleFields> for DeviceRule {
    type Error = DeviceError;

    fn try_from(f: RuleFields) -> Result<Self, DeviceError> {
        DeviceRule::new(
            f.allow,
            f.kind.as_deref().unwrap_or("a"),
            f.major,
            f.minor,
            f.access.as_deref().unwrap_or("rwm"),
        )
    }
}

impl DeviceRule {
    /// A rule from its OCI fields: `kind` one of `a`, `c`, `b`; `None` for any major or
    /// minor; `access` some of `r`, `w`, `m`.
    pub fn new(
        allow: bool,
        kind: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> Result<DeviceRule, DeviceError> {
        let number = |field, value: Option<i64>, max: u32| {
            value
                .map(|value| {
                    u32::try_from(value)
                        .ok()
                        .filter(|&n| n <= max)
                        .ok_or(DeviceError::Number { field, value, max })
                })
                .transpose()
        };
        Ok(DeviceRule {
            allow,
            kind: kind.parse()?,
            major: number("major", major, MAX_MAJOR)?,
            minor: number("minor", minor, MAX_MINOR)?,
            access: access.parse()?,
        })
    }

    /// `allow a` or `deny a`: every device, every access.
    fn reset(allow: bool) -> DeviceRule {
        DeviceRule {
            allow,
            kind: DeviceType::All,
            major: None,
            minor: None,
            access: Access::ALL,
        }
    }

    /// Allow `access` on every device of `kind`.
    fn any(kind: DeviceType, access: Access) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind,
            major: None,
            minor: None,
            access,
        }
    }

    pub fn allow(&self) -> bool {
        self.allow
    }

    pub fn kind(&self) -> DeviceType {
        self.kind
    }

    pub fn major(&self) -> Option<u32> {
        self.major
    }

    pub fn minor(&self) -> Option<u32> {
        self.minor
    }

    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether this rule sets the verdict for everything and forgets the rules before it.
    fn is_reset(&self) -> bool {
        self.kind == DeviceType::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == Access::ALL
    }
}

impl fmt::Display for DeviceRule {
    /// `allow c 1:3 rwm`, `deny a *:* rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allow { "allow" } else { "deny" };
        write!(
            f,
            "{verdict} {} {}:{} {}",
            self.kind,
            Number(self.major),
            Number(self.minor),
            self.access
        )
    }
}

/// A major or minor as the kernel writes it: the number, or `*` for any.
struct Number(Option<u32>);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "*"),
        }
    }
}

/// A device node type the kernel checks; its value is `BPF_DEVCG_DEV_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Block = 1,
    Char = 2,
}

/// Which devices an exception is about: one node type, a major or any, a minor or any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scope {
    node: Node,
    major: Option<u32>,
    minor: Option<u32>,
}

impl Scope {
    /// Whether every device of `other` is in this scope.
    fn covers(&self, other: &Scope) -> bool {
        let number = |mine: Option<u32>, theirs: Option<u32>| mine.is_none() || mine == theirs;
        self.node == other.node
            && number(self.major, other.major)
            && number(self.minor, other.minor)
    }

    /// Whether some device is in both scopes.
    fn meets(&self, other: &Scope) -> bool {
        let number = |a: Option<u32>, b: Option<u32>| a.is_none() || b.is_none() || a == b;
        self.node == other.node
            && number(self.major, other.major)
            && number(self.minor, other.minor)
    }

    #[cfg(test)]
    fn matches(&self, node: Node, major: u32, minor: u32) -> bool {
        self.node == node
            && self.major.map_or(true, |m| m == major)
            && self.minor.map_or(true, |m| m == minor)
    }
}

/// An exception to the default: these accesses on these devices get the other verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exception {
    scope: Scope,
    access: Access,
}

impl fmt::Display for Exception {
    /// As `devices.allow` takes it: `c 1:3 rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = match self.scope.node {
            Node::Char => 'c',
            Node::Block => 'b',
        };
        write!(
            f,
            "{node} {}:{} {}",
            Number(self.scope.major),
            Number(self.scope.minor),
            self.access
        )
    }
}

/// What a rule list amounts to: a default verdict and the exceptions to it, in the order
/// they were first named. This is how the v1 kernel holds a group's list, and what the v2
/// program is generated from, so both hierarchies enforce the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePolicy {
    default_allow: bool,
    exceptions: Vec<Exception>,
}

impl DevicePolicy {
    /// Lower `rules`, in order, from "nothing allowed"; pure.
    pub fn new(rules: &[DeviceRule]) -> Result<DevicePolicy, DeviceError> {
        let mut policy = DevicePolicy {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for rule in rules {
            policy.apply(rule)?;
        }
        Ok(policy)
    }

    fn apply(&mut self, rule: &DeviceRule) -> Result<(), DeviceError> {
        if rule.is_reset() {
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return Ok(());
        }
        for &node in rule.kind.nodes() {
            let scope = Scope {
                node,
                major: rule.major,
                minor: rule.minor,
            };
            if rule.allow == self.default_allow {
                self.narrow(scope, rule)?;
            } else {
                self.widen(scope, rule.access);
            }
        }
        Ok(())
    }

    /// Add `access` on `scope` to the exceptions (merged into one naming the same scope, as
    /// the kernel merges them).
    fn widen(&mut self, scope: Scope, access: Access) {
        match self.exceptions.iter_mut().find(|e| e.scope == scope) {
            Some(same) => same.access = same.access.union(access),
            None => self.exceptions.push(Exception { scope, access }),
        }
    }

    /// Take `rule`'s access on `scope` out of the exceptions: those inside the scope shrink
    /// or go. One reaching outside it would have to be split, which a v1 list cannot hold.
    fn narrow(&mut self, scope: Scope, rule: &DeviceRule) -> Result<(), DeviceError> {
        if let Some(wider) = self.exceptions.iter().find(|e| {
            e.scope.meets(&scope) && !scope.covers(&e.scope) && e.access.intersects(rule.access)
        }) {
            let verdict = if self.default_allow { "deny" } else { "allow" };
            return Err(DeviceError::Hole {
                rule: *rule,
                earlier: format!("{verdict} {wider}"),
            });
        }
        for exception in &mut self.exceptions {
            if scope.covers(&exception.scope) {
                exception.access = exception.access.without(rule.access);
            }
        }
        self.exceptions.retain(|e| !e.access.is_empty());
        Ok(())
    }

    /// Whether a process of the group may do `access` on the device `node major:minor`: the
    /// v1 kernel's check (`devcgroup_legacy_check_permission`), which the program repeats.
    /// The reference the tests hold the program to.
    #[cfg(test)]
    fn allows(&self, node: Node, major: u32, minor: u32, access: Access) -> bool {
        let mut matching = self
            .exceptions
            .iter()
            .filter(|e| e.scope.matches(node, major, minor));
        if self.default_allow {
            !matching.any(|e| e.access.intersects(access))
        } else {
            matching.any(|e| e.access.contains(access))
        }
    }

    /// The v1 writes that put a group in this policy, in order: the reset (`a` to
    /// `devices.deny` for a deny-by-default policy), then each exception to the other file.
    ///
    /// Why this order: a new v1 group starts with a copy of its parent's list (the root's is
    /// `a *:* rwm`), and an old one may hold anything, so the reset comes first and clears
    /// it; after a deny reset each write only allows more, so while the writes go on the
    /// group allows less than at the end, never more (runc writes the same way). The kernel
    /// refuses (`EPERM`) an allow the parent group does not grant. An allow-by-default policy
    /// opens everything until its denies follow: it belongs on a group no process is in.
    pub fn v1_writes(&self) -> Vec<(&'static str, String)> {
        let (reset, exceptions) = if self.default_allow {
            ("devices.allow", "devices.deny")
        } else {
            ("devices.deny", "devices.allow")
        };
        let mut writes = vec![(reset, "a".to_string())];
        writes.extend(self.exceptions.iter().map(|e| (exceptions, e.to_string())));
        writes
    }

    /// The cgroup v2 device program for this policy.
    ///
    /// Shape (register roles as in runc's `devicefilter`, crun's `ebpf.c`, systemd): load
    /// the request from `struct bpf_cgroup_dev_ctx` into r2 (type), r3 (access), r4 (major),
    /// r5 (minor); then one block per exception that jumps to the next block at the first
    /// check that fails (type, access, major, minor) and otherwise returns the exception's
    /// verdict; then the default verdict. Every exception has the same verdict, so the
    /// order of the blocks does not matter. The access check is the v1 kernel's: on a
    /// deny-by-default policy the request must ask nothing outside the exception's access
    /// (`if r3 & ~access goto next`); on an allow-by-default one it must share some of it.
    pub fn program(&self) -> Program {
        let mut program = Program::default();
        let exception_verdict = i32::from(!self.default_allow);
        if !self.exceptions.is_empty() {
            program.note("r2 = type, r3 = access, r4 = major, r5 = minor");
            program.insns.extend([
                Insn::LoadCtx { dst: 2, off: 0 },
                Insn::And32 {
                    dst: 2,
                    imm: 0xffff,
                },
                Insn::LoadCtx { dst: 3, off: 0 },
                Insn::Rsh32 { dst: 3, imm: 16 },
                Insn::LoadCtx { dst: 4, off: 4 },
                Insn::LoadCtx { dst: 5, off: 8 },
            ]);
        }
        let verdict = |allow: bool| if allow { "allow" } else { "deny" };
        for exception in &self.exceptions {
            let scope = exception.scope;
            // Jumps are made with offset 0 and aimed at the next block below.
            let mut block = vec![Insn::JumpNe {
                dst: 2,
                imm: scope.node as i32,
                off: 0,
            }];
            if exception.access != Access::ALL {
                if self.default_allow {
                    block.extend([
                        Insn::Mov32 { dst: 1, src: 3 },
                        Insn::And32 {
                            dst: 1,
                            imm: exception.access.bits(),
                        },
                        Insn::JumpEq {
                            dst: 1,
                            imm: 0,
                            off: 0,
                        },
                    ]);
                } else {
                    block.push(Insn::JumpSet {
                        dst: 3,
                        imm: Access::ALL.without(exception.access).bits(),
                        off: 0,
                    });
                }
            }
            // Majors and minors are at most 20 bits: the immediates are never negative.
            if let Some(major) = scope.major {
                block.push(Insn::JumpNe {
                    dst: 4,
                    imm: major as i32,
                    off: 0,
                });
            }
            if let Some(minor) = scope.minor {
                block.push(Insn::JumpNe {
                    dst: 5,
                    imm: minor as i32,
                    off: 0,
                });
            }
            block.extend([
                Insn::MovImm32 {
                    dst: 0,
                    imm: exception_verdict,
                },
                Insn::Exit,
            ]);
            let len = block.len();
            for (i, insn) in block.iter_mut().enumerate() {
                insn.aim((len - i - 1) as i16);
            }
            program.note(&format!("{} {exception}", verdict(!self.default_allow)));
            program.insns.extend(block);
        }
        program.note(&format!("otherwise {}", verdict(self.default_allow)));
        program.insns.extend([
            Insn::MovImm32 {
                dst: 0,
                imm: i32::from(self.default_allow),
            },
            Insn::Exit,
        ]);
        program
    }
}

/// A generated eBPF program, with notes saying which part does what. Its `Display` is a
/// listing, one instruction per line in the kernel's notation, jumps to absolute indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    /// (index of the instruction the note is about, note)
    notes: Vec<(usize, String)>,
}

impl Program {
    fn note(&mut self, text: &str) {
        self.notes.push((self.insns.len(), text.to_string()));
    }

    /// How many instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The instructions as the kernel takes them (`struct bpf_insn`).
    pub fn encode(&self) -> Vec<[u8; 8]> {
        self.insns.iter().map(|insn| insn.encode()).collect()
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut notes = self.notes.iter().peekable();
        for (pc, insn) in self.insns.iter().enumerate() {
            while let Some((_, note)) = notes.next_if(|(at, _)| *at == pc) {
                writeln!(f, "    ; {note}")?;
            }
            writeln!(f, "{pc:>3}: {}", insn.listing(pc))?;
        }
        Ok(())
    }
}

/// eBPF opcode parts (include/uapi/linux/bpf_common.h, bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JSET: u8 = 0x40;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

/// The few eBPF instructions a device program needs. Registers by number; `w` is the 32-bit
/// view of a register (its upper half is zeroed), `r` the 64-bit one; jump offsets count
/// instructions after the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insn {
    /// `rD = *(u32 *)(r1 + off)`: a field of the request.
    LoadCtx { dst: u8, off: i16 },
    /// `wD &= imm`
    And32 { dst: u8, imm: i32 },
    /// `wD >>= imm`
    Rsh32 { dst: u8, imm: i32 },
    /// `wD = wS`
    Mov32 { dst: u8, src: u8 },
    /// `wD = imm`
    MovImm32 { dst: u8, imm: i32 },
    /// `if rD != imm goto +off`
    JumpNe { dst: u8, imm: i32, off: i16 },
    /// `if rD == imm goto +off`
    JumpEq { dst: u8, imm: i32, off: i16 },
    /// `if rD & imm goto +off`
    JumpSet { dst: u8, imm: i32, off: i16 },
    /// return r0
    Exit,
}

impl Insn {
    /// Set a jump's offset; other instructions stay as they are.
    fn aim(&mut self, to: i16) {
        match self {
            Insn::JumpNe { off, .. } | Insn::JumpEq { off, .. } | Insn::JumpSet { off, .. } => {
                *off = to
            }
            _ => {}
        }
    }

    /// `struct bpf_insn`: opcode, dst and src register nibbles, offset, immediate.
    fn encode(self) -> [u8; 8] {
        let (code, dst, src, off, imm) = match self {
            Insn::LoadCtx { dst, off } => (BPF_LDX | BPF_MEM | BPF_W, dst, 1, off, 0),
            Insn::And32 { dst, imm } => (BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm),
            Insn::Rsh32 { dst, imm } => (BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm),
            Insn::Mov32 { dst, src } => (BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0),
            Insn::MovImm32 { dst, imm } => (BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm),
            Insn::JumpNe { dst, imm, off } => (BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm),
            Insn::JumpEq { dst, imm, off } => (BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm),
            Insn::JumpSet { dst, imm, off } => (BPF_JMP | BPF_JSET | BPF_K, dst, 0, off, imm),
            Insn::Exit => (BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        };
        // The register byte is a C bitfield pair, `dst_reg:4, src_reg:4`: its nibble order
        // follows the byte order.
        let regs = if cfg!(target_endian = "little") {
            dst | src << 4
        } else {
            dst << 4 | src
        };
        let mut bytes = [0; 8];
        bytes[0] = code;
        bytes[1] = regs;
        bytes[2..4].copy_from_slice(&off.to_ne_bytes());
        bytes[4..8].copy_from_slice(&imm.to_ne_bytes());
        bytes
    }

    /// One line of listing for the instruction at `pc`.
    fn listing(self, pc: usize) -> String {
        let target = |off: i16| pc as i64 + 1 + i64::from(off);
        match self {
            Insn::LoadCtx { dst, off } => format!("r{dst} = *(u32 *)(r1 + {off})"),
            Insn::And32 { dst, imm } => format!("w{dst} &= {imm:#x}"),
            Insn::Rsh32 { dst, imm } => format!("w{dst} >>= {imm}"),
            Insn::Mov32 { dst, src } => format!("w{dst} = w{src}"),
            Insn::MovImm32 { dst, imm } => format!("w{dst} = {imm}"),
            Insn::JumpNe { dst, imm, off } => format!("if r{dst} != {imm} goto {}", target(off)),
            Insn::JumpEq { dst, imm, off } => format!("if r{dst} == {imm} goto {}", target(off)),
            Insn::JumpSet { dst, imm, off } => {
                format!("if r{dst} & {imm:#x} goto {}", target(off))
            }
            Insn::Exit => "exit".to_string(),
        }
    }
}

/// The program's name in `bpftool prog` listings.
const PROGRAM_NAME: &str = "nsinit_devices";
/// The license the kernel records for the program (it uses no GPL-only helper).
const LICENSE: &std::ffi::CStr = c"Apache-2.0";
/// Room for the verifier's account of a refused program (it is read only on failure).
const LOG_SIZE: usize = 64 * 1024;

/// cgroup v1: write `policy` into the group at `dir` (a directory of the devices
/// hierarchy), in [`DevicePolicy::v1_writes`] order, one rule per `write(2)` as the kernel
/// takes them.
pub(super) fn write_v1(dir: &Path, policy: &DevicePolicy) -> Result<(), DeviceError> {
    let mut open: Option<(&str, File)> = None;
    for (name, entry) in policy.v1_writes() {
        let path = dir.join(name);
        let write = |open: &mut Option<(&str, File)>| -> io::Result<()> {
            if open.as_ref().map_or(true, |(current, _)| *current != name) {
                *open = Some((name, File::options().write(true).open(&path)?));
            }
            let (_, file) = open.as_mut().expect("opened above");
            file.write_all(format!("{entry}\n").as_bytes())
        };
        write(&mut open).map_err(|error| DeviceError::Write {
            path: path.clone(),
            entry: entry.clone(),
            error,
        })?;
    }
    Ok(())
}

/// cgroup v2: load `program` and attach it to the group `dir` (open as `dir_fd`), then take
/// off any device program attached to the group before (a group left by a crash and
/// reused): the new one is in place first, and while both are there a request must pass
/// both, so the group never allows more than either.
///
/// Lifetime: the attachment holds its own reference to the program, and the fd loaded here
/// is closed on return. When the group is removed, the kernel detaches and frees its
/// programs as it releases the group (`cgroup_bpf_release`): nothing is pinned, nothing is
/// left to clean up. With `BPF_F_ALLOW_MULTI`, programs on the group's ancestors run too,
/// and groups the container makes below its own run this one.
pub(super) fn attach_program(
    dir: &Path,
    dir_fd: BorrowedFd<'_>,
    program: &Program,
) -> Result<(), DeviceError> {
    let prog = load(dir, program)?;
    let mut ids = [0u32; sys::BPF_CGROUP_MAX_PROGS];
    let earlier =
        sys::bpf_prog_query(dir_fd, sys::BPF_CGROUP_DEVICE, &mut ids).map_err(|error| {
            DeviceError::Query {
                path: dir.to_path_buf(),
                error,
            }
        })?;
    sys::bpf_prog_attach(
        dir_fd,
        prog.as_fd(),
        sys::BPF_CGROUP_DEVICE,
        sys::BPF_F_ALLOW_MULTI,
    )
    .map_err(|error| DeviceError::Attach {
        path: dir.to_path_buf(),
        error,
    })?;
    for &id in &ids[..earlier] {
        let detach = sys::bpf_prog_get_fd_by_id(id)
            .and_then(|old| sys::bpf_prog_detach(dir_fd, old.as_fd(), sys::BPF_CGROUP_DEVICE));
        match detach {
            // Gone meanwhile: nothing to take off.
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(error) => {
                return Err(DeviceError::Detach {
                    path: dir.to_path_buf(),
                    id,
                    error,
                })
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// Load the program; when the kernel refuses it, load it again with the verifier's log so
/// the error says why (the log costs verifier time, so the first attempt goes without).
fn load(dir: &Path, program: &Program) -> Result<OwnedFd, DeviceError> {
    let insns = program.encode();
    let load = |log| {
        sys::bpf_prog_load(
            sys::BPF_PROG_TYPE_CGROUP_DEVICE,
            &insns,
            LICENSE,
            PROGRAM_NAME,
            log,
        )
    };
    match load(None) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let mut log = vec![0u8; LOG_SIZE];
            let retry = load(Some(&mut log));
            retry.map_err(|error| {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                DeviceError::Load {
                    path: dir.to_path_buf(),
                    error,
                    log: String::from_utf8_lossy(&log[..end]).into_owned(),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests;
