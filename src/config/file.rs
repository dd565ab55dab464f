//! The TOML config of `--config`: top-level defaults and one
//! `[process.NAME]` table per process (see the README for the shape).
//!
//! Read from toml's spanned document (`DeTable`) rather than through serde
//! derive: every error keeps its line and column, and the binary stays
//! about 100 KB smaller than with a derived deserializer per table.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::process::{ReadyProbe, Restart, RestartPolicy};
use super::{duration, procfile};
use crate::output::format::LogFormat;
use crate::signals::names;

type Value<'i> = Spanned<DeValue<'i>>;

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

/// Makes messages that carry their place: `line 3, column 9: ...`.
struct Locator<'a> {
    text: &'a str,
}

impl Locator<'_> {
    fn at<T>(&self, span: &Spanned<T>, msg: impl std::fmt::Display) -> String {
        let (l, c) = position(self.text, span.span().start);
        format!("line {l}, column {c}: {msg}")
    }

    fn str<'v>(&self, key: &str, v: &'v Value<'_>) -> Result<&'v str, String> {
        v.get_ref().as_str().ok_or_else(|| {
            self.at(
                v,
                format!("{key} must be a string, not {}", v.get_ref().type_str()),
            )
        })
    }

    /// A number or a string, as text (`grace = 20` or `grace = "20s"`).
    fn scalar(&self, key: &str, v: &Value<'_>) -> Result<String, String> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            DeValue::Integer(i) => Ok(i.as_str().to_string()),
            DeValue::Float(f) => Ok(f.as_str().to_string()),
            other => Err(self.at(
                v,
                format!(
                    "{key} must be a string or a number, not {}",
                    other.type_str()
                ),
            )),
        }
    }

    fn int(&self, key: &str, v: &Value<'_>) -> Result<i64, String> {
        v.get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok())
            .ok_or_else(|| self.at(v, format!("{key} must be an integer")))
    }

    fn duration(&self, key: &str, v: &Value<'_>) -> Result<Duration, String> {
        duration::parse(&self.scalar(key, v)?).map_err(|e| self.at(v, format!("{key}: {e}")))
    }

    fn table<'v, 'i>(&self, key: &str, v: &'v Value<'i>) -> Result<&'v DeTable<'i>, String> {
        v.get_ref().as_table().ok_or_else(|| {
            self.at(
                v,
                format!("{key} must be a table, not {}", v.get_ref().type_str()),
            )
        })
    }

    fn strings(&self, key: &str, v: &Value<'_>) -> Result<Vec<String>, String> {
        let arr = v
            .get_ref()
            .as_array()
            .ok_or_else(|| self.at(v, format!("{key} must be an array of strings")))?;
        arr.iter()
            .map(|e| self.str(key, e).map(str::to_string))
            .collect()
    }

    fn env(&self, v: &Value<'_>) -> Result<Vec<(String, String)>, String> {
        self.table("env", v)?
            .iter()
            .map(|(k, val)| Ok((k.get_ref().to_string(), self.scalar("env value", val)?)))
            .collect()
    }
}

/// Settings that may stand at the top (defaults) and in a process table.
#[derive(Debug, Clone, Default)]
struct Shared {
    restart: Option<RestartPolicy>,
    max_restarts: Option<u32>,
    restart_window: Option<Duration>,
    backoff: Option<Duration>,
    backoff_max: Option<Duration>,
    stop_signal: Option<i32>,
    grace: Option<Duration>,
    env: Vec<(String, String)>,
    working_dir: Option<PathBuf>,
}

