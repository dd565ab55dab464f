//! Copies one child pipe into a [`Sink`] as whole records.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::format::Formatter;
use super::lines::LineSplitter;
use super::sink::Sink;

const READ_CHUNK: usize = 64 * 1024;

/// Reads `pipe` until EOF, writing its lines through `formatter` into
/// `sink`. The partial last line is written when the pipe closes.
pub async fn pump(pipe: OwnedFd, formatter: Formatter, max_line: usize, sink: Sink) {
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
        splitter.push(&buf[..n], &mut |piece| formatter.write(piece, &mut out));
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
