//! Rule parsing and validation, the lowering to a policy, the v1 writes against temp
//! directories, and the generated program: its listing as a snapshot, and its verdicts run
//! through a small eBPF interpreter against the policy and against "last match wins".

use std::fs;

use proptest::prelude::*;
use rstest::rstest;

use super::*;
use crate::cgroups::{Cgroup, CgroupError, Hierarchy, Limits};

fn rules(json: &str) -> Vec<DeviceRule> {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn listed(rules: &[DeviceRule]) -> Vec<String> {
    rules.iter().map(ToString::to_string).collect()
}

#[rstest]
#[case::deny_all(r#"{"allow": false, "type": "a", "access": "rwm"}"#, "deny a *:* rwm")]
#[case::absent_type_and_access_mean_all(r#"{"allow": false}"#, "deny a *:* rwm")]
#[case::one_char_device(
    r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}"#,
    "allow c 1:3 rwm"
)]
#[case::any_minor_letters_in_any_order(
    r#"{"allow": true, "type": "c", "major": 136, "access": "wr"}"#,
    "allow c 136:* rw"
)]
#[case::mknod_any_block(r#"{"allow": true, "type": "b", "access": "m"}"#, "allow b *:* m")]
#[case::repeated_letters(r#"{"allow": true, "type": "c", "access": "rrm"}"#, "allow c *:* rm")]
#[case::null_major_is_any(
    r#"{"allow": true, "type": "c", "major": null, "minor": 5, "access": "r"}"#,
    "allow c *:5 r"
)]
#[case::largest_numbers(
    r#"{"allow": true, "type": "b", "major": 4095, "minor": 1048575, "access": "w"}"#,
    "allow b 4095:1048575 w"
)]
fn accepted(#[case] json: &str, #[case] shown: &str) {
    let rule: DeviceRule = serde_json::from_str(json).unwrap();
    assert_eq!(rule.to_string(), shown);
}

#[rstest]
#[case("type_x", r#"{"allow": true, "type": "x"}"#)]
#[case("type_fifo", r#"{"allow": true, "type": "p", "major": 1, "minor": 3}"#)]
#[case("access_x", r#"{"allow": true, "type": "c", "access": "rwx"}"#)]
#[case("access_uppercase", r#"{"allow": true, "type": "c", "access": "R"}"#)]
#[case("access_empty", r#"{"allow": true, "type": "c", "access": ""}"#)]
#[case("major_negative", r#"{"allow": true, "type": "c", "major": -1}"#)]
#[case("major_too_big", r#"{"allow": true, "type": "c", "major": 4096}"#)]
#[case(
    "minor_too_big",
    r#"{"allow": true, "type": "c", "major": 1, "minor": 1048576}"#
)]
#[case("unknown_field", r#"{"allow": true, "path": "/dev/null"}"#)]
#[case("no_allow", r#"{"type": "c", "access": "r"}"#)]
fn rejected(#[case] name: &str, #[case] json: &str) {
    let message = serde_json::from_str::<DeviceRule>(json)
        .unwrap_err()
        .to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    insta::assert_snapshot!(format!("rejected_{name}"), message);
}

#[rstest]
#[case::type_(
    "q",
    "r",
    r#"device rule type "q": not a (all), c (char) or b (block)"#
)]
#[case::access(
    "c",
    "rw ",
    r#"device rule access "rw ": ' ' is not r (read), w (write) or m (mknod)"#
)]
fn new_names_the_bad_value(#[case] kind: &str, #[case] access: &str, #[case] message: &str) {
    let error = DeviceRule::new(true, kind, None, None, access).unwrap_err();
    assert_eq!(error.to_string(), message);
}

