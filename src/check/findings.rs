//! The pure core of `pyinit check`: what was observed (the inner pyinit's
//! records and a `/proc` picture taken as the stop signal went out) in,
//! findings and a verdict out. No clock, no `/proc`, no processes: every
//! rule is unit-tested on synthetic facts.
//!
//! Times are offsets from the start of the run.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::records::{AppLine, Event, Record};
use crate::exit_status::Ended;
use crate::signals::names;

/// A zombie seen this long before the stop signal "stayed" one: pyinit and a
/// parent that waits reap within a moment.
const ZOMBIE_MIN: Duration = Duration::from_millis(100);
/// Output that arrived within this window after the signal, with nothing
/// before it, came out of a block buffer at exit.
const BURST: Duration = Duration::from_millis(50);
const TAIL: usize = 10;
/// Lines of shutdown errors quoted in one finding.
const ERROR_LINES: usize = 3;

/// `SigCgt`, `SigBlk` and `SigIgn` of `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigMasks {
    pub caught: u64,
    pub blocked: u64,
    pub ignored: u64,
}

fn bit(sig: i32) -> u64 {
    if (1..=64).contains(&sig) {
        1u64 << (sig - 1)
    } else {
        0
    }
}

impl SigMasks {
    /// A handler is installed for `sig`.
    pub fn catches(&self, sig: i32) -> bool {
        self.caught & bit(sig) != 0
    }

    /// Blocks or ignores `sig`.
    pub fn shuts_out(&self, sig: i32) -> bool {
        (self.blocked | self.ignored) & bit(sig) != 0
    }

    /// `sig` would end it at once: no handler, not blocked or ignored, and a
    /// default action that terminates.
    pub fn dies_of(&self, sig: i32) -> bool {
        let harmless = [
            libc::SIGCHLD,
            libc::SIGCONT,
            libc::SIGSTOP,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGURG,
            libc::SIGWINCH,
        ];
        !self.catches(sig) && !self.shuts_out(sig) && !harmless.contains(&sig)
    }
}

/// One process below pyinit, as `check` saw it in `/proc`.
#[derive(Debug, Clone, Default)]
pub struct ProcObs {
    /// As seen by pyinit (its PID namespace).
    pub pid: i32,
    /// Parent at the signal (pyinit's namespace); `None` when unknown.
    pub ppid: Option<i32>,
    pub cmd: String,
    pub first_seen: Duration,
    pub gone_at: Option<Duration>,
    pub alive_at_signal: bool,
    /// Its signal masks as the stop signal went out.
    pub masks: Option<SigMasks>,
    /// Intervals it was seen in Z state.
    pub zombie_spans: Vec<(Duration, Duration)>,
}

/// A process of the set, as configured.
#[derive(Debug, Clone)]
pub struct Managed {
    pub name: String,
    /// Exit codes that count as success besides 0.
    pub expect: Vec<i32>,
    pub oneshot: bool,
}

/// Everything observed during one run.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The signal `check` sent pyinit.
    pub signal: i32,
    /// What pyinit forwards for it (after `--rewrite`), when no event says.
    pub default_send: i32,
    pub grace: Duration,
    /// `--procfile`/`--config`: several named processes.
    pub multi: bool,
    pub managed: Vec<Managed>,
    pub ready: Result<Duration, String>,
    pub signalled_at: Option<Duration>,
    pub exited_at: Duration,
    /// pyinit's exit status; `None` when it did not exit in time.
    pub pyinit_status: Option<i32>,
    pub procs: Vec<ProcObs>,
    /// pyinit's pid in its own namespace.
    pub pyinit_pid: Option<i32>,
    pub records: Vec<(Duration, Record)>,
}

/// How bad a finding is; the verdict is the worst of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Worth knowing; does not change the verdict.
    Note,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }

    fn of(level: Level) -> Verdict {
        match level {
            Level::Note => Verdict::Pass,
            Level::Warn => Verdict::Warn,
            Level::Fail => Verdict::Fail,
        }
    }
}

/// One thing `check` found, with the advice that fits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Stable identifier (`work_cut_short`, `handled_then_reraised`, ...).
    pub kind: &'static str,
    pub level: Level,
    pub message: String,
    pub pids: Vec<i32>,
    /// Deduced from signal masks and timing, not from a reported status.
    pub inferred: bool,
    pub advice: Option<String>,
}

/// How one process ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcEnd {
    pub pid: i32,
    /// The process of the set it belongs to.
    pub name: Option<String>,
    pub cmd: String,
    pub ended: String,
    pub killed: bool,
    /// A process pyinit started (not one of its children).
    pub main: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Zombie {
    pub pid: i32,
    pub cmd: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OomKill {
    pub process: Option<String>,
    pub pid: Option<i32>,
    pub cmd: Option<String>,
    pub limit_bytes: Option<u64>,
    pub peak_bytes: Option<u64>,
}

/// The outcome: the verdict and everything the report shows.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub verdict: Verdict,
    pub reason: String,
    /// The stop signal pyinit sent the (first) main process.
    pub sent: i32,
    pub time_to_exit_s: Option<f64>,
    /// The main process's raw status (one process), or pyinit's (a set);
    /// -1 when pyinit did not exit in time.
    pub exit_status: i32,
    pub killed: bool,
    pub processes: Vec<ProcEnd>,
    pub zombies: Vec<Zombie>,
    pub oom_kills: Vec<OomKill>,
    pub line_buffered: bool,
    pub stdout_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
    pub findings: Vec<Finding>,
    pub advice: Vec<String>,
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the events say, indexed.
#[derive(Default)]
struct Seen {
    /// Managed pid -> name.
    managed: HashMap<i32, String>,
    /// Name -> the pid that ran when the signal went out (the last started).
    pid_of: HashMap<String, i32>,
    /// Managed pid -> (when, status, signal).
    exited: HashMap<i32, (Duration, i32, Option<i32>)>,
    reaped: HashMap<i32, (i32, Option<i32>)>,
    /// Pid -> signals pyinit sent it after the check's signal.
    got: HashMap<i32, Vec<i32>>,
    /// Name -> first stop signal pyinit sent that process.
    stop_sent: HashMap<String, i32>,
    leftovers: HashSet<i32>,
    /// Pid -> command line, of those killed at a deadline.
    victims: HashMap<i32, String>,
    killed_event: bool,
    /// When the first SIGKILL went out.
    killed_at: Option<Duration>,
    ooms: Vec<OomKill>,
}

fn index(facts: &Facts) -> Seen {
    let mut s = Seen::default();
    let after_signal = |at: Duration| facts.signalled_at.is_some_and(|sig| at >= sig);
    for (at, rec) in &facts.records {
        let Record::Event(ev) = rec else { continue };
        match ev {
            Event::Started { process, pid } => {
                s.managed.insert(*pid, process.clone());
                if !after_signal(*at) || !s.pid_of.contains_key(process) {
                    s.pid_of.insert(process.clone(), *pid);
                }
            }
            Event::Exited {
                pid,
                status,
                signal,
                ..
            } => {
                s.exited.insert(*pid, (*at, *status, *signal));
            }
            Event::Reaped {
                pid,
                status,
                signal,
            } => {
                s.reaped.insert(*pid, (*status, *signal));
            }
            Event::SignalSent {
                signal,
                process,
                pids,
                reason,
                ..
            } if after_signal(*at) => {
                for p in pids {
                    s.got.entry(*p).or_default().push(*signal);
                    if reason == "leftover" {
                        s.leftovers.insert(*p);
                    }
                }
                if let (Some(name), "stop" | "forward") = (process, reason.as_str()) {
                    s.stop_sent.entry(name.clone()).or_insert(*signal);
                }
            }
            Event::Killed { victims, .. } => {
                s.killed_event = true;
                s.killed_at.get_or_insert(*at);
                for v in victims {
                    s.victims.insert(v.pid, v.cmd.clone());
                }
            }
            Event::OomKill {
                process,
                pid,
                cmd,
                limit_bytes,
                peak_bytes,
            } => s.ooms.push(OomKill {
                process: process.clone(),
                pid: *pid,
                cmd: cmd.clone(),
                limit_bytes: *limit_bytes,
                peak_bytes: *peak_bytes,
            }),
            _ => {}
        }
    }
    // Without `started` events (a pyinit that does not write them), the one
    // main process is pyinit's first child.
    if s.managed.is_empty() && !facts.multi {
        let first = facts
            .procs
            .iter()
            .filter(|p| p.ppid.is_some() && p.ppid == facts.pyinit_pid)
            .min_by_key(|p| p.first_seen);
        if let (Some(p), Some(m)) = (first, facts.managed.first()) {
            s.managed.insert(p.pid, m.name.clone());
            s.pid_of.insert(m.name.clone(), p.pid);
        }
    }
    s
}

/// The pure analysis: facts in, findings and verdict out.
pub fn analyse(facts: &Facts) -> Analysis {
    Analyser::new(facts).run()
}

struct Analyser<'a> {
    f: &'a Facts,
    seen: Seen,
    procs: HashMap<i32, &'a ProcObs>,
    grace: String,
}

