//! Integration tests of the VM harness that check its archives with GNU cpio and a static
//! busybox; on a host without them each is reported as ignored, with the reason.

use std::process::ExitCode;

mod cpio;
mod initramfs;

fn main() -> ExitCode {
    let trials = [cpio::trials(), initramfs::trials()];
    fixtures::harness::run(trials.into_iter().flatten().collect())
}
