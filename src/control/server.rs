//! The control socket server: a Unix socket the supervisor loop reads
//! [`ControlMsg`]s from.
//!
//! Everything here runs as tasks on the supervisor's current-thread
//! runtime, so nothing may block: the socket is non-blocking, every read
//! and write is bounded in bytes and time, and each connection has its own
//! task. A client that sends nothing, sends garbage or never reads its
//! answer costs one task until its time bound, and no more than
//! [`MAX_CONNECTIONS`] such tasks exist at once.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::protocol::{self, MAX_REQUEST};
use super::{ControlMsg, Reply};

/// Time a client has to send its request line.
pub const READ_BOUND: Duration = Duration::from_secs(2);
/// Time the loop has to answer, and a client to take the answer.
pub const REPLY_BOUND: Duration = Duration::from_secs(2);
/// Connections served at once; more are closed with an error line.
pub const MAX_CONNECTIONS: usize = 32;

/// Device and inode of the socket this pyinit created, so that it removes
/// its own file only (never one a later pyinit put in its place).
static OWN_SOCKET: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// Removes the socket file at `path` if it is the one [`start`] created:
/// called once pyinit is done, so that no stale file is left behind.
pub fn stop(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Some(&own) = OWN_SOCKET.get() else { return };
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if (m.dev(), m.ino()) == own {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What became of an existing socket file.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    None,
    /// Nothing accepts on it: left by an earlier run.
    Stale,
    /// Another process (pyinit) accepts on it.
    Live,
}

/// Probes an existing socket without blocking: a non-blocking connect
/// either succeeds (or finds the backlog full: someone listens), or is
/// refused (nobody listens).
fn existing(path: &Path) -> std::io::Result<Existing> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Existing::None),
        Err(e) => return Err(e),
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(std::io::Error::new(
                    ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
        }
    }
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        Ok(()) | Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINPROGRESS) => {
            Ok(Existing::Live)
        }
        Err(nix::errno::Errno::ECONNREFUSED) | Err(nix::errno::Errno::ENOENT) => {
            Ok(Existing::Stale)
        }
        Err(e) => Err(e.into()),
    }
}

fn bind(path: &Path) -> Result<Option<UnixListener>, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            // Only a directory pyinit creates gets 0700: an existing one
            // (/tmp, a volume) is not pyinit's to change.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    match existing(path).map_err(|e| format!("cannot use {}: {e}", path.display()))? {
        Existing::Live => return Ok(None),
        Existing::Stale => std::fs::remove_file(path)
            .map_err(|e| format!("cannot replace stale {}: {e}", path.display()))?,
        Existing::None => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    // The directory is 0700 and every peer's uid is checked, so the moment
    // between bind and chmod exposes nothing.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        let _ = OWN_SOCKET.set((m.dev(), m.ino()));
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use {}: {e}", path.display()))?;
    UnixListener::from_std(listener)
        .map(Some)
        .map_err(|e| format!("cannot use {}: {e}", path.display()))
}

/// Creates the control socket at `path` and serves it; the loop receives
/// one [`ControlMsg`] per valid request. `None` (after one warning) when
/// there is no socket: pyinit then runs on without one.
pub fn start(path: &Path) -> Option<mpsc::Receiver<ControlMsg>> {
    let listener = match bind(path) {
        Ok(Some(l)) => l,
        Ok(None) => {
            tracing::warn!(
                "another pyinit answers on {}; running without a control socket",
                path.display()
            );
            return None;
        }
        Err(e) => {
            tracing::warn!("{e}; running without a control socket");
            return None;
        }
    };
    let (tx, rx) = mpsc::channel(MAX_CONNECTIONS);
    tokio::spawn(accept_loop(listener, tx));
    Some(rx)
}

async fn accept_loop(listener: UnixListener, tx: mpsc::Sender<ControlMsg>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let own_uid = nix::unistd::getuid().as_raw();
    let mut warned = false;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                if !warned {
                    tracing::warn!("control socket: accept failed: {e}");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let _ = stream.try_write(&error_line("busy: too many control connections"));
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            serve(stream, own_uid, &tx).await;
            drop(permit);
        });
    }
}

fn error_line(msg: &str) -> Vec<u8> {
    protocol::encode_reply(&Reply::Error(msg.to_owned())).into_bytes()
}

/// Serves one connection: uid check, one request, one reply.
async fn serve(stream: UnixStream, own_uid: u32, tx: &mpsc::Sender<ControlMsg>) {
    let refused = match stream.peer_cred() {
        Ok(c) if c.uid() == own_uid || c.uid() == 0 => None,
        Ok(c) => Some(c.uid()),
        Err(_) => return,
    };
    // The request is read even from a refused client: closing a Unix
    // socket with unread data makes the peer's read fail (ECONNRESET)
    // before it sees the error line.
    let line = match tokio::time::timeout(READ_BOUND, read_line(&stream)).await {
        Ok(Ok(Some(line))) => line,
        // Connected and closed without a word (a liveness check).
        Ok(Ok(None)) => return,
        Ok(Err(msg)) => return fail(&stream, msg).await,
        Err(_) => return fail(&stream, "no request within 2s").await,
    };
    if let Some(uid) = refused {
        tracing::debug!("control socket: refused a client of uid {uid}");
        let msg = format!("refused: uid {uid} is neither pyinit's nor root");
        return fail(&stream, &msg).await;
    }
    let reply = match protocol::decode_request(&line) {
        Ok(request) => ask_loop(tx, request).await,
        Err(e) => Reply::Error(format!("bad request: {e}")),
    };
    write_reply(&stream, protocol::encode_reply(&reply).as_bytes()).await;
}

