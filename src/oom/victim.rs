//! Naming the process the OOM killer took (pure: works on parsed `/proc`
//! entries, so the rules are unit-tested without processes).
//!
//! The kernel counts `oom_kill` before it sends the SIGKILL, and nothing
//! names the victim outside the kernel log. What pyinit can see:
//! - its own child dying of a SIGKILL it did not send: that child;
//! - for a grandchild (a gunicorn worker, reaped by its master), a
//!   [`Snapshot`] of pyinit's descendants taken when the cgroup came under
//!   pressure (v2 `max`/`oom` events, v1 `under_oom`: both come before the
//!   kill) compared with a fresh read once `oom_kill` moved: the victim is
//!   gone, or a zombie, in the fresh read. When several vanished at that
//!   moment, the one with the largest resident set comes first: the OOM
//!   killer picks the largest (its badness is mostly RSS).

use std::collections::HashMap;

/// One process, as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    /// Start time in clock ticks since boot: tells a reused pid apart.
    pub start: u64,
    /// Resident set in pages.
    pub rss: u64,
}

/// Parses `/proc/PID/stat` (the command name may hold spaces and `)`).
pub fn parse_stat(stat: &str) -> Option<Entry> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // Fields 3.. of proc(5): state is field 3, starttime 22, rss 24.
    Some(Entry {
        pid,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        start: rest.get(19)?.parse().ok()?,
        rss: rest.get(21)?.parse().ok()?,
    })
}

/// The descendants of `root` among `all` (zombies included).
pub fn descendants(root: i32, all: &[Entry]) -> Vec<Entry> {
    let mut children: HashMap<i32, Vec<&Entry>> = HashMap::new();
    for e in all {
        children.entry(e.ppid).or_default().push(e);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for k in children.get(&pid).into_iter().flatten() {
            if k.pid != root {
                out.push(**k);
                stack.push(k.pid);
            }
        }
    }
    out
}

/// A process remembered from an earlier read, with its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub entry: Entry,
    pub cmd: String,
}

fn alive(e: &Entry) -> bool {
    !matches!(e.state, 'Z' | 'X' | 'x')
}

/// pyinit's descendants at the last refresh.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    procs: HashMap<i32, Seen>,
}

impl Snapshot {
    /// Replaces the view with `fresh`, reading each command line with
    /// `cmd_of`. A process that is exiting has lost its command line (it
    /// reads empty, or only as `[name]`): then the one read earlier for the
    /// same process (same pid and start time) is kept.
    pub fn refresh(&mut self, fresh: &[Entry], mut cmd_of: impl FnMut(i32) -> String) {
        let mut next = HashMap::with_capacity(fresh.len());
        for e in fresh.iter().filter(|e| alive(e)) {
            let now = cmd_of(e.pid);
            let weak = now.is_empty() || now.starts_with('[');
            let cmd = match self.procs.remove(&e.pid) {
                Some(old) if weak && old.entry.start == e.start && !old.cmd.is_empty() => old.cmd,
                _ => now,
            };
            next.insert(e.pid, Seen { entry: *e, cmd });
        }
        self.procs = next;
    }

    /// The remembered processes that are gone, dead or replaced in `fresh`,
    /// largest resident set first.
    pub fn vanished(&self, fresh: &[Entry]) -> Vec<Seen> {
        let now: HashMap<i32, &Entry> = fresh.iter().map(|e| (e.pid, e)).collect();
        let mut out: Vec<Seen> = self
            .procs
            .values()
            .filter(|s| match now.get(&s.entry.pid) {
                None => true,
                Some(e) => e.start != s.entry.start || !alive(e),
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.entry
                .rss
                .cmp(&a.entry.rss)
                .then(a.entry.pid.cmp(&b.entry.pid))
        });
        out
    }

    pub fn get(&self, pid: i32) -> Option<&Seen> {
        self.procs.get(&pid)
    }

