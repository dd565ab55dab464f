//! The state machine's decisions, without processes: every test feeds
//! inputs with explicit times and checks the actions that come out.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{ProcessSpec, Restart, RestartPolicy, SignalScope};
use crate::exit_status::ExpectExit;
use crate::output::format::LogFormat;
use crate::signals::rewrite::{parse_rule, Router};

const TERM: i32 = libc::SIGTERM;
const KILLED_BY_TERM: Ended = Ended::Signaled(libc::SIGTERM);

fn spec(name: &str) -> ProcessSpec {
    ProcessSpec::new(
        name.into(),
        vec![OsString::from("true")],
        Vec::new(),
        Duration::from_secs(5),
    )
}

fn config(processes: Vec<ProcessSpec>, multi: bool) -> Config {
    let n = processes.len();
    Config {
        processes,
        multi,
        check_config: false,
        grace: Duration::from_secs(9),
        stop_delay: Duration::ZERO,
        router: Router::new(Vec::new()),
        signal_scope: SignalScope::Auto,
        expect: ExpectExit::default(),
        log_format: LogFormat::Raw,
        no_capture: false,
        max_line: 1024,
        start_order: (0..n).collect(),
        socket: Default::default(),
    }
}

/// A clock and a machine; `at(ms)` moves the clock.
struct Sim<'a> {
    m: Machine<'a>,
    t0: Instant,
    now: Instant,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a Config) -> Self {
        let t0 = Instant::now();
        Sim {
            m: Machine::new(cfg, true),
            t0,
            now: t0,
        }
    }
    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = self.t0 + Duration::from_millis(ms);
        self
    }
    fn feed(&mut self, input: Input) -> Vec<Action> {
        self.m.handle(self.now, input)
    }
    fn start(&mut self) -> Vec<Action> {
        self.feed(Input::Tick)
    }
    fn spawned(&mut self, process: usize, pid: i32) -> Vec<Action> {
        self.feed(Input::Spawned { process, pid })
    }
    fn exited(&mut self, pid: i32, ended: Ended) -> Vec<Action> {
        self.feed(Input::Reaped { pid, ended })
    }
    fn state(&self, i: usize) -> ProcState {
        self.m.status(self.now).processes[i].state
    }
}

fn spawns(actions: &[Action]) -> Vec<usize> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn(i) => Some(*i),
            _ => None,
        })
        .collect()
}

fn sends(actions: &[Action]) -> Vec<(usize, i32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                process, signal, ..
            } => Some((*process, *signal)),
            _ => None,
        })
        .collect()
}

fn has(actions: &[Action], f: impl Fn(&Action) -> bool) -> bool {
    actions.iter().any(f)
}

fn finished(actions: &[Action]) -> bool {
    has(actions, |a| matches!(a, Action::Finish))
}

fn emitted(actions: &[Action], kind: &str) -> bool {
    has(
        actions,
        |a| matches!(a, Action::Emit(e) if e.kind() == kind),
    )
}

// ---------------------------------------------------------------- single

#[test]
fn single_command_starts_and_stops_per_scope_then_finishes_with_its_status() {
    let cfg = config(vec![spec("app")], false);
    let mut s = Sim::new(&cfg);
    assert_eq!(spawns(&s.start()), vec![0]);
    s.spawned(0, 10);
    assert_eq!(s.state(0), ProcState::Running);
    let a = s.at(100).feed(Input::Signal(TERM));
    assert_eq!(
        a.iter().find(|a| matches!(a, Action::Send { .. })).cloned(),
        Some(Action::Send {
            process: 0,
            signal: TERM,
            delivery: Delivery::Scope(SignalScope::Auto),
            reason: SendReason::Stop
        })
    );
    assert_eq!(s.state(0), ProcState::Stopping);
    s.feed(Input::ChildrenLeft(false));
    let a = s.at(200).exited(10, KILLED_BY_TERM);
    assert!(finished(&a), "{a:?}");
    assert_eq!(s.m.exit_code(), 143);
}