impl<'a> Analyser<'a> {
    fn new(f: &'a Facts) -> Self {
        Analyser {
            f,
            seen: index(f),
            procs: f.procs.iter().map(|p| (p.pid, p)).collect(),
            grace: humantime::format_duration(f.grace).to_string(),
        }
    }

    fn masks(&self, pid: i32) -> Option<SigMasks> {
        self.procs.get(&pid).and_then(|p| p.masks)
    }

    fn cmd(&self, pid: i32) -> String {
        self.procs
            .get(&pid)
            .map(|p| p.cmd.clone())
            .or_else(|| self.seen.victims.get(&pid).cloned())
            .unwrap_or_default()
    }

    /// `name (PID)` for a process of the set, `PID (cmd)` for another.
    fn who(&self, pid: i32) -> String {
        match self.seen.managed.get(&pid) {
            Some(name) => format!("{name} ({pid})"),
            None => format!("{pid} ({})", brief_cmd(&self.cmd(pid))),
        }
    }

    fn is_managed(&self, pid: i32) -> bool {
        self.seen.managed.contains_key(&pid)
    }

    /// Ancestors below pyinit, nearest first (the managed one included).
    fn ancestors(&self, pid: i32) -> Vec<i32> {
        let mut out = Vec::new();
        let mut cur = pid;
        while !self.is_managed(cur) {
            let Some(pp) = self.procs.get(&cur).and_then(|p| p.ppid) else {
                break;
            };
            if out.contains(&pp) || !self.procs.contains_key(&pp) && !self.is_managed(pp) {
                break;
            }
            out.push(pp);
            cur = pp;
        }
        out
    }

    /// The managed process `pid` belongs to.
    fn owner(&self, pid: i32) -> Option<i32> {
        if self.is_managed(pid) {
            return Some(pid);
        }
        self.ancestors(pid)
            .into_iter()
            .find(|p| self.is_managed(*p))
    }

    fn name_of(&self, pid: i32) -> Option<String> {
        self.owner(pid)
            .and_then(|o| self.seen.managed.get(&o).cloned())
    }

    /// The stop signal pyinit sent the managed process `name`.
    fn sent_to(&self, name: &str) -> i32 {
        self.seen
            .stop_sent
            .get(name)
            .copied()
            .unwrap_or(self.f.default_send)
    }

    /// The stop signal meant for the process tree of `pid`.
    fn stop_signal_for(&self, pid: i32) -> i32 {
        self.name_of(pid)
            .map_or(self.f.default_send, |n| self.sent_to(&n))
    }

    fn deadline(&self) -> Option<Duration> {
        let sig = self.f.signalled_at?;
        Some(self.seen.killed_at.unwrap_or(sig + self.f.grace))
    }

    /// Whether `pid` died of `sig`, and whether that is inferred: a status
    /// pyinit reaped says so; a process reaped by its own parent is not in
    /// the events, so it died of `sig` if pyinit sent it `sig`, nothing
    /// shielded it, and it vanished before the deadline.
    fn died_of(&self, pid: i32, sig: i32) -> Option<bool> {
        if let Some(&(_, s)) = self.seen.reaped.get(&pid) {
            return (s == Some(sig)).then_some(false);
        }
        if let Some(&(_, _, s)) = self.seen.exited.get(&pid) {
            return (s == Some(sig)).then_some(false);
        }
        if self.seen.victims.contains_key(&pid) {
            return None;
        }
        let got = self.seen.got.get(&pid).is_some_and(|g| g.contains(&sig));
        let shielded = self.masks(pid).is_none_or(|m| !m.dies_of(sig));
        let gone = self.procs.get(&pid).and_then(|p| p.gone_at);
        let in_time = match (gone, self.deadline()) {
            (Some(g), Some(d)) => g < d,
            _ => false,
        };
        (got && !shielded && in_time).then_some(true)
    }

    fn after_signal(&self, pid: i32) -> String {
        match (
            self.procs.get(&pid).and_then(|p| p.gone_at),
            self.f.signalled_at,
        ) {
            (Some(g), Some(s)) if g >= s => format!(" after {:.3}s", secs(g - s)),
            _ => String::new(),
        }
    }

    fn ended(&self, pid: i32) -> (String, bool) {
        if self.seen.victims.contains_key(&pid) {
            return (
                format!("killed at the {} deadline (SIGKILL)", self.grace),
                true,
            );
        }
        let after = self.after_signal(pid);
        let status = self
            .seen
            .exited
            .get(&pid)
            .map(|&(_, st, sig)| (st, sig))
            .or_else(|| self.seen.reaped.get(&pid).copied())
            .or_else(|| {
                self.is_managed(pid)
                    .then(|| self.status_of(pid).map(|st| (st, None)))
                    .flatten()
            });
        let text = match status {
            Some((st, sig)) => describe(st, sig) + &after,
            None => {
                let sig = self.stop_signal_for(pid);
                match self.died_of(pid, sig) {
                    Some(_) => format!(
                        "died of {}{after} (inferred: no handler; reaped by its parent)",
                        names::name(sig)
                    ),
                    None => format!("exited{after} (reaped by its parent)"),
                }
            }
        };
        if self.seen.leftovers.contains(&pid) {
            (format!("{text}; outlived the main process"), false)
        } else {
            (text, false)
        }
    }

