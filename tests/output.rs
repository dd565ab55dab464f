//! Output capture (SPEC point 7): whole lines from concurrent writers, long
//! and partial lines, stream separation, the three formats, line buffering
//! of Python through the environment pyinit gives it, a stalled reader of
//! pyinit's stdout, and `--no-capture`.
mod util;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use util::*;

fn fx(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

/// pyinit running `python3 <fixture> <args...>` with `opts` before `--`.
fn py(opts: &[&str], script: &str, args: &[&str]) -> Builder {
    Builder::new()
        .args(opts)
        .args(["--", "python3"])
        .arg(fx(script))
        .args(args)
}

/// The bytes `out_lines.py` writes for `pattern(tag, n)`.
fn pattern(tag: char, n: usize) -> Vec<u8> {
    let mut v = vec![tag as u8];
    v.extend((0..n - 1).map(|i| b'0' + (i % 10) as u8));
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 3000 {
        format!(
            "{}...[{} bytes]...{}",
            &s[..1500],
            s.len(),
            &s[s.len() - 1500..]
        )
    } else {
        s.into_owned()
    }
}

// ---------------------------------------------------------------- whole lines

const WRITERS: usize = 8;
const LINES: usize = 400;

/// Checks the lines of `out_writers.py`: every line well-formed, every
/// writer's sequence complete and in order.
fn check_writer_lines<'a>(lines: impl Iterator<Item = &'a [u8]>) {
    let alpha = b"abcdefghijklmnopqrstuvwxyz";
    let mut next_seq = [0usize; WRITERS];
    let mut bad = Vec::new();
    let mut count = 0;
    for line in lines {
        count += 1;
        let parsed = (|| {
            let s = std::str::from_utf8(line).ok()?;
            let mut it = s.splitn(4, ' ');
            let w: usize = it.next()?.strip_prefix('w')?.parse().ok()?;
            let seq: usize = it.next()?.strip_prefix('s')?.parse().ok()?;
            let len: usize = it.next()?.strip_prefix('n')?.parse().ok()?;
            let payload = it.next()?.as_bytes();
            let off = (w * 7 + seq * 13) % 26;
            let ok = line.len() == len
                && w < WRITERS
                && payload
                    .iter()
                    .enumerate()
                    .all(|(k, &b)| b == alpha[(off + k) % 26]);
            ok.then_some((w, seq))
        })();
        match parsed {
            Some((w, seq)) => {
                if seq != next_seq[w] {
                    bad.push(format!("w{w}: expected s{} got s{seq}", next_seq[w]));
                }
                next_seq[w] = seq + 1;
            }
            None => bad.push(format!(
                "malformed line: {}",
                show(&line[..line.len().min(200)])
            )),
        }
    }
    assert!(
        bad.is_empty(),
        "{} bad lines, first: {:#?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    assert_eq!(count, WRITERS * LINES);
    assert_eq!(
        next_seq, [LINES; WRITERS],
        "a writer's sequence is incomplete"
    );
}

#[test]
fn concurrent_writers_lines_are_never_lost_split_or_merged() {
    let out = py(
        &[],
        "out_writers.py",
        &[&WRITERS.to_string(), &LINES.to_string()],
    )
    .spawn()
    .wait(SECS(60));
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr_str());
    assert_eq!(out.stderr_str(), "");
    let text = out.stdout;
    assert_eq!(
        text.last(),
        Some(&b'\n'),
        "output must end with a whole line"
    );
    check_writer_lines(text[..text.len() - 1].split(|&b| b == b'\n'));
}

#[test]
fn concurrent_writers_in_json_one_record_per_line() {
    let out = py(
        &["--log-format", "json"],
        "out_writers.py",
        &[&WRITERS.to_string(), &LINES.to_string()],
    )
    .spawn()
    .wait(SECS(60));
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr_str());
    let recs = parse_json_lines(&out.stdout);
    // Every record carries the pid of the process whose pipe it is: the main one.
    let pid = &recs[0].1["pid"];
    for (_, v) in &recs {
        assert!(v.get("partial").is_none(), "{v}");
        assert_eq!(&v["pid"], pid);
    }
    check_writer_lines(
        recs.iter()
            .map(|(_, v)| v["line"].as_str().unwrap().as_bytes()),
    );
}

