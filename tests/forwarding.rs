//! Signal forwarding (SPEC "What pyinit does" 2): which signal reaches which
//! process. The fixture `sig_report.py` is a main process with a forked
//! worker in its process group; both report every signal they receive.
mod util;
use std::time::Duration;
use util::*;

const T: Duration = Duration::from_secs(10);

fn report_args(extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec!["python3".into(), fixture("sig_report.py").into()];
    v.extend(extra.iter().map(|s| s.into()));
    v
}

/// pyinit with `opts`, running sig_report.py; returns once both processes
/// have their handlers installed.
fn start(opts: &[&str], fixture_args: &[&str]) -> Running {
    let r = Builder::new()
        .args(opts)
        .arg("--")
        .args(report_args(fixture_args))
        .spawn();
    r.wait_stdout(T, |l| l == "main READY");
    r.wait_stdout(T, |l| l == "worker READY");
    r
}

/// The signal numbers `role` reported, in order.
fn got(stdout: &str, role: &str) -> Vec<i32> {
    let prefix = format!("{role} got ");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|n| n.parse().unwrap())
        .collect()
}

fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

/// Signals pyinit processes one at a time: waits until `main got SIG`.
fn send_and_see(r: &Running, sig: i32) {
    r.signal(sig);
    r.wait_stdout(T, |l| l == format!("main got {sig}"));
}

fn stop_signal_reaches_the_whole_group(sig: i32) {
    let r = start(&["-g"], &[]);
    r.signal(sig);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_eq!(
        out.code,
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    assert_eq!(got(&stdout, "main"), vec![sig], "{stdout}");
    assert_eq!(got(&stdout, "worker"), vec![sig], "{stdout}");
    // The worker ended on the signal itself, not on the main's request.
    assert!(!stdout.contains("worker quit"), "{stdout}");
    assert!(stdout.contains("main exit"), "{stdout}");
}

#[test]
fn term_reaches_the_whole_group() {
    stop_signal_reaches_the_whole_group(libc::SIGTERM);
}

#[test]
fn int_reaches_the_whole_group() {
    stop_signal_reaches_the_whole_group(libc::SIGINT);
}

#[test]
fn quit_reaches_the_whole_group() {
    stop_signal_reaches_the_whole_group(libc::SIGQUIT);
}

/// `auto` (the default): the main process handles TERM, so its worker is
/// trusted to be stopped by it and gets no direct TERM; the main then asks
/// it to quit, as gunicorn and celery do with theirs.
#[test]
fn auto_scope_spares_the_worker_of_a_main_that_handles_the_stop_signal() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
        let r = start(&[], &[]);
        r.signal(sig);
        let out = r.wait(T);
        let stdout = out.stdout_str();
        assert_eq!(
            out.code,
            0,
            "stdout:\n{stdout}\nstderr:\n{}",
            out.stderr_str()
        );
        assert_eq!(got(&stdout, "main"), vec![sig], "{stdout}");
        assert_eq!(got(&stdout, "worker"), Vec::<i32>::new(), "{stdout}");
        assert!(stdout.contains("worker quit"), "{stdout}");
    }
}

/// The same worker, under a main process with no handler for TERM (a
/// `multiprocessing` pool under a plain script): the worker gets it directly.
#[test]
fn auto_scope_reaches_workers_whose_parent_does_not_handle_it() {
    let script = "import os, signal, sys, time\n\
        signal.signal(signal.SIGUSR1, lambda *a: None)\n\
        pid = os.fork()\n\
        if pid == 0:\n\
        \x20   signal.signal(signal.SIGTERM, lambda *a: (os.write(1, b'worker got 15\\n'), os._exit(0)))\n\
        \x20   os.write(1, b'worker READY\\n')\n\
        \x20   while True: time.sleep(1)\n\
        os.write(1, b'main READY\\n')\n\
        os.waitpid(pid, 0)\n\
        while True: time.sleep(1)\n";
    let r = Builder::new()
        .args(["-v", "-t", "5s", "--", "python3", "-c", script])
        .spawn();
    r.wait_stdout(T, |l| l == "main READY");
    r.wait_stdout(T, |l| l == "worker READY");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    // The main dies of TERM (no handler); the worker got it from pyinit.
    assert_eq!(
        out.code,
        143,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    // (A second TERM, as a leftover once the main process died, may land
    // before the worker's _exit.)
    assert_eq!(got(&stdout, "worker").first(), Some(&15), "{stdout}");
    let stderr = out.stderr_str();
    assert!(!stderr.contains("SIGKILL"), "{stderr}");
    // Sent to both at once by the stop (not only later, as a leftover).
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("SIGTERM (stop) sent to") && l.contains(", ")),
        "{stderr}"
    );
}

