//! pyinit's structured events: every decision or observation about a
//! process is one typed value. The human log line and the `json` record are
//! two renderings of it (schema: `docs/events.md`), so `pyinit check` reads
//! records and never parses prose.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tracing::Level;

use crate::exit_status::Ended;
use crate::signals::names;

/// Why pyinit sent a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendReason {
    /// A signal pyinit received, passed on.
    Forward,
    /// A process's turn in the stop (its stop signal).
    Stop,
    /// What a process left behind when it ended.
    Leftover,
    /// `pyinit ctl`.
    Ctl,
    /// A one-shot's `timeout` ran out.
    Timeout,
}

impl SendReason {
    fn as_str(self) -> &'static str {
        match self {
            SendReason::Forward => "forward",
            SendReason::Stop => "stop",
            SendReason::Leftover => "leftover",
            SendReason::Ctl => "ctl",
            SendReason::Timeout => "timeout",
        }
    }
}

/// What started the whole stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopTrigger {
    /// A stop signal to pyinit.
    Signal,
    /// A process ended (and will not be restarted).
    Exit,
    /// A one-shot failed or timed out.
    Oneshot,
    /// Every process was a one-shot, and all completed.
    Completed,
}

impl StopTrigger {
    fn as_str(self) -> &'static str {
        match self {
            StopTrigger::Signal => "signal",
            StopTrigger::Exit => "exit",
            StopTrigger::Oneshot => "oneshot",
            StopTrigger::Completed => "completed",
        }
    }
}

/// One process that got SIGKILL, named before the kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub pid: i32,
    pub cmd: String,
}

/// An OOM kill the memory cgroup counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OomKill {
    /// Config name (managed process) or `None`.
    pub process: Option<String>,
    pub pid: Option<i32>,
    pub cmd: Option<String>,
    pub limit_bytes: Option<u64>,
    pub peak_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        process: String,
        pid: i32,
        multi: bool,
    },
    Ready {
        process: String,
        pid: i32,
    },
    /// A managed process ended (`pid` is `None` when it could not start).
    Exited {
        process: String,
        pid: Option<i32>,
        ended: Ended,
        multi: bool,
    },
    /// A managed process could not be started (multi-process mode).
    SpawnFailed {
        process: String,
        message: String,
    },
    /// A descendant that is not a managed process was reaped.
    Reaped {
        pid: i32,
        ended: Ended,
    },
    SignalSent {
        signal: i32,
        process: Option<String>,
        pids: Vec<i32>,
        skipped: Vec<i32>,
        reason: SendReason,
    },
    /// A multi-process non-stop signal that a process did not get (no handler,
    /// not in its `signals`).
    SignalSkipped {
        signal: i32,
        process: String,
        /// Skipped because of its `signals` list (not for want of a handler).
        listed: bool,
    },
    /// A signal `--rewrite` drops.
    SignalDropped {
        signal: i32,
    },
    /// A stop signal arrived; it is passed on after `--stop-delay`.
    StopDelayed {
        signal: i32,
        delay: Duration,
    },
    Stop {
        signal: Option<i32>,
        trigger: StopTrigger,
        process: Option<String>,
        grace: Duration,
    },
    /// A process ended and the others are stopped because of it.
    StoppingOthers {
        process: String,
    },
    Restarting {
        process: String,
        delay: Duration,
        restarts: usize,
        window: Duration,
    },
    GaveUp {
        process: String,
        ended: Ended,
        restarts: usize,
        window: Duration,
    },
    OneshotCompleted {
        process: String,
    },
    OneshotFailed {
        process: String,
        /// How it ended; `None` when it never started.
        ended: Option<Ended>,
        timed_out: Option<Duration>,
        status: i32,
    },
    Killed {
        process: Option<String>,
        grace: Duration,
        victims: Vec<Victim>,
        more: usize,
    },
    OomKill(OomKill),
    /// pyinit's own exit status.
    Exit {
        status: i32,
        orphans_reaped: u64,
    },
}

fn ended_fields(m: &mut Map<String, Value>, ended: Ended) {
    let (code, sig) = match ended {
        Ended::Exited(c) => (json!(c), Value::Null),
        Ended::Signaled(n) => (Value::Null, json!(n)),
    };
    m.insert("exit_code".into(), code);
    m.insert("signal".into(), sig);
    m.insert("status".into(), json!(ended.code()));
}

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