// ----------------------------------------------------------------- long lines

#[test]
fn long_lines_raw_are_written_in_pieces_byte_identical() {
    let out = py(&["--max-line", "1000"], "out_lines.py", &["long"])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let expect = cat(&[
        &pattern('A', 3500),
        b"\n",
        &pattern('B', 1000),
        b"\n",
        &pattern('C', 999),
        b"\n",
        &pattern('D', 1001),
        b"\n",
        &pattern('E', 2000),
        b"\n",
    ]);
    assert!(out.stdout == expect, "got:\n{}", show(&out.stdout));
}

#[test]
fn long_line_pieces_are_written_before_the_line_ends() {
    // 3500 bytes without a newline and --max-line 1000: three full pieces go
    // out at once, the last 500 bytes wait for the rest of the line.
    let r = py(&["--max-line", "1000"], "out_lines.py", &["long-gate"]).spawn();
    r.wait_stderr(SECS(10), |l| l == "READY");
    let seen = r.wait_stdout_bytes(SECS(5), |b| b.len() >= 3000);
    let a = pattern('A', 3500);
    assert!(
        seen == a[..3000],
        "got {} bytes: {}",
        seen.len(),
        show(&seen)
    );
    r.signal(libc::SIGUSR1);
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(out.stdout == cat(&[&a, b"\n"]), "{}", show(&out.stdout));
}

#[test]
fn long_lines_prefix_become_records_and_exact_max_line_stays_whole() {
    let out = py(
        &["--max-line", "1000", "--log-format", "prefix"],
        "out_lines.py",
        &["long"],
    )
    .spawn()
    .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let (a, b, c, d, e) = (
        pattern('A', 3500),
        pattern('B', 1000),
        pattern('C', 999),
        pattern('D', 1001),
        pattern('E', 2000),
    );
    // An exact multiple of max-line: two records, no empty third one.
    let pieces: [&[u8]; 10] = [
        &a[..1000],
        &a[1000..2000],
        &a[2000..3000],
        &a[3000..],
        &b,
        &c,
        &d[..1000],
        &d[1000..],
        &e[..1000],
        &e[1000..],
    ];
    let mut expect = Vec::new();
    for p in pieces {
        expect.extend_from_slice(b"python3 | ");
        expect.extend_from_slice(p);
        expect.push(b'\n');
    }
    assert!(out.stdout == expect, "got:\n{}", show(&out.stdout));
}

// -------------------------------------------------------------- partial lines

#[test]
fn partial_last_line_raw_gets_no_newline() {
    let out = py(&[], "out_lines.py", &["partial"]).spawn().wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "full\nno newline at end");
    assert_eq!(out.stderr_str(), "err partial");
}

#[test]
fn partial_last_line_prefix_record_ends_in_newline() {
    let out = py(&["--log-format", "prefix"], "out_lines.py", &["partial"])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(
        out.stdout_str(),
        "python3 | full\npython3 | no newline at end\n"
    );
    assert_eq!(out.stderr_str(), "python3 | err partial\n");
}

#[test]
fn partial_last_line_survives_the_writer_being_killed() {
    let out = py(&[], "out_lines.py", &["selfkill"])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "full\nkilled right after");

    let out = py(&["--log-format", "prefix"], "out_lines.py", &["selfkill"])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    assert_eq!(
        out.stdout_str(),
        "python3 | full\npython3 | killed right after\n"
    );
}

#[test]
fn partial_last_line_survives_the_grace_kill() {
    let r = py(
        &["--log-format", "prefix", "-t", "500ms"],
        "out_lines.py",
        &["ignore-term"],
    )
    .spawn();
    r.wait_stderr(SECS(10), |l| l == "python3 | READY");
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    assert_eq!(
        out.stdout_str(),
        "python3 | full\npython3 | cut by the deadline\n"
    );
    // pyinit's own report is padded to the child's (longer) name.
    let err = out.stderr_str();
    assert!(
        err.lines()
            .any(|l| l.starts_with("pyinit  | warning:") && l.contains("SIGKILL")),
        "{err}"
    );
    for l in err.lines() {
        assert_eq!(l.find(" | "), Some(7), "unaligned record: {l}");
    }
}

