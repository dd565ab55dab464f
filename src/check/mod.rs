//! `pyinit check`: runs a command the way a container runtime would (pyinit
//! as PID 1 of a fresh PID namespace), waits until it is ready, sends the
//! stop signal as `docker stop` does, watches every process in `/proc` until
//! pyinit exits, and reports how the app shut down.
//!
//! The pyinit under test is this very binary (`/proc/self/exe`), run with
//! `--log-format json -v`: its structured event records (`docs/events.md`)
//! say who started, got which signal and ended how; its app records carry
//! the output. The modules, in the order a run uses them:
//! - [`options`]: the command line;
//! - [`ready`]: waiting for readiness, then for the process tree to settle;
//! - [`observe`]: the `/proc` view (signal masks at the signal) and records;
//! - [`records`]: the records, typed;
//! - [`facts`]: what was observed, as plain data;
//! - [`findings`]: the pure `facts -> findings -> verdict` core;
//! - [`report`]: the report, for people and as JSON.

pub mod facts;
pub mod findings;
pub mod observe;
pub mod options;
pub mod ready;
pub mod records;
pub mod report;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::Error;
use crate::exit_status::Ended;
use findings::{Facts, Managed, ProcObs};
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
    let root = nix::unistd::geteuid().is_root();
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

/// Sends `sig` to `pid`; a pid that is gone is not an error here.
fn send(pid: i32, sig: i32) {
    match Signal::try_from(sig) {
        Ok(s) => {
            let _ = kill(Pid::from_raw(pid), s);
        }
        Err(_) => {
            // nix's `Signal` has no real-time signals (`--signal RTMIN+3`).
            // SAFETY: kill takes plain integers and has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Options `check` sets itself for the pyinit under test; dropped from the
/// pass-through arguments (with the value of those that take one).
const OWN_SWITCHES: &[&str] = &[
    "-v",
    "--verbose",
    "-q",
    "--quiet",
    "--no-capture",
    "--check-config",
];
const OWN_VALUED: &[&str] = &["--log-format", "--procfile", "--config"];

/// Variables that would change what the pyinit under test writes or runs.
const OWN_VARIABLES: &[&str] = &[
    "PYINIT_LOG",
    "PYINIT_LOG_FORMAT",
    "PYINIT_NO_CAPTURE",
    "PYINIT_QUIET",
    "PYINIT_VERBOSE",
    "PYINIT_PROCFILE",
    "PYINIT_CONFIG",
    "PYINIT_CHECK_CONFIG",
];

/// The pass-through arguments without the options `check` owns.
fn pass_through(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let s = a.to_string_lossy();
        let flag = s.split('=').next().unwrap_or("");
        if OWN_SWITCHES.contains(&flag) {
            continue;
        }
        if OWN_VALUED.contains(&flag) {
            skip_value = !s.contains('=');
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// The inner pyinit's command line: options, then the set or the command.
fn inner_args(opts: &CheckCli) -> Vec<OsString> {
    let mut args = pass_through(&opts.pyinit_args);
    args.push("--log-format=json".into());
    args.push("-v".into());
    if let Some(p) = &opts.procfile {
        args.push("--procfile".into());
        args.push(p.into());
    } else if let Some(c) = &opts.config {
        args.push("--config".into());
        args.push(c.into());
    } else {
        args.push("--".into());
        args.extend(opts.command.iter().cloned());
    }
    args
}

/// The processes of the set as configured (and a usage error, before
/// anything starts, for a set that cannot run).
fn plan(opts: &CheckCli) -> Result<crate::config::Config, Error> {
    let mut cli = opts.supervisor.clone();
    cli.procfile = opts.procfile.clone();
    cli.config = opts.config.clone();
    cli.command = if opts.procfile.is_some() || opts.config.is_some() {
        Vec::new()
    } else {
        opts.command.clone()
    };
    cli.check_config = false;
    cli.into_config()
}

/// Runs the check; returns the process exit code of `pyinit check`.
pub fn main(opts: CheckCli) -> Result<i32, Error> {
    let cfg = plan(&opts)?;
    let global_expect = crate::exit_status::ExpectExit::new(opts.supervisor.expect_exit.clone());
    let managed: Vec<Managed> = cfg
        .processes
        .iter()
        .map(|p| Managed {
            name: p.name.clone(),
            expect: (1..=255)
                .filter(|&c| {
                    p.expect.map(Ended::Exited(c)) == 0 || global_expect.map(Ended::Exited(c)) == 0
                })
                .collect(),
            oneshot: p.oneshot,
        })
        .collect();
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
    cmd.args(inner_args(&opts))
        .env("PYINIT_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in OWN_VARIABLES.iter().filter(|v| **v != "PYINIT_LOG") {
        cmd.env_remove(var);
    }
    let run_dir = ready::RunDir::create()
        .map_err(|e| Error::Internal(format!("cannot create a temporary directory: {e}")))?;
    // Its own control socket: never the one of a pyinit running here (or of
    // another check running at the same time).
    if std::env::var_os("PYINIT_SOCKET").is_none() {
        cmd.env("PYINIT_SOCKET", run_dir.path().join("control.sock"));
    }
    let notify = match opts.ready {
        Readiness::Notify => Some(
            ready::NotifySocket::bind(&run_dir)
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
    .flatten()
    .map(|r| output.spawn_reader(r, line_regex.clone()))
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
    let settled = ready.as_ref().ok().map(|probe| {
        let at = ready::settle(
            start + *probe,
            ready::SETTLE_QUIET,
            ready::SETTLE_MAX,
            &|| observer.last_change(),
            &exited,
        );
        at - start
    });
    let pyinit_pid = observer.pyinit_pid(Duration::from_secs(5));
    let mut signalled_at = None;
    if !exited() {
        if let Some(pid) = pyinit_pid {
            observer.mark_signal();
            signalled_at = Some(Instant::now());
            send(pid, opts.signal);
        }
    }
    let bound = cfg.stop_delay + cfg.grace + Duration::from_secs(5);
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
    let pyinit_status = match status {
        Some(st) => {
            use std::os::unix::process::ExitStatusExt;
            Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
        }
        None => {
            for pid in observer.all_pids().into_iter().chain([root]) {
                send(pid, libc::SIGKILL);
            }
            if let Ok(mut c) = child.lock() {
                let _ = c.wait();
            }
            None
        }
    };
    let snapshot = observer.stop();
    for r in readers {
        let _ = r.join();
    }
    let since = |i: Instant| i.saturating_duration_since(start);
    let default_send = crate::signals::rewrite::Router::new(
        opts.supervisor.rewrite.clone(),
        opts.supervisor.single_child,
    )
    .route(opts.signal)
    .map_or(0, |r| r.send);
    let facts = Facts {
        signal: opts.signal,
        default_send,
        grace: cfg.grace,
        multi: cfg.multi,
        managed,
        ready: ready.clone(),
        signalled_at: signalled_at.map(since),
        exited_at: since(exited_at),
        pyinit_status,
        procs: proc_facts(&snapshot, &since),
        pyinit_pid: snapshot.pyinit_ns_pid,
        records: output
            .lines()
            .into_iter()
            .map(|l| (since(l.at), l.record))
            .collect(),
    };
    let analysis = findings::analyse(&facts);
    let command = if let Some(p) = &opts.procfile {
        format!("--procfile {}", p.display())
    } else if let Some(c) = &opts.config {
        format!("--config {}", c.display())
    } else {
        shell_words(&opts.command)
    };
    let report = report::Report {
        command,
        isolation: isolation.describe(),
        signal: crate::signals::names::name(opts.signal),
        grace_s: cfg.grace.as_secs_f64(),
        ready_s: ready.as_ref().ok().map(|d| report::round(*d)),
        settled_s: settled.map(report::round),
        analysis,
    };
    let text = if opts.json {
        report.to_json()
    } else {
        report.to_human()
    };
    print!("{text}");
    Ok(report.exit_code(opts.strict))
}

/// The `/proc` picture in the PID namespace of the pyinit under test.
fn proc_facts(snap: &observe::Snapshot, since: &dyn Fn(Instant) -> Duration) -> Vec<ProcObs> {
    let mut ns: HashMap<i32, i32> = snap.procs.iter().map(|p| (p.host_pid, p.ns_pid)).collect();
    if let (Some(host), Some(inner)) = (snap.pyinit_pid, snap.pyinit_ns_pid) {
        ns.insert(host, inner);
    }
    snap.procs
        .iter()
        .map(|p| ProcObs {
            pid: p.ns_pid,
            ppid: p.at_signal.and_then(|s| ns.get(&s.ppid).copied()),
            cmd: p.cmd.clone(),
            first_seen: since(p.first_seen),
            gone_at: p.gone_at.map(since),
            alive_at_signal: p.alive_at_signal,
            masks: p.at_signal.map(|s| s.masks),
            ended: p
                .wait_status
                .and_then(Ended::from_wait_status)
                .map(|e| match e {
                    Ended::Exited(c) => (c, None),
                    Ended::Signaled(n) => (128 + n, Some(n)),
                }),
            zombie_spans: p
                .zombie_spans
                .iter()
                .map(|&(a, b)| (since(a), since(b)))
                .collect(),
        })
        .collect()
}

/// `OsString` arguments for display.
pub fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_drops_the_options_check_owns() {
        let args: Vec<OsString> = [
            "-t",
            "1s",
            "-v",
            "--log-format",
            "raw",
            "--procfile=P",
            "-e",
            "143",
            "--quiet",
            "--config",
            "c.toml",
            "-g",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let kept: Vec<String> = pass_through(&args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["-t", "1s", "-e", "143", "-g"]);
    }
}
