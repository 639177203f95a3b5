//! Profile to BPF: checks a [`Profile`] field by field and compiles it with libseccomp, for
//! every listed system call ABI at once (x86_64, x86 through `int $0x80`, x32).
//!
//! Pure computation: no file, no kernel state (libseccomp asks the kernel which actions it
//! supports, once). Each error names the field and value it is about.

use std::collections::HashSet;
use std::io::{Read, Seek};
use std::os::fd::AsFd;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use super::filter::{Filter, Instruction};
use super::profile::{field, item, Action, Arch, ArgCondition, ArgOp, Flag, Profile};
use super::SeccompError;

/// The largest errno a filter may return (`MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

/// Arguments a system call has (`seccomp_data.args`).
const ARGS: u32 = 6;

/// The ABI nsinit itself calls through; its filter always covers it (a filter that did not
/// would kill the container's first call).
const NATIVE: Arch = Arch::X86_64;

/// libseccomp's binary-tree layout of the syscall checks (`SCMP_FLTATR_CTL_OPTIMIZE` = 2):
/// measured here it made the kernel's load of the default 3x cheaper (133 to 45 us) and of a
/// 400-name profile 3.8x (1.1 to 0.29 ms), for a few more instructions: a new filter is run
/// over every call number to cache constant ALLOWs, which costs the filter's path lengths.
const OPTIMIZE_BINARY_TREE: u32 = 2;

/// Compiles `profile`, found at `root` in the user's file (e.g. `linux.seccomp`, named in
/// errors), into a filter.
///
/// Like libseccomp (and runc, crun), a name that some listed ABIs lack is skipped on those
/// (`mmap2` exists only on x86); a name no listed ABI has is an error. A call made through an
/// ABI the profile does not list kills the process: never the default action.
pub fn compile(profile: &Profile, root: &str) -> Result<Filter, SeccompError> {
    check_top(profile, root)?;
    let arches = arches(profile, root)?;
    let default = action(
        profile.default_action,
        profile.default_errno_ret,
        &field(root, "defaultAction"),
        &field(root, "defaultErrnoRet"),
    )?;

    let mut context = ScmpFilterContext::new(default).map_err(failed("create the context"))?;
    context
        .set_act_badarch(ScmpAction::KillProcess)
        .map_err(failed("set the action for other ABIs"))?;
    context
        .set_ctl_optimize(OPTIMIZE_BINARY_TREE)
        .map_err(failed("ask for a binary tree"))?;
    for (index, &arch) in profile.architectures.iter().enumerate() {
        let scmp = scmp_arch(arch).ok_or_else(|| SeccompError::UnsupportedArch {
            field: item(&field(root, "architectures"), index),
            arch,
        })?;
        if arch != NATIVE {
            context
                .add_arch(scmp)
                .map_err(|source| SeccompError::AddArch {
                    field: item(&field(root, "architectures"), index),
                    arch,
                    reason: source.to_string(),
                })?;
        }
    }

    let rules_at = field(root, "syscalls");
    for (index, rule) in profile.syscalls.iter().enumerate() {
        let at = item(&rules_at, index);
        let action = action(
            rule.action,
            rule.errno_ret,
            &field(&at, "action"),
            &field(&at, "errnoRet"),
        )?;
        if rule.names.is_empty() {
            return Err(SeccompError::NoNames {
                field: field(&at, "names"),
            });
        }
        let alternatives = conditions(&rule.args, &field(&at, "args"))?;
        for (name_index, name) in rule.names.iter().enumerate() {
            let name_at = item(&field(&at, "names"), name_index);
            // A profile written for many architectures names calls the listed ABIs lack;
            // they are skipped, as runc and crun do: podman's default profile lists
            // `pciconfig_iobase`, which no x86 ABI has.
            let Some(syscall) = resolve(name, &arches, &name_at)? else {
                continue;
            };
            // libseccomp refuses a rule that does what the default does; it changes nothing.
            if action == default {
                continue;
            }
            for conditions in &alternatives {
                context
                    .add_rule_conditional(action, syscall, conditions)
                    .map_err(|source| SeccompError::AddRule {
                        field: name_at.clone(),
                        name: name.clone(),
                        reason: source.to_string(),
                    })?;
            }
        }
    }

    let program = export(&context)?;
    Filter::new(program, &profile.flags)
}

