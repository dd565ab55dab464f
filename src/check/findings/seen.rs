//! The inner pyinit's events, indexed by pid and process name.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{Facts, OomKill};
use crate::check::records::{Event, Record};

/// What the events say, indexed.
#[derive(Default)]
pub(super) struct Seen {
    /// Managed pid -> name.
    pub(super) managed: HashMap<i32, String>,
    /// Name -> the pid that ran when the signal went out (the last started).
    pub(super) pid_of: HashMap<String, i32>,
    /// Managed pid -> (when, status, signal).
    pub(super) exited: HashMap<i32, (Duration, i32, Option<i32>)>,
    pub(super) reaped: HashMap<i32, (i32, Option<i32>)>,
    /// Pid -> signals pyinit sent it after the check's signal.
    pub(super) got: HashMap<i32, Vec<i32>>,
    /// Name -> first stop signal pyinit sent that process.
    pub(super) stop_sent: HashMap<String, i32>,
    pub(super) leftovers: HashSet<i32>,
    /// Pid -> command line, of those killed at a deadline.
    pub(super) victims: HashMap<i32, String>,
    pub(super) killed_event: bool,
    /// When the first SIGKILL went out.
    pub(super) killed_at: Option<Duration>,
    pub(super) ooms: Vec<OomKill>,
}

pub(super) fn index(facts: &Facts) -> Seen {
    let mut s = Seen::default();
    let mut stopped: HashSet<i32> = HashSet::new();
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
                // What pyinit sends once the deadline's SIGKILL went out (the
                // leftovers of a main process it just killed) changes nothing.
                if s.killed_event {
                    continue;
                }
                for p in pids {
                    s.got.entry(*p).or_default().push(*signal);
                    // A process that already got the stop signal and is
                    // merely slower to go than the main process did not
                    // outlive it in the sense of the finding.
                    match reason.as_str() {
                        "leftover" if !stopped.contains(p) => {
                            s.leftovers.insert(*p);
                        }
                        "stop" | "forward" => {
                            stopped.insert(*p);
                        }
                        _ => {}
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
