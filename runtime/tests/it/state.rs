//! The state file in `/run/nsinit` (root's), without a container: the record written, shrunk,
//! cleared and the file gone.

use std::path::Path;

use nsinit::plan::Plan;
use nsinit::spec::container_json::{lower, parse, Site};
use nsinit::state::{ContainerDir, Record, StateFile};

use crate::support::*;

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    fixtures::trials![the_record_lives_in_one_state_file_gone_with_the_container]
}

/// The plan of `container.json` text `json`, as if run from `/`.
fn plan(json: &str) -> Plan {
    let config = parse(Path::new("container.json"), json).unwrap();
    let site = Site {
        rootfs: Path::new("/"),
        id: "test",
        rootless: false,
    };
    lower(&config, &site)
}

fn the_record_lives_in_one_state_file_gone_with_the_container() -> Ran {
    fixtures::harness::needs_root("nsinit's state files live in /run/nsinit")?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = ContainerDir::open(tmp.path()).unwrap();
    let path = StateFile::path(&dir);
    let state = StateFile::lock(&dir).unwrap();
    assert_eq!(state.read(), None, "a fresh state file records nothing");
    let long = Record {
        pid: 77,
        start_time: 123,
        plan: plan(r#"{"namespaces": ["NEWNS", "NEWUTS"], "hostname": "a-long-name"}"#),
    };
    state.write(&long).unwrap();
    let short = Record {
        plan: plan(r#"{"namespaces": ["NEWNS", "NEWPID"]}"#),
        ..long.clone()
    };
    state.write(&short).unwrap();
    assert_eq!(state.read(), Some(short), "a shorter record leaves no tail");
    state.clear();
    assert_eq!(state.read(), None);
    state.remove();
    assert!(!path.exists(), "no file once the container is gone");
    StateFile::remove_if_unused(&dir);
    assert!(!path.exists(), "an unused state file is not left behind");
    assert!(StateFile::lock_existing(&dir).unwrap().is_none());
    assert!(!path.exists(), "a reader creates nothing");
    Ok(())
}
