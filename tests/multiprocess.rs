//! Several processes from a Procfile or a TOML config (SPEC "Several
//! processes", and points 2, 3, 5 and 6 of "What pyinit does"): prefixed
//! whole lines, one exit stopping the others, stop signals to every group,
//! per-process grace, restarts with back-off, readiness and ordering,
//! reverse-order stops, configuration errors, `--check-config`, reaping,
//! and per-process settings.
//!
//! The fixtures are `tests/fixtures/mp_*.py`; Procfiles and configs are
//! written into a temporary directory per test (ports are found by binding
//! port 0). Times compared across processes are CLOCK_MONOTONIC, which
//! Python's `time.monotonic()` reads.
mod util;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use util::*;

const T: Duration = Duration::from_secs(10);

#[track_caller]
fn assert_code(out: &Outcome, code: i32) {
    assert_eq!(
        out.code,
        code,
        "stdout:\n{}\nstderr:\n{}",
        clip(&out.stdout_str(), 20_000),
        out.stderr_str()
    );
}

/// At most `n` bytes of `s` (its end), for messages.
fn clip(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The Python interpreter that `python3` runs, resolved once: starting it
/// directly skips a pyenv shim's shell scripts, which cost much start-up
/// time on a loaded machine. Falls back to `python3`.
fn py() -> &'static str {
    static PY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| s.starts_with('/'))
            .unwrap_or_else(|| "python3".into())
    })
}

/// What /proc/PID/comm shows for the interpreter.
fn py_comm() -> String {
    let base = py().rsplit('/').next().unwrap_or("python3");
    base.chars().take(15).collect()
}

/// A fixture's path as text (for Procfiles and configs).
fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

/// A TOML basic string.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A TOML array of strings (an argv run directly).
fn argv(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `python3 mp_service.py NAME ARGS...` as a TOML argv.
fn service(name: &str, args: &[&str]) -> String {
    let f = fx("mp_service.py");
    let mut v = vec![py(), f.as_str(), name];
    v.extend_from_slice(args);
    argv(&v)
}

/// What a record says, without its `NAME | ` label.
fn content(line: &str) -> &str {
    line.split_once(" | ").map_or("", |(_, rest)| rest)
}

/// The `t=SECONDS` field of a fixture's line.
#[track_caller]
fn t_of(line: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("t="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no t= field in {line:?}"))
}

/// The first line of `text` whose content (after the label) starts with
/// `start`.
#[track_caller]
fn line_starting<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| content(l).starts_with(start))
        .unwrap_or_else(|| {
            panic!(
                "no line starting with {start:?} in:\n{}",
                clip(text, 20_000)
            )
        })
}

/// Index of the first line of `text` that contains `needle`.
#[track_caller]
fn index_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line containing {needle:?} in:\n{text}"))
}

/// The `pid=N` field of a fixture's line.
#[track_caller]
fn pid_of(line: &str) -> i32 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pid= field in {line:?}"))
}

/// The pid in `pyinit | NAME started (pid N)`.
#[track_caller]
fn started_pid(stderr: &str, name: &str) -> i32 {
    let head = format!("{name} started (pid ");
    stderr
        .lines()
        .find_map(|l| content(l).strip_prefix(head.as_str()))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("pyinit did not log that {name} started:\n{stderr}"))
}

/// Waits for `NAME READY` on stdout; returns that line.
fn ready(r: &Running, name: &str) -> String {
    let start = format!("{name} READY ");
    r.wait_stdout(T, |l| content(l).starts_with(&start))
}

/// 1. Two Python processes write long lines at the same time: every stdout
///    record is `NAME | line` with the names (and `pyinit` on stderr) padded
///    to one width, every line intact and in order; then one exits 3, the
///    other gets TERM, and pyinit exits 3.
#[test]
fn prefixed_lines_of_two_writers_stay_whole_and_an_exit_stops_the_other() {
    let dir = TempDir::new("lines");
    let py = py();
    let count = 300;
    let f = fx("mp_lines.py");
    let d = dir.path().display();
    let procfile = dir.write(
        "Procfile",
        &format!(
            "# two writers\nweb: {py} {f} web longworker {count} {d} 3\n\n\
             longworker: {py} {f} longworker web {count} {d}\n"
        ),
    );
    let r = Builder::new()
        .args(["-t", "5s", "--procfile"])
        .arg(&procfile)
        .spawn();
    let out = r.wait(Duration::from_secs(20));
    assert_code(&out, 3);

    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let stdout = out.stdout_str();
    let mut next: HashMap<&str, usize> = HashMap::new();
    let mut switches = 0;
    let mut previous = "";
    let mut got_term = 0;
    for line in stdout.lines() {
        let shown = clip(line, 120);
        let (label, rest) = line
            .split_once(" | ")
            .unwrap_or_else(|| panic!("record without a label: {shown:?}"));
        let name = label.trim_end();
        assert!(
            name == "web" || name == "longworker",
            "unexpected label: {shown:?}"
        );
        assert_eq!(
            label.len(),
            "longworker".len(),
            "label not padded to the longest name: {shown:?}"
        );
        if !previous.is_empty() && previous != name {
            switches += 1;
        }
        previous = name;
        if rest == "longworker got SIGTERM" {
            assert_eq!(name, "longworker", "{shown:?}");
            assert_eq!(next.get(name), Some(&count), "TERM before all lines");
            got_term += 1;
            continue;
        }
        let parts: Vec<&str> = rest.splitn(4, ':').collect();
        assert_eq!(parts.len(), 4, "damaged line: {shown:?}");
        assert_eq!(parts[0], name, "line under another name's label: {shown:?}");
        let i: usize = parts[1].parse().expect("line number");
        let n: usize = parts[2].parse().expect("length");
        let want = next.entry(name).or_insert(0);
        assert_eq!(i, *want, "{name}: line {want} expected, got: {shown:?}");
        *want += 1;
        assert_eq!(n, (i * 7919 + name.len() * 131) % 6000 + 1, "{shown:?}");
        let body = parts[3].as_bytes();
        assert_eq!(body.len(), n, "{name} line {i} has a damaged body");
        assert!(
            body.iter()
                .enumerate()
                .all(|(k, &b)| b == ALPHABET[(i + k * 7) % ALPHABET.len()]),
            "{name} line {i} has a damaged body: {shown:?}"
        );
    }
    assert_eq!(next.get("web"), Some(&count), "lines of web");
    assert_eq!(next.get("longworker"), Some(&count), "lines of longworker");
    assert_eq!(got_term, 1, "longworker should report TERM once");
    assert!(
        switches >= 2,
        "the two writers' lines never interleaved ({switches} switches)"
    );

    // pyinit's own lines are labelled the same way, padded to the same width.
    let stderr = out.stderr_str();
    for line in stderr.lines() {
        assert!(line.starts_with("pyinit     | "), "{line:?}");
    }
    let web = started_pid(&stderr, "web");
    let worker = started_pid(&stderr, "longworker");
    assert!(
        stderr.contains(&format!(
            "pyinit     | web (pid {web}) exited with status 3\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "pyinit     | longworker (pid {worker}) exited with status 0\n"
        )),
        "{stderr}"
    );
}

