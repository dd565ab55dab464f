//! The supervisor's decisions, as a pure state machine.
//!
//! [`Machine::handle`] takes one [`Input`] (a signal, a reaped child, a
//! spawn result, readiness, the timer) with the current time and returns the
//! [`Action`]s to carry out (spawn, send a signal, kill, watch readiness, log
//! an event, finish). It never makes a system call and never reads the
//! clock, so every rule (restart back-off and windows, dependency order,
//! one-shots, the stop order and its whole-stop budget, `--stop-delay`,
//! the exit status) is unit-tested below without a process.
//!
//! Per process: `waiting → starting → ready|running → backoff | stopping →
//! exited | completed | stopped` ([`ProcState`]). For the whole:
//! `Running → Delaying → Stopping → (killed) → finished` ([`Phase`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{Config, ReadyProbe, RestartPolicy, SignalScope};
use crate::control::{Reply, Request};
use crate::events::{Event, SendReason, StopTrigger};
use crate::exit_status::Ended;
use crate::signals::names;
use crate::status::{LiveProbe, ProcState, ProcStatus, Status};

/// After the final SIGKILL: time left to reap and to write the last output.
pub const FINAL_FLUSH: Duration = Duration::from_millis(500);
/// Readiness reported without a start generation (`NOTIFY_SOCKET`).
pub const ANY_GENERATION: u64 = u64::MAX;
/// Exit status of a one-shot whose `timeout` ran out (as `timeout(1)`).
pub const TIMEOUT_STATUS: i32 = 124;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// pyinit received this signal (self-inflicted ones already dropped).
    Signal(i32),
    /// An `Action::Spawn` worked.
    Spawned { process: usize, pid: i32 },
    /// An `Action::Spawn` failed; `code` is 126/127 as the shell would say.
    SpawnFailed {
        process: usize,
        code: i32,
        message: String,
    },
    /// A child was reaped.
    Reaped { pid: i32, ended: Ended },
    /// After a round of reaping: whether pyinit has any child left.
    ChildrenLeft(bool),
    /// A readiness probe passed for that start of the process.
    Ready { process: usize, generation: u64 },
    /// The OOM watcher counted kills (already reported by the driver).
    OomKills(u64),
    /// Time passed (the timer fired, or anything else woke the loop).
    Tick,
}

/// How a signal for one process reaches its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A stop signal, per the process's signal scope.
    Scope(SignalScope),
    /// The main process alone.
    Main,
    /// Multi-process non-stop signal: to the main process if it is listed
    /// in `signals`, or (no list) if the main process has a handler for it.
    IfWanted { listed: Option<Vec<i32>> },
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Spawn(usize),
    Send {
        process: usize,
        signal: i32,
        delivery: Delivery,
        reason: SendReason,
    },
    /// SIGKILL one process and its group (its own grace ran out).
    KillProcess(usize),
    /// SIGKILL everything pyinit is responsible for; `whose_grace` names the
    /// process whose grace ran out, `None` for the top-level grace.
    KillEverything {
        whose_grace: Option<usize>,
    },
    /// Send this signal to everything the processes left behind.
    SignalLeftovers(i32),
    /// Start probing a port/http `ready` probe for this start.
    WatchReady {
        process: usize,
        generation: u64,
    },
    Emit(Event),
    /// Everything is done: drain the output and exit with [`Machine::exit_code`].
    Finish,
}

/// The stop state of the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// A stop signal arrived; `send` goes out at `until` (`--stop-delay`).
    Delaying {
        until: Instant,
        send: i32,
    },
    /// The stop is under way; everything is killed at `budget_end`.
    Stopping {
        budget_end: Instant,
    },
}

/// What started the stop; decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Signal,
    Exit(usize),
    Oneshot(usize),
    Completed,
}

/// One supervised process and its life so far.
#[derive(Debug, Clone)]
struct Proc {
    state: ProcState,
    pid: Option<i32>,
    /// A spawn is under way (its result not in yet).
    spawning: bool,
    /// Counts starts, so readiness from an earlier run is ignored.
    generation: u64,
    started_at: Option<Instant>,
    ready: bool,
    backoff_until: Option<Instant>,
    /// One-shots: its stop signal goes out at this moment.
    timeout_at: Option<Instant>,
    timed_out: bool,
    /// Its stop signal went out; SIGKILL at this moment.
    stop_deadline: Option<Instant>,
    killed: bool,
    last: Option<Ended>,
    /// Restart times within the window.
    restarts: VecDeque<Instant>,
    restarts_total: u32,
    failures_in_row: u32,
    /// `ctl stop`: stays down, its exit stops nothing.
    held: bool,
    /// `ctl restart`: start again when it has exited.
    restart_requested: bool,
}

