// What nsinit and its exec trampoline (`trampoline/main.rs`) agree on: included by both, so
// that the two sides cannot drift apart. Constants only; the trampoline has no `std`.

/// `argv[1]` of every trampoline nsinit starts. Anything else means the program was started
/// by something other than nsinit (a script naming `/proc/self/exe` as its interpreter).
pub const MAGIC: &[u8] = b"nsinit-trampoline/1";

/// The arguments before the candidate paths: `argv[0]`, [`MAGIC`], the channel's fd, the
/// terminal's fd (or `-`), the seccomp program's fd (or `-`), the `seccomp(2)` flags and
/// the number of candidate paths. Then the candidates, then the command's own `argv`.
pub const FIXED_ARGS: usize = 7;

/// Trampoline → nsinit: the command's process was forked; then the pid (`i32`, little endian),
/// in the trampoline's pid namespace, which is nsinit's.
pub const TAG_FORKED: u8 = 6;
/// Trampoline or the command's process → nsinit: a step failed; then the step (`u8`), the
/// errno (`i32`) and, for [`STEP_EXEC`], the index of the candidate path (`u32`, the count
/// of candidates when none was found), little endian.
pub const TAG_STEP_FAILED: u8 = 7;

pub const STEP_ARGUMENTS: u8 = 1;
pub const STEP_READ_SECCOMP: u8 = 2;
pub const STEP_FORK: u8 = 3;
pub const STEP_TERMINAL: u8 = 4;
pub const STEP_SECCOMP: u8 = 5;
pub const STEP_EXEC: u8 = 6;

/// The largest seccomp program the kernel takes: `BPF_MAXINSNS` instructions of 8 bytes.
pub const MAX_PROGRAM_BYTES: usize = 4096 * 8;