    fn processes(&self) -> Vec<ProcEnd> {
        let sig_at = self.f.signalled_at;
        let mut out: Vec<ProcEnd> = self
            .f
            .procs
            .iter()
            .filter(|p| {
                sig_at.is_none_or(|s| p.first_seen <= s) && (p.alive_at_signal || sig_at.is_none())
            })
            .map(|p| {
                let (ended, killed) = self.ended(p.pid);
                ProcEnd {
                    pid: p.pid,
                    name: self.name_of(p.pid),
                    cmd: p.cmd.clone(),
                    ended,
                    killed,
                    main: self.is_managed(p.pid),
                }
            })
            .collect();
        out.sort_by_key(|p| (!p.main, p.pid));
        out
    }

    fn app_lines(&self) -> Vec<(Duration, &'a AppLine)> {
        self.f
            .records
            .iter()
            .filter_map(|(at, r)| match r {
                Record::App(l) => Some((*at, l)),
                _ => None,
            })
            .collect()
    }

    /// Whole lines per stream (partial pieces joined), prefixed by the
    /// process name with several processes.
    fn tails(&self) -> (Vec<String>, Vec<String>) {
        let mut out = (Vec::new(), Vec::new());
        let mut open: HashMap<(i32, bool), String> = HashMap::new();
        for (_, l) in self.app_lines() {
            let buf = open.entry((l.pid, l.stderr)).or_default();
            buf.push_str(&l.line);
            if l.partial {
                continue;
            }
            let line = std::mem::take(buf);
            let line = if self.f.multi {
                format!("{} | {line}", l.name)
            } else {
                line
            };
            if l.stderr {
                out.1.push(line);
            } else {
                out.0.push(line);
            }
        }
        let cut = |v: Vec<String>| v[v.len().saturating_sub(TAIL)..].to_vec();
        (cut(out.0), cut(out.1))
    }

    fn line_buffered(&self) -> bool {
        let Some(sig) = self.f.signalled_at else {
            return true;
        };
        let lines = self.app_lines();
        let before = lines.iter().filter(|(at, _)| *at < sig).count();
        let after: Vec<Duration> = lines
            .iter()
            .filter(|(at, _)| *at >= sig)
            .map(|(at, _)| *at)
            .collect();
        let burst = match (after.first(), after.last()) {
            (Some(f), Some(l)) => *l - *f < BURST,
            _ => false,
        };
        !(before == 0 && after.len() >= 2 && burst)
    }

    fn zombies(&self) -> Vec<Zombie> {
        let until = self.f.signalled_at.unwrap_or(Duration::MAX);
        self.f
            .procs
            .iter()
            .filter_map(|p| {
                let longest = p
                    .zombie_spans
                    .iter()
                    .filter(|(from, _)| *from < until)
                    .map(|&(from, to)| to.min(until).saturating_sub(from))
                    .max()?;
                (longest >= ZOMBIE_MIN).then(|| Zombie {
                    pid: p.pid,
                    cmd: p.cmd.clone(),
                    seconds: secs(longest),
                })
            })
            .collect()
    }

    /// The managed processes that ran when the signal went out.
    fn running_managed(&self) -> Vec<(String, i32)> {
        let mut out: Vec<(String, i32)> = self
            .seen
            .pid_of
            .iter()
            .filter(|(_, pid)| {
                let ended_before = self
                    .seen
                    .exited
                    .get(pid)
                    .is_some_and(|&(at, _, _)| self.f.signalled_at.is_none_or(|s| at < s));
                !ended_before
            })
            .map(|(n, p)| (n.clone(), *p))
            .collect();
        // Configuration order, then pid.
        out.sort_by_key(|(n, p)| {
            (
                self.f
                    .managed
                    .iter()
                    .position(|m| &m.name == n)
                    .unwrap_or(usize::MAX),
                *p,
            )
        });
        out
    }

    fn expected(&self, name: &str, status: i32) -> bool {
        status == 0
            || self
                .f
                .managed
                .iter()
                .find(|m| m.name == name)
                .is_some_and(|m| m.expect.contains(&status))
    }

    /// The raw status of a managed process, if known.
    fn status_of(&self, pid: i32) -> Option<i32> {
        self.seen
            .exited
            .get(&pid)
            .map(|&(_, st, _)| st)
            .or(if self.f.multi {
                None
            } else {
                self.f.pyinit_status
            })
    }

    fn run(self) -> Analysis {
        let f = self.f;
        let running = self.running_managed();
        let first_main = running.first().map(|(_, p)| *p);
        let sent = running
            .first()
            .map_or(f.default_send, |(n, _)| self.sent_to(n));
        let killed = self.seen.killed_event || f.pyinit_status.is_none();
        let time_to_exit = f.signalled_at.map(|s| secs(f.exited_at.saturating_sub(s)));
        let exit_status = if f.multi {
            f.pyinit_status.unwrap_or(-1)
        } else {
            first_main
                .and_then(|p| self.status_of(p))
                .or(f.pyinit_status)
                .unwrap_or(-1)
        };

        let mut findings = Vec::new();
        let (base, reason) = self.base_verdict(&running, time_to_exit, &mut findings);
        self.signal_findings(&running, &mut findings);
        self.killed_findings(&mut findings);
        self.oom_findings(&mut findings);
        self.output_findings(&mut findings);
        let zombies = self.zombies();
        if !zombies.is_empty() {
            findings.push(Finding {
                kind: "zombies",
                level: Level::Note,
                message: format!(
                    "{} stayed zombies before the stop signal",
                    plural(zombies.len(), "process", "processes")
                ),
                pids: zombies.iter().map(|z| z.pid).collect(),
                inferred: false,
                advice: Some(
                    "The app starts children it never waits for (subprocess.Popen without \
                     wait()/communicate(), os.fork without os.waitpid). pyinit can reap them \
                     only after their parent exits."
                        .into(),
                ),
            });
        }
        let leftovers: Vec<i32> = {
            let mut v: Vec<i32> = self.seen.leftovers.iter().copied().collect();
            v.sort_unstable();
            v
        };
        if !leftovers.is_empty() {
            let n = leftovers.len();
            findings.push(Finding {
                kind: "outlived_main",
                level: Level::Note,
                message: format!(
                    "{} outlived the main process",
                    plural(n, "process", "processes")
                ),
                pids: leftovers,
                inferred: false,
                advice: Some(format!(
                    "{} outlived the main process (daemonised or start_new_session=True); \
                     pyinit stopped {}, but the app should stop its own children on shutdown.",
                    plural(n, "process", "processes"),
                    if n == 1 { "it" } else { "them" }
                )),
            });
        }
        let line_buffered = self.line_buffered();
        if !line_buffered {
            findings.push(Finding {
                kind: "block_buffered",
                level: Level::Note,
                message: "output arrived all at once at exit".into(),
                pids: Vec::new(),
                inferred: false,
                advice: Some(
                    "Output arrived all at once at exit: stdout is block-buffered, so the last \
                     lines before a crash are lost. Keep pyinit's default PYTHONUNBUFFERED=1 (no \
                     --no-python-env), or use print(..., flush=True) / logging."
                        .into(),
                ),
            });
        }

        let worst = findings.iter().map(|x| x.level).max();
        let (verdict, reason) = match worst {
            Some(l) if Verdict::of(l) as u8 > base as u8 => {
                let first = findings
                    .iter()
                    .find(|x| x.level == l)
                    .map(|x| x.message.clone());
                (Verdict::of(l), first.unwrap_or(reason))
            }
            _ => (base, reason),
        };
        let mut advice: Vec<String> = Vec::new();
        for a in findings.iter().filter_map(|x| x.advice.clone()) {
            if !advice.contains(&a) {
                advice.push(a);
            }
        }
        let (stdout_tail, stderr_tail) = self.tails();
        Analysis {
            verdict,
            reason,
            sent,
            time_to_exit_s: time_to_exit,
            exit_status,
            killed,
            processes: self.processes(),
            zombies,
            oom_kills: self.seen.ooms.clone(),
            line_buffered,
            stdout_tail,
            stderr_tail,
            findings,
            advice,
        }
    }

