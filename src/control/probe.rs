//! Health probes: an HTTP GET and a TCP connect, to literal addresses.
//!
//! A static binary cannot resolve names (static glibc has no NSS), so a
//! host is an IP address or `localhost` (127.0.0.1). The GET is HTTP/1.0
//! with `Connection: close`: the server sends no chunked body and closes
//! when done, so reading to the end (bounded) is the whole answer.
//!
//! Two flavours of the same thing: blocking (the `pyinit health` client, a
//! short-lived process) and async on tokio (the supervisor's readiness
//! probes, which must never block its loop).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Most of an answer read: headers and the start of the body.
pub const MAX_ANSWER: usize = 64 * 1024;

/// Why a probe failed; shown after the target (`URL answered 500`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The URL or address cannot be probed (not `http://`, a host name).
    BadTarget(String),
    Refused,
    TimedOut(Duration),
    /// Another connect or I/O error.
    Io(String),
    Closed,
    NotHttp,
    Status(u16),
    BodyMismatch {
        status: u16,
        regex: String,
    },
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::BadTarget(m) => f.write_str(m),
            ProbeError::Refused => f.write_str("refused the connection"),
            ProbeError::TimedOut(d) => {
                write!(
                    f,
                    "did not answer within {}",
                    humantime::format_duration(*d)
                )
            }
            ProbeError::Io(e) => write!(f, "failed: {e}"),
            ProbeError::Closed => f.write_str("closed the connection without an answer"),
            ProbeError::NotHttp => f.write_str("answered something that is not HTTP"),
            ProbeError::Status(s) => write!(f, "answered {s}"),
            ProbeError::BodyMismatch { status, regex } => {
                write!(f, "answered {status} but the body does not match '{regex}'")
            }
        }
    }
}

impl std::error::Error for ProbeError {}

fn io_error(e: std::io::Error, timeout: Duration) -> ProbeError {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => ProbeError::Refused,
        TimedOut | WouldBlock => ProbeError::TimedOut(timeout),
        ConnectionReset | UnexpectedEof => ProbeError::Closed,
        _ => ProbeError::Io(e.to_string()),
    }
}

pub use crate::config::url::HttpUrl;

fn parse_ip(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// `HOST:PORT`, `[V6]:PORT`, `localhost:PORT` or a bare `PORT` (127.0.0.1).
pub fn parse_addr(text: &str, default_port: Option<u16>) -> Result<SocketAddr, ProbeError> {
    let shown = crate::error::shown(text);
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    let (host, port) = match text.rfind(':') {
        Some(i)
            if !text[i..].contains(']') && (text.starts_with('[') || !text[..i].contains(':')) =>
        {
            let port = text[i + 1..]
                .parse::<u16>()
                .map_err(|_| ProbeError::BadTarget(format!("'{shown}' has no valid port")))?;
            (&text[..i], port)
        }
        _ => (
            text,
            default_port
                .ok_or_else(|| ProbeError::BadTarget(format!("'{shown}' is not HOST:PORT")))?,
        ),
    };
    let ip = parse_ip(host).ok_or_else(|| {
        ProbeError::BadTarget(format!(
            "'{}' is not an IP address (pyinit resolves no names: use 127.0.0.1 or localhost)",
            crate::error::shown(host)
        ))
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// The GET request for `url`.
fn request(url: &HttpUrl) -> String {
    format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: pyinit-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path, url.host
    )
}

/// Accepted status codes: `200-399` (default), `200,204`, `200-299,301`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet(vec![(200, 399)])
    }
}

impl std::str::FromStr for StatusSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "'{}' is not a list of status codes or ranges (e.g. 200-399, 200,204)",
                crate::error::shown(s)
            )
        };
        let code = |t: &str| {
            t.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=999).contains(c))
        };
        let mut out = Vec::new();
        for part in s.split(',') {
            let range = match part.split_once('-') {
                Some((a, b)) => (code(a).ok_or_else(err)?, code(b).ok_or_else(err)?),
                None => {
                    let c = code(part).ok_or_else(err)?;
                    (c, c)
                }
            };
            if range.0 > range.1 {
                return Err(err());
            }
            out.push(range);
        }
        Ok(StatusSet(out))
    }
}

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(a, b)| (a..=b).contains(&status))
    }
}

/// What an HTTP server answered: the status and the start of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Parses a whole (possibly cut) answer.
pub fn parse_answer(data: &[u8]) -> Result<Answer, ProbeError> {
    if data.is_empty() {
        return Err(ProbeError::Closed);
    }
    let line_end = memchr::memchr(b'\n', data).ok_or(ProbeError::NotHttp)?;
    let line = std::str::from_utf8(&data[..line_end]).map_err(|_| ProbeError::NotHttp)?;
    let mut words = line.trim_end_matches('\r').split(' ');
    let version = words.next().unwrap_or("");
    let status = words.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || status.len() != 3 {
        return Err(ProbeError::NotHttp);
    }
    let status: u16 = status.parse().map_err(|_| ProbeError::NotHttp)?;
    let body = memchr::memmem::find(data, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| memchr::memmem::find(data, b"\n\n").map(|i| i + 2))
        .map_or(&[][..], |i| &data[i..]);
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}

