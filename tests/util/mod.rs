//! Test harness: runs the real pyinit binary, by default as PID 1 of a fresh
//! PID namespace (`unshare --pid --fork --mount-proc`, with a user namespace
//! when not root), signals it from outside as a container runtime does, and
//! collects its output. Every wait is bounded; dropping a `Running` kills
//! whatever is left.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub fn pyinit_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pyinit"))
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A program installed in the test venv (`target/test-venv`, made by
/// `scripts/test.sh`). Fails loudly when missing: CI must never skip it.
pub fn venv_bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-venv/bin")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh (it creates target/test-venv with gunicorn)",
        p.display()
    );
    p
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The environment children get in tests: minimal and explicit, so the
/// machine's PYTHONUNBUFFERED or PYINIT_* never leak into a test. Each call
/// holds a socket path of its own ([`unique_socket`]).
pub fn clean_env() -> Vec<(OsString, OsString)> {
    let mut env = vec![("PYINIT_SOCKET".into(), unique_socket().into())];
    for key in ["PATH", "HOME", "LANG", "LC_ALL", "TERM"] {
        if let Some(v) = std::env::var_os(key) {
            env.push((key.into(), v));
        }
    }
    env
}

/// A control socket path of its own for each pyinit a test starts: tests
/// run in parallel, and on the shared default path every pyinit but the
/// first would run without a socket and say so on stderr. Directly in the
/// temp directory, so that a pyinit running as another uid can create it
/// too; pyinit removes it when it exits.
pub fn unique_socket() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "pyinit-test-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ))
}

/// Shared, growing output of one stream.
#[derive(Default)]
struct Captured {
    data: Mutex<(Vec<u8>, bool)>,
    grew: Condvar,
}

