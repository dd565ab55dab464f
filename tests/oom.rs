//! OOM kills (SPEC "Out-of-memory kills"): real kills by the kernel's OOM
//! killer in a child memory cgroup with a small limit (cgroup v1 or v2,
//! whichever this machine has), pyinit as PID 1 moved into it.
//!
//! Skips, with one line saying why, only where no memory cgroup can be
//! created (not root, no memory controller, a read-only cgroup mount).
mod util;

use std::ffi::CString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyinit::oom::cgroup::{self, Version};
use util::*;

const LIMIT: u64 = 64 << 20;
const OOM_LINE: &str = "was killed by the kernel's OOM killer";

/// A memory cgroup made for one test; removed (emptied first) when dropped.
struct TestCgroup {
    dir: PathBuf,
    version: Version,
}

impl TestCgroup {
    /// A child of this process's memory cgroup (v1), or of the v2 tree
    /// where the memory controller can be enabled for it; `Err` is the
    /// reason to skip.
    fn create(limit: u64) -> Result<TestCgroup, String> {
        if !is_root() {
            return Err("not root: cannot create a memory cgroup".into());
        }
        let own = cgroup::find().map_err(|e| format!("no memory cgroup here ({e})"))?;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "pyinit-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let parents: Vec<PathBuf> = match own.version {
            Version::V1 => vec![own.dir.clone()],
            // v2: a parent must delegate memory to its children, and only
            // a cgroup without processes (or the root) may.
            Version::V2 => own.dir.ancestors().map(Path::to_path_buf).collect(),
        };
        let mut why = String::from("no parent cgroup");
        for parent in parents {
            if own.version == Version::V2 {
                let ctl = parent.join("cgroup.subtree_control");
                if !ctl.exists() {
                    break;
                }
                let has = std::fs::read_to_string(&ctl).unwrap_or_default();
                if !has.split_whitespace().any(|c| c == "memory") {
                    if let Err(e) = std::fs::write(&ctl, "+memory") {
                        why = format!("cannot enable memory in {}: {e}", ctl.display());
                        continue;
                    }
                }
            }
            let dir = parent.join(&name);
            if let Err(e) = std::fs::create_dir(&dir) {
                why = format!("cannot create {}: {e}", dir.display());
                continue;
            }
            let cg = TestCgroup {
                dir,
                version: own.version,
            };
            let set = |file: &str, v: &str| std::fs::write(cg.dir.join(file), v);
            let limit = limit.to_string();
            let r = match own.version {
                Version::V1 => set("memory.limit_in_bytes", &limit).and_then(|()| {
                    // No swap for it either (memsw exists with swap accounting).
                    match cg.dir.join("memory.memsw.limit_in_bytes").exists() {
                        true => set("memory.memsw.limit_in_bytes", &limit),
                        false => Ok(()),
                    }
                }),
                Version::V2 => set("memory.max", &limit).and_then(|()| {
                    match cg.dir.join("memory.swap.max").exists() {
                        true => set("memory.swap.max", "0"),
                        false => Ok(()),
                    }
                }),
            };
            return match r {
                Ok(()) => Ok(cg),
                Err(e) => Err(format!("cannot set a limit in {}: {e}", cg.dir.display())),
            };
        }
        Err(why)
    }

    fn oom_kills(&self) -> u64 {
        let (file, v) = match self.version {
            Version::V1 => ("memory.oom_control", Version::V1),
            Version::V2 => ("memory.events", Version::V2),
        };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        cgroup::parse_counters(v, &text).map_or(0, |c| c.oom_kill)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + SECS(5);
        while Instant::now() < deadline {
            let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill with plain integers; only pids in the test's cgroup.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The cgroup for a test, or `None` after printing why the test skips.
fn cgroup_or_skip(test: &str, limit: u64) -> Option<TestCgroup> {
    match TestCgroup::create(limit) {
        Ok(cg) => Some(cg),
        Err(why) => {
            // Straight to fd 2: the test harness captures println!, and
            // the skip must show in CI's log.
            let line = format!("SKIP {test}: {why}\n");
            // SAFETY: a valid buffer; a closed fd 2 only fails.
            unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
            None
        }
    }
}

/// pyinit (as PID 1 under unshare) started inside `cg`, with its stderr
/// collected as it comes.
struct InCgroup {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl InCgroup {
    fn start(cg: &TestCgroup, b: Builder) -> InCgroup {
        Self::start_with(cg, b, false)
    }

    /// With `read_only`, pyinit sees the cgroup file system mounted
    /// read-only (as in `docker run` on cgroup v1): no notification.
    fn start_with(cg: &TestCgroup, b: Builder, read_only: bool) -> InCgroup {
        let mut cmd = b.command();
        let procs = CString::new(cg.dir.join("cgroup.procs").to_str().unwrap()).unwrap();
        let mount_point = CString::new(mount_point_of(&cg.dir).to_str().unwrap()).unwrap();
        let root = CString::new("/").unwrap();
        // SAFETY: open/write/close are async-signal-safe; "0" moves the
        // writing process (the one about to exec unshare and pyinit).
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                if read_only {
                    // A private mount namespace, the cgroup mount read-only in it.
                    if libc::unshare(libc::CLONE_NEWNS) != 0
                        || libc::mount(
                            std::ptr::null(),
                            root.as_ptr(),
                            std::ptr::null(),
                            libc::MS_REC | libc::MS_PRIVATE,
                            std::ptr::null(),
                        ) != 0
                        || libc::mount(
                            std::ptr::null(),
                            mount_point.as_ptr(),
                            std::ptr::null(),
                            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                            std::ptr::null(),
                        ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start pyinit in the cgroup");
        let stderr = collect(child.stderr.take().unwrap());
        let stdout = collect(child.stdout.take().unwrap());
        InCgroup {
            child,
            stderr,
            stdout,
        }
    }

    /// pyinit's host pid (the child of unshare).
    fn pyinit_pid(&self) -> i32 {
        let unshare = self.child.id() as i32;
        let mut pid = 0;
        assert!(eventually(SECS(10), || {
            pid = children_of(unshare).first().copied().unwrap_or(0);
            pid != 0
        }));
        pid
    }

    fn stderr_now(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a stderr line containing `what`.
    fn wait_line(&self, what: &str, timeout: Duration) -> String {
        let mut found = String::new();
        let ok = eventually(timeout, || {
            let text = self.stderr_now();
            match text.lines().find(|l| l.contains(what)) {
                Some(l) => {
                    found = l.to_string();
                    true
                }
                None => false,
            }
        });
        assert!(
            ok,
            "no stderr line with {what:?} within {timeout:?}; stderr:\n{}",
            self.stderr_now()
        );
        found
    }

    /// Waits for pyinit to exit; its exit code and both streams.
    fn wait(mut self, timeout: Duration) -> (i32, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "pyinit did not exit within {timeout:?}; stderr:\n{}",
                self.stderr_now()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        // The readers see EOF right after the exit.
        let _ = eventually(SECS(2), || {
            Arc::strong_count(&self.stderr) == 1 && Arc::strong_count(&self.stdout) == 1
        });
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        (code, self.stdout.lock().unwrap().clone(), self.stderr_now())
    }
}

impl Drop for InCgroup {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let root = self.child.id() as i32;
            for pid in descendants_of(root).into_iter().chain([root]) {
                // SAFETY: kill with plain integers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.child.wait();
        }
    }
}

/// The mount point that holds `path` (from /proc/self/mountinfo).
fn mount_point_of(path: &Path) -> PathBuf {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let points: Vec<PathBuf> = mi
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect();
    path.ancestors()
        .find(|a| points.iter().any(|p| p == a))
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// A thread appending `r` to a shared string; its clone is dropped at EOF.
fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let mine = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            mine.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        drop(mine);
    });
    out
}

const HOG: &str = "import time; time.sleep(0.2); b = bytearray(200 << 20); print('survived')";

#[test]
fn python_killed_by_the_oom_killer_is_named_with_limit_and_peak() {
    let Some(cg) = cgroup_or_skip("python_killed_by_the_oom_killer", LIMIT) else {
        return;
    };
    let p = InCgroup::start(&cg, Builder::new().args(["--", "python3", "-c", HOG]));
    let (code, stdout, stderr) = p.wait(SECS(30));
    println!("pyinit's stderr:\n{stderr}");
    assert_eq!(
        cg.oom_kills(),
        1,
        "the kernel counted one OOM kill; stderr:\n{stderr}"
    );
    assert_eq!(code, 137, "stderr:\n{stderr}");
    assert!(!stdout.contains("survived"));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(OOM_LINE)).collect();
    assert_eq!(
        lines.len(),
        2,
        "one report and the final line; stderr:\n{stderr}"
    );
    let re = regex_lite::Regex::new(
        r"^pyinit: python3 (\d+) \(\S*python3 -c import time; .*\) was killed by the kernel's OOM killer \(memory limit 64 MiB, peak (\d+) MiB\)$",
    )
    .unwrap();
    let caps = re
        .captures(lines[0])
        .unwrap_or_else(|| panic!("report line: {}", lines[0]));
    let peak: u64 = caps[2].parse().unwrap();
    assert!((32..=64).contains(&peak), "peak {peak} MiB");
    assert_eq!(
        stderr.lines().last().unwrap(),
        "pyinit: warning: the main process (python3) was killed by the kernel's OOM killer; exiting with status 137"
    );
}

#[test]
fn oom_kill_json_record() {
    let Some(cg) = cgroup_or_skip("oom_kill_json_record", LIMIT) else {
        return;
    };
    let p = InCgroup::start(
        &cg,
        Builder::new().args(["--log-format", "json", "--", "python3", "-c", HOG]),
    );
    let (code, _, stderr) = p.wait(SECS(30));
    println!("pyinit's stderr:\n{stderr}");
    assert_eq!(code, 137, "stderr:\n{stderr}");
    let records: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let oom: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["event"] == "oom_kill")
        .collect();
    assert_eq!(oom.len(), 1, "one oom_kill record; stderr:\n{stderr}");
    let r = oom[0];
    assert_eq!(r["name"], "pyinit");
    assert_eq!(r["process"], "python3");
    assert!(r["process_pid"].as_i64().is_some_and(|p| p > 1), "{r}");
    assert!(
        r["cmd"]
            .as_str()
            .unwrap()
            .contains("python3 -c import time"),
        "{r}"
    );
    assert_eq!(r["limit_bytes"], LIMIT);
    let peak = r["peak_bytes"].as_u64().unwrap();
    assert!(peak > LIMIT / 2 && peak <= LIMIT, "{r}");
    assert!(r["line"].as_str().unwrap().contains(OOM_LINE), "{r}");
    let last = records.last().unwrap();
    assert!(
        last["line"]
            .as_str()
            .unwrap()
            .ends_with("exiting with status 137"),
        "{last}"
    );
}

/// No OOM kill, no line: the same cgroup with a small allocation.
#[test]
fn no_report_without_an_oom_kill() {
    let Some(cg) = cgroup_or_skip("no_report_without_an_oom_kill", LIMIT) else {
        return;
    };
    let p = InCgroup::start(
        &cg,
        Builder::new().args([
            "--",
            "python3",
            "-c",
            "b = bytearray(16 << 20); import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        ]),
    );
    let (code, _, stderr) = p.wait(SECS(30));
    assert_eq!(code, 137);
    assert_eq!(cg.oom_kills(), 0);
    assert!(
        !stderr.contains(OOM_LINE),
        "a SIGKILL is not an OOM kill:\n{stderr}"
    );
}

/// A read-only cgroup mount (docker on cgroup v1): pyinit reads the counter
/// once a second; its child is named from its SIGKILL, a grandchild from the
/// view taken at a poll that found usage above half the limit.
#[test]
fn read_only_cgroup_mount_falls_back_to_polling_and_still_names() {
    let Some(cg) = cgroup_or_skip("read_only_cgroup_mount", LIMIT) else {
        return;
    };
    let p = InCgroup::start_with(
        &cg,
        Builder::new().args(["-v", "--", "python3", "-c", HOG]),
        true,
    );
    let (code, _, stderr) = p.wait(SECS(30));
    println!("pyinit's stderr:\n{stderr}");
    assert_eq!(code, 137, "stderr:\n{stderr}");
    assert!(
        stderr.contains("OOM kills watched by a read once a second"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches(OOM_LINE).count(),
        2,
        "report and final line:\n{stderr}"
    );

    let grandchild = "python3 -c 'import time; b = bytearray(40 << 20); time.sleep(1.5); c = bytearray(200 << 20)'; sleep 0.2";
    let p = InCgroup::start_with(
        &cg,
        Builder::new().args(["--", "sh", "-c", grandchild]),
        true,
    );
    let (code, _, stderr) = p.wait(SECS(30));
    println!("pyinit's stderr:\n{stderr}");
    assert_eq!(code, 0, "sh's own status; stderr:\n{stderr}");
    let re = regex_lite::Regex::new(
        r"(?m)^pyinit: \d+ \(\S*python3 -c import time; b = bytearray.*\) was killed by the kernel's OOM killer \(memory limit 64 MiB, peak \d+ MiB\)$",
    )
    .unwrap();
    assert!(re.is_match(&stderr), "the grandchild is named:\n{stderr}");
}

#[test]
fn gunicorn_worker_killed_by_the_oom_killer_is_named_while_the_master_lives() {
    let Some(cg) = cgroup_or_skip("gunicorn_worker_oom", 160 << 20) else {
        return;
    };
    let gunicorn = venv_bin("gunicorn");
    let port = free_port();
    let home =
        std::env::temp_dir().join(format!("pyinit-oom-gunicorn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let p = InCgroup::start(
        &cg,
        Builder::new()
            .env("HOME", &home)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("--")
            .arg(gunicorn)
            .args(["-w", "2", "-b", &format!("127.0.0.1:{port}"), "--chdir"])
            .arg(fixture(""))
            .arg("oom_app:app"),
    );
    let answers = |r: &Option<String>| r.as_ref().is_some_and(|r| r.contains("pid="));
    let pyinit = p.pyinit_pid();
    let mut master = 0;
    assert!(
        eventually(SECS(20), || {
            master = children_of(pyinit).first().copied().unwrap_or(0);
            master != 0
                && children_of(master).len() == 2
                && answers(&http_get_raw(port, "/", SECS(10)))
        }),
        "gunicorn did not answer with 2 workers; stderr:\n{}",
        p.stderr_now()
    );
    let workers: Vec<i32> = children_of(master);
    let ns_workers: Vec<i32> = workers.iter().filter_map(|&w| ns_pid(w)).collect();
    assert_eq!(ns_workers.len(), 2, "stderr:\n{}", p.stderr_now());

    let t0 = Instant::now();
    let _ = http_get_raw(port, "/alloc", SECS(10));
    let answered = t0.elapsed();
    let line = p.wait_line(OOM_LINE, SECS(20));
    println!(
        "pyinit's report {:?} after the request (connection closed after {answered:?}): {line}",
        t0.elapsed()
    );
    let re = regex_lite::Regex::new(r"^pyinit: (\d+) \((.*)\) was killed by the kernel's OOM killer \(memory limit 160 MiB, peak (\d+) MiB\)$").unwrap();
    let caps = re
        .captures(&line)
        .unwrap_or_else(|| panic!("report line: {line}\nstderr:\n{}", p.stderr_now()));
    let named: i32 = caps[1].parse().unwrap();
    assert!(
        ns_workers.contains(&named),
        "named {named}, workers {ns_workers:?}"
    );
    assert!(caps[2].contains("gunicorn"), "command: {}", &caps[2]);
    // gunicorn's own word agrees on the pid.
    p.wait_line(&format!("Worker (pid:{named}) was sent SIGKILL"), SECS(10));
    assert_eq!(cg.oom_kills(), 1);
    // The master lives on and replaces the worker.
    assert!(proc_state(master).is_some_and(|s| s != 'Z'), "master gone");
    assert!(
        eventually(SECS(20), || children_of(master).len() == 2
            && answers(&http_get_raw(port, "/", SECS(10)))),
        "no replacement worker; stderr:\n{}",
        p.stderr_now()
    );
    // SAFETY: kill with plain integers.
    unsafe { libc::kill(pyinit, libc::SIGTERM) };
    let (code, _, stderr) = p.wait(SECS(15));
    println!("pyinit's stderr:\n{stderr}");
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert_eq!(stderr.matches(OOM_LINE).count(), 1, "stderr:\n{stderr}");
    let _ = std::fs::remove_dir_all(home);
}

/// `pyinit check` reports an OOM kill during the run: an app whose cleanup
/// on TERM allocates far past the limit dies of the OOM killer, and the
/// report counts it (from the inner pyinit's `oom_kill` record) and fails.
#[test]
fn check_reports_an_oom_kill_during_the_stop() {
    let Some(cg) = cgroup_or_skip("check_reports_an_oom_kill", LIMIT) else {
        return;
    };
    let app = "import signal, sys, time\n\
               def stop(*a):\n    b = bytearray(200 << 20)\n    sys.exit(0)\n\
               signal.signal(signal.SIGTERM, stop)\n\
               print('ready', flush=True)\n\
               while True: time.sleep(1)\n";
    // check makes its own PID namespace: no unshare around it.
    let b = Builder::new().pid1(false).args([
        "check",
        "--json",
        "--grace",
        "5s",
        "--ready-line",
        "^ready$",
        "--",
        "python3",
        "-c",
        app,
    ]);
    let p = InCgroup::start(&cg, b);
    let (code, stdout, stderr) = p.wait(SECS(60));
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("check --json printed no JSON ({e}):\n{stdout}\n{stderr}"));
    assert!(cg.oom_kills() >= 1, "no OOM kill happened: {v:#}");
    let kills = v["oom_kills"].as_array().map_or(0, Vec::len);
    assert_eq!(kills, 1, "report: {v:#}");
    assert_eq!(v["verdict"], "FAIL", "report: {v:#}");
    assert_eq!(code, 1, "report: {v:#}");
    let text = v.to_string();
    assert!(text.contains("OOM"), "the report names the OOM kill: {v:#}");
}
