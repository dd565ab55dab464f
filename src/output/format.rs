//! Turns lines into records: `raw`, `prefix` (`name | line`) or `json`.

use std::time::SystemTime;

use super::lines::Piece;
use super::Stream;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Raw,
    Prefix,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Raw => "raw",
            LogFormat::Prefix => "prefix",
            LogFormat::Json => "json",
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "raw" => Ok(LogFormat::Raw),
            "prefix" => Ok(LogFormat::Prefix),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "'{}' is not one of raw, prefix, json",
                crate::error::shown(other)
            )),
        }
    }
}

/// Docker splits log lines longer than 16 KiB; a JSON record never exceeds it.
pub const JSON_RECORD_MAX: usize = 16 * 1024;

/// Formats the records of one source (a process's stdout or stderr).
#[derive(Debug, Clone)]
pub struct Formatter {
    format: LogFormat,
    /// `name | ` padded, for `prefix`.
    label: Vec<u8>,
    name: String,
    pid: i32,
    stream: Stream,
}

impl Formatter {
    pub fn new(format: LogFormat, name: &str, width: usize, pid: i32, stream: Stream) -> Self {
        Self::colored(format, name, width, pid, stream, None)
    }

    /// As [`Formatter::new`], with the `prefix` label in an ANSI colour
    /// (for a terminal), as honcho does.
    pub fn colored(
        format: LogFormat,
        name: &str,
        width: usize,
        pid: i32,
        stream: Stream,
        color: Option<u8>,
    ) -> Self {
        let label = match color {
            Some(c) => format!("\x1b[{c}m{name:<width$} |\x1b[0m ").into_bytes(),
            None => format!("{name:<width$} | ").into_bytes(),
        };
        Formatter {
            format,
            label,
            name: name.to_string(),
            pid,
            stream,
        }
    }

    pub fn is_raw(&self) -> bool {
        self.format == LogFormat::Raw
    }

    /// A formatter for the lines of one read: in `json`, the timestamp and
    /// the record head are made once per read, not once per line.
    pub fn for_chunk(&self) -> ChunkFormatter<'_> {
        let head = (self.format == LogFormat::Json).then(|| {
            let ts = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            JsonHead::new(&ts, &self.name, self.pid, self.stream.as_str())
        });
        ChunkFormatter { f: self, head }
    }

    /// Appends the record(s) for `piece` to `out`.
    pub fn write(&self, piece: Piece<'_>, out: &mut Vec<u8>) {
        self.for_chunk().write(piece, out)
    }
}

/// [`Formatter`] with what is shared by every line of one read.
pub struct ChunkFormatter<'a> {
    f: &'a Formatter,
    head: Option<JsonHead>,
}

impl ChunkFormatter<'_> {
    /// Appends the record(s) for `piece` to `out`.
    pub fn write(&self, piece: Piece<'_>, out: &mut Vec<u8>) {
        let f = self.f;
        match (&self.head, f.format) {
            (Some(head), _) => {
                let text = String::from_utf8_lossy(piece.bytes());
                head.records(&text, matches!(piece, Piece::Part(_)), out);
            }
            (None, LogFormat::Prefix) => {
                out.extend_from_slice(&f.label);
                out.extend_from_slice(piece.bytes());
                out.push(b'\n');
            }
            (None, _) => {
                out.extend_from_slice(piece.bytes());
                if let Piece::Line(_) = piece {
                    out.push(b'\n');
                }
            }
        }
    }
}

/// `{"ts":...,"name":...,"pid":...,"stream":...,"line":` for one source and
/// one moment, and how much of a 16 KiB record is left for the line.
pub struct JsonHead {
    head: Vec<u8>,
    budget: usize,
}

impl JsonHead {
    pub fn new(ts: &str, name: &str, pid: i32, stream: &str) -> Self {
        let mut head = Vec::with_capacity(96);
        head.extend_from_slice(b"{\"ts\":\"");
        head.extend_from_slice(ts.as_bytes());
        head.extend_from_slice(b"\",\"name\":");
        // Writing JSON strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut head, name);
        head.extend_from_slice(
            format!(",\"pid\":{pid},\"stream\":\"{stream}\",\"line\":").as_bytes(),
        );
        // The head, the quotes, `,"partial":true` and `}\n`.
        let overhead = head.len() + 2 + ",\"partial\":true".len() + 2;
        JsonHead {
            head,
            budget: JSON_RECORD_MAX.saturating_sub(overhead).max(64),
        }
    }