#[test]
fn partial_last_line_is_written_when_the_pipe_closes_not_at_exit() {
    // The child closes its stdout and lives on: the tail must not wait for it.
    let r = py(&[], "out_lines.py", &["close-stdout"]).spawn();
    r.wait_stderr(SECS(10), |l| l == "READY");
    let seen = r.wait_stdout_bytes(SECS(5), |b| b.len() >= 17);
    assert_eq!(String::from_utf8_lossy(&seen), "tail before close");
    assert!(r.descendants().len() == 1, "the child is still running");
    r.signal(libc::SIGUSR1);
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "tail before close");
}

#[test]
fn empty_lines_are_records_too() {
    let out = py(&["--log-format", "prefix"], "out_lines.py", &["empty"])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(
        out.stdout_str(),
        "python3 | \npython3 | \npython3 | a\npython3 | \n"
    );
    let out = py(&[], "out_lines.py", &["empty"]).spawn().wait(SECS(10));
    assert_eq!(out.stdout_str(), "\n\na\n\n");
}

// -------------------------------------------------------------------- streams

#[test]
fn child_stdout_and_stderr_stay_on_their_own_streams() {
    let out = py(&[], "out_streams.py", &[]).spawn().wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let want_out: String = (0..300).map(|i| format!("OUT {i}\n")).collect();
    let want_err: String = (0..300).map(|i| format!("ERR {i}\n")).collect();
    assert_eq!(out.stdout_str(), want_out);
    assert_eq!(out.stderr_str(), want_err);
}

// --------------------------------------------------------------------- prefix

/// Absolute path of `prog` on the test's PATH.
fn which(prog: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(prog))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{prog} not on PATH"))
}

#[test]
fn prefix_names_the_program_by_its_base_name() {
    let python = which("python3");
    assert!(python.is_absolute());
    let out = Builder::new()
        .args(["--log-format", "prefix", "--"])
        .arg(&python)
        .args([
            "-c",
            "import sys; print('hello'); print('oops', file=sys.stderr)",
        ])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "python3 | hello\n");
    assert_eq!(out.stderr_str(), "python3 | oops\n");
}

#[test]
fn prefix_pads_names_to_one_width_with_pyinits_own_lines() {
    // `sh` is shorter than `pyinit`: both labels end at the same column.
    let r = Builder::new()
        .args(["--log-format", "prefix", "-t", "300ms", "--"])
        .args(["sh", "-c", "trap '' TERM; echo READY; sleep 30"])
        .spawn();
    r.wait_stdout(SECS(10), |l| l.ends_with("READY"));
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "sh     | READY\n");
    let err = out.stderr_str();
    let diag = err
        .lines()
        .find(|l| l.contains("SIGKILL"))
        .unwrap_or_else(|| panic!("no SIGKILL report on stderr:\n{err}"));
    assert!(diag.starts_with("pyinit | "), "{diag}");
    for l in err.lines() {
        assert_eq!(l.find(" | "), Some(6), "unaligned record: {l}");
    }
}

// ----------------------------------------------------------------------- json

fn parse_json_lines(bytes: &[u8]) -> Vec<(usize, serde_json::Value)> {
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "json output must end in a newline"
    );
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(|rec| {
            let v: serde_json::Value = serde_json::from_slice(rec)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(rec)));
            (rec.len(), v)
        })
        .collect()
}

