//! The child starts with the signal mask and ignored set that pyinit was
//! started with, never pyinit's own (SPEC "What pyinit does" 2), checked in
//! /proc/<pid>/status as tini's tests do. The child is `sleep`, which
//! installs no handlers and blocks nothing itself.
//!
//! What pyinit "was started with" is set explicitly: pyinit is started
//! through `sig_wrapper.py`, which resets every disposition and the mask
//! (as a container runtime starts PID 1) and then ignores or blocks the
//! signals a test asks for. That matters because the test runner's own
//! state leaks into every process it starts: a Rust test binary runs with
//! signal 32 ignored, and `cargo test &` from a shell ignores INT and QUIT.
//! A reference program (`grep` on its own /proc status) started exactly the
//! same way shows the state pyinit started with.
mod util;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;
use util::*;

const T: Duration = Duration::from_secs(10);

/// The (host) pid of pyinit's child once it runs `comm`.
fn child_running(r: &Running, comm: &str) -> i32 {
    let pyinit = r.pyinit_pid();
    let mut found = None;
    let ok = eventually(T, || {
        found = children_of(pyinit)
            .into_iter()
            .find(|&p| proc_comm(p).as_deref() == Some(comm));
        found.is_some()
    });
    assert!(ok, "no child of pyinit runs {comm}");
    found.unwrap()
}

fn sigset(pid: i32, key: &str) -> u64 {
    proc_sigset(pid, key).unwrap_or_else(|| panic!("no {key} for {pid}"))
}

/// sig_wrapper.py with its options, ready for the program to follow.
fn wrapper(ignore: &[i32], block: &[i32]) -> Vec<std::ffi::OsString> {
    let list = |v: &[i32]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        "python3".into(),
        fixture("sig_wrapper.py").into_os_string(),
        "--ignore".into(),
        list(ignore).into(),
        "--block".into(),
        list(block).into(),
        "--".into(),
    ]
}

/// (SigBlk, SigIgn) of a program started the way pyinit is started:
/// through `wrapper` (if any) and, for `pid1`, under the same unshare.
fn startup_state(wrapper: Option<&[std::ffi::OsString]>, pid1: bool) -> (u64, u64) {
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if let Some(w) = wrapper {
        argv.extend(w.iter().cloned());
    }
    if pid1 {
        argv.extend(
            ["unshare", "--pid", "--fork", "--mount-proc", "--"]
                .iter()
                .map(Into::into),
        );
    }
    argv.extend(
        ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]
            .iter()
            .map(Into::into),
    );
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_clear().envs(clean_env());
    // SAFETY: setsid is async-signal-safe; as in the harness's `command`.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = run_bounded(cmd, T);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let text = out.stdout_str();
    let field = |key: &str| {
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {text}"));
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    (field("SigBlk:"), field("SigIgn:"))
}

/// What pyinit must block for itself (it receives them through a signalfd).
fn pyinit_must_block() -> u64 {
    sigbits(&[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGTERM,
        libc::SIGCHLD,
        libc::SIGWINCH,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGRTMIN(),
    ])
}

fn stop_sleep(r: Running) {
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    // sleep has no handler: it dies of the forwarded TERM.
    assert_eq!(out.code, 143, "{}", out.stderr_str());
}

/// Starts `pyinit [args] -- sleep 30` (through `wrapper` if given) and
/// checks the child's SigBlk/SigIgn against the start-up state, and that
/// pyinit itself blocks its signals. Returns the start-up state.
fn check(args: &[&str], wrapper: Option<Vec<std::ffi::OsString>>, pid1: bool) -> (u64, u64) {
    let expect = startup_state(wrapper.as_deref(), pid1);
    let b = Builder::new()
        .args(args)
        .args(["--", "sleep", "30"])
        .pid1(pid1);
    let wrapped = wrapper.is_some();
    let r = match wrapper {
        Some(w) => b.spawn_wrapped(w),
        None => b.spawn(),
    };
    let child = child_running(&r, "sleep");
    let pyinit = r.pyinit_pid();
    let what = format!("args {args:?}, wrapped {wrapped}, pid1 {pid1}");
    assert_eq!(
        sigset(child, "SigBlk"),
        expect.0,
        "child SigBlk ({what}); start-up SigBlk {:016x}",
        expect.0
    );
    assert_eq!(
        sigset(child, "SigIgn"),
        expect.1,
        "child SigIgn ({what}); start-up SigIgn {:016x}",
        expect.1
    );
    let blocked = sigset(pyinit, "SigBlk");
    assert_eq!(
        blocked & pyinit_must_block(),
        pyinit_must_block(),
        "pyinit SigBlk {blocked:016x} ({what})"
    );
    stop_sleep(r);
    expect
}

