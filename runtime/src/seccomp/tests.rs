//! Tests of the seccomp module: descriptions accepted and refused (with snapshots of the
//! messages), what compiled filters decide on each ABI (through `bpf.rs`), the recorded form,
//! the checked-in default program, and the default filter installed in a forked child.

use std::time::Instant;

use proptest::prelude::*;
use rstest::rstest;

use super::bpf::{self, Call};
use super::*;

const ROOT: &str = "linux.seccomp";

fn parse(text: &str) -> Result<Profile, SeccompError> {
    let value: serde_json::Value = serde_json::from_str(text).expect("test JSON");
    Profile::from_json(&value, ROOT)
}

fn compiled(text: &str) -> Result<Filter, SeccompError> {
    compile(&parse(text)?, ROOT)
}

/// What the filter returns for `call`.
fn decide(filter: &Filter, call: Call) -> u32 {
    bpf::run(filter.instructions(), &call)
}

fn errno(value: i32) -> u32 {
    bpf::SECCOMP_RET_ERRNO | value as u32
}

const EPERM: u32 = bpf::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = bpf::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const ALLOW: u32 = bpf::SECCOMP_RET_ALLOW;
const KILL: u32 = bpf::SECCOMP_RET_KILL_PROCESS;

/// x86 (i386) call numbers the tests use (arch/x86/entry/syscalls/syscall_32.tbl).
mod i386 {
    pub const GETPID: u32 = 20;
    pub const MMAP2: u32 = 192;
    pub const SOCKETCALL: u32 = 102;
    pub const CLONE: u32 = 120;
    pub const UNSHARE: u32 = 310;
    pub const OPEN_BY_HANDLE_AT: u32 = 342;
    pub const CLONE3: u32 = 435;
}

fn x86_64(nr: i64) -> Call {
    Call::new(bpf::AUDIT_ARCH_X86_64, nr as u32)
}
fn x86(nr: u32) -> Call {
    Call::new(bpf::AUDIT_ARCH_I386, nr)
}
fn x32(nr: i64) -> Call {
    Call::new(bpf::AUDIT_ARCH_X86_64, bpf::X32_SYSCALL_BIT | nr as u32)
}

// --- descriptions accepted -------------------------------------------------------------

