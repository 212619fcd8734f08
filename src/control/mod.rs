//! Start, stop and reload: the lifecycle state machine, the running
//! gateway, and the pid file the CLI finds it by.

mod gateway;
pub mod lifecycle;
pub mod pidfile;

pub use gateway::{ControlError, Gateway};
pub use lifecycle::{Lifecycle, State};
