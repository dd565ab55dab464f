//! Everything pyinit knows about signals: names, the rewrite/routing table,
//! the start-up signal state it must hand to children, and the signalfd
//! through which it receives them.

pub mod mask;
pub mod names;
pub mod rewrite;
pub mod source;
