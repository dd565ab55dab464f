//! Which processes a forwarded signal reaches (SPEC point 2): a pure
//! function of a process table, so that it is tested on synthetic trees.
//!
//! Under `auto`, a stop signal goes to the main process and to every other
//! process of its group, except the descendants of a process that catches
//! that signal: a process that handles a stop signal is trusted to stop its
//! own children (gunicorn, uvicorn, celery, a shell with `trap`), and a
//! second, direct signal would cut their work short.

use crate::config::SignalScope;

/// One process, as `/proc/PID/stat` and `/proc/PID/status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSnap {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// `SigCgt`: the signals it has a handler for (bit N-1 for signal N).
    pub caught: u64,
}

impl ProcSnap {
    pub fn catches(&self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.caught & (1u64 << (sig - 1)) != 0
    }
}

/// Who gets a stop signal, and who is spared because an ancestor handles it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Pids to send it to, one by one (the main process first).
    pub pids: Vec<i32>,
    /// Pids of the group that do not get it.
    pub spared: Vec<i32>,
    /// Send it to the whole group with one `kill(-pgid)` instead of `pids`.
    pub whole_group: bool,
}

/// The targets of stop signal `sig` for the main process `main` (leader of
/// group `pgid`, or `None` when it shares pyinit's group under `-c`).
/// `table` holds the processes of that group that are alive (main included
/// or not; it always gets the signal).
pub fn stop_targets(
    scope: SignalScope,
    table: &[ProcSnap],
    main: i32,
    pgid: Option<i32>,
    sig: i32,
) -> Targets {
    let pgid = match (scope, pgid) {
        (SignalScope::Main, _) | (_, None) => {
            return Targets {
                pids: vec![main],
                ..Targets::default()
            }
        }
        (SignalScope::Group, Some(_)) => {
            return Targets {
                pids: vec![main],
                whole_group: true,
                ..Targets::default()
            }
        }
        (SignalScope::Auto, Some(g)) => g,
    };
    let by_pid = |pid: i32| table.iter().find(|p| p.pid == pid);
    let mut out = Targets {
        pids: vec![main],
        ..Targets::default()
    };
    for p in table.iter().filter(|p| p.pgid == pgid && p.pid != main) {
        // Walk up from the parent; the walk ends at the main process (checked
        // too) or where the chain leaves the table (pyinit, or outside the
        // group): ancestors there do not count.
        let mut spared = false;
        let mut hops = 0;
        let mut up = by_pid(p.ppid);
        while let Some(a) = up {
            if a.catches(sig) {
                spared = true;
                break;
            }
            hops += 1;
            if a.pid == main || hops > table.len() {
                break;
            }
            up = by_pid(a.ppid);
        }
        if spared {
            out.spared.push(p.pid);
        } else {
            out.pids.push(p.pid);
        }
    }
    out
}

/// Whether a non-stop signal goes to a process in multi-process mode: the
/// ones its `signals` list names, else only when its main process has a
/// handler for it (a HUP meant for gunicorn must not kill a plain script).
pub fn non_stop_wanted(listed: Option<&[i32]>, main_caught: u64, sig: i32) -> bool {
    match listed {
        Some(list) => list.contains(&sig),
        None => ProcSnap {
            pid: 0,
            ppid: 0,
            pgid: 0,
            caught: main_caught,
        }
        .catches(sig),
    }
}