/// The verdict on an answer against the accepted statuses and body regex.
pub fn judge(
    answer: &Answer,
    statuses: &StatusSet,
    body: Option<&regex_lite::Regex>,
) -> Result<u16, ProbeError> {
    if !statuses.contains(answer.status) {
        return Err(ProbeError::Status(answer.status));
    }
    if let Some(re) = body {
        if !re.is_match(&String::from_utf8_lossy(&answer.body)) {
            return Err(ProbeError::BodyMismatch {
                status: answer.status,
                regex: re.as_str().to_owned(),
            });
        }
    }
    Ok(answer.status)
}

// ---- blocking ----

/// TCP connect to `addr` within `timeout`.
pub fn tcp_check(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    TcpStream::connect_timeout(&addr, timeout)
        .map(drop)
        .map_err(|e| io_error(e, timeout))
}

/// GET `url` within `timeout` (connect, send and read together).
pub fn http_get(url: &HttpUrl, timeout: Duration) -> Result<Answer, ProbeError> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(ProbeError::TimedOut(timeout))
    };
    let mut s = TcpStream::connect_timeout(&url.addr, left()?).map_err(|e| io_error(e, timeout))?;
    let _ = s.set_nodelay(true);
    s.set_write_timeout(Some(left()?))
        .map_err(|e| io_error(e, timeout))?;
    s.write_all(request(url).as_bytes())
        .map_err(|e| io_error(e, timeout))?;
    let mut data = Vec::with_capacity(4096);
    let mut buf = [0u8; 8192];
    while data.len() < MAX_ANSWER {
        s.set_read_timeout(Some(left()?))
            .map_err(|e| io_error(e, timeout))?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n.min(MAX_ANSWER - data.len())]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset after a complete answer still counts as the answer.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !data.is_empty() => break,
            Err(e) => return Err(io_error(e, timeout)),
        }
    }
    parse_answer(&data)
}

/// GET `url` and judge the answer.
pub fn http_check(
    url: &HttpUrl,
    statuses: &StatusSet,
    body: Option<&regex_lite::Regex>,
    timeout: Duration,
) -> Result<u16, ProbeError> {
    judge(&http_get(url, timeout)?, statuses, body)
}

// ---- async (tokio), for the supervisor loop ----

async fn http_get_async(url: &HttpUrl) -> Result<Answer, ProbeError> {
    let s = tokio::net::TcpStream::connect(url.addr)
        .await
        .map_err(|e| io_error(e, Duration::ZERO))?;
    let _ = s.set_nodelay(true);
    let req = request(url);
    let mut sent = 0;
    while sent < req.len() {
        s.writable()
            .await
            .map_err(|e| io_error(e, Duration::ZERO))?;
        match s.try_write(&req.as_bytes()[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_error(e, Duration::ZERO)),
        }
    }
    let mut data = Vec::with_capacity(4096);
    let mut buf = [0u8; 8192];
    while data.len() < MAX_ANSWER {
        s.readable()
            .await
            .map_err(|e| io_error(e, Duration::ZERO))?;
        match s.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n.min(MAX_ANSWER - data.len())]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !data.is_empty() => break,
            Err(e) => return Err(io_error(e, Duration::ZERO)),
        }
    }
    parse_answer(&data)
}

/// The status code `GET url` answers with, within `timeout`; never blocks
/// the runtime.
pub async fn http_status(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let url = HttpUrl::parse(url).map_err(ProbeError::BadTarget)?;
    let answer = tokio::time::timeout(timeout, http_get_async(&url))
        .await
        .map_err(|_| ProbeError::TimedOut(timeout))?
        .map_err(|e| match e {
            ProbeError::TimedOut(_) => ProbeError::TimedOut(timeout),
            e => e,
        })?;
    Ok(answer.status)
}

/// `GET url` answers 200-399 within `timeout`; never blocks the runtime.
pub async fn http_ok(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let status = http_status(url, timeout).await?;
    judge(
        &Answer {
            status,
            body: Vec::new(),
        },
        &StatusSet::default(),
        None,
    )
}