#[test]
fn rewrite_changes_what_is_sent_not_that_it_stops() {
    let mut cfg = config(vec![spec("app")], false);
    cfg.router = Router::new(vec![
        parse_rule("TERM:INT").unwrap(),
        parse_rule("HUP:TERM").unwrap(),
    ]);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    // HUP rewritten to TERM: sent to the main process, no stop.
    let a = s.feed(Input::Signal(libc::SIGHUP));
    assert_eq!(sends(&a), vec![(0, TERM)]);
    assert_eq!(s.m.phase(), Phase::Running);
    let a = s.feed(Input::Signal(TERM));
    assert_eq!(sends(&a), vec![(0, libc::SIGINT)]);
    assert!(matches!(s.m.phase(), Phase::Stopping { .. }));
}

#[test]
fn a_dropped_signal_does_nothing_at_all() {
    let mut cfg = config(vec![spec("app")], false);
    cfg.router = Router::new(vec![parse_rule("TERM:0").unwrap()]);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let a = s.at(100).feed(Input::Signal(TERM));
    assert!(sends(&a).is_empty());
    assert!(emitted(&a, "signal_dropped"));
    assert_eq!(s.m.phase(), Phase::Running);
    assert_eq!(s.m.next_deadline(), None, "no deadline is armed");
}

#[test]
fn a_non_stop_signal_arms_no_deadline() {
    let mut cfg = config(vec![spec("app")], false);
    cfg.router = Router::new(vec![parse_rule("HUP:TERM").unwrap()]);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.feed(Input::Signal(libc::SIGHUP));
    assert_eq!(s.m.next_deadline(), None);
    assert!(!s.m.status(s.now).stopping);
}

#[test]
fn grace_ends_in_sigkill_of_everything() {
    let mut cfg = config(vec![spec("app")], false);
    cfg.grace = Duration::from_secs(2);
    cfg.processes[0].grace = Duration::from_secs(2);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.at(1000).feed(Input::Signal(TERM));
    assert_eq!(
        s.m.next_deadline(),
        Some(s.t0 + Duration::from_millis(3000))
    );
    let a = s.at(2999).feed(Input::Tick);
    assert!(!has(&a, |a| matches!(a, Action::KillEverything { .. })));
    let a = s.at(3000).feed(Input::Tick);
    assert!(
        has(&a, |a| matches!(a, Action::KillEverything { .. })),
        "{a:?}"
    );
    s.feed(Input::ChildrenLeft(false));
    let a = s.at(3010).exited(10, Ended::Signaled(libc::SIGKILL));
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), 137);
}

#[test]
fn main_exit_sends_term_to_leftovers_and_waits_for_them() {
    let cfg = config(vec![spec("app")], false);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    // A grandchild still lives: children remain after the main exits.
    let a = s.at(500).exited(10, Ended::Exited(3));
    assert!(
        has(&a, |a| matches!(a, Action::SignalLeftovers(TERM))),
        "{a:?}"
    );
    assert!(!finished(&a));
    let a = s.at(9400).feed(Input::Tick);
    assert!(!has(&a, |a| matches!(a, Action::KillEverything { .. })));
    let a = s.at(9500).feed(Input::Tick);
    assert!(has(&a, |a| matches!(a, Action::KillEverything { .. })));
    let a = s.at(9510).feed(Input::ChildrenLeft(false));
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), 3);
}

#[test]
fn expect_exit_maps_the_final_status() {
    let mut cfg = config(vec![spec("app")], false);
    cfg.expect = ExpectExit::new(vec![143]);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.feed(Input::Signal(TERM));
    s.feed(Input::ChildrenLeft(false));
    s.exited(10, KILLED_BY_TERM);
    assert_eq!(s.m.exit_code(), 0);
}

#[test]
fn stop_delay_waits_and_a_second_stop_signal_ends_the_wait() {
    let mut cfg = config(vec![spec("app")], false);
    cfg.stop_delay = Duration::from_secs(5);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let a = s.at(1000).feed(Input::Signal(TERM));
    assert!(sends(&a).is_empty());
    assert!(emitted(&a, "stop_delayed"));
    assert!(
        s.m.status(s.now).stopping,
        "health reports stopping during the delay"
    );
    assert_eq!(s.m.next_deadline(), Some(s.t0 + Duration::from_secs(6)));
    let a = s.at(5999).feed(Input::Tick);
    assert!(sends(&a).is_empty());
    let a = s.at(6000).feed(Input::Tick);
    assert_eq!(sends(&a), vec![(0, TERM)]);

    // Second signal during the delay: sent at once.
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.at(1000).feed(Input::Signal(TERM));
    let a = s.at(1500).feed(Input::Signal(libc::SIGINT));
    assert_eq!(sends(&a), vec![(0, libc::SIGINT)]);
}

