//! The image every engine runs: one rootfs tree, packed as a plain tarball for
//! `podman import` and as an OCI image layout archive for `ctr images import` (and so for the
//! CRI plugin). Where the tree comes from is [`build_rootfs`] alone: the Alpine fixture.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::rootfs::Fixture;

/// The image's name in podman's and containerd's stores.
pub const NAME: &str = "localhost/nsinit-engines:latest";
/// What the image runs when a caller gives no command: the CRI plugin's pause container.
pub const PAUSE_COMMAND: [&str; 2] = ["/bin/sleep", "2147483647"];

/// The image, built and packed.
pub struct Image {
    /// `tar` of the rootfs (the single layer), for `podman import`.
    pub tarball: PathBuf,
    /// OCI image layout, tarred, for `ctr images import`.
    pub oci_archive: PathBuf,
    /// A file only this image has, and its contents: `run --rm IMG cat FILE`.
    pub release_file: &'static str,
    pub release_text: String,
}

/// The file naming the image's release.
const RELEASE_FILE: &str = "/etc/alpine-release";

/// The image source, the Alpine fixture: fills `dest` with its tree and returns the release
/// file and its text (`3.23.6`).
pub fn build_rootfs(dest: &Path) -> Result<(&'static str, String)> {
    Fixture::Alpine.write(dest)?;
    let release = dest.join(RELEASE_FILE.trim_start_matches('/'));
    let text =
        fs::read_to_string(&release).with_context(|| format!("read {}", release.display()))?;
    Ok((RELEASE_FILE, text))
}

impl Image {
    /// Builds the rootfs in `dir/rootfs` and packs it next to it.
    pub fn build(dir: &Path) -> Result<Image> {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
        }
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(&rootfs)?;
        let (release_file, release_text) = build_rootfs(&rootfs)?;
        let tarball = dir.join("rootfs.tar");
        tar(&rootfs, &tarball, &["."])?;
        let layout = dir.join("oci");
        write_oci_layout(&tarball, &layout)?;
        let oci_archive = dir.join("image.oci.tar");
        tar(
            &layout,
            &oci_archive,
            &["oci-layout", "index.json", "blobs"],
        )?;
        Ok(Image {
            tarball,
            oci_archive,
            release_file,
            release_text,
        })
    }
}

/// `tar -cf archive -C dir entries...`, owned by root, in a stable order.
fn tar(dir: &Path, archive: &Path, entries: &[&str]) -> Result<()> {
    let out = Command::new("tar")
        .args([
            "--sort=name",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-cf",
        ])
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .args(entries)
        .output()
        .context("run tar")?;
    if !out.status.success() {
        bail!(
            "tar -cf {}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `sha256sum FILE`'s digest.
fn sha256(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("run sha256sum")?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(digest) if out.status.success() && digest.len() == 64 => Ok(digest.to_string()),
        _ => bail!("sha256sum {}: no digest", path.display()),
    }
}

/// The SHA-256 of `bytes`, in hex (`sha256sum` reading stdin).
pub fn sha256_of(bytes: &[u8]) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("run sha256sum")?;
    child
        .stdin
        .take()
        .context("sha256sum's stdin")?
        .write_all(bytes)?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(digest) if out.status.success() && digest.len() == 64 => Ok(digest.to_string()),
        _ => bail!("sha256sum: no digest"),
    }
}

/// A blob in `layout/blobs/sha256/`, its digest and size.
fn put_blob(layout: &Path, bytes: &[u8]) -> Result<(String, usize)> {
    let staging = layout.join("blob.tmp");
    fs::write(&staging, bytes)?;
    let digest = sha256(&staging)?;
    fs::rename(&staging, layout.join("blobs/sha256").join(&digest))?;
    Ok((format!("sha256:{digest}"), bytes.len()))
}

/// The OCI image config of a one-layer image whose layer has `diff_id`.
pub fn image_config(diff_id: &str) -> serde_json::Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": PAUSE_COMMAND,
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    })
}

/// An OCI image layout in `layout`: the uncompressed `layer` tarball, the config, the manifest
/// and an index naming the image [`NAME`] (containerd reads `io.containerd.image.name`).
fn write_oci_layout(layer: &Path, layout: &Path) -> Result<()> {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let layer_digest = sha256(layer)?;
    let layer_size = fs::metadata(layer)?.len();
    fs::copy(layer, blobs.join(&layer_digest))?;
    let layer_digest = format!("sha256:{layer_digest}");
    let config = serde_json::to_vec(&image_config(&layer_digest))?;
    let (config_digest, config_size) = put_blob(layout, &config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    }))?;
    let (manifest_digest, manifest_size) = put_blob(layout, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {
                "io.containerd.image.name": NAME,
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_its_one_layer_and_the_pause_command() {
        let config = image_config("sha256:abc");
        assert_eq!(config["rootfs"]["diff_ids"], json!(["sha256:abc"]));
        assert_eq!(config["config"]["Cmd"], json!(PAUSE_COMMAND));
        assert_eq!(config["os"], "linux");
    }

    #[test]
    fn digests_of_bytes() {
        assert_eq!(
            sha256_of(b"abc").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_layout_holds_every_blob_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer.tar");
        fs::write(&layer, b"not really a tar").unwrap();
        let layout = dir.path().join("oci");
        write_oci_layout(&layer, &layout).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
        let blob = |digest: &str| {
            fs::read(
                layout
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:")),
            )
            .unwrap()
        };
        let manifest: serde_json::Value = serde_json::from_slice(&blob(manifest_digest)).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
        let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
        assert_eq!(blob(layer_digest), b"not really a tar");
        assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest);
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            NAME
        );
    }
}
