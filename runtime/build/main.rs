//! nsinit's build script: link libseccomp statically, and build the exec trampoline that
//! nsinit embeds.

mod libseccomp;
mod trampoline;

fn main() {
    libseccomp::link();
    trampoline::build();
}
