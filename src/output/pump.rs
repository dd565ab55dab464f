//! Copies one child pipe into a [`Sink`] as whole records.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::format::Formatter;
use super::lines::LineSplitter;
use super::sink::Sink;

const READ_CHUNK: usize = 64 * 1024;

/// Reports the first line that matches a readiness regex.
pub struct ReadyHook {
    pub regex: regex_lite::Regex,
    pub tx: tokio::sync::mpsc::UnboundedSender<(usize, u64)>,
    /// Which process and which start of it.
    pub id: (usize, u64),
}

impl ReadyHook {
    fn check(&mut self, line: &[u8]) -> bool {
        let text = String::from_utf8_lossy(line);
        if self.regex.is_match(&text) {
            let _ = self.tx.send(self.id);
            return true;
        }
        false
    }
}

/// Reads `pipe` until EOF, writing its lines through `formatter` into
/// `sink`. The partial last line is written when the pipe closes.
pub async fn pump(
    pipe: OwnedFd,
    formatter: Formatter,
    max_line: usize,
    sink: Sink,
    mut ready: Option<ReadyHook>,
) {
    if let Err(e) = set_nonblocking(&pipe) {
        tracing::warn!("cannot capture output: {e}");
        return;
    }
    // SAFETY: the OwnedFd stays open and unchanged while the AsyncFd owns it.
    let afd = match unsafe { AsyncFd::register_with_interest(pipe, tokio::io::Interest::READABLE) }
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("cannot capture output: {e}");
            return;
        }
    };
    let mut splitter = LineSplitter::new(max_line);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match read_some(&afd, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n + n / 4 + 64);
        let mut matched = false;
        splitter.push(&buf[..n], &mut |piece| {
            if let (Some(hook), super::lines::Piece::Line(line)) = (ready.as_mut(), piece) {
                matched |= hook.check(line);
            }
            formatter.write(piece, &mut out)
        });
        if matched {
            ready = None;
        }
        sink.send(out).await;
    }
    let mut out = Vec::new();
    splitter.finish(&mut |piece| formatter.write(piece, &mut out));
    sink.send(out).await;
}

async fn read_some(afd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut guard = afd.readable().await?;
        let res = guard.try_io(|inner| {
            // SAFETY: `buf` is a valid writable slice.
            let n = unsafe {
                libc::read(
                    inner.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match res {
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(r) => return r,
            Err(_would_block) => continue,
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        if flags < 0 || libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