    /// The verdict from how the main process(es) ended, as the SPEC defines
    /// it, before the findings.
    fn base_verdict(
        &self,
        running: &[(String, i32)],
        time_to_exit: Option<f64>,
        findings: &mut Vec<Finding>,
    ) -> (Verdict, String) {
        let f = self.f;
        if let Err(e) = &f.ready {
            findings.push(Finding {
                kind: "never_ready",
                level: Level::Fail,
                message: format!("never became ready ({e})"),
                pids: Vec::new(),
                inferred: false,
                advice: Some(
                    "It was never ready: check the readiness option (--ready-line matches each \
                     output line; --ready-port connects to 127.0.0.1), or raise --ready-timeout."
                        .into(),
                ),
            });
            return (Verdict::Fail, format!("never became ready ({e})"));
        }
        let Some(_) = f.signalled_at else {
            let st = f
                .pyinit_status
                .map_or("unknown".to_string(), |s| s.to_string());
            return (
                Verdict::Fail,
                format!("exited by itself before the stop signal, with status {st}"),
            );
        };
        let Some(_) = f.pyinit_status else {
            return (Verdict::Fail, "pyinit did not exit in time".into());
        };
        if self.seen.killed_event {
            let n = self.seen.victims.len().max(1);
            return (
                Verdict::Fail,
                format!(
                    "needed SIGKILL: {} still running when the {} grace period ran out",
                    if n == 1 {
                        "1 process was".to_string()
                    } else {
                        format!("{n} processes were")
                    },
                    self.grace
                ),
            );
        }
        let mut verdict = Verdict::Pass;
        let mut reason = None;
        for (name, pid) in running {
            let sig = self.sent_to(name);
            let label = if f.multi {
                format!("{name}: ")
            } else {
                String::new()
            };
            let Some(status) = self.status_of(*pid) else {
                continue;
            };
            if self.expected(name, status) {
                continue;
            }
            let (v, r) = if status == 128 + sig || status == 128 + f.signal {
                (
                    Verdict::Warn,
                    if self.masks(*pid).is_some_and(|m| m.catches(status - 128)) {
                        format!(
                            "{label}handled {} and then died of it (re-raised)",
                            names::name(status - 128)
                        )
                    } else {
                        format!(
                            "{label}died of {} itself (no handler ran to completion)",
                            names::name(status - 128)
                        )
                    },
                )
            } else {
                let e = if status > 128 {
                    Ended::Signaled(status - 128)
                } else {
                    Ended::Exited(status)
                };
                if (1..128).contains(&status) {
                    findings.push(Finding {
                        kind: "other_status",
                        level: Level::Fail,
                        message: format!(
                            "{label}exited with status {status} after {}",
                            names::name(sig)
                        ),
                        pids: vec![*pid],
                        inferred: false,
                        advice: Some(format!(
                            "It handled {} but exited with status {status}; if that is its \
                             normal stop status, pass -e {status}.",
                            names::name(sig)
                        )),
                    });
                }
                (
                    Verdict::Fail,
                    format!("{label}{} after {}", e.describe(), names::name(sig)),
                )
            };
            if v as u8 > verdict as u8 {
                verdict = v;
                reason = Some(r);
            }
        }
        let reason = reason.unwrap_or_else(|| {
            let t = time_to_exit.unwrap_or(0.0);
            let signal = names::name(f.signal);
            match running {
                [(_, pid)] if !f.multi => {
                    let st = self.status_of(*pid).unwrap_or(0);
                    format!("exited with status {st} {t:.3}s after {signal}")
                }
                [] => format!(
                    "exited with status {} {t:.3}s after {signal}",
                    f.pyinit_status.unwrap_or(0)
                ),
                _ => format!(
                    "{} exited with an expected status {t:.3}s after {signal}",
                    if running.len() == 1 {
                        "the process".to_string()
                    } else {
                        format!("all {} processes", running.len())
                    }
                ),
            }
        });
        (verdict, reason)
    }

