//! `pyinit check`: runs a command the way a container runtime would (pyinit
//! as PID 1 of a fresh PID namespace), waits until it is ready, sends the
//! stop signal as `docker stop` does, watches every process in `/proc` until
//! pyinit exits, and reports how the app shut down.
//!
//! The pyinit under test is this very binary (`/proc/self/exe`), run with
//! `PYINIT_LOG=debug` so that its own lines say which process ended how
//! (`main process 4 exited with status 0`, `reaped 5: ...`, `SIGKILL 6`).

pub mod observe;
pub mod options;
pub mod ready;
pub mod report;

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use observe::{Observer, OutputLog};
use options::{CheckCli, Readiness};

/// How the pyinit under test was isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// PID 1 of a new PID namespace (as root).
    PidNamespace,
    /// PID 1 of a new PID namespace inside a new user namespace.
    UserNamespace,
    /// The kernel refused namespaces: pyinit ran as a child subreaper.
    Subreaper,
}

impl Isolation {
    pub fn describe(self) -> &'static str {
        match self {
            Isolation::PidNamespace => "PID 1 in a new PID namespace",
            Isolation::UserNamespace => "PID 1 in new user and PID namespaces",
            Isolation::Subreaper => {
                "subreaper (the kernel refused a PID namespace; not PID 1 as in a container)"
            }
        }
    }

    fn unshare_args(self) -> &'static [&'static str] {
        match self {
            Isolation::PidNamespace => &["--pid", "--fork", "--mount-proc", "--kill-child"],
            Isolation::UserNamespace => &[
                "--user",
                "--map-root-user",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
            ],
            Isolation::Subreaper => &[],
        }
    }
}

fn isolation_works(iso: Isolation) -> bool {
    Command::new("unshare")
        .args(iso.unshare_args())
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn choose_isolation() -> Isolation {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let order: &[Isolation] = if root {
        &[Isolation::PidNamespace, Isolation::UserNamespace]
    } else {
        &[Isolation::UserNamespace]
    };
    order
        .iter()
        .copied()
        .find(|&i| isolation_works(i))
        .unwrap_or(Isolation::Subreaper)
}

/// Everything the report is made from.
pub struct Run {
    pub isolation: Isolation,
    pub ready: Result<Duration, String>,
    /// When the stop signal was sent (None if the app exited before).
    pub signalled_at: Option<Instant>,
    pub exited_at: Instant,
    /// pyinit's exit code.
    pub exit_code: i32,
    pub observer: observe::Snapshot,
    pub output: OutputLog,
}

/// Runs the check; returns the process exit code of `pyinit check`.
pub fn main(opts: CheckCli) -> Result<i32, Error> {
    let isolation = choose_isolation();
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find pyinit's own binary: {e}")))?;
    let mut cmd = if isolation == Isolation::Subreaper {
        Command::new(&exe)
    } else {
        let mut c = Command::new("unshare");
        c.args(isolation.unshare_args()).arg(&exe);
        c
    };
    // The options the check read from PYINIT_* arrive as flags instead.
    for var in options::pyinit_variables() {
        cmd.env_remove(var);
    }
    cmd.arg("--log-format=raw")
        .args(&opts.pyinit_args)
        .arg("--")
        .args(&opts.command)
        .env("PYINIT_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let notify = match opts.ready {
        Readiness::Notify => Some(
            ready::NotifySocket::bind()
                .map_err(|e| Error::Internal(format!("cannot create NOTIFY_SOCKET: {e}")))?,
        ),
        _ => None,
    };
    if let Some(n) = &notify {
        cmd.env("NOTIFY_SOCKET", n.path());
    }
    // The child must not inherit pyinit's blocked signal mask.
    let startup = crate::signals::mask::ChildSignalState::startup();
    // SAFETY: only sigaction/pthread_sigmask on prepared data after fork.
    unsafe {
        cmd.pre_exec(move || {
            startup.apply_in_child();
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start pyinit under test: {e}")))?;
    let output = OutputLog::default();
    let line_regex = match &opts.ready {
        Readiness::Line(re) => Some(re.clone()),
        _ => None,
    };
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(i, r)| r.map(|r| output.spawn_reader(r, i == 1, line_regex.clone())))
    .collect();
    let root = child.id() as i32;
    let observer = Observer::start(root, isolation != Isolation::Subreaper);
    let child = Arc::new(Mutex::new(child));
    let exited = {
        let child = child.clone();
        move || {
            child
                .lock()
                .map(|mut c| c.try_wait().ok().flatten().is_some())
                .unwrap_or(true)
        }
    };

    let ready = ready::wait(
        &opts.ready,
        opts.ready_timeout,
        start,
        &output,
        notify.as_ref(),
        &exited,
    );
    let pyinit_pid = observer.pyinit_pid(Duration::from_secs(5));
    let mut signalled_at = None;
    if !exited() {
        if let Some(pid) = pyinit_pid {
            observer.mark_signal();
            signalled_at = Some(Instant::now());
            // SAFETY: kill with plain integers, at pyinit's pid as seen from here.
            unsafe { libc::kill(pid, opts.signal) };
        }
    }
    let bound = opts.supervisor.stop_delay + opts.supervisor.grace + Duration::from_secs(5);
    let give_up = Instant::now() + bound;
    let status = loop {
        let done = child
            .lock()
            .ok()
            .and_then(|mut c| c.try_wait().ok().flatten());
        if let Some(st) = done {
            break Some(st);
        }
        if Instant::now() >= give_up {
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let exited_at = Instant::now();
    let exit_code = match status {
        Some(st) => {
            use std::os::unix::process::ExitStatusExt;
            st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
        }
        None => {
            for pid in observer.all_pids().into_iter().chain([root]) {
                // SAFETY: kill with plain integers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if let Ok(mut c) = child.lock() {
                let _ = c.wait();
            }
            -1
        }
    };
    let snapshot = observer.stop();
    for r in readers {
        let _ = r.join();
    }
    let run = Run {
        isolation,
        ready,
        signalled_at,
        exited_at,
        exit_code,
        observer: snapshot,
        output,
    };
    let report = report::Report::build(&opts, &run);
    let text = if opts.json {
        report.to_json()
    } else {
        report.to_human()
    };
    print!("{text}");
    Ok(report.exit_code(opts.strict))
}

/// `OsString` arguments for display.
pub fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
