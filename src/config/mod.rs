//! The resolved run configuration: what the supervisor needs, validated.

pub mod duration;
pub mod envfile;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::exit_status::ExpectExit;
use crate::output::format::LogFormat;
use crate::signals::rewrite::Router;

/// Default `--grace`: one second under Docker's default stop timeout.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(9);
/// Default `--max-line`.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// Program and arguments, passed through byte for byte.
    pub command: Vec<OsString>,
    /// Name used in `prefix`/`json` records: the program's base name.
    pub name: String,
    pub grace: Duration,
    pub stop_delay: Duration,
    pub router: Router,
    pub single_child: bool,
    pub expect: ExpectExit,
    pub log_format: LogFormat,
    pub no_capture: bool,
    /// The children's complete environment.
    pub env: Vec<(OsString, OsString)>,
    pub max_line: usize,
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
    env_file: Vec<(OsString, OsString)>,
    python_defaults: bool,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .into_iter()
        .filter(|(k, _)| !k.as_bytes().starts_with(b"PYINIT_"))
        .collect();
    for (k, v) in env_file {
        set(&mut env, k, v);
    }
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