    /// (a) work cut short and (b) handled-then-re-raised / unhandled deaths.
    fn signal_findings(&self, running: &[(String, i32)], findings: &mut Vec<Finding>) {
        let f = self.f;
        if f.signalled_at.is_none() {
            return;
        }
        for (name, pid) in running {
            let sig = self.sent_to(name);
            let Some(status) = self
                .seen
                .exited
                .get(pid)
                .map(|&(_, st, _)| st)
                .or(if f.multi { None } else { f.pyinit_status })
            else {
                continue;
            };
            if self.expected(name, status) || status != 128 + sig {
                continue;
            }
            let who = self.who(*pid);
            let sname = names::name(sig);
            match self.masks(*pid).map(|m| m.catches(sig)) {
                Some(true) => findings.push(Finding {
                    kind: "handled_then_reraised",
                    level: Level::Warn,
                    message: format!(
                        "{who} has a handler for {sname} and still died of it: it handled the \
                         signal and re-raised it (as uvicorn does), so its cleanup ran"
                    ),
                    pids: vec![*pid],
                    inferred: false,
                    advice: Some(format!(
                        "{who} stops cleanly and then re-raises {sname} on purpose: no handler \
                         is missing. Pass -e {status} so that this exit counts as success."
                    )),
                }),
                caught => findings.push(Finding {
                    kind: "died_of_stop_signal",
                    level: Level::Warn,
                    message: format!(
                        "{who} died of {sname}{}",
                        if caught.is_some() {
                            " without handling it"
                        } else {
                            ""
                        }
                    ),
                    pids: vec![*pid],
                    inferred: false,
                    advice: Some(format!(
                        "{who} died of {sname} without handling it: `finally` blocks and atexit \
                         handlers did not run. Handle it (signal.signal(signal.{sname}, lambda \
                         *_: sys.exit(0))), or run pyinit with -r {}:INT for a \
                         KeyboardInterrupt; if dying of the signal is fine, pass -e {status}.",
                        sname.trim_start_matches("SIG")
                    )),
                }),
            }
        }
        // (a): children that pyinit signalled directly although their
        // parent handles that signal, and that died of it.
        let mut cut: Vec<(i32, i32, i32, bool)> = Vec::new();
        for p in &f.procs {
            if self.is_managed(p.pid) || !p.alive_at_signal {
                continue;
            }
            let sig = self.stop_signal_for(p.pid);
            let Some(parent) = p.ppid else { continue };
            let parent_catches = self.masks(parent).is_some_and(|m| m.catches(sig));
            let direct = self.seen.got.get(&p.pid).is_some_and(|g| g.contains(&sig))
                && !self.seen.leftovers.contains(&p.pid);
            if !parent_catches || !direct {
                continue;
            }
            if let Some(inferred) = self.died_of(p.pid, sig) {
                cut.push((p.pid, parent, sig, inferred));
            }
        }
        if !cut.is_empty() {
            let sig = cut[0].2;
            let sname = names::name(sig);
            let inferred = cut.iter().any(|c| c.3);
            let parents: Vec<i32> = {
                let mut v: Vec<i32> = cut.iter().map(|c| c.1).collect();
                v.dedup();
                v
            };
            let parent_text = parents
                .iter()
                .map(|p| self.who(*p))
                .collect::<Vec<_>>()
                .join(", ");
            findings.push(Finding {
                kind: "work_cut_short",
                level: Level::Warn,
                message: format!(
                    "{} died of {sname} from pyinit although {} {} handles {sname} and stops \
                     {} itself: whatever {} doing was cut short{}",
                    plural(cut.len(), "child", "children"),
                    if parents.len() == 1 {
                        "its parent"
                    } else {
                        "their parents"
                    },
                    parent_text,
                    if cut.len() == 1 { "it" } else { "them" },
                    if cut.len() == 1 {
                        "it was"
                    } else {
                        "they were"
                    },
                    if inferred {
                        " (inferred: no handler, and gone before the deadline; reaped by the \
                         parent, so pyinit saw no status)"
                    } else {
                        ""
                    }
                ),
                pids: cut.iter().map(|c| c.0).collect(),
                inferred,
                advice: Some(format!(
                    "Use the default --signal-scope auto instead of group (-g): pyinit then \
                     sends {sname} only to processes whose parents do not handle it, and a \
                     parent that does (celery, gunicorn) stops its workers in order."
                )),
            });
        }
    }

    /// (c) and the other ways a process ended up needing SIGKILL.
    fn killed_findings(&self, findings: &mut Vec<Finding>) {
        if self.seen.victims.is_empty() {
            return;
        }
        let mut victims: Vec<i32> = self.seen.victims.keys().copied().collect();
        victims.sort_unstable();
        // Children that never got the signal, grouped by the nearest ancestor
        // that catches it.
        let mut unsent: HashMap<i32, Vec<i32>> = HashMap::new();
        let mut scope_main: Vec<i32> = Vec::new();
        let mut survived: Vec<i32> = Vec::new();
        let mut mains: Vec<i32> = Vec::new();
        for &v in &victims {
            if self.is_managed(v) {
                mains.push(v);
                continue;
            }
            if self.seen.leftovers.contains(&v) {
                continue;
            }
            let sig = self.stop_signal_for(v);
            if self.seen.got.get(&v).is_some_and(|g| !g.is_empty()) {
                survived.push(v);
                continue;
            }
            match self
                .ancestors(v)
                .into_iter()
                .find(|a| self.masks(*a).is_some_and(|m| m.catches(sig)))
            {
                Some(a) => unsent.entry(a).or_default().push(v),
                None => scope_main.push(v),
            }
        }
        let mut handlers: Vec<i32> = unsent.keys().copied().collect();
        handlers.sort_unstable();
        for h in &handlers {
            let kids = &unsent[h];
            let sig = self.stop_signal_for(*h);
            let sname = names::name(sig);
            let shut_out: Vec<i32> = kids
                .iter()
                .copied()
                .filter(|k| self.masks(*k).is_some_and(|m| m.shuts_out(sig)))
                .collect();
            let who = self.who(*h);
            let advice = if shut_out.len() == kids.len() {
                format!(
                    "{who} handles {sname} but neither stops its children nor passes the signal \
                     on, and they ignore or block {sname}, so --signal-scope group would not help \
                     either: {who}'s handler must stop them (another signal, or SIGKILL after \
                     its own timeout) and wait for them."
                )
            } else {
                format!(
                    "{who} handles {sname} but its children never got it: run with \
                     --signal-scope group (-g) so that every process of the group gets \
                     {sname}, or make the handler pass it on (os.kill(child.pid, \
                     signal.{sname})) and wait for them."
                )
            };
            findings.push(Finding {
                kind: "children_never_signalled",
                level: Level::Fail,
                message: format!(
                    "{who} handles {sname}, its {} never got it and {} killed at the {} deadline",
                    plural(kids.len(), "child", "children"),
                    if kids.len() == 1 { "was" } else { "were" },
                    self.grace
                ),
                pids: kids.clone(),
                inferred: false,
                advice: Some(advice),
            });
        }
        if !scope_main.is_empty() {
            findings.push(Finding {
                kind: "children_never_signalled",
                level: Level::Fail,
                message: format!(
                    "{} never got the stop signal and {} killed at the {} deadline",
                    plural(scope_main.len(), "child process", "child processes"),
                    if scope_main.len() == 1 { "was" } else { "were" },
                    self.grace
                ),
                pids: scope_main,
                inferred: false,
                advice: Some(
                    "With --signal-scope main (-c) only the main process gets the stop signal, \
                     so it must stop its workers itself; the default --signal-scope auto sends \
                     it to every process whose parent does not handle it."
                        .into(),
                ),
            });
        }
        if !survived.is_empty() {
            let sig = self.stop_signal_for(survived[0]);
            let sname = names::name(sig);
            let ignoring: Vec<String> = survived
                .iter()
                .filter(|p| self.masks(**p).is_some_and(|m| m.shuts_out(sig)))
                .map(|p| self.who(*p))
                .collect();
            findings.push(Finding {
                kind: "children_ignored_signal",
                level: Level::Fail,
                message: format!(
                    "{} got {sname} and did not exit before the {} deadline{}",
                    plural(survived.len(), "child process", "child processes"),
                    self.grace,
                    if ignoring.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} ignore or block it)", ignoring.join(", "))
                    }
                ),
                pids: survived,
                inferred: false,
                advice: Some(format!(
                    "Child processes ignored {sname} until the deadline: make workers handle \
                     {sname} and exit, or have the main process stop and wait for them."
                )),
            });
        }
        for m in mains {
            // Already explained by children that never got the signal.
            if handlers.iter().any(|h| self.owner(*h) == Some(m)) {
                continue;
            }
            let name = self.seen.managed.get(&m).cloned().unwrap_or_default();
            let sig = self.sent_to(&name);
            let sname = names::name(sig);
            let who = self.who(m);
            let (message, advice) = if self.masks(m).is_some_and(|x| x.catches(sig)) {
                (
                    format!(
                        "{who} handles {sname} but did not exit within {}",
                        self.grace
                    ),
                    format!(
                        "{who} has a handler for {sname} that does not end it in time: the \
                         handler must make it exit (sys.exit, or make the main loop return) \
                         within the grace period, or raise --grace if the shutdown is \
                         legitimately long."
                    ),
                )
            } else {
                (
                    format!("{who} did not exit within {} of {sname}", self.grace),
                    format!(
                        "{who} did not exit within {} of {sname}. Install a handler that shuts \
                         down and exits (signal.signal(signal.{sname}, handler)); a script that \
                         already cleans up on Ctrl-C can run under `pyinit -r {}:INT` to get a \
                         KeyboardInterrupt instead.",
                        self.grace,
                        sname.trim_start_matches("SIG")
                    ),
                )
            };
            findings.push(Finding {
                kind: "main_killed",
                level: Level::Fail,
                message,
                pids: vec![m],
                inferred: false,
                advice: Some(advice),
            });
        }
    }

    /// (d) OOM kills during the run.
    fn oom_findings(&self, findings: &mut Vec<Finding>) {
        for o in &self.seen.ooms {
            let who = match (&o.process, o.pid, &o.cmd) {
                (_, Some(pid), Some(cmd)) => format!("{pid} ({cmd})"),
                (Some(name), Some(pid), None) => format!("{name} ({pid})"),
                (Some(name), None, _) => name.clone(),
                (None, Some(pid), None) => pid.to_string(),
                _ => "a process".to_string(),
            };
            let mib = |b: Option<u64>| b.map(|b| format!("{} MiB", b / (1024 * 1024)));
            let limits = match (mib(o.limit_bytes), mib(o.peak_bytes)) {
                (Some(l), Some(p)) => format!(" (memory limit {l}, peak {p})"),
                (Some(l), None) => format!(" (memory limit {l})"),
                _ => String::new(),
            };
            findings.push(Finding {
                kind: "oom_kill",
                level: Level::Warn,
                message: format!("{who} was killed by the kernel's OOM killer{limits}"),
                pids: o.pid.into_iter().collect(),
                inferred: false,
                advice: Some(
                    "A process was killed for lack of memory (it dies of SIGKILL, exit 137): \
                     raise the container's memory limit or make the app use less (fewer \
                     workers, gunicorn --max-requests to recycle leaky workers)."
                        .into(),
                ),
            });
        }
    }

    /// (f) error lines the app logged while it stopped.
    fn output_findings(&self, findings: &mut Vec<Finding>) {
        let Some(sig) = self.f.signalled_at else {
            return;
        };
        let re = error_line_regex();
        let errors: Vec<&AppLine> = self
            .app_lines()
            .into_iter()
            .filter(|(at, l)| *at >= sig && re.is_match(&l.line))
            .map(|(_, l)| l)
            .collect();
        if errors.is_empty() {
            return;
        }
        let quoted: Vec<String> = errors
            .iter()
            .take(ERROR_LINES)
            .map(|l| format!("\"{}\"", l.line.chars().take(200).collect::<String>()))
            .collect();
        // gunicorn: "Worker (pid:4) was sent SIGTERM!"; celery: "Process
        // 'ForkPoolWorker-1' pid:6 exited with 'signal 15 (SIGTERM)'".
        let worker_died = errors
            .iter()
            .any(|l| l.line.contains("was sent SIG") || l.line.contains("exited with 'signal"));
        let advice = if worker_died {
            "Workers died of a signal while their master stopped them: they got the stop signal \
             directly from pyinit on top of their master's (gunicorn < 27 logs each as an \
             error; celery's pool processes die mid-task). Use the default --signal-scope auto \
             (not group, -g), so that only the master, which handles it, gets the signal."
                .to_string()
        } else {
            "The app logged errors while it stopped: read them; they often mean that work was \
             cut short or a resource was closed under a running task."
                .to_string()
        };
        findings.push(Finding {
            kind: "shutdown_errors",
            level: Level::Warn,
            message: format!(
                "the app logged {} while it stopped: {}{}",
                plural(errors.len(), "error line", "error lines"),
                quoted.join(", "),
                if errors.len() > ERROR_LINES {
                    ", ..."
                } else {
                    ""
                }
            ),
            pids: {
                let mut v: Vec<i32> = errors.iter().map(|l| l.pid).collect();
                v.dedup();
                v
            },
            inferred: false,
            advice: Some(advice),
        });
    }
}

