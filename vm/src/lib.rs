//! The QEMU side of the conformance suite: fetch a kernel, build an initramfs, boot, report.
