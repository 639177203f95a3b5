//! A container's cgroup limits turned into cgroupfs writes: pure, no I/O.

use std::collections::BTreeMap;

use super::CgroupError;

/// Below this memory limit not even the `execve` of a small static binary fits, so nsinit
/// refuses it as one the container cannot start under (measured on this host: `sh` exec'ing
/// static busybox `true` is OOM-killed at 128 KiB; the seed's 524800 bytes runs `hostname`).
pub const MIN_MEMORY: u64 = 64 * 1024;

/// cgroup v1 `cpu.shares` bounds (the kernel clamps to them).
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// cgroup v2 `cpu.weight` maximum.
const MAX_WEIGHT: u64 = 10_000;

/// What a container's group is limited to; `None` (or empty) leaves the kernel's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Bytes of memory (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    pub memory: Option<u64>,
    /// Bytes of memory the group is guaranteed under contention (v1
    /// `memory.soft_limit_in_bytes`, v2 `memory.low`).
    pub memory_reservation: Option<u64>,
    /// Bytes of memory plus swap, at least `memory`; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    /// The v1 relative CPU weight, 2 to 262144 (v2: converted to `cpu.weight`).
    pub cpu_shares: Option<u64>,
    /// Microseconds of CPU time per `cpu_period`; -1 for no limit.
    pub cpu_quota: Option<i64>,
    /// The CFS period in microseconds (100000 when only a quota is given).
    pub cpu_period: Option<u64>,
    /// The CPUs the group may run on (`0-3,6`).
    pub cpuset_cpus: Option<String>,
    /// The memory nodes the group may use (`0`).
    pub cpuset_mems: Option<String>,
    /// The most processes (tasks) the group may hold; 0 or less: no limit.
    pub pids: Option<i64>,
    /// The relative block I/O weight, 10 to 1000 (v1 `blkio.weight`, v2 `io.weight`).
    pub blkio_weight: Option<u16>,
    /// Huge page limits: page size as the kernel names it (`2MB`, `1GB`) and bytes.
    pub hugepages: Vec<(String, u64)>,
    /// cgroup v2 files written as given (`"memory.high": "1G"`); v2 only.
    pub unified: BTreeMap<String, String>,
}

/// The controller a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Controller {
    Memory,
    Cpu,
    Cpuset,
    Pids,
    Blkio,
    Hugetlb,
}

impl Controller {
    /// The controller's name in `cgroup.controllers` (v2) and mountinfo (v1).
    pub(super) fn name(self, v2: bool) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Pids => "pids",
            Controller::Blkio if v2 => "io",
            Controller::Blkio => "blkio",
            Controller::Hugetlb => "hugetlb",
        }
    }

    /// The controller of a v2 interface file (`memory.high` → memory), if it has one.
    fn of_v2_file(file: &str) -> Option<Controller> {
        let prefix = file.split('.').next()?;
        [
            Controller::Memory,
            Controller::Cpu,
            Controller::Cpuset,
            Controller::Pids,
            Controller::Blkio,
            Controller::Hugetlb,
        ]
        .into_iter()
        .find(|c| c.name(true) == prefix)
    }
}

/// One write of a limit: `value` into `file` of the group's `controller` directory (the
/// group's own directory when `None`), for the limit `field` (named in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Write {
    pub controller: Option<Controller>,
    pub file: String,
    pub value: String,
    pub field: &'static str,
}

