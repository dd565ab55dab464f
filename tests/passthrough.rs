//! Byte-exact pass-through: the command's arguments and the environment
//! reach the child unchanged, whatever bytes they hold (non-UTF-8, empty,
//! 100 KB, quotes, newlines). The child reads `/proc/self/cmdline` and
//! `/proc/self/environ` as bytes and writes them back hex-encoded.
mod util;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;
use std::time::Duration;
use util::*;

const T: Duration = Duration::from_secs(20);

const SCRIPT: &str = "import sys\n\
for what in ('cmdline', 'environ'):\n    \
    with open('/proc/self/' + what, 'rb') as f:\n        \
        sys.stdout.write(what + ' ' + f.read().hex() + '\\n')\n\
sys.stdout.flush()\n";

/// The interpreter itself, not a shim (pyenv's would change the environment).
fn python() -> OsString {
    let out = Command::new("python3")
        .args(["-c", "import sys; sys.stdout.write(sys.executable)"])
        .output()
        .expect("python3");
    assert!(out.status.success());
    OsString::from_vec(out.stdout)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// NUL-terminated items of a /proc file.
fn items(b: &[u8]) -> Vec<Vec<u8>> {
    let b = b.strip_suffix(b"\0").unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

fn tricky_args() -> Vec<OsString> {
    vec![
        OsString::from_vec(b"\xff\xfe not utf-8 \x80".to_vec()),
        OsString::new(),
        OsString::from("with spaces  and\ttabs"),
        OsString::from("'single' \"double\" `back` $HOME \\"),
        OsString::from("line1\nline2\r\n"),
        OsString::from("x".repeat(100 * 1024)),
        OsString::from("--grace"),
        OsString::from("-t"),
        OsString::from("--"),
        OsString::from("é😀"),
        OsString::from_vec(b"\xc3".to_vec()),
        OsString::new(),
    ]
}

fn tricky_env() -> Vec<(OsString, OsString)> {
    vec![
        (
            OsString::from("PT_BYTES"),
            OsString::from_vec(b"\xff\x80v\xfe".to_vec()),
        ),
        (OsString::from("PT_EMPTY"), OsString::new()),
        (
            OsString::from("PT_SPACES"),
            OsString::from(" a b \n c = d "),
        ),
        (
            OsString::from_vec(b"PT_\xe9KEY".to_vec()),
            OsString::from("non-utf-8 key"),
        ),
        (OsString::from("PT_BIG"), OsString::from("y".repeat(20_000))),
    ]
}

fn check_passthrough(pid1: bool) {
    let python = python();
    let args = tricky_args();
    let env = tricky_env();
    let mut b = Builder::new()
        .pid1(pid1)
        .args(["--no-python-env", "--"])
        .arg(&python)
        .args(["-c", SCRIPT])
        .args(&args);
    for (k, v) in &env {
        b = b.env(k, v);
    }
    let out = b.spawn().wait(T);
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr_str());

    let text = out.stdout_str();
    let field = |name: &str| -> Vec<u8> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {name} line in {} bytes of stdout", text.len()));
        unhex(line)
    };

    let mut want_argv: Vec<Vec<u8>> = vec![
        python.as_bytes().to_vec(),
        b"-c".to_vec(),
        SCRIPT.as_bytes().to_vec(),
    ];
    want_argv.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    let got_argv = items(&field("cmdline"));
    assert_eq!(got_argv.len(), want_argv.len(), "argument count");
    for (i, (g, w)) in got_argv.iter().zip(&want_argv).enumerate() {
        assert!(
            g == w,
            "argument {i} differs: got {:?}, want {:?}",
            String::from_utf8_lossy(&g[..g.len().min(80)]),
            String::from_utf8_lossy(&w[..w.len().min(80)])
        );
    }

    // The environment: the harness's clean one plus ours, nothing else
    // (--no-python-env), each value byte for byte; pyinit's own PYINIT_*
    // (the harness's PYINIT_SOCKET) never reach the child.
    let mut want_env: Vec<(Vec<u8>, Vec<u8>)> = clean_env()
        .into_iter()
        .filter(|(k, _)| !k.as_bytes().starts_with(b"PYINIT_"))
        .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
        .chain(env.iter().cloned())
        .map(|(k, v)| (k.into_vec(), v.into_vec()))
        .collect();
    want_env.sort();
    let mut got_env: Vec<(Vec<u8>, Vec<u8>)> = items(&field("environ"))
        .into_iter()
        .map(|kv| {
            let eq = kv.iter().position(|&c| c == b'=').expect("KEY=VALUE");
            (kv[..eq].to_vec(), kv[eq + 1..].to_vec())
        })
        .collect();
    got_env.sort();
    assert_eq!(got_env, want_env);
}

#[test]
fn arguments_and_environment_pass_through_byte_for_byte_as_pid1() {
    check_passthrough(true);
}

#[test]
fn arguments_and_environment_pass_through_byte_for_byte_as_subreaper() {
    check_passthrough(false);
}
