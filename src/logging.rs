//! pyinit's own diagnostics: `tracing` events written as one line each, in
//! the same shape as captured output (`pyinit: msg`, `pyinit | msg`, or a
//! JSON record with `name` = `pyinit`), through the stderr writer thread so
//! that a stalled stderr never blocks the supervisor loop.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::output::format::{json_records, LogFormat};
use crate::output::sink::Sink;

static STDERR_SINK: OnceLock<Mutex<Option<Sink>>> = OnceLock::new();

/// How much pyinit says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Installs the global subscriber. `PYINIT_LOG` (e.g. `debug`,
/// `pyinit=trace`) beats `-v`/`-q`.
pub fn init(verbosity: Verbosity, format: LogFormat, width: usize) {
    let level = match verbosity {
        Verbosity::Quiet => LevelFilter::ERROR,
        Verbosity::Normal => LevelFilter::INFO,
        Verbosity::Verbose => LevelFilter::DEBUG,
    };
    let filter = std::env::var("PYINIT_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(level));
    let layer = DiagLayer { format, width }.with_filter(filter);
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
}

/// Routes diagnostics through `sink` from now on.
pub fn attach_stderr_sink(sink: Sink) {
    let slot = STDERR_SINK.get_or_init(|| Mutex::new(None));
    if let Ok(mut s) = slot.lock() {
        *s = Some(sink);
    }
}

/// Waits (up to `deadline`) until queued diagnostics are written.
pub fn flush(deadline: Option<Instant>) {
    if let Some(sink) = current_sink() {
        sink.flush_until(deadline);
    }
}

fn current_sink() -> Option<Sink> {
    STDERR_SINK.get()?.lock().ok()?.clone()
}

/// Writes a line straight to fd 2 (before any sink exists).
pub fn write_stderr(line: &str) {
    let mut buf = line.as_bytes();
    while !buf.is_empty() {
        // Unbuffered, straight to fd 2 (which may be closed: that only fails).
        match nix::unistd::write(std::io::stderr(), buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

struct DiagLayer {
    format: LogFormat,
    width: usize,
}

/// The message of a `tracing` event, and the JSON fields of a structured
/// [`crate::events::Event`] when it is one (`pyinit_event`).
#[derive(Default)]
struct MessageVisitor {
    message: String,
    event_fields: Option<String>,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.message, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "pyinit_event" => self.event_fields = Some(value.to_string()),
            name => {
                let _ = write!(self.message, " {name}={value}");
            }
        }
    }
}

/// Formats one diagnostic line in the configured shape.
pub fn render(format: LogFormat, width: usize, level: &Level, message: &str) -> Vec<u8> {
    render_event(format, width, level, message, None)
}

/// [`render`], plus the fields of a structured event (a JSON object) that
/// the `json` format adds to the record.
pub fn render_event(
    format: LogFormat,
    width: usize,
    level: &Level,
    message: &str,
    event_fields: Option<&str>,
) -> Vec<u8> {
    // The OOM report keeps the SPEC's exact shape (`pyinit: worker 42 (...)
    // was killed by the kernel's OOM killer ...`): a warning, but the line
    // carries no level word.
    let bare = event_fields.is_some_and(|f| f.contains("\"event\":\"oom_kill\""));
    let text = match *level {
        _ if bare => message.to_string(),
        Level::ERROR => format!("error: {message}"),
        Level::WARN => format!("warning: {message}"),
        _ => message.to_string(),
    };
    match format {
        LogFormat::Raw => format!("pyinit: {text}\n").into_bytes(),
        LogFormat::Prefix => format!("{:<width$} | {text}\n", "pyinit").into_bytes(),
        LogFormat::Json if event_fields.is_some() => {
            let mut record = serde_json::Map::new();
            record.insert(
                "ts".into(),
                humantime::format_rfc3339_millis(SystemTime::now())
                    .to_string()
                    .into(),
            );
            record.insert("name".into(), "pyinit".into());
            record.insert("pid".into(), std::process::id().into());
            record.insert("stream".into(), "stderr".into());
            record.insert("line".into(), text.into());
            if let Some(serde_json::Value::Object(fields)) =
                event_fields.and_then(|f| serde_json::from_str(f).ok())
            {
                record.extend(fields);
            }
            let mut out = serde_json::Value::Object(record).to_string().into_bytes();
            out.push(b'\n');
            out
        }
        LogFormat::Json => {
            let mut out = Vec::new();
            let pid = nix::unistd::getpid().as_raw();
            json_records(
                "pyinit",
                pid,
                "stderr",
                &text,
                false,
                SystemTime::now(),
                &mut out,
            );
            out
        }
    }
}

impl<S: Subscriber> Layer<S> for DiagLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let line = render_event(
            self.format,
            self.width,
            event.metadata().level(),
            &visitor.message,
            visitor.event_fields.as_deref(),
        );
        match current_sink() {
            Some(sink) => sink.send_now(line),
            None => write_stderr(&String::from_utf8_lossy(&line)),
        }
    }
}
