//! The command line as typed (clap derive, each option with its `PYINIT_*`
//! variable), and the one step that turns it into a validated [`Config`].

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use crate::config::{self, duration, envfile, Config};
use crate::error::Error;
use crate::exit_status::{self, ExpectExit};
use crate::output::format::LogFormat;
use crate::signals::rewrite::{self, Router, Rule};

#[derive(Debug, Parser)]
#[command(
    name = "pyinit",
    version,
    about = "A tiny PID 1 for Python containers: forwards signals to the process group, \
             reaps zombies, enforces a grace deadline and captures output as whole lines.",
    override_usage = "pyinit [OPTIONS] -- COMMAND [ARG...]",
    after_help = "Every option also reads PYINIT_<NAME> (e.g. PYINIT_GRACE=30s); a flag beats the variable."
)]
pub struct Cli {
    /// Time between the stop signal and SIGKILL (10s, 500ms, 1m30s; a bare number is seconds).
    #[arg(short = 't', long, env = "PYINIT_GRACE", value_name = "DURATION", default_value = "9s",
          value_parser = duration::parse)]
    pub grace: std::time::Duration,

    /// Wait this long after a stop signal before forwarding it; a second stop signal ends the wait.
    #[arg(long, env = "PYINIT_STOP_DELAY", value_name = "DURATION", default_value = "0",
          value_parser = duration::parse)]
    pub stop_delay: std::time::Duration,

    /// Rewrite a received signal before forwarding it (TERM:INT); TO = 0 drops it. Repeatable.
    #[arg(short = 'r', long, env = "PYINIT_REWRITE", value_name = "FROM:TO",
          value_delimiter = ',', action = ArgAction::Append, value_parser = rewrite::parse_rule)]
    pub rewrite: Vec<Rule>,

    /// Forward every signal to the main process only (it must stop its own workers).
    #[arg(short = 'c', long, env = "PYINIT_SINGLE_CHILD", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub single_child: bool,

    /// Treat this exit code as success (0). Repeatable.
    #[arg(short = 'e', long, env = "PYINIT_EXPECT_EXIT", value_name = "CODE",
          value_delimiter = ',', action = ArgAction::Append, value_parser = exit_status::parse_code)]
    pub expect_exit: Vec<i32>,

    /// How captured lines are written: raw, prefix or json [default: raw].
    #[arg(long, env = "PYINIT_LOG_FORMAT", value_name = "FORMAT",
          value_parser = |s: &str| s.parse::<LogFormat>())]
    pub log_format: Option<LogFormat>,

    /// Hand the child pyinit's own stdin/stdout/stderr; nothing is copied.
    #[arg(long, env = "PYINIT_NO_CAPTURE", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub no_capture: bool,

    /// Add KEY=VALUE lines (as in .env files) to the children's environment.
    #[arg(long, env = "PYINIT_ENV_FILE", value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Longest line held in memory before it is written out in pieces.
    #[arg(long, env = "PYINIT_MAX_LINE", value_name = "BYTES", default_value = "65536",
          value_parser = duration::parse_bytes)]
    pub max_line: usize,

    /// Do not add PYTHONUNBUFFERED=1 and PYTHONFAULTHANDLER=1 to the children's environment.
    #[arg(long, env = "PYINIT_NO_PYTHON_ENV", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub no_python_env: bool,

    /// More of pyinit's own diagnostics on stderr (PYINIT_LOG=debug for a filter).
    #[arg(short = 'v', long, env = "PYINIT_VERBOSE", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new(), conflicts_with = "quiet")]
    pub verbose: bool,

    /// Only errors from pyinit itself on stderr.
    #[arg(short = 'q', long, env = "PYINIT_QUIET", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub quiet: bool,

    /// The program to run and its arguments.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// What the command line asks for.
pub enum Invocation {
    Run(Cli),
    /// `--help` or `--version`: print this on stdout and exit 0.
    Print(String),
}

/// Parses the arguments; every usage error is one line.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, Error> {
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    Ok(Invocation::Print(e.render().to_string()))
                }
                _ => Err(Error::Usage(one_line(&e.render().to_string()))),
            };
        }
    };
    let cli =
        Cli::from_arg_matches(&matches).map_err(|e| Error::Usage(one_line(&e.to_string())))?;
    Ok(Invocation::Run(cli))
}

/// clap's first line, without its `error: ` lead, plus a pointer to help.
fn one_line(rendered: &str) -> String {
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see 'pyinit --help')")
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

    fn run(args: &[&str]) -> Result<Cli, Error> {
        let args = std::iter::once("pyinit")
            .chain(args.iter().copied())
            .map(OsString::from);
        match parse(args)? {
            Invocation::Run(cli) => Ok(cli),
            Invocation::Print(_) => panic!("unexpected help"),
        }
    }

    #[test]
    fn parses_the_common_form() {
        let cli = run(&[
            "-t", "3s", "-r", "TERM:INT", "-e", "143", "--", "python3", "-u", "app.py",
        ])
        .unwrap();
        assert_eq!(cli.grace, std::time::Duration::from_secs(3));
        assert_eq!(cli.rewrite, vec![Rule { from: 15, to: 2 }]);
        assert_eq!(cli.expect_exit, vec![143]);
        assert_eq!(cli.command, ["python3", "-u", "app.py"].map(OsString::from));
    }

    #[test]
    fn command_flags_are_not_pyinits() {
        let cli = run(&["python3", "-c", "pass"]).unwrap();
        assert_eq!(cli.command, ["python3", "-c", "pass"].map(OsString::from));
        assert_eq!(cli.grace, std::time::Duration::from_secs(9));
    }

    #[test]
    fn usage_errors_are_one_line() {
        for bad in [
            &["--bogus", "--", "x"][..],
            &["--grace", "abc", "--", "x"],
            &["-r", "FOO:BAR", "--", "x"],
            &["--log-format", "xml", "--", "x"],
        ] {
            let err = run(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let err = run(&[]).unwrap().into_config().unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
