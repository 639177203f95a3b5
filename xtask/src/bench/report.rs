//! The bench's results as markdown tables, targets with PASS/MISS, and JSON. No I/O.

use serde_json::{json, Value};

use super::runtimes::{COMMANDS, OPERATIONS, PLAIN};
use super::stats::{delta_ms, mib, ms, ratio, times, Summary};

/// One contender of a timed comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeRow {
    pub name: String,
    pub summary: Option<Summary>,
    /// Runs that failed after the warm-ups (not in the summary).
    pub failures: usize,
    /// Why there are no numbers (the contender failed its warm-up, or is missing).
    pub unavailable: Option<String>,
    pub samples: Vec<f64>,
}

impl TimeRow {
    pub fn median(&self) -> Option<f64> {
        self.summary.map(|s| s.median)
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "median_ms": self.summary.map(|s| s.median),
            "min_ms": self.summary.map(|s| s.min),
            "max_ms": self.summary.map(|s| s.max),
            "runs": self.summary.map_or(0, |s| s.n),
            "failures": self.failures,
            "unavailable": self.unavailable,
            "samples_ms": self.samples,
        })
    }
}

/// A row's median in the table's rows, by name.
pub fn median_of(rows: &[TimeRow], name: &str) -> Option<f64> {
    rows.iter().find(|r| r.name == name)?.median()
}

/// `| contender | median | min | max | ratio to REFERENCE |`.
pub fn time_table(rows: &[TimeRow], reference: &str) -> String {
    let reference_median = median_of(rows, reference);
    let mut out = format!(
        "| contender | median | min | max | ratio to {reference} |\n|---|--:|--:|--:|--:|\n"
    );
    for row in rows {
        let name = match row.failures {
            0 => row.name.clone(),
            1 => format!("{} (1 failed run)", row.name),
            n => format!("{} ({n} failed runs)", row.name),
        };
        let line = match (row.summary, &row.unavailable) {
            (Some(s), _) => {
                let r = reference_median.and_then(|m| ratio(s.median, m));
                format!(
                    "| {name} | {} | {} | {} | {} |",
                    ms(s.median),
                    ms(s.min),
                    ms(s.max),
                    r.map_or("-".into(), times)
                )
            }
            (None, reason) => format!(
                "| {name} | {} | - | - | - |",
                reason.as_deref().unwrap_or("no successful run")
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The memory of one supervising process while its container runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    pub name: String,
    /// VmRSS in KiB.
    pub rss: Option<Summary>,
    /// RssAnon in KiB.
    pub anon: Option<Summary>,
    pub unavailable: Option<String>,
}

impl MemoryRow {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "rss_kib_median": self.rss.map(|s| s.median),
            "rss_kib_min": self.rss.map(|s| s.min),
            "rss_kib_max": self.rss.map(|s| s.max),
            "rss_anon_kib_median": self.anon.map(|s| s.median),
            "samples": self.rss.map_or(0, |s| s.n),
            "unavailable": self.unavailable,
        })
    }
}