    pub fn forget(&mut self, pid: i32) -> Option<Seen> {
        self.procs.remove(&pid)
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pid: i32, ppid: i32, state: char, start: u64, rss: u64) -> Entry {
        Entry {
            pid,
            ppid,
            state,
            start,
            rss,
        }
    }

    #[test]
    fn parses_a_real_stat_line() {
        // A gunicorn worker as Linux 6.x prints it (command name with a space and a parenthesis).
        let line = "42 (gunicorn: w) S 7 7 7 0 -1 4194624 1208 0 0 0 3 1 0 0 20 0 1 0 \
                    123456 30932992 7552 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some(e(42, 7, 'S', 123456, 7552)));
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }

    #[test]
    fn descendants_exclude_strangers() {
        let all = [
            e(1, 0, 'S', 1, 1),
            e(7, 1, 'S', 2, 1),
            e(8, 7, 'S', 3, 1),
            e(9, 7, 'Z', 3, 0),
            e(20, 0, 'S', 3, 1),
        ];
        let mut d: Vec<i32> = descendants(1, &all).iter().map(|e| e.pid).collect();
        d.sort();
        assert_eq!(d, vec![7, 8, 9]);
    }

    #[test]
    fn a_worker_reaped_by_its_master_is_the_one_that_vanished() {
        let before = [
            e(7, 1, 'S', 10, 5000),
            e(8, 7, 'S', 11, 16000),
            e(9, 7, 'R', 12, 6000),
        ];
        let mut snap = Snapshot::default();
        snap.refresh(&before, |pid| format!("gunicorn worker {pid}"));
        // The master reaped 8 and forked 10 in its place.
        let after = [
            e(7, 1, 'S', 10, 5000),
            e(9, 7, 'S', 12, 6000),
            e(10, 7, 'R', 40, 100),
        ];
        let v = snap.vanished(&after);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].entry.pid, 8);
        assert_eq!(v[0].cmd, "gunicorn worker 8");
    }

    #[test]
    fn zombies_and_reused_pids_count_as_vanished_largest_first() {
        let mut snap = Snapshot::default();
        snap.refresh(
            &[
                e(8, 7, 'S', 11, 100),
                e(9, 7, 'S', 12, 9000),
                e(5, 1, 'S', 3, 1),
            ],
            |p| p.to_string(),
        );
        let after = [
            e(8, 7, 'Z', 11, 0),
            e(9, 7, 'S', 99, 10),
            e(5, 1, 'S', 3, 1),
        ];
        let pids: Vec<i32> = snap.vanished(&after).iter().map(|s| s.entry.pid).collect();
        assert_eq!(pids, vec![9, 8]);
    }

    #[test]
    fn refresh_keeps_known_command_lines() {
        let mut snap = Snapshot::default();
        let mut reads = 0;
        snap.refresh(&[e(8, 7, 'S', 11, 1)], |_| {
            reads += 1;
            "python big.py".into()
        });
        // Exiting: its command line reads empty now, the old one stays.
        snap.refresh(&[e(8, 7, 'D', 11, 1), e(9, 7, 'S', 12, 1)], |pid| {
            reads += 1;
            if pid == 8 {
                String::new()
            } else {
                "[sh]".into()
            }
        });
        assert_eq!(reads, 3);
        assert_eq!(snap.get(8).unwrap().cmd, "python big.py");
        assert_eq!(snap.get(9).unwrap().cmd, "[sh]");
        assert_eq!(snap.len(), 2);
        // Forked, then exec'd: the new command line wins.
        snap.refresh(&[e(9, 7, 'S', 12, 1)], |_| "python w.py".into());
        assert_eq!(snap.get(9).unwrap().cmd, "python w.py");
        // A reused pid is a new process.
        snap.refresh(&[e(8, 7, 'S', 50, 1)], |_| "other".into());
        assert_eq!(snap.get(8).unwrap().cmd, "other");
    }
}
