//! The step's results: one line per scenario as it finishes, the tally per runtime, and a
//! markdown table with the runtimes side by side (`target/engines/latest.md`, and JSON).

use std::time::Duration;

use serde_json::json;

/// One scenario's outcome under one runtime.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub runtime: String,
    pub suite: &'static str,
    pub name: String,
    pub passed: bool,
    /// What was seen (on success) or why it failed.
    pub note: String,
    pub elapsed: Duration,
}

impl Outcome {
    /// `  ok    [runc] podman: run -d — 1.2 s: note`.
    pub fn line(&self) -> String {
        let verdict = if self.passed { "ok  " } else { "FAIL" };
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(": {}", self.note)
        };
        format!(
            "  {verdict}  [{}] {}: {} ({:.1} s){note}",
            self.runtime,
            self.suite,
            self.name,
            self.elapsed.as_secs_f64()
        )
    }
}

/// `(passed, failed)` of `runtime`.
pub fn tally(outcomes: &[Outcome], runtime: &str) -> (usize, usize) {
    outcomes
        .iter()
        .filter(|o| o.runtime == runtime)
        .fold(
            (0, 0),
            |(p, f), o| {
                if o.passed {
                    (p + 1, f)
                } else {
                    (p, f + 1)
                }
            },
        )
}

/// Seconds spent in each suite by `runtime`, in the suites' order.
pub fn suite_times(outcomes: &[Outcome], runtime: &str) -> Vec<(&'static str, f64)> {
    let mut times: Vec<(&'static str, f64)> = Vec::new();
    for o in outcomes.iter().filter(|o| o.runtime == runtime) {
        match times.iter_mut().find(|(s, _)| *s == o.suite) {
            Some((_, t)) => *t += o.elapsed.as_secs_f64(),
            None => times.push((o.suite, o.elapsed.as_secs_f64())),
        }
    }
    times
}

/// The scenarios as rows, the runtimes as columns.
pub fn table(outcomes: &[Outcome], runtimes: &[String]) -> String {
    let mut out = format!("| scenario | {} |\n|---|", runtimes.join(" | "));
    out.push_str(&"---|".repeat(runtimes.len()));
    out.push('\n');
    let mut rows: Vec<(&'static str, &str)> = Vec::new();
    for o in outcomes {
        if !rows.contains(&(o.suite, o.name.as_str())) {
            rows.push((o.suite, &o.name));
        }
    }
    for (suite, name) in rows {
        out.push_str(&format!("| {suite}: {} |", name.replace('|', "/")));
        for runtime in runtimes {
            let cell = outcomes
                .iter()
                .find(|o| o.runtime == *runtime && o.suite == suite && o.name == name)
                .map_or("—".to_string(), |o| {
                    if o.passed {
                        "ok".to_string()
                    } else {
                        format!("FAIL: {}", o.note.replace('|', "/"))
                    }
                });
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

pub fn json(outcomes: &[Outcome]) -> serde_json::Value {
    outcomes
        .iter()
        .map(|o| {
            json!({
                "runtime": o.runtime,
                "suite": o.suite,
                "scenario": o.name,
                "passed": o.passed,
                "note": o.note,
                "seconds": o.elapsed.as_secs_f64(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(runtime: &str, suite: &'static str, name: &str, passed: bool) -> Outcome {
        Outcome {
            runtime: runtime.into(),
            suite,
            name: name.into(),
            passed,
            note: if passed {
                String::new()
            } else {
                "broke".into()
            },
            elapsed: Duration::from_millis(1500),
        }
    }

    #[test]
    fn lines_tallies_and_the_table() {
        let outcomes = [
            outcome("nsinit-oci", "podman", "run -d", false),
            outcome("nsinit-oci", "ctr", "task exec", true),
            outcome("runc", "podman", "run -d", true),
        ];
        assert_eq!(
            outcomes[0].line(),
            "  FAIL  [nsinit-oci] podman: run -d (1.5 s): broke"
        );
        assert_eq!(tally(&outcomes, "nsinit-oci"), (1, 1));
        assert_eq!(tally(&outcomes, "runc"), (1, 0));
        assert_eq!(
            suite_times(&outcomes, "nsinit-oci"),
            [("podman", 1.5), ("ctr", 1.5)]
        );
        let table = table(&outcomes, &["nsinit-oci".into(), "runc".into()]);
        assert_eq!(
            table,
            "| scenario | nsinit-oci | runc |\n|---|---|---|\n\
             | podman: run -d | FAIL: broke | ok |\n\
             | ctr: task exec | ok | — |\n"
        );
    }
}
