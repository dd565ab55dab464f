//! One-shot processes (SPEC "Several processes", one-shots): migrations run
//! to completion before the app starts; their success stops nothing; a
//! failure or a timeout stops everything with the one-shot's status; a stop
//! signal while they run goes to them, and later processes never start.
//!
//! Each test writes a TOML config or a Procfile into a temporary directory;
//! the one-shots are small Python programs that leave marker files.
mod util;
use std::path::Path;
use std::time::{Duration, Instant};
use util::*;

const T: Duration = Duration::from_secs(15);

/// A TOML basic string.
fn q(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// `["python3", "-c", CODE]` as a TOML array.
fn py_argv(code: &str) -> String {
    format!("[\"python3\", \"-c\", {}]", q(code))
}

/// A long-running "web" that says whether the marker existed when it
/// started, then serves until TERM (exit 0).
fn web_code(marker: &Path) -> String {
    format!(
        "import os, signal, sys, time\n\
         signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n\
         print('web up, migrated=' + str(os.path.exists({m:?})), flush=True)\n\
         while True: time.sleep(1)\n",
        m = marker.display().to_string()
    )
}

fn run_config(dir: &TempDir, toml: &str, extra: &[&str]) -> Running {
    let path = dir.write("pyinit.toml", toml);
    Builder::new()
        .args(extra)
        .arg("--config")
        .arg(&path)
        .spawn()
}

#[track_caller]
fn assert_code(out: &Outcome, code: i32) {
    assert_eq!(
        out.code,
        code,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
}

#[test]
fn a_migration_completes_before_the_web_starts_and_stops_nothing() {
    let dir = TempDir::new("ok");
    let marker = dir.join("migrated");
    let toml = format!(
        "[process.migrate]\ncommand = {}\noneshot = true\n\n\
         [process.web]\ncommand = {}\ndepends_on = [\"migrate\"]\n",
        py_argv(&format!(
            "import time; time.sleep(0.3); open({:?}, 'w').write('ok'); print('migrated')",
            marker.display().to_string()
        )),
        py_argv(&web_code(&marker)),
    );
    // -v shows the `stop` event, which says what started the stop.
    let r = run_config(&dir, &toml, &["-v"]);
    r.wait_stdout(T, |l| l.ends_with("web up, migrated=True"));
    r.wait_stderr(T, |l| l.contains("migrate completed"));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    let stderr = out.stderr_str();
    // The one-shot's exit 0 stopped nothing: the one stop there was came
    // from our TERM (the rule itself is unit-tested in supervisor::state).
    let stops: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pyinit") && l.contains("| stopping ("))
        .collect();
    assert_eq!(stops.len(), 1, "{stderr}");
    assert!(stops[0].contains("SIGTERM received"), "{stderr}");
    let completed = stderr.find("migrate completed").expect("completed line");
    let web_started = stderr.find("web started").expect("web started line");
    assert!(completed < web_started, "{stderr}");
}

#[test]
fn a_failed_migration_stops_everything_with_its_status_and_says_so() {
    let dir = TempDir::new("fail");
    let marker = dir.join("never");
    let toml = format!(
        "[process.migrate]\ncommand = {}\noneshot = true\n\n\
         [process.web]\ncommand = {}\ndepends_on = [\"migrate\"]\n",
        py_argv("import sys; print('database is down', file=sys.stderr); sys.exit(3)"),
        py_argv(&web_code(&marker)),
    );
    let out = run_config(&dir, &toml, &[]).wait(T);
    assert_code(&out, 3);
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("one-shot migrate failed: exited with status 3"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("web started"),
        "web must never start:\n{stderr}"
    );
    assert!(stderr.contains("database is down"), "{stderr}");
}

#[test]
fn a_migration_that_runs_too_long_is_stopped_and_exits_124() {
    let dir = TempDir::new("timeout");
    let toml = format!(
        "grace = \"2s\"\n\
         [process.migrate]\ncommand = {}\noneshot = true\ntimeout = \"500ms\"\ngrace = \"1s\"\n\n\
         [process.web]\ncommand = [\"sleep\", \"60\"]\ndepends_on = [\"migrate\"]\n",
        py_argv("import time\nprint('migrating', flush=True)\ntime.sleep(60)"),
    );
    let t0 = Instant::now();
    let out = run_config(&dir, &toml, &[]).wait(T);
    let took = t0.elapsed();
    assert_code(&out, 124);
    let stderr = out.stderr_str();
    assert!(stderr.contains("timed out after 500ms"), "{stderr}");
    assert!(!stderr.contains("web started"), "{stderr}");
    // TERM at 0.5 s kills the plain script at once.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_timed_out_migration_that_ignores_term_is_killed_after_its_grace() {
    let dir = TempDir::new("timeout-kill");
    let toml = format!(
        "[process.migrate]\ncommand = {}\noneshot = true\ntimeout = \"2s\"\ngrace = \"700ms\"\n",
        py_argv(
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
             print('stubborn', flush=True)\ntime.sleep(60)"
        ),
    );
    let t0 = Instant::now();
    let out = run_config(&dir, &toml, &[]).wait(T);
    let took = t0.elapsed();
    assert_code(&out, 124);
    assert!(
        out.stderr_str().contains("sent SIGKILL"),
        "{}",
        out.stderr_str()
    );
    assert!(
        // (The timeout leaves a loaded machine's Python time to start and
        // ignore TERM before it comes.)
        took >= Duration::from_millis(2600) && took < Duration::from_secs(6),
        "took {took:?}"
    );
}

#[test]
fn a_migration_is_retried_until_the_database_answers() {
    let dir = TempDir::new("retry");
    let counter = dir.join("tries");
    let marker = dir.join("migrated");
    let toml = format!(
        "[process.migrate]\ncommand = {}\noneshot = true\nrestart = \"on-failure\"\n\
         max_restarts = 5\nbackoff = \"100ms\"\n\n\
         [process.web]\ncommand = {}\ndepends_on = [\"migrate\"]\n",
        py_argv(&format!(
            "import os, sys\n\
             p = {c:?}\n\
             n = int(open(p).read()) + 1 if os.path.exists(p) else 1\n\
             open(p, 'w').write(str(n))\n\
             if n < 3:\n    print('try', n, 'failed', flush=True); sys.exit(1)\n\
             open({m:?}, 'w').write('ok')\n",
            c = counter.display().to_string(),
            m = marker.display().to_string()
        )),
        py_argv(&web_code(&marker)),
    );
    let r = run_config(&dir, &toml, &[]);
    r.wait_stdout(T, |l| l.ends_with("web up, migrated=True"));
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "3");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    assert_eq!(out.stderr_str().matches("restarting migrate").count(), 2);
}

#[test]
fn a_stop_signal_during_a_migration_goes_to_it_and_nothing_else_starts() {
    let dir = TempDir::new("term");
    let marker = dir.join("never");
    let toml = format!(
        "[process.migrate]\ncommand = {}\noneshot = true\n\n\
         [process.web]\ncommand = {}\ndepends_on = [\"migrate\"]\n",
        py_argv(
            "import signal, sys, time\n\
             def stop(*a):\n    print('migrate got TERM, rolling back', flush=True); sys.exit(0)\n\
             signal.signal(signal.SIGTERM, stop)\n\
             print('migrating', flush=True)\n\
             time.sleep(60)\n"
        ),
        py_argv(&web_code(&marker)),
    );
    let r = run_config(&dir, &toml, &[]);
    r.wait_stdout(T, |l| l.ends_with("migrating"));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
    assert!(out.stdout_str().contains("migrate got TERM, rolling back"));
    assert!(
        !out.stderr_str().contains("web started"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn one_shots_in_a_chain_run_in_order_and_pyinit_exits_0() {
    let dir = TempDir::new("chain");
    let log = dir.join("log");
    let step = |name: &str| {
        py_argv(&format!(
            "import time; time.sleep(0.2); open({:?}, 'a').write('{name}\\n')",
            log.display().to_string()
        ))
    };
    let toml = format!(
        "[process.collectstatic]\ncommand = {}\noneshot = true\ndepends_on = [\"migrate\"]\n\n\
         [process.migrate]\ncommand = {}\noneshot = true\n",
        step("collectstatic"),
        step("migrate"),
    );
    let out = run_config(&dir, &toml, &[]).wait(T);
    assert_code(&out, 0);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "migrate\ncollectstatic\n"
    );
}

#[test]
fn the_procfile_release_process_runs_before_every_other() {
    let dir = TempDir::new("release");
    let marker = dir.join("released");
    let release = format!(
        "python3 -c \"import time; time.sleep(0.3); open('{}', 'w').write('ok')\"",
        marker.display()
    );
    let web = format!(
        "python3 -c \"import os, time; print('web up, migrated=' + str(os.path.exists('{}')), flush=True); time.sleep(60)\"",
        marker.display()
    );
    let procfile = dir.write("Procfile", &format!("web: {web}\nrelease: {release}\n"));
    let r = Builder::new().arg("--procfile").arg(&procfile).spawn();
    r.wait_stdout(T, |l| l.ends_with("web up, migrated=True"));
    r.wait_stderr(T, |l| l.contains("release completed"));
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    // web dies of TERM (no handler): 143, the first non-zero status.
    assert_code(&out, 143);
}

#[test]
fn gunicorn_answers_only_after_the_migration_wrote_its_marker() {
    let dir = TempDir::new("gunicorn");
    let marker = dir.join("migrated");
    dir.write(
        "app.py",
        &format!(
            "import os\n\
             MIGRATED = os.path.exists({m:?})\n\
             def app(environ, start_response):\n\
             \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
             \x20   return [b'migrated' if MIGRATED else b'NOT migrated']\n",
            m = marker.display().to_string()
        ),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let toml = format!(
        "[process.migrate]\ncommand = {}\noneshot = true\n\n\
         [process.web]\ncommand = [{}, \"-w\", \"2\", \"-b\", \"127.0.0.1:{port}\", \"--chdir\", {}, \"app:app\"]\n\
         depends_on = [\"migrate\"]\nready = {{ port = {port} }}\n",
        py_argv(&format!(
            "import time; time.sleep(0.5); open({:?}, 'w').write('ok')",
            marker.display().to_string()
        )),
        q(&venv_bin("gunicorn").display().to_string()),
        q(&dir.0.display().to_string()),
    );
    let r = run_config(&dir, &toml, &[]);
    r.wait_stderr(T, |l| l.contains("web is ready"));
    let body = http_get_raw(port, "/", Duration::from_secs(5)).expect("no HTTP answer");
    assert!(body.ends_with("\r\n\r\nmigrated"), "{body:?}");
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 0);
}

#[test]
fn check_config_shows_what_each_process_waits_for() {
    let dir = TempDir::new("plan");
    let toml = "[process.migrate]\ncommand = \"python manage.py migrate\"\noneshot = true\n\n\
                [process.web]\ncommand = \"gunicorn app:app\"\ndepends_on = [\"migrate\"]\n";
    let path = dir.write("pyinit.toml", toml);
    let out = Builder::new()
        .args(["--check-config", "--config"])
        .arg(&path)
        .spawn()
        .wait(T);
    assert_code(&out, 0);
    let plan = out.stdout_str();
    assert!(plan.contains("migrate"), "{plan}");
    assert!(
        plan.contains("completed"),
        "the plan says web waits for migrate to complete:\n{plan}"
    );
}

#[test]
fn one_shot_configuration_errors_exit_2_with_one_line() {
    let dir = TempDir::new("errors");
    for (toml, want) in [
        (
            "[process.m]\ncommand = \"true\"\noneshot = true\nrestart = \"always\"\n",
            "m",
        ),
        (
            "[process.web]\ncommand = \"true\"\ntimeout = \"5s\"\n",
            "web",
        ),
        (
            "[process.a]\ncommand = \"true\"\noneshot = true\ndepends_on = [\"b\"]\n\
             [process.b]\ncommand = \"true\"\noneshot = true\ndepends_on = [\"a\"]\n",
            "cycle",
        ),
    ] {
        let path = dir.write("bad.toml", toml);
        let out = Builder::new().arg("--config").arg(&path).spawn().wait(T);
        assert_code(&out, 2);
        let stderr = out.stderr_str();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{toml}\n{stderr}");
    }
}

#[test]
fn the_multi_example_configs_are_valid_and_run_migrate_first() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multi");
    for (flag, file) in [("--config", "pyinit.toml"), ("--procfile", "Procfile")] {
        let out = Builder::new()
            .args(["--check-config", flag])
            .arg(root.join(file))
            .spawn()
            .wait(T);
        assert_code(&out, 0);
        let plan = out.stdout_str();
        let order = plan
            .lines()
            .find(|l| l.starts_with("start order"))
            .unwrap_or_else(|| panic!("no start order in:\n{plan}"));
        let first = order.split(':').nth(1).unwrap_or("").trim();
        assert!(
            first.starts_with("migrate") || first.starts_with("release"),
            "{file}: {order}"
        );
    }
}
