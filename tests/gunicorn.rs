//! gunicorn under pyinit (SPEC point 2): HUP reloads, TTIN/TTOU scale, TERM
//! stops master and workers quickly. Runs the real gunicorn from the test
//! venv (`target/test-venv`); never skipped.
mod util;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use util::*;

/// One HTTP GET; the worker's pid (in the namespace) from the body.
fn http_pid(port: u16) -> Option<i32> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(SECS(3))).ok()?;
    s.set_write_timeout(Some(SECS(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    if !resp.starts_with("HTTP/1.1 200") && !resp.starts_with("HTTP/1.0 200") {
        return None;
    }
    resp.rsplit_once("pid=")?.1.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some('S' | 'R' | 'D'))
}

/// A per-test HOME directory, removed when dropped.
struct TempHome(PathBuf);

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Gunicorn {
    r: Running,
    port: u16,
    master: i32,
    _home: TempHome,
}

impl Gunicorn {
    /// `pyinit -- gunicorn -w 3 ...`, ready: HTTP answers and 3 workers live.
    fn start() -> Gunicorn {
        let gunicorn = venv_bin("gunicorn");
        let port = free_port();
        // gunicorn (23+) puts a control socket under $HOME: one HOME per test,
        // so that tests running in parallel do not share it.
        let home =
            std::env::temp_dir().join(format!("pyinit-gunicorn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let r = Builder::new()
            .env("HOME", &home)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("--")
            .arg(gunicorn)
            .args(["-w", "3", "-b", &format!("127.0.0.1:{port}"), "--chdir"])
            .arg(fixture(""))
            .arg("gunicorn_app:app")
            .spawn();
        let pyinit = r.pyinit_pid();
        let mut master = 0;
        assert!(
            eventually(SECS(20), || {
                master = children_of(pyinit).first().copied().unwrap_or(0);
                master != 0 && children_of(master).len() == 3 && http_pid(port).is_some()
            }),
            "gunicorn did not become ready; stderr:\n{}",
            r.stderr_now()
        );
        assert_eq!(children_of(pyinit), [master], "pyinit has one child");
        Gunicorn {
            r,
            port,
            master,
            _home: TempHome(home),
        }
    }

    fn workers(&self) -> BTreeSet<i32> {
        children_of(self.master).into_iter().collect()
    }

    /// Waits until the workers satisfy `pred` and are all alive.
    fn wait_workers(&self, what: &str, pred: impl Fn(&BTreeSet<i32>) -> bool) -> BTreeSet<i32> {
        let mut w = BTreeSet::new();
        assert!(
            eventually(SECS(15), || {
                w = self.workers();
                pred(&w) && w.iter().all(|&p| alive(p))
            }),
            "{what}: workers now {w:?}; stderr:\n{}",
            self.r.stderr_now()
        );
        w
    }

    /// The HTTP answer comes from one of `workers`.
    fn assert_answers_from(&self, workers: &BTreeSet<i32>) {
        let ns: BTreeSet<i32> = workers.iter().filter_map(|&p| ns_pid(p)).collect();
        let mut got = None;
        assert!(
            eventually(SECS(5), || {
                got = http_pid(self.port);
                got.is_some_and(|p| ns.contains(&p))
            }),
            "HTTP answered from {got:?}, workers are {ns:?}"
        );
    }

    /// TERM to pyinit; everything gone quickly with status 0.
    fn stop(self) -> Outcome {
        let mut seen = vec![self.r.pyinit_pid(), self.master];
        seen.extend(self.workers());
        let t0 = Instant::now();
        self.r.signal(libc::SIGTERM);
        let out = self.r.wait(SECS(10));
        let took = t0.elapsed();
        assert_eq!(out.code, 0, "stderr:\n{}", out.stderr_str());
        assert!(took < SECS(3), "stopping took {took:?}");
        for p in seen {
            assert!(proc_state(p).is_none(), "pid {p} still in /proc");
        }
        eprintln!("stopped in {took:?}");
        out
    }
}

#[test]
fn hup_reloads_workers_and_keeps_the_master() {
    let g = Gunicorn::start();
    let pyinit = g.r.pyinit_pid();
    let old = g.workers();
    assert_eq!(old.len(), 3);
    g.r.signal(libc::SIGHUP);
    let new = g.wait_workers("after HUP", |w| w.len() == 3 && w.is_disjoint(&old));
    assert_eq!(children_of(pyinit), [g.master], "master replaced or lost");
    assert!(alive(g.master));
    for p in &old {
        assert!(proc_state(*p).is_none(), "old worker {p} still in /proc");
    }
    g.assert_answers_from(&new);
    let out = g.stop();
    assert!(
        out.stderr_str().contains("Handling signal: hup"),
        "gunicorn did not see HUP:\n{}",
        out.stderr_str()
    );
}

#[test]
fn ttin_adds_a_worker_and_ttou_removes_one() {
    let g = Gunicorn::start();
    let three = g.workers();
    g.r.signal(libc::SIGTTIN);
    let four = g.wait_workers("after TTIN", |w| w.len() == 4);
    assert!(
        three.is_subset(&four),
        "TTIN replaced workers: {three:?} -> {four:?}"
    );
    assert!(alive(g.master));
    g.assert_answers_from(&four);
    g.r.signal(libc::SIGTTOU);
    let back = g.wait_workers("after TTOU", |w| w.len() == 3);
    assert!(back.is_subset(&four));
    for p in four.difference(&back) {
        assert!(
            eventually(SECS(5), || proc_state(*p).is_none()),
            "retired worker {p} still in /proc"
        );
    }
    g.assert_answers_from(&back);
    g.stop();
}

#[test]
fn term_stops_master_and_workers_quickly_with_status_0() {
    let g = Gunicorn::start();
    assert_eq!(g.workers().len(), 3);
    let out = g.stop();
    let err = out.stderr_str();
    assert!(err.contains("Handling signal: term"), "{err}");
    assert!(err.contains("Shutting down: Master"), "{err}");
}
