//! Stress and fault tests: a log flood against a slow, then stalled reader
//! (memory bound, back-pressure, no loss; signals and the deadline during
//! the stall), a storm of signals, ten thousand orphans, a grandchild that
//! holds the output pipe, a tiny descriptor limit, and fork failing.
//!
//! Fixtures: `tests/fixtures/hard_*.py`, and `hard_orphans.c`, compiled with
//! gcc at test time into `target/hard-helpers/`. The tests take a lock so
//! that they run one at a time: they measure time windows and CPU, which a
//! neighbour flooding both cores would blur.
mod util;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use util::*;

/// One test at a time (see the module comment).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn fx(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

/// The real interpreter behind `python3` (not a pyenv shim, which costs a
/// shell and a second exec per start).
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import os, sys; print(os.path.realpath(sys.executable))",
            ])
            .output()
            .expect("python3 is needed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// A directory removed when dropped (world-readable: the fork-failure test
/// reads it as `nobody`).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "pyinit-hard-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("cannot create temp dir");
        TempDir(p)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("cannot write file");
        p.to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `Key:` of /proc/PID/status in KiB (`RssAnon`, `VmRSS`).
fn status_kib(pid: i32, key: &str) -> Option<u64> {
    proc_status_field(pid, key)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn wchan(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// utime + stime of a process, from /proc/PID/stat.
fn cpu_time(pid: i32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based).
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf with a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Descendants of `root` whose command line contains `needle`.
fn descendants_running(root: i32, needle: &str) -> Vec<i32> {
    descendants_of(root)
        .into_iter()
        .filter(|&p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Reads what `fd` has within `timeout` (at most `max` bytes) into `into`;
/// returns the bytes read, 0 on timeout, None at end of file.
fn read_within(fd: &OwnedFd, into: &mut Vec<u8>, max: usize, timeout: Duration) -> Option<usize> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    if ready <= 0 {
        return Some(0);
    }
    let start = into.len();
    into.resize(start + max, 0);
    // SAFETY: `max` writable bytes at `start`.
    let n = unsafe { libc::read(fd.as_raw_fd(), into[start..].as_mut_ptr().cast(), max) };
    into.truncate(start + n.max(0) as usize);
    match n {
        0 => None,
        n if n < 0 => Some(0),
        n => Some(n as usize),
    }
}

fn no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "pyinit panicked:\n{stderr}"
    );
}

/// Lines that are pyinit's own errors, in `raw` or `prefix` shape.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.starts_with("pyinit: error:") || (l.starts_with("pyinit ") && l.contains("| error:"))
        })
        .collect()
}

// ---------------------------------------------------------------- log flood

const WRITERS: usize = 16;

/// A Procfile of `WRITERS` flood writers (`hard_flood.py ID SECONDS MAX`).
fn flood_procfile(dir: &TempDir, seconds: &str, max: &str, extra: &str) -> String {
    let mut text: String = (0..WRITERS)
        .map(|i| {
            format!(
                "w{i:02}: exec {} {} {i} {seconds} {max}\n",
                python(),
                fx("hard_flood.py")
            )
        })
        .collect();
    text.push_str(extra);
    dir.write("Procfile", &text)
}