#[test]
fn non_stop_signals_go_to_the_main_process_in_single_mode() {
    let cfg = config(vec![spec("app")], false);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let a = s.feed(Input::Signal(libc::SIGHUP));
    assert!(has(&a, |a| matches!(
        a,
        Action::Send {
            delivery: Delivery::Main,
            reason: SendReason::Forward,
            ..
        }
    )));
    assert_eq!(s.m.phase(), Phase::Running);
}

#[test]
fn single_child_sends_stop_signals_to_the_main_process_only() {
    let mut cfg = config(vec![spec("app")], false);
    // As the CLI builds it for `-c`: the config's and the process's scope.
    cfg.signal_scope = SignalScope::Main;
    cfg.processes[0].signal_scope = SignalScope::Main;
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    assert_eq!(s.m.pgid(0), None);
    let a = s.feed(Input::Signal(TERM));
    assert!(has(&a, |a| matches!(
        a,
        Action::Send {
            delivery: Delivery::Scope(SignalScope::Main),
            ..
        }
    )));
}

#[test]
fn second_stop_signal_goes_to_what_is_stopping() {
    let cfg = config(vec![spec("app")], false);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.feed(Input::Signal(libc::SIGINT));
    let a = s.feed(Input::Signal(libc::SIGINT));
    assert_eq!(sends(&a), vec![(0, libc::SIGINT)]);
}

// ---------------------------------------------------------------- multi

fn two_procs() -> Config {
    config(vec![spec("web"), spec("worker")], true)
}

#[test]
fn multi_non_stop_signals_follow_handlers_or_the_signals_list() {
    let mut cfg = two_procs();
    cfg.processes[1].signals = Some(vec![]);
    let mut s = Sim::new(&cfg);
    spawns(&s.start());
    s.spawned(0, 10);
    s.spawned(1, 20);
    let a = s.feed(Input::Signal(libc::SIGHUP));
    assert_eq!(
        a.iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .cloned()
            .collect::<Vec<_>>(),
        vec![Action::Send {
            process: 0,
            signal: libc::SIGHUP,
            delivery: Delivery::IfWanted { listed: None },
            reason: SendReason::Forward
        }]
    );
    assert!(emitted(&a, "signal_skipped"), "worker's empty list is said");
    cfg.processes[1].signals = Some(vec![libc::SIGHUP]);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    let a = s.feed(Input::Signal(libc::SIGHUP));
    assert!(has(&a, |a| matches!(
        a,
        Action::Send {
            process: 1,
            delivery: Delivery::Main,
            ..
        }
    )));
}

#[test]
fn a_process_exit_stops_the_others_and_gives_its_status() {
    let cfg = two_procs();
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    let a = s.at(100).exited(20, Ended::Exited(4));
    assert!(emitted(&a, "stopping_others"));
    assert_eq!(sends(&a), vec![(0, TERM)]);
    s.feed(Input::ChildrenLeft(false));
    let a = s.at(200).exited(10, KILLED_BY_TERM);
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), 4);
}

#[test]
fn a_stop_signal_gives_the_first_non_zero_status_in_config_order() {
    let cfg = config(vec![spec("a"), spec("b"), spec("c")], true);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    s.spawned(2, 30);
    s.feed(Input::Signal(TERM));
    s.exited(30, Ended::Exited(7));
    s.exited(10, Ended::Exited(0));
    s.feed(Input::ChildrenLeft(false));
    let a = s.exited(20, KILLED_BY_TERM);
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), 143);
}

