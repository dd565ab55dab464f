//! pyinit: a tiny PID 1 for Python containers.
//!
//! The binary is a thin wrapper around [`main_entry`]; the modules are public
//! so that tests and benchmarks can reach the pure parts.
//!
//! # Where things live
//!
//! | concern | module | pure? |
//! | --- | --- | --- |
//! | command lines (`pyinit`, `check`, `health`/`status`/`ctl`) | [`cli`], [`check::options`], [`control::client`] | parsing only |
//! | the resolved configuration, Procfile and TOML | [`config`] | yes |
//! | **decisions**: what to start, stop, restart, kill, and the exit status | [`supervisor::state`] | yes: events in, actions out |
//! | which processes a signal reaches (signal scope) | [`supervisor::scope`] | yes |
//! | carrying the decisions out (the event loop) | [`supervisor`] (`mod.rs`) | the driver |
//! | what happened, as typed events (log lines and `json` records) | [`events`] | yes |
//! | starting a child (the only post-fork code) | [`spawn`] | system calls |
//! | the signal mask, signalfd, names and `--rewrite` | [`signals`] | `names`, `rewrite` are pure |
//! | reaping (`waitpid(-1)`, one owner) | [`reaper`] | system calls |
//! | reading `/proc` | [`procs`] | parsing is pure |
//! | output capture: line splitting, formats, writer threads | [`output`] | `lines`, `format` are pure |
//! | the control socket and the status it reports | [`control`], [`status`] | protocol is pure |
//! | terminal decisions | [`tty`] | system calls |
//! | exit codes and errors | [`exit_status`], [`error`] | yes |
//! | `pyinit check` | [`check`] | the verdict is pure |

pub mod check;
pub mod cli;
pub mod config;
pub mod control;
pub mod error;
pub mod events;
pub mod exit_status;
pub mod logging;
pub mod oom;
pub mod output;
pub mod procs;
pub mod reaper;
pub mod signals;
pub mod spawn;
pub mod status;
pub mod supervisor;
pub mod tty;

use std::ffi::OsString;

use error::Error;
use signals::{mask, names};

/// Everything `main` does; returns the process exit code.
///
/// Order matters: the signals are blocked before any thread exists (the
/// tokio runtime and the writer threads inherit the mask), so none is lost
/// and the signalfd sees them all.
pub fn main_entry(args: impl IntoIterator<Item = OsString>) -> i32 {
    mask::capture_startup();
    // One malloc arena: the writer threads allocate next to nothing, and a
    // per-thread arena costs a 64 MB reservation and its set-up per thread.
    // SAFETY: mallopt only tunes the allocator; no thread exists yet.
    // Read buffers (256 KiB) stay on the heap instead of an mmap and munmap
    // (and their page faults) per read, and the heap top is not trimmed and
    // regrown all the time under a log flood.
    // SAFETY: as above.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
    }
    let mut blocked = names::forwardable();
    blocked.push(libc::SIGCHLD);
    let bits = mask::bits_of(blocked.iter().copied());
    let signal_fd =
        match mask::block_for_signalfd(bits).and_then(|()| signals::source::open_signalfd(bits)) {
            Ok(fd) => fd,
            Err(e) => {
                return fail(&Error::Internal(format!(
                    "cannot set up signal handling: {e}"
                )))
            }
        };

    let cli = match cli::parse(args) {
        Ok(cli::Invocation::Run(cli)) => cli,
        Ok(cli::Invocation::Print(text)) => {
            print!("{text}");
            return 0;
        }
        Ok(cli::Invocation::Control(args)) => {
            drop(signal_fd);
            restore_startup_signals();
            return control::client::main(args);
        }
        Ok(cli::Invocation::Check(opts)) => {
            drop(signal_fd);
            restore_startup_signals();
            return check::main(*opts).unwrap_or_else(|e| fail(&e));
        }
        Err(e) => return fail(&e),
    };
    let verbosity = if cli.quiet {
        logging::Verbosity::Quiet
    } else if cli.verbose {
        logging::Verbosity::Verbose
    } else {
        logging::Verbosity::Normal
    };
    let config = match cli.into_config() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    logging::init(verbosity, config.log_format, config.label_width());
    if config.check_config {
        print!("{}", config::plan(&config));
        return 0;
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Error::Internal(format!("cannot start event loop: {e}"))),
    };
    // No early return after this point without flushing the output.
    let result = runtime.block_on(supervisor::run(&config, signal_fd));
    // The process exits right after: closing the event loop's descriptors
    // one by one would only delay the exit status reaching the runtime.
    std::mem::forget(runtime);
    match result {
        Ok(code) => {
            // The last diagnostics (e.g. the exit line under -v) are queued
            // behind the writer thread; bounded, as a stalled stderr must
            // not keep PID 1 alive.
            logging::flush(Some(
                std::time::Instant::now() + std::time::Duration::from_millis(200),
            ));
            code
        }
        Err(e) => {
            tracing::error!("{e}");
            logging::flush(Some(
                std::time::Instant::now() + std::time::Duration::from_secs(1),
            ));
            e.exit_code()
        }
    }
}

/// `check` and the control clients are not PID 1: they run with the
/// signal mask and dispositions pyinit was started with.
fn restore_startup_signals() {
    // SAFETY: restores the start-up mask and dispositions of this process
    // while it is still single-threaded (no runtime, no writer thread yet).
    unsafe { mask::ChildSignalState::startup().apply_in_child() };
}

fn fail(e: &Error) -> i32 {
    logging::write_stderr(&format!("pyinit: error: {e}\n"));
    e.exit_code()
}
