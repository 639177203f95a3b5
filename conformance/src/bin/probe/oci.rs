//! `probe oci OP...`: the facts plus what the OCI front-end's checks need: the status lines
//! (ids, groups, `NoNewPrivs`, `Seccomp`), the open-files limit, and file operations named by
//! the driver. Each operation is harmless when it works: `write` writes back what it read.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use conformance::oci::{OciFacts, OpResult, STATUS_FIELDS};

use crate::{gather, sys};

/// How much of a file `read` reports.
const READ_LIMIT: u64 = 4096;

/// Gather everything; an operation the probe does not know is an error line and exit 2.
pub fn look(ops: &[&str]) -> Result<OciFacts, String> {
    let ops = ops
        .iter()
        .map(|op| operate(op))
        .collect::<Result<Vec<_>, String>>()?;
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    Ok(OciFacts {
        facts: gather::facts(),
        status: status
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| STATUS_FIELDS.contains(name))
            .map(|(name, value)| (name.to_string(), words(value)))
            .collect(),
        nofile: limits.lines().find_map(|line| {
            let rest = line.strip_prefix("Max open files")?;
            let mut fields = rest.split_whitespace();
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        }),
        ops,
    })
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `read:PATH`, `write:PATH`, `open:PATH` (read-write), `mkdir:PATH` (then removed),
/// `stat:PATH` (`char 1:3 mode 666`, `dir mode 755`, ...).
fn operate(op: &str) -> Result<OpResult, String> {
    let (kind, path) = op
        .split_once(':')
        .ok_or_else(|| format!("{op}: expected KIND:PATH"))?;
    let (result, content) = match kind {
        "read" => match read(path) {
            Ok(content) => (Ok(()), Some(content)),
            Err(e) => (Err(e), None),
        },
        "write" => (write_back(path), None),
        "open" => (
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map(drop),
            None,
        ),
        "mkdir" => (
            fs::create_dir(path).and_then(|()| fs::remove_dir(path)),
            None,
        ),
        "stat" => match fs::symlink_metadata(path) {
            Ok(meta) => (Ok(()), Some(describe(&meta))),
            Err(e) => (Err(e), None),
        },
        _ => return Err(format!("{op}: unknown operation {kind}")),
    };
    Ok(OpResult {
        op: op.to_string(),
        ok: result.is_ok(),
        error: result.err().map(|e| match e.raw_os_error() {
            Some(errno) => sys::errno_name(errno),
            None => e.to_string(),
        }),
        content,
    })
}

/// A node's type, device numbers and permission bits.
fn describe(meta: &fs::Metadata) -> String {
    let kind = meta.file_type();
    let mode = meta.mode() & 0o7777;
    let device = |name: &str| {
        let rdev = meta.rdev();
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
        let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
        format!("{name} {major}:{minor} mode {mode:o}")
    };
    if kind.is_char_device() {
        device("char")
    } else if kind.is_block_device() {
        device("block")
    } else if kind.is_dir() {
        format!("dir mode {mode:o}")
    } else if kind.is_symlink() {
        "symlink".to_string()
    } else {
        format!("file mode {mode:o}")
    }
}

/// A file's first [`READ_LIMIT`] bytes, or a directory's entries.
fn read(path: &str) -> io::Result<String> {
    if fs::metadata(path)?.is_dir() {
        let mut names = fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        return Ok(names.join("\n"));
    }
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(READ_LIMIT)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Write a file's own content back to it (a new file gets `x`): a write that changes
/// nothing, to see whether writing is allowed at all.
fn write_back(path: &str) -> io::Result<()> {
    let content = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => b"x".to_vec(),
        Err(e) => return Err(e),
    };
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?
        .write_all(&content)
}
