//! The command line and its PYINIT_* variables (SPEC "Invocation" and
//! "Options of the supervisor"), and the environment the child gets.
mod util;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use util::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn version_prints_the_version_and_exits_0() {
    for flag in ["--version", "-V"] {
        let out = Builder::new().arg(flag).spawn().wait(T);
        assert_code(&out, 0);
        assert_eq!(
            out.stdout_str(),
            format!("pyinit {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
        assert_eq!(out.stderr_str(), "", "{flag}");
    }
}

#[test]
fn help_lists_the_options_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = Builder::new().arg(flag).spawn().wait(T);
        assert_code(&out, 0);
        let help = out.stdout_str();
        for opt in [
            "--grace",
            "--stop-delay",
            "--rewrite",
            "--single-child",
            "--group",
            "--signal-scope",
            "PYINIT_SIGNAL_SCOPE",
            "--expect-exit",
            "--log-format",
            "--no-capture",
            "--env-file",
            "--max-line",
            "--no-python-env",
            "--verbose",
            "--quiet",
            "--version",
            "PYINIT_",
        ] {
            assert!(help.contains(opt), "{flag}: {opt} missing from:\n{help}");
        }
        assert_eq!(out.stderr_str(), "", "{flag}");
    }
}

/// Runs stop_ignore_term.py (which ignores TERM), sends TERM once it is
/// ready and returns the outcome and the time from the signal to the exit.
fn time_to_sigkill(b: Builder) -> (Outcome, Duration) {
    let r = b
        .args(["--", "python3"])
        .arg(fixture("stop_ignore_term.py"))
        .spawn();
    r.wait_stdout(T, |l| l == "READY");
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    (out, t0.elapsed())
}

#[test]
fn grace_flag_beats_its_variable() {
    let (out, took) = time_to_sigkill(
        Builder::new()
            .env("PYINIT_GRACE", "30s")
            .args(["--grace", "1s"]),
    );
    assert_code(&out, 137);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
        "killed after {took:?}, expected about 1s"
    );
}

#[test]
fn grace_variable_is_read_without_a_flag() {
    let (out, took) = time_to_sigkill(Builder::new().env("PYINIT_GRACE", "1s"));
    assert_code(&out, 137);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
        "killed after {took:?}, expected about 1s"
    );
}

/// The signal numbers `role` of sig_report.py reported, in order.
fn got(stdout: &str, role: &str) -> Vec<i32> {
    let prefix = format!("{role} got ");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|n| n.parse().unwrap())
        .collect()
}

fn start_report(b: Builder) -> Running {
    let r = b
        .args(["--", "python3"])
        .arg(fixture("sig_report.py"))
        .spawn();
    r.wait_stdout(T, |l| l == "main READY");
    r.wait_stdout(T, |l| l == "worker READY");
    r
}

/// Whether TERM reached the worker as well as the main process. The scope
/// is `group` by its variable, so a PYINIT_SINGLE_CHILD read as true would
/// disagree with it (a usage error) and one read as false says nothing.
fn term_reaches_worker(single_child_var: &str) -> bool {
    let r = start_report(
        Builder::new()
            .env("PYINIT_SINGLE_CHILD", single_child_var)
            .env("PYINIT_SIGNAL_SCOPE", "group"),
    );
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_code(&out, 0);
    assert_eq!(got(&stdout, "main"), vec![libc::SIGTERM], "{stdout}");
    let worker = got(&stdout, "worker");
    assert!(
        worker.is_empty() || worker == vec![libc::SIGTERM],
        "{stdout}"
    );
    !worker.is_empty()
}

/// PYINIT_SINGLE_CHILD=1 alone: TERM reaches the main process only.
fn term_reaches_worker_single(single_child_var: &str) -> bool {
    let r = start_report(Builder::new().env("PYINIT_SINGLE_CHILD", single_child_var));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_code(&out, 0);
    assert_eq!(got(&stdout, "main"), vec![libc::SIGTERM], "{stdout}");
    !got(&stdout, "worker").is_empty()
}