#[test]
fn default_rules_deny_all_then_allow_mknod_and_the_dev_set() {
    insta::assert_debug_snapshot!(listed(&default_rules()), @r#"
    [
        "deny a *:* rwm",
        "allow c *:* m",
        "allow b *:* m",
        "allow c 1:3 rwm",
        "allow c 1:5 rwm",
        "allow c 1:7 rwm",
        "allow c 1:8 rwm",
        "allow c 1:9 rwm",
        "allow c 5:0 rwm",
        "allow c 5:1 rwm",
        "allow c 5:2 rwm",
        "allow c 136:* rwm",
    ]
    "#);
}

#[test]
fn rules_serialize_as_oci_json_and_read_back_the_same() {
    let defaults = default_rules();
    let json = serde_json::to_string(&defaults[..4]).unwrap();
    insta::assert_snapshot!(json, @r#"[{"allow":false,"type":"a","access":"rwm"},{"allow":true,"type":"c","access":"m"},{"allow":true,"type":"b","access":"m"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]"#);
    let all = serde_json::to_string(&defaults).unwrap();
    assert_eq!(rules(&all), defaults);
}

fn writes(rules: &[DeviceRule]) -> Vec<String> {
    let policy = DevicePolicy::new(rules).unwrap();
    policy
        .v1_writes()
        .into_iter()
        .map(|(file, entry)| format!("{file} {entry}"))
        .collect()
}

#[test]
fn v1_writes_reset_first_then_only_allow() {
    insta::assert_debug_snapshot!(writes(&default_rules()), @r#"
    [
        "devices.deny a",
        "devices.allow c *:* m",
        "devices.allow b *:* m",
        "devices.allow c 1:3 rwm",
        "devices.allow c 1:5 rwm",
        "devices.allow c 1:7 rwm",
        "devices.allow c 1:8 rwm",
        "devices.allow c 1:9 rwm",
        "devices.allow c 5:0 rwm",
        "devices.allow c 5:1 rwm",
        "devices.allow c 5:2 rwm",
        "devices.allow c 136:* rwm",
    ]
    "#);
}

#[test]
fn no_rules_deny_everything() {
    assert_eq!(writes(&[]), ["devices.deny a"]);
    let program = DevicePolicy::new(&[]).unwrap().program();
    insta::assert_snapshot!(program, @r"
        ; otherwise deny
      0: w0 = 0
      1: exit
    ");
}

#[test]
fn the_leading_deny_is_implied_so_a_list_without_it_fails_closed() {
    let defaults = DevicePolicy::new(&default_rules()).unwrap();
    assert_eq!(DevicePolicy::new(&default_rules()[1..]).unwrap(), defaults);
}

#[rstest]
#[case::reset_forgets_what_came_before(
    r#"[{"allow": true, "type": "c", "major": 1, "minor": 3}, {"allow": false}]"#,
    &["devices.deny a"]
)]
#[case::same_device_merges(
    r#"[{"allow": false}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
    &["devices.deny a", "devices.allow c 1:3 rw"]
)]
#[case::a_later_deny_inside_an_allow_shrinks_it(
    r#"[{"allow": false}, {"allow": true, "type": "c", "major": 1, "minor": 3},
        {"allow": false, "type": "c", "major": 1, "access": "w"}]"#,
    &["devices.deny a", "devices.allow c 1:3 rm"]
)]
#[case::a_wider_deny_removes_narrower_allows(
    r#"[{"allow": false}, {"allow": true, "type": "c", "major": 1, "minor": 3},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
        {"allow": true, "type": "b", "major": 1, "minor": 3},
        {"allow": false, "type": "c", "access": "rwm"}]"#,
    &["devices.deny a", "devices.allow b 1:3 rwm"]
)]
#[case::type_a_with_a_major_is_both_types(
    r#"[{"allow": false}, {"allow": true, "type": "a", "major": 7, "access": "r"}]"#,
    &["devices.deny a", "devices.allow c 7:* r", "devices.allow b 7:* r"]
)]
#[case::allow_by_default_writes_denies(
    r#"[{"allow": true}, {"allow": false, "type": "c", "major": 1, "minor": 11},
        {"allow": false, "type": "b", "access": "rw"}]"#,
    &["devices.allow a", "devices.deny c 1:11 rwm", "devices.deny b *:* rw"]
)]
fn lowering(#[case] json: &str, #[case] expected: &[&str]) {
    assert_eq!(writes(&rules(json)), expected);
}

