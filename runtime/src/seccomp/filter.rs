//! A compiled seccomp filter (classic BPF program + `seccomp(2)` flags): its recorded form and
//! its installation into the calling process, the last step before `execve`.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::profile::Flag;
use super::SeccompError;

/// The most instructions one classic BPF program may have (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// `install` hands a slice of `Instruction` to the kernel as `struct sock_filter[]`.
const _: () = {
    assert!(std::mem::size_of::<Instruction>() == std::mem::size_of::<libc::sock_filter>());
    assert!(std::mem::align_of::<Instruction>() == std::mem::align_of::<libc::sock_filter>());
    assert!(
        std::mem::offset_of!(Instruction, code) == std::mem::offset_of!(libc::sock_filter, code)
    );
    assert!(std::mem::offset_of!(Instruction, jt) == std::mem::offset_of!(libc::sock_filter, jt));
    assert!(std::mem::offset_of!(Instruction, jf) == std::mem::offset_of!(libc::sock_filter, jf));
    assert!(std::mem::offset_of!(Instruction, k) == std::mem::offset_of!(libc::sock_filter, k));
};

impl Instruction {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Instruction {
        Instruction { code, jt, jf, k }
    }

    /// The instruction as the 8 bytes of `struct sock_filter` on this (little-endian) host.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut bytes = [0; 8];
        bytes[..2].copy_from_slice(&self.code.to_le_bytes());
        bytes[2] = self.jt;
        bytes[3] = self.jf;
        bytes[4..].copy_from_slice(&self.k.to_le_bytes());
        bytes
    }

    pub fn from_bytes(bytes: [u8; 8]) -> Instruction {
        Instruction {
            code: u16::from_le_bytes([bytes[0], bytes[1]]),
            jt: bytes[2],
            jf: bytes[3],
            k: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

/// A compiled filter, ready to install: the program and the `seccomp(2)` flags.
///
/// Recorded as JSON (`{"flags": [...], "program": "<hex of struct sock_filter[]>"}`) so that
/// the state record can hold it and a join installs exactly what the start installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    flags: u32,
    program: Cow<'static, [Instruction]>,
}

impl Filter {
    /// A filter of `program` with the `seccomp(2)` `flags`: fails when the program is empty or
    /// longer than the kernel takes.
    pub fn new(program: Vec<Instruction>, flags: &[Flag]) -> Result<Filter, SeccompError> {
        check_length(program.len())?;
        Ok(Filter {
            flags: flags.iter().fold(0, |bits, flag| bits | flag.bit()),
            program: Cow::Owned(program),
        })
    }

    /// A filter of a program compiled in (the default, see `default_program.rs`).
    pub(super) const fn from_static(program: &'static [Instruction], flags: u32) -> Filter {
        Filter {
            flags,
            program: Cow::Borrowed(program),
        }
    }

    pub fn instructions(&self) -> &[Instruction] {
        &self.program
    }

    /// The flags, as `seccomp(2)` takes them.
    pub fn flag_bits(&self) -> u32 {
        self.flags
    }

    /// The flags, as the spec names them.
    pub fn flags(&self) -> Vec<Flag> {
        Flag::ALL
            .iter()
            .copied()
            .filter(|flag| self.flags & flag.bit() != 0)
            .collect()
    }

    /// The program as `struct sock_filter[]` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.program.iter().flat_map(|i| i.to_bytes()).collect()
    }
}

fn check_length(instructions: usize) -> Result<(), SeccompError> {
    if instructions == 0 || instructions > MAX_INSTRUCTIONS {
        return Err(SeccompError::Length { instructions });
    }
    Ok(())
}

/// Loads `filter` into the calling process: `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`.
///
/// The caller has set `no_new_privs` or holds `CAP_SYS_ADMIN` (else the kernel refuses with
/// EACCES). Every later call of this process and its children goes through the filter, so the
/// engine calls this last, just before `execve`. It does not allocate: it runs in the child
/// between `clone` and `execve`.
pub fn install(filter: &Filter) -> nix::Result<()> {
    crate::seccomp::sys::set_mode_filter(&filter.program, filter.flags)
}

impl Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Recorded {
            flags: Vec<Flag>,
            program: String,
        }
        let mut program = String::with_capacity(self.program.len() * 16);
        for byte in self.to_bytes() {
            // Writing into a String cannot fail.
            let _ = write!(program, "{byte:02x}");
        }
        Recorded {
            flags: self.flags(),
            program,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Recorded {
            #[serde(default)]
            flags: Vec<Flag>,
            program: String,
        }
        let recorded = Recorded::deserialize(deserializer)?;
        let hex = recorded.program.as_bytes();
        if hex.len() % 16 != 0 {
            return Err(D::Error::custom(format!(
                "seccomp program: {} hex digits is not a whole number of 8-byte instructions",
                hex.len()
            )));
        }
        let mut program = Vec::with_capacity(hex.len() / 16);
        for chunk in hex.chunks_exact(16) {
            let mut bytes = [0; 8];
            for (byte, pair) in bytes.iter_mut().zip(chunk.chunks_exact(2)) {
                *byte = match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(high), Some(low)) => high << 4 | low,
                    _ => {
                        return Err(D::Error::custom(format!(
                            "seccomp program: {:?} is not a hex byte",
                            String::from_utf8_lossy(pair)
                        )))
                    }
                };
            }
            program.push(Instruction::from_bytes(bytes));
        }
        Filter::new(program, &recorded.flags).map_err(D::Error::custom)
    }
}

fn nibble(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|value| value as u8)
}
