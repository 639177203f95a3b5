//! runc's command line, read by hand over `lexopt`'s tokens. clap built the whole tree of
//! commands, flags and help texts at every call: 0.25-0.3 ms of each `nsinit-oci` call, and
//! conmon, containerd's shim and podman make several per container (ARCHITECTURE.md).
//!
//! The rules are those nsinit-oci's callers rely on: global flags before or after the
//! command; a command's flags before, between or after its arguments, except that `exec`'s
//! command and what follows `ps`'s id are taken as they are; `--name value` and
//! `--name=value`; short flags alone or clustered (`-dt`); `--` ends the flags.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::{Arg, Parser, ValueExt};
use nsinit::oci;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The flags every command takes.
#[derive(Debug, Default)]
pub struct Globals {
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_format: LogFormat,
    pub debug: bool,
    pub systemd_cgroup: bool,
}

#[derive(Debug)]
pub enum Command {
    Create(oci::create::Options),
    Start(String),
    State(String),
    Kill {
        all: bool,
        id: String,
        signal: String,
    },
    Delete {
        force: bool,
        id: String,
    },
    Run {
        create: oci::create::Options,
        detach: bool,
    },
    Exec(oci::exec::Options),
    Ps {
        json: bool,
        id: String,
    },
    List {
        json: bool,
        quiet: bool,
    },
    Pause(String),
    Resume(String),
    Update {
        id: String,
        resources: Option<PathBuf>,
        flags: oci::update::Flags,
    },
    Features,
}

/// What the command line asks for.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per process, moved once")]
pub enum Cli {
    /// Print this and exit.
    Help(String),
    Version,
    Run(Globals, Option<Command>),
}

/// A command line that cannot be read: exit 2, as clap and runc do.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads `args` (without the program's name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, UsageError> {
    let mut p = Parser::from_args(args);
    let mut globals = Globals::default();
    let name = match next(&mut p, &mut globals).map_err(|e| usage("", e))? {
        None => return Ok(Cli::Run(globals, None)),
        Some(Token::Help) => return Ok(Cli::Help(HELP.into())),
        Some(Token::Flag(flag)) if flag == "-v" || flag == "--version" => return Ok(Cli::Version),
        Some(Token::Flag(flag)) => return Err(unknown("", &flag)),
        Some(Token::Value(name)) => name.string().map_err(|e| usage("", e))?,
    };
    let mut walk = Walk {
        p,
        globals,
        command: name.clone(),
    };
    let command = match name.as_str() {
        "create" => walk.create(false),
        "run" => walk.create(true),
        "start" => walk.id_only(Command::Start),
        "state" => walk.id_only(Command::State),
        "pause" => walk.id_only(Command::Pause),
        "resume" => walk.id_only(Command::Resume),
        "kill" => walk.kill(),
        "delete" => walk.delete(),
        "exec" => walk.exec(),
        "ps" => walk.ps(),
        "list" => walk.list(),
        "update" => walk.update(),
        "features" => walk.features(),
        "help" => return Ok(Cli::Help(HELP.into())),
        _ => return Err(UsageError(format!("unknown command {name:?} (see --help)"))),
    };
    match command? {
        Some(command) => Ok(Cli::Run(walk.globals, Some(command))),
        None => Ok(Cli::Help(help_of(&name))),
    }
}

/// One argument as a command sees it.
enum Token {
    /// `--name` or `-c`, its value (if it takes one) still to be read.
    Flag(String),
    Value(OsString),
    Help,
}

/// The next argument that is the command's own: global flags go into `globals` wherever
/// they stand.
fn next(p: &mut Parser, globals: &mut Globals) -> Result<Option<Token>, lexopt::Error> {
    loop {
        let flag = match p.next()? {
            None => return Ok(None),
            Some(Arg::Value(value)) => return Ok(Some(Token::Value(value))),
            Some(Arg::Short('h')) | Some(Arg::Long("help")) => return Ok(Some(Token::Help)),
            Some(Arg::Short(c)) => format!("-{c}"),
            Some(Arg::Long(name)) => format!("--{name}"),
        };
        match flag.as_str() {
            "--root" => globals.root = Some(p.value()?.into()),
            "--log" => globals.log = Some(p.value()?.into()),
            "--log-format" => {
                globals.log_format = match p.value()?.string()?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(lexopt::Error::Custom(
                            format!("--log-format {other:?}: expected text or json").into(),
                        ))
                    }
                }
            }
            "--debug" => globals.debug = true,
            "--systemd-cgroup" => globals.systemd_cgroup = true,
            // runc's `--rootless auto|true|false`: nsinit-oci finds out for itself.
            "--rootless" => drop(p.value()?),
            _ => return Ok(Some(Token::Flag(flag))),
        }
    }
}

