//! The supervisor loop: one main process, or several from a Procfile/config.
//!
//! # Theory of operation
//!
//! 1. **Spawn** each process (see [`crate::spawn`]): in a new session, in
//!    its own foreground group under a terminal (single process only), or in
//!    pyinit's group with `-c`. Dependants start once their dependencies are
//!    ready (a log line, a TCP port, or `READY=1` on `NOTIFY_SOCKET`).
//! 2. **Forward** every signal the signalfd reports, per the [`Router`]:
//!    stop signals to each process group, the rest to each main process.
//! 3. **Stop with a deadline**: the first stop signal (after `--stop-delay`),
//!    or a process exiting with no restart left, starts the shutdown.
//!    Processes get their stop signal in reverse dependency order, each with
//!    its own deadline, after which its group gets SIGKILL (everything, when
//!    it is the last one) and pyinit names those processes.
//! 4. **Reap** every child on SIGCHLD ([`crate::reaper`]).
//! 5. **Follow the processes**: once none of them runs, whatever they left
//!    behind gets SIGTERM and, at the deadline, SIGKILL; pyinit exits with the
//!    status of the process whose exit started the shutdown (SPEC point 6)
//!    once no child is left and the output is written.
//!
//! Everything happens on this one task: a `select!` over signals, readiness
//! events and the next timer, then [`Supervisor::advance`] applies whatever
//! is due. Output is copied by separate tasks and threads, so nothing here
//! ever waits on pyinit's stdout.
//!
//! [`Router`]: crate::signals::rewrite::Router

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::task::JoinHandle;

use crate::config::{Config, ReadyProbe, RestartPolicy};
use crate::error::Error;
use crate::exit_status::Ended;
use crate::output::format::{Formatter, LogFormat};
use crate::output::pump::{pump, ReadyHook};
use crate::output::sink::{Sink, QUEUE_BYTES};
use crate::output::Stream;
use crate::procs;
use crate::reaper;
use crate::signals::mask::ChildSignalState;
use crate::signals::names;
use crate::signals::rewrite::{Route, Target};
use crate::signals::source::{Received, SignalSource};
use crate::spawn::{self, GroupMode, SpawnSpec};
use crate::tty;

// ---- control socket bridge (issue 12), see control_hook.rs
mod control_hook;
// ----

/// After the final SIGKILL: time left to reap and to write the last output.
pub const FINAL_FLUSH: Duration = Duration::from_millis(500);
/// How often a `ready = { port = N }` process is probed.
const PORT_POLL: Duration = Duration::from_millis(100);
/// Readiness events for "whatever start of the process is current".
const ANY_GENERATION: u64 = u64::MAX;
/// honcho's colours for `prefix` labels on a terminal.
const COLORS: [u8; 6] = [36, 33, 32, 35, 31, 34];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopState {
    Running,
    /// A stop signal arrived; `send` goes out at `until` (`--stop-delay`).
    Delaying {
        until: Instant,
        send: i32,
    },
    Stopping,
}

/// What started the shutdown; decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Signal,
    Exit(usize),
}

/// One supervised process and its life so far.
#[derive(Debug, Default)]
struct Proc {
    pid: Option<i32>,
    pgid: Option<i32>,
    /// Counts starts, so readiness from an earlier run is ignored.
    generation: u64,
    started_at: Option<Instant>,
    ready: bool,
    started_once: bool,
    backoff_until: Option<Instant>,
    /// Its stop signal went out; SIGKILL at this moment.
    stop_deadline: Option<Instant>,
    killed: bool,
    last: Option<Ended>,
    restarts: VecDeque<Instant>,
    failures_in_row: u32,
    notify_path: Option<PathBuf>,
    /// Pending `pyinit ctl` restart/stop (control socket bridge, issue 12).
    ctl: control_hook::Intent,
}

