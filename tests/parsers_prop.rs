//! Property tests ("fuzz smoke run") of pyinit's input parsers: a fixed,
//! modest number of random cases per property, so the whole file runs in a
//! few seconds with every `cargo test`. `PROPTEST_CASES=100000 cargo test
//! --release --test parsers_prop` makes it a longer fuzz run.
//!
//! Properties: no parser panics on arbitrary (or grammar-shaped, mutated)
//! input, every error is one line, and the round trips and invariants of
//! each parser hold. `corpus_*` runs the seed inputs of `tests/corpus/`, and
//! `regression_*` pins what these tests found.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

use pyinit::config::process::{ReadyProbe, RestartPolicy};
use pyinit::config::{duration, envfile, file, procfile};
use pyinit::output::format::{json_records, Formatter, LogFormat, JSON_RECORD_MAX};
use pyinit::output::lines::{LineSplitter, Piece};
use pyinit::output::Stream;
use pyinit::signals::{names, rewrite};

/// 256 cases per property unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn one_line(what: &str, input: &dyn std::fmt::Debug, err: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !err.contains('\n'),
        "{what}: error for {input:?} is not one line: {err:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// `base` with up to five random edits (insert, delete, replace) whose new
/// text comes from `alphabet`: grammar-shaped input just off the grammar.
fn mutated(
    base: impl Strategy<Value = String> + 'static,
    alphabet: &'static [&'static str],
) -> BoxedStrategy<String> {
    (
        base,
        prop::collection::vec((any::<Index>(), 0u8..3, select(alphabet)), 0..6),
    )
        .prop_map(|(s, edits)| {
            let mut units: Vec<String> = s.chars().map(String::from).collect();
            for (idx, op, tok) in edits {
                let n = units.len();
                match op {
                    0 => units.insert(idx.index(n + 1), tok.to_string()),
                    1 if n > 0 => {
                        units.remove(idx.index(n));
                    }
                    _ if n > 0 => units[idx.index(n)] = tok.to_string(),
                    _ => units.push(tok.to_string()),
                }
            }
            units.concat()
        })
        .boxed()
}

/// Concatenations of grammar tokens.
fn tokens(alphabet: &'static [&'static str], max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(select(alphabet), 0..max)
        .prop_map(|v| v.concat())
        .boxed()
}

/// Arbitrary text, token soup, and mutated valid text.
fn text_for(
    alphabet: &'static [&'static str],
    valid: impl Strategy<Value = String> + 'static,
) -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        tokens(alphabet, 24),
        mutated(valid, alphabet),
    ]
    .boxed()
}

const DURATION_ALPHABET: &[&str] = &[
    "0",
    "1",
    "5",
    "9",
    "10",
    "99999999999999999999",
    ".",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "w",
    "us",
    "ns",
    "min",
    "sec",
    "hours",
    "y",
    "M",
    " ",
    "\t",
    "\n",
    "-",
    "+",
    "e",
    "E",
    "inf",
    "NaN",
    "é",
    "1e9",
    "0x",
];

const SIGNAL_ALPHABET: &[&str] = &[
    "SIG",
    "sig",
    "RTMIN",
    "RTMAX",
    "rtmin",
    "+",
    "-",
    "0",
    "1",
    "3",
    "15",
    "64",
    "65",
    "2147483647",
    "2147483648",
    "-2147483648",
    "9999999999",
    "TERM",
    "INT",
    "HUP",
    "CLD",
    "IOT",
    " ",
    "\n",
    ":",
    "é",
    "ſ",
];

/// Every number 1..=SIGRTMAX with a name, as names::name gives it.
fn named_signals() -> Vec<(i32, String)> {
    (1..=64)
        .map(|s| (s, names::name(s)))
        .filter(|(_, n)| !n.starts_with("signal "))
        .collect()
}

/// A spelling of signal `sig` that `names::parse` must accept: the number,
/// the name in any case, with or without `SIG`, RTMAX-N for real-time ones,
/// with blanks around.
fn signal_spelling() -> impl Strategy<Value = (String, i32)> {
    let sigs = named_signals();
    (
        select(sigs),
        0u8..5,
        any::<bool>(),
        select(vec!["", " ", "\t", "  "]),
    )
        .prop_map(|((sig, name), form, lower, pad)| {
            let rtmax = libc::SIGRTMAX();
            let bare = name.strip_prefix("SIG").unwrap().to_string();
            let mut s = match form {
                0 => sig.to_string(),
                1 => name.clone(),
                2 => bare,
                3 if sig >= libc::SIGRTMIN() => format!("RTMAX-{}", rtmax - sig),
                _ => format!("sig{bare}"),
            };
            if lower {
                s = s.to_ascii_lowercase();
            }
            (format!("{pad}{s}{pad}"), sig)
        })
}

const PROCFILE_ALPHABET: &[&str] = &[
    "web",
    ":",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "#",
    "python app.py",
    "a.b",
    "-",
    "_",
    "é",
    "$",
    "'",
    "\"",
    "\\",
    ";",
    "&&",
    "|",
    ">",
    "(",
    ")",
    "exec",
    "=",
    "",
];

const NAME_RE: &str = "[A-Za-z0-9_.-]{1,10}";

/// One Procfile line: what it looks like and what it must parse to.
#[derive(Debug, Clone)]
enum PLine {
    Blank(String),
    Comment(String),
    Entry {
        name: String,
        command: String,
        text: String,
    },
}

fn procfile_line() -> impl Strategy<Value = PLine> {
    let ws = || select(vec!["", " ", "\t", " \t "]);
    prop_oneof![
        1 => ws().prop_map(|w| PLine::Blank(w.to_string())),
        1 => (ws(), "[^\n]{0,30}").prop_map(|(w, c)| PLine::Comment(format!("{w}#{c}"))),
        4 => (NAME_RE, "[^\n]{1,40}", ws(), ws(), ws(), ws())
            .prop_filter("command must not be blank", |(_, c, ..)| !c.trim().is_empty())
            .prop_map(|(name, command, a, b, c, d)| PLine::Entry {
                text: format!("{a}{name}{b}:{c}{command}{d}"),
                command: command.trim().to_string(),
                name,
            }),
    ]
}