/// Checks the flood on pyinit's stdout (`prefix` format): every line whole
/// and well-formed, under the name of its writer, every writer's sequence
/// complete and in order, and its END count equal to the lines seen.
/// Returns the number of lines.
fn check_flood(out: &[u8]) -> usize {
    assert!(out.ends_with(b"\n"), "output ends in a partial line");
    let mut next = [0usize; WRITERS];
    let mut ended = [false; WRITERS];
    let mut lines = 0;
    for (k, line) in out[..out.len() - 1].split(|&b| b == b'\n').enumerate() {
        let bad = || {
            format!(
                "line {k} is not a whole flood line: {:?}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )
        };
        let sep = line
            .windows(3)
            .position(|w| w == b" | ")
            .unwrap_or_else(|| panic!("{}", bad()));
        let name = std::str::from_utf8(&line[..sep])
            .unwrap_or_else(|_| panic!("{}", bad()))
            .trim_end();
        let body = &line[sep + 3..];
        let text = std::str::from_utf8(body).unwrap_or_else(|_| panic!("{}", bad()));
        let mut it = text.splitn(4, ' ');
        let id: usize = it
            .next()
            .and_then(|p| p.strip_prefix('p'))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{}", bad()));
        assert!(id < WRITERS, "{}", bad());
        assert_eq!(name, format!("w{id:02}"), "{}", bad());
        assert!(!ended[id], "p{id} wrote after its END: {}", bad());
        let second = it.next().unwrap_or_else(|| panic!("{}", bad()));
        if second == "END" {
            let count: usize = it
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("{}", bad()));
            assert_eq!(
                count, next[id],
                "p{id} wrote {count} lines, {} arrived",
                next[id]
            );
            ended[id] = true;
            continue;
        }
        let seq: usize = second
            .strip_prefix('s')
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{}", bad()));
        assert_eq!(
            seq,
            next[id],
            "p{id}: line s{} missing; {}",
            next[id],
            bad()
        );
        let total: usize = it
            .next()
            .and_then(|n| n.strip_prefix('n'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", bad()));
        assert_eq!(body.len() + 1, total, "{}", bad());
        let letter = b"abcdefghijklmnopqrstuvwxyz"[(id * 7 + seq) % 26];
        let payload = it.next().unwrap_or_else(|| panic!("{}", bad())).as_bytes();
        assert!(payload.iter().all(|&b| b == letter), "{}", bad());
        next[id] += 1;
        lines += 1;
    }
    for (id, e) in ended.iter().enumerate() {
        assert!(e, "p{id} END line missing");
    }
    lines
}

/// Number of complete `END` lines in `out`.
fn ends_seen(out: &[u8]) -> usize {
    out.windows(5).filter(|w| w == b" END ").count()
}

#[test]
fn log_flood_with_a_slow_then_stalled_reader() {
    let _g = serial();
    let dir = TempDir::new("flood");
    // Each writer floods for 2.5 s (or 1500 lines); the reader is slow for
    // the first second and then stalls for 3 s, so the writers spend most
    // of that time blocked.
    let procfile = flood_procfile(&dir, "2.5", "1500", "");
    let (r, fd) = Builder::new()
        .args(["-t", "2s", "--procfile", &procfile])
        .spawn_stalled_stdout();
    let pyinit = r.pyinit_pid();
    let mut out = Vec::new();

    // Slow reader: 32 KiB every 10 ms (about 3 MB/s) for one second.
    let slow_until = Instant::now() + SECS(1);
    while Instant::now() < slow_until {
        read_within(&fd, &mut out, 32 * 1024, Duration::from_millis(10))
            .expect("pyinit closed its stdout");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!out.is_empty(), "nothing arrived during the slow phase");

    // Stalled reader, 3 s. Bound on what pyinit may hold (src/output):
    // each of the 16 stdout pumps a 256 KiB read buffer (READ_CHUNK), one
    // formatted chunk waiting for queue space (<= 256 KiB * 5/4 + 64) and
    // an unfinished line (<= 4 KiB here, --max-line at most); the stdout
    // sink admits records while under QUEUE_BYTES = 256 KiB, so its queue
    // and the batch its writer thread is blocked on hold < 2 * (256 + 320)
    // KiB. That is 16 * ~580 KiB + ~1.2 MiB, about 10.5 MiB of captured
    // output, plus the runtime's own few MiB: 32 MiB leaves room for
    // allocator slack, while buffering the flood unbounded would take
    // hundreds of MiB in 3 s.
    let stall_until = Instant::now() + SECS(3);
    let mut max_anon = 0;
    let mut max_rss = 0;
    while Instant::now() < stall_until {
        max_anon = max_anon.max(status_kib(pyinit, "RssAnon").expect("pyinit gone"));
        max_rss = max_rss.max(status_kib(pyinit, "VmRSS").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Back-pressure, not loss: every writer is blocked writing its pipe.
    let writers = descendants_running(pyinit, "hard_flood.py");
    assert_eq!(writers.len(), WRITERS, "writers: {writers:?}");
    let blocked: Vec<(i32, Option<char>, String)> = writers
        .iter()
        .map(|&p| (p, proc_state(p), wchan(p)))
        .collect();
    eprintln!(
        "flood: pyinit RssAnon max {max_anon} KiB, VmRSS max {max_rss} KiB during the stall; \
         {} bytes read before it; writers: {blocked:?}",
        out.len()
    );
    for (p, state, chan) in &blocked {
        assert!(
            *state == Some('S') && (chan.contains("pipe_write") || chan.contains("pipe_wait")),
            "writer {p} is not blocked on its pipe: state {state:?}, wchan {chan:?}"
        );
    }
    assert!(
        max_anon < 32 * 1024,
        "pyinit held {max_anon} KiB of anonymous memory with the reader stalled"
    );

    // Full speed until every writer has said END, then stop them.
    let resumed = Instant::now();
    let deadline = resumed + SECS(10);
    let (mut ends, mut scanned) = (0usize, 0usize);
    while ends < WRITERS {
        assert!(
            Instant::now() < deadline,
            "writers did not finish; {ends} ENDs"
        );
        if read_within(&fd, &mut out, 1 << 20, Duration::from_millis(100)).is_none() {
            break;
        }
        // Count only in what is new (a marker may straddle two reads).
        let from = scanned.saturating_sub(4);
        ends += ends_seen(&out[from..]) - ends_seen(&out[from..scanned]);
        scanned = out.len();
    }
    eprintln!(
        "flood: every writer finished {:?} after the reader resumed",
        resumed.elapsed()
    );
    r.signal(libc::SIGTERM);
    let reader = std::thread::spawn(move || {
        let end = Instant::now() + SECS(10);
        while Instant::now() < end {
            if read_within(&fd, &mut out, 1 << 20, Duration::from_millis(100)).is_none() {
                break;
            }
        }
        out
    });
    let o = r.wait(SECS(10));
    let out = reader.join().unwrap();
    no_panic(&o.stderr_str());
    assert_eq!(o.code, 0, "stderr:\n{}", o.stderr_str());
    let lines = check_flood(&out);
    eprintln!("flood: {lines} lines, {} bytes, all intact", out.len());
    assert!(
        !o.stderr_str().contains("dropped"),
        "output dropped:\n{}",
        o.stderr_str()
    );
}

#[test]
fn signals_and_the_deadline_hold_while_the_reader_is_stalled() {
    let _g = serial();
    let dir = TempDir::new("stall");
    // 16 writers flooding forever (TERM kills them) and one more that
    // floods and ignores TERM; nobody reads pyinit's stdout.
    let stubborn = format!(
        "w16: exec {} {} {WRITERS} 0 0 ignore\n",
        python(),
        fx("hard_flood.py")
    );
    let procfile = flood_procfile(&dir, "0", "0", &stubborn);
    let (r, _fd) = Builder::new()
        .args(["-t", "2s", "--procfile", &procfile])
        .spawn_stalled_stdout();
    let pyinit = r.pyinit_pid();
    // All 17 blocked on their full pipes.
    let mut last = Vec::new();
    let all_blocked = eventually(SECS(10), || {
        let w = descendants_running(pyinit, "hard_flood.py");
        last = w.iter().map(|&p| (p, wchan(p))).collect();
        w.len() == WRITERS + 1 && last.iter().all(|(_, c)| c.contains("pipe_write"))
    });
    assert!(all_blocked, "writers not all blocked: {last:?}");

    // Non-stop signals still reach every process.
    r.signal(libc::SIGUSR1);
    for id in 0..=WRITERS {
        let want = format!("p{id} got USR1");
        r.wait_stderr(SECS(5), |l| l.ends_with(&want));
    }

    // The stop: TERM kills 16, the 17th is killed at the 2 s deadline, and
    // pyinit then exits within FINAL_FLUSH although its stdout is stuck.
    let term_at = Instant::now();
    r.signal(libc::SIGTERM);
    let o = r.wait(SECS(10));
    let took = term_at.elapsed();
    let err = o.stderr_str();
    eprintln!("stalled stop: pyinit exited {took:?} after TERM");
    no_panic(&err);
    assert_eq!(o.code, 143, "stderr:\n{err}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "pyinit exited {took:?} after TERM with -t 2s\n{err}"
    );
    assert!(
        err.contains("for w16 ran out; sent SIGKILL to 1 process:"),
        "no SIGKILL report for the stubborn writer:\n{err}"
    );
    assert!(
        descendants_running(pyinit, "hard_flood.py").is_empty(),
        "writers outlived pyinit"
    );
}

// ---------------------------------------------------------------- signal storm

#[test]
fn signal_storm_loses_no_stop_request() {
    let _g = serial();
    let r = Builder::new()
        // The stubborn child relies on a TERM to the whole group.
        .args(["-g", "-t", "1s", "--", python(), &fx("hard_storm.py")])
        .spawn();
    r.wait_stdout(SECS(10), |l| l == "storm main ready");
    let pyinit = r.pyinit_pid();
    let rt = libc::SIGRTMIN();
    let kinds = [
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGCONT,
        libc::SIGALRM,
        rt,
        rt + 1,
        rt + 2,
        rt + 3,
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let storm: Vec<_> = (0..3)
        .map(|t| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut k = t;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: kill with plain integers.
                    let rc = unsafe { libc::kill(pyinit, kinds[k % kinds.len()]) };
                    if rc == 0 {
                        sent.fetch_add(1, Ordering::Relaxed);
                    } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                        return;
                    }
                    k += 1;
                }
            })
        })
        .collect();
    // Storm for a while, then TERM in the middle of it.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until && sent.load(Ordering::Relaxed) < 20_000 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = sent.load(Ordering::Relaxed);
    let term_at = Instant::now();
    r.signal(libc::SIGTERM);
    let o = r.wait(SECS(10));
    let took = term_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in storm {
        t.join().unwrap();
    }
    let out = o.stdout_str();
    let err = o.stderr_str();
    eprintln!(
        "storm: {before} signals before TERM, {} in all; pyinit exited {took:?} after TERM; {}",
        sent.load(Ordering::Relaxed),
        out.lines()
            .find(|l| l.starts_with("main got TERM"))
            .unwrap_or("-")
    );
    assert!(before >= 2000, "only {before} signals sent before TERM");
    no_panic(&err);
    assert_eq!(o.code, 7, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.lines().any(|l| l.starts_with("main got TERM after ")),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "stubborn got TERM"), "{out}");
    let forwarded: u64 = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("main got TERM after ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(forwarded > 0, "no storm signal reached the main process");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2000),
        "the child ignoring TERM was not killed about 1 s after it: {took:?}\n{err}"
    );
    assert!(err.contains("sent SIGKILL to 1 process:"), "{err}");
}

