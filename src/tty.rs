//! Parent-side terminal decisions, made once before the child is spawned.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// pyinit's controlling terminal, opened close-on-exec so that the post-fork
/// code can call `tcsetpgrp` on a ready descriptor.
pub struct Terminal {
    pub fd: OwnedFd,
    /// pyinit's process group is the terminal's foreground group, so the
    /// child may take the foreground (a shell's background job must not).
    pub foreground: bool,
}

fn isatty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether pyinit's stdin or stdout is a terminal: then the child gets the
/// terminal itself and nothing is captured.
pub fn stdio_is_tty() -> bool {
    isatty(0) || isatty(1)
}

/// Whether pyinit's stdout is a terminal (colour `prefix` labels).
pub fn stdout_is_tty() -> bool {
    isatty(1)
}

/// The controlling terminal, when pyinit has one and its stdin is on it
/// (`docker run -it`).
pub fn controlling_terminal() -> Option<Terminal> {
    if !isatty(0) {
        return None;
    }
    // SAFETY: the path is a static C string; the fd is checked.
    let fd = unsafe {
        libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain queries on valid descriptors.
    let foreground = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) == libc::getpgrp() };
    Some(Terminal { fd, foreground })
}