impl Limits {
    /// The controllers these limits need (to enable in v2 parents, or to find mounted on v1).
    pub(super) fn controllers(&self, v2: bool) -> Vec<Controller> {
        let mut needed: Vec<Controller> = self
            .writes(v2)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|w| w.controller)
            .collect();
        needed.sort();
        needed.dedup();
        needed
    }

    /// The writes that set these limits, in the order the kernel needs (v1 accepts
    /// `memsw.limit_in_bytes` only once `limit_in_bytes` is at most it; a CFS period before
    /// its quota; a cpuset's cpus and mems before anything joins it).
    pub(super) fn writes(&self, v2: bool) -> Result<Vec<Write>, CgroupError> {
        let mut writes = Vec::new();
        let mut push = |controller, file: &str, value: String, field| {
            writes.push(Write {
                controller: Some(controller),
                file: file.to_string(),
                value,
                field,
            });
        };
        if let Some(memory) = self.memory {
            if memory < MIN_MEMORY {
                return Err(CgroupError::InvalidLimit {
                    field: "memory",
                    value: memory.to_string(),
                    reason: format!(
                        "is below {MIN_MEMORY} bytes, too little for any container to start"
                    ),
                });
            }
            let file = if v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            push(Controller::Memory, file, memory.to_string(), "memory");
        }
        if let Some(reservation) = self.memory_reservation {
            let file = if v2 {
                "memory.low"
            } else {
                "memory.soft_limit_in_bytes"
            };
            push(
                Controller::Memory,
                file,
                reservation.to_string(),
                "memory_reservation",
            );
        }
        if let Some(swap) = self.memory_swap {
            let invalid = |reason: &str| CgroupError::InvalidLimit {
                field: "memory_swap",
                value: swap.to_string(),
                reason: reason.into(),
            };
            let memory = self
                .memory
                .ok_or_else(|| invalid("needs a memory limit: it limits memory plus swap"))?;
            let value = match (swap, v2) {
                (-1, true) => "max".to_string(),
                (-1, false) => "-1".to_string(),
                _ if swap < 0 || (swap as u64) < memory => {
                    return Err(invalid(
                        "is below the memory limit: it limits memory plus swap",
                    ))
                }
                // v2 limits swap alone.
                (_, true) => (swap as u64 - memory).to_string(),
                (_, false) => swap.to_string(),
            };
            let file = if v2 {
                "memory.swap.max"
            } else {
                "memory.memsw.limit_in_bytes"
            };
            push(Controller::Memory, file, value, "memory_swap");
        }
        if let Some(shares) = self.cpu_shares {
            if v2 {
                push(
                    Controller::Cpu,
                    "cpu.weight",
                    cpu_weight(shares).to_string(),
                    "cpu_shares",
                );
            } else {
                push(
                    Controller::Cpu,
                    "cpu.shares",
                    shares.to_string(),
                    "cpu_shares",
                );
            }
        }
        match (self.cpu_quota, self.cpu_period, v2) {
            (None, None, _) => {}
            (quota, period, true) => {
                let quota = match quota {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".to_string(),
                };
                let period = period.unwrap_or(DEFAULT_CFS_PERIOD);
                push(
                    Controller::Cpu,
                    "cpu.max",
                    format!("{quota} {period}"),
                    "cpu_quota",
                );
            }
            (quota, period, false) => {
                if let Some(period) = period {
                    push(
                        Controller::Cpu,
                        "cpu.cfs_period_us",
                        period.to_string(),
                        "cpu_period",
                    );
                }
                if let Some(quota) = quota {
                    let quota = if quota > 0 { quota } else { -1 };
                    push(
                        Controller::Cpu,
                        "cpu.cfs_quota_us",
                        quota.to_string(),
                        "cpu_quota",
                    );
                }
            }
        }
        if let Some(cpus) = &self.cpuset_cpus {
            push(
                Controller::Cpuset,
                "cpuset.cpus",
                cpus.clone(),
                "cpuset_cpus",
            );
        }
        if let Some(mems) = &self.cpuset_mems {
            push(
                Controller::Cpuset,
                "cpuset.mems",
                mems.clone(),
                "cpuset_mems",
            );
        }
        if let Some(pids) = self.pids {
            let value = if pids > 0 {
                pids.to_string()
            } else {
                "max".to_string()
            };
            push(Controller::Pids, "pids.max", value, "pids");
        }
        if let Some(weight) = self.blkio_weight {
            if v2 {
                push(
                    Controller::Blkio,
                    "io.weight",
                    format!("default {}", io_weight(weight)),
                    "blkio_weight",
                );
            } else {
                push(
                    Controller::Blkio,
                    "blkio.weight",
                    weight.to_string(),
                    "blkio_weight",
                );
            }
        }
        for (size, bytes) in &self.hugepages {
            let file = if v2 {
                format!("hugetlb.{size}.max")
            } else {
                format!("hugetlb.{size}.limit_in_bytes")
            };
            push(Controller::Hugetlb, &file, bytes.to_string(), "hugepages");
        }
        for (file, value) in &self.unified {
            if !v2 {
                return Err(CgroupError::InvalidLimit {
                    field: "unified",
                    value: file.clone(),
                    reason: "cgroup v2 files cannot be written on a cgroup v1 host".into(),
                });
            }
            if file.contains('/') || file.starts_with("cgroup.") || file.is_empty() {
                return Err(CgroupError::InvalidLimit {
                    field: "unified",
                    value: file.clone(),
                    reason: "is not a controller's interface file of the group".into(),
                });
            }
            writes.push(Write {
                controller: Controller::of_v2_file(file),
                file: file.clone(),
                value: value.clone(),
                field: "unified",
            });
        }
        Ok(writes)
    }
}

