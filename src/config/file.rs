//! The TOML config of `--config`: top-level defaults and one
//! `[process.NAME]` table per process (see docs/reference-options.md for
//! every key).
//!
//! Read from toml's spanned document (`DeTable`) rather than through serde
//! derive: every error keeps its line and column, and the binary stays
//! about 100 KB smaller than with a derived deserializer per table.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::process::{ReadyProbe, Restart, RestartPolicy, SignalScope};
use super::url::HttpUrl;
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

    /// `expect_exit = [0, 3]`: exit codes 0-255.
    fn codes(&self, key: &str, v: &Value<'_>) -> Result<Vec<i32>, String> {
        let arr = v
            .get_ref()
            .as_array()
            .ok_or_else(|| self.at(v, format!("{key} must be an array of exit codes")))?;
        arr.iter()
            .map(|c| {
                let n = self.int(key, c)?;
                i32::try_from(n)
                    .ok()
                    .filter(|c| (0..=255).contains(c))
                    .ok_or_else(|| self.at(c, format!("{key} codes are 0-255")))
            })
            .collect()
    }

    /// `signals = ["HUP", "USR1"]`: signal names or numbers; `[]` allowed.
    fn signals(&self, key: &str, v: &Value<'_>) -> Result<Vec<i32>, String> {
        let arr = v
            .get_ref()
            .as_array()
            .ok_or_else(|| self.at(v, format!("{key} must be an array of signal names")))?;
        arr.iter()
            .map(|e| {
                let text = self.scalar(key, e)?;
                names::parse(&text).map_err(|m| self.at(e, format!("{key}: {m}")))
            })
            .collect()
    }

    fn bool(&self, key: &str, v: &Value<'_>) -> Result<bool, String> {
        v.get_ref()
            .as_bool()
            .ok_or_else(|| self.at(v, format!("{key} must be true or false")))
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
    signal_scope: Option<SignalScope>,
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
            "signal_scope" => {
                self.signal_scope = Some(
                    loc.str(key, v)?
                        .parse()
                        .map_err(|e| loc.at(v, format!("signal_scope: {e}")))?,
                )
            }
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
    /// Runs once, to completion.
    pub oneshot: bool,
    /// One-shots only.
    pub timeout: Option<Duration>,
    /// Its own `expect_exit`; `None`: the top-level one.
    pub expect_exit: Option<Vec<i32>>,
    /// Its own `signal_scope`; `None`: the default (flag, top-level key, auto).
    pub signal_scope: Option<SignalScope>,
    /// `signals = [...]`; `None` when absent.
    pub signals: Option<Vec<i32>>,
}