// ---------------------------------------------------------------- orphans

/// Compiles `tests/fixtures/<name>.c` once into `target/hard-helpers/`.
fn c_helper(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/hard-helpers");
    let exe = dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.iter().any(|b| b == name) {
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let src = fixture(&format!("{name}.c"));
        let st = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("gcc is needed");
        assert!(st.success(), "gcc failed on {}", src.display());
        std::fs::rename(&tmp, &exe).unwrap();
        built.push(name.to_string());
    }
    exe
}

#[test]
fn orphan_storm_ten_thousand() {
    let _g = serial();
    let helper = c_helper("hard_orphans");
    let r = Builder::new().arg("--").arg(&helper).arg("10000").spawn();
    let started = Instant::now();
    r.wait_stdout(SECS(20), |l| l == "ORPHANS DONE 10000");
    let made = started.elapsed();
    let pyinit = r.pyinit_pid();
    let mut zombies = Vec::new();
    let clean = eventually(SECS(5), || {
        zombies = r
            .descendants()
            .into_iter()
            .filter(|&p| proc_state(p) == Some('Z'))
            .collect();
        zombies.is_empty()
    });
    let cpu = cpu_time(pyinit);
    eprintln!("orphans: 10000 made in {made:?}; pyinit CPU (utime+stime) {cpu:?}");
    assert!(
        clean,
        "zombies left under pyinit: {} of them",
        zombies.len()
    );
    assert_eq!(r.descendants().len(), 1, "more than the helper is left");
    assert!(
        cpu < SECS(2),
        "pyinit used {cpu:?} of CPU reaping 10000 orphans"
    );
    r.signal(libc::SIGTERM);
    let o = r.wait(SECS(5));
    no_panic(&o.stderr_str());
    assert_eq!(o.code, 143, "stderr:\n{}", o.stderr_str());
}