/// 2. TERM to pyinit (PID 1) with three processes, one with a child in its
///    group and one a shell pipeline: every process of every group gets
///    TERM and stops by itself well within the grace; all exit 0, so pyinit
///    exits 0 (SPEC point 6, signal-started stop).
#[test]
fn term_stops_every_process_of_every_group_within_the_grace() {
    let dir = TempDir::new("term3");
    let py = py();
    let s = fx("mp_service.py");
    let procfile = dir.write(
        "Procfile",
        &format!(
            "a: {py} {s} a\nb: {py} {s} b --child\n\
             c: trap 'exit 0' TERM; {py} {s} c --stderr | cat\n"
        ),
    );
    let r = Builder::new()
        .args(["-g", "-t", "5s", "--procfile"])
        .arg(&procfile)
        .spawn();
    for name in ["a", "b", "b.child"] {
        ready(&r, name);
    }
    r.wait_stderr(T, |l| content(l).starts_with("c READY "));
    let pyinit = r.pyinit_pid();
    // a; b and its child; sh, python3 and cat of the pipeline.
    assert!(
        eventually(T, || descendants_of(pyinit).len() == 6),
        "expected 6 processes below pyinit, found {:?}",
        descendants_of(pyinit)
    );
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let took = t0.elapsed();
    assert_code(&out, 0);
    assert!(took < Duration::from_secs(2), "took {took:?} with -t 5s");
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    for who in ["a", "b", "b.child"] {
        line_starting(&stdout, &format!("{who} got SIGTERM "));
        line_starting(&stdout, &format!("{who} exiting "));
    }
    line_starting(&stderr, "c got SIGTERM ");
    assert!(!stderr.contains("sent SIGKILL"), "{stderr}");
    for name in ["a", "b", "c"] {
        let pid = started_pid(&stderr, name);
        assert!(
            stderr.contains(&format!(
                "pyinit | {name} (pid {pid}) exited with status 0\n"
            )),
            "{name}:\n{stderr}"
        );
    }
}

/// 2b. A process that ignores TERM, with `grace = "1s"` under a global
///     grace of 8 s, is SIGKILLed at its own deadline and named, while a slow
///     process (1.6 s to stop) is left alone to finish; the prompt ones stop
///     at once. Exit status: the first non-zero status in config order (137
///     of the killed one), not the first in time (5 of c).
#[test]
fn per_process_grace_sigkills_only_the_stubborn_process_at_its_deadline() {
    let dir = TempDir::new("grace");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "grace = \"8s\"\n\n\
             [process.a]\ncommand = {}\n\n\
             [process.stubborn]\ncommand = {}\ngrace = \"1s\"\n\n\
             [process.slow]\ncommand = {}\n\n\
             [process.c]\ncommand = {}\n",
            service("a", &[]),
            service("stubborn", &["--ignore-term"]),
            service("slow", &["--delay", "1.6"]),
            service("c", &["--code", "5"]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    ready(&r, "a");
    ready(&r, "slow");
    ready(&r, "c");
    let stubborn = pid_of(&ready(&r, "stubborn"));
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    r.wait_stdout(T, |l| content(l) == "stubborn ignoring SIGTERM");
    for (name, status) in [("a", 0), ("c", 5)] {
        let tail = format!("exited with status {status}");
        let head = format!("{name} (pid ");
        r.wait_stderr(T, |l| {
            content(l).starts_with(&head) && content(l).ends_with(&tail)
        });
        let at = t0.elapsed();
        assert!(
            at < Duration::from_millis(800),
            "{name} stopped only {at:?} after TERM"
        );
    }
    let kill = r.wait_stderr(T, |l| l.contains("sent SIGKILL"));
    let at = t0.elapsed();
    assert!(
        at >= Duration::from_secs(1) && at < Duration::from_millis(1500),
        "stubborn was SIGKILLed {at:?} after TERM; its grace is 1s (global 8s)"
    );
    assert!(
        kill.starts_with("pyinit   | warning: grace period of 1s for stubborn ran out; "),
        "{kill}"
    );
    assert!(
        kill.contains(&format!("sent SIGKILL to 1 process: {stubborn} ("))
            && kill.contains("python3"),
        "{kill}"
    );
    assert!(
        !r.stdout_now().contains("slow exiting"),
        "slow should still be stopping at the kill:\n{}",
        r.stdout_now()
    );
    let out = r.wait(T);
    let took = t0.elapsed();
    assert_code(&out, 137);
    assert!(
        took >= Duration::from_millis(1600) && took < Duration::from_secs(3),
        "exited {took:?} after TERM; slow takes 1.6s"
    );
    let stderr = out.stderr_str();
    assert!(
        stderr.contains(&format!("stubborn (pid {stubborn}) killed by SIGKILL\n")),
        "{stderr}"
    );
    let slow = started_pid(&stderr, "slow");
    assert!(
        stderr.contains(&format!("slow (pid {slow}) exited with status 0\n")),
        "{stderr}"
    );
    line_starting(&out.stdout_str(), "slow exiting ");
    assert_eq!(stderr.matches("SIGKILL to").count(), 1, "{stderr}");
}

/// Point 6, other side: a signal-started stop where every process exits 0
/// except ones with non-zero statuses: the first in config order wins.
#[test]
fn signal_started_stop_exits_with_first_nonzero_status_in_config_order() {
    let dir = TempDir::new("order6");
    // Config order: zero, seven, three; seven stops last (after a delay).
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.zero]\ncommand = {}\n\n\
             [process.seven]\ncommand = {}\n\n\
             [process.three]\ncommand = {}\n",
            service("zero", &[]),
            service("seven", &["--code", "7", "--delay", "0.3"]),
            service("three", &["--code", "3"]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    for name in ["zero", "seven", "three"] {
        ready(&r, name);
    }
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 7);
}

/// HUP (not a stop signal) goes to each process's main process only: the
/// child in b's group does not get it, and nothing stops.
#[test]
fn hup_goes_to_each_main_process_only() {
    let dir = TempDir::new("hup");
    let py = py();
    let s = fx("mp_service.py");
    let procfile = dir.write(
        "Procfile",
        &format!("a: {py} {s} a\nb: {py} {s} b --child\n"),
    );
    // b handles TERM but never passes it to its child: only `group` stops it.
    let r = Builder::new()
        .args(["-g", "--procfile"])
        .arg(&procfile)
        .spawn();
    for name in ["a", "b", "b.child"] {
        ready(&r, name);
    }
    r.signal(libc::SIGHUP);
    r.wait_stdout(T, |l| content(l).starts_with("a got SIGHUP "));
    r.wait_stdout(T, |l| content(l).starts_with("b got SIGHUP "));
    assert!(!r.stderr_now().contains("exited"), "{}", r.stderr_now());
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let stdout = out.stdout_str();
    line_starting(&stdout, "b.child got SIGTERM ");
    assert!(
        !stdout.contains("b.child got SIGHUP"),
        "HUP reached b's child:\n{stdout}"
    );
}

