//! The control socket and its clients (SPEC "Health, status, control"):
//! `pyinit health`, `pyinit status`, `pyinit ctl` against pyinit as PID 1
//! (unshare) running real processes, standalone probes with no pyinit at
//! all, the socket's permissions and peer-uid check, hostile clients that
//! must not delay signals or the deadline, and stale/contested sockets.
//!
//! Every test has its own socket path (`PYINIT_SOCKET`) under its own temp
//! directory and finds free ports by binding port 0.
mod util;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use util::*;

const T: Duration = Duration::from_secs(10);

/// The control socket of a test, in a directory pyinit creates.
fn sock(dir: &TempDir) -> PathBuf {
    dir.join("run/control.sock")
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn argv(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

/// `ctl_http.py NAME PORT STATUSFILE` as a TOML argv.
fn http_service(name: &str, port: u16, status_file: &Path) -> String {
    argv(&[
        "python3",
        &fx("ctl_http.py"),
        name,
        &port.to_string(),
        &status_file.display().to_string(),
    ])
}

/// Runs `pyinit ARGS` as a client of `sock` (bounded in time).
fn client(sock: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(pyinit_bin());
    cmd.args(args)
        .env_clear()
        .envs(clean_env())
        .env("PYINIT_SOCKET", sock);
    run_bounded(cmd, T)
}

/// Runs `pyinit health ARGS` until it exits `code`; returns that outcome.
#[track_caller]
fn health_until(r: &Running, sock: &Path, args: &[&str], code: i32) -> Outcome {
    let deadline = Instant::now() + T;
    let mut all = vec!["health"];
    all.extend_from_slice(args);
    loop {
        let out = client(sock, &all);
        if out.code == code {
            return out;
        }
        if Instant::now() >= deadline {
            panic!(
                "pyinit health never exited {code}; last: {} {}{}\npyinit stderr:\n{}\nstdout:\n{}",
                out.code,
                out.stdout_str(),
                out.stderr_str(),
                r.stderr_now(),
                r.stdout_now()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_json(sock: &Path) -> serde_json::Value {
    let out = client(sock, &["status", "--json"]);
    assert_code(&out, 0);
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

fn proc_of<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name} in {status}"))
}

/// Polls `status --json` until process `name` satisfies `pred`.
#[track_caller]
fn wait_proc(
    r: &Running,
    sock: &Path,
    name: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + T;
    loop {
        let s = status_json(sock);
        if pred(proc_of(&s, name)) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached the expected state; last status {s}\npyinit stderr:\n{}",
            r.stderr_now()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_config(dir: &TempDir, toml: &str, extra: &[&str]) -> Running {
    let config = dir.write("pyinit.toml", toml);
    let r = Builder::new()
        .env("PYINIT_SOCKET", sock(dir))
        .args(extra)
        .arg("--config")
        .arg(&config)
        .spawn();
    wait_socket(&r, &sock(dir));
    r
}

/// web (http readiness, status from a file), db (port readiness, closes
/// its port on USR1) and worker (no readiness).
fn three_services(dir: &TempDir) -> (String, u16, u16, PathBuf) {
    let (web_port, db_port) = (free_port(), free_port());
    let web_status = dir.join("web.status");
    let toml = format!(
        "[process.web]\ncommand = {}\nready = {{ http = \"http://127.0.0.1:{web_port}/health\" }}\n\n\
         [process.db]\ncommand = {}\nready = {{ port = {db_port} }}\n\n\
         [process.worker]\ncommand = {}\n",
        http_service("web", web_port, &web_status),
        http_service("db", db_port, &dir.join("db.status")),
        argv(&["sleep", "1000"]),
    );
    (toml, web_port, db_port, web_status)
}

/// 1. All ready: health 0 and silent; `status --json` has exactly the
///    documented keys and states; the table shows every process.
#[test]
fn health_passes_when_all_are_ready_and_status_has_the_documented_shape() {
    let dir = TempDir::new("ready");
    let (toml, ..) = three_services(&dir);
    let r = spawn_config(&dir, &toml, &[]);
    let sock = sock(&dir);
    let ok = health_until(&r, &sock, &[], 0);
    assert_eq!(ok.stdout_str(), "", "health is silent when healthy");

    let s = status_json(&sock);
    let mut top: Vec<_> = s.as_object().unwrap().keys().cloned().collect();
    top.sort();
    assert_eq!(top, ["oom_kills", "processes", "stopping"], "{s}");
    assert_eq!(s["stopping"], false);
    assert_eq!(s["oom_kills"], 0);
    for p in s["processes"].as_array().unwrap() {
        let mut keys: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "last_exit",
                "name",
                "pid",
                "ready",
                "restarts",
                "state",
                "uptime_s"
            ],
            "{p}"
        );
        assert!(p["pid"].as_i64().unwrap() > 1, "{p}");
        assert_eq!(p["ready"], true, "{p}");
        assert_eq!(p["restarts"], 0);
        assert!(p["last_exit"].is_null());
        assert!(p["uptime_s"].is_u64());
    }
    assert_eq!(proc_of(&s, "web")["state"], "ready");
    assert_eq!(proc_of(&s, "db")["state"], "ready");
    assert_eq!(proc_of(&s, "worker")["state"], "running");

    let table = client(&sock, &["status"]);
    assert_code(&table, 0);
    let text = table.stdout_str();
    assert!(text.starts_with("NAME"), "{text}");
    for name in ["web", "db", "worker"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{text}");
    }
}

/// 2. The http probe is run again by `health`: a 500 makes it fail with the
///    URL and the status; back to 200, healthy again. A closed port (the
///    process lives on; `ctl signal USR1` makes it close) fails with the
///    address, which also proves `ctl signal` reaches the process.
#[test]
fn health_fails_when_an_http_probe_answers_500_or_a_port_is_closed() {
    let dir = TempDir::new("probes");
    let (toml, web_port, db_port, web_status) = three_services(&dir);
    let r = spawn_config(&dir, &toml, &[]);
    let sock = sock(&dir);
    health_until(&r, &sock, &[], 0);

    std::fs::write(&web_status, "500").unwrap();
    let bad = client(&sock, &["health"]);
    assert_code(&bad, 1);
    assert_eq!(
        bad.stdout_str(),
        format!("web: http://127.0.0.1:{web_port}/health answered 500\n")
    );
    std::fs::write(&web_status, "200").unwrap();
    health_until(&r, &sock, &[], 0);

    let sig = client(&sock, &["ctl", "signal", "USR1", "db"]);
    assert_code(&sig, 0);
    r.wait_stdout(T, |l| l.ends_with("db closed"));
    let closed = client(&sock, &["health"]);
    assert_code(&closed, 1);
    assert_eq!(
        closed.stdout_str(),
        format!("db: 127.0.0.1:{db_port} refused the connection\n")
    );
    // The process itself still runs: the state says so.
    assert_eq!(proc_of(&status_json(&sock), "db")["state"], "ready");
}

/// 3. A process in back-off: `health` names it with its last exit and the
///    restart count; `status --json` says `backoff` with `last_exit`.
#[test]
fn health_fails_with_the_backoff_line_and_status_shows_it() {
    let dir = TempDir::new("backoff");
    let toml = format!(
        "[process.app]\ncommand = {}\n\n[process.worker]\ncommand = {}\n\
         restart = \"always\"\nmax_restarts = 5\nbackoff = \"30s\"\n",
        argv(&["sleep", "1000"]),
        argv(&["sh", "-c", "exit 1"]),
    );
    let r = spawn_config(&dir, &toml, &[]);
    let sock = sock(&dir);
    let s = wait_proc(&r, &sock, "worker", |p| p["state"] == "backoff");
    let w = proc_of(&s, "worker");
    assert_eq!(w["last_exit"], 1, "{s}");
    assert_eq!(w["restarts"], 1, "{s}");
    assert!(w["pid"].is_null(), "{s}");
    assert_eq!(proc_of(&s, "app")["state"], "running");
    let out = client(&sock, &["health"]);
    assert_code(&out, 1);
    assert_eq!(
        out.stdout_str(),
        "worker: backoff after exit 1, restart 1 of 5\n"
    );
}

/// 4. During `--stop-delay` (and so during a stop), health prints
///    `stopping` and exits 1, while the app still runs.
#[test]
fn health_reports_stopping_during_the_stop_delay() {
    let dir = TempDir::new("delay");
    let toml = format!("[process.app]\ncommand = {}\n", argv(&["sleep", "1000"]));
    let r = spawn_config(&dir, &toml, &["--stop-delay", "5s"]);
    let sock = sock(&dir);
    health_until(&r, &sock, &[], 0);
    r.signal(libc::SIGTERM);
    let out = health_until(&r, &sock, &[], 1);
    assert_eq!(out.stdout_str(), "stopping\n");
    let s = status_json(&sock);
    assert_eq!(s["stopping"], true);
    assert_eq!(
        proc_of(&s, "app")["state"],
        "running",
        "still running in the delay"
    );
}

/// A thread serving `answer` to every connection (None: never answers).
fn canned_server(answer: Option<&'static [u8]>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
            match answer {
                Some(a) => {
                    let _ = c.write_all(a);
                }
                None => held.push(c),
            }
        }
    });
    port
}

/// 5. Probes on the command line need no pyinit: status ranges and lists,
///    body regex, tcp, timeout; no probe and no pyinit is exit 1 with one
///    line; usage errors are 1, never 2.
#[test]
fn standalone_probes_need_no_pyinit() {
    let dir = TempDir::new("standalone");
    let none = dir.join("absent.sock");
    let ok = canned_server(Some(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy"));
    let err = canned_server(Some(b"HTTP/1.1 503 Busy\r\n\r\n"));
    let mute = canned_server(None);
    let url = |p: u16| format!("http://127.0.0.1:{p}/health");

    assert_code(&client(&none, &["health", "--http", &url(ok)]), 0);
    assert_code(
        &client(
            &none,
            &["health", "--http", &format!("http://localhost:{ok}/")],
        ),
        0,
    );
    let out = client(&none, &["health", "--http", &url(err)]);
    assert_code(&out, 1);
    assert_eq!(out.stdout_str(), format!("{} answered 503\n", url(err)));
    assert_code(
        &client(
            &none,
            &["health", "--http", &url(err), "--status", "200,500-503"],
        ),
        0,
    );
    assert_code(
        &client(
            &none,
            &["health", "--http", &url(ok), "--body", "^heal+thy$"],
        ),
        0,
    );
    let out = client(&none, &["health", "--http", &url(ok), "--body", "sick"]);
    assert_code(&out, 1);
    assert!(
        out.stdout_str().contains("does not match"),
        "{}",
        out.stdout_str()
    );

    let started = Instant::now();
    let out = client(
        &none,
        &["health", "--http", &url(mute), "--timeout", "300ms"],
    );
    assert_code(&out, 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.stdout_str().contains("did not answer within 300ms"),
        "{}",
        out.stdout_str()
    );

    assert_code(
        &client(&none, &["health", "--tcp", &format!("127.0.0.1:{ok}")]),
        0,
    );
    let closed = free_port();
    let out = client(&none, &["health", "--tcp", &format!("127.0.0.1:{closed}")]);
    assert_code(&out, 1);
    assert_eq!(
        out.stdout_str(),
        format!("127.0.0.1:{closed} refused the connection\n")
    );

    let out = client(&none, &["health"]);
    assert_code(&out, 1);
    assert_eq!(
        out.stdout_str(),
        format!("no pyinit answers at {}\n", none.display())
    );
    let out = client(&none, &["status"]);
    assert_code(&out, 1);
    assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.stderr_str());

    for bad in [
        &["health", "--bogus"][..],
        &["health", "--http", "http://example.com/"],
        &["health", "--status", "abc", "--http", "http://127.0.0.1:1/"],
        &["health", "--timeout", "soon", "--tcp", "1"],
        &["ctl", "dance", "web"],
        &["ctl", "signal", "SIGNOPE", "web"],
    ] {
        let out = client(&none, bad);
        assert_code(&out, 1);
        assert!(
            out.stderr_str().starts_with("pyinit: error: "),
            "{bad:?}: {}",
            out.stderr_str()
        );
    }
}

/// 6. `ctl restart` gives the process a new pid and leaves the other
///    alone; `ctl stop` keeps it down (no restart, nothing else stops)
///    and `ctl start` brings it back; unknown names are one line, exit 1.
#[test]
fn ctl_restart_stop_and_start_act_on_one_process() {
    let dir = TempDir::new("ctl");
    let toml = format!(
        "[process.web]\ncommand = {}\n\n[process.worker]\ncommand = {}\nrestart = \"always\"\n",
        argv(&["sleep", "1000"]),
        argv(&["sleep", "1001"]),
    );
    let r = spawn_config(&dir, &toml, &[]);
    let sock = sock(&dir);
    health_until(&r, &sock, &[], 0);
    let before = status_json(&sock);
    let pid = |s: &serde_json::Value, n: &str| proc_of(s, n)["pid"].as_i64();
    let (web0, worker0) = (
        pid(&before, "web").unwrap(),
        pid(&before, "worker").unwrap(),
    );

    assert_code(&client(&sock, &["ctl", "restart", "worker"]), 0);
    let after = wait_proc(&r, &sock, "worker", |p| {
        p["state"] == "running" && p["pid"].as_i64().is_some_and(|n| n != worker0)
    });
    assert_eq!(pid(&after, "web"), Some(web0), "web kept its pid: {after}");

    assert_code(&client(&sock, &["ctl", "stop", "worker"]), 0);
    wait_proc(&r, &sock, "worker", |p| p["state"] == "stopped");
    // Stays down well past any back-off, and pyinit and web stay up.
    std::thread::sleep(Duration::from_millis(1500));
    let s = status_json(&sock);
    assert_eq!(proc_of(&s, "worker")["state"], "stopped", "{s}");
    assert!(proc_of(&s, "worker")["pid"].is_null());
    assert_eq!(pid(&s, "web"), Some(web0));
    let down = client(&sock, &["health"]);
    assert_code(&down, 1);
    assert_eq!(down.stdout_str(), "worker: stopped by pyinit ctl stop\n");

    assert_code(&client(&sock, &["ctl", "start", "worker"]), 0);
    wait_proc(&r, &sock, "worker", |p| p["state"] == "running");
    health_until(&r, &sock, &[], 0);

    let out = client(&sock, &["ctl", "restart", "nope"]);
    assert_code(&out, 1);
    let err = out.stderr_str();
    assert!(
        err.starts_with("pyinit ctl: no process named 'nope'"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = client(&sock, &["ctl", "start", "web"]);
    assert_code(&out, 1);
    assert_eq!(out.stderr_str(), "pyinit ctl: web is already running\n");

    r.signal(libc::SIGTERM);
    let done = r.wait(T);
    assert!(done.code == 0 || done.code == 143, "{}", done.stderr_str());
}

/// Starts `sleep` under pyinit (single-process mode) with socket `sock`.
fn spawn_single(sock: &Path, extra: &[&str], cmd: &[&str]) -> Running {
    Builder::new()
        .env("PYINIT_SOCKET", sock)
        .args(extra)
        .arg("--")
        .args(cmd)
        .spawn()
}

/// Waits until something accepts on `sock`.
#[track_caller]
fn wait_socket(r: &Running, sock: &Path) {
    assert!(
        eventually(T, || UnixStream::connect(sock).is_ok()),
        "no socket at {}; pyinit stderr:\n{}",
        sock.display(),
        r.stderr_now()
    );
}

/// 7. Directory 0700 and socket 0600, both pyinit's; a client of uid
///    65534 is refused by the file modes, and, with the modes opened up by
///    hand, by the SO_PEERCRED check (one error line, exit 1).
#[test]
fn socket_modes_and_another_uid_refused() {
    let dir = TempDir::new("perm");
    let sock = sock(&dir);
    let r = spawn_single(&sock, &[], &["sleep", "1000"]);
    wait_socket(&r, &sock);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(mode(sock.parent().unwrap()), 0o700);

    // A copy of the binary that uid 65534 may run.
    let bin = dir.join("pyinit");
    std::fs::copy(pyinit_bin(), &bin).unwrap();
    std::fs::set_permissions(dir.0.as_path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(args)
            .env_clear()
            .envs(clean_env())
            .env("PYINIT_SOCKET", &sock);
        run_bounded(cmd, T)
    };
    let out = as_nobody(&["status"]);
    assert_code(&out, 1);
    assert!(
        out.stderr_str().contains("ermission denied"),
        "{}",
        out.stderr_str()
    );

    std::fs::set_permissions(
        sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&["ctl", "signal", "KILL", "sleep"]);
    assert_code(&out, 1);
    assert_eq!(
        out.stderr_str(),
        "pyinit ctl: refused: uid 65534 is neither pyinit's nor root\n"
    );
    let out = as_nobody(&["health"]);
    assert_code(&out, 1);
    assert!(
        out.stdout_str().contains("refused: uid 65534"),
        "{}",
        out.stdout_str()
    );
    // Root still gets its answer, and the process was never signalled.
    let s = status_json(&sock);
    assert_eq!(proc_of(&s, "sleep")["state"], "running", "{s}");
}

/// 8. Clients that connect and never send, and one that sends 1 MiB of
///    garbage, delay neither signal forwarding nor the grace deadline; each
///    gets one error line.
#[test]
fn hostile_clients_block_neither_signals_nor_the_deadline() {
    let dir = TempDir::new("hostile");
    let sock = sock(&dir);
    let r = spawn_single(
        &sock,
        &["--grace", "1s"],
        &["python3", &fx("stop_ignore_term.py"), "15", "10"],
    );
    r.wait_stdout(T, |l| l == "READY");
    wait_socket(&r, &sock);

    let silent: Vec<UnixStream> = (0..8)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let garbage_sock = sock.clone();
    let garbage = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&garbage_sock).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..16 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    });

    // USR1 goes through at once, despite the clients.
    let sent = Instant::now();
    r.signal(libc::SIGUSR1);
    r.wait_stdout(T, |l| l == "ignoring 10");
    let latency = sent.elapsed();
    assert!(
        latency < Duration::from_millis(1000),
        "USR1 took {latency:?}"
    );
    let answer = garbage.join().unwrap();
    assert!(answer.contains("longer than 4 KiB"), "{answer:?}");

    // The silent clients get their error line after the read bound.
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        let _ = s.read_to_string(&mut line);
        assert!(line.contains("no request within 2s"), "{line:?}");
    }
    // And a fresh set of silent clients is connected during the stop.
    let _held: Vec<UnixStream> = (0..8)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let stop = Instant::now();
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    let took = stop.elapsed();
    assert_eq!(out.code, 137, "{}", out.stderr_str());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1600),
        "grace 1s enforced in {took:?}\n{}",
        out.stderr_str()
    );
}