#[rstest]
#[case::minimal(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)]
#[case::kill_alias(
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_KILL"}]}"#
)]
#[case::errno_zero(
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]}"#
)]
#[case::allowlist(
    r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#
)]
#[case::thirty_two_bit_only_name_with_x86(
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mmap2", "socketcall"], "action": "SCMP_ACT_ERRNO"}]}"#
)]
#[case::multiplexed_on_x86_only(
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["recv", "send", "semop"], "action": "SCMP_ACT_ERRNO"}]}"#
)]
#[case::rule_like_the_default(
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#
)]
#[case::every_op(
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 8, "op": "SCMP_CMP_NE"},
            {"index": 1, "value": 8, "op": "SCMP_CMP_LT"},
            {"index": 2, "value": 8, "op": "SCMP_CMP_LE"},
            {"index": 3, "value": 8, "op": "SCMP_CMP_EQ"},
            {"index": 4, "value": 8, "op": "SCMP_CMP_GE"},
            {"index": 5, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#
)]
#[case::trace_log_trap(
    r#"{"defaultAction": "SCMP_ACT_LOG", "syscalls": [
        {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 1},
        {"names": ["acct"], "action": "SCMP_ACT_TRAP"},
        {"names": ["swapon"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["swapoff"], "action": "SCMP_ACT_KILL_THREAD"}]}"#
)]
fn accepted(#[case] text: &str) {
    let filter = compiled(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(!filter.instructions().is_empty());
}

#[test]
fn a_thirty_two_bit_only_name_applies_on_x86_and_is_skipped_on_x86_64() {
    let filter = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["mmap2"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    assert_eq!(decide(&filter, x86(i386::MMAP2)), EPERM);
    // 192 on x86_64 is getxattr: untouched.
    assert_eq!(decide(&filter, x86_64(192)), ALLOW);
    assert_eq!(decide(&filter, x86_64(libc::SYS_mmap)), ALLOW);
}

#[test]
fn a_call_x86_makes_through_socketcall_is_filtered_there() {
    let filter = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["recv"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    // socketcall(SYS_RECV = 10, args): refused; socketcall(SYS_SOCKET = 1, ...) not.
    assert_eq!(decide(&filter, x86(i386::SOCKETCALL).arg0(10)), EPERM);
    assert_eq!(decide(&filter, x86(i386::SOCKETCALL).arg0(1)), ALLOW);
    assert_eq!(decide(&filter, x86_64(libc::SYS_recvfrom)), ALLOW);
}

#[test]
fn conditions_on_one_argument_are_alternatives() {
    // docker's profile allows personality(0), personality(8), ... as separate conditions.
    let filter = compiled(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let personality = x86_64(libc::SYS_personality);
    assert_eq!(decide(&filter, personality.arg0(0)), ALLOW);
    assert_eq!(decide(&filter, personality.arg0(8)), ALLOW);
    assert_eq!(decide(&filter, personality.arg0(4)), EPERM);
}

#[test]
fn conditions_on_several_arguments_must_all_hold() {
    let filter = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [
                {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let mut call = x86_64(libc::SYS_socket).arg0(16);
    assert_eq!(decide(&filter, call), ALLOW);
    call.args[2] = 9;
    assert_eq!(decide(&filter, call), errno(97));
}

// --- descriptions refused --------------------------------------------------------------

#[rstest]
#[case::bad_action(
    "bad_action",
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_DENY"}]}"#
)]
#[case::bad_default_action("bad_default_action", r#"{"defaultAction": "ALLOW"}"#)]
#[case::bad_op(
    "bad_op",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_AND"}]}]}"#
)]
#[case::bad_arch(
    "bad_arch",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "x86"]}"#
)]
#[case::bad_flag(
    "bad_flag",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#
)]
#[case::notify(
    "notify",
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}"#
)]
#[case::notify_default("notify_default", r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#)]
#[case::listener_path(
    "listener_path",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#
)]
#[case::wait_killable_recv(
    "wait_killable_recv",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#
)]
#[case::errno_with_allow(
    "errno_with_allow",
    r#"{"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#
)]
#[case::default_errno_with_allow(
    "default_errno_with_allow",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 38}"#
)]
#[case::errno_too_large(
    "errno_too_large",
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4096}]}"#
)]
#[case::arg_index(
    "arg_index",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
)]
#[case::arg_value_negative(
    "arg_value_negative",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#
)]
#[case::duplicate_arch(
    "duplicate_arch",
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]}"#
)]
#[case::arch_unknown_to_libseccomp(
    "arch_unknown_to_libseccomp",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_LOONGARCH64"]}"#
)]
#[case::unknown_name_everywhere(
    "unknown_name_everywhere",
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", "frobnicate"], "action": "SCMP_ACT_ERRNO"}]}"#
)]
#[case::no_names(
    "no_names",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#
)]
#[case::names_not_a_list(
    "names_not_a_list",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "acct", "action": "SCMP_ACT_ERRNO"}]}"#
)]
#[case::unknown_field(
    "unknown_field",
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultActoin": 1}"#
)]
#[case::unknown_rule_field(
    "unknown_rule_field",
    r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO", "comment": "no"}]}"#
)]
#[case::missing_default_action("missing_default_action", r#"{"syscalls": []}"#)]
#[case::not_an_object("not_an_object", r#"["SCMP_ACT_ALLOW"]"#)]
fn rejected(#[case] name: &str, #[case] text: &str) {
    let message = compiled(text).expect_err("accepted").to_string();
    assert!(message.starts_with("linux.seccomp"), "{message}");
    assert!(!message.contains('\n'), "not one line: {message}");
    insta::assert_snapshot!(format!("rejected_{name}"), message);
}