/// A valid Procfile: lines (names unique), line endings, final newline.
fn procfile() -> impl Strategy<Value = (String, Vec<PLine>)> {
    (
        prop::collection::vec(procfile_line(), 0..12),
        NAME_RE,
        "[a-z][a-z ]{0,20}",
        any::<Index>(),
        prop::collection::vec(any::<bool>(), 14),
        any::<bool>(),
    )
        .prop_map(|(mut lines, name, cmd, at, crlf, final_nl)| {
            // At least one entry.
            let text = format!("{name}: {cmd}");
            let n = lines.len();
            lines.insert(
                at.index(n + 1),
                PLine::Entry {
                    name,
                    command: cmd.trim().to_string(),
                    text,
                },
            );
            // Unique names: a repeated one becomes a comment.
            let mut seen = Vec::new();
            for l in lines.iter_mut() {
                if let PLine::Entry { name, .. } = l {
                    if seen.contains(name) {
                        *l = PLine::Comment(format!("# was {name}"));
                    } else {
                        seen.push(name.clone());
                    }
                }
            }
            let mut out = String::new();
            for (i, l) in lines.iter().enumerate() {
                out.push_str(match l {
                    PLine::Blank(t) | PLine::Comment(t) | PLine::Entry { text: t, .. } => t,
                });
                if i + 1 < lines.len() || final_nl {
                    out.push_str(if crlf[i % crlf.len()] { "\r\n" } else { "\n" });
                }
            }
            (out, lines)
        })
}

/// A TOML basic string holding `s` exactly.
fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[derive(Debug, Clone)]
enum GenCommand {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone)]
struct GenProcess {
    name: String,
    command: GenCommand,
    grace_ms: Option<u64>,
    restart: Option<&'static str>,
    stop_signal: Option<(String, i32)>,
    env: Vec<(String, String)>,
    port: Option<u16>,
}

