//! Real Python stacks under pyinit as PID 1 (SPEC point 2, signal scope;
//! point 3, the stop budget; "Several processes"): celery, gunicorn 23 and
//! 27, uvicorn, a multiprocessing pool, a Procfile, a TOML stop chain, and
//! `pyinit check` on two of them. Each test asserts what the user sees (the
//! task finished, the request was answered, no ERROR line, the exit status,
//! the time the stop took), never how pyinit routed the signal.
//!
//! The packages come from the pinned venvs that `scripts/test.sh` makes:
//! `target/test-venv` (scripts/test-requirements.txt: gunicorn 27, celery,
//! kombu, uvicorn, Django) and `target/test-venv-gunicorn23`
//! (scripts/test-requirements-gunicorn23.txt). Never skipped.
//!
//! Two environment variables run the same scenarios differently, to compare:
//! - `STACKS_FLAGS="-c"`: extra flags for the init, before `--`
//!   (`STACKS_FLAGS="--signal-scope group"`, ...).
//! - `STACKS_INIT=/usr/bin/tini`: run that init as PID 1 instead of pyinit
//!   (the scenarios that need a Procfile, a TOML config or `pyinit check`
//!   say so and pass without running). A path to another pyinit build (a
//!   file named `pyinit`) runs every scenario with that build.
//!
//! The tests run one at a time (a lock): they measure stop times, and four
//! gunicorns booting at once on a small machine would blur them.
mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use util::*;

