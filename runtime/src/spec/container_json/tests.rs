//! Tests of the container.json front-end: every accepted and rejected shape, the messages
//! as snapshots, and properties over generated configs.

use super::*;
use crate::spec::json::{closest, edit_distance};
use proptest::prelude::*;
use rstest::rstest;

/// The seed README's sample, verbatim.
const SEED: &str = r#"{ "hostname": "koye", "environment": [ "HOME=/", "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin", "container=docker", "TERM=xterm-256color" ], "namespaces": [ "NEWIPC", "NEWNS", "NEWPID", "NEWUTS", "NEWNET" ], "capabilities": [ "SETPCAP", "SYS_MODULE", "SYS_RAWIO", "SYS_PACCT", "SYS_ADMIN", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "AUDIT_WRITE", "AUDIT_CONTROL", "MAC_OVERRIDE", "MAC_ADMIN" ], "network": { "address": "172.17.0.100/16", "gateway": "172.17.42.1", "bridge": "docker0", "mtu": 1500 }, "cgroups": { "name": "docker-koye", "parent": "docker", "memory": 524800 } }"#;

const PATH: &str = "./container.json";

fn read(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new(PATH), text)
}

fn rejection(text: &str) -> String {
    match read(text) {
        Ok(config) => panic!("accepted {text}: {config:?}"),
        Err(error) => error.to_string(),
    }
}

/// The maps of a test config that lists `NEWUSER`.
const MAPS: &str = r#", "uid_mappings": [{"container_id": 0, "host_id": 100000, "size": 65536}], "gid_mappings": [{"container_id": 0, "host_id": 100000, "size": 65536}]"#;

fn user_maps(namespaces: &[Namespace]) -> Vec<crate::plan::IdMap> {
    match namespaces.contains(&Namespace::User) {
        true => vec![crate::plan::IdMap {
            container_id: 0,
            host_id: 100_000,
            size: 65_536,
        }],
        false => Vec::new(),
    }
}

fn seed_config() -> Config {
    use Capability::*;
    use Namespace::*;
    Config {
        hostname: Some("koye".into()),
        environment: vec![
            "HOME=/".into(),
            "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin".into(),
            "container=docker".into(),
            "TERM=xterm-256color".into(),
        ],
        namespaces: vec![Ipc, Mount, Pid, Uts, Net],
        capabilities: vec![
            Setpcap,
            SysModule,
            SysRawio,
            SysPacct,
            SysAdmin,
            SysNice,
            SysResource,
            SysTime,
            SysTtyConfig,
            Mknod,
            AuditWrite,
            AuditControl,
            MacOverride,
            MacAdmin,
        ],
        network: Some(Network {
            address: Ipv4Addr::new(172, 17, 0, 100),
            prefix_len: 16,
            gateway: Some(Ipv4Addr::new(172, 17, 42, 1)),
            bridge: "docker0".into(),
            mtu: 1500,
        }),
        cgroups: Some(Cgroups {
            name: "docker-koye".into(),
            parent: Some("docker".into()),
            memory: Some(524_800),
            memory_swap: None,
            cpu_shares: None,
        }),
        security: Security::default(),
        uid_mappings: Vec::new(),
        gid_mappings: Vec::new(),
    }
}

#[test]
fn the_seed_sample_parses_to_what_it_says() {
    assert_eq!(read(SEED).unwrap(), seed_config());
}

#[test]
fn the_seed_sample_here_is_the_fixture_byte_for_byte() {
    assert_eq!(SEED, fixtures::SEED.trim_end());
}

#[test]
fn the_seed_sample_path_value_is_taken_literally() {
    let config = read(SEED).unwrap();
    let path = config
        .environment
        .iter()
        .find(|e| e.starts_with("PATH="))
        .unwrap();
    assert_eq!(path, "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin");
}

#[test]
fn an_empty_object_is_the_default_config() {
    assert_eq!(read("{}").unwrap(), Config::default());
}

#[test]
fn mtu_defaults_to_1500_and_gateway_to_none() {
    let config = read(
        r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0"}}"#,
    )
    .unwrap();
    let network = config.network.unwrap();
    assert_eq!((network.mtu, network.gateway), (DEFAULT_MTU, None));
}

