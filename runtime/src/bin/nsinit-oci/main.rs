//! The `nsinit-oci` command line: runc's, read in `cli.rs`; each command's work is in
//! `nsinit::oci`. Errors go to the log (`--log`, `--log-format`) and stderr, one line.

mod cli;

use std::process::ExitCode;

use cli::{Cli, Command, LogFormat};
use nsinit::oci::container::Root;
use nsinit::oci::log::Logger;
use nsinit::oci::{self, Context, OciError};

fn main() -> ExitCode {
    let (globals, command) = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Cli::Run(globals, command)) => (globals, command),
        Ok(Cli::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Cli::Version) => {
            println!("nsinit-oci version {}", env!("CARGO_PKG_VERSION"));
            println!("spec: {}", oci::container::OCI_VERSION);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("nsinit-oci: {error}");
            return ExitCode::from(2);
        }
    };
    let json = globals.log_format == LogFormat::Json;
    let log = match Logger::open(globals.log.as_deref(), json, globals.debug) {
        Ok(log) => log,
        Err(why) => {
            eprintln!("nsinit-oci: {why}");
            Logger::stderr()
        }
    };
    let mut ctx = Context {
        root: Root::new(globals.root.unwrap_or_else(Context::default_root)),
        log,
    };
    let result = match command {
        _ if globals.systemd_cgroup => Err(OciError::Invalid(
            "--systemd-cgroup: systemd cgroup management is not supported; use cgroupfs".into(),
        )),
        None => Err(OciError::Invalid(
            "no command given (see nsinit-oci --help)".into(),
        )),
        Some(command) => dispatch(&mut ctx, command),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(error) => {
            ctx.log.error(&error.to_string());
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

fn dispatch(ctx: &mut Context, command: Command) -> Result<i32, OciError> {
    match command {
        Command::Create(options) => oci::create::run(ctx, &options),
        Command::Start(id) => oci::start::run(ctx, &id),
        Command::State(id) => oci::state::run(ctx, &id),
        Command::Kill { all, id, signal } => oci::kill::run(ctx, &id, &signal, all),
        Command::Delete { force, id } => oci::delete::run(ctx, &id, force),
        Command::Run { create, detach } => oci::run::run(ctx, &create, detach),
        Command::Exec(options) => oci::exec::run(ctx, &options),
        Command::Ps { json, id } => oci::ps::run(ctx, &id, json),
        Command::List { json, quiet } => oci::list::run(ctx, json, quiet),
        Command::Pause(id) => oci::pause::run(ctx, &id, true),
        Command::Resume(id) => oci::pause::run(ctx, &id, false),
        Command::Update {
            id,
            resources,
            flags,
        } => oci::update::run(ctx, &id, resources.as_deref(), &flags),
        Command::Features => oci::features::run(ctx),
    }
}