/// 127.0.0.1:`port` accepts a connection within `timeout`.
pub async fn tcp_ok(port: u16, timeout: Duration) -> Result<(), ProbeError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| ProbeError::TimedOut(timeout))?
        .map(drop)
        .map_err(|e| io_error(e, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A listener on a free port whose thread answers each connection
    /// with `answer` (None: accepts and never answers).
    fn serve(answer: Option<&'static [u8]>, conns: usize) -> (u16, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut held = Vec::new();
            for _ in 0..conns {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = c.write_all(a);
                    }
                    None => held.push(c),
                }
            }
            std::thread::sleep(Duration::from_millis(600));
        });
        (port, h)
    }

    fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    const T: Duration = Duration::from_millis(300);

    fn url(port: u16) -> HttpUrl {
        HttpUrl::parse(&format!("http://127.0.0.1:{port}/health")).unwrap()
    }

    #[test]
    fn parses_addresses() {
        assert_eq!(
            parse_addr("8000", None).unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(
            parse_addr("localhost:1", None).unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        assert_eq!(
            parse_addr("[::1]:5", None).unwrap(),
            "[::1]:5".parse().unwrap()
        );
        assert!(parse_addr("db:5432", None).is_err());
        assert!(parse_addr("127.0.0.1", None).is_err());
        assert!(parse_addr("127.0.0.1:x", None).is_err());
    }

    #[test]
    fn parses_status_sets() {
        let s: StatusSet = "200-299,301".parse().unwrap();
        assert!(s.contains(204) && s.contains(301) && !s.contains(302));
        assert!(StatusSet::default().contains(399) && !StatusSet::default().contains(400));
        for bad in ["", "abc", "300-200", "20", "200-", "1000"] {
            assert!(bad.parse::<StatusSet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_answers() {
        let a = parse_answer(b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\nbody").unwrap();
        assert_eq!((a.status, &a.body[..]), (204, &b"body"[..]));
        assert_eq!(parse_answer(b"HTTP/1.0 200\n\n").unwrap().status, 200);
        assert_eq!(parse_answer(b""), Err(ProbeError::Closed));
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n"[..],
            b"HTTP/1.1 2000 x\r\n",
            b"\xff\xfe\n",
            b"HTTP/1.1 200",
        ] {
            assert_eq!(parse_answer(bad), Err(ProbeError::NotHttp));
        }
    }

    #[test]
    fn blocking_probe_against_canned_answers() {
        let (p, h) = serve(Some(b"HTTP/1.0 200 OK\r\n\r\nall good"), 2);
        assert_eq!(http_check(&url(p), &StatusSet::default(), None, T), Ok(200));
        let re = regex_lite::Regex::new("^fine$").unwrap();
        assert!(matches!(
            http_check(&url(p), &StatusSet::default(), Some(&re), T),
            Err(ProbeError::BodyMismatch { status: 200, .. })
        ));
        h.join().unwrap();

        let (p, h) = serve(Some(b"HTTP/1.1 500 Internal Server Error\r\n\r\n"), 1);
        let e = http_check(&url(p), &StatusSet::default(), None, T).unwrap_err();
        assert_eq!(e.to_string(), "answered 500");
        h.join().unwrap();

        let (p, h) = serve(Some(b"\x00\x01garbage\n"), 1);
        assert_eq!(http_get(&url(p), T), Err(ProbeError::NotHttp));
        h.join().unwrap();

        let (p, h) = serve(None, 1);
        let started = Instant::now();
        assert_eq!(http_get(&url(p), T), Err(ProbeError::TimedOut(T)));
        assert!(started.elapsed() < T + Duration::from_millis(200));
        h.join().unwrap();

        let e = http_get(&url(closed_port()), T).unwrap_err();
        assert_eq!(e.to_string(), "refused the connection");
    }

    #[test]
    fn blocking_tcp_probe() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(tcp_check(l.local_addr().unwrap(), T), Ok(()));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_port()));
        assert_eq!(tcp_check(addr, T), Err(ProbeError::Refused));
    }

    #[test]
    fn async_probes_against_canned_answers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (p, h) = serve(Some(b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n"), 1);
            let u = format!("http://127.0.0.1:{p}/");
            assert_eq!(http_ok(&u, T).await, Ok(302));
            h.join().unwrap();

            let (p, h) = serve(Some(b"HTTP/1.1 503 x\r\n\r\n"), 1);
            let u = format!("http://localhost:{p}/");
            assert_eq!(http_ok(&u, T).await, Err(ProbeError::Status(503)));
            h.join().unwrap();

            let (p, h) = serve(Some(b"garbage garbage"), 1);
            assert_eq!(
                http_ok(&format!("http://127.0.0.1:{p}/"), T).await,
                Err(ProbeError::NotHttp)
            );
            h.join().unwrap();

            let (p, h) = serve(None, 1);
            let started = Instant::now();
            assert_eq!(
                http_ok(&format!("http://127.0.0.1:{p}/"), T).await,
                Err(ProbeError::TimedOut(T))
            );
            assert!(started.elapsed() < T + Duration::from_millis(200));
            h.join().unwrap();

            let closed = closed_port();
            assert_eq!(
                http_ok(&format!("http://127.0.0.1:{closed}/"), T).await,
                Err(ProbeError::Refused)
            );
            assert_eq!(tcp_ok(closed, T).await, Err(ProbeError::Refused));
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            assert_eq!(tcp_ok(l.local_addr().unwrap().port(), T).await, Ok(()));
            assert!(matches!(
                http_ok("http://db/", T).await,
                Err(ProbeError::BadTarget(_))
            ));
        });
    }
}
