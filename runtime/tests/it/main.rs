//! Integration tests of the `nsinit` binary on this host, one module per area. Tests that need
//! root print why and pass trivially when run without it.

mod cgroups;
mod devices;
mod lifecycle;
mod network;
mod resources;
mod run;
mod support;
