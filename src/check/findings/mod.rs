//! The pure core of `pyinit check`: what was observed (the inner pyinit's
//! records and a `/proc` picture taken as the stop signal went out) in,
//! findings and a verdict out. No clock, no `/proc`, no processes: every
//! rule is unit-tested on synthetic facts.
//!
//! Times are offsets from the start of the run.

use std::collections::HashMap;
use std::time::Duration;

pub use super::facts::{Facts, Managed, ProcObs, SigMasks};
use crate::exit_status::Ended;
use crate::signals::names;
use seen::{index, Seen};

/// A zombie seen this long before the stop signal "stayed" one: pyinit and a
/// parent that waits reap within a moment.
const ZOMBIE_MIN: Duration = Duration::from_millis(100);
/// Output that arrived within this window after the signal, with nothing
/// before it, came out of a block buffer at exit.
const BURST: Duration = Duration::from_millis(50);
const TAIL: usize = 10;
/// Lines of shutdown errors quoted in one finding.
const ERROR_LINES: usize = 3;

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
        if let Some((_, s)) = self.procs.get(&pid).and_then(|p| p.ended) {
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
        let from_pyinit = self
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
        // Read from /proc while it was a zombie: its parent reaped it.
        let from_zombie = self.procs.get(&pid).and_then(|p| p.ended);
        let text = match (from_pyinit, from_zombie) {
            (Some((st, sig)), _) => describe(st, sig) + &after,
            (None, Some((st, sig))) => describe(st, sig) + &after + " (reaped by its parent)",
            (None, None) => {
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
                [(_, pid)] if !f.multi => match self.status_of(*pid).unwrap_or(0) {
                    st if st > 128 => format!(
                        "{}, an expected status (-e {st}), {t:.3}s after {signal}",
                        Ended::Signaled(st - 128).describe()
                    ),
                    st => format!("exited with status {st} {t:.3}s after {signal}"),
                },
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

mod output;
mod seen;
mod stop;
#[cfg(test)]
mod tests;
