//! The guest's initramfs as GNU cpio lists it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fixtures::harness::{needs_tool, require, Ran, Trial};
use vm::initramfs::{write, Contents};

pub fn trials() -> Vec<Trial> {
    fixtures::trials![the_archive_holds_what_the_guest_needs]
}

/// The archive holds the init, the console, the applet links, the modules, the binaries and
/// the command.
fn the_archive_holds_what_the_guest_needs() -> Ran {
    let busybox = PathBuf::from("/bin/busybox");
    require(busybox.exists(), "needs /bin/busybox")?;
    needs_tool("cpio", "--version")?;
    let dir = std::env::temp_dir().join(format!("vm-initramfs-test-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let (init, module) = (dir.join("init"), dir.join("veth.ko"));
    fs::write(&init, "init").unwrap();
    fs::write(&module, "module").unwrap();
    let contents = Contents {
        init: init.clone(),
        busybox,
        modules: vec![("veth", module)],
        binaries: vec![("nsinit".into(), init.clone())],
        files: vec![("/rootfs.tar".into(), init)],
        command: "/bin/nsinit-conformance --filter 'a b'".into(),
    };
    let archive = dir.join("initrd.cpio");
    write(&contents, &archive).unwrap();
    let listing = list(&archive);
    for expected in [
        " init",
        " dev/console",
        " bin/busybox",
        " bin/sh -> busybox",
        " lib/modules/veth.ko",
        " bin/nsinit",
        " rootfs.tar",
        " etc/nsinit-vm/command",
    ] {
        assert!(
            listing.lines().any(|line| line.ends_with(expected)),
            "no{expected} in\n{listing}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

/// `cpio -t -v` of an archive.
fn list(archive: &Path) -> String {
    let listing = Command::new("cpio")
        .args(["-t", "-v", "--quiet", "-F"])
        .arg(archive)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8(listing.stdout).unwrap()
}
