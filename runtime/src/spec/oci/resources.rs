//! `linux.resources`: the cgroup limits the plan has ([`Limits`]) and the device rules
//! ([`DeviceRule`]). A field the plan has no limit for is refused by its path unless it asks
//! for nothing (`0`, `false`, `{}`, ...), which Go-written configs often send.
//!
//! Zero is "not set" for the limits where runc reads it so (memory, shares, quota, period,
//! pids, blkio weight): runc writes nothing for them.

use std::collections::BTreeMap;

use super::super::error::ErrorKind;
use super::super::json::{array, child, invalid, item, string, wrong_type, Checked, Invalid, Json};
use super::read::{boolean, int64, signed, text, uint64, unsigned, Fields, Ignored};
use crate::cgroups::{default_rules, DevicePolicy, DeviceRule, Limits, MIN_MEMORY};

const RESOURCES_FIELDS: [&str; 9] = [
    "devices",
    "memory",
    "cpu",
    "pids",
    "blockIO",
    "hugepageLimits",
    "network",
    "rdma",
    "unified",
];
const MEMORY_FIELDS: [&str; 9] = [
    "limit",
    "reservation",
    "swap",
    "kernel",
    "kernelTCP",
    "swappiness",
    "disableOOMKiller",
    "useHierarchy",
    "checkBeforeUpdate",
];
const CPU_FIELDS: [&str; 9] = [
    "shares",
    "quota",
    "burst",
    "period",
    "realtimeRuntime",
    "realtimePeriod",
    "cpus",
    "mems",
    "idle",
];
const BLOCK_IO_FIELDS: [&str; 7] = [
    "weight",
    "leafWeight",
    "weightDevice",
    "throttleReadBpsDevice",
    "throttleWriteBpsDevice",
    "throttleReadIOPSDevice",
    "throttleWriteIOPSDevice",
];
const DEVICE_RULE_FIELDS: [&str; 5] = ["allow", "type", "major", "minor", "access"];
const HUGEPAGE_FIELDS: [&str; 2] = ["pageSize", "limit"];

/// cgroup v1 `cpu.shares` bounds (the kernel's `MIN_SHARES`, `MAX_SHARES`).
const CPU_SHARES: (u64, u64) = (2, 262_144);
/// The CFS period bounds in microseconds (the kernel's `min_cfs_quota_period` and
/// `max_cfs_quota_period`); a quota is at least the smallest period.
const CFS_PERIOD: (u64, u64) = (1_000, 1_000_000);
/// cgroup v1 `blkio.weight` bounds.
const BLKIO_WEIGHT: (u16, u16) = (10, 1_000);

/// `linux.resources` as the plan takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub limits: Limits,
    /// `linux.resources.devices` as written; `lower` appends the container's own `/dev` set.
    pub devices: Vec<DeviceRule>,
}

pub(super) fn resources(field: &str, value: &Json, ignored: &Ignored) -> Checked<Resources> {
    let object = Fields::read(field, value, &RESOURCES_FIELDS, ignored)?;
    object.refuse("network", || ErrorKind::Unsupported {
        why: "nsinit sets no net_cls class or net_prio priorities",
    })?;
    object.refuse("rdma", || ErrorKind::Unsupported {
        why: "nsinit sets no rdma controller limits",
    })?;
    let memory = object
        .optional("memory", |f, v| memory(f, v, ignored))?
        .unwrap_or_default();
    let cpu = object
        .optional("cpu", |f, v| cpu(f, v, ignored))?
        .unwrap_or_default();
    let limits = Limits {
        memory: memory.memory,
        memory_reservation: memory.memory_reservation,
        memory_swap: memory.memory_swap,
        cpu_shares: cpu.cpu_shares,
        cpu_quota: cpu.cpu_quota,
        cpu_period: cpu.cpu_period,
        cpuset_cpus: cpu.cpuset_cpus,
        cpuset_mems: cpu.cpuset_mems,
        pids: object
            .optional("pids", |f, v| pids(f, v, ignored))?
            .flatten(),
        blkio_weight: object
            .optional("blockIO", |f, v| block_io(f, v, ignored))?
            .flatten(),
        hugepages: object
            .optional("hugepageLimits", |f, v| hugepages(f, v, ignored))?
            .unwrap_or_default(),
        unified: object.optional("unified", unified)?.unwrap_or_default(),
    };
    let devices = object
        .optional("devices", |f, v| device_rules(f, v, ignored))?
        .unwrap_or_default();
    with_own_devices(&devices).map_err(|(index, kind)| {
        let at = match index {
            Some(i) => item(&object.path("devices"), i),
            None => object.path("devices"),
        };
        Invalid { field: at, kind }
    })?;
    Ok(Resources { limits, devices })
}

