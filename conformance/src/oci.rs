//! `probe oci`: what the OCI front-end's checks look at, on top of the usual facts: the ids,
//! limits and security state `/proc/self/status` and `/proc/self/limits` show, and the
//! outcome of a few file operations the driver names on the command line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::facts::Facts;

/// `probe oci OP...`: the facts, the process's status lines and each operation's outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OciFacts {
    pub facts: Facts,
    /// `Uid`, `Gid`, `Groups`, `NoNewPrivs`, `Seccomp` from `/proc/self/status`, as printed
    /// (whitespace collapsed to one space).
    pub status: BTreeMap<String, String>,
    /// `Max open files`: soft and hard, as `/proc/self/limits` prints them.
    pub nofile: Option<(String, String)>,
    /// One entry per operation, in the order asked.
    pub ops: Vec<OpResult>,
}

/// The outcome of one `KIND:PATH` operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpResult {
    /// As asked: `read:/proc/cmdline`.
    pub op: String,
    pub ok: bool,
    /// The errno's name when it failed (`EROFS`), or the error text.
    pub error: Option<String>,
    /// `read`: the file's first 4 KiB, or a directory's entry names, one a line, sorted.
    pub content: Option<String>,
}

impl OciFacts {
    /// The outcome of `op`, or a result saying the probe was not asked for it.
    pub fn op(&self, op: &str) -> OpResult {
        self.ops
            .iter()
            .find(|r| r.op == op)
            .cloned()
            .unwrap_or_else(|| OpResult {
                op: op.to_string(),
                ok: false,
                error: Some("not asked of the probe".to_string()),
                content: None,
            })
    }

    /// A `/proc/self/status` line's value, or empty.
    pub fn status(&self, name: &str) -> &str {
        self.status.get(name).map_or("", String::as_str)
    }
}

/// The `/proc/self/status` fields [`OciFacts::status`] keeps.
pub const STATUS_FIELDS: &[&str] = &["Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp"];