fn gen_process() -> impl Strategy<Value = GenProcess> {
    let command = prop_oneof![
        "[^\u{0}]{0,30}"
            .prop_filter("not blank", |s| !s.trim().is_empty())
            .prop_map(GenCommand::Shell),
        (
            "[^\u{0}]{1,20}",
            prop::collection::vec(any::<String>(), 0..4)
        )
            .prop_map(|(first, mut rest)| {
                rest.insert(0, first);
                GenCommand::Argv(rest)
            }),
    ];
    (
        NAME_RE,
        command,
        prop::option::of(0u64..10_000_000),
        prop::option::of(select(vec!["never", "no", "on-failure", "always"])),
        prop::option::of(signal_spelling()),
        prop::collection::vec((any::<String>(), any::<String>()), 0..3),
        prop::option::of(1u16..),
    )
        .prop_map(
            |(name, command, grace_ms, restart, stop_signal, env, port)| {
                let mut seen = Vec::new();
                let env = env
                    .into_iter()
                    .filter(|(k, _)| {
                        let new = !seen.contains(k);
                        seen.push(k.clone());
                        new
                    })
                    .collect();
                GenProcess {
                    name,
                    command,
                    grace_ms,
                    restart,
                    stop_signal,
                    env,
                    port,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct GenConfig {
    grace_s: Option<u64>,
    log_format: Option<&'static str>,
    expect_exit: Vec<u8>,
    processes: Vec<GenProcess>,
}

fn gen_config() -> impl Strategy<Value = GenConfig> {
    (
        prop::option::of(0u64..100_000),
        prop::option::of(select(vec!["raw", "prefix", "json", "JSON"])),
        prop::collection::vec(any::<u8>(), 0..4),
        prop::collection::vec(gen_process(), 1..6),
    )
        .prop_map(|(grace_s, log_format, expect_exit, mut processes)| {
            let mut seen: Vec<String> = Vec::new();
            processes.retain(|p| {
                let new = !seen.contains(&p.name);
                seen.push(p.name.clone());
                new
            });
            GenConfig {
                grace_s,
                log_format,
                expect_exit,
                processes,
            }
        })
}

fn render_config(c: &GenConfig) -> String {
    let mut s = String::from("# generated\n");
    if let Some(g) = c.grace_s {
        s.push_str(&format!("grace = {g}\n"));
    }
    if let Some(f) = c.log_format {
        s.push_str(&format!("log_format = {}\n", toml_str(f)));
    }
    if !c.expect_exit.is_empty() {
        let codes: Vec<String> = c.expect_exit.iter().map(u8::to_string).collect();
        s.push_str(&format!("expect_exit = [{}]\n", codes.join(", ")));
    }
    for p in &c.processes {
        s.push_str(&format!("\n[process.{}]\n", toml_str(&p.name)));
        match &p.command {
            GenCommand::Shell(cmd) => s.push_str(&format!("command = {}\n", toml_str(cmd))),
            GenCommand::Argv(argv) => {
                let items: Vec<String> = argv.iter().map(|a| toml_str(a)).collect();
                s.push_str(&format!("command = [{}]\n", items.join(", ")));
            }
        }
        if let Some(ms) = p.grace_ms {
            s.push_str(&format!("grace = \"{ms}ms\"\n"));
        }
        if let Some(r) = p.restart {
            s.push_str(&format!("restart = \"{r}\"\n"));
        }
        if let Some((spelling, _)) = &p.stop_signal {
            s.push_str(&format!("stop_signal = {}\n", toml_str(spelling)));
        }
        if !p.env.is_empty() {
            let items: Vec<String> = p
                .env
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
                .collect();
            s.push_str(&format!("env = {{ {} }}\n", items.join(", ")));
        }
        if let Some(port) = p.port {
            s.push_str(&format!("ready = {{ port = {port} }}\n"));
        }
    }
    s
}

const TOML_ALPHABET: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "\"\"\"",
    ",",
    ".",
    "\n",
    "\r\n",
    " ",
    "#",
    "\\",
    "\\u",
    "\\n",
    "process",
    "command",
    "grace",
    "restart",
    "ready",
    "port",
    "line",
    "env",
    "depends_on",
    "stop_signal",
    "max_line",
    "expect_exit",
    "1",
    "-1",
    "1e999",
    "true",
    "1979-05-27T07:32:00Z",
    "\"a\nb\"",
    "é",
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
];

const ENV_ALPHABET: &[&str] = &[
    "A", "_", "1", "=", "export ", "'", "\"", "\\", "\\n", "#", " #", " ", "\t", "\r", "\n",
    "\r\n", "é", "\u{0}",
];

const CLI_TOKENS: &[&str] = &[
    "--",
    "check",
    "--grace",
    "-t",
    "--grace=1s",
    "-t5",
    "--stop-delay",
    "--rewrite",
    "-r",
    "TERM:INT",
    "--rewrite=HUP:0",
    "--single-child",
    "-c",
    "-g",
    "--group",
    "-cg",
    "--signal-scope",
    "--signal-scope=main",
    "auto",
    "status",
    "ctl",
    "-cq",
    "-cvt",
    "-e",
    "--expect-exit",
    "143",
    "--log-format",
    "json",
    "--no-capture",
    "--no-capture=1",
    "--env-file",
    "--max-line",
    "64KiB",
    "--no-python-env",
    "--procfile",
    "--config",
    "--check-config",
    "-v",
    "-q",
    "--help",
    "-h",
    "-V",
    "--version",
    "--signal",
    "--after",
    "--ready-line",
    "(",
    "--ready-port",
    "--ready-notify",
    "--ready-timeout",
    "--strict",
    "--json",
    "python3",
    "",
    "-",
    "-é",
    "--é",
    "--=",
    "=",
    "1\n2",
    "a\nb:c",
];

const CLI_VALUE_OPTS: &[&str] = &[
    "-t",
    "--signal-scope",
    "--grace",
    "--stop-delay",
    "-r",
    "-e",
    "--log-format",
    "--max-line",
    "--signal",
    "--after",
    "--ready-line",
    "--ready-port",
    "--ready-timeout",
];

const CLI_VALUE_ALPHABET: &[&str] = &[
    "1", "s", "ms", "TERM", ":", "INT", "0", ",", "json", "KiB", "(", "\\", "\n", "\n", " ", "é",
    "-", "256",
];

/// One argument, or an option that takes a value and its value.
fn cli_args() -> impl Strategy<Value = Vec<OsString>> {
    prop::collection::vec(
        prop_oneof![
            3 => cli_arg().prop_map(|a| vec![a]),
            1 => (select(CLI_VALUE_OPTS), tokens(CLI_VALUE_ALPHABET, 5))
                .prop_map(|(o, v)| vec![OsString::from(o), OsString::from(v)]),
        ],
        0..6,
    )
    .prop_map(|groups| groups.concat())
}

fn cli_arg() -> impl Strategy<Value = OsString> {
    prop_oneof![
        3 => select(CLI_TOKENS).prop_map(OsString::from),
        1 => prop::collection::vec(any::<u8>(), 0..10).prop_map(OsString::from_vec),
        1 => (select(vec!["--", "-", "--grace=", "-t"]), prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(p, rest)| {
                let mut b = p.as_bytes().to_vec();
                b.extend(rest);
                OsString::from_vec(b)
            }),
        1 => any::<String>().prop_map(OsString::from),
    ]
}

// ---------------------------------------------------------------------------
// LineSplitter helpers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Line(Vec<u8>),
    Part(Vec<u8>),
    Tail(Vec<u8>),
}

impl Owned {
    fn from(p: Piece<'_>) -> Owned {
        match p {
            Piece::Line(b) => Owned::Line(b.to_vec()),
            Piece::Part(b) => Owned::Part(b.to_vec()),
            Piece::Tail(b) => Owned::Tail(b.to_vec()),
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            Owned::Line(b) | Owned::Part(b) | Owned::Tail(b) => b,
        }
    }
}

/// Bytes biased towards newlines and (broken) UTF-8 sequences.
fn line_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        prop::collection::vec(
            select(vec![
                b'a', b'b', b'\n', b'\n', b'\r', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98,
                0x80, 0xFF
            ]),
            0..400
        ),
        prop::collection::vec(
            select(vec!["a", "bc", "\n", "\r\n", "é", "€", "😀", "𝄞x", "\n\n"]),
            0..200
        )
        .prop_map(|v| v.concat().into_bytes()),
        any::<String>().prop_map(String::into_bytes),
    ]
}

/// Cuts `input` into chunks of the given sizes (zero-length chunks too);
/// the rest is the last chunk.
fn chunks<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    for &n in sizes {
        let n = n.min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out.push(rest);
    out
}

/// Runs the generic path; returns the pieces and the pending length after
/// every push.
fn split(max: usize, chunks: &[&[u8]]) -> (Vec<Owned>, Vec<usize>) {
    let mut s = LineSplitter::new(max);
    let mut pieces = Vec::new();
    let mut pending = Vec::new();
    for c in chunks {
        s.push(c, &mut |p| pieces.push(Owned::from(p)));
        pending.push(s.pending_len());
    }
    s.finish(&mut |p| pieces.push(Owned::from(p)));
    (pieces, pending)
}

