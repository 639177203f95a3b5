//! Tests only: a classic BPF interpreter over `struct seccomp_data`, to ask a compiled filter
//! what it does with any call on any ABI (x32 included, which this kernel may lack).

use super::filter::Instruction;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// Bit 30 of the call's number: the x32 ABI (with AUDIT_ARCH_X86_64).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// One call as the filter sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub arch: u32,
    pub nr: u32,
    pub args: [u64; 6],
}

impl Call {
    pub fn new(arch: u32, nr: u32) -> Call {
        Call {
            arch,
            nr,
            args: [0; 6],
        }
    }

    pub fn arg0(mut self, value: u64) -> Call {
        self.args[0] = value;
        self
    }

    /// The 32-bit word at `offset` of `struct seccomp_data` (little-endian).
    fn word(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0, // instruction_pointer
            16..=63 if offset % 4 == 0 => {
                let arg = self.args[((offset - 16) / 8) as usize];
                if offset % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => panic!("load of seccomp_data at {offset}"),
        }
    }
}

/// What `program` returns for `call` (`SECCOMP_RET_*` with its data).
pub fn run(program: &[Instruction], call: &Call) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut memory = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let Instruction { code, jt, jf, k } = program[pc];
        pc += 1;
        let operand = if code & 0x08 != 0 { x } else { k };
        match code & 0x07 {
            0x00 => match code & 0xe0 {
                0x00 => a = k,
                0x20 => a = call.word(k),
                0x60 => a = memory[k as usize],
                mode => panic!("ld mode {mode:#x}"),
            },
            0x01 => match code & 0xe0 {
                0x00 => x = k,
                0x60 => x = memory[k as usize],
                mode => panic!("ldx mode {mode:#x}"),
            },
            0x02 => memory[k as usize] = a,
            0x03 => memory[k as usize] = x,
            0x04 => {
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.wrapping_shl(operand),
                    0x70 => a.wrapping_shr(operand),
                    0x80 => a.wrapping_neg(),
                    0xa0 => a ^ operand,
                    op => panic!("alu op {op:#x}"),
                }
            }
            0x05 => {
                let taken = match code & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    0x40 => a & operand != 0,
                    op => panic!("jmp op {op:#x}"),
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            0x06 => return if code & 0x18 == 0x10 { a } else { k },
            _ => {
                if code & 0xf8 == 0x80 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
}
