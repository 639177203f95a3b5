//! Reading runtime-spec JSON: objects whose unknown properties are set aside rather than
//! refused (runtime-spec's rule), `null` read as absent (as Go, which writes these files,
//! reads it), and the small value checks every section shares.

use std::cell::RefCell;

use super::super::error::{ErrorKind, Hint};
use super::super::json::{array, child, integer, invalid, item, string, wrong_type, Checked, Json};

/// The field paths of the unknown properties met while reading, in the order met.
#[derive(Default)]
pub(super) struct Ignored(RefCell<Vec<String>>);

impl Ignored {
    pub(super) fn into_inner(self) -> Vec<String> {
        self.0.into_inner()
    }

    pub(super) fn push(&self, field: String) {
        self.0.borrow_mut().push(field);
    }
}

/// An object read the runtime-spec way: every known property given at most once; unknown
/// properties noted in [`Ignored`] and otherwise left alone.
pub(super) struct Fields<'a> {
    field: String,
    entries: &'a [(String, Json)],
}

impl<'a> Fields<'a> {
    pub(super) fn read(
        field: &str,
        value: &'a Json,
        known: &[&str],
        ignored: &Ignored,
    ) -> Checked<Self> {
        let Json::Object(entries) = value else {
            return wrong_type(field, "an object", value);
        };
        for (i, (name, _)) in entries.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                ignored.push(child(field, name));
            } else if entries[..i].iter().any(|(earlier, _)| earlier == name) {
                let name = name.clone();
                return invalid(field, ErrorKind::DuplicateField { name });
            }
        }
        Ok(Fields {
            field: field.to_string(),
            entries,
        })
    }

    /// The path of this object's field `name`.
    pub(super) fn path(&self, name: &str) -> String {
        child(&self.field, name)
    }

    /// The value of `name`, unless absent or `null`.
    pub(super) fn get(&self, name: &str) -> Option<&'a Json> {
        self.entries
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
            .filter(|value| !matches!(value, Json::Null))
    }

    /// Read the field `name` with `read` when present and not `null`.
    pub(super) fn optional<T>(
        &self,
        name: &str,
        read: impl FnOnce(&str, &'a Json) -> Checked<T>,
    ) -> Checked<Option<T>> {
        self.get(name)
            .map(|value| read(&self.path(name), value))
            .transpose()
    }

    /// Read the field `name` with `read`; its absence (or `null`) is an error.
    pub(super) fn required<T>(
        &self,
        name: &'static str,
        read: impl FnOnce(&str, &'a Json) -> Checked<T>,
    ) -> Checked<T> {
        match self.optional(name, read)? {
            Some(value) => Ok(value),
            None => invalid(&self.field, ErrorKind::MissingField { name }),
        }
    }

    /// Refuse the field `name` unless it asks for nothing (see [`asks_nothing`]).
    pub(super) fn refuse(&self, name: &str, kind: impl FnOnce() -> ErrorKind) -> Checked<()> {
        match self.get(name) {
            Some(value) if !asks_nothing(value) => invalid(&self.path(name), kind()),
            _ => Ok(()),
        }
    }
}

/// Whether a value of a field nsinit cannot honour asks for nothing all the same: `false`,
/// `0`, `""`, `[]`, `{}`, or an object of such values. Go omits none of these when a struct
/// field is not a pointer, so engines send them for features they do not use.
pub(super) fn asks_nothing(value: &Json) -> bool {
    match value {
        Json::Null | Json::Bool(false) => true,
        Json::Number(n) => n.as_u64() == Some(0) || n.as_i64() == Some(0),
        Json::String(s) => s.is_empty(),
        Json::Array(items) => items.is_empty(),
        Json::Object(entries) => entries.iter().all(|(_, value)| asks_nothing(value)),
        Json::Bool(true) => false,
    }
}

pub(super) fn boolean(field: &str, value: &Json) -> Checked<bool> {
    match value {
        Json::Bool(b) => Ok(*b),
        other => wrong_type(field, "true or false", other),
    }
}

/// A string without NUL bytes (the kernel reads C strings).
pub(super) fn text(field: &str, value: &Json) -> Checked<String> {
    let s = string(field, value)?;
    if s.contains('\0') {
        return invalid(
            field,
            ErrorKind::Nul {
                value: s.to_string(),
            },
        );
    }
    Ok(s.to_string())
}

/// An array of [`text`] strings.
pub(super) fn texts(field: &str, value: &Json) -> Checked<Vec<String>> {
    array(field, value)?
        .iter()
        .enumerate()
        .map(|(i, entry)| text(&item(field, i), entry))
        .collect()
}

/// An integer that fits `T`, else "outside the range".
pub(super) fn unsigned<T>(field: &str, value: &Json, max: T) -> Checked<T>
where
    T: TryFrom<i128> + Into<u64> + Copy,
{
    let n = integer(field, value, "an integer")?;
    match T::try_from(n) {
        Ok(v) if v.into() <= max.into() => Ok(v),
        _ => invalid(
            field,
            ErrorKind::OutOfRange {
                value: n.to_string(),
                range: 0..=max.into(),
            },
        ),
    }
}

pub(super) fn uint32(field: &str, value: &Json) -> Checked<u32> {
    unsigned(field, value, u32::MAX)
}

pub(super) fn uint64(field: &str, value: &Json) -> Checked<u64> {
    unsigned(field, value, u64::MAX)
}

/// A signed integer from `min` to `max`.
pub(super) fn signed(field: &str, value: &Json, min: i64, max: i64) -> Checked<i64> {
    let n = integer(field, value, "an integer")?;
    match i64::try_from(n) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => invalid(
            field,
            ErrorKind::OutOfSignedRange {
                value: n.to_string(),
                min,
                max,
            },
        ),
    }
}

