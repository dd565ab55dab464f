//! The command line as typed, and what it asks for ([`Invocation`]).
//!
//! Which command runs is decided by the first argument alone: `check`,
//! `health`, `status` and `ctl` are subcommands only there, so `pyinit --
//! status` runs a program called `status`. Everything else is pyinit's own
//! command line ([`PyinitArgs`], clap derive): the supervisor options
//! ([`args::RunArgs`], shared with `check`), the sources of processes, and
//! the command, which starts at `--` or at the first word that is not an
//! option (`pyinit python app.py --port 1`: `--port` is the app's).

pub mod args;
mod build;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

pub use args::{Cli, GraceFrom, RunArgs};

use crate::error::Error;

/// The subcommands served by the control client (`crate::control::client`).
pub const CONTROL_WORDS: [&str; 3] = ["health", "status", "ctl"];

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Cli),
    Check(Box<crate::check::options::CheckCli>),
    /// `health`, `status`, `ctl`: the arguments from the subcommand word on.
    Control(Vec<OsString>),
    /// `--help` or `--version`: print this on stdout and exit 0.
    Print(String),
}

const HELP_HINT: &str = "pyinit --help";

/// `pyinit [OPTIONS] -- COMMAND [ARG...]` and the multi-process forms.
#[derive(Parser, Debug)]
#[command(
    name = "pyinit",
    version,
    about = "A tiny PID 1 for Python containers: forwards signals, reaps zombies,\n\
             enforces a grace deadline and captures output as whole lines.",
    override_usage = "pyinit [OPTIONS] -- COMMAND [ARG...]\n       \
                      pyinit [OPTIONS] --procfile PATH | --config PATH [--check-config]\n       \
                      pyinit check [CHECK OPTIONS] -- COMMAND [ARG...]   (see 'pyinit check --help')\n       \
                      pyinit health | status [--json] | ctl ...",
    after_help = "Every option also reads PYINIT_<NAME> (e.g. PYINIT_GRACE=30s); a flag beats the \
                  variable,\nswitches take 1/true/0/false, repeatable options a comma-separated list.\n\
                  Exit status: the command's, 128+N if it died of signal N, 0 for an --expect-exit code;\n\
                  126 cannot execute, 127 not found, 2 usage error.",
    args_override_self = true,
    disable_help_subcommand = true
)]
pub struct PyinitArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Run every process of a Procfile (NAME: COMMAND per line)
    #[arg(long, env = "PYINIT_PROCFILE", value_name = "PATH")]
    pub procfile: Option<PathBuf>,

    /// Run the processes of a TOML config (restarts, readiness, order, one-shots)
    #[arg(long, env = "PYINIT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// With --procfile/--config: validate, print the plan, start nothing
    #[arg(long, env = "PYINIT_CHECK_CONFIG", action = ArgAction::SetTrue,
          value_parser = args::Text(args::switch_value))]
    pub check_config: bool,

    /// The program to run and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true,
          value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

/// Parses the arguments (the first is the program name); every usage error
/// is one line.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, Error> {
    let args: Vec<OsString> = args.into_iter().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("check") => return crate::check::options::parse(&args[1..]),
        Some(word) if CONTROL_WORDS.contains(&word) => {
            return Ok(Invocation::Control(args[1..].to_vec()))
        }
        _ => {}
    }
    let (parsed, matches) = match args::parse_clap::<PyinitArgs>(&args, HELP_HINT, |c| c)? {
        args::Parsed::Print(text) => return Ok(Invocation::Print(text)),
        args::Parsed::Args(p, m) => (*p, m),
    };
    let mut cli = args::resolve(parsed.run, &matches, HELP_HINT)?;
    cli.procfile = parsed.procfile;
    cli.config = parsed.config;
    cli.check_config = parsed.check_config;
    cli.command = parsed.command;
    Ok(Invocation::Run(cli))
}