#[test]
fn clean_start_child_has_nothing_blocked_or_ignored() {
    let (blk, ign) = check(&[], Some(wrapper(&[], &[])), true);
    assert_eq!((blk, ign), (0, 0), "start-up SigBlk/SigIgn");
}

#[test]
fn clean_start_single_child_has_nothing_blocked_or_ignored() {
    let (blk, ign) = check(&["--single-child"], Some(wrapper(&[], &[])), true);
    assert_eq!((blk, ign), (0, 0), "start-up SigBlk/SigIgn");
}

#[test]
fn child_gets_the_state_the_test_runner_gave_pyinit() {
    // Whatever it is (signal 32 ignored at least, see the module note).
    check(&[], None, true);
}

const IGNORED: [i32; 2] = [libc::SIGHUP, libc::SIGUSR1];
const BLOCKED: [i32; 1] = [libc::SIGUSR2];

fn check_ignored_and_blocked(args: &[&str], pid1: bool) {
    let (blk, ign) = check(args, Some(wrapper(&IGNORED, &BLOCKED)), pid1);
    assert_eq!(
        (blk, ign),
        (sigbits(&BLOCKED), sigbits(&IGNORED)),
        "start-up SigBlk/SigIgn"
    );
}

#[test]
fn child_gets_the_ignored_and_blocked_signals_pyinit_started_with() {
    check_ignored_and_blocked(&[], true);
}

#[test]
fn child_gets_the_startup_state_in_single_child_mode() {
    check_ignored_and_blocked(&["--single-child"], true);
}

#[test]
fn child_gets_the_startup_state_as_subreaper() {
    check_ignored_and_blocked(&[], false);
}

#[test]
fn signals_ignored_at_startup_are_still_forwarded() {
    // pyinit started with HUP and USR1 ignored must still receive and
    // forward them; the Python child installs its own handlers.
    let r = Builder::new()
        .args(["-g", "--", "python3"])
        .arg(fixture("sig_report.py"))
        .spawn_wrapped(wrapper(&IGNORED, &BLOCKED));
    r.wait_stdout(T, |l| l == "main READY");
    r.wait_stdout(T, |l| l == "worker READY");
    for sig in [libc::SIGHUP, libc::SIGUSR1] {
        r.signal(sig);
        r.wait_stdout(T, |l| l == format!("main got {sig}"));
    }
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let mut got: Vec<String> = out
        .stdout_str()
        .lines()
        .filter(|l| l.contains(" got "))
        .map(String::from)
        .collect();
    // main and worker get TERM at the same moment: either may print first.
    got.sort();
    assert_eq!(
        got,
        ["main got 1", "main got 10", "main got 15", "worker got 15"],
        "{}",
        out.stdout_str()
    );
}

#[test]
fn stop_signal_ignored_at_startup_is_warned_about_and_inherited() {
    // `-r TERM:INT` while INT was ignored at start-up (a shell's `&`): the
    // child inherits the ignored INT, so the stop waits for the deadline,
    // and pyinit says why up front.
    let r = Builder::new()
        .args(["-t", "1s", "-r", "TERM:INT", "--", "sleep", "30"])
        .spawn_wrapped(wrapper(&[libc::SIGINT], &[]));
    let child = child_running(&r, "sleep");
    assert_eq!(sigset(child, "SigIgn"), sigbits(&[libc::SIGINT]));
    let warning = r.wait_stderr(T, |l| l.contains("SIGINT"));
    assert!(warning.contains("ignored"), "{warning}");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_eq!(out.code, 137, "{}", out.stderr_str());
}
