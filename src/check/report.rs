//! The verdict and the report, for people and for CI (`--json`).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::options::CheckCli;
use super::{shell_words, Run};
use crate::exit_status::Ended;
use crate::signals::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProcReport {
    pub pid: i32,
    pub cmd: String,
    pub ended: String,
    pub killed: bool,
    pub main: bool,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub verdict: Verdict,
    pub reason: String,
    pub command: String,
    pub isolation: &'static str,
    pub signal: String,
    pub grace_s: f64,
    pub ready_s: Option<f64>,
    pub time_to_exit_s: Option<f64>,
    pub exit_status: i32,
    pub killed: bool,
    pub processes: Vec<ProcReport>,
    pub zombies: Vec<(i32, String, f64)>,
    pub line_buffered: bool,
    pub stdout_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
    pub advice: Vec<String>,
}

const TAIL: usize = 10;
/// A zombie seen this long "stayed" one (pyinit reaps within a moment).
const ZOMBIE_MIN_S: f64 = 0.1;

/// pyinit's own debug lines about who ended how (ns pids).
#[derive(Default)]
struct Events {
    main_pid: Option<i32>,
    main_ended: Option<Ended>,
    reaped: HashMap<i32, Ended>,
    killed: HashSet<i32>,
    /// Alive when the main process exited.
    leftovers: HashSet<i32>,
    grace_expired: bool,
}

fn parse_ended(s: &str) -> Option<Ended> {
    if let Some(code) = s.strip_prefix("exited with status ") {
        return code.trim().parse().ok().map(Ended::Exited);
    }
    s.strip_prefix("killed by ")
        .and_then(|n| names::parse(n.trim()).ok())
        .map(Ended::Signaled)
}