/// A command's arguments being read; `Ok(None)` from a command asks for its help.
struct Walk {
    p: Parser,
    globals: Globals,
    command: String,
}

/// Each command's result: its arguments, or `None` for `--help`.
type Read = Result<Option<Command>, UsageError>;

impl Walk {
    fn next(&mut self) -> Result<Option<Token>, UsageError> {
        next(&mut self.p, &mut self.globals).map_err(|e| usage(&self.command, e))
    }

    /// The value of the flag just read.
    fn value(&mut self) -> Result<OsString, UsageError> {
        self.p.value().map_err(|e| usage(&self.command, e))
    }

    fn string(&mut self) -> Result<String, UsageError> {
        let value = self.value()?;
        value.string().map_err(|e| usage(&self.command, e))
    }

    fn number<T>(&mut self, flag: &str) -> Result<T, UsageError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.string()?;
        text.parse()
            .map_err(|e| UsageError(format!("{}: {flag} {text:?}: {e}", self.command)))
    }

    fn unknown(&self, flag: &str) -> UsageError {
        unknown(&self.command, flag)
    }

    /// `value` as the id, or an error when there is one already.
    fn id_from(&self, slot: &mut Option<String>, value: OsString) -> Result<(), UsageError> {
        if slot.is_some() {
            return Err(self.unexpected(&value));
        }
        *slot = Some(value.string().map_err(|e| usage(&self.command, e))?);
        Ok(())
    }

    fn unexpected(&self, value: &OsString) -> UsageError {
        UsageError(format!(
            "{}: unexpected argument {value:?} (see {} --help)",
            self.command, self.command
        ))
    }

    /// The id read into `slot`, which every command but `list` and `features` needs.
    fn required(&self, slot: Option<String>) -> Result<String, UsageError> {
        slot.ok_or_else(|| {
            UsageError(format!(
                "{}: missing the container id (see {} --help)",
                self.command, self.command
            ))
        })
    }

    fn id_only(&mut self, make: fn(String) -> Command) -> Read {
        let mut id = None;
        while let Some(token) = self.next()? {
            match token {
                Token::Help => return Ok(None),
                Token::Flag(flag) => return Err(self.unknown(&flag)),
                Token::Value(value) => self.id_from(&mut id, value)?,
            }
        }
        Ok(Some(make(self.required(id)?)))
    }

    /// `create`, or with `run` its `--detach` too.
    fn create(&mut self, run: bool) -> Read {
        let mut bundle = PathBuf::from(".");
        let (mut pid_file, mut console_socket, mut preserve_fds) = (None, None, 0);
        let (mut detach, mut id) = (false, None);
        while let Some(token) = self.next()? {
            match token {
                Token::Help => return Ok(None),
                Token::Value(value) => self.id_from(&mut id, value)?,
                Token::Flag(flag) => match flag.as_str() {
                    "-b" | "--bundle" => bundle = self.value()?.into(),
                    "--pid-file" => pid_file = Some(self.value()?.into()),
                    "--console-socket" => console_socket = Some(self.value()?.into()),
                    "--preserve-fds" => preserve_fds = self.number(&flag)?,
                    // nsinit uses pivot_root where it can and makes no session keyring.
                    "--no-pivot" | "--no-new-keyring" => {}
                    "-d" | "--detach" if run => detach = true,
                    _ => return Err(self.unknown(&flag)),
                },
            }
        }
        let create = oci::create::Options {
            id: self.required(id)?,
            bundle,
            pid_file,
            console_socket,
            preserve_fds,
        };
        Ok(Some(match run {
            true => Command::Run { create, detach },
            false => Command::Create(create),
        }))
    }

    fn kill(&mut self) -> Read {
        let (mut all, mut id, mut signal) = (false, None, None);
        while let Some(token) = self.next()? {
            match token {
                Token::Help => return Ok(None),
                Token::Flag(flag) if flag == "-a" || flag == "--all" => all = true,
                Token::Flag(flag) => return Err(self.unknown(&flag)),
                Token::Value(value) if id.is_none() => self.id_from(&mut id, value)?,
                Token::Value(value) => self.id_from(&mut signal, value)?,
            }
        }
        Ok(Some(Command::Kill {
            all,
            id: self.required(id)?,
            signal: signal.unwrap_or_else(|| "TERM".into()),
        }))
    }

    fn delete(&mut self) -> Read {
        let (mut force, mut id) = (false, None);
        while let Some(token) = self.next()? {
            match token {
                Token::Help => return Ok(None),
                Token::Flag(flag) if flag == "-f" || flag == "--force" => force = true,
                Token::Flag(flag) => return Err(self.unknown(&flag)),
                Token::Value(value) => self.id_from(&mut id, value)?,
            }
        }
        let id = self.required(id)?;
        Ok(Some(Command::Delete { force, id }))
    }

    fn exec(&mut self) -> Read {
        let mut options = oci::exec::Options {
            id: String::new(),
            args: Vec::new(),
            process: None,
            detach: false,
            pid_file: None,
            tty: false,
            console_socket: None,
            cwd: None,
            env: Vec::new(),
            user: None,
            additional_gids: Vec::new(),
            caps: Vec::new(),
            no_new_privs: false,
            preserve_fds: 0,
        };
        let mut id = None;
        while let Some(token) = self.next()? {
            match token {
                Token::Help => return Ok(None),
                Token::Value(value) if id.is_none() => self.id_from(&mut id, value)?,
                Token::Value(value) => {
                    // The command: it and everything after it, flags included, as given.
                    options.args.push(value);
                    let rest = self.p.raw_args().map_err(|e| usage("exec", e))?;
                    options.args.extend(rest);
                }
                Token::Flag(flag) => match flag.as_str() {
                    "-p" | "--process" => options.process = Some(self.value()?.into()),
                    "-d" | "--detach" => options.detach = true,
                    "--pid-file" => options.pid_file = Some(self.value()?.into()),
                    "-t" | "--tty" => options.tty = true,
                    "--console-socket" => options.console_socket = Some(self.value()?.into()),
                    "--cwd" => options.cwd = Some(self.string()?),
                    "-e" | "--env" => options.env.push(self.string()?),
                    "-u" | "--user" => options.user = Some(self.string()?),
                    "-g" | "--additional-gids" => {
                        let gid = self.number(&flag)?;
                        options.additional_gids.push(gid);
                    }
                    "-c" | "--cap" => options.caps.push(self.string()?),
                    "--no-new-privs" => options.no_new_privs = true,
                    "--preserve-fds" => options.preserve_fds = self.number(&flag)?,
                    _ => return Err(self.unknown(&flag)),
                },
            }
        }
        options.id = self.required(id)?;
        Ok(Some(Command::Exec(options)))
    }

    /// `-f table|json`.
    fn format(&mut self) -> Result<bool, UsageError> {
        match self.string()?.as_str() {
            "table" => Ok(false),
            "json" => Ok(true),
            other => Err(UsageError(format!(
                "{}: --format {other:?}: expected table or json",
                self.command
            ))),
        }
    }

    fn ps(&mut self) -> Read {
        let (mut json, mut id) = (false, None);
        while let Some(token) = self.next()? {
            match token {
                Token::Help => return Ok(None),
                Token::Flag(flag) if flag == "-f" || flag == "--format" => json = self.format()?,
                Token::Flag(flag) => return Err(self.unknown(&flag)),
                Token::Value(value) => {
                    self.id_from(&mut id, value)?;
                    // runc hands what follows the id (`-ef`) to ps(1); nsinit-oci lists
                    // pids only.
                    let rest = self.p.raw_args().map_err(|e| usage("ps", e))?;
                    rest.for_each(drop);
                }
            }
        }
        let id = self.required(id)?;
        Ok(Some(Command::Ps { json, id }))
    }

    fn list(&mut self) -> Read {
        let (mut json, mut quiet) = (false, false);
        while let Some(token) = self.next()? {
            match token {
                Token::Help => return Ok(None),
                Token::Flag(flag) if flag == "-f" || flag == "--format" => json = self.format()?,
                Token::Flag(flag) if flag == "-q" || flag == "--quiet" => quiet = true,
                Token::Flag(flag) => return Err(self.unknown(&flag)),
                Token::Value(value) => return Err(self.unexpected(&value)),
            }
        }
        Ok(Some(Command::List { json, quiet }))
    }

    fn update(&mut self) -> Read {
        let (mut flags, mut resources, mut id) = (oci::update::Flags::default(), None, None);
        while let Some(token) = self.next()? {
            let flag = match token {
                Token::Help => return Ok(None),
                Token::Value(value) => {
                    self.id_from(&mut id, value)?;
                    continue;
                }
                Token::Flag(flag) => flag,
            };
            match flag.as_str() {
                "-r" | "--resources" => resources = Some(self.value()?.into()),
                "-m" | "--memory" => flags.memory = Some(self.bytes(&flag)?),
                "--memory-reservation" => flags.memory_reservation = Some(self.bytes(&flag)?),
                "--memory-swap" => {
                    flags.memory_swap = match self.string()?.as_str() {
                        "-1" => Some(-1),
                        text => Some(bytes(text).map_err(|e| self.invalid(&flag, e))? as i64),
                    }
                }
                "--cpu-shares" => flags.cpu_shares = Some(self.number(&flag)?),
                "--cpu-quota" => flags.cpu_quota = Some(self.number(&flag)?),
                "--cpu-period" => flags.cpu_period = Some(self.number(&flag)?),
                "--cpuset-cpus" => flags.cpuset_cpus = Some(self.string()?),
                "--cpuset-mems" => flags.cpuset_mems = Some(self.string()?),
                "--pids-limit" => flags.pids_limit = Some(self.number(&flag)?),
                "--blkio-weight" => flags.blkio_weight = Some(self.number(&flag)?),
                _ => return Err(self.unknown(&flag)),
            }
        }
        let id = self.required(id)?;
        Ok(Some(Command::Update {
            id,
            resources,
            flags,
        }))
    }

    fn bytes(&mut self, flag: &str) -> Result<u64, UsageError> {
        let text = self.string()?;
        bytes(&text).map_err(|e| self.invalid(flag, e))
    }

    fn invalid(&self, flag: &str, why: String) -> UsageError {
        UsageError(format!("{}: {flag}: {why}", self.command))
    }

    fn features(&mut self) -> Read {
        match self.next()? {
            None => Ok(Some(Command::Features)),
            Some(Token::Help) => Ok(None),
            Some(Token::Flag(flag)) => Err(self.unknown(&flag)),
            Some(Token::Value(value)) => Err(self.unexpected(&value)),
        }
    }
}

