//! The control socket (`PYINIT_SOCKET`) and its clients: `pyinit status`,
//! `pyinit health`, `pyinit ctl`.
//!
//! The server is one more event source of the supervisor loop: it turns
//! each connection into at most one [`ControlMsg`] and writes back the
//! [`Reply`] the supervisor produced. It never blocks the loop.

pub mod client;
pub mod probe;
pub mod protocol;
pub mod server;

use crate::status::Status;

/// What a client asks of the running pyinit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status,
    /// Restart NAME: its stop signal, grace, SIGKILL, start again.
    Restart(String),
    /// Stop NAME and keep it down; its exit stops nothing else.
    Stop(String),
    /// Start NAME again (after `Stop`, or a one-shot that completed).
    Start(String),
    /// Send SIGNAL to NAME, per its scope, handler or not.
    Signal {
        signal: i32,
        name: String,
    },
}

/// The supervisor's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(Status),
    /// The request was carried out (or is under way, for restart/stop).
    Done,
    /// One line saying why not (unknown name, refused).
    Error(String),
}

/// One request from the server task to the supervisor loop.
#[derive(Debug)]
pub struct ControlMsg {
    pub request: Request,
    pub reply: tokio::sync::oneshot::Sender<Reply>,
}
