use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rstest::rstest;

use super::*;

fn words(line: &str) -> Vec<OsString> {
    line.split_whitespace().map(OsString::from).collect()
}

fn run(line: &str) -> (Globals, Command) {
    match parse(words(line)) {
        Ok(Cli::Run(globals, Some(command))) => (globals, command),
        other => panic!("{line}: {other:?}"),
    }
}

fn error(line: &str) -> String {
    match parse(words(line)) {
        Err(UsageError(text)) => text,
        other => panic!("{line}: expected a usage error, got {other:?}"),
    }
}

#[test]
fn conmon_create_as_podman_runs_it() {
    let (globals, command) = run(
        "--log-format=json --log /run/x/oci-log create --bundle /b --pid-file /run/x/pidfile \
         --no-pivot --no-new-keyring --preserve-fds 2 --console-socket /run/x/sock ID1",
    );
    assert_eq!(globals.log_format, LogFormat::Json);
    assert_eq!(globals.log.as_deref(), Some(Path::new("/run/x/oci-log")));
    let Command::Create(options) = command else {
        panic!("{command:?}")
    };
    assert_eq!(options.id, "ID1");
    assert_eq!(options.bundle, PathBuf::from("/b"));
    assert_eq!(
        options.pid_file.as_deref(),
        Some(Path::new("/run/x/pidfile"))
    );
    assert_eq!(
        options.console_socket.as_deref(),
        Some(Path::new("/run/x/sock"))
    );
    assert_eq!(options.preserve_fds, 2);
}

#[test]
fn containerd_globals_then_exec_of_a_process_file() {
    let (globals, command) = run(
        "--root /run/containerd/runc/default --log /b/log.json --log-format json exec \
         --process /tmp/p.json --detach --pid-file /b/exec.pid ctr1",
    );
    assert_eq!(
        globals.root.as_deref(),
        Some(Path::new("/run/containerd/runc/default"))
    );
    let Command::Exec(options) = command else {
        panic!("{command:?}")
    };
    assert_eq!(options.id, "ctr1");
    assert_eq!(options.process.as_deref(), Some(Path::new("/tmp/p.json")));
    assert!(options.detach);
    assert!(options.args.is_empty());
}

#[rstest]
#[case::before("--root /s --debug state c")]
#[case::after("state c --root /s --debug")]
#[case::between("state --root=/s c --debug")]
fn global_flags_stand_anywhere(#[case] line: &str) {
    let (globals, command) = run(line);
    assert_eq!(globals.root.as_deref(), Some(Path::new("/s")));
    assert!(globals.debug);
    assert!(matches!(command, Command::State(id) if id == "c"));
}

#[test]
fn exec_takes_everything_after_the_command_as_it_is() {
    let (_, command) = run("exec -t --env A=1 -e B=2 c sh -c --tty -- x");
    let Command::Exec(options) = command else {
        panic!("{command:?}")
    };
    assert_eq!(options.id, "c");
    assert!(options.tty);
    assert_eq!(options.env, ["A=1", "B=2"]);
    assert_eq!(options.args, words("sh -c --tty -- x"));
}

#[test]
fn exec_after_a_double_dash_and_with_clustered_flags() {
    let (_, command) = run("exec -dt --user 1000:1000 -g 10 -g 20 --cap CAP_KILL c -- ls -l");
    let Command::Exec(options) = command else {
        panic!("{command:?}")
    };
    assert!(options.detach && options.tty);
    assert_eq!(options.user.as_deref(), Some("1000:1000"));
    assert_eq!(options.additional_gids, [10, 20]);
    assert_eq!(options.caps, ["CAP_KILL"]);
    assert_eq!(options.args, words("ls -l"));
}

#[rstest]
#[case("kill c", false, "TERM")]
#[case("kill c 9", false, "9")]
#[case("kill --all c SIGKILL", true, "SIGKILL")]
#[case("kill c KILL -a", true, "KILL")]
fn kill_signal_defaults_to_term(#[case] line: &str, #[case] all: bool, #[case] signal: &str) {
    let (_, command) = run(line);
    assert!(
        matches!(&command, Command::Kill { all: a, id, signal: s } if *a == all && id == "c" && s == signal),
        "{command:?}"
    );
}

#[test]
fn run_takes_create_flags_and_detach() {
    let (_, command) = run("run -d -b /bundle c");
    let Command::Run { create, detach } = command else {
        panic!("{command:?}")
    };
    assert!(detach);
    assert_eq!(create.bundle, PathBuf::from("/bundle"));
    assert_eq!(create.id, "c");
}

