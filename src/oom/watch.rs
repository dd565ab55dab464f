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
            Mode::Poll => "a read once a second (no notification here)",
        }
    }
}

/// Resolves [`OomWatcher::changed`] when the counters may have moved.
pub struct OomWatcher {
    source: Source,
    last_wake: Option<Instant>,
    /// Why the kernel's notification could not be set up (polling).
    poll_reason: Option<String>,
}

impl OomWatcher {
    /// Sets up the notification for `cg`, or the once-a-second read where
    /// the kernel or the mount does not allow one. Must run inside the
    /// tokio runtime.
    pub fn new(cg: &MemCgroup) -> OomWatcher {
        let (source, poll_reason) = match cg.version {
            Version::V2 => inotify(cg),
            Version::V1 => eventfd(cg),
        }
        .map_or_else(
            |e| {
                let poll = Source::Poll {
                    next: Instant::now() + POLL,
                };
                (poll, Some(e.to_string()))
            },
            |s| (s, None),
        );
        OomWatcher {
            source,
            last_wake: None,
            poll_reason,
        }
    }

    /// How the counter is watched, for the `-v` line.
    pub fn describe(&self) -> String {
        match &self.poll_reason {
            Some(why) => format!("a read once a second (no notification: {why})"),
            None => self.mode().describe().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn fake(version: Version, files: &[&str]) -> MemCgroup {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pyinit-watch-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "oom_kill 0\n").unwrap();
        }
        MemCgroup { version, dir }
    }

    #[test]
    fn inotify_wakes_on_a_change_and_not_before() {
        let cg = fake(Version::V2, &["memory.events"]);
        runtime().block_on(async {
            let mut w = OomWatcher::new(&cg);
            assert_eq!(w.mode(), Mode::Inotify);
            let quiet = tokio::time::timeout(Duration::from_millis(100), w.changed(None)).await;
            assert!(quiet.is_err(), "woke without a change");
            std::fs::write(cg.counter_file(), "oom_kill 1\n").unwrap();
            let woke = tokio::time::timeout(Duration::from_secs(5), w.changed(None)).await;
            assert_eq!(woke, Ok(true));
            // A follow-up time wakes it too, as a timer.
            let t = Instant::now() + Duration::from_millis(20);
            let woke = tokio::time::timeout(Duration::from_secs(5), w.changed(Some(t))).await;
            assert_eq!(woke, Ok(false));
        });
        std::fs::remove_dir_all(&cg.dir).unwrap();
    }

    #[test]
    fn v1_without_event_control_falls_back_to_polling() {
        // No cgroup.event_control in a plain directory: the registration fails.
        let cg = fake(Version::V1, &["memory.oom_control"]);
        runtime().block_on(async {
            let mut w = OomWatcher::new(&cg);
            assert_eq!(w.mode(), Mode::Poll);
            let t0 = Instant::now();
            let woke = tokio::time::timeout(Duration::from_secs(3), w.changed(None)).await;
            assert_eq!(woke, Ok(false));
            assert!(
                t0.elapsed() >= POLL - Duration::from_millis(50),
                "{:?}",
                t0.elapsed()
            );
        });
        std::fs::remove_dir_all(&cg.dir).unwrap();
    }
}