/// Why a device rule list does not hold: the index of the config's rule that broke it
/// (`None`: one of the container's own appended after them), and what is wrong.
pub(super) type PolicyError = (Option<usize>, ErrorKind);

/// The config's device rules followed by the container's own `/dev` set (runc appends its
/// allowed devices the same way, so a config's `deny a` cannot take `/dev/null` away),, after
/// checking the list holds as a device policy.
pub(super) fn with_own_devices(rules: &[DeviceRule]) -> Result<Vec<DeviceRule>, PolicyError> {
    // `default_rules()` opens with "deny all", which the rules before it would forget.
    let own = default_rules().into_iter().skip(1);
    let all: Vec<DeviceRule> = rules.iter().copied().chain(own).collect();
    for end in 1..=all.len() {
        if let Err(e) = DevicePolicy::new(&all[..end]) {
            let message = e.to_string();
            return Err(match end <= rules.len() {
                true => (Some(end - 1), ErrorKind::DeviceRule { message }),
                false => (None, ErrorKind::OwnDeviceRule { message }),
            });
        }
    }
    Ok(all)
}

/// The memory limits, in a [`Limits`] of their own.
fn memory(field: &str, value: &Json, ignored: &Ignored) -> Checked<Limits> {
    let object = Fields::read(field, value, &MEMORY_FIELDS, ignored)?;
    let positive_or_unset = |f: &str, v: &Json| -> Checked<Option<u64>> {
        let n = signed(f, v, -1, i64::MAX)?;
        Ok(u64::try_from(n).ok().filter(|&n| n > 0))
    };
    let limit = object.optional("limit", positive_or_unset)?.flatten();
    if let Some(bytes) = limit.filter(|&b| b < MIN_MEMORY) {
        return invalid(
            &object.path("limit"),
            ErrorKind::TooLittleMemory {
                value: bytes,
                min: MIN_MEMORY,
            },
        );
    }
    let reservation = object.optional("reservation", positive_or_unset)?.flatten();
    let swap = object.optional("swap", |f, v| signed(f, v, -1, i64::MAX))?;
    let swap = match (swap, limit) {
        (None | Some(0), _) => None,
        // Unlimited swap without a memory limit is the default.
        (Some(-1), None) => None,
        (Some(-1), Some(_)) => Some(-1),
        (Some(_), None) => {
            return invalid(
                &object.path("swap"),
                ErrorKind::Needs {
                    other: "linux.resources.memory.limit",
                    why: "swap limits memory plus swap",
                },
            )
        }
        (Some(swap), Some(limit)) if (swap as u64) < limit => {
            return invalid(
                &object.path("swap"),
                ErrorKind::SwapBelowLimit { swap, limit },
            )
        }
        (Some(swap), Some(_)) => Some(swap),
    };
    // Deprecated by runtime-spec; engines still send 0 or -1, which ask for no limit.
    let no_limit = |name: &str, why| match object.optional(name, int64)? {
        Some(n) if n > 0 => invalid(&object.path(name), ErrorKind::Unsupported { why }),
        _ => Ok(()),
    };
    no_limit(
        "kernel",
        "kernel memory limits are deprecated by runtime-spec: obsolete since Linux 5.4 and absent from cgroup v2",
    )?;
    no_limit("kernelTCP", "nsinit sets no kernel TCP buffer limit")?;
    if object.get("swappiness").is_some() {
        return invalid(
            &object.path("swappiness"),
            ErrorKind::Unsupported {
                why: "nsinit sets no swappiness",
            },
        );
    }
    if object.optional("disableOOMKiller", boolean)? == Some(true) {
        return invalid(
            &object.path("disableOOMKiller"),
            ErrorKind::Unsupported {
                why: "nsinit leaves the OOM killer on",
            },
        );
    }
    if object.optional("useHierarchy", boolean)? == Some(false) {
        return invalid(
            &object.path("useHierarchy"),
            ErrorKind::Unsupported {
                why: "memory accounting is always hierarchical (cgroup v2, and v1 since Linux 5.x)",
            },
        );
    }
    // Only `update` compares a new limit with the usage; a new container has none.
    object.optional("checkBeforeUpdate", boolean)?;
    Ok(Limits {
        memory: limit,
        memory_reservation: reservation,
        memory_swap: swap,
        ..Limits::default()
    })
}

