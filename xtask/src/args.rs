//! A small command-line reader: flags and `--name VALUE` options, anything left over is an error.

use anyhow::{bail, Result};

pub struct Args {
    rest: Vec<String>,
}

impl Args {
    pub fn new(args: impl IntoIterator<Item = String>) -> Args {
        Args {
            rest: args.into_iter().collect(),
        }
    }

    /// Removes `--name` if present.
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|arg| arg != name);
        self.rest.len() != before
    }

    /// Removes `--name VALUE` or `--name=VALUE` and returns the value (the last one given).
    pub fn value(&mut self, name: &str) -> Result<Option<String>> {
        let mut found = None;
        let mut i = 0;
        while i < self.rest.len() {
            if self.rest[i] == name {
                if i + 1 >= self.rest.len() {
                    bail!("{name} needs a value");
                }
                found = Some(self.rest.remove(i + 1));
                self.rest.remove(i);
            } else if let Some(value) = self.rest[i]
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
            {
                found = Some(value.to_string());
                self.rest.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(found)
    }

    /// Like [`Args::value`], parsed; `expected` says what a good value looks like.
    pub fn parsed<T: std::str::FromStr>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>> {
        match self.value(name)? {
            None => Ok(None),
            Some(text) => match text.parse() {
                Ok(value) => Ok(Some(value)),
                Err(_) => bail!("{name} {text}: expected {expected}"),
            },
        }
    }

    /// Removes and returns the first argument that is not an option (`alpine`, a directory).
    pub fn positional(&mut self) -> Option<String> {
        let at = self.rest.iter().position(|arg| !arg.starts_with('-'))?;
        Some(self.rest.remove(at))
    }

    /// Fails on anything not taken yet.
    pub fn finish(self) -> Result<()> {
        match self.rest.first() {
            Some(arg) => bail!("unexpected argument {arg:?} (see cargo xtask help)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::new(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_and_values_are_taken() {
        let mut a = args(&["--keep", "--cgroup", "v1", "--filter=cap", "--timeout", "9"]);
        assert!(a.flag("--keep"));
        assert!(!a.flag("--vm"));
        assert_eq!(a.value("--cgroup").unwrap().as_deref(), Some("v1"));
        assert_eq!(a.value("--filter").unwrap().as_deref(), Some("cap"));
        assert_eq!(a.value("--kernel").unwrap(), None);
        assert_eq!(a.value("--timeout").unwrap().as_deref(), Some("9"));
        a.finish().unwrap();
    }

    #[test]
    fn values_are_parsed() {
        let mut a = args(&["--cpus", "2", "--timeout", "soon"]);
        assert_eq!(a.parsed::<u32>("--cpus", "a number").unwrap(), Some(2));
        let error = a
            .parsed::<u64>("--timeout", "seconds")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "--timeout soon: expected seconds");
    }

    #[test]
    fn positionals_are_taken_in_order_around_options() {
        let mut a = args(&["alpine", "--keep", "/tmp/a"]);
        assert_eq!(a.positional().as_deref(), Some("alpine"));
        assert_eq!(a.positional().as_deref(), Some("/tmp/a"));
        assert_eq!(a.positional(), None);
        assert!(a.flag("--keep"));
        a.finish().unwrap();
    }

    #[test]
    fn leftovers_and_missing_values_are_errors() {
        assert!(args(&["--filter"]).value("--filter").is_err());
        let error = args(&["--bogus"]).finish().unwrap_err().to_string();
        assert!(error.contains("--bogus"), "{error}");
    }
}