/// A whole number of seconds (or the like) above zero.
pub(super) fn integer_positive(field: &str, value: &Json) -> Checked<u32> {
    let n = integer(field, value, "a positive integer")?;
    match u32::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => invalid(
            field,
            ErrorKind::NotPositive {
                value: n.to_string(),
            },
        ),
    }
}

pub(super) fn int64(field: &str, value: &Json) -> Checked<i64> {
    signed(field, value, i64::MIN, i64::MAX)
}

/// An absolute path, lexically cleaned: `.` and empty components dropped, `..` taken back
/// (never above `/`).
pub(super) fn absolute(field: &str, value: &Json) -> Checked<String> {
    let path = text(field, value)?;
    if !path.starts_with('/') {
        return invalid(field, ErrorKind::NotAbsolute { value: path });
    }
    Ok(clean(&path))
}

/// `path` with `.`, empty and `..` components resolved lexically; `/` for nothing left.
pub(super) fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `KEY=VALUE` entries, as `execve` takes them. A name given twice keeps its first place and
/// its last value, as runc's environment does (Go's `os.Setenv` per entry).
pub(super) fn environment(field: &str, value: &Json) -> Checked<Vec<String>> {
    let mut entries: Vec<String> = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let entry = text(&here, entry)?;
        let Some((name, _)) = entry.split_once('=') else {
            return invalid(&here, ErrorKind::NoEquals { value: entry });
        };
        if name.is_empty() {
            return invalid(&here, ErrorKind::EmptyName { value: entry });
        }
        let prefix = format!("{name}=");
        match entries.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(earlier) => *earlier = entry,
            None => entries.push(entry),
        }
    }
    Ok(entries)
}

/// One of `names` (its index), else "unknown value" with a hint.
pub(super) fn one_of(field: &str, value: &Json, names: &'static [&'static str]) -> Checked<usize> {
    let s = string(field, value)?;
    match names.iter().position(|&name| name == s) {
        Some(index) => Ok(index),
        None => invalid(
            field,
            ErrorKind::UnknownValue {
                value: s.to_string(),
                hint: hint(s, names),
            },
        ),
    }
}

/// A did-you-mean for a near spelling, else the list of valid names.
pub(super) fn hint(input: &str, names: &'static [&'static str]) -> Hint {
    super::super::json::closest(input, names.iter().map(|&n| (n.to_string(), n)))
        .map_or(Hint::OneOf(names), Hint::DidYouMean)
}
