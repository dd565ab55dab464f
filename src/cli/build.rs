//! From the resolved options to a validated [`Config`]: reads the
//! env-file, the Procfile or the TOML config, fills each process's
//! settings (its own key, else the top-level key or flag), and rejects
//! what cannot run (exit 2, one line naming the process, before anything
//! starts).

use std::ffi::OsString;
use std::path::Path;

use super::args::{Cli, GraceFrom};
use crate::config::{self, envfile, Config, ProcessSpec};
use crate::error::{describe_io, Error};
use crate::exit_status::ExpectExit;
use crate::output::format::LogFormat;
use crate::signals::rewrite::Router;

const HELP_HINT: &str = "pyinit --help";

impl Cli {
    /// Resolves the options into a [`Config`]; reads the env-file and the
    /// Procfile or config.
    pub fn into_config(self) -> Result<Config, Error> {
        let sources = [
            self.procfile.is_some(),
            self.config.is_some(),
            !self.command.is_empty(),
        ];
        match sources.iter().filter(|&&b| b).count() {
            0 => {
                return Err(Error::Usage(
                    "no command given; usage: pyinit [OPTIONS] -- COMMAND [ARG...] \
                     (or --procfile PATH, or --config PATH)"
                        .into(),
                ))
            }
            1 => {}
            _ => {
                return Err(super::args::usage(
                    "give one of -- COMMAND, --procfile PATH and --config PATH",
                    HELP_HINT,
                ))
            }
        }
        if self.check_config && !self.command.is_empty() {
            return Err(super::args::usage(
                "--check-config goes with --procfile or --config",
                HELP_HINT,
            ));
        }
        let env_file = match &self.env_file {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read(path).map_err(|e| {
                    Error::Usage(format!(
                        "cannot read --env-file '{}': {}",
                        path.display(),
                        describe_io(&e)
                    ))
                })?;
                envfile::parse(&text)
                    .map_err(|e| Error::Usage(format!("--env-file '{}': {e}", path.display())))?
            }
        };
        let python = !self.no_python_env;
        let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let env_for = |extra: &[(String, String)]| {
            let file_vars = env_file.iter().cloned();
            let own = extra
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)));
            config::child_env(inherited.iter().cloned(), file_vars.chain(own), python)
        };
        let mut cfg = Config {
            processes: Vec::new(),
            multi: self.command.is_empty(),
            check_config: self.check_config,
            grace: self.grace,
            stop_delay: self.stop_delay,
            router: Router::new(self.rewrite.clone()),
            signal_scope: self.signal_scope,
            expect: ExpectExit::new(self.expect_exit.clone()),
            socket: std::env::var_os("PYINIT_SOCKET")
                .filter(|s| !s.is_empty())
                .map_or_else(|| config::DEFAULT_SOCKET.into(), Into::into),
            log_format: self.log_format.unwrap_or(if self.command.is_empty() {
                LogFormat::Prefix
            } else {
                LogFormat::Raw
            }),
            no_capture: self.no_capture,
            max_line: self.max_line,
            start_order: vec![0],
        };
        if let Some(path) = &self.procfile {
            let text = read_text(path, "--procfile")?;
            let entries = config::procfile::parse(&text)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            cfg.processes = entries
                .iter()
                .map(|e| {
                    let mut p = ProcessSpec::new(
                        e.name.clone(),
                        config::procfile::shell_argv(&e.command),
                        env_for(&[]),
                        self.grace,
                    );
                    p.signal_scope = cfg.signal_scope;
                    p.expect = cfg.expect.clone();
                    p
                })
                .collect();
            // Heroku's release phase: `release` runs to completion first.
            if let Some(r) = cfg.processes.iter().position(|p| p.name == "release") {
                cfg.processes[r].oneshot = true;
                for (i, p) in cfg.processes.iter_mut().enumerate() {
                    if i != r {
                        p.depends_on = vec![r];
                    }
                }
                cfg.start_order = std::iter::once(r)
                    .chain((0..cfg.processes.len()).filter(|&i| i != r))
                    .collect();
            } else {
                cfg.start_order = (0..cfg.processes.len()).collect();
            }
        } else if let Some(path) = &self.config {
            let text = read_text(path, "--config")?;
            let at = |e: String| Error::Usage(format!("{}: {e}", path.display()));
            let (defaults, procs) = config::file::load(&text).map_err(at)?;
            // Top-level keys are defaults; flags (and PYINIT_* variables) win.
            let explicit = |name: &str| self.explicit.iter().any(|e| e == name);
            let mut grace_from = self.grace_from;
            if !explicit("grace") {
                if let Some(g) = defaults.grace {
                    cfg.grace = g;
                    grace_from = GraceFrom::ConfigKey;
                }
            }
            if !explicit("stop-delay") {
                cfg.stop_delay = defaults.stop_delay.unwrap_or(cfg.stop_delay);
            }
            if !explicit("log-format") {
                cfg.log_format = defaults.log_format.unwrap_or(cfg.log_format);
            }
            if !explicit("max-line") {
                cfg.max_line = defaults.max_line.unwrap_or(cfg.max_line);
            }
            if !explicit("expect-exit") && !defaults.expect_exit.is_empty() {
                cfg.expect = ExpectExit::new(defaults.expect_exit.clone());
            }
            let scope_given = ["signal-scope", "single-child", "group"]
                .iter()
                .any(|n| explicit(n));
            if !scope_given {
                cfg.signal_scope = defaults.signal_scope.unwrap_or(cfg.signal_scope);
            }
            let names: Vec<String> = procs.iter().map(|p| p.name.clone()).collect();
            let deps: Vec<Vec<String>> = procs.iter().map(|p| p.depends_on.clone()).collect();
            let (resolved, order) = config::process::start_order(&names, &deps).map_err(at)?;
            cfg.start_order = order;
            for (p, depends_on) in procs.into_iter().zip(resolved) {
                if let Some(g) = p.grace.filter(|&g| g > cfg.grace) {
                    return Err(at(format!(
                        "process '{}': grace {} is longer than the top-level grace {} ({}), \
                         which bounds the whole stop; raise the top-level grace or lower this one",
                        p.name,
                        humantime::format_duration(g),
                        humantime::format_duration(cfg.grace),
                        grace_from.describe()
                    )));
                }
                // A flag beats the top-level key, not the process's own.
                let scope = p.signal_scope.unwrap_or(cfg.signal_scope);
                cfg.processes.push(ProcessSpec {
                    env: env_for(&p.env),
                    name: p.name,
                    argv: p.argv,
                    working_dir: p.working_dir,
                    stop_signal: p.stop_signal,
                    grace: p.grace.unwrap_or(cfg.grace),
                    restart: p.restart,
                    ready: p.ready,
                    depends_on,
                    signal_scope: scope,
                    signals: p.signals,
                    oneshot: p.oneshot,
                    timeout: p.timeout,
                    expect: p
                        .expect_exit
                        .map_or_else(|| cfg.expect.clone(), ExpectExit::new),
                });
            }
        } else {
            let mut p = ProcessSpec::new(
                config::program_name(&self.command[0]),
                self.command.clone(),
                env_for(&[]),
                self.grace,
            );
            p.signal_scope = cfg.signal_scope;
            p.expect = cfg.expect.clone();
            cfg.processes.push(p);
        }
        Ok(cfg)
    }
}

