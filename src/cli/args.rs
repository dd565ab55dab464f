//! The supervisor's options as clap parses them ([`RunArgs`], shared by
//! `pyinit` and `pyinit check`), what they resolve to ([`Cli`]), and the
//! one-line rendering of clap's errors.
//!
//! Every option also reads `PYINIT_<NAME>` (clap's `env`): a flag beats its
//! variable, an empty variable counts as unset, switches take
//! 1/true/0/false, repeatable options a comma-separated list. clap's own
//! error output (several lines, a usage block, a "For more information"
//! tail) is never shown: [`usage_error`] renders each error kind as one
//! line that names the flag, or the variable when the bad value came from it.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Command, CommandFactory, FromArgMatches};

use crate::config::{self, duration, SignalScope};
use crate::error::{shown, Error};
use crate::exit_status;
use crate::output::format::LogFormat;
use crate::signals::rewrite::{self, Rule};

/// The supervisor's options (SPEC "Options of the supervisor").
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Time between the stop signal and SIGKILL (10s, 500ms, 1m30s; a bare number is seconds) [default: 9s]
    #[arg(short = 't', long, env = "PYINIT_GRACE", value_name = "DURATION", value_parser = Text(duration::parse))]
    pub grace: Option<Duration>,

    /// Wait this long after a stop signal before forwarding it; a second stop signal ends the wait [default: 0]
    #[arg(long, env = "PYINIT_STOP_DELAY", value_name = "DURATION", value_parser = Text(duration::parse))]
    pub stop_delay: Option<Duration>,

    /// Rewrite a received signal before forwarding it (TERM:INT); TO = 0 drops it; repeatable
    #[arg(short = 'r', long, env = "PYINIT_REWRITE", value_name = "FROM:TO",
          value_delimiter = ',', value_parser = Text(rule_value))]
    pub rewrite: Vec<Rule>,

    /// Which processes a forwarded signal reaches [default: auto]
    #[arg(long, env = "PYINIT_SIGNAL_SCOPE", value_name = "auto|group|main", value_parser = Text(scope_value))]
    pub signal_scope: Option<SignalScope>,

    /// Short for --signal-scope main: every signal to the main process only (tini's default)
    #[arg(short = 'c', long, env = "PYINIT_SINGLE_CHILD", action = ArgAction::SetTrue, value_parser = Text(switch_value))]
    pub single_child: bool,

    /// Short for --signal-scope group: stop signals to the whole process group (dumb-init's default)
    #[arg(short = 'g', long, env = "PYINIT_GROUP", action = ArgAction::SetTrue, value_parser = Text(switch_value))]
    pub group: bool,

    /// Treat this exit code as success (0); repeatable
    #[arg(short = 'e', long, env = "PYINIT_EXPECT_EXIT", value_name = "CODE",
          value_delimiter = ',', value_parser = Text(code_value))]
    pub expect_exit: Vec<i32>,

    /// How captured lines are written [default: raw for one process, prefix for several]
    #[arg(long, env = "PYINIT_LOG_FORMAT", value_name = "raw|prefix|json", value_parser = Text(format_value))]
    pub log_format: Option<LogFormat>,

    /// Hand the child pyinit's own stdin/stdout/stderr; nothing is copied
    #[arg(long, env = "PYINIT_NO_CAPTURE", action = ArgAction::SetTrue, value_parser = Text(switch_value))]
    pub no_capture: bool,

    /// Add KEY=VALUE lines (as in .env files) to the children's environment
    #[arg(long, env = "PYINIT_ENV_FILE", value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Longest line held in memory before it is written in pieces [default: 64KiB]
    #[arg(long, env = "PYINIT_MAX_LINE", value_name = "BYTES", value_parser = Text(duration::parse_bytes))]
    pub max_line: Option<usize>,

    /// Do not add PYTHONUNBUFFERED=1 and PYTHONFAULTHANDLER=1 to the environment
    #[arg(long, env = "PYINIT_NO_PYTHON_ENV", action = ArgAction::SetTrue, value_parser = Text(switch_value))]
    pub no_python_env: bool,

    /// More of pyinit's own diagnostics on stderr (PYINIT_LOG=debug takes a filter)
    #[arg(short = 'v', long, env = "PYINIT_VERBOSE", action = ArgAction::SetTrue, value_parser = Text(switch_value))]
    pub verbose: bool,

    /// Only errors from pyinit itself
    #[arg(short = 'q', long, env = "PYINIT_QUIET", action = ArgAction::SetTrue, value_parser = Text(switch_value))]
    pub quiet: bool,
}

