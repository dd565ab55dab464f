//! `docker run -it` through a pseudo-terminal (SPEC point 2): the Python
//! driver `tty_driver.py` makes a pty, runs pyinit with `python3 -i` on it
//! (as PID 1 under `unshare`, or directly) and types at it. Each test runs
//! one scenario; the driver bounds every read and prints PASS or FAIL with
//! the terminal transcript.
mod util;
use std::process::Command;

use util::*;

fn drive(scenario: &str, launch: &str, opts: &[&str]) {
    let mut cmd = Command::new("python3");
    cmd.arg(fixture("tty_driver.py"))
        .arg(pyinit_bin())
        .args([scenario, launch])
        .args(opts)
        .env_clear()
        .envs(clean_env())
        // No escape sequences from readline in the transcript.
        .env("TERM", "dumb");
    let out = run_bounded(cmd, SECS(40));
    let stdout = out.stdout_str();
    assert!(
        out.code == 0 && stdout.trim_end().ends_with(&format!("PASS {scenario}")),
        "driver exit {}:\n{stdout}\nstderr:\n{}",
        out.code,
        out.stderr_str()
    );
}

#[test]
fn repl_works_and_ctrl_c_reaches_it_as_pid1() {
    drive("repl", "unshare", &["-t", "500ms"]);
}

#[test]
fn repl_works_and_ctrl_c_reaches_it_as_subreaper() {
    drive("repl", "direct", &["-t", "500ms"]);
}

#[test]
fn eof_ends_pyinit_with_status_0() {
    drive("eof", "unshare", &[]);
}

#[test]
fn ctrl_z_stops_the_app_not_pyinit_and_cont_resumes_it_as_pid1() {
    drive("ctrlz", "unshare", &[]);
}

#[test]
fn ctrl_z_stops_the_app_not_pyinit_and_cont_resumes_it_as_subreaper() {
    drive("ctrlz", "direct", &[]);
}

#[test]
fn single_child_ctrl_c_reaches_the_repl_once_and_starts_no_stop() {
    drive("single", "unshare", &["-c", "-t", "500ms"]);
}

#[test]
fn single_child_ctrl_c_as_subreaper() {
    drive("single", "direct", &["-c", "-t", "500ms"]);
}
