//! Tests of the config.json front-end: the plan of every bundle fixture, accepted and
//! rejected shapes with every message as a snapshot, and arbitrary input never panicking.

use std::path::Path;

use proptest::prelude::*;
use rstest::rstest;
use serde_json::Value;

use super::process::CAP_NAMES;
use super::read::{asks_nothing, clean};
use super::*;
use crate::cgroups::{default_rules, DeviceRule};
use crate::plan::{Capability, CgroupPath, MountSource, Plan};

const PATH: &str = "/run/bundles/c1/config.json";

/// Where the fixtures are lowered.
fn site() -> Site<'static> {
    Site {
        bundle: Path::new("/run/bundles/c1"),
        id: "c1",
    }
}

fn read(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new(PATH), text)
}

fn plan_of(text: &str) -> Result<Plan, ConfigError> {
    lower(&read(text)?, &site())
}

fn rejection(text: &str) -> String {
    match plan_of(text) {
        Ok(plan) => panic!("accepted {text}: {plan:?}"),
        Err(error) => error.to_string(),
    }
}

/// The smallest config nsinit runs, with `patch` merged in (objects merged key by key,
/// anything else replaced; `null` in the patch removes the key).
fn with(patch: &str) -> String {
    let mut base: Value = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": { "user": { "uid": 0, "gid": 0 }, "args": ["sh"], "cwd": "/" },
        "root": { "path": "rootfs" },
        "linux": { "namespaces": [ { "type": "mount" } ] }
    });
    merge(
        &mut base,
        serde_json::from_str(patch).expect("the patch is JSON"),
    );
    base.to_string()
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    base.remove(&key);
                } else {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (base, patch) => *base = patch,
    }
}

/// The plan of every bundle fixture nsinit runs, as the engine and the state record see it.
#[test]
fn every_bundle_fixture_lowers_to_its_plan() {
    for (name, text) in fixtures::bundles() {
        if name.starts_with("bad-") {
            continue;
        }
        let plan = plan_of(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = serde_json::to_string_pretty(&plan).unwrap();
        let recorded: Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(recorded, plan, "{name}: the plan survives the state record");
        // A compiled filter's program is libseccomp's business (its own tests check what it
        // does): the snapshot shows its size.
        let mut shown: Value = serde_json::from_str(&json).unwrap();
        if let Some(program) = shown.pointer_mut("/seccomp/filter/program") {
            let instructions = program.as_str().unwrap().len() / 16;
            *program = Value::String(format!("<{instructions} instructions>"));
        }
        let json = serde_json::to_string_pretty(&shown).unwrap();
        insta::assert_snapshot!(format!("plan_{name}"), json);
    }
}

/// What a config holds besides its plan: the annotations and the properties ignored.
#[test]
fn every_bundle_fixture_keeps_its_annotations_and_names_what_it_ignored() {
    let mut report = String::new();
    for (name, text) in fixtures::bundles() {
        let Ok(config) = read(text) else { continue };
        report += &format!(
            "{name}: ociVersion {}, terminal {}\n",
            config.oci_version,
            config.terminal()
        );
        for (key, value) in &config.annotations {
            report += &format!("  annotation {key} = {value:?}\n");
        }
        for field in &config.ignored {
            report += &format!("  ignored {field}\n");
        }
    }
    insta::assert_snapshot!("fixture_extras", report);
}

#[test]
fn every_refused_bundle_fixture_names_its_field() {
    for (name, text) in fixtures::bundles() {
        if name.starts_with("bad-") {
            insta::assert_snapshot!(format!("refused_{name}"), rejection(text));
        }
    }
}

#[test]
fn podman_default_seccomp_profile_is_compiled_into_the_plan() {
    let plan = plan_of(fixtures::bundle("podman").unwrap()).unwrap();
    let Some(crate::plan::Seccomp::Filter(filter)) = &plan.seccomp else {
        panic!("no filter: {:?}", plan.seccomp);
    };
    assert!(filter.instructions().len() > 100, "{filter:?}");
    let unconfined = plan_of(fixtures::bundle("podman-unconfined").unwrap()).unwrap();
    assert_eq!(unconfined.seccomp, None);
}

#[test]
fn the_runc_spec_plan_is_what_runc_spec_says() {
    let plan = plan_of(fixtures::bundle("runc-spec").unwrap()).unwrap();
    assert_eq!(plan.rootfs, Path::new("/run/bundles/c1/rootfs"));
    assert!(plan.readonly_rootfs && plan.process.terminal && plan.rootfs_nodev);
    assert_eq!(plan.hostname.as_deref(), Some("runc"));
    assert_eq!(plan.process.rlimits.len(), 1);
    assert_eq!(
        plan.process.capabilities.bounding,
        [
            Capability::AuditWrite,
            Capability::Kill,
            Capability::NetBindService
        ]
    );
    let cgroup = plan.cgroup.unwrap();
    assert_eq!(cgroup.path, CgroupPath::Caller("c1".into()));
    // `deny a`, then the container's own set.
    assert_eq!(
        cgroup.devices[0],
        DeviceRule::new(false, "a", None, None, "rwm").unwrap()
    );
    assert_eq!(cgroup.devices[1..], default_rules()[1..]);
}

#[test]
fn the_default_rules_open_with_deny_all() {
    // `with_own_devices` drops it, so that a config's rules are not forgotten.
    assert_eq!(
        default_rules()[0],
        DeviceRule::new(false, "a", None, None, "rwm").unwrap()
    );
}

#[test]
fn podmans_network_namespace_is_joined_by_path_and_its_cgroup_is_below_the_root() {
    let plan = plan_of(fixtures::bundle("podman-unconfined").unwrap()).unwrap();
    let net = plan
        .namespaces
        .iter()
        .find(|ns| ns.kind == Namespace::Net)
        .unwrap();
    assert!(net.path.as_ref().unwrap().starts_with("/run/netns/"));
    let CgroupPath::Root(path) = plan.cgroup.unwrap().path else {
        panic!("not below the root")
    };
    let path = path.to_string_lossy();
    assert!(path.starts_with("/libpod_parent/libpod-"), "{path}");
}

#[test]
fn containerds_cgroup_is_namespace_slash_id() {
    let plan = plan_of(fixtures::bundle("containerd").unwrap()).unwrap();
    let path = plan.cgroup.unwrap().path;
    assert_eq!(path, CgroupPath::Root("/default/ctrdefault".into()));
}

#[test]
fn a_config_without_process_lowers_to_a_process_without_a_command() {
    let config = read(fixtures::bundle("minimal").unwrap()).unwrap();
    assert!(config.process.is_none() && !config.terminal());
    let plan = lower(&config, &site()).unwrap();
    assert!(plan.process.args.is_empty());
    assert!(plan.process.capabilities == Default::default());
}

#[test]
fn the_default_devices_come_first_and_a_listed_one_wins() {
    let plan = plan_of(fixtures::bundle("devices").unwrap()).unwrap();
    let paths: Vec<&str> = plan.devices.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/fuse",
            "/dev/null",
            "/dev/sda",
            "/dev/ttyS0",
            "/dev/mypipe",
            "/dev/net/tun"
        ]
    );
    let null = plan.devices.iter().find(|d| d.path == "/dev/null").unwrap();
    assert_eq!(null.gid, 5, "the config's own /dev/null");
}

