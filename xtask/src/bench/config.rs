//! nsinit's container.json for each contender: the seed's sample without `network` and
//! `cgroups` (fixture `seed-no-net-cgroups`), plus the sections a row adds back.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::standin::{BRIDGE, GATEWAY, PREFIX};

/// The cgroup parent of every group the bench makes (its own, removed afterwards).
pub const CGROUP_PARENT: &str = "nsinit-bench";
/// The memory limit of the bench's groups: 64 MiB.
pub const MEMORY: u64 = 64 << 20;

/// The seed's five namespaces, hostname, environment and dropped capabilities; with
/// `cgroup`, the group `nsinit-bench/<cgroup>` limited to 64 MiB; with `address`, an `eth0`
/// with that address on the stand-in host's bridge.
pub fn container_json(cgroup: Option<&str>, address: Option<&str>) -> Result<String> {
    config_with(cgroup.map(|name| (name, MEMORY)), address)
}

/// The seed's sample without network, in the group `nsinit-bench/<cgroup>` limited to
/// `memory` bytes.
pub fn container_json_with_memory(cgroup: &str, memory: u64) -> Result<String> {
    config_with(Some((cgroup, memory)), None)
}

fn config_with(cgroup: Option<(&str, u64)>, address: Option<&str>) -> Result<String> {
    let base = fixtures::config("seed-no-net-cgroups")
        .context("fixture seed-no-net-cgroups is missing")?;
    let mut config: Value = serde_json::from_str(base)?;
    let object = config
        .as_object_mut()
        .context("seed-no-net-cgroups is not an object")?;
    if let Some((name, memory)) = cgroup {
        object.insert(
            "cgroups".into(),
            json!({ "name": name, "parent": CGROUP_PARENT, "memory": memory }),
        );
    }
    if let Some(address) = address {
        object.insert(
            "network".into(),
            json!({ "address": format!("{address}/{PREFIX}"), "gateway": GATEWAY, "bridge": BRIDGE, "mtu": 1500 }),
        );
    }
    Ok(serde_json::to_string_pretty(&config)?)
}

/// The protections of container.json's `security` object, each on unless turned off.
pub const PROTECTIONS: [&str; 5] = [
    "masked_paths",
    "readonly_paths",
    "devices",
    "seccomp",
    "no_new_privileges",
];

/// `config` (a container.json) with the protections named in `off` turned off in its
/// `security` object; with none, the hardened default (no `security` object).
pub fn opted_out(config: &str, off: &[&str]) -> Result<String> {
    let mut config: Value = serde_json::from_str(config)?;
    if !off.is_empty() {
        let security: serde_json::Map<String, Value> = off
            .iter()
            .map(|name| (name.to_string(), json!(false)))
            .collect();
        config
            .as_object_mut()
            .context("container.json is not an object")?
            .insert("security".into(), Value::Object(security));
    }
    Ok(serde_json::to_string_pretty(&config)?)
}

/// The address of container `i` of a scale batch: 172.17.0.2 and up.
pub fn scale_address(i: usize) -> String {
    let host = i + 2;
    format!("172.17.{}.{}", host / 256, host % 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_added_to_the_seed_without_them() {
        let bare: Value = serde_json::from_str(&container_json(None, None).unwrap()).unwrap();
        assert_eq!(bare["hostname"], "koye");
        assert_eq!(bare["namespaces"].as_array().unwrap().len(), 5);
        assert!(bare.get("cgroups").is_none() && bare.get("network").is_none());

        let full: Value =
            serde_json::from_str(&container_json(Some("bench-7"), Some("172.17.0.9")).unwrap())
                .unwrap();
        assert_eq!(
            full["cgroups"],
            json!({ "name": "bench-7", "parent": "nsinit-bench", "memory": 67108864 })
        );
        assert_eq!(
            full["network"],
            json!({ "address": "172.17.0.9/16", "gateway": "172.17.42.1", "bridge": "docker0", "mtu": 1500 })
        );
    }

    #[test]
    fn protections_are_turned_off_by_name() {
        let base = container_json(None, None).unwrap();
        let all: Value = serde_json::from_str(&opted_out(&base, &PROTECTIONS).unwrap()).unwrap();
        assert_eq!(
            all["security"],
            json!({ "masked_paths": false, "readonly_paths": false, "devices": false, "seccomp": false, "no_new_privileges": false })
        );
        let one: Value = serde_json::from_str(&opted_out(&base, &["seccomp"]).unwrap()).unwrap();
        assert_eq!(one["security"], json!({ "seccomp": false }));
        let none: Value = serde_json::from_str(&opted_out(&base, &[]).unwrap()).unwrap();
        assert!(none.get("security").is_none());
        assert_eq!(none["hostname"], "koye");
    }

    #[test]
    fn scale_addresses_are_distinct_and_skip_the_network_address() {
        assert_eq!(scale_address(0), "172.17.0.2");
        assert_eq!(scale_address(99), "172.17.0.101");
        assert_eq!(scale_address(300), "172.17.1.46");
    }
}
