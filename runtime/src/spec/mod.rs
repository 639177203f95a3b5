//! The front-ends: each config dialect is read, checked and lowered to a
//! [`Plan`](crate::plan::Plan) here, purely. Nothing below this module sees JSON.

pub mod container_json;
pub mod error;
mod json;

pub use error::{ConfigError, ErrorKind, Hint};
