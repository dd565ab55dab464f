//! Waiting until the app under test is ready for the stop signal.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::observe::OutputLog;
use super::options::Readiness;

const POLL: Duration = Duration::from_millis(20);

/// A private directory for one run (the notify and control sockets of the
/// pyinit under test), removed with everything in it when dropped.
pub struct RunDir(PathBuf);

impl RunDir {
    pub fn create() -> std::io::Result<RunDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("pyinit-check-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(RunDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `NOTIFY_SOCKET` for `READY=1`.
pub struct NotifySocket {
    path: PathBuf,
    sock: UnixDatagram,
}

impl NotifySocket {
    pub fn bind(dir: &RunDir) -> std::io::Result<NotifySocket> {
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path)?;
        sock.set_read_timeout(Some(POLL))?;
        Ok(NotifySocket { path, sock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a `READY=1` datagram arrived within one poll interval.
    fn ready(&self) -> bool {
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => buf[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1"),
            Err(_) => false,
        }
    }
}

/// Waits for readiness; `Ok(time from start)` or `Err(reason)`.
pub fn wait(
    how: &Readiness,
    timeout: Duration,
    start: Instant,
    output: &OutputLog,
    notify: Option<&NotifySocket>,
    exited: &dyn Fn() -> bool,
) -> Result<Duration, String> {
    let deadline = start + timeout;
    loop {
        if exited() {
            return Err("it exited before it was ready".into());
        }
        let now = Instant::now();
        let ready = match how {
            Readiness::After(d) => now >= start + *d,
            Readiness::Line(_) => output.wait_ready_line(POLL).is_some(),
            Readiness::Port(p) => TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, *p)),
                Duration::from_millis(200),
            )
            .is_ok(),
            Readiness::Notify => notify.is_some_and(NotifySocket::ready),
        };
        if ready {
            return Ok(start.elapsed());
        }
        if now >= deadline {
            let what = match how {
                Readiness::After(_) => "the --after time".to_string(),
                Readiness::Line(re) => format!("no line matched /{}/", re.as_str()),
                Readiness::Port(p) => format!("127.0.0.1:{p} never accepted a connection"),
                Readiness::Notify => "no READY=1 arrived on NOTIFY_SOCKET".to_string(),
            };
            return Err(format!(
                "not ready after {}: {what}",
                humantime::format_duration(timeout)
            ));
        }
        if matches!(how, Readiness::After(_) | Readiness::Port(_)) {
            std::thread::sleep(POLL);
        }
    }
}

/// No process started or ended for this long: the tree has settled.
pub const SETTLE_QUIET: Duration = Duration::from_millis(300);
/// The longest wait for the tree to settle after the probe passed.
pub const SETTLE_MAX: Duration = Duration::from_secs(10);

/// When to send the signal: once no process started or ended for `quiet`
/// after `probe_passed` (gunicorn's master accepts on its port before its
/// workers have booted), at most `max` after it. `last_change` says when the
/// process tree last changed; returns early when the app exits.
pub fn settle(
    probe_passed: Instant,
    quiet: Duration,
    max: Duration,
    last_change: &dyn Fn() -> Option<Instant>,
    exited: &dyn Fn() -> bool,
) -> Instant {
    let give_up = probe_passed + max;
    loop {
        let now = Instant::now();
        let since = last_change().map_or(probe_passed, |c| c.max(probe_passed));
        if now >= since + quiet || now >= give_up || exited() {
            return now;
        }
        let next = (since + quiet).min(give_up);
        std::thread::sleep(next.saturating_duration_since(now).min(POLL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn settle_waits_for_quiet_after_the_last_change() {
        let start = Instant::now();
        let changes = Cell::new(0);
        // The tree changes every 50 ms for the first 200 ms.
        let last = || {
            let el = start.elapsed();
            changes.set(changes.get() + 1);
            Some(start + el.min(Duration::from_millis(200)))
        };
        let at = settle(
            start,
            Duration::from_millis(100),
            Duration::from_secs(5),
            &last,
            &|| false,
        );
        let waited = at - start;
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_millis(600), "{waited:?}");
    }

    #[test]
    fn settle_gives_up_at_the_maximum_and_on_exit() {
        let start = Instant::now();
        let at = settle(
            start,
            Duration::from_millis(300),
            Duration::from_millis(100),
            &|| Some(Instant::now()),
            &|| false,
        );
        assert!(at - start < Duration::from_millis(250));
        let at = settle(
            start,
            Duration::from_secs(5),
            Duration::from_secs(5),
            &|| Some(Instant::now()),
            &|| true,
        );
        assert!(at - start < Duration::from_millis(250));
    }
}
