//! A container's cgroup limits turned into cgroupfs writes: pure, no I/O.

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

/// What a container's group is limited to; `None` leaves the kernel's default (no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Bytes of memory (v1 `memory.limit_in_bytes` and the soft limit, v2 `memory.max`).
    pub memory: Option<u64>,
    /// Bytes of memory plus swap, at least `memory`; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    /// The v1 relative CPU weight, 2 to 262144 (v2: converted to `cpu.weight`).
    pub cpu_shares: Option<u64>,
}

/// The controller a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Controller {
    Memory,
    Cpu,
}

impl Controller {
    pub(super) fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
        }
    }
}

/// One write of a limit: `value` into `file` of the group's `controller` directory, for the
/// `container.json` field `field` (named in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Write {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
    pub field: &'static str,
}

impl Limits {
    /// The controllers these limits need (to enable in v2 parents, or to find mounted on v1).
    pub(super) fn controllers(&self) -> Vec<Controller> {
        let mut needed = Vec::new();
        if self.memory.is_some() || self.memory_swap.is_some() {
            needed.push(Controller::Memory);
        }
        if self.cpu_shares.is_some() {
            needed.push(Controller::Cpu);
        }
        needed
    }

    /// The writes that set these limits, in the order the kernel needs (v1 accepts
    /// `memsw.limit_in_bytes` only once `limit_in_bytes` is at most it).
    pub(super) fn writes(&self, v2: bool) -> Result<Vec<Write>, CgroupError> {
        let mut writes = Vec::new();
        let mut push = |controller, file, value: String, field| {
            writes.push(Write {
                controller,
                file,
                value,
                field,
            })
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
            if v2 {
                push(
                    Controller::Memory,
                    "memory.max",
                    memory.to_string(),
                    "memory",
                );
            } else {
                push(
                    Controller::Memory,
                    "memory.limit_in_bytes",
                    memory.to_string(),
                    "memory",
                );
                push(
                    Controller::Memory,
                    "memory.soft_limit_in_bytes",
                    memory.to_string(),
                    "memory",
                );
            }
        }
        if let Some(swap) = self.memory_swap {
            let invalid = |reason: &str| CgroupError::InvalidLimit {
                field: "memory_swap",
                value: swap.to_string(),
                reason: reason.into(),
            };
            let memory = self
                .memory
                .ok_or_else(|| invalid("needs cgroups.memory: it limits memory plus swap"))?;
            let value = match (swap, v2) {
                (-1, true) => "max".to_string(),
                (-1, false) => "-1".to_string(),
                _ if swap < 0 || (swap as u64) < memory => {
                    return Err(invalid(
                        "is below cgroups.memory: it limits memory plus swap",
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
        Ok(writes)
    }
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

    fn files(limits: Limits, v2: bool) -> Vec<(&'static str, String)> {
        let writes = limits.writes(v2).unwrap();
        writes.into_iter().map(|w| (w.file, w.value)).collect()
    }

    fn s(file: &'static str, value: &str) -> (&'static str, String) {
        (file, value.to_string())
    }

    #[test]
    fn seed_memory_on_v1_sets_hard_and_soft_limit() {
        let limits = Limits {
            memory: Some(524_800),
            ..Limits::default()
        };
        assert_eq!(
            files(limits, false),
            [
                s("memory.limit_in_bytes", "524800"),
                s("memory.soft_limit_in_bytes", "524800")
            ]
        );
        assert_eq!(files(limits, true), [s("memory.max", "524800")]);
    }

    #[test]
    fn no_limits_no_writes_no_controllers() {
        assert!(files(Limits::default(), false).is_empty());
        assert!(files(Limits::default(), true).is_empty());
        assert!(Limits::default().controllers().is_empty());
    }

    #[test]
    fn swap_is_memory_plus_swap_on_v1_and_swap_alone_on_v2() {
        let limits = Limits {
            memory: Some(1 << 20),
            memory_swap: Some(3 << 20),
            cpu_shares: None,
        };
        assert_eq!(
            files(limits, false)[2..],
            [s("memory.memsw.limit_in_bytes", "3145728")]
        );
        assert_eq!(files(limits, true)[1..], [s("memory.swap.max", "2097152")]);
        let unlimited = Limits {
            memory_swap: Some(-1),
            ..limits
        };
        assert_eq!(
            files(unlimited, false)[2..],
            [s("memory.memsw.limit_in_bytes", "-1")]
        );
        assert_eq!(files(unlimited, true)[1..], [s("memory.swap.max", "max")]);
    }

    #[test]
    fn cpu_shares_become_cpu_weight_on_v2() {
        let limits = Limits {
            cpu_shares: Some(512),
            ..Limits::default()
        };
        assert_eq!(files(limits, false), [s("cpu.shares", "512")]);
        assert_eq!(files(limits, true), [s("cpu.weight", "20")]);
        assert_eq!(limits.controllers(), [Controller::Cpu]);
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
        insta::assert_snapshot!(error, @"cgroups.memory 8192: is below 65536 bytes, too little for any container to start");
    }

    #[test]
    fn swap_without_memory_or_below_it_is_refused() {
        let alone = Limits {
            memory_swap: Some(1 << 20),
            ..Limits::default()
        };
        let error = alone.writes(true).unwrap_err().to_string();
        insta::assert_snapshot!(error, @"cgroups.memory_swap 1048576: needs cgroups.memory: it limits memory plus swap");
        let below = Limits {
            memory: Some(2 << 20),
            ..alone
        };
        let error = below.writes(false).unwrap_err().to_string();
        insta::assert_snapshot!(error, @"cgroups.memory_swap 1048576: is below cgroups.memory: it limits memory plus swap");
    }
}
