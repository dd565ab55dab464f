//! `pyinit check` against real Python programs: verdicts, advice, JSON.
mod util;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use util::*;

/// Runs `pyinit check ARGS` with a clean environment; bounded in time.
fn check(args: &[&str]) -> (Output, Duration) {
    check_env(args, &[])
}

fn check_env(args: &[&str], extra_env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new(pyinit_bin());
    cmd.arg("check")
        .args(args)
        .env_clear()
        .envs(clean_env())
        .envs(extra_env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().expect("start pyinit check");
    let pid = child.id() as i32;
    // A watchdog so that a hang fails the test instead of CI.
    let watchdog = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(40);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            if proc_state(pid).is_none_or(|s| s == 'Z') {
                return;
            }
        }
        for p in descendants_of(pid).into_iter().chain([pid]) {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
    });
    let out = child.wait_with_output().expect("wait for pyinit check");
    let _ = watchdog.join();
    (out, start.elapsed())
}

fn fx(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

fn json(args: &[&str]) -> (serde_json::Value, i32) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (out, _) = check(&all);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out.status.code().unwrap_or(-1))
}

fn advice(v: &serde_json::Value) -> String {
    v["advice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn well_behaved_app_passes_fast() {
    let (out, elapsed) = check(&[
        "--ready-line",
        "^ready$",
        "--",
        "python3",
        &fx("check_good.py"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("PASS: exited with status 0"), "{text}");
    assert!(text.contains("shutting down cleanly"), "{text}");
    assert!(text.contains("SIGKILL needed no"), "{text}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn json_report_has_every_field() {
    let (v, code) = json(&[
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_good.py"),
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["verdict"], "PASS");
    assert!(v["reason"].as_str().unwrap().contains("status 0"));
    assert_eq!(v["signal"], "SIGTERM");
    assert_eq!(v["grace_s"], 9.0);
    let t = v["time_to_exit_s"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&t), "{t}");
    assert_eq!(v["exit_status"], 0);
    assert_eq!(v["killed"], false);
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1, "{procs:?}");
    assert!(procs[0]["pid"].as_i64().unwrap() > 1);
    assert!(procs[0]["cmd"].as_str().unwrap().contains("check_good.py"));
    assert!(procs[0]["ended"]
        .as_str()
        .unwrap()
        .starts_with("exited with status 0"));
    assert_eq!(procs[0]["killed"], false);
    assert_eq!(v["zombies"].as_array().unwrap().len(), 0);
    assert_eq!(v["line_buffered"], true);
    assert_eq!(
        v["stdout_tail"],
        serde_json::json!(["ready", "shutting down cleanly"])
    );
    assert_eq!(v["stderr_tail"], serde_json::json!([]));
    assert_eq!(v["advice"], serde_json::json!([]));
}

#[test]
fn term_ignoring_app_fails_killed_at_grace_with_advice() {
    let (v, code) = json(&[
        "-t",
        "1s",
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_ignore.py"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "FAIL");
    assert_eq!(v["killed"], true);
    assert_eq!(v["exit_status"], 137);
    let t = v["time_to_exit_s"].as_f64().unwrap();
    assert!((1.0..2.5).contains(&t), "{t}");
    assert_eq!(v["processes"][0]["killed"], true);
    assert!(v["processes"][0]["ended"]
        .as_str()
        .unwrap()
        .contains("SIGKILL"));
    assert!(advice(&v).contains("-r TERM:INT"), "{v}");
}

#[test]
fn keyboard_interrupt_script_warns_by_default_and_passes_with_rewrite() {
    let args = [
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_kbint.py"),
    ];
    let (v, code) = json(&args);
    assert_eq!(v["verdict"], "WARN", "{v}");
    assert_eq!(code, 0);
    assert_eq!(v["exit_status"], 143);
    assert!(advice(&v).contains("-r TERM:INT"), "{v}");

    let mut strict = vec!["--strict"];
    strict.extend_from_slice(&args);
    let (v, code) = json(&strict);
    assert_eq!(v["verdict"], "WARN");
    assert_eq!(code, 1);

    let mut rewritten = vec!["-r", "TERM:INT"];
    rewritten.extend_from_slice(&args);
    let (v, code) = json(&rewritten);
    assert_eq!(v["verdict"], "PASS", "{v}");
    assert_eq!(code, 0);
    assert!(v["stdout_tail"]
        .to_string()
        .contains("cleanup after KeyboardInterrupt"));
}

#[test]
fn expect_exit_turns_death_by_term_into_pass() {
    let (v, code) = json(&[
        "-e",
        "143",
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_kbint.py"),
    ]);
    assert_eq!(v["verdict"], "PASS", "{v}");
    assert_eq!(v["exit_status"], 143);
    assert_eq!(code, 0);
}

#[test]
fn gunicorn_with_workers_passes_and_lists_every_worker() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gunicorn = venv_bin("gunicorn");
    let bind = format!("127.0.0.1:{port}");
    let (v, code) = json(&[
        "--after",
        "2s",
        "--",
        gunicorn.to_str().unwrap(),
        "-w",
        "3",
        "-b",
        &bind,
        "--chdir",
        &fx(""),
        "gunicorn_app:app",
    ]);
    assert_eq!(v["verdict"], "PASS", "{v}");
    assert_eq!(code, 0);
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 4, "master and 3 workers: {procs:?}");
    for p in procs {
        assert_eq!(p["killed"], false);
        assert!(p["ended"].as_str().unwrap().starts_with("exited"), "{p}");
    }
}

#[test]
fn orphan_left_behind_is_reported() {
    let (v, _) = json(&[
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_orphan.py"),
    ]);
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{procs:?}");
    let orphan = procs.iter().find(|p| p["main"] == false).unwrap();
    assert!(
        orphan["ended"]
            .as_str()
            .unwrap()
            .contains("outlived the main process"),
        "{orphan}"
    );
    assert!(advice(&v).contains("outlived the main process"), "{v}");
}

#[test]
fn zombie_the_app_never_waits_for_is_reported() {
    let (v, _) = json(&[
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_zombie.py"),
    ]);
    let z = v["zombies"].as_array().unwrap();
    assert_eq!(z.len(), 1, "{v}");
    assert!(z[0]["seconds"].as_f64().unwrap() >= 0.1);
    assert!(advice(&v).contains("never waits"), "{v}");
}

#[test]
fn block_buffered_output_is_detected() {
    let (v, _) = json(&[
        "--no-python-env",
        "--after",
        "1s",
        "--",
        "python3",
        &fx("check_buffered.py"),
    ]);
    assert_eq!(v["line_buffered"], false, "{v}");
    assert!(advice(&v).contains("block-buffered"), "{v}");
    // pyinit's default PYTHONUNBUFFERED=1 fixes it.
    let (v, _) = json(&["--after", "1s", "--", "python3", &fx("check_buffered.py")]);
    assert_eq!(v["line_buffered"], true, "{v}");
}

#[test]
fn ready_notify_and_ready_port() {
    let (v, _) = json(&["--ready-notify", "--", "python3", &fx("check_notify.py")]);
    assert_eq!(v["verdict"], "PASS", "{v}");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (v, _) = json(&[
        "--ready-port",
        &port.to_string(),
        "--",
        "python3",
        &fx("check_port.py"),
        &port.to_string(),
    ]);
    assert_eq!(v["verdict"], "PASS", "{v}");
    assert!(v["ready_s"].as_f64().unwrap() >= 0.2, "{v}");
}

#[test]
fn unreachable_port_is_a_finding_not_a_hang() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (out, elapsed) = check(&[
        "--json",
        "--ready-port",
        &port.to_string(),
        "--ready-timeout",
        "1s",
        "--",
        "python3",
        &fx("check_good.py"),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "FAIL");
    assert!(
        v["reason"].as_str().unwrap().contains("never became ready"),
        "{v}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &[][..],
        &["--ready-line", "(unclosed", "--", "true"],
        &["--signal", "NOPE", "--", "true"],
        &["--ready-port", "0", "--", "true"],
        &["--after", "1s", "--ready-port", "80", "--", "true"],
        &["--config", "/nonexistent/pyinit.toml"],
        &["--procfile", "/nonexistent/Procfile", "--", "true"],
    ] {
        let (out, elapsed) = check(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("pyinit: error:"), "{err}");
        assert!(elapsed < Duration::from_secs(2));
    }
}

#[test]
fn help_and_exit_codes() {
    let (out, _) = check(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let h = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--ready-line",
        "--ready-port",
        "--ready-notify",
        "--after",
        "--signal",
        "--strict",
        "--json",
        "--grace",
    ] {
        assert!(h.contains(opt), "{opt}");
    }
}

#[test]
fn falls_back_to_subreaper_and_says_so() {
    // A PATH without `unshare` stands in for a kernel that refuses namespaces.
    let dir = std::env::temp_dir().join(format!("pyinit-check-nounshare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8_lossy(&python.stdout).trim().to_string();
    let link = dir.join("python3");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&python, &link).unwrap();
    let (out, _) = check_env(
        &[
            "--json",
            "--ready-line",
            "ready",
            "--",
            "python3",
            &fx("check_good.py"),
        ],
        &[("PATH", dir.to_str().unwrap())],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        v["isolation"].as_str().unwrap().starts_with("subreaper"),
        "{v}"
    );
    assert_eq!(v["verdict"], "PASS", "{v}");
}

/// The finding of this kind in a JSON report, if any.
fn finding<'a>(v: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
}

fn kinds(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// A master that handles TERM and stops its forked workers (no handler of
/// their own) itself: under `-g` pyinit's direct TERM kills the workers mid
/// task; their master reaps them, so pyinit has no status: `check` reads it
/// from the zombie in /proc or infers it from their masks. Under the default
/// scope they finish.
#[test]
fn workers_killed_by_a_group_stop_are_work_cut_short() {
    let (v, code) = json(&[
        "-g",
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_pool.py"),
    ]);
    assert_eq!(v["verdict"], "WARN", "{v:#}");
    assert_eq!(code, 0);
    let f = finding(&v, "work_cut_short").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(f["pids"].as_array().unwrap().len(), 2, "{v:#}");
    // Known from the zombie's /proc status when a sample caught it, else
    // inferred from its masks: either way a death by SIGTERM.
    for p in v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["main"] == false)
    {
        let ended = p["ended"].as_str().unwrap();
        assert!(
            ended.starts_with("killed by SIGTERM") || ended.starts_with("died of SIGTERM"),
            "{v:#}"
        );
    }
    assert!(advice(&v).contains("--signal-scope auto"), "{v:#}");
    assert!(
        v["stdout_tail"].to_string().contains("died of signal 15"),
        "{v:#}"
    );

    let (v, code) = json(&[
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_pool.py"),
    ]);
    assert_eq!(v["verdict"], "PASS", "{v:#}");
    assert_eq!(code, 0);
    assert!(kinds(&v).is_empty(), "{v:#}");
    let out = v["stdout_tail"].to_string();
    assert_eq!(out.matches("finished its task").count(), 2, "{v:#}");
}

/// uvicorn's way: handle TERM, clean up, re-raise. WARN with `-e 143`
/// advice (never "install a handler"); with `-e 143`, PASS.
#[test]
fn handled_then_reraised_warns_and_expect_exit_passes() {
    let args = [
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_reraise.py"),
    ];
    let (v, code) = json(&args);
    assert_eq!(v["verdict"], "WARN", "{v:#}");
    assert_eq!(code, 0);
    assert_eq!(v["exit_status"], 143);
    assert!(finding(&v, "handled_then_reraised").is_some(), "{v:#}");
    let a = advice(&v);
    assert!(a.contains("-e 143"), "{a}");
    assert!(!a.contains("signal.signal"), "{a}");
    assert!(
        v["stdout_tail"].to_string().contains("cleanup ran"),
        "{v:#}"
    );

    let mut expect = vec!["-e", "143"];
    expect.extend_from_slice(&args);
    let (v, code) = json(&expect);
    assert_eq!(v["verdict"], "PASS", "{v:#}");
    assert_eq!(code, 0);
    assert!(kinds(&v).is_empty(), "{v:#}");
}

/// A master whose handler never passes TERM on, waiting for a worker that
/// never gets it: FAIL, with the scope that fixes it, which `-g` proves.
#[test]
fn handler_that_never_passes_the_signal_on_fails_with_group_advice() {
    let (v, code) = json(&[
        "-t",
        "1s",
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_nopass.py"),
    ]);
    assert_eq!(v["verdict"], "FAIL", "{v:#}");
    assert_eq!(code, 1);
    assert_eq!(v["killed"], true);
    let f = finding(&v, "children_never_signalled").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(f["pids"].as_array().unwrap().len(), 1, "{v:#}");
    let a = advice(&v);
    assert!(a.contains("--signal-scope group"), "{a}");
    assert!(!a.contains("--single-child"), "{a}");

    let (v, _) = json(&[
        "-g",
        "-t",
        "1s",
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_nopass.py"),
    ]);
    // The advised scope stops it in time. Its worker then dies of the
    // direct TERM while its master handles TERM: the work_cut_short WARN,
    // whose advice says when group is the right scope after all.
    assert_eq!(v["killed"], false, "the advised scope works: {v:#}");
    assert!(v["time_to_exit_s"].as_f64().unwrap() < 1.0, "{v:#}");
    assert!(advice(&v).contains("Keep group only if"), "{v:#}");
}

/// `--procfile`: the whole set runs under one pyinit; the report names each
/// process and the one that re-raised TERM.
#[test]
fn procfile_is_checked_per_process() {
    let (v, code) = json(&["--procfile", &fx("check.Procfile"), "--after", "1s"]);
    assert_eq!(v["verdict"], "WARN", "{v:#}");
    assert_eq!(code, 0);
    assert!(
        v["reason"].as_str().unwrap().starts_with("worker:"),
        "{v:#}"
    );
    let procs = v["processes"].as_array().unwrap();
    let names: Vec<&str> = procs
        .iter()
        .filter(|p| p["main"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "worker"], "{v:#}");
    let web = procs.iter().find(|p| p["name"] == "web").unwrap();
    assert!(
        web["ended"]
            .as_str()
            .unwrap()
            .starts_with("exited with status 0"),
        "{v:#}"
    );
    let f = finding(&v, "handled_then_reraised").unwrap_or_else(|| panic!("{v:#}"));
    assert!(
        f["message"].as_str().unwrap().starts_with("worker"),
        "{v:#}"
    );
    assert!(
        v["stdout_tail"]
            .to_string()
            .contains("web | shutting down cleanly"),
        "{v:#}"
    );
}

/// The signal waits until the process tree has settled: workers started
/// 0.25 s and 0.5 s after the "ready" line are running when it goes out.
#[test]
fn readiness_waits_for_the_process_tree_to_settle() {
    let (v, _) = json(&[
        "--ready-line",
        "ready",
        "--",
        "python3",
        &fx("check_late_children.py"),
    ]);
    assert_eq!(v["verdict"], "PASS", "{v:#}");
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 3, "main and both workers: {v:#}");
    let ready = v["ready_s"].as_f64().unwrap();
    let settled = v["settled_s"].as_f64().unwrap();
    assert!(settled - ready >= 0.5 + 0.3 - 0.1, "{ready} {settled}");
    assert!(settled - ready < 3.0, "{ready} {settled}");
}

/// A real uvicorn with a lifespan hook: it handles TERM, runs the hook and
/// re-raises TERM on purpose.
#[test]
fn uvicorn_reraise_is_a_warn_with_expect_exit_advice() {
    let uvicorn = venv_bin("uvicorn");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let args = [
        "--ready-port".to_string(),
        port.to_string(),
        "--".into(),
        uvicorn.to_string_lossy().into_owned(),
        "--app-dir".into(),
        fx(""),
        "--port".into(),
        port.to_string(),
        "check_asgi:app".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (v, _) = json(&args);
    assert_eq!(v["verdict"], "WARN", "{v:#}");
    assert!(finding(&v, "handled_then_reraised").is_some(), "{v:#}");
    assert!(advice(&v).contains("-e 143"), "{v:#}");
    assert!(!advice(&v).contains("signal.signal"), "{v:#}");
    let out = format!("{}{}", v["stdout_tail"], v["stderr_tail"]);
    assert!(out.contains("lifespan shutdown ran"), "{v:#}");

    let mut expect = vec!["-e", "143"];
    expect.extend_from_slice(&args);
    let (v, _) = json(&expect);
    assert_eq!(v["verdict"], "PASS", "{v:#}");
}

/// A real celery prefork worker (kombu's filesystem:// broker) with a 3 s
/// task running when TERM arrives (the issue's case): under `-g` its pool
/// processes die of pyinit's direct TERM, the task is lost (work cut short)
/// and the master hangs until the deadline; under the default scope the
/// task finishes and celery exits 0.
#[test]
fn celery_pool_under_group_scope_is_work_cut_short() {
    let celery = venv_bin("celery");
    let python = venv_bin("python");
    let dir = std::env::temp_dir().join(format!("pyinit-check-celery-{}", std::process::id()));
    let fixtures = fx("");
    let env = [
        ("CHECK_CELERY_DIR", dir.to_str().unwrap()),
        ("PYTHONPATH", fixtures.as_str()),
    ];
    let run = |scope: &[&str]| {
        // One task in the queue: the worker starts it at once.
        let _ = std::fs::remove_dir_all(&dir);
        let queued = Command::new(&python)
            .args(["-c", "import check_celery_app as a; a.slow.delay()"])
            .env_clear()
            .envs(clean_env())
            .envs(env)
            .status()
            .unwrap();
        assert!(queued.success());
        let mut args = vec!["--json", "--ready-line", "task started"];
        args.extend_from_slice(scope);
        args.extend_from_slice(&[
            "--",
            celery.to_str().unwrap(),
            "-A",
            "check_celery_app",
            "worker",
            "-c",
            "2",
            "-l",
            "info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]);
        let (out, _) = check_env(&args, &env);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    // Under -g the master hangs until the deadline; the default scope's
    // warm shutdown waits for the task (3 s) and the pool joins (about 2 s).
    let grouped = run(&["-g", "-t", "4s"]);
    let plain = run(&["-t", "15s"]);
    let _ = std::fs::remove_dir_all(&dir);
    let finished = |v: &serde_json::Value| {
        format!("{}{}", v["stdout_tail"], v["stderr_tail"]).contains("task finished")
    };

    let f = finding(&grouped, "work_cut_short").unwrap_or_else(|| panic!("{grouped:#}"));
    assert_eq!(f["pids"].as_array().unwrap().len(), 2, "{grouped:#}");
    assert_ne!(grouped["verdict"], "PASS", "{grouped:#}");
    assert!(!finished(&grouped), "{grouped:#}");
    assert!(
        advice(&grouped).contains("--signal-scope auto"),
        "{grouped:#}"
    );

    assert_eq!(plain["verdict"], "PASS", "{plain:#}");
    assert!(kinds(&plain).is_empty(), "{plain:#}");
    assert!(finished(&plain), "the task finished: {plain:#}");
}

/// gunicorn 23 (`target/test-venv-gunicorn23`, made by scripts/test.sh).
fn gunicorn23() -> String {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-venv-gunicorn23/bin/gunicorn");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh",
        p.display()
    );
    p.to_string_lossy().into_owned()
}

/// gunicorn < 27 logs `[ERROR] Worker (pid:N) was sent SIGTERM!` for a
/// worker that got TERM from pyinit on top of its master's (`-g`): WARN
/// with the line and the scope advice. Under the default scope, PASS, and
/// the signal waits until all four workers have booted.
#[test]
fn gunicorn23_error_lines_under_group_scope_warn() {
    let gunicorn = gunicorn23();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let port = port.to_string();
    let fixtures = fx("");
    let run = |scope: &[&str]| {
        let mut args = scope.to_vec();
        args.extend_from_slice(&[
            "--ready-port",
            &port,
            "--",
            &gunicorn,
            "-w",
            "4",
            "-b",
            &bind,
            "--chdir",
            &fixtures,
            "gunicorn_app:app",
        ]);
        json(&args).0
    };
    let grouped = run(&["-g"]);
    assert_eq!(grouped["verdict"], "WARN", "{grouped:#}");
    let f = finding(&grouped, "shutdown_errors").unwrap_or_else(|| panic!("{grouped:#}"));
    assert!(
        f["message"].as_str().unwrap().contains("was sent SIGTERM!"),
        "{grouped:#}"
    );
    assert!(
        advice(&grouped).contains("--signal-scope auto"),
        "{grouped:#}"
    );

    let plain = run(&[]);
    assert_eq!(plain["verdict"], "PASS", "{plain:#}");
    assert!(kinds(&plain).is_empty(), "{plain:#}");
    assert_eq!(
        plain["processes"].as_array().unwrap().len(),
        5,
        "master and 4 booted workers at the signal: {plain:#}"
    );
}

/// `--config`: the set of a TOML file, with its own grace and expect_exit
/// (web re-raises TERM, which `expect_exit = [143]` accepts).
#[test]
fn config_file_is_checked_with_its_own_grace_and_expect_exit() {
    let (v, code) = json(&["--config", &fx("check.toml"), "--after", "0.5s"]);
    assert_eq!(v["verdict"], "PASS", "{v:#}");
    assert_eq!(code, 0);
    assert_eq!(v["grace_s"], 5.0, "{v:#}");
    let names: Vec<&str> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["main"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "worker"], "{v:#}");
    assert!(kinds(&v).is_empty(), "{v:#}");
}
