//! Saying when the kernel's OOM killer killed a process (SPEC "Out-of-memory
//! kills").
//!
//! # Approach
//!
//! 1. [`cgroup`] finds pyinit's memory cgroup (`/proc/self/cgroup` and the
//!    mount table; v1 or v2; `/` in a cgroup namespace) and reads the
//!    `oom_kill` counter, the events that come before a kill (v2 `max` and
//!    `oom`, v1 `under_oom`), the limit and the peak.
//! 2. [`watch`] wakes the loop when the counters may have moved: inotify on
//!    v2 `memory.events`, the v1 OOM eventfd, else a read once a second.
//!    Idle, it costs no wake-up at all where the kernel notifies.
//! 3. [`victim`] names the process: pyinit's own child that died of a
//!    SIGKILL pyinit did not send ([`OomMonitor::on_child_sigkill`]), or a
//!    process that vanished from pyinit's view of its descendants. That
//!    view is refreshed only when the cgroup reports pressure without a
//!    kill (the `max`/`oom` events come before `oom_kill` moves), never on
//!    a timer, and compared with a fresh read once `oom_kill` moved.
//! 4. After a pressure event (v1: the kill itself does not notify) or while
//!    a counted kill has no name yet (its victim is still exiting), the
//!    counters are read again a few times, 10 ms then doubling, for at most
//!    [`FOLLOW_UP`]; a kill still unnamed then is reported without a name.
//!
//! The driver calls [`OomMonitor::changed`] in its `select!`, then
//! [`OomMonitor::on_counter`]; and [`OomMonitor::on_child_sigkill`] for each
//! child reaped after a SIGKILL pyinit did not send. Both return the kills
//! as [`OomKill`] values; logging them is the driver's job.

pub mod cgroup;
pub mod victim;
pub mod watch;

use std::time::{Duration, Instant};

pub use crate::events::OomKill;
use cgroup::{Counters, MemCgroup, Summary, Unavailable, Version};
use victim::Snapshot;
use watch::{Mode, OomWatcher};

/// How long a counted kill may stay unnamed, and how long the counters are
/// re-read after a pressure event.
pub const FOLLOW_UP: Duration = Duration::from_secs(2);
const FIRST_STEP: Duration = Duration::from_millis(10);
/// Longest command line kept per process.
const CMD_MAX: usize = 200;

/// Re-reads due after an event.
#[derive(Debug, Clone, Copy)]
struct FollowUp {
    next: Instant,
    step: Duration,
    until: Instant,
}

/// Watches pyinit's memory cgroup for OOM kills.
pub struct OomMonitor {
    cg: MemCgroup,
    watcher: OomWatcher,
    last: Counters,
    snapshot: Snapshot,
    /// pyinit's pid as `/proc` shows it; `None` when `/proc` is not this
    /// pid namespace's (then only direct children can be named).
    me: Option<i32>,
    /// Kills counted and not named yet, and when the first of them was.
    unnamed: u64,
    unnamed_since: Option<Instant>,
    follow_up: Option<FollowUp>,
    total: u64,
    /// The limit as read at start, for [`OomMonitor::high_usage`].
    poll_limit: Option<u64>,
    /// The last wake-up was the kernel's notification (not a timer).
    notified: bool,
    /// Pids reported as OOM victims (the last few), for the final line.
    reported: Vec<i32>,
}

impl OomMonitor {
    /// Finds the cgroup and starts watching; `proc_is_ours` says whether
    /// `/proc` shows pyinit's pid namespace. Must run inside the tokio
    /// runtime. An error says why there is nothing to watch.
    pub fn start(proc_is_ours: bool) -> Result<OomMonitor, Unavailable> {
        let cg = cgroup::find()?;
        Self::start_in(cg, proc_is_ours)
    }

    /// As [`OomMonitor::start`], for a given cgroup directory.
    pub fn start_in(cg: MemCgroup, proc_is_ours: bool) -> Result<OomMonitor, Unavailable> {
        let last = cg.counters()?;
        let watcher = OomWatcher::new(&cg);
        let me = if proc_is_ours {
            crate::procs::self_pid_in_proc()
        } else {
            None
        };
        Ok(OomMonitor {
            poll_limit: cg.limit(),
            cg,
            watcher,
            last,
            snapshot: Snapshot::default(),
            me,
            unnamed: 0,
            unnamed_since: None,
            follow_up: None,
            total: 0,
            notified: false,
            reported: Vec::new(),
        })
    }

