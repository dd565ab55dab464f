//! The clients of the control socket: `pyinit status`, `pyinit health`,
//! `pyinit ctl`. Short-lived processes, so plain blocking I/O with time
//! bounds. Exit codes are 0 and 1 only (Docker reserves 2 for health checks).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use super::probe::{self, HttpUrl, StatusSet};
use super::protocol;
use super::{Reply, Request};
use crate::status::{LiveProbe, ProcState, ProcStatus, Status};

/// Most bytes `pyinit health` prints (Docker keeps 4 KiB of probe output).
const MAX_HEALTH_OUTPUT: usize = 4000;
/// Time for the whole exchange with pyinit.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

fn duration(s: &str) -> Result<Duration, String> {
    crate::config::duration::parse(s)
}

fn regex(s: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(s).map_err(|e| e.to_string().replace('\n', " "))
}

fn url(s: &str) -> Result<HttpUrl, String> {
    HttpUrl::parse(s)
}

fn addr(s: &str) -> Result<std::net::SocketAddr, String> {
    probe::parse_addr(s, None).map_err(|e| e.to_string())
}

/// Exit 0 when every process of the running pyinit is up and ready (and
/// the probes given here pass); 1 with one line per problem otherwise.
#[derive(Parser, Debug)]
#[command(
    name = "pyinit health",
    bin_name = "pyinit health",
    disable_version_flag = true
)]
struct HealthCli {
    /// GET this URL (http://IP:PORT/PATH; no name resolution but localhost)
    #[arg(long, value_name = "URL", value_parser = url)]
    http: Vec<HttpUrl>,
    /// Accepted HTTP status codes: ranges and lists
    #[arg(long, value_name = "CODES", default_value = "200-399")]
    status: StatusSet,
    /// The HTTP body must match this regular expression
    #[arg(long, value_name = "REGEX", value_parser = regex)]
    body: Option<regex_lite::Regex>,
    /// Connect to HOST:PORT (or a bare PORT on 127.0.0.1)
    #[arg(long, value_name = "HOST:PORT", value_parser = addr)]
    tcp: Vec<std::net::SocketAddr>,
    /// Time bound of each probe
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    timeout: Duration,
}

/// What the pyinit that is PID 1 runs, and how it is.
#[derive(Parser, Debug)]
#[command(
    name = "pyinit status",
    bin_name = "pyinit status",
    disable_version_flag = true
)]
struct StatusCli {
    /// {"processes": [...], "stopping": bool, "oom_kills": N}
    #[arg(long)]
    json: bool,
}

/// Act on one process of the running pyinit.
#[derive(Parser, Debug)]
#[command(
    name = "pyinit ctl",
    bin_name = "pyinit ctl",
    disable_version_flag = true
)]
struct CtlCli {
    #[command(subcommand)]
    action: CtlAction,
}

#[derive(clap::Subcommand, Debug)]
enum CtlAction {
    /// Stop NAME (its stop signal, grace, SIGKILL) and start it again
    Restart { name: String },
    /// Stop NAME and keep it down
    Stop { name: String },
    /// Start NAME again
    Start { name: String },
    /// Send SIGNAL (TERM, SIGUSR1, 10, RTMIN+1) to NAME
    Signal {
        #[arg(value_parser = signal)]
        signal: i32,
        name: String,
    },
}

fn signal(s: &str) -> Result<i32, String> {
    crate::signals::names::parse(s)
}

/// Where the clients look for the socket.
pub fn socket_path() -> PathBuf {
    std::env::var_os("PYINIT_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_SOCKET))
}

/// `args[0]` is the subcommand word; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let word = args.first().and_then(|a| a.to_str()).unwrap_or("");
    match word {
        "health" => parse::<HealthCli>(args).map_or_else(|c| c, health),
        "status" => parse::<StatusCli>(args).map_or_else(|c| c, status),
        "ctl" => parse::<CtlCli>(args).map_or_else(|c| c, ctl),
        other => {
            eprintln!(
                "pyinit: error: '{}' is not a client command",
                crate::error::shown(other)
            );
            1
        }
    }
}

/// Parses or returns the exit code: 0 after `--help`, 1 (never 2) on a usage error.
fn parse<T: Parser>(args: Vec<OsString>) -> Result<T, i32> {
    T::try_parse_from(args).map_err(|e| {
        use clap::error::ErrorKind::*;
        match e.kind() {
            DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                if e.kind() == DisplayHelpOnMissingArgumentOrSubcommand {
                    1
                } else {
                    0
                }
            }
            _ => {
                // clap's first paragraph (the error and, for missing
                // arguments, their list) as one line; its usage block is not repeated.
                let text = e.to_string();
                let first: Vec<&str> = text
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                let line = first.join(" ");
                let line = line.strip_prefix("error: ").unwrap_or(&line);
                eprintln!("pyinit: error: {line}");
                1
            }
        }
    })
}

