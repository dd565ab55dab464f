//! Parent-side terminal decisions, made once before the child is spawned.

use std::os::fd::OwnedFd;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{getpgrp, isatty, tcgetpgrp};

/// pyinit's controlling terminal, opened close-on-exec so that the post-fork
/// code can call `tcsetpgrp` on a ready descriptor.
pub struct Terminal {
    pub fd: OwnedFd,
    /// pyinit's process group is the terminal's foreground group, so the
    /// child may take the foreground (a shell's background job must not).
    pub foreground: bool,
}

fn stdin_is_tty() -> bool {
    isatty(std::io::stdin()).unwrap_or(false)
}

/// Whether pyinit's stdin or stdout is a terminal: then the child gets the
/// terminal itself and nothing is captured.
pub fn stdio_is_tty() -> bool {
    stdin_is_tty() || isatty(std::io::stdout()).unwrap_or(false)
}

/// Whether pyinit's stdout is a terminal (colour `prefix` labels).
pub fn stdout_is_tty() -> bool {
    isatty(std::io::stdout()).unwrap_or(false)
}

/// The controlling terminal, when pyinit has one and its stdin is on it
/// (`docker run -it`).
pub fn controlling_terminal() -> Option<Terminal> {
    if !stdin_is_tty() {
        return None;
    }
    let fd = open(
        "/dev/tty",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let foreground = tcgetpgrp(&fd).is_ok_and(|pgrp| pgrp == getpgrp());
    Some(Terminal { fd, foreground })
}
