//! The front-ends: each config dialect is read, checked and lowered to a
//! [`Plan`](crate::plan::Plan) here, purely: `container_json` (the seed's dialect) and `oci`
//! (a bundle's `config.json`). Nothing below this module sees JSON.

pub mod container_json;
pub mod error;
mod json;
pub mod oci;

pub use error::{ConfigError, ErrorKind, Hint};