/// Where the effective top-level grace came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraceFrom {
    /// The 9 s default.
    #[default]
    Default,
    /// `-t` / `--grace`.
    Flag,
    /// `PYINIT_GRACE`.
    Variable,
    /// The top-level `grace` key of the TOML config.
    ConfigKey,
}

impl GraceFrom {
    pub fn describe(self) -> &'static str {
        match self {
            GraceFrom::Default => "the 9s default",
            GraceFrom::Flag => "--grace",
            GraceFrom::Variable => "PYINIT_GRACE",
            GraceFrom::ConfigKey => "the top-level grace key",
        }
    }
}

/// The supervisor options, resolved (defaults filled in, scope decided).
#[derive(Debug, Clone)]
pub struct Cli {
    pub grace: Duration,
    pub grace_from: GraceFrom,
    pub stop_delay: Duration,
    pub rewrite: Vec<Rule>,
    pub signal_scope: SignalScope,
    /// `signal_scope == Main` (`-c`), kept for the signal router.
    pub single_child: bool,
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
    /// Long names of the options given by flag or variable (they beat a
    /// config file's top-level defaults).
    pub explicit: Vec<String>,
    pub command: Vec<OsString>,
}

impl Default for Cli {
    fn default() -> Self {
        Cli {
            grace: config::DEFAULT_GRACE,
            grace_from: GraceFrom::Default,
            stop_delay: Duration::ZERO,
            rewrite: Vec::new(),
            signal_scope: SignalScope::Auto,
            single_child: false,
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

// ----- value parsers (each error names the value; the caller adds the option) -----

/// A clap value parser from a function of the text. Unlike clap's own
/// adapter, text that is not UTF-8 is a value error of this option (clap's
/// `InvalidUtf8` does not say which option it was), and the reason travels
/// in the error's context for [`usage_error`].
#[derive(Clone, Copy)]
pub struct Text<T>(pub fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Text<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let fail = |text: String, why: String| {
            let mut e = clap::Error::new(ErrorKind::ValueValidation).with_cmd(cmd);
            let arg = arg.map_or_else(String::new, ToString::to_string);
            e.insert(ContextKind::InvalidArg, ContextValue::String(arg));
            e.insert(ContextKind::InvalidValue, ContextValue::String(text));
            e.insert(ContextKind::Custom, ContextValue::String(why));
            e
        };
        let text = value.to_str().ok_or_else(|| {
            fail(
                value.to_string_lossy().into_owned(),
                "not valid UTF-8".into(),
            )
        })?;
        (self.0)(text).map_err(|why| fail(text.to_string(), why))
    }
}

fn rule_value(s: &str) -> Result<Rule, String> {
    rewrite::parse_rule(s.trim())
}

fn code_value(s: &str) -> Result<i32, String> {
    exit_status::parse_code(s.trim())
}

fn scope_value(s: &str) -> Result<SignalScope, String> {
    s.trim().to_ascii_lowercase().parse()
}

fn format_value(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

/// A switch's value: `true` when the flag is given, 1/true/0/false (and
/// yes/no, on/off) in its variable.
pub fn switch_value(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        "0" | "false" | "no" | "off" | "n" => Ok(false),
        other => Err(format!("'{}' is not 1/true/0/false", shown(other))),
    }
}

// ----- parsing and errors -----

/// What a clap parse gave: the typed arguments, or text to print.
pub enum Parsed<T> {
    Args(Box<T>, ArgMatches),
    /// `--help` or `--version`: print on stdout, exit 0.
    Print(String),
}

/// `T`'s command, with every variable that is set but empty treated as
/// unset (`ENV PYINIT_GRACE=` in a Dockerfile clears an image default).
/// The help shows each variable's name, not its value (it may be a secret
/// path or just noise).
pub fn command_of<T: CommandFactory>() -> Command {
    T::command().next_line_help(true).mut_args(|a| {
        let empty = a
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.is_empty());
        let a = a.hide_env_values(true);
        if empty {
            a.env(None)
        } else {
            a
        }
    })
}

/// Parses `args` (program name first) with `T`, its command first passed
/// through `adjust`; every error is one line.
pub fn parse_clap<T: CommandFactory + FromArgMatches>(
    args: &[OsString],
    help_hint: &str,
    adjust: fn(Command) -> Command,
) -> Result<Parsed<T>, Error> {
    let mut cmd = with_help_flags(adjust(command_of::<T>()));
    let matches = cmd
        .clone()
        .try_get_matches_from(args)
        .map_err(|e| usage_error(&cmd, &e, args, help_hint))?;
    if matches.get_flag(HELP) {
        return Ok(Parsed::Print(cmd.render_help().to_string()));
    }
    if cmd.get_version().is_some() && matches.get_flag(VERSION) {
        return Ok(Parsed::Print(cmd.render_version()));
    }
    let typed =
        T::from_arg_matches(&matches).map_err(|e| usage_error(&cmd, &e, args, help_hint))?;
    Ok(Parsed::Args(Box::new(typed), matches))
}

const HELP: &str = "print_help";
const VERSION: &str = "print_version";

/// `-h/--help` and `-V/--version` as plain switches, rendered by the
/// caller: clap's own would print through its error formatter, which
/// pyinit never uses (its errors are rendered by [`usage_error`]).
fn with_help_flags(cmd: Command) -> Command {
    let versioned = cmd.get_version().is_some();
    let cmd = cmd.disable_help_flag(true).disable_version_flag(true).arg(
        clap::Arg::new(HELP)
            .short('h')
            .long("help")
            .action(ArgAction::SetTrue)
            .help("Print help"),
    );
    if versioned {
        cmd.arg(
            clap::Arg::new(VERSION)
                .short('V')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("Print version"),
        )
    } else {
        cmd
    }
}

/// A one-line usage error (exit 2); user text is shown escaped.
pub fn usage(msg: &str, help_hint: &str) -> Error {
    Error::Usage(format!("{} (see '{help_hint}')", shown(msg)))
}

/// The argument an error's `InvalidArg` context names (`--grace <DURATION>`).
fn find_arg<'c>(cmd: &'c Command, text: &str) -> Option<&'c clap::Arg> {
    let word = text.split([' ', '=']).next().unwrap_or(text);
    cmd.get_arguments().find(|a| {
        a.get_long().is_some_and(|l| word == format!("--{l}"))
            || a.get_short().is_some_and(|s| word == format!("-{s}"))
    })
}