#[test]
fn other_signals_reach_the_main_process_only() {
    let others = [
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGTSTP,
        libc::SIGALRM,
        libc::SIGCONT,
        libc::SIGURG,
        libc::SIGPWR,
        // A SIGPIPE that another process sends is an ordinary signal.
        libc::SIGPIPE,
        rtmin() + 1,
        rtmin() + 3,
    ];
    let r = start(&["-g"], &[]);
    for sig in others {
        send_and_see(&r, sig);
    }
    // TERM ends the run and shows the worker was listening all along.
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_eq!(
        out.code,
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    let mut expect_main = others.to_vec();
    expect_main.push(libc::SIGTERM);
    assert_eq!(got(&stdout, "main"), expect_main, "{stdout}");
    assert_eq!(got(&stdout, "worker"), vec![libc::SIGTERM], "{stdout}");
}

#[test]
fn single_child_sends_everything_to_the_main_process_only() {
    let r = start(&["--single-child"], &[]);
    send_and_see(&r, libc::SIGHUP);
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_eq!(
        out.code,
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    assert_eq!(
        got(&stdout, "main"),
        vec![libc::SIGHUP, libc::SIGTERM],
        "{stdout}"
    );
    // The worker saw no TERM: it quit when the main process asked it to.
    assert_eq!(got(&stdout, "worker"), Vec::<i32>::new(), "{stdout}");
    assert!(stdout.contains("worker quit"), "{stdout}");
}

#[test]
fn short_single_child_flag_works_too() {
    let r = start(&["-c"], &[]);
    r.signal(libc::SIGINT);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_eq!(
        out.code,
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    assert_eq!(got(&stdout, "main"), vec![libc::SIGINT], "{stdout}");
    assert_eq!(got(&stdout, "worker"), Vec::<i32>::new(), "{stdout}");
    assert!(stdout.contains("worker quit"), "{stdout}");
}

/// Whether pyinit said it began a stop (`-v` shows the `stop` event). That
/// a dropped or non-stop signal arms no deadline at all is proven by the
/// state machine's unit tests (`supervisor::state::tests`), without waiting
/// for a deadline that must not come.
fn stop_began(r: &Running) -> bool {
    r.stderr_now().contains("pyinit: stopping (")
}

#[test]
fn rewrite_to_zero_drops_the_signal_and_starts_no_stop() {
    let r = start(
        &["-v", "-g", "-t", "1s", "-r", "USR1:0", "-r", "TERM:0"],
        &[],
    );
    r.signal(libc::SIGUSR1);
    r.signal(libc::SIGTERM);
    // A real-time signal is dequeued after the standard ones, so once it
    // arrives pyinit has handled USR1 and TERM, and anything it forwarded
    // for them would already have been reported (handlers run in number order).
    let barrier = rtmin() + 1;
    send_and_see(&r, barrier);
    r.wait_stderr(T, |l| l.contains("SIGTERM dropped by --rewrite"));
    assert!(!stop_began(&r), "{}", r.stderr_now());
    // Still running: pyinit forwards, the main process is alive.
    send_and_see(&r, libc::SIGUSR2);
    r.signal(libc::SIGINT);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    assert_eq!(out.code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        got(&stdout, "main"),
        vec![barrier, libc::SIGUSR2, libc::SIGINT],
        "{stdout}"
    );
    assert_eq!(got(&stdout, "worker"), vec![libc::SIGINT], "{stdout}");
    assert!(!stderr.contains("SIGKILL"), "{stderr}");
}

#[test]
fn rewrite_hup_to_term_sends_term_to_main_without_a_stop() {
    // The fixture keeps running on TERM (`--stay 15`).
    let r = start(
        &["-v", "-g", "-t", "1s", "-r", "HUP:TERM"],
        &["--stay", "15"],
    );
    r.signal(libc::SIGHUP);
    r.wait_stdout(T, |l| l == "main got 15");
    r.wait_stderr(T, |l| l.contains("SIGTERM (forward) sent to"));
    // No stop started, and pyinit still forwards.
    assert!(!stop_began(&r), "{}", r.stderr_now());
    send_and_see(&r, libc::SIGUSR2);
    r.signal(libc::SIGINT);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    assert_eq!(out.code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        got(&stdout, "main"),
        vec![libc::SIGTERM, libc::SIGUSR2, libc::SIGINT],
        "{stdout}"
    );
    // TERM went to the main process only (HUP is not a stop signal).
    assert_eq!(got(&stdout, "worker"), vec![libc::SIGINT], "{stdout}");
    assert!(!stderr.contains("SIGKILL"), "{stderr}");
}

#[test]
fn rewrite_term_to_int_is_still_a_stop_for_the_group() {
    let r = start(&["-g", "-r", "TERM:INT"], &[]);
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_eq!(
        out.code,
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    assert_eq!(got(&stdout, "main"), vec![libc::SIGINT], "{stdout}");
    assert_eq!(got(&stdout, "worker"), vec![libc::SIGINT], "{stdout}");
}

#[test]
fn own_sigpipe_is_never_forwarded() {
    // pyinit's stdout is a pipe nobody reads any more: its writes of the
    // child's output fail with EPIPE and raise SIGPIPE against pyinit.
    let (r, read_end) = Builder::new()
        .args(["--", "python3"])
        .arg(fixture("sig_pipe_flood.py"))
        .spawn_stalled_stdout();
    drop(read_end);
    r.wait_stderr(T, |l| l == "READY");
    // 4 MiB is far more than the pipe and pyinit's queue hold: pyinit kept
    // copying (and discarding) while its own writes failed.
    r.wait_stderr(Duration::from_secs(30), |l| l == "FLOODED");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stderr = out.stderr_str();
    assert_eq!(out.code, 0, "stderr:\n{stderr}");
    let got: Vec<&str> = stderr.lines().filter(|l| l.starts_with("got ")).collect();
    assert_eq!(got, ["got 15"], "{stderr}");
}

#[test]
fn rewrite_accepts_numbers_and_realtime_names() {
    let r = start(&["-g", "-r", "SIGUSR1:RTMIN+2", "-r", "12:1"], &[]);
    r.signal(libc::SIGUSR1);
    r.wait_stdout(T, |l| l == format!("main got {}", rtmin() + 2));
    r.signal(libc::SIGUSR2);
    r.wait_stdout(T, |l| l == format!("main got {}", libc::SIGHUP));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_eq!(
        out.code,
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    assert_eq!(
        got(&stdout, "main"),
        vec![rtmin() + 2, libc::SIGHUP, libc::SIGTERM],
        "{stdout}"
    );
    assert_eq!(got(&stdout, "worker"), vec![libc::SIGTERM], "{stdout}");
}

#[test]
fn signals_sent_to_pid1_from_inside_the_namespace_are_forwarded() {
    // `docker exec CONTAINER kill -HUP 1`: the sender is another process in
    // pyinit's namespace (here the main process itself).
    let r = Builder::new()
        .args(["--", "python3"])
        .arg(fixture("sig_kill_pid1.py"))
        .spawn();
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_eq!(
        out.code,
        0,
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_str()
    );
    assert_eq!(stdout, "got 1\ngot 15\n");
}