#[test]
fn a_spawn_failure_counts_as_an_exit() {
    let cfg = two_procs();
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let a = s.feed(Input::SpawnFailed {
        process: 1,
        code: 127,
        message: "not found".into(),
    });
    assert!(emitted(&a, "spawn_failed"));
    assert_eq!(sends(&a), vec![(0, TERM)]);
    s.feed(Input::ChildrenLeft(false));
    s.exited(10, KILLED_BY_TERM);
    assert_eq!(s.m.exit_code(), 127);
}

#[test]
fn a_failed_start_cancels_the_starts_asked_for_in_the_same_turn() {
    let cfg = config(vec![spec("a"), spec("b"), spec("c")], true);
    let mut s = Sim::new(&cfg);
    assert_eq!(spawns(&s.start()), vec![0, 1, 2]);
    s.spawned(0, 10);
    s.feed(Input::SpawnFailed {
        process: 1,
        code: 126,
        message: "EAGAIN".into(),
    });
    assert!(
        !s.m.spawn_pending(2),
        "c must not start once the stop began"
    );
    assert_eq!(s.state(2), ProcState::Waiting);
}

#[test]
fn restarts_back_off_doubling_then_give_up_after_the_limit() {
    let mut cfg = two_procs();
    cfg.processes[1].restart = Restart {
        policy: RestartPolicy::OnFailure,
        max_restarts: 2,
        window: Duration::from_secs(60),
        backoff: Duration::from_millis(100),
        backoff_max: Duration::from_secs(30),
    };
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    let a = s.at(1000).exited(20, Ended::Exited(1));
    assert!(emitted(&a, "restarting"));
    assert_eq!(s.state(1), ProcState::Backoff);
    assert_eq!(
        s.m.next_deadline(),
        Some(s.t0 + Duration::from_millis(1100))
    );
    assert!(spawns(&s.at(1099).feed(Input::Tick)).is_empty());
    assert_eq!(spawns(&s.at(1100).feed(Input::Tick)), vec![1]);
    s.spawned(1, 21);
    s.at(1200).exited(21, Ended::Exited(1));
    // Second failure in a row: 200 ms.
    assert_eq!(
        s.m.next_deadline(),
        Some(s.t0 + Duration::from_millis(1400))
    );
    assert_eq!(spawns(&s.at(1400).feed(Input::Tick)), vec![1]);
    s.spawned(1, 22);
    let a = s.at(1500).exited(22, Ended::Exited(1));
    assert!(emitted(&a, "gave_up"), "{a:?}");
    assert_eq!(sends(&a), vec![(0, TERM)]);
    let st = s.m.status(s.now);
    assert_eq!(st.processes[1].restarts, 2);
    assert_eq!(st.processes[1].last_exit, Some(1));
}

#[test]
fn a_clean_exit_is_not_restarted_on_failure_only() {
    let mut cfg = two_procs();
    cfg.processes[1].restart.policy = RestartPolicy::OnFailure;
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    let a = s.exited(20, Ended::Exited(0));
    assert!(!emitted(&a, "restarting"));
    assert_eq!(sends(&a), vec![(0, TERM)]);
}

#[test]
fn a_stable_run_resets_the_back_off() {
    let mut cfg = two_procs();
    cfg.processes[1].restart = Restart {
        policy: RestartPolicy::Always,
        max_restarts: 10,
        window: Duration::from_secs(10),
        backoff: Duration::from_millis(100),
        backoff_max: Duration::from_secs(30),
    };
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    s.at(100).exited(20, Ended::Exited(1));
    s.at(200).feed(Input::Tick);
    s.spawned(1, 21);
    s.at(300).exited(21, Ended::Exited(1));
    assert_eq!(s.m.next_deadline(), Some(s.t0 + Duration::from_millis(500)));
    s.at(500).feed(Input::Tick);
    s.spawned(1, 22);
    // Ran longer than the window: the next delay is the first one again.
    s.at(20_000).exited(22, Ended::Exited(1));
    assert_eq!(
        s.m.next_deadline(),
        Some(s.t0 + Duration::from_millis(20_100))
    );
}

#[test]
fn no_restart_once_the_stop_began() {
    let mut cfg = two_procs();
    cfg.processes[1].restart.policy = RestartPolicy::Always;
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    s.feed(Input::Signal(TERM));
    let a = s.exited(20, KILLED_BY_TERM);
    assert!(!emitted(&a, "restarting"));
    assert_eq!(s.state(1), ProcState::Exited);
}

