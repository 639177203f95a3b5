//! The JSON tree config files are read into: objects keep their keys in file order,
//! duplicates included, so that every check can name the field path it looked at
//! (`network.address`, `namespaces[3]`), and unknown keys get a did-you-mean hint.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{ErrorKind, Hint};

/// A field that failed a check, before the file's path is attached.
pub(crate) struct Invalid {
    pub field: String,
    pub kind: ErrorKind,
}

pub(crate) type Checked<T> = Result<T, Invalid>;

pub(crate) fn invalid<T>(field: &str, kind: ErrorKind) -> Checked<T> {
    Err(Invalid {
        field: field.to_string(),
        kind,
    })
}

pub(crate) fn syntax(error: &serde_json::Error) -> Invalid {
    let (line, column) = (error.line(), error.column());
    let text = error.to_string();
    let suffix = format!(" at line {line} column {column}");
    Invalid {
        field: String::new(),
        kind: ErrorKind::Json {
            line,
            column,
            message: text.strip_suffix(&suffix).unwrap_or(&text).to_string(),
        },
    }
}

/// A JSON value as written: objects keep their keys in file order, duplicates included,
/// which `serde_json::Value` would sort and merge.
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// What the value is, for "expected ..., found ..." messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => format!("{b}"),
            Json::Number(n) => format!("the number {n}"),
            Json::String(s) => format!("the string {s:?}"),
            Json::Array(_) => "an array".into(),
            Json::Object(_) => "an object".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

/// `parent.name`, or `name` at the top level.
pub(crate) fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[index]`.
pub(crate) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

pub(crate) fn wrong_type<T>(field: &str, expected: &'static str, found: &Json) -> Checked<T> {
    invalid(
        field,
        ErrorKind::WrongType {
            expected,
            found: found.describe(),
        },
    )
}

/// An object whose keys are all known and each given once.
pub(crate) struct Object<'a> {
    field: String,
    entries: &'a [(String, Json)],
}

impl<'a> Object<'a> {
    pub(crate) fn read(
        field: &str,
        value: &'a Json,
        known: &'static [&'static str],
    ) -> Checked<Self> {
        let Json::Object(entries) = value else {
            return wrong_type(field, "an object", value);
        };
        for (i, (name, _)) in entries.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                let hint = closest(name, known.iter().map(|&k| (k.to_string(), k)))
                    .map_or(Hint::OneOf(known), Hint::DidYouMean);
                let name = name.clone();
                return invalid(field, ErrorKind::UnknownField { name, hint });
            }
            if entries[..i].iter().any(|(earlier, _)| earlier == name) {
                let name = name.clone();
                return invalid(field, ErrorKind::DuplicateField { name });
            }
        }
        Ok(Object {
            field: field.to_string(),
            entries,
        })
    }

    /// Read the field `name` with `read` when present.
    pub(crate) fn optional<T>(
        &self,
        name: &str,
        read: impl FnOnce(&str, &Json) -> Checked<T>,
    ) -> Checked<Option<T>> {
        self.entries
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| read(&child(&self.field, name), value))
            .transpose()
    }

    /// Read the field `name` with `read`; its absence is an error.
    pub(crate) fn required<T>(
        &self,
        name: &'static str,
        read: impl FnOnce(&str, &Json) -> Checked<T>,
    ) -> Checked<T> {
        match self.optional(name, read)? {
            Some(value) => Ok(value),
            None => invalid(&self.field, ErrorKind::MissingField { name }),
        }
    }
}

pub(crate) fn string<'a>(field: &str, value: &'a Json) -> Checked<&'a str> {
    match value {
        Json::String(s) => Ok(s),
        other => wrong_type(field, "a string", other),
    }
}

pub(crate) fn array<'a>(field: &str, value: &'a Json) -> Checked<&'a [Json]> {
    match value {
        Json::Array(items) => Ok(items),
        other => wrong_type(field, "an array", other),
    }
}

/// An integer of any sign and size JSON may hold; fractions and exponents are not integers.
pub(crate) fn integer(field: &str, value: &Json, expected: &'static str) -> Checked<i128> {
    let whole = match value {
        Json::Number(n) => n
            .as_u64()
            .map(i128::from)
            .or_else(|| n.as_i64().map(i128::from)),
        _ => None,
    };
    match whole {
        Some(n) => Ok(n),
        None => wrong_type(field, expected, value),
    }
}

/// The suggestion whose spelling is closest to `input`, ignoring ASCII case, if it is close
/// enough to be the likely intent: at most one edit per three characters (at least one).
pub(crate) fn closest(
    input: &str,
    spellings: impl IntoIterator<Item = (String, &'static str)>,
) -> Option<&'static str> {
    // Long input is not a typo of a short name, and distance is quadratic.
    const LONGEST: usize = 64;
    if input.len() > LONGEST {
        return None;
    }
    let input = input.to_ascii_lowercase();
    let budget = (input.chars().count() / 3).max(1);
    spellings
        .into_iter()
        .map(|(spelling, suggestion)| {
            (
                edit_distance(&input, &spelling.to_ascii_lowercase()),
                suggestion,
            )
        })
        .filter(|&(distance, _)| distance <= budget)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, suggestion)| suggestion)
}

/// Levenshtein distance in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
