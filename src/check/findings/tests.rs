//! The analysis on synthetic facts: one test per finding, each with the
//! case that must not raise it.
use super::*;
use crate::check::facts::bit;
use crate::check::records::{AppLine, Event, Record, Victim};

const TERM: i32 = libc::SIGTERM;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Signal masks: `catches` TERM, or `ignores` it, or neither.
fn masks(catches: bool, ignores: bool) -> Option<SigMasks> {
    Some(SigMasks {
        caught: if catches { bit(TERM) } else { 0 },
        blocked: 0,
        ignored: if ignores { bit(TERM) } else { 0 },
    })
}

fn proc_(pid: i32, ppid: i32, m: Option<SigMasks>, gone_ms: u64) -> ProcObs {
    ProcObs {
        pid,
        ppid: Some(ppid),
        cmd: format!("python3 proc{pid}.py"),
        first_seen: ms(100),
        gone_at: Some(ms(gone_ms)),
        alive_at_signal: true,
        masks: m,
        zombie_spans: Vec::new(),
        ended: None,
    }
}

/// One main process `app` (pid 2) under pyinit (pid 1), signalled at 1 s.
fn facts(procs: Vec<ProcObs>, events: Vec<(u64, Event)>, status: i32) -> Facts {
    let mut records = vec![(
        ms(50),
        Record::Event(Event::Started {
            process: "app".into(),
            pid: 2,
        }),
    )];
    records.extend(events.into_iter().map(|(t, e)| (ms(t), Record::Event(e))));
    Facts {
        signal: TERM,
        default_send: TERM,
        grace: Duration::from_secs(9),
        multi: false,
        managed: vec![Managed {
            name: "app".into(),
            expect: Vec::new(),
            oneshot: false,
        }],
        ready: Ok(ms(500)),
        signalled_at: Some(ms(1000)),
        exited_at: ms(1500),
        pyinit_status: Some(status),
        procs,
        pyinit_pid: Some(1),
        records,
    }
}

fn sent(at: u64, pids: &[i32], skipped: &[i32]) -> (u64, Event) {
    (
        at,
        Event::SignalSent {
            signal: TERM,
            process: Some("app".into()),
            pids: pids.to_vec(),
            skipped: skipped.to_vec(),
            reason: "stop".into(),
        },
    )
}

fn exited(at: u64, pid: i32, status: i32) -> (u64, Event) {
    (
        at,
        Event::Exited {
            process: "app".into(),
            pid,
            status,
            signal: (status > 128).then_some(status - 128),
        },
    )
}

fn kinds(a: &Analysis) -> Vec<&'static str> {
    a.findings.iter().map(|f| f.kind).collect()
}

fn all_advice(a: &Analysis) -> String {
    a.advice.join("\n")
}

#[test]
fn clean_exit_passes_with_nothing_to_say() {
    let f = facts(
        vec![proc_(2, 1, masks(true, false), 1100)],
        vec![sent(1001, &[2], &[]), exited(1100, 2, 0)],
        0,
    );
    let a = analyse(&f);
    assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
    assert!(a.reason.starts_with("exited with status 0"), "{}", a.reason);
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    assert_eq!(a.processes[0].ended, "exited with status 0 after 0.100s");
}

/// celery under `-g`: the pool processes (no TERM handler) got TERM from
/// pyinit while their parent handles it, and vanished at once.
#[test]
fn children_killed_by_a_direct_stop_signal_are_work_cut_short() {
    let procs = vec![
        proc_(2, 1, masks(true, false), 7000),
        proc_(3, 2, masks(false, false), 1003),
        proc_(4, 2, masks(false, false), 1003),
    ];
    let f = facts(
        procs.clone(),
        vec![sent(1001, &[2, 3, 4], &[]), exited(7000, 2, 0)],
        0,
    );
    let a = analyse(&f);
    assert_eq!(a.verdict, Verdict::Warn, "{a:?}");
    assert_eq!(kinds(&a), ["work_cut_short"]);
    let w = &a.findings[0];
    assert_eq!(w.pids, [3, 4]);
    assert!(w.inferred);
    assert!(w.message.contains("inferred"), "{}", w.message);
    assert!(all_advice(&a).contains("--signal-scope auto"), "{a:?}");
    assert!(a.processes[1].ended.starts_with("died of SIGTERM"));

    // Under `auto` pyinit spares them: nothing to report.
    let f = facts(
        procs.clone(),
        vec![sent(1001, &[2], &[3, 4]), exited(7000, 2, 0)],
        0,
    );
    let a = analyse(&f);
    assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
    assert!(a.findings.is_empty(), "{:?}", a.findings);

    // A child with its own TERM handler that exits is not cut short.
    let mut handled = procs.clone();
    handled[1].masks = masks(true, false);
    handled[2].masks = masks(true, false);
    let f = facts(
        handled,
        vec![sent(1001, &[2, 3, 4], &[]), exited(7000, 2, 0)],
        0,
    );
    assert!(analyse(&f).findings.is_empty());

    // A parent without a handler: its children are meant to get it.
    let mut plain = procs;
    plain[0].masks = masks(false, false);
    let f = facts(
        plain,
        vec![sent(1001, &[2, 3, 4], &[]), exited(1002, 2, 143)],
        143,
    );
    assert!(!kinds(&analyse(&f)).contains(&"work_cut_short"));
}