    /// Writes `text` as one record, or as several partial ones when its
    /// escaped form would make a record longer than [`JSON_RECORD_MAX`].
    pub fn records(&self, text: &str, partial: bool, out: &mut Vec<u8>) {
        let mut rest = text;
        loop {
            // Escaping at most sextuples a byte: short lines need no scan.
            let cut = if rest.len() * 6 <= self.budget {
                rest.len()
            } else {
                split_at_escaped_len(rest, self.budget)
            };
            let (chunk, tail) = rest.split_at(cut);
            let last = tail.is_empty();
            out.extend_from_slice(&self.head);
            let _ = serde_json::to_writer(&mut *out, chunk);
            if partial || !last {
                out.extend_from_slice(b",\"partial\":true");
            }
            out.extend_from_slice(b"}\n");
            if last {
                break;
            }
            rest = tail;
        }
    }
}

/// Writes one or more JSON records for `text`, each at most
/// [`JSON_RECORD_MAX`] bytes including its newline. Every record but the last
/// is partial; the last is partial only when `partial` says so.
pub fn json_records(
    name: &str,
    pid: i32,
    stream: &str,
    text: &str,
    partial: bool,
    now: SystemTime,
    out: &mut Vec<u8>,
) {
    let ts = humantime::format_rfc3339_millis(now).to_string();
    JsonHead::new(&ts, name, pid, stream).records(text, partial, out);
}

/// Byte length of `c` once JSON-escaped the way serde_json does it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `s` (in bytes, on a char boundary) whose escaped
/// form fits in `budget` bytes; at least one char when `s` is not empty.
fn split_at_escaped_len(s: &str, budget: usize) -> usize {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += escaped_len(c);
        if used > budget {
            return if i == 0 { c.len_utf8() } else { i };
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(format: LogFormat, piece: Piece<'_>) -> String {
        let f = Formatter::new(format, "web", 6, 42, Stream::Stdout);
        let mut out = Vec::new();
        f.write(piece, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn raw_adds_nothing_but_the_line_end() {
        assert_eq!(fmt(LogFormat::Raw, Piece::Line(b"hi")), "hi\n");
        assert_eq!(fmt(LogFormat::Raw, Piece::Part(b"hi")), "hi");
        assert_eq!(fmt(LogFormat::Raw, Piece::Tail(b"hi")), "hi");
    }

    #[test]
    fn prefix_pads_names_and_always_ends_records() {
        assert_eq!(fmt(LogFormat::Prefix, Piece::Line(b"hi")), "web    | hi\n");
        assert_eq!(fmt(LogFormat::Prefix, Piece::Tail(b"hi")), "web    | hi\n");
    }

    #[test]
    fn json_has_the_spec_fields() {
        let s = fmt(LogFormat::Json, Piece::Line(b"a \"q\" \xff"));
        let v: serde_json::Value = serde_json::from_str(s.trim_end()).unwrap();
        assert_eq!(v["name"], "web");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["stream"], "stdout");
        assert_eq!(v["line"], "a \"q\" \u{fffd}");
        assert!(v.get("partial").is_none());
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
        let p = fmt(LogFormat::Json, Piece::Part(b"x"));
        let v: serde_json::Value = serde_json::from_str(p.trim_end()).unwrap();
        assert_eq!(v["partial"], true);
    }

    #[test]
    fn json_records_never_exceed_16k() {
        for text in [
            "x".repeat(50_000),
            "\u{1}".repeat(20_000),
            "é\"".repeat(20_000),
        ] {
            let mut out = Vec::new();
            json_records("n", 1, "stdout", &text, false, SystemTime::now(), &mut out);
            let mut joined = String::new();
            let recs: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
            assert!(recs.len() > 1);
            for (i, r) in recs.iter().enumerate() {
                assert!(
                    r.len() <= JSON_RECORD_MAX,
                    "record {} is {} bytes",
                    i,
                    r.len()
                );
                let v: serde_json::Value = serde_json::from_slice(r).unwrap();
                assert_eq!(v["partial"] == true, i + 1 < recs.len());
                joined.push_str(v["line"].as_str().unwrap());
            }
            assert_eq!(joined, text);
        }
    }
}