/// 9. A socket file left by an earlier run is replaced without a word; a
///    second pyinit with the same socket runs its app without one, says so
///    once, and the first keeps answering.
#[test]
fn stale_socket_replaced_and_a_live_one_left_alone() {
    let dir = TempDir::new("stale");
    let sock = sock(&dir);
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());

    let first = spawn_single(&sock, &[], &["sleep", "1000"]);
    wait_socket(&first, &sock);
    let s = status_json(&sock);
    assert_eq!(proc_of(&s, "sleep")["state"], "running");
    let first_pid = proc_of(&s, "sleep")["pid"].as_i64();
    assert!(
        !first.stderr_now().contains("control socket"),
        "{}",
        first.stderr_now()
    );

    let second = spawn_single(
        &sock,
        &[],
        &["sh", "-c", "echo second runs; exec sleep 1000"],
    );
    second.wait_stdout(T, |l| l == "second runs");
    let warning = second.wait_stderr(T, |l| l.contains("another pyinit answers"));
    assert!(warning.contains(&sock.display().to_string()), "{warning}");
    assert!(
        warning.contains("running without a control socket"),
        "{warning}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        second.stderr_now().matches("control socket").count(),
        1,
        "{}",
        second.stderr_now()
    );
    // The first pyinit still answers, about its own process.
    let s = status_json(&sock);
    assert_eq!(proc_of(&s, "sleep")["pid"].as_i64(), first_pid, "{s}");
    assert_eq!(s["processes"].as_array().unwrap().len(), 1, "{s}");
    second.signal(libc::SIGTERM);
    second.wait(T);
    // After the second one ended, the first one's socket is still served.
    assert_code(&client(&sock, &["status"]), 0);
}