#[test]
fn bind_sources_and_the_rootfs_are_made_absolute_against_the_bundle() {
    let plan = plan_of(fixtures::bundle("mounts").unwrap()).unwrap();
    assert_eq!(plan.rootfs, Path::new("/run/bundles/images/alpine/rootfs"));
    let sources: Vec<_> = plan
        .mounts
        .iter()
        .filter_map(|m| match &m.source {
            MountSource::Bind { path, recursive } => Some((path.clone(), *recursive)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("/run/bundles/c1/data".into(), true),
            ("/etc/resolv.conf".into(), false),
            ("/srv/shared".into(), false),
            ("/run/bundles/c1/volumes/u".into(), true),
        ]
    );
}

#[test]
fn a_rootfs_resolving_to_the_host_root_is_refused() {
    let message = rejection(&with(r#"{"root": {"path": "../../.."}}"#));
    insta::assert_snapshot!("rejected_root_is_host_root", message);
}

#[test]
fn process_files_read_with_paths_of_their_own() {
    let text = r#"{"user": {"uid": 1, "gid": 1}, "args": ["ps"], "cwd": "/", "terminal": true,
        "capabilities": {"bounding": ["CAP_KILL", "CAP_FLY"]}}"#;
    let error = parse_process(Path::new("process.json"), text).unwrap_err();
    assert_eq!(error.field(), "capabilities.bounding[1]");
    let ok = parse_process(
        Path::new("process.json"),
        &text.replace(", \"CAP_FLY\"", ""),
    );
    let process = ok.unwrap();
    assert!(process.terminal && process.capabilities.bounding == [Capability::Kill]);
}

#[test]
fn unknown_properties_are_ignored_and_listed() {
    let config = read(&with(
        r#"{"hostnme": "x", "process": {"user": {"username": "u"}}, "linux": {"sekcomp": {}}}"#,
    ))
    .unwrap();
    // An object's own unknown properties are met before those of the objects in it.
    assert_eq!(
        config.ignored,
        ["hostnme", "linux.sekcomp", "process.user.username"]
    );
}

#[test]
fn deep_nesting_is_a_json_error_not_a_stack_overflow() {
    let text = format!("{{\"annotations\": {}", "[".repeat(100_000));
    let error = read(&text).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Json { .. }), "{error}");
}

#[test]
fn the_error_exposes_file_field_and_kind() {
    let error = read(&with(
        r#"{"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1},
        {"type": "RLIMIT_NOFILE", "hard": 2, "soft": 2}]}}"#,
    ))
    .unwrap_err();
    assert_eq!(error.path(), Path::new(PATH));
    assert_eq!(error.field(), "process.rlimits[1].type");
    assert!(matches!(error.kind(), ErrorKind::ListedTwice { .. }));
}

#[test]
fn capability_names_are_the_plans_with_cap_prefix() {
    for cap in Capability::ALL {
        assert_eq!(
            CAP_NAMES[usize::from(cap.number())],
            format!("CAP_{}", cap.name())
        );
    }
}

#[test]
fn rlimit_names_are_numbered_as_in_the_kernel() {
    let libc_numbers = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ];
    for (name, number) in libc_numbers {
        assert_eq!(RLIMITS[number as usize], name);
    }
}