pub fn memory_table(rows: &[MemoryRow], reference: &str) -> String {
    let reference_rss = rows
        .iter()
        .find(|r| r.name == reference)
        .and_then(|r| r.rss)
        .map(|s| s.median);
    let mut out =
        format!("| supervisor | VmRSS | RssAnon | RSS ratio to {reference} |\n|---|--:|--:|--:|\n");
    for row in rows {
        let line = match (row.rss, row.anon) {
            (Some(rss), Some(anon)) => format!(
                "| {} | {} | {} | {} |",
                row.name,
                mib(rss.median),
                mib(anon.median),
                reference_rss
                    .and_then(|m| ratio(rss.median, m))
                    .map_or("-".into(), times)
            ),
            _ => format!(
                "| {} | {} | - | - |",
                row.name,
                row.unavailable.as_deref().unwrap_or("no sample")
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The peak RSS (KiB) of a runtime's process for each operation (`run`, `create`, `exec`).
#[derive(Debug, Clone, PartialEq)]
pub struct PeakRow {
    pub name: String,
    pub kib: [Option<Summary>; 3],
}

/// `| runtime | run | create | exec | run: ratio to REFERENCE |`, medians in MiB.
pub fn peak_table(rows: &[PeakRow], reference: &str) -> String {
    let reference_run = rows
        .iter()
        .find(|r| r.name == reference)
        .and_then(|r| r.kib[0])
        .map(|s| s.median);
    let mut out = format!(
        "| runtime | run | create | exec | run: ratio to {reference} |\n|---|--:|--:|--:|--:|\n"
    );
    for row in rows {
        let cell = |s: Option<Summary>| s.map_or("-".into(), |s| mib(s.median));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            row.name,
            cell(row.kib[0]),
            cell(row.kib[1]),
            cell(row.kib[2]),
            row.kib[0]
                .zip(reference_run)
                .and_then(|(s, r)| ratio(s.median, r))
                .map_or("-".into(), times)
        ));
    }
    out
}

pub fn peak_json(rows: &[PeakRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let median = |op: usize| r.kib[op].map(|s| s.median);
                json!({
                    "runtime": r.name,
                    "run_max_rss_kib_median": median(0),
                    "create_max_rss_kib_median": median(1),
                    "exec_max_rss_kib_median": median(2),
                })
            })
            .collect(),
    )
}

/// `| what | cost |`: a signed difference of medians per line.
pub fn cost_table(costs: &[(String, Option<f64>)]) -> String {
    let mut out = String::from("| protection | cost (difference of medians) |\n|---|--:|\n");
    for (what, cost) in costs {
        out.push_str(&format!(
            "| {what} | {} |\n",
            cost.map_or("not measured".into(), delta_ms)
        ));
    }
    out
}

/// What a batch of containers left behind once all had exited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub veths: usize,
    pub cgroups: usize,
    pub nspid: usize,
    pub state: usize,
    pub processes: usize,
}

impl Leftovers {
    pub fn total(&self) -> usize {
        self.veths + self.cgroups + self.nspid + self.state + self.processes
    }

    /// The worse of two counts, field by field.
    pub fn max(self, other: Leftovers) -> Leftovers {
        Leftovers {
            veths: self.veths.max(other.veths),
            cgroups: self.cgroups.max(other.cgroups),
            nspid: self.nspid.max(other.nspid),
            state: self.state.max(other.state),
            processes: self.processes.max(other.processes),
        }
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.veths, "veth"),
            (self.cgroups, "cgroup"),
            (self.nspid, ".nspid"),
            (self.state, "state record"),
            (self.processes, "process"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "0".into()
        } else {
            parts.join(", ")
        }
    }
}

/// N containers started at once, over several batches.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleRow {
    pub containers: usize,
    /// Wall time of a batch, spawn of the first to the exit of the last (ms).
    pub wall: Summary,
    pub failures: usize,
    /// The worst batch.
    pub leftovers: Leftovers,
    /// How long the kernel took to delete the batch's veths after the last exit (median ms).
    pub veths_gone: Option<f64>,
    pub first_error: Option<String>,
}

impl ScaleRow {
    pub fn per_container(&self) -> f64 {
        self.wall.median / self.containers as f64
    }

    fn to_json(&self) -> Value {
        json!({
            "containers": self.containers,
            "batches": self.wall.n,
            "wall_ms_median": self.wall.median,
            "wall_ms_min": self.wall.min,
            "wall_ms_max": self.wall.max,
            "per_container_ms": self.per_container(),
            "failures": self.failures,
            "first_error": self.first_error,
            "leftovers": {
                "veths": self.leftovers.veths,
                "cgroups": self.leftovers.cgroups,
                "nspid": self.leftovers.nspid,
                "state": self.leftovers.state,
                "processes": self.leftovers.processes,
            },
            "veths_gone_ms_median": self.veths_gone,
        })
    }
}

