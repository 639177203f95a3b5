//! Unpacking a bzImage into the uncompressed `vmlinux` ELF that QEMU can boot directly
//! (through its PVH entry point), which skips the kernel's own decompression: that runs
//! emulated under TCG and costs about a second per boot. Only LZ4 payloads (what Debian's
//! kernels use) are unpacked; anything else boots as the bzImage.

use anyhow::{bail, ensure, Result};

/// The LZ4 "legacy" frame magic, which the kernel's build uses for its LZ4 payload.
const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// Each legacy block decompresses to at most 8 MiB.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// The uncompressed kernel inside `bzimage`, or `None` when its payload is not LZ4.
pub fn vmlinux(bzimage: &[u8]) -> Result<Option<Vec<u8>>> {
    let payload = payload(bzimage)?;
    if payload.len() < 8 || u32_at(payload, 0) != LZ4_LEGACY_MAGIC {
        return Ok(None);
    }
    let elf = lz4_legacy(payload)?;
    ensure!(
        elf.starts_with(b"\x7fELF"),
        "the unpacked kernel is not an ELF file"
    );
    Ok(Some(elf))
}

/// The compressed payload, located through the boot protocol's setup header (2.08 or later).
fn payload(bzimage: &[u8]) -> Result<&[u8]> {
    ensure!(
        bzimage.len() > 0x250 && &bzimage[0x202..0x206] == b"HdrS",
        "not a bzImage"
    );
    let version = u16::from_le_bytes([bzimage[0x206], bzimage[0x207]]);
    ensure!(
        version >= 0x208,
        "boot protocol {version:#x} predates payload_offset"
    );
    let setup_sectors = match bzimage[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sectors + 1) * 512 + u32_at(bzimage, 0x248) as usize;
    let end = start + u32_at(bzimage, 0x24c) as usize;
    ensure!(
        end <= bzimage.len(),
        "the payload runs past the end of the bzImage"
    );
    Ok(&bzimage[start..end])
}

/// A legacy LZ4 stream: the magic, then blocks each prefixed by its compressed size. The
/// kernel's build appends the uncompressed size, which ends the stream and is checked.
fn lz4_legacy(stream: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while stream.len() - at >= 4 {
        let size = u32_at(stream, at) as usize;
        at += 4;
        if size == LZ4_LEGACY_MAGIC as usize {
            continue;
        }
        if size > stream.len() - at {
            // Not a block: the trailer holding the uncompressed size.
            ensure!(
                stream.len() - at == 0,
                "trailing bytes after the LZ4 stream"
            );
            ensure!(
                size == out.len(),
                "LZ4 stream unpacked to {} bytes, expected {size}",
                out.len()
            );
            return Ok(out);
        }
        let before = out.len();
        lz4_block(&stream[at..at + size], &mut out)?;
        ensure!(
            out.len() - before <= LZ4_LEGACY_BLOCK,
            "an LZ4 block unpacked past 8 MiB"
        );
        at += size;
    }
    ensure!(at == stream.len(), "truncated LZ4 stream");
    Ok(out)
}

/// One LZ4 block: sequences of literals then a back-reference, the last one literals only.
/// Back-references may reach into earlier blocks (the kernel's stream is linked).
fn lz4_block(block: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut at = 0;
    let byte = |at: &mut usize| -> Result<usize> {
        let b = *block
            .get(*at)
            .ok_or_else(|| anyhow::anyhow!("truncated LZ4 block"))?;
        *at += 1;
        Ok(usize::from(b))
    };
    // A 4-bit length of 15 continues in bytes, each 255 meaning "more follows".
    let length = |at: &mut usize, nibble: usize| -> Result<usize> {
        let mut length = nibble;
        if nibble == 15 {
            loop {
                let b = byte(at)?;
                length += b;
                if b != 255 {
                    break;
                }
            }
        }
        Ok(length)
    };
    while at < block.len() {
        let token = byte(&mut at)?;
        let literals = length(&mut at, token >> 4)?;
        let Some(bytes) = block.get(at..at + literals) else {
            bail!("truncated LZ4 literals");
        };
        out.extend_from_slice(bytes);
        at += literals;
        if at == block.len() {
            break;
        }
        let offset = byte(&mut at)? | byte(&mut at)? << 8;
        ensure!(
            offset != 0 && offset <= out.len(),
            "LZ4 back-reference {offset} out of range"
        );
        let mut remaining = length(&mut at, token & 15)? + 4;
        // Copy in pieces no longer than the offset, so an overlapping reference repeats.
        while remaining > 0 {
            let start = out.len() - offset;
            let piece = remaining.min(offset);
            out.extend_from_within(start..start + piece);
            remaining -= piece;
        }
    }
    Ok(())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn block_with_literals_and_an_overlapping_match() {
        // "abc", then 9 bytes from 3 back (overlapping: "abcabcabc"), then literal "Z".
        let block = [0x35, b'a', b'b', b'c', 3, 0, 0x10, b'Z'];
        let mut out = Vec::new();
        lz4_block(&block, &mut out).unwrap();
        assert_eq!(out, b"abcabcabcabcZ");
    }

    #[test]
    fn long_lengths_continue_in_bytes() {
        // 15 + 255 + 1 = 271 literal bytes.
        let mut block = vec![0xf0, 255, 1];
        block.extend(std::iter::repeat_n(b'x', 271));
        let mut out = Vec::new();
        lz4_block(&block, &mut out).unwrap();
        assert_eq!(out.len(), 271);
    }

    #[test]
    fn bad_references_are_errors() {
        let mut out = Vec::new();
        assert!(lz4_block(&[0x10, b'a', 5, 0], &mut out).is_err());
        assert!(lz4_block(&[0x50, b'a'], &mut out).is_err());
    }

    #[test]
    fn legacy_stream_checks_the_trailer() {
        let mut stream = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        stream.extend(2u32.to_le_bytes());
        stream.extend([0x10, b'q']);
        stream.extend(1u32.to_le_bytes());
        assert_eq!(lz4_legacy(&stream).unwrap(), b"q");
        let last = stream.len() - 4;
        stream[last] = 9;
        assert!(lz4_legacy(&stream).is_err());
    }

    #[test]
    fn not_a_bzimage() {
        assert!(vmlinux(b"\x7fELF and so on").is_err());
    }

    /// The `lz4` tool's legacy output unpacks to its input, when the tool is installed.
    #[test]
    fn round_trip_through_the_lz4_tool() {
        let input: Vec<u8> = (0..300_000u32)
            .flat_map(|i| ((i % 251) ^ (i / 7)).to_le_bytes())
            .collect();
        let Ok(mut child) = Command::new("lz4")
            .args(["-l", "-9", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            eprintln!("skipped: lz4 is not installed");
            return;
        };
        let mut stdin = child.stdin.take().unwrap();
        let data = input.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(output.status.success());
        let mut stream = output.stdout;
        stream.extend((input.len() as u32).to_le_bytes());
        assert_eq!(lz4_legacy(&stream).unwrap(), input);
    }
}