/// Checks the fixed shape of a record: exactly the spec's keys, a fresh
/// RFC 3339 UTC timestamp.
fn check_shape(v: &serde_json::Value) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut keys: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
    keys.sort();
    let base = ["line", "name", "pid", "stream", "ts"];
    let with_partial = ["line", "name", "partial", "pid", "stream", "ts"];
    if obj.contains_key("event") {
        // pyinit's structured events (docs/events.md) add their fields.
        assert_eq!(
            obj["name"], "pyinit",
            "only pyinit's records are events: {v}"
        );
        for k in base {
            assert!(keys.contains(&k), "event record without {k}: {v}");
        }
    } else {
        assert!(
            keys == base || keys == with_partial,
            "unexpected keys {keys:?} in {v}"
        );
    }
    if let Some(p) = obj.get("partial") {
        assert_eq!(p, true, "partial is only ever true: {v}");
    }
    let ts = v["ts"].as_str().expect("ts is a string");
    assert!(ts.ends_with('Z'), "ts not UTC: {ts}");
    let t = humantime::parse_rfc3339(ts).unwrap_or_else(|e| panic!("ts {ts}: {e}"));
    let now = SystemTime::now();
    let age = now
        .duration_since(t)
        .unwrap_or_else(|e| panic!("ts {ts} is {:?} in the future", e.duration()));
    assert!(age < Duration::from_secs(120), "ts {ts} is {age:?} old");
    assert!(v["pid"].is_i64(), "pid not an integer: {v}");
    assert!(v["line"].is_string() && v["name"].is_string());
}

