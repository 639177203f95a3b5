//! Dropping the capabilities the config lists, from all five sets, before the command runs.

use caps::{CapSet, CapsHashSet};

use crate::config::Capability;
use crate::error::StepError;

/// Remove every capability in `drop` from the bounding, ambient, inheritable, effective and
/// permitted sets of this process; the others stay as they are.
///
/// Order matters: the bounding set first, because lowering it needs `CAP_SETPCAP` in the
/// effective set, and the config may drop `SETPCAP` itself; effective before permitted,
/// because the kernel refuses an effective set larger than the permitted one.
pub fn drop_listed(drop: &[Capability]) -> Result<(), StepError> {
    if drop.is_empty() {
        return Ok(());
    }
    let listed: CapsHashSet = drop.iter().map(|&cap| to_caps(cap)).collect();
    for &cap in &listed {
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|e| failed(&format!("drop {cap} from the bounding set"), e))?;
        caps::drop(None, CapSet::Ambient, cap)
            .map_err(|e| failed(&format!("drop {cap} from the ambient set"), e))?;
    }
    for (set, name) in [
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
    ] {
        let current =
            caps::read(None, set).map_err(|e| failed(&format!("read the {name} set"), e))?;
        let kept: CapsHashSet = current.difference(&listed).copied().collect();
        caps::set(None, set, &kept).map_err(|e| failed(&format!("set the {name} set"), e))?;
    }
    Ok(())
}

/// The `caps` crate's name for a capability, matched by its kernel number.
fn to_caps(cap: Capability) -> caps::Capability {
    caps::all()
        .into_iter()
        .find(|c| c.index() == cap.number())
        .expect("the caps crate knows all 41 capabilities of the config model")
}

/// The `caps` crate reports errors as text; keep the errno the kernel set for the message.
fn failed(step: &str, _: caps::errors::CapsError) -> StepError {
    let errno = nix::Error::last();
    StepError {
        step: step.to_string(),
        errno: if errno as i32 == 0 {
            nix::Error::EPERM
        } else {
            errno
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_capability_maps_to_the_same_kernel_number() {
        for cap in Capability::ALL {
            assert_eq!(to_caps(cap).index(), cap.number(), "{}", cap.name());
        }
    }
}