/// The records of `--log-format json` output, one a line.
#[track_caller]
fn records(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// Seconds since the epoch of an RFC 3339 UTC time such as
/// `2026-11-22T04:34:47.455Z` (a record's `ts`).
#[track_caller]
fn epoch_of(ts: &str) -> f64 {
    let msg = || format!("not an RFC 3339 UTC time: {ts:?}");
    let (date, time) = ts
        .strip_suffix('Z')
        .and_then(|t| t.split_once('T'))
        .unwrap_or_else(|| panic!("{}", msg()));
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().unwrap_or_else(|_| panic!("{}", msg())))
        .collect();
    let t: Vec<f64> = time
        .split(':')
        .map(|x| x.parse().unwrap_or_else(|_| panic!("{}", msg())))
        .collect();
    assert!(d.len() == 3 && t.len() == 3, "{}", msg());
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days as f64 * 86400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

/// The runs of a restarted mp_flaky.py process, from a `--log-format json`
/// run: its own start and exit times (monotonic), and when pyinit logged it
/// started and ended (wall clock, `ts`).
struct Runs {
    own_starts: Vec<f64>,
    own_exits: Vec<f64>,
    started: Vec<f64>,
    ended: Vec<f64>,
    /// pyinit's messages, in order.
    said: Vec<String>,
}

fn runs(out: &Outcome, name: &str) -> Runs {
    let line = |r: &serde_json::Value| r["line"].as_str().unwrap_or("").to_string();
    let stdout = records(&out.stdout_str());
    let stderr = records(&out.stderr_str());
    let own = |what: &str| -> Vec<f64> {
        let head = format!("{name} {what} ");
        stdout
            .iter()
            .filter(|r| r["name"] == name && line(r).starts_with(&head))
            .map(|r| t_of(&line(r)))
            .collect()
    };
    let said: Vec<String> = stderr
        .iter()
        .filter(|r| r["name"] == "pyinit")
        .map(line)
        .collect();
    let logged = |head: &str| -> Vec<f64> {
        stderr
            .iter()
            .filter(|r| r["name"] == "pyinit" && line(r).starts_with(head))
            .map(|r| epoch_of(r["ts"].as_str().unwrap_or("")))
            .collect()
    };
    Runs {
        own_starts: own("start"),
        own_exits: own("exit"),
        started: logged(&format!("{name} started (pid ")),
        ended: logged(&format!("{name} (pid ")),
        said,
    }
}

/// Checks that run k+1 started `delays_ms[k]` after run k ended: at least
/// that long by the process's own clock (exit to start), and that long to
/// within 300 ms by pyinit's log (reaped to started; the process's start-up
/// time does not count there).
#[track_caller]
fn assert_backoff(runs: &Runs, delays_ms: &[u64]) {
    let n = delays_ms.len() + 1;
    let Runs {
        own_starts,
        own_exits,
        started,
        ended,
        said,
    } = runs;
    assert_eq!(
        own_starts.len(),
        n,
        "runs started: {own_starts:?}\n{said:#?}"
    );
    assert_eq!(own_exits.len(), n, "runs ended: {own_exits:?}\n{said:#?}");
    assert_eq!(started.len(), n, "started: {started:?}\n{said:#?}");
    assert_eq!(ended.len(), n, "ended: {ended:?}\n{said:#?}");
    for (k, &ms) in delays_ms.iter().enumerate() {
        let want = ms as f64 / 1000.0;
        let own = own_starts[k + 1] - own_exits[k];
        assert!(
            own >= want,
            "run {} started {own:.3}s after run {} exited; the back-off is {want}s",
            k + 2,
            k + 1
        );
        let logged = started[k + 1] - ended[k];
        assert!(
            logged >= want - 0.002 && logged <= want + 0.3,
            "pyinit restarted {logged:.3}s after the exit; the back-off is {want}s\n{said:#?}"
        );
    }
}

/// 3. `restart = "on-failure"` with back-off 200 ms doubling (cap 1 s) and
///    `max_restarts = 3`: restarts after 200, 400, 800 ms; the fourth
///    failure stops everything and pyinit exits 1 (flaky's status, not the
///    9 of the process it stopped).
#[test]
fn on_failure_restarts_with_doubling_backoff_then_gives_up() {
    let dir = TempDir::new("onfail");
    let flaky = fx("mp_flaky.py");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "log_format = \"json\"\n\n\
             [process.flaky]\ncommand = {}\nrestart = \"on-failure\"\n\
             backoff = \"200ms\"\nbackoff_max = \"1s\"\nmax_restarts = 3\n\n\
             [process.steady]\ncommand = {}\n",
            argv(&[py(), &flaky, "flaky", "1"]),
            service("steady", &["--code", "9"]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    let out = r.wait(T);
    assert_code(&out, 1);
    let runs = runs(&out, "flaky");
    assert_backoff(&runs, &[200, 400, 800]);
    let restarts: Vec<&String> = runs
        .said
        .iter()
        .filter(|l| l.starts_with("restarting "))
        .collect();
    assert_eq!(
        restarts,
        [
            "restarting flaky in 200ms (1 restart in the last 1m)",
            "restarting flaky in 400ms (2 restarts in the last 1m)",
            "restarting flaky in 800ms (3 restarts in the last 1m)",
        ]
    );
    let give_up =
        "warning: flaky exited with status 1 after 3 restarts within 1m; stopping everything";
    assert!(runs.said.iter().any(|l| l == give_up), "{:#?}", runs.said);
    assert!(
        out.stdout_str().contains("\"line\":\"steady got SIGTERM "),
        "{}",
        out.stdout_str()
    );
}

/// `restart = "always"` restarts after exit 0 too, the back-off is capped
/// by `backoff_max` (100, 150, 150 ms), and after `max_restarts` pyinit
/// stops with that process's status (0).
#[test]
fn always_restarts_after_success_and_caps_the_backoff() {
    let dir = TempDir::new("always");
    let flaky = fx("mp_flaky.py");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.steady]\ncommand = {}\n\n\
             [process.again]\ncommand = {}\nrestart = \"always\"\n\
             backoff = \"100ms\"\nbackoff_max = \"150ms\"\nmax_restarts = 3\n",
            service("steady", &["--code", "9"]),
            argv(&[py(), &flaky, "again", "0"]),
        ),
    );
    let r = Builder::new()
        .args(["--log-format", "json", "--config"])
        .arg(&config)
        .spawn();
    let out = r.wait(T);
    assert_code(&out, 0);
    let runs = runs(&out, "again");
    assert_backoff(&runs, &[100, 150, 150]);
    let restarts: Vec<&String> = runs
        .said
        .iter()
        .filter(|l| l.starts_with("restarting "))
        .collect();
    assert_eq!(
        restarts,
        [
            "restarting again in 100ms (1 restart in the last 1m)",
            "restarting again in 150ms (2 restarts in the last 1m)",
            "restarting again in 150ms (3 restarts in the last 1m)",
        ]
    );
}

/// `restart_window`: restarts older than the window do not count towards
/// `max_restarts` (1 here, yet it restarts again and again), and a run that
/// lasted the window resets the back-off (100 ms every time, no doubling).
#[test]
fn restarts_outside_the_window_do_not_count_and_reset_the_backoff() {
    let dir = TempDir::new("window");
    let flaky = fx("mp_flaky.py");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.flaky]\ncommand = {}\nrestart = \"on-failure\"\n\
             max_restarts = 1\nrestart_window = \"500ms\"\n\
             backoff = \"100ms\"\nbackoff_max = \"1s\"\n",
            argv(&[py(), &flaky, "flaky", "1", "0.6"]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    r.wait_stdout_bytes(T, |b| {
        String::from_utf8_lossy(b).matches("| flaky start ").count() >= 3
    });
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    // The last run ends with 1 whether TERM or its own exit ends it.
    assert_code(&out, 1);
    let stderr = out.stderr_str();
    let restarts: Vec<&str> = stderr
        .lines()
        .map(content)
        .filter(|l| l.starts_with("restarting flaky"))
        .collect();
    assert!(restarts.len() >= 2, "{stderr}");
    for l in &restarts {
        assert_eq!(
            *l, "restarting flaky in 100ms (1 restart in the last 500ms)",
            "{stderr}"
        );
    }
    assert!(!stderr.contains("stopping everything"), "{stderr}");
}

