//! `linux.seccomp`: the profile, read and compiled by the seccomp module (libseccomp, for
//! x86_64, x86 and x32 at once) when the config is parsed, so that a profile nsinit cannot
//! compile is refused before anything is created. An error names the field it is about
//! (`linux.seccomp.syscalls[3].names[0]`).

use super::super::error::ErrorKind;
use super::super::json::{Checked, Invalid, Json};
use crate::seccomp::{compile, Filter, FilterCache, Profile, SeccompError};

/// How a profile becomes a filter: compiled where it is read, or through a cache of compiled
/// filters (`nsinit-oci create`). Parsing stays pure without the cache.
#[derive(Clone, Copy)]
pub enum Compiler<'a> {
    Here,
    Cached(&'a FilterCache),
}

impl Compiler<'_> {
    fn filter(self, profile: &serde_json::Value, field: &str) -> Result<Filter, SeccompError> {
        let compile = || Profile::from_json(profile, field).and_then(|p| compile(&p, field));
        match self {
            Compiler::Here => compile(),
            // serde_json's objects keep their keys sorted: one text per profile.
            Compiler::Cached(cache) => cache.filter(&profile.to_string(), compile),
        }
    }
}

/// The compiled filter of the profile at `field`; `null` is no filter.
pub(super) fn seccomp(
    field: &str,
    value: &Json,
    compiler: Compiler<'_>,
) -> Checked<Option<Filter>> {
    if matches!(value, Json::Null) {
        return Ok(None);
    }
    let value = plain(value);
    let filter = compiler.filter(&value, field);
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