#[rstest]
#[case("/a/./b//c/", "/a/b/c")]
#[case("/a/../../b", "/b")]
#[case("/..", "/")]
#[case("/", "/")]
fn paths_are_cleaned_lexically(#[case] path: &str, #[case] cleaned: &str) {
    assert_eq!(clean(path), cleaned);
}

#[rstest]
#[case("null", true)]
#[case("false", true)]
#[case("0", true)]
#[case("\"\"", true)]
#[case("[]", true)]
#[case(r#"{"a": 0, "b": {"c": []}}"#, true)]
#[case("true", false)]
#[case("-1", false)]
#[case("0.5", false)]
#[case(r#"[0]"#, false)]
#[case(r#"{"a": "x"}"#, false)]
fn what_asks_for_nothing(#[case] json: &str, #[case] nothing: bool) {
    let value: super::super::json::Json = serde_json::from_str(json).unwrap();
    assert_eq!(asks_nothing(&value), nothing);
}

/// Shapes nsinit runs; each must lower to a plan, and `check` holds of it.
#[rstest]
#[case::version_1_0_0(r#"{"ociVersion": "1.0.0"}"#)]
#[case::version_1_0_2_dev(r#"{"ociVersion": "1.0.2-dev"}"#)]
#[case::version_1_1_0_rc(r#"{"ociVersion": "1.1.0-rc.3+build.5"}"#)]
#[case::version_1_2_9(r#"{"ociVersion": "1.2.9"}"#)]
#[case::byte_order_mark("\u{feff}{}")]
#[case::no_process(r#"{"process": null}"#)]
#[case::null_is_absent(r#"{"hostname": null, "mounts": null, "hooks": null, "linux": {"seccomp": null, "resources": null}}"#)]
#[case::empty_hostname_without_uts(r#"{"hostname": "", "domainname": ""}"#)]
#[case::hostname_joined_uts(
    r#"{"hostname": "h", "linux": {"namespaces": [{"type": "mount"}, {"type": "uts", "path": "/proc/1/ns/uts"}]}}"#
)]
#[case::every_capability(&format!(
    r#"{{"process": {{"capabilities": {{"bounding": {}}}}}}}"#,
    serde_json::to_string(&CAP_NAMES[..]).unwrap()
))]
#[case::consoles_size_without_terminal(
    r#"{"process": {"consoleSize": {"height": 1, "width": 1}}}"#
)]
#[case::oom_score_adj_bounds(r#"{"process": {"oomScoreAdj": -1000}}"#)]
#[case::umask_zero(r#"{"process": {"user": {"umask": 0}}}"#)]
#[case::env_duplicate_last_wins(r#"{"process": {"env": ["A=1", "B=2", "A=3"]}}"#)]
#[case::rlimit_infinity(r#"{"process": {"rlimits": [{"type": "RLIMIT_AS", "hard": 18446744073709551615, "soft": 18446744073709551615}]}}"#)]
#[case::cgroups_path_empty(r#"{"linux": {"cgroupsPath": ""}}"#)]
#[case::memory_unlimited(
    r#"{"linux": {"resources": {"memory": {"limit": -1, "swap": -1, "reservation": 0}}}}"#
)]
#[case::memory_swap_equal(
    r#"{"linux": {"resources": {"memory": {"limit": 1048576, "swap": 1048576}}}}"#
)]
#[case::memory_kernel_zero(
    r#"{"linux": {"resources": {"memory": {"kernel": 0, "kernelTCP": 0}}}}"#
)]
#[case::cpu_quota_unlimited(
    r#"{"linux": {"resources": {"cpu": {"quota": -1, "shares": 0, "period": 0, "cpus": ""}}}}"#
)]
#[case::pids_zero(r#"{"linux": {"resources": {"pids": {"limit": 0}}}}"#)]
#[case::empty_sections(r#"{"linux": {"resources": {"blockIO": {}, "network": {}, "rdma": {}, "unified": {}}, "intelRdt": {}, "timeOffsets": {}, "uidMappings": [], "netDevices": {}}}"#)]
#[case::personality_linux(r#"{"linux": {"personality": {"domain": "LINUX"}}}"#)]
#[case::rootfs_propagation_empty(r#"{"linux": {"rootfsPropagation": ""}}"#)]
#[case::mount_cgroup_v1(
    r#"{"mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["ro"]}]}"#
)]
#[case::mount_tmpcopyup(
    r#"{"mounts": [{"destination": "/tmp", "type": "tmpfs", "options": ["rw", "nosuid", "nodev", "tmpcopyup"]}]}"#
)]
#[case::mount_fs_source_defaults_to_type(
    r#"{"mounts": [{"destination": "/run", "type": "tmpfs"}]}"#
)]
#[case::device_rule_wildcards(r#"{"linux": {"resources": {"devices": [{"allow": true, "type": "", "major": -1, "minor": -1}]}}}"#)]
#[case::device_rule_privileged(
    r#"{"linux": {"resources": {"devices": [{"allow": true, "access": "rwm"}]}}}"#
)]
#[case::hook_without_args(r#"{"hooks": {"poststop": [{"path": "/bin/true"}]}}"#)]
#[case::annotations_empty_value(r#"{"annotations": {"a": ""}}"#)]
#[case::sysctl_uts(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}], "sysctl": {"kernel.hostname": "h"}}}"#)]
#[case::other_platforms(r#"{"windows": {"layerFolders": []}, "solaris": {}, "vm": {}, "zos": {}}"#)]
fn accepted(#[case] patch: &str) {
    let text = if patch.starts_with('\u{feff}') {
        format!("\u{feff}{}", with(&patch['\u{feff}'.len_utf8()..]))
    } else {
        with(patch)
    };
    let plan = plan_of(&text).unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
}

