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
//! - [`inner`]: starting the pyinit under test;
//! - [`ready`]: waiting for readiness, then for the process tree to settle;
//! - [`observe`]: the `/proc` view (signal masks at the signal) and records;
//! - [`records`]: the records, typed;
//! - [`facts`]: what was observed, as plain data;
//! - [`findings`]: the pure `facts -> findings -> verdict` core;
//! - [`report`]: the report, for people and as JSON.

pub mod facts;
pub mod findings;
pub mod inner;
pub mod observe;
pub mod options;
pub mod ready;
pub mod records;
pub mod report;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::exit_status::Ended;
use findings::{Facts, Managed, ProcObs};
use observe::{Observer, OutputLog};
use options::{CheckCli, Readiness};

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

/// The processes of the set with the exit codes that count as success for
/// each (its own `expect_exit` and `-e`).
fn managed(cfg: &crate::config::Config, opts: &CheckCli) -> Vec<Managed> {
    let global = crate::exit_status::ExpectExit::new(opts.supervisor.expect_exit.clone());
    let ok = |e: &crate::exit_status::ExpectExit, c: i32| e.map(Ended::Exited(c)) == 0;
    cfg.processes
        .iter()
        .map(|p| Managed {
            name: p.name.clone(),
            expect: (1..=255)
                .filter(|&c| ok(&p.expect, c) || ok(&global, c))
                .collect(),
            oneshot: p.oneshot,
        })
        .collect()
}

/// Waits up to `bound` for the pyinit under test to exit; its status, or
/// `None` after killing everything that is left.
fn wait_exit(
    child: &Mutex<std::process::Child>,
    bound: Duration,
    observer: &Observer,
    root: i32,
) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    let give_up = Instant::now() + bound;
    loop {
        let done = child
            .lock()
            .ok()
            .and_then(|mut c| c.try_wait().ok().flatten());
        if let Some(st) = done {
            return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
        }
        if Instant::now() >= give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for pid in observer.all_pids().into_iter().chain([root]) {
        inner::send(pid, libc::SIGKILL);
    }
    if let Ok(mut c) = child.lock() {
        let _ = c.wait();
    }
    None
}

/// Runs the check; returns the process exit code of `pyinit check`.
pub fn main(opts: CheckCli) -> Result<i32, Error> {
    let cfg = plan(&opts)?;
    let managed = managed(&cfg, &opts);
    let isolation = inner::choose_isolation();
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find pyinit's own binary: {e}")))?;
    let run_dir = ready::RunDir::create()
        .map_err(|e| Error::Internal(format!("cannot create a temporary directory: {e}")))?;
    let notify = match opts.ready {
        Readiness::Notify => Some(
            ready::NotifySocket::bind(&run_dir)
                .map_err(|e| Error::Internal(format!("cannot create NOTIFY_SOCKET: {e}")))?,
        ),
        _ => None,
    };
    let mut cmd = inner::command(&opts, &exe, isolation, &run_dir, notify.as_ref());
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
    let observer = Observer::start(root, isolation != inner::Isolation::Subreaper);
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
            inner::send(pid, opts.signal);
        }
    }
    let bound = cfg.stop_delay + cfg.grace + Duration::from_secs(5);
    let pyinit_status = wait_exit(&child, bound, &observer, root);
    let exited_at = Instant::now();
    let snapshot = observer.stop();
    for r in readers {
        let _ = r.join();
    }
    let since = |i: Instant| i.saturating_duration_since(start);
    let default_send = crate::signals::rewrite::Router::new(opts.supervisor.rewrite.clone())
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
