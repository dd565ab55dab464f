//! Starting the pyinit under test: isolated as PID 1 (a fresh PID
//! namespace, with a user namespace when not root, else a subreaper), with
//! `--log-format json -v`, the user's pyinit options, and nothing of the
//! environment that would change what it writes.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::options::CheckCli;
use super::ready::{NotifySocket, RunDir};

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

pub fn choose_isolation() -> Isolation {
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
pub fn send(pid: i32, sig: i32) {
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

/// The command that starts the pyinit under test (`exe`, this binary).
pub fn command(
    opts: &CheckCli,
    exe: &Path,
    isolation: Isolation,
    run_dir: &RunDir,
    notify: Option<&NotifySocket>,
) -> Command {
    let mut cmd = if isolation == Isolation::Subreaper {
        Command::new(exe)
    } else {
        let mut c = Command::new("unshare");
        c.args(isolation.unshare_args()).arg(exe);
        c
    };
    // The options the check read from PYINIT_* arrive as flags instead
    // (`pyinit_args`); a variable left here could change what it writes.
    for var in super::options::pyinit_variables() {
        cmd.env_remove(var);
    }
    cmd.args(inner_args(opts))
        .env("PYINIT_LOG", "debug")
        // Its own control socket: never the one of a pyinit running here
        // (or of another check running at the same time).
        .env("PYINIT_SOCKET", run_dir.path().join("control.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = notify {
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
    cmd
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
