//! Copies one child pipe into a [`Sink`] as whole records.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;

use super::coalesce::Coalesce;
use super::format::Formatter;
use super::lines::LineSplitter;
use super::sink::Sink;

/// Bytes read at once (at most).
const READ_CHUNK: usize = 256 * 1024;
/// The size asked for the child's pipe: `/proc/sys/fs/pipe-max-size`'s
/// default, what anyone may ask. A flood then fills it for longer before the
/// child blocks, so each wake-up of pyinit moves more (measured in
/// `benches/`: 0.62x → 0.71x of the pipe with one writer, 0.35 s → 0.29 s
/// of CPU per GiB). It is kernel memory only while the reader lags: at most
/// 1 MiB per captured stream. Beyond a user's `pipe-user-pages-soft`, the
/// kernel refuses, and the pipe stays smaller: slower, nothing else.
const PIPE_SIZE: usize = 1024 * 1024;

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
    let mut afd =
        match unsafe { AsyncFd::register_with_interest(pipe, tokio::io::Interest::READABLE) } {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("cannot capture output: {e}");
                return;
            }
        };
    // A larger pipe lets a bursty writer run ahead without blocking and
    // cuts the reads; failure (an old kernel, a limit) only costs speed.
    let _ = fcntl(afd.get_ref(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32));
    if formatter.is_raw() && ready.is_none() {
        raw_pump(afd, max_line, sink).await;
        return;
    }
    let mut splitter = LineSplitter::new(max_line);
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut coalesce = Coalesce::default();
    loop {
        buf.clear();
        let n = match read_some(&afd, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n + n / 4 + 64);
        let mut matched = false;
        let formatter = formatter.for_chunk();
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
        afd = coalesce.after_read(n, afd).await;
    }
    let mut out = Vec::new();
    splitter.finish(&mut |piece| formatter.write(piece, &mut out));
    sink.send(out).await;
}

/// Raw format without a readiness regex: bytes go out as they came, so
/// there is nothing to do per line. One buffer, no copy: the unfinished line
/// stays at its front, the new bytes are read after it, and everything up to
/// the last newline is written from it (directly to the stream when it
/// takes that, see [`Sink`]).
async fn raw_pump(mut afd: AsyncFd<OwnedFd>, max_line: usize, sink: Sink) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut coalesce = Coalesce::default();
    loop {
        // Room for a good read even behind a long unfinished line.
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let got = match read_some(&afd, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(got) => got,
        };
        let n = LineSplitter::raw_release(&buf, max_line);
        if n > 0 {
            sink.write(&buf[..n]).await;
            // Usually nothing is left; else a part of one line (≤ max_line).
            buf.drain(..n);
        }
        afd = coalesce.after_read(got, afd).await;
    }
    // End of file: the unterminated last line, as it is.
    sink.write(&buf).await;
}

/// Reads what the pipe holds into the spare capacity of `buf`, in as few
/// hand-offs as possible: after the first bytes it keeps reading until the
/// pipe is empty (then readiness is cleared, saving a wasted read) or the
/// buffer is full. Returns the bytes added; `Ok(0)` is end of file.
async fn read_some(afd: &AsyncFd<OwnedFd>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let fd = afd.get_ref().as_raw_fd();
    loop {
        let mut guard = afd.readable().await?;
        let start = buf.len();
        let mut drained = false;
        let mut failure = None;
        while buf.len() < buf.capacity() {
            let spare = buf.spare_capacity_mut();
            // No safe wrapper reads into uninitialised memory (nix's read
            // takes `&mut [u8]`), and zeroing 256 KiB per read would cost
            // more than the read under a log flood.
            // SAFETY: the kernel writes at most `spare.len()` bytes into it.
            let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
            if n > 0 {
                let short = (n as usize) < spare.len();
                // SAFETY: `n` bytes were just initialised by read(2).
                unsafe { buf.set_len(buf.len() + n as usize) };
                if short {
                    // The pipe is empty now; clearing readiness is race-free
                    // in tokio, so skip the read that would say EAGAIN.
                    drained = true;
                    break;
                }
                continue;
            }
            if n == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => drained = true,
                _ => failure = Some(err),
            }
            break;
        }
        if drained {
            guard.clear_ready();
        }
        let added = buf.len() - start;
        match failure {
            Some(e) if added == 0 => return Err(e),
            _ if added == 0 && drained => continue,
            _ => return Ok(added),
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}