/// A name no listed ABI has but another architecture does is skipped, as runc and crun skip
/// it: the program is the one without it. (A name no architecture has is refused.)
#[rstest]
#[case::thirty_two_bit_on_x86_64_only(r#"["read", "mmap2"]"#, Some("SCMP_ARCH_X86_64"))]
#[case::of_an_unlisted_arch(r#"["read", "riscv_flush_icache"]"#, Some("SCMP_ARCH_X86"))]
fn names_no_listed_abi_has_are_skipped(#[case] names: &str, #[case] arch: Option<&str>) {
    let profile = |names: &str| {
        let arches = arch.map(|a| format!(r#""architectures": ["{a}"],"#));
        format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", {}
                "syscalls": [{{"names": {names}, "action": "SCMP_ACT_ERRNO"}}]}}"#,
            arches.unwrap_or_default()
        )
    };
    let with = compiled(&profile(names)).unwrap();
    let without = compiled(&profile(r#"["read"]"#)).unwrap();
    assert_eq!(with, without);
}

// --- the default filter, decided by the interpreter ------------------------------------

#[test]
fn the_default_refuses_each_listed_call_with_eperm_on_every_abi() {
    let filter = default_filter();
    for (name, _) in REFUSED {
        for (arch, abi) in [
            (libseccomp::ScmpArch::X8664, "x86_64"),
            (libseccomp::ScmpArch::X86, "x86"),
            (libseccomp::ScmpArch::X32, "x32"),
        ] {
            let Ok(syscall) = libseccomp::ScmpSyscall::from_name_by_arch(name, arch) else {
                panic!("{name} unknown to libseccomp");
            };
            let nr = syscall.as_raw_syscall();
            if nr < 0 {
                continue; // this ABI has no such call (kexec_file_load on x86)
            }
            let audit = match abi {
                "x86" => bpf::AUDIT_ARCH_I386,
                _ => bpf::AUDIT_ARCH_X86_64,
            };
            let call = Call::new(audit, nr as u32);
            assert_eq!(decide(filter, call), EPERM, "{name} on {abi} ({nr:#x})");
        }
    }
}

#[rstest]
#[case::x86_64_clone(x86_64(libc::SYS_clone))]
#[case::x86_64_unshare(x86_64(libc::SYS_unshare))]
#[case::x86_clone(x86(i386::CLONE))]
#[case::x86_unshare(x86(i386::UNSHARE))]
#[case::x32_clone(x32(libc::SYS_clone))]
#[case::x32_unshare(x32(libc::SYS_unshare))]
fn the_default_refuses_a_new_user_namespace_only(#[case] call: Call) {
    let filter = default_filter();
    let newuser = libc::CLONE_NEWUSER as u64;
    let fork = libc::SIGCHLD as u64;
    let thread = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND) as u64;
    assert_eq!(decide(filter, call.arg0(newuser)), EPERM);
    assert_eq!(decide(filter, call.arg0(newuser | fork)), EPERM);
    assert_eq!(decide(filter, call.arg0(u64::MAX)), EPERM);
    assert_eq!(decide(filter, call.arg0(fork)), ALLOW);
    assert_eq!(decide(filter, call.arg0(thread)), ALLOW);
    assert_eq!(decide(filter, call.arg0(libc::CLONE_NEWUTS as u64)), ALLOW);
    assert_eq!(decide(filter, call.arg0(!newuser)), ALLOW);
}

#[rstest]
#[case::x86_64(x86_64(libc::SYS_clone3))]
#[case::x86(x86(i386::CLONE3))]
#[case::x32(x32(libc::SYS_clone3))]
fn the_default_answers_clone3_with_enosys(#[case] call: Call) {
    assert_eq!(decide(default_filter(), call), ENOSYS);
}

#[test]
fn the_default_allows_everything_else_and_kills_other_abis() {
    let filter = default_filter();
    let refused: Vec<(u32, u32)> = refused_numbers();
    for nr in 0..1024u32 {
        for (arch, nr) in [
            (bpf::AUDIT_ARCH_X86_64, nr),
            (bpf::AUDIT_ARCH_I386, nr),
            (bpf::AUDIT_ARCH_X86_64, bpf::X32_SYSCALL_BIT | nr),
        ] {
            let decision = decide(filter, Call::new(arch, nr));
            // clone and unshare with a zero first argument: allowed.
            if refused.contains(&(arch, nr)) {
                assert_ne!(decision, ALLOW, "{arch:#x} {nr:#x}");
            } else {
                assert_eq!(decision, ALLOW, "{arch:#x} {nr:#x}");
            }
        }
        // An ABI the profile does not list: never the default ALLOW.
        assert_eq!(decide(filter, Call::new(bpf::AUDIT_ARCH_AARCH64, nr)), KILL);
    }
}

/// (audit arch, number) of every call the default refuses, whatever the arguments.
fn refused_numbers() -> Vec<(u32, u32)> {
    let names = REFUSED.iter().chain(ABSENT).map(|(name, _)| *name);
    let mut numbers = Vec::new();
    for name in names {
        // libseccomp's x32 numbers carry the x32 bit already.
        for (arch, audit) in [
            (libseccomp::ScmpArch::X8664, bpf::AUDIT_ARCH_X86_64),
            (libseccomp::ScmpArch::X86, bpf::AUDIT_ARCH_I386),
            (libseccomp::ScmpArch::X32, bpf::AUDIT_ARCH_X86_64),
        ] {
            let nr = libseccomp::ScmpSyscall::from_name_by_arch(name, arch)
                .unwrap()
                .as_raw_syscall();
            if nr >= 0 {
                numbers.push((audit, nr as u32));
            }
        }
    }
    numbers
}

