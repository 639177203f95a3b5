//! The smallest memory limit each runtime can start a container under: `/bin/true` with the
//! seed's five namespaces in a memory cgroup of that limit, found by bisection. A runtime
//! whose own setup runs inside the group (runc's Go init) needs megabytes; one whose child
//! joins the group only for the command needs what the kernel and the command need.

use std::ffi::OsString;
use std::fs;
use std::process::{Command, Stdio};

use anyhow::Result;
use serde_json::{json, Value};

use super::config::container_json_with_memory;
use super::{interrupt, oci, Bench, CRUN, NSINIT, RUNC};

/// The search range and step: limits are multiples of 16 KiB between 16 KiB and 64 MiB.
const STEP: u64 = 16 << 10;
const HIGHEST: u64 = 64 << 20;
/// Found limits are confirmed this many more times in a row.
const CONFIRMATIONS: usize = 2;

/// One runtime's smallest limit, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitRow {
    pub name: String,
    /// Bytes; `None` when it did not start even under [`HIGHEST`] or could not run.
    pub smallest: Option<u64>,
    /// How many starts the search took.
    pub probes: usize,
    pub unavailable: Option<String>,
}

impl LimitRow {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "smallest_limit_bytes": self.smallest,
            "probes": self.probes,
            "unavailable": self.unavailable,
        })
    }
}

pub fn json(rows: &[LimitRow]) -> Value {
    Value::Array(rows.iter().map(LimitRow::to_json).collect())
}

pub fn table(rows: &[LimitRow]) -> String {
    let mut out = String::from("| runtime | smallest limit | starts tried |\n|---|--:|--:|\n");
    for row in rows {
        let smallest = match (row.smallest, &row.unavailable) {
            (Some(bytes), _) => kib(bytes),
            (None, Some(why)) => why.replace('|', "/"),
            (None, None) => format!("none up to {}", kib(HIGHEST)),
        };
        out.push_str(&format!("| {} | {smallest} | {} |\n", row.name, row.probes));
    }
    out
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes >> 10)
}

/// The smallest multiple of [`STEP`] under which `starts` succeeds [`CONFIRMATIONS`] + 1
/// times in a row, assuming more memory never hurts; `None` if even [`HIGHEST`] fails.
pub fn smallest(mut starts: impl FnMut(u64) -> Result<bool>) -> Result<(Option<u64>, usize)> {
    let mut probes = 0;
    let mut try_limit = |limit: u64| {
        probes += 1;
        starts(limit)
    };
    if !try_limit(HIGHEST)? {
        return Ok((None, probes));
    }
    // Invariant: `low` failed (or is below anything sensible), `high` started.
    let (mut low, mut high) = (0, HIGHEST);
    loop {
        while high - low > STEP {
            let middle = (low + high) / 2 / STEP * STEP;
            if try_limit(middle)? {
                high = middle;
            } else {
                low = middle;
            }
        }
        let mut confirmed = true;
        for _ in 0..CONFIRMATIONS {
            if !try_limit(high)? {
                confirmed = false;
                break;
            }
        }
        if confirmed {
            return Ok((Some(high), probes));
        }
        // Started once by luck: search above it.
        low = high;
        high = (high + 4 * STEP).min(HIGHEST);
        if low >= HIGHEST {
            return Ok((None, probes));
        }
    }
}

