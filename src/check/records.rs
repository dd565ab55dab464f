//! The records the pyinit under test writes in `--log-format json`, typed.
//!
//! Every line on its stdout and stderr is one JSON object: an app line
//! (`name` is the process, `stream`, `line`, `partial`), or one of pyinit's
//! own (`name` = `"pyinit"`), which carries an `event` key when it is one of
//! the structured events of `docs/events.md`. `check` decides from these
//! values only, never from the human sentence in `line`.

use serde_json::Value;

/// One line from the pyinit under test.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A line the app wrote.
    App(AppLine),
    /// One of pyinit's structured events.
    Event(Event),
    /// One of pyinit's own messages without an event (or a line that is
    /// not JSON at all, such as an error written before logging started).
    Pyinit(String),
}

/// A line (or a piece of one) an app process wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLine {
    /// The process name (`prefix` label, Procfile/config name).
    pub name: String,
    pub pid: i32,
    pub stderr: bool,
    pub line: String,
    /// A piece of a longer line; the next record continues it.
    pub partial: bool,
}

/// A victim of the SIGKILL at a grace deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Victim {
    pub pid: i32,
    pub cmd: String,
}

/// The events of `docs/events.md` that `check` uses. Pids are as seen in the
/// PID namespace of the pyinit under test; `status` is the raw status
/// (128+N for a death by signal N), before `--expect-exit`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        process: String,
        pid: i32,
    },
    Ready {
        process: String,
        pid: i32,
    },
    Exited {
        process: String,
        pid: i32,
        status: i32,
        signal: Option<i32>,
    },
    /// A descendant that is not a managed process, reaped by pyinit.
    Reaped {
        pid: i32,
        status: i32,
        signal: Option<i32>,
    },
    SignalSent {
        signal: i32,
        process: Option<String>,
        pids: Vec<i32>,
        skipped: Vec<i32>,
        reason: String,
    },
    Stop {
        signal: Option<i32>,
        trigger: String,
        process: Option<String>,
        grace_s: f64,
    },
    Killed {
        process: Option<String>,
        grace_s: f64,
        victims: Vec<Victim>,
    },
    OomKill {
        process: Option<String>,
        pid: Option<i32>,
        cmd: Option<String>,
        limit_bytes: Option<u64>,
        peak_bytes: Option<u64>,
    },
    /// pyinit's own exit status.
    Exit {
        status: i32,
    },
}

fn int(v: &Value, key: &str) -> Option<i32> {
    v.get(key)?.as_i64().and_then(|n| i32::try_from(n).ok())
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_string)
}