#[test]
fn cgroups_path_joins_parent_and_name() {
    let config = read(r#"{"cgroups": {"name": "c1", "parent": "docker/sub"}}"#).unwrap();
    assert_eq!(config.cgroups.unwrap().path(), Path::new("docker/sub/c1"));
    let config = read(r#"{"cgroups": {"name": "c1"}}"#).unwrap();
    assert_eq!(config.cgroups.unwrap().path(), Path::new("c1"));
}

#[test]
fn has_answers_for_listed_namespaces_only() {
    let config = read(&format!(r#"{{"namespaces": ["NEWNS", "NEWUSER"]{MAPS}}}"#)).unwrap();
    assert!(config.has(Namespace::Mount) && config.has(Namespace::User));
    assert!(!config.has(Namespace::Pid));
}

#[test]
fn namespaces_keep_file_order() {
    let config = read(r#"{"namespaces": ["NEWPID", "NEWCGROUP", "NEWNS"]}"#).unwrap();
    let order = [Namespace::Pid, Namespace::Cgroup, Namespace::Mount];
    assert_eq!(config.namespaces, order);
}

#[test]
fn to_json_writes_the_seed_back_in_its_shape() {
    let json = seed_config().to_json();
    insta::assert_snapshot!("seed_to_json", json);
    assert_eq!(read(&json).unwrap(), seed_config());
}

#[test]
fn every_good_fixture_parses() {
    for (name, text) in fixtures::configs() {
        if !name.starts_with("bad-") {
            assert!(read(text).is_ok(), "{name}: {:?}", read(text));
        }
    }
}

/// The plan of every good fixture, as the engine and the state record see it.
#[test]
fn every_good_fixture_lowers_to_its_plan() {
    let site = Site {
        rootfs: Path::new("/srv/containers/c1"),
        id: "fe01-2a",
        rootless: false,
    };
    for (name, text) in fixtures::configs() {
        if name.starts_with("bad-") {
            continue;
        }
        let plan = lower(&read(text).unwrap(), &site);
        let json = serde_json::to_string_pretty(&plan).unwrap();
        insta::assert_snapshot!(format!("plan_{name}"), json);
        let recorded: crate::plan::Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(recorded, plan, "{name}: the plan survives the state record");
    }
}

#[test]
fn each_protection_can_be_turned_off_alone() {
    let site = Site {
        rootfs: Path::new("/c"),
        id: "1-2",
        rootless: false,
    };
    let on = lower(&read("{}").unwrap(), &site);
    assert!(on.process.no_new_privileges && on.rootfs_nodev);
    assert_eq!(on.masked_paths.len(), MASKED_PATHS.len());
    assert_eq!(on.readonly_paths.len(), READONLY_PATHS.len());
    let off = |field: &str| {
        lower(
            &read(&format!(r#"{{"security": {{"{field}": false}}}}"#)).unwrap(),
            &site,
        )
    };
    assert!(off("masked_paths").masked_paths.is_empty());
    assert!(off("readonly_paths").readonly_paths.is_empty());
    assert!(!off("devices").rootfs_nodev);
    assert!(!off("no_new_privileges").process.no_new_privileges);
    for field in [
        "masked_paths",
        "readonly_paths",
        "devices",
        "no_new_privileges",
    ] {
        let plan = off(field);
        assert_eq!(plan.mounts, on.mounts, "{field} changes nothing else");
        assert_eq!(plan.devices, on.devices, "{field} changes nothing else");
    }
    let explicit = lower(&read(r#"{"security": {"seccomp": true}}"#).unwrap(), &site);
    assert_eq!(explicit, on, "true is the default");
}

#[test]
fn every_bad_fixture_names_its_field_and_value() {
    for case in fixtures::BAD_CASES {
        let message = rejection(case.config());
        assert_eq!(
            case.missing_from(&message),
            None,
            "{}: {message}",
            case.name
        );
    }
}

#[test]
fn the_error_names_the_path_as_given() {
    let error = parse(Path::new("/srv/c1/container.json"), "[]").unwrap_err();
    assert_eq!(error.path(), Path::new("/srv/c1/container.json"));
    assert!(error
        .to_string()
        .starts_with("/srv/c1/container.json: expected an object"));
}

#[test]
fn the_error_exposes_field_and_kind() {
    let error = read(r#"{"namespaces": ["NEWNS", "NEWNS"]}"#).unwrap_err();
    assert_eq!(error.field(), "namespaces[1]");
    assert!(matches!(error.kind(), ErrorKind::ListedTwice { .. }));
}

#[test]
fn a_byte_order_mark_is_ignored() {
    assert_eq!(read("\u{feff}{}").unwrap(), Config::default());
}

#[test]
fn deep_nesting_is_a_json_error_not_a_stack_overflow() {
    let text = format!("{{\"hostname\": {}", "[".repeat(100_000));
    let message = rejection(&text);
    insta::assert_snapshot!("rejected_json_too_deep", message);
}

#[test]
fn namespace_flags_and_names_match_the_kernel() {
    let table: Vec<_> = Namespace::ALL
        .iter()
        .map(|ns| (ns.json_name(), ns.proc_name(), ns.clone_flag()))
        .collect();
    assert_eq!(
        table,
        [
            ("NEWIPC", "ipc", libc::CLONE_NEWIPC),
            ("NEWNS", "mnt", libc::CLONE_NEWNS),
            ("NEWPID", "pid", libc::CLONE_NEWPID),
            ("NEWUTS", "uts", libc::CLONE_NEWUTS),
            ("NEWNET", "net", libc::CLONE_NEWNET),
            ("NEWUSER", "user", libc::CLONE_NEWUSER),
            ("NEWCGROUP", "cgroup", libc::CLONE_NEWCGROUP),
        ]
    );
    for ns in Namespace::ALL {
        assert_eq!(Namespace::from_json_name(ns.json_name()), Some(ns));
    }
}

#[test]
fn capabilities_are_numbered_as_in_the_kernel() {
    for (n, cap) in Capability::ALL.iter().enumerate() {
        assert_eq!(usize::from(cap.number()), n, "{}", cap.name());
        assert_eq!(Capability::from_name(cap.name()), Some(*cap));
    }
    let named = |name| Capability::from_name(name).map(Capability::number);
    assert_eq!(named("CHOWN"), Some(0));
    assert_eq!(named("SYS_ADMIN"), Some(21));
    assert_eq!(named("CHECKPOINT_RESTORE"), Some(40));
    assert_eq!(named("CAP_SYS_ADMIN"), None);
    assert_eq!(named("sys_admin"), None);
}

#[test]
fn capability_names_agree_with_the_caps_crate() {
    for cap in Capability::ALL {
        let theirs: caps::Capability = format!("CAP_{}", cap.name()).parse().unwrap();
        assert_eq!(theirs.index(), cap.number(), "{}", cap.name());
    }
}

#[rstest]
#[case::hostname("hostnme", &TOP_FIELDS, Some("hostname"))]
#[case::case_only("Hostname", &TOP_FIELDS, Some("hostname"))]
#[case::swap("memoryswap", &CGROUPS_FIELDS, Some("memory_swap"))]
#[case::far("rootfs", &TOP_FIELDS, None)]
#[case::one_letter("x", &NETWORK_FIELDS, None)]
fn closest_suggests_only_near_names(
    #[case] input: &str,
    #[case] known: &'static [&'static str],
    #[case] expected: Option<&str>,
) {
    assert_eq!(
        closest(input, known.iter().map(|&k| (k.to_string(), k))),
        expected
    );
}

#[rstest]
#[case("", "", 0)]
#[case("kitten", "sitting", 3)]
#[case("NEWMNT", "NEWNS", 2)]
#[case("gatway", "gateway", 1)]
fn edit_distance_is_levenshtein(#[case] a: &str, #[case] b: &str, #[case] distance: usize) {
    assert_eq!(edit_distance(a, b), distance);
    assert_eq!(edit_distance(b, a), distance);
}

#[rstest]
#[case::empty_object("{}")]
#[case::seed(SEED)]
#[case::whitespace_around(" \n\t{ }\n")]
#[case::empty_lists(r#"{"environment": [], "namespaces": [], "capabilities": []}"#)]
#[case::newuser_and_newcgroup(&format!(r#"{{"namespaces": ["NEWUSER", "NEWCGROUP"]{MAPS}}}"#))]
#[case::every_namespace(&format!(
    r#"{{"namespaces": ["NEWIPC","NEWNS","NEWPID","NEWUTS","NEWNET","NEWUSER","NEWCGROUP"]{MAPS}}}"#
))]
#[case::hostname_with_dots(r#"{"namespaces": ["NEWUTS"], "hostname": "web-1.example.org"}"#)]
#[case::hostname_64_bytes(
    r#"{"namespaces": ["NEWUTS"], "hostname": "a123456789b123456789c123456789d123456789e123456789f123456789abcd"}"#
)]
#[case::env_empty_value(r#"{"environment": ["EMPTY="]}"#)]
#[case::env_equals_in_value(r#"{"environment": ["A=b=c", "B==", "C=$A"]}"#)]
#[case::env_unicode(r#"{"environment": ["GRÜSSE=grüß gott"]}"#)]
#[case::newest_capability(r#"{"capabilities": ["CHECKPOINT_RESTORE", "CHOWN", "BPF"]}"#)]
#[case::no_gateway(
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.1.2.3/8", "bridge": "br0"}}"#
)]
#[case::prefix_31(
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.0/31", "gateway": "10.0.0.1", "bridge": "br0"}}"#
)]
#[case::prefix_32(
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.7/32", "bridge": "br0"}}"#
)]
#[case::prefix_0(
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.7/0", "gateway": "192.168.0.1", "bridge": "br0"}}"#
)]
#[case::mtu_68(r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": 68}}"#)]
#[case::mtu_65535(
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": 65535}}"#
)]
#[case::bridge_15_bytes(
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br-0123456789ab"}}"#
)]
#[case::cgroup_name_only(r#"{"cgroups": {"name": "c1"}}"#)]
#[case::cgroup_nested_parent(r#"{"cgroups": {"name": "c1", "parent": "docker/sub.slice"}}"#)]
#[case::cgroup_dots_in_names(r#"{"cgroups": {"name": "...", "parent": "a.b/.c"}}"#)]
#[case::cgroup_2014_fields(
    r#"{"cgroups": {"name": "c1", "memory": 1048576, "memory_swap": 2097152, "cpu_shares": 512}}"#
)]
#[case::cgroup_swap_unlimited(
    r#"{"cgroups": {"name": "c1", "memory": 1048576, "memory_swap": -1}}"#
)]
#[case::cgroup_swap_equal_memory(
    r#"{"cgroups": {"name": "c1", "memory": 65536, "memory_swap": 65536}}"#
)]
#[case::cgroup_largest_memory(r#"{"cgroups": {"name": "c1", "memory": 18446744073709551615}}"#)]
#[case::security_empty(r#"{"security": {}}"#)]
#[case::security_all_off(
    r#"{"security": {"masked_paths": false, "readonly_paths": false, "devices": false, "seccomp": false, "no_new_privileges": false}}"#
)]
#[case::security_one_off(r#"{"security": {"seccomp": false}}"#)]
fn accepted(#[case] text: &str) {
    let config = read(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read(&config.to_json()).unwrap(), config);
}