/// Why no answer came.
enum AskError {
    /// No socket, or nothing accepts on it.
    NoPyinit,
    Other(String),
}

fn ask(path: &Path, request: &Request) -> Result<Reply, AskError> {
    use std::io::ErrorKind::*;
    let mut s = UnixStream::connect(path).map_err(|e| match e.kind() {
        NotFound | ConnectionRefused => AskError::NoPyinit,
        _ => AskError::Other(format!("cannot reach pyinit at {}: {e}", path.display())),
    })?;
    let io = |e: std::io::Error| AskError::Other(format!("talking to pyinit failed: {e}"));
    s.set_read_timeout(Some(SOCKET_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(SOCKET_TIMEOUT)).map_err(io)?;
    // The server may already have refused (uid) and closed: its line still
    // deserves reading, so a failed write is not the end.
    let _ = s.write_all(protocol::encode_request(request).as_bytes());
    let mut data = Vec::new();
    s.take(protocol::MAX_REPLY as u64)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.is_empty() {
        return Err(AskError::Other(
            "pyinit closed the connection without an answer".into(),
        ));
    }
    protocol::decode_reply(&data)
        .map_err(|e| AskError::Other(format!("pyinit answered something unexpected: {e}")))
}

fn no_pyinit(path: &Path) -> String {
    format!("no pyinit answers at {}", path.display())
}

/// Asks for the status; `Err` holds the line to print.
fn fetch_status(path: &Path) -> Result<Option<Status>, String> {
    match ask(path, &Request::Status) {
        Ok(Reply::Status(s)) => Ok(Some(s)),
        Ok(Reply::Error(e)) => Err(e),
        Ok(Reply::Done) => Err("pyinit answered something unexpected".into()),
        Err(AskError::NoPyinit) => Ok(None),
        Err(AskError::Other(e)) => Err(e),
    }
}

fn status(cli: StatusCli) -> i32 {
    let path = socket_path();
    let s = match fetch_status(&path) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!("{}", no_pyinit(&path));
            return 1;
        }
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let out = if cli.json {
        format!("{}\n", protocol::status_to_json(&s, false))
    } else {
        table(&s)
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    0
}

fn uptime(d: Option<Duration>) -> String {
    let Some(d) = d else { return "-".into() };
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// The `pyinit status` table.
pub fn table(s: &Status) -> String {
    let header = [
        "NAME",
        "PID",
        "STATE",
        "UPTIME",
        "RESTARTS",
        "LAST EXIT",
        "READY",
    ];
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    for p in &s.processes {
        rows.push([
            p.name.clone(),
            p.pid.map_or("-".into(), |n| n.to_string()),
            p.state.as_str().into(),
            uptime(p.uptime),
            p.restarts.to_string(),
            p.last_exit.map_or("-".into(), |n| n.to_string()),
            if p.ready { "yes" } else { "no" }.into(),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (k, (c, w)) in r.iter().zip(widths).enumerate() {
            if k > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            if k + 1 < r.len() {
                line.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if s.stopping {
        out.push_str("pyinit is stopping\n");
    }
    if s.oom_kills > 0 {
        out.push_str(&format!("out-of-memory kills: {}\n", s.oom_kills));
    }
    out
}

/// Why one process is not healthy, if it is not (probes not run here).
pub fn state_problem(p: &ProcStatus) -> Option<String> {
    let exit = |p: &ProcStatus| {
        p.last_exit
            .map_or(String::new(), |c| format!(" after exit {c}"))
    };
    match p.state {
        ProcState::Completed => None,
        _ if p.oneshot && p.state.is_live() => Some("one-shot still running".into()),
        ProcState::Ready | ProcState::Running => None,
        ProcState::Waiting => Some("waiting for its dependencies".into()),
        ProcState::Starting => Some("starting, not ready yet".into()),
        ProcState::Backoff => Some(format!(
            "backoff{}, restart {} of {}",
            exit(p),
            p.restarts,
            p.max_restarts
        )),
        ProcState::Exited => Some(match p.last_exit {
            Some(c) => format!("exited with status {c}"),
            None => "exited".into(),
        }),
        ProcState::Stopped => Some("stopped by pyinit ctl stop".into()),
        ProcState::Stopping => Some("stopping".into()),
    }
}

fn live_problem(probe: &LiveProbe, timeout: Duration) -> Option<String> {
    match probe {
        LiveProbe::Port(port) => {
            let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, *port));
            probe::tcp_check(addr, timeout)
                .err()
                .map(|e| format!("{addr} {e}"))
        }
        LiveProbe::Http(u) => {
            let r = HttpUrl::parse(u)
                .map_err(probe::ProbeError::BadTarget)
                .and_then(|url| probe::http_check(&url, &StatusSet::default(), None, timeout));
            r.err().map(|e| format!("{u} {e}"))
        }
    }
}

fn health(cli: HealthCli) -> i32 {
    let path = socket_path();
    let standalone = !cli.http.is_empty() || !cli.tcp.is_empty();
    let mut problems: Vec<String> = Vec::new();
    match fetch_status(&path) {
        Ok(Some(s)) if s.stopping => {
            println!("stopping");
            return 1;
        }
        Ok(Some(s)) => {
            for p in &s.processes {
                let problem = state_problem(p).or_else(|| {
                    let live = matches!(p.state, ProcState::Ready | ProcState::Running);
                    p.live_probe
                        .as_ref()
                        .filter(|_| live && !p.oneshot)
                        .and_then(|probe| live_problem(probe, cli.timeout))
                });
                if let Some(why) = problem {
                    problems.push(format!("{}: {why}", p.name));
                }
            }
        }
        Ok(None) if standalone => {}
        Ok(None) => {
            println!("{}", no_pyinit(&path));
            return 1;
        }
        Err(e) => problems.push(e),
    }
    for url in &cli.http {
        if let Err(e) = probe::http_check(url, &cli.status, cli.body.as_ref(), cli.timeout) {
            problems.push(format!("http://{}{} {e}", url.host, url.path));
        }
    }
    for addr in &cli.tcp {
        if let Err(e) = probe::tcp_check(*addr, cli.timeout) {
            problems.push(format!("{addr} {e}"));
        }
    }
    if problems.is_empty() {
        return 0;
    }
    let _ = std::io::stdout().write_all(bounded_report(&problems).as_bytes());
    1
}

/// One line per problem, each cut to 300 bytes, all under 4 KiB.
fn bounded_report(problems: &[String]) -> String {
    let mut out = String::new();
    for (k, p) in problems.iter().enumerate() {
        let mut line: String = p.replace(['\n', '\r'], " ");
        if line.len() > 300 {
            let mut cut = 297;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str("...");
        }
        if out.len() + line.len() + 1 > MAX_HEALTH_OUTPUT - 40 {
            out.push_str(&format!("... and {} more\n", problems.len() - k));
            break;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn ctl(cli: CtlCli) -> i32 {
    let request = match cli.action {
        CtlAction::Restart { name } => Request::Restart(name),
        CtlAction::Stop { name } => Request::Stop(name),
        CtlAction::Start { name } => Request::Start(name),
        CtlAction::Signal { signal, name } => Request::Signal { signal, name },
    };
    let path = socket_path();
    let line = match ask(&path, &request) {
        Ok(Reply::Done) => return 0,
        Ok(Reply::Error(e)) => e,
        Ok(Reply::Status(_)) => "pyinit answered something unexpected".into(),
        Err(AskError::NoPyinit) => no_pyinit(&path),
        Err(AskError::Other(e)) => e,
    };
    eprintln!("pyinit ctl: {line}");
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(state: ProcState) -> ProcStatus {
        ProcStatus {
            name: "worker".into(),
            pid: None,
            state,
            oneshot: false,
            uptime: None,
            restarts: 3,
            max_restarts: 5,
            last_exit: Some(1),
            ready: false,
            live_probe: None,
        }
    }

    #[test]
    fn describes_unhealthy_states() {
        assert_eq!(
            state_problem(&proc(ProcState::Backoff)).unwrap(),
            "backoff after exit 1, restart 3 of 5"
        );
        assert_eq!(state_problem(&proc(ProcState::Running)), None);
        assert_eq!(state_problem(&proc(ProcState::Ready)), None);
        assert!(state_problem(&proc(ProcState::Starting)).is_some());
        let mut once = proc(ProcState::Running);
        once.oneshot = true;
        assert!(state_problem(&once).is_some());
        once.state = ProcState::Completed;
        assert_eq!(state_problem(&once), None);
    }

    #[test]
    fn report_stays_under_4k() {
        let many: Vec<String> = (0..500)
            .map(|i| format!("p{i}: {}", "x".repeat(i)))
            .collect();
        let r = bounded_report(&many);
        assert!(r.len() < 4096, "{}", r.len());
        assert!(r.ends_with("more\n"));
        assert!(r.lines().all(|l| l.len() <= 300));
    }

    #[test]
    fn usage_errors_exit_1() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(main(args(&["health", "--bogus"])), 1);
        assert_eq!(main(args(&["health", "--timeout", "soon"])), 1);
        assert_eq!(main(args(&["health", "--http", "https://x/"])), 1);
        assert_eq!(main(args(&["ctl", "signal", "SIGNOPE", "web"])), 1);
        assert_eq!(main(args(&["ctl"])), 1);
        assert_eq!(main(args(&["status", "extra"])), 1);
    }

    #[test]
    fn table_lines_up() {
        let mut a = proc(ProcState::Running);
        a.pid = Some(42);
        a.uptime = Some(Duration::from_secs(75));
        a.ready = true;
        let t = table(&Status {
            processes: vec![a, proc(ProcState::Backoff)],
            stopping: false,
            oom_kills: 0,
        });
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].contains("1m15s") && lines[1].contains("running"));
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][col..col + 7], "running");
    }
}
