//! The command line as typed, and the one step that turns it into a
//! validated [`Config`].
//!
//! A small table-driven parser instead of clap: clap costs about 285 KB of the
//! static binary (1.72 MB → 1.43 MB measured), a fifth of pyinit. The table
//! gives `--long`, `--long=value`, `-s value`, `-svalue`, clustered switches
//! (`-cq`), `--` and the first non-option word as the start of the command,
//! every option's `PYINIT_<NAME>` variable (a flag beats it; switches take
//! 1/true/0/false; repeatable options take a comma-separated list), and the
//! help text.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{self, duration, envfile, Config, ProcessSpec};
use crate::error::Error;
use crate::exit_status::{self, ExpectExit};
use crate::output::format::LogFormat;
use crate::signals::rewrite::{self, Router, Rule};

/// Whether an option is a switch or takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Switch,
    Value(&'static str),
    /// Repeatable; the variable holds a comma-separated list.
    List(&'static str),
}

pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub help: &'static str,
}

impl Opt {
    pub fn env_name(&self) -> String {
        format!(
            "PYINIT_{}",
            self.long.replace('-', "_").to_ascii_uppercase()
        )
    }
}

/// The supervisor's options.
pub const OPTS: &[Opt] = &[
    Opt { long: "grace", short: Some('t'), kind: Kind::Value("DURATION"),
          help: "time between the stop signal and SIGKILL (10s, 500ms, 1m30s; a bare number is seconds) [default: 9s]" },
    Opt { long: "stop-delay", short: None, kind: Kind::Value("DURATION"),
          help: "wait this long after a stop signal before forwarding it; a second stop signal ends the wait [default: 0]" },
    Opt { long: "rewrite", short: Some('r'), kind: Kind::List("FROM:TO"),
          help: "rewrite a received signal before forwarding it (TERM:INT); TO = 0 drops it; repeatable" },
    Opt { long: "single-child", short: Some('c'), kind: Kind::Switch,
          help: "forward every signal to the main process only (it stops its own workers)" },
    Opt { long: "group", short: Some('g'), kind: Kind::Switch,
          help: "stop signals to every process of the group (same as --signal-scope group)" },
    Opt { long: "signal-scope", short: None, kind: Kind::Value("auto|group|main"),
          help: "which processes a forwarded signal reaches [default: auto]" },
    Opt { long: "expect-exit", short: Some('e'), kind: Kind::List("CODE"),
          help: "treat this exit code as success (0); repeatable" },
    Opt { long: "log-format", short: None, kind: Kind::Value("raw|prefix|json"),
          help: "how captured lines are written [default: raw]" },
    Opt { long: "no-capture", short: None, kind: Kind::Switch,
          help: "hand the child pyinit's own stdin/stdout/stderr; nothing is copied" },
    Opt { long: "env-file", short: None, kind: Kind::Value("PATH"),
          help: "add KEY=VALUE lines (as in .env files) to the children's environment" },
    Opt { long: "max-line", short: None, kind: Kind::Value("BYTES"),
          help: "longest line held in memory before it is written in pieces [default: 64KiB]" },
    Opt { long: "no-python-env", short: None, kind: Kind::Switch,
          help: "do not add PYTHONUNBUFFERED=1 and PYTHONFAULTHANDLER=1 to the environment" },
    Opt { long: "procfile", short: None, kind: Kind::Value("PATH"),
          help: "run every process of a Procfile (NAME: COMMAND per line)" },
    Opt { long: "config", short: None, kind: Kind::Value("PATH"),
          help: "run the processes of a TOML config (restarts, readiness, order)" },
    Opt { long: "check-config", short: None, kind: Kind::Switch,
          help: "with --procfile/--config: validate, print the plan, start nothing" },
    Opt { long: "verbose", short: Some('v'), kind: Kind::Switch,
          help: "more of pyinit's own diagnostics on stderr (PYINIT_LOG=debug takes a filter)" },
    Opt { long: "quiet", short: Some('q'), kind: Kind::Switch,
          help: "only errors from pyinit itself" },
];