struct Supervisor<'a> {
    cfg: &'a Config,
    own_pid: u32,
    pid1: bool,
    /// Orphans reparent to pyinit (PID 1 or child subreaper).
    reaps_orphans: bool,
    /// Ignore terminal-generated signals (Ctrl-C under `-c` reaches the
    /// child from the terminal already).
    ignore_terminal_signals: bool,
    group: GroupMode,
    capture: bool,
    stdout_sink: Option<Sink>,
    stderr_sink: Sink,
    colors: bool,
    width: usize,
    ready_tx: UnboundedSender<(usize, u64)>,
    readers: Vec<JoinHandle<()>>,
    procs: Vec<Proc>,
    stop: StopState,
    trigger: Option<Trigger>,
    /// The (rewritten) stop signal that started a signal-triggered stop.
    stop_send: Option<i32>,
    /// Deadline for what is left once no managed process runs.
    leftover_deadline: Option<Instant>,
    killed_at: Option<Instant>,
    children_left: bool,
    orphans_reaped: u64,
    next_port_probe: Option<Instant>,
}

/// Runs `cfg` to completion and returns pyinit's exit code.
pub async fn run(cfg: &Config, signal_fd: OwnedFd) -> Result<i32, Error> {
    // SAFETY: getpid cannot fail.
    let own_pid = unsafe { libc::getpid() };
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
    let group = if cfg.single_child() {
        GroupMode::SameGroup
    } else if let Some(t) = &terminal {
        GroupMode::TerminalGroup {
            tty: t.fd.as_raw_fd(),
            take_foreground: t.foreground,
        }
    } else {
        GroupMode::NewSession
    };
    let stdout_sink = capture.then(|| Sink::new(1, QUEUE_BYTES));
    let stderr_sink = Sink::new(2, QUEUE_BYTES);
    crate::logging::attach_stderr_sink(stderr_sink.clone());

    warn_inherited_ignored_stop_signals(cfg);
    let (ready_tx, mut ready_rx) = unbounded_channel();
    let notify_dir = notify_sockets(cfg, own_pid, &ready_tx)?;
    let mut sup = Supervisor {
        cfg,
        own_pid: own_pid as u32,
        pid1,
        reaps_orphans,
        ignore_terminal_signals: cfg.single_child() && tty::stdio_is_tty(),
        group,
        capture,
        stdout_sink,
        stderr_sink,
        // SAFETY: isatty only inspects the descriptor.
        colors: cfg.multi && cfg.log_format == LogFormat::Prefix && unsafe { libc::isatty(1) == 1 },
        width: cfg.label_width(),
        ready_tx,
        readers: Vec::new(),
        procs: cfg.processes.iter().map(|_| Proc::default()).collect(),
        stop: StopState::Running,
        trigger: None,
        stop_send: None,
        leftover_deadline: None,
        killed_at: None,
        // Set by each successful start; a start that fails before fork
        // leaves nothing to wait for.
        children_left: false,
        orphans_reaped: 0,
        next_port_probe: None,
    };
    if let Some(dir) = &notify_dir {
        for (i, p) in cfg.processes.iter().enumerate() {
            if matches!(p.ready, Some(ReadyProbe::Notify)) {
                sup.procs[i].notify_path = Some(dir.join(format!("{i}.sock")));
            }
        }
    }
    if !cfg.multi {
        // A single command that cannot start is pyinit's own failure (127/126).
        sup.spawn(0)?;
    }
    drop(terminal);

    let result = sup.event_loop(&signals, &mut ready_rx).await;
    // Control socket bridge (issue 12): no stale socket file left behind.
    crate::control::server::remove_socket(&cfg.socket);
    if let Some(dir) = notify_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result?;
    sup.drain().await;
    let code = sup.exit_code()?;
    tracing::debug!(
        "exiting with status {code}; {} orphan(s) reaped",
        sup.orphans_reaped
    );
    Ok(code)
}

/// A stop signal that was ignored when pyinit started is ignored by the
/// children too (pyinit hands them its start-up dispositions, as tini
/// does): say so, since stopping with it will then wait for the deadline.
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

