//! User-facing failures and the exit code each one maps to.

use std::fmt;

/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: i32 = 2;
/// The command was found but could not be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;
/// pyinit itself failed.
pub const EXIT_INTERNAL: i32 = 1;

#[derive(Debug)]
pub enum Error {
    /// Bad command line, bad environment variable or bad file content.
    Usage(String),
    /// The command does not exist.
    NotFound { command: String, reason: String },
    /// The command exists but cannot be executed.
    CannotExecute { command: String, reason: String },
    /// A system call pyinit depends on failed.
    Internal(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::NotFound { .. } => EXIT_NOT_FOUND,
            Error::CannotExecute { .. } => EXIT_CANNOT_EXECUTE,
            Error::Internal(_) => EXIT_INTERNAL,
        }
    }

    /// Classifies a failed `spawn()` of `command` by its errno, as a shell does.
    pub fn from_spawn(command: &str, err: &std::io::Error) -> Error {
        let reason = describe_io(err);
        use nix::errno::Errno;
        match err.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT | Errno::ENOTDIR) => Error::NotFound {
                command: command.to_string(),
                reason,
            },
            _ => Error::CannotExecute {
                command: command.to_string(),
                reason,
            },
        }
    }
}

/// User text for a one-line message: control characters (a newline in an
/// argument, say) are shown escaped, so every error stays one line.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The OS error text without Rust's " (os error N)" suffix.
pub fn describe_io(err: &std::io::Error) -> String {
    let s = err.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Internal(m) => f.write_str(m),
            Error::NotFound { command, reason } => {
                write!(f, "cannot run '{command}': command not found ({reason})")
            }
            Error::CannotExecute { command, reason } => {
                write!(f, "cannot run '{command}': {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_errors_map_to_shell_codes() {
        let e = Error::from_spawn("nope", &std::io::Error::from(nix::errno::Errno::ENOENT));
        assert_eq!(e.exit_code(), 127);
        assert_eq!(
            e.to_string(),
            "cannot run 'nope': command not found (No such file or directory)"
        );
        let e = Error::from_spawn("x", &std::io::Error::from(nix::errno::Errno::EACCES));
        assert_eq!(e.exit_code(), 126);
        assert_eq!(e.to_string(), "cannot run 'x': Permission denied");
    }
}
