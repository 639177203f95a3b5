//! The `nsinit` command line: parses arguments, calls the library, renders errors.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nsinit::terminal::TtyMode;

/// Run a directory holding a root filesystem and a container.json as a container.
#[derive(Parser)]
#[command(name = "nsinit", version, about, long_about = None)]
struct Cli {
    /// The container's directory (its rootfs, holding container.json)
    #[arg(
        short = 'C',
        long = "root",
        value_name = "DIR",
        default_value = ".",
        global = true
    )]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run CMD as PID 1 of a new container made from the directory
    Exec {
        /// Give the command a terminal (default: when stdin and stdout are terminals)
        #[arg(short = 't', long = "tty", conflicts_with = "no_tty")]
        tty: bool,
        /// Never give the command a terminal
        #[arg(short = 'T', long = "no-tty")]
        no_tty: bool,
        /// The command and its arguments
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<OsString>,
    },
    /// Print the running container's cgroup figures as JSON
    Stats,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Exec {
            tty,
            no_tty,
            command,
        } => nsinit::exec(&nsinit::ExecOptions {
            dir: cli.dir,
            tty: match (tty, no_tty) {
                (true, _) => TtyMode::Always,
                (_, true) => TtyMode::Never,
                _ => TtyMode::Auto,
            },
            command,
        }),
        Command::Stats => nsinit::stats(&cli.dir).map(|json| {
            println!("{json}");
            0
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(error) => {
            eprintln!("nsinit: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