impl Supervisor<'_> {
    fn name(&self, i: usize) -> &str {
        &self.cfg.processes[i].name
    }

    async fn event_loop(
        &mut self,
        signals: &SignalSource,
        ready_rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, u64)>,
    ) -> Result<(), Error> {
        let far = Instant::now() + Duration::from_secs(86400 * 365);
        // One timer, moved only when the next deadline changes: re-arming a
        // fresh one per loop turn would wake tokio's driver for nothing.
        let timer = tokio::time::sleep_until(far.into());
        tokio::pin!(timer);
        let mut armed = far;
        let mut batch: Vec<Received> = Vec::with_capacity(16);
        // Control socket bridge (issue 12).
        let mut control = crate::control::server::start(&self.cfg.socket);
        loop {
            self.advance(Instant::now())?;
            if self.finished() {
                return Ok(());
            }
            if let Some(k) = self.killed_at {
                if Instant::now() >= k + FINAL_FLUSH {
                    tracing::warn!(
                        "processes survived SIGKILL (uninterruptible sleep?); exiting without them"
                    );
                    return Ok(());
                }
            }
            let wake = self.next_wake().unwrap_or(far);
            if wake != armed {
                timer.as_mut().reset(wake.into());
                armed = wake;
            }
            tokio::select! {
                r = signals.recv(&mut batch) => {
                    r.map_err(|e| Error::Internal(format!("reading signals failed: {e}")))?;
                    for rec in std::mem::take(&mut batch) {
                        self.on_signal(rec);
                    }
                }
                Some((i, generation)) = ready_rx.recv() => self.on_ready(i, generation),
                // Control socket bridge (issue 12).
                Some(msg) = control_hook::next(&mut control) => self.on_control(msg),
                _ = &mut timer, if armed != far => {
                    // Fired: the next turn re-arms it if anything is due later.
                    armed = far;
                }
            }
        }
    }

    /// The earliest moment something is due.
    fn next_wake(&self) -> Option<Instant> {
        let mut times = Vec::new();
        if let StopState::Delaying { until, .. } = self.stop {
            times.push(until);
        }
        for p in &self.procs {
            times.extend(p.backoff_until);
            if p.pid.is_some() && !p.killed {
                times.extend(p.stop_deadline);
            }
        }
        if self.killed_at.is_none() {
            times.extend(self.leftover_deadline);
        }
        times.extend(self.killed_at.map(|k| k + FINAL_FLUSH));
        if self.trigger.is_none() {
            // Readiness matters only for starting dependants.
            times.extend(self.next_port_probe);
        }
        times.into_iter().min()
    }

    fn finished(&self) -> bool {
        self.trigger.is_some()
            && self.procs.iter().all(|p| p.pid.is_none())
            && self.leftover_deadline.is_some()
            && !self.children_left
    }

    /// Applies everything that is due at `now`.
    fn advance(&mut self, now: Instant) -> Result<(), Error> {
        if let StopState::Delaying { until, send } = self.stop {
            if now >= until {
                self.begin_shutdown(Trigger::Signal, Some(send));
            }
        }
        if self.trigger.is_none() {
            for i in 0..self.procs.len() {
                if self.procs[i].backoff_until.is_some_and(|t| now >= t) {
                    self.procs[i].backoff_until = None;
                    self.start(i)?;
                }
            }
            self.probe_ports(now);
            self.start_ready_dependants()?;
        }
        for i in 0..self.procs.len() {
            let p = &self.procs[i];
            if p.pid.is_some() && !p.killed && p.stop_deadline.is_some_and(|d| now >= d) {
                self.kill_process(i);
            }
        }
        if self.trigger.is_some() {
            self.stop_in_order(now);
            self.handle_leftovers(now);
        }
        Ok(())
    }

    /// Starts processes whose dependencies are all ready, in start order.
    fn start_ready_dependants(&mut self) -> Result<(), Error> {
        for k in 0..self.cfg.start_order.len() {
            let i = self.cfg.start_order[k];
            let p = &self.procs[i];
            if p.started_once || self.trigger.is_some() {
                continue;
            }
            let deps_ready = self.cfg.processes[i]
                .depends_on
                .iter()
                .all(|&d| self.procs[d].ready && self.procs[d].pid.is_some());
            if deps_ready {
                self.start(i)?;
            }
        }
        Ok(())
    }

    fn probe_ports(&mut self, now: Instant) {
        if self.next_port_probe.is_some_and(|t| now < t) {
            return;
        }
        self.next_port_probe = None;
        for i in 0..self.procs.len() {
            let Some(ReadyProbe::Port(port)) = self.cfg.processes[i].ready else {
                continue;
            };
            if self.procs[i].pid.is_none() || self.procs[i].ready {
                continue;
            }
            let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
            // Loopback answers at once (accept or RST); the timeout is a guard.
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(20)).is_ok() {
                self.on_ready(i, self.procs[i].generation);
            } else {
                self.next_port_probe = Some(now + PORT_POLL);
            }
        }
    }

    /// Starts process `i`; a failure to start counts as an exit (multi) or
    /// is pyinit's own error (single command).
    fn start(&mut self, i: usize) -> Result<(), Error> {
        match self.spawn(i) {
            Ok(()) => Ok(()),
            Err(e) if self.cfg.multi => {
                tracing::error!("{}: {e}", self.name(i));
                self.procs[i].started_once = true;
                self.on_exit(i, Ended::Exited(e.exit_code()));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn spawn(&mut self, i: usize) -> Result<(), Error> {
        let spec = &self.cfg.processes[i];
        let mut env = spec.env.clone();
        if let Some(path) = &self.procs[i].notify_path {
            env.retain(|(k, _)| k != "NOTIFY_SOCKET");
            env.push(("NOTIFY_SOCKET".into(), path.into()));
        }
        let spawned = spawn::spawn(
            &SpawnSpec {
                argv: &spec.argv,
                env: &env,
                cwd: spec.working_dir.as_deref(),
                capture: self.capture,
                group: self.group,
            },
            ChildSignalState::startup(),
        )?;
        if self.cfg.multi {
            tracing::info!("{} started (pid {})", spec.name, spawned.pid);
        } else {
            tracing::debug!(
                "started {} as pid {} ({})",
                spec.name,
                spawned.pid,
                if self.pid1 {
                    "as PID 1"
                } else {
                    "as subreaper"
                }
            );
        }
        self.children_left = true;
        let p = &mut self.procs[i];
        p.pid = Some(spawned.pid);
        p.pgid = match self.group {
            GroupMode::SameGroup => None,
            _ => Some(spawned.pid),
        };
        p.generation += 1;
        p.started_at = Some(Instant::now());
        p.started_once = true;
        p.ready = spec.ready.is_none();
        let generation = p.generation;
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
        if matches!(spec.ready, Some(ReadyProbe::Port(_))) {
            self.next_port_probe = Some(Instant::now());
        }
        // Control socket bridge (issue 12): `ready = { http = URL }`.
        if let Some(ReadyProbe::Http(url)) = &spec.ready {
            control_hook::watch_http(url.clone(), i, generation, self.ready_tx.clone());
        }
        Ok(())
    }

    fn on_ready(&mut self, i: usize, generation: u64) {
        let p = &mut self.procs[i];
        if p.pid.is_none()
            || p.ready
            || (generation != ANY_GENERATION && generation != p.generation)
        {
            return;
        }
        p.ready = true;
        tracing::info!("{} is ready", self.name(i));
    }

    fn on_signal(&mut self, rec: Received) {
        if rec.signo == libc::SIGCHLD {
            self.reap();
            return;
        }
        if rec.self_inflicted(self.own_pid) || (self.ignore_terminal_signals && rec.from_terminal())
        {
            tracing::debug!(
                "ignoring {} raised against pyinit itself",
                names::name(rec.signo)
            );
            return;
        }
        let Some(route) = self.cfg.router.route(rec.signo) else {
            tracing::debug!("{} dropped by --rewrite", names::name(rec.signo));
            return;
        };
        if !route.stop {
            for i in 0..self.procs.len() {
                self.forward(i, route);
            }
            return;
        }
        match self.stop {
            StopState::Running if !self.cfg.stop_delay.is_zero() => {
                tracing::info!(
                    "{} received; forwarding it in {}",
                    names::name(rec.signo),
                    humantime::format_duration(self.cfg.stop_delay)
                );
                self.stop = StopState::Delaying {
                    until: Instant::now() + self.cfg.stop_delay,
                    send: route.send,
                };
            }
            StopState::Running | StopState::Delaying { .. } => {
                self.begin_shutdown(Trigger::Signal, Some(route.send))
            }
            StopState::Stopping => {
                // A repeated stop signal (a second Ctrl-C) goes to whatever
                // is already stopping.
                for i in 0..self.procs.len() {
                    if self.procs[i].stop_deadline.is_some() {
                        self.forward(i, route);
                    }
                }
            }
        }
    }

    fn begin_shutdown(&mut self, trigger: Trigger, send: Option<i32>) {
        self.stop = StopState::Stopping;
        if self.trigger.is_none() {
            self.trigger = Some(trigger);
            self.stop_send = send;
        }
        for p in &mut self.procs {
            p.backoff_until = None;
        }
    }

    /// Sends each running process its stop signal once every process that
    /// depends on it has stopped: dependants before their dependencies.
    fn stop_in_order(&mut self, now: Instant) {
        for k in (0..self.cfg.start_order.len()).rev() {
            let i = self.cfg.start_order[k];
            if self.procs[i].pid.is_none() || self.procs[i].stop_deadline.is_some() {
                continue;
            }
            let dependants_running = (0..self.procs.len()).any(|j| {
                self.cfg.processes[j].depends_on.contains(&i) && self.procs[j].pid.is_some()
            });
            if dependants_running {
                continue;
            }
            let spec = &self.cfg.processes[i];
            let send = spec.stop_signal.or(self.stop_send).unwrap_or(libc::SIGTERM);
            self.procs[i].stop_deadline = Some(now + spec.grace);
            tracing::debug!(
                "stopping {}: {} sent, SIGKILL in {}",
                spec.name,
                names::name(send),
                humantime::format_duration(spec.grace)
            );
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
    }

    fn forward(&self, i: usize, route: Route) {
        let p = &self.procs[i];
        let Some(pid) = p.pid else { return };
        let target = match (route.target, p.pgid) {
            (Target::Group, Some(g)) if g > 1 => -g,
            _ => pid,
        };
        tracing::debug!("forwarding {} to {}", names::name(route.send), target);
        // SAFETY: kill with plain integers; the pid is not reaped yet
        // (signals and reaping run on this one task).
        if unsafe { libc::kill(target, route.send) } != 0 && target < 0 {
            // The group may be gone while the process lives on (it left it).
            // SAFETY: as above.
            unsafe { libc::kill(pid, route.send) };
        }
    }

    fn reap(&mut self) {
        let mut reaped = Vec::new();
        self.children_left = reaper::reap(&mut reaped);
        for r in reaped {
            let Some(ended) = Ended::from_wait_status(r.status) else {
                continue;
            };
            match self.procs.iter().position(|p| p.pid == Some(r.pid)) {
                Some(i) => self.on_exit(i, ended),
                None => {
                    self.orphans_reaped += 1;
                    tracing::debug!("reaped {}: {}", r.pid, ended.describe());
                }
            }
        }
    }

    /// A managed process ended: restart it, or start the shutdown.
    fn on_exit(&mut self, i: usize, ended: Ended) {
        let now = Instant::now();
        let cfg = self.cfg;
        let spec = &cfg.processes[i];
        let p = &mut self.procs[i];
        let pid = p.pid.take();
        p.ready = false;
        p.last = Some(ended);
        if cfg.multi {
            match pid {
                Some(pid) => tracing::info!("{} (pid {pid}) {}", spec.name, ended.describe()),
                None => tracing::info!(
                    "{} could not be started (status {})",
                    spec.name,
                    ended.code()
                ),
            }
        } else {
            let pid = pid.unwrap_or(0);
            tracing::debug!("main process {pid} {}", ended.describe());
        }
        if self.trigger.is_some() {
            return;
        }
        // Control socket bridge (issue 12): `ctl restart`/`ctl stop`.
        if self.control_exit(i) {
            return;
        }
        let p = &mut self.procs[i];
        let failed = cfg.expect.map(ended) != 0;
        let policy = spec.restart.policy;
        let wants_restart =
            policy == RestartPolicy::Always || (policy == RestartPolicy::OnFailure && failed);
        if wants_restart && matches!(self.stop, StopState::Running) {
            let window = spec.restart.window;
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
                p.backoff_until = Some(now + delay);
                tracing::info!(
                    "restarting {} in {} ({} {} in the last {})",
                    spec.name,
                    humantime::format_duration(delay),
                    p.restarts.len(),
                    if p.restarts.len() == 1 {
                        "restart"
                    } else {
                        "restarts"
                    },
                    humantime::format_duration(window)
                );
                return;
            }
            tracing::warn!(
                "{} {} after {} restarts within {}; stopping everything",
                spec.name,
                ended.describe(),
                p.restarts.len(),
                humantime::format_duration(window)
            );
        } else if cfg.multi {
            tracing::info!("{} ended; stopping the other processes", spec.name);
        }
        self.begin_shutdown(Trigger::Exit(i), None);
    }

    /// Once no managed process runs: SIGTERM to whatever they left behind,
    /// then SIGKILL at the deadline.
    fn handle_leftovers(&mut self, now: Instant) {
        if self.procs.iter().any(|p| p.pid.is_some()) {
            return;
        }
        if self.leftover_deadline.is_none() {
            // A stop already under way keeps its deadline (single process:
            // the grace period counts from the stop signal).
            let pending = self.procs.iter().filter_map(|p| p.stop_deadline).max();
            let latest = now + self.cfg.grace;
            self.leftover_deadline = Some(pending.map_or(latest, |d| d.min(latest)));
            if self.children_left || !self.reaps_orphans {
                let seen = procs::living_descendants();
                for p in &seen {
                    tracing::debug!("leftover {} gets SIGTERM", p.pid);
                }
                self.signal_everything(libc::SIGTERM, &seen);
            }
        }
        if self.children_left
            && self.killed_at.is_none()
            && self.leftover_deadline.is_some_and(|d| now >= d)
        {
            self.kill_everything(None);
        }
    }

    /// A process's own deadline passed.
    fn kill_process(&mut self, i: usize) {
        self.procs[i].killed = true;
        let others_running = self
            .procs
            .iter()
            .enumerate()
            .any(|(j, p)| j != i && p.pid.is_some());
        // (Control socket bridge, issue 12: a `ctl` stop outside a shutdown
        // kills that process's group only.)
        if !others_running && self.trigger.is_some() {
            self.kill_everything(Some(i));
            return;
        }
        let (pid, pgid) = (self.procs[i].pid.unwrap_or(0), self.procs[i].pgid);
        let victims = match pgid {
            Some(g) if g > 1 => procs::group_members(g),
            _ => Vec::new(),
        };
        let report = self.kill_report(Some(i), &victims);
        if let Some(g) = pgid.filter(|&g| g > 1) {
            // SAFETY: kill with plain integers; g > 1.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
        // SAFETY: the pid is not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        report();
    }

    /// Signals everything pyinit is responsible for: every process group and,
    /// as PID 1 or subreaper, every descendant (`seen`, read from /proc).
    fn signal_everything(&self, sig: i32, seen: &[procs::ProcInfo]) {
        for p in &self.procs {
            if let Some(g) = p.pgid.filter(|&g| g > 1) {
                // SAFETY: kill with plain integers; g > 1 never targets init or everyone.
                unsafe { libc::kill(-g, sig) };
            }
            if let Some(pid) = p.pid {
                // SAFETY: the pid is not reaped yet.
                unsafe { libc::kill(pid, sig) };
            }
        }
        if self.pid1 {
            // SAFETY: as PID 1, -1 means every process in the namespace but pyinit.
            unsafe { libc::kill(-1, sig) };
        } else if self.reaps_orphans && procs::self_pid_in_proc() == Some(self.own_pid as i32) {
            for p in seen {
                // SAFETY: pids read from /proc in pyinit's own namespace.
                unsafe { libc::kill(p.pid, sig) };
            }
        }
    }

    fn kill_everything(&mut self, whose_grace: Option<usize>) {
        self.killed_at = Some(Instant::now());
        let victims = procs::living_descendants();
        // Named before the kill: a dying process loses its command line.
        let report = self.kill_report(whose_grace, &victims);
        self.signal_everything(libc::SIGKILL, &victims);
        report();
    }

    /// Reads the victims' command lines now; the returned closure logs them.
    fn kill_report(
        &self,
        whose_grace: Option<usize>,
        victims: &[procs::ProcInfo],
    ) -> impl FnOnce() {
        let pids: Vec<i32> = victims.iter().map(|p| p.pid).collect();
        let list: Vec<String> = victims
            .iter()
            .take(20)
            .map(|p| format!("{} ({})", p.pid, procs::command_line(p.pid, 60)))
            .collect();
        let more = victims.len().saturating_sub(list.len());
        let grace = match whose_grace {
            Some(i) if self.cfg.multi => format!(
                "{} for {}",
                humantime::format_duration(self.cfg.processes[i].grace),
                self.name(i)
            ),
            Some(i) => humantime::format_duration(self.cfg.processes[i].grace).to_string(),
            None => humantime::format_duration(self.cfg.grace).to_string(),
        };
        move || {
            if pids.is_empty() {
                return;
            }
            for pid in &pids {
                tracing::debug!("SIGKILL {pid}");
            }
            tracing::warn!(
                "grace period of {grace} ran out; sent SIGKILL to {} process{}: {}{}",
                pids.len(),
                if pids.len() == 1 { "" } else { "es" },
                list.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }

    /// Latest moment to finish writing output.
    fn drain_deadline(&self) -> Instant {
        if let Some(k) = self.killed_at {
            return k + FINAL_FLUSH;
        }
        let now = Instant::now();
        match self.leftover_deadline {
            Some(d) => d.max(now + Duration::from_millis(50)),
            None => now + self.cfg.grace.max(FINAL_FLUSH),
        }
    }

    /// Writes out the output of processes that are gone, bounded by the
    /// deadline so that a stalled reader of pyinit's output cannot keep it alive.
    async fn drain(&mut self) {
        let bound = self.drain_deadline();
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

    /// SPEC point 6: the status of the process whose exit started the
    /// shutdown; for a stop signal, the first non-zero status in config
    /// order (the main process's status for a single command).
    fn exit_code(&self) -> Result<i32, Error> {
        let mapped = |i: usize| self.procs[i].last.map(|e| self.cfg.expect.map(e));
        match self.trigger {
            Some(Trigger::Exit(i)) => {
                mapped(i).ok_or_else(|| Error::Internal("process status lost".into()))
            }
            _ if !self.cfg.multi => {
                mapped(0).ok_or_else(|| Error::Internal("main process status lost".into()))
            }
            _ => Ok((0..self.procs.len())
                .filter_map(mapped)
                .find(|&c| c != 0)
                .unwrap_or(0)),
        }
    }
}