/// The raw options, typed but not yet resolved.
#[derive(Debug, Clone)]
pub struct Cli {
    pub grace: Duration,
    pub stop_delay: Duration,
    pub rewrite: Vec<Rule>,
    pub single_child: bool,
    pub group: bool,
    pub signal_scope: Option<config::SignalScope>,
    pub expect_exit: Vec<i32>,
    pub log_format: Option<LogFormat>,
    pub no_capture: bool,
    pub env_file: Option<PathBuf>,
    pub max_line: usize,
    pub no_python_env: bool,
    pub verbose: bool,
    pub quiet: bool,
    pub procfile: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub check_config: bool,
    /// Options given by flag or variable (they beat a config file's defaults).
    pub explicit: Vec<&'static str>,
    pub command: Vec<OsString>,
}

impl Default for Cli {
    fn default() -> Self {
        Cli {
            grace: config::DEFAULT_GRACE,
            stop_delay: Duration::ZERO,
            rewrite: Vec::new(),
            single_child: false,
            group: false,
            signal_scope: None,
            expect_exit: Vec::new(),
            log_format: None,
            no_capture: false,
            env_file: None,
            max_line: config::DEFAULT_MAX_LINE,
            no_python_env: false,
            verbose: false,
            quiet: false,
            procfile: None,
            config: None,
            check_config: false,
            explicit: Vec::new(),
            command: Vec::new(),
        }
    }
}

/// What the command line asks for.
pub enum Invocation {
    Run(Cli),
    Check(crate::check::options::CheckCli),
    /// `--help` or `--version`: print this on stdout and exit 0.
    Print(String),
}

/// Where a value came from, for error messages.
pub enum Source<'a> {
    Flag(&'a Opt),
    Env(&'a Opt),
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(o) => write!(f, "--{}", o.long),
            Source::Env(o) => f.write_str(&o.env_name()),
        }
    }
}

pub fn usage(msg: String) -> Error {
    // Control characters from the user's input are shown escaped: one line.
    Error::Usage(format!(
        "{} (see 'pyinit --help')",
        crate::error::shown(&msg)
    ))
}

fn utf8(arg: &OsStr) -> Result<&str, Error> {
    arg.to_str().ok_or_else(|| {
        usage(format!(
            "option '{}' is not valid UTF-8",
            arg.to_string_lossy()
        ))
    })
}

/// The options found on the command line, and where the command starts.
pub struct Scanned<'t> {
    table: Vec<&'t Opt>,
    given: Vec<(usize, String)>,
    pub command: Vec<OsString>,
}

/// The result of scanning: options, or text to print (help, version).
pub enum Scan<'t> {
    Options(Scanned<'t>),
    Print(String),
}

/// Splits `args` (without the program name) into options of `table` and the
/// command; `help` is printed for `-h`.
pub fn scan<'t>(
    args: impl IntoIterator<Item = OsString>,
    table: Vec<&'t Opt>,
    help: &dyn Fn() -> String,
) -> Result<Scan<'t>, Error> {
    let find_long = |name: &str| table.iter().position(|o| o.long == name);
    let find_short = |c: char| table.iter().position(|o| o.short == Some(c));
    let mut args = args.into_iter();
    let mut given = Vec::new();
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            command.extend(args.by_ref());
            break;
        }
        if let Some(rest) = bytes.strip_prefix(b"--") {
            let rest = utf8(OsStr::from_bytes(rest))?;
            let (name, inline) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            };
            match name {
                "help" => return Ok(Scan::Print(help())),
                "version" => return Ok(Scan::Print(version())),
                _ => {}
            }
            let i =
                find_long(name).ok_or_else(|| usage(format!("unexpected argument '--{name}'")))?;
            let value = match (table[i].kind, inline) {
                (Kind::Switch, Some(_)) => {
                    return Err(usage(format!("'--{name}' takes no value")));
                }
                (Kind::Switch, None) => String::new(),
                (_, Some(v)) => v,
                (_, None) => next_value(&mut args, table[i])?,
            };
            given.push((i, value));
        } else if bytes.len() > 1 && bytes[0] == b'-' {
            let cluster = utf8(&arg)?;
            for (pos, c) in cluster[1..].char_indices() {
                match c {
                    'h' => return Ok(Scan::Print(help())),
                    'V' => return Ok(Scan::Print(version())),
                    _ => {}
                }
                let i =
                    find_short(c).ok_or_else(|| usage(format!("unexpected argument '-{c}'")))?;
                if table[i].kind == Kind::Switch {
                    given.push((i, String::new()));
                    continue;
                }
                let rest = &cluster[1 + pos + c.len_utf8()..];
                let value = if rest.is_empty() {
                    next_value(&mut args, table[i])?
                } else {
                    rest.to_string()
                };
                given.push((i, value));
                break;
            }
        } else {
            command.push(arg);
            command.extend(args.by_ref());
            break;
        }
    }
    Ok(Scan::Options(Scanned {
        table,
        given,
        command,
    }))
}

