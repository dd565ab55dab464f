//! The capture pipeline: one reader task per child pipe splits bytes into
//! lines ([`lines`]), formats them as records ([`format`]) and hands whole
//! records to one writer thread per output stream ([`sink`]).

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
