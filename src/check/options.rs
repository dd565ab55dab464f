//! `pyinit check`'s command line: its own options, every pyinit option
//! (the shared [`RunArgs`]) and the command or `--procfile`/`--config`.
//!
//! The pyinit options given, by flag or by `PYINIT_*` variable, are read
//! here as pyinit would read them and handed to the pyinit under test as
//! explicit flags ([`CheckCli::pyinit_args`]); the variables themselves are
//! removed from its environment ([`pyinit_variables`]).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};

use crate::cli::args::{self, given, usage, Cli, Parsed, RunArgs};
use crate::cli::Invocation;
use crate::config::duration;
use crate::error::{shown, Error};
use crate::signals::names;

const HELP_HINT: &str = "pyinit check --help";

/// How `check` decides the app is ready for the stop signal.
#[derive(Debug, Clone)]
pub enum Readiness {
    After(Duration),
    Line(regex_lite::Regex),
    Port(u16),
    Notify,
}

/// `pyinit check`, resolved.
#[derive(Debug, Clone)]
pub struct CheckCli {
    pub signal: i32,
    pub ready: Readiness,
    pub ready_timeout: Duration,
    pub strict: bool,
    pub json: bool,
    /// The supervisor options (grace, rewrite, scope, ...) as resolved.
    pub supervisor: Cli,
    /// The pyinit options given (flag or variable), as flags for the pyinit
    /// under test; without `--expect-exit`, `--log-format`, `--verbose` and
    /// `--quiet`, which the check applies or chooses itself (it must see
    /// the raw exit status and read the inner pyinit's own records).
    pub pyinit_args: Vec<OsString>,
    /// The same as `pyinit_args` (its former name).
    pub passthrough: Vec<OsString>,
    /// `--procfile PATH`: test the whole set instead of one command.
    pub procfile: Option<PathBuf>,
    /// `--config PATH`: test the whole set instead of one command.
    pub config: Option<PathBuf>,
    pub command: Vec<OsString>,
}

/// `pyinit check [CHECK OPTIONS] [PYINIT OPTIONS] -- COMMAND [ARG...]`.
#[derive(Parser, Debug)]
#[command(
    name = "pyinit check",
    about = "Runs COMMAND under pyinit as PID 1 in a fresh PID namespace, waits until it is ready,\n\
             sends the stop signal the way `docker stop` does, and reports how it shut down.",
    override_usage = "pyinit check [CHECK OPTIONS] [PYINIT OPTIONS] -- COMMAND [ARG...]\n       \
                      pyinit check [CHECK OPTIONS] [PYINIT OPTIONS] --procfile PATH | --config PATH",
    after_help = "Verdict: PASS (exited by itself with 0 or an --expect-exit code within the grace period),\n\
                  WARN (died of the stop signal itself), FAIL (needed SIGKILL, other status, never ready).\n\
                  Exit status: 0 PASS/WARN (--strict: WARN is 1), 1 FAIL, 2 usage error.",
    args_override_self = true,
    disable_help_subcommand = true
)]
struct CheckArgs {
    /// The stop signal to send, as `docker stop` does [default: TERM]
    #[arg(short = 's', long, env = "PYINIT_SIGNAL", value_name = "SIGNAL", value_parser = args::Text(names::parse))]
    signal: Option<i32>,

    /// Ready this long after start (the default, 2s, when no other readiness is given)
    #[arg(long, env = "PYINIT_AFTER", value_name = "DURATION", value_parser = args::Text(duration::parse))]
    after: Option<Duration>,

    /// Ready when a line of output matches REGEX
    #[arg(long, env = "PYINIT_READY_LINE", value_name = "REGEX", value_parser = args::Text(regex_value))]
    ready_line: Option<regex_lite::Regex>,

    /// Ready when TCP 127.0.0.1:PORT accepts connections
    #[arg(long, env = "PYINIT_READY_PORT", value_name = "PORT", value_parser = args::Text(port_value))]
    ready_port: Option<u16>,

    /// Ready when the app sends READY=1 on $NOTIFY_SOCKET (gunicorn does)
    #[arg(long, env = "PYINIT_READY_NOTIFY", action = ArgAction::SetTrue, value_parser = args::Text(args::switch_value))]
    ready_notify: bool,

    /// Give up waiting for readiness after this long [default: 30s]
    #[arg(long, env = "PYINIT_READY_TIMEOUT", value_name = "DURATION", value_parser = args::Text(duration::parse))]
    ready_timeout: Option<Duration>,