/// Every distinct message, by case name; the snapshot is `rejected_<name>`.
#[rstest]
// The file as a whole.
#[case::json_syntax(
    "json_syntax",
    "{\n  \"hostname\": \"koye\"\n  \"namespaces\": [ \"NEWNS\", \"NEWUTS\" ]\n}"
)]
#[case::json_empty("json_empty", "")]
#[case::json_trailing("json_trailing", "{} {}")]
#[case::json_lone_surrogate("json_lone_surrogate", r#"{"hostname": "\ud800"}"#)]
#[case::json_huge_number("json_huge_number", r#"{"cgroups": {"name": "c", "memory": 1e400}}"#)]
#[case::top_not_object("top_not_object", "[]")]
#[case::unknown_field_did_you_mean("unknown_field_did_you_mean", r#"{"hostnme": "koye"}"#)]
#[case::unknown_field_list("unknown_field_list", r#"{"rootfs": "/"}"#)]
#[case::unknown_network_field(
    "unknown_network_field",
    r#"{"namespaces": ["NEWNET"], "network": {"address": "172.17.0.100/16", "bridge": "docker0", "gatway": "172.17.42.1"}}"#
)]
#[case::unknown_cgroups_field(
    "unknown_cgroups_field",
    r#"{"cgroups": {"name": "c1", "memroy": 4096}}"#
)]
#[case::duplicate_field(
    "duplicate_field",
    r#"{"namespaces": ["NEWUTS"], "hostname": "a", "hostname": "b"}"#
)]
#[case::missing_address(
    "missing_address",
    r#"{"namespaces": ["NEWNET"], "network": {"bridge": "docker0"}}"#
)]
#[case::missing_bridge(
    "missing_bridge",
    r#"{"namespaces": ["NEWNET"], "network": {"address": "172.17.0.100/16"}}"#
)]
#[case::missing_cgroup_name("missing_cgroup_name", r#"{"cgroups": {"parent": "docker"}}"#)]
// Types.
#[case::hostname_number("hostname_number", r#"{"namespaces": ["NEWUTS"], "hostname": 42}"#)]
#[case::hostname_null("hostname_null", r#"{"namespaces": ["NEWUTS"], "hostname": null}"#)]
#[case::environment_string("environment_string", r#"{"environment": "HOME=/"}"#)]
#[case::namespace_number("namespace_number", r#"{"namespaces": ["NEWNS", "NEWPID", 3]}"#)]
#[case::capability_object("capability_object", r#"{"capabilities": [{"name": "MKNOD"}]}"#)]
#[case::network_string("network_string", r#"{"namespaces": ["NEWNET"], "network": "bridge"}"#)]
#[case::cgroups_array("cgroups_array", r#"{"cgroups": ["docker"]}"#)]
#[case::mtu_fraction(
    "mtu_fraction",
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": 1500.5}}"#
)]
#[case::mtu_string(
    "mtu_string",
    r#"{"namespaces": ["NEWNET"], "network": {"address": "10.0.0.2/24", "bridge": "br0", "mtu": "1500"}}"#
)]
#[case::memory_string("memory_string", r#"{"cgroups": {"name": "c1", "memory": "512m"}}"#)]
#[case::swap_bool("swap_bool", r#"{"cgroups": {"name": "c1", "memory_swap": true}}"#)]
// hostname.
#[case::hostname_empty("hostname_empty", r#"{"namespaces": ["NEWUTS"], "hostname": ""}"#)]
#[case::hostname_too_long("hostname_too_long", &format!(r#"{{"namespaces": ["NEWUTS"], "hostname": "{}"}}"#, "k".repeat(65)))]
#[case::hostname_space("hostname_space", r#"{"namespaces": ["NEWUTS"], "hostname": "ko ye"}"#)]
#[case::hostname_underscore(
    "hostname_underscore",
    r#"{"namespaces": ["NEWUTS"], "hostname": "koye_1"}"#
)]
#[case::hostname_newline(
    "hostname_newline",
    r#"{"namespaces": ["NEWUTS"], "hostname": "ko\nye"}"#
)]
#[case::hostname_leading_hyphen(
    "hostname_leading_hyphen",
    r#"{"namespaces": ["NEWUTS"], "hostname": "-koye"}"#
)]
#[case::hostname_label_hyphen(
    "hostname_label_hyphen",
    r#"{"namespaces": ["NEWUTS"], "hostname": "koye-.org"}"#
)]
#[case::hostname_trailing_dot(
    "hostname_trailing_dot",
    r#"{"namespaces": ["NEWUTS"], "hostname": "koye."}"#
)]
#[case::hostname_without_newuts(
    "hostname_without_newuts",
    r#"{"namespaces": ["NEWNS"], "hostname": "koye"}"#
)]
// environment.
#[case::env_no_equals("env_no_equals", r#"{"environment": ["HOME=/", "NO_EQUALS_SIGN"]}"#)]
#[case::env_empty_name("env_empty_name", r#"{"environment": ["=value"]}"#)]
#[case::env_nul("env_nul", r#"{"environment": ["A=x\u0000y"]}"#)]
#[case::env_duplicate(
    "env_duplicate",
    r#"{"environment": ["HOME=/", "TERM=xterm", "HOME=/root"]}"#
)]
// namespaces.
#[case::namespace_newmnt("namespace_newmnt", r#"{"namespaces": ["NEWMNT"]}"#)]
#[case::namespace_lowercase("namespace_lowercase", r#"{"namespaces": ["newpid"]}"#)]
#[case::namespace_clone_prefix("namespace_clone_prefix", r#"{"namespaces": ["CLONE_NEWNET"]}"#)]
#[case::namespace_unknown("namespace_unknown", r#"{"namespaces": ["NEWTIME"]}"#)]
#[case::namespace_twice(
    "namespace_twice",
    r#"{"namespaces": ["NEWIPC", "NEWNS", "NEWPID", "NEWPID"]}"#
)]
// capabilities.
#[case::capability_prefix("capability_prefix", r#"{"capabilities": ["CAP_SYS_ADMIN"]}"#)]
#[case::capability_prefix_lowercase(
    "capability_prefix_lowercase",
    r#"{"capabilities": ["cap_net_raw"]}"#
)]
#[case::capability_typo("capability_typo", r#"{"capabilities": ["SYS_ADMN"]}"#)]
#[case::capability_typo_with_prefix(
    "capability_typo_with_prefix",
    r#"{"capabilities": ["CAP_SYS_ADMN"]}"#
)]
#[case::capability_unknown("capability_unknown", r#"{"capabilities": ["FLY"]}"#)]
#[case::capability_twice(
    "capability_twice",
    r#"{"capabilities": ["MKNOD", "SYS_ADMIN", "MKNOD"]}"#
)]
// network.
#[case::network_without_newnet(
    "network_without_newnet",
    r#"{"namespaces": ["NEWNS"], "network": {"address": "172.17.0.100/16", "bridge": "docker0"}}"#
)]
#[case::address_bad_octet("address_bad_octet", &network_with(r#""address": "172.17.0.300/16""#))]
#[case::address_no_prefix("address_no_prefix", &network_with(r#""address": "172.17.0.100""#))]
#[case::address_prefix_33("address_prefix_33", &network_with(r#""address": "172.17.0.100/33""#))]
#[case::address_prefix_leading_zero("address_prefix_leading_zero", &network_with(r#""address": "172.17.0.100/016""#))]
#[case::address_hostname("address_hostname", &network_with(r#""address": "docker""#))]
#[case::address_ipv6("address_ipv6", &network_with(r#""address": "fd00::2/64""#))]
#[case::address_network("address_network", &network_with(r#""address": "172.17.0.0/16""#))]
#[case::address_broadcast("address_broadcast", &network_with(r#""address": "172.17.255.255/16""#))]
#[case::gateway_bad_octet("gateway_bad_octet", &network_with(r#""gateway": "172.17.42.256""#))]
#[case::gateway_with_prefix("gateway_with_prefix", &network_with(r#""gateway": "172.17.42.1/16""#))]
#[case::gateway_outside("gateway_outside", &network_with(r#""gateway": "10.0.0.1""#))]
#[case::gateway_is_address("gateway_is_address", &network_with(r#""gateway": "172.17.0.100""#))]
#[case::gateway_broadcast("gateway_broadcast", &network_with(r#""gateway": "172.17.255.255""#))]
#[case::bridge_empty("bridge_empty", &network_with(r#""bridge": """#))]
#[case::bridge_too_long("bridge_too_long", &network_with(r#""bridge": "bridge-name-too-long""#))]
#[case::bridge_slash("bridge_slash", &network_with(r#""bridge": "br/0""#))]
#[case::bridge_space("bridge_space", &network_with(r#""bridge": "br 0""#))]
#[case::bridge_colon("bridge_colon", &network_with(r#""bridge": "br0:1""#))]
#[case::bridge_dotdot("bridge_dotdot", &network_with(r#""bridge": "..""#))]
#[case::mtu_low("mtu_low", &network_with(r#""mtu": 67"#))]
#[case::mtu_high("mtu_high", &network_with(r#""mtu": 65536"#))]
#[case::mtu_negative("mtu_negative", &network_with(r#""mtu": -1500"#))]
// cgroups.
#[case::cgroup_name_empty("cgroup_name_empty", r#"{"cgroups": {"name": ""}}"#)]
#[case::cgroup_name_dotdot("cgroup_name_dotdot", r#"{"cgroups": {"name": "../escape"}}"#)]
#[case::cgroup_name_dot("cgroup_name_dot", r#"{"cgroups": {"name": "."}}"#)]
#[case::cgroup_name_two_components(
    "cgroup_name_two_components",
    r#"{"cgroups": {"name": "docker/koye"}}"#
)]
#[case::cgroup_name_absolute("cgroup_name_absolute", r#"{"cgroups": {"name": "/koye"}}"#)]
#[case::cgroup_name_nul("cgroup_name_nul", r#"{"cgroups": {"name": "ko\u0000ye"}}"#)]
#[case::cgroup_name_too_long("cgroup_name_too_long", &format!(r#"{{"cgroups": {{"name": "{}"}}}}"#, "c".repeat(256)))]
#[case::cgroup_parent_empty("cgroup_parent_empty", r#"{"cgroups": {"name": "c1", "parent": ""}}"#)]
#[case::cgroup_parent_absolute(
    "cgroup_parent_absolute",
    r#"{"cgroups": {"name": "c1", "parent": "/sys/fs/cgroup"}}"#
)]
#[case::cgroup_parent_dotdot(
    "cgroup_parent_dotdot",
    r#"{"cgroups": {"name": "c1", "parent": "docker/../../escape"}}"#
)]
#[case::cgroup_parent_dot(
    "cgroup_parent_dot",
    r#"{"cgroups": {"name": "c1", "parent": "./docker"}}"#
)]
#[case::cgroup_parent_double_slash(
    "cgroup_parent_double_slash",
    r#"{"cgroups": {"name": "c1", "parent": "docker//sub"}}"#
)]
#[case::cgroup_parent_trailing_slash(
    "cgroup_parent_trailing_slash",
    r#"{"cgroups": {"name": "c1", "parent": "docker/"}}"#
)]
#[case::memory_zero("memory_zero", r#"{"cgroups": {"name": "c1", "memory": 0}}"#)]
#[case::memory_too_little("memory_too_little", r#"{"cgroups": {"name": "c1", "memory": 8192}}"#)]
#[case::memory_negative("memory_negative", r#"{"cgroups": {"name": "c1", "memory": -524800}}"#)]
#[case::memory_fraction("memory_fraction", r#"{"cgroups": {"name": "c1", "memory": 1.5e6}}"#)]
#[case::memory_too_large(
    "memory_too_large",
    r#"{"cgroups": {"name": "c1", "memory": 18446744073709551616}}"#
)]
#[case::swap_zero("swap_zero", r#"{"cgroups": {"name": "c1", "memory_swap": 0}}"#)]
#[case::swap_minus_two("swap_minus_two", r#"{"cgroups": {"name": "c1", "memory_swap": -2}}"#)]
#[case::swap_below_memory(
    "swap_below_memory",
    r#"{"cgroups": {"name": "c1", "memory": 524800, "memory_swap": 4096}}"#
)]
#[case::cpu_shares_low("cpu_shares_low", r#"{"cgroups": {"name": "c1", "cpu_shares": 1}}"#)]
#[case::cpu_shares_high(
    "cpu_shares_high",
    r#"{"cgroups": {"name": "c1", "cpu_shares": 262145}}"#
)]
#[case::security_not_object("security_not_object", r#"{"security": false}"#)]
#[case::security_unknown(
    "security_unknown",
    r#"{"security": {"seccomp": false, "apparmor": false}}"#
)]
#[case::security_typo("security_typo", r#"{"security": {"no_new_privs": false}}"#)]
#[case::security_string("security_string", r#"{"security": {"devices": "off"}}"#)]
#[case::security_twice(
    "security_twice",
    r#"{"security": {"devices": false, "devices": true}}"#
)]
fn rejected(#[case] name: &str, #[case] text: &str) {
    let message = rejection(text);
    assert!(message.starts_with("./container.json: "), "{message}");
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(!message.ends_with('.'), "trailing period: {message}");
    let first = message["./container.json: ".len()..]
        .chars()
        .next()
        .unwrap();
    assert!(!first.is_uppercase(), "not lowercase: {message}");
    insta::assert_snapshot!(format!("rejected_{name}"), message);
}

