//! Placeholder until the control socket lands: no socket.

use std::path::Path;

use super::ControlMsg;

/// Starts the control socket; `None` when it cannot (never an error).
pub fn start(_path: &Path) -> Option<tokio::sync::mpsc::Receiver<ControlMsg>> {
    None
}

/// Removes the socket file at exit.
pub fn stop(_path: &Path) {}
