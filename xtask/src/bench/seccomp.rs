//! nsinit's default seccomp program for `floor.c --hardened`, read from the runtime's
//! generated `default_program.rs` (xtask does not link the runtime library): the same 95 or
//! so instructions nsinit loads, as the raw `struct sock_filter` array the floor reads.

use anyhow::{bail, Context, Result};

/// The generated file, as compiled into this xtask.
const GENERATED: &str = include_str!("../../../runtime/src/seccomp/default_program.rs");

/// The default program as bytes (`code: u16, jt: u8, jf: u8, k: u32`, native endian).
pub fn default_program() -> Result<Vec<u8>> {
    program_bytes(GENERATED)
}

/// Parses the `Instruction::new(code, jt, jf, k)` lines of the generated file; its `FLAGS`
/// must be 0 (the floor loads with no flags).
fn program_bytes(source: &str) -> Result<Vec<u8>> {
    let flags = source
        .lines()
        .find_map(|l| l.trim().strip_prefix("pub(super) const FLAGS: u32 = "))
        .context("default_program.rs: no FLAGS")?;
    if flags.trim_end_matches(';') != "0" {
        bail!("default_program.rs: FLAGS is {flags}, but floor.c loads the filter with flags 0");
    }
    let mut bytes = Vec::new();
    for line in source.lines() {
        let Some(args) = line
            .trim()
            .strip_prefix("Instruction::new(")
            .and_then(|rest| rest.strip_suffix("),"))
        else {
            continue;
        };
        let fields: Vec<u32> = args
            .split(',')
            .map(|f| number(f.trim()))
            .collect::<Option<_>>()
            .with_context(|| format!("default_program.rs: cannot read {line:?}"))?;
        let [code, jt, jf, k] = fields[..] else {
            bail!("default_program.rs: {line:?} does not have four fields");
        };
        bytes.extend_from_slice(&(code as u16).to_ne_bytes());
        bytes.push(jt as u8);
        bytes.push(jf as u8);
        bytes.extend_from_slice(&k.to_ne_bytes());
    }
    if bytes.is_empty() {
        bail!("default_program.rs: no instructions");
    }
    Ok(bytes)
}

fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_program_is_read_whole() {
        let declared: usize = GENERATED
            .split_once("[Instruction; ")
            .and_then(|(_, rest)| rest.split_once(']'))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap();
        let bytes = default_program().unwrap();
        assert_eq!(bytes.len(), declared * 8);
        // The first instruction loads the architecture: `BPF_LD|BPF_W|BPF_ABS`, offset 4.
        assert_eq!(bytes[..8], [0x20, 0, 0, 0, 4, 0, 0, 0]);
    }

    #[test]
    fn flags_other_than_zero_are_refused() {
        let source =
            "pub(super) const FLAGS: u32 = 2;\nInstruction::new(0x0006, 0, 0, 0x7fff0000),\n";
        assert!(program_bytes(source).is_err());
        let ok = source.replace("= 2;", "= 0;");
        assert_eq!(program_bytes(&ok).unwrap(), [6, 0, 0, 0, 0, 0, 0xff, 0x7f]);
    }

    /// floor.c's lists are nsinit's, so `floor --hardened` does the same mounts.
    #[test]
    fn the_floor_masks_what_nsinit_masks() {
        let lower = include_str!("../../../runtime/src/spec/container_json/lower.rs");
        let floor = include_str!("../../bench/floor.c");
        for (rust, c) in [
            ("pub const MASKED_PATHS", "static const char *masked[]"),
            ("pub const READONLY_PATHS", "static const char *readonly[]"),
        ] {
            assert_eq!(quoted(lower, rust, "];"), quoted(floor, c, "};"), "{rust}");
        }
    }

    /// The quoted strings between `start` and the next `end` in `text`.
    fn quoted<'a>(text: &'a str, start: &str, end: &str) -> Vec<&'a str> {
        let (_, rest) = text.split_once(start).unwrap();
        let (block, _) = rest.split_once(end).unwrap();
        let block = block.split_once('=').map_or(block, |(_, b)| b);
        block.split('"').skip(1).step_by(2).collect()
    }
}
