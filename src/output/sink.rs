//! Writes whole records to one output stream (pyinit's stdout or stderr).
//!
//! Two ways out, one order:
//! - **Direct** (the common case): when the stream takes non-blocking writes
//!   without being switched to `O_NONBLOCK` (`pwritev2(RWF_NOWAIT)`: pipes and
//!   sockets, which is what a container runtime gives), the task that read
//!   the child's pipe writes the records itself, and waits for writability on
//!   the event loop when the reader is slow. No copy, no thread wake-up. The
//!   shared file description is never changed (a terminal or a pipe shared
//!   with others keeps its flags).
//! - **Thread**: otherwise (a terminal, a regular file), and for pyinit's own
//!   diagnostics, records queue for one writer thread that writes them with
//!   blocking writes.
//!
//! A task that has written part of a buffer owns the stream until the rest
//! is out (`State::direct`): nothing else writes in between, so records never
//! interleave. Tasks take turns in arrival order, so that one busy child
//! cannot starve the others. A slow or stalled reader of pyinit's output only makes the
//! copying tasks (or the thread) wait: the queue is bounded in bytes, so the
//! tasks stop reading the pipes and the children block on their own writes
//! (back-pressure) while the supervisor loop keeps running. If the reader
//! goes away (EPIPE), records are discarded from then on so the children
//! never block.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;

/// Bytes queued per stream before producers wait.
pub const QUEUE_BYTES: usize = 256 * 1024;

struct State {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The writer thread holds a batch it has not finished writing.
    busy: bool,
    /// A task wrote part of a buffer directly and is finishing it: nobody
    /// else writes until it clears this.
    direct: bool,
}

/// Where a sink writes.
#[derive(Debug)]
pub enum Destination {
    /// pyinit's stdout (fd 1).
    Stdout,
    /// pyinit's stderr (fd 2).
    Stderr,
    /// Any other descriptor, owned by the sink.
    Fd(OwnedFd),
}

impl Destination {
    /// Runs `f` on the descriptor.
    fn with_fd<R>(&self, f: impl FnOnce(BorrowedFd<'_>) -> R) -> R {
        match self {
            Destination::Stdout => f(std::io::stdout().as_fd()),
            Destination::Stderr => f(std::io::stderr().as_fd()),
            Destination::Fd(fd) => f(fd.as_fd()),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Destination::Stdout => "1",
            Destination::Stderr => "2",
            Destination::Fd(_) => "fd",
        }
    }
}

struct Shared {
    target: Destination,
    cap: usize,
    state: Mutex<State>,
    /// Wakes the writer thread.
    work: Condvar,
    /// Wakes `flush_until`.
    idle: Condvar,
    /// Wakes producers waiting for space.
    space: Notify,
    /// Copying tasks take turns, first come first served: one pump cannot
    /// starve the others of the stream (tokio's mutex is fair).
    turn: tokio::sync::Mutex<()>,
    broken: AtomicBool,
    /// The writer thread starts with the first queued record, so a quiet
    /// app (and pyinit's start-up) never pays for it. `false` if it could
    /// not start.
    writer: OnceLock<bool>,
    /// A duplicate of the target registered with the event loop for
    /// writability; `None` when it cannot be (a regular file). Made on the
    /// first direct write, inside the runtime.
    watch: OnceLock<Option<AsyncFd<OwnedFd>>>,
    /// Whether the target takes `RWF_NOWAIT` writes (cleared on the first
    /// `EOPNOTSUPP`: a terminal, a regular file).
    nowait: AtomicBool,
}

/// What [`Sink::try_send`] leaves to do outside the lock.
enum Next<'s, 'b> {
    Done,
    /// Write the rest (from this offset) directly, owning the stream.
    Finish(&'s AsyncFd<OwnedFd>, Cow<'b, [u8]>, usize),
    /// Wait for space in the queue or for the stream to be released.
    Wait,
    /// No writer thread: write in place.
    Inline(Cow<'b, [u8]>),
}

/// What one non-blocking write did.
enum Nowait {
    /// This many bytes went out (maybe fewer than asked).
    Wrote(usize),
    /// The stream is full: wait for writability.
    Full,
    /// This stream cannot be written without blocking: use the thread.
    Unsupported,
    /// The reader is gone (EPIPE) or another hard error.
    Broken,
}

#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

impl Sink {
    /// A sink for `target`; its writer thread starts on first use.
    pub fn new(target: Destination, cap: usize) -> Sink {
        Sink {
            shared: Arc::new(Shared {
                target,
                cap,
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    bytes: 0,
                    busy: false,
                    direct: false,
                }),
                work: Condvar::new(),
                idle: Condvar::new(),
                space: Notify::new(),
                turn: tokio::sync::Mutex::new(()),
                broken: AtomicBool::new(false),
                writer: OnceLock::new(),
                watch: OnceLock::new(),
                nowait: AtomicBool::new(true),
            }),
        }
    }