fn join(pieces: &[Owned]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(p.bytes());
        if let Owned::Line(_) = p {
            out.push(b'\n');
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    // ----- durations -----

    #[test]
    fn duration_parse_never_panics(
        text in text_for(DURATION_ALPHABET, "[0-9]{1,4}(ms|s|m|h)( [0-9]{1,3}s)?"),
    ) {
        let _ = duration::parse(&text);
        let _ = duration::parse_bytes(&text);
    }

    #[test]
    fn duration_errors_are_one_line(
        text in text_for(DURATION_ALPHABET, "[0-9]{1,4}(ms|s|m|h)( [0-9]{1,3}s)?"),
    ) {
        if let Err(e) = duration::parse(&text) {
            one_line("duration::parse", &text, &e)?;
        }
        if let Err(e) = duration::parse_bytes(&text) {
            one_line("duration::parse_bytes", &text, &e)?;
        }
    }

    #[test]
    fn durations_round_trip(
        n in 0u64..100_000_000,
        m in 0u64..1_000_000,
        small in 0u64..60,
        pad in select(vec!["", " ", "\t", " \n"]),
    ) {
        let cases = [
            (format!("{n}ms"), Duration::from_millis(n)),
            (format!("{n}s"), Duration::from_secs(n)),
            (format!("{m}m{small}s"), Duration::from_secs(m * 60 + small)),
            (format!("{m}m {small}s"), Duration::from_secs(m * 60 + small)),
            (format!("{n}"), Duration::from_secs(n)),
            (format!("{small}.5"), Duration::from_millis(small * 1000 + 500)),
        ];
        for (text, want) in cases {
            let padded = format!("{pad}{text}{pad}");
            prop_assert_eq!(duration::parse(&padded), Ok(want), "{:?}", padded);
        }
    }

    #[test]
    fn byte_counts_round_trip(n in 1usize..=1 << 20, unit in 0usize..3) {
        let (suffix, mult) = [("", 1), ("KiB", 1024), ("k", 1024)][unit];
        let want = n * mult;
        let got = duration::parse_bytes(&format!("{n}{suffix}"));
        if want <= 1 << 30 {
            prop_assert_eq!(got, Ok(want));
        } else {
            prop_assert!(got.is_err());
        }
    }

    // ----- signals -----

    #[test]
    fn signal_parse_never_panics(
        text in prop_oneof![
            text_for(SIGNAL_ALPHABET, "(SIG)?(TERM|HUP|RTMIN\\+[0-9]{1,2}|RTMAX-[0-9]{1,2}|[0-9]{1,2})"),
            "(SIG)?RTM(IN|AX)[+-]{0,2}[0-9]{1,11}",
            (
                select(vec!["RTMIN+", "RTMAX-", "RTMIN", "RTMAX", "SIGRTMIN+", "rtmax-"]),
                prop_oneof![any::<i32>(), (i32::MAX - 100)..=i32::MAX, i32::MIN..i32::MIN + 100],
            )
                .prop_map(|(p, n)| format!("{p}{n}")),
        ],
    ) {
        let _ = names::parse(&text);
    }

    #[test]
    fn signal_errors_are_one_line(
        text in text_for(SIGNAL_ALPHABET, "(SIG)?(TERM|HUP|RTMIN\\+[0-9]{1,2}|[0-9]{1,2})"),
    ) {
        if let Err(e) = names::parse(&text) {
            one_line("names::parse", &text, &e)?;
        }
    }

    #[test]
    fn signal_spellings_parse_to_their_number((text, sig) in signal_spelling()) {
        prop_assert_eq!(names::parse(&text), Ok(sig), "{:?}", text);
    }

    #[test]
    fn rt_offsets_beyond_the_range_are_rejected(k in 1i32..1000, sig in select(vec!["", "SIG", "sig"])) {
        // RTMIN+k and RTMAX-k count inwards; RTMAX+k and RTMIN-k are outside.
        let above = format!("{sig}RTMAX+{k}");
        let below = format!("{sig}RTMIN-{k}");
        prop_assert!(names::parse(&above).is_err(), "{:?} -> {:?}", above, names::parse(&above));
        prop_assert!(names::parse(&below).is_err(), "{:?} -> {:?}", below, names::parse(&below));
        let n = libc::SIGRTMAX() - libc::SIGRTMIN();
        if k <= n {
            prop_assert_eq!(names::parse(&format!("{sig}RTMIN+{k}")), Ok(libc::SIGRTMIN() + k));
            prop_assert_eq!(names::parse(&format!("{sig}RTMAX-{k}")), Ok(libc::SIGRTMAX() - k));
        }
    }

    #[test]
    fn rewrite_rules_from_valid_names_parse(
        (from_text, from) in signal_spelling(),
        to in prop_oneof![
            signal_spelling(),
            select(vec!["0", " 0", "0 "]).prop_map(|z| (z.to_string(), 0)),
        ],
    ) {
        let (to_text, to) = to;
        let rule = format!("{from_text}:{to_text}");
        prop_assert_eq!(
            rewrite::parse_rule(&rule),
            Ok(rewrite::Rule { from, to }),
            "{:?}", rule
        );
    }

    #[test]
    fn rewrite_parse_never_panics_and_errors_are_one_line(
        text in text_for(SIGNAL_ALPHABET, "(SIG)?(TERM|HUP|[0-9]{1,2}):(SIG)?(INT|0|[0-9]{1,2})"),
    ) {
        if let Err(e) = rewrite::parse_rule(&text) {
            one_line("rewrite::parse_rule", &text, &e)?;
        }
    }

    // ----- Procfile -----

    #[test]
    fn procfile_never_panics_and_errors_are_one_line_with_a_place(
        text in text_for(PROCFILE_ALPHABET, "([a-z]{1,4}: [a-z ]{1,8}\n){1,3}"),
    ) {
        match procfile::parse(&text) {
            Ok(entries) => {
                prop_assert!(!entries.is_empty());
                let mut last = 0;
                for e in &entries {
                    prop_assert!(procfile::valid_name(&e.name), "{:?}", e);
                    prop_assert!(!e.command.is_empty() && e.command == e.command.trim());
                    prop_assert!(e.line > last);
                    last = e.line;
                }
            }
            Err(e) => {
                one_line("procfile::parse", &text, &e)?;
                prop_assert!(
                    e == "no processes defined" || e.starts_with("line "),
                    "no line number: {:?}", e
                );
            }
        }
        let _ = procfile::is_simple_command(&text);
        let argv = procfile::shell_argv(&text);
        prop_assert_eq!(argv.len(), 3);
    }

    #[test]
    fn valid_procfiles_parse_to_their_entries_in_order((text, lines) in procfile()) {
        let got = procfile::parse(&text);
        prop_assert!(got.is_ok(), "{:?} -> {:?}", text, got);
        let got = got.unwrap();
        let want: Vec<procfile::Entry> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match l {
                PLine::Entry { name, command, .. } => Some(procfile::Entry {
                    name: name.clone(),
                    command: command.clone(),
                    line: i + 1,
                }),
                _ => None,
            })
            .collect();
        prop_assert_eq!(got, want, "{:?}", text);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number(
        (text, lines) in procfile(),
        at in any::<Index>(),
        kind in 0u8..4,
        junk in "[a-z ]{0,8}",
        bad_char in select(vec![" x", "/", "é", "$", "!", "@", "\u{a0}", "+"]),
    ) {
        let names: Vec<&String> = lines
            .iter()
            .filter_map(|l| match l {
                PLine::Entry { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        let pos = at.index(lines.len() + 1);
        let earlier: Vec<&String> = lines[..pos]
            .iter()
            .filter_map(|l| match l {
                PLine::Entry { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        let bad = match kind {
            // No colon.
            0 => format!("word{junk}"),
            // Invalid name.
            1 => format!("n{bad_char}z{junk}: cmd"),
            // Empty command.
            2 => format!("{}:{}", names[0], junk.replace(|c: char| c != ' ', "")),
            // Duplicate of an earlier entry.
            _ => match earlier.first() {
                Some(n) => format!("{n}: again {junk}"),
                None => format!(": cmd{junk}"),
            },
        };
        let mut all: Vec<String> = text.lines().map(str::to_string).collect();
        // `lines()` drops only a last empty line.
        prop_assert!(all.len() + 1 >= lines.len());
        all.resize(lines.len(), String::new());
        all.insert(pos, bad.clone());
        let bad_text = all.join("\n");
        let err = procfile::parse(&bad_text);
        prop_assert!(err.is_err(), "{:?} parsed", bad_text);
        let err = err.unwrap_err();
        one_line("procfile::parse", &bad_text, &err)?;
        let want = format!("line {}:", pos + 1);
        prop_assert!(err.starts_with(&want), "{:?}: {:?} (bad line {:?})", bad_text, err, bad);
    }

    #[test]
    fn quoted_operators_keep_a_command_simple(
        words in prop::collection::vec("[a-z0-9/._-]{1,8}", 1..4),
        quoted in "[^'\n]{0,12}",
        op in select(vec![";", "&&", "|", ">", "<", "(", ")", "#", "&"]),
    ) {
        let cmd = format!("{} '{}'", words.join(" "), quoted);
        let simple = procfile::is_simple_command(&cmd);
        let keyword = [
            "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do",
            "done", "function", "select", "time", "exec", "cd", "export", "set", ".", "source",
            "eval", "trap", "ulimit", "umask",
        ]
        .contains(&words[0].as_str());
        prop_assert_eq!(simple, !keyword, "{:?}", cmd);
        let with_op = format!("{cmd} {op} x");
        prop_assert!(!procfile::is_simple_command(&with_op), "{:?}", with_op);
        let argv = procfile::shell_argv(&cmd);
        let want = if simple { format!("exec {cmd}") } else { cmd.clone() };
        prop_assert_eq!(&argv[2], &OsString::from(want));
    }

    // ----- env-file -----

    #[test]
    fn envfile_never_panics_and_errors_are_one_line(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            tokens(ENV_ALPHABET, 40).prop_map(String::into_bytes),
            mutated("([A-Z_]{1,4}=[a-z'\" #]{0,6}\n){1,4}", ENV_ALPHABET).prop_map(String::into_bytes),
        ],
    ) {
        match envfile::parse(&bytes) {
            Ok(vars) => {
                for (k, _) in vars {
                    let k = k.into_vec();
                    prop_assert!(!k.is_empty() && !k[0].is_ascii_digit());
                    prop_assert!(k.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_'));
                }
            }
            Err(e) => {
                one_line("envfile::parse", &bytes, &e)?;
                prop_assert!(e.starts_with("line "), "{:?}", e);
            }
        }
    }

    #[test]
    fn envfile_values_round_trip(
        vars in prop::collection::vec(
            (
                "[A-Za-z_][A-Za-z0-9_]{0,8}",
                prop::collection::vec(any::<u8>(), 0..20),
                "[A-Za-z0-9_./:-]{0,10}",
                0u8..3,
                any::<bool>(),
                select(vec!["", " ", "\t"]),
                select(vec!["\n", "\r\n", "\n# c\n", "\n\n"]),
            ),
            0..8,
        ),
    ) {
        let mut text = Vec::new();
        let mut want = Vec::new();
        for (key, raw, plain, quoting, export, ws, eol) in vars {
            let value: Vec<u8> = match quoting {
                0 => plain.into_bytes(),
                1 => raw.iter().copied().filter(|&b| b != b'\'' && b != b'\n').collect(),
                _ => raw.clone(),
            };
            if export {
                text.extend_from_slice(b"export ");
            }
            text.extend_from_slice(format!("{key}{ws}={ws}").as_bytes());
            match quoting {
                0 => text.extend_from_slice(&value),
                1 => {
                    text.push(b'\'');
                    text.extend_from_slice(&value);
                    text.push(b'\'');
                }
                _ => {
                    text.push(b'"');
                    for &b in &value {
                        match b {
                            b'"' => text.extend_from_slice(b"\\\""),
                            b'\\' => text.extend_from_slice(b"\\\\"),
                            b'\n' => text.extend_from_slice(b"\\n"),
                            b => text.push(b),
                        }
                    }
                    text.push(b'"');
                }
            }
            text.extend_from_slice(eol.as_bytes());
            want.push((OsString::from(key), OsString::from_vec(value)));
        }
        prop_assert_eq!(envfile::parse(&text), Ok(want), "{:?}", String::from_utf8_lossy(&text));
    }

    // ----- TOML config -----

    #[test]
    fn toml_load_never_panics_and_errors_are_one_line(
        text in text_for(
            TOML_ALPHABET,
            "\\[process\\.[a-z]{1,4}\\]\ncommand = \"[a-z ]{1,6}\"\n(grace = \"[0-9]s\"\n)?",
        ),
    ) {
        if let Err(e) = file::load(&text) {
            one_line("file::load", &text, &e)?;
        }
    }

    #[test]
    fn toml_mutated_valid_configs_never_panic_and_errors_are_one_line(
        text in mutated(gen_config().prop_map(|c| render_config(&c)), TOML_ALPHABET),
    ) {
        if let Err(e) = file::load(&text) {
            one_line("file::load", &text, &e)?;
        }
    }

    #[test]
    fn generated_configs_load_in_order(c in gen_config()) {
        let text = render_config(&c);
        let loaded = file::load(&text);
        prop_assert!(loaded.is_ok(), "{}\n-> {:?}", text, loaded.err());
        let (defaults, procs) = loaded.unwrap();
        prop_assert_eq!(defaults.grace, c.grace_s.map(Duration::from_secs));
        prop_assert_eq!(
            defaults.log_format,
            c.log_format.map(|f| f.parse::<LogFormat>().unwrap())
        );
        prop_assert_eq!(
            &defaults.expect_exit,
            &c.expect_exit.iter().map(|&b| i32::from(b)).collect::<Vec<_>>()
        );
        prop_assert_eq!(procs.len(), c.processes.len());
        for (got, want) in procs.iter().zip(&c.processes) {
            prop_assert_eq!(&got.name, &want.name);
            let argv = match &want.command {
                GenCommand::Shell(s) => procfile::shell_argv(s.trim()),
                GenCommand::Argv(a) => a.iter().map(OsString::from).collect(),
            };
            prop_assert_eq!(&got.argv, &argv);
            prop_assert_eq!(got.grace, want.grace_ms.map(Duration::from_millis));
            prop_assert_eq!(got.stop_signal, want.stop_signal.as_ref().map(|s| s.1));
            prop_assert_eq!(&got.env, &want.env);
            if let Some(r) = want.restart {
                prop_assert_eq!(got.restart.policy, r.parse::<RestartPolicy>().unwrap());
            }
            match (want.port, &got.ready) {
                (None, None) => {}
                (Some(p), Some(ReadyProbe::Port(q))) => prop_assert_eq!(p, *q),
                (w, g) => prop_assert!(false, "ready: want {:?}, got {:?}", w, g),
            }
        }
    }

    // ----- LineSplitter -----

    #[test]
    fn line_splitter_reproduces_input_and_bounds_pieces(
        input in line_input(),
        sizes in prop::collection::vec(0usize..60, 0..20),
        max in 1usize..100,
    ) {
        let parts = chunks(&input, &sizes);
        let (pieces, pending) = split(max, &parts);
        prop_assert_eq!(join(&pieces), input.clone());
        for p in &pieces {
            prop_assert!(p.bytes().len() <= max, "piece {:?} over max {}", p, max);
            if let Owned::Part(b) = p {
                prop_assert!(!b.is_empty(), "empty Part");
            }
        }
        // Only the last piece may be a Tail.
        for p in pieces.iter().rev().skip(1) {
            prop_assert!(!matches!(p, Owned::Tail(_)));
        }
        for n in pending {
            prop_assert!(n <= max, "holds {} bytes with max {}", n, max);
        }
    }

    #[test]
    fn line_splitter_cuts_only_characters_longer_than_max(
        text in prop::collection::vec(
            select(vec!["a", "\n", "é", "€", "😀", "bc", "\u{7ff}", "\u{10000}"]),
            0..150,
        ).prop_map(|v| v.concat()),
        sizes in prop::collection::vec(0usize..40, 0..20),
        max in 1usize..40,
    ) {
        let input = text.as_bytes();
        let (pieces, _) = split(max, &chunks(input, &sizes));
        let mut pos = 0;
        for p in &pieces {
            pos += p.bytes().len();
            if let Owned::Line(_) = p {
                pos += 1;
            }
            if pos < input.len() && !text.is_char_boundary(pos) {
                let start = (0..pos).rev().find(|&i| text.is_char_boundary(i)).unwrap();
                let len = text[start..].chars().next().unwrap().len_utf8();
                prop_assert!(
                    len > max,
                    "max {}: a {}-byte character at {} cut at {} ({:?})",
                    max, len, start, pos, pieces
                );
            }
            if max >= 4 {
                prop_assert!(std::str::from_utf8(p.bytes()).is_ok(), "{:?}", p);
            }
        }
    }

    #[test]
    fn push_raw_gives_the_bytes_of_the_generic_path(
        input in line_input(),
        sizes in prop::collection::vec(0usize..60, 0..20),
        max in 1usize..100,
    ) {
        let (mut generic, mut raw) = (LineSplitter::new(max), LineSplitter::new(max));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for c in chunks(&input, &sizes) {
            generic.push(c, &mut |p| {
                a.extend_from_slice(p.bytes());
                if let Piece::Line(_) = p {
                    a.push(b'\n');
                }
            });
            b.extend(raw.push_raw(c.to_vec()));
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(generic.pending_len(), raw.pending_len());
        }
        generic.finish(&mut |p| a.extend_from_slice(p.bytes()));
        raw.finish(&mut |p| b.extend_from_slice(p.bytes()));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a, input);
    }

    // ----- formats -----

    #[test]
    fn json_records_are_bounded_valid_and_lossless(
        text in prop_oneof![
            any::<String>(),
            (prop::collection::vec(
                select(vec!["x", "\u{1}", "\"", "\\", "é", "😀", "\n", "\u{7f}", "\u{2028}"]),
                1..12,
            ), 1usize..3000).prop_map(|(v, n)| v.concat().repeat(n)),
        ],
        name in prop_oneof!["[a-z0-9_.-]{1,20}", any::<String>()],
        pid in any::<i32>(),
        partial in any::<bool>(),
        stderr in any::<bool>(),
    ) {
        let stream = if stderr { "stderr" } else { "stdout" };
        let mut out = Vec::new();
        json_records(&name, pid, stream, &text, partial, SystemTime::now(), &mut out);
        prop_assert!(out.ends_with(b"\n"));
        let recs: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
        let mut joined = String::new();
        for (i, r) in recs.iter().enumerate() {
            prop_assert!(r.len() <= JSON_RECORD_MAX, "record {} is {} bytes", i, r.len());
            let v: serde_json::Value = serde_json::from_slice(r)
                .map_err(|e| TestCaseError::fail(format!("record {i} is not JSON: {e}")))?;
            prop_assert_eq!(&v["name"], &serde_json::Value::from(name.as_str()));
            prop_assert_eq!(&v["pid"], &serde_json::Value::from(pid));
            prop_assert_eq!(&v["stream"], &serde_json::Value::from(stream));
            let last = i + 1 == recs.len();
            prop_assert_eq!(v["partial"] == true, partial || !last);
            joined.push_str(v["line"].as_str().unwrap());
        }
        prop_assert_eq!(joined, text);
    }

    #[test]
    fn formatter_writes_lossless_records(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        kind in 0u8..3,
        name in "[a-z0-9_.-]{1,12}",
        width in 0usize..20,
    ) {
        let piece = match kind {
            0 => Piece::Line(&bytes),
            1 => Piece::Part(&bytes),
            _ => Piece::Tail(&bytes),
        };
        let newline = matches!(piece, Piece::Line(_));
        // raw: the bytes, and a newline after a whole line.
        let mut out = Vec::new();
        Formatter::new(LogFormat::Raw, &name, width, 7, Stream::Stdout).write(piece, &mut out);
        let mut want = bytes.clone();
        if newline {
            want.push(b'\n');
        }
        prop_assert_eq!(&out, &want);
        // prefix: label, bytes, newline.
        let mut out = Vec::new();
        Formatter::new(LogFormat::Prefix, &name, width, 7, Stream::Stderr).write(piece, &mut out);
        let mut want = format!("{name:<width$} | ").into_bytes();
        want.extend_from_slice(&bytes);
        want.push(b'\n');
        prop_assert_eq!(&out, &want);
        // json: records whose lines give the lossy text back.
        let mut out = Vec::new();
        Formatter::new(LogFormat::Json, &name, width, 7, Stream::Stdout).write(piece, &mut out);
        let mut joined = String::new();
        for r in out.split_inclusive(|&b| b == b'\n') {
            prop_assert!(r.len() <= JSON_RECORD_MAX);
            let v: serde_json::Value = serde_json::from_slice(r)
                .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
            joined.push_str(v["line"].as_str().unwrap());
        }
        prop_assert_eq!(joined, String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn log_format_parse_errors_are_one_line(text in any::<String>()) {
        if let Err(e) = text.parse::<LogFormat>() {
            one_line("LogFormat", &text, &e)?;
        }
    }

    // ----- command line -----

    #[test]
    fn cli_parse_never_panics_and_errors_are_one_line(
        args in cli_args(),
    ) {
        let mut argv = vec![OsString::from("pyinit")];
        argv.extend(args);
        if let Err(e) = pyinit::cli::parse(argv.clone()) {
            one_line("cli::parse", &argv, &e.to_string())?;
        }
    }

    #[test]
    fn cli_parse_never_panics_on_check(
        args in cli_args(),
    ) {
        let mut argv = vec![OsString::from("pyinit"), OsString::from("check")];
        argv.extend(args);
        if let Err(e) = pyinit::cli::parse(argv.clone()) {
            one_line("cli::parse", &argv, &e.to_string())?;
        }
    }
}

// ---------------------------------------------------------------------------
// Corpus: tests/corpus/<parser>/..., every file through its parser.
// ---------------------------------------------------------------------------

fn corpus_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(sub)
}

fn files(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus_dir(sub))
        .unwrap_or_else(|e| panic!("tests/corpus/{sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "tests/corpus/{sub} is empty");
    v
}

/// Lines of a `*.txt` corpus file: one input per line (`\n` can only be
/// spelled inside the other corpora).
fn corpus_lines(name: &str) -> Vec<String> {
    let p = corpus_dir("").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.split('\n').map(str::to_string).collect()
}

/// Runs `check` on every input, collecting panics and failed checks, so one
/// bad seed does not hide the others.
fn run_corpus<T: std::fmt::Debug>(
    inputs: Vec<(String, T)>,
    check: impl Fn(&T) -> Result<(), String>,
) {
    let mut failures = Vec::new();
    for (label, input) in &inputs {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{label}: {e}")),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{label}: PANIC {msg}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus inputs failed:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

fn one_line_err<T>(r: Result<T, String>) -> Result<(), String> {
    match r {
        Err(e) if e.contains('\n') => Err(format!("error is not one line: {e:?}")),
        _ => Ok(()),
    }
}

fn label(p: &Path) -> String {
    p.strip_prefix(corpus_dir(""))
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn corpus_durations() {
    let inputs = corpus_lines("durations.txt")
        .into_iter()
        .map(|l| (format!("durations.txt {l:?}"), l))
        .collect();
    run_corpus(inputs, |t: &String| {
        one_line_err(duration::parse(t))?;
        one_line_err(duration::parse_bytes(t))
    });
}

#[test]
fn corpus_signals_and_rewrites() {
    let mut inputs: Vec<(String, String)> = Vec::new();
    for f in ["signals.txt", "rewrite.txt"] {
        inputs.extend(
            corpus_lines(f)
                .into_iter()
                .map(|l| (format!("{f} {l:?}"), l)),
        );
    }
    run_corpus(inputs, |t: &String| {
        one_line_err(names::parse(t))?;
        one_line_err(rewrite::parse_rule(t))
    });
}

#[test]
fn corpus_procfiles() {
    let inputs = files("procfile")
        .into_iter()
        .map(|p| (label(&p), std::fs::read(&p).unwrap()))
        .collect();
    run_corpus(inputs, |b: &Vec<u8>| {
        let text = String::from_utf8_lossy(b);
        let _ = procfile::is_simple_command(&text);
        let _ = procfile::shell_argv(&text);
        match procfile::parse(&text) {
            Err(e) if e.contains('\n') => Err(format!("error is not one line: {e:?}")),
            Err(e) if e != "no processes defined" && !e.starts_with("line ") => {
                Err(format!("error without a line number: {e:?}"))
            }
            _ => Ok(()),
        }
    });
}

#[test]
fn corpus_envfiles() {
    let inputs = files("envfile")
        .into_iter()
        .map(|p| (label(&p), std::fs::read(&p).unwrap()))
        .collect();
    run_corpus(inputs, |b: &Vec<u8>| one_line_err(envfile::parse(b)));
}

#[test]
fn corpus_toml_configs() {
    let inputs = files("toml")
        .into_iter()
        .map(|p| (label(&p), std::fs::read(&p).unwrap()))
        .collect();
    run_corpus(inputs, |b: &Vec<u8>| {
        one_line_err(file::load(&String::from_utf8_lossy(b)))
    });
}

#[test]
fn corpus_line_splitting() {
    let inputs = files("lines")
        .into_iter()
        .map(|p| (label(&p), std::fs::read(&p).unwrap()))
        .collect();
    run_corpus(inputs, |input: &Vec<u8>| {
        for max in [1, 2, 3, 4, 5, 7, 16, 64, 1000] {
            for size in [0, 1, 2, 3, 5, 64, usize::MAX] {
                let sizes: Vec<usize> = if size == usize::MAX {
                    vec![]
                } else {
                    vec![size; input.len() / size.max(1) + 1]
                };
                let parts = chunks(input, &sizes);
                let (pieces, _) = split(max, &parts);
                if join(&pieces) != *input {
                    return Err(format!("max {max}, chunks of {size}: bytes differ"));
                }
                if let Some(p) = pieces.iter().find(|p| p.bytes().len() > max) {
                    return Err(format!("max {max}: piece of {} bytes", p.bytes().len()));
                }
                let mut raw = LineSplitter::new(max);
                let mut b = Vec::new();
                for c in &parts {
                    b.extend(raw.push_raw(c.to_vec()));
                }
                raw.finish(&mut |p| b.extend_from_slice(p.bytes()));
                if b != *input {
                    return Err(format!("max {max}, chunks of {size}: push_raw differs"));
                }
                let text = String::from_utf8_lossy(input);
                let mut out = Vec::new();
                json_records("n", 1, "stdout", &text, false, SystemTime::now(), &mut out);
                if out
                    .split_inclusive(|&b| b == b'\n')
                    .any(|r| r.len() > JSON_RECORD_MAX)
                {
                    return Err("JSON record over 16 KiB".into());
                }
            }
        }
        Ok(())
    });
}

/// `tests/corpus/cli/*.args`: arguments separated by NUL bytes (the
/// program name is added).
#[test]
fn corpus_command_lines() {
    let inputs = files("cli")
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            let b = b.strip_suffix(b"\0").unwrap_or(&b).to_vec();
            let mut argv = vec![OsString::from("pyinit")];
            argv.extend(b.split(|&c| c == 0).map(|a| OsString::from_vec(a.to_vec())));
            (label(&p), argv)
        })
        .collect();
    run_corpus(inputs, |argv: &Vec<OsString>| {
        one_line_err(pyinit::cli::parse(argv.clone()).map_err(|e| e.to_string()))
    });
}

// ---------------------------------------------------------------------------
// Regressions: inputs these tests found (see /tmp/pyinit-bugs/parsers.md).
// ---------------------------------------------------------------------------

/// `RTMIN+N` / `RTMAX-N` with an offset near i32::MAX overflowed
/// `base + sign * off` (a panic in debug builds).
#[test]
fn regression_rt_signal_offset_overflow() {
    for text in [
        "RTMIN+2147483647",
        "RTMAX--2147483648",
        "SIGRTMIN+2147483647",
        "RTMIN+-2147483648",
        "RTMAX-2147483647",
        "RTMIN2147483614",
    ] {
        let r = std::panic::catch_unwind(|| names::parse(text));
        assert!(matches!(r, Ok(Err(_))), "{text:?}: {r:?}");
        let rule = format!("TERM:{text}");
        let r = std::panic::catch_unwind(|| rewrite::parse_rule(&rule));
        assert!(matches!(r, Ok(Err(_))), "{rule:?}: {r:?}");
    }
}

#[track_caller]
fn assert_one_line<T: std::fmt::Debug>(input: &str, r: Result<T, String>) {
    let e = r.expect_err(input);
    assert!(!e.contains('\n'), "{input:?}: error is not one line: {e:?}");
}

/// `RTMAX+1` was read as `RTMAX-1` (the sign of the offset was dropped).
#[test]
fn regression_rtmax_plus_is_not_rtmax_minus() {
    for text in ["RTMAX+1", "SIGRTMAX+5", "rtmax+30"] {
        assert!(
            names::parse(text).is_err(),
            "{text:?} -> {:?}",
            names::parse(text)
        );
    }
}

/// User text with a newline was quoted verbatim into the message.
#[test]
fn regression_parser_errors_are_one_line() {
    assert_one_line("0\n0", duration::parse("0\n0"));
    assert_one_line("SIG\nSIG", names::parse("SIG\nSIG"));
    assert_one_line("SIG\nSIG", rewrite::parse_rule("SIG\nSIG"));
    assert_one_line("a\nb", "a\nb".parse::<LogFormat>());
}

#[test]
fn regression_config_errors_are_one_line() {
    for text in [
        "[process.\"a\\nb\"]\ncommand = \"x\"\n",
        "\"a\\nb\" = 1\n[process.web]\ncommand = \"x\"\n",
        "[process.web]\ncommand = \"x\"\ngrace = \"1\\nx\"\n",
        "[process.web]\ncommand = \"x\"\nrestart = \"a\\nb\"\n",
        "log_format = \"a\\nb\"\n[process.web]\ncommand = \"x\"\n",
        "[process.web]\ncommand = \"x\"\nready = { \"a\\nb\" = 1 }\n",
    ] {
        assert_one_line(text, file::load(text).map(|_| ()));
    }
}

#[test]
fn regression_cli_errors_are_one_line() {
    for args in [
        &["-t", "1\n2", "x"][..],
        &["--bogus\nx"],
        &["-r", "A\nB:C", "x"],
        &["-e", "1\n2", "x"],
        &["check", "--ready-line", "(\n", "--", "x"],
    ] {
        let argv: Vec<OsString> = ["pyinit"].iter().chain(args).map(OsString::from).collect();
        let r = pyinit::cli::parse(argv)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_one_line(&format!("{args:?}"), r);
    }
}