fn parse_events(run: &Run) -> Events {
    let mut ev = Events::default();
    for l in run.output.lines().iter().filter(|l| l.pyinit) {
        let msg = &l.text["pyinit: ".len()..];
        if let Some(rest) = msg.strip_prefix("started ") {
            ev.main_pid = rest
                .split(" as pid ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next()?.parse().ok());
        } else if let Some(rest) = msg.strip_prefix("main process ") {
            ev.main_ended = rest.split_once(' ').and_then(|(_, d)| parse_ended(d));
        } else if let Some(rest) = msg.strip_prefix("reaped ") {
            if let Some((pid, d)) = rest.split_once(": ") {
                if let (Ok(pid), Some(e)) = (pid.parse(), parse_ended(d)) {
                    ev.reaped.insert(pid, e);
                }
            }
        } else if let Some(pid) = msg.strip_prefix("SIGKILL ") {
            if let Ok(pid) = pid.trim().parse() {
                ev.killed.insert(pid);
            }
        } else if let Some(rest) = msg.strip_prefix("leftover ") {
            if let Some(pid) = rest.split_whitespace().next().and_then(|p| p.parse().ok()) {
                ev.leftovers.insert(pid);
            }
        } else if msg.starts_with("warning: grace period") {
            ev.grace_expired = true;
        }
    }
    ev
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
    pub fn build(opts: &CheckCli, run: &Run) -> Report {
        let ev = parse_events(run);
        let sup = &opts.supervisor;
        let sent = crate::signals::rewrite::Router::new(sup.rewrite.clone(), sup.single_child)
            .route(opts.signal)
            .map_or(0, |r| r.send);
        let signal = names::name(opts.signal);
        let grace = humantime::format_duration(sup.grace).to_string();
        let killed = ev.grace_expired || !ev.killed.is_empty();
        let main_ns = ev.main_pid;
        let sig_at = run.signalled_at;
        let secs = |d: std::time::Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;

        let mut processes = Vec::new();
        let mut leftovers = 0;
        for p in &run.observer.procs {
            let before_signal = sig_at.is_none_or(|s| p.first_seen <= s);
            if !before_signal || !(p.alive_at_signal || sig_at.is_none()) {
                continue;
            }
            let is_main = Some(p.ns_pid) == main_ns;
            let was_killed = ev.killed.contains(&p.ns_pid);
            let after = match (p.gone_at, sig_at) {
                (Some(g), Some(s)) if g >= s => format!(" after {:.3}s", secs(g - s)),
                _ => String::new(),
            };
            let ended = if was_killed {
                format!("killed at the {grace} deadline (SIGKILL)")
            } else if is_main {
                ev.main_ended.map_or("exited".into(), |e| e.describe()) + &after
            } else if let Some(e) = ev.reaped.get(&p.ns_pid) {
                e.describe() + &after
            } else {
                format!("exited{after} (reaped by its parent)")
            };
            let left_behind = ev.leftovers.contains(&p.ns_pid);
            if left_behind {
                leftovers += 1;
            }
            let ended = if left_behind {
                format!("{ended}; outlived the main process")
            } else {
                ended
            };
            processes.push(ProcReport {
                pid: p.ns_pid,
                cmd: p.cmd.clone(),
                ended,
                killed: was_killed,
                main: is_main,
            });
        }
        processes.sort_by_key(|p| (!p.main, p.pid));

        let zombies: Vec<(i32, String, f64)> = run
            .observer
            .procs
            .iter()
            .filter(|p| p.zombie_for.as_secs_f64() >= ZOMBIE_MIN_S)
            .map(|p| (p.ns_pid, p.cmd.clone(), secs(p.zombie_for)))
            .collect();

        let lines = run.output.lines();
        let app: Vec<_> = lines.iter().filter(|l| !l.pyinit).collect();
        let (before, after): (
            Vec<&&super::observe::LogLine>,
            Vec<&&super::observe::LogLine>,
        ) = app.iter().partition(|l| sig_at.is_some_and(|s| l.at < s));
        let burst = match (after.first(), after.last()) {
            (Some(f), Some(l)) => l.at - f.at < std::time::Duration::from_millis(50),
            _ => false,
        };
        let line_buffered = !(sig_at.is_some() && before.is_empty() && after.len() >= 2 && burst);
        let tail = |stderr: bool| -> Vec<String> {
            let v: Vec<String> = app
                .iter()
                .filter(|l| l.stderr == stderr)
                .map(|l| l.text.clone())
                .collect();
            v[v.len().saturating_sub(TAIL)..].to_vec()
        };

        let time_to_exit = sig_at.map(|s| secs(run.exited_at.saturating_duration_since(s)));
        let code = run.exit_code;
        let cmd = shell_words(&opts.command);
        let expected = |c: i32| c == 0 || sup.expect_exit.contains(&c);
        let (verdict, reason) = if let Err(e) = &run.ready {
            (Verdict::Fail, format!("never became ready ({e})"))
        } else if sig_at.is_none() {
            (
                Verdict::Fail,
                format!("exited by itself before the stop signal, with status {code}"),
            )
        } else if code < 0 {
            (Verdict::Fail, "pyinit did not exit in time".to_string())
        } else if killed {
            let n = ev.killed.len().max(1);
            (
                Verdict::Fail,
                format!(
                    "needed SIGKILL: {n} process{} still running when the {grace} grace period ran out",
                    if n == 1 { " was" } else { "es were" }
                ),
            )
        } else {
            match ev.main_ended.unwrap_or(Ended::Exited(code)) {
                e if expected(e.code()) => (
                    Verdict::Pass,
                    format!(
                        "exited with status {} {:.3}s after {signal}",
                        e.code(),
                        time_to_exit.unwrap_or(0.0)
                    ),
                ),
                Ended::Signaled(n) if n == sent || n == opts.signal => (
                    Verdict::Warn,
                    format!(
                        "died of {} itself (no handler ran to completion)",
                        names::name(n)
                    ),
                ),
                e => (Verdict::Fail, format!("{} after {signal}", e.describe())),
            }
        };

        let mut advice = Vec::new();
        if run.ready.is_err() {
            advice.push(
                "It was never ready: check the readiness option (--ready-line matches each output line; \
                 --ready-port connects to 127.0.0.1), or raise --ready-timeout."
                    .to_string(),
            );
        }
        let main_killed = main_ns.is_some_and(|m| ev.killed.contains(&m));
        if main_killed {
            advice.push(format!(
                "{cmd} did not exit within {grace} of {signal}. Install a handler that shuts down and \
                 exits (signal.signal(signal.SIGTERM, handler)); a script that already cleans up on \
                 Ctrl-C can run under `pyinit -r TERM:INT` to get a KeyboardInterrupt instead."
            ));
        }
        if killed && !main_killed {
            if sup.single_child {
                advice.push(
                    "Processes outlived the main process and were killed: with --single-child only \
                     the main process gets the stop signal, so it must stop its workers itself. \
                     Drop -c to send the stop signal to the whole process group."
                        .to_string(),
                );
            } else {
                advice.push(
                    "Child processes ignored SIGTERM until the deadline: make workers handle SIGTERM, \
                     or have the main process stop and wait for them."
                        .to_string(),
                );
            }
        }
        if verdict == Verdict::Warn {
            let n = match ev.main_ended {
                Some(Ended::Signaled(n)) => n,
                _ => opts.signal,
            };
            advice.push(format!(
                "{cmd} died of {} without handling it: `finally` blocks and atexit handlers did not run. \
                 Handle it (signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))), or run pyinit with \
                 -r TERM:INT for a KeyboardInterrupt; if dying of the signal is fine, pass -e {}.",
                names::name(n),
                128 + n
            ));
        }
        if verdict == Verdict::Fail && !killed && sig_at.is_some() && code > 0 && code < 128 {
            advice.push(format!(
                "It handled {signal} but exited with status {code}; if that is its normal stop status, pass -e {code}."
            ));
        }
        if !line_buffered {
            advice.push(
                "Output arrived all at once at exit: stdout is block-buffered, so the last lines before a \
                 crash are lost. Keep pyinit's default PYTHONUNBUFFERED=1 (no --no-python-env), or use \
                 print(..., flush=True) / logging."
                    .to_string(),
            );
        }
        if !zombies.is_empty() {
            advice.push(format!(
                "{} process{} stayed zombies: the app starts children it never waits for \
                 (subprocess.Popen without wait()/communicate(), os.fork without os.waitpid). \
                 pyinit can reap them only after their parent exits.",
                zombies.len(),
                if zombies.len() == 1 { "" } else { "es" }
            ));
        }
        if leftovers > 0 {
            advice.push(format!(
                "{leftovers} process{} outlived the main process (daemonised or start_new_session=True); \
                 pyinit stopped {}, but the app should stop its own children on shutdown.",
                if leftovers == 1 { "" } else { "es" },
                if leftovers == 1 { "it" } else { "them" }
            ));
        }

        Report {
            verdict,
            reason,
            command: cmd,
            isolation: run.isolation.describe(),
            signal,
            grace_s: sup.grace.as_secs_f64(),
            ready_s: run.ready.as_ref().ok().map(|d| secs(*d)),
            time_to_exit_s: time_to_exit,
            exit_status: code,
            killed,
            processes,
            zombies,
            line_buffered,
            stdout_tail: tail(false),
            stderr_tail: tail(true),
            advice,
        }
    }

    pub fn exit_code(&self, strict: bool) -> i32 {
        match self.verdict {
            Verdict::Pass => 0,
            Verdict::Warn if !strict => 0,
            _ => 1,
        }
    }

    pub fn to_json(&self) -> String {
        let v: Value = json!({
            "verdict": self.verdict.as_str(),
            "reason": self.reason,
            "command": self.command,
            "isolation": self.isolation,
            "signal": self.signal,
            "grace_s": self.grace_s,
            "ready_s": self.ready_s,
            "time_to_exit_s": self.time_to_exit_s,
            "exit_status": self.exit_status,
            "killed": self.killed,
            "processes": self.processes.iter().map(|p| json!({
                "pid": p.pid, "cmd": p.cmd, "ended": p.ended, "killed": p.killed, "main": p.main,
            })).collect::<Vec<_>>(),
            "zombies": self.zombies.iter().map(|(pid, cmd, s)| json!({
                "pid": pid, "cmd": cmd, "seconds": s,
            })).collect::<Vec<_>>(),
            "line_buffered": self.line_buffered,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
            "advice": self.advice,
        });
        format!("{v}\n")
    }

    pub fn to_human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}: {}", self.verdict.as_str(), self.reason);
        let _ = writeln!(s, "  command        {}", self.command);
        let _ = writeln!(s, "  ran as         {}", self.isolation);
        match self.ready_s {
            Some(r) => {
                let _ = writeln!(s, "  ready after    {r:.3}s");
            }
            None => {
                let _ = writeln!(s, "  ready          never");
            }
        }
        let _ = writeln!(
            s,
            "  signal         {} (grace {}s)",
            self.signal, self.grace_s
        );
        if let Some(t) = self.time_to_exit_s {
            let _ = writeln!(s, "  time to exit   {t:.3}s");
        }
        let _ = writeln!(s, "  exit status    {}", self.exit_status);
        let _ = writeln!(
            s,
            "  SIGKILL needed {}",
            if self.killed { "yes" } else { "no" }
        );
        let _ = writeln!(
            s,
            "  line-buffered  {}",
            if self.line_buffered { "yes" } else { "no" }
        );
        let _ = writeln!(s, "  processes before the signal:");
        for p in &self.processes {
            let _ = writeln!(
                s,
                "    {:>6}  {:<44} {}{}",
                p.pid,
                p.ended,
                short(&p.cmd),
                if p.main { "  [main]" } else { "" }
            );
        }
        if self.zombies.is_empty() {
            let _ = writeln!(s, "  zombies        none");
        } else {
            let _ = writeln!(s, "  zombies:");
            for (pid, cmd, secs) in &self.zombies {
                let _ = writeln!(s, "    {pid:>6}  zombie for {secs:.3}s  {}", short(cmd));
            }
        }
        for (name, tail) in [("stdout", &self.stdout_tail), ("stderr", &self.stderr_tail)] {
            if !tail.is_empty() {
                let _ = writeln!(s, "  last {name} lines:");
                for l in tail {
                    let _ = writeln!(s, "    | {l}");
                }
            }
        }
        if !self.advice.is_empty() {
            let _ = writeln!(s, "  advice:");
            for a in &self.advice {
                let _ = writeln!(s, "    - {a}");
            }
        }
        s
    }
}