impl<'t> Scanned<'t> {
    /// Every option of the table that was given, by flag or else by its
    /// variable, with its values; in table order.
    pub fn resolved(
        &self,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Vec<(Source<'t>, Vec<String>)>, Error> {
        let mut out = Vec::new();
        for (i, opt) in self.table.iter().enumerate() {
            let flags: Vec<String> = self
                .given
                .iter()
                .filter(|(j, _)| *j == i)
                .map(|(_, v)| v.clone())
                .collect();
            if !flags.is_empty() {
                out.push((Source::Flag(opt), flags));
            } else if let Some(v) = env(&opt.env_name()) {
                let v = v
                    .into_string()
                    .map_err(|_| usage(format!("{} is not valid UTF-8", opt.env_name())))?;
                out.push((Source::Env(opt), vec![v]));
            }
        }
        Ok(out)
    }
}

fn next_value(args: &mut impl Iterator<Item = OsString>, opt: &Opt) -> Result<String, Error> {
    let v = args
        .next()
        .ok_or_else(|| usage(format!("'--{}' needs a value", opt.long)))?;
    utf8(&v).map(str::to_string)
}

/// Parses one value with `parse`, naming the option or variable on error.
pub fn typed<T>(
    src: &Source<'_>,
    raw: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, Error> {
    parse(raw).map_err(|e| {
        usage(format!(
            "invalid value '{}' for {src}: {}",
            crate::error::shown(raw),
            crate::error::shown(&e)
        ))
    })
}

/// A switch: present as a flag, or 1/true/0/false in its variable.
pub fn switch(src: &Source<'_>, values: &[String]) -> Result<bool, Error> {
    match src {
        Source::Flag(_) => Ok(true),
        Source::Env(_) => typed(src, values.first().map_or("", String::as_str), parse_bool),
    }
}

/// Every item of a repeatable option: flags repeat, variables hold a comma list.
pub fn list<T>(
    src: &Source<'_>,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, Error> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| typed(src, v, &parse))
        .collect()
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        "0" | "false" | "no" | "off" | "n" | "" => Ok(false),
        other => Err(format!(
            "'{}' is not 1/true/0/false",
            crate::error::shown(other)
        )),
    }
}

/// Parses the arguments (the first is the program name); every usage error
/// is one line.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, Error> {
    parse_with_env(args, &|k| std::env::var_os(k))
}