pub fn scale_table(rows: &[ScaleRow]) -> String {
    let single = rows
        .iter()
        .find(|r| r.containers == 1)
        .map(ScaleRow::per_container);
    let mut out = String::from(
        "| containers | wall (median) | min | max | per container | ratio to 1 | failures | leftovers | veths gone after |\n\
         |--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in rows {
        let per = row.per_container();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.containers,
            ms(row.wall.median),
            ms(row.wall.min),
            ms(row.wall.max),
            ms(per),
            single.and_then(|s| ratio(per, s)).map_or("-".into(), times),
            row.failures,
            row.leftovers.describe(),
            row.veths_gone.map_or("-".into(), ms)
        ));
    }
    out
}

/// The numbers the targets are checked against; `None` where a contender had no numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measured {
    pub floor: Option<f64>,
    pub bare: Option<f64>,
    /// The dynamically linked build's bare start, shown next to the bare targets.
    pub bare_dynamic: Option<f64>,
    pub cgroups: Option<f64>,
    pub network: Option<f64>,
    pub runc: Option<f64>,
    pub join: Option<f64>,
    pub nsenter: Option<f64>,
    pub rss: Option<f64>,
    pub crun_rss: Option<f64>,
    pub per_container_1: Option<f64>,
    pub per_container_100: Option<f64>,
    pub scale_failures: Option<usize>,
    pub scale_leftovers: Option<usize>,
    /// Issue 13: the hardened default and every protection off, bare and with cgroups +
    /// network, and the floor doing the hardened default's kernel work.
    pub hardened: Option<f64>,
    pub opted_out: Option<f64>,
    pub seed_hardened: Option<f64>,
    pub seed_opted_out: Option<f64>,
    pub floor_hardened: Option<f64>,
    pub user_namespace: Option<f64>,
    /// Issue 14: nsinit-oci, runc and crun through runc's CLI.
    pub oci: Oci,
}

/// How crun ran in the OCI section.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum CrunWrapper {
    /// Directly: its medians are its own.
    #[default]
    Bare,
    /// Under hide-cgroup2 (a hybrid cgroup host), every crun command; with the medians of
    /// `hide-cgroup2 /bin/true` and `/bin/true` from the same alternation.
    HideCgroup2 {
        wrapped: Option<f64>,
        plain: Option<f64>,
    },
}

impl CrunWrapper {
    /// What the wrapper adds to one crun command (ms); `None` when that was not measured.
    pub fn cost(&self) -> Option<f64> {
        match *self {
            CrunWrapper::Bare => Some(0.0),
            CrunWrapper::HideCgroup2 { wrapped, plain } => Some(wrapped? - plain?),
        }
    }
}

/// Issue 14's numbers: medians (ms) per operation, in `runtimes::OPERATIONS` order.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Oci {
    pub nsinit_oci: [Option<f64>; 3],
    pub runc: [Option<f64>; 3],
    /// crun's as timed: under hide-cgroup2, the wrapper's cost is in them once per command.
    pub crun: [Option<f64>; 3],
    pub wrapper: CrunWrapper,
    /// Median peak RSS (KiB) of `create`.
    pub nsinit_oci_create_rss: Option<f64>,
    pub crun_create_rss: Option<f64>,
}

impl Oci {
    /// crun's median of operation `op` less the wrapper's cost once per crun command it
    /// times (`COMMANDS[op]`).
    pub fn crun_net(&self, op: usize) -> Option<f64> {
        Some(self.crun[op]? - COMMANDS[op] as f64 * self.wrapper.cost()?)
    }

    fn wrapped(&self) -> bool {
        matches!(self.wrapper, CrunWrapper::HideCgroup2 { .. })
    }
}

/// One target: what it demands, what was measured, and whether it holds (`None`: could not
/// be measured).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub what: String,
    pub measured: String,
    pub pass: Option<bool>,
}

