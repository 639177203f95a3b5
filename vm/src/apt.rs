//! Debian's package tools as the harness uses them: who is root, which packages are missing,
//! installing them, and looking up and downloading a package without installing it.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Whether this process runs with effective user id 0 (read from `/proc/self/status`).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    effective_uid(&status) == Some(0)
}

/// The effective uid from the text of `/proc/self/status` (`Uid: real effective saved fs`).
fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The packages of `wanted` that dpkg does not report as installed.
pub fn missing<'a>(wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|package| !installed(package))
        .collect()
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout == b"installed")
}

/// Installs the `wanted` packages that are missing: as root with one `apt-get update` and one
/// `apt-get install -y`; otherwise fails, naming them and the command that installs them.
pub fn ensure_installed(wanted: &[&str]) -> Result<()> {
    let missing = missing(wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!("missing Debian packages: {list}\ninstall them as root with: apt-get update && apt-get install -y {list}");
    }
    println!("installing missing Debian packages: {list}");
    update()?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing))
    .with_context(|| format!("apt-get install {list}"))
}

/// `apt-get update` (root only).
pub fn update() -> Result<()> {
    if !is_root() {
        bail!("the package lists need refreshing: run `apt-get update` as root");
    }
    run(Command::new("apt-get").args(["update", "-q"])).context("apt-get update")
}

/// The output of `apt-cache depends PACKAGE` (empty when apt knows nothing about it).
pub fn depends(package: &str) -> Result<String> {
    let output = Command::new("apt-cache")
        .args(["depends", package])
        .stderr(Stdio::null())
        .output()
        .context("run apt-cache (is this a Debian-like system?)")?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `apt-get download PACKAGE` into `dir` (works without root).
pub fn download(package: &str, dir: &Path) -> Result<()> {
    let mut command = Command::new("apt-get");
    if is_root() {
        // apt's `_apt` sandbox user may not be able to write to `dir`; root can.
        command.args(["-o", "APT::Sandbox::User=root"]);
    }
    command.args(["download", "-q", package]).current_dir(dir);
    run(&mut command).with_context(|| format!("apt-get download {package}"))
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed: {status}", command.get_program());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_number() {
        let status = "Name:\tcat\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Uid:\t0\t1000\t1000\t1000\n"), Some(1000));
        assert_eq!(effective_uid("Name:\tcat\n"), None);
    }
}
