//! TEMPORARY bridge (issue 12) between the control socket and the current
//! supervisor, until the state-machine supervisor answers [`ControlMsg`]s
//! itself: builds a [`Status`] from the `Proc` fields and carries out
//! restart/stop/start/signal as far as the current loop allows. Also polls
//! `ready = { http = URL }` with the async probe, off the loop.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::{Receiver, UnboundedSender};

use super::{Proc, StopState, Supervisor, PORT_POLL};
use crate::config::ReadyProbe;
use crate::control::{ControlMsg, Reply, Request};
use crate::signals::names;
use crate::signals::rewrite::{Route, Target};
use crate::status::{LiveProbe, ProcState, ProcStatus, Status};

/// What `pyinit ctl` asked of a process, applied when it exits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Intent {
    #[default]
    None,
    /// Start it again once it is gone.
    Restart,
    /// Keep it down once it is gone (and while it is).
    Stop,
}

/// A `ctl` request, once its process is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Restart,
    Stop,
    Start,
    Signal(i32),
}

/// The next control request, or never when there is no socket.
pub(super) async fn next(rx: &mut Option<Receiver<ControlMsg>>) -> Option<ControlMsg> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Polls `url` off the loop until it answers 2xx/3xx, then reports the
/// process ready (for that start only: later starts have their own poll).
pub(super) fn watch_http(
    url: String,
    i: usize,
    generation: u64,
    tx: UnboundedSender<(usize, u64)>,
) {
    tokio::spawn(async move {
        loop {
            if crate::control::probe::http_ok(&url, Duration::from_secs(1))
                .await
                .is_ok()
            {
                let _ = tx.send((i, generation));
                return;
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(PORT_POLL).await;
        }
    });
}

impl Supervisor<'_> {
    pub(super) fn on_control(&mut self, msg: ControlMsg) {
        let reply = self.control_reply(msg.request);
        let _ = msg.reply.send(reply);
    }

    fn control_reply(&mut self, request: Request) -> Reply {
        let (name, action) = match request {
            Request::Status => return Reply::Status(self.status()),
            Request::Restart(n) => (n, Action::Restart),
            Request::Stop(n) => (n, Action::Stop),
            Request::Start(n) => (n, Action::Start),
            Request::Signal { signal, name } => (name, Action::Signal(signal)),
        };
        let Some(i) = self.cfg.processes.iter().position(|p| p.name == name) else {
            return Reply::Error(format!("no process named '{}'", crate::error::shown(&name)));
        };
        if self.trigger.is_some() || !matches!(self.stop, StopState::Running) {
            return Reply::Error("pyinit is stopping".into());
        }
        let running = self.procs[i].pid.is_some();
        match action {
            Action::Signal(_) if !running => Reply::Error(format!("{name} is not running")),
            Action::Signal(signal) => {
                let stop = names::is_stop(signal);
                let target = if stop && !self.cfg.single_child() {
                    Target::Group
                } else {
                    Target::Main
                };
                self.forward(
                    i,
                    Route {
                        send: signal,
                        stop,
                        target,
                    },
                );
                Reply::Done
            }
            Action::Restart | Action::Stop if running => {
                if self.procs[i].stop_deadline.is_none() {
                    self.stop_one(i);
                }
                self.procs[i].ctl = if action == Action::Restart {
                    Intent::Restart
                } else {
                    Intent::Stop
                };
                Reply::Done
            }
            Action::Stop => {
                self.procs[i].backoff_until = None;
                self.procs[i].ctl = Intent::Stop;
                Reply::Done
            }
            Action::Start if running => Reply::Error(format!("{name} is already running")),
            Action::Restart | Action::Start if !self.procs[i].started_once => {
                Reply::Error(format!("{name} is still waiting for its dependencies"))
            }
            Action::Restart | Action::Start => {
                self.procs[i].backoff_until = None;
                self.procs[i].ctl = Intent::None;
                match self.spawn(i) {
                    Ok(()) => Reply::Done,
                    Err(e) => Reply::Error(format!("{name} could not be started: {e}")),
                }
            }
        }
    }

    /// Its stop signal to one process, with its own deadline (SIGKILL after).
    fn stop_one(&mut self, i: usize) {
        let spec = &self.cfg.processes[i];
        let send = spec.stop_signal.unwrap_or(libc::SIGTERM);
        self.procs[i].stop_deadline = Some(Instant::now() + spec.grace);
        let target = if self.cfg.single_child() {
            Target::Main
        } else {
            Target::Group
        };
        self.forward(
            i,
            Route {
                send,
                stop: true,
                target,
            },
        );
    }

    /// On an exit: carries out a pending `ctl restart`/`ctl stop`. True when
    /// the exit is thereby handled (no restart policy, no shutdown).
    pub(super) fn control_exit(&mut self, i: usize) -> bool {
        let p = &mut self.procs[i];
        let intent = p.ctl;
        match intent {
            Intent::None => return false,
            Intent::Restart => {
                p.ctl = Intent::None;
                p.restarts.push_back(Instant::now());
                p.backoff_until = Some(Instant::now());
            }
            Intent::Stop => {}
        }
        p.stop_deadline = None;
        p.killed = false;
        tracing::info!(
            "{} {} by pyinit ctl",
            self.cfg.processes[i].name,
            if intent == Intent::Restart {
                "restarting"
            } else {
                "stopped"
            }
        );
        true
    }

    fn proc_state(&self, i: usize, p: &Proc) -> ProcState {
        let spec = &self.cfg.processes[i];
        if p.pid.is_some() {
            return if p.stop_deadline.is_some() {
                ProcState::Stopping
            } else if spec.ready.is_none() {
                ProcState::Running
            } else if p.ready {
                ProcState::Ready
            } else {
                ProcState::Starting
            };
        }
        if p.ctl == Intent::Stop {
            return ProcState::Stopped;
        }
        if p.backoff_until.is_some() {
            return ProcState::Backoff;
        }
        match p.last {
            None => ProcState::Waiting,
            Some(e) if spec.oneshot && spec.expect.map(e) == 0 => ProcState::Completed,
            Some(_) => ProcState::Exited,
        }
    }

    fn status(&self) -> Status {
        let processes = self
            .procs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let spec = &self.cfg.processes[i];
                ProcStatus {
                    name: spec.name.clone(),
                    pid: p.pid,
                    state: self.proc_state(i, p),
                    oneshot: spec.oneshot,
                    uptime: p.pid.and(p.started_at).map(|s| s.elapsed()),
                    restarts: p.restarts.len() as u32,
                    max_restarts: spec.restart.max_restarts,
                    last_exit: p.last.map(|e| e.code()),
                    ready: p.pid.is_some() && p.ready,
                    live_probe: match &spec.ready {
                        Some(ReadyProbe::Port(n)) => Some(LiveProbe::Port(*n)),
                        Some(ReadyProbe::Http(u)) => Some(LiveProbe::Http(u.clone())),
                        _ => None,
                    },
                }
            })
            .collect();
        Status {
            processes,
            stopping: !matches!(self.stop, StopState::Running),
            oom_kills: 0,
        }
    }
}