/// Lines that log an error: `[ERROR]` (gunicorn), `ERROR:` (logging's
/// default format), CRITICAL/FATAL, a traceback, or a JSON logger's level.
fn error_line_regex() -> regex_lite::Regex {
    // A constant pattern; it compiles.
    regex_lite::Regex::new(
        r#"\b(ERROR|CRITICAL|FATAL)\b|^Traceback \(most recent call last\)|"(level|levelname|severity)"\s*:\s*"(?i:error|critical|fatal)""#,
    )
    .expect("constant regex")
}

/// A command line for a sentence: the program's base name and the start
/// of its arguments.
fn brief_cmd(cmd: &str) -> String {
    let (prog, args) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let prog = prog.rsplit('/').next().unwrap_or(prog);
    let whole = if args.is_empty() {
        prog.to_string()
    } else {
        format!("{prog} {args}")
    };
    if whole.chars().count() > 50 {
        whole.chars().take(50).collect::<String>() + "…"
    } else {
        whole
    }
}

fn describe(status: i32, signal: Option<i32>) -> String {
    match signal {
        Some(n) => Ended::Signaled(n).describe(),
        None if status > 128 => Ended::Signaled(status - 128).describe(),
        None => Ended::Exited(status).describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::records::Victim;

    const TERM: i32 = libc::SIGTERM;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Signal masks: `catches` TERM, or `ignores` it, or neither.
    fn masks(catches: bool, ignores: bool) -> Option<SigMasks> {
        Some(SigMasks {
            caught: if catches { bit(TERM) } else { 0 },
            blocked: 0,
            ignored: if ignores { bit(TERM) } else { 0 },
        })
    }

    fn proc_(pid: i32, ppid: i32, m: Option<SigMasks>, gone_ms: u64) -> ProcObs {
        ProcObs {
            pid,
            ppid: Some(ppid),
            cmd: format!("python3 proc{pid}.py"),
            first_seen: ms(100),
            gone_at: Some(ms(gone_ms)),
            alive_at_signal: true,
            masks: m,
            zombie_spans: Vec::new(),
        }
    }

    /// One main process `app` (pid 2) under pyinit (pid 1), signalled at 1 s.
    fn facts(procs: Vec<ProcObs>, events: Vec<(u64, Event)>, status: i32) -> Facts {
        let mut records = vec![(
            ms(50),
            Record::Event(Event::Started {
                process: "app".into(),
                pid: 2,
            }),
        )];
        records.extend(events.into_iter().map(|(t, e)| (ms(t), Record::Event(e))));
        Facts {
            signal: TERM,
            default_send: TERM,
            grace: Duration::from_secs(9),
            multi: false,
            managed: vec![Managed {
                name: "app".into(),
                expect: Vec::new(),
                oneshot: false,
            }],
            ready: Ok(ms(500)),
            signalled_at: Some(ms(1000)),
            exited_at: ms(1500),
            pyinit_status: Some(status),
            procs,
            pyinit_pid: Some(1),
            records,
        }
    }

    fn sent(at: u64, pids: &[i32], skipped: &[i32]) -> (u64, Event) {
        (
            at,
            Event::SignalSent {
                signal: TERM,
                process: Some("app".into()),
                pids: pids.to_vec(),
                skipped: skipped.to_vec(),
                reason: "stop".into(),
            },
        )
    }

    fn exited(at: u64, pid: i32, status: i32) -> (u64, Event) {
        (
            at,
            Event::Exited {
                process: "app".into(),
                pid,
                status,
                signal: (status > 128).then_some(status - 128),
            },
        )
    }

    fn kinds(a: &Analysis) -> Vec<&'static str> {
        a.findings.iter().map(|f| f.kind).collect()
    }

    fn all_advice(a: &Analysis) -> String {
        a.advice.join("\n")
    }

    #[test]
    fn clean_exit_passes_with_nothing_to_say() {
        let f = facts(
            vec![proc_(2, 1, masks(true, false), 1100)],
            vec![sent(1001, &[2], &[]), exited(1100, 2, 0)],
            0,
        );
        let a = analyse(&f);
        assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
        assert!(a.reason.starts_with("exited with status 0"), "{}", a.reason);
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        assert_eq!(a.processes[0].ended, "exited with status 0 after 0.100s");
    }

    /// celery under `-g`: the pool processes (no TERM handler) got TERM from
    /// pyinit while their parent handles it, and vanished at once.
    #[test]
    fn children_killed_by_a_direct_stop_signal_are_work_cut_short() {
        let procs = vec![
            proc_(2, 1, masks(true, false), 7000),
            proc_(3, 2, masks(false, false), 1003),
            proc_(4, 2, masks(false, false), 1003),
        ];
        let f = facts(
            procs.clone(),
            vec![sent(1001, &[2, 3, 4], &[]), exited(7000, 2, 0)],
            0,
        );
        let a = analyse(&f);
        assert_eq!(a.verdict, Verdict::Warn, "{a:?}");
        assert_eq!(kinds(&a), ["work_cut_short"]);
        let w = &a.findings[0];
        assert_eq!(w.pids, [3, 4]);
        assert!(w.inferred);
        assert!(w.message.contains("inferred"), "{}", w.message);
        assert!(all_advice(&a).contains("--signal-scope auto"), "{a:?}");
        assert!(a.processes[1].ended.starts_with("died of SIGTERM"));

        // Under `auto` pyinit spares them: nothing to report.
        let f = facts(
            procs.clone(),
            vec![sent(1001, &[2], &[3, 4]), exited(7000, 2, 0)],
            0,
        );
        let a = analyse(&f);
        assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
        assert!(a.findings.is_empty(), "{:?}", a.findings);

        // A child with its own TERM handler that exits is not cut short.
        let mut handled = procs.clone();
        handled[1].masks = masks(true, false);
        handled[2].masks = masks(true, false);
        let f = facts(
            handled,
            vec![sent(1001, &[2, 3, 4], &[]), exited(7000, 2, 0)],
            0,
        );
        assert!(analyse(&f).findings.is_empty());

        // A parent without a handler: its children are meant to get it.
        let mut plain = procs;
        plain[0].masks = masks(false, false);
        let f = facts(
            plain,
            vec![sent(1001, &[2, 3, 4], &[]), exited(1002, 2, 143)],
            143,
        );
        assert!(!kinds(&analyse(&f)).contains(&"work_cut_short"));
    }

    #[test]
    fn a_status_pyinit_reaped_is_not_inferred() {
        let procs = vec![
            proc_(2, 1, masks(true, false), 1010),
            proc_(3, 2, None, 1020),
        ];
        let f = facts(
            procs,
            vec![
                sent(1001, &[2, 3], &[]),
                exited(1010, 2, 0),
                (
                    1020,
                    Event::Reaped {
                        pid: 3,
                        status: 143,
                        signal: Some(TERM),
                    },
                ),
            ],
            0,
        );
        let a = analyse(&f);
        assert_eq!(kinds(&a), ["work_cut_short"]);
        assert!(!a.findings[0].inferred);
        assert_eq!(a.processes[1].ended, "killed by SIGTERM after 0.020s");
    }

    /// uvicorn: a TERM handler runs the lifespan shutdown, then re-raises.
    #[test]
    fn handled_then_reraised_warns_with_expect_exit_advice() {
        let procs = vec![proc_(2, 1, masks(true, false), 1200)];
        let events = vec![sent(1001, &[2], &[]), exited(1200, 2, 143)];
        let a = analyse(&facts(procs.clone(), events.clone(), 143));
        assert_eq!(a.verdict, Verdict::Warn);
        assert_eq!(kinds(&a), ["handled_then_reraised"]);
        assert!(a.reason.contains("re-raised"), "{}", a.reason);
        let advice = all_advice(&a);
        assert!(advice.contains("-e 143"), "{advice}");
        assert!(!advice.contains("signal.signal"), "{advice}");
        assert_eq!(a.exit_status, 143);

        // With -e 143 (pyinit then exits 0): PASS.
        let mut f = facts(procs, events, 0);
        f.managed[0].expect = vec![143];
        let a = analyse(&f);
        assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
        assert!(a.findings.is_empty());
        assert_eq!(a.exit_status, 143);
    }

    #[test]
    fn unhandled_death_warns_with_handler_advice() {
        let procs = vec![proc_(2, 1, masks(false, false), 1003)];
        let a = analyse(&facts(
            procs,
            vec![sent(1001, &[2], &[]), exited(1003, 2, 143)],
            143,
        ));
        assert_eq!(a.verdict, Verdict::Warn);
        assert_eq!(kinds(&a), ["died_of_stop_signal"]);
        assert!(a.reason.contains("no handler"), "{}", a.reason);
        assert!(all_advice(&a).contains("-r TERM:INT"));
    }

    fn killed(at: u64, victims: &[i32]) -> (u64, Event) {
        (
            at,
            Event::Killed {
                process: None,
                grace_s: 9.0,
                victims: victims
                    .iter()
                    .map(|&pid| Victim {
                        pid,
                        cmd: format!("python3 proc{pid}.py"),
                    })
                    .collect(),
            },
        )
    }

    /// A main process that handles TERM, never passes it on, and waits for
    /// a child that never got it.
    #[test]
    fn children_that_never_got_the_signal_fail_with_group_advice() {
        let procs = vec![
            proc_(2, 1, masks(true, false), 10000),
            proc_(3, 2, masks(false, false), 10000),
        ];
        let events = vec![
            sent(1001, &[2], &[3]),
            killed(10000, &[2, 3]),
            exited(10001, 2, 137),
        ];
        let a = analyse(&facts(procs.clone(), events.clone(), 137));
        assert_eq!(a.verdict, Verdict::Fail);
        assert!(a.reason.contains("needed SIGKILL"), "{}", a.reason);
        assert_eq!(kinds(&a), ["children_never_signalled"]);
        assert_eq!(a.findings[0].pids, [3]);
        let advice = all_advice(&a);
        assert!(advice.contains("--signal-scope group"), "{advice}");
        assert!(!advice.contains("-c"), "{advice}");
        assert!(a.killed);
        assert!(a.processes.iter().all(|p| p.killed));

        // A child that ignores TERM: group would not help, so say so.
        let mut deaf = procs;
        deaf[1].masks = masks(false, true);
        let a = analyse(&facts(deaf, events, 137));
        let advice = all_advice(&a);
        assert!(advice.contains("would not help"), "{advice}");
    }

    #[test]
    fn main_killed_without_children_gets_handler_advice() {
        let procs = vec![proc_(2, 1, masks(false, true), 10000)];
        let a = analyse(&facts(
            procs,
            vec![
                sent(1001, &[2], &[]),
                killed(10000, &[2]),
                exited(10001, 2, 137),
            ],
            137,
        ));
        assert_eq!(a.verdict, Verdict::Fail);
        assert_eq!(kinds(&a), ["main_killed"]);
        assert!(all_advice(&a).contains("-r TERM:INT"));
    }

    #[test]
    fn oom_kills_are_reported() {
        let procs = vec![proc_(2, 1, masks(true, false), 1100)];
        let a = analyse(&facts(
            procs,
            vec![
                (
                    800,
                    Event::OomKill {
                        process: Some("app".into()),
                        pid: Some(5),
                        cmd: Some("python3 hog.py".into()),
                        limit_bytes: Some(64 << 20),
                        peak_bytes: Some(63 << 20),
                    },
                ),
                sent(1001, &[2], &[]),
                exited(1100, 2, 0),
            ],
            0,
        ));
        assert_eq!(a.verdict, Verdict::Warn);
        assert_eq!(a.oom_kills.len(), 1);
        assert_eq!(kinds(&a), ["oom_kill"]);
        assert!(a.findings[0].message.contains("limit 64 MiB"), "{a:?}");
    }

    #[test]
    fn only_zombies_that_stayed_before_the_signal_count() {
        let mut stayed = proc_(3, 2, None, 1100);
        stayed.zombie_spans = vec![(ms(300), ms(1100))];
        let mut stopping = proc_(4, 2, None, 1800);
        stopping.zombie_spans = vec![(ms(1050), ms(1750))];
        let procs = vec![proc_(2, 1, masks(true, false), 1100), stayed, stopping];
        let a = analyse(&facts(
            procs,
            vec![sent(1001, &[2], &[3, 4]), exited(1100, 2, 0)],
            0,
        ));
        assert_eq!(a.zombies.len(), 1, "{:?}", a.zombies);
        assert_eq!(a.zombies[0].pid, 3);
        assert_eq!(a.zombies[0].seconds, 0.7);
        assert_eq!(a.verdict, Verdict::Pass);
        assert_eq!(kinds(&a), ["zombies"]);
    }

    fn app(at: u64, line: &str) -> (Duration, Record) {
        (
            ms(at),
            Record::App(AppLine {
                name: "app".into(),
                pid: 4,
                stderr: true,
                line: line.into(),
                partial: false,
            }),
        )
    }

    #[test]
    fn error_lines_during_the_stop_warn_and_quote_the_line() {
        let procs = vec![proc_(2, 1, masks(true, false), 1100)];
        let mut f = facts(procs, vec![sent(1001, &[2], &[]), exited(1100, 2, 0)], 0);
        f.records
            .push(app(900, "[2026-01-01] [ERROR] before the stop: not ours"));
        f.records.push(app(
            1050,
            "[2026-01-01 00:00:00 +0000] [1] [ERROR] Worker (pid:4) was sent SIGTERM!",
        ));
        f.records.push(app(1060, "[INFO] Shutting down: Master"));
        let a = analyse(&f);
        assert_eq!(a.verdict, Verdict::Warn);
        assert_eq!(kinds(&a), ["shutdown_errors"]);
        assert!(a.findings[0].message.contains("was sent SIGTERM!"));
        assert!(!a.findings[0].message.contains("not ours"));
        assert!(all_advice(&a).contains("--signal-scope auto"));
        assert_eq!(a.stderr_tail.len(), 3);
    }

    #[test]
    fn partial_pieces_join_and_a_late_burst_is_block_buffered() {
        let procs = vec![proc_(2, 1, masks(true, false), 1100)];
        let mut f = facts(procs, vec![sent(1001, &[2], &[]), exited(1100, 2, 0)], 0);
        let mut piece = app(1010, "first ");
        if let Record::App(l) = &mut piece.1 {
            l.partial = true;
        }
        f.records.push(piece);
        f.records.push(app(1011, "half"));
        f.records.push(app(1012, "second"));
        let a = analyse(&f);
        assert_eq!(a.stderr_tail, ["first half", "second"]);
        assert!(!a.line_buffered);
        assert!(all_advice(&a).contains("block-buffered"));
    }

    #[test]
    fn a_set_reports_per_process_and_names_the_one_that_failed() {
        let procs = vec![
            proc_(2, 1, masks(true, false), 1100),
            proc_(3, 1, masks(true, false), 1100),
        ];
        let mut f = facts(procs, Vec::new(), 0);
        f.multi = true;
        f.managed = ["web", "worker"]
            .iter()
            .map(|n| Managed {
                name: n.to_string(),
                expect: Vec::new(),
                oneshot: false,
            })
            .collect();
        f.records = vec![
            (
                ms(50),
                Record::Event(Event::Started {
                    process: "web".into(),
                    pid: 2,
                }),
            ),
            (
                ms(50),
                Record::Event(Event::Started {
                    process: "worker".into(),
                    pid: 3,
                }),
            ),
        ];
        let mut all_ok = f.clone();
        let mut one_bad = f;
        for (name, pid, st) in [("web", 2, 0), ("worker", 3, 0)] {
            let ev = |s| {
                (
                    ms(1100),
                    Record::Event(Event::Exited {
                        process: name.into(),
                        pid,
                        status: s,
                        signal: None,
                    }),
                )
            };
            all_ok.records.push(ev(st));
            one_bad
                .records
                .push(ev(if name == "worker" { 1 } else { 0 }));
        }
        let a = analyse(&all_ok);
        assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
        assert!(a.reason.contains("all 2 processes"), "{}", a.reason);
        assert_eq!(a.processes[0].name.as_deref(), Some("web"));
        assert_eq!(a.processes[1].name.as_deref(), Some("worker"));
        let a = analyse(&one_bad);
        assert_eq!(a.verdict, Verdict::Fail, "{a:?}");
        assert!(
            a.reason.starts_with("worker: exited with status 1"),
            "{}",
            a.reason
        );
        assert!(all_advice(&a).contains("-e 1"));
    }

    #[test]
    fn never_ready_fails() {
        let mut f = facts(Vec::new(), Vec::new(), 0);
        f.ready = Err("no line matched /x/".into());
        f.signalled_at = None;
        let a = analyse(&f);
        assert_eq!(a.verdict, Verdict::Fail);
        assert!(a.reason.contains("never became ready"));
        assert!(all_advice(&a).contains("--ready-timeout"));
    }
}
