//! The control socket's wire format: one JSON object per line each way.
//!
//! Requests: `{"cmd": "status"}`, `{"cmd": "restart" | "stop" | "start",
//! "name": NAME}`, `{"cmd": "signal", "name": NAME, "signal": N}`.
//! Replies: `{"ok": true}`, `{"ok": true, "status": STATUS}` or
//! `{"ok": false, "error": "one line"}`. STATUS is the `pyinit status
//! --json` object plus what `pyinit health` needs (`oneshot`,
//! `max_restarts`, `probe`).
//!
//! Built on `serde_json::Value` by hand: serde's derive costs binary size.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Reply, Request};
use crate::status::{LiveProbe, ProcState, ProcStatus, Status};

/// Longest request line the server reads.
pub const MAX_REQUEST: usize = 4096;
/// Longest reply line a client reads (a status of a few hundred processes).
pub const MAX_REPLY: usize = 1 << 20;

/// A line that is not a valid request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn bad(msg: impl Into<String>) -> ProtocolError {
    ProtocolError(msg.into())
}

fn parse_object(line: &[u8]) -> Result<Map<String, Value>, ProtocolError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("not a JSON object")),
        Err(_) => Err(bad("not JSON")),
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, ProtocolError> {
    m.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing string field '{key}'")))
}

/// One request line (with or without its newline).
pub fn encode_request(r: &Request) -> String {
    let v = match r {
        Request::Status => json!({"cmd": "status"}),
        Request::Restart(n) => json!({"cmd": "restart", "name": n}),
        Request::Stop(n) => json!({"cmd": "stop", "name": n}),
        Request::Start(n) => json!({"cmd": "start", "name": n}),
        Request::Signal { signal, name } => {
            json!({"cmd": "signal", "name": name, "signal": signal})
        }
    };
    format!("{v}\n")
}

pub fn decode_request(line: &[u8]) -> Result<Request, ProtocolError> {
    let m = parse_object(line)?;
    let name = || str_field(&m, "name").map(str::to_owned);
    match str_field(&m, "cmd")? {
        "status" => Ok(Request::Status),
        "restart" => Ok(Request::Restart(name()?)),
        "stop" => Ok(Request::Stop(name()?)),
        "start" => Ok(Request::Start(name()?)),
        "signal" => {
            let signal = m
                .get("signal")
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .filter(|&n| (1..=64).contains(&n))
                .ok_or_else(|| bad("missing or invalid 'signal' (1-64)"))?;
            Ok(Request::Signal {
                signal,
                name: name()?,
            })
        }
        other => Err(bad(format!(
            "unknown command '{}'",
            crate::error::shown(other)
        ))),
    }
}

pub fn encode_reply(r: &Reply) -> String {
    let v = match r {
        Reply::Done => json!({"ok": true}),
        Reply::Error(e) => json!({"ok": false, "error": e}),
        Reply::Status(s) => json!({"ok": true, "status": status_to_json(s, true)}),
    };
    format!("{v}\n")
}

pub fn decode_reply(line: &[u8]) -> Result<Reply, ProtocolError> {
    let m = parse_object(line)?;
    match m.get("ok").and_then(Value::as_bool) {
        Some(true) => match m.get("status") {
            Some(s) => Ok(Reply::Status(status_from_json(s)?)),
            None => Ok(Reply::Done),
        },
        Some(false) => Ok(Reply::Error(str_field(&m, "error")?.to_owned())),
        None => Err(bad("missing boolean field 'ok'")),
    }
}

/// The `pyinit status --json` object; `full` adds the fields only the
/// clients need (`oneshot`, `max_restarts`, `probe`).
pub fn status_to_json(s: &Status, full: bool) -> Value {
    let procs: Vec<Value> = s
        .processes
        .iter()
        .map(|p| {
            let mut o = json!({
                "name": p.name,
                "pid": p.pid,
                "state": p.state.as_str(),
                "uptime_s": p.uptime.map(|d| d.as_secs()),
                "restarts": p.restarts,
                "last_exit": p.last_exit,
                "ready": p.ready,
            });
            if full {
                let probe = match &p.live_probe {
                    None => Value::Null,
                    Some(LiveProbe::Port(n)) => json!({"port": n}),
                    Some(LiveProbe::Http(u)) => json!({"http": u}),
                };
                if let Value::Object(m) = &mut o {
                    m.insert("oneshot".into(), p.oneshot.into());
                    m.insert("max_restarts".into(), p.max_restarts.into());
                    m.insert("probe".into(), probe);
                }
            }
            o
        })
        .collect();
    json!({"processes": procs, "stopping": s.stopping, "oom_kills": s.oom_kills})
}

fn state_from_str(s: &str) -> Option<ProcState> {
    use ProcState::*;
    [
        Waiting, Starting, Ready, Running, Backoff, Completed, Exited, Stopped, Stopping,
    ]
    .into_iter()
    .find(|st| st.as_str() == s)
}

fn opt_u32(v: Option<&Value>) -> u32 {
    v.and_then(Value::as_u64)
        .map_or(0, |n| n.min(u32::MAX as u64) as u32)
}

