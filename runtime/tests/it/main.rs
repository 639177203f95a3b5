//! Integration tests of the `nsinit` binary on this host, one module per area. A test that
//! needs root (or a tool this host lacks) is reported as `ignored (why)` when it cannot run,
//! and counted as ignored, not passed (`fixtures::harness`).

use std::process::ExitCode;

mod cgroups;
mod cli;
mod devices;
mod lifecycle;
mod network;
mod oci;
mod resources;
mod run;
mod state;
mod support;
mod userns;

fn main() -> ExitCode {
    let trials = [
        cgroups::trials(),
        cli::trials(),
        devices::trials(),
        lifecycle::trials(),
        network::trials(),
        oci::trials(),
        resources::trials(),
        run::trials(),
        state::trials(),
        userns::trials(),
    ];
    let code = fixtures::harness::run(trials.into_iter().flatten().collect());
    support::remove_template();
    code
}
