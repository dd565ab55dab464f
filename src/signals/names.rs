//! Signal names and numbers: `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+2`.
//!
//! nix's `Signal` enum has no real-time signals, so signals are plain `i32`s.

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
    ("IOT", libc::SIGIOT),
    ("POLL", libc::SIGPOLL),
    ("CLD", libc::SIGCHLD),
];

fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Parses a signal given by name (any case, with or without `SIG`) or number.
pub fn parse(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty signal name".into());
    }
    let shown = crate::error::shown(t);
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i32>() {
            Ok(n) if (1..=rtmax()).contains(&n) => Ok(n),
            _ => Err(format!("'{shown}' is not a signal number (1-{})", rtmax())),
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
        return Ok(n);
    }
    // RTMIN, RTMIN+N, RTMAX, RTMAX-N: the sign is required and fixed.
    let offset = |rest: &str, sign: char| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.strip_prefix(sign)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i32>().ok()
    };
    let found = if let Some(rest) = bare.strip_prefix("RTMIN") {
        offset(rest, '+').and_then(|o| rtmin().checked_add(o))
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        offset(rest, '-').and_then(|o| rtmax().checked_sub(o))
    } else {
        None
    };
    found
        .filter(|n| (rtmin()..=rtmax()).contains(n))
        .ok_or_else(|| format!("'{shown}' is not a signal name"))
}

/// The conventional name of a signal, `SIGTERM`, `SIGRTMIN+3`.
pub fn name(sig: i32) -> String {
    if let Some((n, _)) = NAMES.iter().find(|(_, n)| *n == sig) {
        return format!("SIG{n}");
    }
    if (rtmin()..=rtmax()).contains(&sig) {
        let off = sig - rtmin();
        return if off == 0 {
            "SIGRTMIN".into()
        } else {
            format!("SIGRTMIN+{off}")
        };
    }
    format!("signal {sig}")
}

/// Signals the kernel sends on a fault in pyinit itself; never blocked or forwarded.
pub const FAULT_SIGNALS: [i32; 7] = [
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGSEGV,
    libc::SIGSYS,
];

/// Every signal another process can send pyinit that pyinit passes on.
pub fn forwardable() -> Vec<i32> {
    (1..=rtmax())
        .filter(|&s| {
            s != libc::SIGKILL
                && s != libc::SIGSTOP
                && s != libc::SIGCHLD
                && !FAULT_SIGNALS.contains(&s)
                && (s < 32 || s >= rtmin())
        })
        .collect()
}

/// TERM, INT and QUIT: the signals that ask the app to stop.
pub fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_prefixes() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("term"), Ok(15));
        assert_eq!(parse("sigint"), Ok(2));
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse("RTMIN"), Ok(rtmin()));
        assert_eq!(parse("RTMIN+3"), Ok(rtmin() + 3));
        assert_eq!(parse("SIGRTMAX-1"), Ok(rtmax() - 1));
        assert!(parse("FOO").is_err());
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("").is_err());
        assert!(parse("RTMIN+99").is_err());
        assert!(parse("RTMAX+1").is_err());
        assert!(parse("RTMIN3").is_err());
        assert!(parse("RTMIN+2147483647").is_err());
        assert!(parse("RTMAX--2147483648").is_err());
        assert!(!parse("SIG\nSIG").unwrap_err().contains('\n'));
    }

    #[test]
    fn names_roundtrip() {
        for sig in forwardable() {
            assert_eq!(parse(&name(sig)), Ok(sig), "{sig}");
        }
    }

    #[test]
    fn forwardable_excludes_uncatchable_and_faults() {
        let f = forwardable();
        for s in [9, 19, 17, 11, 4, 6, 7, 8, 5, 31, 32, 33] {
            assert!(!f.contains(&s), "{s}");
        }
        for s in [1, 2, 3, 10, 12, 13, 14, 15, 18, 20, 21, 22, 28, 34, 64] {
            assert!(f.contains(&s), "{s}");
        }
    }
}