fn opt_i32(v: Option<&Value>) -> Option<i32> {
    v.and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

pub fn status_from_json(v: &Value) -> Result<Status, ProtocolError> {
    let m = v
        .as_object()
        .ok_or_else(|| bad("status is not an object"))?;
    let list = m
        .get("processes")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("status has no 'processes' list"))?;
    let mut processes = Vec::with_capacity(list.len());
    for p in list {
        let p = p
            .as_object()
            .ok_or_else(|| bad("a process is not an object"))?;
        let state = str_field(p, "state")?;
        let state = state_from_str(state)
            .ok_or_else(|| bad(format!("unknown state '{}'", crate::error::shown(state))))?;
        let probe = p.get("probe").and_then(Value::as_object);
        let live_probe = probe.and_then(|o| {
            if let Some(port) = o.get("port").and_then(Value::as_u64) {
                u16::try_from(port).ok().map(LiveProbe::Port)
            } else {
                o.get("http")
                    .and_then(Value::as_str)
                    .map(|u| LiveProbe::Http(u.to_owned()))
            }
        });
        processes.push(ProcStatus {
            name: str_field(p, "name")?.to_owned(),
            pid: opt_i32(p.get("pid")),
            state,
            oneshot: p.get("oneshot").and_then(Value::as_bool).unwrap_or(false),
            uptime: p
                .get("uptime_s")
                .and_then(Value::as_u64)
                .map(Duration::from_secs),
            restarts: opt_u32(p.get("restarts")),
            max_restarts: opt_u32(p.get("max_restarts")),
            last_exit: opt_i32(p.get("last_exit")),
            ready: p.get("ready").and_then(Value::as_bool).unwrap_or(false),
            live_probe,
        });
    }
    Ok(Status {
        processes,
        stopping: m.get("stopping").and_then(Value::as_bool).unwrap_or(false),
        oom_kills: m.get("oom_kills").and_then(Value::as_u64).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            processes: vec![
                ProcStatus {
                    name: "web".into(),
                    pid: Some(7),
                    state: ProcState::Ready,
                    oneshot: false,
                    uptime: Some(Duration::from_secs(12)),
                    restarts: 1,
                    max_restarts: 5,
                    last_exit: Some(1),
                    ready: true,
                    live_probe: Some(LiveProbe::Http("http://127.0.0.1:8000/".into())),
                },
                ProcStatus {
                    name: "migrate".into(),
                    pid: None,
                    state: ProcState::Completed,
                    oneshot: true,
                    uptime: None,
                    restarts: 0,
                    max_restarts: 0,
                    last_exit: Some(0),
                    ready: false,
                    live_probe: Some(LiveProbe::Port(9)),
                },
            ],
            stopping: true,
            oom_kills: 2,
        }
    }

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Status,
            Request::Restart("web".into()),
            Request::Stop("a b".into()),
            Request::Start("\"odd\"".into()),
            Request::Signal {
                signal: 10,
                name: "worker".into(),
            },
        ] {
            let line = encode_request(&r);
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert_eq!(decode_request(line.as_bytes()), Ok(r));
        }
    }

    #[test]
    fn replies_round_trip() {
        for r in [
            Reply::Done,
            Reply::Error("unknown process 'x'".into()),
            Reply::Status(sample()),
            Reply::Status(Status::default()),
        ] {
            let line = encode_reply(&r);
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert_eq!(decode_reply(line.as_bytes()), Ok(r));
        }
    }

    #[test]
    fn public_status_json_has_exactly_the_documented_keys() {
        let v = status_to_json(&sample(), false);
        let mut top: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        top.sort();
        assert_eq!(top, ["oom_kills", "processes", "stopping"]);
        let p = &v["processes"][0];
        let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "last_exit",
                "name",
                "pid",
                "ready",
                "restarts",
                "state",
                "uptime_s"
            ]
        );
        assert_eq!(p["state"], "ready");
        assert_eq!(v["processes"][1]["pid"], Value::Null);
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n",
            b"garbage",
            b"\xff\xfe\x00",
            b"[1,2]",
            b"\"status\"",
            b"{}",
            b"{\"cmd\": 3}",
            b"{\"cmd\": \"reboot\"}",
            b"{\"cmd\": \"restart\"}",
            b"{\"cmd\": \"signal\", \"name\": \"x\"}",
            b"{\"cmd\": \"signal\", \"name\": \"x\", \"signal\": 0}",
            b"{\"cmd\": \"signal\", \"name\": \"x\", \"signal\": 99999999999}",
            b"{\"cmd\": \"status\"",
            b"{\"cmd\": \"status\"} trailing",
        ];
        for c in cases {
            assert!(
                decode_request(c).is_err(),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        let deep = "[".repeat(10_000);
        assert!(decode_request(deep.as_bytes()).is_err());
    }

    #[test]
    fn malformed_replies_are_errors() {
        for c in [
            &b"{}"[..],
            b"{\"ok\": false}",
            b"{\"ok\": true, \"status\": 1}",
            b"{\"ok\": true, \"status\": {\"processes\": [{\"name\": \"a\", \"state\": \"dancing\"}]}}",
            b"{\"ok\": true, \"status\": {\"processes\": [1]}}",
            b"nope",
        ] {
            assert!(decode_reply(c).is_err(), "{:?}", String::from_utf8_lossy(c));
        }
    }
}
