//! Waking up when the OOM counters may have moved, without a periodic
//! wake-up where the kernel notifies:
//! - cgroup v2: inotify `IN_MODIFY` on `memory.events` (the kernel calls
//!   `cgroup_file_notify` on every `max`, `oom` and `oom_kill` event, at
//!   most one notification per 10 ms);
//! - cgroup v1: an eventfd registered on `memory.oom_control` through
//!   `cgroup.event_control` (the v1 OOM notifier; it fires when the cgroup
//!   goes under OOM, i.e. before the kill; the kill itself does not
//!   notify, so the monitor re-reads shortly after, see `super`);
//! - elsewhere (a read-only cgroup mount refuses the v1 registration):
//!   a read once a second.
//!
//! Under steady pressure (page cache at `memory.max` makes v2 count `max`
//! over and over) wake-ups are spaced by at least [`MIN_GAP`].

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::cgroup::{MemCgroup, Version};

/// Where notification does not work: one read per this.
pub const POLL: Duration = Duration::from_secs(1);
/// v1 usage thresholds, in percent of the limit.
pub const V1_THRESHOLDS: [u64; 2] = [50, 90];
/// Least time between two notification-driven wake-ups.
pub const MIN_GAP: Duration = Duration::from_millis(50);

enum Source {
    /// An inotify descriptor (v2) or an eventfd (v1, with
    /// `memory.oom_control` kept open for its registration).
    Notify {
        fd: AsyncFd<OwnedFd>,
        mode: Mode,
        _control: Option<File>,
    },
    Poll {
        next: Instant,
    },
}

/// How the watcher learns of changes (for the `-v` line and the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inotify,
    EventFd,
    Poll,
}

impl Mode {
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Inotify => "inotify on memory.events",
            Mode::EventFd => "OOM eventfd (cgroup.event_control)",
            Mode::Poll => "read once a second (no notification here)",
        }
    }
}

/// Resolves [`OomWatcher::changed`] when the counters may have moved.
pub struct OomWatcher {
    source: Source,
    last_wake: Option<Instant>,
}

impl OomWatcher {
    /// Sets up the notification for `cg`, or the once-a-second read where
    /// the kernel or the mount does not allow one. Must run inside the
    /// tokio runtime.
    pub fn new(cg: &MemCgroup) -> OomWatcher {
        let source = match cg.version {
            Version::V2 => inotify(cg),
            Version::V1 => eventfd(cg),
        }
        .unwrap_or_else(|e| {
            tracing::debug!("OOM counter notification unavailable ({e}); reading it once a second");
            Source::Poll {
                next: Instant::now() + POLL,
            }
        });
        OomWatcher {
            source,
            last_wake: None,
        }
    }

    pub fn mode(&self) -> Mode {
        match self.source {
            Source::Notify { mode, .. } => mode,
            Source::Poll { .. } => Mode::Poll,
        }
    }

    /// Resolves on a notification (or the next poll), or at `follow_up`
    /// when given; returns whether the kernel notified. Cancel-safe: a
    /// notification not yet consumed stays pending for the next call.
    pub async fn changed(&mut self, follow_up: Option<Instant>) -> bool {
        // Polls are a second apart already.
        let gap_end = match self.source {
            Source::Notify { .. } => self.last_wake.map(|t| t + MIN_GAP),
            Source::Poll { .. } => None,
        };
        let notified = async {
            if let Some(g) = gap_end.filter(|&g| g > Instant::now()) {
                tokio::time::sleep_until(g.into()).await;
            }
            self.source.wait().await
        };
        let by_kernel = match follow_up {
            Some(t) => {
                tokio::select! {
                    n = notified => n,
                    _ = tokio::time::sleep_until(t.into()) => false,
                }
            }
            None => notified.await,
        };
        self.last_wake = Some(Instant::now());
        by_kernel
    }
}

impl Source {
    /// Returns whether the kernel notified (`false`: the poll timer).
    async fn wait(&mut self) -> bool {
        match self {
            Source::Notify { fd, .. } => loop {
                let Ok(mut guard) = fd.readable().await else {
                    return std::future::pending().await;
                };
                // One read takes every queued inotify event (or the
                // eventfd's count): one wake-up per batch.
                let mut buf = [0u8; 4096];
                match guard.try_io(|f| {
                    nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from)
                }) {
                    Ok(_) => return true,
                    Err(_would_block) => continue,
                }
            },
            Source::Poll { next } => {
                tokio::time::sleep_until((*next).into()).await;
                *next = Instant::now() + POLL;
                false
            }
        }
    }
}

fn register(fd: OwnedFd, mode: Mode, control: Option<File>) -> std::io::Result<Source> {
    // SAFETY: the OwnedFd stays open and unchanged while the AsyncFd owns it.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Source::Notify {
        fd,
        mode,
        _control: control,
    })
}

fn inotify(cg: &MemCgroup) -> std::io::Result<Source> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    ino.add_watch(&cg.counter_file(), AddWatchFlags::IN_MODIFY)?;
    register(OwnedFd::from(ino), Mode::Inotify, None)
}

/// The v1 notifiers, all on one eventfd, each registered by writing
/// "EVENTFD FD [ARGS]" to `cgroup.event_control`: the OOM notifier on
/// `memory.oom_control` (fires as the cgroup goes under OOM, an instant
/// before the kill), and usage thresholds on `memory.usage_in_bytes` at
/// [`V1_THRESHOLDS`] of the limit (fire on each crossing, up or down: early
/// enough to see the victim alive, and again once the kill freed its memory).
fn eventfd(cg: &MemCgroup) -> std::io::Result<Source> {
    let efd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
    let control = File::open(cg.counter_file())?;
    let add = |target: &File, args: &str| -> std::io::Result<()> {
        let mut reg = std::fs::OpenOptions::new()
            .write(true)
            .open(cg.dir.join("cgroup.event_control"))?;
        reg.write_all(format!("{} {}{args}", efd.as_raw_fd(), target.as_raw_fd()).as_bytes())
    };
    add(&control, "")?;
    if let Some(limit) = cg.limit() {
        // The registration holds its own reference to the file.
        if let Ok(usage) = File::open(cg.dir.join("memory.usage_in_bytes")) {
            for pct in V1_THRESHOLDS {
                let _ = add(&usage, &format!(" {}", limit / 100 * pct));
            }
        }
    }
    register(OwnedFd::from(efd), Mode::EventFd, Some(control))
}