    /// Exit 1 on WARN too
    #[arg(long, env = "PYINIT_STRICT", action = ArgAction::SetTrue, value_parser = args::Text(args::switch_value))]
    strict: bool,

    /// Print the report as one JSON object
    #[arg(long, env = "PYINIT_JSON", action = ArgAction::SetTrue, value_parser = args::Text(args::switch_value))]
    json: bool,

    #[command(
        flatten,
        next_help_heading = "pyinit options (passed to the pyinit under test)"
    )]
    run: RunArgs,

    /// Test every process of a Procfile instead of one command
    #[arg(long, env = "PYINIT_PROCFILE", value_name = "PATH")]
    procfile: Option<PathBuf>,

    /// Test the processes of a TOML config instead of one command
    #[arg(long, env = "PYINIT_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// The program to run and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true,
          value_parser = clap::value_parser!(OsString))]
    command: Vec<OsString>,
}

fn regex_value(s: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(s).map_err(|e| e.to_string().replace('\n', " "))
}

fn port_value(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{}' is not a TCP port (1-65535)", shown(s))),
    }
}

/// The `PYINIT_*` variables of this process: the check reads them and
/// removes them from the environment of the pyinit under test.
pub fn pyinit_variables() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| k.as_bytes().starts_with(b"PYINIT_"))
        .collect()
}