fn parse_with_env(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Invocation, Error> {
    let mut args = args.into_iter().skip(1).peekable();
    if args.peek().map(|a| a.as_bytes()) == Some(b"check") {
        args.next();
        return crate::check::options::parse(args, env);
    }
    let scanned = match scan(args, OPTS.iter().collect(), &help)? {
        Scan::Print(text) => return Ok(Invocation::Print(text)),
        Scan::Options(s) => s,
    };
    let mut cli = Cli {
        command: scanned.command.clone(),
        ..Cli::default()
    };
    for (src, values) in scanned.resolved(env)? {
        apply(&mut cli, &src, &values)?;
    }
    if cli.verbose && cli.quiet {
        return Err(usage("'--verbose' and '--quiet' exclude each other".into()));
    }
    Ok(Invocation::Run(cli))
}

/// Stores one supervisor option into `cli`; `false` if `src` is not one.
pub fn apply(cli: &mut Cli, src: &Source<'_>, values: &[String]) -> Result<bool, Error> {
    let opt = match src {
        Source::Flag(o) | Source::Env(o) => o,
    };
    let last = values.last().cloned().unwrap_or_default();
    match opt.long {
        "grace" => cli.grace = typed(src, &last, duration::parse)?,
        "stop-delay" => cli.stop_delay = typed(src, &last, duration::parse)?,
        "rewrite" => cli.rewrite = list(src, values, rewrite::parse_rule)?,
        "single-child" => cli.single_child = switch(src, values)?,
        "group" => cli.group = switch(src, values)?,
        "signal-scope" => {
            cli.signal_scope = Some(typed(src, &last, str::parse::<config::SignalScope>)?)
        }
        "expect-exit" => cli.expect_exit = list(src, values, exit_status::parse_code)?,
        "log-format" => cli.log_format = Some(typed(src, &last, str::parse::<LogFormat>)?),
        "no-capture" => cli.no_capture = switch(src, values)?,
        "env-file" => cli.env_file = Some(PathBuf::from(last)),
        "max-line" => cli.max_line = typed(src, &last, duration::parse_bytes)?,
        "no-python-env" => cli.no_python_env = switch(src, values)?,
        "verbose" => cli.verbose = switch(src, values)?,
        "quiet" => cli.quiet = switch(src, values)?,
        "procfile" => cli.procfile = Some(PathBuf::from(last)),
        "config" => cli.config = Some(PathBuf::from(last)),
        "check-config" => cli.check_config = switch(src, values)?,
        _ => return Ok(false),
    }
    cli.explicit.push(opt.long);
    Ok(true)
}

/// Help lines for a table of options.
pub fn describe_options(table: &[Opt]) -> String {
    let mut s = String::new();
    for o in table {
        let short = o.short.map_or("    ".to_string(), |c| format!("-{c}, "));
        let arg = match o.kind {
            Kind::Switch => String::new(),
            Kind::Value(m) | Kind::List(m) => format!(" <{m}>"),
        };
        let head = format!("  {short}--{}{arg}", o.long);
        s.push_str(&format!(
            "{head:<36} {}\n{:<37}[env: {}]\n",
            o.help,
            "",
            o.env_name()
        ));
    }
    s
}

pub fn version() -> String {
    format!("pyinit {}\n", env!("CARGO_PKG_VERSION"))
}

pub fn help() -> String {
    let mut s = String::from(
        "A tiny PID 1 for Python containers: forwards signals to the process group, reaps \
         zombies,\nenforces a grace deadline and captures output as whole lines.\n\n\
         Usage: pyinit [OPTIONS] -- COMMAND [ARG...]\n       \
         pyinit [OPTIONS] --procfile PATH | --config PATH [--check-config]\n       \
         pyinit check [CHECK OPTIONS] -- COMMAND [ARG...]   (see 'pyinit check --help')\n\n\
         Options:\n",
    );
    s.push_str(&describe_options(OPTS));
    s.push_str("  -h, --help                         print this help\n");
    s.push_str("  -V, --version                      print the version\n\n");
    s.push_str(
        "Every option also reads PYINIT_<NAME> (e.g. PYINIT_GRACE=30s); a flag beats the variable.\n\
         Exit status: the command's, 128+N if it died of signal N, 0 for an --expect-exit code;\n\
         126 cannot execute, 127 not found, 2 usage error.\n",
    );
    s
}

impl Cli {
    /// Resolves the raw options into a [`Config`]; reads the env-file.
    pub fn into_config(self) -> Result<Config, Error> {
        let sources = [
            self.procfile.is_some(),
            self.config.is_some(),
            !self.command.is_empty(),
        ];
        match sources.iter().filter(|&&b| b).count() {
            0 => {
                return Err(Error::Usage(
                    "no command given; usage: pyinit [OPTIONS] -- COMMAND [ARG...] \
                     (or --procfile PATH, or --config PATH)"
                        .into(),
                ))
            }
            1 => {}
            _ => {
                return Err(usage(
                    "give one of -- COMMAND, --procfile PATH and --config PATH".into(),
                ))
            }
        }
        if self.check_config && !self.command.is_empty() {
            return Err(usage(
                "--check-config goes with --procfile or --config".into(),
            ));
        }
        let env_file = match &self.env_file {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read(path).map_err(|e| {
                    Error::Usage(format!(
                        "cannot read --env-file '{}': {}",
                        path.display(),
                        crate::error::describe_io(&e)
                    ))
                })?;
                envfile::parse(&text)
                    .map_err(|e| Error::Usage(format!("--env-file '{}': {e}", path.display())))?
            }
        };
        let python = !self.no_python_env;
        let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let env_for = |extra: &[(String, String)]| {
            let file_vars = env_file.iter().cloned();
            let own = extra
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)));
            config::child_env(inherited.iter().cloned(), file_vars.chain(own), python)
        };
        let mut cfg = Config {
            processes: Vec::new(),
            multi: self.command.is_empty(),
            check_config: self.check_config,
            grace: self.grace,
            stop_delay: self.stop_delay,
            router: Router::new(self.rewrite.clone(), self.single_child),
            signal_scope: if self.single_child {
                config::SignalScope::Main
            } else if self.group {
                config::SignalScope::Group
            } else {
                self.signal_scope.unwrap_or_default()
            },
            expect: ExpectExit::new(self.expect_exit.clone()),
            socket: std::env::var_os("PYINIT_SOCKET")
                .filter(|s| !s.is_empty())
                .map_or_else(|| config::DEFAULT_SOCKET.into(), Into::into),
            log_format: self.log_format.unwrap_or(if self.command.is_empty() {
                LogFormat::Prefix
            } else {
                LogFormat::Raw
            }),
            no_capture: self.no_capture,
            max_line: self.max_line,
            start_order: vec![0],
        };
        if let Some(path) = &self.procfile {
            let text = read_text(path, "--procfile")?;
            let entries = config::procfile::parse(&text)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            cfg.processes = entries
                .iter()
                .map(|e| {
                    let mut p = ProcessSpec::new(
                        e.name.clone(),
                        config::procfile::shell_argv(&e.command),
                        env_for(&[]),
                        self.grace,
                    );
                    p.signal_scope = cfg.signal_scope;
                    p
                })
                .collect();
            cfg.start_order = (0..cfg.processes.len()).collect();
        } else if let Some(path) = &self.config {
            let text = read_text(path, "--config")?;
            let at = |e: String| Error::Usage(format!("{}: {e}", path.display()));
            let (defaults, procs) = config::file::load(&text).map_err(at)?;
            // Top-level keys are defaults; flags (and PYINIT_* variables) win.
            let explicit = |name: &str| self.explicit.contains(&name);
            if !explicit("grace") {
                cfg.grace = defaults.grace.unwrap_or(cfg.grace);
            }
            if !explicit("stop-delay") {
                cfg.stop_delay = defaults.stop_delay.unwrap_or(cfg.stop_delay);
            }
            if !explicit("log-format") {
                cfg.log_format = defaults.log_format.unwrap_or(cfg.log_format);
            }
            if !explicit("max-line") {
                cfg.max_line = defaults.max_line.unwrap_or(cfg.max_line);
            }
            if !explicit("expect-exit") && !defaults.expect_exit.is_empty() {
                cfg.expect = ExpectExit::new(defaults.expect_exit.clone());
            }
            let names: Vec<String> = procs.iter().map(|p| p.name.clone()).collect();
            let deps: Vec<Vec<String>> = procs.iter().map(|p| p.depends_on.clone()).collect();
            let (resolved, order) = config::process::start_order(&names, &deps).map_err(at)?;
            cfg.start_order = order;
            for (p, depends_on) in procs.into_iter().zip(resolved) {
                cfg.processes.push(ProcessSpec {
                    env: env_for(&p.env),
                    name: p.name,
                    argv: p.argv,
                    working_dir: p.working_dir,
                    stop_signal: p.stop_signal,
                    grace: p.grace.unwrap_or(cfg.grace),
                    restart: p.restart,
                    ready: p.ready,
                    depends_on,
                    signal_scope: cfg.signal_scope,
                    signals: None,
                    oneshot: false,
                    timeout: None,
                    expect: cfg.expect.clone(),
                });
            }
        } else {
            let mut p = ProcessSpec::new(
                config::program_name(&self.command[0]),
                self.command.clone(),
                env_for(&[]),
                self.grace,
            );
            p.signal_scope = cfg.signal_scope;
            p.expect = cfg.expect.clone();
            cfg.processes.push(p);
        }
        Ok(cfg)
    }
}