// ---------------------------------------------------------------- pipe holder

#[test]
fn grandchild_holding_the_pipe_does_not_block_exit() {
    let _g = serial();
    // Not PID 1: as subreaper, so the holder is a real host process whose
    // end can be checked after pyinit (as PID 1 the kernel would kill it
    // with the namespace anyway).
    let r = Builder::new()
        .pid1(false)
        .args(["-t", "1s", "--", python(), &fx("hard_holder.py")])
        .spawn();
    let holder: i32 = r
        .wait_stdout(SECS(10), |l| l.starts_with("HOLDER "))
        .strip_prefix("HOLDER ")
        .unwrap()
        .parse()
        .unwrap();
    r.wait_stdout(SECS(10), |l| l == "main exits 4");
    let main_exit = Instant::now();
    let o = r.wait(SECS(10));
    let took = main_exit.elapsed();
    let err = o.stderr_str();
    eprintln!("holder: pyinit exited {took:?} after the main process");
    no_panic(&err);
    assert_eq!(o.code, 4, "stderr:\n{err}");
    assert!(
        took >= Duration::from_millis(850) && took < Duration::from_millis(2000),
        "pyinit exited {took:?} after the main process with -t 1s\n{err}"
    );
    assert!(err.contains("sent SIGKILL to 1 process:"), "{err}");
    assert!(
        eventually(SECS(1), || proc_state(holder).is_none()),
        "holder {holder} outlived pyinit: state {:?}",
        proc_state(holder)
    );
}

