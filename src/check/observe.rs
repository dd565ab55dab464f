//! What `check` sees from outside: every process below the pyinit under
//! test, sampled from `/proc` every 5 ms (when it appeared, vanished, was a
//! zombie and with which wait status; its parent and signal masks as the
//! stop signal went out), and every record the pyinit under test wrote,
//! with its arrival time.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::facts::SigMasks;
use super::records::{self, Record};

const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// One process below pyinit, as observed.
#[derive(Debug, Clone)]
pub struct ProcRecord {
    pub host_pid: i32,
    /// The pid pyinit and the app see (innermost namespace).
    pub ns_pid: i32,
    pub cmd: String,
    pub first_seen: Instant,
    pub gone_at: Option<Instant>,
    pub zombie_since: Option<Instant>,
    /// Every interval it was seen in Z state (first and last sighting).
    pub zombie_spans: Vec<(Instant, Instant)>,
    /// Its raw wait status, read while it was a zombie (how a process that
    /// its own parent reaps ended: no event of pyinit's says).
    pub wait_status: Option<i32>,
    pub alive_at_signal: bool,
    /// Its parent (as seen from here) and signal masks, read as the stop
    /// signal went out.
    pub at_signal: Option<StatusAtSignal>,
}

/// What `/proc/PID/status` said as the stop signal went out.
#[derive(Debug, Clone, Copy)]
pub struct StatusAtSignal {
    pub ppid: i32,
    pub masks: SigMasks,
}

#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub procs: Vec<ProcRecord>,
    /// pyinit's pid as seen from here.
    pub pyinit_pid: Option<i32>,
    /// pyinit's pid in its own namespace (1 when it is PID 1).
    pub pyinit_ns_pid: Option<i32>,
}

struct State {
    snap: Snapshot,
    index: HashMap<i32, usize>,
    /// When a process last appeared, vanished or became a zombie.
    last_change: Instant,
}

pub struct Observer {
    root: i32,
    root_is_wrapper: bool,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    out
}

