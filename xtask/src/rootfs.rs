//! `cargo xtask rootfs alpine|busybox DIR`: a fixture's tree at DIR, as the suite, the sample
//! and the tests get it; and the fixture choice the other commands share (`--rootfs`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::args::Args;
use crate::cargo::target_dir;
use crate::prereqs;

/// A root filesystem the commands can put containers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// Alpine 3.23.6 with its minirootfs's packages (the default).
    Alpine,
    /// A static busybox and its applet links, nothing else.
    Busybox,
}

impl Fixture {
    pub fn parse(text: &str) -> Option<Fixture> {
        match text {
            "alpine" => Some(Fixture::Alpine),
            "busybox" => Some(Fixture::Busybox),
            _ => None,
        }
    }

    /// `--rootfs alpine|busybox`, Alpine when not given.
    pub fn from_args(args: &mut Args) -> Result<Fixture> {
        match args.value("--rootfs")? {
            None => Ok(Fixture::Alpine),
            Some(text) => Fixture::parse(&text)
                .ok_or_else(|| anyhow!("--rootfs {text}: expected alpine or busybox")),
        }
    }

    /// How reports name it: `alpine 3.23.6`, `busybox`.
    pub fn label(self) -> String {
        match self {
            Fixture::Alpine => fixtures::alpine::label(),
            Fixture::Busybox => "busybox".to_string(),
        }
    }

    /// Writes the tree into `dir` (created if missing; files of the same name are replaced).
    pub fn write(self, dir: &Path) -> Result<()> {
        match self {
            Fixture::Alpine => fixtures::extract_rootfs_tar(&alpine_tarball()?, dir)
                .with_context(|| format!("unpack the Alpine tree into {}", dir.display())),
            Fixture::Busybox => {
                prereqs::ensure(&[prereqs::BUSYBOX])?;
                fixtures::build_busybox_rootfs(dir, &prereqs::busybox()?)
                    .with_context(|| format!("build the busybox tree in {}", dir.display()))
            }
        }
    }
}

/// The containers' rootfs of the conformance suite: `--rootfs-tar PATH`, else `--rootfs`.
#[derive(Debug)]
pub enum SuiteRootfs {
    Fixture(Fixture),
    Tarball(PathBuf),
}

impl SuiteRootfs {
    pub fn from_args(args: &mut Args) -> Result<SuiteRootfs> {
        let fixture = Fixture::from_args(args)?;
        Ok(match args.value("--rootfs-tar")? {
            Some(tar) => SuiteRootfs::Tarball(tar.into()),
            None => SuiteRootfs::Fixture(fixture),
        })
    }

    /// The tarball the driver unpacks, or `None` for the busybox tree it builds itself.
    pub fn tarball(&self) -> Result<Option<PathBuf>> {
        match self {
            SuiteRootfs::Fixture(Fixture::Alpine) => alpine_tarball().map(Some),
            SuiteRootfs::Fixture(Fixture::Busybox) => Ok(None),
            SuiteRootfs::Tarball(tar) => Ok(Some(tar.clone())),
        }
    }

    /// `alpine 3.23.6`, `busybox`, `tarball NAME`.
    pub fn label(&self) -> String {
        match self {
            SuiteRootfs::Fixture(fixture) => fixture.label(),
            SuiteRootfs::Tarball(tar) => format!(
                "tarball {}",
                tar.file_name().unwrap_or(tar.as_os_str()).to_string_lossy()
            ),
        }
    }
}

pub fn run(mut args: Args) -> Result<()> {
    let (Some(kind), Some(dir)) = (args.positional(), args.positional()) else {
        bail!("usage: cargo xtask rootfs alpine|busybox DIR");
    };
    args.finish()?;
    let fixture = Fixture::parse(&kind)
        .ok_or_else(|| anyhow!("rootfs {kind}: expected alpine or busybox"))?;
    let start = Instant::now();
    let dir = PathBuf::from(dir);
    fixture.write(&dir)?;
    println!(
        "{} at {} ({:.1} s)",
        fixture.label(),
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The Alpine fixture's tarball from the cache (`target/fixtures-cache`), made first when
/// missing, after installing the tools that takes.
pub fn alpine_tarball() -> Result<PathBuf> {
    let cache = target_dir().join(fixtures::alpine::CACHE_SUBDIR);
    if let Some(tarball) = fixtures::alpine::cached_tarball(&cache) {
        return Ok(tarball);
    }
    prereqs::ensure(&fixtures::alpine::missing_packages())?;
    // The fixture's errors are one line each, naming what was expected and what was found.
    fixtures::alpine::tarball(&cache).map_err(|error| anyhow!("{error}"))
}
