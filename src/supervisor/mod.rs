//! The supervisor: one main process, or several from a Procfile/config.
//!
//! # Theory of operation
//!
//! Decisions and system calls live apart:
//! - [`state::Machine`] decides. It takes inputs (a signal, a reaped child,
//!   readiness, a control request, the time) and returns actions. It is
//!   pure and unit-tested without processes.
//! - [`scope`] decides which processes a stop signal reaches, from a process
//!   table (SPEC point 2, `--signal-scope`).
//! - The driver here carries the actions out: spawning, `kill`, reading
//!   `/proc`, reaping, starting readiness probes, logging the events.
//!
//! Everything happens on this one task: a `select!` over the signalfd
//! (signals and SIGCHLD), readiness events, control requests and one timer
//! set to the machine's next deadline. Output is copied by separate tasks
//! and threads, so nothing here ever waits on pyinit's stdout. Once the loop
//! runs, nothing makes pyinit bail out while children live: errors are
//! logged and the loop carries on.

pub mod scope;
pub mod state;

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::task::JoinHandle;

use crate::config::{Config, ReadyProbe, SignalScope};
use crate::control::ControlMsg;
use crate::error::Error;
use crate::events::{self, Event, SendReason, Victim};
use crate::exit_status::Ended;
use crate::output::format::{Formatter, LogFormat};
use crate::output::pump::{pump, ReadyHook};
use crate::output::sink::{Destination, Sink, QUEUE_BYTES};
use crate::output::Stream;
use crate::procs;
use crate::reaper;
use crate::signals::mask::ChildSignalState;
use crate::signals::names;
use crate::signals::source::{Received, SignalSource};
use crate::spawn::{self, GroupMode, SpawnSpec};
use crate::tty;
use state::{Action, Delivery, Input, Machine, ANY_GENERATION, FINAL_FLUSH};

/// How often a `ready = { port | http }` process is probed.
const READY_POLL: Duration = Duration::from_millis(100);
/// honcho's colours for `prefix` labels on a terminal.
const COLORS: [u8; 6] = [36, 33, 32, 35, 31, 34];
/// Without a working signalfd, how often children are reaped.
const FALLBACK_REAP: Duration = Duration::from_millis(100);

/// `kill(target, sig)` for any signal number; `false` when it failed
/// (ESRCH and the like only mean the target is gone).
fn signal(target: i32, sig: i32) -> bool {
    match Signal::try_from(sig) {
        Ok(s) => kill(Pid::from_raw(target), s).is_ok(),
        // nix's `Signal` has no real-time signals (SIGRTMIN+n).
        // SAFETY: kill with plain integers; targets are pids, -pgid with
        // pgid > 1, or -1 only as PID 1 (checked where they are built).
        Err(_) => unsafe { libc::kill(target, sig) == 0 },
    }
}

struct Driver<'a> {
    cfg: &'a Config,
    own_pid: i32,
    pid1: bool,
    reaps_orphans: bool,
    /// Ignore terminal-generated signals (Ctrl-C under `-c` reaches the
    /// child from the terminal already).
    ignore_terminal_signals: bool,
    terminal_group: Option<GroupMode>,
    capture: bool,
    stdout_sink: Option<Sink>,
    stderr_sink: Sink,
    colors: bool,
    width: usize,
    ready_tx: UnboundedSender<(usize, u64)>,
    readers: Vec<JoinHandle<()>>,
    /// The process group each process had at its last start (kept after it
    /// exits: its workers may still be in it).
    pgids: Vec<Option<i32>>,
    notify_paths: Vec<Option<PathBuf>>,
    probes: Vec<Option<JoinHandle<()>>>,
    /// Whether `/proc` is this pid namespace's (else pids there mean nothing).
    proc_is_ours: bool,
    finished: bool,
    /// The memory cgroup watcher; `None` where there is nothing to watch.
    oom: Option<crate::oom::OomMonitor>,
    /// Whether process `i`'s last end was an OOM kill (for the final line).
    oom_ended: Vec<bool>,
}