// ---------------------------------------------------------------- fd limit

/// pyinit as PID 1 with RLIMIT_NOFILE 16: working, or one clean error.
fn under_fd_limit(args: &[&str]) -> Outcome {
    Builder::new()
        .args(args)
        .spawn_wrapped(["prlimit", "--nofile=16:16"])
        .wait(SECS(10))
}

#[test]
fn fd_limit_16() {
    let _g = serial();
    // (a) One command.
    let o = under_fd_limit(&["-t", "1s", "--", "sh", "-c", "echo hi; exit 5"]);
    let err = o.stderr_str();
    eprintln!(
        "fd limit 16, one command: status {}, stdout {:?}, stderr {:?}, {:?}",
        o.code,
        o.stdout_str(),
        err,
        o.elapsed
    );
    no_panic(&err);
    assert!(o.elapsed < SECS(3), "took {:?}", o.elapsed);
    match o.code {
        5 => {
            assert_eq!(o.stdout_str(), "hi\n");
            assert!(error_lines(&err).is_empty(), "{err}");
        }
        1 | 2 | 126 | 127 => assert_eq!(error_lines(&err).len(), 1, "{err}"),
        c => panic!("unexpected status {c}\n{err}"),
    }

    // (b) A Procfile of four: `a` ends the run with 3 after 0.5 s.
    let dir = TempDir::new("fd");
    let procfile = dir.write(
        "Procfile",
        "a: echo a-out; sleep 0.5; exit 3\n\
         b: echo b-out; sleep 5\n\
         c: echo c-out; sleep 5\n\
         d: echo d-out; sleep 5\n",
    );
    let o = under_fd_limit(&["-t", "1s", "--procfile", &procfile]);
    let err = o.stderr_str();
    let out = o.stdout_str();
    eprintln!(
        "fd limit 16, Procfile of 4: status {}, {:?}\nstdout:\n{out}stderr:\n{err}",
        o.code, o.elapsed
    );
    no_panic(&err);
    // Either way nothing waits for the 1 s grace plus the final flush.
    assert!(
        o.elapsed < Duration::from_millis(1500),
        "took {:?}\n{err}",
        o.elapsed
    );
    assert!(!err.contains("survived SIGKILL"), "{err}");
    match o.code {
        3 => {
            for name in ["a", "b", "c", "d"] {
                let want = format!("{name}-out");
                assert!(out.lines().any(|l| l.ends_with(&want)), "{out}");
            }
            assert!(error_lines(&err).is_empty(), "{err}");
        }
        1 | 2 | 126 | 127 => assert_eq!(error_lines(&err).len(), 1, "{err}"),
        c => panic!("unexpected status {c}\n{err}"),
    }
}

