//! `state`: the container's state JSON, as runtime-spec defines it.

use super::container::Status;
use super::{Context, OciError};

pub fn run(ctx: &mut Context, id: &str) -> Result<i32, OciError> {
    let json = match ctx.root.load(id)? {
        Some(record) => record.state_json(ctx.root.status(&record)),
        // The directory is there, the record not yet: create is under way.
        None => serde_json::json!({
            "ociVersion": super::container::OCI_VERSION,
            "id": id,
            "status": Status::Creating,
            "pid": 0,
            "bundle": "",
        })
        .to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(&json).expect("state is JSON");
    println!(
        "{}",
        serde_json::to_string_pretty(&value).expect("state is JSON")
    );
    Ok(0)
}