/// Runs `cfg` to completion and returns pyinit's exit code.
pub async fn run(cfg: &Config, signal_fd: OwnedFd) -> Result<i32, Error> {
    let own_pid = nix::unistd::getpid().as_raw();
    let pid1 = own_pid == 1;
    let mut reaps_orphans = pid1;
    if !pid1 {
        match reaper::become_subreaper() {
            Ok(()) => reaps_orphans = true,
            Err(e) => tracing::warn!(
                "not PID 1 and cannot register as child subreaper ({e}): \
                 orphaned grandchildren will not be reaped by pyinit"
            ),
        }
    }
    let signals = SignalSource::new(signal_fd)
        .map_err(|e| Error::Internal(format!("cannot watch signals: {e}")))?;

    // Several processes cannot share a terminal's foreground: they are
    // always captured and each leads its own session.
    let terminal = if cfg.multi {
        None
    } else {
        tty::controlling_terminal()
    };
    let capture = !cfg.no_capture && (cfg.multi || !tty::stdio_is_tty());
    let terminal_group = terminal.as_ref().map(|t| GroupMode::TerminalGroup {
        tty: t.fd.as_raw_fd(),
        take_foreground: t.foreground,
    });
    let stdout_sink = capture.then(|| Sink::new(Destination::Stdout, QUEUE_BYTES));
    let stderr_sink = Sink::new(Destination::Stderr, QUEUE_BYTES);
    crate::logging::attach_stderr_sink(stderr_sink.clone());

    warn_inherited_ignored_stop_signals(cfg);
    let (ready_tx, mut ready_rx) = unbounded_channel();
    let notify_dir = notify_sockets(cfg, own_pid, &ready_tx)?;
    let n = cfg.processes.len();
    let mut driver = Driver {
        cfg,
        own_pid,
        pid1,
        reaps_orphans,
        ignore_terminal_signals: cfg.single_child() && tty::stdio_is_tty(),
        terminal_group,
        capture,
        stdout_sink,
        stderr_sink,
        colors: cfg.multi && cfg.log_format == LogFormat::Prefix && tty::stdout_is_tty(),
        width: cfg.label_width(),
        ready_tx,
        readers: Vec::new(),
        pgids: vec![None; n],
        notify_paths: vec![None; n],
        probes: (0..n).map(|_| None).collect(),
        proc_is_ours: procs::self_pid_in_proc() == Some(own_pid),
        finished: false,
        oom: None,
        oom_ended: vec![false; n],
    };
    driver.oom = match crate::oom::OomMonitor::start(driver.proc_is_ours) {
        Ok(m) => {
            tracing::debug!("{}", m.summary());
            Some(m)
        }
        Err(e) => {
            tracing::debug!("OOM kills will not be reported: {e}");
            None
        }
    };
    if let Some(dir) = &notify_dir {
        for (i, p) in cfg.processes.iter().enumerate() {
            if matches!(p.ready, Some(ReadyProbe::Notify)) {
                driver.notify_paths[i] = Some(dir.join(format!("{i}.sock")));
            }
        }
    }
    let mut control = if cfg.socket.as_os_str().is_empty() {
        None
    } else {
        crate::control::server::start(&cfg.socket)
    };
    let mut machine = Machine::new(cfg, reaps_orphans);

    // The first start: a single command that cannot start is pyinit's own
    // failure (127/126), reported before anything else runs.
    let first = machine.handle(Instant::now(), Input::Tick);
    if !cfg.multi {
        for a in &first {
            if let Action::Spawn(i) = a {
                let pid = driver.spawn(*i, machine.generation(*i) + 1)?;
                let rest = machine.handle(Instant::now(), Input::Spawned { process: *i, pid });
                driver.apply(&mut machine, rest);
            }
        }
        let others: Vec<Action> = first
            .into_iter()
            .filter(|a| !matches!(a, Action::Spawn(_)))
            .collect();
        driver.apply(&mut machine, others);
    } else {
        driver.apply(&mut machine, first);
    }
    drop(terminal);

    // No bail after this point: every error is logged and the loop goes on.
    driver
        .event_loop(&mut machine, &signals, &mut ready_rx, &mut control)
        .await;
    if let Some(dir) = notify_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    if control.is_some() {
        crate::control::server::stop(&cfg.socket);
    }
    // OOM kills: kills counted but not named yet.
    if let Some(m) = &mut driver.oom {
        let kills = m.finish(Instant::now(), &|_| None);
        driver.report_oom(&mut machine, kills);
    }
    driver.drain(&machine).await;
    // OOM kills: the last line when the main process died of one.
    if !cfg.multi && driver.oom_ended[0] {
        tracing::warn!(
            "the main process ({}) was killed by the kernel's OOM killer; exiting with status {}",
            cfg.processes[0].name,
            machine.exit_code()
        );
    }
    Ok(machine.exit_code())
}
/// The OOM watcher's next wake-up, or never without a watcher.
async fn oom_changed(oom: &mut Option<crate::oom::OomMonitor>) {
    match oom {
        Some(m) => m.changed().await,
        None => std::future::pending().await,
    }
}