#[test]
fn json_records_have_the_spec_fields() {
    const REPS: usize = 3000; // 27000 bytes, more once escaped: over 16 KiB
    let out = py(
        &["--log-format", "json"],
        "out_json.py",
        &[&REPS.to_string()],
    )
    .spawn()
    .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let recs = parse_json_lines(&out.stdout);
    for (len, v) in &recs {
        check_shape(v);
        assert!(*len <= 16384, "record of {len} bytes");
        assert_eq!(v["name"], "python3");
        assert_eq!(v["stream"], "stdout");
    }
    let lines: Vec<&str> = recs
        .iter()
        .map(|(_, v)| v["line"].as_str().unwrap())
        .collect();
    // The pid is the child's, as the child sees itself in the namespace.
    let child_pid: i64 = lines[0]
        .strip_prefix("pid=")
        .unwrap_or_else(|| panic!("first record: {}", recs[0].1))
        .parse()
        .unwrap();
    assert!(child_pid > 1, "{child_pid}");
    for (_, v) in &recs {
        assert_eq!(v["pid"], child_pid, "{v}");
    }
    // Invalid UTF-8: each bad byte becomes U+FFFD, nothing dropped.
    assert_eq!(lines[1], "bad \u{fffd}\u{fffd} end");
    assert!(recs[0].1.get("partial").is_none() && recs[1].1.get("partial").is_none());
    // The long line: several records, partial on all but the last.
    let long: Vec<&(usize, serde_json::Value)> = recs[2..recs.len() - 1].iter().collect();
    assert!(
        long.len() >= 2,
        "a >16 KiB line must be split: {} record(s)",
        long.len()
    );
    for (i, (_, v)) in long.iter().enumerate() {
        let last = i + 1 == long.len();
        assert_eq!(
            v.get("partial").is_some(),
            !last,
            "record {i} of the long line: partial flag"
        );
    }
    let joined: String = long
        .iter()
        .map(|(_, v)| v["line"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "é\"\\\t\u{1}abc".repeat(REPS));
    assert_eq!(*lines.last().unwrap(), "done");
    assert!(recs.last().unwrap().1.get("partial").is_none());

    let err = parse_json_lines(&out.stderr);
    assert_eq!(err.len(), 1, "stderr: {}", out.stderr_str());
    let v = &err[0].1;
    check_shape(v);
    assert_eq!(v["name"], "python3");
    assert_eq!(v["stream"], "stderr");
    assert_eq!(v["line"], "to stderr");
    assert_eq!(v["pid"], child_pid);
}

#[test]
fn json_pieces_of_a_line_over_max_line_are_partial() {
    let out = py(
        &["--log-format", "json", "--max-line", "1000"],
        "out_lines.py",
        &["long"],
    )
    .spawn()
    .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let recs = parse_json_lines(&out.stdout);
    let got: Vec<(String, bool)> = recs
        .iter()
        .map(|(_, v)| {
            check_shape(v);
            (
                v["line"].as_str().unwrap().to_string(),
                v.get("partial").is_some(),
            )
        })
        .collect();
    let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let (a, b, c, d, e) = (
        pattern('A', 3500),
        pattern('B', 1000),
        pattern('C', 999),
        pattern('D', 1001),
        pattern('E', 2000),
    );
    let want = vec![
        (s(&a[..1000]), true),
        (s(&a[1000..2000]), true),
        (s(&a[2000..3000]), true),
        (s(&a[3000..]), false),
        (s(&b), false),
        (s(&c), false),
        (s(&d[..1000]), true),
        (s(&d[1000..]), false),
        (s(&e[..1000]), true),
        (s(&e[1000..]), false),
    ];
    assert_eq!(got, want);
}

#[test]
fn json_split_at_max_line_keeps_multibyte_characters_whole() {
    // The input is valid UTF-8: splitting it must not invent U+FFFD.
    let out = py(
        &["--log-format", "json", "--max-line", "1000"],
        "out_lines.py",
        &["utf8"],
    )
    .spawn()
    .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let recs = parse_json_lines(&out.stdout);
    assert!(
        recs.len() >= 2,
        "a 1201-byte line with --max-line 1000 is split"
    );
    for (i, (_, v)) in recs.iter().enumerate() {
        check_shape(v);
        assert_eq!(v.get("partial").is_some(), i + 1 < recs.len(), "{v}");
    }
    let joined: String = recs
        .iter()
        .map(|(_, v)| v["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        joined.matches('\u{fffd}').count(),
        0,
        "valid UTF-8 got replacement characters"
    );
    assert_eq!(joined, format!("x{}", "é".repeat(600)));
}

#[test]
fn json_spawn_failure_is_reported_as_json() {
    let out = Builder::new()
        .args(["--log-format", "json", "--", "no-such-command-pyinit-test"])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 127, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "");
    let recs = parse_json_lines(&out.stderr);
    assert_eq!(recs.len(), 1, "{}", out.stderr_str());
    let v = &recs[0].1;
    check_shape(v);
    assert_eq!(v["name"], "pyinit");
    assert_eq!(v["stream"], "stderr");
    assert!(
        v["line"]
            .as_str()
            .unwrap()
            .contains("no-such-command-pyinit-test"),
        "{v}"
    );
}

#[test]
fn json_pyinits_own_diagnostics_are_json() {
    let r = py(
        &["--log-format", "json", "-t", "500ms"],
        "out_lines.py",
        &["ignore-term"],
    )
    .spawn();
    r.wait_stderr(SECS(10), |l| l.contains("\"line\":\"READY\""));
    let child = child_ns_pid(&r);
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    let err = parse_json_lines(&out.stderr);
    for (len, v) in &err {
        check_shape(v);
        assert!(*len <= 16384);
    }
    let kill = err
        .iter()
        .map(|(_, v)| v)
        .find(|v| v["name"] == "pyinit" && v["line"].as_str().unwrap().contains("SIGKILL"))
        .unwrap_or_else(|| {
            panic!(
                "no SIGKILL report from pyinit on stderr:\n{}",
                out.stderr_str()
            )
        });
    assert_eq!(kill["stream"], "stderr");
    assert_eq!(kill["pid"], 1, "pyinit is PID 1 in its namespace");
    let line = kill["line"].as_str().unwrap();
    // Named by pid (the command line after it is read from /proc and may be
    // cut short: see /tmp/pyinit-bugs/output.md).
    assert!(
        line.contains(&format!(": {child} (")),
        "the report names the process {child}: {line}"
    );
    // The partial line cut by the kill is there, as the last record.
    let recs = parse_json_lines(&out.stdout);
    let lines: Vec<&str> = recs
        .iter()
        .map(|(_, v)| v["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["full", "cut by the deadline"]);
}

/// The pid of pyinit's only child, as seen inside the namespace.
fn child_ns_pid(r: &Running) -> i32 {
    let mut kids = Vec::new();
    assert!(
        eventually(SECS(5), || {
            kids = r.descendants();
            kids.len() == 1
        }),
        "pyinit's descendants: {kids:?}"
    );
    ns_pid(kids[0]).expect("NSpid")
}

// ------------------------------------------------------- Python line buffering

#[test]
fn python_print_arrives_line_by_line_while_it_runs() {
    // The test's environment (clean_env) has no PYTHONUNBUFFERED: pyinit adds it.
    let r = py(&[], "out_print_loop.py", &[]).spawn();
    let started = Instant::now();
    // The script runs until TERM (or 30 s); the first line must come long before.
    r.wait_stdout(SECS(5), |l| l == "line 0");
    let first_after = started.elapsed();
    r.wait_stderr(SECS(5), |l| l == "READY");
    r.signal(libc::SIGUSR1);
    r.wait_stdout(SECS(5), |l| l == "MARK");
    assert_eq!(r.stdout_now(), "line 0\nline 1\nline 2\nMARK\n");
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "line 0\nline 1\nline 2\nMARK\n");
    assert!(first_after < SECS(5));
}

#[test]
fn python_print_is_block_buffered_with_no_python_env() {
    let r = py(&["--no-python-env"], "out_print_loop.py", &[]).spawn();
    r.wait_stderr(SECS(10), |l| l == "READY");
    // MARK bypasses Python's buffer: had the prints reached the pipe, they
    // would be ahead of it.
    r.signal(libc::SIGUSR1);
    r.wait_stdout(SECS(5), |l| l == "MARK");
    assert_eq!(r.stdout_now(), "MARK\n");
    r.signal(libc::SIGTERM);
    let out = r.wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    // Flushed at exit, after MARK.
    assert_eq!(out.stdout_str(), "MARK\nline 0\nline 1\nline 2\n");
}

// ------------------------------------------------------------ stalled reader

/// Waits until the whole chain is stalled: pyinit's stdout full (the pipe
/// nobody reads holds all it can, with pyinit waiting to write more: either
/// its copying task on the event loop, or its writer thread blocked in
/// `pipe_write`), and the child blocked on its own pipe to pyinit. Returns
/// the child's (host) pid.
fn wait_stalled(r: &Running, stdout_read: &std::os::fd::OwnedFd) -> i32 {
    r.wait_stderr(SECS(10), |l| l == "READY");
    let child = {
        let mut kids = Vec::new();
        assert!(eventually(SECS(5), || {
            kids = r.descendants();
            kids.len() == 1
        }));
        kids[0]
    };
    let pyinit = r.pyinit_pid();
    let wchan = |path: String| std::fs::read_to_string(path).unwrap_or_default();
    // The writer thread for pyinit's fd 1 is named pyinit-out1.
    let writer_blocked = || {
        std::fs::read_dir(format!("/proc/{pyinit}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                let dir = t.path();
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                comm.trim() == "pyinit-out1"
                    && wchan(dir.join("wchan").display().to_string()).contains("pipe_write")
            })
    };
    // SAFETY: F_GETPIPE_SZ only reads the pipe's size.
    let capacity = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(stdout_read),
            libc::F_GETPIPE_SZ,
        )
    }
    .max(4096) as usize;
    // Full: most of the pipe holds unread bytes and pyinit adds no more (a
    // write needs a free page slot, and partly filled pages leave bytes free).
    let last = std::cell::Cell::new(0usize);
    let stdout_full = || {
        let now = pipe_unread(stdout_read);
        let still = now == last.replace(now);
        std::thread::sleep(Duration::from_millis(100));
        still && now > capacity / 2
    };
    assert!(
        eventually(SECS(10), || writer_blocked() || stdout_full()),
        "pyinit's stdout never filled up; {} of {capacity} bytes unread",
        pipe_unread(stdout_read)
    );
    assert!(pipe_unread(stdout_read) >= 16 * 1024);
    assert!(
        eventually(SECS(10), || wchan(format!("/proc/{child}/wchan"))
            .contains("pipe_write")),
        "child not blocked on its pipe: wchan={}",
        wchan(format!("/proc/{child}/wchan"))
    );
    child
}