#[rstest]
#[case::x86_int_0x80(x86(i386::GETPID))]
#[case::x86_open_by_handle_at(x86(i386::OPEN_BY_HANDLE_AT))]
#[case::x32_getpid(x32(libc::SYS_getpid))]
#[case::x32_open_by_handle_at(x32(libc::SYS_open_by_handle_at))]
#[case::aarch64(Call::new(bpf::AUDIT_ARCH_AARCH64, 0))]
fn a_profile_without_the_32_bit_abis_kills_their_calls(#[case] call: Call) {
    let filter = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["open_by_handle_at"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    assert_eq!(decide(&filter, call), KILL);
    assert_eq!(decide(&filter, x86_64(libc::SYS_getpid)), ALLOW);
}

// --- the checked-in default program ----------------------------------------------------

/// `default_program.rs` is `default_profile()` compiled: regenerated with `NSINIT_BLESS=1`.
/// Another libseccomp may lay the program out differently; then the two must still decide
/// every call alike.
#[test]
fn the_default_program_is_the_default_profile_compiled() {
    let fresh = compile(&default_profile(), "default profile").unwrap();
    let checked_in = default_filter();
    if fresh == *checked_in {
        return;
    }
    if std::env::var_os("NSINIT_BLESS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/seccomp/default_program.rs"
        );
        std::fs::write(path, generated_source(&fresh)).unwrap();
        eprintln!("wrote {path}");
        return;
    }
    let differences = differences(&fresh, checked_in);
    assert!(
        differences.is_empty(),
        "default_program.rs is not the default profile compiled ({} calls decided \
         differently, first {:?}): run NSINIT_BLESS=1 cargo test -p nsinit --lib seccomp",
        differences.len(),
        differences.first()
    );
    eprintln!("note: this libseccomp lays the default out differently; it decides alike");
}

fn generated_source(filter: &Filter) -> String {
    let flags = filter
        .flags()
        .iter()
        .fold(0, |bits, flag| bits | flag.bit());
    let mut source = String::from(
        "//! Generated: the default profile compiled (see mod.rs). Do not edit by hand.\n\n\
         use super::filter::Instruction;\n\n",
    );
    source += &format!("pub(super) const FLAGS: u32 = {flags};\n\n#[rustfmt::skip]\n");
    source += &format!(
        "pub(super) static PROGRAM: [Instruction; {}] = [\n",
        filter.instructions().len()
    );
    for i in filter.instructions() {
        source += &format!(
            "    Instruction::new({:#06x}, {}, {}, {:#010x}),\n",
            i.code, i.jt, i.jf, i.k
        );
    }
    source + "];\n"
}

/// Calls (arch, number, first argument) the two filters decide differently.
fn differences(a: &Filter, b: &Filter) -> Vec<(u32, u32, u64, u32, u32)> {
    let mut arg0s: Vec<u64> = vec![0, u64::MAX, libc::CLONE_NEWUSER as u64];
    arg0s.extend((0..64).map(|bit| 1u64 << bit));
    let arches = [
        bpf::AUDIT_ARCH_X86_64,
        bpf::AUDIT_ARCH_I386,
        bpf::AUDIT_ARCH_AARCH64,
        0,
    ];
    let numbers = (0..1024u32).chain((0..1024).map(|nr| bpf::X32_SYSCALL_BIT | nr));
    let mut found = Vec::new();
    for nr in numbers.chain([u32::MAX, 0x7fff_ffff]) {
        for arch in arches {
            for &arg0 in &arg0s {
                let call = Call::new(arch, nr).arg0(arg0);
                let (left, right) = (decide(a, call), decide(b, call));
                if left != right {
                    found.push((arch, nr, arg0, left, right));
                }
            }
        }
    }
    found
}

// --- the recorded form -----------------------------------------------------------------

#[test]
fn the_default_filter_round_trips_through_json() {
    let json = serde_json::to_string(default_filter()).unwrap();
    let back: Filter = serde_json::from_str(&json).unwrap();
    assert_eq!(back, *default_filter());
}

