//! Issue 13: what the hardened default costs. nsinit's start with every protection of
//! container.json's `security` object on (the default) against all of them off, bare and with
//! cgroups + network; the default with one protection off at a time (the difference to the
//! default is that protection's cost); and `floor.c --hardened`, the kernel doing the same
//! work with nothing else, as the floor the hardened start is held to.

use std::path::Path;

use anyhow::{Context, Result};

use super::config::{container_json, opted_out, PROTECTIONS};
use super::report::{median_of, TimeRow};
use super::timing::{alternate, Contender};
use super::{seccomp, Bench, FLOOR_FULL, WARMUPS};

pub const FLOOR_HARDENED: &str =
    "kernel floor + masks, read-only paths, nodev, no_new_privs, seccomp (floor.c --hardened)";
pub const HARDENED: &str = "nsinit, hardened default";
pub const OPTED_OUT: &str = "nsinit, every protection off";
pub const SEED_HARDENED: &str = "nsinit + cgroups + network, hardened default";
pub const SEED_OPTED_OUT: &str = "nsinit + cgroups + network, every protection off";
const SEED_WITHOUT_DEVICES: &str = "nsinit + cgroups + network, hardened default without devices";
/// Issue 16: the hardened default in a user namespace of its own (root mapped to
/// [`MAPPED_ROOT`], the rootfs owned by it once, as its user prepares it).
pub const USER_NAMESPACE: &str = "nsinit, hardened default + NEWUSER";
const MAPPED_ROOT: u32 = 300_000;

/// The row of the default with `protection` turned off.
fn without(protection: &str) -> String {
    format!("nsinit, hardened default without {protection}")
}

impl Bench<'_> {
    pub(super) fn hardened(&self, rounds: usize) -> Result<Vec<TimeRow>> {
        let filter = self.work.path.join("default-seccomp.bpf");
        std::fs::write(&filter, seccomp::default_program()?)?;
        let floor_rootfs = self.container("hardened-floor", "{}")?;
        let bare = container_json(None, None)?;
        let t = self.tools;
        let start = |name: &str, dir: &Path| self.nsinit(name, &t.nsinit, dir, &["/bin/true"]);
        let mut contenders = vec![
            Contender::new(FLOOR_FULL, &t.floor).args([
                "--full".as_ref(),
                floor_rootfs.as_os_str(),
                "/bin/true".as_ref(),
            ]),
            Contender::new(FLOOR_HARDENED, &t.floor).args([
                "--hardened".as_ref(),
                filter.as_os_str(),
                floor_rootfs.as_os_str(),
                "/bin/true".as_ref(),
            ]),
            start(
                OPTED_OUT,
                &self.container("hardened-off", &opted_out(&bare, &PROTECTIONS)?)?,
            ),
            start(
                HARDENED,
                &self.container("hardened-on", &opted_out(&bare, &[])?)?,
            ),
        ];
        for protection in PROTECTIONS {
            let dir = self.container(
                &format!("hardened-without-{protection}"),
                &opted_out(&bare, &[protection])?,
            )?;
            contenders.push(start(&without(protection), &dir));
        }
        contenders.push(start(
            USER_NAMESPACE,
            &self.owned_container("hardened-userns", &with_user_namespace(&bare)?, MAPPED_ROOT)?,
        ));
        for (i, (name, off)) in [
            (SEED_OPTED_OUT, &PROTECTIONS[..]),
            (SEED_HARDENED, &[][..]),
            (SEED_WITHOUT_DEVICES, &["devices"][..]),
        ]
        .into_iter()
        .enumerate()
        {
            let seed = container_json(
                Some(&format!("bench-hardened-{i}")),
                Some(&format!("172.17.0.{}", 110 + i)),
            )?;
            let dir = self.container(&format!("hardened-seed-{i}"), &opted_out(&seed, off)?)?;
            contenders.push(start(name, &dir).when_failing("cgroups or network failed"));
        }
        println!(
            "==> hardened: {} contenders, {WARMUPS} warm-ups + {rounds} rounds, alternated",
            contenders.len()
        );
        alternate(&contenders, WARMUPS, rounds, &self.prepared_scratch()?)
    }
}

/// `config` with a user namespace mapping 0-65535 to [`MAPPED_ROOT`] on.
fn with_user_namespace(config: &str) -> Result<String> {
    let mut json: serde_json::Value = serde_json::from_str(config)?;
    let map = serde_json::json!([{"container_id": 0, "host_id": MAPPED_ROOT, "size": 65536}]);
    json["namespaces"]
        .as_array_mut()
        .context("the bench config lists namespaces")?
        .push("NEWUSER".into());
    json["uid_mappings"] = map.clone();
    json["gid_mappings"] = map;
    Ok(json.to_string())
}

/// Each protection's cost: the default's median less the median of the default without it
/// (bare), then the devices protection with a cgroup (its allowlist lands in the devices
/// controller), and all five at once, bare and with cgroups + network.
pub fn costs(rows: &[TimeRow]) -> Vec<(String, Option<f64>)> {
    let minus = |a: &str, b: &str| Some(median_of(rows, a)? - median_of(rows, b)?);
    let mut costs: Vec<(String, Option<f64>)> = PROTECTIONS
        .iter()
        .map(|p| (format!("{p} (bare)"), minus(HARDENED, &without(p))))
        .collect();
    costs.push((
        "devices (cgroups + network)".into(),
        minus(SEED_HARDENED, SEED_WITHOUT_DEVICES),
    ));
    costs.push((
        "all five (bare: hardened − every protection off)".into(),
        minus(HARDENED, OPTED_OUT),
    ));
    costs.push((
        "all five (cgroups + network)".into(),
        minus(SEED_HARDENED, SEED_OPTED_OUT),
    ));
    costs.push((
        "the kernel's share of all five (floor --hardened − floor --full)".into(),
        minus(FLOOR_HARDENED, FLOOR_FULL),
    ));
    costs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::summarize;

    fn row(name: &str, median: f64) -> TimeRow {
        TimeRow {
            name: name.into(),
            summary: summarize(&[median]),
            failures: 0,
            unavailable: None,
            samples: vec![median],
        }
    }

    #[test]
    fn a_protection_costs_the_default_less_the_default_without_it() {
        let rows = [
            row(HARDENED, 5.0),
            row(OPTED_OUT, 4.0),
            row(&without("seccomp"), 4.75),
        ];
        let costs = costs(&rows);
        let of = |name: &str| costs.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(of("seccomp (bare)"), Some(0.25));
        assert_eq!(of("masked_paths (bare)"), None);
        assert_eq!(
            of("all five (bare: hardened − every protection off)"),
            Some(1.0)
        );
    }
}
