//! The capture pipeline: one copying task per child pipe ([`pump`]) splits
//! bytes into lines ([`lines`]), formats them as records ([`format`]) and
//! writes whole records to pyinit's stream ([`sink`]), gathering a flood
//! into fewer copies ([`coalesce`]).

pub mod coalesce;
pub mod format;
pub mod lines;
pub mod pump;
pub mod sink;

/// Which of pyinit's output streams a child pipe is copied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}