/// How a message names an option: `--grace`.
pub fn flag_name(arg: &clap::Arg) -> String {
    match (arg.get_long(), arg.get_short()) {
        (Some(l), _) => format!("--{l}"),
        (None, Some(s)) => format!("-{s}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// Whether the bad value of `arg` came from its variable: parsing the same
/// arguments without that variable no longer fails on `arg`.
fn value_came_from_env(
    cmd: &Command,
    arg: &clap::Arg,
    args: &[OsString],
    err: &clap::Error,
) -> bool {
    if arg.get_env().is_none() {
        return false;
    }
    let without = cmd.clone().mut_arg(arg.get_id(), |a| a.env(None));
    match without.try_get_matches_from(args) {
        Ok(_) => true,
        Err(e) => {
            e.kind() != err.kind()
                || e.get(ContextKind::InvalidArg) != err.get(ContextKind::InvalidArg)
        }
    }
}

/// Renders a clap error as one line naming the flag or variable.
pub fn usage_error(cmd: &Command, err: &clap::Error, args: &[OsString], help_hint: &str) -> Error {
    let text = |k| match err.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let invalid_arg = text(ContextKind::InvalidArg).unwrap_or_default();
    let value = text(ContextKind::InvalidValue);
    let arg = find_arg(cmd, &invalid_arg);
    let who = match arg {
        Some(a) if value_came_from_env(cmd, a, args, err) => a
            .get_env()
            .map_or_else(|| flag_name(a), |v| v.to_string_lossy().into_owned()),
        Some(a) => flag_name(a),
        None => invalid_arg.clone(),
    };
    let reason = match (text(ContextKind::Custom), std::error::Error::source(err)) {
        (Some(why), _) => format!(": {why}"),
        (None, Some(source)) => format!(": {source}"),
        (None, None) => String::new(),
    };
    let msg = match err.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => match value {
            Some(v) if !v.is_empty() || !reason.is_empty() => {
                format!("invalid value '{v}' for {who}{reason}")
            }
            _ => format!("'{who}' needs a value"),
        },
        ErrorKind::UnknownArgument => format!("unexpected argument '{invalid_arg}'"),
        ErrorKind::TooManyValues => format!("'{who}' takes no value"),
        ErrorKind::ArgumentConflict => {
            format!("'{who}' cannot be given twice or with a conflicting option")
        }
        ErrorKind::InvalidUtf8 => "an option or its value is not valid UTF-8".to_string(),
        // Kinds pyinit's commands cannot produce today.
        kind => {
            let what = kind.as_str().unwrap_or("invalid command line");
            if invalid_arg.is_empty() {
                what.to_string()
            } else {
                format!("{what} ('{invalid_arg}')")
            }
        }
    };
    usage(&msg, help_hint)
}

// ----- resolution -----

/// Where an option's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    Flag,
    Variable,
}

/// Whether option `id` was given, and how.
pub fn given(matches: &ArgMatches, id: &str) -> Option<Given> {
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Some(Given::Flag),
        Some(ValueSource::EnvVariable) => Some(Given::Variable),
        _ => None,
    }
}