/// Top-level settings.
#[derive(Debug, Default)]
pub struct FileDefaults {
    pub grace: Option<Duration>,
    pub stop_delay: Option<Duration>,
    pub log_format: Option<LogFormat>,
    pub max_line: Option<usize>,
    pub expect_exit: Vec<i32>,
    pub signal_scope: Option<SignalScope>,
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

const PROCESS_KEYS: &str = "command, depends_on, ready, oneshot, timeout, expect_exit, restart, \
                            max_restarts, restart_window, backoff, backoff_max, stop_signal, grace, \
                            signal_scope, signals, env, working_dir";
const TOP_KEYS: &str = "process, grace, stop_delay, log_format, max_line, expect_exit, restart, \
                        max_restarts, restart_window, backoff, backoff_max, stop_signal, \
                        signal_scope, env, working_dir";

/// Parses and validates the whole file; the first problem is the error.
pub fn load(text: &str) -> Result<(FileDefaults, Vec<FileProcess>), String> {
    let doc = DeTable::parse(text).map_err(|e| {
        let mut msg = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => {
                if msg == "duplicate key" {
                    msg = duplicate(text, span.start);
                }
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
            "expect_exit" => defaults.expect_exit = loc.codes(k, v)?,
            _ => return Err(unknown(&loc, key, TOP_KEYS)),
        }
    }
    defaults.grace = top.grace;
    defaults.signal_scope = top.signal_scope;
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
        let (mut oneshot, mut timeout, mut expect_exit, mut signals) = (false, None, None, None);
        for (k, val) in t.iter() {
            let kname: &str = k.get_ref();
            if own.take(&loc, kname, val).map_err(err)? {
                continue;
            }
            match kname {
                "command" => argv = Some(command(&loc, val).map_err(err)?),
                "depends_on" => depends_on = loc.strings(kname, val).map_err(err)?,
                "ready" => ready = Some(ready_probe(&loc, val).map_err(err)?),
                "oneshot" => oneshot = loc.bool(kname, val).map_err(err)?,
                "timeout" => timeout = Some((k, loc.duration(kname, val).map_err(err)?)),
                "expect_exit" => expect_exit = Some(loc.codes(kname, val).map_err(err)?),
                "signals" => signals = Some(loc.signals(kname, val).map_err(err)?),
                _ => return Err(err(unknown(&loc, k, PROCESS_KEYS))),
            }
        }
        let argv = argv.ok_or_else(|| err(loc.at(key, "missing 'command'")))?;
        let restart = own.restart(&base);
        if oneshot && restart.policy == RestartPolicy::Always {
            let whence = if own.restart.is_some() {
                ""
            } else {
                " (inherited from the top level)"
            };
            return Err(err(loc.at(
                key,
                format!(
                    "a one-shot cannot have restart = \"always\"{whence}; use \"on-failure\" to retry it"
                ),
            )));
        }
        if let (Some((k, _)), false) = (&timeout, oneshot) {
            return Err(err(loc.at(
                *k,
                "timeout is for one-shots only (add oneshot = true, or remove timeout)",
            )));
        }
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
            restart,
            ready,
            depends_on,
            oneshot,
            timeout: timeout.map(|(_, d)| d),
            expect_exit,
            signal_scope: own.signal_scope,
            signals,
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

/// What a `duplicate key` error of the TOML parser is about: a process
/// defined twice, or a key given twice in one process.
fn duplicate(text: &str, at: usize) -> String {
    let key = key_at(&text[at.min(text.len())..]);
    let line_start = text[..at.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let before: String = text[line_start..at.min(text.len())]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if before == "[process." {
        return format!(
            "process '{}' is defined twice (duplicate name)",
            crate::error::shown(&key)
        );
    }
    // The table the key stands in: the last header above it.
    let header = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['));
    let process = header
        .and_then(|h| h.strip_prefix("[process."))
        .map(|rest| key_at(rest.trim_start()));
    match process {
        Some(p) => format!(
            "process '{}': duplicate key `{}`",
            crate::error::shown(&p),
            crate::error::shown(&key)
        ),
        None => format!("duplicate key `{}`", crate::error::shown(&key)),
    }
}

/// The TOML key at the start of `text`: bare, or a quoted string.
fn key_at(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(q @ ('"' | '\'')) => chars.take_while(|&c| c != q).collect(),
        _ => text
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect(),
    }
}

/// `ready = { port = N }`, `{ line = "REGEX" }`, `{ notify = true }` or
/// `{ http = "http://127.0.0.1:8000/health" }`.
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
        "http" => {
            let url = loc.str("ready.http", val)?;
            HttpUrl::parse(url).map_err(|e| loc.at(val, format!("ready.http: {e}")))?;
            Ok(ReadyProbe::Http(url.to_string()))
        }
        _ => Err(unknown(loc, k, "port, line, notify, http")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

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
        assert_eq!(p[1].stop_signal, Some(Signal::SIGQUIT as i32));
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
        assert_eq!(
            e,
            "line 3, column 10: process 'a' is defined twice (duplicate name)"
        );
        let e = err("grace = 1\n");
        assert!(e.contains("no processes"), "{e}");
        let e = err("[process.web]\nready = { port = 1 }\n");
        assert!(e.contains("missing 'command'"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_process_defined_twice_or_a_key_given_twice_is_named() {
        for text in [
            "[process.a]\ncommand = \"x\"\n\n[process.b]\ncommand = \"z\"\n[process.a]\ncommand = \"y\"\n",
            "[process]\na = { command = \"x\" }\n[process.a]\ncommand = \"y\"\n",
            "[process.a]\ncommand = \"x\"\n[process.a.env]\nX = \"1\"\n[process.\"a\"]\ncommand = \"y\"\n",
        ] {
            let e = err(text);
            assert!(e.contains("process 'a' is defined twice"), "{text:?}: {e}");
        }
        let e = err("[process.web]\ncommand = \"x\"\ncommand = \"y\"\n");
        assert_eq!(
            e,
            "line 3, column 1: process 'web': duplicate key `command`"
        );
        let e = err("grace = 1\ngrace = 2\n[process.web]\ncommand = \"x\"\n");
        assert_eq!(e, "line 2, column 1: duplicate key `grace`");
    }

    const ONESHOT: &str = r#"
signal_scope = "group"
expect_exit = [143]

[process.migrate]
command = "python manage.py migrate"
oneshot = true
timeout = "5m"
expect_exit = [0, 3]
restart = "on-failure"
max_restarts = 3

[process.web]
command = "gunicorn app:app"
depends_on = ["migrate"]
ready = { http = "http://127.0.0.1:8000/health" }
signal_scope = "main"
signals = ["HUP", "SIGTTIN", 22]

[process.worker]
command = "celery worker"
signals = []
"#;

    #[test]
    fn parses_one_shots_scopes_and_signals() {
        let (d, p) = load(ONESHOT).unwrap();
        assert_eq!(d.signal_scope, Some(SignalScope::Group));
        assert_eq!(d.expect_exit, vec![143]);
        assert!(p[0].oneshot);
        assert_eq!(p[0].timeout, Some(Duration::from_secs(300)));
        assert_eq!(p[0].expect_exit, Some(vec![0, 3]));
        assert_eq!(p[0].restart.policy, RestartPolicy::OnFailure);
        assert_eq!(p[0].signal_scope, None, "the default is resolved later");
        assert_eq!(p[0].signals, None);
        assert!(!p[1].oneshot);
        assert_eq!(p[1].expect_exit, None);
        assert_eq!(p[1].signal_scope, Some(SignalScope::Main));
        assert_eq!(
            p[1].signals,
            Some(vec![Signal::SIGHUP as i32, Signal::SIGTTIN as i32, 22])
        );
        assert!(
            matches!(&p[1].ready, Some(ReadyProbe::Http(u)) if u == "http://127.0.0.1:8000/health")
        );
        assert_eq!(p[2].signals, Some(vec![]));
    }

    #[test]
    fn one_shot_and_signal_mistakes_name_the_process() {
        for (text, want) in [
            (
                "[process.m]\ncommand = \"x\"\noneshot = true\nrestart = \"always\"\n",
                "line 1, column 10: process 'm': a one-shot cannot have restart = \"always\"",
            ),
            (
                "restart = \"always\"\n[process.m]\ncommand = \"x\"\noneshot = true\n",
                "(inherited from the top level)",
            ),
            (
                "[process.web]\ncommand = \"x\"\ntimeout = \"5s\"\n",
                "line 3, column 1: process 'web': timeout is for one-shots only",
            ),
            (
                "[process.web]\ncommand = \"x\"\nsignals = [\"HUP\", \"BOGUS\"]\n",
                "line 3, column 19: process 'web': signals: 'BOGUS' is not a signal name",
            ),
            (
                "[process.web]\ncommand = \"x\"\nsignals = \"HUP\"\n",
                "process 'web': signals must be an array",
            ),
            (
                "[process.web]\ncommand = \"x\"\noneshot = 1\n",
                "process 'web': oneshot must be true or false",
            ),
            (
                "[process.web]\ncommand = \"x\"\nsignal_scope = \"all\"\n",
                "process 'web': signal_scope: 'all'",
            ),
            (
                "signal_scope = \"none\"\n[process.web]\ncommand = \"x\"\n",
                "signal_scope: 'none'",
            ),
            (
                "[process.web]\ncommand = \"x\"\nexpect_exit = [256]\n",
                "process 'web': expect_exit codes are 0-255",
            ),
            (
                "[process.web]\ncommand = \"x\"\nready = { http = \"http://db.internal/\" }\n",
                "process 'web': ready.http: 'http://db.internal/' needs a literal IP address",
            ),
            (
                "[process.web]\ncommand = \"x\"\nready = { http = \"https://127.0.0.1/\" }\n",
                "is not an http:// URL",
            ),
            (
                "[process.web]\ncommand = \"x\"\nsingle_child = true\n",
                "unknown key `single_child`",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(want) && !e.contains('\n'), "{text:?}:\n{e}");
        }
    }
}
