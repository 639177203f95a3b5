//! The guest kernel: Debian's cloud kernel, fetched with apt and cached under the target
//! directory, or any bzImage given by path.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{apt, bzimage};

/// The metapackage that names the current cloud kernel (it holds no files itself).
const METAPACKAGE: &str = "linux-image-cloud-amd64";

/// The modules the checks need, in load order: `bridge` needs `stp`, which needs `llc`.
pub const MODULES: [&str; 4] = ["llc", "stp", "bridge", "veth"];

/// A marker written last into a cache entry, so a half-extracted entry is never used. Its
/// name changes with [`MODULES`], so that an entry without a newly listed module is redone.
const COMPLETE: &str = ".complete-veth";

/// A kernel image and the modules found for it, in load order.
#[derive(Debug)]
pub struct Kernel {
    pub image: PathBuf,
    pub modules: Vec<(&'static str, PathBuf)>,
    /// Where it came from, for the progress line (`6.1.0-56-cloud-amd64`, a path).
    pub description: String,
}

impl Kernel {
    /// A bzImage given on the command line; it comes with no modules.
    pub fn from_image(image: &Path) -> Result<Kernel> {
        if !image.is_file() {
            bail!("kernel image {}: no such file", image.display());
        }
        Ok(Kernel {
            image: image.to_owned(),
            modules: Vec::new(),
            description: image.display().to_string(),
        })
    }

    /// The modules of [`MODULES`] this kernel does not come with.
    pub fn missing_modules(&self) -> Vec<&'static str> {
        MODULES
            .into_iter()
            .filter(|name| !self.modules.iter().any(|(m, _)| m == name))
            .collect()
    }
}

/// Debian's current cloud kernel, from `cache` when it is there, else downloaded into it.
pub fn cloud_kernel(cache: &Path) -> Result<Kernel> {
    fs::create_dir_all(cache).with_context(|| format!("create {}", cache.display()))?;
    let package = match resolve_package()? {
        Some(package) => package,
        None => match cached_versions(cache)?.pop() {
            Some(version) => {
                println!("[fetch] apt knows no {METAPACKAGE}; using the cached {version}");
                format!("linux-image-{version}")
            }
            None => {
                println!("[fetch] apt knows no {METAPACKAGE} yet: apt-get update");
                apt::update()?;
                resolve_package()?.with_context(|| format!("apt-cache finds no {METAPACKAGE}"))?
            }
        },
    };
    let version = package.trim_start_matches("linux-image-").to_string();
    let entry = cache.join(format!("kernel-{version}"));
    if !entry.join(COMPLETE).exists() {
        fetch(&package, &version, cache, &entry)?;
    }
    let image = unpacked_image(&entry)?;
    let modules = MODULES
        .into_iter()
        .map(|name| (name, entry.join(format!("{name}.ko"))))
        .filter(|(_, path)| path.is_file())
        .collect();
    Ok(Kernel {
        image,
        modules,
        description: version,
    })
}

/// The cache entry's `vmlinux`, unpacked from its `vmlinuz` on first use; the `vmlinuz` itself
/// when its payload is not one [`bzimage`] unpacks.
fn unpacked_image(entry: &Path) -> Result<PathBuf> {
    let (vmlinuz, vmlinux) = (entry.join("vmlinuz"), entry.join("vmlinux"));
    if vmlinux.is_file() {
        return Ok(vmlinux);
    }
    let bzimage = fs::read(&vmlinuz).with_context(|| format!("read {}", vmlinuz.display()))?;
    let Some(elf) =
        bzimage::vmlinux(&bzimage).with_context(|| format!("unpack {}", vmlinuz.display()))?
    else {
        return Ok(vmlinuz);
    };
    let partial = entry.join("vmlinux.partial");
    fs::write(&partial, elf)?;
    fs::rename(&partial, &vmlinux)?;
    println!("[fetch] unpacked {}", vmlinux.display());
    Ok(vmlinux)
}