/// 10. A socket that cannot be created (its directory is a file) is one
///     warning; the app runs normally.
#[test]
fn unusable_socket_path_is_one_warning_and_the_app_runs() {
    let dir = TempDir::new("broken");
    dir.write("file", "x");
    let sock = dir.join("file/control.sock");
    let r = spawn_single(&sock, &[], &["sh", "-c", "echo app ran; exit 3"]);
    let out = r.wait(T);
    assert_code(&out, 3);
    assert!(out.stdout_str().contains("app ran"));
    let err = out.stderr_str();
    assert_eq!(err.matches("without a control socket").count(), 1, "{err}");
}

/// 11. pyinit removes its own socket file when it exits.
#[test]
fn socket_file_removed_at_exit() {
    let dir = TempDir::new("exit");
    let sock = sock(&dir);
    let r = spawn_single(&sock, &[], &["sleep", "1000"]);
    wait_socket(&r, &sock);
    r.signal(libc::SIGTERM);
    assert_code(&r.wait(T), 143);
    assert!(!sock.exists(), "{} left behind", sock.display());
}

/// 12. A one-shot: while it runs, health names it (and its dependant
///     waiting); once it completed, `status --json` says `completed` with
///     exit 0 and no pid, and health passes.
#[test]
fn oneshot_states_in_status_and_health() {
    let dir = TempDir::new("oneshot");
    let go = dir.join("go");
    let toml = format!(
        "[process.migrate]\ncommand = {}\noneshot = true\n\n\
         [process.web]\ncommand = {}\ndepends_on = [\"migrate\"]\n",
        argv(&[
            "sh",
            "-c",
            &format!("while [ ! -e {} ]; do sleep 0.02; done", go.display())
        ]),
        argv(&["sleep", "1000"]),
    );
    let r = spawn_config(&dir, &toml, &[]);
    let sock = sock(&dir);
    let s = wait_proc(&r, &sock, "migrate", |p| p["pid"].is_i64());
    assert_eq!(proc_of(&s, "web")["state"], "waiting", "{s}");
    let out = client(&sock, &["health"]);
    assert_code(&out, 1);
    assert_eq!(
        out.stdout_str(),
        "migrate: one-shot still running\nweb: waiting for its dependencies\n"
    );

    std::fs::write(&go, "").unwrap();
    health_until(&r, &sock, &[], 0);
    let s = status_json(&sock);
    let m = proc_of(&s, "migrate");
    assert_eq!(m["state"], "completed", "{s}");
    assert_eq!(m["last_exit"], 0, "{s}");
    assert!(m["pid"].is_null(), "{s}");
    assert_eq!(proc_of(&s, "web")["state"], "running", "{s}");
}
