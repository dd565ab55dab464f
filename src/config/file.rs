//! The TOML config of `--config`: top-level defaults and one
//! `[process.NAME]` table per process (see the README for the shape).

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::process::{ReadyProbe, Restart, RestartPolicy};
use super::{duration, procfile};
use crate::signals::names;

/// A scalar given as text or as a number (`grace = 20` or `grace = "20s"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CommandValue {
    /// Run by `/bin/sh -c` (as `exec` when simple).
    Shell(String),
    /// Run directly.
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyTable {
    pub port: Option<Spanned<i64>>,
    pub line: Option<Spanned<String>>,
    pub notify: Option<bool>,
}

/// Keys allowed both at the top (defaults) and in a process table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcTable {
    pub command: Option<Spanned<CommandValue>>,
    pub restart: Option<Spanned<String>>,
    pub max_restarts: Option<u32>,
    pub restart_window: Option<Spanned<Scalar>>,
    pub backoff: Option<Spanned<Scalar>>,
    pub backoff_max: Option<Spanned<Scalar>>,
    pub stop_signal: Option<Spanned<Scalar>>,
    pub grace: Option<Spanned<Scalar>>,
    pub env: Option<IndexMap<String, Scalar>>,
    pub working_dir: Option<String>,
    pub depends_on: Option<Spanned<Vec<String>>>,
    pub ready: Option<Spanned<ReadyTable>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub grace: Option<Spanned<Scalar>>,
    pub stop_delay: Option<Spanned<Scalar>>,
    pub log_format: Option<Spanned<String>>,
    pub max_line: Option<Spanned<Scalar>>,
    pub expect_exit: Option<Vec<i32>>,
    pub stop_signal: Option<Spanned<Scalar>>,
    pub restart: Option<Spanned<String>>,
    pub max_restarts: Option<u32>,
    pub restart_window: Option<Spanned<Scalar>>,
    pub backoff: Option<Spanned<Scalar>>,
    pub backoff_max: Option<Spanned<Scalar>>,
    pub env: Option<IndexMap<String, Scalar>>,
    pub working_dir: Option<String>,
    #[serde(default)]
    pub process: IndexMap<String, ProcTable>,
}

/// `LINE:COL` of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Errors carry their place: `line 3, column 9: ...`.
pub struct Located<'a> {
    text: &'a str,
}

impl Located<'_> {
    fn at<T>(&self, span: &Spanned<T>, msg: impl std::fmt::Display) -> String {
        let (l, c) = position(self.text, span.span().start);
        format!("line {l}, column {c}: {msg}")
    }
}

pub fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let msg = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => {
                let (l, c) = position(text, span.start);
                format!("line {l}, column {c}: {msg}")
            }
            None => msg,
        }
    })
}

/// A process as the file describes it, validated; names still unresolved.
pub struct FileProcess {
    pub name: String,
    pub argv: Vec<std::ffi::OsString>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub stop_signal: Option<i32>,
    pub grace: Option<Duration>,
    pub restart: Restart,
    pub ready: Option<ReadyProbe>,
    pub depends_on: Vec<String>,
}

/// Top-level settings.
pub struct FileDefaults {
    pub grace: Option<Duration>,
    pub stop_delay: Option<Duration>,
    pub log_format: Option<crate::output::format::LogFormat>,
    pub max_line: Option<usize>,
    pub expect_exit: Vec<i32>,
}

fn dur(
    loc: &Located<'_>,
    key: &str,
    v: &Option<Spanned<Scalar>>,
) -> Result<Option<Duration>, String> {
    v.as_ref()
        .map(|s| duration::parse(&s.get_ref().text()).map_err(|e| loc.at(s, format!("{key}: {e}"))))
        .transpose()
}

fn env_pairs(env: &Option<IndexMap<String, Scalar>>) -> Vec<(String, String)> {
    env.iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.text()))
        .collect()
}