impl Captured {
    /// Everything once the stream is closed (waiting at most 5 s for that).
    fn read_to_end(&self) -> Vec<u8> {
        let end = Instant::now() + Duration::from_secs(5);
        let mut g = self.data.lock().unwrap();
        while !g.1 && Instant::now() < end {
            g = self
                .grew
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        g.0.clone()
    }
}

/// Exit code, or 128+N for a death by signal N (as a shell reports it).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

pub struct Builder {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    pid1: bool,
    stdout_null: bool,
    /// Another init to run instead of pyinit (e.g. tini, for comparisons).
    init: Option<PathBuf>,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            args: Vec::new(),
            env: clean_env(),
            pid1: true,
            stdout_null: false,
            init: None,
        }
    }

    /// Runs `program` (another init, such as tini) instead of pyinit, with
    /// the same arguments and harness: for measuring the same scenario.
    pub fn init_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.init = Some(program.into());
        self
    }

    fn init_bin(&self) -> PathBuf {
        self.init.clone().unwrap_or_else(pyinit_bin)
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env.retain(|(key, _)| key != k.as_ref());
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Run pyinit as PID 1 in a new PID namespace (default) or as a plain
    /// child of the test (then it registers as subreaper).
    pub fn pid1(mut self, yes: bool) -> Self {
        self.pid1 = yes;
        self
    }

    /// The command to run it with, for tests that need their own `Command`.
    pub fn command(&self) -> Command {
        let mut cmd = if self.pid1 {
            let mut c = Command::new("unshare");
            if !is_root() {
                c.args(["--user", "--map-root-user"]);
            }
            c.args(["--pid", "--fork", "--mount-proc", "--"]);
            c.arg(self.init_bin());
            c
        } else {
            Command::new(self.init_bin())
        };
        cmd.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        // SAFETY: setsid is async-signal-safe; it detaches from any terminal
        // the test runner has, so pyinit sees no controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        cmd
    }

    pub fn spawn(self) -> Running {
        let mut cmd = self.command();
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        if self.stdout_null {
            cmd.stdout(Stdio::null());
        } else {
            cmd.stdout(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("cannot start pyinit");
        let stdout = Arc::new(Captured::default());
        let stderr = Arc::new(Captured::default());
        if let Some(out) = child.stdout.take() {
            collect(out, stdout.clone());
        } else {
            stdout.data.lock().unwrap().1 = true;
        }
        collect(child.stderr.take().unwrap(), stderr.clone());
        Running {
            child,
            pid1: self.pid1,
            init_name: self.init_bin().file_name().unwrap_or_default().to_owned(),
            stdout,
            stderr,
            started: Instant::now(),
            exit: None,
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

fn collect(mut r: impl Read + Send + 'static, into: Arc<Captured>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        loop {
            let n = r.read(&mut buf).unwrap_or(0);
            let mut g = into.data.lock().unwrap();
            if n == 0 {
                g.1 = true;
                into.grew.notify_all();
                return;
            }
            g.0.extend_from_slice(&buf[..n]);
            into.grew.notify_all();
        }
    });
}

/// How pyinit ended, with everything it wrote.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code, or 128+N if pyinit (or unshare) died of signal N.
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// From spawn to exit.
    pub elapsed: Duration,
}

/// Fails with both streams shown when pyinit's exit code is not `code`.
#[track_caller]
pub fn assert_code(out: &Outcome, code: i32) {
    assert_eq!(
        out.code,
        code,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
}

impl Outcome {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

pub struct Running {
    child: Child,
    pid1: bool,
    /// File name of the init's executable (`pyinit`, or `tini`, ...).
    init_name: OsString,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
    started: Instant,
    exit: Option<i32>,
}

impl Running {
    /// pyinit's pid as seen from the test (outside the namespace).
    pub fn pyinit_pid(&self) -> i32 {
        if !self.pid1 {
            return self.child.id() as i32;
        }
        let unshare = self.child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(&pid) = children_of(unshare).first() {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                if exe.file_name() == Some(self.init_name.as_os_str()) {
                    return pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "pyinit did not start under unshare"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig` to pyinit from outside, as `docker stop`/`runc kill` does.
    pub fn signal(&self, sig: i32) {
        let pid = self.pyinit_pid();
        // SAFETY: kill with plain integers.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    fn wait_for(
        &self,
        which: &Captured,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut g = which.data.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&g.0);
            if let Some(line) = text.lines().find(|l| pred(l)) {
                return line.to_string();
            }
            let now = Instant::now();
            if g.1 || now >= deadline {
                panic!(
                    "no {what} line matched within {timeout:?}; {what} so far:\n{text}\n--- other stream:\n{}",
                    String::from_utf8_lossy(&if std::ptr::eq(which, &*self.stdout) { &self.stderr } else { &self.stdout }.data.lock().unwrap().0)
                );
            }
            g = which.grew.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits until a stdout line satisfies `pred`; returns that line.
    pub fn wait_stdout(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for(&self.stdout, "stdout", timeout, pred)
    }

    pub fn wait_stderr(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for(&self.stderr, "stderr", timeout, pred)
    }

    /// Everything on stdout so far.
    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.stdout.data.lock().unwrap().0).into_owned()
    }

    /// Waits for pyinit to exit (fails the test after `timeout`).
    pub fn wait(mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() >= deadline {
                let out = self.stdout_now();
                let err = String::from_utf8_lossy(&self.stderr.data.lock().unwrap().0).into_owned();
                panic!("pyinit did not exit within {timeout:?}\nstdout:\n{out}\nstderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let elapsed = self.started.elapsed();
        let code = exit_code(status);
        self.exit = Some(code);
        Outcome {
            code,
            stdout: self.stdout.read_to_end(),
            stderr: self.stderr.read_to_end(),
            elapsed,
        }
    }

    /// All processes below pyinit (host pids), by walking /proc.
    pub fn descendants(&self) -> Vec<i32> {
        descendants_of(self.pyinit_pid())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let root = self.child.id() as i32;
        for pid in descendants_of(root).into_iter().chain([root]) {
            // SAFETY: kill with plain integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// Direct children of `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let p = t.path().join("children");
            if let Ok(s) = std::fs::read_to_string(p) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Every process below `pid`, transitively.
pub fn descendants_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for c in children_of(p) {
            out.push(c);
            stack.push(c);
        }
    }
    out
}

/// Field 3 of /proc/PID/stat: R, S, Z, T, ... (None if gone).
pub fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// A `Key:` line of /proc/PID/status, e.g. `SigBlk`.
pub fn proc_status_field(pid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

/// Polls `cond` every few ms until true or `timeout`; returns whether it held.
/// For conditions observable only in /proc (no output to wait on).
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub const SECS: fn(u64) -> Duration = Duration::from_secs;

// ---- Added for the output, gunicorn and tty tests ----

impl Running {
    /// Waits until all of stdout so far satisfies `pred` (on raw bytes, for
    /// output that is not whole lines); returns the bytes seen.
    pub fn wait_stdout_bytes(&self, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut g = self.stdout.data.lock().unwrap();
        loop {
            if pred(&g.0) {
                return g.0.clone();
            }
            let now = Instant::now();
            if g.1 || now >= deadline {
                panic!(
                    "stdout did not reach the expected state within {timeout:?}; {} bytes so far:\n{}",
                    g.0.len(),
                    String::from_utf8_lossy(&g.0[g.0.len().saturating_sub(2000)..])
                );
            }
            g = self.stdout.grew.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Everything on stderr so far.
    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.data.lock().unwrap().0).into_owned()
    }
}

impl Builder {
    /// Like [`Builder::spawn`], but pyinit's stdout is a pipe whose read end
    /// is returned and that nobody reads: a stalled log reader. Stderr is
    /// collected as usual; `Running`'s stdout stays empty.
    pub fn spawn_stalled_stdout(self) -> (Running, std::os::fd::OwnedFd) {
        use std::os::fd::{FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        // SAFETY: fds is a two-element array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two fresh descriptors owned by nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start pyinit");
        drop(cmd); // closes the test's copy of the write end
        let stdout = Arc::new(Captured::default());
        stdout.data.lock().unwrap().1 = true;
        let stderr = Arc::new(Captured::default());
        collect(child.stderr.take().unwrap(), stderr.clone());
        (
            Running {
                child,
                pid1: self.pid1,
                init_name: self.init_bin().file_name().unwrap_or_default().to_owned(),
                stdout,
                stderr,
                started: Instant::now(),
                exit: None,
            },
            r,
        )
    }
}

/// Bytes waiting unread in a pipe (FIONREAD).
pub fn pipe_unread(fd: &impl std::os::fd::AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// Runs `cmd` to completion (stdin null, stdout and stderr collected),
/// failing the test after `timeout` (and killing the process).
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Outcome {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("cannot start command");
    let out = Arc::new(Captured::default());
    let err = Arc::new(Captured::default());
    collect(child.stdout.take().unwrap(), out.clone());
    collect(child.stderr.take().unwrap(), err.clone());
    let deadline = started + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let pid = child.id() as i32;
            for p in descendants_of(pid).into_iter().chain([pid]) {
                // SAFETY: kill with plain integers.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.data.lock().unwrap().0),
                String::from_utf8_lossy(&err.data.lock().unwrap().0)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let code = exit_code(status);
    Outcome {
        code,
        stdout: out.read_to_end(),
        stderr: err.read_to_end(),
        elapsed,
    }
}

// ---- Added for the signal, exit, reaping and shutdown tests ----

impl Builder {
    /// Like [`Builder::spawn`], but started through `wrapper` (a program and
    /// its first arguments, which must end by exec'ing the rest of its argv:
    /// `unshare … pyinit …`), e.g. to give pyinit a particular signal mask.
    /// The process id stays the same across the exec.
    pub fn spawn_wrapped<I, S>(self, wrapper: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let inner = self.command();
        let mut w = wrapper.into_iter();
        let mut cmd = Command::new(w.next().expect("wrapper program"));
        cmd.args(w)
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid is async-signal-safe (as in `command`).
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("cannot start wrapper");
        let stdout = Arc::new(Captured::default());
        let stderr = Arc::new(Captured::default());
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        Running {
            child,
            pid1: self.pid1,
            init_name: self.init_bin().file_name().unwrap_or_default().to_owned(),
            stdout,
            stderr,
            started: Instant::now(),
            exit: None,
        }
    }
}

/// A `Sig*`/`ShdPnd` field of /proc/PID/status as a bit set (bit N-1 =
/// signal N); None if the process is gone.
pub fn proc_sigset(pid: i32, key: &str) -> Option<u64> {
    u64::from_str_radix(&proc_status_field(pid, key)?, 16).ok()
}

/// Bit set of signal numbers, as /proc shows them.
pub fn sigbits(signals: &[i32]) -> u64 {
    signals.iter().fold(0, |acc, &s| acc | 1u64 << (s - 1))
}

/// Whether `sig` is still pending for the process (not yet taken by any of
/// its threads, e.g. through pyinit's signalfd).
pub fn signal_pending(pid: i32, sig: i32) -> bool {
    proc_sigset(pid, "ShdPnd").unwrap_or(0) & sigbits(&[sig]) != 0
}

/// The `comm` of a process (None if gone).
pub fn proc_comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// The pid a process has in its innermost pid namespace (last `NSpid` field).
pub fn ns_pid(host_pid: i32) -> Option<i32> {
    proc_status_field(host_pid, "NSpid")?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// A directory of one test, removed when dropped; `tag` names it.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "pyinit-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("cannot create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `name` in the directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, text).expect("cannot write test file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot bind a free port")
        .port()
}

/// One plain HTTP/1.0 GET of `path` on 127.0.0.1:`port`: the whole answer
/// (status line, headers, body), or `None` when it could not be had.
pub fn http_get_raw(port: u16, path: &str, timeout: Duration) -> Option<String> {
    use std::io::Write;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500).min(timeout))
            .ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    Some(resp)
}
