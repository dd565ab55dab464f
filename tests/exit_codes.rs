//! pyinit's exit status (SPEC "What pyinit does" 1 and 6): the child's code,
//! 128+N for death by signal N, `--expect-exit`, and pyinit's own 126, 127
//! and 2, each error with exactly one line on stderr.
mod util;
use std::time::Duration;
use util::*;

const T: Duration = Duration::from_secs(10);

fn run(opts: &[&str], envs: &[(&str, &str)], fixture_args: &[&str]) -> Outcome {
    let mut b = Builder::new()
        .args(opts)
        .args(["--", "python3"])
        .arg(fixture("exit_with.py"))
        .args(fixture_args);
    for (k, v) in envs {
        b = b.env(k, v);
    }
    b.spawn().wait(T)
}

#[test]
fn exit_codes_pass_through() {
    for code in [0, 1, 3, 255] {
        let out = run(&[], &[], &["code", &code.to_string()]);
        assert_code(&out, code);
    }
}

#[test]
fn death_by_signal_gives_128_plus_n() {
    for (sig, code) in [
        (libc::SIGKILL, 137),
        (libc::SIGTERM, 143),
        (libc::SIGINT, 130),
        (libc::SIGUSR1, 138),
    ] {
        let out = run(&[], &[], &["signal", &sig.to_string()]);
        assert_code(&out, code);
    }
}

#[test]
fn expect_exit_maps_a_code_to_success() {
    // Death by TERM (143) is what --expect-exit 143 is for.
    assert_code(&run(&["-e", "143"], &[], &["signal", "15"]), 0);
    assert_code(&run(&["--expect-exit", "143"], &[], &["signal", "15"]), 0);
    assert_code(&run(&["--expect-exit=3"], &[], &["code", "3"]), 0);
    // Other codes are untouched.
    assert_code(&run(&["-e", "143"], &[], &["code", "1"]), 1);
    assert_code(&run(&["-e", "143"], &[], &["signal", "9"]), 137);
}

#[test]
fn expect_exit_is_repeatable() {
    for args in [&["code", "3"][..], &["signal", "15"]] {
        assert_code(&run(&["-e", "3", "-e", "143"], &[], args), 0);
    }
    assert_code(&run(&["-e", "3", "-e", "143"], &[], &["code", "4"]), 4);
}

#[test]
fn expect_exit_from_the_environment_is_a_comma_list() {
    let env = [("PYINIT_EXPECT_EXIT", "143,3")];
    assert_code(&run(&[], &env, &["code", "3"]), 0);
    assert_code(&run(&[], &env, &["signal", "15"]), 0);
    assert_code(&run(&[], &env, &["code", "4"]), 4);
    assert_code(&run(&[], &env, &["signal", "9"]), 137);
}

/// pyinit's own error: `code`, nothing on stdout, and exactly one stderr
/// line that contains every one of `names`. Returns that line.
#[track_caller]
fn assert_one_line_error(out: &Outcome, code: i32, names: &[&str]) -> String {
    assert_code(out, code);
    let stderr = out.stderr_str();
    assert_eq!(stderr.lines().count(), 1, "stderr:\n{stderr}");
    assert!(stderr.ends_with('\n'), "stderr: {stderr:?}");
    for name in names {
        assert!(stderr.contains(name), "{name:?} not in stderr: {stderr}");
    }
    assert_eq!(out.stdout_str(), "", "stdout");
    stderr.trim_end().to_string()
}

fn pyinit(args: &[&str]) -> Outcome {
    Builder::new().args(args).spawn().wait(T)
}

#[test]
fn missing_command_exits_127_with_one_line() {
    let out = pyinit(&["--", "no-such-command-for-pyinit-tests", "x"]);
    assert_one_line_error(
        &out,
        127,
        &["no-such-command-for-pyinit-tests", "not found"],
    );
    let out = pyinit(&["--", "/no/such/dir/app.py"]);
    assert_one_line_error(&out, 127, &["/no/such/dir/app.py"]);
}

/// A private scratch path for this test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pyinit-exit-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn non_executable_file_exits_126_with_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("noexec");
    let script = dir.join("app.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pyinit(&["--", script.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_one_line_error(&out, 126, &[script.to_str().unwrap(), "Permission denied"]);
}

#[test]
fn directory_as_command_exits_126_with_one_line() {
    let dir = scratch("dir");
    let out = pyinit(&["--", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_one_line_error(&out, 126, &[dir.to_str().unwrap()]);
}

/// Each usage error exits 2 before anything starts (the command would
/// print `ran`), with one line naming the problem.
#[test]
fn usage_errors_exit_2_with_one_line() {
    let run_cmd = ["--", "sh", "-c", "echo ran"];
    let cases: &[(&[&str], &[&str])] = &[
        (&["--bogus"], &["--bogus"]),
        (&["--grace", "abc"], &["abc", "--grace"]),
        (&["-t", "10parsecs"], &["10parsecs"]),
        (&["-r", "FOO:BAR"], &["FOO"]),
        (&["-r", "TERM"], &["TERM"]),
        (&["-e", "300"], &["300"]),
        (&["--log-format", "xml"], &["xml"]),
        (&["-v", "-q"], &["verbose", "quiet"]),
        (&["--grace"], &["--grace"]),
        (
            &["--env-file", "/no/such/dir/pyinit-test.env"],
            &["/no/such/dir/pyinit-test.env"],
        ),
    ];
    for (opts, names) in cases {
        let args: Vec<&str> = opts.iter().chain(run_cmd.iter()).copied().collect();
        let out = pyinit(&args);
        let line = assert_one_line_error(&out, 2, names);
        assert!(line.starts_with("pyinit"), "{opts:?}: {line}");
    }
}

#[test]
fn no_command_is_a_usage_error() {
    for args in [&[][..], &["--"], &["-t", "1s"]] {
        let out = pyinit(args);
        assert_one_line_error(&out, 2, &["command"]);
    }
}

#[test]
fn bad_value_in_a_variable_is_a_usage_error_naming_it() {
    let out = Builder::new()
        .env("PYINIT_GRACE", "abc")
        .args(["--", "sh", "-c", "echo ran"])
        .spawn()
        .wait(T);
    assert_one_line_error(&out, 2, &["PYINIT_GRACE", "abc"]);
}

#[test]
fn bad_env_file_content_is_a_usage_error_with_the_line_number() {
    let dir = scratch("badenv");
    let file = dir.join("bad.env");
    std::fs::write(&file, "A=1\nthis is not an assignment\n").unwrap();
    let out = pyinit(&[
        "--env-file",
        file.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo ran",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_one_line_error(&out, 2, &[file.to_str().unwrap(), "line 2"]);
}