#[rstest]
#[case::narrow_a_wildcard_allow(
    "hole_in_wildcard",
    r#"[{"allow": false}, {"allow": true, "type": "c", "access": "m"},
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "m"}]"#
)]
#[case::cross_a_major_with_a_minor(
    "hole_crossing",
    r#"[{"allow": false}, {"allow": true, "type": "c", "major": 1, "access": "r"},
        {"allow": false, "type": "c", "minor": 3, "access": "rw"}]"#
)]
#[case::narrow_a_wildcard_deny(
    "hole_in_deny",
    r#"[{"allow": true}, {"allow": false, "type": "b"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}]"#
)]
fn holes_in_wider_rules_are_refused(#[case] name: &str, #[case] json: &str) {
    let error = DevicePolicy::new(&rules(json)).unwrap_err();
    insta::assert_snapshot!(name, error.to_string());
}

#[test]
fn a_hole_outside_the_access_of_the_wider_rule_is_fine() {
    // `allow c *:* m` says nothing about reading 1:11: denying it there cuts no hole.
    let json = r#"[{"allow": false}, {"allow": true, "type": "c", "access": "m"},
                   {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "r"}]"#;
    assert_eq!(
        writes(&rules(json)),
        ["devices.deny a", "devices.allow c *:* m"]
    );
}

#[test]
fn program_listing_of_a_small_deny_by_default_list() {
    let json = r#"[{"allow": false}, {"allow": true, "type": "c", "access": "m"},
                   {"allow": true, "type": "c", "major": 1, "minor": 3},
                   {"allow": true, "type": "c", "major": 136, "access": "rw"}]"#;
    let program = DevicePolicy::new(&rules(json)).unwrap().program();
    insta::assert_snapshot!(program, @r"
        ; r2 = type, r3 = access, r4 = major, r5 = minor
      0: r2 = *(u32 *)(r1 + 0)
      1: w2 &= 0xffff
      2: r3 = *(u32 *)(r1 + 0)
      3: w3 >>= 16
      4: r4 = *(u32 *)(r1 + 4)
      5: r5 = *(u32 *)(r1 + 8)
        ; allow c *:* m
      6: if r2 != 2 goto 10
      7: if r3 & 0x6 goto 10
      8: w0 = 1
      9: exit
        ; allow c 1:3 rwm
     10: if r2 != 2 goto 15
     11: if r4 != 1 goto 15
     12: if r5 != 3 goto 15
     13: w0 = 1
     14: exit
        ; allow c 136:* rw
     15: if r2 != 2 goto 20
     16: if r3 & 0x1 goto 20
     17: if r4 != 136 goto 20
     18: w0 = 1
     19: exit
        ; otherwise deny
     20: w0 = 0
     21: exit
    ");
}

#[test]
fn program_listing_of_a_small_allow_by_default_list() {
    let json = r#"[{"allow": true}, {"allow": false, "type": "c", "major": 1, "minor": 11},
                   {"allow": false, "type": "b", "access": "w"}]"#;
    let program = DevicePolicy::new(&rules(json)).unwrap().program();
    insta::assert_snapshot!(program, @r"
        ; r2 = type, r3 = access, r4 = major, r5 = minor
      0: r2 = *(u32 *)(r1 + 0)
      1: w2 &= 0xffff
      2: r3 = *(u32 *)(r1 + 0)
      3: w3 >>= 16
      4: r4 = *(u32 *)(r1 + 4)
      5: r5 = *(u32 *)(r1 + 8)
        ; deny c 1:11 rwm
      6: if r2 != 2 goto 11
      7: if r4 != 1 goto 11
      8: if r5 != 11 goto 11
      9: w0 = 0
     10: exit
        ; deny b *:* w
     11: if r2 != 1 goto 17
     12: w1 = w3
     13: w1 &= 0x4
     14: if r1 == 0 goto 17
     15: w0 = 0
     16: exit
        ; otherwise allow
     17: w0 = 1
     18: exit
    ");
}