/// Every distinct refusal, by case name; the snapshot is `rejected_<name>`.
#[rstest]
// The file as a whole.
#[case::json_syntax("json_syntax", "{\n  \"ociVersion\": \"1.0.0\"\n  \"root\": {}\n}")]
#[case::json_empty("json_empty", "")]
#[case::top_not_object("top_not_object", "[]")]
#[case::duplicate_field("duplicate_field", r#"{"ociVersion": "1.0.0", "ociVersion": "1.1.0"}"#)]
#[case::missing_version("missing_version", &with(r#"{"ociVersion": null}"#))]
#[case::version_2("version_2", &with(r#"{"ociVersion": "2.0.0"}"#))]
#[case::version_1_3("version_1_3", &with(r#"{"ociVersion": "1.3.0"}"#))]
#[case::version_0_5("version_0_5", &with(r#"{"ociVersion": "0.5.0"}"#))]
#[case::version_short("version_short", &with(r#"{"ociVersion": "1.0"}"#))]
#[case::version_number("version_number", &with(r#"{"ociVersion": 1.0}"#))]
#[case::missing_root("missing_root", &with(r#"{"root": null}"#))]
#[case::root_path_empty("root_path_empty", &with(r#"{"root": {"path": ""}}"#))]
#[case::root_readonly_string("root_readonly_string", &with(r#"{"root": {"readonly": "yes"}}"#))]
// process.
#[case::process_not_object("process_not_object", &with(r#"{"process": ["sh"]}"#))]
#[case::args_empty("args_empty", &with(r#"{"process": {"args": []}}"#))]
#[case::args_missing("args_missing", &with(r#"{"process": {"args": null}}"#))]
#[case::args_nul("args_nul", &with(r#"{"process": {"args": ["sh\u0000"]}}"#))]
#[case::cwd_relative("cwd_relative", &with(r#"{"process": {"cwd": "home"}}"#))]
#[case::cwd_missing("cwd_missing", &with(r#"{"process": {"cwd": null}}"#))]
#[case::user_missing("user_missing", &with(r#"{"process": {"user": null}}"#))]
#[case::uid_missing("uid_missing", &with(r#"{"process": {"user": {"uid": null}}}"#))]
#[case::uid_negative("uid_negative", &with(r#"{"process": {"user": {"uid": -1}}}"#))]
#[case::gid_too_large("gid_too_large", &with(r#"{"process": {"user": {"gid": 4294967296}}}"#))]
#[case::umask_too_large("umask_too_large", &with(r#"{"process": {"user": {"umask": 512}}}"#))]
#[case::additional_gid_string("additional_gid_string", &with(r#"{"process": {"user": {"additionalGids": ["wheel"]}}}"#))]
#[case::env_no_equals("env_no_equals", &with(r#"{"process": {"env": ["PATH=/bin", "TERM"]}}"#))]
#[case::env_empty_name("env_empty_name", &with(r#"{"process": {"env": ["=x"]}}"#))]
#[case::console_size_too_large("console_size_too_large", &with(r#"{"process": {"terminal": true, "consoleSize": {"height": 65536, "width": 80}}}"#))]
#[case::capability_unknown("capability_unknown", &with(r#"{"process": {"capabilities": {"effective": ["CAP_FLY"]}}}"#))]
#[case::capability_without_prefix("capability_without_prefix", &with(r#"{"process": {"capabilities": {"bounding": ["SYS_ADMIN"]}}}"#))]
#[case::capability_lowercase("capability_lowercase", &with(r#"{"process": {"capabilities": {"ambient": ["cap_net_raw"]}}}"#))]
#[case::capability_typo("capability_typo", &with(r#"{"process": {"capabilities": {"permitted": ["CAP_SYS_ADMN"]}}}"#))]
#[case::capability_set_string("capability_set_string", &with(r#"{"process": {"capabilities": {"inheritable": "CAP_KILL"}}}"#))]
#[case::rlimit_unknown("rlimit_unknown", &with(r#"{"process": {"rlimits": [{"type": "RLIMIT_FILES", "hard": 1, "soft": 1}]}}"#))]
#[case::rlimit_without_prefix("rlimit_without_prefix", &with(r#"{"process": {"rlimits": [{"type": "nofile", "hard": 1, "soft": 1}]}}"#))]
#[case::rlimit_twice("rlimit_twice", &with(r#"{"process": {"rlimits": [{"type": "RLIMIT_CORE", "hard": 1, "soft": 1}, {"type": "RLIMIT_CORE", "hard": 1, "soft": 1}]}}"#))]
#[case::rlimit_soft_above_hard("rlimit_soft_above_hard", &with(r#"{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 4096}]}}"#))]
#[case::rlimit_missing_soft("rlimit_missing_soft", &with(r#"{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024}]}}"#))]
#[case::oom_score_adj_low("oom_score_adj_low", &with(r#"{"process": {"oomScoreAdj": -1001}}"#))]
#[case::oom_score_adj_high("oom_score_adj_high", &with(r#"{"process": {"oomScoreAdj": 1001}}"#))]
#[case::apparmor("apparmor", &with(r#"{"process": {"apparmorProfile": "docker-default"}}"#))]
#[case::selinux_label("selinux_label", &with(r#"{"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}"#))]
#[case::scheduler("scheduler", &with(r#"{"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 10}}}"#))]
#[case::io_priority("io_priority", &with(r#"{"process": {"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 1}}}"#))]
#[case::exec_cpu_affinity("exec_cpu_affinity", &with(r#"{"process": {"execCPUAffinity": {"initial": "0"}}}"#))]
#[case::no_new_privileges_string("no_new_privileges_string", &with(r#"{"process": {"noNewPrivileges": "true"}}"#))]
// hostname, annotations, hooks.
#[case::hostname_without_uts("hostname_without_uts", &with(r#"{"hostname": "web"}"#))]
#[case::domainname_without_uts("domainname_without_uts", &with(r#"{"domainname": "example.org"}"#))]
#[case::hostname_too_long("hostname_too_long", &with(&format!(r#"{{"hostname": "{}", "linux": {{"namespaces": [{{"type": "mount"}}, {{"type": "uts"}}]}}}}"#, "h".repeat(65))))]
#[case::annotation_number("annotation_number", &with(r#"{"annotations": {"a": 1}}"#))]
#[case::annotation_empty_key("annotation_empty_key", &with(r#"{"annotations": {"": "x"}}"#))]
#[case::hook_relative("hook_relative", &with(r#"{"hooks": {"createRuntime": [{"path": "hook"}]}}"#))]
#[case::hook_timeout_zero("hook_timeout_zero", &with(r#"{"hooks": {"poststart": [{"path": "/h", "timeout": 0}]}}"#))]
#[case::hook_timeout_negative("hook_timeout_negative", &with(r#"{"hooks": {"poststop": [{"path": "/h", "timeout": -5}]}}"#))]
#[case::hook_env_no_equals("hook_env_no_equals", &with(r#"{"hooks": {"prestart": [{"path": "/h", "env": ["X"]}]}}"#))]
#[case::hooks_not_array("hooks_not_array", &with(r#"{"hooks": {"startContainer": {"path": "/h"}}}"#))]
// mounts.
#[case::mount_no_destination("mount_no_destination", &with(r#"{"mounts": [{"type": "tmpfs"}]}"#))]
#[case::mount_destination_empty("mount_destination_empty", &with(r#"{"mounts": [{"destination": "", "type": "tmpfs"}]}"#))]
#[case::mount_no_type("mount_no_type", &with(r#"{"mounts": [{"destination": "/x", "source": "x"}]}"#))]
#[case::mount_type_overlay("mount_type_overlay", &with(r#"{"mounts": [{"destination": "/x", "type": "overlay", "options": ["lowerdir=/a"]}]}"#))]
#[case::mount_type_none_without_bind("mount_type_none_without_bind", &with(r#"{"mounts": [{"destination": "/x", "type": "none", "source": "/x"}]}"#))]
#[case::mount_bind_without_source("mount_bind_without_source", &with(r#"{"mounts": [{"destination": "/x", "type": "bind", "options": ["rbind"]}]}"#))]
#[case::mount_bind_empty_source("mount_bind_empty_source", &with(r#"{"mounts": [{"destination": "/x", "source": "", "options": ["bind"]}]}"#))]
#[case::mount_bind_with_data("mount_bind_with_data", &with(r#"{"mounts": [{"destination": "/x", "source": "/x", "options": ["rbind", "mode=755", "uid=0"]}]}"#))]
#[case::mount_uid_mappings("mount_uid_mappings", &with(r#"{"mounts": [{"destination": "/x", "source": "/x", "options": ["bind"], "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]}"#))]
#[case::mount_option_idmap("mount_option_idmap", &with(r#"{"mounts": [{"destination": "/x", "source": "/x", "options": ["bind", "idmap"]}]}"#))]
#[case::mount_option_tmpcopyup_on_bind("mount_option_tmpcopyup_on_bind", &with(r#"{"mounts": [{"destination": "/x", "source": "/x", "options": ["bind", "tmpcopyup"]}]}"#))]
#[case::mount_option_mand("mount_option_mand", &with(r#"{"mounts": [{"destination": "/run", "type": "tmpfs", "options": ["mand"]}]}"#))]
#[case::mount_option_recursive_attr("mount_option_recursive_attr", &with(r#"{"mounts": [{"destination": "/x", "source": "/x", "options": ["rbind", "rnosuid"]}]}"#))]
#[case::mount_option_number("mount_option_number", &with(r#"{"mounts": [{"destination": "/run", "type": "tmpfs", "options": [755]}]}"#))]
#[case::mounts_not_array("mounts_not_array", &with(r#"{"mounts": {"destination": "/run"}}"#))]
// linux.namespaces.
#[case::no_linux("no_linux", &with(r#"{"linux": null}"#))]
#[case::no_mount_namespace("no_mount_namespace", &with(r#"{"linux": {"namespaces": [{"type": "pid"}]}}"#))]
#[case::namespace_user("namespace_user", &with(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}]}}"#))]
#[case::namespace_time("namespace_time", &with(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "time"}]}}"#))]
#[case::namespace_net("namespace_net", &with(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "net"}]}}"#))]
#[case::namespace_clone_flag("namespace_clone_flag", &with(r#"{"linux": {"namespaces": [{"type": "CLONE_NEWNS"}]}}"#))]
#[case::namespace_unknown("namespace_unknown", &with(r#"{"linux": {"namespaces": [{"type": "everything"}]}}"#))]
#[case::namespace_twice("namespace_twice", &with(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "pid", "path": "/proc/1/ns/pid"}]}}"#))]
#[case::namespace_mount_by_path("namespace_mount_by_path", &with(r#"{"linux": {"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]}}"#))]
#[case::namespace_path_relative("namespace_path_relative", &with(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": "netns"}]}}"#))]
#[case::uid_mappings("uid_mappings", &with(r#"{"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}}"#))]
#[case::time_offsets("time_offsets", &with(r#"{"linux": {"timeOffsets": {"monotonic": {"secs": 10}}}}"#))]
// linux: the rest.
#[case::seccomp_unknown_syscall("seccomp_unknown_syscall", &with(r#"{"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid", "nosuchcall"], "action": "SCMP_ACT_ERRNO"}]}}}"#))]
#[case::seccomp_unknown_action("seccomp_unknown_action", &with(r#"{"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_DENY"}]}}}"#))]
#[case::seccomp_notify("seccomp_notify", &with(r#"{"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOTIFY"}}}"#))]
#[case::seccomp_no_default("seccomp_no_default", &with(r#"{"linux": {"seccomp": {"syscalls": []}}}"#))]
#[case::mount_label("mount_label", &with(r#"{"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}"#))]
#[case::intel_rdt("intel_rdt", &with(r#"{"linux": {"intelRdt": {"closID": "guaranteed"}}}"#))]
#[case::net_devices("net_devices", &with(r#"{"linux": {"netDevices": {"eth1": {"name": "eth1"}}}}"#))]
#[case::personality_unknown("personality_unknown", &with(r#"{"linux": {"personality": {"domain": "LINUX64"}}}"#))]
#[case::personality_flags("personality_flags", &with(r#"{"linux": {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}}}"#))]
#[case::rootfs_propagation_unknown("rootfs_propagation_unknown", &with(r#"{"linux": {"rootfsPropagation": "rslaves"}}"#))]
#[case::masked_path_relative("masked_path_relative", &with(r#"{"linux": {"maskedPaths": ["proc/kcore"]}}"#))]
#[case::readonly_path_number("readonly_path_number", &with(r#"{"linux": {"readonlyPaths": [1]}}"#))]
#[case::sysctl_host_wide("sysctl_host_wide", &with(r#"{"linux": {"sysctl": {"vm.overcommit_memory": "1"}}}"#))]
#[case::sysctl_net_without_netns("sysctl_net_without_netns", &with(r#"{"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}"#))]
#[case::sysctl_ipc_without_ipcns("sysctl_ipc_without_ipcns", &with(r#"{"linux": {"sysctl": {"kernel.shmmax": "1"}}}"#))]
#[case::sysctl_dotdot("sysctl_dotdot", &with(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "network"}], "sysctl": {"net/../../kernel/core_pattern": "|/x"}}}"#))]
#[case::sysctl_value_number("sysctl_value_number", &with(r#"{"linux": {"namespaces": [{"type": "mount"}, {"type": "network"}], "sysctl": {"net.ipv4.ip_forward": 1}}}"#))]
#[case::cgroups_path_systemd("cgroups_path_systemd", &with(r#"{"linux": {"cgroupsPath": "system.slice:docker:abc"}}"#))]
#[case::cgroups_path_dotdot("cgroups_path_dotdot", &with(r#"{"linux": {"cgroupsPath": "/a/../../b"}}"#))]
#[case::cgroups_path_root("cgroups_path_root", &with(r#"{"linux": {"cgroupsPath": "//"}}"#))]
// linux.devices.
#[case::device_outside_dev("device_outside_dev", &with(r#"{"linux": {"devices": [{"path": "/etc/null", "type": "c", "major": 1, "minor": 3}]}}"#))]
#[case::device_dev_escape("device_dev_escape", &with(r#"{"linux": {"devices": [{"path": "/dev/../etc/x", "type": "c", "major": 1, "minor": 3}]}}"#))]
#[case::device_ptmx("device_ptmx", &with(r#"{"linux": {"devices": [{"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2}]}}"#))]
#[case::device_type_unknown("device_type_unknown", &with(r#"{"linux": {"devices": [{"path": "/dev/x", "type": "s", "major": 1, "minor": 3}]}}"#))]
#[case::device_no_major("device_no_major", &with(r#"{"linux": {"devices": [{"path": "/dev/x", "type": "c", "minor": 3}]}}"#))]
#[case::device_major_too_large("device_major_too_large", &with(r#"{"linux": {"devices": [{"path": "/dev/x", "type": "b", "major": 4096, "minor": 0}]}}"#))]
#[case::device_minor_negative("device_minor_negative", &with(r#"{"linux": {"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": -1}]}}"#))]
#[case::device_mode_other_type("device_mode_other_type", &with(r#"{"linux": {"devices": [{"path": "/dev/x", "type": "b", "major": 8, "minor": 0, "fileMode": 8630}]}}"#))]
#[case::device_twice("device_twice", &with(r#"{"linux": {"devices": [{"path": "/dev/x", "type": "p"}, {"path": "/dev//x", "type": "p"}]}}"#))]
// linux.resources.
#[case::rule_type_unknown("rule_type_unknown", &with(r#"{"linux": {"resources": {"devices": [{"allow": true, "type": "x"}]}}}"#))]
#[case::rule_access_unknown("rule_access_unknown", &with(r#"{"linux": {"resources": {"devices": [{"allow": true, "access": "rwx"}]}}}"#))]
#[case::rule_access_empty("rule_access_empty", &with(r#"{"linux": {"resources": {"devices": [{"allow": true, "access": ""}]}}}"#))]
#[case::rule_no_allow("rule_no_allow", &with(r#"{"linux": {"resources": {"devices": [{"type": "c"}]}}}"#))]
#[case::rule_major_too_large("rule_major_too_large", &with(r#"{"linux": {"resources": {"devices": [{"allow": true, "type": "c", "major": 5000}]}}}"#))]
#[case::rule_hole("rule_hole", &with(r#"{"linux": {"resources": {"devices": [{"allow": true, "type": "c", "major": 1, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]}}}"#))]
#[case::rule_hole_in_own_set("rule_hole_in_own_set", &with(r#"{"linux": {"resources": {"devices": [{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "access": "rwm"}]}}}"#))]
#[case::memory_too_little("memory_too_little", &with(r#"{"linux": {"resources": {"memory": {"limit": 4096}}}}"#))]
#[case::memory_minus_two("memory_minus_two", &with(r#"{"linux": {"resources": {"memory": {"limit": -2}}}}"#))]
#[case::memory_string("memory_string", &with(r#"{"linux": {"resources": {"memory": {"limit": "64m"}}}}"#))]
#[case::swap_without_limit("swap_without_limit", &with(r#"{"linux": {"resources": {"memory": {"swap": 1048576}}}}"#))]
#[case::swap_below_limit("swap_below_limit", &with(r#"{"linux": {"resources": {"memory": {"limit": 1048576, "swap": 524288}}}}"#))]
#[case::memory_kernel("memory_kernel", &with(r#"{"linux": {"resources": {"memory": {"kernel": 1048576}}}}"#))]
#[case::memory_kernel_tcp("memory_kernel_tcp", &with(r#"{"linux": {"resources": {"memory": {"kernelTCP": 1048576}}}}"#))]
#[case::memory_swappiness("memory_swappiness", &with(r#"{"linux": {"resources": {"memory": {"swappiness": 0}}}}"#))]
#[case::memory_disable_oom_killer("memory_disable_oom_killer", &with(r#"{"linux": {"resources": {"memory": {"disableOOMKiller": true}}}}"#))]
#[case::memory_no_hierarchy("memory_no_hierarchy", &with(r#"{"linux": {"resources": {"memory": {"useHierarchy": false}}}}"#))]
#[case::cpu_shares_low("cpu_shares_low", &with(r#"{"linux": {"resources": {"cpu": {"shares": 1}}}}"#))]
#[case::cpu_period_high("cpu_period_high", &with(r#"{"linux": {"resources": {"cpu": {"period": 1000001}}}}"#))]
#[case::cpu_quota_low("cpu_quota_low", &with(r#"{"linux": {"resources": {"cpu": {"quota": 999}}}}"#))]
#[case::cpu_burst("cpu_burst", &with(r#"{"linux": {"resources": {"cpu": {"burst": 1000}}}}"#))]
#[case::cpu_realtime("cpu_realtime", &with(r#"{"linux": {"resources": {"cpu": {"realtimeRuntime": 950000}}}}"#))]
#[case::cpu_idle("cpu_idle", &with(r#"{"linux": {"resources": {"cpu": {"idle": 1}}}}"#))]
#[case::cpus_bad("cpus_bad", &with(r#"{"linux": {"resources": {"cpu": {"cpus": "0-"}}}}"#))]
#[case::mems_bad("mems_bad", &with(r#"{"linux": {"resources": {"cpu": {"mems": "all"}}}}"#))]
#[case::pids_no_limit("pids_no_limit", &with(r#"{"linux": {"resources": {"pids": {}}}}"#))]
#[case::blkio_weight_low("blkio_weight_low", &with(r#"{"linux": {"resources": {"blockIO": {"weight": 5}}}}"#))]
#[case::blkio_leaf_weight("blkio_leaf_weight", &with(r#"{"linux": {"resources": {"blockIO": {"leafWeight": 100}}}}"#))]
#[case::blkio_throttle("blkio_throttle", &with(r#"{"linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}}}}"#))]
#[case::hugepage_size_bad("hugepage_size_bad", &with(r#"{"linux": {"resources": {"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}}}"#))]
#[case::hugepage_twice("hugepage_twice", &with(r#"{"linux": {"resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "2MB", "limit": 2}]}}}"#))]
#[case::network_class("network_class", &with(r#"{"linux": {"resources": {"network": {"classID": 1048577}}}}"#))]
#[case::rdma("rdma", &with(r#"{"linux": {"resources": {"rdma": {"mlx5_0": {"hcaHandles": 3}}}}}"#))]
#[case::unified_slash("unified_slash", &with(r#"{"linux": {"resources": {"unified": {"../memory.max": "1"}}}}"#))]
#[case::unified_cgroup_file("unified_cgroup_file", &with(r#"{"linux": {"resources": {"unified": {"cgroup.procs": "1"}}}}"#))]
#[case::unified_value_number("unified_value_number", &with(r#"{"linux": {"resources": {"unified": {"memory.high": 1}}}}"#))]
fn rejected(#[case] name: &str, #[case] text: &str) {
    let message = rejection(text);
    let prefix = format!("{PATH}: ");
    assert!(message.starts_with(&prefix), "{message}");
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(!message.ends_with('.'), "trailing period: {message}");
    let first = message[prefix.len()..].chars().next().unwrap();
    assert!(!first.is_uppercase(), "not lowercase: {message}");
    insta::assert_snapshot!(format!("rejected_{name}"), message);
}