/// What the whole profile asks that nsinit cannot do.
fn check_top(profile: &Profile, root: &str) -> Result<(), SeccompError> {
    if let Some(path) = &profile.listener_path {
        return Err(SeccompError::Listener {
            field: field(root, "listenerPath"),
            path: path.clone(),
        });
    }
    for (index, &flag) in profile.flags.iter().enumerate() {
        if flag == Flag::WaitKillableRecv {
            return Err(SeccompError::UnsupportedFlag {
                field: item(&field(root, "flags"), index),
                flag,
            });
        }
    }
    Ok(())
}

/// The ABIs the rules apply to: the listed ones and nsinit's own, each once.
fn arches(profile: &Profile, root: &str) -> Result<Vec<Arch>, SeccompError> {
    let mut seen = HashSet::new();
    for (index, &arch) in profile.architectures.iter().enumerate() {
        if !seen.insert(arch) {
            return Err(SeccompError::DuplicateArch {
                field: item(&field(root, "architectures"), index),
                arch,
            });
        }
    }
    let mut arches = vec![NATIVE];
    arches.extend(profile.architectures.iter().filter(|&&a| a != NATIVE));
    Ok(arches)
}

/// The libseccomp action for `action` with its errno.
fn action(
    action: Action,
    errno: Option<u32>,
    action_at: &str,
    errno_at: &str,
) -> Result<ScmpAction, SeccompError> {
    if let Some(value) = errno {
        if !action.takes_errno() {
            return Err(SeccompError::ErrnoWithoutErrnoAction {
                field: errno_at.to_owned(),
                value,
                action,
            });
        }
        if value > MAX_ERRNO {
            return Err(SeccompError::ErrnoRange {
                field: errno_at.to_owned(),
                value,
            });
        }
    }
    // EPERM when absent, as runc and crun do.
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match action {
        Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        // Both fit: `errno` is at most MAX_ERRNO.
        Action::Errno => ScmpAction::Errno(errno as i32),
        Action::Trace => ScmpAction::Trace(errno as u16),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => {
            return Err(SeccompError::Notify {
                field: action_at.to_owned(),
            })
        }
    })
}

/// The rule's conditions as alternatives, each a list that must all hold: one list, unless
/// an argument is named twice, when each condition stands alone (runc's reading, on which
/// docker's profile relies: `personality` is allowed for any of several values).
fn conditions(args: &[ArgCondition], at: &str) -> Result<Vec<Vec<ScmpArgCompare>>, SeccompError> {
    let mut compares = Vec::with_capacity(args.len());
    let mut indexes = HashSet::new();
    let mut repeated = false;
    for (index, arg) in args.iter().enumerate() {
        if arg.index >= ARGS {
            return Err(SeccompError::ArgIndex {
                field: field(&item(at, index), "index"),
                index: arg.index,
            });
        }
        repeated |= !indexes.insert(arg.index);
        let op = match arg.op {
            ArgOp::NotEqual => ScmpCompareOp::NotEqual,
            ArgOp::LessThan => ScmpCompareOp::Less,
            ArgOp::LessOrEqual => ScmpCompareOp::LessOrEqual,
            ArgOp::Equal => ScmpCompareOp::Equal,
            ArgOp::GreaterOrEqual => ScmpCompareOp::GreaterEqual,
            ArgOp::GreaterThan => ScmpCompareOp::Greater,
            ArgOp::MaskedEqual => ScmpCompareOp::MaskedEqual(arg.value),
        };
        let datum = match arg.op {
            ArgOp::MaskedEqual => arg.value_two,
            _ => arg.value,
        };
        compares.push(ScmpArgCompare::new(arg.index, op, datum));
    }
    Ok(if repeated {
        compares.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![compares]
    })
}

