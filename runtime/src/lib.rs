//! nsinit: run a directory holding a root filesystem and a `container.json` as a container.
//!
//! The library does the work; `main.rs` is a thin CLI over [`exec`].

pub mod config;