#[test]
fn update_reads_sizes_and_negative_numbers() {
    let (_, command) = run(
        "update --memory 32m --memory-swap -1 --cpu-quota -1 --pids-limit -1 \
         --cpuset-cpus 0-1 --resources - c",
    );
    let Command::Update {
        id,
        resources,
        flags,
    } = command
    else {
        panic!("{command:?}")
    };
    assert_eq!(id, "c");
    assert_eq!(resources.as_deref(), Some(Path::new("-")));
    assert_eq!(flags.memory, Some(32 << 20));
    assert_eq!(flags.memory_swap, Some(-1));
    assert_eq!(flags.cpu_quota, Some(-1));
    assert_eq!(flags.pids_limit, Some(-1));
    assert_eq!(flags.cpuset_cpus.as_deref(), Some("0-1"));
}

#[test]
fn the_rest_of_the_commands() {
    assert!(matches!(run("delete -f c").1, Command::Delete { force: true, id } if id == "c"));
    assert!(matches!(run("ps --format json c aux").1, Command::Ps { json: true, id } if id == "c"));
    assert!(matches!(run("ps c -ef").1, Command::Ps { json: false, id } if id == "c"));
    assert!(matches!(
        run("list -q --format=json").1,
        Command::List {
            json: true,
            quiet: true
        }
    ));
    assert!(matches!(run("pause c").1, Command::Pause(id) if id == "c"));
    assert!(matches!(run("resume c").1, Command::Resume(id) if id == "c"));
    assert!(matches!(run("start c").1, Command::Start(id) if id == "c"));
    assert!(matches!(run("features").1, Command::Features));
}

#[test]
fn no_command_is_left_to_main_and_version_and_help_print() {
    assert!(matches!(parse(words("--root /s")), Ok(Cli::Run(_, None))));
    assert!(matches!(parse(words("-v")), Ok(Cli::Version)));
    assert!(matches!(parse(words("--version")), Ok(Cli::Version)));
    let Ok(Cli::Help(top)) = parse(words("--help")) else {
        panic!()
    };
    assert!(top.contains("exec [FLAGS] ID CMD [ARGS]"), "{top}");
    let Ok(Cli::Help(exec)) = parse(words("exec --help")) else {
        panic!()
    };
    assert!(exec.contains("--process FILE"), "{exec}");
    let Ok(Cli::Help(create)) = parse(words("create -h")) else {
        panic!()
    };
    assert!(create.contains("--console-socket PATH"), "{create}");
}

#[rstest]
#[case("create --bogus c", "create: unknown flag --bogus (see create --help)")]
#[case("create", "create: missing the container id (see create --help)")]
#[case("state a b", "state: unexpected argument \"b\" (see state --help)")]
#[case("frobnicate c", "unknown command \"frobnicate\" (see --help)")]
#[case("--bogus state c", "unknown flag --bogus (see --help)")]
#[case(
    "--log-format xml state c",
    "--log-format \"xml\": expected text or json"
)]
#[case(
    "create --preserve-fds many c",
    "create: --preserve-fds \"many\": invalid digit"
)]
#[case("update --memory lots c", "update: --memory: \"lots\" is not a size")]
#[case(
    "list --format yaml",
    "list: --format \"yaml\": expected table or json"
)]
#[case("state --root", "state: missing argument for option '--root'")]
#[case(
    "delete --force=yes c",
    "delete: unexpected argument for option '--force'"
)]
fn bad_command_lines_say_what_is_wrong(#[case] line: &str, #[case] start: &str) {
    let text = error(line);
    assert!(text.contains(start), "{line}: {text}");
}

#[rstest]
#[case("1024", 1024)]
#[case("64k", 64 << 10)]
#[case("32M", 32 << 20)]
#[case("1gb", 1 << 30)]
fn sizes(#[case] text: &str, #[case] expected: u64) {
    assert_eq!(bytes(text), Ok(expected));
}

#[rstest]
fn every_command_has_its_help(
    #[values(
        "create", "run", "start", "state", "kill", "delete", "exec", "ps", "list", "pause",
        "resume", "update", "features"
    )]
    command: &str,
) {
    let Ok(Cli::Help(text)) = parse(words(&format!("{command} --help"))) else {
        panic!("{command} --help")
    };
    assert!(
        text.starts_with(&format!("Usage: nsinit-oci {command}")),
        "{text}"
    );
    assert!(
        text.lines().all(|line| !line.starts_with('-')),
        "a flag's line lost its indent:\n{text}"
    );
}
