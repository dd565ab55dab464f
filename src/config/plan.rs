//! `--check-config`: the plan of a validated [`Config`] (start order and
//! what each process waits for, each process's stop settings) and the
//! longest the whole stop can take ([`stop_budget`]).

use std::fmt::Write as _;
use std::time::Duration;

use super::{Config, ReadyProbe, RestartPolicy};

/// Docker's default stop timeout: `docker stop` sends SIGKILL after it.
pub const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest the whole stop can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopBudget {
    pub stop_delay: Duration,
    /// The top-level grace: it bounds the whole stop.
    pub grace: Duration,
    /// The stop chain with the largest sum of graces, in stop order.
    pub chain: Vec<usize>,
    pub chain_sum: Duration,
    /// `stop_delay + min(grace, chain_sum)`.
    pub total: Duration,
}

/// The worst-case stop: processes stop in reverse dependency order, each
/// turn bounded by the process's own grace, independent chains at once, and
/// the top-level grace bounds the whole. A one-shot never runs beside its
/// dependants (they start once it completed), so it counts only at the head
/// of a chain (a stop while it runs); below the head, one-shots are done.
pub fn stop_budget(cfg: &Config) -> StopBudget {
    let n = cfg.processes.len();
    // tail[j]: the longest chain of running processes from j down its
    // dependencies, when j is not the head (so a one-shot j is done).
    let mut tail: Vec<Option<(Duration, Vec<usize>)>> = vec![None; n];
    // start_order lists dependencies first, so each tail is ready in time.
    for &j in &cfg.start_order {
        let p = &cfg.processes[j];
        let own = if p.oneshot { Duration::ZERO } else { p.grace };
        let (below, mut chain) = longest(&p.depends_on, &tail);
        if !p.oneshot {
            chain.insert(0, j);
        }
        tail[j] = Some((own + below, chain));
    }
    let mut best = (Duration::ZERO, Vec::new());
    for &i in &cfg.start_order {
        let p = &cfg.processes[i];
        let (below, mut chain) = longest(&p.depends_on, &tail);
        chain.insert(0, i);
        if p.grace + below > best.0 {
            best = (p.grace + below, chain);
        }
    }
    StopBudget {
        stop_delay: cfg.stop_delay,
        grace: cfg.grace,
        total: cfg.stop_delay + best.0.min(cfg.grace),
        chain_sum: best.0,
        chain: best.1,
    }
}

/// The longest of the tails of `deps`.
fn longest(deps: &[usize], tail: &[Option<(Duration, Vec<usize>)>]) -> (Duration, Vec<usize>) {
    deps.iter()
        .filter_map(|&d| tail[d].clone())
        .max_by_key(|(d, _)| *d)
        .unwrap_or_default()
}

fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// What process `i` waits for before it starts.
fn waits_for(cfg: &Config, i: usize) -> String {
    let p = &cfg.processes[i];
    if p.depends_on.is_empty() {
        return "at once".into();
    }
    let each: Vec<String> = p
        .depends_on
        .iter()
        .map(|&d| {
            let dep = &cfg.processes[d];
            let how = if dep.oneshot {
                "completed"
            } else if dep.ready.is_some() {
                "ready"
            } else {
                "started"
            };
            format!("{} {how}", dep.name)
        })
        .collect();
    format!("after {}", each.join(", "))
}

