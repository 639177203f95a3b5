//! `update`: change a live container's cgroup limits: from a runtime-spec
//! `linux.resources` JSON (`--resources FILE`, `-` for stdin), and runc's flags.

use std::io::Read;
use std::path::Path;

use super::container::Status;
use super::{Context, OciError};
use crate::cgroups::Limits;

/// runc's `update` flags for what the engine supports.
#[derive(Debug, Default)]
pub struct Flags {
    pub memory: Option<u64>,
    pub memory_reservation: Option<u64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

pub fn run(
    ctx: &mut Context,
    id: &str,
    resources: Option<&Path>,
    flags: &Flags,
) -> Result<i32, OciError> {
    let _locked = ctx.root.lock(id)?;
    let record = ctx.root.record(id)?;
    let status = ctx.root.status(&record);
    if status == Status::Stopped {
        return Err(OciError::NotRunning {
            id: id.to_string(),
            action: "update",
            status,
        });
    }
    let mut limits = match resources {
        Some(path) => {
            let mut text = String::new();
            if path == Path::new("-") {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| OciError::io("read resources from stdin".into(), e))?;
            } else {
                text = std::fs::read_to_string(path)
                    .map_err(|e| OciError::io(format!("read {}", path.display()), e))?;
            }
            let resources = crate::spec::oci::parse_resources(path, &text)?;
            if !resources.devices.is_empty() {
                return Err(OciError::Invalid(
                    "update of device rules (devices in --resources): set them at create".into(),
                ));
            }
            resources.limits
        }
        None => Limits::default(),
    };
    fn overlay<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
        if value.is_some() {
            slot.clone_from(value);
        }
    }
    overlay(&mut limits.memory, &flags.memory);
    overlay(&mut limits.memory_reservation, &flags.memory_reservation);
    overlay(&mut limits.memory_swap, &flags.memory_swap);
    overlay(&mut limits.cpu_shares, &flags.cpu_shares);
    overlay(&mut limits.cpu_quota, &flags.cpu_quota);
    overlay(&mut limits.cpu_period, &flags.cpu_period);
    overlay(&mut limits.cpuset_cpus, &flags.cpuset_cpus);
    overlay(&mut limits.cpuset_mems, &flags.cpuset_mems);
    overlay(&mut limits.pids, &flags.pids_limit);
    overlay(&mut limits.blkio_weight, &flags.blkio_weight);
    // A swap limit is written against the memory limit: keep the recorded one when only
    // swap changes.
    if limits.memory_swap.is_some() && limits.memory.is_none() {
        limits.memory = record.plan.cgroup.as_ref().and_then(|c| c.limits.memory);
    }
    let group = record
        .cgroup()
        .ok_or_else(|| OciError::Invalid(format!("update {id}: the container has no cgroup")))?;
    group.update(&limits)?;
    Ok(0)
}