fn pids(v: &Value, key: &str) -> Vec<i32> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_i64().and_then(|n| i32::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// The typed event of a record with an `event` key; `None` for an event
/// this version does not know or one missing a required field (a newer
/// producer must not make `check` fail).
fn event(v: &Value, kind: &str) -> Option<Event> {
    let process = || text(v, "process");
    Some(match kind {
        "started" => Event::Started {
            process: process()?,
            pid: int(v, "process_pid")?,
        },
        "ready" => Event::Ready {
            process: process()?,
            pid: int(v, "process_pid")?,
        },
        "exited" => Event::Exited {
            process: process()?,
            pid: int(v, "process_pid")?,
            status: int(v, "status")?,
            signal: int(v, "signal"),
        },
        "reaped" => Event::Reaped {
            pid: int(v, "process_pid")?,
            status: int(v, "status")?,
            signal: int(v, "signal"),
        },
        "signal_sent" => Event::SignalSent {
            signal: int(v, "signal")?,
            process: process(),
            pids: pids(v, "pids"),
            skipped: pids(v, "skipped"),
            reason: text(v, "reason").unwrap_or_default(),
        },
        "stop" => Event::Stop {
            signal: int(v, "signal"),
            trigger: text(v, "trigger").unwrap_or_default(),
            process: process(),
            grace_s: v.get("grace_s").and_then(Value::as_f64).unwrap_or(0.0),
        },
        "killed" => Event::Killed {
            process: process(),
            grace_s: v.get("grace_s").and_then(Value::as_f64).unwrap_or(0.0),
            victims: v
                .get("victims")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| {
                            Some(Victim {
                                pid: int(x, "pid")?,
                                cmd: text(x, "cmd").unwrap_or_default(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        "oom_kill" => Event::OomKill {
            process: process(),
            pid: int(v, "process_pid"),
            cmd: text(v, "cmd"),
            limit_bytes: v.get("limit_bytes").and_then(Value::as_u64),
            peak_bytes: v.get("peak_bytes").and_then(Value::as_u64),
        },
        "exit" => Event::Exit {
            status: int(v, "status")?,
        },
        _ => return None,
    })
}

/// Types one line the pyinit under test wrote.
pub fn parse(line: &str) -> Record {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return Record::Pyinit(line.to_string());
    };
    let name = text(&v, "name").unwrap_or_default();
    let said = text(&v, "line").unwrap_or_default();
    if name == "pyinit" {
        return match v.get("event").and_then(Value::as_str) {
            Some(kind) => event(&v, kind).map_or(Record::Pyinit(said), Record::Event),
            None => Record::Pyinit(said),
        };
    }
    if !v.is_object() || v.get("line").is_none() {
        return Record::Pyinit(line.to_string());
    }
    Record::App(AppLine {
        name,
        pid: int(&v, "pid").unwrap_or(0),
        stderr: v.get("stream").and_then(Value::as_str) == Some("stderr"),
        line: said,
        partial: v.get("partial").and_then(Value::as_bool).unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_lines_keep_stream_and_partial() {
        let r = parse(
            r#"{"ts":"2026-01-01T00:00:00.000Z","name":"web","pid":7,"stream":"stderr","line":"[ERROR] boom","partial":true}"#,
        );
        assert_eq!(
            r,
            Record::App(AppLine {
                name: "web".into(),
                pid: 7,
                stderr: true,
                line: "[ERROR] boom".into(),
                partial: true,
            })
        );
    }

    #[test]
    fn events_are_typed_from_their_fields_not_the_sentence() {
        let r = parse(
            r#"{"name":"pyinit","pid":1,"stream":"stderr","line":"whatever it says","event":"exited","process":"app","process_pid":4,"exit_code":null,"signal":15,"status":143}"#,
        );
        assert_eq!(
            r,
            Record::Event(Event::Exited {
                process: "app".into(),
                pid: 4,
                status: 143,
                signal: Some(15),
            })
        );
        let r = parse(
            r#"{"name":"pyinit","pid":1,"line":"x","event":"signal_sent","signal":15,"signal_name":"SIGTERM","process":null,"pids":[5,6],"skipped":[7],"reason":"leftover"}"#,
        );
        assert_eq!(
            r,
            Record::Event(Event::SignalSent {
                signal: 15,
                process: None,
                pids: vec![5, 6],
                skipped: vec![7],
                reason: "leftover".into(),
            })
        );
        let r = parse(
            r#"{"name":"pyinit","line":"x","event":"killed","process":null,"grace_s":1.0,"victims":[{"pid":4,"cmd":"python3 x.py"}]}"#,
        );
        assert_eq!(
            r,
            Record::Event(Event::Killed {
                process: None,
                grace_s: 1.0,
                victims: vec![Victim {
                    pid: 4,
                    cmd: "python3 x.py".into()
                }],
            })
        );
    }

    #[test]
    fn unknown_or_incomplete_events_and_non_json_are_pyinit_text() {
        assert_eq!(
            parse(r#"{"name":"pyinit","line":"hello","event":"teleported"}"#),
            Record::Pyinit("hello".into())
        );
        assert_eq!(
            parse(r#"{"name":"pyinit","line":"hello","event":"exited"}"#),
            Record::Pyinit("hello".into())
        );
        assert_eq!(
            parse("pyinit: error: bad"),
            Record::Pyinit("pyinit: error: bad".into())
        );
        assert_eq!(
            parse(r#"{"name":"pyinit","line":"plain message"}"#),
            Record::Pyinit("plain message".into())
        );
    }
}