/// The CFS period the kernel starts with, in microseconds.
const DEFAULT_CFS_PERIOD: u64 = 100_000;

/// v1 `blkio.weight` (10..1000) as v2 `io.weight` (1..10000), the map runc and crun use.
fn io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// v1 `cpu.shares` (2..262144, default 1024) as v2 `cpu.weight` (1..10000, default 100),
/// the linear map runc and crun use.
pub(super) fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + (shares - MIN_SHARES) * (MAX_WEIGHT - 1) / (MAX_SHARES - MIN_SHARES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn files(limits: &Limits, v2: bool) -> Vec<(String, String)> {
        let writes = limits.writes(v2).unwrap();
        writes.into_iter().map(|w| (w.file, w.value)).collect()
    }

    fn s(file: &str, value: &str) -> (String, String) {
        (file.to_string(), value.to_string())
    }

    #[test]
    fn seed_memory_sets_hard_and_soft_limit() {
        let limits = Limits {
            memory: Some(524_800),
            memory_reservation: Some(524_800),
            ..Limits::default()
        };
        assert_eq!(
            files(&limits, false),
            [
                s("memory.limit_in_bytes", "524800"),
                s("memory.soft_limit_in_bytes", "524800")
            ]
        );
        assert_eq!(
            files(&limits, true),
            [s("memory.max", "524800"), s("memory.low", "524800")]
        );
    }

    #[test]
    fn no_limits_no_writes_no_controllers() {
        assert!(files(&Limits::default(), false).is_empty());
        assert!(files(&Limits::default(), true).is_empty());
        assert!(Limits::default().controllers(false).is_empty());
    }

    #[test]
    fn swap_is_memory_plus_swap_on_v1_and_swap_alone_on_v2() {
        let limits = Limits {
            memory: Some(1 << 20),
            memory_swap: Some(3 << 20),
            ..Limits::default()
        };
        assert_eq!(
            files(&limits, false)[1..],
            [s("memory.memsw.limit_in_bytes", "3145728")]
        );
        assert_eq!(files(&limits, true)[1..], [s("memory.swap.max", "2097152")]);
        let unlimited = Limits {
            memory_swap: Some(-1),
            ..limits
        };
        assert_eq!(
            files(&unlimited, false)[1..],
            [s("memory.memsw.limit_in_bytes", "-1")]
        );
        assert_eq!(files(&unlimited, true)[1..], [s("memory.swap.max", "max")]);
    }

    #[test]
    fn cpu_shares_become_cpu_weight_on_v2() {
        let limits = Limits {
            cpu_shares: Some(512),
            ..Limits::default()
        };
        assert_eq!(files(&limits, false), [s("cpu.shares", "512")]);
        assert_eq!(files(&limits, true), [s("cpu.weight", "20")]);
        assert_eq!(limits.controllers(true), [Controller::Cpu]);
    }

    #[rstest]
    #[case::minimum(2, 1)]
    #[case::below_minimum(0, 1)]
    #[case::default(1024, 39)]
    #[case::maximum(262_144, 10_000)]
    #[case::above_maximum(1 << 30, 10_000)]
    fn cpu_weight_conversion(#[case] shares: u64, #[case] weight: u64) {
        assert_eq!(cpu_weight(shares), weight);
    }

    #[test]
    fn a_memory_limit_too_low_to_start_names_the_field_and_value() {
        let limits = Limits {
            memory: Some(8192),
            ..Limits::default()
        };
        let error = limits.writes(false).unwrap_err().to_string();
        insta::assert_snapshot!(error, @"memory limit 8192: is below 65536 bytes, too little for any container to start");
    }

    #[test]
    fn swap_without_memory_or_below_it_is_refused() {
        let alone = Limits {
            memory_swap: Some(1 << 20),
            ..Limits::default()
        };
        let error = alone.writes(true).unwrap_err().to_string();
        insta::assert_snapshot!(error, @"memory_swap limit 1048576: needs a memory limit: it limits memory plus swap");
        let below = Limits {
            memory: Some(2 << 20),
            ..alone
        };
        let error = below.writes(false).unwrap_err().to_string();
        insta::assert_snapshot!(error, @"memory_swap limit 1048576: is below the memory limit: it limits memory plus swap");
    }

    #[test]
    fn cpu_quota_and_period_are_one_file_on_v2_and_period_first_on_v1() {
        let limits = Limits {
            cpu_quota: Some(50_000),
            cpu_period: Some(200_000),
            ..Limits::default()
        };
        assert_eq!(
            files(&limits, false),
            [
                s("cpu.cfs_period_us", "200000"),
                s("cpu.cfs_quota_us", "50000")
            ]
        );
        assert_eq!(files(&limits, true), [s("cpu.max", "50000 200000")]);
        let quota_only = Limits {
            cpu_quota: Some(-1),
            ..Limits::default()
        };
        assert_eq!(files(&quota_only, true), [s("cpu.max", "max 100000")]);
    }

    #[test]
    fn pids_blkio_hugepages_and_cpusets_go_to_their_controllers() {
        let limits = Limits {
            pids: Some(64),
            blkio_weight: Some(500),
            hugepages: vec![("2MB".into(), 4 << 20)],
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            ..Limits::default()
        };
        assert_eq!(
            files(&limits, false),
            [
                s("cpuset.cpus", "0"),
                s("cpuset.mems", "0"),
                s("pids.max", "64"),
                s("blkio.weight", "500"),
                s("hugetlb.2MB.limit_in_bytes", "4194304"),
            ]
        );
        assert_eq!(
            files(&limits, true)[3..],
            [
                s("io.weight", "default 4950"),
                s("hugetlb.2MB.max", "4194304")
            ]
        );
        assert_eq!(
            limits.controllers(true),
            [
                Controller::Cpuset,
                Controller::Pids,
                Controller::Blkio,
                Controller::Hugetlb
            ]
        );
        let unlimited = Limits {
            pids: Some(0),
            ..Limits::default()
        };
        assert_eq!(files(&unlimited, true), [s("pids.max", "max")]);
    }

    #[test]
    fn unified_files_are_written_on_v2_only_and_stay_in_the_group() {
        let limits = Limits {
            unified: BTreeMap::from([("memory.high".to_string(), "1G".to_string())]),
            ..Limits::default()
        };
        assert_eq!(files(&limits, true), [s("memory.high", "1G")]);
        assert_eq!(limits.controllers(true), [Controller::Memory]);
        let error = limits.writes(false).unwrap_err().to_string();
        insta::assert_snapshot!(error, @"unified limit memory.high: cgroup v2 files cannot be written on a cgroup v1 host");
        for bad in ["../x", "cgroup.procs", ""] {
            let limits = Limits {
                unified: BTreeMap::from([(bad.to_string(), "1".to_string())]),
                ..Limits::default()
            };
            assert!(limits.writes(true).is_err(), "{bad:?} accepted");
        }
    }
}
