//! The newc writer against GNU cpio's own reading of the archive.

use std::io::Write;
use std::process::{Command, Stdio};

use fixtures::harness::{needs_tool, Ran, Trial};
use vm::cpio::Writer;

pub fn trials() -> Vec<Trial> {
    fixtures::trials![gnu_cpio_lists_the_archive]
}

/// GNU cpio agrees with the writer.
fn gnu_cpio_lists_the_archive() -> Ran {
    needs_tool("cpio", "--version")?;
    let mut w = Writer::new(Vec::new());
    w.dir("dev", 0o755).unwrap();
    w.char_device("dev/console", 0o600, 5, 1).unwrap();
    w.dir("bin", 0o755).unwrap();
    w.file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n").unwrap();
    w.file("empty", 0o644, b"").unwrap();
    w.symlink("bin/sh", "busybox").unwrap();
    let archive = w.finish().unwrap();

    let mut child = Command::new("cpio")
        .args(["-t", "-v", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&archive).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let listing = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<_> = listing.lines().collect();
    assert_eq!(lines.len(), 6, "{listing}");
    assert!(lines[1].starts_with("crw-------") && lines[1].ends_with("dev/console"));
    assert!(lines[3].starts_with("-rwxr-xr-x") && lines[3].ends_with("bin/hello"));
    assert!(lines[5].starts_with("lrwxrwxrwx") && lines[5].ends_with("bin/sh -> busybox"));
    Ok(())
}
