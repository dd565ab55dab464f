//! `pyinit check` options: its own, plus the supervisor's, which are
//! validated here and passed on to the pyinit under test.

use std::ffi::OsString;
use std::time::Duration;

use crate::cli::{
    self, describe_options, scan, switch, typed, usage, Cli, Invocation, Kind, Opt, Scan, Source,
};
use crate::config::duration;
use crate::error::Error;
use crate::signals::names;

const CHECK_OPTS: &[Opt] = &[
    Opt {
        long: "signal",
        short: Some('s'),
        kind: Kind::Value("SIGNAL"),
        help: "the stop signal to send, as `docker stop` does [default: TERM]",
    },
    Opt {
        long: "after",
        short: None,
        kind: Kind::Value("DURATION"),
        help: "ready this long after start (the default, 2s, when no other readiness is given)",
    },
    Opt {
        long: "ready-line",
        short: None,
        kind: Kind::Value("REGEX"),
        help: "ready when a line of output matches REGEX",
    },
    Opt {
        long: "ready-port",
        short: None,
        kind: Kind::Value("PORT"),
        help: "ready when TCP 127.0.0.1:PORT accepts connections",
    },
    Opt {
        long: "ready-notify",
        short: None,
        kind: Kind::Switch,
        help: "ready when the app sends READY=1 on $NOTIFY_SOCKET (gunicorn does)",
    },
    Opt {
        long: "ready-timeout",
        short: None,
        kind: Kind::Value("DURATION"),
        help: "give up waiting for readiness after this long [default: 30s]",
    },
    Opt {
        long: "strict",
        short: None,
        kind: Kind::Switch,
        help: "exit 1 on WARN too",
    },
    Opt {
        long: "json",
        short: None,
        kind: Kind::Switch,
        help: "print the report as one JSON object",
    },
];

/// How `check` decides the app is ready for the stop signal.
#[derive(Debug, Clone)]
pub enum Readiness {
    After(Duration),
    Line(regex_lite::Regex),
    Port(u16),
    Notify,
}

#[derive(Debug, Clone)]
pub struct CheckCli {
    pub signal: i32,
    pub ready: Readiness,
    pub ready_timeout: Duration,
    pub strict: bool,
    pub json: bool,
    /// The supervisor options (grace, rewrite, ...) as resolved.
    pub supervisor: Cli,
    /// Supervisor flags given on the command line, for the pyinit under test.
    pub passthrough: Vec<OsString>,
    pub command: Vec<OsString>,
    // Added for the check logic (the clap conversion fills them):
    /// `--procfile`: test every process of a Procfile instead of a command.
    pub procfile: Option<std::path::PathBuf>,
    /// `--config`: test every process of a TOML config.
    pub config: Option<std::path::PathBuf>,
    /// pyinit options for the pyinit under test, as argv (without
    /// `--procfile`/`--config`, which `check` adds from the fields above).
    pub pyinit_args: Vec<OsString>,
}

pub fn help() -> String {
    let mut s = String::from(
        "Runs COMMAND under pyinit as PID 1 in a fresh PID namespace, waits until it is ready,\n\
         sends the stop signal the way `docker stop` does, and reports how it shut down.\n\n\
         Usage: pyinit check [CHECK OPTIONS] [PYINIT OPTIONS] -- COMMAND [ARG...]\n\n\
         Check options:\n",
    );
    s.push_str(&describe_options(CHECK_OPTS));
    s.push_str("\npyinit options passed to the pyinit under test:\n");
    s.push_str(&describe_options(cli::OPTS));
    s.push_str(
        "\nVerdict: PASS (exited by itself with 0 or an --expect-exit code within the grace period),\n\
         WARN (died of the stop signal itself), FAIL (needed SIGKILL, other status, never ready).\n\
         Exit status: 0 PASS/WARN (--strict: WARN is 1), 1 FAIL, 2 usage error.\n",
    );
    s
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "'{}' is not a TCP port (1-65535)",
            crate::error::shown(s)
        )),
    }
}

pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Invocation, Error> {
    let table: Vec<&Opt> = CHECK_OPTS.iter().chain(cli::OPTS.iter()).collect();
    let scanned = match scan(args, table, &help)? {
        Scan::Print(text) => return Ok(Invocation::Print(text)),
        Scan::Options(s) => s,
    };
    let mut supervisor = Cli {
        command: scanned.command.clone(),
        ..Cli::default()
    };
    let mut passthrough = Vec::new();
    let mut signal = libc::SIGTERM;
    let mut ready = Vec::new();
    let mut ready_timeout = Duration::from_secs(30);
    let (mut strict, mut json) = (false, false);
    for (src, values) in scanned.resolved(env)? {
        if cli::apply(&mut supervisor, &src, &values)? {
            // The check applies --expect-exit itself (it must see the raw
            // status) and reads the inner pyinit's output in raw format.
            let own = [
                "expect-exit",
                "log-format",
                "no-capture",
                "verbose",
                "quiet",
            ];
            if let Source::Flag(opt) = &src {
                if own.contains(&opt.long) {
                    continue;
                }
                for v in &values {
                    passthrough.push(match opt.kind {
                        Kind::Switch => format!("--{}", opt.long).into(),
                        _ => format!("--{}={v}", opt.long).into(),
                    });
                }
            }
            continue;
        }
        let opt = match &src {
            Source::Flag(o) | Source::Env(o) => *o,
        };
        let last = values.last().cloned().unwrap_or_default();
        match opt.long {
            "signal" => signal = typed(&src, &last, names::parse)?,
            "after" => ready.push(Readiness::After(typed(&src, &last, duration::parse)?)),
            "ready-line" => ready.push(Readiness::Line(typed(&src, &last, |s| {
                regex_lite::Regex::new(s).map_err(|e| e.to_string().replace('\n', " "))
            })?)),
            "ready-port" => ready.push(Readiness::Port(typed(&src, &last, parse_port)?)),
            "ready-notify" if switch(&src, &values)? => ready.push(Readiness::Notify),
            "ready-timeout" => ready_timeout = typed(&src, &last, duration::parse)?,
            "strict" => strict = switch(&src, &values)?,
            "json" => json = switch(&src, &values)?,
            _ => {}
        }
    }
    if supervisor.command.is_empty() && supervisor.procfile.is_none() && supervisor.config.is_none()
    {
        return Err(Error::Usage(
            "no command given; usage: pyinit check [OPTIONS] -- COMMAND [ARG...]".into(),
        ));
    }
    if ready.len() > 1 {
        return Err(usage(
            "give only one of --after, --ready-line, --ready-port, --ready-notify".into(),
        ));
    }
    Ok(Invocation::Check(CheckCli {
        signal,
        ready: ready
            .pop()
            .unwrap_or(Readiness::After(Duration::from_secs(2))),
        ready_timeout,
        strict,
        json,
        command: supervisor.command.clone(),
        procfile: supervisor.procfile.clone(),
        config: supervisor.config.clone(),
        pyinit_args: passthrough.clone(),
        supervisor,
        passthrough,
    }))
}
