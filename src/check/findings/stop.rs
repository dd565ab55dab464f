//! Findings about the stop itself: work cut short (a), handled then
//! re-raised (b), children that never got the signal (c), and the other
//! ways a process ended up needing SIGKILL.

use std::collections::HashMap;

use super::{plural, Analyser, Finding, Level};
use crate::signals::names;

impl Analyser<'_> {
    /// (a) work cut short and (b) handled-then-re-raised / unhandled deaths.
    pub(super) fn signal_findings(&self, running: &[(String, i32)], findings: &mut Vec<Finding>) {
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
                         is missing. Pass -e {status}{} so that this exit counts as success.",
                        if f.multi {
                            format!(" (or expect_exit = [{status}] under [process.{name}])")
                        } else {
                            String::new()
                        }
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
                     parent that does (celery, gunicorn, most masters) stops its workers in \
                     order. Keep group only if {parent_text}'s handler neither passes {sname} \
                     on nor stops {}.",
                    if cut.len() == 1 { "it" } else { "them" }
                )),
            });
        }
    }

    /// (c) and the other ways a process ended up needing SIGKILL.
    pub(super) fn killed_findings(&self, findings: &mut Vec<Finding>) {
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
        let mut late: Vec<i32> = Vec::new();
        for &v in &victims {
            if self.is_managed(v) {
                mains.push(v);
                continue;
            }
            if self.seen.leftovers.contains(&v) {
                continue;
            }
            let sig = self.stop_signal_for(v);
            if self.seen.got.get(&v).is_some_and(|g| g.contains(&sig)) {
                survived.push(v);
                continue;
            }
            // Not there when the signal went out (or not seen: started and
            // killed between two samples): nobody could have sent it.
            let started_late = match (self.procs.get(&v), self.f.signalled_at) {
                (Some(p), Some(s)) => p.first_seen > s,
                (None, _) => true,
                _ => false,
            };
            if started_late {
                late.push(v);
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
        if !late.is_empty() {
            let cut_short = findings.iter().any(|x| x.kind == "work_cut_short");
            findings.push(Finding {
                kind: "started_during_stop",
                level: Level::Fail,
                message: format!(
                    "{} started after the stop signal{} and {} killed at the {} deadline",
                    plural(late.len(), "process", "processes"),
                    if cut_short {
                        " (replacements for the workers that died)"
                    } else {
                        ""
                    },
                    if late.len() == 1 { "was" } else { "were" },
                    self.grace
                ),
                pids: late,
                inferred: false,
                // With workers cut short, the scope advice above covers it.
                advice: (!cut_short).then(|| {
                    "The app started new processes while it was stopping (a master replacing \
                     workers that exited): it should stop replacing them once it got the stop \
                     signal."
                        .to_string()
                }),
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
            // Its workers were cut short: it may wait for them forever
            // (celery's master does). The cause is the direct signal.
            let cut_short = findings.iter().any(|x| {
                x.kind == "work_cut_short" && x.pids.iter().any(|p| self.owner(*p) == Some(m))
            });
            let (message, advice) = if cut_short {
                (
                    format!(
                        "{who} did not exit within {} after its workers were cut short",
                        self.grace
                    ),
                    // The work_cut_short advice says it.
                    String::new(),
                )
            } else if self.masks(m).is_some_and(|x| x.catches(sig)) {
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
                advice: (!advice.is_empty()).then_some(advice),
            });
        }
    }
}
