//! The `nsinit` command line as a user meets it (`assert_cmd`): help and version on stdout,
//! usage errors with exit code 2, and everything nsinit itself refuses as exit code 125 with
//! exactly one `nsinit:` line.

use assert_cmd::Command;
use fixtures::harness::{self, Trial};

use crate::support::*;

/// The tests of this module, as the harness runs them.
pub fn trials() -> Vec<Trial> {
    let mut trials = fixtures::trials![
        help_names_the_commands_and_the_directory_option,
        exec_help_names_the_terminal_options,
        version_is_the_package_version,
        a_missing_directory_is_one_line_and_exit_125,
        a_missing_container_json_is_one_line_naming_the_file,
        stats_without_a_container_is_one_line_and_exit_125,
    ];
    trials.extend(USAGE_ERRORS.iter().map(|&(case, args, first_line)| {
        harness::trial(
            harness::name(module_path!(), &format!("usage_error_exits_2::{case}")),
            move || usage_error(args, first_line),
        )
    }));
    trials.extend(BAD_CONFIGS.iter().map(|&(fixture, message)| {
        harness::trial(
            harness::name(module_path!(), &format!("bad_config_exits_125::{fixture}")),
            move || bad_config(fixture, message),
        )
    }));
    trials
}

/// `nsinit ARGS`, run from an empty directory.
fn nsinit(args: &[&str]) -> Command {
    let mut cmd = Command::new(NSINIT);
    cmd.args(args).current_dir(std::env::temp_dir());
    cmd
}

/// What a run printed on stderr.
fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

fn help_names_the_commands_and_the_directory_option() -> Ran {
    let assert = nsinit(&["--help"]).assert().success().stderr("");
    let help = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    insta::assert_snapshot!(help, @r"
    A small container runtime: the early libcontainer and its reference CLI, in Rust

    Usage: nsinit [OPTIONS] <COMMAND>

    Commands:
      exec   Run CMD as PID 1 of a new container made from the directory
      stats  Print the running container's cgroup figures as JSON
      help   Print this message or the help of the given subcommand(s)

    Options:
      -C, --root <DIR>  The container's directory (its rootfs, holding container.json) [default: .]
      -h, --help        Print help
      -V, --version     Print version
    ");
    Ok(())
}

fn exec_help_names_the_terminal_options() -> Ran {
    let assert = nsinit(&["exec", "--help"]).assert().success().stderr("");
    let help = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    insta::assert_snapshot!(help, @r"
    Run CMD as PID 1 of a new container made from the directory

    Usage: nsinit exec [OPTIONS] <CMD>...

    Arguments:
      <CMD>...  The command and its arguments

    Options:
      -C, --root <DIR>  The container's directory (its rootfs, holding container.json) [default: .]
      -t, --tty         Give the command a terminal (default: when stdin and stdout are terminals)
      -T, --no-tty      Never give the command a terminal
      -h, --help        Print help
    ");
    Ok(())
}

fn version_is_the_package_version() -> Ran {
    nsinit(&["--version"])
        .assert()
        .success()
        .stdout(format!("nsinit {}\n", env!("CARGO_PKG_VERSION")))
        .stderr("");
    Ok(())
}

/// `nsinit ARGS` is refused before anything runs: exit 2, nothing on stdout, clap's message
/// on stderr, starting with `first_line`.
const USAGE_ERRORS: &[(&str, &[&str], &str)] = &[
    (
        "unknown_flag",
        &["--bogus"],
        "error: unexpected argument '--bogus' found",
    ),
    (
        "unknown_command",
        &["run", "true"],
        "error: unrecognized subcommand 'run'",
    ),
    (
        "no_command",
        &[],
        "A small container runtime: the early libcontainer and its reference CLI, in Rust",
    ),
    (
        "exec_without_a_command",
        &["exec"],
        "error: the following required arguments were not provided:",
    ),
    (
        "tty_and_no_tty",
        &["exec", "-t", "-T", "true"],
        "error: the argument '--tty' cannot be used with '--no-tty'",
    ),
    (
        "root_without_a_directory",
        &["-C"],
        "error: a value is required for '--root <DIR>' but none was supplied",
    ),
];

fn usage_error(args: &[&str], first_line: &str) -> Ran {
    let assert = nsinit(args).assert().code(2).stdout("");
    let err = stderr_of(&assert);
    assert_eq!(err.lines().next(), Some(first_line), "{err}");
    Ok(())
}

fn a_missing_directory_is_one_line_and_exit_125() -> Ran {
    let missing = tempfile::tempdir().unwrap().path().join("gone");
    let missing = missing.display();
    nsinit(&["-C", &missing.to_string(), "exec", "true"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(format!(
            "nsinit: open container directory {missing}: no such file or directory\n"
        ));
    Ok(())
}

/// A directory of its own holding `config` as its container.json, if any.
fn directory_with(config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(config) = config {
        std::fs::write(dir.path().join("container.json"), config).unwrap();
    }
    dir
}

fn a_missing_container_json_is_one_line_naming_the_file() -> Ran {
    // nsinit looks for a running container (its lock in /run/nsinit) before the config.
    needs_root()?;
    let dir = directory_with(None);
    // Without -C, the file is named as the user would find it.
    Command::new(NSINIT)
        .current_dir(dir.path())
        .args(["exec", "true"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(
            "nsinit: ./container.json: no such file: a container directory holds its rootfs \
             and a container.json\n",
        );
    Ok(())
}

fn stats_without_a_container_is_one_line_and_exit_125() -> Ran {
    needs_root()?;
    let dir = directory_with(Some(seed()));
    let shown = dir.path().display();
    nsinit(&["-C", &shown.to_string(), "stats"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(format!(
            "nsinit: stats: no container is running in {shown}\n"
        ));
    assert!(
        !state_file(dir.path()).exists(),
        "stats leaves no state file"
    );
    Ok(())
}

/// A fixture container.json nsinit refuses: exit 125, and on stderr exactly one line, the
/// message (after `DIR/container.json: `).
const BAD_CONFIGS: &[(&str, &str)] = &[
    (
        "bad-syntax",
        "invalid JSON at line 3, column 3: expected `,` or `}`",
    ),
    (
        "bad-unknown-key",
        r#"unknown field "hostnme", did you mean "hostname"?"#,
    ),
    (
        "bad-mtu-high",
        "network.mtu: 65536 is outside the range 68 to 65535",
    ),
    (
        "bad-unknown-namespace",
        r#"namespaces[5]: unknown namespace "NEWTIME" (expected one of "NEWIPC", "NEWNS", "NEWPID", "NEWUTS", "NEWNET", "NEWUSER", "NEWCGROUP")"#,
    ),
];

fn bad_config(fixture: &str, message: &str) -> Ran {
    needs_root()?;
    let config = fixtures::config(fixture).unwrap_or_else(|| panic!("no fixture {fixture}"));
    let dir = directory_with(Some(config));
    let file = dir.path().join("container.json");
    nsinit(&["-C", &dir.path().display().to_string(), "exec", "true"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(format!("nsinit: {}: {message}\n", file.display()));
    assert!(!state_file(dir.path()).exists(), "no state file left");
    Ok(())
}