/// `restart = "never"`: its exit 0 stops the others (here one that dies of
/// the TERM, 143) and pyinit exits 0, the status of the process whose exit
/// started the shutdown.
#[test]
fn never_restarted_exit_stops_the_others_with_its_status() {
    let dir = TempDir::new("never");
    let py = py();
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.victim]\ncommand = {}\n\n\
             [process.oneshot]\ncommand = \"{py} -c 'print(\\\"oneshot done\\\")'\"\n\
             restart = \"never\"\ndepends_on = [\"victim\"]\n",
            service("victim", &["--no-handler"]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    let out = r.wait(T);
    assert_code(&out, 0);
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    assert!(
        stdout.contains("oneshot | oneshot done\n"),
        "{stdout}\n{stderr}"
    );
    let victim = started_pid(&stderr, "victim");
    let oneshot = started_pid(&stderr, "oneshot");
    assert!(
        stderr.contains(&format!("oneshot (pid {oneshot}) exited with status 0\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("victim (pid {victim}) killed by SIGTERM\n")),
        "{stderr}"
    );
    assert!(!stderr.contains("restarting"), "{stderr}");
}

/// Checks that the dependant `worker` started only once `web` was ready.
#[track_caller]
fn assert_started_after_ready(stdout: &str, stderr: &str, delay: f64) {
    let booting = t_of(line_starting(stdout, "web booting "));
    let ready_now = t_of(line_starting(stdout, "web ready-now "));
    let worker = t_of(line_starting(stdout, "worker READY "));
    assert!(
        worker >= ready_now,
        "worker started at {worker}, before web became ready at {ready_now}"
    );
    assert!(
        worker - booting >= delay,
        "worker started {:.3}s after web booted, web needs {delay}s",
        worker - booting
    );
    assert!(
        index_of(stderr, "| web is ready") < index_of(stderr, "| worker started (pid "),
        "{stderr}"
    );
}

/// 4. `ready = { port = N }`: the dependant starts once the port accepts
///    (web listens only after 0.5 s); the worker's own connection succeeds.
#[test]
fn depends_on_waits_for_the_port_to_accept() {
    let dir = TempDir::new("port");
    let port = free_port().to_string();
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.worker]\ncommand = {}\ndepends_on = [\"web\"]\n\n\
             [process.web]\ncommand = {}\nready = {{ port = {port} }}\n",
            service("worker", &["--connect", &port]),
            argv(&[py(), &fx("mp_ready.py"), "web", "port", "0.5", &port]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    ready(&r, "worker");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    let ok = line_starting(&stdout, "worker connect ");
    assert!(content(ok).starts_with("worker connect ok "), "{ok}");
    assert!(
        t_of(ok) >= t_of(line_starting(&stdout, "web ready-now ")),
        "{stdout}"
    );
    assert_started_after_ready(&stdout, &stderr, 0.5);
}

/// `ready = { line = "^Listening at" }`: matched on the line's text (not
/// the label); an earlier line that contains the words does not count.
#[test]
fn depends_on_waits_for_a_matching_line() {
    let dir = TempDir::new("line");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.web]\ncommand = {}\nready = {{ line = \"^Listening at\" }}\n\n\
             [process.worker]\ncommand = {}\ndepends_on = [\"web\"]\n",
            argv(&[py(), &fx("mp_ready.py"), "web", "line", "0.5"]),
            service("worker", &[]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    ready(&r, "worker");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    assert!(
        index_of(&stdout, "| Listening at 127.0.0.1") < index_of(&stdout, "| worker READY "),
        "{stdout}"
    );
    assert_started_after_ready(&stdout, &stderr, 0.5);
}

/// `ready = { notify = true }`: pyinit gives web a NOTIFY_SOCKET (and only
/// web); `STATUS=booting` does not count, `READY=1` 0.5 s later does.
#[test]
fn depends_on_waits_for_ready_on_notify_socket() {
    let dir = TempDir::new("notify");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.web]\ncommand = {}\nready = {{ notify = true }}\n\n\
             [process.worker]\ncommand = {}\ndepends_on = [\"web\"]\n",
            argv(&[py(), &fx("mp_ready.py"), "web", "notify", "0.5"]),
            service("worker", &["--show-env", "NOTIFY_SOCKET"]),
        ),
    );
    // Every pyinit of the test suite is PID 1: a TMPDIR of its own keeps its
    // socket apart from other tests' (see the test below for the shared case).
    let r = Builder::new()
        .arg("--config")
        .arg(&config)
        .env("TMPDIR", dir.path())
        .spawn();
    ready(&r, "worker");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    let booting = line_starting(&stdout, "web booting ");
    assert!(!booting.ends_with("NOTIFY_SOCKET=<unset>"), "{booting}");
    line_starting(&stdout, "web notified");
    assert!(
        line_starting(&stdout, "worker cwd=").ends_with(" NOTIFY_SOCKET=<unset>"),
        "{stdout}"
    );
    assert_started_after_ready(&stdout, &stderr, 0.5);
}

/// Two pyinit instances that are both PID 1 (two containers) and share a
/// /tmp (a volume) must not take each other's NOTIFY_SOCKET: the first's
/// web sends READY=1 only once the second pyinit runs, and the first's
/// worker must still start.
#[test]
fn notify_sockets_of_two_pid1_instances_sharing_tmp_stay_apart() {
    let dir = TempDir::new("notify2");
    let go = dir.join("go");
    let config = |when: &str| {
        format!(
            "[process.web]\ncommand = {}\nready = {{ notify = true }}\n\n\
             [process.worker]\ncommand = {}\ndepends_on = [\"web\"]\n",
            argv(&[py(), &fx("mp_ready.py"), "web", "notify", when]),
            service("worker", &[]),
        )
    };
    let first = dir.write("first.toml", &config(&format!("file:{}", go.display())));
    let second = dir.write("second.toml", &config("0"));
    let shared = dir.join("tmp");
    std::fs::create_dir(&shared).unwrap();
    let a = Builder::new()
        .arg("--config")
        .arg(&first)
        .env("TMPDIR", &shared)
        .spawn();
    a.wait_stdout(T, |l| content(l).starts_with("web booting "));
    let b = Builder::new()
        .arg("--config")
        .arg(&second)
        .env("TMPDIR", &shared)
        .spawn();
    ready(&b, "worker");
    std::fs::write(&go, "").unwrap();
    a.wait_stdout(T, |l| {
        content(l).starts_with("web notified") || content(l).starts_with("web notify failed")
    });
    let a_ready = eventually(Duration::from_secs(3), || {
        a.stdout_now().contains("| worker READY ")
    });
    let a_out = a.stdout_now();
    b.signal(libc::SIGTERM);
    let _ = b.wait(T);
    a.signal(libc::SIGTERM);
    let a_res = a.wait(T);
    assert!(
        a_ready,
        "the first pyinit never saw READY=1 from its web (the second took over its socket):\n{a_out}\n{}",
        a_res.stderr_str()
    );
}

/// 5. Stop in reverse dependency order (web <- worker <- beat): beat has
///    exited before worker gets TERM, worker before web gets it.
#[test]
fn stops_in_reverse_dependency_order() {
    let dir = TempDir::new("revstop");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.beat]\ncommand = {}\ndepends_on = [\"worker\"]\n\n\
             [process.worker]\ncommand = {}\ndepends_on = [\"web\"]\n\n\
             [process.web]\ncommand = {}\n",
            service("beat", &["--delay", "0.2"]),
            service("worker", &["--delay", "0.2"]),
            service("web", &["--delay", "0.2"]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    for name in ["web", "worker", "beat"] {
        ready(&r, name);
    }
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    let t = |what: &str| t_of(line_starting(&stdout, what));
    assert!(
        t("beat exiting ") < t("worker got SIGTERM "),
        "worker got TERM before beat exited:\n{stdout}"
    );
    assert!(
        t("worker exiting ") < t("web got SIGTERM "),
        "web got TERM before worker exited:\n{stdout}"
    );
    // Started in dependency order, whatever the file's order.
    assert!(
        index_of(&stderr, "| web started") < index_of(&stderr, "| worker started")
            && index_of(&stderr, "| worker started") < index_of(&stderr, "| beat started"),
        "{stderr}"
    );
    assert!(!stderr.contains("sent SIGKILL"), "{stderr}");
}

/// One bad input: a file to write (none if `file` is empty), extra
/// arguments, and what the one error line must contain.
struct BadCase {
    what: &'static str,
    file: &'static str,
    text: String,
    extra: Vec<String>,
    needles: Vec<String>,
}

fn bad(what: &'static str, file: &'static str, text: String, needles: &[&str]) -> BadCase {
    BadCase {
        what,
        file,
        text,
        extra: Vec::new(),
        needles: needles.iter().map(|s| s.to_string()).collect(),
    }
}

impl BadCase {
    fn with_args(mut self, extra: &[&str]) -> BadCase {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// 6. Every configuration error exits 2 with one line on stderr naming the
///    problem, before anything starts (each config's valid process would
///    create a marker file).
#[test]
fn configuration_errors_exit_2_with_one_line_before_anything_starts() {
    let dir = TempDir::new("bad");
    let marker = dir.join("marker");
    let marker_s = marker.display().to_string();
    let dir_s = dir.path().display().to_string();
    let touch = format!("touch {marker_s}");
    let first = format!("[process.first]\ncommand = {}\n", q(&touch));
    let toml = |body: &str| format!("{first}{body}");
    let none = String::new;
    let cases = vec![
        bad(
            "missing config file",
            "",
            none(),
            &[
                "cannot read --config",
                "/nonexistent/pyinit.toml",
                "No such file or directory",
            ],
        )
        .with_args(&["--config", "/nonexistent/pyinit.toml"]),
        bad(
            "missing Procfile",
            "",
            none(),
            &[
                "--procfile",
                "/nonexistent/Procfile",
                "No such file or directory",
            ],
        )
        .with_args(&["--procfile", "/nonexistent/Procfile"]),
        bad(
            "config is a directory",
            "",
            none(),
            &["--config", "Is a directory"],
        )
        .with_args(&["--config", &dir_s]),
        bad(
            "TOML syntax error",
            "syntax.toml",
            toml("[process.web\ncommand = \"x\"\n"),
            &["syntax.toml", "line 3, column 13"],
        ),
        bad(
            "unknown key in a process",
            "key.toml",
            toml("[process.web]\ncommand = \"x\"\ncomand = \"y\"\n"),
            &["line 5, column 1", "comand", "unknown"],
        ),
        bad(
            "unknown top-level key",
            "top.toml",
            format!("gracee = \"1s\"\n{first}"),
            &["line 1, column 1", "gracee", "unknown"],
        ),
        bad(
            "unknown key in ready",
            "ready.toml",
            toml("[process.web]\ncommand = \"x\"\nready = { prot = 80 }\n"),
            &["line 5", "prot", "unknown"],
        ),
        bad(
            "duplicate process table",
            "dup.toml",
            toml("[process.first]\ncommand = \"x\"\n"),
            &["line 3", "duplicate"],
        ),
        bad(
            "duplicate Procfile name",
            "Procfile.dup",
            format!("web: {touch}\nworker: {touch}\nweb: {touch}\n"),
            &["line 3", "duplicate", "'web'", "line 1"],
        ),
        bad(
            "dependency cycle",
            "cycle.toml",
            toml(
                "[process.a]\ncommand = \"x\"\ndepends_on = [\"b\"]\n\
                 [process.b]\ncommand = \"x\"\ndepends_on = [\"c\"]\n\
                 [process.c]\ncommand = \"x\"\ndepends_on = [\"a\"]\n",
            ),
            &["dependency cycle: a -> b -> c -> a"],
        ),
        bad(
            "depends on itself",
            "self.toml",
            toml("[process.a]\ncommand = \"x\"\ndepends_on = [\"a\"]\n"),
            &["'a'", "itself"],
        ),
        bad(
            "depends on an unknown name",
            "unknown.toml",
            toml("[process.worker]\ncommand = \"x\"\ndepends_on = [\"db\"]\n"),
            &["'worker'", "unknown process 'db'"],
        ),
        bad(
            "empty Procfile command",
            "Procfile.empty",
            format!("first: {touch}\nweb:\n"),
            &["line 2", "'web'", "empty command"],
        ),
        bad(
            "empty command string",
            "empty1.toml",
            toml("[process.web]\ncommand = \"\"\n"),
            &["line 4, column 11", "'web'", "empty command"],
        ),
        bad(
            "blank command string",
            "empty2.toml",
            toml("[process.web]\ncommand = \"   \"\n"),
            &["'web'", "empty command"],
        ),
        bad(
            "empty command array",
            "empty3.toml",
            toml("[process.web]\ncommand = []\n"),
            &["line 4, column 11", "'web'", "empty command"],
        ),
        bad(
            "missing command",
            "nocmd.toml",
            toml("[process.web]\nrestart = \"always\"\n"),
            &["'web'", "command"],
        ),
        bad(
            "bad duration",
            "dur.toml",
            toml("[process.web]\ncommand = \"x\"\ngrace = \"soon\"\n"),
            &["line 5, column 9", "grace", "'soon'"],
        ),
        bad(
            "bad back-off duration",
            "backoff.toml",
            toml("[process.web]\ncommand = \"x\"\nbackoff = \"fast\"\n"),
            &["line 5", "backoff", "'fast'"],
        ),
        bad(
            "bad restart value",
            "restart.toml",
            toml("[process.web]\ncommand = \"x\"\nrestart = \"sometimes\"\n"),
            &["line 5, column 11", "restart", "'sometimes'"],
        ),
        bad(
            "bad signal name",
            "signal.toml",
            toml("[process.web]\ncommand = \"x\"\nstop_signal = \"SIGFOO\"\n"),
            &["line 5, column 15", "stop_signal", "SIGFOO"],
        ),
        bad(
            "bad ready port",
            "port.toml",
            toml("[process.web]\ncommand = \"x\"\nready = { port = 70000 }\n"),
            &["line 5", "port"],
        ),
        bad(
            "bad ready regex",
            "regex.toml",
            toml("[process.web]\ncommand = \"x\"\nready = { line = \"(\" }\n"),
            &["line 5", "ready.line"],
        ),
        bad(
            "no process at all",
            "none.toml",
            "grace = \"1s\"\n".into(),
            &["no process"],
        ),
        bad(
            "duplicate process table names the process",
            "dup2.toml",
            toml("[process.web]\ncommand = \"x\"\n[process.web]\ncommand = \"y\"\n"),
            &["line 5", "process 'web' is defined twice"],
        ),
        bad(
            "one-shot that restarts always",
            "oneshot.toml",
            toml("[process.migrate]\ncommand = \"x\"\noneshot = true\nrestart = \"always\"\n"),
            &["'migrate'", "one-shot", "restart = \"always\""],
        ),
        bad(
            "timeout on a long-running process",
            "timeout.toml",
            toml("[process.web]\ncommand = \"x\"\ntimeout = \"1m\"\n"),
            &["line 5, column 1", "'web'", "timeout is for one-shots only"],
        ),
        bad(
            "per-process grace above the default grace",
            "grace.toml",
            toml("[process.worker]\ncommand = \"x\"\ngrace = \"30s\"\n"),
            &[
                "'worker'",
                "grace 30s",
                "top-level grace 9s",
                "the 9s default",
            ],
        ),
        bad(
            "per-process grace above the grace key",
            "grace2.toml",
            format!("grace = \"20s\"\n{first}[process.worker]\ncommand = \"x\"\ngrace = \"21s\"\n"),
            &["'worker'", "grace 21s", "top-level grace 20s", "grace key"],
        ),
        bad(
            "per-process grace above -t",
            "grace3.toml",
            format!("grace = \"20s\"\n{first}[process.worker]\ncommand = \"x\"\ngrace = \"15s\"\n"),
            &["'worker'", "grace 15s", "top-level grace 10s", "--grace"],
        )
        .with_args(&["-t", "10s"]),
        bad(
            "bad name in signals",
            "signals.toml",
            toml("[process.web]\ncommand = \"x\"\nsignals = [\"HUP\", \"SIGNOPE\"]\n"),
            &["line 5", "'web'", "signals", "SIGNOPE"],
        ),
        bad(
            "ready.http with a host name",
            "http.toml",
            toml("[process.web]\ncommand = \"x\"\nready = { http = \"http://web:8000/\" }\n"),
            &["line 5", "'web'", "ready.http", "literal IP address"],
        ),
        bad(
            "single_child is not a key (signal_scope is)",
            "single.toml",
            toml("[process.web]\ncommand = \"x\"\nsingle_child = true\n"),
            &["line 5", "'web'", "single_child", "signal_scope"],
        ),
        bad(
            "dependency cycle through a one-shot",
            "cycle2.toml",
            toml(
                "[process.migrate]\ncommand = \"x\"\noneshot = true\ndepends_on = [\"web\"]\n\
                 [process.web]\ncommand = \"x\"\ndepends_on = [\"migrate\"]\n",
            ),
            &["dependency cycle: migrate -> web -> migrate"],
        ),
        bad(
            "scope flags that disagree",
            "scope.toml",
            toml(""),
            &["'--single-child'", "'--group'", "disagree"],
        )
        .with_args(&["-c", "-g"]),
        bad(
            "--procfile with a command",
            "Procfile.ok",
            format!("web: {touch}\n"),
            &["--procfile", "COMMAND"],
        )
        .with_args(&["--", "touch", &marker_s]),
        bad(
            "--procfile with --config",
            "Procfile.ok2",
            format!("web: {touch}\n"),
            &["--procfile", "--config"],
        )
        .with_args(&["--config", "/nonexistent.toml"]),
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        if !c.file.is_empty() {
            let path = dir.write(c.file, &c.text);
            let flag = if c.file.starts_with("Procfile") {
                "--procfile"
            } else {
                "--config"
            };
            args.push(flag.into());
            args.push(path.into());
        }
        args.extend(c.extra.iter().map(Into::into));
        let out = run_bounded(Builder::new().args(&args).command(), T);
        let stderr = out.stderr_str();
        let lines: Vec<&str> = stderr.lines().collect();
        let problem = if out.code != 2 {
            Some(format!("exit status {}", out.code))
        } else if lines.len() != 1 || !stderr.ends_with('\n') {
            Some(format!("{} lines on stderr", lines.len()))
        } else if !lines[0].starts_with("pyinit: error: ") {
            Some("not a pyinit error line".into())
        } else if let Some(n) = c.needles.iter().find(|n| !lines[0].contains(n.as_str())) {
            Some(format!("{n:?} not named"))
        } else if !out.stdout.is_empty() {
            Some("output on stdout".into())
        } else if marker.exists() {
            let _ = std::fs::remove_file(&marker);
            Some("a process was started".into())
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}; stderr: {stderr:?}", c.what));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// 7. `--check-config` prints the plan (names, start and stop order,
///    restart policy, stop signal and grace) and starts nothing.
#[test]
fn check_config_prints_the_plan_and_starts_nothing() {
    let dir = TempDir::new("plan");
    let marker = dir.join("marker");
    let touch = format!("touch {}", marker.display());
    let port = free_port();
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "grace = \"4s\"\n\n\
             [process.beat]\ncommand = {t}\ndepends_on = [\"worker\"]\nrestart = \"always\"\n\n\
             [process.web]\ncommand = {a}\nready = {{ port = {port} }}\n\n\
             [process.worker]\ncommand = {t}\ndepends_on = [\"web\"]\nrestart = \"on-failure\"\n\
             max_restarts = 3\nbackoff = \"200ms\"\nbackoff_max = \"1s\"\n\
             stop_signal = \"QUIT\"\ngrace = \"3s\"\nready = {{ line = \"^ok$\" }}\n",
            t = q(&touch),
            a = argv(&["touch", &marker.display().to_string()]),
        ),
    );
    let out = run_bounded(
        Builder::new()
            .args([
                "--config".as_ref(),
                config.as_os_str(),
                "--check-config".as_ref(),
            ])
            .command(),
        T,
    );
    assert_code(&out, 0);
    assert!(!marker.exists(), "--check-config started a process");
    let stdout = out.stdout_str();
    let squeezed: Vec<String> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for want in [
        "3 processes (config OK)",
        "start order: web, worker, beat",
        "stop order: beat, worker, web",
    ] {
        assert!(squeezed.iter().any(|l| l == want), "{want:?}:\n{stdout}");
    }
    // One section per process, in start order.
    let sections: Vec<&str> = stdout.split("\n[").skip(1).collect();
    let names: Vec<&str> = sections
        .iter()
        .map(|s| s.split(']').next().unwrap())
        .collect();
    assert_eq!(names, ["web", "worker", "beat"], "{stdout}");
    let has = |i: usize, words: &[&str]| {
        let s = sections[i].split_whitespace().collect::<Vec<_>>().join(" ");
        for w in words {
            assert!(s.contains(w), "[{}] lacks {w:?}:\n{stdout}", names[i]);
        }
    };
    has(
        0,
        &[
            &format!("127.0.0.1:{port}"),
            "restart never",
            "SIGKILL after 4s",
        ],
    );
    has(
        1,
        &[
            "depends on web",
            "^ok$",
            "restart on-failure (at most 3 in 1m, back-off 200ms doubling to 1s)",
            "stop SIGQUIT, SIGKILL after 3s",
        ],
    );
    has(
        2,
        &[
            "depends on worker",
            "restart always",
            "(TERM)",
            "SIGKILL after 4s",
        ],
    );

    // A Procfile too: file order, and nothing starts.
    let procfile = dir.write("Procfile", &format!("web: {touch}\nclock: {touch}\n"));
    let out = run_bounded(
        Builder::new()
            .args([
                "--check-config".as_ref(),
                "--procfile".as_ref(),
                procfile.as_os_str(),
            ])
            .command(),
        T,
    );
    assert_code(&out, 0);
    assert!(!marker.exists(), "--check-config started a process");
    assert!(
        out.stdout_str().contains("start order: web, clock\n"),
        "{}",
        out.stdout_str()
    );
}

/// 7b. The plan shows one-shots, what each process waits for, each stop
///     signal, scope and grace, and the longest the whole stop can take,
///     with a warning above Docker's 10 s; `release` in a Procfile runs first.
#[test]
fn check_config_plan_shows_one_shots_and_the_stop_budget() {
    let dir = TempDir::new("plan2");
    let marker = dir.join("marker");
    let touch = q(&format!("touch {}", marker.display()));
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "grace = \"20s\"\nstop_delay = \"2s\"\n\n\
             [process.migrate]\ncommand = {touch}\noneshot = true\ntimeout = \"5m\"\nexpect_exit = [0, 3]\ngrace = \"3s\"\n\n\
             [process.web]\ncommand = {touch}\ndepends_on = [\"migrate\"]\nready = {{ http = \"http://127.0.0.1:8000/health\" }}\n\
             grace = \"8s\"\nsignal_scope = \"main\"\n\n\
             [process.worker]\ncommand = {touch}\ndepends_on = [\"migrate\", \"web\"]\ngrace = \"5s\"\n\
             stop_signal = \"QUIT\"\nsignals = []\n"
        ),
    );
    let out = run_bounded(
        Builder::new()
            .args([
                "--check-config".as_ref(),
                "--config".as_ref(),
                config.as_os_str(),
            ])
            .command(),
        T,
    );
    assert_code(&out, 0);
    assert!(!marker.exists(), "--check-config started a process");
    let stdout = out.stdout_str();
    let squeezed = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "start order: migrate, web, worker",
        "migrate at once (one-shot)",
        "web after migrate completed",
        "worker after migrate completed, web ready",
        "stop order: worker, web, migrate",
        "longest stop: 15s = stop delay 2s + the smaller of grace 20s and the longest stop chain 13s (worker 5s -> web 8s)",
        "one-shot runs to completion (success: exit 0, 3); timeout 5m",
        "stop SIGQUIT, SIGKILL after 5s; scope auto",
        "SIGKILL after 8s; scope main",
        "signals no non-stop signals",
        "when GET http://127.0.0.1:8000/health answers 2xx/3xx",
    ] {
        assert!(squeezed.contains(want), "{want:?}:\n{stdout}");
    }
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning:\n{stdout}"));
    for want in [
        "Docker's default stop timeout (10s)",
        "docker run --stop-timeout 16",
        "stop_grace_period: 16s",
        "terminationGracePeriodSeconds: 16",
    ] {
        assert!(warning.contains(want), "{want:?}: {warning}");
    }

    // A Procfile's `release` is a one-shot that the others wait for.
    let procfile = dir.write(
        "Procfile",
        "web: gunicorn app:app\nrelease: python manage.py migrate\nworker: celery -A proj worker\n",
    );
    let out = run_bounded(
        Builder::new()
            .args([
                "--check-config".as_ref(),
                "--procfile".as_ref(),
                procfile.as_os_str(),
            ])
            .command(),
        T,
    );
    assert_code(&out, 0);
    let squeezed = out
        .stdout_str()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for want in [
        "start order: release, web, worker",
        "release at once (one-shot)",
        "web after release completed",
        "worker after release completed",
    ] {
        assert!(squeezed.contains(want), "{want:?}:\n{}", out.stdout_str());
    }
    assert!(!squeezed.contains("warning:"), "{}", out.stdout_str());
}

/// 8. Two processes each leave 50 orphans: pyinit (PID 1) reaps them all,
///    no zombie stays below it, and TERM then ends everything cleanly.
#[test]
fn orphans_of_several_groups_are_all_reaped() {
    let dir = TempDir::new("orphans");
    let py = py();
    let s = fx("mp_service.py");
    let procfile = dir.write(
        "Procfile",
        &format!("one: {py} {s} one --orphans 50\ntwo: {py} {s} two --orphans 50\n"),
    );
    let r = Builder::new()
        .args(["-v", "--procfile"])
        .arg(&procfile)
        .spawn();
    ready(&r, "one");
    ready(&r, "two");
    let pyinit = r.pyinit_pid();
    let settled = eventually(T, || {
        let below = descendants_of(pyinit);
        below.len() == 2 && below.iter().all(|&p| proc_state(p) != Some('Z'))
    });
    let below: Vec<(i32, Option<char>)> = descendants_of(pyinit)
        .into_iter()
        .map(|p| (p, proc_state(p)))
        .collect();
    assert!(
        settled,
        "orphans or zombies left below pyinit: {} processes, {:?}",
        below.len(),
        &below[..below.len().min(20)]
    );
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let stderr = out.stderr_str();
    assert!(stderr.contains("100 orphan(s) reaped"), "{stderr}");
    assert!(!stderr.contains("sent SIGKILL"), "{stderr}");
}

/// 9. `stop_signal = "QUIT"` sends QUIT (others get TERM); `env` and
///    `working_dir` reach the process; pyinit's own PYINIT_* variables do
///    not, and PYTHONUNBUFFERED is added.
#[test]
fn stop_signal_env_and_working_dir_reach_the_process() {
    let dir = TempDir::new("perproc");
    let wd = dir.join("wd");
    std::fs::create_dir(&wd).unwrap();
    let vars = [
        "--show-env",
        "GREETING",
        "--show-env",
        "NUM",
        "--show-env",
        "PYINIT_STOP_DELAY",
        "--show-env",
        "PYTHONUNBUFFERED",
    ];
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.quitter]\ncommand = {}\nstop_signal = \"QUIT\"\n\
             env = {{ GREETING = \"hello from toml\", NUM = 42 }}\nworking_dir = {}\n\n\
             [process.plain]\ncommand = {}\n",
            service("quitter", &vars),
            q(&wd.display().to_string()),
            service("plain", &vars),
        ),
    );
    let r = Builder::new()
        .arg("--config")
        .arg(&config)
        .env("GREETING", "from the environment")
        .env("PYINIT_STOP_DELAY", "0")
        .spawn();
    ready(&r, "quitter");
    ready(&r, "plain");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let stdout = out.stdout_str();
    let here = std::env::current_dir().unwrap();
    assert_eq!(
        content(line_starting(&stdout, "quitter cwd=")),
        format!(
            "quitter cwd={} GREETING=hello from toml NUM=42 PYINIT_STOP_DELAY=<unset> PYTHONUNBUFFERED=1",
            wd.display()
        )
    );
    assert_eq!(
        content(line_starting(&stdout, "plain cwd=")),
        format!(
            "plain cwd={} GREETING=from the environment NUM=<unset> PYINIT_STOP_DELAY=<unset> PYTHONUNBUFFERED=1",
            here.display()
        )
    );
    line_starting(&stdout, "quitter got SIGQUIT ");
    line_starting(&stdout, "plain got SIGTERM ");
    assert!(!stdout.contains("quitter got SIGTERM"), "{stdout}");
}