/// Parses `check`'s arguments (`args[0]` is the word `check`).
pub fn parse(args: &[OsString]) -> Result<Invocation, Error> {
    let (parsed, matches) = match args::parse_clap::<CheckArgs>(args, HELP_HINT, |c| {
        // Refused with a clear error below; not offered.
        c.mut_arg("no_capture", |a| a.hide(true))
    })? {
        Parsed::Print(text) => return Ok(Invocation::Print(text)),
        Parsed::Args(p, m) => (*p, m),
    };
    if parsed.run.no_capture {
        let who = match given(&matches, "no_capture") {
            Some(args::Given::Variable) => "PYINIT_NO_CAPTURE",
            _ => "--no-capture",
        };
        return Err(usage(
            &format!("{who} cannot be used with check: it reads the app's output"),
            HELP_HINT,
        ));
    }
    let sources = [
        parsed.procfile.is_some(),
        parsed.config.is_some(),
        !parsed.command.is_empty(),
    ];
    match sources.iter().filter(|&&b| b).count() {
        0 => {
            return Err(Error::Usage(
                "no command given; usage: pyinit check [OPTIONS] -- COMMAND [ARG...] \
                 (or --procfile PATH, or --config PATH)"
                    .into(),
            ))
        }
        1 => {}
        _ => {
            return Err(usage(
                "give one of -- COMMAND, --procfile PATH and --config PATH",
                HELP_HINT,
            ))
        }
    }
    let mut ready: Vec<Readiness> = [
        parsed.after.map(Readiness::After),
        parsed.ready_line.map(Readiness::Line),
        parsed.ready_port.map(Readiness::Port),
        parsed.ready_notify.then_some(Readiness::Notify),
    ]
    .into_iter()
    .flatten()
    .collect();
    if ready.len() > 1 {
        return Err(usage(
            "give only one of --after, --ready-line, --ready-port, --ready-notify",
            HELP_HINT,
        ));
    }
    let mut supervisor = args::resolve(parsed.run, &matches, HELP_HINT)?;
    let pyinit_args = args::render_given(
        &matches,
        supervisor.signal_scope,
        &[
            "expect_exit",
            "log_format",
            "verbose",
            "quiet",
            "no_capture",
        ],
    );
    supervisor.procfile = parsed.procfile.clone();
    supervisor.config = parsed.config.clone();
    supervisor.command = parsed.command.clone();
    Ok(Invocation::Check(Box::new(CheckCli {
        signal: parsed
            .signal
            .unwrap_or(nix::sys::signal::Signal::SIGTERM as i32),
        ready: ready
            .pop()
            .unwrap_or(Readiness::After(Duration::from_secs(2))),
        ready_timeout: parsed.ready_timeout.unwrap_or(Duration::from_secs(30)),
        strict: parsed.strict,
        json: parsed.json,
        supervisor,
        passthrough: pyinit_args.clone(),
        pyinit_args,
        procfile: parsed.procfile,
        config: parsed.config,
        command: parsed.command,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::tests::with_env;
    use crate::config::SignalScope;

    fn check_env(args: &[&str], env: &[(&str, &str)]) -> Result<CheckCli, Error> {
        let argv: Vec<OsString> = ["check"].iter().chain(args).map(OsString::from).collect();
        match with_env(env, || parse(&argv))? {
            Invocation::Check(c) => Ok(*c),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn own_options_and_pyinit_options_are_read() {
        let c = check_env(
            &[
                "--signal",
                "INT",
                "--ready-port",
                "8000",
                "-t",
                "3s",
                "-e",
                "143",
                "-c",
                "-r",
                "TERM:INT",
                "--json",
                "--",
                "python3",
                "app.py",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.signal, nix::sys::signal::Signal::SIGINT as i32);
        assert!(matches!(c.ready, Readiness::Port(8000)));
        assert!(c.json && !c.strict);
        assert_eq!(c.supervisor.grace, Duration::from_secs(3));
        assert_eq!(c.supervisor.expect_exit, vec![143]);
        assert!(c.supervisor.single_child);
        assert_eq!(c.command, ["python3", "app.py"].map(OsString::from));
        assert_eq!(
            strings(&c.pyinit_args),
            ["--grace=3s", "--rewrite=TERM:INT", "--signal-scope=main"]
        );
        assert_eq!(c.pyinit_args, c.passthrough);
    }

    #[test]
    fn variables_become_explicit_flags() {
        let c = check_env(
            &["--", "app"],
            &[
                ("PYINIT_GRACE", "4s"),
                ("PYINIT_NO_PYTHON_ENV", "1"),
                ("PYINIT_SIGNAL_SCOPE", "group"),
                ("PYINIT_EXPECT_EXIT", "143"),
                ("PYINIT_REWRITE", "TERM:INT,HUP:0"),
                ("PYINIT_VERBOSE", "0"),
            ],
        )
        .unwrap();
        assert_eq!(
            strings(&c.pyinit_args),
            [
                "--grace=4s",
                "--rewrite=TERM:INT",
                "--rewrite=HUP:0",
                "--no-python-env",
                "--signal-scope=group"
            ]
        );
        assert_eq!(c.supervisor.expect_exit, vec![143]);
        assert_eq!(c.supervisor.signal_scope, SignalScope::Group);
    }

    #[test]
    fn procfile_or_config_instead_of_a_command() {
        let c = check_env(&["--config", "pyinit.toml"], &[]).unwrap();
        assert_eq!(c.config, Some(PathBuf::from("pyinit.toml")));
        assert!(c.command.is_empty() && c.pyinit_args.is_empty());
        let c = check_env(&["--procfile=Procfile"], &[]).unwrap();
        assert_eq!(c.procfile, Some(PathBuf::from("Procfile")));
        let e = check_env(&["--config", "a.toml", "--", "app"], &[]).unwrap_err();
        assert!(e.to_string().contains("give one of"), "{e}");
    }

    #[test]
    fn errors_are_one_line() {
        for (args, env, needle) in [
            (
                &["--no-capture", "--", "x"][..],
                &[][..],
                "--no-capture cannot be used with check",
            ),
            (
                &["--", "x"],
                &[("PYINIT_NO_CAPTURE", "1")],
                "PYINIT_NO_CAPTURE cannot",
            ),
            (&[], &[], "no command given"),
            (
                &["--after", "1s", "--ready-notify", "x"],
                &[],
                "only one of",
            ),
            (&["--ready-port", "0", "x"], &[], "for --ready-port"),
            (&["--ready-line", "(", "x"], &[], "for --ready-line"),
            (&["--signal", "NOPE", "x"], &[], "for --signal"),
            (
                &["--check-config", "x"],
                &[],
                "unexpected argument '--check-config'",
            ),
            (&["x"], &[("PYINIT_SIGNAL", "NOPE")], "PYINIT_SIGNAL"),
        ] {
            let e = check_env(args, env).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(m.contains(needle) && !m.contains('\n'), "{args:?}: {m}");
        }
    }

    #[test]
    fn help_lists_both_sets_of_options() {
        let Invocation::Print(h) =
            with_env(&[], || parse(&["check".into(), "--help".into()])).unwrap()
        else {
            panic!("no help")
        };
        for want in [
            "--ready-line",
            "--signal-scope",
            "--grace",
            "PYINIT_GRACE",
            "--procfile",
        ] {
            assert!(h.contains(want), "{want}: {h}");
        }
    }
}