impl Target {
    fn at_most(
        what: impl Into<String>,
        value: Option<f64>,
        limit: f64,
        show: fn(f64) -> String,
    ) -> Target {
        Target {
            what: what.into(),
            measured: value.map_or("not measured".into(), show),
            pass: value.map(|v| v <= limit),
        }
    }

    /// Appends `(dynamically linked: X)` to what was measured.
    fn with_dynamic(mut self, value: Option<f64>, show: fn(f64) -> String) -> Target {
        if let Some(value) = value {
            self.measured = format!("{} (dynamically linked: {})", self.measured, show(value));
        }
        self
    }

    /// Appends `(X with the wrapper left in)`: the ratio to crun as timed.
    fn with_wrapper_in(mut self, value: Option<f64>) -> Target {
        if let Some(value) = value {
            self.measured = format!(
                "{} ({} with the wrapper left in)",
                self.measured,
                times(value)
            );
        }
        self
    }

    fn zero(what: &'static str, count: Option<usize>) -> Target {
        Target {
            what: what.into(),
            measured: count.map_or("not measured".into(), |n| n.to_string()),
            pass: count.map(|n| n == 0),
        }
    }

    fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a",
        }
    }
}

/// Every target of issues 8, 13 and 14 with its measured ratio or difference.
pub fn targets(m: &Measured) -> Vec<Target> {
    let mut all = start_targets(m);
    all.extend(oci_targets(&m.oci));
    all
}

/// Issue 14: nsinit-oci against crun (net of its wrapper, when it has one) and runc.
fn oci_targets(o: &Oci) -> Vec<Target> {
    let quotient = |a: Option<f64>, b: Option<f64>| ratio(a?, b?);
    let net = if o.wrapped() {
        " (net of hide-cgroup2)"
    } else {
        ""
    };
    let against_crun = |op: usize| {
        let target = Target::at_most(
            format!("{}: nsinit-oci ≤ 0.5x crun{net}", OPERATIONS[op]),
            quotient(o.nsinit_oci[op], o.crun_net(op)),
            0.5,
            times,
        );
        match (o.wrapped(), target.pass) {
            (true, Some(_)) => target.with_wrapper_in(quotient(o.nsinit_oci[op], o.crun[op])),
            _ => target,
        }
    };
    let against_runc = |op: usize| {
        Target::at_most(
            format!("{}: nsinit-oci ≤ 0.2x runc", OPERATIONS[op]),
            quotient(o.nsinit_oci[op], o.runc[op]),
            0.2,
            times,
        )
    };
    vec![
        against_crun(0),
        against_runc(0),
        against_crun(1),
        against_runc(1),
        against_crun(2),
        Target::at_most(
            "peak RSS during create: nsinit-oci ≤ crun",
            quotient(o.nsinit_oci_create_rss, o.crun_create_rss),
            1.0,
            times,
        ),
    ]
}

