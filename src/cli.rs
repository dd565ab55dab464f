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

use crate::config::{self, duration, envfile, Config};
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
    pub expect_exit: Vec<i32>,
    pub log_format: Option<LogFormat>,
    pub no_capture: bool,
    pub env_file: Option<PathBuf>,
    pub max_line: usize,
    pub no_python_env: bool,
    pub verbose: bool,
    pub quiet: bool,
    pub command: Vec<OsString>,
}

impl Default for Cli {
    fn default() -> Self {
        Cli {
            grace: config::DEFAULT_GRACE,
            stop_delay: Duration::ZERO,
            rewrite: Vec::new(),
            single_child: false,
            expect_exit: Vec::new(),
            log_format: None,
            no_capture: false,
            env_file: None,
            max_line: config::DEFAULT_MAX_LINE,
            no_python_env: false,
            verbose: false,
            quiet: false,
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
    Error::Usage(format!("{msg} (see 'pyinit --help')"))
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
    parse(raw).map_err(|e| usage(format!("invalid value '{raw}' for {src}: {e}")))
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
        other => Err(format!("'{other}' is not 1/true/0/false")),
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
        "expect-exit" => cli.expect_exit = list(src, values, exit_status::parse_code)?,
        "log-format" => cli.log_format = Some(typed(src, &last, str::parse::<LogFormat>)?),
        "no-capture" => cli.no_capture = switch(src, values)?,
        "env-file" => cli.env_file = Some(PathBuf::from(last)),
        "max-line" => cli.max_line = typed(src, &last, duration::parse_bytes)?,
        "no-python-env" => cli.no_python_env = switch(src, values)?,
        "verbose" => cli.verbose = switch(src, values)?,
        "quiet" => cli.quiet = switch(src, values)?,
        _ => return Ok(false),
    }
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
        if self.command.is_empty() {
            return Err(Error::Usage(
                "no command given; usage: pyinit [OPTIONS] -- COMMAND [ARG...]".into(),
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
        let env = config::child_env(std::env::vars_os(), env_file, !self.no_python_env);
        Ok(Config {
            name: config::program_name(&self.command[0]),
            command: self.command,
            grace: self.grace,
            stop_delay: self.stop_delay,
            router: Router::new(self.rewrite, self.single_child),
            single_child: self.single_child,
            expect: ExpectExit::new(self.expect_exit),
            log_format: self.log_format.unwrap_or(LogFormat::Raw),
            no_capture: self.no_capture,
            env,
            max_line: self.max_line,
        })
    }
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
