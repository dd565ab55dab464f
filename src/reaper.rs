//! The single owner of `waitpid(-1)`.
//!
//! Only this module waits for children: pyinit never uses tokio's or std's
//! `wait`, which would race with the loop below for the main process's status
//! (and, after pid reuse, could collect someone else's). SIGCHLDs merge, so
//! every wake-up loops until nothing more is ready. Signalling and reaping
//! happen on the same task, so pyinit never signals a pid it already reaped.

/// One reaped process.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub pid: i32,
    pub status: i32,
}

/// Reaps every child that has ended; returns whether any child remains.
///
/// Raw `waitpid` rather than nix's: nix turns the status into a `Signal`,
/// which has no real-time signals, so a child killed by SIGRTMIN+n would be
/// reaped by the kernel and its status lost in the conversion error.
pub fn reap(out: &mut Vec<Reaped>) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-parameter.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            out.push(Reaped { pid, status });
            continue;
        }
        if pid == 0 {
            return true;
        }
        match nix::errno::Errno::last() {
            nix::errno::Errno::EINTR => continue,
            _ => return false, // ECHILD: no children at all
        }
    }
}

/// Makes orphaned descendants reparent to pyinit when it is not PID 1.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}
