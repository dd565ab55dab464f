//! Smoke test of the harness itself: pyinit as PID 1 runs a command.
mod util;
use util::*;

#[test]
fn runs_a_command_as_pid1() {
    let r = Builder::new()
        .args(["--", "sh", "-c", "echo pid=$$"])
        .spawn();
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    // The child of PID 1 gets a small pid (threads of pyinit take a few).
    let pid: i32 = out
        .stdout_str()
        .trim()
        .strip_prefix("pid=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(pid > 1 && pid < 10, "{pid}");
}