#[test]
fn stalled_reader_does_not_stop_term_forwarding() {
    let grace = SECS(2);
    let (r, stdout_read) = py(&["-t", "2s"], "out_flood.py", &["prompt"]).spawn_stalled_stdout();
    let child = wait_stalled(&r, &stdout_read);
    // An ordinary signal is forwarded too while stdout is stalled.
    r.signal(libc::SIGUSR1);
    r.wait_stderr(SECS(5), |l| l == "GOT USR1");
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    // Forwarded: the child dies of it at once, though pyinit cannot write.
    assert!(
        eventually(SECS(1), || proc_state(child).is_none()),
        "child still {:?} 1 s after TERM",
        proc_state(child)
    );
    let child_gone = t0.elapsed();
    let out = r.wait(grace + SECS(3));
    let exited = t0.elapsed();
    assert_eq!(out.code, 128 + libc::SIGTERM, "{}", out.stderr_str());
    assert!(
        exited < grace + SECS(1),
        "pyinit took {exited:?} after TERM (grace {grace:?})"
    );
    eprintln!("child gone {child_gone:?}, pyinit exited {exited:?} after TERM");
    drop(stdout_read);
}

#[test]
fn stalled_reader_does_not_stop_the_grace_kill() {
    let (r, stdout_read) = py(&["-t", "1s"], "out_flood.py", &["ignore"]).spawn_stalled_stdout();
    let child = wait_stalled(&r, &stdout_read);
    let child_ns = ns_pid(child).unwrap();
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    assert!(
        eventually(SECS(3), || proc_state(child).is_none()),
        "child still {:?} 3 s after TERM",
        proc_state(child)
    );
    let killed = t0.elapsed();
    assert!(
        killed >= Duration::from_millis(900) && killed < Duration::from_millis(1600),
        "child killed {killed:?} after TERM with -t 1s"
    );
    let out = r.wait(SECS(5));
    let exited = t0.elapsed();
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    assert!(exited < SECS(3), "pyinit exited {exited:?} after TERM");
    let err = out.stderr_str();
    assert!(
        err.lines()
            .any(|l| l.contains("SIGKILL") && l.contains(&format!(": {child_ns} ("))),
        "no SIGKILL report naming the child {child_ns}:\n{err}"
    );
    eprintln!("child killed {killed:?}, pyinit exited {exited:?} after TERM");
    drop(stdout_read);
}