/// Issues 8 and 13: nsinit's start, join, memory and scale, and the hardened default.
fn start_targets(m: &Measured) -> Vec<Target> {
    let quotient = |a: Option<f64>, b: Option<f64>| ratio(a?, b?);
    let minus = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
    vec![
        Target::at_most(
            "start, bare: nsinit ≤ 2.0x the kernel floor",
            quotient(m.bare, m.floor),
            2.0,
            times,
        )
        .with_dynamic(quotient(m.bare_dynamic, m.floor), times),
        Target::at_most(
            "start, bare: nsinit ≤ 0.25x runc",
            quotient(m.bare, m.runc),
            0.25,
            times,
        )
        .with_dynamic(quotient(m.bare_dynamic, m.runc), times),
        Target::at_most(
            "start with cgroups ≤ bare + 3 ms",
            minus(m.cgroups, m.bare),
            3.0,
            delta_ms,
        ),
        Target::at_most(
            "start with network ≤ bare + 3 ms",
            minus(m.network, m.bare),
            3.0,
            delta_ms,
        ),
        Target::at_most(
            "join: nsinit ≤ 2.0x nsenter",
            quotient(m.join, m.nsenter),
            2.0,
            times,
        ),
        Target::at_most(
            "supervisor RSS: nsinit ≤ crun",
            quotient(m.rss, m.crun_rss),
            1.0,
            times,
        ),
        Target::at_most(
            "scale: per container at 100 ≤ 1.5x at 1",
            quotient(m.per_container_100, m.per_container_1),
            1.5,
            times,
        ),
        Target::zero("scale: failures", m.scale_failures),
        Target::zero("scale: leftovers", m.scale_leftovers),
        Target::at_most(
            "hardened default, bare ≤ every protection off + 0.5 ms",
            minus(m.hardened, m.opted_out),
            0.5,
            delta_ms,
        ),
        Target::at_most(
            "hardened default, cgroups + network ≤ every protection off + 0.5 ms",
            minus(m.seed_hardened, m.seed_opted_out),
            0.5,
            delta_ms,
        ),
        Target::at_most(
            "hardened default: nsinit ≤ 1.6x floor.c --hardened",
            quotient(m.hardened, m.floor_hardened),
            1.6,
            times,
        ),
        Target::at_most(
            "start with a user namespace ≤ without + 1 ms (hardened default)",
            minus(m.user_namespace, m.hardened),
            1.0,
            delta_ms,
        ),
        Target::at_most(
            "join: nsinit ≤ 1.2x nsenter",
            quotient(m.join, m.nsenter),
            1.2,
            times,
        ),
    ]
}

/// Under the OCI section when crun ran under hide-cgroup2: the wrapper's rows (`rows`, timed
/// in the same alternation), its cost, and crun's medians net of it.
pub fn wrapper_section(rows: &[TimeRow], o: &Oci) -> String {
    let cost = o.wrapper.cost();
    let mut out = time_table(rows, PLAIN);
    out.push_str(&format!(
        "\nThe wrapper's own cost: {} per crun command (`hide-cgroup2 /bin/true` less \
         `/bin/true`, medians). crun's medians net of it, the cost taken off once per crun \
         command timed (`run` and `exec` are one, the lifecycle three: `create`, `start`, \
         `delete`); the issue-14 targets use these:\n\n",
        cost.map_or("not measured".into(), ms)
    ));
    out.push_str(
        "| operation | crun (under hide-cgroup2) | wrapper's cost taken off | crun net of hide-cgroup2 | nsinit-oci | ratio to crun net |\n\
         |---|--:|--:|--:|--:|--:|\n",
    );
    let cell = |value: Option<f64>| value.map_or("-".into(), ms);
    for (op, operation) in OPERATIONS.iter().enumerate() {
        let net = o.crun_net(op);
        out.push_str(&format!(
            "| {operation} | {} | {} | {} | {} | {} |\n",
            cell(o.crun[op]),
            cost.map_or("-".into(), |c| format!("{} × {}", COMMANDS[op], ms(c))),
            cell(net),
            cell(o.nsinit_oci[op]),
            o.nsinit_oci[op]
                .zip(net)
                .and_then(|(a, b)| ratio(a, b))
                .map_or("-".into(), times)
        ));
    }
    out
}

/// crun's wrapper, its cost and crun's medians net of it, by operation.
pub fn oci_json(o: &Oci) -> Value {
    let by_operation = |value: &dyn Fn(usize) -> Value| -> Value {
        OPERATIONS
            .iter()
            .enumerate()
            .map(|(op, operation)| (operation.to_string(), value(op)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "crun_under_hide_cgroup2": o.wrapped(),
        "wrapper_cost_ms": o.wrapper.cost(),
        "crun_commands": by_operation(&|op| json!(COMMANDS[op])),
        "crun_median_ms": by_operation(&|op| json!(o.crun[op])),
        "crun_net_median_ms": by_operation(&|op| json!(o.crun_net(op))),
    })
}

pub fn targets_table(targets: &[Target]) -> String {
    let mut out = String::from("| target | measured | result |\n|---|--:|:-:|\n");
    for t in targets {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            t.what,
            t.measured,
            t.verdict()
        ));
    }
    out
}