impl Proc {
    fn new() -> Self {
        Proc {
            state: ProcState::Waiting,
            pid: None,
            spawning: false,
            generation: 0,
            started_at: None,
            ready: false,
            backoff_until: None,
            timeout_at: None,
            timed_out: false,
            stop_deadline: None,
            killed: false,
            last: None,
            restarts: VecDeque::new(),
            restarts_total: 0,
            failures_in_row: 0,
            held: false,
            restart_requested: false,
        }
    }

    fn live(&self) -> bool {
        self.pid.is_some() || self.spawning
    }
}

/// The supervisor's whole state.
pub struct Machine<'a> {
    cfg: &'a Config,
    procs: Vec<Proc>,
    phase: Phase,
    trigger: Option<Trigger>,
    /// The (rewritten) stop signal of a signal-triggered stop.
    stop_send: Option<i32>,
    /// Set once no managed process runs: the moment leftovers get SIGKILL.
    leftover_deadline: Option<Instant>,
    killed_at: Option<Instant>,
    children_left: bool,
    /// Orphans are reparented to pyinit (PID 1 or subreaper).
    reaps_orphans: bool,
    orphans_reaped: u64,
    oom_kills: u64,
    finished: bool,
}

impl<'a> Machine<'a> {
    pub fn new(cfg: &'a Config, reaps_orphans: bool) -> Self {
        Machine {
            cfg,
            procs: cfg.processes.iter().map(|_| Proc::new()).collect(),
            phase: Phase::Running,
            trigger: None,
            stop_send: None,
            leftover_deadline: None,
            killed_at: None,
            children_left: false,
            reaps_orphans,
            orphans_reaped: 0,
            oom_kills: 0,
            finished: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn orphans_reaped(&self) -> u64 {
        self.orphans_reaped
    }

    /// The moment the final SIGKILL went out, if it did.
    pub fn killed_at(&self) -> Option<Instant> {
        self.killed_at
    }

    /// The leftover deadline, if the processes are all gone.
    pub fn leftover_deadline(&self) -> Option<Instant> {
        self.leftover_deadline
    }

    /// How many times process `i` was started.
    pub fn generation(&self, i: usize) -> u64 {
        self.procs[i].generation
    }

    pub fn pid(&self, i: usize) -> Option<i32> {
        self.procs[i].pid
    }

    /// Its process group (`None` under `-c`, where it shares pyinit's).
    pub fn pgid(&self, i: usize) -> Option<i32> {
        // Each process's own scope (`-c` and `--signal-scope` set it for a
        // single command and are the default of every config process).
        if self.cfg.processes[i].signal_scope == SignalScope::Main {
            None
        } else {
            self.procs[i].pid
        }
    }
    /// Whether pyinit sent process `i` SIGKILL (its grace ran out).
    pub fn kill_sent(&self, i: usize) -> bool {
        self.procs[i].killed
    }

    /// Which managed process has this pid.
    pub fn process_of(&self, pid: i32) -> Option<usize> {
        self.procs.iter().position(|p| p.pid == Some(pid))
    }

    fn name(&self, i: usize) -> String {
        self.cfg.processes[i].name.clone()
    }

    fn expect_map(&self, i: usize, ended: Ended) -> i32 {
        let own = &self.cfg.processes[i].expect;
        if *own == Default::default() {
            self.cfg.expect.map(ended)
        } else {
            own.map(ended)
        }
    }

    /// Handles one input at `now`; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        match input {
            Input::Signal(sig) => self.on_signal(now, sig, &mut out),
            Input::Spawned { process, pid } => self.on_spawned(now, process, pid, &mut out),
            Input::SpawnFailed {
                process,
                code,
                message,
            } => {
                self.procs[process].spawning = false;
                out.push(Action::Emit(Event::SpawnFailed {
                    process: self.name(process),
                    message,
                }));
                self.on_exit(now, process, None, Ended::Exited(code), &mut out);
            }
            Input::Reaped { pid, ended } => match self.process_of(pid) {
                Some(i) => self.on_exit(now, i, Some(pid), ended, &mut out),
                None => {
                    self.orphans_reaped += 1;
                    out.push(Action::Emit(Event::Reaped { pid, ended }));
                }
            },
            Input::ChildrenLeft(left) => self.children_left = left,
            Input::Ready {
                process,
                generation,
            } => self.on_ready(process, generation, &mut out),
            Input::OomKills(n) => self.oom_kills += n,
            Input::Tick => {}
        }
        self.advance(now, &mut out);
        out
    }

