//! Compiled filters kept on disk, so that a profile is compiled once rather than on every
//! `create`: podman and containerd give every container the same profile, and libseccomp
//! took about 25 ms to compile podman's (437 names, three ABIs, laid out as a binary tree)
//! where the rest of `nsinit-oci run` took 5 ms.
//!
//! One file per profile, `seccomp-<hash of the profile>.json`, in the runtime's state root:
//! the build of nsinit that compiled it, the profile's text, the filter. An entry is used only
//! when both build and profile text equal this one's, so a hash collision or a stale entry
//! costs a compile, never a wrong filter; another build compiles the profile again and
//! replaces the entry, so the files never outnumber the profiles (naming them by build too
//! left one more file per profile with every rebuild). Entries are written to a temporary
//! file and renamed: a concurrent `create` reads a whole entry or none.

use std::cell::OnceCell;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Filter, SeccompError};

/// What an entry's file holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    build: String,
    profile: String,
    filter: Filter,
}

/// The compiled filters under one directory.
pub struct FilterCache {
    dir: PathBuf,
    /// This nsinit's version and binary (size and modification time): a rebuilt nsinit does
    /// not use what another build compiled. Looked up on first use: a config without a
    /// profile never pays for it.
    build: OnceCell<String>,
}

impl FilterCache {
    pub fn new(dir: &Path) -> FilterCache {
        FilterCache {
            dir: dir.to_owned(),
            build: OnceCell::new(),
        }
    }

    fn build(&self) -> &str {
        self.build.get_or_init(|| {
            let binary = fs::metadata("/proc/self/exe")
                .map(|m| format!("{} {}.{}", m.size(), m.mtime(), m.mtime_nsec()))
                .unwrap_or_default();
            format!("{} {binary}", env!("CARGO_PKG_VERSION"))
        })
    }

    /// The filter of `profile` (the profile's JSON text): the cached one, else what `compile`
    /// makes of it, then kept. A cache that cannot be read or written only costs the compile.
    pub fn filter(
        &self,
        profile: &str,
        compile: impl FnOnce() -> Result<Filter, SeccompError>,
    ) -> Result<Filter, SeccompError> {
        let path = self.dir.join(format!(
            "seccomp-{:016x}.json",
            fnv1a(&[profile.as_bytes()])
        ));
        if let Some(filter) = self.read(&path, profile) {
            return Ok(filter);
        }
        let filter = compile()?;
        let _ = self.write(&path, profile, &filter);
        Ok(filter)
    }

    fn read(&self, path: &Path, profile: &str) -> Option<Filter> {
        let entry: Entry = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        (entry.build == self.build() && entry.profile == profile).then_some(entry.filter)
    }

    fn write(&self, path: &Path, profile: &str, filter: &Filter) -> std::io::Result<()> {
        let entry = Entry {
            build: self.build().to_owned(),
            profile: profile.to_owned(),
            filter: filter.clone(),
        };
        let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = fs::File::create(&temporary).and_then(|mut file| {
            file.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)
        });
        match written.and_then(|()| fs::rename(&temporary, path)) {
            Ok(()) => Ok(()),
            Err(error) => {
                let _ = fs::remove_file(&temporary);
                Err(error)
            }
        }
    }
}

/// 64-bit FNV-1a over `parts`: a file name, not a proof (entries are compared in full).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{default_filter, Instruction};

    fn other_filter() -> Filter {
        let allow = Instruction::new(0x06, 0, 0, 0x7fff_0000);
        Filter::new(vec![allow], &[]).unwrap()
    }

    #[test]
    fn a_profile_is_compiled_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path());
        let mut compiles = 0;
        for _ in 0..3 {
            let filter = cache
                .filter("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}", || {
                    compiles += 1;
                    Ok(default_filter().clone())
                })
                .unwrap();
            assert_eq!(&filter, default_filter());
        }
        assert_eq!(compiles, 1);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "one entry, no temporary file: {names:?}");
        assert!(names[0].starts_with("seccomp-") && names[0].ends_with(".json"));
    }

    #[test]
    fn another_profile_or_build_is_compiled_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path());
        cache
            .filter("{\"a\":1}", || Ok(default_filter().clone()))
            .unwrap();
        let other = cache.filter("{\"a\":2}", || Ok(other_filter())).unwrap();
        assert_eq!(other, other_filter());
        let rebuilt = FilterCache {
            dir: dir.path().to_owned(),
            build: OnceCell::from("another build".to_string()),
        };
        let compiled = rebuilt.filter("{\"a\":1}", || Ok(other_filter())).unwrap();
        assert_eq!(
            compiled,
            other_filter(),
            "another build's entry is not used"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "the rebuilt nsinit's entry replaced the other build's: one file per profile"
        );
    }

    #[test]
    fn an_entry_naming_another_profile_under_the_same_name_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path());
        cache
            .filter("{\"a\":1}", || Ok(default_filter().clone()))
            .unwrap();
        // As if another profile had hashed to this name: its text differs.
        let entry = fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = fs::read_to_string(&entry).unwrap();
        fs::write(&entry, text.replace("{\\\"a\\\":1}", "{\\\"a\\\":3}")).unwrap();
        let filter = cache.filter("{\"a\":1}", || Ok(other_filter())).unwrap();
        assert_eq!(filter, other_filter());
    }

    #[test]
    fn a_failed_compile_is_not_kept_and_an_unwritable_cache_still_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path());
        let failed = cache.filter("{}", || Err(SeccompError::Length { instructions: 0 }));
        assert!(failed.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let nowhere = FilterCache::new(&dir.path().join("missing"));
        assert_eq!(
            nowhere.filter("{}", || Ok(other_filter())).unwrap(),
            other_filter()
        );
    }
}