#[cfg(test)]
mod tests {
    use super::args::tests::with_env;
    use super::*;
    use crate::config::SignalScope;
    use crate::output::format::LogFormat;
    use crate::signals::rewrite::Rule;
    use std::time::Duration;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("pyinit")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn run_env(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, Error> {
        match with_env(env, || parse(argv(args)))? {
            Invocation::Run(cli) => Ok(cli),
            other => panic!("unexpected invocation {other:?}"),
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
        assert_eq!(cli.grace_from, GraceFrom::Flag);
        assert_eq!(cli.rewrite, vec![Rule { from: 15, to: 2 }]);
        assert_eq!(cli.expect_exit, vec![143]);
        assert_eq!(cli.command, ["python3", "-u", "app.py"].map(OsString::from));
        assert_eq!(cli.signal_scope, SignalScope::Auto);
        assert!(!cli.single_child);
    }

    #[test]
    fn accepts_every_spelling_of_a_value() {
        for args in [
            &["--grace=2s", "x"][..],
            &["--grace", "2s", "x"],
            &["-t2s", "x"],
            &["-t", "2"],
            &["-t", "9", "-t", "2", "x"],
        ] {
            let cli = run(args).unwrap();
            assert_eq!(cli.grace, Duration::from_secs(2), "{args:?}");
        }
        let cli = run(&["-cq", "x"]).unwrap();
        assert!(cli.single_child && cli.quiet);
        assert_eq!(cli.signal_scope, SignalScope::Main);
        let cli = run(&["-e143", "x"]).unwrap();
        assert_eq!(cli.expect_exit, vec![143]);
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
    fn the_command_starts_at_the_first_word_or_after_the_dashes() {
        let cli = run(&["python3", "-c", "pass", "--grace", "1"]).unwrap();
        assert_eq!(
            cli.command,
            ["python3", "-c", "pass", "--grace", "1"].map(OsString::from)
        );
        assert_eq!(cli.grace, Duration::from_secs(9));
        assert_eq!(cli.grace_from, GraceFrom::Default);
        let cli = run(&["--", "-c", "x"]).unwrap();
        assert_eq!(cli.command, ["-c", "x"].map(OsString::from));
        // A subcommand word after `--` (or anywhere but first) is a program.
        let cli = run(&["--", "status"]).unwrap();
        assert_eq!(cli.command, ["status"].map(OsString::from));
        let cli = run(&["-t", "1", "check"]).unwrap();
        assert_eq!(cli.command, ["check"].map(OsString::from));
    }

    #[test]
    fn control_words_are_subcommands_only_first() {
        for word in ["health", "status", "ctl"] {
            match with_env(&[], || parse(argv(&[word, "--json", "x"]))).unwrap() {
                Invocation::Control(a) => {
                    assert_eq!(a, [word, "--json", "x"].map(OsString::from))
                }
                other => panic!("{word}: {other:?}"),
            }
        }
    }

    #[test]
    fn variables_fill_in_and_flags_win() {
        let env = [
            ("PYINIT_GRACE", "30s"),
            ("PYINIT_SINGLE_CHILD", "1"),
            ("PYINIT_REWRITE", "TERM:INT,HUP:0"),
            ("PYINIT_EXPECT_EXIT", "143, 130"),
            ("PYINIT_NO_CAPTURE", "false"),
            ("PYINIT_LOG_FORMAT", "json"),
            ("PYINIT_STOP_DELAY", ""),
        ];
        let cli = run_env(&["x"], &env).unwrap();
        assert_eq!(cli.grace, Duration::from_secs(30));
        assert_eq!(cli.grace_from, GraceFrom::Variable);
        assert!(cli.single_child);
        assert!(!cli.no_capture);
        assert_eq!(
            cli.rewrite,
            vec![Rule { from: 15, to: 2 }, Rule { from: 1, to: 0 }]
        );
        assert_eq!(cli.expect_exit, vec![143, 130]);
        assert_eq!(cli.log_format, Some(LogFormat::Json));
        assert_eq!(cli.stop_delay, Duration::ZERO, "an empty variable is unset");
        assert!(cli.explicit.contains(&"grace".to_string()));
        assert!(!cli.explicit.contains(&"stop-delay".to_string()));
        let cli = run_env(&["-t", "1s", "-e", "3", "x"], &env).unwrap();
        assert_eq!(cli.grace, Duration::from_secs(1));
        assert_eq!(cli.expect_exit, vec![3]);
    }

    #[test]
    fn signal_scope_has_three_spellings() {
        let scope =
            |args: &[&str], env: &[(&str, &str)]| run_env(args, env).map(|c| c.signal_scope);
        assert_eq!(scope(&["x"], &[]).unwrap(), SignalScope::Auto);
        assert_eq!(
            scope(&["--signal-scope", "group", "x"], &[]).unwrap(),
            SignalScope::Group
        );
        assert_eq!(
            scope(&["--signal-scope=MAIN", "x"], &[]).unwrap(),
            SignalScope::Main
        );
        assert_eq!(scope(&["-g", "x"], &[]).unwrap(), SignalScope::Group);
        assert_eq!(scope(&["-c", "x"], &[]).unwrap(), SignalScope::Main);
        assert_eq!(
            scope(&["-c", "--signal-scope=main", "x"], &[]).unwrap(),
            SignalScope::Main
        );
        assert_eq!(
            scope(&["x"], &[("PYINIT_SIGNAL_SCOPE", "group")]).unwrap(),
            SignalScope::Group
        );
        assert_eq!(
            scope(&["x"], &[("PYINIT_GROUP", "1")]).unwrap(),
            SignalScope::Group
        );
        // The command line beats the variables, even another spelling.
        assert_eq!(
            scope(&["-c", "x"], &[("PYINIT_SIGNAL_SCOPE", "group")]).unwrap(),
            SignalScope::Main
        );
        // A switch set to 0 says nothing.
        assert_eq!(
            scope(
                &["x"],
                &[
                    ("PYINIT_SINGLE_CHILD", "0"),
                    ("PYINIT_SIGNAL_SCOPE", "group")
                ]
            )
            .unwrap(),
            SignalScope::Group
        );
        for (args, env) in [
            (&["-c", "-g", "x"][..], &[][..]),
            (&["-g", "--signal-scope", "auto", "x"], &[]),
            (
                &["x"],
                &[
                    ("PYINIT_SINGLE_CHILD", "1"),
                    ("PYINIT_SIGNAL_SCOPE", "group"),
                ],
            ),
        ] {
            let e = scope(args, env).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("disagree"), "{args:?}: {e}");
        }
        let e = scope(&["--signal-scope", "all", "x"], &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("'all' is not one of auto, group, main"),
            "{e}"
        );
    }

    #[test]
    fn usage_errors_are_one_line_and_name_the_culprit() {
        for (bad, needle) in [
            (&["--bogus", "--", "x"][..], "unexpected argument '--bogus'"),
            (
                &["--grace", "abc", "--", "x"],
                "invalid value 'abc' for --grace",
            ),
            (
                &["-t", "abc", "--", "x"],
                "for --grace: 'abc' is not a duration",
            ),
            (&["-r", "FOO:BAR", "--", "x"], "FOO"),
            (&["--log-format", "xml", "--", "x"], "xml"),
            (&["--grace"], "'--grace' needs a value"),
            (&["--no-capture=1", "x"], "'--no-capture' takes no value"),
            (&["-v", "-q", "x"], "exclude"),
            (&["-Z", "x"], "'-Z'"),
            (&["-e", "300", "x"], "--expect-exit"),
        ] {
            let err = run(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let msg = err.to_string();
            assert!(
                !msg.contains('\n') && msg.contains(needle) && !msg.contains("For more"),
                "{bad:?}: {msg}"
            );
        }
        for (var, value) in [
            ("PYINIT_GRACE", "soon"),
            ("PYINIT_SINGLE_CHILD", "maybe"),
            ("PYINIT_REWRITE", "TERM:INT,FOO:BAR"),
            ("PYINIT_SIGNAL_SCOPE", "all"),
        ] {
            let err = run_env(&["x"], &[(var, value)]).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(var) && !msg.contains('\n'), "{var}: {msg}");
        }
        // The flag is named when the flag is wrong, though the variable is set.
        let err = run_env(&["-t", "later", "x"], &[("PYINIT_GRACE", "1s")]).unwrap_err();
        assert!(err.to_string().contains("for --grace"), "{err}");
        let err = run(&[]).unwrap().into_config().unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn values_that_are_not_utf8_name_their_option() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'1', 0xff]);
        for flag in ["-t", "--log-format", "-e", "-r"] {
            let args = vec!["pyinit".into(), flag.into(), bad.clone(), "x".into()];
            let e = with_env(&[], || parse(args)).unwrap_err().to_string();
            assert!(
                e.contains("not valid UTF-8") && !e.contains('\n'),
                "{flag}: {e}"
            );
            assert!(e.contains("for --"), "{flag}: {e}");
        }
        // Paths and the command are bytes, as the kernel takes them.
        let args = vec![
            "pyinit".into(),
            "--env-file".into(),
            bad.clone(),
            bad.clone(),
        ];
        let Invocation::Run(cli) = with_env(&[], || parse(args)).unwrap() else {
            panic!()
        };
        assert_eq!(cli.command, vec![bad.clone()]);
        assert_eq!(cli.env_file.unwrap().as_os_str(), bad.as_os_str());
    }

    #[test]
    fn help_and_version_are_printed() {
        for flag in ["-h", "--help"] {
            let Invocation::Print(h) = with_env(&[], || parse(argv(&[flag]))).unwrap() else {
                panic!("{flag}")
            };
            for a in args::run_args() {
                let env = format!("PYINIT_{}", a.long.replace('-', "_").to_ascii_uppercase());
                assert!(
                    h.contains(&format!("--{}", a.long)) && h.contains(&env),
                    "{}",
                    a.long
                );
            }
            assert!(
                h.contains("--procfile") && h.contains("--check-config"),
                "{h}"
            );
        }
        let Invocation::Print(v) = with_env(&[], || parse(argv(&["-V"]))).unwrap() else {
            panic!("-V")
        };
        assert_eq!(v, format!("pyinit {}\n", env!("CARGO_PKG_VERSION")));
    }
}
