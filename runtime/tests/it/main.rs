//! Integration tests of the `nsinit` binary and library on this host.