#[test]
fn a_status_pyinit_reaped_is_not_inferred() {
    let procs = vec![
        proc_(2, 1, masks(true, false), 1010),
        proc_(3, 2, None, 1020),
    ];
    let f = facts(
        procs,
        vec![
            sent(1001, &[2, 3], &[]),
            exited(1010, 2, 0),
            (
                1020,
                Event::Reaped {
                    pid: 3,
                    status: 143,
                    signal: Some(TERM),
                },
            ),
        ],
        0,
    );
    let a = analyse(&f);
    assert_eq!(kinds(&a), ["work_cut_short"]);
    assert!(!a.findings[0].inferred);
    assert_eq!(a.processes[1].ended, "killed by SIGTERM after 0.020s");
}

/// uvicorn: a TERM handler runs the lifespan shutdown, then re-raises.
#[test]
fn handled_then_reraised_warns_with_expect_exit_advice() {
    let procs = vec![proc_(2, 1, masks(true, false), 1200)];
    let events = vec![sent(1001, &[2], &[]), exited(1200, 2, 143)];
    let a = analyse(&facts(procs.clone(), events.clone(), 143));
    assert_eq!(a.verdict, Verdict::Warn);
    assert_eq!(kinds(&a), ["handled_then_reraised"]);
    assert!(a.reason.contains("re-raised"), "{}", a.reason);
    let advice = all_advice(&a);
    assert!(advice.contains("-e 143"), "{advice}");
    assert!(!advice.contains("signal.signal"), "{advice}");
    assert_eq!(a.exit_status, 143);

    // With -e 143 (pyinit then exits 0): PASS.
    let mut f = facts(procs, events, 0);
    f.managed[0].expect = vec![143];
    let a = analyse(&f);
    assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
    assert!(a.findings.is_empty());
    assert_eq!(a.exit_status, 143);
}

#[test]
fn unhandled_death_warns_with_handler_advice() {
    let procs = vec![proc_(2, 1, masks(false, false), 1003)];
    let a = analyse(&facts(
        procs,
        vec![sent(1001, &[2], &[]), exited(1003, 2, 143)],
        143,
    ));
    assert_eq!(a.verdict, Verdict::Warn);
    assert_eq!(kinds(&a), ["died_of_stop_signal"]);
    assert!(a.reason.contains("no handler"), "{}", a.reason);
    assert!(all_advice(&a).contains("-r TERM:INT"));
}

fn killed(at: u64, victims: &[i32]) -> (u64, Event) {
    (
        at,
        Event::Killed {
            process: None,
            grace_s: 9.0,
            victims: victims
                .iter()
                .map(|&pid| Victim {
                    pid,
                    cmd: format!("python3 proc{pid}.py"),
                })
                .collect(),
        },
    )
}

/// A main process that handles TERM, never passes it on, and waits for
/// a child that never got it.
#[test]
fn children_that_never_got_the_signal_fail_with_group_advice() {
    let procs = vec![
        proc_(2, 1, masks(true, false), 10000),
        proc_(3, 2, masks(false, false), 10000),
    ];
    let events = vec![
        sent(1001, &[2], &[3]),
        killed(10000, &[2, 3]),
        exited(10001, 2, 137),
    ];
    let a = analyse(&facts(procs.clone(), events.clone(), 137));
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(a.reason.contains("needed SIGKILL"), "{}", a.reason);
    assert_eq!(kinds(&a), ["children_never_signalled"]);
    assert_eq!(a.findings[0].pids, [3]);
    let advice = all_advice(&a);
    assert!(advice.contains("--signal-scope group"), "{advice}");
    assert!(!advice.contains("-c"), "{advice}");
    assert!(a.killed);
    assert!(a.processes.iter().all(|p| p.killed));

    // A child that ignores TERM: group would not help, so say so.
    let mut deaf = procs;
    deaf[1].masks = masks(false, true);
    let a = analyse(&facts(deaf, events, 137));
    let advice = all_advice(&a);
    assert!(advice.contains("would not help"), "{advice}");
}