/// Sends one error line, then discards what the client still sends (bounded)
/// so that closing does not reset the connection before it reads the line.
async fn fail(stream: &UnixStream, msg: &str) {
    write_reply(stream, &error_line(msg)).await;
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Write);
    let drain = async {
        let mut buf = [0u8; 16 * 1024];
        let mut left = 2 * 1024 * 1024usize;
        while left > 0 && stream.readable().await.is_ok() {
            match stream.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

/// Hands the request to the loop and waits (bounded) for its answer.
async fn ask_loop(tx: &mpsc::Sender<ControlMsg>, request: super::Request) -> Reply {
    let (reply_tx, reply_rx) = oneshot::channel();
    let asked = async {
        tx.send(ControlMsg {
            request,
            reply: reply_tx,
        })
        .await
        .ok()?;
        reply_rx.await.ok()
    };
    match tokio::time::timeout(REPLY_BOUND, asked).await {
        Ok(Some(r)) => r,
        Ok(None) => Reply::Error("pyinit is shutting down".into()),
        Err(_) => Reply::Error("pyinit did not answer in time".into()),
    }
}

/// Reads up to the first newline, at most [`MAX_REQUEST`] bytes. `None`
/// when the client closed without sending anything.
async fn read_line(stream: &UnixStream) -> Result<Option<Vec<u8>>, &'static str> {
    let mut line = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        if stream.readable().await.is_err() {
            return Err("read failed");
        }
        match stream.try_read(&mut buf) {
            Ok(0) if line.is_empty() => return Ok(None),
            // EOF ends the line too (a client that shut down its side).
            Ok(0) => return Ok(Some(line)),
            Ok(n) => {
                if let Some(end) = memchr::memchr(b'\n', &buf[..n]) {
                    if line.len() + end > MAX_REQUEST {
                        return Err("request longer than 4 KiB");
                    }
                    line.extend_from_slice(&buf[..end]);
                    return Ok(Some(line));
                }
                line.extend_from_slice(&buf[..n]);
                if line.len() > MAX_REQUEST {
                    return Err("request longer than 4 KiB");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Err("read failed"),
        }
    }
}

/// Writes `data` within [`REPLY_BOUND`]; a client that does not read loses it.
async fn write_reply(stream: &UnixStream, data: &[u8]) {
    let write = async {
        let mut sent = 0;
        while sent < data.len() {
            if stream.writable().await.is_err() {
                return;
            }
            match stream.try_write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(REPLY_BOUND, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Request;
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("pyinit-server-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Runs a server at `path` with a loop that answers Status with an
    /// empty status and everything else with an error; `client` runs on a
    /// thread with blocking I/O.
    fn with_server<T: Send + 'static>(
        path: &Path,
        client: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut rx = start(path).expect("server starts");
            let handle = std::thread::spawn(client);
            loop {
                tokio::select! {
                    Some(msg) = rx.recv() => {
                        let reply = match msg.request {
                            Request::Status => Reply::Status(Default::default()),
                            _ => Reply::Error("no".into()),
                        };
                        let _ = msg.reply.send(reply);
                    }
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {
                        if handle.is_finished() {
                            return handle.join().unwrap();
                        }
                    }
                }
            }
        })
    }

    fn ask(path: &Path, data: &[u8]) -> String {
        let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(data);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn serves_requests_and_rejects_bad_ones() {
        let dir = temp_dir("serve");
        let path = dir.join("sub/control.sock");
        let p = path.clone();
        let (status, bad, long, stat) = with_server(&path, move || {
            let status = ask(&p, b"{\"cmd\":\"status\"}\n");
            let bad = ask(&p, b"hello\n");
            let long = ask(&p, &vec![b'x'; 1 << 20]);
            (status, bad, long, std::fs::metadata(&p).unwrap())
        });
        assert!(status.starts_with("{\"ok\":true,\"status\""), "{status}");
        assert!(bad.contains("bad request"), "{bad}");
        assert!(long.contains("longer than 4 KiB"), "{long}");
        assert_eq!(stat.mode() & 0o777, 0o600);
        let dmode = std::fs::metadata(dir.join("sub")).unwrap().mode();
        assert_eq!(dmode & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn replaces_a_stale_socket_and_respects_a_live_one() {
        let dir = temp_dir("stale");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert_eq!(existing(&path).unwrap(), Existing::Stale);
        let p = path.clone();
        let answer = with_server(&path, move || {
            let live = existing(&p).unwrap();
            (live, ask(&p, b"{\"cmd\":\"status\"}\n"))
        });
        assert_eq!(answer.0, Existing::Live);
        assert!(answer.1.contains("\"ok\":true"));
        std::fs::write(dir.join("plain"), b"x").unwrap();
        assert!(existing(&dir.join("plain")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