fn state_of(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    crate::procs::parse_stat(&s).map(|p| p.state)
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

fn ns_pid(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            status_field(&s, "NSpid")?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
        .unwrap_or(pid)
}

/// The `exit_code` field (52) of a zombie's `/proc/PID/stat`: its wait
/// status, as its parent's `waitpid` will get it (Linux 3.5 and later).
pub fn zombie_wait_status(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields resume at 3 (state) after the command name.
    rest.split_whitespace().nth(52 - 3)?.parse().ok()
}

/// Parent and signal masks out of a `/proc/PID/status` text.
pub fn parse_status(status: &str) -> Option<StatusAtSignal> {
    let mask = |key| u64::from_str_radix(status_field(status, key)?, 16).ok();
    Some(StatusAtSignal {
        ppid: status_field(status, "PPid")?.parse().ok()?,
        masks: SigMasks {
            caught: mask("SigCgt")?,
            blocked: mask("SigBlk")?,
            ignored: mask("SigIgn")?,
        },
    })
}

fn sample(root: i32, root_is_wrapper: bool, st: &mut State) {
    let now = Instant::now();
    let pyinit = if root_is_wrapper {
        children(root).first().copied()
    } else {
        Some(root)
    };
    let Some(pyinit) = pyinit else { return };
    if st.snap.pyinit_pid.is_none() {
        st.snap.pyinit_pid = Some(pyinit);
        st.snap.pyinit_ns_pid = Some(ns_pid(pyinit));
    }
    let mut seen = Vec::new();
    let mut stack = vec![pyinit];
    while let Some(p) = stack.pop() {
        for c in children(p) {
            seen.push(c);
            stack.push(c);
        }
    }
    for &pid in &seen {
        let state = state_of(pid);
        let i = match st.index.get(&pid) {
            Some(&i) => i,
            None => {
                st.snap.procs.push(ProcRecord {
                    host_pid: pid,
                    ns_pid: ns_pid(pid),
                    cmd: crate::procs::command_line(pid, 4096),
                    first_seen: now,
                    gone_at: None,
                    zombie_since: None,
                    zombie_spans: Vec::new(),
                    wait_status: None,
                    alive_at_signal: false,
                    at_signal: None,
                });
                st.last_change = now;
                st.index.insert(pid, st.snap.procs.len() - 1);
                st.snap.procs.len() - 1
            }
        };
        let rec = &mut st.snap.procs[i];
        if state == Some('Z') {
            // (A zombie's command line is gone: one first seen as a zombie
            // is named by its `[comm]`; an earlier name is kept.)
            if rec.zombie_since.is_none() {
                rec.zombie_since = Some(now);
                rec.zombie_spans.push((now, now));
                st.last_change = now;
                if rec.wait_status.is_none() {
                    rec.wait_status = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .ok()
                        .and_then(|s| zombie_wait_status(&s));
                }
            } else if let Some(span) = rec.zombie_spans.last_mut() {
                span.1 = now;
            }
        } else {
            rec.zombie_since = None;
        }
    }
    for rec in st.snap.procs.iter_mut() {
        if rec.gone_at.is_none() && !seen.contains(&rec.host_pid) {
            rec.gone_at = Some(now);
            st.last_change = now;
        }
    }
}

impl Observer {
    /// Starts sampling below `root` (`unshare`, whose child is pyinit, when
    /// `root_is_wrapper`; else pyinit itself).
    pub fn start(root: i32, root_is_wrapper: bool) -> Observer {
        let state = Arc::new(Mutex::new(State {
            snap: Snapshot::default(),
            index: HashMap::new(),
            last_change: Instant::now(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mut st) = state.lock() {
                        sample(root, root_is_wrapper, &mut st);
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Observer {
            root,
            root_is_wrapper,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// pyinit's pid as seen from here, once it has started.
    pub fn pyinit_pid(&self, timeout: Duration) -> Option<i32> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(p) = self.state.lock().ok().and_then(|s| s.snap.pyinit_pid) {
                return Some(p);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Records which processes are alive as the stop signal goes out.
    pub fn mark_signal(&self) {
        if let Ok(mut st) = self.state.lock() {
            sample(self.root, self.root_is_wrapper, &mut st);
            for rec in st.snap.procs.iter_mut() {
                rec.alive_at_signal = rec.gone_at.is_none() && rec.zombie_since.is_none();
                if rec.alive_at_signal {
                    // First seen perhaps before its exec (a shim, a shell).
                    rec.cmd = crate::procs::command_line(rec.host_pid, 4096);
                    rec.at_signal =
                        std::fs::read_to_string(format!("/proc/{}/status", rec.host_pid))
                            .ok()
                            .and_then(|s| parse_status(&s));
                }
            }
        }
    }

    /// When a process last started, ended or became a zombie.
    pub fn last_change(&self) -> Option<Instant> {
        self.state.lock().ok().map(|s| s.last_change)
    }

    pub fn all_pids(&self) -> Vec<i32> {
        self.state
            .lock()
            .map(|s| {
                s.snap
                    .procs
                    .iter()
                    .map(|p| p.host_pid)
                    .chain(s.snap.pyinit_pid)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn stop(mut self) -> Snapshot {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        sample(self.root, self.root_is_wrapper, &mut st);
        let now = Instant::now();
        for rec in st.snap.procs.iter_mut() {
            rec.gone_at.get_or_insert(now);
        }
        st.snap.clone()
    }
}

/// One record from the pyinit under test, with its arrival time.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub at: Instant,
    pub record: Record,
}

#[derive(Default)]
struct LogInner {
    lines: Vec<LogLine>,
    ready_at: Option<Instant>,
}

/// Every record the pyinit under test wrote (it runs with `--log-format
/// json`: one JSON object a line on stdout and stderr).
#[derive(Default, Clone)]
pub struct OutputLog {
    inner: Arc<Mutex<LogInner>>,
    changed: Arc<Condvar>,
}

impl OutputLog {
    pub fn spawn_reader(
        &self,
        mut r: Box<dyn Read + Send>,
        ready: Option<regex_lite::Regex>,
    ) -> JoinHandle<()> {
        let log = self.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let n = r.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    if !pending.is_empty() {
                        log.push(&std::mem::take(&mut pending), ready.as_ref());
                    }
                    return;
                }
                pending.extend_from_slice(&buf[..n]);
                while let Some(i) = memchr::memchr(b'\n', &pending) {
                    let line: Vec<u8> = pending.drain(..=i).take(i).collect();
                    log.push(&line, ready.as_ref());
                }
            }
        })
    }

    fn push(&self, line: &[u8], ready: Option<&regex_lite::Regex>) {
        let record = records::parse(&String::from_utf8_lossy(line));
        let now = Instant::now();
        if let Ok(mut g) = self.inner.lock() {
            if let (Record::App(l), None, Some(re)) = (&record, g.ready_at, ready) {
                if re.is_match(&l.line) {
                    g.ready_at = Some(now);
                }
            }
            g.lines.push(LogLine { at: now, record });
        }
        self.changed.notify_all();
    }

    /// When a line matched the readiness regex, if one did; waits up to `for_`.
    pub fn wait_ready_line(&self, for_: Duration) -> Option<Instant> {
        let g = self.inner.lock().ok()?;
        let (g, _) = self
            .changed
            .wait_timeout_while(g, for_, |g| g.ready_at.is_none())
            .ok()?;
        g.ready_at
    }

    pub fn lines(&self) -> Vec<LogLine> {
        self.inner
            .lock()
            .map(|g| g.lines.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_parent_and_masks() {
        let text = "Name:\tpython3\nPPid:\t4\nSigBlk:\t0000000000000000\n\
                    SigIgn:\t0000000001001000\nSigCgt:\t0000000100004002\n";
        let st = parse_status(text).unwrap();
        assert_eq!(st.ppid, 4);
        assert!(st.masks.catches(libc::SIGTERM));
        assert!(st.masks.catches(libc::SIGINT));
        assert!(!st.masks.catches(libc::SIGQUIT));
        assert!(st.masks.shuts_out(libc::SIGPIPE));
        assert!(!st.masks.dies_of(libc::SIGTERM));
        assert!(parse_status("Name:\tx\n").is_none());
    }

    #[test]
    fn a_zombie_stat_gives_its_wait_status() {
        let mut stat = String::from("7 (python3 (x)) Z 2");
        for _ in 0..47 {
            stat.push_str(" 0");
        }
        stat.push_str(" 15\n");
        assert_eq!(zombie_wait_status(&stat), Some(15));
        assert_eq!(zombie_wait_status("7 (x) Z 2 0 0"), None);
    }
}
