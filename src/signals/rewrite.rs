//! `--rewrite FROM:TO` and the routing rule of SPEC point 2.
//!
//! What a received signal *means* (a stop or not, group or main process) is
//! decided by the signal pyinit received; the rewrite table changes only the
//! number that is sent. A rule whose target is `0` drops the signal entirely.

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

/// Where a forwarded signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The main process's process group (stop signals).
    Group,
    /// The main process alone.
    Main,
}

/// What to do with one received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The signal number to send.
    pub send: i32,
    /// Whether it starts (or continues) the graceful stop.
    pub stop: bool,
    pub target: Target,
}

/// The `--rewrite` table plus the `--single-child` switch.
#[derive(Debug, Clone, Default)]
pub struct Router {
    rules: Vec<Rule>,
    single_child: bool,
}

impl Router {
    pub fn new(rules: Vec<Rule>, single_child: bool) -> Self {
        Router {
            rules,
            single_child,
        }
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
        let stop = names::is_stop(received);
        let target = if stop && !self.single_child {
            Target::Group
        } else {
            Target::Main
        };
        Some(Route { send, stop, target })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(rules: &[&str], single: bool) -> Router {
        Router::new(
            rules.iter().map(|r| parse_rule(r).unwrap()).collect(),
            single,
        )
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
    fn stop_signals_go_to_the_group_others_to_main() {
        let r = router(&[], false);
        assert_eq!(r.route(15).unwrap().target, Target::Group);
        assert_eq!(r.route(2).unwrap().target, Target::Group);
        assert_eq!(r.route(3).unwrap().target, Target::Group);
        for s in [1, 10, 12, 21, 22, 28] {
            let route = r.route(s).unwrap();
            assert_eq!(route.target, Target::Main);
            assert!(!route.stop);
        }
    }

    #[test]
    fn single_child_sends_everything_to_main_but_still_stops() {
        let r = router(&[], true);
        let route = r.route(15).unwrap();
        assert_eq!(route.target, Target::Main);
        assert!(route.stop);
    }

    #[test]
    fn meaning_follows_the_received_signal() {
        let r = router(&["TERM:INT", "HUP:TERM", "USR1:0"], false);
        assert_eq!(
            r.route(15),
            Some(Route {
                send: 2,
                stop: true,
                target: Target::Group
            })
        );
        assert_eq!(
            r.route(1),
            Some(Route {
                send: 15,
                stop: false,
                target: Target::Main
            })
        );
        assert_eq!(r.route(10), None);
    }

    #[test]
    fn last_rule_wins() {
        let r = router(&["TERM:INT", "TERM:QUIT"], false);
        assert_eq!(r.route(15).unwrap().send, 3);
    }
}