    /// The earliest moment something is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let mut times: Vec<Instant> = Vec::new();
        match self.phase {
            Phase::Delaying { until, .. } => times.push(until),
            Phase::Stopping { budget_end } if self.killed_at.is_none() => times.push(budget_end),
            _ => {}
        }
        for p in &self.procs {
            times.extend(p.backoff_until);
            if p.live() && !p.killed {
                times.extend(p.stop_deadline);
                if p.stop_deadline.is_none() {
                    times.extend(p.timeout_at);
                }
            }
        }
        if self.killed_at.is_none() {
            times.extend(self.leftover_deadline);
        }
        times.extend(self.killed_at.map(|k| k + FINAL_FLUSH));
        times.into_iter().min()
    }

    fn on_signal(&mut self, now: Instant, received: i32, out: &mut Vec<Action>) {
        let Some(route) = self.cfg.router.route(received) else {
            out.push(Action::Emit(Event::SignalDropped { signal: received }));
            return;
        };
        if !route.stop {
            for i in 0..self.procs.len() {
                if self.procs[i].pid.is_none() {
                    continue;
                }
                let delivery = if self.cfg.multi {
                    let listed = self.cfg.processes[i].signals.clone();
                    // The list names received signals; a rewrite changes only
                    // what is sent.
                    match listed {
                        Some(l) if l.contains(&received) => Delivery::Main,
                        Some(_) => {
                            out.push(Action::Emit(Event::SignalSkipped {
                                signal: received,
                                process: self.name(i),
                                listed: true,
                            }));
                            continue;
                        }
                        None => Delivery::IfWanted { listed: None },
                    }
                } else {
                    Delivery::Main
                };
                out.push(Action::Send {
                    process: i,
                    signal: route.send,
                    delivery,
                    reason: SendReason::Forward,
                });
            }
            return;
        }
        match self.phase {
            Phase::Running if !self.cfg.stop_delay.is_zero() => {
                self.phase = Phase::Delaying {
                    until: now + self.cfg.stop_delay,
                    send: route.send,
                };
                out.push(Action::Emit(Event::StopDelayed {
                    signal: received,
                    delay: self.cfg.stop_delay,
                }));
            }
            Phase::Running | Phase::Delaying { .. } => {
                self.begin_stop(now, Trigger::Signal, Some(route.send), out)
            }
            Phase::Stopping { .. } => {
                // A repeated stop signal (a second Ctrl-C) goes to whatever
                // is already stopping.
                for i in 0..self.procs.len() {
                    if self.procs[i].pid.is_some() && self.procs[i].stop_deadline.is_some() {
                        out.push(self.stop_send_action(i, route.send, SendReason::Forward));
                    }
                }
            }
        }
    }

    fn stop_send_action(&self, i: usize, signal: i32, reason: SendReason) -> Action {
        let scope = self.cfg.processes[i].signal_scope;
        Action::Send {
            process: i,
            signal,
            delivery: Delivery::Scope(scope),
            reason,
        }
    }

    fn on_spawned(&mut self, now: Instant, i: usize, pid: i32, out: &mut Vec<Action>) {
        let spec = &self.cfg.processes[i];
        self.children_left = true;
        let p = &mut self.procs[i];
        p.spawning = false;
        p.pid = Some(pid);
        p.generation += 1;
        p.started_at = Some(now);
        p.ready = spec.ready.is_none();
        p.killed = false;
        p.stop_deadline = None;
        p.timed_out = false;
        p.timeout_at = if spec.oneshot {
            spec.timeout.map(|t| now + t)
        } else {
            None
        };
        p.state = if spec.ready.is_some() && !spec.oneshot {
            ProcState::Starting
        } else {
            ProcState::Running
        };
        let generation = p.generation;
        out.push(Action::Emit(Event::Started {
            process: spec.name.clone(),
            pid,
            multi: self.cfg.multi,
        }));
        if matches!(spec.ready, Some(ReadyProbe::Port(_) | ReadyProbe::Http(_))) {
            out.push(Action::WatchReady {
                process: i,
                generation,
            });
        }
        if matches!(self.phase, Phase::Stopping { .. }) {
            // Started by a spawn requested just before the stop: stop it too.
            self.stop_one(now, i, out);
        }
    }

    fn on_ready(&mut self, i: usize, generation: u64, out: &mut Vec<Action>) {
        let p = &mut self.procs[i];
        if p.pid.is_none()
            || p.ready
            || (generation != ANY_GENERATION && generation != p.generation)
        {
            return;
        }
        p.ready = true;
        if p.state == ProcState::Starting {
            p.state = ProcState::Ready;
        }
        let pid = p.pid.unwrap_or(0);
        out.push(Action::Emit(Event::Ready {
            process: self.name(i),
            pid,
        }));
    }

    /// A managed process ended (`pid` is `None` when it never started).
    fn on_exit(
        &mut self,
        now: Instant,
        i: usize,
        pid: Option<i32>,
        ended: Ended,
        out: &mut Vec<Action>,
    ) {
        let cfg = self.cfg;
        let spec = &cfg.processes[i];
        out.push(Action::Emit(Event::Exited {
            process: spec.name.clone(),
            pid,
            ended,
            multi: cfg.multi,
        }));
        let p = &mut self.procs[i];
        p.pid = None;
        p.ready = false;
        p.last = Some(ended);
        p.stop_deadline = None;
        p.timeout_at = None;
        let stopping = matches!(self.phase, Phase::Stopping { .. });
        if p.restart_requested && !stopping {
            p.restart_requested = false;
            p.state = ProcState::Waiting;
            self.spawn(i, out);
            return;
        }
        p.restart_requested = false;
        if p.held {
            p.state = ProcState::Stopped;
            return;
        }
        let success = self.expect_map(i, ended) == 0 && !self.procs[i].timed_out;
        if self.trigger.is_some() {
            self.procs[i].state = if spec.oneshot && success {
                ProcState::Completed
            } else {
                ProcState::Exited
            };
            return;
        }
        if spec.oneshot && success {
            self.procs[i].state = ProcState::Completed;
            out.push(Action::Emit(Event::OneshotCompleted {
                process: spec.name.clone(),
            }));
            let all_done = self
                .procs
                .iter()
                .zip(&cfg.processes)
                .all(|(p, s)| s.oneshot && p.state == ProcState::Completed);
            if all_done {
                self.begin_stop(now, Trigger::Completed, None, out);
            }
            return;
        }
        let timed_out = self.procs[i].timed_out;
        let policy = spec.restart.policy;
        let wants_restart = !timed_out
            && (policy == RestartPolicy::Always
                || (policy == RestartPolicy::OnFailure && !success));
        if wants_restart && self.phase == Phase::Running {
            let window = spec.restart.window;
            let p = &mut self.procs[i];
            p.restarts.retain(|&t| now.duration_since(t) < window);
            if (p.restarts.len() as u32) < spec.restart.max_restarts {
                let stable = p
                    .started_at
                    .is_some_and(|s| now.duration_since(s) >= window);
                if stable {
                    p.failures_in_row = 0;
                }
                let delay = spec.restart.delay(p.failures_in_row);
                p.failures_in_row += 1;
                p.restarts.push_back(now);
                p.restarts_total += 1;
                p.backoff_until = Some(now + delay);
                p.state = ProcState::Backoff;
                out.push(Action::Emit(Event::Restarting {
                    process: spec.name.clone(),
                    delay,
                    restarts: p.restarts.len(),
                    window,
                }));
                return;
            }
            if !spec.oneshot {
                out.push(Action::Emit(Event::GaveUp {
                    process: spec.name.clone(),
                    ended,
                    restarts: p.restarts.len(),
                    window,
                }));
            }
        }
        self.procs[i].state = ProcState::Exited;
        if spec.oneshot {
            let status = if timed_out {
                TIMEOUT_STATUS
            } else {
                self.expect_map(i, ended)
            };
            out.push(Action::Emit(Event::OneshotFailed {
                process: spec.name.clone(),
                ended: pid.map(|_| ended),
                timed_out: if timed_out { spec.timeout } else { None },
                status,
            }));
            self.begin_stop(now, Trigger::Oneshot(i), None, out);
            return;
        }
        if cfg.multi && !wants_restart {
            out.push(Action::Emit(Event::StoppingOthers {
                process: spec.name.clone(),
            }));
        }
        self.begin_stop(now, Trigger::Exit(i), None, out);
    }

    fn begin_stop(
        &mut self,
        now: Instant,
        trigger: Trigger,
        send: Option<i32>,
        out: &mut Vec<Action>,
    ) {
        if self.trigger.is_none() {
            self.trigger = Some(trigger);
            self.stop_send = send;
        }
        if !matches!(self.phase, Phase::Stopping { .. }) {
            let budget_end = now + self.cfg.grace;
            self.phase = Phase::Stopping { budget_end };
            let (stop_trigger, process) = match trigger {
                Trigger::Signal => (StopTrigger::Signal, None),
                Trigger::Exit(i) => (StopTrigger::Exit, Some(self.name(i))),
                Trigger::Oneshot(i) => (StopTrigger::Oneshot, Some(self.name(i))),
                Trigger::Completed => (StopTrigger::Completed, None),
            };
            out.push(Action::Emit(Event::Stop {
                signal: send,
                trigger: stop_trigger,
                process,
                grace: self.cfg.grace,
            }));
        }
        for p in &mut self.procs {
            p.backoff_until = None;
            if p.state == ProcState::Backoff {
                p.state = ProcState::Exited;
            }
            // Spawns asked for in the same turn never happen (see
            // `spawn_pending`): processes not started yet never start.
            if p.spawning {
                p.spawning = false;
                p.state = if p.last.is_some() {
                    ProcState::Exited
                } else {
                    ProcState::Waiting
                };
            }
        }
    }

    /// Whether an `Action::Spawn(i)` is still wanted when its turn comes
    /// (a stop that began in between cancels it).
    pub fn spawn_pending(&self, i: usize) -> bool {
        self.procs[i].spawning
    }

    /// Sends process `i` its stop signal with its deadline.
    fn stop_one(&mut self, now: Instant, i: usize, out: &mut Vec<Action>) {
        let spec = &self.cfg.processes[i];
        let send = spec.stop_signal.or(self.stop_send).unwrap_or(libc::SIGTERM);
        let mut deadline = now + spec.grace;
        if let Phase::Stopping { budget_end } = self.phase {
            deadline = deadline.min(budget_end);
        }
        let p = &mut self.procs[i];
        p.stop_deadline = Some(deadline);
        p.state = ProcState::Stopping;
        if p.pid.is_some() {
            out.push(self.stop_send_action(i, send, SendReason::Stop));
        }
    }

    fn spawn(&mut self, i: usize, out: &mut Vec<Action>) {
        let p = &mut self.procs[i];
        p.spawning = true;
        p.state = ProcState::Starting;
        p.backoff_until = None;
        out.push(Action::Spawn(i));
    }

    /// Whether process `i` may start: every dependency completed (one-shot)
    /// or started and ready (long-running).
    fn deps_met(&self, i: usize) -> bool {
        self.cfg.processes[i].depends_on.iter().all(|&d| {
            let p = &self.procs[d];
            if self.cfg.processes[d].oneshot {
                p.state == ProcState::Completed
            } else {
                p.pid.is_some() && p.ready
            }
        })
    }

    /// Applies everything that is due at `now`.
    fn advance(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Phase::Delaying { until, send } = self.phase {
            if now >= until {
                self.begin_stop(now, Trigger::Signal, Some(send), out);
            }
        }
        if self.phase == Phase::Running {
            for i in 0..self.procs.len() {
                if self.procs[i].backoff_until.is_some_and(|t| now >= t) {
                    self.spawn(i, out);
                }
            }
            for k in 0..self.cfg.start_order.len() {
                let i = self.cfg.start_order[k];
                let p = &self.procs[i];
                if p.state == ProcState::Waiting && !p.held && !p.live() && self.deps_met(i) {
                    self.spawn(i, out);
                }
            }
            // One-shot timeouts.
            for i in 0..self.procs.len() {
                let p = &self.procs[i];
                if p.pid.is_some()
                    && p.stop_deadline.is_none()
                    && p.timeout_at.is_some_and(|t| now >= t)
                {
                    self.procs[i].timed_out = true;
                    let send = self.cfg.processes[i].stop_signal.unwrap_or(libc::SIGTERM);
                    let grace = self.cfg.processes[i].grace;
                    self.procs[i].stop_deadline = Some(now + grace);
                    self.procs[i].state = ProcState::Stopping;
                    out.push(self.stop_send_action(i, send, SendReason::Timeout));
                }
            }
        }
        // The whole stop is bounded by the top-level grace: at its end
        // everything still alive gets SIGKILL at once.
        if let Phase::Stopping { budget_end } = self.phase {
            if now >= budget_end && self.killed_at.is_none() {
                let anything = self.procs.iter().any(|p| p.pid.is_some()) || self.children_left;
                if anything {
                    // One process left whose own grace ends now too: its
                    // grace is the one that ran out.
                    let live: Vec<usize> = (0..self.procs.len())
                        .filter(|&i| self.procs[i].pid.is_some())
                        .collect();
                    let whose_grace = match live[..] {
                        [i] if self.procs[i].stop_deadline.is_some_and(|d| d <= now) => Some(i),
                        _ => None,
                    };
                    self.killed_at = Some(now);
                    for p in &mut self.procs {
                        if p.pid.is_some() {
                            p.killed = true;
                        }
                    }
                    out.push(Action::KillEverything { whose_grace });
                }
            }
        }
        // Per-process deadlines (the stop, a timeout, or `ctl`).
        for i in 0..self.procs.len() {
            let p = &self.procs[i];
            if p.pid.is_some() && !p.killed && p.stop_deadline.is_some_and(|d| now >= d) {
                self.procs[i].killed = true;
                let others = (0..self.procs.len()).any(|j| j != i && self.procs[j].pid.is_some());
                if others || self.trigger.is_none() {
                    out.push(Action::KillProcess(i));
                } else if self.killed_at.is_none() {
                    self.killed_at = Some(now);
                    out.push(Action::KillEverything {
                        whose_grace: Some(i),
                    });
                }
            }
        }
        let Phase::Stopping { budget_end } = self.phase else {
            return;
        };
        // Dependants before their dependencies.
        for k in (0..self.cfg.start_order.len()).rev() {
            let i = self.cfg.start_order[k];
            let p = &self.procs[i];
            if p.pid.is_none() || p.stop_deadline.is_some() {
                continue;
            }
            let dependants_running = (0..self.procs.len())
                .any(|j| self.cfg.processes[j].depends_on.contains(&i) && self.procs[j].live());
            if !dependants_running {
                self.stop_one(now, i, out);
            }
        }
        if self.procs.iter().any(Proc::live) {
            return;
        }
        if self.leftover_deadline.is_none() {
            let pending = self.procs.iter().filter_map(|p| p.stop_deadline).max();
            let latest = (now + self.cfg.grace).min(budget_end.max(now));
            self.leftover_deadline = Some(pending.map_or(latest, |d| d.min(latest)));
            if self.children_left || !self.reaps_orphans {
                out.push(Action::SignalLeftovers(libc::SIGTERM));
            }
        }
        if self.children_left
            && self.killed_at.is_none()
            && self.leftover_deadline.is_some_and(|d| now >= d)
        {
            self.killed_at = Some(now);
            out.push(Action::KillEverything { whose_grace: None });
        }
        let flushed_out = self.killed_at.is_some_and(|k| now >= k + FINAL_FLUSH);
        if !self.children_left || flushed_out {
            self.finished = true;
            out.push(Action::Emit(Event::Exit {
                status: self.exit_code(),
                orphans_reaped: self.orphans_reaped,
            }));
            out.push(Action::Finish);
        }
    }

    /// SPEC point 6: the status of the process whose exit started the
    /// stop; for a stop signal, the first non-zero status in config order
    /// (the main process's status for a single command).
    pub fn exit_code(&self) -> i32 {
        let mapped = |i: usize| self.procs[i].last.map(|e| self.expect_map(i, e));
        match self.trigger {
            Some(Trigger::Oneshot(i)) if self.procs[i].timed_out => TIMEOUT_STATUS,
            Some(Trigger::Exit(i) | Trigger::Oneshot(i)) => mapped(i).unwrap_or(1),
            Some(Trigger::Completed) => 0,
            _ if !self.cfg.multi => mapped(0).unwrap_or(1),
            _ => (0..self.procs.len())
                .filter(|&i| !self.procs[i].held)
                .filter_map(mapped)
                .find(|&c| c != 0)
                .unwrap_or(0),
        }
    }

    /// What `pyinit status` shows.
    pub fn status(&self, now: Instant) -> Status {
        let processes = self
            .procs
            .iter()
            .zip(&self.cfg.processes)
            .map(|(p, s)| ProcStatus {
                name: s.name.clone(),
                pid: p.pid,
                state: p.state,
                oneshot: s.oneshot,
                uptime: p
                    .pid
                    .and(p.started_at)
                    .map(|t| now.saturating_duration_since(t)),
                restarts: p.restarts_total,
                max_restarts: s.restart.max_restarts,
                last_exit: p.last.map(Ended::code),
                ready: p.ready,
                live_probe: match &s.ready {
                    Some(ReadyProbe::Port(port)) => Some(LiveProbe::Port(*port)),
                    Some(ReadyProbe::Http(url)) => Some(LiveProbe::Http(url.clone())),
                    _ => None,
                },
            })
            .collect();
        Status {
            processes,
            stopping: self.phase != Phase::Running,
            oom_kills: self.oom_kills,
        }
    }

    /// A control-socket request: the reply, and what to do.
    pub fn control(&mut self, now: Instant, request: Request) -> (Reply, Vec<Action>) {
        let mut out = Vec::new();
        if let Request::Status = request {
            return (Reply::Status(self.status(now)), out);
        }
        let name = match &request {
            Request::Restart(n) | Request::Stop(n) | Request::Start(n) => n.clone(),
            Request::Signal { name, .. } => name.clone(),
            Request::Status => unreachable!("answered above"),
        };
        let Some(i) = self.cfg.processes.iter().position(|p| p.name == name) else {
            let known: Vec<&str> = self.cfg.processes.iter().map(|p| p.name.as_str()).collect();
            return (
                Reply::Error(format!(
                    "no process named '{}' (processes: {})",
                    crate::error::shown(&name),
                    known.join(", ")
                )),
                out,
            );
        };
        if self.phase != Phase::Running && !matches!(request, Request::Signal { .. }) {
            return (Reply::Error("pyinit is stopping".into()), out);
        }
        let live = self.procs[i].pid.is_some();
        let reply = match request {
            Request::Signal { signal, .. } => {
                if !live {
                    Reply::Error(format!("{name} is not running"))
                } else {
                    let action = if names::is_stop(signal) {
                        self.stop_send_action(i, signal, SendReason::Ctl)
                    } else {
                        Action::Send {
                            process: i,
                            signal,
                            delivery: Delivery::Main,
                            reason: SendReason::Ctl,
                        }
                    };
                    out.push(action);
                    Reply::Done
                }
            }
            Request::Restart(_) => {
                self.procs[i].held = false;
                if live {
                    self.procs[i].restart_requested = true;
                    if self.procs[i].stop_deadline.is_none() {
                        self.ctl_stop_one(now, i, &mut out);
                    }
                } else if !self.procs[i].spawning {
                    self.spawn(i, &mut out);
                }
                Reply::Done
            }
            Request::Stop(_) => {
                self.procs[i].held = true;
                self.procs[i].restart_requested = false;
                self.procs[i].backoff_until = None;
                if live {
                    if self.procs[i].stop_deadline.is_none() {
                        self.ctl_stop_one(now, i, &mut out);
                    }
                } else if !self.procs[i].spawning {
                    self.procs[i].state = ProcState::Stopped;
                }
                Reply::Done
            }
            Request::Start(_) => {
                if live || self.procs[i].spawning {
                    Reply::Error(format!("{name} is already running"))
                } else {
                    self.procs[i].held = false;
                    self.spawn(i, &mut out);
                    Reply::Done
                }
            }
            Request::Status => unreachable!("answered above"),
        };
        self.advance(now, &mut out);
        (reply, out)
    }

    /// `ctl stop`/`ctl restart`: its stop signal and its own grace.
    fn ctl_stop_one(&mut self, now: Instant, i: usize, out: &mut Vec<Action>) {
        let spec = &self.cfg.processes[i];
        let send = spec.stop_signal.unwrap_or(libc::SIGTERM);
        self.procs[i].stop_deadline = Some(now + spec.grace);
        self.procs[i].state = ProcState::Stopping;
        out.push(self.stop_send_action(i, send, SendReason::Ctl));
    }
}

#[cfg(test)]
mod tests;