/// The syscall to give libseccomp for `name`, or `None` when no listed ABI has it (another
/// architecture does); an error when no architecture libseccomp knows has it.
fn resolve(name: &str, arches: &[Arch], at: &str) -> Result<Option<ScmpSyscall>, SeccompError> {
    // "Rewrite": a call x86 makes only through a multiplexer (`recv` through `socketcall`)
    // resolves to the multiplexer, which libseccomp then filters by its first argument.
    let known = arches.iter().any(|&arch| {
        scmp_arch(arch)
            .and_then(|arch| ScmpSyscall::from_name_by_arch_rewrite(name, arch).ok())
            .is_some_and(|syscall| syscall.as_raw_syscall() >= 0)
    });
    if !known {
        // Skipped when some architecture has it; a name none has is a mistake.
        return match ScmpSyscall::from_name(name) {
            Ok(_) => Ok(None),
            Err(_) => Err(SeccompError::UnknownSyscall {
                field: at.to_owned(),
                name: name.to_owned(),
            }),
        };
    }
    // Resolved for the native ABI: a name it lacks gets libseccomp's pseudo number, which
    // libseccomp translates for each ABI of the filter and drops where there is none.
    ScmpSyscall::from_name(name)
        .map(Some)
        .map_err(|source| SeccompError::AddRule {
            field: at.to_owned(),
            name: name.to_owned(),
            reason: source.to_string(),
        })
}

/// The program libseccomp made, read back through a memfd (libseccomp 2.5 only exports to an
/// fd; `seccomp_export_bpf_mem` is 2.6).
fn export(context: &ScmpFilterContext) -> Result<Vec<Instruction>, SeccompError> {
    let io = |step: &'static str| {
        move |error: std::io::Error| SeccompError::Compile {
            step,
            reason: error.to_string(),
        }
    };
    let memfd =
        nix::sys::memfd::memfd_create(c"nsinit-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|errno| SeccompError::Compile {
                step: "create a memfd for the program",
                reason: errno.desc().to_owned(),
            })?;
    context
        .export_bpf(memfd.as_fd())
        .map_err(failed("export the program"))?;
    let mut file = std::fs::File::from(memfd);
    file.rewind().map_err(io("rewind the program"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io("read the program"))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|chunk| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(chunk);
            Instruction::from_bytes(bytes)
        })
        .collect())
}

fn failed(step: &'static str) -> impl Fn(libseccomp::error::SeccompError) -> SeccompError {
    move |source| SeccompError::Compile {
        step,
        reason: source.to_string(),
    }
}

/// libseccomp's token for `arch`, or none when libseccomp (2.5) does not know it.
fn scmp_arch(arch: Arch) -> Option<ScmpArch> {
    Some(match arch {
        Arch::X86 => ScmpArch::X86,
        Arch::X86_64 => ScmpArch::X8664,
        Arch::X32 => ScmpArch::X32,
        Arch::Arm => ScmpArch::Arm,
        Arch::Aarch64 => ScmpArch::Aarch64,
        Arch::Mips => ScmpArch::Mips,
        Arch::Mips64 => ScmpArch::Mips64,
        Arch::Mips64N32 => ScmpArch::Mips64N32,
        Arch::Mipsel => ScmpArch::Mipsel,
        Arch::Mipsel64 => ScmpArch::Mipsel64,
        Arch::Mipsel64N32 => ScmpArch::Mipsel64N32,
        Arch::Ppc => ScmpArch::Ppc,
        Arch::Ppc64 => ScmpArch::Ppc64,
        Arch::Ppc64Le => ScmpArch::Ppc64Le,
        Arch::S390 => ScmpArch::S390,
        Arch::S390X => ScmpArch::S390X,
        Arch::Parisc => ScmpArch::Parisc,
        Arch::Parisc64 => ScmpArch::Parisc64,
        Arch::Riscv64 => ScmpArch::Riscv64,
        // Newer than Debian 12's libseccomp 2.5.4.
        Arch::Loongarch64 | Arch::M68k | Arch::Sh | Arch::Sheb => return None,
    })
}