    /// The `-v` start-up facts.
    pub fn summary(&self) -> Summary {
        Summary {
            version: self.cg.version,
            dir: self.cg.dir.clone(),
            limit: self.cg.limit(),
            oom_group: self.cg.oom_group(),
            watch: self.watcher.describe(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.watcher.mode()
    }

    /// OOM kills counted since pyinit started.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether `pid` was reported as killed by the OOM killer.
    pub fn was_killed(&self, pid: i32) -> bool {
        self.reported.contains(&pid)
    }

    /// Resolves when the counters may have moved (or a re-read is due).
    pub async fn changed(&mut self) {
        let follow_up = self.follow_up.map(|f| f.next);
        self.notified = self.watcher.changed(follow_up).await;
    }

    /// Reads the counters after [`OomMonitor::changed`]; returns the kills
    /// that can be reported now. `name_of` gives the config name of a
    /// managed process's pid.
    pub fn on_counter(
        &mut self,
        now: Instant,
        name_of: &dyn Fn(i32) -> Option<String>,
    ) -> Vec<OomKill> {
        let Ok(c) = self.cg.counters() else {
            return Vec::new();
        };
        let moved = c.oom_kill.saturating_sub(self.last.oom_kill);
        // v1: every notification is pressure (under OOM, or a usage
        // threshold crossed); v2: `max`/`oom` moved.
        let pressure = c.pressure != self.last.pressure
            || (self.cg.version == Version::V1 && (c.pressure > 0 || self.notified))
            || self.high_usage();
        self.last = c;
        let mut out = Vec::new();
        if moved > 0 {
            self.count(now, moved);
        }
        // Idle (a poll, or an event that changed nothing): no read of /proc.
        if moved == 0 && !pressure && self.unnamed == 0 && self.follow_up.is_none() {
            return Vec::new();
        }
        let fresh = self.read_view();
        if self.unnamed > 0 {
            for seen in self.snapshot.vanished(&fresh) {
                if self.unnamed == 0 {
                    break;
                }
                self.snapshot.forget(seen.entry.pid);
                out.push(self.kill(
                    Some(seen.entry.pid),
                    name_of(seen.entry.pid),
                    Some(seen.cmd),
                ));
            }
        }
        // While a kill is unnamed the view from before it stays: a process
        // first seen after the kill cannot be its victim.
        if self.unnamed == 0 {
            self.snapshot.refresh(&fresh, command_line);
        }
        if self.unnamed > 0 && self.unnamed_since.is_some_and(|t| now >= t + FOLLOW_UP) {
            while self.unnamed > 0 {
                out.push(self.kill(None, None, None));
            }
        }
        // v2 notifies the kill itself; v1 only the pressure before it.
        self.plan_follow_up(
            now,
            moved == 0 && pressure && self.cg.version == Version::V1,
        );
        out
    }

    /// At exit: a last read of the counter; every kill not named yet is
    /// reported as it is (pyinit will not see more).
    pub fn finish(
        &mut self,
        now: Instant,
        name_of: &dyn Fn(i32) -> Option<String>,
    ) -> Vec<OomKill> {
        let mut out = self.on_counter(now, name_of);
        while self.unnamed > 0 {
            out.push(self.kill(None, None, None));
        }
        out
    }

    /// A child was reaped after a SIGKILL pyinit did not send: if the
    /// counter moved, it is an OOM victim. `process` is its config name
    /// (managed process), `cmd_hint` its command as configured (used when
    /// no read of `/proc` caught it alive).
    pub fn on_child_sigkill(
        &mut self,
        now: Instant,
        pid: i32,
        process: Option<String>,
        cmd_hint: Option<String>,
    ) -> Option<OomKill> {
        if let Ok(c) = self.cg.counters() {
            let moved = c.oom_kill.saturating_sub(self.last.oom_kill);
            self.last = c;
            if moved > 0 {
                self.count(now, moved);
            }
        }
        if self.unnamed == 0 {
            return None;
        }
        let cmd = self
            .snapshot
            .forget(pid)
            .map(|s| s.cmd)
            // Only its name was caught: the configured command says more.
            .filter(|c| !(c.is_empty() || (c.starts_with('[') && cmd_hint.is_some())))
            .or(cmd_hint);
        let kill = self.kill(Some(pid), process, cmd);
        self.plan_follow_up(now, false);
        Some(kill)
    }

    fn count(&mut self, now: Instant, n: u64) {
        self.total += n;
        self.unnamed += n;
        self.unnamed_since.get_or_insert(now);
    }

    fn kill(&mut self, pid: Option<i32>, process: Option<String>, cmd: Option<String>) -> OomKill {
        self.unnamed = self.unnamed.saturating_sub(1);
        if self.unnamed == 0 {
            self.unnamed_since = None;
        }
        if let Some(p) = pid {
            if self.reported.len() >= 64 {
                self.reported.remove(0);
            }
            self.reported.push(p);
        }
        OomKill {
            process,
            pid,
            cmd: cmd.filter(|c| !c.is_empty()),
            limit_bytes: self.cg.limit(),
            peak_bytes: self.cg.peak(),
        }
    }

    /// Re-reads: while a kill is unnamed, and after pressure without a kill.
    fn plan_follow_up(&mut self, now: Instant, pressure: bool) {
        if self.unnamed == 0 && !pressure {
            if self.follow_up.is_some_and(|f| now >= f.until) {
                self.follow_up = None;
            }
            if let Some(f) = &mut self.follow_up {
                f.step = (f.step * 2).min(Duration::from_millis(500));
                f.next = (now + f.step).min(f.until);
            }
            return;
        }
        let until = match self.unnamed_since {
            Some(t) => t + FOLLOW_UP,
            None => now + FOLLOW_UP,
        };
        match &mut self.follow_up {
            Some(f) if now < f.until => {
                if self.unnamed > 0 {
                    f.until = f.until.max(until);
                }
                f.step = (f.step * 2).min(Duration::from_millis(500));
                f.next = (now + f.step).min(f.until);
            }
            _ => {
                self.follow_up = Some(FollowUp {
                    next: now + FIRST_STEP,
                    step: FIRST_STEP,
                    until,
                })
            }
        }
    }

    /// Polling only (no notification): usage above half the limit counts
    /// as pressure, so that the view is fresh when a kill comes (the
    /// poll-mode stand-in for the v1 usage thresholds).
    fn high_usage(&self) -> bool {
        if self.watcher.mode() != Mode::Poll {
            return false;
        }
        match (self.poll_limit, self.cg.usage()) {
            (Some(limit), Some(usage)) => usage > limit / 2,
            _ => false,
        }
    }

    /// pyinit's descendants now (empty without a usable `/proc`).
    fn read_view(&self) -> Vec<victim::Entry> {
        let Some(me) = self.me else {
            return Vec::new();
        };
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let all: Vec<victim::Entry> = dir
            .filter_map(|d| {
                let pid: i32 = d.ok()?.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                victim::parse_stat(&stat)
            })
            .collect();
        victim::descendants(me, &all)
    }
}

/// `pid`'s command line, arguments joined by spaces. A process already
/// exiting has lost it (its memory is gone): then its name, `[comm]`, as
/// `ps` shows it, which an earlier read's full line replaces (see
/// [`Snapshot::refresh`]).
fn command_line(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let s = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).replace(|c: char| c.is_control(), " "))
        .collect::<Vec<_>>()
        .join(" ");
    if s.is_empty() {
        return std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_default();
    }
    if s.chars().count() > CMD_MAX {
        s.chars().take(CMD_MAX).collect::<String>() + "…"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct FakeV2(PathBuf);

    impl FakeV2 {
        fn new() -> FakeV2 {
            let dir = std::env::temp_dir().join(format!("pyinit-mon-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("memory.max"), "536870912\n").unwrap();
            std::fs::write(dir.join("memory.peak"), "535822336\n").unwrap();
            let f = FakeV2(dir);
            f.events(0, 0);
            f
        }

        fn events(&self, max: u64, oom_kill: u64) {
            let text = format!(
                "low 0\nhigh 0\nmax {max}\noom {oom_kill}\noom_kill {oom_kill}\noom_group_kill 0\n"
            );
            std::fs::write(self.0.join("memory.events"), text).unwrap();
        }
    }

    impl Drop for FakeV2 {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn kills_are_counted_named_or_reported_unnamed() {
        let fake = FakeV2::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let cg = MemCgroup {
            version: Version::V2,
            dir: fake.0.clone(),
        };
        let mut m = OomMonitor::start_in(cg, false).unwrap();
        let t0 = Instant::now();
        let none = |_: i32| None;
        // A SIGKILL with no OOM kill counted is not one.
        assert_eq!(m.on_child_sigkill(t0, 42, None, None), None);
        assert!(m.on_counter(t0, &none).is_empty());

        // Pressure, then the kill of pyinit's own child.
        fake.events(17, 0);
        assert!(m.on_counter(t0, &none).is_empty());
        fake.events(17, 1);
        let k = m
            .on_child_sigkill(
                t0,
                42,
                Some("worker".into()),
                Some("python worker.py".into()),
            )
            .unwrap();
        assert_eq!(
            k,
            OomKill {
                process: Some("worker".into()),
                pid: Some(42),
                cmd: Some("python worker.py".into()),
                limit_bytes: Some(512 << 20),
                peak_bytes: Some(535822336),
            }
        );
        assert!(m.was_killed(42));
        assert_eq!(m.total(), 1);

        // A kill pyinit cannot name (no /proc view): reported without a
        // name once the follow-up time is over, not before.
        fake.events(17, 2);
        assert!(m.on_counter(t0, &none).is_empty());
        let later = m.on_counter(t0 + FOLLOW_UP, &none);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].pid, None);
        assert_eq!(later[0].limit_bytes, Some(512 << 20));

        // At exit, whatever is counted is reported.
        fake.events(17, 3);
        assert_eq!(m.finish(t0 + FOLLOW_UP, &none).len(), 1);
        assert_eq!(m.total(), 3);
    }
}