// ------------------------------------------------------------------ harness

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lock that runs the stack tests one at a time.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Extra init flags from `STACKS_FLAGS` (split on whitespace).
fn extra_flags() -> Vec<String> {
    std::env::var("STACKS_FLAGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The init under test: pyinit, or `STACKS_INIT` (e.g. /usr/bin/tini).
fn other_init() -> Option<PathBuf> {
    std::env::var_os("STACKS_INIT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The pyinit binary under test: this build, or `STACKS_INIT` when that is
/// another pyinit build (its file name is `pyinit`).
fn pyinit_under_test() -> Option<PathBuf> {
    match other_init() {
        None => Some(pyinit_bin()),
        Some(p) if p.file_name() == Some(std::ffi::OsStr::new("pyinit")) => Some(p),
        Some(_) => None,
    }
}

/// For scenarios only pyinit can run (Procfile, TOML, `check`): true, with a
/// note, when another init (not a pyinit build) is under test.
fn pyinit_only(what: &str) -> bool {
    if pyinit_under_test().is_none() {
        let init = other_init().unwrap_or_default();
        eprintln!("{what}: not applicable to {}", init.display());
        return true;
    }
    false
}

fn stacks_dir() -> PathBuf {
    fixture("stacks")
}

/// A program from one of the pinned venvs: `venv` is `test-venv` or
/// `test-venv-gunicorn23`.
fn venv_program(venv: &str, name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(venv)
        .join("bin")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh (it creates the pinned venvs under target/)",
        p.display()
    );
    p
}

/// The init (pyinit or `STACKS_INIT`) as PID 1, with `STACKS_FLAGS` and
/// `flags` before `--`, and an environment for the stacks: HOME and
/// STACK_DIR in `dir`, the venv first on PATH.
fn init(dir: &TempDir, venv: &str, flags: &[&str]) -> Builder {
    let bin = venv_program(venv, "python");
    let bin = bin.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut b = Builder::new()
        .env("HOME", &dir.0)
        .env("STACK_DIR", &dir.0)
        .env("PATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // pyinit adds it anyway; set here so that tini's runs log the same.
        .env("PYTHONUNBUFFERED", "1");
    if let Some(other) = other_init() {
        b = b.init_program(other);
    }
    b.args(extra_flags()).args(flags)
}

/// One HTTP GET of `path`: the status line and the body, or None.
fn http_get(port: u16, path: &str, timeout: Duration) -> Option<(String, String)> {
    let resp = http_get_raw(port, path, timeout)?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some('S' | 'R' | 'D'))
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// How many lines of `text` contain `needle`.
fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// The lines of `text` that contain any of `needles`, for failure messages.
fn lines_with(text: &str, needles: &[&str]) -> String {
    text.lines()
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Both streams of an outcome, for failure messages.
fn both(out: &Outcome) -> String {
    format!(
        "--- stdout:\n{}\n--- stderr:\n{}",
        out.stdout_str(),
        out.stderr_str()
    )
}

/// The init's own report of a SIGKILL it sent (pyinit: "sent SIGKILL").
fn reports_sigkill(stderr: &str) -> bool {
    stderr.contains("SIGKILL")
}

/// What a test measured, on stderr (visible with `--nocapture`).
fn report(name: &str, took: Duration, out: &Outcome) {
    let init = other_init()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "pyinit".into());
    eprintln!(
        "[stacks] {name}: init={init} flags={:?} exit={} stop took {:.2}s",
        extra_flags(),
        out.code,
        took.as_secs_f64()
    );
}

// ------------------------------------------------------------------- celery

/// celery's prefork worker finishes the task it is running when the stop
/// signal arrives (warm shutdown), then exits 0. A TERM sent to its pool
/// processes directly kills them and loses the task (SPEC point 2).
#[test]
fn celery_prefork_finishes_the_running_task_and_exits_0() {
    let _s = serial();
    let dir = TempDir::new("celery");
    let celery = venv_program("test-venv", "celery");
    let r = init(&dir, "test-venv", &[])
        .arg("--")
        .arg(&celery)
        .args(["--workdir"])
        .arg(stacks_dir())
        .args(["-A", "celery_app", "worker", "-c", "2", "--pool", "prefork"])
        .args(["-l", "info", "-n", "stacks@localhost", "--without-mingle"])
        .args(["--without-gossip", "--without-heartbeat"])
        .spawn();
    r.wait_stderr(SECS(30), |l| l.contains("stacks@localhost ready."));

    let marker = dir.0.join("task-finished");
    let mut enqueue = Command::new(venv_program("test-venv", "python"));
    enqueue
        .arg(stacks_dir().join("celery_app.py"))
        .arg(&marker)
        .current_dir(stacks_dir())
        .env_clear()
        .envs(clean_env())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("STACK_DIR", &dir.0);
    let queued = run_bounded(enqueue, SECS(30));
    assert_code(&queued, 0);
    r.wait_stderr(SECS(15), |l| l.contains("slow task started"));

    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    report("celery prefork", took, &out);
    let err = out.stderr_str();
    let relevant = lines_with(
        &err,
        &["slow task", "shutdown", "exited with", "SIGKILL", "ERROR"],
    );
    assert!(
        marker.exists(),
        "the task was cut short (no marker file); relevant lines:\n{relevant}\n{}",
        both(&out)
    );
    assert!(
        !err.contains("exited with 'signal"),
        "a pool process died of a signal:\n{relevant}"
    );
    assert!(!reports_sigkill(&err), "SIGKILL was needed:\n{relevant}");
    assert_eq!(
        out.code, 0,
        "celery's exit status; relevant lines:\n{relevant}"
    );
}

// ----------------------------------------------------------------- gunicorn

/// gunicorn `-w 4` with `worker_class`, TERM (while a slow request is in
/// flight when `in_flight`): the request is answered, every worker exits by
/// itself, gunicorn logs no `[ERROR]` and exits 0. gunicorn < 27 logs an
/// ERROR for a worker that gets a second TERM while its interpreter shuts
/// down (the handler is gone by then): with idle sync workers that is
/// nearly every worker, with a request in flight only now and then.
fn gunicorn_term(venv: &str, worker_class: &str, in_flight: bool) {
    let _s = serial();
    let dir = TempDir::new("gunicorn");
    let port = free_port();
    let mut r = init(&dir, venv, &[])
        .arg("--")
        .arg(venv_program(venv, "gunicorn"));
    r = r
        .args(["-w", "4", "-k", worker_class, "-b"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--graceful-timeout", "20", "--chdir"])
        .arg(stacks_dir())
        .arg("wsgi_slow:app");
    if worker_class == "gthread" {
        r = r.args(["--threads", "2"]);
    }
    let r = r.spawn();
    let booted = |r: &Running| count(&r.stderr_now(), "Booting worker with pid") >= 4;
    assert!(
        eventually(SECS(30), || booted(&r)
            && http_get(port, "/", SECS(2)).is_some()),
        "gunicorn did not boot 4 workers; stderr:\n{}",
        r.stderr_now()
    );

    let slow = in_flight.then(|| {
        let slow = std::thread::spawn(move || http_get(port, "/slow", SECS(15)));
        r.wait_stderr(SECS(10), |l| l.contains("slow request started"));
        slow
    });
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    let answer = slow.map(|t| t.join().unwrap());
    let what = if in_flight {
        "in-flight request"
    } else {
        "idle"
    };
    report(
        &format!("gunicorn ({venv}, {worker_class}, {what})"),
        took,
        &out,
    );

    let err = out.stderr_str();
    let relevant = lines_with(
        &err,
        &[
            "[ERROR]",
            "Worker exiting",
            "was sent",
            "terminated due to signal",
            "SIGKILL",
            "slow request",
            "Shutting down",
        ],
    );
    if let Some(answer) = answer {
        assert!(
            matches!(&answer, Some((status, body)) if status.contains(" 200") && body == "slow done\n"),
            "the in-flight request was not answered: {answer:?}\n{relevant}"
        );
    }
    assert!(
        !err.contains("[ERROR]"),
        "gunicorn logged errors:\n{relevant}"
    );
    assert!(
        !err.contains("was sent SIGTERM") && !err.contains("terminated due to signal"),
        "a worker died of a signal:\n{relevant}"
    );
    assert_eq!(
        count(&err, "Worker exiting (pid:"),
        4,
        "not every worker exited by itself:\n{relevant}"
    );
    assert!(!reports_sigkill(&err), "SIGKILL was needed:\n{relevant}");
    assert_eq!(out.code, 0, "gunicorn's exit status:\n{relevant}");
}

#[test]
fn gunicorn23_sync_answers_in_flight_request_without_errors() {
    gunicorn_term("test-venv-gunicorn23", "sync", true);
}

#[test]
fn gunicorn23_sync_idle_stop_logs_no_errors() {
    gunicorn_term("test-venv-gunicorn23", "sync", false);
}

#[test]
fn gunicorn23_gthread_answers_in_flight_request_without_errors() {
    gunicorn_term("test-venv-gunicorn23", "gthread", true);
}

#[test]
fn gunicorn23_gthread_idle_stop_logs_no_errors() {
    gunicorn_term("test-venv-gunicorn23", "gthread", false);
}

#[test]
fn gunicorn27_sync_answers_in_flight_request_without_errors() {
    gunicorn_term("test-venv", "sync", true);
}

#[test]
fn gunicorn27_sync_idle_stop_logs_no_errors() {
    gunicorn_term("test-venv", "sync", false);
}

#[test]
fn gunicorn27_gthread_answers_in_flight_request_without_errors() {
    gunicorn_term("test-venv", "gthread", true);
}

#[test]
fn gunicorn27_gthread_idle_stop_logs_no_errors() {
    gunicorn_term("test-venv", "gthread", false);
}

// ------------------------------------------------------------------ uvicorn

/// uvicorn runs its lifespan shutdown hook on TERM, then re-raises TERM on
/// purpose: exit 143, or 0 with `-e 143`.
fn uvicorn_term(flags: &[&str], expected: i32) {
    let _s = serial();
    let dir = TempDir::new("uvicorn");
    let port = free_port();
    let r = init(&dir, "test-venv", flags)
        .arg("--")
        .arg(venv_program("test-venv", "uvicorn"))
        .arg("--app-dir")
        .arg(stacks_dir())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("asgi_lifespan:app")
        .spawn();
    r.wait_stderr(SECS(30), |l| l.contains("Application startup complete"));
    assert!(
        eventually(SECS(10), || http_get(port, "/", SECS(2)).is_some()),
        "uvicorn does not answer; stderr:\n{}",
        r.stderr_now()
    );
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    report(&format!("uvicorn {flags:?}"), took, &out);
    let err = out.stderr_str();
    assert!(
        dir.0.join("shutdown-hook-ran").exists(),
        "the lifespan shutdown hook did not run\n{}",
        both(&out)
    );
    assert!(
        err.contains("Application shutdown complete"),
        "{}",
        both(&out)
    );
    assert!(!reports_sigkill(&err), "SIGKILL was needed\n{}", both(&out));
    assert_eq!(out.code, expected, "exit status\n{}", both(&out));
    assert!(took < SECS(3), "stopping took {took:?}");
}

#[test]
fn uvicorn_runs_its_shutdown_hook_and_exits_143() {
    uvicorn_term(&[], 143);
}

#[test]
fn uvicorn_with_expect_exit_143_exits_0() {
    uvicorn_term(&["-e", "143"], 0);
}

// --------------------------------------------------------- multiprocessing

/// `mp_pool.py MODE`: TERM, and within 1 s every process is gone without a
/// SIGKILL; the status is `expected`.
fn mp_pool_term(mode: &str, expected: i32) {
    let _s = serial();
    let dir = TempDir::new("mp");
    let r = init(&dir, "test-venv", &[])
        .arg("--")
        .arg(venv_program("test-venv", "python"))
        .arg(stacks_dir().join("mp_pool.py"))
        .arg(mode)
        .spawn();
    r.wait_stdout(SECS(20), |l| l.contains("pool ready"));
    let procs = r.descendants();
    assert!(
        procs.len() >= 3,
        "expected the main and 2 pool workers, saw {procs:?}"
    );
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    report(&format!("multiprocessing pool ({mode})"), took, &out);
    assert!(
        took < SECS(1),
        "the stop took {took:?} (processes {procs:?})\n{}",
        both(&out)
    );
    for p in &procs {
        assert!(proc_state(*p).is_none(), "pid {p} still in /proc");
    }
    assert!(
        !reports_sigkill(&out.stderr_str()),
        "SIGKILL was needed\n{}",
        both(&out)
    );
    assert_eq!(out.code, expected, "exit status\n{}", both(&out));
}

#[test]
fn multiprocessing_pool_without_handler_is_gone_within_1s() {
    mp_pool_term("plain", 143);
}

#[test]
fn multiprocessing_pool_with_term_handler_is_gone_within_1s() {
    mp_pool_term("handler", 0);
}

// ------------------------------------------------------------------- Django

/// `manage.py runserver` with its autoreloader: the reloader parent catches
/// TERM and exits 0, killing the server child itself. Stopped within 1 s,
/// status 0, nothing left for the init to kill.
#[test]
fn django_runserver_with_autoreloader_stops_at_once_with_status_0() {
    let _s = serial();
    let dir = TempDir::new("django");
    let port = free_port();
    let r = init(&dir, "test-venv", &[])
        .arg("--")
        .arg(venv_program("test-venv", "python"))
        .arg(stacks_dir().join("django_site.py"))
        .arg("runserver")
        .arg(format!("127.0.0.1:{port}"))
        .spawn();
    assert!(
        eventually(SECS(30), || http_get(port, "/", SECS(2)).is_some()),
        "runserver does not answer; stderr:\n{}\nstdout:\n{}",
        r.stderr_now(),
        r.stdout_now()
    );
    let procs = r.descendants();
    assert!(
        procs.len() >= 2,
        "expected the autoreloader and its server child, saw {procs:?}"
    );
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    report("Django runserver (autoreloader)", took, &out);
    assert!(took < SECS(1), "the stop took {took:?}\n{}", both(&out));
    for p in &procs {
        assert!(proc_state(*p).is_none(), "pid {p} still in /proc");
    }
    assert!(
        !reports_sigkill(&out.stderr_str()),
        "SIGKILL was needed\n{}",
        both(&out)
    );
    assert_eq!(out.code, 0, "exit status\n{}", both(&out));
}

// ------------------------------------------------------------ shell scripts

/// An entrypoint script whose trap flushes its worker (USR1) before
/// stopping it: the worker must still be alive when the trap runs, so the
/// stop signal must reach the script only.
#[test]
fn shell_trap_flushes_its_worker_before_stopping_it() {
    let _s = serial();
    let dir = TempDir::new("trap");
    let r = init(&dir, "test-venv", &[])
        .args(["--", "/bin/sh"])
        .arg(stacks_dir().join("trap.sh"))
        .spawn();
    r.wait_stdout(SECS(20), |l| l.contains("worker: running"));
    r.wait_stdout(SECS(20), |l| l.contains("script: ready"));
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    report("shell script with trap", took, &out);
    let text = out.stdout_str();
    assert!(
        text.contains("worker: flushed"),
        "the worker died before the trap could flush it\n{}",
        both(&out)
    );
    assert!(text.contains("trap: done"), "{}", both(&out));
    assert!(
        !reports_sigkill(&out.stderr_str()),
        "SIGKILL was needed\n{}",
        both(&out)
    );
    assert_eq!(out.code, 0, "exit status\n{}", both(&out));
    assert!(took < SECS(2), "the stop took {took:?}");
}

/// An entrypoint script with no trap (background workers, a pipeline):
/// nothing in it stops anything, so the init must: all gone within 1 s, no
/// SIGKILL.
#[test]
fn shell_script_without_trap_is_gone_within_1s() {
    let _s = serial();
    let dir = TempDir::new("notrap");
    let r = init(&dir, "test-venv", &[])
        .args(["--", "/bin/sh"])
        .arg(stacks_dir().join("notrap.sh"))
        .spawn();
    r.wait_stdout(SECS(20), |l| l.contains("script: ready"));
    assert!(
        eventually(SECS(20), || count(&r.stdout_now(), "loop running") == 2),
        "the workers did not start: {}",
        r.stdout_now()
    );
    let procs = r.descendants();
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    report("shell script without trap", took, &out);
    assert!(took < SECS(1), "the stop took {took:?}\n{}", both(&out));
    for p in &procs {
        assert!(proc_state(*p).is_none(), "pid {p} still in /proc");
    }
    assert!(
        !reports_sigkill(&out.stderr_str()),
        "SIGKILL was needed\n{}",
        both(&out)
    );
}

// ----------------------------------------------------------------- Procfile

/// A Procfile with gunicorn and a plain loop that has no handler: HUP
/// reloads gunicorn (new workers, same master) and the loop keeps running
/// (SPEC "Several processes": a non-stop signal goes only to the processes
/// that catch it).
#[test]
fn procfile_hup_reloads_gunicorn_and_spares_the_plain_loop() {
    if pyinit_only("Procfile HUP") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("procfile");
    let port = free_port();
    let procfile = dir.0.join("Procfile");
    std::fs::write(
        &procfile,
        format!(
            "web: {} -w 2 -b 127.0.0.1:{port} --chdir {} wsgi_slow:app\nloop: {} {}\n",
            venv_program("test-venv", "gunicorn").display(),
            stacks_dir().display(),
            venv_program("test-venv", "python").display(),
            stacks_dir().join("loop.py").display(),
        ),
    )
    .unwrap();
    let r = init(&dir, "test-venv", &["--procfile"])
        .arg(&procfile)
        .spawn();
    let pyinit = r.pyinit_pid();
    let find = |needle: &str| {
        children_of(pyinit)
            .into_iter()
            .find(|&p| cmdline(p).contains(needle))
    };
    let (mut master, mut looper) = (None, None);
    assert!(
        eventually(SECS(30), || {
            master = find("gunicorn");
            looper = find("loop.py");
            master.is_some_and(|m| children_of(m).len() == 2)
                && looper.is_some()
                && http_get(port, "/", SECS(2)).is_some()
        }),
        "gunicorn and the loop did not start; stderr:\n{}\nstdout:\n{}",
        r.stderr_now(),
        r.stdout_now()
    );
    let (master, looper) = (master.unwrap(), looper.unwrap());
    let old: Vec<i32> = children_of(master);

    r.signal(libc::SIGHUP);
    let mut new = Vec::new();
    let reloaded = eventually(SECS(15), || {
        new = children_of(master);
        new.len() == 2 && new.iter().all(|p| !old.contains(p) && alive(*p))
    });
    // Whatever happened to the loop happened at once (it has no handler).
    std::thread::sleep(Duration::from_millis(300));
    let context = format!(
        "workers {old:?} -> {new:?}; master {master} alive: {}; loop {looper} alive: {}\nstderr:\n{}\nstdout:\n{}",
        alive(master),
        alive(looper),
        r.stderr_now(),
        r.stdout_now()
    );
    assert!(alive(looper), "HUP killed the plain loop: {context}");
    assert!(reloaded, "gunicorn did not reload its workers: {context}");
    assert!(alive(master), "the gunicorn master was replaced: {context}");
    assert_eq!(find("gunicorn"), Some(master), "{context}");
    assert_eq!(find("loop.py"), Some(looper), "{context}");
    assert!(alive(pyinit), "the container stopped: {context}");
    assert!(
        http_get(port, "/", SECS(2)).is_some(),
        "gunicorn no longer answers: {context}"
    );

    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    report(
        "Procfile gunicorn + loop, HUP then TERM",
        t0.elapsed(),
        &out,
    );
}

// ------------------------------------------------------------ stop budget

/// Three TERM-ignoring processes chained by `depends_on`, `grace = "3s"`
/// each and at the top: the whole stop ends by the top-level grace (SPEC
/// point 3), not after 3 x 3 s.
#[test]
fn toml_chain_stop_is_bounded_by_the_top_level_grace() {
    if pyinit_only("TOML stop chain") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("chain");
    let python = venv_program("test-venv", "python");
    let ignore = fixture("stop_ignore_term.py");
    let mut toml = String::from("grace = \"3s\"\n");
    for (name, dep) in [("a", None), ("b", Some("a")), ("c", Some("b"))] {
        toml += &format!(
            "\n[process.{name}]\ncommand = [\"{}\", \"{}\"]\ngrace = \"3s\"\nready = {{ line = \"READY\" }}\n",
            python.display(),
            ignore.display()
        );
        if let Some(d) = dep {
            toml += &format!("depends_on = [\"{d}\"]\n");
        }
    }
    let config = dir.0.join("pyinit.toml");
    std::fs::write(&config, &toml).unwrap();
    let r = init(&dir, "test-venv", &["--config"]).arg(&config).spawn();
    assert!(
        eventually(SECS(20), || count(&r.stdout_now(), "READY") == 3),
        "the chain did not start; stdout:\n{}\nstderr:\n{}",
        r.stdout_now(),
        r.stderr_now()
    );
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(20));
    let took = t0.elapsed();
    report("TOML chain of three, grace 3s", took, &out);
    assert!(
        took < SECS(4),
        "the whole stop took {took:?}, the top-level grace is 3s\n{}",
        both(&out)
    );
    assert!(
        took >= Duration::from_millis(2900),
        "the stop ended before the grace period ({took:?}): the processes ignore TERM\n{}",
        both(&out)
    );
}

// ------------------------------------------------------------ pyinit check

/// `pyinit check --json ARGS` run from `cwd` with `env`, bounded in time;
/// the report and the exit status.
fn check_json(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> (serde_json::Value, i32) {
    let mut cmd = Command::new(pyinit_under_test().expect("a pyinit build"));
    cmd.arg("check")
        .arg("--json")
        .args(extra_flags())
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(clean_env())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    let out = run_bounded(cmd, SECS(60));
    let text = out.stdout_str();
    let v = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not a JSON report ({e}), exit {}\n{}", out.code, both(&out)));
    (v, out.code)
}

fn advice_of(v: &serde_json::Value) -> String {
    v["advice"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// celery under `--signal-scope group`: its pool processes die of the TERM
/// although their parent handles it, which `check` calls work cut short
/// (WARN; FAIL when, as celery does after losing its pool, the main then
/// needs SIGKILL).
#[test]
fn check_warns_that_group_scope_cuts_celery_work_short() {
    if pyinit_only("pyinit check celery") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("check-celery");
    let bin = venv_program("test-venv", "celery");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (v, code) = check_json(
        &stacks_dir(),
        &[
            ("STACK_DIR", &dir.0),
            ("HOME", &dir.0),
            ("PATH", Path::new(&path)),
        ],
        &[
            "--signal-scope",
            "group",
            "--grace",
            "5s",
            "--ready-line",
            "ready\\.$",
            "--",
            &bin.to_string_lossy(),
            "-A",
            "celery_app",
            "worker",
            "-c",
            "2",
            "-l",
            "info",
            "-n",
            "check@localhost",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
    );
    let advice = advice_of(&v);
    eprintln!("[stacks] check celery --signal-scope group: {v}");
    // The pool processes died of TERM: WARN at least. celery's main then
    // hangs until the SIGKILL (measured: every run), which makes it a FAIL
    // by the verdict rules; the work-cut-short finding must be there either
    // way.
    let expected = if v["killed"] == true { "FAIL" } else { "WARN" };
    assert_eq!(v["verdict"], expected, "report: {v:#}");
    assert_eq!(code, i32::from(expected == "FAIL"), "report: {v:#}");
    let cut_short = v["findings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["kind"] == "work_cut_short"));
    assert!(
        cut_short,
        "no work-cut-short finding:\n{advice}\nreport: {v:#}"
    );
    assert!(
        advice.contains("--signal-scope auto"),
        "the advice names the fix:\n{advice}"
    );
}

/// A main that handles TERM but neither passes it on nor stops its worker:
/// the worker is killed at the deadline; `check` fails and advises
/// `--signal-scope group`.
#[test]
fn check_fails_a_term_handler_that_keeps_its_worker_and_advises_group() {
    if pyinit_only("pyinit check term_keeper") {
        return;
    }
    let _s = serial();
    let python = venv_program("test-venv", "python");
    let (v, code) = check_json(
        &stacks_dir(),
        &[],
        &[
            "--grace",
            "2s",
            "--ready-line",
            "^ready$",
            "--",
            &python.to_string_lossy(),
            "term_keeper.py",
        ],
    );
    let advice = advice_of(&v);
    eprintln!("[stacks] check term_keeper: {v}");
    assert_eq!(v["verdict"], "FAIL", "report: {v:#}");
    assert_eq!(code, 1, "report: {v:#}");
    assert_eq!(v["killed"], true, "report: {v:#}");
    assert!(
        advice.contains("--signal-scope group"),
        "no --signal-scope group advice:\n{advice}\nreport: {v:#}"
    );
}