fn read_text(path: &std::path::Path, what: &str) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read {what} '{}': {}",
            path.display(),
            crate::error::describe_io(&e)
        ))
    })?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{what} '{}' is not valid UTF-8", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_env(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, Error> {
        let args = std::iter::once("pyinit")
            .chain(args.iter().copied())
            .map(OsString::from);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse_with_env(args, &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.into())
        })? {
            Invocation::Run(cli) => Ok(cli),
            _ => panic!("unexpected invocation"),
        }
    }

    fn run(args: &[&str]) -> Result<Cli, Error> {
        run_env(args, &[])
    }

    #[test]
    fn parses_the_common_form() {
        let cli = run(&[
            "-t", "3s", "-r", "TERM:INT", "-e", "143", "--", "python3", "-u", "app.py",
        ])
        .unwrap();
        assert_eq!(cli.grace, Duration::from_secs(3));
        assert_eq!(cli.rewrite, vec![Rule { from: 15, to: 2 }]);
        assert_eq!(cli.expect_exit, vec![143]);
        assert_eq!(cli.command, ["python3", "-u", "app.py"].map(OsString::from));
    }

    #[test]
    fn accepts_every_spelling_of_a_value() {
        for args in [
            &["--grace=2s", "x"][..],
            &["--grace", "2s", "x"],
            &["-t2s", "x"],
            &["-t", "2"],
        ] {
            let cli = run(args).unwrap();
            assert_eq!(cli.grace, Duration::from_secs(2), "{args:?}");
        }
        let cli = run(&["-cq", "x"]).unwrap();
        assert!(cli.single_child && cli.quiet);
        let cli = run(&[
            "-r",
            "TERM:INT",
            "--rewrite=HUP:0",
            "-r",
            "USR1:USR2,USR2:0",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.rewrite.len(), 4);
    }

    #[test]
    fn command_flags_are_not_pyinits() {
        let cli = run(&["python3", "-c", "pass", "--grace", "1"]).unwrap();
        assert_eq!(
            cli.command,
            ["python3", "-c", "pass", "--grace", "1"].map(OsString::from)
        );
        assert_eq!(cli.grace, Duration::from_secs(9));
    }

    #[test]
    fn variables_fill_in_and_flags_win() {
        let env = [
            ("PYINIT_GRACE", "30s"),
            ("PYINIT_SINGLE_CHILD", "1"),
            ("PYINIT_REWRITE", "TERM:INT,HUP:0"),
            ("PYINIT_EXPECT_EXIT", "143,130"),
            ("PYINIT_NO_CAPTURE", "false"),
            ("PYINIT_LOG_FORMAT", "json"),
        ];
        let cli = run_env(&["x"], &env).unwrap();
        assert_eq!(cli.grace, Duration::from_secs(30));
        assert!(cli.single_child);
        assert!(!cli.no_capture);
        assert_eq!(
            cli.rewrite,
            vec![Rule { from: 15, to: 2 }, Rule { from: 1, to: 0 }]
        );
        assert_eq!(cli.expect_exit, vec![143, 130]);
        assert_eq!(cli.log_format, Some(LogFormat::Json));
        let cli = run_env(&["-t", "1s", "-e", "3", "x"], &env).unwrap();
        assert_eq!(cli.grace, Duration::from_secs(1));
        assert_eq!(cli.expect_exit, vec![3]);
    }

    #[test]
    fn usage_errors_are_one_line_and_name_the_culprit() {
        for (bad, needle) in [
            (&["--bogus", "--", "x"][..], "--bogus"),
            (&["--grace", "abc", "--", "x"], "--grace"),
            (&["-r", "FOO:BAR", "--", "x"], "FOO"),
            (&["--log-format", "xml", "--", "x"], "xml"),
            (&["--grace"], "needs a value"),
            (&["--no-capture=1", "x"], "takes no value"),
            (&["-v", "-q", "x"], "exclude"),
            (&["-Z", "x"], "-Z"),
        ] {
            let err = run(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let msg = err.to_string();
            assert!(
                !msg.contains('\n') && msg.contains(needle),
                "{bad:?}: {msg}"
            );
        }
        let err = run_env(&["x"], &[("PYINIT_GRACE", "soon")]).unwrap_err();
        assert!(err.to_string().contains("PYINIT_GRACE"), "{err}");
        let err = run_env(&["x"], &[("PYINIT_SINGLE_CHILD", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("PYINIT_SINGLE_CHILD"), "{err}");
        let err = run(&[]).unwrap().into_config().unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn help_lists_every_option_and_variable() {
        let h = help();
        for o in OPTS {
            assert!(
                h.contains(&format!("--{}", o.long)) && h.contains(&o.env_name()),
                "{}",
                o.long
            );
        }
    }
}
