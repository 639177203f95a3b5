//! `linux.seccomp`, until the seccomp module (an OCI-shaped `Profile` compiled to BPF) is on
//! main: any profile is refused as not supported yet, so a config asking for a filter never
//! runs without one.
//!
//! To wire it: replace [`refuse_seccomp_until_the_compiler_lands`] with a reader returning
//! the profile (`linux.seccomp.syscalls[3].names[0]`-style paths are what `Profile`'s own
//! reader gives), keep it in `Linux`, and carry it into the plan in `lower`.

use super::super::error::ErrorKind;
use super::super::json::{invalid, Checked, Json};

/// Refuse a seccomp profile: nsinit cannot apply one through this front-end yet. `null` (no
/// profile) is fine.
pub(super) fn refuse_seccomp_until_the_compiler_lands(field: &str, value: &Json) -> Checked<()> {
    match value {
        Json::Null => Ok(()),
        _ => invalid(
            field,
            ErrorKind::NotYet {
                what: "seccomp profiles in config.json",
            },
        ),
    }
}