// ---------------------------------------------------------------- fork failure

/// `pyinit ARGS` as `nobody` with RLIMIT_NPROC 1: pyinit itself is the one
/// process allowed, so its fork/clone fails with EAGAIN (root would be
/// exempt, hence the uid change). None when not root.
fn as_nobody_with_nproc_1(args: &[&str]) -> Option<Outcome> {
    if !is_root() {
        eprintln!("skipped: changing uid needs root");
        return None;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "prlimit",
        "--nproc=1:1",
    ])
    .arg(pyinit_bin())
    .args(args)
    .env_clear()
    .envs(clean_env());
    Some(run_bounded(cmd, SECS(10)))
}

#[test]
fn fork_failure_is_a_clear_error() {
    let _g = serial();
    let Some(o) = as_nobody_with_nproc_1(&["--", "/bin/true"]) else {
        return;
    };
    let err = o.stderr_str();
    eprintln!("fork failure: status {}, stderr {err:?}", o.code);
    no_panic(&err);
    assert_eq!(o.code, 126, "stderr:\n{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pyinit: error:")
            && err.contains("'/bin/true'")
            && err.contains("Resource temporarily unavailable"),
        "{err}"
    );
    assert!(o.elapsed < SECS(2), "took {:?}", o.elapsed);
}

#[test]
fn fork_failure_in_a_procfile_exits_promptly() {
    let _g = serial();
    let dir = TempDir::new("nproc");
    let procfile = dir.write("Procfile", "a: true\nb: true\n");
    let Some(o) = as_nobody_with_nproc_1(&["-t", "3s", "--procfile", &procfile]) else {
        return;
    };
    let err = o.stderr_str();
    eprintln!(
        "fork failure, Procfile: status {}, {:?}\n{err}",
        o.code, o.elapsed
    );
    no_panic(&err);
    assert_eq!(o.code, 126, "stderr:\n{err}");
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("Resource temporarily unavailable"),
        "{err}"
    );
    // Nothing was ever started, so nothing is worth the 3 s grace period
    // (see /tmp/pyinit-bugs/hardening.md).
    assert!(!err.contains("survived SIGKILL"), "{err}");
    assert!(
        o.elapsed < SECS(1),
        "took {:?} with no process started\n{err}",
        o.elapsed
    );
}