/// Parses the `SigCgt:` line of `/proc/PID/status`.
pub fn parse_sigcgt(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: i32 = 15;
    const INT: i32 = 2;
    const TERM_BIT: u64 = 1 << (15 - 1);
    const INT_BIT: u64 = 1 << (2 - 1);

    fn p(pid: i32, ppid: i32, caught: u64) -> ProcSnap {
        ProcSnap {
            pid,
            ppid,
            pgid: 10,
            caught,
        }
    }

    fn auto(table: &[ProcSnap], sig: i32) -> Targets {
        stop_targets(SignalScope::Auto, table, 10, Some(10), sig)
    }

    #[test]
    fn celery_pool_processes_are_spared() {
        // pyinit(1) -> celery main (handles TERM) -> two pool processes.
        let t = [p(10, 1, TERM_BIT), p(11, 10, 0), p(12, 10, 0)];
        let got = auto(&t, TERM);
        assert_eq!(got.pids, vec![10]);
        assert_eq!(got.spared, vec![11, 12]);
        assert!(!got.whole_group);
    }

    #[test]
    fn gunicorn_workers_with_their_own_handlers_are_spared_too() {
        let t = [
            p(10, 1, TERM_BIT | INT_BIT),
            p(11, 10, TERM_BIT),
            p(12, 10, TERM_BIT),
        ];
        assert_eq!(auto(&t, TERM).pids, vec![10]);
    }

    #[test]
    fn a_pool_under_a_main_without_handler_gets_it_directly() {
        let t = [p(10, 1, 0), p(11, 10, 0), p(12, 10, 0), p(13, 11, 0)];
        assert_eq!(auto(&t, TERM).pids, vec![10, 11, 12, 13]);
    }

    #[test]
    fn a_handler_in_the_middle_spares_only_its_descendants() {
        // main (no handler) -> a (handles TERM) -> a1; main -> b -> b1.
        let t = [
            p(10, 1, 0),
            p(20, 10, TERM_BIT),
            p(21, 20, 0),
            p(30, 10, 0),
            p(31, 30, 0),
        ];
        let got = auto(&t, TERM);
        assert_eq!(got.pids, vec![10, 20, 30, 31]);
        assert_eq!(got.spared, vec![21]);
    }

    #[test]
    fn the_signal_sent_decides_not_another_one() {
        // Handles INT only: a TERM still reaches the children.
        let t = [p(10, 1, INT_BIT), p(11, 10, 0)];
        assert_eq!(auto(&t, TERM).pids, vec![10, 11]);
        assert_eq!(auto(&t, INT).pids, vec![10]);
    }

    #[test]
    fn shell_pipeline_parts_all_get_it() {
        // sh -c 'a | b' without trap: the parts are children of the shell.
        let t = [p(10, 1, 0), p(11, 10, 0), p(12, 10, 0)];
        assert_eq!(auto(&t, TERM).pids.len(), 3);
        // With `trap ... TERM`, the shell handles it and passes it on itself.
        let t = [p(10, 1, TERM_BIT), p(11, 10, 0), p(12, 10, 0)];
        assert_eq!(auto(&t, TERM).pids, vec![10]);
    }

    #[test]
    fn orphans_in_the_group_are_not_spared_by_pyinit() {
        // 11's parent exited: it was reparented to pyinit (1), not in the table.
        let t = [p(10, 1, TERM_BIT), p(11, 1, 0)];
        assert_eq!(auto(&t, TERM).pids, vec![10, 11]);
    }

    #[test]
    fn other_groups_are_left_alone() {
        let mut other = p(40, 10, 0);
        other.pgid = 40;
        let t = [p(10, 1, 0), other];
        assert_eq!(auto(&t, TERM).pids, vec![10]);
    }

    #[test]
    fn a_cycle_in_a_stale_table_ends() {
        let t = [p(10, 1, 0), p(11, 12, 0), p(12, 11, 0)];
        assert_eq!(auto(&t, TERM).pids, vec![10, 11, 12]);
    }

    #[test]
    fn group_and_main_scopes() {
        let t = [p(10, 1, TERM_BIT), p(11, 10, 0)];
        let g = stop_targets(SignalScope::Group, &t, 10, Some(10), TERM);
        assert!(g.whole_group);
        let m = stop_targets(SignalScope::Main, &t, 10, Some(10), TERM);
        assert_eq!(m.pids, vec![10]);
        assert!(!m.whole_group);
        // -c: no group of its own, so auto cannot spare anyone either.
        let c = stop_targets(SignalScope::Auto, &t, 10, None, TERM);
        assert_eq!(c.pids, vec![10]);
    }

    #[test]
    fn non_stop_signals_follow_handlers_or_the_list() {
        let hup_bit = 1u64;
        assert!(non_stop_wanted(None, hup_bit, 1));
        assert!(!non_stop_wanted(None, 0, 1));
        assert!(non_stop_wanted(Some(&[1]), 0, 1));
        assert!(!non_stop_wanted(Some(&[]), hup_bit, 1));
    }

    #[test]
    fn parses_sigcgt() {
        let status = "Name:\tpython3\nSigBlk:\t0000000000000000\nSigCgt:\t0000000180004002\n";
        let c = parse_sigcgt(status).unwrap();
        assert!(ProcSnap {
            pid: 1,
            ppid: 0,
            pgid: 1,
            caught: c
        }
        .catches(TERM));
        assert!(ProcSnap {
            pid: 1,
            ppid: 0,
            pgid: 1,
            caught: c
        }
        .catches(INT));
        assert_eq!(parse_sigcgt("Name: x\n"), None);
    }
}
