//! Findings from the output and the `/proc` picture: tails, line
//! buffering, zombies (e), OOM kills (d), error lines during the stop (f).

use std::collections::HashMap;
use std::time::Duration;

use super::{plural, secs, Analyser, Finding, Level, Zombie, BURST, ERROR_LINES, TAIL, ZOMBIE_MIN};
use crate::check::records::{AppLine, Record};

impl<'a> Analyser<'a> {
    pub(super) fn app_lines(&self) -> Vec<(Duration, &'a AppLine)> {
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
    pub(super) fn tails(&self) -> (Vec<String>, Vec<String>) {
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

    pub(super) fn line_buffered(&self) -> bool {
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

    pub(super) fn zombies(&self) -> Vec<Zombie> {
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

    /// (d) OOM kills during the run.
    pub(super) fn oom_findings(&self, findings: &mut Vec<Finding>) {
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
    pub(super) fn output_findings(&self, findings: &mut Vec<Finding>) {
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
        let scope_advised = findings.iter().any(|x| x.kind == "work_cut_short");
        let advice = if worker_died && scope_advised {
            None
        } else if worker_died {
            "Workers died of a signal while their master stopped them: they got the stop signal \
             directly from pyinit on top of their master's (gunicorn < 27 logs each as an \
             error; celery's pool processes die mid-task). Use the default --signal-scope auto \
             (not group, -g), so that only the master, which handles it, gets the signal."
                .to_string()
                .into()
        } else {
            Some(
                "The app logged errors while it stopped: read them; they often mean that work \
                 was cut short or a resource was closed under a running task."
                    .to_string(),
            )
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
            advice,
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
