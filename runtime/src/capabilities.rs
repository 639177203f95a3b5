//! The process's capabilities, set by set, as the plan keeps them: everything else dropped,
//! nothing the caller does not hold gained.
//!
//! Two steps around the switch to the container's user ([`crate::process`] runs them): the
//! bounding set first, while `CAP_SETPCAP` is still effective (the plan may drop it);
//! then, under the new uid, inheritable, effective, permitted and ambient.

use caps::{CapSet, CapsHashSet};

use crate::error::StepError;
use crate::plan::{Capability, CapabilitySets};

/// Drop from the bounding set every capability `sets` does not keep there.
pub fn limit_bounding(sets: &CapabilitySets) -> Result<(), StepError> {
    let keep = to_caps(&sets.bounding);
    let now = read(CapSet::Bounding, "bounding")?;
    for &cap in now.difference(&keep) {
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|e| failed(&format!("drop {cap} from the bounding set"), e))?;
    }
    Ok(())
}

/// Set the inheritable, effective, permitted and ambient sets to what `sets` keeps of what
/// this process holds.
///
/// Order matters: inheritable while `CAP_SETPCAP` may still be effective; effective before
/// permitted, because the kernel refuses an effective set larger than the permitted one;
/// ambient last, as a capability can be ambient only when permitted and inheritable.
pub fn apply(sets: &CapabilitySets) -> Result<(), StepError> {
    let bounding = read(CapSet::Bounding, "bounding")?;
    let permitted: CapsHashSet = read(CapSet::Permitted, "permitted")?
        .intersection(&to_caps(&sets.permitted))
        .copied()
        .collect();
    let inheritable: CapsHashSet = to_caps(&sets.inheritable)
        .intersection(&bounding)
        .copied()
        .collect();
    let effective: CapsHashSet = to_caps(&sets.effective)
        .intersection(&permitted)
        .copied()
        .collect();
    for (set, name, value) in [
        (CapSet::Inheritable, "inheritable", &inheritable),
        (CapSet::Effective, "effective", &effective),
        (CapSet::Permitted, "permitted", &permitted),
    ] {
        caps::set(None, set, value).map_err(|e| failed(&format!("set the {name} set"), e))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| failed("clear the ambient set", e))?;
    for cap in to_caps(&sets.ambient) {
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap)
                .map_err(|e| failed(&format!("raise {cap} in the ambient set"), e))?;
        }
    }
    Ok(())
}

fn read(set: CapSet, name: &str) -> Result<CapsHashSet, StepError> {
    caps::read(None, set).map_err(|e| failed(&format!("read the {name} set"), e))
}

fn to_caps(list: &[Capability]) -> CapsHashSet {
    list.iter().map(|&cap| to_cap(cap)).collect()
}

/// The `caps` crate's name for a capability, matched by its kernel number.
fn to_cap(cap: Capability) -> caps::Capability {
    caps::all()
        .into_iter()
        .find(|c| c.index() == cap.number())
        .expect("the caps crate knows all 41 capabilities of the plan")
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
    fn every_plan_capability_maps_to_the_same_kernel_number() {
        for cap in Capability::ALL {
            assert_eq!(to_cap(cap).index(), cap.number(), "{}", cap.name());
        }
    }
}