#[test]
fn dependants_start_once_their_dependency_is_ready() {
    let mut cfg = two_procs();
    cfg.processes[0].ready = Some(ReadyProbe::Port(8000));
    cfg.processes[1].depends_on = vec![0];
    let mut s = Sim::new(&cfg);
    assert_eq!(spawns(&s.start()), vec![0]);
    let a = s.spawned(0, 10);
    assert!(has(&a, |a| matches!(
        a,
        Action::WatchReady {
            process: 0,
            generation: 1
        }
    )));
    assert!(spawns(&a).is_empty());
    assert_eq!(s.state(0), ProcState::Starting);
    assert_eq!(s.state(1), ProcState::Waiting);
    // Readiness from an earlier start does not count.
    assert!(spawns(&s.feed(Input::Ready {
        process: 0,
        generation: 0
    }))
    .is_empty());
    let a = s.feed(Input::Ready {
        process: 0,
        generation: 1,
    });
    assert!(emitted(&a, "ready"));
    assert_eq!(spawns(&a), vec![1]);
    assert_eq!(s.state(0), ProcState::Ready);
}

#[test]
fn the_stop_goes_in_reverse_dependency_order() {
    // web <- worker <- beat
    let mut cfg = config(vec![spec("web"), spec("worker"), spec("beat")], true);
    cfg.processes[1].depends_on = vec![0];
    cfg.processes[2].depends_on = vec![1];
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.tick_spawn(1, 20);
    s.tick_spawn(2, 30);
    let a = s.at(100).feed(Input::Signal(TERM));
    assert_eq!(sends(&a), vec![(2, TERM)]);
    let a = s.at(200).exited(30, KILLED_BY_TERM);
    assert_eq!(sends(&a), vec![(1, TERM)]);
    let a = s.at(300).exited(20, KILLED_BY_TERM);
    assert_eq!(sends(&a), vec![(0, TERM)]);
}

impl Sim<'_> {
    fn tick_spawn(&mut self, i: usize, pid: i32) {
        let a = self.feed(Input::Tick);
        assert!(spawns(&a).contains(&i) || self.m.pid(i).is_none());
        self.spawned(i, pid);
    }
}

#[test]
fn the_top_level_grace_bounds_the_whole_stop_of_a_chain() {
    // Three processes that ignore TERM, chained, 3 s grace each and 3 s in
    // all: everything is killed at 3 s, not 9 s.
    let mut cfg = config(vec![spec("a"), spec("b"), spec("c")], true);
    cfg.grace = Duration::from_secs(3);
    for p in &mut cfg.processes {
        p.grace = Duration::from_secs(3);
    }
    cfg.processes[1].depends_on = vec![0];
    cfg.processes[2].depends_on = vec![1];
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.tick_spawn(1, 20);
    s.tick_spawn(2, 30);
    s.at(0).feed(Input::Signal(TERM));
    // c's own grace and the whole budget end together: one kill of all.
    let a = s.at(3000).feed(Input::Tick);
    assert!(
        has(&a, |a| matches!(a, Action::KillEverything { .. })),
        "{a:?}"
    );
    assert!(!has(&a, |a| matches!(a, Action::KillProcess(_))));
}

#[test]
fn a_process_grace_ends_its_turn_and_the_next_one_starts() {
    let mut cfg = two_procs();
    cfg.grace = Duration::from_secs(10);
    cfg.processes[0].grace = Duration::from_secs(4);
    cfg.processes[1].grace = Duration::from_secs(2);
    cfg.processes[1].depends_on = vec![0];
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.tick_spawn(1, 20);
    s.at(0).feed(Input::Signal(TERM));
    let a = s.at(2000).feed(Input::Tick);
    assert_eq!(
        a.iter()
            .filter(|a| matches!(a, Action::KillProcess(_)))
            .count(),
        1
    );
    let a = s.at(2010).exited(20, Ended::Signaled(libc::SIGKILL));
    assert_eq!(sends(&a), vec![(0, TERM)]);
    // web's 4 s would end at 6.01 s, within the 10 s budget.
    assert_eq!(
        s.m.next_deadline(),
        Some(s.t0 + Duration::from_millis(6010))
    );
}

