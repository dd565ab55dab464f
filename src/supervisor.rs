//! The supervisor loop for one main process.
//!
//! # Theory of operation
//!
//! 1. **Spawn** the command (see [`crate::spawn`]), in a new session, in its
//!    own foreground group under a terminal, or in pyinit's group with `-c`.
//! 2. **Forward** every signal the signalfd reports, per the [`Router`]:
//!    stop signals to the group, the rest to the main process.
//! 3. **Stop with a deadline**: the first stop signal (after `--stop-delay`)
//!    arms the deadline; when it passes, everything left gets SIGKILL and
//!    pyinit names those processes.
//! 4. **Reap** every child on SIGCHLD ([`crate::reaper`]).
//! 5. **Follow the main process**: when it exits, whatever it left behind
//!    gets SIGTERM and, at the deadline, SIGKILL; pyinit exits with the main
//!    status once no child is left and the output is written.
//!
//! States: Running → (Delaying) → Stopping{deadline} → Killed → Draining →
//! exit. Output is copied by separate tasks and threads, so nothing here
//! ever waits on pyinit's stdout.
//!
//! [`Router`]: crate::signals::rewrite::Router

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio::time::sleep_until;

use crate::config::Config;
use crate::error::Error;
use crate::exit_status::Ended;
use crate::output::format::Formatter;
use crate::output::pump::pump;
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

/// After the final SIGKILL: time left to reap and to write the last output.
pub const FINAL_FLUSH: Duration = Duration::from_millis(500);

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

struct Supervisor<'a> {
    cfg: &'a Config,
    own_pid: u32,
    pid1: bool,
    /// Orphans reparent to pyinit (PID 1 or child subreaper).
    reaps_orphans: bool,
    /// Ignore terminal-generated signals (Ctrl-C under `-c` reaches the
    /// child from the terminal already).
    ignore_terminal_signals: bool,
    main_pid: i32,
    pgid: Option<i32>,
    main_ended: Option<Ended>,
    main_ended_at: Option<Instant>,
    stop: StopState,
    deadline: Option<Instant>,
    killed_at: Option<Instant>,
    children_left: bool,
    orphans_reaped: u64,
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

    let terminal = tty::controlling_terminal();
    let capture = !cfg.no_capture && !tty::stdio_is_tty();
    let group = if cfg.single_child {
        GroupMode::SameGroup
    } else if let Some(t) = &terminal {
        GroupMode::TerminalGroup {
            tty: t.fd.as_raw_fd(),
            take_foreground: t.foreground,
        }
    } else {
        GroupMode::NewSession
    };
    let stdout_sink = if capture {
        Some(
            Sink::new(1, QUEUE_BYTES)
                .map_err(|e| Error::Internal(format!("cannot start output writer: {e}")))?,
        )
    } else {
        None
    };
    let stderr_sink = Sink::new(2, QUEUE_BYTES)
        .map_err(|e| Error::Internal(format!("cannot start output writer: {e}")))?;
    crate::logging::attach_stderr_sink(stderr_sink.clone());

    let spawned = spawn::spawn(
        &SpawnSpec {
            argv: &cfg.command,
            env: &cfg.env,
            capture,
            group,
        },
        ChildSignalState::startup(),
    )?;
    drop(terminal);
    tracing::debug!(
        "started {} as pid {} ({})",
        cfg.name,
        spawned.pid,
        if pid1 { "as PID 1" } else { "as subreaper" }
    );

    let width = cfg.name.len().max("pyinit".len());
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    for (fd, stream, sink) in [
        (spawned.stdout, Stream::Stdout, stdout_sink.clone()),
        (spawned.stderr, Stream::Stderr, Some(stderr_sink.clone())),
    ] {
        if let (Some(fd), Some(sink)) = (fd, sink) {
            let f = Formatter::new(cfg.log_format, &cfg.name, width, spawned.pid, stream);
            readers.push(tokio::spawn(pump(fd, f, cfg.max_line, sink)));
        }
    }

    let mut sup = Supervisor {
        cfg,
        own_pid: own_pid as u32,
        pid1,
        reaps_orphans,
        ignore_terminal_signals: cfg.single_child && tty::stdio_is_tty(),
        main_pid: spawned.pid,
        pgid: match group {
            GroupMode::SameGroup => None,
            _ => Some(spawned.pid),
        },
        main_ended: None,
        main_ended_at: None,
        stop: StopState::Running,
        deadline: None,
        killed_at: None,
        children_left: true,
        orphans_reaped: 0,
    };
    sup.event_loop(&signals).await?;

    // Drain: the output of processes that are gone, bounded by the deadline
    // so that a stalled reader of pyinit's output cannot keep it alive.
    let bound = sup.drain_deadline();
    let drained = tokio::time::timeout_at(bound.into(), async {
        for r in &mut readers {
            let _ = r.await;
        }
    })
    .await
    .is_ok();
    let mut flushed = drained;
    for sink in stdout_sink.iter().chain(std::iter::once(&stderr_sink)) {
        flushed &= sink.flush_until(Some(bound));
    }
    if !flushed {
        tracing::warn!("output could not be written in time; the rest is dropped");
        crate::logging::flush(Some(Instant::now() + Duration::from_millis(100)));
    }
    let ended = sup
        .main_ended
        .ok_or_else(|| Error::Internal("main process status lost".into()))?;
    tracing::debug!(
        "{} {}; {} orphan(s) reaped",
        cfg.name,
        ended.describe(),
        sup.orphans_reaped
    );
    Ok(cfg.expect.map(ended))
}