#[test]
fn program_of_the_default_rules() {
    let program = DevicePolicy::new(&default_rules()).unwrap().program();
    assert_eq!(program.len(), 60);
    insta::assert_snapshot!(program);
}

#[test]
fn instructions_encode_as_struct_bpf_insn() {
    let encoded = |insn: Insn| insn.encode();
    #[cfg(target_endian = "little")]
    {
        assert_eq!(
            encoded(Insn::LoadCtx { dst: 2, off: 0 }),
            [0x61, 0x12, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            encoded(Insn::LoadCtx { dst: 5, off: 8 }),
            [0x61, 0x15, 8, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            encoded(Insn::JumpNe {
                dst: 4,
                imm: 136,
                off: 3
            }),
            [0x55, 0x04, 3, 0, 136, 0, 0, 0]
        );
        assert_eq!(
            encoded(Insn::JumpSet {
                dst: 3,
                imm: 6,
                off: 2
            }),
            [0x45, 0x03, 2, 0, 6, 0, 0, 0]
        );
        assert_eq!(
            encoded(Insn::Mov32 { dst: 1, src: 3 }),
            [0xbc, 0x31, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            encoded(Insn::And32 {
                dst: 2,
                imm: 0xffff
            }),
            [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]
        );
        assert_eq!(
            encoded(Insn::MovImm32 { dst: 0, imm: 1 }),
            [0xb4, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(encoded(Insn::Exit), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }
}

/// Run an encoded device program on one request, as the kernel would (only the opcodes the
/// generator emits; anything else fails the test). Returns r0.
fn run(program: &[[u8; 8]], node: Node, major: u32, minor: u32, access: Access) -> u64 {
    let ctx = [u32::from(access.0) << 16 | node as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..program.len() {
        let insn = program[pc];
        let (dst, src) = if cfg!(target_endian = "little") {
            (usize::from(insn[1] & 0xf), usize::from(insn[1] >> 4))
        } else {
            (usize::from(insn[1] >> 4), usize::from(insn[1] & 0xf))
        };
        let off = i16::from_ne_bytes([insn[2], insn[3]]);
        let imm = i32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]);
        let imm64 = i64::from(imm) as u64;
        pc += 1;
        let jump = |pc: &mut usize, taken: bool| {
            if taken {
                *pc = (*pc as i64 + i64::from(off)) as usize;
            }
        };
        match insn[0] {
            0x61 => {
                assert_eq!(src, 1, "loads come from the context");
                r[dst] = u64::from(ctx[usize::try_from(off / 4).unwrap()]);
            }
            0x54 => r[dst] = u64::from(r[dst] as u32 & imm as u32),
            0x74 => r[dst] = u64::from((r[dst] as u32) >> imm),
            0xbc => r[dst] = u64::from(r[src] as u32),
            0xb4 => r[dst] = u64::from(imm as u32),
            0x55 => jump(&mut pc, r[dst] != imm64),
            0x15 => jump(&mut pc, r[dst] == imm64),
            0x45 => jump(&mut pc, r[dst] & imm64 != 0),
            0x95 => return r[0],
            code => panic!("opcode {code:#x} at {}", pc - 1),
        }
    }
    panic!("the program ran past its end or looped");
}

const EVERY_ACCESS: [Access; 7] = [
    Access(1),
    Access(2),
    Access(3),
    Access(4),
    Access(5),
    Access(6),
    Access(7),
];

#[rstest]
#[case::null_read_write(Node::Char, 1, 3, "rw", true)]
#[case::urandom(Node::Char, 1, 9, "r", true)]
#[case::console(Node::Char, 5, 1, "rw", true)]
#[case::any_pts(Node::Char, 136, 7, "rw", true)]
#[case::kmsg_read(Node::Char, 1, 11, "r", false)]
#[case::kmsg_mknod(Node::Char, 1, 11, "m", true)]
#[case::kmsg_mknod_and_read(Node::Char, 1, 11, "rm", false)]
#[case::loop_control(Node::Char, 10, 237, "rw", false)]
#[case::mem(Node::Char, 1, 1, "r", false)]
#[case::block_loop0_read(Node::Block, 7, 0, "r", false)]
#[case::block_loop0_mknod(Node::Block, 7, 0, "m", true)]
#[case::null_as_block(Node::Block, 1, 3, "r", false)]
#[case::other_pty_major(Node::Char, 137, 0, "r", false)]
fn the_default_program_decides_like_the_default_policy(
    #[case] node: Node,
    #[case] major: u32,
    #[case] minor: u32,
    #[case] access: &str,
    #[case] allowed: bool,
) {
    let policy = DevicePolicy::new(&default_rules()).unwrap();
    let access: Access = access.parse().unwrap();
    assert_eq!(policy.allows(node, major, minor, access), allowed);
    let program = policy.program().encode();
    assert_eq!(
        run(&program, node, major, minor, access),
        u64::from(allowed)
    );
}

/// The reference meaning of a rule list for one access: the last rule naming the device
/// and the access decides; none: denied.
fn last_match(rules: &[DeviceRule], node: Node, major: u32, minor: u32, bit: Access) -> bool {
    rules
        .iter()
        .rev()
        .find(|r| {
            r.kind.nodes().contains(&node)
                && r.major.map_or(true, |m| m == major)
                && r.minor.map_or(true, |m| m == minor)
                && r.access.contains(bit)
        })
        .is_some_and(|r| r.allow)
}

fn arbitrary_rule() -> impl Strategy<Value = DeviceRule> {
    (
        any::<bool>(),
        prop::sample::select(vec![DeviceType::All, DeviceType::Char, DeviceType::Block]),
        prop::option::of(prop::sample::select(vec![1u32, 5])),
        prop::option::of(prop::sample::select(vec![3u32, 11])),
        1u8..8,
    )
        .prop_map(|(allow, kind, major, minor, bits)| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: Access(bits),
        })
}

proptest! {
    /// Whatever rules lower without error mean "last match wins" for every single access,
    /// and the program says what the policy says for every request, several accesses too.
    #[test]
    fn policy_is_last_match_wins_and_the_program_agrees(
        rules in prop::collection::vec(arbitrary_rule(), 0..7),
    ) {
        let Ok(policy) = DevicePolicy::new(&rules) else {
            return Ok(());
        };
        let program = policy.program().encode();
        for node in [Node::Char, Node::Block] {
            for major in [1, 5, 7] {
                for minor in [3, 11, 12] {
                    for bit in [Access::READ, Access::WRITE, Access::MKNOD] {
                        prop_assert_eq!(
                            policy.allows(node, major, minor, bit),
                            last_match(&rules, node, major, minor, bit),
                            "{:?} {}:{} {}", node, major, minor, bit
                        );
                    }
                    for access in EVERY_ACCESS {
                        prop_assert_eq!(
                            run(&program, node, major, minor, access),
                            u64::from(policy.allows(node, major, minor, access)),
                            "{:?} {}:{} {}", node, major, minor, access
                        );
                    }
                }
            }
        }
    }

    /// Parsing never panics, and what it accepts shows letters only from `rwm`.
    #[test]
    fn access_parsing_accepts_only_rwm(text in "[a-z ]{0,5}") {
        match text.parse::<Access>() {
            Ok(access) => {
                prop_assert!(text.chars().all(|c| "rwm".contains(c)) && !text.is_empty());
                prop_assert!(access.to_string().chars().all(|c| text.contains(c)));
            }
            Err(_) => prop_assert!(text.is_empty() || text.chars().any(|c| !"rwm".contains(c))),
        }
    }
}

/// A v1 hierarchy with only the devices controller, under `root`.
fn devices_only(root: &Path) -> Hierarchy {
    fs::create_dir_all(root.join("devices")).unwrap();
    Hierarchy::V1 {
        controllers: [("devices".to_string(), root.join("devices"))].into(),
    }
}

#[test]
fn v1_apply_writes_the_reset_to_deny_and_each_allow_to_allow() {
    let tmp = tempfile::tempdir().unwrap();
    let h = devices_only(tmp.path());
    let group = Cgroup::create(&h, Path::new("nsinit/c1"), &Limits::default()).unwrap();
    let dir = tmp.path().join("devices/nsinit/c1");
    // A temp dir has no kernel behind it: lay out the two files as cgroupfs shows them.
    fs::write(dir.join("devices.deny"), "").unwrap();
    fs::write(dir.join("devices.allow"), "").unwrap();
    group.apply_device_rules(&default_rules()).unwrap();
    assert_eq!(fs::read_to_string(dir.join("devices.deny")).unwrap(), "a\n");
    insta::assert_snapshot!(fs::read_to_string(dir.join("devices.allow")).unwrap(), @r"
    c *:* m
    b *:* m
    c 1:3 rwm
    c 1:5 rwm
    c 1:7 rwm
    c 1:8 rwm
    c 1:9 rwm
    c 5:0 rwm
    c 5:1 rwm
    c 5:2 rwm
    c 136:* rwm
    ");
}

#[test]
fn v1_write_failure_names_the_rule_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let h = devices_only(tmp.path());
    let group = Cgroup::create(&h, Path::new("c1"), &Limits::default()).unwrap();
    let error = group.apply_device_rules(&default_rules()).unwrap_err();
    let file = tmp.path().join("devices/c1/devices.deny");
    assert_eq!(
        error.to_string(),
        format!(
            "write device rule \"a\" to {}: no such file or directory",
            file.display()
        )
    );
}

#[test]
fn v1_without_a_devices_controller_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("memory")).unwrap();
    let h = Hierarchy::V1 {
        controllers: [("memory".to_string(), tmp.path().join("memory"))].into(),
    };
    let group = Cgroup::create(&h, Path::new("c1"), &Limits::default()).unwrap();
    let error = group.apply_device_rules(&default_rules()).unwrap_err();
    insta::assert_snapshot!(error, @"cgroup controller devices is missing: the cgroup v1 devices controller is not mounted (see /proc/self/mountinfo)");
}

#[test]
fn a_refused_rule_list_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = devices_only(tmp.path());
    let group = Cgroup::create(&h, Path::new("c1"), &Limits::default()).unwrap();
    let dir = tmp.path().join("devices/c1");
    fs::write(dir.join("devices.deny"), "").unwrap();
    let json = r#"[{"allow": false}, {"allow": true, "type": "c", "access": "m"},
                   {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "m"}]"#;
    let error = group.apply_device_rules(&rules(json)).unwrap_err();
    assert!(
        matches!(error, CgroupError::Devices(DeviceError::Hole { .. })),
        "{error}"
    );
    assert_eq!(fs::read_to_string(dir.join("devices.deny")).unwrap(), "");
}

#[test]
fn a_load_error_carries_the_verifiers_last_lines() {
    let error = DeviceError::Load {
        path: "/sys/fs/cgroup/c1".into(),
        error: io::Error::from_raw_os_error(libc::EACCES),
        log: "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\nprocessed 1 insns\n\n".into(),
    };
    insta::assert_snapshot!(error, @"load device program for cgroup /sys/fs/cgroup/c1: permission denied (verifier: 0: (95) exit; R0 !read_ok; processed 1 insns)");
}

#[test]
fn a_program_the_kernel_refuses_is_reported_with_the_verifiers_words() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: loading a BPF program needs root (CAP_BPF or CAP_SYS_ADMIN)");
        return;
    }
    // `exit` with r0 never set: the verifier refuses to let the program return garbage.
    let program = Program {
        insns: vec![Insn::Exit],
        notes: Vec::new(),
    };
    let error = load(Path::new("/sys/fs/cgroup/c1"), &program).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(
            "load device program for cgroup /sys/fs/cgroup/c1: permission denied (verifier: "
        ),
        "{message}"
    );
    assert!(message.contains("R0 !read_ok"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}
