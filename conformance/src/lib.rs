//! What the probe and the driver agree on: the JSON shapes the probe prints, and the names of
//! capabilities, signals and namespaces both sides use.

pub mod facts;
pub mod names;
pub mod oci;
pub mod protect;