#[test]
fn the_default_profile_round_trips_through_the_spec_json() {
    let json = serde_json::to_value(default_profile()).unwrap();
    let back = Profile::from_json(&json, ROOT).unwrap();
    assert_eq!(back, default_profile());
    insta::assert_snapshot!(
        "default_profile",
        serde_json::to_string_pretty(&json).unwrap()
    );
}

#[rstest]
#[case::odd_length(r#"{"program": "200000000400000"}"#)]
#[case::not_hex(r#"{"program": "2000000004000g00"}"#)]
#[case::sign(r#"{"program": "+f00000004000000"}"#)]
#[case::empty(r#"{"program": ""}"#)]
#[case::bad_flag(r#"{"flags": ["TSYNC"], "program": "0600000000000000"}"#)]
#[case::unknown_field(r#"{"program": "0600000000000000", "len": 1}"#)]
fn a_bad_recorded_filter_is_refused(#[case] json: &str) {
    assert!(serde_json::from_str::<Filter>(json).is_err(), "{json}");
}

proptest! {
    #[test]
    fn any_filter_round_trips_through_json(
        program in proptest::collection::vec(any::<(u16, u8, u8, u32)>(), 1..200),
        log in any::<bool>(),
        spec_allow in any::<bool>(),
    ) {
        let program: Vec<Instruction> =
            program.into_iter().map(|(c, t, f, k)| Instruction::new(c, t, f, k)).collect();
        let flags: Vec<Flag> = [(log, Flag::Log), (spec_allow, Flag::SpecAllow)]
            .into_iter()
            .filter_map(|(on, flag)| on.then_some(flag))
            .collect();
        let filter = Filter::new(program, &flags).unwrap();
        let json = serde_json::to_string(&filter).unwrap();
        let back: Filter = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, filter);
    }

    #[test]
    fn any_recorded_text_is_read_or_refused(text in "\\PC{0,40}") {
        let json = format!(r#"{{"program": {}}}"#, serde_json::to_string(&text).unwrap());
        let _ = serde_json::from_str::<Filter>(&json);
    }
}

// --- installed in a child --------------------------------------------------------------

/// Whether this test can run: the probes compare with an unfiltered child, which needs root
/// (CAP_DAC_READ_SEARCH for open_by_handle_at, CAP_SYS_ADMIN for unshare).
fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("skipped: seccomp::tests::{test}: needs root (unshare, open_by_handle_at)");
    }
    root
}

/// How a probe in a child ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The call returned this (a negative errno on failure).
    Returned(i64),
    Killed(i32),
}

const SIGSYS: Outcome = Outcome::Killed(libc::SIGSYS);

fn refused(errno: i32) -> Outcome {
    Outcome::Returned(-i64::from(errno))
}

/// Runs `probe` in a forked child under `filter` (none: unfiltered) and reports how it ended.
/// The child only makes system calls: the test harness has threads, so it must not allocate.
fn in_child(filter: Option<&Filter>, probe: fn() -> i64) -> Outcome {
    let (read, write) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only calls prctl, seccomp (through `install`, which does not
    // allocate), the probe's raw system calls, write and _exit: no lock another thread of
    // the harness may hold.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if let Some(filter) = filter {
                if install(filter).is_err() {
                    // SAFETY: _exit ends the child without running the parent's destructors.
                    unsafe { libc::_exit(100) };
                }
            }
            let result = probe().to_le_bytes();
            let _ = nix::unistd::write(&write, &result);
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            let mut bytes = [0u8; 8];
            let got = nix::unistd::read(&read, &mut bytes).unwrap();
            match nix::sys::wait::waitpid(child, None).unwrap() {
                nix::sys::wait::WaitStatus::Signaled(_, signal, _) => {
                    Outcome::Killed(signal as i32)
                }
                nix::sys::wait::WaitStatus::Exited(_, 0) if got == 8 => {
                    Outcome::Returned(i64::from_le_bytes(bytes))
                }
                status => panic!("probe child: {status:?}"),
            }
        }
    }
}

/// A raw x86_64 (or x32, with the bit) system call: its value, or minus errno.
fn call(nr: i64, args: [i64; 3]) -> i64 {
    // SAFETY: the probes pass integers and null pointers only; the kernel checks them.
    let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2], 0, 0, 0) };
    if ret == -1 {
        -i64::from(nix::errno::Errno::last_raw())
    } else {
        ret
    }
}