impl Event {
    /// The event's name in `json` records.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::Ready { .. } => "ready",
            Event::Exited { .. } => "exited",
            Event::SpawnFailed { .. } => "spawn_failed",
            Event::Reaped { .. } => "reaped",
            Event::SignalSent { .. } => "signal_sent",
            Event::SignalSkipped { .. } => "signal_skipped",
            Event::SignalDropped { .. } => "signal_dropped",
            Event::StopDelayed { .. } => "stop_delayed",
            Event::Stop { .. } => "stop",
            Event::StoppingOthers { .. } => "stopping_others",
            Event::Restarting { .. } => "restarting",
            Event::GaveUp { .. } => "gave_up",
            Event::OneshotCompleted { .. } => "oneshot_completed",
            Event::OneshotFailed { .. } => "oneshot_failed",
            Event::Killed { .. } => "killed",
            Event::OomKill(_) => "oom_kill",
            Event::Exit { .. } => "exit",
        }
    }

    pub fn level(&self) -> Level {
        match self {
            Event::Started { multi, .. } | Event::Exited { multi, .. } => {
                if *multi {
                    Level::INFO
                } else {
                    Level::DEBUG
                }
            }
            Event::Ready { .. }
            | Event::StopDelayed { .. }
            | Event::StoppingOthers { .. }
            | Event::Restarting { .. }
            | Event::OneshotCompleted { .. } => Level::INFO,
            Event::SpawnFailed { .. } | Event::OneshotFailed { .. } => Level::ERROR,
            Event::GaveUp { .. } | Event::Killed { .. } | Event::OomKill(_) => Level::WARN,
            Event::Reaped { .. }
            | Event::SignalSent { .. }
            | Event::SignalSkipped { .. }
            | Event::SignalDropped { .. }
            | Event::Stop { .. }
            | Event::Exit { .. } => Level::DEBUG,
        }
    }

    /// The human sentence (without the `pyinit:` prefix or level word).
    pub fn message(&self) -> String {
        match self {
            Event::Started {
                process,
                pid,
                multi: true,
            } => format!("{process} started (pid {pid})"),
            Event::Started { process, pid, .. } => format!("started {process} as pid {pid}"),
            Event::Ready { process, .. } => format!("{process} is ready"),
            Event::Exited {
                process,
                pid: Some(pid),
                ended,
                multi: true,
            } => format!("{process} (pid {pid}) {}", ended.describe()),
            Event::Exited {
                process,
                pid: None,
                ended,
                ..
            } => format!(
                "{process} could not be started (status {})",
                ended.code()
            ),
            Event::Exited {
                pid: Some(pid),
                ended,
                ..
            } => format!("main process {pid} {}", ended.describe()),
            Event::SpawnFailed { process, message } => format!("{process}: {message}"),
            Event::Reaped { pid, ended } => format!("reaped {pid}: {}", ended.describe()),
            Event::SignalSent {
                signal,
                process,
                pids,
                skipped,
                reason,
            } => {
                let mut s = format!(
                    "{} ({}) sent to {}",
                    names::name(*signal),
                    reason.as_str(),
                    list(pids)
                );
                if let Some(p) = process {
                    s.push_str(&format!(" of {p}"));
                }
                if !skipped.is_empty() {
                    s.push_str(&format!(
                        "; spared {} (a parent handles it)",
                        list(skipped)
                    ));
                }
                s
            }
            Event::SignalSkipped {
                signal,
                process,
                listed: true,
            } => format!(
                "{} not sent to {process}: its `signals` list does not name it",
                names::name(*signal)
            ),
            Event::SignalSkipped { signal, process, .. } => format!(
                "{} not sent to {process}: it has no handler for it (list it in `signals` to send it)",
                names::name(*signal)
            ),
            Event::SignalDropped { signal } => {
                format!("{} dropped by --rewrite", names::name(*signal))
            }
            Event::StopDelayed { signal, delay } => format!(
                "{} received; forwarding it in {}",
                names::name(*signal),
                dur(*delay)
            ),
            Event::Stop {
                signal,
                trigger,
                process,
                grace,
            } => {
                let why = match (trigger, process, signal) {
                    (StopTrigger::Signal, _, Some(s)) => format!("{} received", names::name(*s)),
                    (_, Some(p), _) => format!("{p} ended"),
                    (t, _, _) => t.as_str().to_string(),
                };
                format!("stopping ({why}); everything is killed in {}", dur(*grace))
            }
            Event::StoppingOthers { process } => {
                format!("{process} ended; stopping the other processes")
            }
            Event::Restarting {
                process,
                delay,
                restarts,
                window,
            } => format!(
                "restarting {process} in {} ({restarts} {} in the last {})",
                dur(*delay),
                if *restarts == 1 {
                    "restart"
                } else {
                    "restarts"
                },
                dur(*window)
            ),
            Event::GaveUp {
                process,
                ended,
                restarts,
                window,
            } => format!(
                "{process} {} after {restarts} restarts within {}; stopping everything",
                ended.describe(),
                dur(*window)
            ),
            Event::OneshotCompleted { process } => format!("{process} completed"),
            Event::OneshotFailed {
                process,
                ended,
                timed_out,
                status,
            } => {
                let how = match (timed_out, ended) {
                    (Some(t), _) => format!("timed out after {}", dur(*t)),
                    (None, Some(e)) => e.describe(),
                    (None, None) => "could not be started".into(),
                };
                format!("one-shot {process} failed: {how}; stopping everything (exit status {status})")
            }
            Event::Killed {
                process,
                grace,
                victims,
                more,
            } => {
                let grace = match process {
                    Some(p) => format!("{} for {p}", dur(*grace)),
                    None => dur(*grace),
                };
                let n = victims.len() + more;
                let named: Vec<String> = victims
                    .iter()
                    .map(|v| format!("{} ({})", v.pid, v.cmd))
                    .collect();
                format!(
                    "grace period of {grace} ran out; sent SIGKILL to {n} process{}: {}{}",
                    if n == 1 { "" } else { "es" },
                    named.join(", "),
                    if *more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
            Event::OomKill(k) => {
                let who = match (&k.process, k.pid, &k.cmd) {
                    (Some(name), Some(pid), Some(cmd)) => format!("{name} {pid} ({cmd})"),
                    (Some(name), Some(pid), None) => format!("{name} {pid}"),
                    (None, Some(pid), Some(cmd)) => format!("{pid} ({cmd})"),
                    (None, Some(pid), None) => format!("process {pid}"),
                    (Some(name), None, _) => name.clone(),
                    (None, None, _) => "a process".into(),
                };
                let mut mem = Vec::new();
                if let Some(l) = k.limit_bytes {
                    mem.push(format!("memory limit {}", mib(l)));
                }
                if let Some(p) = k.peak_bytes {
                    mem.push(format!("peak {}", mib(p)));
                }
                let mem = if mem.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", mem.join(", "))
                };
                format!("{who} was killed by the kernel's OOM killer{mem}")
            }
            Event::Exit {
                status,
                orphans_reaped,
            } => format!("exiting with status {status}; {orphans_reaped} orphan(s) reaped"),
        }
    }

    /// The fields a `json` record adds to `ts`/`name`/`pid`/`stream`/`line`.
    pub fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("event".into(), json!(self.kind()));
        match self {
            Event::Started { process, pid, .. } | Event::Ready { process, pid } => {
                m.insert("process".into(), json!(process));
                m.insert("process_pid".into(), json!(pid));
            }
            Event::Exited {
                process,
                pid,
                ended,
                ..
            } => {
                m.insert("process".into(), json!(process));
                m.insert("process_pid".into(), json!(pid));
                ended_fields(&mut m, *ended);
            }
            Event::SpawnFailed { process, .. }
            | Event::StoppingOthers { process }
            | Event::OneshotCompleted { process } => {
                m.insert("process".into(), json!(process));
            }
            Event::Reaped { pid, ended } => {
                m.insert("process_pid".into(), json!(pid));
                ended_fields(&mut m, *ended);
            }
            Event::SignalSent {
                signal,
                process,
                pids,
                skipped,
                reason,
            } => {
                m.insert("signal".into(), json!(signal));
                m.insert("signal_name".into(), json!(names::name(*signal)));
                m.insert("process".into(), json!(process));
                m.insert("pids".into(), json!(pids));
                m.insert("skipped".into(), json!(skipped));
                m.insert("reason".into(), json!(reason.as_str()));
            }
            Event::SignalSkipped {
                signal,
                process,
                listed,
            } => {
                m.insert("signal".into(), json!(signal));
                m.insert("process".into(), json!(process));
                m.insert("listed".into(), json!(listed));
            }
            Event::SignalDropped { signal } => {
                m.insert("signal".into(), json!(signal));
            }
            Event::StopDelayed { signal, delay } => {
                m.insert("signal".into(), json!(signal));
                m.insert("delay_s".into(), json!(delay.as_secs_f64()));
            }
            Event::Stop {
                signal,
                trigger,
                process,
                grace,
            } => {
                m.insert("signal".into(), json!(signal));
                m.insert("trigger".into(), json!(trigger.as_str()));
                m.insert("process".into(), json!(process));
                m.insert("grace_s".into(), json!(grace.as_secs_f64()));
            }
            Event::Restarting {
                process,
                delay,
                restarts,
                ..
            } => {
                m.insert("process".into(), json!(process));
                m.insert("delay_s".into(), json!(delay.as_secs_f64()));
                m.insert("restarts".into(), json!(restarts));
            }
            Event::GaveUp {
                process,
                ended,
                restarts,
                ..
            } => {
                m.insert("process".into(), json!(process));
                m.insert("restarts".into(), json!(restarts));
                ended_fields(&mut m, *ended);
            }
            Event::OneshotFailed {
                process,
                ended,
                timed_out,
                status,
            } => {
                m.insert("process".into(), json!(process));
                if let Some(e) = ended {
                    ended_fields(&mut m, *e);
                }
                m.insert("timed_out".into(), json!(timed_out.is_some()));
                m.insert("status".into(), json!(status));
            }
            Event::Killed {
                process,
                grace,
                victims,
                more,
            } => {
                m.insert("process".into(), json!(process));
                m.insert("grace_s".into(), json!(grace.as_secs_f64()));
                let v: Vec<Value> = victims
                    .iter()
                    .map(|v| json!({"pid": v.pid, "cmd": v.cmd}))
                    .collect();
                m.insert("victims".into(), Value::Array(v));
                m.insert("more".into(), json!(more));
            }
            Event::OomKill(k) => {
                m.insert("process".into(), json!(k.process));
                m.insert("process_pid".into(), json!(k.pid));
                m.insert("cmd".into(), json!(k.cmd));
                m.insert("limit_bytes".into(), json!(k.limit_bytes));
                m.insert("peak_bytes".into(), json!(k.peak_bytes));
            }
            Event::Exit {
                status,
                orphans_reaped,
            } => {
                m.insert("status".into(), json!(status));
                m.insert("orphans_reaped".into(), json!(orphans_reaped));
            }
        }
        m
    }
}

