//! The signal state pyinit was started with, and the mask pyinit runs under.
//!
//! pyinit receives every forwardable signal through a signalfd, which only
//! works when those signals are blocked in every thread. Blocked and ignored
//! signals survive `execve`, so each child must get back the mask and the
//! ignored set pyinit *started* with (tini's `restore_signals`), never pyinit's
//! own. Rust's runtime sets SIGPIPE to `SIG_IGN` before `main` runs, so the
//! start-up state is captured earlier, from an `.init_array` constructor that
//! `main.rs` registers (see [`capture_startup`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static CAPTURED: AtomicBool = AtomicBool::new(false);
static STARTUP_BLOCKED: AtomicU64 = AtomicU64::new(0);
static STARTUP_IGNORED: AtomicU64 = AtomicU64::new(0);

/// Highest signal number Linux knows.
pub const MAX_SIGNAL: i32 = 64;

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Records the mask and the ignored signals of the process as it was started.
///
/// Runs before Rust's runtime initialisation when called from `.init_array`;
/// only plain syscalls, no allocation. Calling it again does nothing.
pub extern "C" fn capture_startup() {
    if CAPTURED.swap(true, Ordering::SeqCst) {
        return;
    }
    // SAFETY: sigprocmask/sigaction with a null new value only read state;
    // the out-parameters are valid stack values.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set) == 0 {
            STARTUP_BLOCKED.store(set_to_bits(&set), Ordering::SeqCst);
        }
        let mut ignored = 0u64;
        for sig in 1..=MAX_SIGNAL {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                ignored |= bit(sig);
            }
        }
        STARTUP_IGNORED.store(ignored, Ordering::SeqCst);
    }
}

fn set_to_bits(set: &libc::sigset_t) -> u64 {
    let mut bits = 0u64;
    for sig in 1..=MAX_SIGNAL {
        // SAFETY: `set` is a valid, initialised sigset_t.
        if unsafe { libc::sigismember(set, sig) } == 1 {
            bits |= bit(sig);
        }
    }
    bits
}

/// Whether `sig` was ignored (`SIG_IGN`) when pyinit started; the children
/// inherit that.
pub fn ignored_at_startup(sig: i32) -> bool {
    capture_startup();
    (1..=MAX_SIGNAL).contains(&sig) && STARTUP_IGNORED.load(Ordering::SeqCst) & bit(sig) != 0
}

/// Builds a `sigset_t` from a bit set (bit n-1 = signal n).
pub fn bits_to_set(bits: u64) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the value before sigaddset touches it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in 1..=MAX_SIGNAL {
            if bits & bit(sig) != 0 {
                libc::sigaddset(&mut set, sig);
            }
        }
        set
    }
}

/// The start-up signal state a child must be given, prepared before `fork`
/// so that the post-fork code only makes syscalls.
#[derive(Clone, Copy)]
pub struct ChildSignalState {
    pub mask: libc::sigset_t,
    pub ignored: u64,
}

impl ChildSignalState {
    pub fn startup() -> Self {
        capture_startup();
        ChildSignalState {
            mask: bits_to_set(STARTUP_BLOCKED.load(Ordering::SeqCst)),
            ignored: STARTUP_IGNORED.load(Ordering::SeqCst),
        }
    }

    /// Puts the signal dispositions and mask back to the start-up state.
    ///
    /// # Safety
    /// Async-signal-safe: only `sigaction` and `pthread_sigmask` on prepared
    /// data. Meant to run between `fork` and `exec`.
    pub unsafe fn apply_in_child(&self) {
        // Caught signals reset to SIG_DFL at exec by themselves; pyinit
        // ignores none but SIGPIPE (Rust's runtime does), so only those and
        // the start-up ignored set need a call.
        for sig in 1..=MAX_SIGNAL {
            if self.ignored & bit(sig) == 0 && sig != libc::SIGPIPE {
                continue;
            }
            let handler = if self.ignored & bit(sig) != 0 {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            // Errors (glibc-reserved 32/33) are harmless and ignored.
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut());
    }
}

/// Blocks `bits` in the calling thread (and so in every thread created after
/// it) and resets their dispositions to the default, so that a signal
/// ignored at start-up still reaches the signalfd.
pub fn block_for_signalfd(bits: u64) -> std::io::Result<()> {
    let set = bits_to_set(bits);
    // Only SIGPIPE (ignored by Rust's runtime) and signals ignored at
    // start-up differ from SIG_DFL.
    let reset = bits & (STARTUP_IGNORED.load(Ordering::SeqCst) | bit(libc::SIGPIPE));
    // SAFETY: plain syscalls on initialised values.
    unsafe {
        for sig in 1..=MAX_SIGNAL {
            if reset & bit(sig) != 0 {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

/// Bit set of the given signal numbers.
pub fn bits_of(signals: impl IntoIterator<Item = i32>) -> u64 {
    signals.into_iter().fold(0, |acc, s| acc | bit(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_roundtrip_through_sigset() {
        let bits = bits_of([1, 2, 15, 34, 64]);
        assert_eq!(set_to_bits(&bits_to_set(bits)), bits);
    }
}