/// A system call through `int $0x80`: the x86 (i386) ABI, from this 64-bit process.
fn int_0x80(nr: u32, arg0: u32, arg1: u32, arg2: u32) -> i64 {
    let mut ret = nr;
    // SAFETY: `int $0x80` enters the kernel's compat entry, which clobbers only eax; rbx is
    // reserved by LLVM, so the first argument is swapped in and out around the call.
    unsafe {
        std::arch::asm!(
            "xchg {arg0:r}, rbx",
            "int 0x80",
            "xchg {arg0:r}, rbx",
            arg0 = inout(reg) u64::from(arg0) => _,
            inlateout("eax") ret,
            in("ecx") arg1,
            in("edx") arg2,
        );
    }
    i64::from(ret as i32)
}

fn open_by_handle_at() -> i64 {
    // No handle (NULL): unfiltered, the kernel answers EFAULT.
    call(libc::SYS_open_by_handle_at, [-1, 0, 0])
}
fn open_by_handle_at_x86() -> i64 {
    int_0x80(i386::OPEN_BY_HANDLE_AT, u32::MAX, 0, 0)
}
fn open_by_handle_at_x32() -> i64 {
    let nr = i64::from(bpf::X32_SYSCALL_BIT) | libc::SYS_open_by_handle_at;
    call(nr, [-1, 0, 0])
}
fn unshare_user() -> i64 {
    call(libc::SYS_unshare, [i64::from(libc::CLONE_NEWUSER), 0, 0])
}
fn unshare_user_x86() -> i64 {
    int_0x80(i386::UNSHARE, libc::CLONE_NEWUSER as u32, 0, 0)
}
fn clone3() -> i64 {
    // No arguments: unfiltered, the kernel answers EINVAL.
    call(libc::SYS_clone3, [0, 0, 0])
}
fn unshare_uts() -> i64 {
    call(libc::SYS_unshare, [i64::from(libc::CLONE_NEWUTS), 0, 0])
}
fn getpid_positive() -> i64 {
    i64::from(call(libc::SYS_getpid, [0; 3]) > 0)
}
fn getpid_x86_positive() -> i64 {
    i64::from(int_0x80(i386::GETPID, 0, 0, 0) > 0)
}
fn getpid_x32() -> i64 {
    call(i64::from(bpf::X32_SYSCALL_BIT) | libc::SYS_getpid, [0; 3])
}
/// fork through `clone(SIGCHLD)`, then wait: 0 when both worked.
fn fork_and_wait() -> i64 {
    let pid = call(libc::SYS_clone, [i64::from(libc::SIGCHLD), 0, 0]);
    if pid == 0 {
        // SAFETY: the grandchild ends at once.
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        return pid;
    }
    call(libc::SYS_wait4, [pid, 0, 0]).min(0)
}
/// Reads `/proc/self/status` and returns its `Seccomp:` mode (file I/O with no allocation).
fn seccomp_mode() -> i64 {
    let fd = call(libc::SYS_open, [c"/proc/self/status".as_ptr() as i64, 0, 0]);
    if fd < 0 {
        return fd;
    }
    let mut buffer = [0u8; 4096];
    let mut len = 0usize;
    loop {
        let n = call(
            libc::SYS_read,
            [
                fd,
                buffer[len..].as_mut_ptr() as i64,
                (buffer.len() - len) as i64,
            ],
        );
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    call(libc::SYS_close, [fd, 0, 0]);
    let key = b"\nSeccomp:\t";
    buffer[..len]
        .windows(key.len() + 1)
        .find(|w| w.starts_with(key))
        .map(|w| i64::from(w[key.len()] - b'0'))
        .unwrap_or(-1)
}

#[rstest]
#[case::open_by_handle_at(open_by_handle_at, refused(libc::EPERM))]
#[case::open_by_handle_at_int_0x80(open_by_handle_at_x86, refused(libc::EPERM))]
#[case::open_by_handle_at_x32(open_by_handle_at_x32, refused(libc::EPERM))]
#[case::unshare_newuser(unshare_user, refused(libc::EPERM))]
#[case::unshare_newuser_int_0x80(unshare_user_x86, refused(libc::EPERM))]
#[case::clone3(clone3, refused(libc::ENOSYS))]
fn the_default_filter_refuses_in_a_child(#[case] probe: fn() -> i64, #[case] expected: Outcome) {
    if !root_or_skip("the_default_filter_refuses_in_a_child") {
        return;
    }
    // Unfiltered, the same call gets another answer: the refusal is the filter's.
    let unfiltered = in_child(None, probe);
    assert_ne!(
        unfiltered, expected,
        "the kernel already answers {expected:?}"
    );
    assert_eq!(in_child(Some(default_filter()), probe), expected);
}

#[rstest]
#[case::unshare_newuts(unshare_uts, Outcome::Returned(0))]
#[case::getpid(getpid_positive, Outcome::Returned(1))]
#[case::getpid_int_0x80(getpid_x86_positive, Outcome::Returned(1))]
#[case::fork(fork_and_wait, Outcome::Returned(0))]
#[case::file_io(seccomp_mode, Outcome::Returned(2))]
fn the_default_filter_lets_a_container_work(#[case] probe: fn() -> i64, #[case] expected: Outcome) {
    if !root_or_skip("the_default_filter_lets_a_container_work") {
        return;
    }
    assert_eq!(in_child(Some(default_filter()), probe), expected);
}

#[rstest]
#[case::int_0x80(getpid_x86_positive)]
#[case::x32(getpid_x32)]
#[case::open_by_handle_at_int_0x80(open_by_handle_at_x86)]
fn a_filter_without_the_32_bit_abis_kills_their_calls_in_a_child(#[case] probe: fn() -> i64) {
    let filter = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["open_by_handle_at"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    assert_eq!(in_child(Some(&filter), probe), SIGSYS);
}

/// The probes above can fail: the default without its `open_by_handle_at` rule lets the call
/// through on every ABI, and they see it.
#[rstest]
#[case::x86_64(open_by_handle_at)]
#[case::int_0x80(open_by_handle_at_x86)]
#[case::x32(open_by_handle_at_x32)]
fn without_its_rule_open_by_handle_at_gets_through(#[case] probe: fn() -> i64) {
    if !root_or_skip("without_its_rule_open_by_handle_at_gets_through") {
        return;
    }
    let mut profile = default_profile();
    profile.syscalls[0]
        .names
        .retain(|name| name != "open_by_handle_at");
    let filter = compile(&profile, "test profile").unwrap();
    assert_ne!(in_child(Some(&filter), probe), refused(libc::EPERM));
}

/// Runs `program args` under the default filter (installed between fork and exec, with
/// no_new_privs) and returns its stdout, failing on a non-zero exit.
fn run_filtered(program: &std::path::Path, args: &[&str]) -> String {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    command.args(args);
    // SAFETY: the hook runs in the forked child before exec and only makes system calls
    // (prctl, seccomp): `install` does not allocate.
    unsafe {
        command.pre_exec(|| {
            // SAFETY: prctl with integer arguments.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            install(default_filter()).map_err(|_| std::io::Error::last_os_error())
        })
    };
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program:?} {args:?}: {:?}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// What a container's shell does, under the default filter: fork, exec, pipes, files,
/// processes; and the refusals as a program sees them.
#[test]
fn a_busybox_shell_works_under_the_default_filter() {
    let busybox = fixtures::find_busybox().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "set -e; cd {dir}; echo hello > file; cat file | wc -c; ls | grep -c file; \
         sh -c 'exit 0'; ps >/dev/null; grep Seccomp: /proc/self/status; \
         if unshare -U true 2>/dev/null; then echo userns-allowed; else echo userns-refused; fi",
        dir = dir.path().display()
    );
    let out = run_filtered(&busybox, &["sh", "-c", &script]);
    assert_eq!(out, "6\n1\nSeccomp:\t2\nuserns-refused\n");
}

/// glibc programs: posix_spawn and threads try clone3 first and fall back to clone on ENOSYS.
#[test]
fn glibc_falls_back_from_clone3_under_the_default_filter() {
    let python = std::path::Path::new("/usr/bin/python3");
    if !python.exists() {
        eprintln!("skipped: seccomp::tests::glibc_falls_back_from_clone3_under_the_default_filter: no /usr/bin/python3");
        return;
    }
    let script = "import os, threading, subprocess\n\
        pid = os.posix_spawn('/bin/true', ['true'], {})\n\
        print(os.waitpid(pid, 0)[1])\n\
        t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n\
        print(subprocess.run(['/bin/sh', '-c', 'echo spawned | cat'], capture_output=True, text=True).stdout, end='')\n";
    let out = run_filtered(python, &["-c", script]);
    assert_eq!(out, "0\nthread\nspawned\n");
}

// --- measurements ----------------------------------------------------------------------

/// A profile the size of containers-common's default (podman): default ENOSYS, every x86_64
/// call but the default's refused ones allowed, plus the x86-only names such profiles list.
fn podman_sized_profile() -> Profile {
    let x86_only = [
        "_llseek",
        "_newselect",
        "chown32",
        "fchown32",
        "fcntl64",
        "fstat64",
        "fstatat64",
        "fstatfs64",
        "ftruncate64",
        "getegid32",
        "geteuid32",
        "getgid32",
        "getgroups32",
        "getresgid32",
        "getresuid32",
        "getuid32",
        "ipc",
        "lchown32",
        "lstat64",
        "mmap2",
        "recv",
        "send",
        "sendfile64",
        "setfsgid32",
        "setfsuid32",
        "setgid32",
        "setgroups32",
        "setregid32",
        "setresgid32",
        "setresuid32",
        "setreuid32",
        "setuid32",
        "sigprocmask",
        "sigreturn",
        "socketcall",
        "stat64",
        "statfs64",
        "truncate64",
        "ugetrlimit",
        "waitpid",
    ];
    let refused: Vec<&str> = REFUSED.iter().map(|(name, _)| *name).collect();
    let mut names: Vec<String> = (0..460)
        .filter_map(|nr| {
            libseccomp::ScmpSyscall::from(nr)
                .get_name_by_arch(libseccomp::ScmpArch::X8664)
                .ok()
        })
        .filter(|name| !refused.contains(&name.as_str()))
        .collect();
    names.extend(x86_only.iter().map(|name| name.to_string()));
    let mut profile = default_profile();
    profile.default_action = Action::Errno;
    profile.default_errno_ret = Some(libc::ENOSYS as u32);
    profile.syscalls.retain(|rule| rule.args.is_empty());
    profile.syscalls.push(SyscallRule {
        names,
        action: Action::Allow,
        errno_ret: None,
        args: Vec::new(),
    });
    profile
}

fn median_micros(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// `cargo test -p nsinit --release --lib seccomp::tests::measure -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn measure() {
    let podman = podman_sized_profile();
    let names: usize = podman.syscalls.iter().map(|rule| rule.names.len()).sum();
    for (label, profile, runs) in [
        ("default", default_profile(), 200),
        ("podman-sized", podman, 20),
    ] {
        let samples = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let filter = compile(&profile, "profile").unwrap();
                std::hint::black_box(filter);
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let filter = compile(&profile, "profile").unwrap();
        let install = (0..31).map(|_| install_micros(&filter)).collect();
        println!(
            "{label}: {} instructions; compile {:.1} us (median of {runs}); install {:.1} us \
             (median of 31 children)",
            filter.instructions().len(),
            median_micros(samples),
            median_micros(install),
        );
    }
    println!("podman-sized profile: {names} names");
}

/// The time `install` takes in a fresh child (measured there, sent back over a pipe).
fn install_micros(filter: &Filter) -> f64 {
    let (read, write) = nix::unistd::pipe().unwrap();
    // SAFETY: as in `in_child`: the child only makes system calls.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let start = Instant::now();
            let ok = install(filter).is_ok();
            let nanos = if ok {
                start.elapsed().as_nanos() as u64
            } else {
                u64::MAX
            };
            let _ = nix::unistd::write(&write, &nanos.to_le_bytes());
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            let mut bytes = [0u8; 8];
            nix::unistd::read(&read, &mut bytes).unwrap();
            nix::sys::wait::waitpid(child, None).unwrap();
            let nanos = u64::from_le_bytes(bytes);
            assert_ne!(nanos, u64::MAX, "install failed");
            nanos as f64 / 1e3
        }
    }
}

/// Several rules for one call combine as in libseccomp (and so runc): an unconditional rule
/// overrides conditional ones, and of two unconditional rules the first stays.
#[test]
fn rules_for_one_call_combine_as_libseccomp_does() {
    let filter = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["acct"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["acct"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_TRAP"}]}"#,
    )
    .unwrap();
    const TRAP: u32 = 0x0003_0000;
    assert_eq!(decide(&filter, x86_64(libc::SYS_acct)), EPERM);
    assert_eq!(decide(&filter, x86_64(libc::SYS_clone).arg0(1)), TRAP);
    assert_eq!(decide(&filter, x86_64(libc::SYS_clone).arg0(2)), TRAP);
}
