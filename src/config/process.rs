//! One supervised process, as resolved from the command line, a Procfile or
//! a TOML config, and the checks that span processes (dependencies).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit_status::ExpectExit;

/// `restart = "never" | "on-failure" | "always"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" | "no" => Ok(RestartPolicy::Never),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            other => Err(format!(
                "'{}' is not one of never, on-failure, always",
                crate::error::shown(other)
            )),
        }
    }
}

/// Restart policy with exponential back-off and a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    pub policy: RestartPolicy,
    /// Restarts allowed within `window`; one more stops the container.
    pub max_restarts: u32,
    pub window: Duration,
    /// First delay; doubles after each failure in a row, up to `backoff_max`.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            policy: RestartPolicy::Never,
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

impl Restart {
    /// Delay before restart number `failures_in_row` (0 for the first).
    pub fn delay(&self, failures_in_row: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures_in_row.min(20))
            .unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

/// When a process counts as ready (for its dependants, and for `pyinit health`).
#[derive(Debug, Clone)]
pub enum ReadyProbe {
    Line(regex_lite::Regex),
    /// A TCP port on 127.0.0.1 accepts.
    Port(u16),
    /// `READY=1` on the `NOTIFY_SOCKET` pyinit gives it.
    Notify,
    /// `GET URL` answers 2xx/3xx (plain `http://` on a literal address).
    Http(String),
}

/// Which processes a forwarded signal reaches (SPEC point 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignalScope {
    /// Stop signals to the main process and to every process of its group
    /// except the descendants of a process that catches that signal; every
    /// other signal to the main process only.
    #[default]
    Auto,
    /// Stop signals to the whole group; the rest to the main process.
    Group,
    /// Every signal to the main process only (`-c`); it stays in pyinit's
    /// session and process group.
    Main,
}

impl SignalScope {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalScope::Auto => "auto",
            SignalScope::Group => "group",
            SignalScope::Main => "main",
        }
    }
}

impl std::str::FromStr for SignalScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(SignalScope::Auto),
            "group" => Ok(SignalScope::Group),
            "main" => Ok(SignalScope::Main),
            other => Err(format!(
                "'{}' is not one of auto, group, main",
                crate::error::shown(other)
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub name: String,
    /// Program and arguments, byte for byte (or `/bin/sh -c ...`).
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub working_dir: Option<PathBuf>,
    /// Signal pyinit sends to stop it; `None`: the received stop signal
    /// (rewritten), or TERM when pyinit itself starts the stop.
    pub stop_signal: Option<i32>,
    pub grace: Duration,
    pub restart: Restart,
    pub ready: Option<ReadyProbe>,
    /// Indices of the processes this one waits for.
    pub depends_on: Vec<usize>,
    pub signal_scope: SignalScope,
    /// Multi-process mode: the non-stop signals this process gets; `None`:
    /// those it has a handler for when the signal arrives.
    pub signals: Option<Vec<i32>>,
    /// Runs once, to completion (migrations); its success stops nothing.
    pub oneshot: bool,
    /// One-shots only: stop it (exit status 124) when it runs longer.
    pub timeout: Option<Duration>,
    /// Exit codes that count as success for this process (`-e`, `expect_exit`).
    pub expect: ExpectExit,
}

impl ProcessSpec {
    pub fn new(
        name: String,
        argv: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        grace: Duration,
    ) -> Self {
        ProcessSpec {
            name,
            argv,
            env,
            working_dir: None,
            stop_signal: None,
            grace,
            restart: Restart::default(),
            ready: None,
            depends_on: Vec::new(),
            signal_scope: SignalScope::Auto,
            signals: None,
            oneshot: false,
            timeout: None,
            expect: ExpectExit::default(),
        }
    }
}

/// Resolves `depends_on` names to indices and rejects unknown names and
/// cycles; returns the start order (dependencies first).
pub fn start_order(
    names: &[String],
    deps: &[Vec<String>],
) -> Result<(Vec<Vec<usize>>, Vec<usize>), String> {
    let mut resolved = Vec::with_capacity(deps.len());
    for (i, ds) in deps.iter().enumerate() {
        let mut v = Vec::new();
        for d in ds {
            let j = names.iter().position(|n| n == d).ok_or_else(|| {
                format!("process '{}' depends on unknown process '{d}'", names[i])
            })?;
            if j == i {
                return Err(format!("process '{}' depends on itself", names[i]));
            }
            v.push(j);
        }
        resolved.push(v);
    }
    // Depth-first topological sort; a grey node met again is a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        White,
        Grey,
        Black,
    }
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
        names: &[String],
    ) -> Result<(), String> {
        match marks[i] {
            Mark::Black => return Ok(()),
            Mark::Grey => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let cycle: Vec<&str> = path[start..]
                    .iter()
                    .chain(std::iter::once(&i))
                    .map(|&p| names[p].as_str())
                    .collect();
                return Err(format!("dependency cycle: {}", cycle.join(" -> ")));
            }
            Mark::White => {}
        }
        marks[i] = Mark::Grey;
        path.push(i);
        for &d in &deps[i] {
            visit(d, deps, marks, path, order, names)?;
        }
        path.pop();
        marks[i] = Mark::Black;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::White; names.len()];
    let mut order = Vec::new();
    for i in 0..names.len() {
        visit(i, &resolved, &mut marks, &mut Vec::new(), &mut order, names)?;
    }
    Ok((resolved, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn orders_dependencies_first() {
        let n = names(&["worker", "web", "beat"]);
        let d = vec![vec!["web".to_string()], vec![], vec!["worker".to_string()]];
        let (resolved, order) = start_order(&n, &d).unwrap();
        assert_eq!(resolved, vec![vec![1], vec![], vec![0]]);
        assert_eq!(order, vec![1, 0, 2]);
    }

    #[test]
    fn rejects_cycles_and_unknown_names() {
        let n = names(&["a", "b", "c"]);
        let d = vec![vec!["b".into()], vec!["c".into()], vec!["a".into()]];
        assert_eq!(
            start_order(&n, &d).unwrap_err(),
            "dependency cycle: a -> b -> c -> a"
        );
        let d = vec![vec!["zzz".into()], vec![], vec![]];
        assert!(start_order(&n, &d)
            .unwrap_err()
            .contains("unknown process 'zzz'"));
        let d = vec![vec!["a".into()], vec![], vec![]];
        assert!(start_order(&n, &d).unwrap_err().contains("itself"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Restart {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(450),
            ..Restart::default()
        };
        let d: Vec<u128> = (0..5).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 450, 450]);
        assert_eq!(r.delay(1000), Duration::from_millis(450));
    }
}