/// A Procfile command is run by the shell (`$VAR` from `--env-file` and
/// from the environment expand) and, being one simple command, exec'd: the
/// pid pyinit logs is python3 itself, with no `sh` left in between. A
/// pipeline keeps its shell (so the check can tell them apart).
#[test]
fn procfile_commands_expand_variables_and_simple_ones_are_execed() {
    let dir = TempDir::new("procfile");
    let py = py();
    let s = fx("mp_service.py");
    let env_file = dir.write("app.env", "GREETING=from-env-file\n");
    let procfile = dir.write(
        "Procfile",
        &format!(
            "web: {py} {s} web --say $GREETING \"$OTHER\"\n\
             piped: {py} {s} piped --stderr | cat\n"
        ),
    );
    let r = Builder::new()
        .args(["--env-file".as_ref(), env_file.as_os_str()])
        .args(["--procfile".as_ref(), procfile.as_os_str()])
        .env("OTHER", "from the environment")
        .spawn();
    let web_ready = ready(&r, "web");
    r.wait_stderr(T, |l| content(l).starts_with("piped READY "));
    let stderr = r.stderr_now();
    let web = started_pid(&stderr, "web");
    let piped = started_pid(&stderr, "piped");
    assert_eq!(pid_of(&web_ready), web, "web's pid is not the one started");
    let pyinit = r.pyinit_pid();
    let kids: Vec<(i32, Option<i32>, Option<String>)> = children_of(pyinit)
        .into_iter()
        .map(|p| (p, ns_pid(p), proc_comm(p)))
        .collect();
    let comm_of = |ns: i32| {
        kids.iter()
            .find(|k| k.1 == Some(ns))
            .and_then(|k| k.2.clone())
            .unwrap_or_else(|| panic!("pid {ns} is not a child of pyinit: {kids:?}"))
    };
    assert_eq!(comm_of(web), py_comm(), "{kids:?}");
    assert_eq!(comm_of(piped), "sh", "{kids:?}");
    assert_eq!(kids.len(), 2, "{kids:?}");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    // web exits 0; the pipeline's shell dies of the TERM (143), the first
    // non-zero status in Procfile order.
    assert_code(&out, 143);
    let stdout = out.stdout_str();
    assert_eq!(
        content(line_starting(&stdout, "web args=")),
        "web args=['from-env-file', 'from the environment']"
    );
    line_starting(&stdout, "web got SIGTERM ");
}

