//! `cargo xtask sample`: the seed's sample container end to end: build nsinit, build the
//! busybox rootfs, write container.json, run a few commands in it and show what they saw.

use std::fs;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::args::Args;
use crate::cargo::{cargo, step, target_dir};
use crate::prereqs;

/// The seed's sections nsinit does not implement yet, left out of the sample's config.
const NOT_YET: [&str; 2] = ["network", "cgroups"];
/// The seed sample without those sections (a fixture).
const CONFIG: &str = "seed-no-net-cgroups";

/// What the sample runs, each shown under a header.
const COMMANDS: [&[&str]; 3] = [
    &["hostname"],
    &["env"],
    &["sh", "-c", "echo pid=$$; grep Cap /proc/self/status"],
];

pub fn run(args: Args) -> Result<()> {
    args.finish()?;
    prereqs::ensure(&[prereqs::BUSYBOX])?;
    step(
        "cargo build -p nsinit",
        cargo().args(["build", "-p", "nsinit"]),
    )?;
    let nsinit = target_dir().join("debug/nsinit");

    let rootfs = target_dir().join("sample/rootfs");
    println!("==> building the sample rootfs in {}", rootfs.display());
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).with_context(|| format!("remove {}", rootfs.display()))?;
    }
    fixtures::build_busybox_rootfs(&rootfs, &prereqs::busybox()?)
        .with_context(|| format!("build the busybox rootfs in {}", rootfs.display()))?;
    let config =
        fixtures::config(CONFIG).with_context(|| format!("fixture {CONFIG} is missing"))?;
    fs::write(rootfs.join("container.json"), config)?;
    println!(
        "==> wrote the seed's container.json to {}",
        rootfs.join("container.json").display()
    );
    for section in NOT_YET {
        println!("    {section}: not implemented yet, skipped");
    }

    if !vm::apt::is_root() {
        bail!("starting a container needs root: run `cargo xtask sample` as root");
    }
    let mut failed = Vec::new();
    for command in COMMANDS {
        let args: Vec<String> = command[1..].iter().map(|arg| arg.to_string()).collect();
        let line = vm::guest::shell_command(command[0], &args);
        println!();
        println!("==> nsinit exec {line}");
        let status = Command::new(&nsinit)
            .arg("-C")
            .arg(&rootfs)
            .arg("exec")
            .arg("--")
            .args(command)
            .status()
            .with_context(|| format!("start {}", nsinit.display()))?;
        if !status.success() {
            println!("(nsinit exec {line}: {status})");
            failed.push(line);
        }
    }
    if !failed.is_empty() {
        bail!(
            "sample: failed: nsinit exec {}",
            failed.join(", nsinit exec ")
        );
    }
    Ok(())
}
