//! What `pyinit status`, `pyinit health` and the control socket report: the
//! supervisor's view of each process, as plain data shared by the server
//! (the supervisor loop) and the clients.

use std::time::Duration;

/// One process's state, as the state machine holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Not started yet: its dependencies are not ready or completed.
    Waiting,
    /// Started; its `ready` probe has not passed yet.
    Starting,
    /// Started and its `ready` probe passed.
    Ready,
    /// Started; it has no `ready` probe.
    Running,
    /// Exited; waiting to be restarted.
    Backoff,
    /// A one-shot that exited successfully.
    Completed,
    /// Ended and will not run again (failed, or the whole stop).
    Exited,
    /// Stopped by `pyinit ctl stop`; stays down.
    Stopped,
    /// Its stop signal went out; not reaped yet.
    Stopping,
}

impl ProcState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcState::Waiting => "waiting",
            ProcState::Starting => "starting",
            ProcState::Ready => "ready",
            ProcState::Running => "running",
            ProcState::Backoff => "backoff",
            ProcState::Completed => "completed",
            ProcState::Exited => "exited",
            ProcState::Stopped => "stopped",
            ProcState::Stopping => "stopping",
        }
    }

    /// Whether a process in this state has a live pid.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            ProcState::Starting | ProcState::Ready | ProcState::Running | ProcState::Stopping
        )
    }
}

/// How the readiness of a process is probed again by `pyinit health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveProbe {
    /// 127.0.0.1:PORT accepts.
    Port(u16),
    /// GET URL answers 2xx/3xx.
    Http(String),
}

/// One process as `pyinit status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStatus {
    pub name: String,
    pub pid: Option<i32>,
    pub state: ProcState,
    pub oneshot: bool,
    /// Time since its current start (none when not running).
    pub uptime: Option<Duration>,
    pub restarts: u32,
    /// `max_restarts` of its restart policy (for "restart 3 of 5").
    pub max_restarts: u32,
    /// Its last end, as the exit status pyinit would report (code or 128+N).
    pub last_exit: Option<i32>,
    /// Readiness result so far (line and notify probes stay true while it runs).
    pub ready: bool,
    /// The probe `pyinit health` runs again now, if any.
    pub live_probe: Option<LiveProbe>,
}

/// Everything `pyinit status` reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    pub processes: Vec<ProcStatus>,
    /// A stop (or `--stop-delay`) is under way.
    pub stopping: bool,
    /// OOM kills seen since pyinit started.
    pub oom_kills: u64,
}
