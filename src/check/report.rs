//! The report, for people and for CI (`--json`), from the [`Analysis`].

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::findings::{Analysis, Verdict};

/// Seconds, rounded to the millisecond.
pub fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Everything `check` prints.
#[derive(Debug, Clone)]
pub struct Report {
    pub command: String,
    pub isolation: &'static str,
    /// The signal sent to pyinit, as `docker stop` does.
    pub signal: String,
    pub grace_s: f64,
    /// When the readiness probe passed.
    pub ready_s: Option<f64>,
    /// When the process tree had settled after it (the signal went out).
    pub settled_s: Option<f64>,
    pub analysis: Analysis,
}

/// A command line cut for the human table (the JSON keeps it whole).
fn short(cmd: &str) -> String {
    const MAX: usize = 80;
    if cmd.chars().count() > MAX {
        cmd.chars().take(MAX).collect::<String>() + "…"
    } else {
        cmd.to_string()
    }
}

impl Report {
    pub fn exit_code(&self, strict: bool) -> i32 {
        match self.analysis.verdict {
            Verdict::Pass => 0,
            Verdict::Warn if !strict => 0,
            _ => 1,
        }
    }

    pub fn to_json(&self) -> String {
        let a = &self.analysis;
        let v: Value = json!({
            "verdict": a.verdict.as_str(),
            "reason": a.reason,
            "command": self.command,
            "isolation": self.isolation,
            "signal": self.signal,
            "signal_sent": crate::signals::names::name(a.sent),
            "grace_s": self.grace_s,
            "ready_s": self.ready_s,
            "settled_s": self.settled_s,
            "time_to_exit_s": a.time_to_exit_s,
            "exit_status": a.exit_status,
            "killed": a.killed,
            "processes": a.processes.iter().map(|p| json!({
                "pid": p.pid, "name": p.name, "cmd": p.cmd, "ended": p.ended,
                "killed": p.killed, "main": p.main,
            })).collect::<Vec<_>>(),
            "zombies": a.zombies.iter().map(|z| json!({
                "pid": z.pid, "cmd": z.cmd, "seconds": z.seconds,
            })).collect::<Vec<_>>(),
            "oom_kills": a.oom_kills.iter().map(|o| json!({
                "process": o.process, "pid": o.pid, "cmd": o.cmd,
                "limit_bytes": o.limit_bytes, "peak_bytes": o.peak_bytes,
            })).collect::<Vec<_>>(),
            "line_buffered": a.line_buffered,
            "stdout_tail": a.stdout_tail,
            "stderr_tail": a.stderr_tail,
            "findings": a.findings.iter().map(|f| json!({
                "kind": f.kind, "level": f.level.as_str(), "message": f.message,
                "pids": f.pids, "inferred": f.inferred, "advice": f.advice,
            })).collect::<Vec<_>>(),
            "advice": a.advice,
        });
        format!("{v}\n")
    }

    pub fn to_human(&self) -> String {
        let a = &self.analysis;
        let mut s = String::new();
        let _ = writeln!(s, "{}: {}", a.verdict.as_str(), a.reason);
        let _ = writeln!(s, "  command        {}", self.command);
        let _ = writeln!(s, "  ran as         {}", self.isolation);
        match (self.ready_s, self.settled_s) {
            (Some(r), Some(t)) => {
                let _ = writeln!(s, "  ready after    {r:.3}s (settled at {t:.3}s)");
            }
            (Some(r), None) => {
                let _ = writeln!(s, "  ready after    {r:.3}s");
            }
            _ => {
                let _ = writeln!(s, "  ready          never");
            }
        }
        let sent = crate::signals::names::name(a.sent);
        let _ = writeln!(
            s,
            "  signal         {}{} (grace {}s)",
            self.signal,
            if sent != self.signal && a.sent != 0 {
                format!(", forwarded as {sent}")
            } else {
                String::new()
            },
            self.grace_s
        );
        if let Some(t) = a.time_to_exit_s {
            let _ = writeln!(s, "  time to exit   {t:.3}s");
        }
        let _ = writeln!(s, "  exit status    {}", a.exit_status);
        let _ = writeln!(
            s,
            "  SIGKILL needed {}",
            if a.killed { "yes" } else { "no" }
        );
        let _ = writeln!(
            s,
            "  line-buffered  {}",
            if a.line_buffered { "yes" } else { "no" }
        );
        let _ = writeln!(s, "  processes before the signal:");
        let multi = a.processes.iter().any(|p| p.main && p.name.is_some())
            && a.processes.iter().filter(|p| p.main).count() > 1;
        // The columns fit the longest entry (within reason).
        let ended_w = a
            .processes
            .iter()
            .map(|p| p.ended.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(20, 64);
        let name_w = a
            .processes
            .iter()
            .filter_map(|p| p.name.as_ref().map(|n| n.chars().count()))
            .max()
            .unwrap_or(0);
        for p in &a.processes {
            let name = match (&p.name, multi) {
                (Some(n), true) => format!("{n:<name_w$} "),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "    {name}{:>6}  {:<ended_w$}  {}{}",
                p.pid,
                p.ended,
                short(&p.cmd),
                if p.main { "  [main]" } else { "" }
            );
        }
        if a.zombies.is_empty() {
            let _ = writeln!(s, "  zombies        none");
        } else {
            let _ = writeln!(s, "  zombies:");
            for z in &a.zombies {
                let _ = writeln!(
                    s,
                    "    {:>6}  zombie for {:.3}s  {}",
                    z.pid,
                    z.seconds,
                    short(&z.cmd)
                );
            }
        }
        if !a.oom_kills.is_empty() {
            let _ = writeln!(s, "  OOM kills      {}", a.oom_kills.len());
        }
        for (name, tail) in [("stdout", &a.stdout_tail), ("stderr", &a.stderr_tail)] {
            if !tail.is_empty() {
                let _ = writeln!(s, "  last {name} lines:");
                for l in tail {
                    let _ = writeln!(s, "    | {l}");
                }
            }
        }
        let shown: Vec<_> = a.findings.iter().collect();
        if !shown.is_empty() {
            let _ = writeln!(s, "  findings:");
            for f in shown {
                let _ = writeln!(s, "    - [{}] {}", f.level.as_str(), f.message);
            }
        }
        if !a.advice.is_empty() {
            let _ = writeln!(s, "  advice:");
            for x in &a.advice {
                let _ = writeln!(s, "    - {x}");
            }
        }
        s
    }
}
