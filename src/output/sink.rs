//! One writer thread per output stream (pyinit's stdout or stderr).
//!
//! Producers hand over buffers of whole records; the thread writes each with
//! blocking writes on the raw fd. A slow or stalled reader of pyinit's output
//! blocks only this thread: the queue is bounded in bytes, so the reader
//! tasks wait for space, stop reading the pipes, and the children block on
//! their own writes (back-pressure) while the supervisor loop keeps running.
//! If the reader goes away (EPIPE), records are discarded from then on so the
//! children never block.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::sync::Notify;

/// Bytes queued per stream before producers wait.
pub const QUEUE_BYTES: usize = 256 * 1024;

struct State {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The writer thread holds a batch it has not finished writing.
    busy: bool,
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
    broken: AtomicBool,
    /// The writer thread starts with the first record, so a quiet app (and
    /// pyinit's start-up) never pays for it. `false` if it could not start.
    writer: std::sync::OnceLock<bool>,
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
                }),
                work: Condvar::new(),
                idle: Condvar::new(),
                space: Notify::new(),
                broken: AtomicBool::new(false),
                writer: std::sync::OnceLock::new(),
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

    /// Queues `buf`, waiting while the queue is full.
    pub async fn send(&self, buf: Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        if !self.writer_running() {
            self.write_inline(&buf);
            return;
        }
        let mut buf = Some(buf);
        loop {
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if st.bytes < self.shared.cap {
                    let b = buf.take().unwrap_or_default();
                    st.bytes += b.len();
                    st.queue.push_back(b);
                    // The writer re-checks the queue under the lock before it
                    // sleeps, so only the first record of a batch must wake it.
                    if st.queue.len() == 1 {
                        self.shared.work.notify_one();
                    }
                    return;
                }
            }
            notified.await;
        }
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
        while !st.queue.is_empty() || st.busy {
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
            while st.queue.is_empty() {
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
