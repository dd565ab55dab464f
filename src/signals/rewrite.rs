//! `--rewrite FROM:TO`.
//!
//! What a received signal *means* (a stop or not) is decided by the signal
//! pyinit received; the rewrite table changes only the number that is sent.
//! A rule whose target is `0` drops the signal entirely. Which processes get
//! it is the signal scope's decision (`crate::supervisor::scope`).

use super::names;

/// One `FROM:TO` rule; `to == 0` drops the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub from: i32,
    pub to: i32,
}

/// Parses `TERM:INT`, `SIGHUP:0`, `15:2`.
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let (from, to) = text.split_once(':').ok_or_else(|| {
        format!(
            "'{}' is not FROM:TO (e.g. TERM:INT)",
            crate::error::shown(text)
        )
    })?;
    let from = names::parse(from)?;
    let to = if to.trim() == "0" {
        0
    } else {
        names::parse(to)?
    };
    Ok(Rule { from, to })
}

/// What to do with one received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The signal number to send.
    pub send: i32,
    /// Whether it starts (or continues) the graceful stop.
    pub stop: bool,
}

/// The `--rewrite` table.
#[derive(Debug, Clone, Default)]
pub struct Router {
    rules: Vec<Rule>,
}

impl Router {
    pub fn new(rules: Vec<Rule>) -> Self {
        Router { rules }
    }

    /// The signals the rules send (not the dropped ones).
    pub fn targets(&self) -> impl Iterator<Item = i32> + '_ {
        self.rules.iter().map(|r| r.to).filter(|&t| t != 0)
    }

    /// `None` when a rule drops the signal: then it does nothing at all.
    pub fn route(&self, received: i32) -> Option<Route> {
        // The last rule for a signal wins, as later flags override earlier ones.
        let send = self
            .rules
            .iter()
            .rev()
            .find(|r| r.from == received)
            .map_or(received, |r| r.to);
        if send == 0 {
            return None;
        }
        Some(Route {
            send,
            stop: names::is_stop(received),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(rules: &[&str]) -> Router {
        Router::new(rules.iter().map(|r| parse_rule(r).unwrap()).collect())
    }

    #[test]
    fn parses_rules() {
        assert_eq!(parse_rule("TERM:INT"), Ok(Rule { from: 15, to: 2 }));
        assert_eq!(parse_rule("SIGHUP:0"), Ok(Rule { from: 1, to: 0 }));
        assert_eq!(parse_rule("15:2"), Ok(Rule { from: 15, to: 2 }));
        assert!(parse_rule("FOO:BAR").is_err());
        assert!(parse_rule("TERM").is_err());
        assert!(parse_rule("TERM:").is_err());
    }

    #[test]
    fn term_int_quit_are_stops_the_rest_are_not() {
        let r = router(&[]);
        for s in [15, 2, 3] {
            assert!(r.route(s).unwrap().stop);
        }
        for s in [1, 10, 12, 21, 22, 28] {
            assert!(!r.route(s).unwrap().stop);
        }
    }

    #[test]
    fn meaning_follows_the_received_signal() {
        let r = router(&["TERM:INT", "HUP:TERM", "USR1:0"]);
        assert_eq!(
            r.route(15),
            Some(Route {
                send: 2,
                stop: true,
            })
        );
        assert_eq!(
            r.route(1),
            Some(Route {
                send: 15,
                stop: false,
            })
        );
        assert_eq!(r.route(10), None);
    }

    #[test]
    fn last_rule_wins() {
        let r = router(&["TERM:INT", "TERM:QUIT"]);
        assert_eq!(r.route(15).unwrap().send, 3);
    }
}
