//! Starting a child: the only module with code that runs between `fork` and
//! `exec`.
//!
//! Everything the child needs is prepared before the fork; the `pre_exec`
//! hook only makes async-signal-safe syscalls (pyinit has writer threads, so
//! after `fork` nothing may allocate or lock). std's CLOEXEC error pipe
//! returns an `exec` failure as the `spawn()` error, which becomes 126/127.

use std::ffi::OsString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::error::Error;
use crate::signals::mask::ChildSignalState;

/// Where the child's process group lives.
#[derive(Debug, Clone, Copy)]
pub enum GroupMode {
    /// No terminal: the child leads a new session (and so a new group).
    NewSession,
    /// Controlling terminal: a group of its own in pyinit's session, made
    /// the terminal's foreground group when `take_foreground`.
    TerminalGroup { tty: RawFd, take_foreground: bool },
    /// `--single-child`: the child stays in pyinit's group.
    SameGroup,
}

pub struct Spawned {
    pub pid: i32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// What to run and how.
pub struct SpawnSpec<'a> {
    pub argv: &'a [OsString],
    pub env: &'a [(OsString, OsString)],
    pub cwd: Option<&'a std::path::Path>,
    pub capture: bool,
    pub group: GroupMode,
}

pub fn spawn(spec: &SpawnSpec<'_>, signals: ChildSignalState) -> Result<Spawned, Error> {
    let program = &spec.argv[0];
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit());
    if let Some(dir) = spec.cwd {
        cmd.current_dir(dir);
    }
    if spec.capture {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    }
    let group = spec.group;
    // SAFETY: the closure only calls async-signal-safe functions (sigaction,
    // pthread_sigmask, setsid, setpgid, tcsetpgrp, getpid; nix's wrappers of
    // them are plain syscalls that neither allocate nor lock) on values
    // copied in before the fork; `?` turns an errno into an io::Error
    // without allocating (a simple `Os` code).
    unsafe {
        cmd.pre_exec(move || {
            match group {
                GroupMode::NewSession => {
                    nix::unistd::setsid()?;
                }
                GroupMode::TerminalGroup {
                    tty,
                    take_foreground,
                } => {
                    let me = nix::unistd::Pid::from_raw(0);
                    nix::unistd::setpgid(me, me)?;
                    // SIGTTOU is still blocked here (inherited from pyinit),
                    // so a background group may take the terminal. Failure
                    // only means job control is unavailable.
                    if take_foreground {
                        // The terminal was opened before the fork and stays
                        // open until exec.
                        let tty = std::os::fd::BorrowedFd::borrow_raw(tty);
                        let _ = nix::unistd::tcsetpgrp(tty, nix::unistd::getpid());
                    }
                }
                GroupMode::SameGroup => {}
            }
            signals.apply_in_child();
            Ok(())
        });
    }
    let display = program.to_string_lossy();
    let mut child = cmd.spawn().map_err(|e| Error::from_spawn(&display, &e))?;
    // Never call `child.wait()`: the reaper owns waitpid. Dropping a std
    // Child neither waits nor kills.
    Ok(Spawned {
        pid: child.id() as i32,
        stdout: child.stdout.take().map(OwnedFd::from),
        stderr: child.stderr.take().map(OwnedFd::from),
    })
}
