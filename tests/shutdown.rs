//! Stopping with a deadline and following the main process (SPEC "What
//! pyinit does" 3 and 5): grace expiry, prompt stops, `--stop-delay`,
//! `-r TERM:INT` on a plain script, and grandchildren left behind.
mod util;
use std::time::{Duration, Instant};
use util::*;

const T: Duration = Duration::from_secs(10);

fn py(fixture_name: &str) -> Vec<std::ffi::OsString> {
    vec!["python3".into(), fixture(fixture_name).into()]
}

/// Starts pyinit as a container runtime starts PID 1: default dispositions,
/// nothing blocked, whatever the test runner inherited (`cargo test &`
/// ignores INT, and a Python started with INT ignored never raises
/// KeyboardInterrupt).
fn clean_start(b: Builder) -> Running {
    b.spawn_wrapped([
        "python3".into(),
        fixture("sig_wrapper.py").into_os_string(),
        "--".into(),
    ])
}

/// The pid of `pid` inside its own (innermost) PID namespace.
fn ns_pid(pid: i32) -> i32 {
    let f = proc_status_field(pid, "NSpid").expect("process gone");
    f.split_whitespace().last().unwrap().parse().unwrap()
}

/// pyinit's only child (host pid).
fn only_child(r: &Running) -> i32 {
    let kids = children_of(r.pyinit_pid());
    assert_eq!(kids.len(), 1, "children of pyinit: {kids:?}");
    kids[0]
}

#[test]
fn grace_expiry_sigkills_a_child_that_ignores_term() {
    let r = Builder::new()
        .args(["-t", "1s", "--"])
        .args(py("stop_ignore_term.py"))
        .spawn();
    r.wait_stdout(T, |l| l == "READY");
    let child = ns_pid(only_child(&r));
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    r.wait_stdout(T, |l| l == "ignoring 15");
    let out = r.wait(T);
    let took = t0.elapsed();
    assert_code(&out, 137);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
        "exited {took:?} after TERM with -t 1s"
    );
    let stderr = out.stderr_str();
    let line = stderr
        .lines()
        .find(|l| l.contains("SIGKILL"))
        .unwrap_or_else(|| panic!("no SIGKILL report on stderr:\n{stderr}"));
    // The pid; how well the command is named is checked by
    // `sigkill_report_gives_each_command_line`.
    assert!(
        line.contains(&format!(" {child} (")),
        "the report does not name pid {child}: {line}"
    );
}

#[test]
fn sigkill_report_gives_each_command_line() {
    // Seventeen processes that ignore TERM: sh and its sixteen sleeps.
    let r = Builder::new()
        .args(["-t", "300ms", "--", "sh", "-c"])
        .arg("trap '' TERM; for i in $(seq 16); do sleep 30 & done; echo READY; wait")
        .spawn();
    r.wait_stdout(T, |l| l == "READY");
    let pyinit = r.pyinit_pid();
    assert!(
        eventually(T, || descendants_of(pyinit).len() == 17),
        "expected sh and 16 sleeps"
    );
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 137);
    let stderr = out.stderr_str();
    let line = stderr
        .lines()
        .find(|l| l.contains("SIGKILL"))
        .unwrap_or_else(|| panic!("no SIGKILL report on stderr:\n{stderr}"));
    assert!(line.contains("17 processes"), "{line}");
    assert_eq!(line.matches("(sleep 30)").count(), 16, "{line}");
    assert!(line.contains("(sh -c trap"), "{line}");
}

