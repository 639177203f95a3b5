//! `pause` and `resume`: freeze and thaw every process of the container through its cgroup
//! (the v1 freezer's `freezer.state`, v2's `cgroup.freeze`).

use super::container::Status;
use super::{Context, OciError};

pub fn run(ctx: &mut Context, id: &str, freeze: bool) -> Result<i32, OciError> {
    let _locked = ctx.root.lock(id)?;
    let record = ctx.root.record(id)?;
    let status = ctx.root.status(&record);
    let (wanted, action) = match freeze {
        true => (Status::Running, "pause"),
        false => (Status::Paused, "resume"),
    };
    if status == Status::Stopped {
        return Err(OciError::NotRunning {
            id: id.to_string(),
            action,
            status,
        });
    }
    if status != wanted {
        return Err(OciError::State {
            id: id.to_string(),
            status,
            wanted: if freeze { "running" } else { "paused" },
        });
    }
    let group = record
        .cgroup()
        .ok_or_else(|| OciError::Invalid(format!("{action} {id}: the container has no cgroup")))?;
    group.set_frozen(freeze)?;
    Ok(0)
}