    /// Starts the writer thread if it is not running; `false` when no
    /// thread can be had (then records are written inline, blocking).
    fn writer_running(&self) -> bool {
        *self.shared.writer.get_or_init(|| {
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name(format!("pyinit-out{}", self.shared.target.label()))
                .stack_size(64 * 1024)
                .spawn(move || writer(&shared))
                .is_ok()
        })
    }

    /// Last resort when no writer thread could start: write in place.
    fn write_inline(&self, buf: &[u8]) {
        if !self.shared.broken.load(Ordering::Relaxed)
            && self.shared.target.with_fd(|fd| write_all(fd, buf)).is_err()
        {
            self.shared.broken.store(true, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `buf` (whole records), waiting while the stream or the queue
    /// is full. Must be called from within the runtime.
    pub async fn send(&self, buf: Vec<u8>) {
        self.send_cow(Cow::Owned(buf)).await
    }

    /// As [`Sink::send`] for borrowed bytes: copied only if they must queue.
    pub async fn write(&self, buf: &[u8]) {
        self.send_cow(Cow::Borrowed(buf)).await
    }

    async fn send_cow(&self, buf: Cow<'_, [u8]>) {
        if buf.is_empty() || self.shared.broken.load(Ordering::Relaxed) {
            return;
        }
        let _turn = self.shared.turn.lock().await;
        let mut buf = Some(buf);
        loop {
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Decided under the lock, carried out after it (no guard is held
            // across an await).
            let next = {
                let mut st = self.lock();
                self.try_send(&mut st, &mut buf)
            };
            match next {
                Next::Done => return,
                Next::Finish(watch, b, from) => return self.finish_direct(watch, &b[from..]).await,
                Next::Wait => notified.await,
                Next::Inline(b) => return self.write_inline(&b),
            }
        }
    }

    /// One attempt of [`Sink::send`] under the lock: a direct write if the
    /// stream is free, else the queue if it has room.
    fn try_send<'b>(&self, st: &mut State, buf: &mut Option<Cow<'b, [u8]>>) -> Next<'_, 'b> {
        if !st.direct && !st.busy && st.queue.is_empty() {
            if let Some(watch) = self.watch() {
                let b = buf.take().unwrap_or_default();
                match write_nowait(watch.get_ref().as_fd(), &b) {
                    Nowait::Wrote(n) if n == b.len() => return Next::Done,
                    Nowait::Wrote(n) => {
                        st.direct = true;
                        return Next::Finish(watch, b, n);
                    }
                    Nowait::Full => {
                        st.direct = true;
                        return Next::Finish(watch, b, 0);
                    }
                    Nowait::Broken => {
                        self.shared.broken.store(true, Ordering::Relaxed);
                        return Next::Done;
                    }
                    Nowait::Unsupported => {
                        self.shared.nowait.store(false, Ordering::Relaxed);
                        *buf = Some(b);
                    }
                }
            }
        }
        if st.direct || st.bytes >= self.shared.cap {
            // Another task owns the stream, or the queue is full.
            return Next::Wait;
        }
        let b = buf.take().unwrap_or_default();
        if !self.writer_running() {
            return Next::Inline(b);
        }
        let b = b.into_owned();
        st.bytes += b.len();
        st.queue.push_back(b);
        // The writer re-checks the queue under the lock before it
        // sleeps, so only the first record of a batch must wake it.
        if st.queue.len() == 1 {
            self.shared.work.notify_one();
        }
        Next::Done
    }

    /// The target, registered for writability, if it takes direct writes.
    fn watch(&self) -> Option<&AsyncFd<OwnedFd>> {
        if !self.shared.nowait.load(Ordering::Relaxed) {
            return None;
        }
        self.shared
            .watch
            .get_or_init(|| {
                let dup = self
                    .shared
                    .target
                    .with_fd(|fd| fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(3)))
                    .ok()?;
                // SAFETY: `from_raw_fd` takes the fresh duplicate we own.
                let dup = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
                grow_pipe(&dup);
                // Fails for a regular file (epoll refuses it): thread it is.
                // SAFETY: the duplicate stays open and unchanged while the
                // AsyncFd owns it.
                unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }.ok()
            })
            .as_ref()
    }

    /// Writes the rest of a buffer this task started, waiting for
    /// writability; then releases the stream to the others.
    async fn finish_direct(&self, watch: &AsyncFd<OwnedFd>, mut rest: &[u8]) {
        while !rest.is_empty() {
            let Ok(mut guard) = watch.writable().await else {
                break;
            };
            match write_nowait(watch.get_ref().as_fd(), rest) {
                Nowait::Wrote(n) => rest = &rest[n..],
                Nowait::Full => guard.clear_ready(),
                Nowait::Broken | Nowait::Unsupported => {
                    self.shared.broken.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let mut st = self.lock();
        st.direct = false;
        if !st.queue.is_empty() {
            self.shared.work.notify_one();
        }
        drop(st);
        self.shared.space.notify_waiters();
        self.shared.idle.notify_all();
    }

    /// Queues `buf` at once, ignoring the bound: for pyinit's own rare
    /// diagnostics, which must never wait behind a stalled reader.
    pub fn send_now(&self, buf: Vec<u8>) {
        if !self.writer_running() {
            self.write_inline(&buf);
            return;
        }
        let mut st = self.lock();
        st.bytes += buf.len();
        st.queue.push_back(buf);
        self.shared.work.notify_one();
    }

    /// Waits until everything queued is written, or `deadline` passes.
    /// Returns whether everything was written.
    pub fn flush_until(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.lock();
        while !st.queue.is_empty() || st.busy || st.direct {
            match deadline {
                None => {
                    st = self.shared.idle.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    st = self
                        .shared
                        .idle
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        true
    }

    /// Whether the reader of this stream went away (EPIPE).
    pub fn is_broken(&self) -> bool {
        self.shared.broken.load(Ordering::Relaxed)
    }
}

fn writer(shared: &Shared) {
    loop {
        let batch: Vec<Vec<u8>> = {
            let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            st.busy = false;
            // A task finishing a direct write owns the stream; it wakes
            // this thread when it is done.
            while st.queue.is_empty() || st.direct {
                shared.idle.notify_all();
                st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.busy = true;
            st.bytes = 0;
            st.queue.drain(..).collect()
        };
        shared.space.notify_waiters();
        for buf in &batch {
            if !shared.broken.load(Ordering::Relaxed)
                && shared.target.with_fd(|fd| write_all(fd, buf)).is_err()
            {
                shared.broken.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// The pipe size pyinit asks for on its own stdout/stderr when that is a pipe
/// (a container runtime's log FIFO): the kernel's default limit for anyone
/// (`/proc/sys/fs/pipe-max-size`).
pub const OUT_PIPE: usize = 1024 * 1024;

/// Grows the pipe (or FIFO) behind `fd` to [`OUT_PIPE`] if it is smaller.
///
/// A runtime's copier reads 32 KiB at a time from a 64 KiB pipe; with
/// pyinit copying into it, every read would wake pyinit for 32 KiB more.
/// A larger pipe lets both sides move more per wake-up (measured in
/// `benches/`: about 1.5x the throughput with a 64 KiB reader). It holds
/// data the reader has not taken yet, nothing else: no line is delayed.
/// Failure (not a pipe, a limit) only costs speed.
fn grow_pipe(fd: &OwnedFd) {
    match fcntl(fd, FcntlArg::F_GETPIPE_SZ) {
        Ok(size) if (size as usize) < OUT_PIPE => {
            let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(OUT_PIPE as i32));
        }
        _ => {}
    }
}

/// One write that never blocks, whatever the descriptor's flags.
fn write_nowait(fd: BorrowedFd<'_>, buf: &[u8]) -> Nowait {
    let iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    loop {
        // nix has no pwritev2. Offset -1: the current position (a pipe has none).
        // SAFETY: `iov` points to `buf`, which outlives the call; the kernel
        // only reads from it.
        let n = unsafe { libc::pwritev2(fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
        if n >= 0 {
            return Nowait::Wrote(n as usize);
        }
        return match Errno::last() {
            Errno::EINTR => continue,
            Errno::EAGAIN => Nowait::Full,
            // No RWF_NOWAIT here (a terminal, a file; an old kernel: ENOSYS).
            Errno::EOPNOTSUPP | Errno::EINVAL | Errno::ENOSYS => Nowait::Unsupported,
            _ => Nowait::Broken,
        };
    }
}

/// Blocking write of the whole buffer; waits with poll if the fd is
/// non-blocking. Fails on EPIPE or any other hard error.
fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
    }

    #[test]
    fn writes_in_order_and_flushes() {
        let (r, w) = pipe();
        let sink = Sink::new(Destination::Fd(w), 1024);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for i in 0..100 {
                sink.send(format!("line {i}\n").into_bytes()).await;
            }
        });
        assert!(sink.flush_until(Some(Instant::now() + Duration::from_secs(5))));
        let expect: String = (0..100).map(|i| format!("line {i}\n")).collect();
        // The writer thread keeps its end open: read what was written.
        let mut got = vec![0; expect.len()];
        std::fs::File::from(r).read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), expect);
    }

    #[test]
    fn records_stay_whole_when_the_stream_fills_up() {
        // Two copying tasks and pyinit's own diagnostics (another thread)
        // write 3 MiB of records into a pipe (1 MiB after `grow_pipe`) that
        // a slow reader drains: direct writes go partial, tasks wait on
        // writability and on each other, diagnostics queue for the thread.
        let (r, w) = pipe();
        let sink = Sink::new(Destination::Fd(w), QUEUE_BYTES);
        let expect_lines = 2 * 48 * 128 + 2000;
        // It never sees end of file (the writer thread holds the write end
        // for the process's life): it stops at the expected line count.
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::from(r);
            let (mut all, mut lines) = (Vec::new(), 0);
            let mut buf = vec![0; 32 * 1024];
            while lines < expect_lines {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
                        all.extend_from_slice(&buf[..n]);
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            all
        });
        let diag = sink.clone();
        let noise = std::thread::spawn(move || {
            for i in 0..2000 {
                diag.send_now(format!("d {i} {}\n", "d".repeat(50)).into_bytes());
                std::thread::sleep(Duration::from_micros(30));
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let task = |id: u8| {
                let sink = sink.clone();
                async move {
                    for i in 0..48 {
                        // 32 KiB of whole records per write, as a pump does.
                        let mut buf = Vec::new();
                        for j in 0..128 {
                            let n = i * 128 + j;
                            buf.extend_from_slice(format!("{id} {n:08} ").as_bytes());
                            buf.resize(buf.len() + 243, b'a' + id);
                            buf.push(b'\n');
                        }
                        sink.write(&buf).await;
                    }
                }
            };
            let a = tokio::spawn(task(0));
            let b = tokio::spawn(task(1));
            let _ = a.await;
            let _ = b.await;
        });
        noise.join().unwrap();
        assert!(sink.flush_until(Some(Instant::now() + Duration::from_secs(10))));
        let all = reader.join().unwrap();
        let mut next = [0usize; 2];
        let mut diags = 0;
        for line in all.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line).unwrap();
            if let Some(rest) = text.strip_prefix("d ") {
                assert!(rest.ends_with(&"d".repeat(50)), "torn: {text}");
                diags += 1;
                continue;
            }
            let id: usize = text[..1].parse().unwrap();
            let n: usize = text[2..10].parse().unwrap();
            assert_eq!(n, next[id], "out of order or torn: {text}");
            assert_eq!(line.len(), 11 + 243, "torn: {text}");
            assert!(
                line[11..].iter().all(|&c| c == b'a' + id as u8),
                "torn: {text}"
            );
            next[id] += 1;
        }
        assert_eq!(next, [48 * 128, 48 * 128]);
        assert_eq!(diags, 2000);
    }

    #[test]
    fn flush_gives_up_at_the_deadline_when_nobody_reads() {
        let (_r, w) = pipe();
        let sink = Sink::new(Destination::Fd(w), 1 << 20);
        // More than a pipe holds, so the writer blocks.
        sink.send_now(vec![b'x'; 1 << 20]);
        let start = Instant::now();
        assert!(!sink.flush_until(Some(Instant::now() + Duration::from_millis(200))));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