#[test]
fn prompt_child_stops_well_under_a_second() {
    let r = Builder::new().arg("--").args(py("stop_prompt.py")).spawn();
    r.wait_stdout(T, |l| l == "READY");
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let took = t0.elapsed();
    assert_code(&out, 0);
    assert!(
        out.stdout_str().contains("got 15\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        took < Duration::from_secs(1),
        "took {took:?} from TERM to exit"
    );
    assert!(
        !out.stderr_str().contains("SIGKILL"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn stop_delay_forwards_term_only_after_the_delay() {
    let r = Builder::new()
        .args(["--stop-delay", "1s", "--"])
        .args(py("stop_prompt.py"))
        .spawn();
    r.wait_stdout(T, |l| l == "READY");
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    r.wait_stdout(T, |l| l == "got 15");
    let took = t0.elapsed();
    let out = r.wait(T);
    assert_code(&out, 0);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2000),
        "child got TERM {took:?} after pyinit, with --stop-delay 1s"
    );
}

#[test]
fn second_stop_signal_ends_the_stop_delay() {
    let r = Builder::new()
        .args(["--stop-delay", "5s", "--"])
        .args(py("stop_prompt.py"))
        .spawn();
    r.wait_stdout(T, |l| l == "READY");
    let pyinit = r.pyinit_pid();
    r.signal(libc::SIGTERM);
    // Two TERMs pending at once would merge into one: wait until pyinit
    // has taken the first.
    assert!(
        eventually(T, || !signal_pending(pyinit, libc::SIGTERM)),
        "pyinit never took the first TERM"
    );
    assert!(
        !r.stdout_now().contains("got 15"),
        "TERM was forwarded before the delay"
    );
    let t1 = Instant::now();
    r.signal(libc::SIGTERM);
    r.wait_stdout(T, |l| l == "got 15");
    let took = t1.elapsed();
    let out = r.wait(T);
    assert_code(&out, 0);
    assert!(
        took < Duration::from_secs(1),
        "child got TERM {took:?} after the second TERM (delay 5s)"
    );
}

#[test]
fn rewrite_term_to_int_gives_a_plain_script_keyboard_interrupt() {
    let r = clean_start(
        Builder::new()
            .args(["-r", "TERM:INT", "--"])
            .args(py("stop_plain.py")),
    );
    r.wait_stdout(T, |l| l == "READY");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    // Python (3.8+) ends an uncaught KeyboardInterrupt by killing itself
    // with SIGINT, so the status is 128+2.
    assert_code(&out, 130);
    assert!(
        out.stdout_str().contains("finally ran\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        out.stderr_str().contains("KeyboardInterrupt"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn plain_script_without_rewrite_dies_of_term_without_cleanup() {
    // The contrast that makes `-r TERM:INT` worth having.
    let r = clean_start(Builder::new().arg("--").args(py("stop_plain.py")));
    r.wait_stdout(T, |l| l == "READY");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 143);
    assert!(!out.stdout_str().contains("finally ran"));
}

/// Runs stop_linger.py (main exits with 3, leaving a grandchild in a new
/// session); returns the outcome, the time from the main's last line to
/// pyinit's exit, and the grandchild's pid in the namespace.
fn linger(mode: &str, grace: &str) -> (Outcome, Duration, i32) {
    let r = Builder::new()
        .args(["-t", grace, "--"])
        .args(py("stop_linger.py"))
        .args(["3", mode])
        .spawn();
    let pid_line = r.wait_stdout(T, |l| l.starts_with("grandchild pid="));
    let pid: i32 = pid_line["grandchild pid=".len()..].parse().unwrap();
    r.wait_stdout(T, |l| l == "main exiting");
    let t0 = Instant::now();
    let out = r.wait(T);
    (out, t0.elapsed(), pid)
}

#[test]
fn lingering_grandchild_gets_term_and_pyinit_exits_with_the_main_status() {
    let (out, took, _) = linger("handle", "5s");
    assert_code(&out, 3);
    assert!(
        out.stdout_str().contains("grandchild got 15\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        took < Duration::from_secs(2),
        "took {took:?} after the main exited (grace 5s)"
    );
    assert!(
        !out.stderr_str().contains("SIGKILL"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn lingering_grandchild_ignoring_term_is_killed_at_the_deadline() {
    let (out, took, pid) = linger("ignore", "1s");
    assert_code(&out, 3);
    assert!(
        out.stdout_str().contains("grandchild got 15\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "took {took:?} after the main exited (grace 1s)"
    );
    let stderr = out.stderr_str();
    let line = stderr
        .lines()
        .find(|l| l.contains("SIGKILL"))
        .unwrap_or_else(|| panic!("no SIGKILL report on stderr:\n{stderr}"));
    // The pid; how well the command is named is checked by
    // `sigkill_report_gives_each_command_line`.
    assert!(
        line.contains(&format!(" {pid} (")),
        "the report does not name pid {pid}: {line}"
    );
}

#[test]
fn rewritten_stop_signal_still_arms_the_deadline() {
    // TERM is sent on as INT, which the child ignores: still a stop, so the
    // 1 s deadline applies.
    let r = Builder::new()
        .args(["-t", "1s", "-r", "TERM:INT", "--"])
        .args(py("stop_ignore_term.py"))
        .arg(libc::SIGINT.to_string())
        .spawn();
    r.wait_stdout(T, |l| l == "READY");
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    r.wait_stdout(T, |l| l == "ignoring 2");
    let out = r.wait(T);
    let took = t0.elapsed();
    assert_code(&out, 137);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
        "exited {took:?} after TERM with -t 1s"
    );
}

#[test]
fn lingering_grandchild_is_killed_at_the_deadline_as_subreaper() {
    // Outside a PID namespace the grandchild (new session) reparents to
    // pyinit as subreaper when the main exits; it must still be stopped.
    let r = Builder::new()
        .pid1(false)
        .args(["-t", "1s", "--"])
        .args(py("stop_linger.py"))
        .args(["3", "ignore"])
        .spawn();
    let pid_line = r.wait_stdout(T, |l| l.starts_with("grandchild pid="));
    // No namespace: a host pid.
    let pid: i32 = pid_line["grandchild pid=".len()..].parse().unwrap();
    r.wait_stdout(T, |l| l == "main exiting");
    let t0 = Instant::now();
    let out = r.wait(T);
    let took = t0.elapsed();
    assert_code(&out, 3);
    assert!(
        out.stdout_str().contains("grandchild got 15\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "took {took:?} after the main exited (grace 1s)"
    );
    assert!(
        eventually(T, || proc_state(pid).is_none()),
        "grandchild {pid} outlived pyinit in state {:?}",
        proc_state(pid)
    );
    assert!(out.stderr_str().contains("SIGKILL"), "{}", out.stderr_str());
}
