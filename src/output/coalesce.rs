//! Gathers a log flood into fewer, larger copies.
//!
//! A child that writes one record at a time (a `print()` per line, a
//! `logging` record per write) would wake the copying task once per write
//! when that task has a CPU of its own: one read, one write and one wake-up
//! of pyinit's reader per few hundred bytes. After a small read, the task
//! therefore pauses for [`PAUSE`] (or [`LONG_PAUSE`] after a tiny read)
//! before it reads again, so that the writes made meanwhile are copied
//! together. On this kind of machine (a VM) each wake-up costs tens of µs of
//! CPU in the scheduler, far more than copying a few KiB. The pause starts
//! only after what was read has been written out: a lone line is never held
//! back, and a line that arrives during a flood waits at most [`LONG_PAUSE`].
//! The child does not wait on it either: its pipe (1 MiB) has room for
//! what it can write meanwhile (the pause is long only after a tiny read,
//! i.e. a slow writer). Only a flood pauses at all — a read that follows
//! the previous one within [`FLOOD_GAP`] — so a line written after a quiet
//! spell, like the last words of an app that then exits, goes out and the
//! end of file is read at once: a stop never waits on a pause for nothing.
//!
//! The timer is a `timerfd` on the event loop (tokio's own timers tick in
//! whole milliseconds, far too coarse), made on first use.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// How long a flood is gathered after a read smaller than [`SMALL_READ`].
pub const PAUSE: Duration = Duration::from_micros(50);
/// After a read smaller than [`TINY_READ`] (the writer is slower, so
/// gathering takes longer; its pipe fills no faster than 64 KiB per pause).
pub const LONG_PAUSE: Duration = Duration::from_micros(200);
/// Reads smaller than this are followed by a pause.
pub const SMALL_READ: usize = 64 * 1024;
/// Reads smaller than this are followed by the long pause.
pub const TINY_READ: usize = 16 * 1024;
/// Two reads this close together are a flood.
pub const FLOOD_GAP: Duration = Duration::from_millis(1);

struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// The pause of one copying task; `None` inside when no timer could be made
/// (then there is no pause: only more wake-ups).
#[derive(Default)]
pub struct Coalesce {
    timer: Option<Option<AsyncFd<Timer>>>,
    /// When the previous read was handled.
    last: Option<Instant>,
}

impl Coalesce {
    /// Call after each read of `n` bytes from `pipe` has been written out;
    /// gives the pipe back. During a pause the pipe is off the event loop:
    /// registered, every write of the child would wake pyinit (edge-triggered
    /// readiness fires per write), and the pause would save nothing. Adding
    /// it back reports it at once if it is readable, so nothing is missed.
    pub async fn after_read(&mut self, n: usize, pipe: AsyncFd<OwnedFd>) -> AsyncFd<OwnedFd> {
        let now = Instant::now();
        let flood = self.last.is_some_and(|t| now - t < FLOOD_GAP);
        self.last = Some(now);
        if !flood || n == 0 || n >= SMALL_READ {
            return pipe;
        }
        let pause = if n < TINY_READ { LONG_PAUSE } else { PAUSE };
        if !self.arm(pause) {
            return pipe;
        }
        let fd = pipe.into_inner();
        self.expired().await;
        let mut fd = fd;
        loop {
            // SAFETY: the pipe stays open and unchanged while the AsyncFd owns it.
            match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
                Ok(a) => return a,
                Err(e) => {
                    // Only when the kernel is out of memory: the child
                    // blocks on its full pipe meanwhile; nothing is lost.
                    let (back, err) = e.into_parts();
                    tracing::warn!("cannot watch an output pipe again ({err}); retrying");
                    fd = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Starts the timer for one pause; `false` when there is no timer.
    fn arm(&mut self, pause: Duration) -> bool {
        let timer = self.timer.get_or_insert_with(|| {
            let fd = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .ok()?;
            // SAFETY: the timerfd stays open and unchanged while the AsyncFd owns it.
            unsafe { AsyncFd::register_with_interest(Timer(fd), Interest::READABLE) }.ok()
        });
        let Some(timer) = timer else { return false };
        let one_shot = Expiration::OneShot(TimeSpec::from_duration(pause));
        timer
            .get_ref()
            .0
            .set(one_shot, TimerSetTimeFlags::empty())
            .is_ok()
    }

    /// Waits until the armed timer expires.
    async fn expired(&mut self) {
        let Some(Some(timer)) = &self.timer else {
            return;
        };
        loop {
            let Ok(mut guard) = timer.readable().await else {
                return;
            };
            // Reading the expiry count re-arms readiness for the next pause.
            match guard.get_inner().0.wait() {
                Ok(()) => return,
                Err(_) => guard.clear_ready(),
            }
        }
    }
}
