//! nsinit links libseccomp (the seccomp compiler, `src/seccomp/compile.rs`) statically, from
//! Debian's libseccomp-dev.
//!
//! `libseccomp-sys` asks for `-lseccomp`; with `crt-static` the linker must then find the
//! static `libseccomp.a` before the shared `libseccomp.so` next to it, so this script offers
//! a directory holding only the static library, searched first. When the library is missing
//! it stops the build naming the package; letting `libseccomp-sys` ask for it statically
//! instead would fail earlier, in that crate, with a message that names no package.

use std::path::PathBuf;

const LIBRARY: &str = "libseccomp.a";

pub fn link() {
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LIB_PATH");
    let dirs: Vec<PathBuf> = match std::env::var_os("LIBSECCOMP_LIB_PATH") {
        Some(dir) => vec![dir.into()],
        None => [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/lib",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    };
    let Some(found) = dirs
        .iter()
        .map(|dir| dir.join(LIBRARY))
        .find(|l| l.exists())
    else {
        let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        eprintln!(
            "error: {LIBRARY} not found in {}: nsinit compiles seccomp profiles with \
             libseccomp, linked statically\n\
             install it with: apt-get install libseccomp-dev\n\
             (or set LIBSECCOMP_LIB_PATH to the directory holding {LIBRARY})",
            looked.join(", ")
        );
        std::process::exit(1);
    };
    // The library found only: cargo takes a missing file as changed, and a
    // `rerun-if-changed` on each place looked in rebuilt nsinit (a minute with LTO) on every
    // cargo call.
    println!("cargo:rerun-if-changed={}", found.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let static_only = out.join("libseccomp-static");
    std::fs::create_dir_all(&static_only).expect("create OUT_DIR/libseccomp-static");
    let link = static_only.join(LIBRARY);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&found, &link).expect("link libseccomp.a into OUT_DIR");
    println!("cargo:rustc-link-search=native={}", static_only.display());
}