/// The CPU limits, in a [`Limits`] of their own.
fn cpu(field: &str, value: &Json, ignored: &Ignored) -> Checked<Limits> {
    let object = Fields::read(field, value, &CPU_FIELDS, ignored)?;
    for (name, why) in [
        ("burst", "nsinit sets no CFS burst"),
        ("realtimeRuntime", "nsinit sets no real-time CPU time"),
        ("realtimePeriod", "nsinit sets no real-time CPU period"),
        ("idle", "nsinit does not make a group SCHED_IDLE"),
    ] {
        object.refuse(name, || ErrorKind::Unsupported { why })?;
    }
    let range = |f: &str, v: &Json, (min, max): (u64, u64)| -> Checked<Option<u64>> {
        match uint64(f, v)? {
            0 => Ok(None),
            n if (min..=max).contains(&n) => Ok(Some(n)),
            n => invalid(
                f,
                ErrorKind::OutOfRange {
                    value: n.to_string(),
                    range: min..=max,
                },
            ),
        }
    };
    let quota = object
        .optional("quota", |f, v| match int64(f, v)? {
            0 => Ok(None),
            -1 => Ok(Some(-1)),
            n if n >= CFS_PERIOD.0 as i64 => Ok(Some(n)),
            n => invalid(
                f,
                ErrorKind::OutOfSignedRange {
                    value: n.to_string(),
                    min: CFS_PERIOD.0 as i64,
                    max: i64::MAX,
                },
            ),
        })?
        .flatten();
    Ok(Limits {
        cpu_shares: object
            .optional("shares", |f, v| range(f, v, CPU_SHARES))?
            .flatten(),
        cpu_quota: quota,
        cpu_period: object
            .optional("period", |f, v| range(f, v, CFS_PERIOD))?
            .flatten(),
        cpuset_cpus: object.optional("cpus", cpu_list)?.flatten(),
        cpuset_mems: object.optional("mems", cpu_list)?.flatten(),
        ..Limits::default()
    })
}

/// A cpuset list (`0-3,6`), or `None` for the empty string (unset).
fn cpu_list(field: &str, value: &Json) -> Checked<Option<String>> {
    let list = string(field, value)?;
    if list.is_empty() {
        return Ok(None);
    }
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let valid = list.split(',').all(|part| match part.split_once('-') {
        Some((low, high)) => number(low) && number(high),
        None => number(part),
    });
    if !valid {
        return invalid(
            field,
            ErrorKind::BadCpuList {
                value: list.to_string(),
            },
        );
    }
    Ok(Some(list.to_string()))
}

/// `pids.limit`: 0 is unset (runc), negative is no limit.
fn pids(field: &str, value: &Json, ignored: &Ignored) -> Checked<Option<i64>> {
    let object = Fields::read(field, value, &["limit"], ignored)?;
    Ok(Some(object.required("limit", int64)?).filter(|&n| n != 0))
}

