//! The guest's initramfs: the init, busybox and its applet links, the kernel modules, the
//! static binaries under test and the suite command, as one newc archive.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cpio;
use crate::guest;

/// Everything the guest needs besides the kernel.
pub struct Contents {
    /// The static guest init (`guest-init`), which becomes `/init`.
    pub init: PathBuf,
    /// A static busybox; every applet gets a link in `/bin`.
    pub busybox: PathBuf,
    /// Kernel modules by name, in load order; they land in `/lib/modules/NAME.ko`.
    pub modules: Vec<(&'static str, PathBuf)>,
    /// Static binaries, by the name they get in `/bin`.
    pub binaries: Vec<(String, PathBuf)>,
    /// Other files, by their absolute path in the guest.
    pub files: Vec<(String, PathBuf)>,
    /// The shell command stage 2 runs; its exit status is the suite's.
    pub command: String,
}

/// Writes the initramfs for `contents` to `path`.
pub fn write(contents: &Contents, path: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut archive = Archive::new(BufWriter::new(file));
    for dir in ["dev", "proc", "sys", "tmp", "run", "root", "newroot"] {
        archive.dir(dir)?;
    }
    // Without /dev/console the init would have no stdin, stdout or stderr.
    archive.char_device("dev/console", 0o600, 5, 1)?;

    archive.file_from_path("bin/busybox", 0o755, &contents.busybox)?;
    for applet in applets(&contents.busybox)? {
        if applet != "busybox" {
            archive.symlink(&format!("bin/{applet}"), "busybox")?;
        }
    }
    archive.file_from_path("init", 0o755, &contents.init)?;
    for (name, path) in &contents.modules {
        archive.file_from_path(&format!("lib/modules/{name}.ko"), 0o644, path)?;
    }
    for (name, path) in &contents.binaries {
        archive.file_from_path(&format!("bin/{name}"), 0o755, path)?;
    }
    for (dest, path) in &contents.files {
        archive.file_from_path(dest.trim_start_matches('/'), 0o644, path)?;
    }
    archive.file(
        guest::COMMAND_PATH,
        0o644,
        format!("{}\n", contents.command).as_bytes(),
    )?;
    archive
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(())
}

/// The applet names `busybox --list` prints.
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("run {} --list", busybox.display()))?;
    if !output.status.success() {
        bail!("{} --list failed: {}", busybox.display(), output.status);
    }
    let list = String::from_utf8(output.stdout).context("busybox --list printed non-UTF-8")?;
    Ok(list
        .lines()
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(str::to_string)
        .collect())
}

/// A cpio writer that creates each missing parent directory before an entry.
struct Archive<W: Write> {
    cpio: cpio::Writer<W>,
    dirs: BTreeSet<String>,
}

impl<W: Write> Archive<W> {
    fn new(out: W) -> Self {
        Archive {
            cpio: cpio::Writer::new(out),
            dirs: BTreeSet::new(),
        }
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        self.parents(name)?;
        if self.dirs.insert(name.to_string()) {
            self.cpio.dir(name, 0o755)?;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<()> {
        self.parents(name)?;
        self.cpio
            .file(name, perm, data)
            .with_context(|| format!("add {name} to the initramfs"))
    }

    fn file_from_path(&mut self, name: &str, perm: u32, source: &Path) -> Result<()> {
        self.parents(name)?;
        let file = File::open(source).with_context(|| format!("open {}", source.display()))?;
        let size = file.metadata()?.len();
        self.cpio
            .file_from(name, perm, size, file)
            .with_context(|| format!("add {} to the initramfs as {name}", source.display()))
    }

    fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        self.parents(name)?;
        Ok(self.cpio.symlink(name, target)?)
    }

    fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.parents(name)?;
        Ok(self.cpio.char_device(name, perm, major, minor)?)
    }

    fn parents(&mut self, name: &str) -> Result<()> {
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir(parent)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<W> {
        Ok(self.cpio.finish()?)
    }
}