fn read_text(path: &Path, what: &str) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read {what} '{}': {}",
            path.display(),
            describe_io(&e)
        ))
    })?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{what} '{}' is not valid UTF-8", path.display())))
}

#[cfg(test)]
mod tests {
    use super::super::args::tests::with_env;
    use super::*;
    use crate::cli::{parse, Invocation};
    use crate::config::SignalScope;
    use std::time::Duration;

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("pyinit-build-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn write(&self, name: &str, text: &str) -> String {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            p.to_string_lossy().into_owned()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
        let argv: Vec<OsString> = std::iter::once("pyinit")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        with_env(env, || match parse(argv)? {
            Invocation::Run(cli) => cli.into_config(),
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn single_command_gets_the_scope_and_the_codes() {
        let c = config(&["-g", "-e", "143", "--", "app"], &[]).unwrap();
        assert_eq!(c.signal_scope, SignalScope::Group);
        assert_eq!(c.processes[0].signal_scope, SignalScope::Group);
        assert_eq!(c.processes[0].expect.codes(), &[143]);
        assert!(!c.single_child());
        let c = config(&["--", "app"], &[]).unwrap();
        assert_eq!(c.processes[0].signal_scope, SignalScope::Auto);
        let c = config(&["-c", "--", "app"], &[]).unwrap();
        assert!(c.single_child());
    }

    #[test]
    fn release_in_a_procfile_runs_first_to_completion() {
        let d = Dir::new("release");
        let f = d.write(
            "Procfile",
            "web: gunicorn app\nrelease: python migrate.py\nworker: celery\n",
        );
        let c = config(&["--procfile", &f], &[]).unwrap();
        let names: Vec<&str> = c
            .start_order
            .iter()
            .map(|&i| c.processes[i].name.as_str())
            .collect();
        assert_eq!(names, ["release", "web", "worker"]);
        assert!(c.processes[1].oneshot);
        assert!(!c.processes[0].oneshot && !c.processes[2].oneshot);
        assert_eq!(c.processes[0].depends_on, vec![1]);
        assert_eq!(c.processes[2].depends_on, vec![1]);
        assert!(c.processes[1].depends_on.is_empty());
        let f = d.write("Procfile2", "web: a\nworker: b\n");
        let c = config(&["--procfile", &f], &[]).unwrap();
        assert!(c
            .processes
            .iter()
            .all(|p| !p.oneshot && p.depends_on.is_empty()));
    }

    const TOML: &str = "signal_scope = \"group\"\nexpect_exit = [143]\n\
        [process.migrate]\ncommand = \"m\"\noneshot = true\nexpect_exit = [3]\n\
        [process.web]\ncommand = \"w\"\ndepends_on = [\"migrate\"]\nsignal_scope = \"main\"\n\
        [process.worker]\ncommand = \"c\"\ngrace = \"5s\"\nsignals = [\"HUP\"]\n";

    #[test]
    fn toml_settings_reach_each_process() {
        let d = Dir::new("toml");
        let f = d.write("pyinit.toml", TOML);
        let c = config(&["--config", &f], &[]).unwrap();
        let [m, w, k] = &c.processes[..] else {
            panic!()
        };
        assert!(m.oneshot && !w.oneshot);
        assert_eq!(m.expect.codes(), &[3]);
        assert_eq!(
            w.expect.codes(),
            &[143],
            "the top-level codes are the default"
        );
        assert_eq!(c.signal_scope, SignalScope::Group);
        assert_eq!(
            (m.signal_scope, w.signal_scope, k.signal_scope),
            (SignalScope::Group, SignalScope::Main, SignalScope::Group)
        );
        assert_eq!(
            k.signals,
            Some(vec![nix::sys::signal::Signal::SIGHUP as i32])
        );
        assert_eq!(m.signals, None);
        assert_eq!(k.grace, Duration::from_secs(5));
        assert_eq!(w.grace, crate::config::DEFAULT_GRACE);
        // A flag beats the top-level key, not a process's own key.
        let c = config(&["-c", "--config", &f], &[]).unwrap();
        assert_eq!(c.signal_scope, SignalScope::Main);
        assert_eq!(c.processes[0].signal_scope, SignalScope::Main);
        assert_eq!(c.processes[1].signal_scope, SignalScope::Main);
        let c = config(&["--signal-scope=auto", "-e", "1", "--config", &f], &[]).unwrap();
        assert_eq!(c.processes[0].signal_scope, SignalScope::Auto);
        assert_eq!(c.processes[1].signal_scope, SignalScope::Main);
        assert_eq!(c.processes[1].expect.codes(), &[1]);
        assert_eq!(c.processes[0].expect.codes(), &[3]);
    }

    #[test]
    fn a_process_grace_above_the_top_level_grace_is_an_error_naming_its_source() {
        let d = Dir::new("grace");
        let f = d.write(
            "pyinit.toml",
            "[process.worker]\ncommand = \"c\"\ngrace = \"30s\"\n",
        );
        let g = d.write(
            "pyinit2.toml",
            "grace = \"20s\"\n[process.worker]\ncommand = \"c\"\ngrace = \"30s\"\n",
        );
        for (args, env, source) in [
            (vec!["--config", &f], vec![], "(the 9s default)"),
            (
                vec!["--config", &g],
                vec![],
                "top-level grace 20s (the top-level grace key)",
            ),
            (
                vec!["-t", "10s", "--config", &g],
                vec![],
                "top-level grace 10s (--grace)",
            ),
            (
                vec!["--config", &f],
                vec![("PYINIT_GRACE", "25s")],
                "(PYINIT_GRACE)",
            ),
        ] {
            let e = config(&args, &env).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.exit_code(), 2);
            assert!(
                m.contains("process 'worker': grace 30s is longer than the top-level grace"),
                "{m}"
            );
            assert!(m.contains(source) && !m.contains('\n'), "{source}: {m}");
        }
        assert!(config(&["-t", "30s", "--config", &f], &[]).is_ok());
    }

    #[test]
    fn a_cycle_through_a_one_shot_is_caught() {
        let d = Dir::new("cycle");
        let f = d.write(
            "pyinit.toml",
            "[process.migrate]\ncommand = \"m\"\noneshot = true\ndepends_on = [\"web\"]\n\
             [process.web]\ncommand = \"w\"\ndepends_on = [\"migrate\"]\n",
        );
        let e = config(&["--config", &f], &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("dependency cycle: migrate -> web -> migrate"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
    }
}
