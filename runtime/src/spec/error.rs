//! Why a config file was refused: the file, the field path and what is wrong, one line.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::plan::Namespace;

/// Why a `container.json` was refused: `<path>: <field>: <what is wrong>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    path: PathBuf,
    field: String,
    kind: ErrorKind,
}

impl ConfigError {
    pub(crate) fn new(path: &Path, field: String, kind: ErrorKind) -> Self {
        ConfigError {
            path: path.to_path_buf(),
            field,
            kind,
        }
    }

    /// The file, as the caller named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The field path (`network.address`, `namespaces[3]`); empty for the file as a whole.
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// What is wrong with a field. Values appear as written, quoted with Rust's escapes, so a
/// message stays on one line whatever the file holds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("unknown field {name:?}{hint}")]
    UnknownField { name: String, hint: Hint },
    #[error("field {name:?} is given twice")]
    DuplicateField { name: String },
    #[error("missing field {name:?}")]
    MissingField { name: &'static str },
    #[error("must not be empty")]
    Empty,
    #[error("{value:?} contains a NUL byte")]
    Nul { value: String },
    #[error("{value:?} is {} bytes, more than the {max} allowed for {what}", .value.len())]
    TooLong {
        value: String,
        max: usize,
        what: &'static str,
    },
    #[error("{value:?} contains {character:?}: {rule}")]
    BadCharacter {
        value: String,
        character: char,
        rule: &'static str,
    },
    #[error("{value:?} has an empty label (a '.' at either end or next to another '.')")]
    EmptyLabel { value: String },
    #[error("{value:?} has a label that starts or ends with '-'")]
    HyphenLabel { value: String },
    #[error("{value:?} has no '=': write NAME=VALUE")]
    NoEquals { value: String },
    #[error("{value:?} has an empty name before '='")]
    EmptyName { value: String },
    #[error("{name:?} is already set by {first}")]
    DuplicateVariable { name: String, first: String },
    #[error("unknown namespace {name:?}{hint}")]
    UnknownNamespace { name: String, hint: Hint },
    #[error("unknown capability {name:?}{hint}")]
    UnknownCapability { name: String, hint: Hint },
    #[error("{name:?}: write {bare:?} without the CAP_ prefix")]
    CapPrefix { name: String, bare: &'static str },
    #[error("{name:?} is listed twice (also at {first})")]
    ListedTwice { name: String, first: String },
    #[error("set, but namespaces does not list {}", .namespace.json_name())]
    NeedsNamespace { namespace: Namespace },
    #[error("{value:?} is not an IPv4 address with a prefix")]
    NotCidr { value: String },
    #[error("{value:?} has no prefix length: write it as \"{value}/N\", N from 0 to 32")]
    NoPrefix { value: String },
    #[error("{value:?} has prefix length {prefix}, more than the 32 bits of an IPv4 address")]
    PrefixTooLong { value: String, prefix: u64 },
    #[error("{value:?} is the {role} address of {network}, not a host's")]
    NotHostAddress {
        value: String,
        role: &'static str,
        network: String,
    },
    #[error("{value:?} is not an IPv4 address")]
    NotIpv4 { value: String },
    #[error("{value:?} is outside network {network} of network.address")]
    GatewayOutside { value: String, network: String },
    #[error("{value:?} is the container's own address (network.address)")]
    GatewayIsAddress { value: String },
    #[error("{value:?} is not a valid interface name")]
    DotInterfaceName { value: String },
    #[error("{value} is outside the range {} to {}", .range.start(), .range.end())]
    OutOfRange {
        value: String,
        range: RangeInclusive<u64>,
    },
    #[error("{value} is not a positive integer")]
    NotPositive { value: String },
    #[error("{value} is below {min} bytes, too little for any container to start")]
    TooLittleMemory { value: u64, min: u64 },
    #[error("{value} is neither -1 (unlimited) nor a positive integer")]
    BadSwap { value: String },
    #[error(
        "{swap} is less than cgroups.memory ({memory}), and memory_swap counts memory plus swap"
    )]
    SwapBelowMemory { swap: i64, memory: u64 },
    #[error(
        "{value:?} is an absolute path: write it relative to the cgroup root, like \"docker\""
    )]
    AbsolutePath { value: String },
    #[error(
        "{value:?} has a {component:?} component, but cgroup paths must stay inside the hierarchy"
    )]
    DotComponent {
        value: String,
        component: &'static str,
    },
    #[error("{value:?} has an empty component")]
    EmptyComponent { value: String },
    #[error("{value:?} is more than one directory: write the rest in cgroups.parent")]
    NotOneComponent { value: String },
}

/// The help after an unknown name: a close match, the valid names, or where to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hint {
    DidYouMean(&'static str),
    OneOf(&'static [&'static str]),
    See(&'static str),
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::DidYouMean(name) => write!(f, ", did you mean {name:?}?"),
            Hint::OneOf(names) => {
                write!(f, " (expected one of ")?;
                for (i, name) in names.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{name:?}")?;
                }
                write!(f, ")")
            }
            Hint::See(text) => write!(f, " ({text})"),
        }
    }
}