/// Strings that reach deep into the checks when they land in the right place.
const INTERESTING: &[&str] = &[
    "",
    "1.0.2-dev",
    "1.2.0",
    "rootfs",
    "/",
    "..",
    "/dev/null",
    "/dev/ptmx",
    "/proc/sys",
    "CAP_SYS_ADMIN",
    "SYS_ADMIN",
    "RLIMIT_NOFILE",
    "mount",
    "network",
    "user",
    "bind",
    "rbind",
    "ro",
    "rro",
    "rslave",
    "mode=755",
    "tmpfs",
    "cgroup",
    "c",
    "b",
    "p",
    "rwm",
    "net.ipv4.ip_forward",
    "kernel.shmmax",
    "a:b:c",
    "LINUX32",
    "2MB",
    "memory.high",
    "0-3,6",
    "\u{0}",
];

/// Keys of runtime-spec, so generated objects hit real fields.
const KEYS: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
    "terminal",
    "consoleSize",
    "user",
    "uid",
    "gid",
    "umask",
    "args",
    "env",
    "cwd",
    "capabilities",
    "bounding",
    "rlimits",
    "type",
    "hard",
    "soft",
    "path",
    "readonly",
    "destination",
    "source",
    "options",
    "namespaces",
    "devices",
    "major",
    "minor",
    "fileMode",
    "allow",
    "access",
    "resources",
    "memory",
    "limit",
    "swap",
    "cpu",
    "pids",
    "cgroupsPath",
    "sysctl",
    "seccomp",
    "personality",
    "domain",
    "unified",
    "hugepageLimits",
    "pageSize",
    "maskedPaths",
    "timeout",
];

fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-2i64..5).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(INTERESTING).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        let key = prop::sample::select(KEYS).prop_map(String::from);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Every outcome: a config whose lowering never panics, or a one-line error for the file.
fn check_outcome(text: &str) {
    let check_error = |error: ConfigError| {
        let message = error.to_string();
        assert!(message.starts_with(PATH), "{message}");
        assert!(!message.contains('\n'), "{message}");
    };
    match read(text) {
        Ok(config) => {
            if let Err(error) = lower(&config, &site()) {
                check_error(error);
            }
        }
        Err(error) => check_error(error),
    }
}

/// Every path into a JSON value, as keys and indexes.
fn paths(value: &Value, here: Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let mut next = here.clone();
                next.push(Value::from(key.as_str()));
                paths(child, next, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let mut next = here.clone();
                next.push(Value::from(i));
                paths(child, next, out);
            }
        }
        _ => {}
    }
}

fn replace_at(value: &mut Value, path: &[Value], replacement: Value) {
    match path.split_first() {
        None => *value = replacement,
        Some((step, rest)) => {
            let next = match step {
                Value::String(key) => value.get_mut(key.as_str()),
                Value::Number(i) => value.get_mut(i.as_u64().unwrap() as usize),
                _ => None,
            };
            if let Some(next) = next {
                replace_at(next, rest, replacement);
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_outcome(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_strategy()) {
        check_outcome(&value.to_string());
    }

    #[test]
    fn config_shaped_json_never_panics(
        entries in prop::collection::vec((prop::sample::select(&KEYS[..9]), json_strategy()), 0..9)
    ) {
        let object: serde_json::Map<_, _> =
            entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        check_outcome(&Value::Object(object).to_string());
    }

    #[test]
    fn a_fixture_with_one_value_replaced_never_panics(
        fixture in prop::sample::select(fixtures::bundles()),
        pick in any::<prop::sample::Index>(),
        replacement in json_strategy(),
    ) {
        let mut json: Value = serde_json::from_str(fixture.1).unwrap();
        let mut all = Vec::new();
        paths(&json, Vec::new(), &mut all);
        let path = pick.get(&all).clone();
        replace_at(&mut json, &path, replacement);
        check_outcome(&json.to_string());
    }
}
