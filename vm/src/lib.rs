//! The QEMU side of the conformance suite: fetch a kernel, build an initramfs, boot, report.
//!
//! - [`apt`]: Debian package tools (prerequisites, kernel download).
//! - [`kernel`]: Debian's cloud kernel and the modules the checks need, cached; [`bzimage`]
//!   unpacks it so QEMU boots it without the slow in-guest decompression.
//! - [`cpio`] and [`initramfs`]: the guest's initramfs, written in Rust.
//! - [`guest`]: the guest init, its kernel command line and its exit statuses.
//! - [`qemu`]: the machine and a run with streamed serial lines and a deadline.
//! - [`report`]: reading the suite's lines and the verdict on a boot.
//! - [`suite`]: the whole `vm-test`, one boot per cgroup hierarchy.

pub mod apt;
pub mod bzimage;
pub mod cpio;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod qemu;
pub mod report;
pub mod suite;