/// `--name` or `PYINIT_NAME`, as the user gave it.
fn named(long: &str, from: Given) -> String {
    match from {
        Given::Flag => format!("--{long}"),
        Given::Variable => format!("PYINIT_{}", long.replace('-', "_").to_ascii_uppercase()),
    }
}

/// The scope the three ways of saying it give. The command line beats the
/// variables; choices from the same place that disagree are an error.
pub fn resolve_scope(
    run: &RunArgs,
    matches: &ArgMatches,
    help_hint: &str,
) -> Result<SignalScope, Error> {
    let mut choices: Vec<(SignalScope, String, Given)> = Vec::new();
    if let (Some(s), Some(from)) = (run.signal_scope, given(matches, "signal_scope")) {
        choices.push((
            s,
            format!("{}={}", named("signal-scope", from), s.as_str()),
            from,
        ));
    }
    if let (true, Some(from)) = (run.single_child, given(matches, "single_child")) {
        choices.push((SignalScope::Main, named("single-child", from), from));
    }
    if let (true, Some(from)) = (run.group, given(matches, "group")) {
        choices.push((SignalScope::Group, named("group", from), from));
    }
    if choices.iter().any(|c| c.2 == Given::Flag) {
        choices.retain(|c| c.2 == Given::Flag);
    }
    match choices.as_slice() {
        [] => Ok(SignalScope::Auto),
        [(first, who, _), rest @ ..] => {
            if let Some((_, other, _)) = rest.iter().find(|c| c.0 != *first) {
                return Err(usage(
                    &format!("'{who}' and '{other}' disagree on the signal scope; give one"),
                    help_hint,
                ));
            }
            Ok(*first)
        }
    }
}