#[test]
fn single_child_variable_reads_1_and_true() {
    for v in ["1", "true"] {
        assert!(!term_reaches_worker_single(v), "PYINIT_SINGLE_CHILD={v}");
    }
}

/// `--signal-scope group`, `-g` and PYINIT_SIGNAL_SCOPE=group send TERM to
/// the whole group; `main` and `-c` to the main process only.
#[test]
fn signal_scope_spellings_reach_the_group_or_the_main_process() {
    for (b, worker_too) in [
        (Builder::new().args(["--signal-scope", "group"]), true),
        (Builder::new().arg("-g"), true),
        (Builder::new().env("PYINIT_SIGNAL_SCOPE", "group"), true),
        (Builder::new().arg("--signal-scope=main"), false),
        (Builder::new().env("PYINIT_SIGNAL_SCOPE", "main"), false),
        // The command line beats the variables, whichever spelling.
        (
            Builder::new().env("PYINIT_SIGNAL_SCOPE", "main").arg("-g"),
            true,
        ),
    ] {
        let r = start_report(b);
        r.signal(libc::SIGTERM);
        let out = r.wait(T);
        let stdout = out.stdout_str();
        assert_code(&out, 0);
        assert_eq!(got(&stdout, "main"), vec![libc::SIGTERM], "{stdout}");
        let worker = got(&stdout, "worker");
        assert_eq!(!worker.is_empty(), worker_too, "{stdout}");
    }
}

/// One line, exit 2, nothing started, for every way of giving the scope
/// twice with different answers.
#[test]
fn disagreeing_signal_scopes_are_a_usage_error() {
    for b in [
        Builder::new().args(["-c", "-g"]),
        Builder::new().args(["--signal-scope", "auto", "-c"]),
        Builder::new()
            .env("PYINIT_SINGLE_CHILD", "1")
            .env("PYINIT_GROUP", "1"),
        Builder::new().args(["--signal-scope", "everyone"]),
    ] {
        let out = b.args(["--", "sh", "-c", "echo ran"]).spawn().wait(T);
        assert_code(&out, 2);
        let stderr = out.stderr_str();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("pyinit: error: "), "{stderr}");
        assert!(
            stderr.contains("disagree") || stderr.contains("'everyone' is not one of"),
            "{stderr}"
        );
        assert_eq!(out.stdout_str(), "", "the command ran");
    }
}

/// Usage errors are one line naming the flag or the variable; clap's
/// usage block and "For more information" tail never appear.
#[test]
fn usage_errors_are_one_line_naming_the_flag_or_the_variable() {
    for (b, needle) in [
        (Builder::new().args(["--grace", "soon"]), "for --grace"),
        (
            Builder::new().env("PYINIT_GRACE", "soon"),
            "for PYINIT_GRACE",
        ),
        (
            Builder::new().env("PYINIT_EXPECT_EXIT", "143,abc"),
            "for PYINIT_EXPECT_EXIT",
        ),
        (
            Builder::new().arg("--no-capture=yes"),
            "'--no-capture' takes no value",
        ),
        (
            Builder::new().arg("--bogus"),
            "unexpected argument '--bogus'",
        ),
        (Builder::new().arg("-X"), "unexpected argument '-X'"),
    ] {
        let out = b.args(["--", "sh", "-c", "echo ran"]).spawn().wait(T);
        assert_code(&out, 2);
        let stderr = out.stderr_str();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(!stderr.contains("For more information"), "{stderr}");
        assert_eq!(out.stdout_str(), "");
    }
    let out = Builder::new().arg("--grace").spawn().wait(T);
    assert_code(&out, 2);
    assert!(
        out.stderr_str().contains("'--grace' needs a value"),
        "{}",
        out.stderr_str()
    );
}

