//! The OCI bundle runc and crun run: `runc spec`'s template edited to the bench's container
//! (the rootfs it is given, writable; no terminal; the command; the seed's hostname and
//! five namespaces; a cgroup under the bench's parent).

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// The seed's five namespaces, as OCI names them.
pub const NAMESPACES: [&str; 5] = ["pid", "ipc", "uts", "mount", "network"];

/// `spec` (the text of `runc spec`'s config.json) edited for one bundle.
pub fn bundle_config(
    spec: &str,
    rootfs: &Path,
    args: &[&str],
    cgroups_path: &str,
) -> Result<String> {
    let mut config: Value = serde_json::from_str(spec)?;
    let Some(object) = config.as_object_mut() else {
        bail!("runc spec: config.json is not a JSON object");
    };
    object.insert(
        "root".into(),
        json!({ "path": rootfs.display().to_string(), "readonly": false }),
    );
    object.insert("hostname".into(), json!("koye"));
    let Some(process) = object.get_mut("process").and_then(Value::as_object_mut) else {
        bail!("runc spec: config.json has no process object");
    };
    process.insert("terminal".into(), json!(false));
    process.insert("args".into(), json!(args));
    let Some(linux) = object.get_mut("linux").and_then(Value::as_object_mut) else {
        bail!("runc spec: config.json has no linux object");
    };
    let namespaces: Vec<Value> = NAMESPACES.iter().map(|ns| json!({ "type": ns })).collect();
    linux.insert("namespaces".into(), Value::Array(namespaces));
    linux.insert("cgroupsPath".into(), json!(cgroups_path));
    Ok(serde_json::to_string_pretty(&config)?)
}

/// A bundle's config.json with `linux.resources.memory.limit` set to `bytes`.
pub fn with_memory_limit(config: &str, bytes: u64) -> Result<String> {
    let mut config: Value = serde_json::from_str(config)?;
    let Some(linux) = config.get_mut("linux").and_then(Value::as_object_mut) else {
        bail!("config.json has no linux object");
    };
    let resources = linux.entry("resources").or_insert_with(|| json!({}));
    resources["memory"] = json!({ "limit": bytes });
    Ok(serde_json::to_string_pretty(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of runc 1.1's `runc spec` the edit touches.
    const SPEC: &str = r#"{
        "ociVersion": "1.0.2-dev",
        "process": { "terminal": true, "user": { "uid": 0, "gid": 0 }, "args": ["sh"], "cwd": "/" },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "linux": { "namespaces": [ { "type": "pid" }, { "type": "cgroup" } ], "maskedPaths": ["/proc/kcore"] }
    }"#;

    #[test]
    fn the_template_gets_the_bench_container() {
        let text = bundle_config(
            SPEC,
            Path::new("/b/rootfs"),
            &["/bin/true"],
            "/nsinit-bench/runc",
        )
        .unwrap();
        let config: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            config["root"],
            json!({ "path": "/b/rootfs", "readonly": false })
        );
        assert_eq!(config["process"]["terminal"], json!(false));
        assert_eq!(config["process"]["args"], json!(["/bin/true"]));
        assert_eq!(config["process"]["cwd"], json!("/"));
        assert_eq!(config["hostname"], json!("koye"));
        let namespaces: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ns| ns["type"].as_str().unwrap())
            .collect();
        assert_eq!(namespaces, NAMESPACES);
        assert_eq!(config["linux"]["cgroupsPath"], json!("/nsinit-bench/runc"));
        assert_eq!(config["linux"]["maskedPaths"], json!(["/proc/kcore"]));
    }

    #[test]
    fn the_memory_limit_goes_under_linux_resources() {
        let text =
            with_memory_limit(r#"{"linux": {"resources": {"devices": []}}}"#, 65536).unwrap();
        let config: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            config["linux"]["resources"],
            json!({ "devices": [], "memory": { "limit": 65536 } })
        );
        assert!(with_memory_limit("{}", 1).is_err());
    }

    #[test]
    fn a_template_without_process_or_linux_is_an_error() {
        let error =
            bundle_config(r#"{"linux": {}}"#, Path::new("/r"), &["true"], "/x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "runc spec: config.json has no process object"
        );
        assert!(bundle_config("[]", Path::new("/r"), &["true"], "/x").is_err());
    }
}
