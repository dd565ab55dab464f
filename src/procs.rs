//! Reading `/proc`: pyinit's descendants, their state and command lines.
//!
//! Used to name the processes that needed SIGKILL and, outside a PID
//! namespace, to signal descendants that left the main process group.

use std::collections::HashMap;

/// One process as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub state: char,
}

/// pyinit's own pid in the pid namespace `/proc` was mounted for (differs
/// from `getpid()` when pyinit is PID 1 but `/proc` is the host's).
pub fn self_pid_in_proc() -> Option<i32> {
    std::fs::read_link("/proc/self")
        .ok()?
        .to_str()?
        .parse()
        .ok()
}

/// Parses the pid, state and ppid out of a `/proc/PID/stat` line.
pub fn parse_stat(stat: &str) -> Option<ProcInfo> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        state,
    })
}

/// Every process visible in `/proc`.
pub fn all() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat)
    })
    .collect()
}

/// The descendants of `root` among `procs`, parents before children.
pub fn descendants_of(root: i32, procs: &[ProcInfo]) -> Vec<ProcInfo> {
    let mut children: HashMap<i32, Vec<&ProcInfo>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(kids) = children.get(&pid) {
            // Each pid is listed once with one parent, so a walk of the
            // parent links visits every descendant once (no seen-set needed,
            // which kept this quadratic with thousands of processes).
            for k in kids {
                if k.pid != root {
                    out.push((*k).clone());
                    stack.push(k.pid);
                }
            }
        }
    }
    out
}

/// pyinit's living descendants (zombies excluded), pids as `/proc` shows them.
pub fn living_descendants() -> Vec<ProcInfo> {
    let Some(me) = self_pid_in_proc() else {
        return Vec::new();
    };
    descendants_of(me, &all())
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .collect()
}

/// Living processes in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<ProcInfo> {
    all()
        .into_iter()
        .filter(|p| p.pgid == pgid && p.state != 'Z' && p.state != 'X')
        .collect()
}

/// The living processes of group `pgid` with their signal handlers, read in
/// one pass over `/proc` (for the signal-scope decision).
pub fn group_snapshot(pgid: i32) -> Vec<crate::supervisor::scope::ProcSnap> {
    group_members(pgid)
        .into_iter()
        .map(|p| crate::supervisor::scope::ProcSnap {
            pid: p.pid,
            ppid: p.ppid,
            pgid: p.pgid,
            // A process gone in between has no handlers left to honour.
            caught: caught_signals(p.pid).unwrap_or(0),
        })
        .collect()
}

/// `SigCgt` of `pid`: the signals it has a handler for.
pub fn caught_signals(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    crate::supervisor::scope::parse_sigcgt(&status)
}

/// The command line of `pid`, for messages: arguments joined by spaces,
/// shortened to `max` characters.
pub fn command_line(pid: i32, max: usize) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut s: String = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).replace(|c: char| c.is_control(), " "))
        .collect::<Vec<_>>()
        .join(" ");
    if s.is_empty() {
        s = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_else(|_| "?".into());
    }
    if s.chars().count() > max {
        s = s.chars().take(max).collect::<String>() + "…";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let p = parse_stat("42 (a) b (c)) S 7 42 42 0 -1").unwrap();
        assert_eq!(
            p,
            ProcInfo {
                pid: 42,
                ppid: 7,
                pgid: 42,
                state: 'S'
            }
        );
    }

    #[test]
    fn finds_descendants_transitively() {
        let procs = [
            ProcInfo {
                pid: 1,
                ppid: 0,
                pgid: 1,
                state: 'S',
            },
            ProcInfo {
                pid: 2,
                ppid: 1,
                pgid: 2,
                state: 'S',
            },
            ProcInfo {
                pid: 3,
                ppid: 2,
                pgid: 3,
                state: 'S',
            },
            ProcInfo {
                pid: 4,
                ppid: 9,
                pgid: 4,
                state: 'S',
            },
        ];
        let d: Vec<i32> = descendants_of(1, &procs).iter().map(|p| p.pid).collect();
        assert_eq!(d, vec![2, 3]);
    }

    #[test]
    fn sees_own_process() {
        let me = self_pid_in_proc().unwrap();
        assert!(all().iter().any(|p| p.pid == me));
    }
}