#[test]
fn main_killed_without_children_gets_handler_advice() {
    let procs = vec![proc_(2, 1, masks(false, true), 10000)];
    let a = analyse(&facts(
        procs,
        vec![
            sent(1001, &[2], &[]),
            killed(10000, &[2]),
            exited(10001, 2, 137),
        ],
        137,
    ));
    assert_eq!(a.verdict, Verdict::Fail);
    assert_eq!(kinds(&a), ["main_killed"]);
    assert!(all_advice(&a).contains("-r TERM:INT"));
}

#[test]
fn oom_kills_are_reported() {
    let procs = vec![proc_(2, 1, masks(true, false), 1100)];
    let a = analyse(&facts(
        procs,
        vec![
            (
                800,
                Event::OomKill {
                    process: Some("app".into()),
                    pid: Some(5),
                    cmd: Some("python3 hog.py".into()),
                    limit_bytes: Some(64 << 20),
                    peak_bytes: Some(63 << 20),
                },
            ),
            sent(1001, &[2], &[]),
            exited(1100, 2, 0),
        ],
        0,
    ));
    assert_eq!(a.verdict, Verdict::Warn);
    assert_eq!(a.oom_kills.len(), 1);
    assert_eq!(kinds(&a), ["oom_kill"]);
    assert!(a.findings[0].message.contains("limit 64 MiB"), "{a:?}");
}

#[test]
fn only_zombies_that_stayed_before_the_signal_count() {
    let mut stayed = proc_(3, 2, None, 1100);
    stayed.zombie_spans = vec![(ms(300), ms(1100))];
    let mut stopping = proc_(4, 2, None, 1800);
    stopping.zombie_spans = vec![(ms(1050), ms(1750))];
    let procs = vec![proc_(2, 1, masks(true, false), 1100), stayed, stopping];
    let a = analyse(&facts(
        procs,
        vec![sent(1001, &[2], &[3, 4]), exited(1100, 2, 0)],
        0,
    ));
    assert_eq!(a.zombies.len(), 1, "{:?}", a.zombies);
    assert_eq!(a.zombies[0].pid, 3);
    assert_eq!(a.zombies[0].seconds, 0.7);
    assert_eq!(a.verdict, Verdict::Pass);
    assert_eq!(kinds(&a), ["zombies"]);
}

fn app(at: u64, line: &str) -> (Duration, Record) {
    (
        ms(at),
        Record::App(AppLine {
            name: "app".into(),
            pid: 4,
            stderr: true,
            line: line.into(),
            partial: false,
        }),
    )
}

#[test]
fn error_lines_during_the_stop_warn_and_quote_the_line() {
    let procs = vec![proc_(2, 1, masks(true, false), 1100)];
    let mut f = facts(procs, vec![sent(1001, &[2], &[]), exited(1100, 2, 0)], 0);
    f.records
        .push(app(900, "[2026-01-01] [ERROR] before the stop: not ours"));
    f.records.push(app(
        1050,
        "[2026-01-01 00:00:00 +0000] [1] [ERROR] Worker (pid:4) was sent SIGTERM!",
    ));
    f.records.push(app(1060, "[INFO] Shutting down: Master"));
    let a = analyse(&f);
    assert_eq!(a.verdict, Verdict::Warn);
    assert_eq!(kinds(&a), ["shutdown_errors"]);
    assert!(a.findings[0].message.contains("was sent SIGTERM!"));
    assert!(!a.findings[0].message.contains("not ours"));
    assert!(all_advice(&a).contains("--signal-scope auto"));
    assert_eq!(a.stderr_tail.len(), 3);
}

#[test]
fn partial_pieces_join_and_a_late_burst_is_block_buffered() {
    let procs = vec![proc_(2, 1, masks(true, false), 1100)];
    let mut f = facts(procs, vec![sent(1001, &[2], &[]), exited(1100, 2, 0)], 0);
    let mut piece = app(1010, "first ");
    if let Record::App(l) = &mut piece.1 {
        l.partial = true;
    }
    f.records.push(piece);
    f.records.push(app(1011, "half"));
    f.records.push(app(1012, "second"));
    let a = analyse(&f);
    assert_eq!(a.stderr_tail, ["first half", "second"]);
    assert!(!a.line_buffered);
    assert!(all_advice(&a).contains("block-buffered"));
}