/// Resolves the parsed options; `command`, `procfile`, `config` and
/// `check_config` come from the calling command's own arguments.
pub fn resolve(run: RunArgs, matches: &ArgMatches, help_hint: &str) -> Result<Cli, Error> {
    if run.verbose && run.quiet {
        return Err(usage(
            "'--verbose' and '--quiet' exclude each other",
            help_hint,
        ));
    }
    let signal_scope = resolve_scope(&run, matches, help_hint)?;
    let explicit = run_args()
        .into_iter()
        .filter(|a| given(matches, &a.id).is_some())
        .map(|a| a.long)
        .collect();
    let grace_from = match given(matches, "grace") {
        Some(Given::Flag) => GraceFrom::Flag,
        Some(Given::Variable) => GraceFrom::Variable,
        None => GraceFrom::Default,
    };
    Ok(Cli {
        grace: run.grace.unwrap_or(config::DEFAULT_GRACE),
        grace_from,
        stop_delay: run.stop_delay.unwrap_or(Duration::ZERO),
        rewrite: run.rewrite,
        signal_scope,
        single_child: signal_scope == SignalScope::Main,
        expect_exit: run.expect_exit,
        log_format: run.log_format,
        no_capture: run.no_capture,
        env_file: run.env_file,
        max_line: run.max_line.unwrap_or(config::DEFAULT_MAX_LINE),
        no_python_env: run.no_python_env,
        verbose: run.verbose,
        quiet: run.quiet,
        explicit,
        ..Cli::default()
    })
}

/// One [`RunArgs`] option: clap id, long name, whether it is a switch.
pub struct RunArg {
    pub id: String,
    pub long: String,
    pub switch: bool,
}

/// Every [`RunArgs`] option.
pub fn run_args() -> Vec<RunArg> {
    RunArgs::augment_args(Command::new("pyinit"))
        .get_arguments()
        .filter_map(|a| {
            Some(RunArg {
                id: a.get_id().to_string(),
                long: a.get_long()?.to_string(),
                switch: matches!(a.get_action(), ArgAction::SetTrue),
            })
        })
        .collect()
}

/// The [`RunArgs`] options given (by flag or variable), rendered as
/// explicit flags for another pyinit, except those in `skip` (by id). The
/// three spellings of the scope become one `--signal-scope=SCOPE`.
pub fn render_given(matches: &ArgMatches, scope: SignalScope, skip: &[&str]) -> Vec<OsString> {
    let mut out = Vec::new();
    let scope_ids = ["signal_scope", "single_child", "group"];
    for RunArg { id, long, switch } in run_args() {
        let id = id.as_str();
        if skip.contains(&id) || scope_ids.contains(&id) || given(matches, id).is_none() {
            continue;
        }
        if switch {
            if matches.get_flag(id) {
                out.push(OsString::from(format!("--{long}")));
            }
            continue;
        }
        for raw in matches.get_raw(id).into_iter().flatten() {
            out.push(flag_with_value(&long, raw));
        }
    }
    if scope_ids.iter().any(|id| given(matches, id).is_some()) {
        out.push(format!("--signal-scope={}", scope.as_str()).into());
    }
    out
}

fn flag_with_value(long: &str, value: &OsStr) -> OsString {
    let mut s = OsString::from(format!("--{long}="));
    s.push(value);
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// clap reads the variables from the process environment; tests that
    /// set them take this lock so that they never see each other's.
    pub(crate) static ENV_LOCK: Mutex<()> = Mutex::new(());

    /// Runs `f` with exactly `vars` set among the `PYINIT_*` variables.
    pub(crate) fn with_env<T>(vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
        let _guard = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let old: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| k.to_string_lossy().starts_with("PYINIT_"))
            .collect();
        for (k, _) in &old {
            std::env::remove_var(k);
        }
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        let out = f();
        for (k, _) in vars {
            std::env::remove_var(k);
        }
        for (k, v) in old {
            std::env::set_var(k, v);
        }
        out
    }

    #[test]
    fn switches_read_the_usual_spellings() {
        for t in ["1", "true", "TRUE", " yes ", "on"] {
            assert_eq!(switch_value(t), Ok(true), "{t}");
        }
        for f in ["0", "false", "no", "off"] {
            assert_eq!(switch_value(f), Ok(false), "{f}");
        }
        assert!(switch_value("maybe").unwrap_err().contains("maybe"));
    }

    #[test]
    fn every_run_option_has_a_long_name_and_its_variable() {
        let cmd = RunArgs::augment_args(Command::new("pyinit"));
        for a in cmd.get_arguments() {
            let long = a.get_long().expect("a long name");
            let env = a
                .get_env()
                .expect("a variable")
                .to_string_lossy()
                .into_owned();
            assert_eq!(
                env,
                format!("PYINIT_{}", long.replace('-', "_").to_ascii_uppercase())
            );
        }
    }
}
