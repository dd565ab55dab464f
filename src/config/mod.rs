//! The resolved run configuration: what the supervisor needs, validated.

pub mod duration;
pub mod envfile;
pub mod file;
pub mod plan;
pub mod process;
pub mod procfile;
pub mod url;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::exit_status::ExpectExit;
use crate::output::format::LogFormat;
use crate::signals::rewrite::Router;
pub use plan::{plan, stop_budget, StopBudget};
pub use process::{ProcessSpec, ReadyProbe, Restart, RestartPolicy, SignalScope};

/// Default `--grace`: one second under Docker's default stop timeout.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(9);
/// Where the control socket lives unless `PYINIT_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/pyinit/control.sock";
/// Default `--max-line`.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// What to run; one entry for `pyinit -- COMMAND`.
    pub processes: Vec<ProcessSpec>,
    /// Procfile or TOML config mode (several processes).
    pub multi: bool,
    /// `--check-config`: print the plan and exit.
    pub check_config: bool,
    /// The top-level grace: it bounds the whole stop (SPEC point 3), and is
    /// the grace of processes left behind once every managed one is gone.
    pub grace: Duration,
    pub stop_delay: Duration,
    pub router: Router,
    /// `--signal-scope` (`-c` = main, `-g` = group); each process has its own
    /// copy in [`ProcessSpec::signal_scope`].
    pub signal_scope: SignalScope,
    pub expect: ExpectExit,
    /// The control socket (`PYINIT_SOCKET`, default [`DEFAULT_SOCKET`]).
    pub socket: std::path::PathBuf,
    pub log_format: LogFormat,
    pub no_capture: bool,
    pub max_line: usize,
    /// Start order, dependencies first; the stop order is its reverse.
    pub start_order: Vec<usize>,
}

impl Config {
    /// `-c`: the child stays in pyinit's session and group.
    pub fn single_child(&self) -> bool {
        self.signal_scope == SignalScope::Main
    }

    /// Width of `prefix` labels: the longest process name, and at least
    /// `pyinit` so that pyinit's own lines line up.
    pub fn label_width(&self) -> usize {
        self.processes
            .iter()
            .map(|p| p.name.len())
            .chain(["pyinit".len()])
            .max()
            .unwrap_or(6)
    }
}

/// The base name of a program path, for log records.
pub fn program_name(program: &OsStr) -> String {
    let bytes = program.as_bytes();
    let base = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    let name = String::from_utf8_lossy(base).into_owned();
    if name.is_empty() {
        "app".into()
    } else {
        name
    }
}

/// Builds the children's environment: pyinit's own minus `PYINIT_*`, then
/// the env-file's variables, then the Python defaults where still unset.
pub fn child_env(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    env_file: impl IntoIterator<Item = (OsString, OsString)>,
    python_defaults: bool,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited.into_iter().collect();
    for (k, v) in env_file {
        set(&mut env, k, v);
    }
    // pyinit's own settings never reach the app, wherever they came from.
    env.retain(|(k, _)| !k.as_bytes().starts_with(b"PYINIT_"));
    if python_defaults {
        for key in ["PYTHONUNBUFFERED", "PYTHONFAULTHANDLER"] {
            if !env.iter().any(|(k, _)| k == key) {
                env.push((key.into(), "1".into()));
            }
        }
    }
    env
}

fn set(env: &mut Vec<(OsString, OsString)>, key: OsString, value: OsString) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn names_are_base_names() {
        assert_eq!(program_name(OsStr::new("/usr/bin/gunicorn")), "gunicorn");
        assert_eq!(program_name(OsStr::new("python3")), "python3");
    }

    #[test]
    fn python_defaults_fill_only_unset_variables() {
        let env = child_env(
            os(&[("PYTHONUNBUFFERED", ""), ("PATH", "/bin")]),
            vec![],
            true,
        );
        assert!(env.contains(&("PYTHONUNBUFFERED".into(), "".into())));
        assert!(env.contains(&("PYTHONFAULTHANDLER".into(), "1".into())));
        let env = child_env(os(&[]), vec![], false);
        assert!(env.is_empty());
    }

    #[test]
    fn pyinit_variables_are_removed_and_env_file_wins() {
        let env = child_env(
            os(&[("PYINIT_GRACE", "3s"), ("A", "old")]),
            os(&[("A", "new"), ("B", "b")]),
            false,
        );
        assert_eq!(env, os(&[("A", "new"), ("B", "b")]));
    }
}