#[test]
fn a_set_reports_per_process_and_names_the_one_that_failed() {
    let procs = vec![
        proc_(2, 1, masks(true, false), 1100),
        proc_(3, 1, masks(true, false), 1100),
    ];
    let mut f = facts(procs, Vec::new(), 0);
    f.multi = true;
    f.managed = ["web", "worker"]
        .iter()
        .map(|n| Managed {
            name: n.to_string(),
            expect: Vec::new(),
            oneshot: false,
        })
        .collect();
    f.records = vec![
        (
            ms(50),
            Record::Event(Event::Started {
                process: "web".into(),
                pid: 2,
            }),
        ),
        (
            ms(50),
            Record::Event(Event::Started {
                process: "worker".into(),
                pid: 3,
            }),
        ),
    ];
    let mut all_ok = f.clone();
    let mut one_bad = f;
    for (name, pid, st) in [("web", 2, 0), ("worker", 3, 0)] {
        let ev = |s| {
            (
                ms(1100),
                Record::Event(Event::Exited {
                    process: name.into(),
                    pid,
                    status: s,
                    signal: None,
                }),
            )
        };
        all_ok.records.push(ev(st));
        one_bad
            .records
            .push(ev(if name == "worker" { 1 } else { 0 }));
    }
    let a = analyse(&all_ok);
    assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
    assert!(a.reason.contains("all 2 processes"), "{}", a.reason);
    assert_eq!(a.processes[0].name.as_deref(), Some("web"));
    assert_eq!(a.processes[1].name.as_deref(), Some("worker"));
    let a = analyse(&one_bad);
    assert_eq!(a.verdict, Verdict::Fail, "{a:?}");
    assert!(
        a.reason.starts_with("worker: exited with status 1"),
        "{}",
        a.reason
    );
    assert!(all_advice(&a).contains("-e 1"));
}

#[test]
fn never_ready_fails() {
    let mut f = facts(Vec::new(), Vec::new(), 0);
    f.ready = Err("no line matched /x/".into());
    f.signalled_at = None;
    let a = analyse(&f);
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(a.reason.contains("never became ready"));
    assert!(all_advice(&a).contains("--ready-timeout"));
}

/// celery under `-g`: the pool died of the direct TERM and the master then
/// waited until the deadline. The advice is the scope, not a handler.
#[test]
fn a_master_hung_after_its_workers_were_cut_short_gets_scope_advice() {
    let procs = vec![
        proc_(2, 1, masks(true, false), 10000),
        proc_(3, 2, masks(false, false), 1400),
        proc_(4, 2, masks(false, false), 1400),
    ];
    let a = analyse(&facts(
        procs,
        vec![
            sent(1001, &[2, 3, 4], &[]),
            killed(10000, &[2]),
            exited(10001, 2, 137),
        ],
        137,
    ));
    assert_eq!(a.verdict, Verdict::Fail);
    assert_eq!(kinds(&a), ["work_cut_short", "main_killed"]);
    let advice = all_advice(&a);
    assert!(advice.contains("--signal-scope auto"), "{advice}");
    assert!(!advice.contains("handler must"), "{advice}");
}

/// pyinit may send the leftovers of a main process it killed at the
/// deadline a TERM after the SIGKILL: they did not outlive it.
#[test]
fn signals_after_the_deadline_kill_change_nothing() {
    let procs = vec![
        proc_(2, 1, masks(true, false), 2000),
        proc_(3, 2, masks(false, false), 2000),
    ];
    let a = analyse(&facts(
        procs,
        vec![
            sent(1001, &[2], &[3]),
            killed(2000, &[2, 3]),
            exited(2001, 2, 137),
            (
                2002,
                Event::SignalSent {
                    signal: TERM,
                    process: None,
                    pids: vec![3],
                    skipped: Vec::new(),
                    reason: "leftover".into(),
                },
            ),
        ],
        137,
    ));
    assert_eq!(kinds(&a), ["children_never_signalled"], "{:?}", a.findings);
}

/// A pool worker that got the stop signal with its main process and went a
/// moment later did not "outlive" it; one outside the group did.
#[test]
fn only_processes_the_stop_missed_outlived_the_main_process() {
    let procs = vec![
        proc_(2, 1, masks(false, false), 1003),
        proc_(3, 2, masks(false, false), 1004),
        proc_(4, 2, masks(false, false), 1200),
    ];
    let leftover = |pids: &[i32]| {
        (
            1003,
            Event::SignalSent {
                signal: TERM,
                process: None,
                pids: pids.to_vec(),
                skipped: Vec::new(),
                reason: "leftover".into(),
            },
        )
    };
    let a = analyse(&facts(
        procs,
        vec![
            sent(1001, &[2, 3], &[]),
            exited(1002, 2, 143),
            leftover(&[3, 4]),
        ],
        143,
    ));
    let outlived = a.findings.iter().find(|f| f.kind == "outlived_main");
    assert_eq!(outlived.map(|f| f.pids.clone()), Some(vec![4]), "{a:?}");
}