/// `1024`, `64k`, `32m`, `1g`: bytes.
pub fn bytes(text: &str) -> Result<u64, String> {
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

fn usage(command: &str, error: lexopt::Error) -> UsageError {
    match command {
        "" => UsageError(format!("{error} (see --help)")),
        _ => UsageError(format!("{command}: {error} (see {command} --help)")),
    }
}

fn unknown(command: &str, flag: &str) -> UsageError {
    match command {
        "" => UsageError(format!("unknown flag {flag} (see --help)")),
        _ => UsageError(format!(
            "{command}: unknown flag {flag} (see {command} --help)"
        )),
    }
}

const HELP: &str = "\
nsinit-oci: an OCI runtime; runs containers from bundles, driven as runc is

Usage: nsinit-oci [GLOBAL FLAGS] COMMAND [FLAGS] [ARGS]

Commands:
  create [FLAGS] ID            create a container from a bundle; its process waits for start
  start ID                     start a created container's process
  state ID                     print a container's state as JSON
  kill [-a] ID [SIGNAL]        send SIGNAL (default TERM) to its process, or --all to all
  delete [-f] ID               delete a stopped container (--force: kill it first)
  run [FLAGS] ID               create and start a container, wait for it, delete it
  exec [FLAGS] ID CMD [ARGS]   run a process in a running container
  ps [-f table|json] ID        list a container's processes
  list [-f table|json] [-q]    list containers
  pause ID, resume ID          freeze, thaw a container's processes
  update [FLAGS] ID            change a running container's resource limits
  features                     print the features this runtime supports, as JSON

Global flags (before or after the command):
  --root DIR              container state (default /run/nsinit-oci, or
                          $XDG_RUNTIME_DIR/nsinit-oci when not root or in a user namespace)
  --log FILE              log to FILE instead of stderr
  --log-format text|json  log lines as text (default) or JSON objects
  --debug                 log debug lines too
  --systemd-cgroup        manage cgroups through systemd (not supported: an error)
  --rootless MODE         accepted for runc compatibility
  -v, --version           print the version and the runtime-spec version
  -h, --help              print this; COMMAND --help prints the command's flags
";

/// `create`'s flags, `run`'s too (the first line's indent survives no `\` continuation).
const CREATE_FLAGS: &str =
    "  -b, --bundle DIR        the bundle: config.json and the rootfs (default .)
  --pid-file FILE         write the container's pid to FILE
  --console-socket PATH   send the terminal's master to this unix socket
  --preserve-fds N        pass N fds from 3 on to the container's process
  --no-pivot, --no-new-keyring  accepted for runc compatibility
";

const EXEC_HELP: &str = "\
Usage: nsinit-oci exec [FLAGS] ID CMD [ARGS...]
       nsinit-oci exec [FLAGS] --process FILE ID

Run a process in a running container.

  -p, --process FILE      a runtime-spec process JSON file
  -d, --detach            return once the process runs
  --pid-file FILE         write the process's pid to FILE
  -t, --tty               give the process a terminal
  --console-socket PATH   send the terminal's master to this unix socket
  --cwd DIR               the working directory
  -e, --env NAME=VALUE    add to the container's environment (repeatable)
  -u, --user UID[:GID]    the user
  -g, --additional-gids GID  a supplementary group (repeatable)
  -c, --cap CAP           add a capability, as CAP_NET_ADMIN (repeatable)
  --no-new-privs          set no_new_privs
  --preserve-fds N        pass N fds from 3 on to the process
";

const UPDATE_HELP: &str = "\
Usage: nsinit-oci update [FLAGS] ID

Change a running container's resource limits.

  -r, --resources FILE    a runtime-spec linux.resources JSON file, - for stdin
  -m, --memory BYTES      memory limit (1024, 64k, 32m, 1g)
  --memory-reservation BYTES
  --memory-swap BYTES     memory + swap limit, -1 for none
  --cpu-shares N, --cpu-quota N, --cpu-period N
  --cpuset-cpus LIST, --cpuset-mems LIST
  --pids-limit N          -1 for none
  --blkio-weight N
";

/// Each command's usage line and what it does, for `COMMAND --help` (`exec` and `update`
/// have their own texts).
const USAGES: &[(&str, &str, &str)] = &[
    (
        "create",
        "create [FLAGS] ID",
        "Create a container from a bundle; its process waits for start.",
    ),
    (
        "run",
        "run [FLAGS] ID",
        "Create and start a container, wait for it and delete it; exit with its status.",
    ),
    ("start", "start ID", "Start a created container's process."),
    (
        "state",
        "state ID",
        "Print a container's state as runtime-spec's JSON.",
    ),
    (
        "pause",
        "pause ID",
        "Freeze a running container's processes.",
    ),
    (
        "resume",
        "resume ID",
        "Thaw a paused container's processes.",
    ),
    (
        "kill",
        "kill [-a|--all] ID [SIGNAL]",
        "Send SIGNAL (KILL, SIGKILL or 9; default TERM) to the container's process,\n\
         or with --all to every process in it.",
    ),
    (
        "delete",
        "delete [-f|--force] ID",
        "Delete a stopped container; --force kills it first.",
    ),
    (
        "ps",
        "ps [-f|--format table|json] ID",
        "List the container's processes (json: an array of host pids).",
    ),
    (
        "list",
        "list [-f|--format table|json] [-q|--quiet]",
        "List containers (--quiet: their ids only).",
    ),
    (
        "features",
        "features",
        "Print the features this runtime supports, as runtime-spec's JSON.",
    ),
];

/// The help of `command`.
fn help_of(command: &str) -> String {
    match command {
        "exec" => return EXEC_HELP.into(),
        "update" => return UPDATE_HELP.into(),
        _ => {}
    }
    let Some((_, usage, what)) = USAGES.iter().find(|(name, ..)| *name == command) else {
        return HELP.into();
    };
    let mut help = format!("Usage: nsinit-oci {usage}\n\n{what}\n");
    match command {
        "create" => help.push_str(&format!("\n{CREATE_FLAGS}")),
        "run" => help.push_str(&format!(
            "\n{CREATE_FLAGS}  -d, --detach            return once the container runs\n"
        )),
        _ => {}
    }
    help
}

#[cfg(test)]
mod tests;
