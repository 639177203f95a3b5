//! Unpacking a bzImage into the uncompressed `vmlinux` ELF that QEMU can boot directly
//! (through its PVH entry point), which skips the kernel's own decompression: that runs
//! emulated under TCG and costs about a second per boot. Only LZ4 payloads (what Debian's
//! kernels use) are unpacked; anything else boots as the bzImage.

use anyhow::{ensure, Result};

/// The LZ4 "legacy" frame magic, which the kernel's build uses for its LZ4 payload.
const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// Each legacy block decompresses to at most 8 MiB.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;
/// How far back an LZ4 match may reach.
const LZ4_WINDOW: usize = 64 << 10;

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
        lz4_block(&stream[at..at + size], &mut out)?;
        at += size;
    }
    ensure!(at == stream.len(), "truncated LZ4 stream");
    Ok(out)
}

/// Append one block of at most 8 MiB to `out`. `lz4 -l` compresses each block on its own,
/// but the window of the 64 KiB before it is passed along, so a linked stream unpacks too.
fn lz4_block(block: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.resize(start + LZ4_LEGACY_BLOCK, 0);
    let (before, room) = out.split_at_mut(start);
    let window = &before[start.saturating_sub(LZ4_WINDOW)..];
    let len = lz4_flex::block::decompress_into_with_dict(block, room, window)
        .map_err(|e| anyhow::anyhow!("LZ4 block at byte {start} of the kernel: {e}"))?;
    out.truncate(start + len);
    Ok(())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy stream as `lz4 -l` writes it and the kernel's build appends to: the magic,
    /// each block with its compressed size, then the uncompressed size.
    fn legacy_stream(blocks: &[&[u8]]) -> Vec<u8> {
        let mut stream = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        let mut total = 0;
        for block in blocks {
            let compressed = lz4_flex::block::compress(block);
            stream.extend((compressed.len() as u32).to_le_bytes());
            stream.extend(compressed);
            total += block.len();
        }
        stream.extend((total as u32).to_le_bytes());
        stream
    }

    #[test]
    fn block_with_literals_and_an_overlapping_match() {
        // "abc", then 9 bytes from 3 back (overlapping: "abcabcabc"), then literal "Z".
        let block = [0x35, b'a', b'b', b'c', 3, 0, 0x10, b'Z'];
        let mut out = Vec::new();
        lz4_block(&block, &mut out).unwrap();
        assert_eq!(out, b"abcabcabcabcZ");
    }

    #[test]
    fn a_match_may_reach_into_the_block_before() {
        let mut out = b"xyz".to_vec();
        // No literals, then 4 bytes from 3 back: into what the previous block unpacked.
        lz4_block(&[0x00, 3, 0, 0x00], &mut out).unwrap();
        assert_eq!(out, b"xyzxyzx");
    }

    #[test]
    fn bad_references_are_errors() {
        let mut out = Vec::new();
        assert!(lz4_block(&[0x10, b'a', 5, 0], &mut out).is_err());
        assert!(lz4_block(&[0x50, b'a'], &mut out).is_err());
    }

    #[test]
    fn legacy_stream_unpacks_its_blocks_and_checks_the_trailer() {
        let first: Vec<u8> = (0..300_000u32)
            .flat_map(|i| ((i % 251) ^ (i / 7)).to_le_bytes())
            .collect();
        let second = b"the second block".repeat(1000);
        let mut stream = legacy_stream(&[&first, &second]);
        assert_eq!(lz4_legacy(&stream).unwrap(), [first, second].concat());
        let last = stream.len() - 4;
        stream[last] ^= 1;
        assert!(lz4_legacy(&stream).is_err());
    }

    #[test]
    fn not_a_bzimage() {
        assert!(vmlinux(b"\x7fELF and so on").is_err());
    }
}