impl Bench<'_> {
    /// The smallest memory limit nsinit, runc and crun each start `/bin/true` under.
    pub(super) fn limits(&self) -> Result<Vec<LimitRow>> {
        println!("==> memory limit: the smallest each runtime starts /bin/true under");
        let dir = self.container(
            "limit",
            &container_json_with_memory("bench-limit", HIGHEST)?,
        )?;
        let (smallest_nsinit, probes) = smallest(|limit| {
            interrupt::check()?;
            fs::write(
                dir.join("container.json"),
                container_json_with_memory("bench-limit", limit)?,
            )?;
            Ok(quietly(
                Command::new(&self.tools.nsinit).arg("-C").arg(&dir).args([
                    "exec",
                    "--",
                    "/bin/true",
                ]),
            ))
        })?;
        let mut rows = vec![LimitRow {
            name: NSINIT.into(),
            smallest: smallest_nsinit,
            probes,
            unavailable: None,
        }];
        for (runtime, name) in [("runc", RUNC), ("crun", CRUN)] {
            rows.push(match self.runtime_limit(runtime) {
                Ok((smallest, probes)) => LimitRow {
                    name: name.into(),
                    smallest,
                    probes,
                    unavailable: None,
                },
                Err(why) => LimitRow {
                    name: name.into(),
                    smallest: None,
                    probes: 0,
                    unavailable: Some(format!("cannot run ({why})")),
                },
            });
        }
        Ok(rows)
    }

    /// runc's or crun's smallest limit: its bundle with `linux.resources.memory.limit`,
    /// deleted after every start.
    fn runtime_limit(&self, runtime: &str) -> Result<(Option<u64>, usize), String> {
        let contender = self.runtime(runtime, runtime, "limit", &["/bin/true"])?;
        let bundle = self.work.path.join(format!("{runtime}-limit"));
        let config_path = bundle.join("config.json");
        let config = fs::read_to_string(&config_path).map_err(|e| e.to_string())?;
        let id = contender
            .args
            .last()
            .cloned()
            .unwrap_or_else(|| OsString::from(runtime));
        // `crun delete` goes through the same wrapper as `crun run`, if any.
        let delete: Vec<OsString> = contender
            .args
            .iter()
            .take_while(|arg| arg.as_os_str() != "run")
            .cloned()
            .chain(["delete".into(), "-f".into(), id])
            .collect();
        smallest(|limit| {
            interrupt::check()?;
            fs::write(&config_path, oci::with_memory_limit(&config, limit)?)?;
            let started = quietly(Command::new(&contender.program).args(&contender.args));
            quietly(Command::new(&contender.program).args(&delete));
            Ok(started)
        })
        .map_err(|e| format!("{e:#}"))
    }
}

/// Whether `command` exits 0, its output discarded.
fn quietly(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisection_finds_the_threshold_on_the_step_grid() {
        let threshold = 131_072 + 5;
        let (found, probes) = smallest(|limit| Ok(limit >= threshold)).unwrap();
        assert_eq!(found, Some(131_072 + STEP));
        assert!(probes < 20, "{probes}");
    }

    #[test]
    fn a_runtime_that_never_starts_has_no_limit() {
        assert_eq!(smallest(|_| Ok(false)).unwrap(), (None, 1));
    }

    #[test]
    fn a_lucky_start_is_not_taken_for_the_limit() {
        // Starts at 64 KiB only the first time it is tried there; from 96 KiB always.
        let mut tried_64 = 0;
        let (found, _) = smallest(|limit| {
            if limit == 64 << 10 {
                tried_64 += 1;
                return Ok(tried_64 == 1);
            }
            Ok(limit >= 96 << 10)
        })
        .unwrap();
        assert_eq!(found, Some(96 << 10));
    }

    #[test]
    fn tables_show_kib_and_why_a_row_is_missing() {
        let rows = [
            LimitRow {
                name: "nsinit".into(),
                smallest: Some(128 << 10),
                probes: 14,
                unavailable: None,
            },
            LimitRow {
                name: "crun run".into(),
                smallest: None,
                probes: 0,
                unavailable: Some("cannot run (crun is not installed)".into()),
            },
        ];
        assert_eq!(
            table(&rows),
            "| runtime | smallest limit | starts tried |\n|---|--:|--:|\n\
             | nsinit | 128 KiB | 14 |\n\
             | crun run | cannot run (crun is not installed) | 0 |\n"
        );
    }
}
