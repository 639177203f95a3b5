//! A check: a name and a verdict on one run, or on what a scenario recorded. A failed verdict
//! says what was expected and what was seen, which becomes the `FAILED name: expected X, saw
//! Y` line.

use std::any::Any;
use std::fmt::{Debug, Display};

use conformance::facts::Facts;
use serde::de::DeserializeOwned;

use crate::harness::{Outcome, Run};

/// What a failed check reports.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub expected: String,
    pub saw: String,
}

pub type Verdict = Result<(), Mismatch>;

pub fn mismatch(expected: impl Display, saw: impl Display) -> Mismatch {
    Mismatch {
        expected: expected.to_string(),
        saw: saw.to_string(),
    }
}

/// Equal, or a mismatch showing both sides as Rust debug text (quoted strings, lists).
pub fn expect_eq<T: PartialEq + Debug>(expected: T, saw: T) -> Verdict {
    if expected == saw {
        Ok(())
    } else {
        Err(mismatch(format!("{expected:?}"), format!("{saw:?}")))
    }
}

/// What a case gives its checks to look at.
pub enum Evidence {
    /// One `nsinit exec`.
    Run(Run),
    /// What a scenario recorded: `Result<T, String>` for the scenario's findings type `T`,
    /// or why it could not play out.
    Findings(Box<dyn Any>),
}

type OnRun = Box<dyn Fn(&Run) -> Verdict>;
type OnFindings = Box<dyn Fn(&dyn Any) -> Verdict>;

enum Verify {
    Run(OnRun),
    Findings(OnFindings),
}

pub struct Check {
    pub name: String,
    verify: Verify,
}

impl Check {
    pub fn new(name: impl Into<String>, verify: impl Fn(&Run) -> Verdict + 'static) -> Check {
        Check {
            name: name.into(),
            verify: Verify::Run(Box::new(verify)),
        }
    }

    /// A check on what a scenario with findings of type `T` recorded.
    pub fn on_findings<T: 'static>(
        name: impl Into<String>,
        verify: impl Fn(&T) -> Verdict + 'static,
    ) -> Check {
        Check {
            name: name.into(),
            verify: Verify::Findings(Box::new(move |found| {
                match found.downcast_ref::<Result<T, String>>() {
                    Some(Ok(findings)) => verify(findings),
                    Some(Err(why)) => Err(mismatch("the scenario to play out", why)),
                    None => Err(mismatch(
                        format!("findings of type {}", std::any::type_name::<T>()),
                        "another scenario's",
                    )),
                }
            })),
        }
    }

    /// This check on one nsinit run, made on the run `pick` takes from a scenario's findings.
    /// A check that is already on findings stays as it is.
    pub fn about<T: 'static>(self, pick: fn(&T) -> &Run) -> Check {
        match self.verify {
            Verify::Run(verify) => {
                Check::on_findings(self.name, move |found: &T| verify(pick(found)))
            }
            Verify::Findings(_) => self,
        }
    }

    /// A check on the facts `probe facts` printed.
    pub fn on_facts(
        name: impl Into<String>,
        verify: impl Fn(&Facts) -> Verdict + 'static,
    ) -> Check {
        Check::new(name, move |run| verify(&probe_output(run)?))
    }

    /// A check on the facts together with the run (its directory, its stderr).
    pub fn on_run_and_facts(
        name: impl Into<String>,
        verify: impl Fn(&Run, &Facts) -> Verdict + 'static,
    ) -> Check {
        Check::new(name, move |run| verify(run, &probe_output(run)?))
    }

    /// A check on the JSON object another probe subcommand printed.
    pub fn on_output<T: DeserializeOwned>(
        name: impl Into<String>,
        verify: impl Fn(&T) -> Verdict + 'static,
    ) -> Check {
        Check::new(name, move |run| verify(&probe_output(run)?))
    }

    /// nsinit exits with `code`.
    pub fn exit(name: impl Into<String>, code: i32) -> Check {
        Check::new(name, move |run| expect_exit(run, code))
    }

    /// nsinit exits with `code` and its stderr holds each of `expected`, where an entry may
    /// list alternatives separated by `|`.
    pub fn exit_saying(
        name: impl Into<String>,
        code: i32,
        expected: &'static [&'static str],
    ) -> Check {
        Check::new(name, move |run| {
            expect_exit(run, code)?;
            match expected
                .iter()
                .find(|e| !e.split('|').any(|alt| run.stderr.contains(alt)))
            {
                None => Ok(()),
                Some(missing) => Err(mismatch(
                    format!("stderr mentioning {missing:?}"),
                    run.summary(),
                )),
            }
        })
    }

    pub fn verify(&self, evidence: &Evidence) -> Verdict {
        match (&self.verify, evidence) {
            (Verify::Run(verify), Evidence::Run(run)) => verify(run),
            (Verify::Findings(verify), Evidence::Findings(found)) => verify(found.as_ref()),
            (Verify::Run(_), Evidence::Findings(_)) => {
                Err(mismatch("one nsinit run", "a scenario's findings"))
            }
            (Verify::Findings(_), Evidence::Run(run)) => {
                Err(mismatch("a scenario's findings", run.summary()))
            }
        }
    }
}

/// The command's stdout is exactly `expected`.
pub fn expect_stdout(run: &Run, expected: &str) -> Verdict {
    if run.stdout == expected {
        Ok(())
    } else {
        Err(mismatch(
            format!("stdout {expected:?}"),
            format!("stdout {:?}; {}", run.stdout, run.summary()),
        ))
    }
}

pub fn expect_exit(run: &Run, code: i32) -> Verdict {
    match run.outcome {
        Outcome::Exited(saw) if saw == code => Ok(()),
        _ => Err(mismatch(format!("exit status {code}"), run.summary())),
    }
}

/// The facts `probe facts` printed.
pub fn facts_of(run: &Run) -> Result<Facts, Mismatch> {
    probe_output(run)
}

/// The last line of stdout, read as the probe's JSON object.
fn probe_output<T: DeserializeOwned>(run: &Run) -> Result<T, Mismatch> {
    let last_line = run
        .stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty());
    let Some(line) = last_line else {
        return Err(mismatch("the probe's JSON on stdout", run.summary()));
    };
    serde_json::from_str(line).map_err(|e| {
        mismatch(
            "the probe's JSON on stdout",
            format!("{e} in {line:?}; {}", run.summary()),
        )
    })
}
