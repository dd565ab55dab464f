//! What `check` observed during one run, as plain data: the input of the
//! pure analysis in [`super::findings`]. Times are offsets from the start
//! of the run; pids are as the pyinit under test sees them.

use std::time::Duration;

use super::records::Record;

/// `SigCgt`, `SigBlk` and `SigIgn` of `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigMasks {
    pub caught: u64,
    pub blocked: u64,
    pub ignored: u64,
}

pub(crate) fn bit(sig: i32) -> u64 {
    if (1..=64).contains(&sig) {
        1u64 << (sig - 1)
    } else {
        0
    }
}

impl SigMasks {
    /// A handler is installed for `sig`.
    pub fn catches(&self, sig: i32) -> bool {
        self.caught & bit(sig) != 0
    }

    /// Blocks or ignores `sig`.
    pub fn shuts_out(&self, sig: i32) -> bool {
        (self.blocked | self.ignored) & bit(sig) != 0
    }

    /// `sig` would end it at once: no handler, not blocked or ignored, and a
    /// default action that terminates.
    pub fn dies_of(&self, sig: i32) -> bool {
        let harmless = [
            libc::SIGCHLD,
            libc::SIGCONT,
            libc::SIGSTOP,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGURG,
            libc::SIGWINCH,
        ];
        !self.catches(sig) && !self.shuts_out(sig) && !harmless.contains(&sig)
    }
}

/// One process below pyinit, as `check` saw it in `/proc`.
#[derive(Debug, Clone, Default)]
pub struct ProcObs {
    /// As seen by pyinit (its PID namespace).
    pub pid: i32,
    /// Parent at the signal (pyinit's namespace); `None` when unknown.
    pub ppid: Option<i32>,
    pub cmd: String,
    pub first_seen: Duration,
    pub gone_at: Option<Duration>,
    pub alive_at_signal: bool,
    /// Its signal masks as the stop signal went out.
    pub masks: Option<SigMasks>,
    /// Intervals it was seen in Z state.
    pub zombie_spans: Vec<(Duration, Duration)>,
    /// How it ended, read from `/proc` while it was a zombie: (status,
    /// signal), the status as 128+N for a death by signal N.
    pub ended: Option<(i32, Option<i32>)>,
}

/// A process of the set, as configured.
#[derive(Debug, Clone)]
pub struct Managed {
    pub name: String,
    /// Exit codes that count as success besides 0.
    pub expect: Vec<i32>,
    pub oneshot: bool,
}

/// Everything observed during one run.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The signal `check` sent pyinit.
    pub signal: i32,
    /// What pyinit forwards for it (after `--rewrite`), when no event says.
    pub default_send: i32,
    pub grace: Duration,
    /// `--procfile`/`--config`: several named processes.
    pub multi: bool,
    pub managed: Vec<Managed>,
    pub ready: Result<Duration, String>,
    pub signalled_at: Option<Duration>,
    pub exited_at: Duration,
    /// pyinit's exit status; `None` when it did not exit in time.
    pub pyinit_status: Option<i32>,
    pub procs: Vec<ProcObs>,
    /// pyinit's pid in its own namespace.
    pub pyinit_pid: Option<i32>,
    pub records: Vec<(Duration, Record)>,
}
