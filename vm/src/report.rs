//! Reading the suite's lines off the serial console, and the verdict on one boot.

use std::fmt;

use crate::guest::GuestStatus;

/// One line of the driver's output, as far as the harness cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `ok NAME`
    Passed(&'a str),
    /// `FAILED NAME: expected X, saw Y`
    Failed(&'a str),
    /// The last line, `N passed, N failed`.
    Summary(Summary),
    Other,
}

/// The driver's tally.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, other: Summary) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// Classifies one console line (carriage returns and surrounding blanks ignored).
pub fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim();
    if let Some(name) = line.strip_prefix("ok ") {
        return Line::Passed(name.trim());
    }
    if let Some(rest) = line.strip_prefix("FAILED ") {
        return Line::Failed(rest.split_once(':').map_or(rest, |(name, _)| name).trim());
    }
    parse_summary(line).map_or(Line::Other, Line::Summary)
}

/// `N passed, N failed`, optionally followed by more (`, N skipped`).
fn parse_summary(line: &str) -> Option<Summary> {
    let (passed, rest) = line.split_once(" passed, ")?;
    let (failed, tail) = rest.split_once(" failed")?;
    if !(tail.is_empty() || tail.starts_with(',')) {
        return None;
    }
    Some(Summary {
        passed: passed.parse().ok()?,
        failed: failed.parse().ok()?,
    })
}

/// How one QEMU run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// QEMU exited with this code.
    Exited(i32),
    /// QEMU was killed by a signal (not by the harness).
    Signalled,
    /// The harness killed QEMU at its deadline.
    TimedOut,
}

/// The verdict on one boot: success needs both the guest's "passed" through `isa-debug-exit`
/// and a summary line with no failure; QEMU's exit 0 alone can be a guest panic.
pub fn verdict(ending: Ending, summary: Option<Summary>) -> Result<Summary, String> {
    let status = match ending {
        Ending::Exited(code) => GuestStatus::from_qemu_exit(code),
        Ending::Signalled => return Err("QEMU was killed by a signal".into()),
        Ending::TimedOut => return Err("timed out: QEMU killed".into()),
    };
    match (status, summary) {
        (Some(GuestStatus::Passed), Some(s)) if s.failed == 0 && s.passed > 0 => Ok(s),
        (Some(GuestStatus::Passed), Some(s)) if s.failed == 0 => {
            Err("the suite ran no check".into())
        }
        (Some(GuestStatus::Passed), Some(s)) => Err(format!("the suite exited 0 but reported {s}")),
        (Some(GuestStatus::Passed), None) => {
            Err("the suite exited 0 but printed no summary line".into())
        }
        (Some(GuestStatus::Failed), _) => Err("the suite failed".into()),
        (Some(GuestStatus::InitError), _) => Err("the guest init failed".into()),
        (None, _) => match ending {
            Ending::Exited(0) => Err(
                "the guest stopped without reporting a status (kernel panic or init died)".into(),
            ),
            Ending::Exited(code) => Err(format!("QEMU exited with {code} (not a guest status)")),
            _ => unreachable!("handled above"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        assert_eq!(parse_line("ok hostname\r"), Line::Passed("hostname"));
        assert_eq!(
            parse_line("FAILED env: expected [\"A=1\"], saw []"),
            Line::Failed("env")
        );
        assert_eq!(parse_line("FAILED odd"), Line::Failed("odd"));
        assert_eq!(
            parse_line("41 passed, 0 failed"),
            Line::Summary(Summary {
                passed: 41,
                failed: 0
            })
        );
        assert_eq!(
            parse_line("3 passed, 2 failed, 1 skipped"),
            Line::Summary(Summary {
                passed: 3,
                failed: 2
            })
        );
        assert_eq!(parse_line("[    1.2] random kernel line"), Line::Other);
        assert_eq!(parse_line("x passed, 0 failed"), Line::Other);
        assert_eq!(parse_line("1 passed, 0 failedness"), Line::Other);
        assert_eq!(parse_line("okay"), Line::Other);
    }

    #[test]
    fn success_needs_the_status_and_the_summary() {
        let summary = Summary {
            passed: 40,
            failed: 0,
        };
        let clean = Some(summary);
        assert_eq!(verdict(Ending::Exited(1), clean), Ok(summary));
        // A guest panic ends QEMU with 0, even after a clean summary.
        assert!(verdict(Ending::Exited(0), clean)
            .unwrap_err()
            .contains("without reporting"));
        assert!(verdict(Ending::Exited(1), None).is_err());
        assert!(verdict(
            Ending::Exited(1),
            Some(Summary {
                passed: 0,
                failed: 0
            })
        )
        .is_err());
        assert!(verdict(
            Ending::Exited(1),
            Some(Summary {
                passed: 3,
                failed: 1
            })
        )
        .is_err());
        assert_eq!(
            verdict(Ending::Exited(3), clean),
            Err("the suite failed".into())
        );
        assert_eq!(
            verdict(Ending::Exited(5), None),
            Err("the guest init failed".into())
        );
        assert!(verdict(Ending::TimedOut, clean).is_err());
        assert!(verdict(Ending::Exited(7), None)
            .unwrap_err()
            .contains("QEMU exited with 7"));
    }
}