/// A config argv that does not exist: pyinit names it, stops the others and
/// exits 127 (SPEC point 1, per process).
#[test]
fn missing_program_stops_everything_with_127() {
    let dir = TempDir::new("notfound");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.ok]\ncommand = {}\n\n[process.web]\ncommand = {}\n",
            service("ok", &[]),
            argv(&["/nonexistent/bin/web", "--port", "1"]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    let out = r.wait(T);
    assert_code(&out, 127);
    let stderr = out.stderr_str();
    let line = stderr
        .lines()
        .find(|l| l.contains("/nonexistent/bin/web"))
        .unwrap_or_else(|| panic!("the program is not named:\n{stderr}"));
    assert!(
        line.starts_with("pyinit | error: web: ") && line.contains("not found"),
        "{line}"
    );
    assert!(!stderr.contains("web started"), "{stderr}");
}

/// A dependency that dies before it is ready: its dependant never starts
/// and pyinit exits with the dependency's status.
#[test]
fn dependency_dying_before_ready_stops_everything() {
    let dir = TempDir::new("deaddep");
    let port = free_port();
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.web]\ncommand = {}\nready = {{ port = {port} }}\n\n\
             [process.worker]\ncommand = {}\ndepends_on = [\"web\"]\n",
            argv(&[py(), "-c", "import sys; sys.exit(4)"]),
            service("worker", &[]),
        ),
    );
    let r = Builder::new().arg("--config").arg(&config).spawn();
    let out = r.wait(T);
    assert_code(&out, 4);
    let stderr = out.stderr_str();
    assert!(!stderr.contains("worker started"), "{stderr}");
    assert!(!stderr.contains("web is ready"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", out.stdout_str());
}

/// Programs without a TERM handler die of the forwarded TERM (143): that is
/// pyinit's status after a signal-started stop, and `expect_exit = [143]`
/// in the config (or `-e 143`) makes it success (SPEC point 6).
#[test]
fn expect_exit_maps_every_status_in_multi_mode() {
    let dir = TempDir::new("expect");
    let py = py();
    let s = fx("mp_service.py");
    let procfile = dir.write(
        "Procfile",
        &format!("a: {py} {s} a --no-handler\nb: {py} {s} b --no-handler\n"),
    );
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "expect_exit = [143]\n\n[process.a]\ncommand = {}\n\n[process.b]\ncommand = {}\n",
            service("a", &["--no-handler"]),
            service("b", &["--no-handler"]),
        ),
    );
    for (args, code) in [
        (vec!["--procfile".as_ref(), procfile.as_os_str()], 143),
        (
            vec![
                "-e".as_ref(),
                "143".as_ref(),
                "--procfile".as_ref(),
                procfile.as_os_str(),
            ],
            0,
        ),
        (vec!["--config".as_ref(), config.as_os_str()], 0),
    ] {
        let r = Builder::new().args(&args).spawn();
        ready(&r, "a");
        ready(&r, "b");
        r.signal(libc::SIGTERM);
        let out = r.wait(T);
        assert_code(&out, code);
        let stderr = out.stderr_str();
        for name in ["a", "b"] {
            let pid = started_pid(&stderr, name);
            assert!(
                stderr.contains(&format!("{name} (pid {pid}) killed by SIGTERM\n")),
                "{args:?}:\n{stderr}"
            );
        }
    }
}