impl Supervisor<'_> {
    async fn event_loop(&mut self, signals: &SignalSource) -> Result<(), Error> {
        let far = Instant::now() + Duration::from_secs(86400 * 365);
        let mut batch: Vec<Received> = Vec::with_capacity(16);
        loop {
            if self.main_ended.is_some() && !self.children_left {
                return Ok(());
            }
            let delay_until = match self.stop {
                StopState::Delaying { until, .. } => Some(until),
                _ => None,
            };
            let kill_at = self.deadline.filter(|_| self.killed_at.is_none());
            let give_up_at = self.killed_at.map(|k| k + FINAL_FLUSH);
            tokio::select! {
                r = signals.recv(&mut batch) => {
                    r.map_err(|e| Error::Internal(format!("reading signals failed: {e}")))?;
                    for rec in std::mem::take(&mut batch) {
                        self.on_signal(rec);
                    }
                }
                _ = sleep_until(delay_until.unwrap_or(far).into()), if delay_until.is_some() => {
                    if let StopState::Delaying { send, .. } = self.stop {
                        self.begin_stop(send);
                    }
                }
                _ = sleep_until(kill_at.unwrap_or(far).into()), if kill_at.is_some() => {
                    self.kill_everything();
                }
                _ = sleep_until(give_up_at.unwrap_or(far).into()), if give_up_at.is_some() => {
                    tracing::warn!("processes survived SIGKILL (uninterruptible sleep?); exiting without them");
                    return Ok(());
                }
            }
        }
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
        if self.main_ended.is_some() {
            // Leftovers are already being stopped against the deadline.
            return;
        }
        if !route.stop {
            self.forward(route);
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
            StopState::Running | StopState::Delaying { .. } => self.begin_stop(route.send),
            StopState::Stopping => self.forward(route),
        }
    }

    /// Forwards the stop signal and arms the deadline.
    fn begin_stop(&mut self, send: i32) {
        self.stop = StopState::Stopping;
        self.deadline = Some(Instant::now() + self.cfg.grace);
        let target = if self.cfg.single_child {
            Target::Main
        } else {
            Target::Group
        };
        tracing::debug!(
            "stopping: {} sent, SIGKILL in {}",
            names::name(send),
            humantime::format_duration(self.cfg.grace)
        );
        self.forward(Route {
            send,
            stop: true,
            target,
        });
    }

    fn forward(&self, route: Route) {
        let target = match (route.target, self.pgid) {
            (Target::Group, Some(g)) if g > 1 => -g,
            _ => self.main_pid,
        };
        tracing::debug!("forwarding {} to {}", names::name(route.send), target);
        // SAFETY: kill with plain integers; the main pid is not reaped yet
        // (signals and reaping run on this one task).
        if unsafe { libc::kill(target, route.send) } != 0 && target < 0 {
            // The group may be gone while the main process lives on (it left it).
            // SAFETY: as above.
            unsafe { libc::kill(self.main_pid, route.send) };
        }
    }

    fn reap(&mut self) {
        let mut reaped = Vec::new();
        self.children_left = reaper::reap(&mut reaped);
        let mut main_just_ended = false;
        for r in reaped {
            if r.pid == self.main_pid && self.main_ended.is_none() {
                if let Some(ended) = Ended::from_wait_status(r.status) {
                    self.main_ended = Some(ended);
                    self.main_ended_at = Some(Instant::now());
                    main_just_ended = true;
                }
            } else {
                self.orphans_reaped += 1;
                if let Some(ended) = Ended::from_wait_status(r.status) {
                    tracing::debug!("reaped {}: {}", r.pid, ended.describe());
                }
            }
        }
        if main_just_ended {
            self.on_main_exit();
        }
    }

    fn on_main_exit(&mut self) {
        if let Some(ended) = self.main_ended {
            tracing::debug!("main process {} {}", self.main_pid, ended.describe());
        }
        if let StopState::Delaying { .. } = self.stop {
            self.stop = StopState::Stopping;
        }
        let leftovers = self.children_left || !self.reaps_orphans;
        if !leftovers {
            return;
        }
        for p in self.signal_leftovers(libc::SIGTERM) {
            tracing::debug!("leftover {} gets SIGTERM", p.pid);
        }
        if self.children_left && self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.cfg.grace);
        }
    }

    /// Signals everything pyinit is responsible for: the main group and, as
    /// PID 1 or subreaper, every descendant. Returns the descendants seen.
    fn signal_leftovers(&self, sig: i32) -> Vec<procs::ProcInfo> {
        let seen = procs::living_descendants();
        if let Some(g) = self.pgid.filter(|&g| g > 1) {
            // SAFETY: kill with plain integers; g > 1 never targets init or everyone.
            unsafe { libc::kill(-g, sig) };
        }
        if self.main_ended.is_none() {
            // SAFETY: as above; the main process is not reaped yet.
            unsafe { libc::kill(self.main_pid, sig) };
        }
        if self.pid1 {
            // SAFETY: as PID 1, -1 means every process in the namespace but pyinit.
            unsafe { libc::kill(-1, sig) };
        } else if self.reaps_orphans && procs::self_pid_in_proc() == Some(self.own_pid as i32) {
            for p in &seen {
                // SAFETY: pids read from /proc in pyinit's own namespace.
                unsafe { libc::kill(p.pid, sig) };
            }
        }
        seen
    }

    fn kill_everything(&mut self) {
        self.killed_at = Some(Instant::now());
        let victims = self.signal_leftovers(libc::SIGKILL);
        if victims.is_empty() {
            return;
        }
        for p in &victims {
            tracing::debug!("SIGKILL {}", p.pid);
        }
        let list: Vec<String> = victims
            .iter()
            .take(20)
            .map(|p| format!("{} ({})", p.pid, procs::command_line(p.pid, 60)))
            .collect();
        let more = victims.len().saturating_sub(list.len());
        tracing::warn!(
            "grace period of {} ran out; sent SIGKILL to {} process{}: {}{}",
            humantime::format_duration(self.cfg.grace),
            victims.len(),
            if victims.len() == 1 { "" } else { "es" },
            list.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }

    /// Latest moment to finish writing output.
    fn drain_deadline(&self) -> Instant {
        if let Some(k) = self.killed_at {
            return k + FINAL_FLUSH;
        }
        if let Some(d) = self.deadline {
            return d.max(Instant::now() + Duration::from_millis(50));
        }
        self.main_ended_at.unwrap_or_else(Instant::now) + self.cfg.grace.max(FINAL_FLUSH)
    }
}