// ---------------------------------------------------------------- one-shots

fn migrate_then_web() -> Config {
    let mut cfg = config(vec![spec("migrate"), spec("web")], true);
    cfg.processes[0].oneshot = true;
    cfg.processes[1].depends_on = vec![0];
    cfg
}

#[test]
fn a_one_shot_that_succeeds_starts_its_dependants_and_stops_nothing() {
    let cfg = migrate_then_web();
    let mut s = Sim::new(&cfg);
    assert_eq!(spawns(&s.start()), vec![0]);
    s.spawned(0, 10);
    assert_eq!(s.state(1), ProcState::Waiting);
    let a = s.at(1000).exited(10, Ended::Exited(0));
    assert!(emitted(&a, "oneshot_completed"));
    assert_eq!(spawns(&a), vec![1]);
    assert!(sends(&a).is_empty());
    assert_eq!(s.state(0), ProcState::Completed);
    assert_eq!(s.m.phase(), Phase::Running);
}

#[test]
fn a_one_shot_that_fails_stops_everything_with_its_status() {
    let cfg = migrate_then_web();
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.feed(Input::ChildrenLeft(false));
    let a = s.exited(10, Ended::Exited(3));
    assert!(emitted(&a, "oneshot_failed"));
    assert!(spawns(&a).is_empty(), "web never starts");
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), 3);
    assert_eq!(s.state(1), ProcState::Waiting);
}

#[test]
fn expect_exit_makes_a_one_shot_code_a_success() {
    let mut cfg = migrate_then_web();
    cfg.processes[0].expect = ExpectExit::new(vec![3]);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let a = s.exited(10, Ended::Exited(3));
    assert_eq!(spawns(&a), vec![1]);
}

#[test]
fn a_one_shot_timeout_stops_it_then_kills_it_and_exits_124() {
    let mut cfg = migrate_then_web();
    cfg.processes[0].timeout = Some(Duration::from_secs(5));
    cfg.processes[0].grace = Duration::from_secs(2);
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    assert_eq!(s.m.next_deadline(), Some(s.t0 + Duration::from_secs(5)));
    let a = s.at(5000).feed(Input::Tick);
    assert!(has(&a, |a| matches!(
        a,
        Action::Send {
            process: 0,
            reason: SendReason::Timeout,
            ..
        }
    )));
    let a = s.at(7000).feed(Input::Tick);
    assert!(has(&a, |a| matches!(a, Action::KillProcess(0))), "{a:?}");
    s.feed(Input::ChildrenLeft(false));
    // Whatever it then exits with, the status is 124.
    let a = s.at(7010).exited(10, Ended::Exited(0));
    assert!(emitted(&a, "oneshot_failed"));
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), TIMEOUT_STATUS);
}

#[test]
fn a_one_shot_is_retried_on_failure_until_it_succeeds() {
    let mut cfg = migrate_then_web();
    cfg.processes[0].restart = Restart {
        policy: RestartPolicy::OnFailure,
        max_restarts: 3,
        backoff: Duration::from_millis(100),
        ..Restart::default()
    };
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let a = s.at(100).exited(10, Ended::Exited(1));
    assert!(emitted(&a, "restarting"));
    assert_eq!(s.state(0), ProcState::Backoff);
    assert_eq!(spawns(&s.at(200).feed(Input::Tick)), vec![0]);
    s.spawned(0, 11);
    let a = s.at(300).exited(11, Ended::Exited(0));
    assert_eq!(spawns(&a), vec![1]);
}

#[test]
fn a_stop_signal_during_a_one_shot_goes_to_it_and_nothing_else_starts() {
    let cfg = migrate_then_web();
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let a = s.feed(Input::Signal(TERM));
    assert_eq!(sends(&a), vec![(0, TERM)]);
    s.feed(Input::ChildrenLeft(false));
    let a = s.exited(10, Ended::Exited(0));
    assert!(spawns(&a).is_empty());
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), 0);
}