/// The seed's network section with one field replaced or added.
fn network_with(field: &str) -> String {
    let key = &field[..field.find(':').unwrap()];
    let mut fields = vec![
        r#""address": "172.17.0.100/16""#,
        r#""gateway": "172.17.42.1""#,
        r#""bridge": "docker0""#,
        r#""mtu": 1500"#,
    ];
    fields.retain(|f| !f.starts_with(key));
    fields.push(field);
    format!(
        r#"{{"namespaces": ["NEWNET"], "network": {{{}}}}}"#,
        fields.join(", ")
    )
}

fn hostname_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?){0,3}"
}

fn environment_strategy() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_map("[^=\\x00]{1,12}", "[^\\x00]{0,20}", 0..6)
        .prop_map(|vars| vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

fn network_strategy() -> impl Strategy<Value = Network> {
    let bridge = "[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,14}";
    (
        any::<u32>(),
        0u8..=32,
        prop::option::of(any::<u32>()),
        bridge,
        MTU_RANGE,
    )
        .prop_filter_map(
            "the address must be a host address",
            |(address, prefix_len, gateway, bridge, mtu)| {
                let address = Ipv4Addr::from(address);
                if reserved_role(address, prefix_len).is_some() {
                    return None;
                }
                let inside = |bits: u32| {
                    let net = u32::from(address) & mask(prefix_len);
                    Ipv4Addr::from(net | (bits & !mask(prefix_len)))
                };
                let gateway = gateway
                    .map(inside)
                    .filter(|&g| g != address && reserved_role(g, prefix_len).is_none());
                Some(Network {
                    address,
                    prefix_len,
                    gateway,
                    bridge,
                    mtu,
                })
            },
        )
}

fn cgroups_strategy() -> impl Strategy<Value = Cgroups> {
    let component = "[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,15}";
    let parent = prop::collection::vec(component, 1..4).prop_map(|parts| parts.join("/"));
    let swap = prop::option::of(prop::option::of(0..=i64::MAX));
    (
        component,
        prop::option::of(parent),
        prop::option::of(crate::cgroups::MIN_MEMORY..=u64::MAX),
        swap,
        prop::option::of(CPU_SHARES_RANGE),
    )
        .prop_map(|(name, parent, memory, swap, cpu_shares)| {
            // `Some(None)` is unlimited; `Some(Some(extra))` is memory plus extra.
            let memory_swap = swap.map(|extra| {
                let base = i64::try_from(memory.unwrap_or(1)).ok();
                extra
                    .and_then(|extra| base?.checked_add(extra))
                    .unwrap_or(-1)
            });
            Cgroups {
                name,
                parent,
                memory,
                memory_swap,
                cpu_shares,
            }
        })
}

fn config_strategy() -> impl Strategy<Value = Config> {
    let namespaces = prop::sample::subsequence(Namespace::ALL.to_vec(), 0..=7).prop_shuffle();
    namespaces.prop_flat_map(|namespaces| {
        let hostname = if namespaces.contains(&Namespace::Uts) {
            prop::option::of(hostname_strategy()).boxed()
        } else {
            Just(None).boxed()
        };
        let network = if namespaces.contains(&Namespace::Net) {
            prop::option::of(network_strategy()).boxed()
        } else {
            Just(None).boxed()
        };
        let capabilities =
            prop::sample::subsequence(Capability::ALL.to_vec(), 0..=41).prop_shuffle();
        (
            Just(namespaces),
            hostname,
            environment_strategy(),
            capabilities,
            network,
            prop::option::of(cgroups_strategy()),
            prop::array::uniform5(any::<bool>()),
        )
            .prop_map(
                |(namespaces, hostname, environment, capabilities, network, cgroups, on)| {
                    let namespaces_too = namespaces.clone();
                    Config {
                        hostname,
                        environment,
                        namespaces,
                        capabilities,
                        network,
                        cgroups,
                        security: Security {
                            masked_paths: on[0],
                            readonly_paths: on[1],
                            devices: on[2],
                            seccomp: on[3],
                            no_new_privileges: on[4],
                        },
                        uid_mappings: user_maps(&namespaces_too),
                        gid_mappings: user_maps(&namespaces_too),
                    }
                },
            )
    })
}

/// Strings that reach deep into validation when they land in the right place.
const INTERESTING: &[&str] = &[
    "",
    "koye",
    "-koye",
    "HOME=/",
    "=x",
    "NEWNS",
    "NEWNET",
    "NEWUTS",
    "NEWMNT",
    "SYS_ADMIN",
    "CAP_SYS_ADMIN",
    "172.17.0.100/16",
    "172.17.42.1",
    "172.17.0.0/16",
    "10.0.0.1",
    "1.2.3.4/99",
    "docker0",
    "docker",
    "../escape",
    "/abs",
    "a//b",
    "\u{0}",
    "é",
];

fn json_strategy() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(INTERESTING).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    let keys: Vec<&str> = TOP_FIELDS
        .iter()
        .chain(&NETWORK_FIELDS)
        .chain(&CGROUPS_FIELDS)
        .copied()
        .chain(["hostnme", "", "é"])
        .collect();
    leaf.prop_recursive(4, 48, 8, move |inner| {
        let key = prop::sample::select(keys.clone()).prop_map(String::from);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Top-level objects with the right keys, so values reach their checks.
fn config_like_strategy() -> impl Strategy<Value = String> {
    let key = prop::sample::select(TOP_FIELDS.to_vec());
    prop::collection::vec((key, json_strategy()), 0..7).prop_map(|entries| {
        let object: serde_json::Map<_, _> = entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        serde_json::Value::Object(object).to_string()
    })
}

/// Every outcome of parsing: a config that round-trips, or a one-line error for the file.
fn check_outcome(text: &str) {
    match read(text) {
        Ok(config) => assert_eq!(read(&config.to_json()).unwrap(), config),
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with("./container.json: "), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}

proptest! {
    #[test]
    fn any_valid_config_survives_a_json_round_trip(config in config_strategy()) {
        let json = config.to_json();
        prop_assert_eq!(read(&json).map_err(|e| e.to_string()), Ok(config));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_outcome(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn json_token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(vec![
        "{", "}", "[", "]", ",", ":", "\"hostname\"", "\"network\"", "\"cgroups\"", "\"namespaces\"",
        "\"NEWNET\"", "\"address\"", "\"10.0.0.1/8\"", "1500", "-1", "1e999", "0.5", "null", "true",
        "\"\\ud800\"", " ", "\n",
    ]), 0..48)) {
        check_outcome(&tokens.concat());
    }

    #[test]
    fn config_shaped_json_never_panics(text in config_like_strategy()) {
        check_outcome(&text);
    }

    #[test]
    fn a_valid_config_with_one_value_replaced_never_panics(
        config in config_strategy(),
        field in prop::sample::select(vec!["hostname", "environment", "namespaces", "capabilities", "network", "cgroups"]),
        replacement in json_strategy(),
    ) {
        let mut json: serde_json::Value = serde_json::from_str(&config.to_json()).unwrap();
        json[field] = replacement;
        check_outcome(&json.to_string());
    }
}
