//! Build check: nsinit links libseccomp statically (the seccomp compiler, `seccomp/compile.rs`);
//! without Debian's libseccomp-dev the link would fail deep in `libseccomp-sys` with a
//! message that does not name the package. This says what is missing and how to install it.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LIB_PATH");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LINK_TYPE");
    let static_link = std::env::var("LIBSECCOMP_LINK_TYPE").as_deref() == Ok("static");
    let file = if static_link {
        "libseccomp.a"
    } else {
        "libseccomp.so"
    };
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
    for dir in &dirs {
        println!("cargo:rerun-if-changed={}", dir.join(file).display());
    }
    if !dirs.iter().any(|dir| dir.join(file).exists()) {
        let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        eprintln!(
            "error: {file} not found in {}: nsinit compiles seccomp filters with libseccomp\n\
             install it with: apt-get install libseccomp-dev\n\
             (or set LIBSECCOMP_LIB_PATH to the directory holding {file})",
            looked.join(", ")
        );
        std::process::exit(1);
    }
}