/// The words check/health/status/ctl are subcommands only as the first
/// argument: after `--` (or after an option) they name a program.
#[test]
fn subcommand_words_after_the_dashes_are_programs() {
    let dir = std::env::temp_dir().join(format!("pyinit-cli-{}-words", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for word in ["status", "health", "ctl", "check"] {
        let prog = dir.join(word);
        std::fs::write(&prog, format!("#!/bin/sh\necho \"I am {word} $*\"\n")).unwrap();
        let mut perms = std::fs::metadata(&prog).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&prog, perms).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", dir.display());
    for (args, want) in [
        (&["--", "status", "--json"][..], "I am status --json"),
        (&["--", "health"], "I am health "),
        (&["-t", "2s", "ctl", "stop", "web"], "I am ctl stop web"),
        (&["--", "check", "x"], "I am check x"),
    ] {
        let out = Builder::new().env("PATH", &path).args(args).spawn().wait(T);
        assert_code(&out, 0);
        assert_eq!(out.stdout_str().trim_end(), want.trim_end(), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    // As the first word, `status` is pyinit's client, never a program.
    let out = Builder::new()
        .env("PATH", &path)
        .arg("status")
        .spawn()
        .wait(T);
    assert!(
        !out.stdout_str().contains("I am status"),
        "{}",
        out.stdout_str()
    );
    assert!(
        !out.stderr_str().contains("command not found"),
        "{}",
        out.stderr_str()
    );
}

/// `check` reads the PYINIT_* variables as pyinit would; one that check
/// cannot honour is a usage error, not a silent change of the inner pyinit.
#[test]
fn check_refuses_no_capture_by_flag_or_variable() {
    for b in [
        Builder::new().args(["check", "--no-capture"]),
        Builder::new().env("PYINIT_NO_CAPTURE", "1").arg("check"),
    ] {
        let out = run_bounded(b.args(["--", "true"]).pid1(false).command(), T);
        assert_code(&out, 2);
        let stderr = out.stderr_str();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("cannot be used with check"), "{stderr}");
    }
}

#[test]
fn single_child_variable_reads_0_and_false() {
    for v in ["0", "false"] {
        assert!(term_reaches_worker(v), "PYINIT_SINGLE_CHILD={v}");
    }
}

#[test]
fn switch_variable_with_another_value_is_a_usage_error() {
    let out = Builder::new()
        .env("PYINIT_SINGLE_CHILD", "maybe")
        .args(["--", "sh", "-c", "echo ran"])
        .spawn()
        .wait(T);
    assert_code(&out, 2);
    let stderr = out.stderr_str();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PYINIT_SINGLE_CHILD") && stderr.contains("maybe"),
        "{stderr}"
    );
    assert_eq!(out.stdout_str(), "");
}

#[test]
fn rewrite_variable_is_a_comma_list() {
    let r = start_report(
        Builder::new()
            .env("PYINIT_REWRITE", "TERM:INT,USR1:USR2")
            .arg("-g"),
    );
    r.signal(libc::SIGUSR1);
    r.wait_stdout(T, |l| l == format!("main got {}", libc::SIGUSR2));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_code(&out, 0);
    assert_eq!(
        got(&stdout, "main"),
        vec![libc::SIGUSR2, libc::SIGINT],
        "{stdout}"
    );
    assert_eq!(got(&stdout, "worker"), vec![libc::SIGINT], "{stdout}");
}

#[test]
fn rewrite_flag_beats_its_variable() {
    let r = start_report(Builder::new().env("PYINIT_REWRITE", "TERM:INT").args([
        "-g",
        "-r",
        "TERM:QUIT",
    ]));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let stdout = out.stdout_str();
    assert_code(&out, 0);
    assert_eq!(got(&stdout, "main"), vec![libc::SIGQUIT], "{stdout}");
    assert_eq!(got(&stdout, "worker"), vec![libc::SIGQUIT], "{stdout}");
}

/// The environment the child sees (`env` as the command).
fn child_env(b: Builder) -> BTreeMap<String, String> {
    let out = b.args(["--", "env"]).spawn().wait(T);
    assert_code(&out, 0);
    out.stdout_str()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn pyinit_variables_are_removed_from_the_child_environment() {
    let env = child_env(
        Builder::new()
            .env("PYINIT_GRACE", "5s")
            .env("PYINIT_SINGLE_CHILD", "0")
            .env("PYINIT_LOG", "error")
            .env("PYINIT_NOT_AN_OPTION", "x")
            .env("KEEP_ME", "yes")
            .env("NOT_PYINIT_X", "kept"),
    );
    let leaked: Vec<&String> = env.keys().filter(|k| k.starts_with("PYINIT_")).collect();
    assert!(leaked.is_empty(), "leaked: {leaked:?}");
    assert_eq!(env.get("KEEP_ME").map(String::as_str), Some("yes"));
    assert_eq!(env.get("NOT_PYINIT_X").map(String::as_str), Some("kept"));
    assert!(env.contains_key("PATH"), "{env:?}");
}

fn scratch_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pyinit-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("app.env");
    std::fs::write(&f, text).unwrap();
    f
}

const ENV_FILE: &str = "# settings\nFROM_FILE=hello\nexport QUOTED='two words'\nEMPTY=\n";

fn assert_env_file_applied(env: &BTreeMap<String, String>) {
    assert_eq!(env.get("FROM_FILE").map(String::as_str), Some("hello"));
    assert_eq!(env.get("QUOTED").map(String::as_str), Some("two words"));
    assert_eq!(env.get("EMPTY").map(String::as_str), Some(""));
    assert_eq!(env.get("KEEP_ME").map(String::as_str), Some("yes"));
}

#[test]
fn env_file_adds_variables() {
    let f = scratch_file("flag", ENV_FILE);
    let env = child_env(
        Builder::new()
            .env("KEEP_ME", "yes")
            .arg("--env-file")
            .arg(&f),
    );
    let _ = std::fs::remove_dir_all(f.parent().unwrap());
    assert_env_file_applied(&env);
}

#[test]
fn env_file_from_its_variable() {
    let f = scratch_file("var", ENV_FILE);
    let env = child_env(
        Builder::new()
            .env("KEEP_ME", "yes")
            .env("PYINIT_ENV_FILE", &f),
    );
    let _ = std::fs::remove_dir_all(f.parent().unwrap());
    assert_env_file_applied(&env);
    assert!(!env.contains_key("PYINIT_ENV_FILE"));
}

#[test]
fn python_variables_are_added_where_unset() {
    let env = child_env(Builder::new());
    assert_eq!(env.get("PYTHONUNBUFFERED").map(String::as_str), Some("1"));
    assert_eq!(env.get("PYTHONFAULTHANDLER").map(String::as_str), Some("1"));
}

#[test]
fn python_variables_set_by_the_user_stay_even_empty_or_0() {
    let env = child_env(
        Builder::new()
            .env("PYTHONUNBUFFERED", "")
            .env("PYTHONFAULTHANDLER", "0"),
    );
    assert_eq!(env.get("PYTHONUNBUFFERED").map(String::as_str), Some(""));
    assert_eq!(env.get("PYTHONFAULTHANDLER").map(String::as_str), Some("0"));
    let env = child_env(
        Builder::new()
            .env("PYTHONUNBUFFERED", "0")
            .env("PYTHONFAULTHANDLER", ""),
    );
    assert_eq!(env.get("PYTHONUNBUFFERED").map(String::as_str), Some("0"));
    assert_eq!(env.get("PYTHONFAULTHANDLER").map(String::as_str), Some(""));
}

#[test]
fn no_python_env_adds_nothing() {
    for b in [
        Builder::new().arg("--no-python-env"),
        Builder::new().env("PYINIT_NO_PYTHON_ENV", "1"),
        Builder::new().env("PYINIT_NO_PYTHON_ENV", "true"),
    ] {
        let env = child_env(b);
        assert!(!env.contains_key("PYTHONUNBUFFERED"), "{env:?}");
        assert!(!env.contains_key("PYTHONFAULTHANDLER"), "{env:?}");
    }
    // A user's own value still passes through.
    let env = child_env(
        Builder::new()
            .arg("--no-python-env")
            .env("PYTHONUNBUFFERED", "1"),
    );
    assert_eq!(env.get("PYTHONUNBUFFERED").map(String::as_str), Some("1"));
    assert!(!env.contains_key("PYTHONFAULTHANDLER"), "{env:?}");
}