#[test]
fn closed_reader_never_blocks_the_child_and_sigpipe_stays_with_pyinit() {
    // The reader of pyinit's stdout goes away: pyinit gets EPIPE (and a
    // SIGPIPE of its own, never forwarded), discards the output, and the
    // child writes its 10 MB without blocking.
    let (r, stdout_read) = py(&[], "out_flood.py", &["count"]).spawn_stalled_stdout();
    drop(stdout_read);
    let out = r.wait(SECS(30));
    let err = out.stderr_str();
    assert_eq!(out.code, 0, "{err}");
    assert!(err.lines().any(|l| l == "DONE"), "{err}");
    assert!(
        !err.contains("GOT SIGPIPE"),
        "SIGPIPE was forwarded:\n{err}"
    );
    eprintln!("10 MB into a closed reader took {:?}", out.elapsed);
}

// ---------------------------------------------------------------- no capture

fn fd_links(stdout: &str) -> [String; 4] {
    let line = stdout.lines().next().unwrap_or_else(|| panic!("no output"));
    let get = |k: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {line}"))
            .to_string()
    };
    [get("fd1="), get("init1="), get("fd2="), get("init2=")]
}

#[test]
fn no_capture_gives_the_child_pyinits_own_stdout_and_stderr() {
    let out = py(&["--no-capture"], "out_fds.py", &[])
        .spawn()
        .wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let [fd1, init1, fd2, init2] = fd_links(&out.stdout_str());
    assert!(fd1.starts_with("pipe:["), "{fd1}");
    assert_eq!(fd1, init1, "child's stdout is not pyinit's");
    assert_eq!(fd2, init2, "child's stderr is not pyinit's");
    assert_ne!(fd1, fd2);
}

#[test]
fn capture_gives_the_child_pipes_of_its_own() {
    // The control for the test above: with capture, the links differ.
    let out = py(&[], "out_fds.py", &[]).spawn().wait(SECS(10));
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let [fd1, init1, fd2, init2] = fd_links(&out.stdout_str());
    assert!(fd1.starts_with("pipe:[") && init1.starts_with("pipe:["));
    assert_ne!(fd1, init1);
    assert_ne!(fd2, init2);
}