fn block_io(field: &str, value: &Json, ignored: &Ignored) -> Checked<Option<u16>> {
    let object = Fields::read(field, value, &BLOCK_IO_FIELDS, ignored)?;
    object.refuse("leafWeight", || ErrorKind::Unsupported {
        why: "leaf weights belong to the CFQ scheduler, gone from Linux (5.0)",
    })?;
    for name in &BLOCK_IO_FIELDS[2..] {
        object.refuse(name, || ErrorKind::Unsupported {
            why: "nsinit sets no per-device block I/O weights or throttles",
        })?;
    }
    let weight = |f: &str, v: &Json| -> Checked<Option<u16>> {
        match unsigned(f, v, u16::MAX)? {
            0 => Ok(None),
            w if (BLKIO_WEIGHT.0..=BLKIO_WEIGHT.1).contains(&w) => Ok(Some(w)),
            w => invalid(
                f,
                ErrorKind::OutOfRange {
                    value: w.to_string(),
                    range: u64::from(BLKIO_WEIGHT.0)..=u64::from(BLKIO_WEIGHT.1),
                },
            ),
        }
    };
    Ok(object.optional("weight", weight)?.flatten())
}

fn hugepages(field: &str, value: &Json, ignored: &Ignored) -> Checked<Vec<(String, u64)>> {
    let mut limits: Vec<(String, u64)> = Vec::new();
    for (i, entry) in array(field, value)?.iter().enumerate() {
        let here = item(field, i);
        let object = Fields::read(&here, entry, &HUGEPAGE_FIELDS, ignored)?;
        let size = object.required("pageSize", page_size)?;
        let bytes = object.required("limit", uint64)?;
        if let Some(first) = limits.iter().position(|(s, _)| *s == size) {
            return invalid(
                &child(&here, "pageSize"),
                ErrorKind::ListedTwice {
                    name: size,
                    first: item(field, first),
                },
            );
        }
        limits.push((size, bytes));
    }
    Ok(limits)
}

/// A huge page size as the kernel names its hugetlb files: digits and `KB`, `MB` or `GB`.
fn page_size(field: &str, value: &Json) -> Checked<String> {
    let size = string(field, value)?;
    let digits = ["KB", "MB", "GB"]
        .iter()
        .find_map(|unit| size.strip_suffix(unit));
    match digits {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => Ok(size.to_string()),
        _ => invalid(
            field,
            ErrorKind::BadPageSize {
                value: size.to_string(),
            },
        ),
    }
}

/// `unified`: cgroup v2 interface files of the group itself (`memory.high`), written as given.
fn unified(field: &str, value: &Json) -> Checked<BTreeMap<String, String>> {
    let Json::Object(entries) = value else {
        return wrong_type(field, "an object", value);
    };
    let mut files = BTreeMap::new();
    for (key, value) in entries {
        let here = child(field, key);
        let valid = key
            .split_once('.')
            .is_some_and(|(controller, file)| !controller.is_empty() && !file.is_empty())
            && !key.contains(['/', '\0'])
            && !key.starts_with("cgroup.");
        if !valid {
            return invalid(&here, ErrorKind::BadUnifiedKey { value: key.clone() });
        }
        let value = text(&here, value)?;
        if files.insert(key.clone(), value).is_some() {
            return invalid(field, ErrorKind::DuplicateField { name: key.clone() });
        }
    }
    Ok(files)
}

fn device_rules(field: &str, value: &Json, ignored: &Ignored) -> Checked<Vec<DeviceRule>> {
    array(field, value)?
        .iter()
        .enumerate()
        .map(|(i, entry)| device_rule(&item(field, i), entry, ignored))
        .collect()
}

/// One rule; an absent or empty type is `a`, a major or minor absent or `-1` is any (`*`),
/// an absent access is `rwm`.
fn device_rule(field: &str, value: &Json, ignored: &Ignored) -> Checked<DeviceRule> {
    let object = Fields::read(field, value, &DEVICE_RULE_FIELDS, ignored)?;
    let allow = object.required("allow", boolean)?;
    let kind = object
        .optional("type", |f, v| string(f, v).map(str::to_string))?
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "a".into());
    let number = |f: &str, v: &Json| Ok(Some(int64(f, v)?).filter(|&n| n != -1));
    let major = object.optional("major", number)?.flatten();
    let minor = object.optional("minor", number)?.flatten();
    let access = object
        .optional("access", |f, v| string(f, v).map(str::to_string))?
        .unwrap_or_else(|| "rwm".into());
    DeviceRule::new(allow, &kind, major, minor, &access).or_else(|e| {
        invalid(
            field,
            ErrorKind::DeviceRule {
                message: e.to_string(),
            },
        )
    })
}