pub fn targets_json(targets: &[Target]) -> Value {
    Value::Array(
        targets
            .iter()
            .map(|t| json!({ "target": t.what, "measured": t.measured, "pass": t.pass }))
            .collect(),
    )
}

pub fn rows_json(rows: &[TimeRow]) -> Value {
    Value::Array(rows.iter().map(TimeRow::to_json).collect())
}

pub fn memory_json(rows: &[MemoryRow]) -> Value {
    Value::Array(rows.iter().map(MemoryRow::to_json).collect())
}

pub fn scale_json(rows: &[ScaleRow]) -> Value {
    Value::Array(rows.iter().map(ScaleRow::to_json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::summarize;

    fn row(name: &str, samples: &[f64]) -> TimeRow {
        TimeRow {
            name: name.into(),
            summary: summarize(samples),
            failures: 0,
            unavailable: None,
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn time_tables_show_ratios_to_the_reference_and_reasons_for_gaps() {
        let mut failed = row("nsinit + cgroups", &[4.0, 5.0]);
        failed.failures = 2;
        let rows = [
            row("kernel floor", &[2.0, 2.5, 3.0]),
            row("nsinit", &[4.0, 5.0, 6.0]),
            failed,
            TimeRow {
                unavailable: Some("not landed".into()),
                ..row("crun", &[])
            },
        ];
        assert_eq!(
            time_table(&rows, "nsinit"),
            "| contender | median | min | max | ratio to nsinit |\n\
             |---|--:|--:|--:|--:|\n\
             | kernel floor | 2.50 ms | 2.00 ms | 3.00 ms | 0.50x |\n\
             | nsinit | 5.00 ms | 4.00 ms | 6.00 ms | 1.00x |\n\
             | nsinit + cgroups (2 failed runs) | 4.50 ms | 4.00 ms | 5.00 ms | 0.90x |\n\
             | crun | not landed | - | - | - |\n"
        );
    }

    #[test]
    fn memory_tables_are_in_mib() {
        let rows = [
            MemoryRow {
                name: "nsinit".into(),
                rss: summarize(&[2048.0]),
                anon: summarize(&[512.0]),
                unavailable: None,
            },
            MemoryRow {
                name: "crun run".into(),
                rss: summarize(&[4096.0]),
                anon: summarize(&[1024.0]),
                unavailable: None,
            },
        ];
        assert_eq!(
            memory_table(&rows, "nsinit"),
            "| supervisor | VmRSS | RssAnon | RSS ratio to nsinit |\n|---|--:|--:|--:|\n\
             | nsinit | 2.0 MiB | 0.5 MiB | 1.00x |\n\
             | crun run | 4.0 MiB | 1.0 MiB | 2.00x |\n"
        );
    }

    #[test]
    fn scale_tables_compare_per_container_time_with_one() {
        let batch = |n, wall: &[f64], leftovers| ScaleRow {
            containers: n,
            wall: summarize(wall).unwrap(),
            failures: 0,
            leftovers,
            veths_gone: (n == 1).then_some(40.0),
            first_error: None,
        };
        let rows = [
            batch(1, &[5.0], Leftovers::default()),
            batch(
                100,
                &[250.0],
                Leftovers {
                    veths: 2,
                    processes: 1,
                    ..Leftovers::default()
                },
            ),
        ];
        let table = scale_table(&rows);
        assert!(
            table.contains(
                "| 1 | 5.00 ms | 5.00 ms | 5.00 ms | 5.00 ms | 1.00x | 0 | 0 | 40.0 ms |"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| 100 | 250 ms | 250 ms | 250 ms | 2.50 ms | 0.50x | 0 | 2 veth, 1 process | - |"
            ),
            "{table}"
        );
    }

    #[test]
    fn targets_pass_miss_or_cannot_be_judged() {
        let m = Measured {
            floor: Some(2.5),
            bare: Some(4.0),
            bare_dynamic: Some(3.0),
            cgroups: Some(8.0),
            network: Some(5.0),
            runc: Some(40.0),
            join: None,
            nsenter: Some(1.0),
            rss: Some(2000.0),
            crun_rss: Some(3300.0),
            per_container_1: Some(5.0),
            per_container_100: Some(2.0),
            scale_failures: Some(0),
            scale_leftovers: Some(1),
            hardened: Some(4.4),
            opted_out: Some(4.0),
            floor_hardened: Some(2.5),
            user_namespace: Some(4.7),
            ..Measured::default()
        };
        let results: Vec<(String, Option<bool>)> = targets(&m)
            .into_iter()
            .map(|t| (t.measured, t.pass))
            .collect();
        assert_eq!(
            results,
            [
                ("1.60x (dynamically linked: 1.20x)".to_string(), Some(true)),
                ("0.10x (dynamically linked: 0.07x)".into(), Some(true)),
                ("+4.00 ms".into(), Some(false)),
                ("+1.00 ms".into(), Some(true)),
                ("not measured".into(), None),
                ("0.61x".into(), Some(true)),
                ("0.40x".into(), Some(true)),
                ("0".into(), Some(true)),
                ("1".into(), Some(false)),
                ("+0.40 ms".into(), Some(true)),
                ("not measured".into(), None),
                ("1.76x".into(), Some(false)),
                ("+0.30 ms".into(), Some(true)),
                ("not measured".into(), None),
                // Issue 14's, without an OCI section.
                ("not measured".into(), None),
                ("not measured".into(), None),
                ("not measured".into(), None),
                ("not measured".into(), None),
                ("not measured".into(), None),
                ("not measured".into(), None),
            ]
        );
        let table = targets_table(&targets(&m)[..3]);
        assert!(
            table.contains("| start with cgroups ≤ bare + 3 ms | +4.00 ms | MISS |"),
            "{table}"
        );
    }

    /// crun under hide-cgroup2: 2.0 ms wrapped, 1.1 ms plain, so 0.9 ms per crun command.
    fn oci() -> Oci {
        Oci {
            nsinit_oci: [Some(2.0), Some(5.0), Some(1.6)],
            runc: [Some(20.0), Some(22.0), Some(9.0)],
            crun: [Some(5.0), Some(12.0), Some(4.0)],
            wrapper: CrunWrapper::HideCgroup2 {
                wrapped: Some(2.0),
                plain: Some(1.1),
            },
            nsinit_oci_create_rss: Some(2048.0),
            crun_create_rss: Some(3072.0),
        }
    }

    fn oci_results(o: Oci) -> Vec<(String, String, Option<bool>)> {
        oci_targets(&o)
            .into_iter()
            .map(|t| (t.what, t.measured, t.pass))
            .collect()
    }

    #[test]
    fn crun_is_net_of_its_wrapper_once_per_crun_command() {
        let o = oci();
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(o.wrapper.cost(), 0.9));
        assert!(close(o.crun_net(0), 4.1));
        // create, start and delete each ran under the wrapper.
        assert!(close(o.crun_net(1), 12.0 - 3.0 * 0.9));
        assert!(close(o.crun_net(2), 3.1));
        let bare = Oci {
            wrapper: CrunWrapper::Bare,
            ..o
        };
        assert_eq!(bare.crun_net(1), Some(12.0));
        let unmeasured = Oci {
            wrapper: CrunWrapper::HideCgroup2 {
                wrapped: Some(2.0),
                plain: None,
            },
            ..o
        };
        assert_eq!(unmeasured.crun_net(0), None);
    }

    #[test]
    fn issue_14_targets_compare_with_crun_net_of_its_wrapper_and_with_runc() {
        let s = |text: &str| text.to_string();
        assert_eq!(
            oci_results(oci()),
            [
                (
                    s("run: nsinit-oci ≤ 0.5x crun (net of hide-cgroup2)"),
                    s("0.49x (0.40x with the wrapper left in)"),
                    Some(true)
                ),
                (s("run: nsinit-oci ≤ 0.2x runc"), s("0.10x"), Some(true)),
                (
                    s("create + start + wait + delete: nsinit-oci ≤ 0.5x crun (net of hide-cgroup2)"),
                    s("0.54x (0.42x with the wrapper left in)"),
                    Some(false)
                ),
                (
                    s("create + start + wait + delete: nsinit-oci ≤ 0.2x runc"),
                    s("0.23x"),
                    Some(false)
                ),
                (
                    s("exec: nsinit-oci ≤ 0.5x crun (net of hide-cgroup2)"),
                    s("0.52x (0.40x with the wrapper left in)"),
                    Some(false)
                ),
                (
                    s("peak RSS during create: nsinit-oci ≤ crun"),
                    s("0.67x"),
                    Some(true)
                ),
            ]
        );
    }

    #[test]
    fn issue_14_targets_without_a_wrapper_use_crun_as_timed() {
        let bare = Oci {
            wrapper: CrunWrapper::Bare,
            ..oci()
        };
        let results = oci_results(bare);
        assert_eq!(
            results[0],
            (
                "run: nsinit-oci ≤ 0.5x crun".to_string(),
                "0.40x".to_string(),
                Some(true)
            )
        );
        assert_eq!(results[2].1, "0.42x");
    }

    #[test]
    fn issue_14_targets_without_their_numbers_are_not_measured() {
        // The wrapper's plain `/bin/true` failed: crun cannot be taken net of it, so the crun
        // targets are not judged on the flattering numbers; runc's still are.
        let o = Oci {
            wrapper: CrunWrapper::HideCgroup2 {
                wrapped: Some(2.0),
                plain: None,
            },
            runc: [None, Some(22.0), None],
            crun_create_rss: None,
            ..oci()
        };
        let judged: Vec<(String, Option<bool>)> = oci_results(o)
            .into_iter()
            .map(|(_, measured, pass)| (measured, pass))
            .collect();
        let na = || ("not measured".to_string(), None);
        assert_eq!(
            judged,
            [na(), na(), na(), ("0.23x".into(), Some(false)), na(), na()]
        );
        // No OCI section at all.
        assert!(oci_results(Oci::default())
            .iter()
            .all(|(_, measured, pass)| measured == "not measured" && pass.is_none()));
        let table = targets_table(&oci_targets(&Oci::default())[..1]);
        assert_eq!(
            table,
            "| target | measured | result |\n|---|--:|:-:|\n\
             | run: nsinit-oci ≤ 0.5x crun | not measured | n/a |\n"
        );
    }

    #[test]
    fn the_wrapper_section_shows_its_cost_and_crun_net_of_it() {
        let rows = [
            row(
                "hide-cgroup2 /bin/true (crun's wrapper alone)",
                &[1.9, 2.0, 2.2],
            ),
            row("/bin/true", &[1.0, 1.1, 1.3]),
        ];
        let text = wrapper_section(&rows, &oci());
        assert!(
            text.contains("| hide-cgroup2 /bin/true (crun's wrapper alone) | 2.00 ms | 1.90 ms | 2.20 ms | 1.82x |"),
            "{text}"
        );
        assert!(
            text.contains("The wrapper's own cost: 0.90 ms per crun command"),
            "{text}"
        );
        assert!(
            text.contains("| run | 5.00 ms | 1 × 0.90 ms | 4.10 ms | 2.00 ms | 0.49x |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| create + start + wait + delete | 12.0 ms | 3 × 0.90 ms | 9.30 ms | 5.00 ms | 0.54x |"
            ),
            "{text}"
        );
        let json = oci_json(&oci());
        assert_eq!(json["crun_under_hide_cgroup2"], json!(true));
        assert_eq!(
            json["crun_commands"]["create + start + wait + delete"],
            json!(3)
        );
        let net = json["crun_net_median_ms"]["exec"].as_f64().unwrap();
        assert!((net - 3.1).abs() < 1e-9);
    }
}