/// The plan `--check-config` prints.
pub fn plan(cfg: &Config) -> String {
    let mut s = String::new();
    let names = |idx: &[usize]| -> String {
        idx.iter()
            .map(|&i| cfg.processes[i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let width = cfg
        .processes
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        s,
        "{} process{} (config OK)",
        cfg.processes.len(),
        if cfg.processes.len() == 1 { "" } else { "es" }
    );
    let _ = writeln!(s, "start order: {}", names(&cfg.start_order));
    for &i in &cfg.start_order {
        let p = &cfg.processes[i];
        let kind = if p.oneshot { " (one-shot)" } else { "" };
        let _ = writeln!(s, "  {:<width$}  {}{kind}", p.name, waits_for(cfg, i));
    }
    let stop: Vec<usize> = cfg.start_order.iter().rev().copied().collect();
    let _ = writeln!(s, "stop order:  {}", names(&stop));
    let _ = writeln!(
        s,
        "log format: {}; grace {} (bounds the whole stop); stop delay {}",
        cfg.log_format.as_str(),
        secs(cfg.grace),
        secs(cfg.stop_delay)
    );
    let b = stop_budget(cfg);
    let chain: Vec<String> = b
        .chain
        .iter()
        .map(|&i| format!("{} {}", cfg.processes[i].name, secs(cfg.processes[i].grace)))
        .collect();
    let _ = writeln!(
        s,
        "longest stop: {} = stop delay {} + the smaller of grace {} and the longest stop chain \
         {} ({})",
        secs(b.total),
        secs(b.stop_delay),
        secs(b.grace),
        secs(b.chain_sum),
        chain.join(" -> ")
    );
    if b.total > DOCKER_STOP_TIMEOUT {
        let need = b.total.as_secs() + 1 + u64::from(b.total.subsec_nanos() > 0);
        let _ = writeln!(
            s,
            "warning: the stop can take {}, longer than Docker's default stop timeout (10s), \
             after which the runtime kills everything: raise it to {need}s or more \
             (docker run --stop-timeout {need}, compose stop_grace_period: {need}s, \
             Kubernetes terminationGracePeriodSeconds: {need})",
            secs(b.total)
        );
    }
    for &i in &cfg.start_order {
        section(&mut s, cfg, i, &names);
    }
    s
}

/// One `[name]` block of the plan.
fn section(s: &mut String, cfg: &Config, i: usize, names: &dyn Fn(&[usize]) -> String) {
    let p = &cfg.processes[i];
    let argv: Vec<String> = p
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let _ = writeln!(s, "\n[{}]", p.name);
    let _ = writeln!(s, "  command      {}", argv.join(" "));
    let codes: Vec<String> = std::iter::once(0)
        .chain(p.expect.codes().iter().copied().filter(|&c| c != 0))
        .map(|c| c.to_string())
        .collect();
    if p.oneshot {
        let timeout = p
            .timeout
            .map_or(String::new(), |t| format!("; timeout {}", secs(t)));
        let _ = writeln!(
            s,
            "  one-shot     runs to completion (success: exit {}){timeout}",
            codes.join(", ")
        );
    } else if codes.len() > 1 {
        let _ = writeln!(s, "  success      exit {}", codes.join(", "));
    }
    if !p.depends_on.is_empty() {
        let _ = writeln!(s, "  depends on   {}", names(&p.depends_on));
        let _ = writeln!(s, "  starts       {}", waits_for(cfg, i));
    }
    let ready = match &p.ready {
        None if p.oneshot => "its dependants wait until it completed".to_string(),
        None => "when started".to_string(),
        Some(ReadyProbe::Line(re)) => format!("when a line matches /{}/", re.as_str()),
        Some(ReadyProbe::Port(port)) => format!("when 127.0.0.1:{port} accepts"),
        Some(ReadyProbe::Notify) => "on READY=1 at NOTIFY_SOCKET".to_string(),
        Some(ReadyProbe::Http(url)) => format!("when GET {url} answers 2xx/3xx"),
    };
    let _ = writeln!(s, "  ready        {ready}");
    let r = &p.restart;
    let restart = match r.policy {
        RestartPolicy::Never if p.oneshot => "never (a failure stops everything)".to_string(),
        RestartPolicy::Never => "never (its exit stops everything)".to_string(),
        policy => format!(
            "{} (at most {} in {}, back-off {} doubling to {})",
            if policy == RestartPolicy::Always {
                "always"
            } else {
                "on-failure"
            },
            r.max_restarts,
            secs(r.window),
            secs(r.backoff),
            secs(r.backoff_max)
        ),
    };
    let _ = writeln!(s, "  restart      {restart}");
    let stop_sig = p.stop_signal.map_or(
        "the received stop signal (TERM)".into(),
        crate::signals::names::name,
    );
    let _ = writeln!(
        s,
        "  stop         {stop_sig}, SIGKILL after {}; scope {}",
        secs(p.grace),
        p.signal_scope.as_str()
    );
    if cfg.multi {
        let signals = match &p.signals {
            None => "the non-stop signals it has a handler for".to_string(),
            Some(v) if v.is_empty() => "no non-stop signals".to_string(),
            Some(v) => v
                .iter()
                .map(|&n| crate::signals::names::name(n))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(s, "  signals      {signals}");
    }
    if let Some(dir) = &p.working_dir {
        let _ = writeln!(s, "  working dir  {}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProcessSpec, SignalScope};
    use crate::exit_status::ExpectExit;
    use crate::output::format::LogFormat;
    use crate::signals::rewrite::Router;

    /// `(name, grace in seconds, one-shot, dependencies)`, in start order.
    fn cfg(procs: &[(&str, u64, bool, &[usize])], grace: u64, delay: u64) -> Config {
        let processes = procs
            .iter()
            .map(|&(name, g, oneshot, deps)| {
                let mut p = ProcessSpec::new(
                    name.into(),
                    vec!["x".into()],
                    vec![],
                    Duration::from_secs(g),
                );
                p.oneshot = oneshot;
                p.depends_on = deps.to_vec();
                p
            })
            .collect();
        Config {
            processes,
            multi: true,
            check_config: true,
            grace: Duration::from_secs(grace),
            stop_delay: Duration::from_secs(delay),
            router: Router::default(),
            signal_scope: SignalScope::Auto,
            expect: ExpectExit::default(),
            socket: "/tmp/x.sock".into(),
            log_format: LogFormat::Prefix,
            no_capture: false,
            max_line: 1024,
            start_order: (0..procs.len()).collect(),
        }
    }

    fn total(c: &Config) -> u64 {
        stop_budget(c).total.as_secs()
    }

    #[test]
    fn a_chain_adds_up_and_the_top_level_grace_caps_it() {
        // web <- worker <- beat: beat stops first, then worker, then web.
        let c = cfg(
            &[
                ("web", 3, false, &[]),
                ("worker", 3, false, &[0]),
                ("beat", 3, false, &[1]),
            ],
            20,
            0,
        );
        let b = stop_budget(&c);
        assert_eq!(b.chain, vec![2, 1, 0]);
        assert_eq!(b.chain_sum, Duration::from_secs(9));
        assert_eq!(total(&c), 9);
        let c = cfg(
            &[
                ("web", 3, false, &[]),
                ("worker", 3, false, &[0]),
                ("beat", 3, false, &[1]),
            ],
            5,
            0,
        );
        assert_eq!(total(&c), 5, "the top-level grace bounds the whole stop");
    }

    #[test]
    fn independent_processes_stop_at_once_and_the_delay_adds() {
        let c = cfg(
            &[
                ("a", 4, false, &[]),
                ("b", 6, false, &[]),
                ("c", 2, false, &[]),
            ],
            9,
            0,
        );
        assert_eq!(total(&c), 6);
        assert_eq!(stop_budget(&c).chain, vec![1]);
        let c = cfg(&[("a", 4, false, &[]), ("b", 6, false, &[])], 9, 3);
        assert_eq!(total(&c), 9);
        let c = cfg(&[("a", 9, false, &[])], 9, 5);
        assert_eq!(total(&c), 14, "stop delay plus the whole grace");
    }

    #[test]
    fn the_longest_branch_of_a_diamond_counts() {
        // db <- (api 5s, cache 1s) <- web 2s
        let c = cfg(
            &[
                ("db", 1, false, &[]),
                ("api", 5, false, &[0]),
                ("cache", 1, false, &[0]),
                ("web", 2, false, &[1, 2]),
            ],
            30,
            0,
        );
        let b = stop_budget(&c);
        assert_eq!(b.chain, vec![3, 1, 0]);
        assert_eq!(b.total, Duration::from_secs(8));
    }

    #[test]
    fn a_one_shot_counts_only_while_it_runs() {
        // migrate (one-shot, 8s) <- web 3s <- worker 2s. Once migrate has
        // completed the chain is worker + web; while it runs, only migrate.
        let c = cfg(
            &[
                ("migrate", 8, true, &[]),
                ("web", 3, false, &[0]),
                ("worker", 2, false, &[1]),
            ],
            20,
            0,
        );
        let b = stop_budget(&c);
        assert_eq!(b.chain, vec![0]);
        assert_eq!(b.total, Duration::from_secs(8));
        let c = cfg(
            &[
                ("migrate", 1, true, &[]),
                ("web", 3, false, &[0]),
                ("worker", 2, false, &[1]),
            ],
            20,
            0,
        );
        let b = stop_budget(&c);
        assert_eq!(b.chain, vec![2, 1]);
        assert_eq!(b.total, Duration::from_secs(5));
        // A one-shot that needs a long-running process: both run at once.
        let c = cfg(&[("db", 4, false, &[]), ("migrate", 3, true, &[0])], 20, 0);
        assert_eq!(total(&c), 7);
    }

    #[test]
    fn the_plan_warns_above_dockers_timeout() {
        let c = cfg(
            &[
                ("web", 3, false, &[]),
                ("worker", 3, false, &[0]),
                ("beat", 3, false, &[1]),
            ],
            20,
            2,
        );
        let text = plan(&c);
        assert!(text.contains("longest stop: 11s"), "{text}");
        assert!(text.contains("beat 3s -> worker 3s -> web 3s"), "{text}");
        let warning = text
            .lines()
            .find(|l| l.starts_with("warning:"))
            .expect(&text);
        for want in [
            "--stop-timeout 12",
            "stop_grace_period: 12s",
            "terminationGracePeriodSeconds: 12",
        ] {
            assert!(warning.contains(want), "{want}: {warning}");
        }
        let c = cfg(&[("web", 3, false, &[])], 9, 0);
        assert!(!plan(&c).contains("warning:"), "{}", plan(&c));
    }

    #[test]
    fn the_plan_says_what_each_process_waits_for() {
        let mut c = cfg(
            &[
                ("migrate", 9, true, &[]),
                ("web", 9, false, &[0]),
                ("worker", 9, false, &[0, 1]),
            ],
            9,
            0,
        );
        c.processes[1].ready = Some(ReadyProbe::Port(8000));
        let text = plan(&c);
        for want in [
            "migrate  at once (one-shot)",
            "web      after migrate completed",
            "worker   after migrate completed, web ready",
            "one-shot     runs to completion (success: exit 0)",
            "SIGKILL after 9s; scope auto",
        ] {
            assert!(text.contains(want), "{want}:\n{text}");
        }
    }
}
