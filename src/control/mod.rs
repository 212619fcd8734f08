//! Start, stop and reload: the lifecycle state machine, the pid file and
//! the signals that drive them.

pub mod lifecycle;
pub mod pidfile;

pub use lifecycle::{Lifecycle, State};
