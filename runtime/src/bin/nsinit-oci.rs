//! The `nsinit-oci` command line: runc's, parsed here; each command's work is in
//! `nsinit::oci`. Errors go to the log (`--log`, `--log-format`) and stderr, one line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use nsinit::oci::container::Root;
use nsinit::oci::log::Logger;
use nsinit::oci::{self, Context, OciError};

/// An OCI runtime: runs containers from bundles, driven as runc is.
#[derive(Parser)]
#[command(name = "nsinit-oci", about, long_about = None, disable_version_flag = true)]
struct Cli {
    /// Where container state lives (default /run/nsinit-oci, or $XDG_RUNTIME_DIR/nsinit-oci
    /// when not root or in a user namespace)
    #[arg(long, value_name = "DIR", global = true)]
    root: Option<PathBuf>,
    /// Log to this file instead of stderr
    #[arg(long, value_name = "FILE", global = true)]
    log: Option<PathBuf>,
    /// Log format
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    /// Log debug lines too
    #[arg(long, global = true)]
    debug: bool,
    /// Manage cgroups through systemd (not supported)
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility: auto, true or false
    #[arg(long, value_name = "MODE", global = true)]
    rootless: Option<String>,
    /// Print the version and the runtime-spec version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The bundle: a directory holding config.json and the rootfs
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    bundle: PathBuf,
    /// Write the container's pid here
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Send the terminal's master to this unix socket
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (nsinit always uses pivot_root where it can)
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility (nsinit makes no session keyring)
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many fds from 3 on to the container's process
    #[arg(long, value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    /// The container's id
    id: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container from a bundle; its process waits for start
    Create(CreateArgs),
    /// Start a created container's process
    Start { id: String },
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal (default TERM) to a container's process, or with --all to all of them
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a stopped container (--force: kill it first)
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container, wait for it, and delete it
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container runs
        #[arg(short, long)]
        detach: bool,
    },
    /// Run a process in a running container
    Exec {
        /// A runtime-spec process JSON file
        #[arg(short, long, value_name = "FILE")]
        process: Option<PathBuf>,
        /// Return once the process runs
        #[arg(short, long)]
        detach: bool,
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// Give the process a terminal
        #[arg(short, long)]
        tty: bool,
        #[arg(long, value_name = "PATH")]
        console_socket: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        cwd: Option<String>,
        /// NAME=VALUE, added to the container's environment
        #[arg(short, long, value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// UID[:GID]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short = 'g', long, value_name = "GID")]
        additional_gids: Vec<u32>,
        /// Add a capability (CAP_NET_ADMIN)
        #[arg(short, long)]
        cap: Vec<String>,
        #[arg(long)]
        no_new_privs: bool,
        #[arg(long, value_name = "N", default_value_t = 0)]
        preserve_fds: u32,
        id: String,
        /// The command and its arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// List a container's processes
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        id: String,
        /// Accepted for runc compatibility
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        /// Ids only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze a container's processes
    Pause { id: String },
    /// Thaw a paused container's processes
    Resume { id: String },
    /// Change a running container's resource limits
    Update {
        /// A runtime-spec linux.resources JSON file, - for stdin
        #[arg(short, long, value_name = "FILE")]
        resources: Option<PathBuf>,
        #[arg(short, long, value_parser = bytes)]
        memory: Option<u64>,
        #[arg(long, value_parser = bytes)]
        memory_reservation: Option<u64>,
        #[arg(long, allow_hyphen_values = true)]
        memory_swap: Option<String>,
        #[arg(long)]
        cpu_shares: Option<u64>,
        #[arg(long, allow_hyphen_values = true)]
        cpu_quota: Option<i64>,
        #[arg(long)]
        cpu_period: Option<u64>,
        #[arg(long)]
        cpuset_cpus: Option<String>,
        #[arg(long)]
        cpuset_mems: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        pids_limit: Option<i64>,
        #[arg(long)]
        blkio_weight: Option<u16>,
        id: String,
    },
    /// Print the features this runtime supports, as runtime-spec's JSON
    Features,
}

/// `1024`, `64k`, `32m`, `1g`: bytes.
fn bytes(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&trimmed[..at], c),
        _ => (trimmed, ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => return Err(format!("{text:?} is not a size (bytes, or with k, m, g)")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or with k, m, g)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!("nsinit-oci version {}", env!("CARGO_PKG_VERSION"));
        println!("spec: {}", oci::container::OCI_VERSION);
        return ExitCode::SUCCESS;
    }
    let json = matches!(cli.log_format, LogFormat::Json);
    let log = match Logger::open(cli.log.as_deref(), json, cli.debug) {
        Ok(log) => log,
        Err(why) => {
            eprintln!("nsinit-oci: {why}");
            Logger::stderr()
        }
    };
    let mut ctx = Context {
        root: Root::new(cli.root.clone().unwrap_or_else(Context::default_root)),
        log,
    };
    let result = match cli.command {
        _ if cli.systemd_cgroup => Err(OciError::Invalid(
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

fn create_options(args: CreateArgs) -> oci::create::Options {
    oci::create::Options {
        id: args.id,
        bundle: args.bundle,
        pid_file: args.pid_file,
        console_socket: args.console_socket,
        preserve_fds: args.preserve_fds,
    }
}

fn dispatch(ctx: &mut Context, command: Command) -> Result<i32, OciError> {
    match command {
        Command::Create(args) => oci::create::run(ctx, &create_options(args)),
        Command::Start { id } => oci::start::run(ctx, &id),
        Command::State { id } => oci::state::run(ctx, &id),
        Command::Kill { all, id, signal } => oci::kill::run(ctx, &id, &signal, all),
        Command::Delete { force, id } => oci::delete::run(ctx, &id, force),
        Command::Run { create, detach } => oci::run::run(ctx, &create_options(create), detach),
        Command::Exec {
            process,
            detach,
            pid_file,
            tty,
            console_socket,
            cwd,
            env,
            user,
            additional_gids,
            cap,
            no_new_privs,
            preserve_fds,
            id,
            command,
        } => oci::exec::run(
            ctx,
            &oci::exec::Options {
                id,
                args: command,
                process,
                detach,
                pid_file,
                tty,
                console_socket,
                cwd,
                env,
                user,
                additional_gids,
                caps: cap,
                no_new_privs,
                preserve_fds,
            },
        ),
        Command::Ps { format, id, .. } => oci::ps::run(ctx, &id, matches!(format, Format::Json)),
        Command::List { format, quiet } => {
            oci::list::run(ctx, matches!(format, Format::Json), quiet)
        }
        Command::Pause { id } => oci::pause::run(ctx, &id, true),
        Command::Resume { id } => oci::pause::run(ctx, &id, false),
        Command::Update {
            resources,
            memory,
            memory_reservation,
            memory_swap,
            cpu_shares,
            cpu_quota,
            cpu_period,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            blkio_weight,
            id,
        } => {
            let memory_swap = match memory_swap.as_deref() {
                None => None,
                Some("-1") => Some(-1),
                Some(text) => Some(bytes(text).map_err(OciError::Invalid)? as i64),
            };
            let flags = oci::update::Flags {
                memory,
                memory_reservation,
                memory_swap,
                cpu_shares,
                cpu_quota,
                cpu_period,
                cpuset_cpus,
                cpuset_mems,
                pids_limit,
                blkio_weight,
            };
            oci::update::run(ctx, &id, resources.as_deref(), &flags)
        }
        Command::Features => oci::features::run(ctx),
    }
}
