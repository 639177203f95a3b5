//! nsinit-oci's log: where engines read a runtime's errors. Text (`time=... level=error
//! msg="..."`, as runc writes) or JSON, one `{"level","msg","time"}` object per line with
//! the time in RFC 3339 (podman reads a failure's log as one object, containerd's shim as a
//! stream). Without `--log`, lines go to stderr.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Where and how nsinit-oci logs.
pub struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
}

#[derive(Serialize)]
struct Line<'a> {
    level: &'a str,
    msg: &'a str,
    time: String,
}

impl Logger {
    /// Log to `path` (appended, created when missing) or stderr, as JSON or text.
    pub fn open(path: Option<&Path>, json: bool, debug: bool) -> Result<Logger, String> {
        let file = match path {
            Some(path) => Some(
                File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("open log file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Logger { file, json, debug })
    }

    /// Log to stderr as text.
    pub fn stderr() -> Logger {
        Logger {
            file: None,
            json: false,
            debug: false,
        }
    }

    pub fn error(&mut self, msg: &str) {
        self.write("error", msg);
        if self.file.is_some() {
            // Engines show the runtime's stderr too.
            eprintln!("nsinit-oci: {msg}");
        }
    }

    pub fn warn(&mut self, msg: &str) {
        self.write("warning", msg);
    }

    pub fn debug(&mut self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    fn write(&mut self, level: &str, msg: &str) {
        let time = rfc3339(SystemTime::now());
        let line = if self.json {
            let line = Line { level, msg, time };
            serde_json::to_string(&line).expect("a log line serializes")
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        match &mut self.file {
            Some(file) => {
                let _ = writeln!(file, "{line}");
            }
            None => eprintln!("{line}"),
        }
    }
}

/// A time as RFC 3339 in UTC with nanoseconds: `2026-12-04T05:22:30.123456789Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let leap_day = UNIX_EPOCH + Duration::new(951_782_400 + 3_723, 5);
        assert_eq!(rfc3339(leap_day), "2000-02-29T01:02:03.000000005Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_796_362_950);
        assert_eq!(rfc3339(later), "2026-12-04T05:42:30.000000000Z");
    }

    proptest::proptest! {
        #[test]
        fn every_day_has_a_valid_date(days in 0i64..200_000) {
            let (year, month, day) = civil_from_days(days);
            proptest::prop_assert!((1970..2520).contains(&year));
            proptest::prop_assert!((1..=12).contains(&month) && (1..=31).contains(&day));
        }
    }
}
