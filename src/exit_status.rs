//! From a wait status to pyinit's exit code, in one place.

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl Ended {
    /// From a raw `waitpid` status; `None` for stop/continue reports.
    pub fn from_wait_status(status: i32) -> Option<Ended> {
        if libc::WIFEXITED(status) {
            Some(Ended::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Ended::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

    /// The shell convention: the exit code, or 128+N for death by signal N.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Signaled(n) => 128 + n,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Ended::Exited(c) => format!("exited with status {c}"),
            Ended::Signaled(n) => format!("killed by {}", crate::signals::names::name(n)),
        }
    }
}

/// `--expect-exit`: codes that count as success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectExit(Vec<i32>);

impl ExpectExit {
    pub fn new(codes: Vec<i32>) -> Self {
        ExpectExit(codes)
    }

    /// The codes given (0 always counts as success besides them).
    pub fn codes(&self) -> &[i32] {
        &self.0
    }

    /// The final exit code: 0 for an expected code, else the code itself.
    pub fn map(&self, ended: Ended) -> i32 {
        let code = ended.code();
        if self.0.contains(&code) {
            0
        } else {
            code
        }
    }
}

/// Parses one `--expect-exit` code (0-255).
pub fn parse_code(text: &str) -> Result<i32, String> {
    match text.trim().parse::<i32>() {
        Ok(n) if (0..=255).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{}' is not an exit code (0-255)",
            crate::error::shown(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_shell_convention() {
        assert_eq!(Ended::Exited(0).code(), 0);
        assert_eq!(Ended::Exited(255).code(), 255);
        assert_eq!(Ended::Signaled(15).code(), 143);
        assert_eq!(Ended::Signaled(9).code(), 137);
    }

    #[test]
    fn expect_exit_applies_to_the_final_number() {
        let e = ExpectExit::new(vec![143, 3]);
        assert_eq!(e.map(Ended::Signaled(15)), 0);
        assert_eq!(e.map(Ended::Exited(3)), 0);
        assert_eq!(e.map(Ended::Exited(4)), 4);
        assert_eq!(e.map(Ended::Signaled(9)), 137);
    }

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(Ended::from_wait_status(3 << 8), Some(Ended::Exited(3)));
        assert_eq!(Ended::from_wait_status(15), Some(Ended::Signaled(15)));
        assert_eq!(Ended::from_wait_status(0x137f), None); // stopped
    }

    #[test]
    fn parses_codes() {
        assert_eq!(parse_code("143"), Ok(143));
        assert!(parse_code("256").is_err());
        assert!(parse_code("x").is_err());
    }
}