impl Shared {
    /// Takes `key` if it is a shared setting; `Ok(false)` if it is not.
    fn take(&mut self, loc: &Locator<'_>, key: &str, v: &Value<'_>) -> Result<bool, String> {
        match key {
            "restart" => {
                self.restart = Some(
                    loc.str(key, v)?
                        .parse()
                        .map_err(|e| loc.at(v, format!("restart: {e}")))?,
                )
            }
            "max_restarts" => {
                let n = loc.int(key, v)?;
                self.max_restarts = Some(
                    u32::try_from(n).map_err(|_| loc.at(v, "max_restarts must be 0 or more"))?,
                );
            }
            "restart_window" => self.restart_window = Some(loc.duration(key, v)?),
            "backoff" => self.backoff = Some(loc.duration(key, v)?),
            "backoff_max" => self.backoff_max = Some(loc.duration(key, v)?),
            "stop_signal" => {
                let text = loc.scalar(key, v)?;
                self.stop_signal =
                    Some(names::parse(&text).map_err(|e| loc.at(v, format!("stop_signal: {e}")))?);
            }
            "grace" => self.grace = Some(loc.duration(key, v)?),
            "env" => self.env = loc.env(v)?,
            "working_dir" => self.working_dir = Some(PathBuf::from(loc.str(key, v)?)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn restart(&self, base: &Restart) -> Restart {
        Restart {
            policy: self.restart.unwrap_or(base.policy),
            max_restarts: self.max_restarts.unwrap_or(base.max_restarts),
            window: self.restart_window.unwrap_or(base.window),
            backoff: self.backoff.unwrap_or(base.backoff),
            backoff_max: self.backoff_max.unwrap_or(base.backoff_max),
        }
    }
}

/// A process as the file describes it, validated; names still unresolved.
pub struct FileProcess {
    pub name: String,
    pub argv: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub stop_signal: Option<i32>,
    pub grace: Option<Duration>,
    pub restart: Restart,
    pub ready: Option<ReadyProbe>,
    pub depends_on: Vec<String>,
}

/// Top-level settings.
#[derive(Debug, Default)]
pub struct FileDefaults {
    pub grace: Option<Duration>,
    pub stop_delay: Option<Duration>,
    pub log_format: Option<LogFormat>,
    pub max_line: Option<usize>,
    pub expect_exit: Vec<i32>,
}

fn unknown(loc: &Locator<'_>, key: &Spanned<toml::de::DeString<'_>>, allowed: &str) -> String {
    loc.at(
        key,
        format!(
            "unknown key `{}`, expected one of {allowed}",
            crate::error::shown(key.get_ref())
        ),
    )
}

const PROCESS_KEYS: &str = "command, depends_on, ready, restart, max_restarts, restart_window, \
                            backoff, backoff_max, stop_signal, grace, env, working_dir";
const TOP_KEYS: &str = "process, grace, stop_delay, log_format, max_line, expect_exit, restart, \
                        max_restarts, restart_window, backoff, backoff_max, stop_signal, env, working_dir";

/// Parses and validates the whole file; the first problem is the error.
pub fn load(text: &str) -> Result<(FileDefaults, Vec<FileProcess>), String> {
    let doc = DeTable::parse(text).map_err(|e| {
        let msg = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => {
                let (l, c) = position(text, span.start);
                format!("line {l}, column {c}: {msg}")
            }
            None => msg,
        }
    })?;
    let loc = Locator { text };
    let mut defaults = FileDefaults::default();
    let mut top = Shared::default();
    let mut process_table = None;
    for (key, v) in doc.get_ref().iter() {
        let k: &str = key.get_ref();
        if top.take(&loc, k, v)? {
            continue;
        }
        match k {
            "process" => process_table = Some(loc.table("process", v)?),
            "stop_delay" => defaults.stop_delay = Some(loc.duration(k, v)?),
            "log_format" => {
                defaults.log_format = Some(
                    loc.str(k, v)?
                        .parse()
                        .map_err(|e| loc.at(v, format!("log_format: {e}")))?,
                )
            }
            "max_line" => {
                let t = loc.scalar(k, v)?;
                defaults.max_line = Some(
                    duration::parse_bytes(&t).map_err(|e| loc.at(v, format!("max_line: {e}")))?,
                );
            }
            "expect_exit" => {
                let arr = v
                    .get_ref()
                    .as_array()
                    .ok_or_else(|| loc.at(v, "expect_exit must be an array of exit codes"))?;
                for c in arr.iter() {
                    let n = loc.int(k, c)?;
                    let code = i32::try_from(n).ok().filter(|c| (0..=255).contains(c));
                    defaults
                        .expect_exit
                        .push(code.ok_or_else(|| loc.at(c, "expect_exit codes are 0-255"))?);
                }
            }
            _ => return Err(unknown(&loc, key, TOP_KEYS)),
        }
    }
    defaults.grace = top.grace;
    let processes = process_table
        .filter(|t| !t.is_empty())
        .ok_or("no processes defined (add a [process.NAME] table)")?;
    let base = top.restart(&Restart::default());
    let mut procs = Vec::new();
    for (key, v) in processes.iter() {
        let name: &str = key.get_ref();
        let shown_name = crate::error::shown(name);
        // `line L, column C: process 'web': ...`: the place first.
        let err = |m: String| match m.split_once(": ") {
            Some((place, rest)) if place.starts_with("line ") => {
                format!("{place}: process '{shown_name}': {rest}")
            }
            _ => format!("process '{shown_name}': {m}"),
        };
        if !procfile::valid_name(name) {
            return Err(err(
                loc.at(key, "not a valid name (letters, digits, '_', '-', '.')")
            ));
        }
        let t = loc.table(name, v).map_err(err)?;
        let mut own = Shared::default();
        let (mut argv, mut ready, mut depends_on) = (None, None, Vec::new());
        for (k, val) in t.iter() {
            let kname: &str = k.get_ref();
            if own.take(&loc, kname, val).map_err(err)? {
                continue;
            }
            match kname {
                "command" => argv = Some(command(&loc, val).map_err(err)?),
                "depends_on" => depends_on = loc.strings(kname, val).map_err(err)?,
                "ready" => ready = Some(ready_probe(&loc, val).map_err(err)?),
                _ => return Err(err(unknown(&loc, k, PROCESS_KEYS))),
            }
        }
        let argv = argv.ok_or_else(|| err(loc.at(key, "missing 'command'")))?;
        let mut env = top.env.clone();
        for (k, val) in own.env.iter().cloned() {
            env.retain(|(key, _)| *key != k);
            env.push((k, val));
        }
        procs.push(FileProcess {
            name: name.to_string(),
            argv,
            env,
            working_dir: own.working_dir.clone().or(top.working_dir.clone()),
            stop_signal: own.stop_signal.or(top.stop_signal),
            grace: own.grace,
            restart: own.restart(&base),
            ready,
            depends_on,
        });
    }
    Ok((defaults, procs))
}

/// `command = "shell line"` (run by /bin/sh) or `command = ["argv", ...]`.
fn command(loc: &Locator<'_>, v: &Value<'_>) -> Result<Vec<OsString>, String> {
    match v.get_ref() {
        DeValue::String(s) if s.trim().is_empty() => Err(loc.at(v, "empty command")),
        DeValue::String(s) => Ok(procfile::shell_argv(s.trim())),
        DeValue::Array(_) => {
            let argv = loc.strings("command", v)?;
            if argv.first().is_none_or(|a| a.is_empty()) {
                return Err(loc.at(v, "empty command"));
            }
            Ok(argv.into_iter().map(Into::into).collect())
        }
        other => Err(loc.at(
            v,
            format!(
                "command must be a string or an array of strings, not {}",
                other.type_str()
            ),
        )),
    }
}

/// `ready = { port = N }`, `{ line = "REGEX" }` or `{ notify = true }`.
fn ready_probe(loc: &Locator<'_>, v: &Value<'_>) -> Result<ReadyProbe, String> {
    let t = loc.table("ready", v)?;
    if t.len() != 1 {
        return Err(loc.at(v, "ready takes exactly one of port, line, notify, http"));
    }
    let (k, val) = t
        .iter()
        .next()
        .ok_or_else(|| loc.at(v, "empty ready table"))?;
    match &**k.get_ref() {
        "port" => {
            let n = loc.int("ready.port", val)?;
            let port = u16::try_from(n).ok().filter(|&p| p > 0);
            Ok(ReadyProbe::Port(port.ok_or_else(|| {
                loc.at(val, "ready.port is not a TCP port (1-65535)")
            })?))
        }
        "line" => {
            let re = regex_lite::Regex::new(loc.str("ready.line", val)?).map_err(|e| {
                loc.at(
                    val,
                    format!("ready.line: {}", e.to_string().replace('\n', " ")),
                )
            })?;
            Ok(ReadyProbe::Line(re))
        }
        "notify" => match val.get_ref().as_bool() {
            Some(true) => Ok(ReadyProbe::Notify),
            _ => Err(loc.at(val, "ready.notify must be true")),
        },
        // ---- ready.http (issue 12)
        "http" => {
            let url = loc.str("ready.http", val)?;
            crate::control::probe::HttpUrl::parse(url)
                .map_err(|e| loc.at(val, format!("ready.http: {e}")))?;
            Ok(ReadyProbe::Http(url.to_owned()))
        }
        // ----
        _ => Err(unknown(loc, k, "port, line, notify, http")),
    }
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
        let (d, p) = load(FULL).unwrap();
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
        load(text).err().expect("an error")
    }

    #[test]
    fn errors_are_one_line_with_a_place() {
        let e = err("[process.web]\ncommand = \"x\"\ncomand = \"y\"\n");
        assert!(
            e.starts_with("line 3, column 1: process 'web': unknown key `comand`"),
            "{e}"
        );
        let e = err("[process.web\ncommand = 1\n");
        assert!(e.starts_with("line 1, column"), "{e}");
        let e = err("[process.web]\ncommand = \"\"\n");
        assert!(e.contains("empty command"), "{e}");
        let e = err("[process.web]\ncommand = \"x\"\ngrace = \"soon\"\n");
        assert!(
            e.contains("line 3, column 9: process 'web': grace: 'soon'"),
            "{e}"
        );
        let e = err("[process.web]\ncommand = \"x\"\nrestart = \"sometimes\"\n");
        assert!(e.contains("restart: 'sometimes'"), "{e}");
        let e = err("[process.a]\ncommand = \"x\"\n[process.a]\ncommand = \"y\"\n");
        assert!(e.contains("duplicate") || e.contains("redefin"), "{e}");
        let e = err("grace = 1\n");
        assert!(e.contains("no processes"), "{e}");
        let e = err("[process.web]\nready = { port = 1 }\n");
        assert!(e.contains("missing 'command'"), "{e}");
        assert!(!e.contains('\n'));
    }
}
