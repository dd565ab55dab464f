//! Procfiles as honcho and foreman read them: `NAME: COMMAND` per line,
//! `#` comments and blank lines ignored. Commands run through `/bin/sh -c`,
//! as `exec COMMAND` when it is one simple command, so the shell does not
//! stay between pyinit and the app.

use std::ffi::OsString;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub command: String,
    /// 1-based line number, for messages.
    pub line: usize,
}

/// Valid process names: letters, digits, `_`, `-`, `.` (honcho's grammar).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let (name, command) = line
            .split_once(':')
            .ok_or_else(|| format!("line {n}: expected 'NAME: COMMAND'"))?;
        let name = name.trim();
        if !valid_name(name) {
            return Err(format!(
                "line {n}: '{}' is not a process name (letters, digits, '_', '-', '.')",
                crate::error::shown(name)
            ));
        }
        let command = command.trim();
        if command.is_empty() {
            return Err(format!("line {n}: process '{name}' has an empty command"));
        }
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            return Err(format!(
                "line {n}: duplicate process name '{name}' (first on line {})",
                first.line
            ));
        }
        entries.push(Entry {
            name: name.to_string(),
            command: command.to_string(),
            line: n,
        });
    }
    if entries.is_empty() {
        return Err("no processes defined".into());
    }
    Ok(entries)
}

const SHELL_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done", "{",
    "}", "!", "[[", "function", "select", "time", "exec", "cd", "export", "set", ".", "source",
    "eval", "trap", "ulimit", "umask",
];

/// One simple command: no operators, redirections, subshells or leading
/// assignments outside quotes, so `exec` can replace the shell with it.
pub fn is_simple_command(cmd: &str) -> bool {
    let first = cmd.split_whitespace().next().unwrap_or("");
    if first.is_empty() || first.contains('=') || SHELL_KEYWORDS.contains(&first) {
        return false;
    }
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in cmd.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ';' | '&' | '|' | '<' | '>' | '(' | ')' | '\n' | '#' if !single && !double => {
                return false
            }
            _ => {}
        }
    }
    !single && !double && !escaped
}

/// The argv that runs `cmd` through the shell.
pub fn shell_argv(cmd: &str) -> Vec<OsString> {
    let script = if is_simple_command(cmd) {
        format!("exec {cmd}")
    } else {
        cmd.to_string()
    };
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_honcho_procfiles() {
        let text = "# web and worker\nweb: gunicorn app:app -b 0.0.0.0:$PORT\n\n  worker:python worker.py  \nclock.1: python clock.py # not a comment for the shell\n";
        let e = parse(text).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "web");
        assert_eq!(e[0].command, "gunicorn app:app -b 0.0.0.0:$PORT");
        assert_eq!(
            e[1],
            Entry {
                name: "worker".into(),
                command: "python worker.py".into(),
                line: 4
            }
        );
        assert_eq!(e[2].name, "clock.1");
    }

    #[test]
    fn rejects_bad_procfiles_with_line_numbers() {
        assert_eq!(
            parse("web: a\nweb: b\n"),
            Err("line 2: duplicate process name 'web' (first on line 1)".into())
        );
        assert_eq!(
            parse("web:\n"),
            Err("line 1: process 'web' has an empty command".into())
        );
        assert_eq!(
            parse("just words\n"),
            Err("line 1: expected 'NAME: COMMAND'".into())
        );
        assert!(parse("bad name: x\n")
            .unwrap_err()
            .starts_with("line 1: 'bad name'"));
        assert_eq!(parse("# nothing\n\n"), Err("no processes defined".into()));
    }

    #[test]
    fn simple_commands_are_execed() {
        assert!(is_simple_command("gunicorn -w 4 app:app"));
        assert!(is_simple_command("python -m worker --port $PORT"));
        assert!(!is_simple_command("cd /app && gunicorn app:app"));
        assert!(!is_simple_command("FOO=1 python x.py"));
        assert!(!is_simple_command("python x.py > log"));
        assert!(!is_simple_command("if true; then x; fi"));
        assert!(is_simple_command(
            "python3 -c \"import sys; print(sys.argv)\" 'a;b'"
        ));
        assert!(!is_simple_command("python3 -c 'unterminated"));
        assert!(!is_simple_command("a 'x' ; b"));
        assert_eq!(
            shell_argv("python x.py"),
            vec![
                OsString::from("/bin/sh"),
                "-c".into(),
                "exec python x.py".into()
            ]
        );
        assert_eq!(shell_argv("a | b")[2], OsString::from("a | b"));
    }
}