/// The next control request, or never when there is no socket.
async fn next_control(
    rx: &mut Option<tokio::sync::mpsc::Receiver<ControlMsg>>,
) -> Option<ControlMsg> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Driver<'_> {
    fn name(&self, i: usize) -> &str {
        &self.cfg.processes[i].name
    }

    async fn event_loop(
        &mut self,
        machine: &mut Machine<'_>,
        signals: &SignalSource,
        ready_rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, u64)>,
        control: &mut Option<tokio::sync::mpsc::Receiver<ControlMsg>>,
    ) {
        let far = Instant::now() + Duration::from_secs(86400 * 365);
        // One timer, moved only when the next deadline changes: re-arming a
        // fresh one per loop turn would wake tokio's driver for nothing.
        let timer = tokio::time::sleep_until(far.into());
        tokio::pin!(timer);
        let mut armed = far;
        let mut batch: Vec<Received> = Vec::with_capacity(16);
        let mut signals_broken = false;
        while !self.finished {
            let mut wake = machine.next_deadline().unwrap_or(far);
            if signals_broken {
                wake = wake.min(Instant::now() + FALLBACK_REAP);
            }
            if wake != armed {
                timer.as_mut().reset(wake.into());
                armed = wake;
            }
            tokio::select! {
                r = signals.recv(&mut batch), if !signals_broken => match r {
                    Ok(()) => {
                        for rec in std::mem::take(&mut batch) {
                            self.on_signal(machine, rec);
                        }
                    }
                    Err(e) => {
                        // Keep going: reap on a timer instead (catatonit's
                        // rule: a PID 1 never bails out while children live).
                        tracing::error!("reading signals failed: {e}; reaping every 100 ms from now on");
                        signals_broken = true;
                    }
                },
                Some((i, generation)) = ready_rx.recv() => {
                    let actions = machine.handle(Instant::now(), Input::Ready { process: i, generation });
                    self.apply(machine, actions);
                }
                Some(msg) = next_control(control) => {
                    let (reply, actions) = machine.control(Instant::now(), msg.request);
                    let _ = msg.reply.send(reply);
                    self.apply(machine, actions);
                }
                _ = oom_changed(&mut self.oom) => {
                    let cfg = self.cfg;
                    let name_of = |pid: i32| machine.process_of(pid).map(|i| cfg.processes[i].name.clone());
                    let kills = match &mut self.oom {
                        Some(m) => m.on_counter(Instant::now(), &name_of),
                        None => Vec::new(),
                    };
                    self.report_oom(machine, kills);
                }
                _ = &mut timer, if armed != far => {
                    // Fired: the next turn re-arms it if anything is due later.
                    armed = far;
                    if signals_broken {
                        self.reap(machine);
                    }
                    let actions = machine.handle(Instant::now(), Input::Tick);
                    self.apply(machine, actions);
                }
            }
        }
    }

    fn on_signal(&mut self, machine: &mut Machine<'_>, rec: Received) {
        if rec.signo == libc::SIGCHLD {
            self.reap(machine);
            return;
        }
        if rec.self_inflicted(self.own_pid as u32)
            || (self.ignore_terminal_signals && rec.from_terminal())
        {
            tracing::debug!(
                "ignoring {} raised against pyinit itself",
                names::name(rec.signo)
            );
            return;
        }
        let actions = machine.handle(Instant::now(), Input::Signal(rec.signo));
        self.apply(machine, actions);
    }

    fn reap(&mut self, machine: &mut Machine<'_>) {
        let mut reaped = Vec::new();
        let left = reaper::reap(&mut reaped);
        let actions = machine.handle(Instant::now(), Input::ChildrenLeft(left));
        self.apply(machine, actions);
        for r in reaped {
            let Some(ended) = Ended::from_wait_status(r.status) else {
                continue;
            };
            if let Some(i) = machine.process_of(r.pid) {
                if let Some(task) = self.probes[i].take() {
                    task.abort();
                }
            }
            // OOM kills: a SIGKILL pyinit did not send.
            self.oom_on_reaped(machine, r.pid, ended);
            let actions = machine.handle(Instant::now(), Input::Reaped { pid: r.pid, ended });
            self.apply(machine, actions);
        }
    }

    /// Carries out `actions`, feeding spawn results back into the machine.
    fn apply(&mut self, machine: &mut Machine<'_>, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Spawn(i) if !machine.spawn_pending(i) => {}
                Action::Spawn(i) => {
                    let input = match self.spawn(i, machine.generation(i) + 1) {
                        Ok(pid) => Input::Spawned { process: i, pid },
                        Err(e) => Input::SpawnFailed {
                            process: i,
                            code: e.exit_code(),
                            message: e.to_string(),
                        },
                    };
                    queue.extend(machine.handle(Instant::now(), input));
                }
                Action::Send {
                    process,
                    signal,
                    delivery,
                    reason,
                } => self.send(machine, process, signal, delivery, reason),
                Action::KillProcess(i) => self.kill_process(machine, i),
                Action::KillEverything { whose_grace } => self.kill_everything(whose_grace),
                Action::SignalLeftovers(sig) => {
                    let seen = self.descendants();
                    events::emit(&Event::SignalSent {
                        signal: sig,
                        process: None,
                        pids: seen.iter().map(|p| p.pid).collect(),
                        skipped: Vec::new(),
                        reason: SendReason::Leftover,
                    });
                    self.signal_everything(sig, &seen);
                }
                Action::WatchReady {
                    process,
                    generation,
                } => self.watch_ready(process, generation),
                Action::Emit(event) => events::emit(&event),
                Action::Finish => self.finished = true,
            }
        }
    }
    /// A child was reaped: was it killed by the OOM killer?
    fn oom_on_reaped(&mut self, machine: &mut Machine<'_>, pid: i32, ended: Ended) {
        let managed = machine.process_of(pid);
        let cfg = self.cfg;
        let Some(m) = &mut self.oom else { return };
        let pyinit_killed =
            machine.killed_at().is_some() || managed.is_some_and(|i| machine.kill_sent(i));
        let kill = if ended == Ended::Signaled(libc::SIGKILL) && !pyinit_killed {
            let (process, cmd) = match managed {
                Some(i) => (
                    Some(cfg.processes[i].name.clone()),
                    Some(
                        cfg.processes[i]
                            .argv
                            .iter()
                            .map(|a| a.to_string_lossy())
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                ),
                None => (None, None),
            };
            m.on_child_sigkill(Instant::now(), pid, process, cmd)
        } else {
            None
        };
        if let Some(i) = managed {
            self.oom_ended[i] = kill.is_some() || m.was_killed(pid);
        }
        self.report_oom(machine, kill.into_iter().collect());
    }

    /// Logs each OOM kill and counts it for `pyinit status`.
    fn report_oom(&mut self, machine: &mut Machine<'_>, kills: Vec<crate::oom::OomKill>) {
        for k in kills {
            events::emit(&Event::OomKill(k));
            let actions = machine.handle(Instant::now(), Input::OomKills(1));
            self.apply(machine, actions);
        }
    }

    fn descendants(&self) -> Vec<procs::ProcInfo> {
        if self.proc_is_ours {
            procs::living_descendants()
        } else {
            Vec::new()
        }
    }

    /// Sends one signal to process `i`'s processes as `delivery` says.
    fn send(
        &mut self,
        machine: &Machine<'_>,
        i: usize,
        sig: i32,
        delivery: Delivery,
        reason: SendReason,
    ) {
        let Some(pid) = machine.pid(i) else { return };
        let pgid = machine.pgid(i).filter(|&g| g > 1);
        let mut sent = Vec::new();
        let mut skipped = Vec::new();
        match delivery {
            Delivery::Main => {
                if signal(pid, sig) {
                    sent.push(pid);
                }
            }
            Delivery::IfWanted { listed } => {
                let caught = procs::caught_signals(pid).unwrap_or(0);
                if !scope::non_stop_wanted(listed.as_deref(), caught, sig) {
                    events::emit(&Event::SignalSkipped {
                        signal: sig,
                        process: self.name(i).to_string(),
                        listed: listed.is_some(),
                    });
                    return;
                }
                if signal(pid, sig) {
                    sent.push(pid);
                }
            }
            Delivery::Scope(scope_kind) => {
                // One read of /proc per forwarded signal: the group's
                // processes at this moment, with their handlers where the
                // scope decides by them (under `group` only for the event).
                let table = match (pgid, scope_kind) {
                    (Some(g), SignalScope::Auto) if self.proc_is_ours => procs::group_snapshot(g),
                    (Some(g), SignalScope::Group) if self.proc_is_ours => procs::group_members(g)
                        .into_iter()
                        .map(|p| scope::ProcSnap {
                            pid: p.pid,
                            ppid: p.ppid,
                            pgid: p.pgid,
                            caught: 0,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let scope_kind = if pgid.is_some() && !self.proc_is_ours {
                    // No usable /proc: whole group, as before the scopes existed.
                    SignalScope::Group
                } else {
                    scope_kind
                };
                let targets = scope::stop_targets(scope_kind, &table, pid, pgid, sig);
                if targets.whole_group {
                    let g = pgid.unwrap_or(pid);
                    // The group may be gone while the process lives on (it left it).
                    if !signal(-g, sig) {
                        signal(pid, sig);
                    }
                    sent.push(pid);
                    sent.extend(table.iter().map(|p| p.pid).filter(|&p| p != pid));
                } else {
                    for p in targets.pids {
                        if signal(p, sig) {
                            sent.push(p);
                        }
                    }
                    skipped = targets.spared;
                }
            }
        }
        events::emit(&Event::SignalSent {
            signal: sig,
            process: Some(self.name(i).to_string()),
            pids: sent,
            skipped,
            reason,
        });
    }

    /// A process's own deadline passed: SIGKILL it and its group.
    fn kill_process(&mut self, machine: &Machine<'_>, i: usize) {
        let Some(pid) = machine.pid(i) else { return };
        let pgid = machine.pgid(i).filter(|&g| g > 1);
        let mut victims: Vec<procs::ProcInfo> = match pgid {
            Some(g) if self.proc_is_ours => procs::group_members(g),
            _ => Vec::new(),
        };
        if !victims.iter().any(|p| p.pid == pid) {
            victims.insert(
                0,
                procs::ProcInfo {
                    pid,
                    ppid: self.own_pid,
                    pgid: pgid.unwrap_or(0),
                    state: 'R',
                },
            );
        }
        let event = self.kill_report(Some(i), &victims);
        if let Some(g) = pgid {
            signal(-g, libc::SIGKILL);
        }
        signal(pid, libc::SIGKILL);
        events::emit(&event);
    }

    fn kill_everything(&mut self, whose_grace: Option<usize>) {
        let victims = self.descendants();
        // Named before the kill: a dying process loses its command line.
        let event = self.kill_report(whose_grace, &victims);
        self.signal_everything(libc::SIGKILL, &victims);
        if !victims.is_empty() {
            events::emit(&event);
        }
    }

    /// Signals everything pyinit is responsible for: every process group and,
    /// as PID 1 or subreaper, every descendant (`seen`, read from /proc).
    fn signal_everything(&self, sig: i32, seen: &[procs::ProcInfo]) {
        for g in self.pgids.iter().flatten() {
            if *g > 1 {
                signal(-*g, sig);
            }
        }
        if self.pid1 {
            // As PID 1, -1 means every process in the namespace but pyinit.
            signal(-1, sig);
        } else if self.reaps_orphans && self.proc_is_ours {
            for p in seen {
                signal(p.pid, sig);
            }
        }
    }

    fn kill_report(&self, whose_grace: Option<usize>, victims: &[procs::ProcInfo]) -> Event {
        let named: Vec<Victim> = victims
            .iter()
            .take(20)
            .map(|p| Victim {
                pid: p.pid,
                cmd: procs::command_line(p.pid, 60),
            })
            .collect();
        let more = victims.len().saturating_sub(named.len());
        let (process, grace) = match whose_grace {
            Some(i) => (
                self.cfg.multi.then(|| self.name(i).to_string()),
                self.cfg.processes[i].grace.min(self.cfg.grace),
            ),
            None => (None, self.cfg.grace),
        };
        Event::Killed {
            process,
            grace,
            victims: named,
            more,
        }
    }

    fn group_mode(&self, i: usize) -> GroupMode {
        let spec = &self.cfg.processes[i];
        if spec.signal_scope == SignalScope::Main {
            GroupMode::SameGroup
        } else if let Some(t) = self.terminal_group {
            t
        } else {
            GroupMode::NewSession
        }
    }

    /// Starts process `i`; `generation` is the number of this start (line
    /// readiness from an earlier start must not count).
    fn spawn(&mut self, i: usize, generation: u64) -> Result<i32, Error> {
        let spec = &self.cfg.processes[i];
        let mut env = spec.env.clone();
        if let Some(path) = &self.notify_paths[i] {
            env.retain(|(k, _)| k != "NOTIFY_SOCKET");
            env.push(("NOTIFY_SOCKET".into(), path.into()));
        }
        let group = self.group_mode(i);
        let spawned = spawn::spawn(
            &SpawnSpec {
                argv: &spec.argv,
                env: &env,
                cwd: spec.working_dir.as_deref(),
                capture: self.capture,
                group,
            },
            ChildSignalState::startup(),
        )?;
        self.pgids[i] = match group {
            GroupMode::SameGroup => None,
            _ => Some(spawned.pid),
        };
        let color = self.colors.then(|| COLORS[i % COLORS.len()]);
        for (fd, stream) in [
            (spawned.stdout, Stream::Stdout),
            (spawned.stderr, Stream::Stderr),
        ] {
            let sink = match stream {
                Stream::Stdout => self.stdout_sink.clone(),
                Stream::Stderr => Some(self.stderr_sink.clone()),
            };
            if let (Some(fd), Some(sink)) = (fd, sink) {
                let f = Formatter::colored(
                    self.cfg.log_format,
                    &spec.name,
                    self.width,
                    spawned.pid,
                    stream,
                    color,
                );
                let hook = match &spec.ready {
                    Some(ReadyProbe::Line(re)) => Some(ReadyHook {
                        regex: re.clone(),
                        tx: self.ready_tx.clone(),
                        id: (i, generation),
                    }),
                    _ => None,
                };
                self.readers
                    .push(tokio::spawn(pump(fd, f, self.cfg.max_line, sink, hook)));
            }
        }
        Ok(spawned.pid)
    }

    /// Probes a port/http `ready` probe every [`READY_POLL`] on its own task
    /// (never blocking the loop) until it passes once.
    fn watch_ready(&mut self, i: usize, generation: u64) {
        if let Some(old) = self.probes[i].take() {
            old.abort();
        }
        let Some(probe) = self.cfg.processes[i].ready.clone() else {
            return;
        };
        let tx = self.ready_tx.clone();
        self.probes[i] = Some(tokio::spawn(async move {
            loop {
                let ok = match &probe {
                    ReadyProbe::Port(port) => port_accepts(*port).await,
                    ReadyProbe::Http(url) => http_ready(url).await,
                    _ => return,
                };
                if ok {
                    let _ = tx.send((i, generation));
                    return;
                }
                tokio::time::sleep(READY_POLL).await;
            }
        }));
    }

    /// Latest moment to finish writing output.
    fn drain_deadline(&self, machine: &Machine<'_>) -> Instant {
        if let Some(k) = machine.killed_at() {
            return k + FINAL_FLUSH;
        }
        let now = Instant::now();
        match machine.leftover_deadline() {
            Some(d) => d.max(now + Duration::from_millis(50)),
            None => now + self.cfg.grace.max(FINAL_FLUSH),
        }
    }

    /// Writes out the output of processes that are gone, bounded by the
    /// deadline so that a stalled reader of pyinit's output cannot keep it alive.
    async fn drain(&mut self, machine: &Machine<'_>) {
        for task in self.probes.iter_mut().filter_map(Option::take) {
            task.abort();
        }
        let bound = self.drain_deadline(machine);
        let readers = std::mem::take(&mut self.readers);
        let drained = tokio::time::timeout_at(bound.into(), async {
            for r in readers {
                let _ = r.await;
            }
        })
        .await
        .is_ok();
        let mut flushed = drained;
        for sink in self
            .stdout_sink
            .iter()
            .chain(std::iter::once(&self.stderr_sink))
        {
            flushed &= sink.flush_until(Some(bound));
        }
        if !flushed {
            tracing::warn!("output could not be written in time; the rest is dropped");
            crate::logging::flush(Some(Instant::now() + Duration::from_millis(100)));
        }
    }
}

/// Whether 127.0.0.1:`port` accepts a connection now.
async fn port_accepts(port: u16) -> bool {
    let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Whether `GET url` answers 2xx/3xx now.
async fn http_ready(url: &str) -> bool {
    matches!(
        crate::control::probe::http_status(url, Duration::from_secs(2)).await,
        Ok(code) if (200..400).contains(&code)
    )
}

/// A stop signal that was ignored when pyinit started is ignored by the
/// children too (pyinit hands them its start-up dispositions, as tini
/// does): say so, since stopping with it will then wait for the grace period.
/// The usual cause is a non-interactive shell's `&`, which ignores INT and QUIT.
fn warn_inherited_ignored_stop_signals(cfg: &Config) {
    // What `docker stop` ends up sending, what the user rewrote signals to,
    // and the configured stop signals; INT and QUIT alone are not worth a word.
    let mut sent: Vec<i32> = cfg
        .router
        .route(libc::SIGTERM)
        .map(|r| r.send)
        .into_iter()
        .chain(cfg.router.targets())
        .chain(cfg.processes.iter().filter_map(|p| p.stop_signal))
        .collect();
    sent.sort_unstable();
    sent.dedup();
    for sig in sent {
        if crate::signals::mask::ignored_at_startup(sig) {
            tracing::warn!(
                "{} was ignored when pyinit started, and the children inherit that: \
                 stopping them with it will wait for the grace period (start pyinit with \
                 default signal dispositions, e.g. not as a shell's background job)",
                names::name(sig)
            );
        }
    }
}

/// Binds a `NOTIFY_SOCKET` for every process with `ready = { notify = true }`;
/// a datagram holding `READY=1` marks it ready. Returns the sockets' directory.
fn notify_sockets(
    cfg: &Config,
    own_pid: i32,
    tx: &UnboundedSender<(usize, u64)>,
) -> Result<Option<PathBuf>, Error> {
    let wanted: Vec<usize> = (0..cfg.processes.len())
        .filter(|&i| matches!(cfg.processes[i].ready, Some(ReadyProbe::Notify)))
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let fail = |e: std::io::Error| Error::Internal(format!("cannot create NOTIFY_SOCKET: {e}"));
    // Every pyinit in a PID namespace is pid 1, and several may share /tmp:
    // a fresh directory of our own, never someone else's.
    let mut attempt = 0u32;
    let dir = loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("pyinit-{own_pid}-{nanos:x}-{attempt}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            Err(e) => return Err(fail(e)),
        }
    };
    for i in wanted {
        let sock = tokio::net::UnixDatagram::bind(dir.join(format!("{i}.sock"))).map_err(fail)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf).await {
                if buf[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1") {
                    let _ = tx.send((i, ANY_GENERATION));
                }
            }
        });
    }
    Ok(Some(dir))
}