/// `-r TERM:INT`: the stop that TERM starts sends INT to every group (the
/// child in b's group too); a process with `stop_signal` keeps its own.
#[test]
fn rewritten_stop_signal_reaches_every_group() {
    let dir = TempDir::new("rewrite");
    let config = dir.write(
        "pyinit.toml",
        &format!(
            "[process.a]\ncommand = {}\n\n[process.b]\ncommand = {}\n\n\
             [process.q]\ncommand = {}\nstop_signal = \"QUIT\"\n",
            service("a", &[]),
            service("b", &["--child"]),
            service("q", &[]),
        ),
    );
    let r = Builder::new()
        .args(["-g", "-r", "TERM:INT", "--config"])
        .arg(&config)
        .spawn();
    for name in ["a", "b", "b.child", "q"] {
        ready(&r, name);
    }
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let stdout = out.stdout_str();
    for name in ["a", "b", "b.child"] {
        line_starting(&stdout, &format!("{name} got SIGINT "));
    }
    line_starting(&stdout, "q got SIGQUIT ");
    assert!(!stdout.contains("got SIGTERM"), "{stdout}");
}

/// `--log-format json` with several processes: each record names its
/// process and carries that process's pid and stream; pyinit's own lines
/// are records named `pyinit`.
#[test]
fn json_records_name_each_process_and_its_pid() {
    let dir = TempDir::new("json");
    let py = py();
    let s = fx("mp_service.py");
    let procfile = dir.write(
        "Procfile",
        &format!("web: {py} {s} web --stderr\nworker: {py} {s} worker\n"),
    );
    let r = Builder::new()
        .args(["--log-format", "json", "--procfile"])
        .arg(&procfile)
        .spawn();
    r.wait_stdout(T, |l| l.contains("worker READY "));
    r.wait_stderr(T, |l| l.contains("web READY "));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let parse = |text: String| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect()
    };
    let stdout = parse(out.stdout_str());
    let stderr = parse(out.stderr_str());
    let said = |recs: &[serde_json::Value], name: &str, start: &str| -> serde_json::Value {
        recs.iter()
            .find(|r| r["name"] == name && r["line"].as_str().unwrap_or("").starts_with(start))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} record starting {start:?}: {recs:?}"))
    };
    let started = |name: &str| -> i64 {
        let line = said(&stderr, "pyinit", &format!("{name} started (pid "));
        let text = line["line"].as_str().unwrap();
        text[text.find("(pid ").unwrap() + 5..text.len() - 1]
            .parse()
            .unwrap()
    };
    let (web, worker) = (started("web"), started("worker"));
    for rec in &stdout {
        assert_eq!(rec["name"], "worker", "{rec}");
        assert_eq!(rec["pid"], worker, "{rec}");
        assert_eq!(rec["stream"], "stdout", "{rec}");
    }
    said(&stdout, "worker", "worker got SIGTERM ");
    for rec in &stderr {
        match rec["name"].as_str() {
            Some("pyinit") => assert_eq!(rec["pid"], 1, "{rec}"),
            Some("web") => assert_eq!(rec["pid"], web, "{rec}"),
            _ => panic!("unexpected record on stderr: {rec}"),
        }
        assert_eq!(rec["stream"], "stderr", "{rec}");
    }
    said(&stderr, "web", "web got SIGTERM ");
}