#[test]
fn one_shots_in_a_chain_run_in_order_and_all_done_exits_zero() {
    let mut cfg = config(vec![spec("a"), spec("b"), spec("c")], true);
    for p in &mut cfg.processes {
        p.oneshot = true;
    }
    cfg.processes[1].depends_on = vec![0];
    // c is independent: it runs at once, beside a.
    let mut s = Sim::new(&cfg);
    assert_eq!(spawns(&s.start()), vec![0, 2]);
    s.spawned(0, 10);
    s.spawned(2, 30);
    let a = s.exited(10, Ended::Exited(0));
    assert_eq!(spawns(&a), vec![1]);
    s.spawned(1, 20);
    s.exited(30, Ended::Exited(0));
    s.feed(Input::ChildrenLeft(false));
    let a = s.exited(20, Ended::Exited(0));
    assert!(finished(&a));
    assert_eq!(s.m.exit_code(), 0);
}

// ---------------------------------------------------------------- control

#[test]
fn ctl_restart_stops_and_starts_one_process_and_leaves_the_others() {
    let cfg = two_procs();
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    let (reply, a) = s.m.control(s.now, Request::Restart("worker".into()));
    assert_eq!(reply, Reply::Done);
    assert_eq!(sends(&a), vec![(1, TERM)]);
    let a = s.exited(20, KILLED_BY_TERM);
    assert_eq!(spawns(&a), vec![1]);
    assert!(sends(&a).is_empty(), "web is left alone");
    s.spawned(1, 21);
    assert_eq!(s.m.phase(), Phase::Running);
    assert_eq!(s.m.pid(0), Some(10));
}

#[test]
fn ctl_stop_keeps_a_process_down_and_the_rest_up() {
    let cfg = two_procs();
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    let (reply, _) = s.m.control(s.now, Request::Stop("worker".into()));
    assert_eq!(reply, Reply::Done);
    let a = s.exited(20, KILLED_BY_TERM);
    assert!(sends(&a).is_empty() && spawns(&a).is_empty());
    assert_eq!(s.state(1), ProcState::Stopped);
    assert_eq!(s.m.phase(), Phase::Running);
    let (reply, a) = s.m.control(s.now, Request::Start("worker".into()));
    assert_eq!(reply, Reply::Done);
    assert_eq!(spawns(&a), vec![1]);
}

#[test]
fn ctl_answers_errors_in_one_line() {
    let cfg = two_procs();
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    s.spawned(1, 20);
    let (reply, _) = s.m.control(s.now, Request::Stop("nope".into()));
    assert!(matches!(reply, Reply::Error(e) if e.contains("no process named 'nope'")));
    let (reply, _) = s.m.control(s.now, Request::Start("web".into()));
    assert!(matches!(reply, Reply::Error(e) if e.contains("already running")));
    let (reply, a) = s.m.control(
        s.now,
        Request::Signal {
            signal: libc::SIGUSR1,
            name: "web".into(),
        },
    );
    assert_eq!(reply, Reply::Done);
    assert!(has(&a, |a| matches!(
        a,
        Action::Send {
            delivery: Delivery::Main,
            reason: SendReason::Ctl,
            ..
        }
    )));
}

#[test]
fn status_shows_each_state() {
    let mut cfg = config(vec![spec("migrate"), spec("web"), spec("worker")], true);
    cfg.processes[0].oneshot = true;
    cfg.processes[1].depends_on = vec![0];
    cfg.processes[1].ready = Some(ReadyProbe::Port(8000));
    cfg.processes[2].depends_on = vec![1];
    let mut s = Sim::new(&cfg);
    s.start();
    s.spawned(0, 10);
    let st = s.m.status(s.now);
    let states: Vec<&str> = st.processes.iter().map(|p| p.state.as_str()).collect();
    assert_eq!(states, vec!["running", "waiting", "waiting"]);
    s.exited(10, Ended::Exited(0));
    s.spawned(1, 20);
    s.at(1500);
    let st = s.m.status(s.now);
    let states: Vec<&str> = st.processes.iter().map(|p| p.state.as_str()).collect();
    assert_eq!(states, vec!["completed", "starting", "waiting"]);
    assert_eq!(st.processes[1].live_probe, Some(LiveProbe::Port(8000)));
    assert!(!st.stopping);
}