fn list(pids: &[i32]) -> String {
    match pids {
        [] => "no process".into(),
        [one] => one.to_string(),
        many if many.len() <= 8 => many
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        many => format!(
            "{} and {} more",
            many[..8]
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            many.len() - 8
        ),
    }
}

/// Logs `event` through `tracing` at its level; the `json` log format adds
/// its fields to the record (see [`crate::logging`]).
pub fn emit(event: &Event) {
    let message = event.message();
    let fields = Value::Object(event.fields()).to_string();
    match event.level() {
        Level::ERROR => tracing::error!(pyinit_event = fields.as_str(), "{message}"),
        Level::WARN => tracing::warn!(pyinit_event = fields.as_str(), "{message}"),
        Level::INFO => tracing::info!(pyinit_event = fields.as_str(), "{message}"),
        Level::DEBUG => tracing::debug!(pyinit_event = fields.as_str(), "{message}"),
        _ => tracing::trace!(pyinit_event = fields.as_str(), "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_report_keeps_its_wording() {
        let e = Event::Killed {
            process: Some("w16".into()),
            grace: Duration::from_secs(2),
            victims: vec![Victim {
                pid: 7,
                cmd: "python x.py".into(),
            }],
            more: 0,
        };
        assert_eq!(
            e.message(),
            "grace period of 2s for w16 ran out; sent SIGKILL to 1 process: 7 (python x.py)"
        );
        assert_eq!(e.level(), Level::WARN);
        let f = e.fields();
        assert_eq!(f["event"], "killed");
        assert_eq!(f["victims"][0]["pid"], 7);
    }

    #[test]
    fn exited_fields_split_code_and_signal() {
        let e = Event::Exited {
            process: "web".into(),
            pid: Some(4),
            ended: Ended::Signaled(15),
            multi: false,
        };
        let f = e.fields();
        assert_eq!(f["exit_code"], Value::Null);
        assert_eq!(f["signal"], 15);
        assert_eq!(f["status"], 143);
        assert_eq!(e.message(), "main process 4 killed by SIGTERM");
    }

    #[test]
    fn oom_line_has_the_spec_shape() {
        let e = Event::OomKill(OomKill {
            process: Some("worker".into()),
            pid: Some(42),
            cmd: Some("python worker.py".into()),
            limit_bytes: Some(512 << 20),
            peak_bytes: Some(511 << 20),
        });
        assert_eq!(
            e.message(),
            "worker 42 (python worker.py) was killed by the kernel's OOM killer \
             (memory limit 512 MiB, peak 511 MiB)"
        );
    }

    #[test]
    fn long_pid_lists_are_cut_in_prose_but_whole_in_fields() {
        let pids: Vec<i32> = (1..=12).collect();
        let e = Event::SignalSent {
            signal: 15,
            process: Some("web".into()),
            pids: pids.clone(),
            skipped: vec![],
            reason: SendReason::Forward,
        };
        assert!(e.message().contains("and 4 more"));
        assert_eq!(e.fields()["pids"].as_array().unwrap().len(), 12);
    }
}
