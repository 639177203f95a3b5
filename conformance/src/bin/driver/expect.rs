//! What the checks compare against: the driver's own view of the host (namespaces, capability
//! sets, hostname, root mount) and what a container.json demands.

use std::collections::BTreeMap;
use std::fs;

use conformance::facts::{CapabilitySets, Mount};
use conformance::names::NAMESPACES;

/// The driver's own view; nsinit inherits it, so it is what "shared" and "unchanged" mean.
pub struct Host {
    /// `/proc/self/ns/NAME` link targets.
    pub namespaces: BTreeMap<String, String>,
    pub capabilities: CapabilitySets,
    pub hostname: String,
    /// The mount at `/`.
    pub root_mount: Option<Mount>,
}

impl Host {
    pub fn gather() -> Result<Host, String> {
        let read = |path: &str| fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"));
        let mut namespaces = BTreeMap::new();
        for (name, _) in NAMESPACES {
            let path = format!("/proc/self/ns/{name}");
            let target = fs::read_link(&path).map_err(|e| format!("readlink {path}: {e}"))?;
            namespaces.insert(name.to_string(), target.to_string_lossy().into_owned());
        }
        let capabilities = CapabilitySets::from_status(&read("/proc/self/status")?)
            .map_err(|e| format!("/proc/self/status: {e}"))?;
        let mounts = Mount::parse_mountinfo(&read("/proc/self/mountinfo")?);
        Ok(Host {
            namespaces,
            capabilities,
            hostname: read("/proc/sys/kernel/hostname")?.trim().to_string(),
            root_mount: mounts.into_iter().rfind(|m| m.mount_point == "/"),
        })
    }
}

/// What a container.json asks for, read from the fixture the way the seed document means it.
pub struct Demands {
    pub hostname: Option<String>,
    pub environment: Vec<String>,
    /// `NEWPID`, `NEWNS`, ...
    pub namespaces: Vec<String>,
    /// Capabilities to drop, without `CAP_`.
    pub dropped: Vec<String>,
}

impl Demands {
    /// The demands of a fixture; the fixture tests guarantee these parse.
    pub fn of(fixture: &str) -> Demands {
        let text = fixtures::config(fixture).unwrap_or_else(|| panic!("no fixture {fixture}"));
        let json: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {fixture}: {e}"));
        let strings = |key: &str| -> Vec<String> {
            json[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Demands {
            hostname: json["hostname"].as_str().map(str::to_string),
            environment: strings("environment"),
            namespaces: strings("namespaces"),
            dropped: strings("capabilities"),
        }
    }

    pub fn has_namespace(&self, flag: &str) -> bool {
        self.namespaces.iter().any(|n| n == flag)
    }

    pub fn drops(&self, capability: &str) -> bool {
        self.dropped.iter().any(|c| c == capability)
    }
}