/// Validates every value; the first problem is the error.
pub fn resolve(text: &str, file: &FileConfig) -> Result<(FileDefaults, Vec<FileProcess>), String> {
    let loc = Located { text };
    let signal = |v: &Option<Spanned<Scalar>>| -> Result<Option<i32>, String> {
        v.as_ref()
            .map(|s| {
                names::parse(&s.get_ref().text())
                    .map_err(|e| loc.at(s, format!("stop_signal: {e}")))
            })
            .transpose()
    };
    let policy = |v: &Option<Spanned<String>>| -> Result<Option<RestartPolicy>, String> {
        v.as_ref()
            .map(|s| {
                s.get_ref()
                    .parse()
                    .map_err(|e| loc.at(s, format!("restart: {e}")))
            })
            .transpose()
    };
    let defaults = FileDefaults {
        grace: dur(&loc, "grace", &file.grace)?,
        stop_delay: dur(&loc, "stop_delay", &file.stop_delay)?,
        log_format: file
            .log_format
            .as_ref()
            .map(|s| {
                s.get_ref()
                    .parse()
                    .map_err(|e| loc.at(s, format!("log_format: {e}")))
            })
            .transpose()?,
        max_line: file
            .max_line
            .as_ref()
            .map(|s| {
                duration::parse_bytes(&s.get_ref().text())
                    .map_err(|e| loc.at(s, format!("max_line: {e}")))
            })
            .transpose()?,
        expect_exit: file.expect_exit.clone().unwrap_or_default(),
    };
    let base = Restart::default();
    let top_restart = Restart {
        policy: policy(&file.restart)?.unwrap_or(base.policy),
        max_restarts: file.max_restarts.unwrap_or(base.max_restarts),
        window: dur(&loc, "restart_window", &file.restart_window)?.unwrap_or(base.window),
        backoff: dur(&loc, "backoff", &file.backoff)?.unwrap_or(base.backoff),
        backoff_max: dur(&loc, "backoff_max", &file.backoff_max)?.unwrap_or(base.backoff_max),
    };
    let top_signal = signal(&file.stop_signal)?;
    let top_env = env_pairs(&file.env);
    if file.process.is_empty() {
        return Err("no processes defined (add a [process.NAME] table)".into());
    }
    let mut procs = Vec::new();
    for (name, t) in &file.process {
        let err = |m: String| format!("process '{name}': {m}");
        if !procfile::valid_name(name) {
            return Err(err(
                "not a valid name (letters, digits, '_', '-', '.')".into()
            ));
        }
        let command = t
            .command
            .as_ref()
            .ok_or_else(|| err("missing 'command'".into()))?;
        let argv = match command.get_ref() {
            CommandValue::Shell(s) if s.trim().is_empty() => {
                return Err(err(loc.at(command, "empty command")));
            }
            CommandValue::Shell(s) => procfile::shell_argv(s.trim()),
            CommandValue::Argv(v) if v.is_empty() || v[0].is_empty() => {
                return Err(err(loc.at(command, "empty command")));
            }
            CommandValue::Argv(v) => v.iter().map(Into::into).collect(),
        };
        let mut env = top_env.clone();
        for (k, v) in env_pairs(&t.env) {
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        }
        let restart = Restart {
            policy: policy(&t.restart)?.unwrap_or(top_restart.policy),
            max_restarts: t.max_restarts.unwrap_or(top_restart.max_restarts),
            window: dur(&loc, "restart_window", &t.restart_window)?.unwrap_or(top_restart.window),
            backoff: dur(&loc, "backoff", &t.backoff)?.unwrap_or(top_restart.backoff),
            backoff_max: dur(&loc, "backoff_max", &t.backoff_max)?
                .unwrap_or(top_restart.backoff_max),
        };
        let ready = match &t.ready {
            None => None,
            Some(r) => {
                let rt = r.get_ref();
                let given =
                    rt.port.is_some() as u8 + rt.line.is_some() as u8 + rt.notify.is_some() as u8;
                if given != 1 {
                    return Err(err(
                        loc.at(r, "ready takes exactly one of port, line, notify")
                    ));
                }
                if let Some(p) = &rt.port {
                    let port = u16::try_from(*p.get_ref())
                        .ok()
                        .filter(|&p| p > 0)
                        .ok_or_else(|| err(loc.at(p, "ready.port is not a TCP port (1-65535)")))?;
                    Some(ReadyProbe::Port(port))
                } else if let Some(l) = &rt.line {
                    let re = regex_lite::Regex::new(l.get_ref()).map_err(|e| {
                        err(loc.at(
                            l,
                            format!("ready.line: {}", e.to_string().replace('\n', " ")),
                        ))
                    })?;
                    Some(ReadyProbe::Line(re))
                } else if rt.notify == Some(true) {
                    Some(ReadyProbe::Notify)
                } else {
                    None
                }
            }
        };
        procs.push(FileProcess {
            name: name.clone(),
            argv,
            env,
            working_dir: t
                .working_dir
                .as_ref()
                .or(file.working_dir.as_ref())
                .map(PathBuf::from),
            stop_signal: signal(&t.stop_signal)?.or(top_signal),
            grace: dur(&loc, "grace", &t.grace)?,
            restart,
            ready,
            depends_on: t
                .depends_on
                .as_ref()
                .map(|d| d.get_ref().clone())
                .unwrap_or_default(),
        });
    }
    Ok((defaults, procs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
grace = "20s"
log_format = "prefix"

[process.web]
command = ["gunicorn", "-w", "4", "-b", "0.0.0.0:8000", "app:app"]
ready = { port = 8000 }

[process.worker]
command = "celery -A proj worker -l info"
depends_on = ["web"]
restart = "on-failure"
max_restarts = 5
restart_window = "60s"
backoff = "1s"
backoff_max = "30s"
stop_signal = "QUIT"
grace = "30s"
env = { C_FORCE_ROOT = "1" }
working_dir = "/app"
"#;

    #[test]
    fn parses_the_spec_example() {
        let f = parse(FULL).unwrap();
        let (d, p) = resolve(FULL, &f).unwrap();
        assert_eq!(d.grace, Some(Duration::from_secs(20)));
        assert_eq!(d.log_format, Some(crate::output::format::LogFormat::Prefix));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "web");
        assert_eq!(p[0].argv.len(), 6);
        assert!(matches!(p[0].ready, Some(ReadyProbe::Port(8000))));
        assert_eq!(p[1].name, "worker");
        assert_eq!(
            p[1].argv[2],
            std::ffi::OsString::from("exec celery -A proj worker -l info")
        );
        assert_eq!(p[1].depends_on, vec!["web".to_string()]);
        assert_eq!(p[1].restart.policy, RestartPolicy::OnFailure);
        assert_eq!(p[1].stop_signal, Some(libc::SIGQUIT));
        assert_eq!(p[1].grace, Some(Duration::from_secs(30)));
        assert_eq!(
            p[1].env,
            vec![("C_FORCE_ROOT".to_string(), "1".to_string())]
        );
        assert_eq!(p[1].working_dir, Some(PathBuf::from("/app")));
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Err(e) => e,
            Ok(f) => resolve(text, &f).err().expect("an error"),
        }
    }

    #[test]
    fn errors_are_one_line_with_a_place() {
        let e = err("[process.web]\ncommand = \"x\"\ncomand = \"y\"\n");
        assert!(
            e.starts_with("line 3, column 1: unknown field `comand`"),
            "{e}"
        );
        let e = err("[process.web\ncommand = 1\n");
        assert!(e.starts_with("line 1, column"), "{e}");
        let e = err("[process.web]\ncommand = \"\"\n");
        assert!(e.contains("empty command"), "{e}");
        let e = err("[process.web]\ncommand = \"x\"\ngrace = \"soon\"\n");
        assert!(e.contains("line 3, column 9: grace: 'soon'"), "{e}");
        let e = err("[process.web]\ncommand = \"x\"\nrestart = \"sometimes\"\n");
        assert!(e.contains("restart: 'sometimes'"), "{e}");
        let e = err("[process.a]\ncommand = \"x\"\n[process.a]\ncommand = \"y\"\n");
        assert!(e.contains("duplicate") || e.contains("redefin"), "{e}");
        let e = err("grace = 1\n");
        assert!(e.contains("no processes"), "{e}");
        let e = err("[process.web]\nready = { port = 1 }\n");
        assert!(e.contains("missing 'command'"), "{e}");
        for e in [e] {
            assert!(!e.contains('\n'));
        }
    }
}