/// The `linux-image-<version>-cloud-amd64` package the metapackage depends on, if apt knows it.
fn resolve_package() -> Result<Option<String>> {
    Ok(parse_depends(&apt::depends(METAPACKAGE)?))
}

/// Picks the versioned kernel package out of `apt-cache depends` output.
pub fn parse_depends(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.trim().trim_start_matches('|').strip_prefix("Depends:"))
        .map(|name| name.trim().trim_start_matches('<').trim_end_matches('>'))
        .find(|name| name.starts_with("linux-image-") && name != &METAPACKAGE)
        .map(str::to_string)
}

/// Kernel versions with a complete cache entry, oldest first.
fn cached_versions(cache: &Path) -> Result<Vec<String>> {
    let mut versions: Vec<String> = fs::read_dir(cache)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join(COMPLETE).exists())
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()?
                .strip_prefix("kernel-")
                .map(str::to_string)
        })
        .collect();
    versions.sort();
    Ok(versions)
}

/// Downloads and unpacks the package, keeping only `vmlinuz` and the modules in `entry`.
fn fetch(package: &str, version: &str, cache: &Path, entry: &Path) -> Result<()> {
    let download = cache.join("download");
    let _ = fs::remove_dir_all(&download);
    fs::create_dir_all(&download)?;
    println!("[fetch] apt-get download {package}");
    if apt::download(package, &download).is_err() {
        println!("[fetch] download failed; refreshing the package lists and trying again");
        apt::update()?;
        apt::download(package, &download)?;
    }
    let deb = fs::read_dir(&download)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", download.display()))?;
    let tree = download.join("tree");
    println!("[fetch] unpacking {}", deb.display());
    let status = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tree)
        .status()
        .context("run dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed: {status}", deb.display());
    }

    let _ = fs::remove_dir_all(entry);
    fs::create_dir_all(entry)?;
    let image = tree.join(format!("boot/vmlinuz-{version}"));
    fs::copy(&image, entry.join("vmlinuz")).with_context(|| format!("copy {}", image.display()))?;
    let module_roots = [
        format!("lib/modules/{version}/kernel"),
        format!("usr/lib/modules/{version}/kernel"),
    ];
    for root in module_roots
        .iter()
        .map(|root| tree.join(root))
        .filter(|root| root.is_dir())
    {
        for name in MODULES {
            if let Some(found) = find_file(&root, &format!("{name}.ko"))? {
                fs::copy(&found, entry.join(format!("{name}.ko")))?;
            }
        }
    }
    fs::write(entry.join(COMPLETE), package)?;
    fs::remove_dir_all(&download)?;
    Ok(())
}

/// Depth-first search for a file called `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if let Some(found) = find_file(&path, name)? {
                return Ok(Some(found));
            }
        } else if entry.file_name() == name {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_names_the_versioned_package() {
        let text = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n";
        assert_eq!(
            parse_depends(text).as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64")
        );
    }

    #[test]
    fn depends_skips_other_dependencies_and_reads_alternatives() {
        let text = "linux-image-cloud-amd64\n  Depends: initramfs-tools\n |Depends: <linux-image-6.12.9-cloud-amd64>\n  Recommends: firmware\n";
        assert_eq!(
            parse_depends(text).as_deref(),
            Some("linux-image-6.12.9-cloud-amd64")
        );
    }

    #[test]
    fn depends_on_an_unknown_package_is_none() {
        assert_eq!(parse_depends(""), None);
        assert_eq!(
            parse_depends("W: Unable to locate package linux-image-cloud-amd64\n"),
            None
        );
    }

    #[test]
    fn cached_versions_need_the_marker() {
        let dir = std::env::temp_dir().join(format!("vm-kernel-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (version, complete) in [
            ("6.1.0-9-cloud-amd64", true),
            ("6.1.0-10-cloud-amd64", false),
        ] {
            let entry = dir.join(format!("kernel-{version}"));
            fs::create_dir_all(&entry).unwrap();
            if complete {
                fs::write(entry.join(COMPLETE), "").unwrap();
            }
        }
        assert_eq!(cached_versions(&dir).unwrap(), ["6.1.0-9-cloud-amd64"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
