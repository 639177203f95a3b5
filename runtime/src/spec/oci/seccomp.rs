//! `linux.seccomp`: the profile, read and compiled by the seccomp module (libseccomp, for
//! x86_64, x86 and x32 at once) when the config is parsed, so that a profile nsinit cannot
//! compile is refused before anything is created. An error names the field it is about
//! (`linux.seccomp.syscalls[3].names[0]`).

use super::super::error::ErrorKind;
use super::super::json::{Checked, Invalid, Json};
use crate::seccomp::{compile, Filter, Profile};

/// The compiled filter of the profile at `field`; `null` is no filter.
pub(super) fn seccomp(field: &str, value: &Json) -> Checked<Option<Filter>> {
    if matches!(value, Json::Null) {
        return Ok(None);
    }
    let value = plain(value);
    let filter = Profile::from_json(&value, field).and_then(|profile| compile(&profile, field));
    filter.map(Some).map_err(|error| {
        // The seccomp module's messages are `<field>: <what is wrong>`, field paths rooted
        // at the `field` it was given.
        let text = error.to_string();
        let (at, reason) = text.split_once(": ").unwrap_or((field, &text));
        Invalid {
            field: at.to_owned(),
            kind: ErrorKind::Seccomp {
                reason: reason.to_owned(),
            },
        }
    })
}

/// The tree as `serde_json` holds it (the profile's reader works on that).
fn plain(value: &Json) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(plain).collect()),
        Json::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), plain(value)))
                .collect(),
        ),
    }
}
